//! Replication between two Berth registries in one process, each over its
//! own embedded stores and served over HTTP on `127.0.0.1:0`: the
//! registries and policies API, push-based and pull-based copies of an
//! image, a multi-arch index and an artifact with a referrer (digests
//! equal at both ends), a copy killed midway that resumes without sending
//! a finished blob again, tags left alone without `override`, and
//! event-based policies (a push replicated, a delete propagated, a
//! redelivered event starting nothing more).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use berth::http::{AppState, Limits};
use berth::jobs::Jobs;
use berth::jobs::runs::{self, Run};
use berth::oci::{Digest, Reference, RepoName};
use berth::outbound::AddressPolicy;
use berth::registry::Registry;
use berth::registry::events::{Event, kinds};
use berth::replication::worker::Replication;
use berth::store::local_queue::LocalQueue;
use berth::store::{Kv, Queue};
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;
#[cfg(feature = "aws")]
#[path = "support/moto.rs"]
mod moto;

use api_support::{ADMIN, ADMIN_PW, Client, OCI_MANIFEST, PW, Who, upload};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the destination saw of blob uploads: `(digest, status)` of every
/// `PUT …/blobs/uploads/…?digest=` (the request that finishes an upload).
type Finished = Arc<Mutex<Vec<(String, u16)>>>;

/// One Berth: registry, identity, job queue, served on 127.0.0.1.
struct Node {
    registry: Registry,
    kv: Arc<dyn Kv>,
    queue: Arc<LocalQueue>,
    router: Router,
    url: String,
    finished: Finished,
    /// Fail (`500`) the n-th finishing upload from now (0: none).
    fail_nth: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Client for Node {
    fn router(&self) -> &Router {
        &self.router
    }
}

/// Records finishing uploads; fails one when asked.
async fn watch_uploads(
    finished: Finished,
    fail_nth: Arc<AtomicUsize>,
    req: Request,
    next: Next,
) -> Response {
    let is_finish = req.method() == Method::PUT
        && req.uri().path().contains("/blobs/uploads/")
        && req.uri().query().is_some_and(|q| q.contains("digest="));
    if !is_finish {
        return next.run(req).await;
    }
    let digest = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("digest=")))
        .unwrap_or_default()
        .replace("%3A", ":");
    let n = fail_nth.load(Ordering::SeqCst);
    if n > 0 {
        fail_nth.store(n - 1, Ordering::SeqCst);
        if n == 1 {
            finished.lock().unwrap().push((digest, 500));
            return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
    }
    let resp = next.run(req).await;
    finished
        .lock()
        .unwrap()
        .push((digest, resp.status().as_u16()));
    resp
}

impl Node {
    async fn start(seed: &str) -> Node {
        Self::serve(api_support::parts(seed, Default::default()).await).await
    }

    /// A node over DynamoDB and S3 on the emulator.
    #[cfg(feature = "aws")]
    async fn start_on_aws(seed: &str) -> Node {
        let calls = berth::store::aws::CallCounter::default();
        let m = moto::moto();
        let p = api_support::parts_on(
            tempfile::tempdir().unwrap(),
            m.kv(&calls).await,
            m.blobs(&calls).await,
            seed,
            Default::default(),
        )
        .await;
        Self::serve(p).await
    }

    async fn serve(p: api_support::Parts) -> Node {
        let queue = Arc::new(LocalQueue::new(
            p.kv.clone(),
            "replication",
            Duration::from_secs(1),
        ));
        let jobs = Jobs::new(p.registry.clone(), queue.clone());
        let mut state = AppState::new(p.registry.clone());
        state.iam = Some((*p.iam).clone());
        state.jobs = Some(jobs);
        let finished: Finished = Arc::default();
        let fail_nth = Arc::new(AtomicUsize::new(0));
        let (f, n) = (finished.clone(), fail_nth.clone());
        let router = berth::http::app(Arc::new(state)).layer(middleware::from_fn(
            move |req: Request, next: Next| watch_uploads(f.clone(), n.clone(), req, next),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(berth::http::serve(
            listener,
            router.clone(),
            Limits::default(),
            std::future::pending(),
        ));
        let node = Node {
            registry: p.registry,
            kv: p.kv,
            queue,
            router,
            url,
            finished,
            fail_nth,
            _dir: p.dir,
        };
        // Peers on loopback are allowed here (the admin setting).
        node.put(
            "/api/v2.0/configurations",
            ADMIN,
            json!({"webhook_allow_private": true}),
        )
        .await
        .ok(StatusCode::OK);
        node
    }

    fn replication(&self) -> Replication {
        Replication::new(self.registry.clone(), self.queue.clone())
            .with_lease(Duration::from_millis(500))
            .with_address_policy(AddressPolicy::new(true))
    }

    /// Registers `peer` as an endpoint (admin credential); returns its id.
    async fn add_peer(&self, name: &str, peer: &Node, secret: &str) -> i64 {
        let body = json!({"name": name, "type": "berth", "url": peer.url,
            "credential": {"type": "basic", "access_key": "admin", "access_secret": secret}});
        self.post("/api/v2.0/registries", ADMIN, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    }

    async fn add_policy(&self, body: Value) -> i64 {
        self.post("/api/v2.0/replication/policies", ADMIN, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    }

    /// Starts an execution of `policy` through the API and runs its tasks
    /// until it ends; the run's id is the execution's.
    async fn run_policy(&self, policy: i64) -> Run {
        let exec = self.execute(policy).await;
        drain(&self.replication(), &self.queue, exec).await
    }

    /// Stops execution `exec` through the API.
    async fn stop(&self, exec: i64) {
        self.put(
            &format!("/api/v2.0/replication/executions/{exec}"),
            ADMIN,
            json!({}),
        )
        .await
        .ok(StatusCode::OK);
    }

    /// Starts an execution of `policy` through the API.
    async fn execute(&self, policy: i64) -> i64 {
        self.post(
            "/api/v2.0/replication/executions",
            ADMIN,
            json!({"policy_id": policy}),
        )
        .await
        .ok(StatusCode::CREATED)
        .location_id()
    }

    async fn execution(&self, id: i64) -> Value {
        let r = self
            .get(&format!("/api/v2.0/replication/executions/{id}"), ADMIN)
            .await;
        r.ok(StatusCode::OK);
        r.json()
    }

    /// The digest `reference` names in `repo`, if any.
    async fn digest(&self, repo: &str, reference: &str) -> Option<Digest> {
        let name: RepoName = repo.parse().unwrap();
        let r: Reference = reference.parse().unwrap();
        self.registry
            .get_manifest(&name, &r, false)
            .await
            .ok()
            .map(|m| m.digest)
    }
}

/// Runs the queue's jobs with `rep` until execution `id` ends (a task
/// that fails stays on the queue and comes back); a hang guard, not a
/// timing assertion.
async fn drain(rep: &Replication, q: &LocalQueue, id: i64) -> Run {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let batch = q.receive(10).await.unwrap();
        let idle = batch.is_empty();
        for r in batch {
            if rep.run(&r.job).await.is_ok() {
                q.ack(&r.receipt).await.unwrap();
            }
        }
        let run = rep.runs().get(id).await.unwrap().unwrap();
        if run.finished() {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} did not end: {run:?}"
        );
        if idle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Pushes a manifest's bytes to `repo` under `reference`.
async fn put(registry: &Registry, repo: &str, reference: &str, mt: &str, body: &Value) -> Digest {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap());
    let name: RepoName = repo.parse().unwrap();
    let r: Reference = if reference == "@" {
        Reference::Digest(berth::oci::sha256_digest(&bytes))
    } else {
        reference.parse().unwrap()
    };
    registry
        .put_manifest(&name, &r, Some(mt), bytes)
        .await
        .unwrap()
        .digest
}

/// An image of `layers` (each its own blob) and a config naming `seed`.
async fn image(
    registry: &Registry,
    repo: &str,
    reference: &str,
    seed: &str,
    layers: usize,
) -> Digest {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
    let cd = upload(registry, repo, &config).await;
    let mut ls = Vec::new();
    for i in 0..layers {
        let data = format!("layer {i} of {seed} {}", "x".repeat(1000 * (i + 1)));
        let d = upload(registry, repo, &data).await;
        ls.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": d.to_string(), "size": data.len()}),
        );
    }
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd.to_string(), "size": config.len()},
        "layers": ls});
    put(registry, repo, reference, OCI_MANIFEST, &m).await
}

/// An image whose one layer is `layer` (shared by whoever passes it).
async fn image_with_layer(registry: &Registry, repo: &str, tag: &str, layer: &str) -> Digest {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":\"{repo}\"}}");
    let cd = upload(registry, repo, &config).await;
    let ld = upload(registry, repo, layer).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": ld.to_string(), "size": layer.len()}]});
    put(registry, repo, tag, OCI_MANIFEST, &m).await
}

/// A two-platform index of fresh images, tagged `tag`.
async fn index(registry: &Registry, repo: &str, tag: &str) -> (Digest, Vec<Digest>) {
    let mut children = Vec::new();
    let mut descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let d = image(registry, repo, "@", &format!("{repo}-{arch}"), 1).await;
        let name: RepoName = repo.parse().unwrap();
        let size = registry
            .get_manifest(&name, &Reference::Digest(d.clone()), false)
            .await
            .unwrap()
            .size;
        descs.push(
            json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size,
            "platform": {"architecture": arch, "os": "linux"}}),
        );
        children.push(d);
    }
    let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs});
    (put(registry, repo, tag, OCI_INDEX, &idx).await, children)
}

/// An SBOM-like referrer of `subject` (untagged).
async fn referrer(registry: &Registry, repo: &str, subject: &Digest) -> Digest {
    let name: RepoName = repo.parse().unwrap();
    let size = registry
        .get_manifest(&name, &Reference::Digest(subject.clone()), false)
        .await
        .unwrap()
        .size;
    let empty = upload(registry, repo, "{}").await;
    let sbom = upload(registry, repo, &format!("sbom of {subject}")).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom.to_string(),
            "size": format!("sbom of {subject}").len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": size}});
    put(registry, repo, "@", OCI_MANIFEST, &m).await
}

/// A cosign signature of `subject` in the tag scheme (`sha256-<hex>.sig`).
async fn cosign_signature(registry: &Registry, repo: &str, subject: &Digest) -> Digest {
    let config = "{\"signed\":true}";
    let cd = upload(registry, repo, config).await;
    let payload =
        format!("{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{subject}\"}}}}}}");
    let pd = upload(registry, repo, &payload).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": pd.to_string(), "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ"}}]});
    let tag = format!("sha256-{}.sig", subject.digest());
    put(registry, repo, &tag, OCI_MANIFEST, &m).await
}

async fn referrers_of(registry: &Registry, repo: &str, subject: &Digest) -> Vec<String> {
    let name: RepoName = repo.parse().unwrap();
    registry
        .referrers(&name, subject, None, None)
        .await
        .unwrap()
        .manifests
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// The event a push or delete of `digest`, tagged `tag`, raises (an OCI
/// manifest of `size` bytes).
fn artifact_event(kind: &str, name: &RepoName, digest: &Digest, tag: &str, size: i64) -> Event {
    Event::artifact(kind, name, digest, vec![tag.into()], OCI_MANIFEST, size)
}

async fn two() -> (Node, Node) {
    let a = Node::start("replication test source seed, long enough 0001").await;
    let b = Node::start("replication test destination seed, long enough 02").await;
    (a, b)
}

#[tokio::test]
async fn registries_and_policies_api() {
    let (a, b) = two().await;
    let id = a.add_peer("b", &b, ADMIN_PW).await;
    // The secret is never answered.
    let got = a.get(&format!("/api/v2.0/registries/{id}"), ADMIN).await;
    got.ok(StatusCode::OK);
    let reg = got.json();
    assert_eq!(reg["credential"]["access_secret"], "*****");
    assert_eq!(reg["credential"]["access_key"], "admin");
    assert_eq!(reg["type"], "berth");
    assert!(!got.text().contains(ADMIN_PW));
    let list = a.get("/api/v2.0/registries?q=name%3D~b", ADMIN).await;
    list.ok(StatusCode::OK);
    assert_eq!(list.ids(), vec![id]);
    assert_eq!(list.header("x-total-count"), "1");
    // Names are unique; types and URLs are checked.
    a.post(
        "/api/v2.0/registries",
        ADMIN,
        json!({"name": "b", "type": "berth", "url": b.url}),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    a.post(
        "/api/v2.0/registries",
        ADMIN,
        json!({"name": "c", "type": "quay", "url": b.url}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    a.post(
        "/api/v2.0/registries",
        ADMIN,
        json!({"name": "c", "type": "harbor", "url": "ftp://x"}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    // Ping: stored, stored with a wrong secret, and by URL alone.
    a.post("/api/v2.0/registries/ping", ADMIN, json!({"id": id}))
        .await
        .ok(StatusCode::OK);
    assert_eq!(
        a.get(&format!("/api/v2.0/registries/{id}"), ADMIN)
            .await
            .json()["status"],
        "healthy"
    );
    a.post(
        "/api/v2.0/registries/ping",
        ADMIN,
        json!({"id": id, "access_secret": "wrong-Secret1"}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    a.post(
        "/api/v2.0/registries/ping",
        ADMIN,
        json!({"type": "docker-registry", "url": b.url, "access_key": "admin", "access_secret": ADMIN_PW}),
    )
    .await
    .ok(StatusCode::OK);
    // Update keeps the secret when `*****` comes back.
    a.put(
        &format!("/api/v2.0/registries/{id}"),
        ADMIN,
        json!({"description": "the other one", "access_secret": "*****"}),
    )
    .await
    .ok(StatusCode::OK);
    let e = berth::replication::endpoint(&a.kv, id).await.unwrap();
    assert_eq!(e.credential.unwrap().access_secret, ADMIN_PW);
    assert_eq!(e.description, "the other one");
    let info = a
        .get(&format!("/api/v2.0/registries/{id}/info"), ADMIN)
        .await;
    info.ok(StatusCode::OK);
    assert_eq!(info.json()["type"], "berth");
    let adapters = a.get("/api/v2.0/replication/adapters", ADMIN).await;
    assert_eq!(
        adapters.json(),
        json!(["berth", "docker-registry", "harbor"])
    );

    // Policies: one side must be this registry, the other a known one.
    a.post(
        "/api/v2.0/replication/policies",
        ADMIN,
        json!({"name": "p", "dest_registry": {"id": 99}}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    a.post(
        "/api/v2.0/replication/policies",
        ADMIN,
        json!({"name": "p", "src_registry": {"id": id}, "dest_registry": {"id": id}}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    a.post("/api/v2.0/replication/policies", ADMIN,
        json!({"name": "p", "dest_registry": {"id": id}, "trigger": {"type": "scheduled", "trigger_settings": {"cron": "bad"}}}))
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let pid = a
        .add_policy(json!({
            "name": "p", "dest_registry": {"id": id}, "dest_namespace": "mirror",
            "filters": [{"type": "name", "value": "library/**"}, {"type": "tag", "value": "v*", "decoration": "matches"}],
            "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 0 3 * * *"}},
            "override": true, "enabled": true,
        }))
        .await;
    let got = a
        .get(&format!("/api/v2.0/replication/policies/{pid}"), ADMIN)
        .await;
    got.ok(StatusCode::OK);
    let p = got.json();
    assert_eq!(p["src_registry"]["id"], 0);
    assert_eq!(p["dest_registry"]["id"], id);
    assert_eq!(p["dest_registry"]["credential"]["access_secret"], "*****");
    assert_eq!(p["trigger"]["trigger_settings"]["cron"], "0 0 3 * * *");
    assert_eq!(p["filters"][0]["decoration"], "matches");
    assert_eq!(p["dest_namespace_replace_count"], -1);
    a.post(
        "/api/v2.0/replication/policies",
        ADMIN,
        json!({"name": "p", "dest_registry": {"id": id}}),
    )
    .await
    .err(StatusCode::CONFLICT, "CONFLICT");
    a.add_policy(json!({"name": "q", "dest_registry": {"id": id}}))
        .await;
    let list = a.get("/api/v2.0/replication/policies?name=p", ADMIN).await;
    list.ok(StatusCode::OK);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    // A push-based policy turned pull-based, as Harbor's portal sends it.
    a.put(
        &format!("/api/v2.0/replication/policies/{pid}"),
        ADMIN,
        json!({"src_registry": {"id": id}, "dest_registry": null, "trigger": {"type": "manual"}}),
    )
    .await
    .ok(StatusCode::OK);
    let p = a
        .get(&format!("/api/v2.0/replication/policies/{pid}"), ADMIN)
        .await
        .json();
    assert_eq!(
        (
            p["src_registry"]["id"].as_i64(),
            p["dest_registry"]["id"].as_i64()
        ),
        (Some(id), Some(0))
    );
    a.put(
        &format!("/api/v2.0/replication/policies/{pid}"),
        ADMIN,
        json!({"enabled": false, "trigger": {"type": "manual"}}),
    )
    .await
    .ok(StatusCode::OK);
    // A disabled policy does not start.
    a.post(
        "/api/v2.0/replication/executions",
        ADMIN,
        json!({"policy_id": pid}),
    )
    .await
    .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    a.post(
        "/api/v2.0/replication/executions",
        ADMIN,
        json!({"policy_id": 4242}),
    )
    .await
    .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    // A registry in use stays.
    a.delete(&format!("/api/v2.0/registries/{id}"), ADMIN)
        .await
        .err(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    a.delete(&format!("/api/v2.0/replication/policies/{pid}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    a.get(&format!("/api/v2.0/replication/policies/{pid}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");

    // System admins only.
    a.user("dev").await;
    let dev = Who::Basic("dev", PW);
    for path in [
        "/api/v2.0/registries",
        "/api/v2.0/replication/policies",
        "/api/v2.0/replication/executions",
        "/api/v2.0/replication/adapters",
    ] {
        a.get(path, dev)
            .await
            .err(StatusCode::FORBIDDEN, "FORBIDDEN");
        a.get(path, Who::Anon)
            .await
            .err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    a.post(
        "/api/v2.0/registries",
        dev,
        json!({"name": "x", "type": "berth", "url": b.url}),
    )
    .await
    .err(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn push_and_pull_copy_images_indexes_and_referrers() {
    let (a, b) = two().await;
    push_and_pull(a, b).await;
}

/// The same, with the destination on DynamoDB and S3 (the emulator).
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_between_backends() {
    let a = Node::start("replication test source seed, long enough 0001").await;
    let b = Node::start_on_aws("replication test aws destination seed, long 03").await;
    push_and_pull(a, b).await;
}

/// Push-based from `a` to `b`, then pull-based back into `a`.
async fn push_and_pull(a: Node, b: Node) {
    let img = image(&a.registry, "library/app", "v1", "app", 2).await;
    let sbom = referrer(&a.registry, "library/app", &img).await;
    let sig = cosign_signature(&a.registry, "library/app", &img).await;
    let (idx, children) = index(&a.registry, "library/multi", "latest").await;
    image(&a.registry, "library/app", "dev", "dev build", 1).await;
    image(&a.registry, "other/skip", "v1", "not selected", 1).await;

    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({
            "name": "push", "dest_registry": {"id": to_b}, "dest_namespace": "mirror",
            "filters": [{"type": "name", "value": "library/**"},
                        {"type": "tag", "value": "{v*,latest}"}],
            "trigger": {"type": "manual"}, "override": true, "enabled": true,
        }))
        .await;
    let run = a.run_policy(pid).await;
    let exec = run.id;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    let e = a.execution(exec).await;
    assert_eq!(e["status"], "Succeed");
    assert_eq!(e["trigger"], "manual");
    assert_eq!(
        (e["total"].as_i64(), e["succeed"].as_i64()),
        (Some(2), Some(2))
    );

    // Same digests at the destination, under the namespace.
    assert_eq!(b.digest("mirror/app", "v1").await, Some(img.clone()));
    assert_eq!(b.digest("mirror/multi", "latest").await, Some(idx));
    for c in &children {
        assert_eq!(b.digest("mirror/multi", c.as_ref()).await, Some(c.clone()));
    }
    assert_eq!(
        referrers_of(&b.registry, "mirror/app", &img).await,
        vec![sbom.to_string()]
    );
    let sig_tag = format!("sha256-{}.sig", img.digest());
    assert_eq!(b.digest("mirror/app", &sig_tag).await, Some(sig));
    // Filtered out: the dev tag, the other project.
    assert_eq!(b.digest("mirror/app", "dev").await, None);
    assert_eq!(b.digest("mirror/skip", "v1").await, None);
    // The project was created at the destination.
    b.get("/api/v2.0/projects/mirror", ADMIN)
        .await
        .ok(StatusCode::OK);

    // Tasks, their logs.
    let tasks = a
        .get(
            &format!("/api/v2.0/replication/executions/{exec}/tasks"),
            ADMIN,
        )
        .await;
    tasks.ok(StatusCode::OK);
    let tasks = tasks.json();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    for t in tasks {
        assert_eq!(t["status"], "Succeed");
        assert_eq!(t["operation"], "copy");
        let log = a
            .get(
                &format!(
                    "/api/v2.0/replication/executions/{exec}/tasks/{}/log",
                    t["id"]
                ),
                ADMIN,
            )
            .await;
        log.ok(StatusCode::OK);
        assert!(log.text().contains("done:"), "{}", log.text());
    }
    let listed = a
        .get(
            &format!("/api/v2.0/replication/executions?policy_id={pid}"),
            ADMIN,
        )
        .await;
    assert_eq!(listed.ids(), vec![exec]);

    // A second run copies nothing: everything is there.
    let before = b.finished.lock().unwrap().len();
    let run = a.run_policy(pid).await;
    assert_eq!(run.status, runs::SUCCESS);
    assert_eq!(run.count("blobs_copied"), 0);
    assert_eq!(b.finished.lock().unwrap().len(), before);

    // Pull-based, back into this registry under another namespace.
    let pull = a
        .add_policy(json!({
            "name": "pull", "src_registry": {"id": to_b}, "dest_namespace": "back",
            "filters": [{"type": "name", "value": "mirror/**"}],
            "trigger": {"type": "manual"}, "enabled": true,
        }))
        .await;
    let run = a.run_policy(pull).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(a.digest("back/app", "v1").await, Some(img.clone()));
    assert_eq!(
        a.digest("back/multi", "latest").await,
        b.digest("mirror/multi", "latest").await
    );
    assert_eq!(
        referrers_of(&a.registry, "back/app", &img).await,
        vec![sbom.to_string()]
    );
    a.get("/api/v2.0/projects/back", ADMIN)
        .await
        .ok(StatusCode::OK);
}

#[tokio::test]
async fn a_killed_copy_resumes_without_resending_finished_blobs() {
    let (a, b) = two().await;
    let img = image(&a.registry, "library/big", "v1", "big", 5).await;
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({"name": "push", "dest_registry": {"id": to_b},
            "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    // The destination fails the third blob upload.
    b.fail_nth.store(3, Ordering::SeqCst);
    let exec = a.execute(pid).await;
    {
        // The first worker takes the tasks until one fails, then dies.
        let first = a.replication();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !b.finished.lock().unwrap().iter().any(|(_, s)| *s == 500) {
            for r in a.queue.receive(10).await.unwrap() {
                if first.run(&r.job).await.is_ok() {
                    a.queue.ack(&r.receipt).await.unwrap();
                }
            }
            assert!(Instant::now() < deadline, "the injected failure never came");
        }
    }
    let half: Vec<(String, u16)> = b.finished.lock().unwrap().clone();
    assert_eq!(
        half.iter().filter(|(_, s)| *s == 201).count(),
        2,
        "{half:?}"
    );
    assert_eq!(
        b.digest("library/big", "v1").await,
        None,
        "nothing visible yet"
    );
    // A new worker finishes it.
    let run = drain(&a.replication(), &a.queue, exec).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/big", "v1").await, Some(img));
    // Every blob was uploaded once; the failed one once more.
    let all = b.finished.lock().unwrap().clone();
    let mut per: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (d, s) in all {
        per.entry(d).or_default().push(s);
    }
    assert_eq!(per.len(), 6, "{per:?}");
    for (d, statuses) in &per {
        let ok = statuses.iter().filter(|s| **s == 201).count();
        assert_eq!(ok, 1, "{d}: {statuses:?}");
    }
    assert_eq!(
        per.values().filter(|s| s.contains(&500)).count(),
        1,
        "{per:?}"
    );
}

#[tokio::test]
async fn without_override_a_different_tag_stays() {
    let (a, b) = two().await;
    image(&a.registry, "library/app", "v1", "source", 1).await;
    let theirs = image(&b.registry, "library/app", "v1", "theirs", 1).await;
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({"name": "push", "dest_registry": {"id": to_b},
            "override": false, "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let run = a.run_policy(pid).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/app", "v1").await, Some(theirs));
}

#[tokio::test]
async fn event_based_policies_replicate_pushes_and_deletions_once() {
    let (a, b) = two().await;
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    a.add_policy(json!({"name": "on-push", "dest_registry": {"id": to_b},
        "filters": [{"type": "tag", "value": "v*"}], "replicate_deletion": true,
        "trigger": {"type": "event_based"}, "enabled": true}))
        .await;
    let rep = a.replication();
    let d = image(&a.registry, "library/ev", "v2", "fresh", 1).await;
    let name: RepoName = "library/ev".parse().unwrap();
    let push = artifact_event(kinds::PUSH_ARTIFACT, &name, &d, "v2", 100);
    rep.on_event(&push).await.unwrap();
    let (runs_now, _) = rep.runs().page(None, 10).await.unwrap();
    assert_eq!(runs_now.len(), 1);
    let exec = runs_now[0].id;
    let run = drain(&rep, &a.queue, exec).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/ev", "v2").await, Some(d.clone()));
    assert_eq!(a.execution(exec).await["trigger"], "event_based");
    // The same event again: nothing new.
    rep.on_event(&push).await.unwrap();
    assert_eq!(rep.runs().page(None, 10).await.unwrap().0.len(), 1);
    // A tag the filter leaves out: nothing.
    let other = image(&a.registry, "library/ev", "latest", "latest", 1).await;
    let e = artifact_event(kinds::PUSH_ARTIFACT, &name, &other, "latest", 1);
    rep.on_event(&e).await.unwrap();
    assert_eq!(rep.runs().page(None, 10).await.unwrap().0.len(), 1);
    // A delete is propagated.
    let del = artifact_event(kinds::DELETE_ARTIFACT, &name, &d, "v2", 100);
    rep.on_event(&del).await.unwrap();
    let (runs_now, _) = rep.runs().page(None, 10).await.unwrap();
    assert_eq!(runs_now.len(), 2);
    let run = drain(&rep, &a.queue, runs_now[0].id).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/ev", d.as_ref()).await, None);
}

#[tokio::test]
async fn stopping_an_execution_stops_its_tasks() {
    let (a, b) = two().await;
    for i in 0..3 {
        image(
            &a.registry,
            &format!("library/s{i}"),
            "v1",
            &format!("s{i}"),
            1,
        )
        .await;
    }
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({"name": "push", "dest_registry": {"id": to_b},
            "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let exec = a.execute(pid).await;
    a.stop(exec).await;
    let run = drain(&a.replication(), &a.queue, exec).await;
    assert_eq!(run.status, runs::STOPPED);
    assert_eq!(a.execution(exec).await["status"], "Stopped");
    // Stopping what ended is a no-op.
    a.stop(exec).await;
    assert_eq!(b.digest("library/s0", "v1").await, None);
}

#[tokio::test]
async fn a_shared_layer_is_sent_once_and_mounted_after() {
    let (a, b) = two().await;
    let layer = format!("a base layer {}", "b".repeat(4000));
    let one = image_with_layer(&a.registry, "library/one", "v1", &layer).await;
    let two_ = image_with_layer(&a.registry, "library/two", "v1", &layer).await;
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({"name": "push", "dest_registry": {"id": to_b},
            "speed": 1000000, "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let run = a.run_policy(pid).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/one", "v1").await, Some(one));
    assert_eq!(b.digest("library/two", "v1").await, Some(two_));
    let shared = berth::oci::sha256_digest(layer.as_bytes());
    let sent = b
        .finished
        .lock()
        .unwrap()
        .iter()
        .filter(|(d, _)| d == shared.as_ref())
        .count();
    assert_eq!(sent, 1, "the shared layer is sent once");
    assert_eq!(run.count("blobs_mounted"), 1, "{run:?}");
}

/// Throughput of a push-based replication between two local instances
/// over HTTP on loopback (a measurement, not a check; ignored by default):
///
/// ```text
/// BERTH_REPLICATION_BENCH_MB=1024 cargo test --release -p berth-shared \
///     --test replication -- --ignored --nocapture replication_throughput
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name"]
async fn replication_throughput() {
    let mb: usize = std::env::var("BERTH_REPLICATION_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    const BLOB_MB: usize = 32;
    let (a, b) = two().await;
    let name: RepoName = "library/bench".parse().unwrap();
    let mut layers = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..mb.div_ceil(BLOB_MB) {
        // Pseudo-random content (incompressible), made and hashed chunk by
        // chunk, then streamed into the registry the same way.
        let chunks: Vec<Bytes> = (0..BLOB_MB)
            .map(|_| {
                let mut v = Vec::with_capacity(1 << 20);
                for _ in 0..(1 << 17) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    v.extend_from_slice(&seed.to_le_bytes());
                }
                Bytes::from(v)
            })
            .collect();
        let mut h = berth::oci::HashState::new(berth::oci::Algorithm::Sha256);
        for c in &chunks {
            h.update(c);
        }
        let d = h.digest();
        let body: berth::store::ByteStream = Box::pin(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::io::Error>),
        ));
        a.registry.monolithic_upload(&name, &d, body).await.unwrap();
        layers.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": d.to_string(), "size": BLOB_MB << 20}),
        );
        eprintln!("pushed layer {i}");
    }
    let config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
    let cd = upload(&a.registry, "library/bench", config).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd.to_string(), "size": config.len()},
        "layers": layers});
    let digest = put(&a.registry, "library/bench", "v1", OCI_MANIFEST, &m).await;
    let to_b = a.add_peer("b", &b, ADMIN_PW).await;
    let pid = a
        .add_policy(json!({"name": "bench", "dest_registry": {"id": to_b},
            "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let start = Instant::now();
    let run = a.run_policy(pid).await;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(b.digest("library/bench", "v1").await, Some(digest));
    let bytes = run.count("bytes") as f64;
    eprintln!(
        "replicated {:.0} MiB in {secs:.1} s: {:.1} MiB/s",
        bytes / f64::from(1 << 20),
        bytes / f64::from(1 << 20) / secs
    );
}

/// Distribution (`docker-registry`) on a free loopback port, storing in a
/// temporary directory, stopped (its own child, killed) when dropped.
struct Distribution {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Distribution {
    fn start() -> Option<Distribution> {
        let bin = std::env::var("BERTH_E2E_DISTRIBUTION_BIN")
            .unwrap_or_else(|_| "/usr/bin/docker-registry".to_owned());
        if !std::path::Path::new(&bin).is_file() {
            eprintln!("SKIPPED: {bin} not found");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REGISTRY_")) {
            cmd.env_remove(k);
        }
        let child = cmd.spawn().unwrap();
        let d = Distribution {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }
}

#[tokio::test]
async fn push_to_and_pull_from_distribution() {
    let Some(dist) = Distribution::start() else {
        return;
    };
    let a = Node::start("replication test source seed, long enough 0001").await;
    let img = image(&a.registry, "library/app", "v1", "for distribution", 2).await;
    let (idx, _) = index(&a.registry, "library/multi", "latest").await;
    let id = a
        .post(
            "/api/v2.0/registries",
            ADMIN,
            json!({"name": "dist", "type": "docker-registry", "url": dist.url}),
        )
        .await
        .ok(StatusCode::CREATED)
        .location_id();
    a.post("/api/v2.0/registries/ping", ADMIN, json!({"id": id}))
        .await
        .ok(StatusCode::OK);
    let push = a
        .add_policy(json!({"name": "to-dist", "dest_registry": {"id": id},
            "filters": [{"type": "name", "value": "library/**"}],
            "replicate_deletion": true, "copy_by_chunk": true,
            "trigger": {"type": "event_based"}, "enabled": true}))
        .await;
    let run = a.run_policy(push).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");

    // What Distribution holds, read back through the same client.
    let http = berth::replication::worker::peer_client(AddressPolicy::new(true)).unwrap();
    let client = berth::outbound::registry::RegistryClient::new(
        http,
        berth::outbound::registry::Endpoint {
            url: dist.url.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let head = |repo: &'static str, r: &'static str| {
        let client = client.clone();
        async move {
            client
                .head_manifest(repo, r)
                .await
                .unwrap()
                .map(|h| h.digest)
        }
    };
    assert_eq!(head("library/app", "v1").await, Some(img.clone()));
    assert_eq!(head("library/multi", "latest").await, Some(idx.clone()));

    // Pull-based back into Berth under another namespace.
    let pull = a
        .add_policy(json!({"name": "from-dist", "src_registry": {"id": id},
            "dest_namespace": "back", "dest_namespace_replace_count": 1,
            "filters": [{"type": "name", "value": "library/**"}],
            "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let run = a.run_policy(pull).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(a.digest("back/app", "v1").await, Some(img.clone()));
    assert_eq!(a.digest("back/multi", "latest").await, Some(idx));

    // A deletion here is propagated there.
    let rep = a.replication();
    let name: RepoName = "library/app".parse().unwrap();
    let del = artifact_event(kinds::DELETE_ARTIFACT, &name, &img, "v1", 1);
    rep.on_event(&del).await.unwrap();
    let newest = rep.runs().page(None, 1).await.unwrap().0[0].id;
    let run = drain(&rep, &a.queue, newest).await;
    assert_eq!(run.status, runs::SUCCESS, "{run:?}");
    assert_eq!(head("library/app", "v1").await, None);
}

#[tokio::test]
async fn a_source_refusing_the_credential_fails_the_execution() {
    let (a, b) = two().await;
    image(&b.registry, "library/app", "v1", "unreachable", 1).await;
    let id = a.add_peer("b", &b, "wrong-Password1").await;
    let pid = a
        .add_policy(json!({"name": "pull", "src_registry": {"id": id},
            "trigger": {"type": "manual"}, "enabled": true}))
        .await;
    let run = a.run_policy(pid).await;
    assert_eq!(run.status, runs::ERROR, "{run:?}");
    let e = a.execution(run.id).await;
    assert_eq!(e["status"], "Failed");
    assert!(
        e["status_text"].as_str().unwrap().contains("listing"),
        "{e}"
    );
    assert_eq!(a.digest("library/app", "v1").await, None);
}
