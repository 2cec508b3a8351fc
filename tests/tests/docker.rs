//! Stock docker (a private dockerd) pushing and pulling a big image.
//!
//! This file holds a single test so one dockerd serves the whole binary.

use std::time::Instant;

use berth_e2e::dockerd::Dockerd;
use berth_e2e::http;
use berth_e2e::oci;
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, require_tools, skip_requested};
use serde_json::Value;

/// Size of the incompressible file in the big image: just over 100 MiB, and
/// not a multiple of any chunk size a client or server might use.
const BIG_FILE_SIZE: u64 = 100 * 1024 * 1024 + 12_345;

fn inspect(docker: &Dockerd, image: &str) -> Value {
    let out = docker.docker().args(["image", "inspect", image]).ok();
    let json = out.json();
    json.get(0)
        .cloned()
        .unwrap_or_else(|| panic!("docker image inspect printed no image:\n{out}"))
}

#[test]
fn push_and_pull_100mb_incompressible_layer() {
    if skip_requested("push_and_pull_100mb_incompressible_layer") {
        return;
    }
    require_tools(&["dockerd", "containerd", "curl"]);
    let reg = Registry::start();
    let docker = Dockerd::start();
    let work = berth_e2e::tempdir("berth-e2e-docker.");

    // Build context: FROM scratch + COPY of a fresh random file.
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).expect("cannot create the build context");
    let t = Instant::now();
    let file_sha = Rng::new()
        .write_file(&context.join("big.bin"), BIG_FILE_SIZE)
        .expect("cannot write the random file");
    eprintln!("wrote {BIG_FILE_SIZE} random bytes in {:?}", t.elapsed());
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\n",
    )
    .expect("cannot write the Dockerfile");

    let image = reg.image("e2e/big:1");
    let iid_file = work.path().join("iid");
    docker
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--tag", &image, "--iidfile"])
        .arg(&iid_file)
        .arg(&context)
        .ok();
    let built_id = std::fs::read_to_string(&iid_file)
        .expect("docker build wrote no --iidfile")
        .trim()
        .to_owned();
    let built = inspect(&docker, &image);
    assert_eq!(built["Id"], built_id.as_str(), "{built:#}");
    assert!(
        built["Size"].as_u64().unwrap_or(0) >= BIG_FILE_SIZE,
        "the image should hold the big file: {built:#}"
    );

    let t = Instant::now();
    let push = docker.docker().args(["push", &image]).ok();
    eprintln!("docker push took {:?}", t.elapsed());
    let pushed_digest = push
        .stdout_str()
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no `digest:` in docker push output:\n{push}"));
    assert!(pushed_digest.starts_with("sha256:"), "{push}");

    // The registry serves the pushed manifest under that digest, and its one
    // layer is the big (incompressible, so still >= 100 MiB gzip'd) file.
    let manifest = http::get(&reg.url("/v2/e2e/big/manifests/1"))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    manifest.expect_status(200);
    assert_eq!(oci::digest_of(&manifest.body), pushed_digest, "{manifest}");
    let layers = manifest.json()["layers"].clone();
    let layer_sizes: Vec<u64> = layers
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["size"].as_u64())
        .collect();
    assert_eq!(layer_sizes.len(), 1, "expected one layer: {manifest}");
    assert!(
        layer_sizes[0] >= BIG_FILE_SIZE,
        "layer too small: {manifest}"
    );
    let layer_digest = layers[0]["digest"].as_str().unwrap_or_default().to_owned();
    let head = http::head(&reg.url(&format!("/v2/e2e/big/blobs/{layer_digest}")))
        .follow()
        .send();
    head.expect_status(200);
    assert_eq!(
        head.header("Content-Length"),
        Some(layer_sizes[0].to_string().as_str()),
        "{head}"
    );

    docker.docker().args(["rmi", &image]).ok();
    docker.docker().args(["image", "inspect", &image]).fails();

    let t = Instant::now();
    docker.docker().args(["pull", &image]).ok();
    eprintln!("docker pull took {:?}", t.elapsed());
    let pulled = inspect(&docker, &image);
    assert_eq!(
        pulled["Id"],
        built_id.as_str(),
        "image ID changed: {pulled:#}"
    );
    let want_repo_digest = format!("{}@{pushed_digest}", reg.image("e2e/big"));
    assert!(
        pulled["RepoDigests"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == want_repo_digest.as_str())),
        "RepoDigests should contain {want_repo_digest}: {pulled:#}"
    );
    eprintln!("big file sha256 {file_sha}, image {built_id}, manifest {pushed_digest}");
}
