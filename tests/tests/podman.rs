//! podman (as root, private vfs storage) pulling and pushing.

use berth_e2e::containers::ContainersEnv;
use berth_e2e::oci::{self, Image, Index, OciLayout};
use berth_e2e::rng::Rng;
use berth_e2e::{Cmd, Registry, require_tools, skip_requested};
use serde_json::Value;

struct Setup {
    reg: Registry,
    env: ContainersEnv,
    work: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    if skip_requested(test) {
        return None;
    }
    require_tools(&["podman", "skopeo"]);
    let reg = Registry::start();
    // The repositories live in project `e2e`; skopeo and podman log in as
    // the admin (on Berth's targets).
    reg.ensure_project("e2e");
    let env = ContainersEnv::new(&[reg.host()]);
    env.login(&reg);
    Some(Setup {
        reg,
        env,
        work: berth_e2e::tempdir("berth-e2e-podman."),
    })
}

impl Setup {
    /// Seeds the registry with skopeo from an OCI layout holding `v1`.
    fn seed(&self, layout: &OciLayout, dest: &str, all: bool) {
        let mut cmd =
            self.env
                .skopeo()
                .args(["copy", "--preserve-digests", "--dest-tls-verify=false"]);
        if all {
            cmd = cmd.arg("--all");
        }
        cmd.arg(layout.reference("v1"))
            .arg(format!("docker://{}", self.reg.image(dest)))
            .ok();
    }

    fn podman(&self) -> Cmd {
        self.env.podman()
    }

    fn pull(&self, image: &str, extra: &[&str]) {
        self.podman()
            .args(["pull", "--tls-verify=false", "--quiet"])
            .arg("--signature-policy")
            .arg(self.env.policy())
            .args(extra)
            .arg(image)
            .ok();
    }

    fn inspect(&self, image: &str) -> Value {
        let out = self.podman().args(["image", "inspect", image]).ok();
        let json = out.json();
        json.get(0)
            .cloned()
            .unwrap_or_else(|| panic!("podman image inspect printed no image:\n{out}"))
    }

    fn image_count(&self) -> usize {
        let out = self.podman().args(["images", "--quiet", "--no-trunc"]).ok();
        out.stdout_str()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }
}

fn repo_digests(inspect: &Value) -> Vec<String> {
    inspect["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn pull_retag_push_rmi_pull_roundtrip() {
    let Some(s) = setup("pull_retag_push_rmi_pull_roundtrip") else {
        return;
    };
    let mut rng = Rng::new();
    let image = Image::random("amd64", &mut rng);
    let mut layout = OciLayout::create(&s.work.path().join("src"));
    layout.add_image(&image, "v1");
    s.seed(&layout, "e2e/podman-src:v1", false);

    let src = s.reg.image("e2e/podman-src:v1");
    let dst = s.reg.image("e2e/podman-dst:v1");
    s.pull(&src, &[]);
    let pulled = s.inspect(&src);
    // podman's image ID is the config digest.
    assert_eq!(pulled["Id"], image.config.hex(), "{pulled:#}");
    assert!(
        repo_digests(&pulled).contains(&format!(
            "{}@{}",
            s.reg.image("e2e/podman-src"),
            image.manifest.digest
        )),
        "RepoDigests should name the pushed manifest digest: {pulled:#}"
    );

    s.podman().args(["tag", &src, &dst]).ok();
    let digest_file = s.work.path().join("pushed.digest");
    s.podman()
        .args(["push", "--tls-verify=false", "--quiet"])
        .arg("--signature-policy")
        .arg(s.env.policy())
        .arg("--digestfile")
        .arg(&digest_file)
        .arg(&dst)
        .ok();
    let pushed_digest = std::fs::read_to_string(&digest_file)
        .expect("podman push --digestfile wrote no file")
        .trim()
        .to_owned();
    assert!(pushed_digest.starts_with("sha256:"), "{pushed_digest:?}");

    // The registry serves exactly the manifest podman says it pushed.
    let raw = s
        .env
        .skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{dst}"))
        .ok()
        .stdout;
    assert_eq!(oci::digest_of(&raw), pushed_digest);

    s.podman().args(["rmi", &src, &dst]).ok();
    assert_eq!(s.image_count(), 0, "rmi should leave no image behind");

    s.pull(&dst, &[]);
    let again = s.inspect(&dst);
    assert_eq!(
        again["Id"], pulled["Id"],
        "image ID changed across push/pull"
    );
    assert!(
        repo_digests(&again).contains(&format!(
            "{}@{pushed_digest}",
            s.reg.image("e2e/podman-dst")
        )),
        "RepoDigests should name the digest podman pushed: {again:#}"
    );
}

#[test]
fn pull_from_index_selects_requested_platform() {
    let Some(s) = setup("pull_from_index_selects_requested_platform") else {
        return;
    };
    let mut rng = Rng::new();
    let index = Index::random(&["amd64", "arm64"], &mut rng);
    let mut layout = OciLayout::create(&s.work.path().join("src"));
    layout.add_index(&index, "v1");
    s.seed(&layout, "e2e/podman-multi:v1", true);

    let reference = s.reg.image("e2e/podman-multi:v1");
    for image in &index.images {
        s.pull(&reference, &["--arch", &image.architecture]);
        let pulled = s.inspect(&reference);
        assert_eq!(pulled["Id"], image.config.hex(), "{pulled:#}");
        assert_eq!(
            pulled["Architecture"],
            image.architecture.as_str(),
            "{pulled:#}"
        );
    }
}
