//! Replication end to end: skopeo pushes an image and a multi-arch index
//! to Berth; a push-based policy replicates them to Distribution
//! (`docker-registry`), a pull-based one brings them back into Berth
//! under another namespace; `skopeo inspect --raw` finds the same
//! digests at every end.

use std::time::{Duration, Instant};

use berth_e2e::containers::ContainersEnv;
use berth_e2e::oci::{self, Image, Index, OciLayout};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, require_tools, skip_requested};
use serde_json::{Value, json};

/// The id at the end of a `201`'s `Location`.
fn created_id(reg: &Registry, path: &str, body: &Value) -> i64 {
    let resp = reg.api("POST", path, Some(body));
    resp.expect_status(201);
    resp.header("location")
        .and_then(|l| l.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in:\n{resp}"))
}

/// Runs policy `policy` and waits for its execution to end; returns it.
fn execute(reg: &Registry, policy: i64) -> Value {
    let id = created_id(
        reg,
        "/replication/executions",
        &json!({"policy_id": policy}),
    );
    let start = Instant::now();
    loop {
        let resp = reg.api("GET", &format!("/replication/executions/{id}"), None);
        resp.expect_status(200);
        let e = resp.json();
        if e["status"] != "InProgress" {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "execution {id} did not end: {e}\n{}",
            reg.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The digest of what `image` names, from its raw manifest.
fn raw_digest(env: &ContainersEnv, image: &str, creds: Option<String>) -> String {
    let mut cmd = env
        .skopeo()
        .args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd = cmd.arg(format!("--creds={c}"));
    }
    let out = cmd.arg(format!("docker://{image}")).ok();
    oci::digest_of(&out.stdout)
}

#[test]
fn berth_to_distribution_and_back() {
    if skip_requested("berth_to_distribution_and_back") {
        return;
    }
    require_tools(&["skopeo"]);
    let dist = Registry::start_target(Target::Distribution);
    let reg = Registry::start_target(Target::Berth);
    let env = ContainersEnv::new(&[dist.host(), reg.host()]);
    let admin = reg.admin();
    let creds = format!("{}:{}", admin.user, admin.password);
    let work = berth_e2e::tempdir("berth-e2e-replication.");
    let mut rng = Rng::new();
    let image = Image::random("amd64", &mut rng);
    let index = Index::random(&["amd64", "arm64"], &mut rng);
    let mut layout = OciLayout::create(&work.path().join("src"));
    layout.add_image(&image, "v1");
    layout.add_index(&index, "multi");
    reg.ensure_project("library");
    for (tag, repo) in [("v1", "library/app:v1"), ("multi", "library/multi:latest")] {
        env.skopeo()
            .args([
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
            ])
            .arg(format!("--dest-creds={creds}"))
            .arg(layout.reference(tag))
            .arg(format!("docker://{}", reg.image(repo)))
            .ok();
    }

    reg.api(
        "PUT",
        "/configurations",
        Some(&json!({"webhook_allow_private": true})),
    )
    .expect_status(200);
    let dist_id = created_id(
        &reg,
        "/registries",
        &json!({"name": "dist", "type": "docker-registry", "url": dist.url("")}),
    );
    reg.api("POST", "/registries/ping", Some(&json!({"id": dist_id})))
        .expect_status(200);

    let push = created_id(
        &reg,
        "/replication/policies",
        &json!({"name": "to-dist", "dest_registry": {"id": dist_id},
            "filters": [{"type": "name", "value": "library/**"}],
            "trigger": {"type": "manual"}, "override": true, "enabled": true}),
    );
    let e = execute(&reg, push);
    assert_eq!(e["status"], "Succeed", "{e}\n{}", reg.log_tail());
    assert_eq!(
        raw_digest(&env, &dist.image("library/app:v1"), None),
        image.manifest.digest
    );
    assert_eq!(
        raw_digest(&env, &dist.image("library/multi:latest"), None),
        index.manifest.digest
    );

    let pull = created_id(
        &reg,
        "/replication/policies",
        &json!({"name": "from-dist", "src_registry": {"id": dist_id},
            "dest_namespace": "back", "filters": [{"type": "name", "value": "library/**"}],
            "trigger": {"type": "manual"}, "enabled": true}),
    );
    let e = execute(&reg, pull);
    assert_eq!(e["status"], "Succeed", "{e}\n{}", reg.log_tail());
    assert_eq!(
        raw_digest(&env, &reg.image("back/app:v1"), Some(creds.clone())),
        image.manifest.digest
    );
    assert_eq!(
        raw_digest(&env, &reg.image("back/multi:latest"), Some(creds)),
        index.manifest.digest
    );
}

#[test]
fn a_fresh_push_is_replicated_by_an_event_based_policy() {
    if skip_requested("a_fresh_push_is_replicated_by_an_event_based_policy") {
        return;
    }
    require_tools(&["skopeo"]);
    let dist = Registry::start_target(Target::Distribution);
    let reg = Registry::start_target(Target::Berth);
    let env = ContainersEnv::new(&[dist.host(), reg.host()]);
    let admin = reg.admin();
    let creds = format!("{}:{}", admin.user, admin.password);
    reg.api(
        "PUT",
        "/configurations",
        Some(&json!({"webhook_allow_private": true})),
    )
    .expect_status(200);
    let dist_id = created_id(
        &reg,
        "/registries",
        &json!({"name": "dist", "type": "docker-registry", "url": dist.url("")}),
    );
    created_id(
        &reg,
        "/replication/policies",
        &json!({"name": "on-push", "dest_registry": {"id": dist_id},
            "filters": [{"type": "name", "value": "library/**"}, {"type": "tag", "value": "v*"}],
            "trigger": {"type": "event_based"}, "enabled": true}),
    );
    reg.ensure_project("library");
    let work = berth_e2e::tempdir("berth-e2e-replication-event.");
    let image = Image::random("amd64", &mut Rng::new());
    let mut layout = OciLayout::create(&work.path().join("src"));
    layout.add_image(&image, "v2");
    env.skopeo()
        .args(["copy", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={creds}"))
        .arg(layout.reference("v2"))
        .arg(format!("docker://{}", reg.image("library/fresh:v2")))
        .ok();
    // The push's event starts an execution; wait for Distribution to have it.
    let url = dist.url("/v2/library/fresh/manifests/v2");
    let start = Instant::now();
    loop {
        let resp = berth_e2e::http::get(&url)
            .header("accept", oci::OCI_MANIFEST)
            .send();
        if resp.status == 200 {
            assert_eq!(oci::digest_of(&resp.body), image.manifest.digest);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the push was not replicated: {resp}\n{}",
            reg.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let e = reg.api("GET", "/replication/executions?trigger=event_based", None);
    e.expect_status(200);
    assert_eq!(e.json().as_array().map(Vec::len), Some(1), "{e}");
}
