//! The remote-registry client (`berth::outbound::registry`) against real
//! registries on loopback: an in-process Berth with token auth, and
//! Debian's Distribution (`/usr/bin/docker-registry`, 2.8) with Basic
//! auth — blobs pushed streamed and chunked, mounted, manifests pushed
//! and pulled back byte for byte, tags, catalog, referrers, deletes.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use berth::http::{AppState, Limits, app, serve};
use berth::oci::{Digest, sha256_digest};
use berth::outbound::registry::{Endpoint, RegistryClient};
use berth::outbound::{AddressPolicy, SafeClient};
use berth::store::ByteStream;
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde_json::json;

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, ADMIN_PW};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An in-process Berth serving `/v2/`, the token service and the API on
/// a loopback port, with project `proj`.
struct Berth {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _parts: api_support::Parts,
}

async fn berth() -> Berth {
    let parts = api_support::parts(
        "an outbound registry test seed long enough 0123",
        Default::default(),
    )
    .await;
    let mut state = AppState::new(parts.registry.clone());
    state.iam = Some((*parts.iam).clone());
    let router = app(Arc::new(state));
    let body = json!({"project_name": "proj", "metadata": {"public": "false"}});
    let r = api_support::send(
        &router,
        Method::POST,
        "/api/v2.0/projects",
        ADMIN,
        &[],
        Some(axum::body::Body::from(body.to_string())),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, Limits::default(), async {
        let _ = rx.await;
    }));
    Berth {
        url,
        _stop: tx,
        _parts: parts,
    }
}

/// `docker-registry` on a free loopback port with Basic auth (user
/// `puller`, password `s3cret-pw`), killed when dropped.
struct Distribution {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DIST_USER: &str = "puller";
const DIST_PW: &str = "s3cret-pw";
/// bcrypt (cost 4) of [`DIST_PW`].
const DIST_HTPASSWD: &str = "puller:$2b$04$q2w1oTP8X9r2EcD/RnVd9epVCnLw80KqA1QpOEDyN9ALlebLvSBue";

fn distribution_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("BERTH_E2E_DISTRIBUTION_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from);
    bin.is_file().then_some(bin)
}

async fn distribution() -> Option<Distribution> {
    let Some(bin) = distribution_bin() else {
        eprintln!("SKIPPED: docker-registry not found (install the e2e dependencies)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{DIST_HTPASSWD}\n")).unwrap();
    let config = dir.path().join("config.yml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {}
  delete:
    enabled: true
auth:
  htpasswd:
    realm: berth-test
    path: {}
http:
  addr: 127.0.0.1:{port}
  secret: berth-test-not-a-secret
",
            data.display(),
            htpasswd.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().unwrap();
    let d = Distribution {
        url: format!("http://127.0.0.1:{port}"),
        child,
        _dir: dir,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(d);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("docker-registry did not start on port {port}");
}

fn client(url: &str, credential: Option<(&str, &str)>) -> RegistryClient {
    let http = SafeClient::with_policy(AddressPolicy::new(true)).unwrap();
    RegistryClient::new(
        http,
        Endpoint {
            url: url.to_owned(),
            credential: credential.map(|(u, p)| (u.to_owned(), p.to_owned())),
            insecure: false,
        },
    )
    .unwrap()
}

/// Deterministic bytes of `len` (no two 64 KiB blocks alike).
fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect::<Vec<u8>>(),
    )
}

/// `data` as a stream of 64 KiB pieces.
fn stream_of(data: &Bytes) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(pieces))
}

async fn collect(c: &RegistryClient, repo: &str, d: &Digest) -> Bytes {
    let b = c.get_blob(repo, d).await.unwrap();
    let parts: Vec<Bytes> = b.body.try_collect().await.unwrap();
    Bytes::from(parts.concat())
}

/// The whole tour on one registry; `referrers` says whether it has the
/// referrers API (Distribution 2.8 does not).
async fn tour(c: &RegistryClient, referrers: bool) {
    assert!(c.ping().await.unwrap(), "credentials accepted");
    let repo = "proj/app";
    let layer = pattern(3 * 1024 * 1024 + 17, 1);
    let ld = sha256_digest(&layer);
    let config = Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let cd = sha256_digest(&config);
    assert_eq!(c.head_blob(repo, &ld).await.unwrap(), None);
    c.push_blob(repo, &ld, layer.len() as u64, stream_of(&layer))
        .await
        .unwrap();
    assert_eq!(
        c.head_blob(repo, &ld).await.unwrap(),
        Some(layer.len() as u64)
    );
    c.push_blob_chunked(repo, &cd, stream_of(&config), 10)
        .await
        .unwrap();
    // The monolithic PUT is taken, so the stream is opened once.
    let opened = std::sync::atomic::AtomicUsize::new(0);
    let extra = pattern(100_000, 7);
    let ed = sha256_digest(&extra);
    c.push_blob_or_chunks(repo, &ed, extra.len() as u64, 4096, || {
        opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let s = stream_of(&extra);
        async move { Ok(s) }
    })
    .await
    .unwrap();
    assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(collect(c, repo, &ed).await, extra);
    assert_eq!(
        c.head_blob(repo, &cd).await.unwrap(),
        Some(config.len() as u64)
    );
    // A mount of a blob the source has; of one it does not (a plain
    // upload session, cancelled).
    assert!(c.mount_blob("proj/other", &ld, repo).await.unwrap());
    assert!(c.mount_blob("proj/other", &cd, repo).await.unwrap());
    let missing = sha256_digest(b"not pushed anywhere");
    assert!(!c.mount_blob("proj/other", &missing, repo).await.unwrap());

    let manifest = Bytes::from(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": ld.to_string(), "size": layer.len()}],
        }))
        .unwrap(),
    );
    let md = sha256_digest(&manifest);
    assert_eq!(
        c.put_manifest(repo, "v1", OCI_MANIFEST, manifest.clone())
            .await
            .unwrap(),
        md
    );
    c.put_manifest("proj/other", "v2", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    let head = c.head_manifest(repo, "v1").await.unwrap().unwrap();
    assert_eq!(
        (head.digest.clone(), head.media_type.as_str(), head.size),
        (md.clone(), OCI_MANIFEST, manifest.len() as u64)
    );
    assert_eq!(c.head_manifest(repo, "nope").await.unwrap(), None);
    let got = c.get_manifest(repo, md.as_ref(), &[]).await.unwrap();
    assert_eq!(got.bytes, manifest, "manifest byte for byte");
    assert_eq!(
        (got.digest, got.media_type.as_str()),
        (md.clone(), OCI_MANIFEST)
    );
    let e = c.get_manifest(repo, "nope", &[]).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.code(), "MANIFEST_UNKNOWN");

    assert_eq!(collect(c, repo, &ld).await, layer, "layer byte for byte");
    assert_eq!(collect(c, "proj/other", &ld).await, layer, "mounted layer");
    let e = c.get_blob(repo, &missing).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");

    c.put_manifest(repo, "v0", OCI_MANIFEST, manifest.clone())
        .await
        .unwrap();
    let mut tags = c.tags(repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v0", "v1"]);
    assert!(c.tags("proj/never").await.unwrap().is_empty());
    let catalog = c.catalog().await.unwrap();
    for r in [repo, "proj/other"] {
        assert!(catalog.iter().any(|x| x == r), "{r} in {catalog:?}");
    }
    // One entry a page: every page followed through `Link`.
    let paged = c.with_page_size(1);
    let mut tags = paged.tags(repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v0", "v1"]);
    assert_eq!(paged.catalog().await.unwrap(), catalog);

    let sig = Bytes::from(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": cd.to_string(), "size": config.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len()},
        }))
        .unwrap(),
    );
    let sd = sha256_digest(&sig);
    c.put_manifest(repo, sd.as_ref(), OCI_MANIFEST, sig)
        .await
        .unwrap();
    let refs = c.referrers(repo, &md).await.unwrap();
    if referrers {
        assert_eq!(refs.len(), 1, "{refs:?}");
        assert_eq!(refs[0]["digest"], sd.to_string());
    } else {
        assert!(refs.is_empty());
    }

    assert!(c.delete_manifest(repo, md.as_ref()).await.unwrap());
    assert_eq!(c.head_manifest(repo, md.as_ref()).await.unwrap(), None);
    assert!(!c.delete_manifest(repo, md.as_ref()).await.unwrap());
}

#[tokio::test]
async fn berth_with_token_auth() {
    let b = berth().await;
    let c = client(&b.url, Some(("admin", ADMIN_PW)));
    tour(&c, true).await;
}

#[tokio::test]
async fn berth_refuses_bad_credentials_and_anonymous_pushes() {
    let b = berth().await;
    assert!(
        !client(&b.url, Some(("admin", "wrong")))
            .ping()
            .await
            .unwrap()
    );
    let anon = client(&b.url, None);
    let d = sha256_digest(b"x");
    let e = anon
        .push_blob("proj/app", &d, 1, stream_of(&Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert!(e.is_denied(), "{e}");
    // A private project's content is not there for anonymous pulls.
    let e = anon.get_manifest("proj/app", "v1", &[]).await.unwrap_err();
    assert!(e.is_denied() || e.is_not_found(), "{e}");
}

#[tokio::test]
async fn tokens_are_reused_per_scope() {
    let b = berth().await;
    let c = client(&b.url, Some(("admin", ADMIN_PW)));
    for _ in 0..3 {
        assert_eq!(c.head_manifest("proj/app", "v1").await.unwrap(), None);
    }
}

#[tokio::test]
async fn distribution_with_basic_auth() {
    let Some(d) = distribution().await else {
        return;
    };
    let c = client(&d.url, Some((DIST_USER, DIST_PW)));
    tour(&c, false).await;
    assert!(
        !client(&d.url, Some((DIST_USER, "wrong")))
            .ping()
            .await
            .unwrap()
    );
    assert!(!client(&d.url, None).ping().await.unwrap());
}

#[tokio::test]
async fn unreachable_and_refused_targets() {
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}"), None);
    let e = c.ping().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    // Without the private-address allowance, loopback is refused before
    // any connection.
    let strict = SafeClient::with_policy(AddressPolicy::new(false)).unwrap();
    let e = RegistryClient::new(
        strict,
        Endpoint {
            url: format!("http://127.0.0.1:{port}"),
            ..Endpoint::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
}
