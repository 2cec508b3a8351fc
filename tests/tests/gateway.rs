//! The local serverless stack with its upload gateway
//! (`BERTH_E2E_TARGET=berth-stack`; every test here is skipped on other
//! targets): clients talk to `berth stack` (API Gateway + Lambda emulation,
//! with AWS's 10 MiB / 6 MiB limits), upload `Location`s send them to the
//! upload gateway with a signed `_state` token, and blob pulls are redirects
//! to presigned URLs on the AWS emulator.
//!
//! What went where is read from the two processes' request logs (method,
//! path, status; never query strings).

use std::time::Instant;

use berth_e2e::containers::ContainersEnv;
use berth_e2e::dockerd::Dockerd;
use berth_e2e::http;
use berth_e2e::oci::{self, Index, OciLayout};
use berth_e2e::registry::{LoggedRequest, names};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, require_tools, skip_requested};

/// Size of the incompressible file in the big image: over 200 MiB (so the
/// gzip'd layer is too), far above Lambda's 6 MiB payload cap, and not a
/// multiple of any chunk size.
const BIG_FILE_SIZE: u64 = 200 * 1024 * 1024 + 54_321;

/// The largest body one Lambda invocation takes (`InvocationLimitLayer`,
/// infra/README.md: 4,706,304 bytes): a body just above it still fits in
/// the 6 MiB event, so the function itself answers.
const MAX_INVOCATION_BODY: usize = 4_706_304;

/// Starts the stack, or returns `None` (saying so) on any other target.
fn start_stack(test: &str) -> Option<Registry> {
    if skip_requested(test) {
        return None;
    }
    let target = Target::from_env();
    if target != Target::BerthStack {
        eprintln!("SKIPPED {test}: runs on BERTH_E2E_TARGET=berth-stack only (target: {target})");
        return None;
    }
    require_tools(&["curl"]);
    let reg = Registry::start_target(target);
    // Every repository here lives in project `e2e`.
    reg.ensure_project("e2e");
    Some(reg)
}

/// The registry's and the gateway's request logs.
fn requests(reg: &Registry) -> (Vec<LoggedRequest>, Vec<LoggedRequest>) {
    (reg.requests(names::REGISTRY), reg.requests(names::GATEWAY))
}

fn list(requests: &[LoggedRequest]) -> String {
    requests
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every upload request of `repo` went to the gateway: the stack saw only
/// the `POST`s that start sessions (at least `min_uploads` of them, all
/// `202`), the gateway saw `PATCH`es and `PUT`s (all successful), and the
/// gateway served nothing but upload sessions (and `/v2/`).
fn assert_uploads_went_to_gateway(reg: &Registry, repo: &str, min_uploads: usize) {
    let (stack, gateway) = requests(reg);
    let context = format!(
        "--- stack requests ---\n{}\n--- gateway requests ---\n{}",
        list(&stack),
        list(&gateway)
    );
    let start = format!("/v2/{repo}/blobs/uploads/");
    let posts: Vec<&LoggedRequest> = stack
        .iter()
        .filter(|r| r.method == "POST" && r.path == start)
        .collect();
    assert!(
        posts.len() >= min_uploads && posts.iter().all(|r| r.status == 202),
        "the stack should have started at least {min_uploads} upload sessions (POST {start} 202):\n{context}"
    );
    assert!(
        !stack
            .iter()
            .any(|r| r.is_upload() && (r.method == "PATCH" || r.method == "PUT")),
        "no upload PATCH/PUT should reach the stack:\n{context}"
    );
    let patches = gateway
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with(&start))
        .count();
    let puts = gateway
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with(&start))
        .count();
    assert!(
        patches >= min_uploads && puts >= min_uploads,
        "the gateway should have taken the PATCHes and PUTs of {min_uploads}+ uploads:\n{context}"
    );
    eprintln!(
        "{repo}: the stack started {} upload sessions and took no upload PATCH/PUT; \
         the gateway took {patches} PATCHes and {puts} PUTs",
        posts.len()
    );
    assert!(
        gateway
            .iter()
            .all(|r| r.path == "/v2/" || (r.is_upload() && r.status < 400)),
        "the gateway should serve only upload sessions, all successfully:\n{context}"
    );
}

/// Splits an upload `Location` on the gateway into its path-and-query
/// (`/v2/<repo>/blobs/uploads/<id>?_state=<token>`), the upload id and the
/// token.
fn split_location(reg: &Registry, location: &str) -> (String, String, String) {
    let gateway = reg.gateway_url("").expect("the stack has a gateway");
    let rest = location.strip_prefix(&gateway).unwrap_or_else(|| {
        panic!("the upload Location {location:?} should point at the gateway {gateway}")
    });
    let (path, query) = rest.split_once('?').unwrap_or_else(|| {
        panic!("the upload Location {location:?} should carry a `_state` token")
    });
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("_state="))
        .unwrap_or_else(|| panic!("no `_state` in {location:?}"))
        .to_owned();
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    (rest.to_owned(), id, token)
}

/// `POST /v2/<repo>/blobs/uploads/` on the stack; returns the `Location`.
fn start_upload(reg: &Registry, repo: &str) -> String {
    let started = http::post(&reg.url(&format!("/v2/{repo}/blobs/uploads/"))).send();
    started.expect_status(202);
    started
        .header("Location")
        .unwrap_or_else(|| panic!("upload POST must return Location:\n{started}"))
        .to_owned()
}

#[test]
fn docker_pushes_a_200mb_layer_through_the_upload_gateway() {
    let Some(reg) = start_stack("docker_pushes_a_200mb_layer_through_the_upload_gateway") else {
        return;
    };
    require_tools(&["dockerd", "containerd"]);
    let docker = Dockerd::start();
    docker.login(&reg);
    let work = berth_e2e::tempdir("berth-e2e-gateway-docker.");
    let repo = "e2e/gw-big";
    let image = reg.image(&format!("{repo}:1"));

    let built_id = docker.build_random_image(work.path(), &image, BIG_FILE_SIZE);
    // Stock docker sends each layer as one PATCH (no Content-Range): the
    // 200 MiB one cannot go through the stack (10 MiB API Gateway cap,
    // 6 MiB Lambda cap); the POST answered by the stack sends it to the
    // gateway.
    let pushed_digest = docker.push(&image);

    let manifest = http::get(&reg.url(&format!("/v2/{repo}/manifests/1")))
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
    let head = http::head(&reg.url(&format!("/v2/{repo}/blobs/{layer_digest}"))).send();
    head.expect_status(200);
    assert_eq!(
        head.header("Content-Length"),
        Some(layer_sizes[0].to_string().as_str()),
        "{head}"
    );

    // Layer and config: two uploads, both started on the stack and carried
    // by the gateway; the manifest PUT went to the stack.
    assert_uploads_went_to_gateway(&reg, repo, 2);
    let (stack, _) = requests(&reg);
    assert!(
        stack.iter().any(|r| r.method == "PUT"
            && r.path == format!("/v2/{repo}/manifests/1")
            && r.status == 201),
        "the manifest PUT should have gone to the stack:\n{}",
        list(&stack)
    );
    let stack_log = reg.log(names::REGISTRY).unwrap_or_default();
    assert!(
        !stack_log.contains("over API Gateway's limit")
            && !stack_log.contains("invocation refused"),
        "the stack should not have been sent an over-limit body during the push:\n{}",
        reg.log_tail()
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
    let want_repo_digest = format!("{}@{pushed_digest}", reg.image(repo));
    assert!(
        pulled["RepoDigests"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == want_repo_digest.as_str())),
        "RepoDigests should contain {want_repo_digest}: {pulled:#}"
    );
    // The 200 MiB layer came back as a redirect to the emulator, not as a
    // Lambda response (which stops at 6 MiB).
    let (stack, _) = requests(&reg);
    let layer_path = format!("/v2/{repo}/blobs/{layer_digest}");
    assert!(
        stack
            .iter()
            .any(|r| r.method == "GET" && r.path == layer_path && r.status == 307),
        "the layer GET should have been a 307 from the stack:\n{}",
        list(&stack)
    );
    eprintln!("image {built_id}, manifest {pushed_digest}, layer {layer_digest}");
}

#[test]
fn skopeo_copies_a_multi_arch_index_through_the_stack() {
    let Some(reg) = start_stack("skopeo_copies_a_multi_arch_index_through_the_stack") else {
        return;
    };
    require_tools(&["skopeo"]);
    let env = ContainersEnv::new(&[reg.host()]);
    env.login(&reg);
    let work = berth_e2e::tempdir("berth-e2e-gateway-skopeo.");
    let mut rng = Rng::new();
    let repo = "e2e/gw-multi";
    let index = Index::random(&["amd64", "arm64"], &mut rng);
    let mut layout = OciLayout::create(&work.path().join("src"));
    layout.add_index(&index, "v1");
    let dest = format!("docker://{}", reg.image(&format!("{repo}:v1")));
    env.skopeo()
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(layout.reference("v1"))
        .arg(&dest)
        .ok();

    let inspect_raw = |reference: &str| {
        env.skopeo()
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}", reg.image(reference)))
            .ok()
            .stdout
    };
    assert!(
        inspect_raw(&format!("{repo}:v1")) == index.manifest.bytes,
        "the index should come back byte for byte"
    );
    let mut blobs = 0;
    for image in &index.images {
        assert!(
            inspect_raw(&format!("{repo}@{}", image.manifest.digest)) == image.manifest.bytes,
            "the {} manifest should come back byte for byte",
            image.architecture
        );
        for blob in image.blobs() {
            blobs += 1;
            let got = http::get(&reg.url(&format!("/v2/{repo}/blobs/{}", blob.digest)))
                .follow()
                .send();
            got.expect_status(200);
            assert!(
                got.body == blob.bytes,
                "blob {} differs after the round trip",
                blob.digest
            );
        }
    }
    assert_uploads_went_to_gateway(&reg, repo, blobs);

    // And back into a layout: the same index and children.
    let back = work.path().join("back");
    env.skopeo()
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
        ])
        .arg(&dest)
        .arg(format!("oci:{}:copied", back.display()))
        .ok();
    let desc = oci::resolve_tag(&back, "copied");
    assert_eq!(desc["digest"], index.manifest.digest.as_str(), "{desc}");
    for image in &index.images {
        assert!(oci::read_blob(&back, &image.manifest.digest) == image.manifest.bytes);
    }
}

/// A body the stack cannot take gets a clear `413` from whichever layer
/// refuses it (the function, Lambda, or API Gateway, as in AWS), the stack
/// keeps serving, and the upload session is unharmed.
#[test]
fn over_limit_patch_to_the_stack_is_a_clear_413() {
    let Some(reg) = start_stack("over_limit_patch_to_the_stack_is_a_clear_413") else {
        return;
    };
    let repo = "e2e/gw-limits";
    let mut rng = Rng::new();
    let location = start_upload(&reg, repo);
    let (path_and_query, id, _) = split_location(&reg, &location);
    let on_stack = reg.url(&path_and_query);

    // Just over what one invocation takes: the function's own OCI error.
    let resp = http::patch(&on_stack)
        .body(rng.bytes(MAX_INVOCATION_BODY + 4_000))
        .send();
    resp.expect_status(413);
    assert_eq!(resp.error_code().as_deref(), Some("SIZE_INVALID"), "{resp}");
    let message = resp.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("upload gateway") && message.contains("chunk"),
        "the 413 should tell the client to use chunks or the upload gateway:\n{resp}"
    );

    // Over Lambda's 6 MiB event (base64 makes it 8 MiB): Lambda's answer.
    let resp = http::patch(&on_stack)
        .body(rng.bytes(6 * 1024 * 1024))
        .send();
    resp.expect_status(413);
    assert_eq!(resp.json()["message"], "Request Entity Too Large", "{resp}");

    // Over API Gateway's 10 MiB: its plain-text answer, after the body was
    // read (so the client sees the 413, not a reset connection).
    let resp = http::patch(&on_stack)
        .body(rng.bytes(12 * 1024 * 1024))
        .send();
    resp.expect_status(413);
    assert_eq!(
        resp.body_str(),
        "HTTP content length exceeded 10485760 bytes.",
        "{resp}"
    );

    // The stack still serves, and the session is where it was: a chunk
    // through the stack, one through the gateway, then the PUT.
    http::get(&reg.url("/v2/")).send().expect_status(200);
    let status = http::get(&location).send();
    status.expect_status(204);
    assert_eq!(
        status.header("Docker-Upload-UUID"),
        Some(id.as_str()),
        "{status}"
    );
    assert_eq!(status.header("Range"), Some("0-0"), "{status}");
    let first = rng.bytes(1024 * 1024);
    let second = rng.bytes(1024 * 1024 + 17);
    let resp = http::patch(&on_stack)
        .header("Content-Range", &format!("0-{}", first.len() - 1))
        .body(first.clone())
        .send();
    resp.expect_status(202);
    let next = resp
        .header("Location")
        .unwrap_or_else(|| panic!("PATCH must return Location:\n{resp}"))
        .to_owned();
    split_location(&reg, &next);
    let resp = http::patch(&next)
        .header(
            "Content-Range",
            &format!("{}-{}", first.len(), first.len() + second.len() - 1),
        )
        .body(second.clone())
        .send();
    resp.expect_status(202);
    let last = resp.header("Location").unwrap_or_default().to_owned();
    let whole = [first, second].concat();
    let digest = oci::digest_of(&whole);
    http::put(&format!("{last}&digest={digest}"))
        .send()
        .expect_status(201);
    let got = http::get(&reg.url(&format!("/v2/{repo}/blobs/{digest}")))
        .follow()
        .send();
    got.expect_status(200);
    assert!(
        got.body == whole,
        "the blob differs after the refused PATCHes"
    );
}

/// The gateway serves upload sessions only, and only with the token the
/// stack issued for that repository and upload; tokens never reach a log.
#[test]
fn gateway_serves_only_signed_upload_sessions() {
    let Some(reg) = start_stack("gateway_serves_only_signed_upload_sessions") else {
        return;
    };
    let repo = "e2e/gw-token";
    let first = start_upload(&reg, repo);
    let second = start_upload(&reg, repo);
    let (path_and_query, id, token) = split_location(&reg, &first);
    let (_, _, other_token) = split_location(&reg, &second);
    let path = path_and_query.split('?').next().unwrap_or_default();
    let gw = |p: &str| reg.gateway_url(p).expect("the stack has a gateway");

    http::get(&gw("/v2/")).send().expect_status(200);
    for (method, p) in [
        ("GET", format!("/v2/{repo}/manifests/latest")),
        ("GET", format!("/v2/{repo}/tags/list")),
        ("POST", format!("/v2/{repo}/blobs/uploads/")),
    ] {
        let resp = http::Request::new(method, &gw(&p)).send();
        resp.expect_status(404);
    }

    let mut tampered = token.clone();
    let flipped = if tampered.ends_with('A') { 'B' } else { 'A' };
    tampered.pop();
    tampered.push(flipped);
    let other_repo_path = path.replace(repo, "e2e/gw-other");
    for (what, url) in [
        ("no token", gw(path)),
        (
            "another upload's token",
            gw(&format!("{path}?_state={other_token}")),
        ),
        ("a tampered token", gw(&format!("{path}?_state={tampered}"))),
        (
            "the token on another repository",
            gw(&format!("{other_repo_path}?_state={token}")),
        ),
    ] {
        let resp = http::patch(&url).body(vec![1u8; 10]).send();
        assert_eq!(resp.status, 401, "{what}: expected 401:\n{resp}");
        assert_eq!(
            resp.error_code().as_deref(),
            Some("UNAUTHORIZED"),
            "{what}:\n{resp}"
        );
    }

    let resp = http::patch(&first).body(vec![7u8; 10]).send();
    resp.expect_status(202);
    assert_eq!(resp.header("Range"), Some("0-9"), "{resp}");
    assert_eq!(
        resp.header("Docker-Upload-UUID"),
        Some(id.as_str()),
        "{resp}"
    );

    for name in [names::REGISTRY, names::GATEWAY] {
        let log = reg.log(name).unwrap_or_default();
        assert!(
            !log.contains(&token) && !log.contains(&other_token),
            "upload tokens must never be logged ({name}):\n{log}"
        );
    }
}
