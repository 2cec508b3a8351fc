//! Stock docker (a private dockerd) pushing and pulling a big image.
//!
//! This file holds a single test so one dockerd serves the whole binary.

use std::time::Instant;

use berth_e2e::dockerd::Dockerd;
use berth_e2e::http;
use berth_e2e::oci;
use berth_e2e::{Registry, require_tools, skip_requested};

/// Size of the incompressible file in the big image: just over 100 MiB, and
/// not a multiple of any chunk size a client or server might use.
const BIG_FILE_SIZE: u64 = 100 * 1024 * 1024 + 12_345;

#[test]
fn push_and_pull_100mb_incompressible_layer() {
    if skip_requested("push_and_pull_100mb_incompressible_layer") {
        return;
    }
    require_tools(&["dockerd", "containerd", "curl"]);
    let reg = Registry::start();
    reg.ensure_project("e2e");
    let docker = Dockerd::start();
    docker.login(&reg);
    let work = berth_e2e::tempdir("berth-e2e-docker.");

    let image = reg.image("e2e/big:1");
    let built_id = docker.build_random_image(work.path(), &image, BIG_FILE_SIZE);
    let pushed_digest = docker.push(&image);

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
    let pulled = docker.inspect(&image);
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
    eprintln!("image {built_id}, manifest {pushed_digest}");
}
