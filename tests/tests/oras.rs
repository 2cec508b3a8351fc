//! OCI artifacts and referrers through the oras Python SDK
//! (driven by `tests/scripts/oras_e2e.py`), checked with raw HTTP.

use std::path::{Path, PathBuf};

use berth_e2e::http;
use berth_e2e::oci;
use berth_e2e::rng::Rng;
use berth_e2e::{Cmd, Registry, require_tools, skip_requested};
use serde_json::Value;

const BUNDLE_TYPE: &str = "application/vnd.berth.e2e.bundle.v1";
const SIGNATURE_TYPE: &str = "application/vnd.berth.e2e.signature.v1";
const SBOM_CONFIG_TYPE: &str = "application/vnd.berth.e2e.sbom.config.v1+json";
const REPO: &str = "e2e/artifacts";

fn python() -> String {
    std::env::var("BERTH_E2E_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The oras script as the registry's admin (no credentials where none are
/// needed).
fn oras_script(reg: &Registry, command: &str) -> Cmd {
    let cmd = oras_script_anonymous(reg, command);
    if reg.requires_auth() {
        cmd.env("ORAS_E2E_USERNAME", reg.admin_user())
            .env("ORAS_E2E_PASSWORD", reg.admin_password())
    } else {
        cmd
    }
}

fn oras_script_anonymous(reg: &Registry, command: &str) -> Cmd {
    Cmd::new(python())
        .arg(berth_e2e::scripts_dir().join("oras_e2e.py"))
        .arg(command)
        .args(["--registry", &reg.host(), "--repo", REPO])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("ORAS_E2E_USERNAME")
        .env_remove("ORAS_E2E_PASSWORD")
}

fn require_oras_sdk() {
    let out = Cmd::new(python())
        .args(["-c", "import oras.version; print(oras.version.__version__)"])
        .run();
    assert!(
        out.status.success(),
        "the `oras` Python package is not importable by {}; run `tests/install-deps` (as root)\n{out}",
        python()
    );
    eprintln!("oras Python SDK {}", out.stdout_str().trim());
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("cannot write an artifact file");
    path
}

fn get_manifest(reg: &Registry, reference: &str) -> http::Response {
    let resp = http::get(&reg.url(&format!("/v2/{REPO}/manifests/{reference}")))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    resp.expect_status(200);
    resp
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {value}"))
}

#[test]
fn artifacts_with_subject_push_pull_and_referrers() {
    if skip_requested("artifacts_with_subject_push_pull_and_referrers") {
        return;
    }
    require_tools(&["curl", &python()]);
    require_oras_sdk();
    let reg = Registry::start();
    reg.ensure_project("e2e");
    let work = berth_e2e::tempdir("berth-e2e-oras.");
    let mut rng = Rng::new();

    // 1. The subject: an artifact of two files with an explicit artifactType.
    let files = work.path().join("files");
    std::fs::create_dir_all(&files).expect("cannot create the files dir");
    let readme = format!("berth e2e artifact {}\n", rng.hex(32)).into_bytes();
    let data = rng.bytes(50_000);
    let readme_path = write(&files, "README.txt", &readme);
    let data_path = write(&files, "data.bin", &data);
    let pushed = oras_script(&reg, "push-artifact")
        .args(["--tag", "v1", "--artifact-type", BUNDLE_TYPE])
        .arg("--file")
        .arg(&readme_path)
        .arg("--file")
        .arg(&data_path)
        .ok()
        .json();
    let subject_digest = str_field(&pushed, "digest").to_owned();
    let subject_size = pushed["size"].as_u64().expect("size");

    let subject = get_manifest(&reg, "v1");
    assert_eq!(oci::digest_of(&subject.body), subject_digest, "{subject}");
    assert_eq!(subject.json()["artifactType"], BUNDLE_TYPE, "{subject}");

    // 2. A referrer pushed by oras' own push(), typed by its config media type.
    let sbom = format!("{{\"sbom\":\"{}\"}}", rng.hex(16)).into_bytes();
    let sbom_path = write(&files, "sbom.json", &sbom);
    let sbom_config = write(&files, "sbom-config.json", br#"{"tool":"berth-e2e"}"#);
    let sbom_pushed = oras_script(&reg, "push-oras")
        .args(["--tag", "sbom", "--config-media-type", SBOM_CONFIG_TYPE])
        .arg("--config")
        .arg(&sbom_config)
        .arg("--file")
        .arg(&sbom_path)
        .args(["--subject-digest", &subject_digest])
        .args(["--subject-size", &subject_size.to_string()])
        .ok()
        .json();
    let sbom_manifest = get_manifest(&reg, "sbom");
    let sbom_digest = oci::digest_of(&sbom_manifest.body);
    if let Some(reported) = sbom_pushed["digest"].as_str() {
        assert_eq!(reported, sbom_digest, "{sbom_pushed}");
    }
    let sbom_json = sbom_manifest.json();
    assert_eq!(
        sbom_json["subject"]["digest"],
        subject_digest.as_str(),
        "{sbom_manifest}"
    );
    assert_eq!(
        sbom_json["config"]["mediaType"], SBOM_CONFIG_TYPE,
        "{sbom_manifest}"
    );

    // 3. A referrer with an explicit artifactType, pushed by digest (no tag).
    let sig = rng.bytes(512);
    let sig_path = write(&files, "signature.bin", &sig);
    let sig_pushed = oras_script(&reg, "push-artifact")
        .args(["--artifact-type", SIGNATURE_TYPE])
        .arg("--file")
        .arg(&sig_path)
        .args(["--subject-digest", &subject_digest])
        .args(["--subject-size", &subject_size.to_string()])
        .ok()
        .json();
    let sig_digest = str_field(&sig_pushed, "digest").to_owned();
    let sig_manifest = get_manifest(&reg, &sig_digest);
    assert_eq!(oci::digest_of(&sig_manifest.body), sig_digest);
    assert_eq!(
        sig_manifest.json()["subject"]["digest"],
        subject_digest.as_str()
    );

    // 4. Pull both tagged artifacts back with oras and compare the files.
    let out = work.path().join("pulled");
    let pulled = oras_script(&reg, "pull")
        .args(["--ref", "v1", "--outdir"])
        .arg(&out)
        .ok()
        .json();
    assert_eq!(
        pulled["files"].as_array().map(Vec::len),
        Some(2),
        "{pulled}"
    );
    assert!(std::fs::read(out.join("README.txt")).expect("README.txt pulled") == readme);
    assert!(std::fs::read(out.join("data.bin")).expect("data.bin pulled") == data);
    let out_sbom = work.path().join("pulled-sbom");
    oras_script(&reg, "pull")
        .args(["--ref", "sbom", "--outdir"])
        .arg(&out_sbom)
        .ok();
    assert!(std::fs::read(out_sbom.join("sbom.json")).expect("sbom.json pulled") == sbom);

    // 5. The referrers API (OCI distribution-spec 1.1).
    if !reg.target().supports_referrers() {
        eprintln!(
            "NOTE: referrers API assertions skipped: the {:?} target (Distribution 2.8) has no referrers API",
            reg.target()
        );
        return;
    }
    assert_eq!(
        sig_pushed["headers"]["oci-subject"],
        subject_digest.as_str(),
        "a manifest PUT with a subject must answer OCI-Subject: {sig_pushed}"
    );

    let referrers_url = reg.url(&format!("/v2/{REPO}/referrers/{subject_digest}"));
    let all = http::get(&referrers_url).send();
    all.expect_status(200);
    assert!(
        all.header("Content-Type")
            .is_some_and(|ct| ct.starts_with(oci::OCI_INDEX)),
        "referrers must be an OCI index:\n{all}"
    );
    let index = all.json();
    assert_eq!(index["mediaType"], oci::OCI_INDEX, "{all}");
    assert_eq!(index["schemaVersion"], 2, "{all}");
    let listed = index["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2, "expected the two referrers:\n{all}");
    let find = |digest: &str| {
        listed
            .iter()
            .find(|d| d["digest"] == digest)
            .cloned()
            .unwrap_or_else(|| panic!("referrer {digest} not listed:\n{all}"))
    };
    let sig_desc = find(&sig_digest);
    assert_eq!(sig_desc["artifactType"], SIGNATURE_TYPE, "{all}");
    assert_eq!(sig_desc["mediaType"], oci::OCI_MANIFEST, "{all}");
    assert_eq!(sig_desc["size"], sig_manifest.body.len(), "{all}");
    // Without artifactType the config media type stands in for it.
    let sbom_desc = find(&sbom_digest);
    assert_eq!(sbom_desc["artifactType"], SBOM_CONFIG_TYPE, "{all}");
    assert_eq!(sbom_desc["size"], sbom_manifest.body.len(), "{all}");

    let filtered = http::get(&format!("{referrers_url}?artifactType={SIGNATURE_TYPE}")).send();
    filtered.expect_status(200);
    assert_eq!(
        filtered.header("OCI-Filters-Applied"),
        Some("artifactType"),
        "{filtered}"
    );
    let only = filtered.json()["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(only.len(), 1, "{filtered}");
    assert_eq!(only[0]["digest"], sig_digest.as_str(), "{filtered}");

    // A digest nothing refers to: an empty index, never a 404.
    let nobody = oci::digest_of(b"berth-e2e: nothing refers to this");
    let empty = http::get(&reg.url(&format!("/v2/{REPO}/referrers/{nobody}"))).send();
    empty.expect_status(200);
    assert_eq!(
        empty.json()["manifests"].as_array().map(Vec::len),
        Some(0),
        "{empty}"
    );
}
