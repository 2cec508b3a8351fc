//! Proxy-cache projects in process: a Berth project bound to an upstream
//! (another in-process registry on a loopback port, whose requests are
//! counted) serves pulls through its cache — first pulls fetch, later
//! ones are served with the upstream down or rate limiting, a blob is
//! fetched once however many clients ask at once, tags follow the
//! upstream, an index's children come on demand, and the API shows the
//! binding (`registry_id`).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use berth::http::{Limits, serve};
use berth::oci::{Reference, RepoName};
use berth::registry::Registry;
use berth::replication::endpoints::{Endpoint, Endpoints};
use berth::store::{Item, Kv, KvError, Page, Query, WriteOp};
use serde_json::json;

#[path = "support/api.rs"]
mod api_support;
mod common;

use common::{OCI_INDEX, OCI_MANIFEST, Resp, TestApp, digest, image_manifest};

/// What the upstream saw, and how it behaves.
#[derive(Default)]
struct Upstream {
    /// `GET` requests by path.
    gets: Mutex<HashMap<String, usize>>,
    /// Answer every request `429`.
    limited: AtomicBool,
    /// Answer every request `503` (as a registry that is down).
    down: AtomicBool,
}

impl Upstream {
    fn gets(&self, path: &str) -> usize {
        self.gets.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn observe(up: Arc<Upstream>, req: Request, next: Next) -> Response {
    if up.limited.load(Ordering::SeqCst) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    if up.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if req.method() == Method::GET {
        *up.gets
            .lock()
            .unwrap()
            .entry(req.uri().path().to_owned())
            .or_default() += 1;
    }
    next.run(req).await
}

struct World {
    upstream: TestApp,
    seen: Arc<Upstream>,
    cache: TestApp,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// An upstream registry on a loopback port and a cache whose project
/// `proxy` is bound to it.
async fn world() -> World {
    berth::outbound::set_default_allow_private(true);
    let upstream = TestApp::new().await;
    let seen = Arc::new(Upstream::default());
    let s = seen.clone();
    let router: Router = upstream
        .router
        .clone()
        .layer(middleware::from_fn(move |req, next| {
            observe(s.clone(), req, next)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, Limits::default(), async {
        let _ = rx.await;
    }));
    let cache = TestApp::new().await;
    let id = Endpoints::new(cache.registry.kv().clone())
        .create(Endpoint::new("upstream", "docker-registry", &url))
        .await
        .unwrap();
    cache
        .registry
        .set_proxy_binding("proxy", Some(id))
        .await
        .unwrap();
    World {
        upstream,
        seen,
        cache,
        _stop: tx,
    }
}

/// Waits until `cond` holds (the cache stores in the background).
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, cond: impl Fn() -> F) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cached(registry: &Registry, repo: &str, reference: &str) -> bool {
    let name: RepoName = repo.parse().unwrap();
    let r: Reference = reference.parse().unwrap();
    registry.get_manifest(&name, &r, false).await.is_ok()
}

fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![v["config"]["digest"].as_str().unwrap().to_owned()];
    for l in v["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_owned());
    }
    out
}

/// Pulls an image like a client: manifest by tag, then its blobs.
async fn pull(app: &TestApp, repo: &str, tag: &str) -> (Resp, Vec<Resp>) {
    let m = app.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text());
    let mut blobs = Vec::new();
    for d in blobs_of(&m.body) {
        let b = app.get(&format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!(b.status, StatusCode::OK, "{d}: {}", b.text());
        assert_eq!(digest(&b.body), d, "blob byte for byte");
        blobs.push(b);
    }
    (m, blobs)
}

#[tokio::test]
async fn first_pull_fetches_and_caches_then_the_cache_serves_without_the_upstream() {
    let w = world().await;
    let (manifest, md) = w.upstream.push_image("library/app", "v1", "one").await;
    let (m, _) = pull(&w.cache, "proxy/library/app", "v1").await;
    assert_eq!(m.body, manifest, "manifest byte for byte");
    assert_eq!(m.header("docker-content-digest"), md);
    assert_eq!(m.header("content-type"), OCI_MANIFEST);
    eventually("the manifest and tag are cached", || {
        cached(&w.cache.registry, "proxy/library/app", "v1")
    })
    .await;
    // Cached content is the registry's like any pushed: listed, counted.
    let tags = w.cache.get("/v2/proxy/library/app/tags/list").await;
    assert_eq!(tags.json()["tags"], json!(["v1"]));
    let usage = w.cache.registry.usage("proxy").await.unwrap();
    assert!(usage.used > 0, "{usage:?}");

    for (flag, what) in [(&w.seen.down, "down"), (&w.seen.limited, "rate limiting")] {
        flag.store(true, Ordering::SeqCst);
        let (again, _) = pull(&w.cache, "proxy/library/app", "v1").await;
        assert_eq!(
            again.body, manifest,
            "served from the cache, upstream {what}"
        );
        let by_digest = w
            .cache
            .get(&format!("/v2/proxy/library/app/manifests/{md}"))
            .await;
        assert_eq!(by_digest.body, manifest);
        flag.store(false, Ordering::SeqCst);
    }
    for d in blobs_of(&manifest) {
        assert_eq!(
            w.seen.gets(&format!("/v2/library/app/blobs/{d}")),
            1,
            "{d} fetched once"
        );
    }
    // What the upstream never had is not found.
    let r = w.cache.get("/v2/proxy/library/app/manifests/nope").await;
    r.assert_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    let r = w
        .cache
        .get(&format!("/v2/proxy/library/app/blobs/{}", digest(b"none")))
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn concurrent_first_pulls_fetch_a_blob_once() {
    let w = world().await;
    let layer: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = w.upstream.push_blob("library/big", &layer).await;
    let cache = Arc::new(w.cache);
    let mut pulls = Vec::new();
    for _ in 0..8 {
        let cache = cache.clone();
        let path = format!("/v2/proxy/library/big/blobs/{d}");
        pulls.push(tokio::spawn(async move { cache.get(&path).await }));
    }
    for p in pulls {
        let r = p.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.body.len(), layer.len());
        assert!(r.body == layer, "the blob byte for byte");
    }
    assert_eq!(w.seen.gets(&format!("/v2/library/big/blobs/{d}")), 1);
    // And it is cached: HEAD and GET without the upstream.
    w.seen.down.store(true, Ordering::SeqCst);
    let r = cache
        .send(
            Method::HEAD,
            &format!("/v2/proxy/library/big/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), layer.len().to_string());
}

#[tokio::test]
async fn a_tag_moved_upstream_is_followed() {
    let w = world().await;
    let (_, first) = w.upstream.push_image("library/app", "latest", "a").await;
    pull(&w.cache, "proxy/library/app", "latest").await;
    eventually("first cached", || {
        cached(&w.cache.registry, "proxy/library/app", &first)
    })
    .await;
    let (second_bytes, second) = w.upstream.push_image("library/app", "latest", "b").await;
    let (m, _) = pull(&w.cache, "proxy/library/app", "latest").await;
    assert_eq!(m.body, second_bytes);
    eventually("second cached", || {
        cached(&w.cache.registry, "proxy/library/app", &second)
    })
    .await;
    // The tag moves back to a digest the cache already has without
    // fetching it again.
    let name = "library/app";
    let first_bytes = w
        .upstream
        .get(&format!("/v2/{name}/manifests/{first}"))
        .await
        .body;
    let r = w
        .upstream
        .put_manifest(
            &format!("/v2/{name}/manifests/latest"),
            OCI_MANIFEST,
            first_bytes.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let before = w.seen.gets(&format!("/v2/{name}/manifests/{first}"));
    let m = w.cache.get("/v2/proxy/library/app/manifests/latest").await;
    assert_eq!(m.header("docker-content-digest"), first);
    assert_eq!(
        w.seen.gets(&format!("/v2/{name}/manifests/{first}")),
        before
    );
    let local = w
        .cache
        .registry
        .get_manifest(
            &"proxy/library/app".parse().unwrap(),
            &"latest".parse().unwrap(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(local.digest.to_string(), first, "the cached tag follows");
}

#[tokio::test]
async fn an_index_is_cached_once_its_children_are_pulled() {
    let w = world().await;
    let (amd, amd_d) = w.upstream.push_image("library/multi", "amd", "amd").await;
    let (arm, arm_d) = w.upstream.push_image("library/multi", "arm", "arm").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd_d, "size": amd.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm_d, "size": arm.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let r = w
        .upstream
        .put_manifest("/v2/library/multi/manifests/v1", OCI_INDEX, index.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let repo = "proxy/library/multi";
    let m = w.cache.get(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(m.body, index);
    // One platform pulled: the child is cached, the index not yet.
    pull(&w.cache, repo, &amd_d).await;
    eventually("amd64 cached", || cached(&w.cache.registry, repo, &amd_d)).await;
    assert!(!cached(&w.cache.registry, repo, "v1").await);
    pull(&w.cache, repo, &arm_d).await;
    eventually("the index cached", || cached(&w.cache.registry, repo, "v1")).await;
    w.seen.down.store(true, Ordering::SeqCst);
    let m = w.cache.get(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(m.body, index);
}

#[tokio::test]
async fn clients_cannot_push_to_a_proxy_project() {
    let w = world().await;
    let r = w
        .cache
        .send(
            Method::POST,
            "/v2/proxy/library/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
    let m = image_manifest(
        &[("c", "application/vnd.oci.image.config.v1+json")],
        &["l"],
        None,
        None,
    );
    let r = w
        .cache
        .put_manifest("/v2/proxy/library/app/manifests/v1", OCI_MANIFEST, m)
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "DENIED");
    // Other projects take pushes as ever.
    w.cache.push_image("other/app", "v1", "x").await;
}

#[tokio::test]
async fn projects_other_than_proxies_never_ask_an_upstream() {
    let w = world().await;
    w.upstream.push_image("library/app", "v1", "x").await;
    let r = w.cache.get("/v2/other/library/app/manifests/v1").await;
    r.assert_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    assert!(w.seen.gets.lock().unwrap().is_empty());
}

/// `registry_id` on project create: an endpoint that exists, system
/// admins only; shown on the project.
#[tokio::test]
async fn projects_take_a_registry_id() {
    use api_support::{ADMIN, Client};
    struct Api {
        router: Router,
    }
    impl Client for Api {
        fn router(&self) -> &Router {
            &self.router
        }
    }
    let p = api_support::parts(
        "a proxy cache api test seed long enough 0123",
        Default::default(),
    )
    .await;
    let api = Api {
        router: berth::http::api::api_router(p.iam.clone(), p.registry.clone(), None),
    };
    let id = Endpoints::new(p.kv.clone())
        .create(Endpoint::new(
            "hub",
            "docker-registry",
            "http://127.0.0.1:9",
        ))
        .await
        .unwrap();
    let r = api
        .post(
            "/api/v2.0/projects",
            ADMIN,
            json!({"project_name": "cache", "registry_id": id, "metadata": {"public": "true"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api.get("/api/v2.0/projects/cache", ADMIN).await;
    assert_eq!(r.json()["registry_id"], id);
    assert_eq!(p.registry.proxy_binding("cache").await.unwrap(), Some(id));
    let r = api
        .post(
            "/api/v2.0/projects",
            ADMIN,
            json!({"project_name": "cache2", "registry_id": id + 100}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api.get("/api/v2.0/projects?name=cache", ADMIN).await;
    assert_eq!(r.json()[0]["registry_id"], id);
    let r = api.delete("/api/v2.0/projects/cache", ADMIN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(p.registry.proxy_binding("cache").await.unwrap(), None);
}

/// The same store seen through another `Arc`: a second process, as far
/// as the proxy's in-process bookkeeping can tell.
struct OtherProcess(Arc<dyn Kv>);

#[async_trait::async_trait]
impl Kv for OtherProcess {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        self.0.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, KvError> {
        self.0.batch_get(keys).await
    }
    async fn query(&self, q: &Query) -> Result<Page, KvError> {
        self.0.query(q).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), KvError> {
        self.0.transact(ops).await
    }
}

/// Two processes over one store pulling the same blobs at once fetch
/// each from the upstream once: the marker item tells the second process
/// to wait for the first's copy.
#[tokio::test]
async fn two_processes_fetch_a_blob_once() {
    let w = world().await;
    let kv = w.cache.registry.kv().clone();
    let other = Registry::new(
        Arc::new(OtherProcess(kv)),
        w.cache.registry.blob_store().clone(),
        Default::default(),
    );
    let other = TestApp::over(other);
    let mut digests = Vec::new();
    for i in 0..4u32 {
        let layer: Vec<u8> = (0..(3 << 20) + i)
            .map(|j| (j % 241) as u8 ^ i as u8)
            .collect();
        digests.push((w.upstream.push_blob("library/two", &layer).await, layer));
    }
    let apps = [Arc::new(w.cache), Arc::new(other)];
    let mut pulls = Vec::new();
    for (d, layer) in &digests {
        for app in &apps {
            for _ in 0..2 {
                let app = app.clone();
                let path = format!("/v2/proxy/library/two/blobs/{d}");
                let layer = layer.clone();
                pulls.push(tokio::spawn(async move {
                    let r = app.get(&path).await;
                    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
                    assert!(r.body == layer, "the blob byte for byte");
                }));
            }
        }
    }
    for p in pulls {
        p.await.unwrap();
    }
    for (d, _) in &digests {
        assert_eq!(w.seen.gets(&format!("/v2/library/two/blobs/{d}")), 1, "{d}");
    }
}

#[test]
fn image_manifests_of_the_helpers_name_their_blobs() {
    let m = image_manifest(
        &[("c", "application/vnd.oci.image.config.v1+json")],
        &["l"],
        None,
        None,
    );
    assert_eq!(blobs_of(&m), [digest(b"c"), digest(b"l")]);
}
