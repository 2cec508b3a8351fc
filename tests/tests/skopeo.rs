//! skopeo against the registry, from OCI image layouts built by the test.

use berth_e2e::containers::ContainersEnv;
use berth_e2e::http;
use berth_e2e::oci::{self, Image, Index, OciLayout};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, require_tools, skip_requested};
use serde_json::Value;

struct Setup {
    reg: Registry,
    env: ContainersEnv,
    work: tempfile::TempDir,
    rng: Rng,
}

fn setup(test: &str) -> Option<Setup> {
    if skip_requested(test) {
        return None;
    }
    require_tools(&["skopeo", "curl"]);
    let reg = Registry::start();
    // The repositories live in project `e2e`; skopeo and podman log in as
    // the admin (on Berth's targets).
    reg.ensure_project("e2e");
    let env = ContainersEnv::new(&[reg.host()]);
    env.login(&reg);
    Some(Setup {
        reg,
        env,
        work: berth_e2e::tempdir("berth-e2e-skopeo."),
        rng: Rng::new(),
    })
}

impl Setup {
    fn layout(&self, name: &str) -> OciLayout {
        OciLayout::create(&self.work.path().join(name))
    }

    fn docker_ref(&self, repo_and_ref: &str) -> String {
        format!("docker://{}", self.reg.image(repo_and_ref))
    }

    /// `skopeo copy --preserve-digests [extra] <src> <dest>`
    fn copy(&self, extra: &[&str], src: &str, dest: &str) {
        self.env
            .skopeo()
            .args([
                "copy",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .args(extra)
            .args([src, dest])
            .ok();
    }

    /// `skopeo inspect --raw` of a registry reference: the manifest bytes.
    fn inspect_raw(&self, repo_and_ref: &str) -> Vec<u8> {
        self.env
            .skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(self.docker_ref(repo_and_ref))
            .ok()
            .stdout
    }

    fn blob_from_registry(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = http::get(&self.reg.url(&format!("/v2/{repo}/blobs/{digest}")))
            .follow()
            .send();
        resp.expect_status(200);
        resp.body
    }
}

fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "{what} differ: got {} bytes ({}), want {} bytes ({})\n got: {}\nwant: {}",
        got.len(),
        oci::digest_of(got),
        want.len(),
        oci::digest_of(want),
        String::from_utf8_lossy(&got[..got.len().min(2000)]),
        String::from_utf8_lossy(&want[..want.len().min(2000)]),
    );
}

#[test]
fn copy_single_image_preserves_manifest_digest() {
    let Some(mut s) = setup("copy_single_image_preserves_manifest_digest") else {
        return;
    };
    let image = Image::random("amd64", &mut s.rng);
    let mut layout = s.layout("src");
    layout.add_image(&image, "v1");
    s.copy(&[], &layout.reference("v1"), &s.docker_ref("e2e/single:v1"));

    let raw = s.inspect_raw("e2e/single:v1");
    assert_eq!(oci::digest_of(&raw), image.manifest.digest);
    assert_same_bytes("manifest bytes", &raw, &image.manifest.bytes);
    let by_digest = s.inspect_raw(&format!("e2e/single@{}", image.manifest.digest));
    assert_same_bytes(
        "manifest bytes by digest",
        &by_digest,
        &image.manifest.bytes,
    );
    for blob in image.blobs() {
        let got = s.blob_from_registry("e2e/single", &blob.digest);
        assert_same_bytes(&format!("blob {}", blob.digest), &got, &blob.bytes);
    }
}

#[test]
fn copy_all_preserves_index_and_children() {
    let Some(mut s) = setup("copy_all_preserves_index_and_children") else {
        return;
    };
    let index = Index::random(&["amd64", "arm64"], &mut s.rng);
    let mut layout = s.layout("src");
    layout.add_index(&index, "v1");
    s.copy(
        &["--all"],
        &layout.reference("v1"),
        &s.docker_ref("e2e/multi:v1"),
    );

    let raw = s.inspect_raw("e2e/multi:v1");
    assert_same_bytes("index bytes", &raw, &index.manifest.bytes);
    let parsed: Value = serde_json::from_slice(&raw).expect("index is JSON");
    assert_eq!(parsed["mediaType"], oci::OCI_INDEX);
    assert_eq!(parsed["manifests"].as_array().map(Vec::len), Some(2));

    for image in &index.images {
        let child = s.inspect_raw(&format!("e2e/multi@{}", image.manifest.digest));
        assert_same_bytes(
            &format!("{} manifest bytes", image.architecture),
            &child,
            &image.manifest.bytes,
        );
        for blob in image.blobs() {
            let got = s.blob_from_registry("e2e/multi", &blob.digest);
            assert_same_bytes(&format!("blob {}", blob.digest), &got, &blob.bytes);
        }
    }
}

#[test]
fn list_tags_shows_pushed_tags() {
    let Some(mut s) = setup("list_tags_shows_pushed_tags") else {
        return;
    };
    let first = Image::random("amd64", &mut s.rng);
    let second = Image::random("amd64", &mut s.rng);
    let mut layout = s.layout("src");
    layout.add_image(&first, "one");
    layout.add_image(&second, "two");
    s.copy(&[], &layout.reference("one"), &s.docker_ref("e2e/tags:v1"));
    s.copy(
        &[],
        &layout.reference("one"),
        &s.docker_ref("e2e/tags:latest"),
    );
    s.copy(&[], &layout.reference("two"), &s.docker_ref("e2e/tags:v2"));

    let out = s
        .env
        .skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(s.docker_ref("e2e/tags"))
        .ok();
    let listed = out.json();
    let mut tags: Vec<String> = listed["Tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no Tags array in:\n{out}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"], "{out}");

    // Two tags share one manifest, the third has its own.
    assert_eq!(
        oci::digest_of(&s.inspect_raw("e2e/tags:latest")),
        first.manifest.digest
    );
    assert_eq!(
        oci::digest_of(&s.inspect_raw("e2e/tags:v2")),
        second.manifest.digest
    );
}

#[test]
fn delete_by_digest_makes_manifest_unknown() {
    let Some(mut s) = setup("delete_by_digest_makes_manifest_unknown") else {
        return;
    };
    let keep = Image::random("amd64", &mut s.rng);
    let doomed = Image::random("amd64", &mut s.rng);
    let mut layout = s.layout("src");
    layout.add_image(&keep, "keep");
    layout.add_image(&doomed, "doomed");
    s.copy(
        &[],
        &layout.reference("keep"),
        &s.docker_ref("e2e/del:keep"),
    );
    s.copy(
        &[],
        &layout.reference("doomed"),
        &s.docker_ref("e2e/del:doomed"),
    );

    let by_digest = format!("e2e/del@{}", doomed.manifest.digest);
    s.env
        .skopeo()
        .args(["delete", "--tls-verify=false"])
        .arg(s.docker_ref(&by_digest))
        .ok();

    for gone in [by_digest.as_str(), "e2e/del:doomed"] {
        let out = s
            .env
            .skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(s.docker_ref(gone))
            .fails();
        let err = out.stderr_str().to_lowercase();
        assert!(
            err.contains("manifest unknown") || err.contains("not found"),
            "inspect of a deleted manifest should report it unknown:\n{out}"
        );
    }
    let resp = http::get(
        &s.reg
            .url(&format!("/v2/e2e/del/manifests/{}", doomed.manifest.digest)),
    )
    .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
    .send();
    resp.expect_status(404);
    // The other image in the repository is untouched.
    assert_eq!(
        oci::digest_of(&s.inspect_raw("e2e/del:keep")),
        keep.manifest.digest
    );
}

#[test]
fn copy_back_to_layout_is_byte_identical() {
    let Some(mut s) = setup("copy_back_to_layout_is_byte_identical") else {
        return;
    };
    let image = Image::random("amd64", &mut s.rng);
    let mut layout = s.layout("src");
    layout.add_image(&image, "v1");
    s.copy(&[], &layout.reference("v1"), &s.docker_ref("e2e/back:v1"));

    let back = s.work.path().join("back");
    s.copy(
        &[],
        &s.docker_ref("e2e/back:v1"),
        &format!("oci:{}:copied", back.display()),
    );
    let desc = oci::resolve_tag(&back, "copied");
    assert_eq!(desc["digest"], image.manifest.digest.as_str(), "{desc}");
    let manifest_bytes = oci::read_blob(&back, &image.manifest.digest);
    assert_same_bytes("copied manifest", &manifest_bytes, &image.manifest.bytes);
    for blob in image.blobs() {
        let got = oci::read_blob(&back, &blob.digest);
        assert_same_bytes(&format!("copied blob {}", blob.digest), &got, &blob.bytes);
    }
}
