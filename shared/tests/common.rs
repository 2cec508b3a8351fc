//! Shared helpers for the router tests: a registry on temporary embedded
//! storage, driven with `oneshot`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use berth::http::{AppState, app};
use berth::registry::{Registry, RegistryOptions};
use berth::store::blob::{BlobError, BlobStore, CompletedPart, ObjectBody};
use berth::store::fs_blob::FsBlobStore;
use berth::store::redb_kv::RedbKv;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub registry: Registry,
    _dir: Option<tempfile::TempDir>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// Reads a router's response to the end.
    pub async fn read(resp: axum::response::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The OCI error code of an error response.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Asserts an error response: its status and its OCI error code.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.text()
        );
    }
}

/// An S3-like store over another: parts other than the last must be at
/// least `min_part` bytes, as S3 demands (5 MiB there), and, with a
/// `presign_prefix`, reads are presigned URLs under that prefix.
pub struct StrictParts {
    pub inner: Arc<dyn BlobStore>,
    pub min_part: u64,
    pub presign_prefix: Option<String>,
    pub sizes: std::sync::Mutex<std::collections::HashMap<(String, u32), u64>>,
}

impl StrictParts {
    pub fn new(inner: Arc<dyn BlobStore>, min_part: u64, presign_prefix: Option<&str>) -> Self {
        Self {
            inner,
            min_part,
            presign_prefix: presign_prefix.map(str::to_owned),
            sizes: Default::default(),
        }
    }
}

#[async_trait]
impl BlobStore for StrictParts {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        self.inner.put(key, data).await
    }
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, BlobError> {
        self.inner.get(key, range).await
    }
    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        self.inner.list(prefix, after, limit).await
    }
    async fn create_multipart(&self, key: &str) -> Result<String, BlobError> {
        self.inner.create_multipart(key).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String, BlobError> {
        self.sizes
            .lock()
            .unwrap()
            .insert((upload_id.to_owned(), number), data.len() as u64);
        self.inner.upload_part(key, upload_id, number, data).await
    }
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let sizes = self.sizes.lock().unwrap().clone();
        for p in &parts[..parts.len().saturating_sub(1)] {
            let size = sizes[&(upload_id.to_owned(), p.number)];
            if size < self.min_part {
                return Err(BlobError::Backend(format!(
                    "EntityTooSmall: part {} is {size} bytes",
                    p.number
                )));
            }
        }
        self.inner.complete_multipart(key, upload_id, parts).await
    }
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        self.inner.abort_multipart(key, upload_id).await
    }
    async fn presign_get(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, BlobError> {
        Ok(self.presign_prefix.as_ref().map(|p| {
            format!(
                "{p}{key}?X-Amz-Expires={}&X-Amz-Signature=f00d",
                ttl.as_secs()
            )
        }))
    }
    fn min_part_size(&self) -> u64 {
        self.min_part
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(RegistryOptions::default(), None).await
    }

    /// A registry with small parts, optionally on an S3-like store that
    /// refuses small non-final parts.
    pub async fn with(opts: RegistryOptions, min_part: Option<u64>) -> Self {
        Self::build(opts, min_part, |s| s).await
    }

    /// The local application over any registry (e.g. on the AWS adapters).
    pub fn over(registry: Registry) -> Self {
        Self {
            router: app(Arc::new(AppState::new(registry.clone()))),
            registry,
            _dir: None,
        }
    }

    /// A second app over the same storage with a different configuration.
    pub fn sibling(&self, configure: impl FnOnce(AppState) -> AppState) -> Router {
        app(Arc::new(configure(AppState::new(self.registry.clone()))))
    }

    pub async fn build(
        opts: RegistryOptions,
        min_part: Option<u64>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(RedbKv::open(&dir.path().join("meta.redb")).unwrap());
        let fs = FsBlobStore::open(&dir.path().join("blobs")).await.unwrap();
        let blobs: Arc<dyn BlobStore> = match min_part {
            Some(min_part) => Arc::new(StrictParts::new(Arc::new(fs), min_part, None)),
            None => Arc::new(fs),
        };
        let registry = Registry::new(kv, blobs, opts);
        let state = Arc::new(configure(AppState::new(registry.clone())));
        Self {
            router: app(state),
            registry,
            _dir: Some(dir),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        send_to(&self.router, method, uri, headers, body).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    /// PUTs a manifest of media type `media_type` at `path`
    /// (`/v2/<repo>/manifests/<reference>`).
    pub async fn put_manifest(&self, path: &str, media_type: &str, body: Vec<u8>) -> Resp {
        self.send(Method::PUT, path, &[("content-type", media_type)], body)
            .await
    }

    /// Starts an upload; returns its path (`/v2/<repo>/blobs/uploads/<id>`).
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        r.header("location")
            .trim_start_matches("http://localhost")
            .to_owned()
    }

    /// Sends a chunk with its inclusive `Content-Range`.
    pub async fn patch(&self, path: &str, range: &str, body: Vec<u8>) -> Resp {
        self.send(Method::PATCH, path, &[("content-range", range)], body)
            .await
    }

    /// Pushes a blob monolithically; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        d
    }

    /// Pushes a config + one layer and an OCI manifest; returns (manifest bytes, digest).
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
        let layer = format!("layer-{seed}").repeat(10);
        let m = image_manifest(
            &[(&config, "application/vnd.oci.image.config.v1+json")],
            &[&layer],
            None,
            None,
        );
        self.push_blob(repo, config.as_bytes()).await;
        self.push_blob(repo, layer.as_bytes()).await;
        let r = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", OCI_MANIFEST)],
                m.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        let d = digest(&m);
        assert_eq!(r.header("docker-content-digest"), d);
        (m, d)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn digest(data: &[u8]) -> String {
    berth::oci::sha256_digest(data).to_string()
}

/// An OCI image manifest over the given config and layers.
pub fn image_manifest(
    config: &[(&str, &str)],
    layers: &[&str],
    artifact_type: Option<&str>,
    subject: Option<(&str, usize)>,
) -> Vec<u8> {
    let (cfg, cfg_type) = config[0];
    let layers: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":digest(l.as_bytes()),"size":l.len()}))
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": cfg_type, "digest": digest(cfg.as_bytes()), "size": cfg.len()},
        "layers": layers,
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = t.into();
    }
    if let Some((d, size)) = subject {
        m["subject"] = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

/// Sends one request to a router.
pub async fn send_to(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    Resp::read(resp).await
}
