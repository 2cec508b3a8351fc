//! The harness of the management API tests (`api_*.rs`): the embedded
//! stores with the identity service and a bootstrapped admin, requests
//! sent with `oneshot` as a principal (anonymous, Basic credentials or a
//! session cookie), the responses' Harbor shapes, and the users, projects,
//! members and images the tests set up.
//!
//! Included by the API test files with `#[path = "support/api.rs"]`,
//! next to `mod common;`. A test file implements [`Client`] for its own
//! `Api` (which holds what else it needs) to get the request helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use berth::iam::{Iam, KeyRing};
use berth::oci::{Digest, Reference, RepoName};
use berth::registry::{Registry, RegistryOptions};
use berth::store::Kv;
use berth::store::blob::{BlobStore, ByteStream};
use serde_json::{Value, json};
use tower::ServiceExt;

pub use crate::common::Resp;

pub const ADMIN_PW: &str = "Harbor12345";
pub const PW: &str = "Secret123";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Who sends a request.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anon,
    Basic(&'a str, &'a str),
    /// A session id and, for unsafe methods, the CSRF token.
    Cookie(&'a str, Option<&'a str>),
}

pub const ADMIN: Who<'static> = Who::Basic("admin", ADMIN_PW);
pub const PADMIN: Who<'static> = Who::Basic("padmin", PW);
pub const MAINT: Who<'static> = Who::Basic("maint", PW);
pub const DEV: Who<'static> = Who::Basic("dev", PW);
pub const GUEST: Who<'static> = Who::Basic("guest", PW);
pub const LIMITED: Who<'static> = Who::Basic("limited", PW);
pub const OUTSIDER: Who<'static> = Who::Basic("outsider", PW);
pub const ANON: Who<'static> = Who::Anon;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What an API test builds its router from.
pub struct Parts {
    pub dir: tempfile::TempDir,
    pub kv: Arc<dyn Kv>,
    pub registry: Registry,
    pub iam: Arc<Iam>,
}

/// A registry with `opts` and the identity service (keys from `seed`,
/// the admin bootstrapped with [`ADMIN_PW`]) on embedded stores in a
/// temporary directory.
pub async fn parts(seed: &str, opts: RegistryOptions) -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let (kv, blobs) = berth::store::open_local(dir.path()).await.unwrap();
    parts_on(dir, kv, blobs, seed, opts).await
}

/// As [`parts`], over the given stores.
pub async fn parts_on(
    dir: tempfile::TempDir,
    kv: Arc<dyn Kv>,
    blobs: Arc<dyn BlobStore>,
    seed: &str,
    opts: RegistryOptions,
) -> Parts {
    let registry = Registry::new(kv.clone(), blobs, opts);
    let keys = KeyRing::from_seeds(&[seed]).unwrap();
    let iam = Arc::new(Iam::new(kv.clone(), Some(Arc::new(keys)), "berth-registry"));
    iam.directory
        .bootstrap(Some(ADMIN_PW), now())
        .await
        .unwrap();
    Parts {
        dir,
        kv,
        registry,
        iam,
    }
}

/// Sends one request to `router` as `who`, with `headers` and, given a
/// body, `content-type: application/json`.
pub async fn send(
    router: &Router,
    method: Method,
    path: &str,
    who: Who<'_>,
    headers: &[(&str, &str)],
    body: Option<Body>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    match who {
        Who::Anon => {}
        Who::Basic(u, p) => {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            b = b.header("authorization", format!("Basic {enc}"));
        }
        Who::Cookie(sid, csrf) => {
            b = b.header("cookie", format!("other=1; sid={sid}"));
            if let Some(c) = csrf {
                b = b.header("x-harbor-csrf-token", c);
            }
        }
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = match body {
        Some(body) => {
            b = b.header("content-type", "application/json");
            body
        }
        None => Body::empty(),
    };
    let resp = router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    Resp::read(resp).await
}

/// The request helpers of a test's `Api`, over its router.
pub trait Client {
    fn router(&self) -> &Router;

    /// A request with a raw body (JSON or not).
    async fn raw(
        &self,
        method: Method,
        path: &str,
        who: Who<'_>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let body = body.map(|s| Body::from(s.to_owned()));
        send(self.router(), method, path, who, headers, body).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        who: Who<'_>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|v| Body::from(v.to_string()));
        send(self.router(), method, path, who, headers, body).await
    }

    async fn call(&self, method: Method, path: &str, who: Who<'_>, body: Option<Value>) -> Resp {
        self.call_with(method, path, who, &[], body).await
    }

    async fn get(&self, path: &str, who: Who<'_>) -> Resp {
        self.call(Method::GET, path, who, None).await
    }

    async fn post(&self, path: &str, who: Who<'_>, body: Value) -> Resp {
        self.call(Method::POST, path, who, Some(body)).await
    }

    async fn put(&self, path: &str, who: Who<'_>, body: Value) -> Resp {
        self.call(Method::PUT, path, who, Some(body)).await
    }

    async fn delete(&self, path: &str, who: Who<'_>) -> Resp {
        self.call(Method::DELETE, path, who, None).await
    }

    /// Creates a user (password [`PW`]) as the admin; returns its id.
    async fn user(&self, name: &str) -> i64 {
        let body = json!({"username": name, "password": PW, "email": format!("{name}@example.com"), "realname": name});
        self.post("/api/v2.0/users", ADMIN, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    }

    /// Creates a project as `who`; returns its id.
    async fn project(&self, name: &str, public: bool, who: Who<'_>) -> i64 {
        let body = json!({"project_name": name, "metadata": {"public": public.to_string()}});
        self.post("/api/v2.0/projects", who, body)
            .await
            .ok(StatusCode::CREATED)
            .location_id()
    }

    /// Makes `user` a member of `project` with `role_id`, as the admin.
    async fn member(&self, project: &str, user: &str, role_id: i64) {
        let body = json!({"role_id": role_id, "member_user": {"username": user}});
        self.post(
            &format!("/api/v2.0/projects/{project}/members"),
            ADMIN,
            body,
        )
        .await
        .ok(StatusCode::CREATED);
    }

    /// The first page (100) of the global audit log, as the admin.
    async fn audit_log(&self) -> Vec<Value> {
        let r = self.get("/api/v2.0/audit-logs?page_size=100", ADMIN).await;
        r.ok(StatusCode::OK);
        r.json().as_array().unwrap().clone()
    }
}

impl Resp {
    #[track_caller]
    pub fn ok(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "{}", self.text());
        self
    }

    /// Asserts a Harbor error: its status and its code.
    #[track_caller]
    pub fn err(&self, status: StatusCode, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.json()["errors"][0]["code"], code, "{}", self.text());
        self
    }

    /// The message of a Harbor error.
    pub fn message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The id at the end of `Location`.
    pub fn location_id(&self) -> i64 {
        self.header("location")
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no id in Location {:?}", self.header("location")))
    }

    /// The ids in a JSON list.
    pub fn ids(&self) -> Vec<i64> {
        self.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    }

    /// The `key` strings in a JSON list.
    pub fn names(&self, key: &str) -> Vec<String> {
        self.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[key].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Uploads `data` to `repo` as a blob; returns its digest.
pub async fn upload(registry: &Registry, repo: &str, data: &str) -> Digest {
    let name: RepoName = repo.parse().unwrap();
    let d = berth::oci::sha256_digest(data.as_bytes());
    let data = data.to_owned();
    let body: ByteStream = Box::pin(futures_util::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(data))
    }));
    registry.monolithic_upload(&name, &d, body).await.unwrap();
    d
}

/// Pushes the one-layer image of `config` and `layer` to `repo` under
/// `reference` (a tag, or `@` for its digest alone); returns the
/// manifest's digest and size.
pub async fn push_image(
    registry: &Registry,
    repo: &str,
    reference: &str,
    config: &str,
    layer: &str,
) -> (Digest, usize) {
    let cd = upload(registry, repo, config).await;
    let ld = upload(registry, repo, layer).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": ld.to_string(), "size": layer.len()}],
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let size = bytes.len();
    let digest = berth::oci::sha256_digest(&bytes);
    let reference: Reference = if reference == "@" {
        Reference::Digest(digest.clone())
    } else {
        reference.parse().unwrap()
    };
    let name: RepoName = repo.parse().unwrap();
    let out = registry
        .put_manifest(&name, &reference, Some(OCI_MANIFEST), bytes)
        .await
        .unwrap();
    assert_eq!(out.digest, digest);
    (digest, size)
}
