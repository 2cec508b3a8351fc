//! Proxy-cache projects end to end: Berth fronting Distribution
//! (`docker-registry`) through a project bound to a registry endpoint
//! (Harbor's `registry_id`), pulled with skopeo. The first pull fetches
//! from the upstream; the second is served with the upstream stopped;
//! concurrent first pulls of one blob fetch it from the upstream once
//! (counted in the upstream's access log).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::containers::ContainersEnv;
use berth_e2e::oci::{self, Image, OciLayout};
use berth_e2e::process::{self, Process};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, http, require_tools, skip_requested};
use serde_json::json;

/// Lets Berth reach loopback upstreams, registers `upstream_url` as an
/// endpoint and creates project `proxy` bound to it.
fn proxy_project(reg: &Registry, upstream_url: &str) {
    reg.api(
        "PUT",
        "/configurations",
        Some(&json!({"webhook_allow_private": true})),
    )
    .expect_status(200);
    let body = json!({"name": "upstream", "type": "docker-registry", "url": upstream_url, "insecure": true});
    let resp = reg.api("POST", "/registries", Some(&body));
    resp.expect_status(201);
    let id: i64 = resp
        .header("location")
        .and_then(|l| l.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no registry id in:\n{resp}"));
    let body = json!({"project_name": "proxy", "registry_id": id, "metadata": {"public": "false"}});
    reg.api("POST", "/projects", Some(&body)).expect_status(201);
    let project = reg.api("GET", "/projects/proxy", None);
    assert_eq!(project.json()["registry_id"], id, "{project}");
}

fn skopeo_copy(env: &ContainersEnv, src: &str, dest: &str) {
    env.skopeo()
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dest,
        ])
        .ok();
}

/// Pulls `image` through the cache into a new layout under `work` and
/// checks the manifest and every blob byte for byte.
fn pull_and_check(env: &ContainersEnv, reg: &Registry, work: &Path, name: &str, image: &Image) {
    let dest = OciLayout::create(&work.join(name));
    skopeo_copy(
        env,
        &format!("docker://{}", reg.image("proxy/library/app:v1")),
        &dest.reference("v1"),
    );
    let index = oci::resolve_tag(&work.join(name), "v1");
    assert_eq!(index["digest"], image.manifest.digest.as_str(), "{index}");
    let manifest = oci::read_blob(&work.join(name), &image.manifest.digest);
    assert!(manifest == image.manifest.bytes, "manifest byte for byte");
    for blob in image.blobs() {
        let got = oci::read_blob(&work.join(name), &blob.digest);
        assert!(got == blob.bytes, "blob {} byte for byte", blob.digest);
    }
}

/// Waits until the cache lists `tag` on the artifact of `repo` in
/// project `proxy` (it stores in the background as the pull goes).
fn wait_cached(reg: &Registry, repo: &str, digest: &str) {
    let path = format!(
        "/projects/proxy/repositories/{}/artifacts/{digest}?with_tag=true",
        repo.replace('/', "%252F")
    );
    let start = Instant::now();
    loop {
        let resp = reg.api("GET", &path, None);
        if resp.status == 200 {
            let tags: Vec<String> = resp.json()["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if tags.iter().any(|t| t == "v1") {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the cache never stored {repo}@{digest}: {resp}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn first_pull_fetches_and_the_second_is_served_with_the_upstream_stopped() {
    if skip_requested("first_pull_fetches_and_the_second_is_served_with_the_upstream_stopped") {
        return;
    }
    require_tools(&["skopeo"]);
    let mut upstream = Registry::start_target(Target::Distribution);
    let reg = Registry::start_target(Target::Berth);
    let env = ContainersEnv::new(&[upstream.host(), reg.host()]);
    env.login(&reg);
    let work = berth_e2e::tempdir("berth-e2e-proxy.");
    let mut rng = Rng::new();
    let image = Image::random("amd64", &mut rng);
    let mut src = OciLayout::create(&work.path().join("src"));
    src.add_image(&image, "v1");
    skopeo_copy(
        &env,
        &src.reference("v1"),
        &format!("docker://{}", upstream.image("library/app:v1")),
    );
    proxy_project(&reg, &upstream.url(""));

    pull_and_check(&env, &reg, work.path(), "first", &image);
    wait_cached(&reg, "library/app", &image.manifest.digest);
    // Cached content counts in the project's usage.
    let project = reg.api("GET", "/projects/proxy/summary", None);
    if project.status == 200 {
        let used = project.json()["quota"]["used"]["storage"].as_i64();
        assert!(used.is_none_or(|u| u > 0), "{project}");
    }

    upstream.kill_server();
    pull_and_check(&env, &reg, work.path(), "second", &image);
}

/// Distribution with its access log on, on a free port.
fn logged_distribution(dir: &Path) -> Option<Process> {
    let bin = std::env::var_os("BERTH_E2E_DISTRIBUTION_BIN").map_or_else(
        || "/usr/bin/docker-registry".into(),
        std::path::PathBuf::from,
    );
    if !bin.is_file() {
        eprintln!("SKIPPED: {} not found", bin.display());
        return None;
    }
    let port = process::free_port();
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: berth-e2e-not-a-secret
",
            dir.join("data").display()
        ),
    )
    .expect("config written");
    let mut c = Command::new(bin);
    c.arg("serve").arg(&config);
    process::env_remove_prefixed(&mut c, &["REGISTRY_"]);
    let mut group = vec![
        Process::spawn("upstream", port, c, &dir.join("upstream.log")).expect("upstream started"),
    ];
    process::wait_http(&mut group, port, "/v2/", &[200], Duration::from_secs(30))
        .expect("upstream ready");
    group.pop()
}

#[test]
fn concurrent_first_pulls_fetch_a_blob_from_the_upstream_once() {
    if skip_requested("concurrent_first_pulls_fetch_a_blob_from_the_upstream_once") {
        return;
    }
    require_tools(&["skopeo"]);
    let work = berth_e2e::tempdir("berth-e2e-proxy.");
    let Some(mut upstream) = logged_distribution(work.path()) else {
        return;
    };
    let up_host = format!("127.0.0.1:{}", upstream.port());
    let reg = Registry::start_target(Target::Berth);
    let env = ContainersEnv::new(&[up_host.clone(), reg.host()]);
    env.login(&reg);
    let mut rng = Rng::new();
    let image = Image::random("amd64", &mut rng);
    let mut src = OciLayout::create(&work.path().join("src"));
    src.add_image(&image, "v1");
    skopeo_copy(
        &env,
        &src.reference("v1"),
        &format!("docker://{up_host}/library/app:v1"),
    );
    proxy_project(&reg, &format!("http://{up_host}"));

    let layer = image
        .blobs()
        .max_by_key(|b| b.bytes.len())
        .expect("the image has blobs");
    let url = reg.url(&format!("/v2/proxy/library/app/blobs/{}", layer.digest));
    let pulls: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || http::get(&url).follow().send())
        })
        .collect();
    for p in pulls {
        let resp = p.join().expect("pull thread");
        resp.expect_status(200);
        assert!(resp.body == layer.bytes, "the blob byte for byte");
    }
    let wanted = format!("\"GET /v2/library/app/blobs/{} ", layer.digest);
    let fetches = upstream
        .log()
        .lines()
        .filter(|l| l.contains(&wanted))
        .count();
    assert_eq!(fetches, 1, "upstream log:\n{}", upstream.log_tail());
    upstream.stop();
    let again = http::get(&url).follow().send();
    again.expect_status(200);
    assert!(again.body == layer.bytes);
}
