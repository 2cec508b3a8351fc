//! Harbor's artifact API (`/api/v2.0/projects/{p}/repositories/{r}/artifacts…`)
//! over what real clients pushed: a docker image (`docker load` of an
//! archive built here, `docker push`), a multi-arch OCI index (`skopeo copy
//! --all`), and with the oras Python SDK (`tests/scripts/oras_e2e.py`) a
//! Helm-shaped chart, a cosign-shaped signature (`sha256-<hex>.sig`) and an
//! SBOM referrer (`subject`) of the docker image.
//!
//! Everything is read back as the admin with Basic auth, as Harbor's UI and
//! API clients do, and checked field by field against what the client was
//! given: `type`, `media_type`, `manifest_media_type`, `size`,
//! `extra_attrs`, `tags` (`signed`), `references`, `accessories`,
//! `addition_links` and the additions themselves. Each test prints a short
//! table of what was pushed and what the API showed. Skipped on
//! Distribution (no `/api/v2.0`).

use berth_e2e::containers::ContainersEnv;
use berth_e2e::dockerd::Dockerd;
use berth_e2e::http::{self, Response};
use berth_e2e::oci::{self, Blob, Index, OciLayout, TarEntry};
use berth_e2e::rng::Rng;
use berth_e2e::{Cmd, Registry, Target, require_tools, skip_requested};
use serde_json::{Value, json};

/// Every test's project: private, so nothing is visible without the login.
const PROJECT: &str = "shop";

const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const COSIGN_PAYLOAD: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SPDX: &str = "application/spdx+json";

fn start(test: &str) -> Option<Registry> {
    if skip_requested(test) {
        return None;
    }
    let target = Target::from_env();
    if !target.is_berth() {
        eprintln!("SKIPPED {test}: Distribution has no /api/v2.0");
        return None;
    }
    require_tools(&["curl"]);
    let reg = Registry::start();
    reg.create_project(PROJECT, false);
    Some(reg)
}

// ------------------------------------------------------------ the API ----

/// `GET /api/v2.0<path>` as the admin, expecting 200.
fn api_get(reg: &Registry, path: &str) -> Response {
    let resp = reg.api("GET", path, None);
    assert_eq!(resp.status, 200, "GET /api/v2.0{path}:\n{resp}");
    resp
}

/// `/projects/shop/repositories/<repo>`
fn repo_path(repo: &str) -> String {
    format!("/projects/{PROJECT}/repositories/{repo}")
}

/// One artifact with every `with_*` switch this file looks at.
fn artifact(reg: &Registry, repo: &str, reference: &str) -> Value {
    api_get(
        reg,
        &format!(
            "{}/artifacts/{reference}?with_tag=true&with_accessory=true&with_signature=true",
            repo_path(repo)
        ),
    )
    .json()
}

/// The repository's artifact listing (first page, up to 100), checked to
/// agree with `X-Total-Count` and the repository's `artifact_count`.
fn listing(reg: &Registry, repo: &str) -> Vec<Value> {
    let resp = api_get(
        reg,
        &format!(
            "{}/artifacts?with_tag=true&with_accessory=true&page_size=100",
            repo_path(repo)
        ),
    );
    let list = resp.json().as_array().cloned().unwrap_or_else(|| {
        panic!("the artifact listing is not a JSON list:\n{resp}");
    });
    assert_eq!(
        resp.header("X-Total-Count"),
        Some(list.len().to_string().as_str()),
        "X-Total-Count should count the listed artifacts:\n{resp}"
    );
    let repository = api_get(reg, &repo_path(repo)).json();
    assert_eq!(
        repository["artifact_count"],
        list.len(),
        "the repository's artifact_count should match its listing: {repository:#}"
    );
    assert_eq!(
        repository["name"],
        format!("{PROJECT}/{repo}"),
        "{repository:#}"
    );
    list
}

/// The names of an artifact's `tags`.
fn tag_names(artifact: &Value) -> Vec<String> {
    artifact["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no `tags` list: {artifact:#}"))
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

fn len_of(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// Follows an `addition_links` entry (`/api/v2.0/…`, not absolute) as the
/// admin; panics unless it answers 200.
fn follow_addition(reg: &Registry, artifact: &Value, name: &str) -> Response {
    let link = &artifact["addition_links"][name];
    assert_eq!(
        link["absolute"], false,
        "addition_links.{name}: {artifact:#}"
    );
    let href = link["href"]
        .as_str()
        .unwrap_or_else(|| panic!("no addition_links.{name}.href: {artifact:#}"));
    let path = href
        .strip_prefix("/api/v2.0")
        .unwrap_or_else(|| panic!("addition_links.{name}.href is not under /api/v2.0: {href}"));
    assert!(
        path.ends_with(&format!("/additions/{name}")),
        "addition_links.{name}.href: {href}"
    );
    api_get(reg, path)
}

/// Harbor's `size` of a single-platform manifest: its own bytes, its config
/// and its layers.
fn manifest_size(manifest: &[u8]) -> u64 {
    let doc: Value = serde_json::from_slice(manifest).expect("the manifest is JSON");
    let blobs: u64 = std::iter::once(&doc["config"])
        .chain(doc["layers"].as_array().into_iter().flatten())
        .filter_map(|d| d["size"].as_u64())
        .sum();
    manifest.len() as u64 + blobs
}

/// `GET /v2/<name>/manifests/<reference>` as the admin (token flow).
fn registry_manifest(reg: &Registry, name: &str, reference: &str) -> Response {
    let resp = http::get(&reg.url(&format!("/v2/{name}/manifests/{reference}")))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    resp.expect_status(200);
    resp
}

// ------------------------------------------------------------ the table ----

/// One line of the table a test prints.
struct Row {
    client: &'static str,
    pushed: String,
    artifact: String,
    kind: String,
    references: usize,
    accessories: usize,
}

impl Row {
    fn of(client: &'static str, pushed: &str, artifact: &str, seen: &Value) -> Self {
        Self {
            client,
            pushed: pushed.to_owned(),
            artifact: artifact.to_owned(),
            kind: seen["type"].as_str().unwrap_or("-").to_owned(),
            references: len_of(&seen["references"]),
            accessories: len_of(&seen["accessories"]),
        }
    }
}

fn print_table(rows: &[Row]) {
    let mut text = format!(
        "{:<7} {:<44} {:<40} {:<18} {:>4} {:>4}\n",
        "client", "pushed", "artifact", "type", "refs", "acc"
    );
    for r in rows {
        text.push_str(&format!(
            "{:<7} {:<44} {:<40} {:<18} {:>4} {:>4}\n",
            r.client, r.pushed, r.artifact, r.kind, r.references, r.accessories
        ));
    }
    println!("{text}");
}

// ------------------------------------------------------------- oras ----

fn require_oras_sdk() {
    let python = berth_e2e::python();
    require_tools(&[&python]);
    let out = Cmd::new(&python)
        .args(["-c", "import oras.version; print(oras.version.__version__)"])
        .run();
    assert!(
        out.status.success(),
        "the `oras` Python package is not importable by {python}; run `tests/install-deps` (as root)\n{out}"
    );
}

/// `tests/scripts/oras_e2e.py <command> --registry … --repo shop/<repo>` as
/// the admin, not yet run. (The script is found from this file's own crate
/// directory: the harness library may have been compiled in another
/// checkout sharing the target directory.)
fn oras(reg: &Registry, command: &str, repo: &str) -> Cmd {
    Cmd::new(berth_e2e::python())
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oras_e2e.py"))
        .arg(command)
        .args(["--registry", &reg.host(), "--repo"])
        .arg(format!("{PROJECT}/{repo}"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ORAS_E2E_USERNAME", reg.admin_user())
        .env("ORAS_E2E_PASSWORD", reg.admin_password())
}

fn write(dir: &std::path::Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

fn digest_field(out: &Value) -> String {
    out["digest"]
        .as_str()
        .filter(|d| d.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in the oras script's answer: {out}"))
        .to_owned()
}

// ------------------------------------------------------------ docker ----

/// A docker image as `docker save` writes it (manifest.json, the config,
/// one layer tar), built byte by byte: its config has architecture, os,
/// created, author, a config section and a history of two steps.
struct DockerArchive {
    tar: Vec<u8>,
    config: Blob,
    config_json: Value,
}

fn docker_archive(image: &str, rng: &mut Rng) -> DockerArchive {
    let layer = oci::tar(&[
        TarEntry::Dir("app/".to_owned()),
        TarEntry::File(
            "app/hello.txt".to_owned(),
            format!("hello from berth e2e {}\n", rng.hex(16)).into_bytes(),
        ),
    ]);
    let diff_id = oci::digest_of(&layer);
    let config_json = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-02-03T04:05:06Z",
        "author": "Berth E2E <e2e@berth.example>",
        "config": {
            "Env": ["PATH=/app"],
            "Cmd": ["/app/hello.txt"],
            "WorkingDir": "/app",
            "Labels": { "org.berth.e2e.nonce": rng.hex(16) },
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [
            {
                "created": "2024-02-03T04:05:05Z",
                "created_by": "/bin/sh -c #(nop) COPY file:hello.txt in /app/ ",
                "author": "Berth E2E <e2e@berth.example>",
            },
            {
                "created": "2024-02-03T04:05:06Z",
                "created_by": "/bin/sh -c #(nop)  CMD [\"/app/hello.txt\"]",
                "comment": "berth e2e",
                "empty_layer": true,
            },
        ],
    });
    let config = Blob::json(DOCKER_CONFIG, &config_json);
    let layer_dir = oci::sha256_hex(&layer);
    let manifest = json!([{
        "Config": format!("{}.json", config.hex()),
        "RepoTags": [image],
        "Layers": [format!("{layer_dir}/layer.tar")],
    }]);
    let tar = oci::tar(&[
        TarEntry::Dir(format!("{layer_dir}/")),
        TarEntry::File(format!("{layer_dir}/layer.tar"), layer),
        TarEntry::File(format!("{}.json", config.hex()), config.bytes.clone()),
        TarEntry::File(
            "manifest.json".to_owned(),
            serde_json::to_vec(&manifest).expect("JSON serializes"),
        ),
    ]);
    DockerArchive {
        tar,
        config,
        config_json,
    }
}

// ------------------------------------------------------------- tests ----

/// A docker image (`docker load` + `docker push`), then a cosign-shaped
/// signature and an SBOM referrer of it pushed with oras: the image is an
/// IMAGE with its config's attributes and history, the other two are its
/// accessories and never listed on their own.
#[test]
fn docker_image_with_oras_signature_and_sbom() {
    let Some(reg) = start("docker_image_with_oras_signature_and_sbom") else {
        return;
    };
    require_tools(&["dockerd", "containerd"]);
    require_oras_sdk();
    let work = berth_e2e::tempdir("berth-e2e-artifact-docker.");
    let mut rng = Rng::new();
    let mut rows = Vec::new();

    // 1. docker load of an archive built here, docker push.
    let image = reg.image(&format!("{PROJECT}/app:v1"));
    let archive = docker_archive(&image, &mut rng);
    let archive_path = write(work.path(), "app.tar", &archive.tar);
    let docker = Dockerd::start();
    docker
        .docker()
        .args(["load", "--input"])
        .arg(&archive_path)
        .ok();
    let loaded = docker.inspect(&image);
    assert_eq!(
        loaded["Id"],
        archive.config.digest.as_str(),
        "docker should keep the config bytes (image ID = config digest): {loaded:#}"
    );
    docker.login(&reg);
    let digest = docker.push(&image);
    let manifest = registry_manifest(&reg, &format!("{PROJECT}/app"), "v1");
    assert_eq!(oci::digest_of(&manifest.body), digest, "{manifest}");
    let manifest_type = manifest
        .header("Content-Type")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(manifest_type, oci::DOCKER_MANIFEST, "{manifest}");

    let art = artifact(&reg, "app", "v1");
    assert_eq!(art["digest"], digest.as_str(), "{art:#}");
    assert_eq!(art["type"], "IMAGE", "{art:#}");
    assert_eq!(art["manifest_media_type"], oci::DOCKER_MANIFEST, "{art:#}");
    assert_eq!(art["media_type"], DOCKER_CONFIG, "{art:#}");
    assert_eq!(art["repository_name"], format!("{PROJECT}/app"), "{art:#}");
    assert_eq!(art["size"], manifest_size(&manifest.body), "{art:#}");
    let extra = &art["extra_attrs"];
    for key in ["architecture", "os", "created", "author", "config"] {
        assert_eq!(
            extra[key], archive.config_json[key],
            "extra_attrs.{key} should be the config's: {art:#}"
        );
    }
    assert_eq!(tag_names(&art), ["v1"], "{art:#}");
    assert_eq!(
        art["tags"][0]["signed"], false,
        "not signed yet (with_signature=true): {art:#}"
    );
    assert_eq!(len_of(&art["accessories"]), 0, "{art:#}");
    assert_eq!(len_of(&art["references"]), 0, "{art:#}");
    let history = follow_addition(&reg, &art, "build_history");
    assert_eq!(
        history.json(),
        archive.config_json["history"],
        "build_history should be the config's history:\n{history}"
    );
    rows.push(Row::of(
        "docker",
        "image (docker load, docker push)",
        &format!("app:v1 {}", &digest[..19]),
        &art,
    ));

    // 2. A cosign-shaped signature, pushed with oras under cosign's tag.
    let hex = digest.trim_start_matches("sha256:");
    let sig_tag = format!("sha256-{hex}.sig");
    let files = work.path().join("oras");
    std::fs::create_dir_all(&files).expect("cannot create the oras dir");
    let payload = serde_json::to_vec(&json!({
        "critical": {
            "identity": { "docker-reference": reg.image(&format!("{PROJECT}/app")) },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .expect("JSON serializes");
    let payload_path = write(&files, "payload.json", &payload);
    let sig_config = write(
        &files,
        "sig-config.json",
        &serde_json::to_vec(&json!({
            "architecture": "",
            "os": "",
            "created": "0001-01-01T00:00:00Z",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [oci::digest_of(&payload)] },
            "history": [{ "created": "0001-01-01T00:00:00Z" }],
        }))
        .expect("JSON serializes"),
    );
    let sig = oras(&reg, "push-oras", "app")
        .args(["--tag", &sig_tag, "--config-media-type", oci::OCI_CONFIG])
        .arg("--config")
        .arg(&sig_config)
        .args(["--layer-media-type", COSIGN_PAYLOAD])
        .arg("--file")
        .arg(&payload_path)
        .ok()
        .json();
    let sig_digest = digest_field(&sig);

    // 3. An SBOM referrer: a manifest whose `subject` is the image.
    let sbom = serde_json::to_vec(&json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "documentNamespace": format!("https://berth.example/spdx/{}", rng.hex(8)),
        "packages": [{ "name": "hello", "SPDXID": "SPDXRef-hello", "versionInfo": "1.0" }],
    }))
    .expect("JSON serializes");
    let sbom_path = write(&files, "sbom.spdx.json", &sbom);
    let sbom_pushed = oras(&reg, "push-artifact", "app")
        .args(["--artifact-type", SPDX, "--layer-media-type", SPDX])
        .arg("--file")
        .arg(&sbom_path)
        .args([
            "--subject-digest",
            &digest,
            "--subject-media-type",
            &manifest_type,
        ])
        .arg("--subject-size")
        .arg(manifest.body.len().to_string())
        .ok()
        .json();
    let sbom_digest = digest_field(&sbom_pushed);

    // The image now has both as accessories, and its tag is signed.
    let art = artifact(&reg, "app", "v1");
    assert_eq!(
        tag_names(&art),
        ["v1"],
        "the .sig tag is the signature's: {art:#}"
    );
    assert_eq!(
        art["tags"][0]["signed"], true,
        "a cosign signature makes the tag signed (with_signature=true): {art:#}"
    );
    let accessories = art["accessories"].clone();
    check_accessories(
        &accessories,
        &digest,
        &sig_digest,
        &sbom_digest,
        "with_accessory",
    );
    let listed = api_get(
        &reg,
        &format!("{}/artifacts/{digest}/accessories", repo_path("app")),
    );
    check_accessories(
        &listed.json(),
        &digest,
        &sig_digest,
        &sbom_digest,
        "GET …/accessories",
    );
    let by_type = api_get(
        &reg,
        &format!(
            "{}/artifacts/v1/accessories?q=type%3Dsignature.cosign",
            repo_path("app")
        ),
    );
    assert_eq!(
        len_of(&by_type.json()),
        1,
        "q=type=signature.cosign:\n{by_type}"
    );

    // Neither is an artifact of the repository's listing.
    let list = listing(&reg, "app");
    let digests: Vec<&str> = list.iter().filter_map(|a| a["digest"].as_str()).collect();
    assert_eq!(
        digests,
        [digest.as_str()],
        "only the image is listed, not its signature or SBOM"
    );
    assert_eq!(len_of(&list[0]["accessories"]), 2, "{:#}", list[0]);

    // The accessories themselves are still artifacts one can read, and an
    // accessory's size is the whole artifact's (as Harbor counts it).
    let sig_art = artifact(&reg, "app", &sig_tag);
    assert_eq!(sig_art["digest"], sig_digest.as_str(), "{sig_art:#}");
    let sbom_art = artifact(&reg, "app", &sbom_digest);
    assert_eq!(sbom_art["artifact_type"], SPDX, "{sbom_art:#}");
    for (acc, whole) in [(&sig_digest, &sig_art), (&sbom_digest, &sbom_art)] {
        let shown = accessories
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["digest"] == acc.as_str())
            .map(|a| a["size"].clone());
        assert_eq!(
            shown,
            Some(whole["size"].clone()),
            "size of accessory {acc}"
        );
    }

    rows.push(Row::of(
        "oras",
        "cosign signature (tag sha256-….sig)",
        &format!("app@{}", &sig_digest[..19]),
        &sig_art,
    ));
    rows.push(Row::of(
        "oras",
        "SBOM referrer (subject, spdx+json)",
        &format!("app@{}", &sbom_digest[..19]),
        &sbom_art,
    ));
    rows.push(Row::of("(api)", "image, after both", "app:v1", &art));
    print_table(&rows);
}

/// Panics unless `list` holds exactly the cosign signature and the SBOM of
/// `subject`, with Harbor's accessory fields.
fn check_accessories(list: &Value, subject: &str, sig: &str, sbom: &str, what: &str) {
    let items = list
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list: {list:#}"));
    assert_eq!(items.len(), 2, "{what}: two accessories: {list:#}");
    let of_type =
        |kind: &str| -> Vec<&Value> { items.iter().filter(|a| a["type"] == kind).collect() };
    let sigs = of_type("signature.cosign");
    let others = of_type("subject.accessory");
    assert_eq!(sigs.len(), 1, "{what}: one signature.cosign: {list:#}");
    assert_eq!(others.len(), 1, "{what}: one subject.accessory: {list:#}");
    assert_eq!(sigs[0]["digest"], sig, "{what}: {list:#}");
    assert_eq!(others[0]["digest"], sbom, "{what}: {list:#}");
    for a in items {
        assert_eq!(a["subject_artifact_digest"], subject, "{what}: {list:#}");
        assert_eq!(
            a["subject_artifact_repo"],
            format!("{PROJECT}/app"),
            "{what}: {list:#}"
        );
        assert!(
            a["size"].as_u64().is_some_and(|s| s > 0),
            "{what}: {list:#}"
        );
    }
}

/// An OCI index over linux/amd64 and linux/arm64 images, written as an OCI
/// layout and copied with `skopeo copy --all`: one IMAGE artifact with two
/// references; the children are not listed but can be read by digest.
#[test]
fn skopeo_multi_arch_index() {
    let Some(reg) = start("skopeo_multi_arch_index") else {
        return;
    };
    require_tools(&["skopeo"]);
    let env = ContainersEnv::new(&[reg.host()]);
    let work = berth_e2e::tempdir("berth-e2e-artifact-skopeo.");
    let index = Index::random(&["amd64", "arm64"], &mut Rng::new());
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_index(&index, "v1");
    let admin = reg.admin();
    env.skopeo()
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("--dest-creds={}:{}", admin.user, admin.password))
        .arg(layout.reference("v1"))
        .arg(format!(
            "docker://{}",
            reg.image(&format!("{PROJECT}/multi:v1"))
        ))
        .ok();

    let list = listing(&reg, "multi");
    assert_eq!(
        list.len(),
        1,
        "the index alone is listed, not its children: {list:#?}"
    );
    let art = artifact(&reg, "multi", "v1");
    assert_eq!(list[0]["digest"], art["digest"], "{list:#?}");
    assert_eq!(art["digest"], index.manifest.digest.as_str(), "{art:#}");
    assert_eq!(art["type"], "IMAGE", "{art:#}");
    assert_eq!(art["manifest_media_type"], oci::OCI_INDEX, "{art:#}");
    assert_eq!(art["media_type"], oci::OCI_INDEX, "{art:#}");
    assert_eq!(tag_names(&art), ["v1"], "{art:#}");
    let children_size: u64 = index
        .images
        .iter()
        .map(|i| manifest_size(&i.manifest.bytes))
        .sum();
    assert_eq!(
        art["size"],
        index.manifest.size() as u64 + children_size,
        "an index's size is its own bytes plus its children's sizes: {art:#}"
    );
    let refs = art["references"]
        .as_array()
        .unwrap_or_else(|| panic!("no references: {art:#}"));
    assert_eq!(refs.len(), 2, "{art:#}");
    for (r, image) in refs.iter().zip(&index.images) {
        assert_eq!(r["child_digest"], image.manifest.digest.as_str(), "{art:#}");
        assert_eq!(
            r["platform"]["architecture"],
            image.architecture.as_str(),
            "{art:#}"
        );
        assert_eq!(r["platform"]["os"], "linux", "{art:#}");
        assert_eq!(r["parent_id"], art["id"], "{art:#}");
        // A child by digest: an IMAGE of its own platform, untagged.
        let child = artifact(&reg, "multi", &image.manifest.digest);
        assert_eq!(child["digest"], image.manifest.digest.as_str(), "{child:#}");
        assert_eq!(
            r["child_id"], child["id"],
            "child_id is the child's id: {child:#}"
        );
        assert_eq!(child["type"], "IMAGE", "{child:#}");
        assert_eq!(child["manifest_media_type"], oci::OCI_MANIFEST, "{child:#}");
        assert_eq!(
            child["extra_attrs"]["architecture"],
            image.architecture.as_str(),
            "{child:#}"
        );
        assert_eq!(tag_names(&child), Vec::<String>::new(), "{child:#}");
        assert_eq!(
            child["size"],
            manifest_size(&image.manifest.bytes),
            "{child:#}"
        );
    }
    print_table(&[Row::of(
        "skopeo",
        "OCI index amd64+arm64 (copy --all)",
        &format!("multi:v1 {}", &index.manifest.digest[..19]),
        &art,
    )]);
}

/// A Helm-shaped chart pushed with oras: a CHART whose `extra_attrs` are
/// the chart's metadata and whose additions are files of the archive.
#[test]
fn oras_helm_chart() {
    let Some(reg) = start("oras_helm_chart") else {
        return;
    };
    require_oras_sdk();
    let work = berth_e2e::tempdir("berth-e2e-artifact-chart.");
    let nonce = Rng::new().hex(12);
    let chart_meta = json!({
        "name": "mychart",
        "version": "0.1.0",
        "apiVersion": "v2",
        "appVersion": "1.16.0",
        "description": "A Helm chart for Berth's e2e tests",
        "type": "application",
    });
    let chart_yaml = "apiVersion: v2\nname: mychart\nversion: 0.1.0\nappVersion: \"1.16.0\"\n\
                      description: A Helm chart for Berth's e2e tests\ntype: application\n";
    let values = format!("replicaCount: 2\nimage:\n  repository: nginx\n  tag: \"{nonce}\"\n");
    let readme = format!("# mychart\n\nA chart pushed by the e2e tests ({nonce}).\n");
    let tgz = oci::gzip_stored(&oci::tar(&[
        TarEntry::Dir("mychart/".to_owned()),
        TarEntry::File(
            "mychart/Chart.yaml".to_owned(),
            chart_yaml.as_bytes().to_vec(),
        ),
        TarEntry::File(
            "mychart/values.yaml".to_owned(),
            values.clone().into_bytes(),
        ),
        TarEntry::File("mychart/README.md".to_owned(), readme.clone().into_bytes()),
        TarEntry::Dir("mychart/templates/".to_owned()),
        TarEntry::File(
            "mychart/templates/NOTES.txt".to_owned(),
            b"Thank you for installing {{ .Chart.Name }}.\n".to_vec(),
        ),
    ]));
    let chart_path = write(work.path(), "mychart-0.1.0.tgz", &tgz);
    let config_path = write(
        work.path(),
        "config.json",
        &serde_json::to_vec(&chart_meta).expect("JSON serializes"),
    );
    let pushed = oras(&reg, "push-oras", "mychart")
        .args(["--tag", "0.1.0", "--config-media-type", HELM_CONFIG])
        .arg("--config")
        .arg(&config_path)
        .args(["--layer-media-type", HELM_CHART])
        .arg("--file")
        .arg(&chart_path)
        .ok()
        .json();
    let digest = digest_field(&pushed);

    let list = listing(&reg, "mychart");
    assert_eq!(list.len(), 1, "{list:#?}");
    let art = artifact(&reg, "mychart", "0.1.0");
    assert_eq!(art["digest"], digest.as_str(), "{art:#}");
    assert_eq!(art["type"], "CHART", "{art:#}");
    assert_eq!(art["media_type"], HELM_CONFIG, "{art:#}");
    assert_eq!(art["manifest_media_type"], oci::OCI_MANIFEST, "{art:#}");
    assert_eq!(tag_names(&art), ["0.1.0"], "{art:#}");
    for key in ["name", "version", "apiVersion", "description"] {
        assert_eq!(
            art["extra_attrs"][key], chart_meta[key],
            "extra_attrs.{key} should be the chart's: {art:#}"
        );
    }
    let got = follow_addition(&reg, &art, "values.yaml");
    assert_eq!(got.body_str(), values, "values.yaml:\n{got}");
    let got = follow_addition(&reg, &art, "readme.md");
    assert_eq!(got.body_str(), readme, "readme.md:\n{got}");
    assert!(
        art["addition_links"].get("build_history").is_none(),
        "a chart has no build history: {art:#}"
    );
    print_table(&[Row::of(
        "oras",
        "Helm chart (helm config + chart tgz)",
        &format!("mychart:0.1.0 {}", &digest[..19]),
        &art,
    )]);
}
