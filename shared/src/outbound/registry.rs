//! A client of another registry's `/v2/` API ([OCI distribution
//! spec](https://github.com/opencontainers/distribution-spec/blob/main/spec.md)),
//! for replication and proxy-cache projects. Every request goes through
//! [`SafeClient`], so a peer's address, its token realm and every redirect
//! (a blob's presigned URL) pass the same address filter.
//!
//! Authentication is found out, not configured: a request goes anonymous
//! (or with what worked before) and a `401`'s `WWW-Authenticate` says what
//! to do — Basic credentials, or a token from the challenge's realm for
//! the request's scopes (`repository:<name>:pull[,push]`), cached per
//! scope until it expires and asked again on the next `401`.
//!
//! Blobs are streamed both ways and never held whole in memory: a pull
//! returns the body as a stream, a push sends one `PUT` with
//! `Content-Length` (or chunked `PATCH`es, [`RegistryClient::push_blob_chunked`]).
//! The client does not verify blob digests; whoever stores the bytes does
//! (an upload's final step checks them).

mod auth;

pub use auth::{Challenge, parse_challenge};

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};

use super::{BoxError, OutboundError, SafeClient, read_answer};
use crate::oci::Digest;
use crate::oci::digest::{Algorithm, digest_bytes, parse_digest};
use crate::oci::manifest::{
    DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST,
};
use crate::store::ByteStream;
use auth::{TokenAnswer, TokenCache};

/// The manifest types asked for when the caller has no preference: the
/// OCI and Docker schema 2 image manifests and indexes (schema 1 is not
/// stored by Berth).
pub const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Most bytes read of an error or listing body.
const SMALL_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Page size asked of `_catalog` and tags lists.
const PAGE_SIZE: usize = 1000;
/// Most pages followed in one listing (a registry whose `Link` never ends).
const MAX_PAGES: usize = 10_000;

/// Another registry: its base URL (`https://host[:port]`, no `/v2`), the
/// credential (a user name or access key and its secret; `None`:
/// anonymous) and whether its TLS certificate may be unverifiable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub url: String,
    pub credential: Option<(String, String)>,
    /// Harbor's "verify remote cert" off. Not honoured yet: certificates
    /// are always verified (an unverifiable one fails the connection).
    pub insecure: bool,
}

/// Why a remote registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request never got an answer (refused target, transport, timeout).
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// The registry answered with an error status; `code` is the first OCI
    /// error code of its body (empty if none).
    #[error("{method} {path}: {status}{}{}", if code.is_empty() { String::new() } else { format!(" {code}") }, if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        method: Method,
        /// The URL's path, never its query (which may hold a state token).
        path: String,
        status: StatusCode,
        code: String,
        message: String,
        /// `Retry-After` of a `429` or `503`, in seconds.
        retry_after: Option<u64>,
    },
    /// The registry answered something this client cannot use.
    #[error("unexpected answer from {0}: {1}")]
    Protocol(String, String),
}

impl ClientError {
    /// The HTTP status of an answered request.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The OCI error code of an answered request (`""` if none).
    pub fn code(&self) -> &str {
        match self {
            Self::Status { code, .. } => code,
            _ => "",
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// `401` or `403`: the credentials are missing, wrong or too weak.
    pub fn is_denied(&self) -> bool {
        matches!(
            self.status(),
            Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        )
    }

    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// Worth retrying later: no answer, a `5xx`, or a `429`.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Outbound(e) => !e.is_refused(),
            Self::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Self::Protocol(..) => false,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A manifest's identity as a `HEAD` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A manifest as fetched: the exact bytes, their type and digest.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// A blob being pulled: its length when the registry said it, and the body.
pub struct BlobBody {
    pub size: Option<u64>,
    pub body: ByteStream,
}

impl std::fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobBody")
            .field("size", &self.size)
            .finish()
    }
}

/// What authentication the registry asked for, and tokens got for it.
#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: TokenCache,
}

struct Inner {
    http: SafeClient,
    endpoint: Endpoint,
    /// `scheme://host[:port]` with the endpoint's path prefix, no slash at
    /// the end.
    base: String,
    /// `scheme://host[:port]`, against which `Link` and `Location` paths
    /// resolve.
    origin: String,
    auth: Mutex<AuthState>,
    /// `n` of listing requests.
    page_size: usize,
}

/// A client of one remote registry; cheap to clone (clones share tokens).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.inner.base)
            .finish()
    }
}

/// A request body: none, bytes (replayable after a `401`), or a stream of
/// known length (sent once).
enum Payload {
    Bytes(Option<Bytes>),
    Stream(ByteStream, u64),
}

fn pull(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

fn digest_header(h: &HeaderMap) -> Option<Digest> {
    header_str(h, "docker-content-digest").and_then(|d| parse_digest(d.trim()).ok())
}

/// The URL of a `Link: <…>; rel="next"` header, if any.
fn next_link(h: &HeaderMap) -> Option<String> {
    h.get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| {
            part.split(';')
                .skip(1)
                .any(|p| p.trim().trim_matches('"').replace('"', "") == "rel=next")
        })
        .and_then(|part| {
            let s = part.trim();
            let start = s.find('<')? + 1;
            let end = s[start..].find('>')? + start;
            Some(s[start..end].to_owned())
        })
}

/// The OCI error body's first code and message.
fn oci_error(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let first = &v["errors"][0];
    let s = |k: &str| first[k].as_str().unwrap_or_default().to_owned();
    (s("code"), s("message"))
}

fn path_of(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    match no_query.find("://") {
        Some(i) => {
            let rest = &no_query[i + 3..];
            rest.find('/')
                .map_or("/".to_owned(), |j| rest[j..].to_owned())
        }
        None => no_query.to_owned(),
    }
}

/// A stream that is `Sync` because it is only ever polled through `&mut`
/// (request bodies must be `Sync`; a blob stream need not be).
struct SyncStream(Mutex<ByteStream>);

impl futures_util::Stream for SyncStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.as_mut().poll_next(cx)
    }
}

fn stream_body(stream: ByteStream) -> super::Body {
    let frames = SyncStream(Mutex::new(stream))
        .map_ok(Frame::data)
        .map_err(|e| -> BoxError { Box::new(e) });
    BodyExt::boxed(StreamBody::new(frames))
}

fn incoming_stream(body: Incoming) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

impl RegistryClient {
    /// A client of `endpoint` over `http` (whose address policy decides
    /// what the endpoint may be).
    pub fn new(http: SafeClient, endpoint: Endpoint) -> Result<Self> {
        let trimmed = endpoint.url.trim().trim_end_matches('/').to_owned();
        let trimmed = trimmed.strip_suffix("/v2").unwrap_or(&trimmed).to_owned();
        let uri = http.check_url(&trimmed)?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str())
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                base: trimmed,
                origin,
                auth: Mutex::new(AuthState::default()),
                page_size: PAGE_SIZE,
            }),
        })
    }

    /// A client of the same registry that asks for listings `n` entries a
    /// page (with a token cache of its own).
    #[must_use]
    pub fn with_page_size(&self, n: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                endpoint: self.inner.endpoint.clone(),
                base: self.inner.base.clone(),
                origin: self.inner.origin.clone(),
                auth: Mutex::new(AuthState::default()),
                page_size: n.max(1),
            }),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base)
    }

    /// Resolves a `Location` or `Link` (absolute, or a path on the origin).
    fn resolve(&self, loc: &str) -> String {
        if loc.contains("://") {
            loc.to_owned()
        } else if loc.starts_with('/') {
            format!("{}{loc}", self.inner.origin)
        } else {
            format!("{}/{loc}", self.inner.base)
        }
    }

    fn basic(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        let (user, secret) = self.inner.endpoint.credential.as_ref()?;
        let raw = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        HeaderValue::from_str(&format!("Basic {raw}")).ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.inner
            .auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `Authorization` for `scopes` under the challenge seen so far
    /// (`None`: anonymous); asks the realm for a token when none is cached.
    async fn authorization(&self, scopes: &[String]) -> Result<Option<HeaderValue>> {
        let key = scopes.join(" ");
        let challenge = {
            let st = self.lock();
            if let Some(t) = st.tokens.get(&key) {
                return Ok(HeaderValue::from_str(&format!("Bearer {t}")).ok());
            }
            st.challenge.clone()
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                let (t, keep) = token;
                self.lock().tokens.put(&key, t.clone(), keep);
                Ok(HeaderValue::from_str(&format!("Bearer {t}")).ok())
            }
        }
    }

    /// Asks a token realm for a token (with the credential, if any).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, std::time::Duration)> {
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", enc(s)));
            sep = '&';
        }
        for s in scopes {
            url.push_str(&format!("{sep}scope={}", enc(s)));
            sep = '&';
        }
        let mut headers = HeaderMap::new();
        if let Some(b) = self.basic() {
            headers.insert(header::AUTHORIZATION, b);
        }
        let a = self
            .inner
            .http
            .fetch(Method::GET, &url, headers, None, SMALL_BODY_LIMIT)
            .await?;
        if !a.status.is_success() {
            let (code, message) = oci_error(&a.body);
            return Err(ClientError::Status {
                method: Method::GET,
                path: path_of(&url),
                status: a.status,
                code,
                message,
                retry_after: None,
            });
        }
        serde_json::from_slice::<TokenAnswer>(&a.body)
            .ok()
            .and_then(TokenAnswer::into_token)
            .ok_or_else(|| ClientError::Protocol(path_of(&url), "token answer has no token".into()))
    }

    /// Remembers a `401`'s challenge and drops the token that was refused.
    /// True when there is something new to try.
    fn learn(&self, resp: &Response<Incoming>, scopes: &[String], had_auth: bool) -> bool {
        let Some(c) =
            header_str(resp.headers(), header::WWW_AUTHENTICATE).and_then(parse_challenge)
        else {
            return false;
        };
        let mut st = self.lock();
        st.tokens.forget(&scopes.join(" "));
        let changed = st.challenge.as_ref().is_none_or(|old| !same_kind(old, &c));
        st.challenge = Some(c.clone());
        // Basic that was already sent and refused will be refused again.
        changed || (!had_auth) || matches!(c, Challenge::Bearer { .. })
    }

    /// Sends a request with authentication, answering one `401` by
    /// following its challenge (a streamed body gets no second try).
    async fn send(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: HeaderMap,
        body: Payload,
    ) -> Result<Response<Incoming>> {
        match body {
            Payload::Bytes(bytes) => {
                for attempt in 0..2 {
                    let auth = self.authorization(scopes).await?;
                    let mut h = headers.clone();
                    let had_auth = auth.is_some();
                    if let Some(a) = auth {
                        h.insert(header::AUTHORIZATION, a);
                    }
                    let resp = self
                        .inner
                        .http
                        .send(method.clone(), url, h, bytes.clone())
                        .await?;
                    if resp.status() == StatusCode::UNAUTHORIZED
                        && attempt == 0
                        && self.learn(&resp, scopes, had_auth)
                    {
                        continue;
                    }
                    return Ok(resp);
                }
                Err(ClientError::Protocol(
                    path_of(url),
                    "authentication loop".into(),
                ))
            }
            Payload::Stream(stream, len) => {
                let mut h = headers;
                if let Some(a) = self.authorization(scopes).await? {
                    h.insert(header::AUTHORIZATION, a);
                }
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                Ok(self
                    .inner
                    .http
                    .send_stream(method, url, h, stream_body(stream))
                    .await?)
            }
        }
    }

    /// Turns an error status into [`ClientError::Status`] (reading the
    /// body for its OCI code).
    async fn fail(&self, method: Method, url: &str, resp: Response<Incoming>) -> ClientError {
        let status = resp.status();
        let retry_after =
            header_str(resp.headers(), header::RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        let body = read_answer(
            resp,
            SMALL_BODY_LIMIT,
            std::time::Duration::from_secs(30),
            url,
        )
        .await
        .map(|a| a.body)
        .unwrap_or_default();
        let (code, message) = oci_error(&body);
        ClientError::Status {
            method,
            path: path_of(url),
            status,
            code,
            message,
            retry_after,
        }
    }

    /// Sends and reads a small answer; a status outside `ok` is an error.
    async fn call(
        &self,
        method: Method,
        url: &str,
        scopes: &[String],
        headers: HeaderMap,
        body: Option<Bytes>,
        ok: &[StatusCode],
    ) -> Result<super::Answer> {
        let resp = self
            .send(method.clone(), url, scopes, headers, Payload::Bytes(body))
            .await?;
        if !ok.contains(&resp.status()) {
            return Err(self.fail(method, url, resp).await);
        }
        Ok(read_answer(
            resp,
            SMALL_BODY_LIMIT,
            std::time::Duration::from_secs(60),
            url,
        )
        .await?)
    }

    /// `GET /v2/`: whether the registry accepts the credential (or
    /// anonymous access, without one). `Ok(false)` when it refuses them;
    /// `Err` when it cannot be reached or answers something else.
    pub async fn ping(&self) -> Result<bool> {
        let url = self.url("/v2/");
        let resp = match self
            .send(
                Method::GET,
                &url,
                &[],
                HeaderMap::new(),
                Payload::Bytes(None),
            )
            .await
        {
            Ok(r) => r,
            // The token realm refused the credential.
            Err(e) if e.is_denied() => return Ok(false),
            Err(e) => return Err(e),
        };
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(false),
            _ => Err(self.fail(Method::GET, &url, resp).await),
        }
    }

    /// Follows a paged listing from `first`, collecting `field` of each page.
    async fn paged(&self, first: String, scopes: &[String], field: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut url = Some(first);
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ClientError::Protocol(path_of(&u), "too many pages".into()));
            }
            let a = self
                .call(
                    Method::GET,
                    &u,
                    scopes,
                    HeaderMap::new(),
                    None,
                    &[StatusCode::OK],
                )
                .await?;
            let v: serde_json::Value = serde_json::from_slice(&a.body)
                .map_err(|e| ClientError::Protocol(path_of(&u), e.to_string()))?;
            let names = v[field].as_array().cloned().unwrap_or_default();
            let before = out.len();
            out.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
            url = next_link(&a.headers)
                .filter(|_| out.len() > before)
                .map(|l| self.resolve(&l));
        }
        Ok(out)
    }

    /// Every repository of `_catalog`, page by page.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let first = self.url(&format!("/v2/_catalog?n={}", self.inner.page_size));
        self.paged(first, &["registry:catalog:*".to_owned()], "repositories")
            .await
    }

    /// Every tag of `repo`, page by page (none for an unknown repository).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let first = self.url(&format!("/v2/{repo}/tags/list?n={}", self.inner.page_size));
        match self.paged(first, &[pull(repo)], "tags").await {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            r => r,
        }
    }

    fn accept(types: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let types = if types.is_empty() {
            MANIFEST_TYPES
        } else {
            types
        };
        if let Ok(v) = HeaderValue::from_str(&types.join(", ")) {
            h.insert(header::ACCEPT, v);
        }
        h
    }

    /// `HEAD` of a manifest: its digest, type and size; `None` if unknown.
    /// A registry that does not say the digest is asked with a `GET`.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<ManifestHead>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(
                Method::HEAD,
                &url,
                &[pull(repo)],
                Self::accept(&[]),
                Payload::Bytes(None),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => return Err(self.fail(Method::HEAD, &url, resp).await),
            _ => {}
        }
        let h = resp.headers();
        let media_type = header_str(h, header::CONTENT_TYPE)
            .unwrap_or_default()
            .to_owned();
        match (digest_header(h), content_length(h)) {
            (Some(digest), Some(size)) => Ok(Some(ManifestHead {
                digest,
                media_type,
                size,
            })),
            _ => match self.get_manifest(repo, reference, &[]).await {
                Ok(m) => Ok(Some(ManifestHead {
                    size: m.bytes.len() as u64,
                    digest: m.digest,
                    media_type: m.media_type,
                })),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Fetches a manifest's exact bytes, accepting `accept` (all manifest
    /// types when empty). Fetched by digest, the bytes must hash to it.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<RemoteManifest> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(
                Method::GET,
                &url,
                &[pull(repo)],
                Self::accept(accept),
                Payload::Bytes(None),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(Method::GET, &url, resp).await);
        }
        let a = read_answer(
            resp,
            MAX_MANIFEST_SIZE,
            std::time::Duration::from_secs(60),
            &url,
        )
        .await?;
        let media_type = header_str(&a.headers, header::CONTENT_TYPE)
            .map(crate::oci::manifest::essence)
            .filter(|t| !t.is_empty() && t != "application/json" && t != "text/plain")
            .or_else(|| media_type_in(&a.body))
            .unwrap_or_default();
        let digest = match parse_digest(reference) {
            Ok(want) => {
                let alg = Algorithm::of(&want).ok_or_else(|| {
                    ClientError::Protocol(path_of(&url), format!("unsupported digest {want}"))
                })?;
                let got = digest_bytes(alg, &a.body);
                if got != want {
                    return Err(ClientError::Protocol(
                        path_of(&url),
                        format!("manifest has digest {got}, not {want}"),
                    ));
                }
                want
            }
            Err(_) => digest_bytes(Algorithm::Sha256, &a.body),
        };
        Ok(RemoteManifest {
            bytes: a.body,
            media_type,
            digest,
        })
    }

    /// Pushes a manifest under `reference` (a tag or its digest); returns
    /// the digest the registry reports (or the bytes' SHA-256).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(media_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        let fallback = digest_bytes(Algorithm::Sha256, &bytes);
        let a = self
            .call(
                Method::PUT,
                &url,
                &[push(repo)],
                h,
                Some(bytes),
                &[StatusCode::CREATED, StatusCode::OK, StatusCode::ACCEPTED],
            )
            .await?;
        Ok(digest_header(&a.headers).unwrap_or(fallback))
    }

    /// Deletes a manifest or tag; `false` if it was not there.
    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let scopes = [format!("repository:{repo}:delete")];
        match self
            .call(
                Method::DELETE,
                &url,
                &scopes,
                HeaderMap::new(),
                None,
                &[StatusCode::ACCEPTED, StatusCode::OK, StatusCode::NO_CONTENT],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A blob's size, or `None` if the repository does not have it.
    pub async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(
                Method::HEAD,
                &url,
                &[pull(repo)],
                HeaderMap::new(),
                Payload::Bytes(None),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(content_length(resp.headers()).unwrap_or(0))),
            _ => Err(self.fail(Method::HEAD, &url, resp).await),
        }
    }

    /// Streams a blob (following a redirect to its storage, checked like
    /// any target).
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Result<BlobBody> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(
                Method::GET,
                &url,
                &[pull(repo)],
                HeaderMap::new(),
                Payload::Bytes(None),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(Method::GET, &url, resp).await);
        }
        let size = content_length(resp.headers());
        Ok(BlobBody {
            size,
            body: incoming_stream(resp.into_body()),
        })
    }

    /// Starts an upload session; returns its URL (with the registry's
    /// state query, if any).
    async fn start_upload(&self, repo: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let a = self
            .call(
                Method::POST,
                &url,
                &[push(repo)],
                HeaderMap::new(),
                None,
                &[StatusCode::ACCEPTED],
            )
            .await?;
        self.location(&a.headers, &url)
    }

    fn location(&self, h: &HeaderMap, url: &str) -> Result<String> {
        header_str(h, header::LOCATION)
            .map(|l| self.resolve(l))
            .ok_or_else(|| ClientError::Protocol(path_of(url), "no Location".into()))
    }

    /// Cancels an upload session, best effort (it expires anyway).
    async fn cancel_upload(&self, repo: &str, session: &str) {
        let _ = self
            .send(
                Method::DELETE,
                session,
                &[push(repo)],
                HeaderMap::new(),
                Payload::Bytes(None),
            )
            .await;
    }

    /// Mounts a blob from `from_repo` on the same registry: `true` when
    /// mounted (`201`); `false` when the registry would rather have the
    /// bytes (`202`, whose session is cancelled).
    pub async fn mount_blob(&self, repo: &str, digest: &Digest, from_repo: &str) -> Result<bool> {
        let url = self.url(&format!(
            "/v2/{repo}/blobs/uploads/?mount={}&from={}",
            enc(digest.as_ref()),
            enc(from_repo)
        ));
        let a = self
            .call(
                Method::POST,
                &url,
                &[push(repo), pull(from_repo)],
                HeaderMap::new(),
                None,
                &[StatusCode::CREATED, StatusCode::ACCEPTED],
            )
            .await?;
        if a.status == StatusCode::CREATED {
            return Ok(true);
        }
        if let Ok(session) = self.location(&a.headers, &url) {
            self.cancel_upload(repo, &session).await;
        }
        Ok(false)
    }

    fn with_digest(session: &str, digest: &Digest) -> String {
        let sep = if session.contains('?') { '&' } else { '?' };
        format!("{session}{sep}digest={}", enc(digest.as_ref()))
    }

    /// Pushes a blob of `size` bytes as one streamed `PUT` with
    /// `Content-Length`. A registry that refuses it leaves the stream
    /// spent: call [`Self::push_blob_chunked`] with a new one.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<()> {
        let session = self.start_upload(repo).await?;
        let url = Self::with_digest(&session, digest);
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[push(repo)],
                HeaderMap::new(),
                Payload::Stream(body, size),
            )
            .await?;
        if resp.status() == StatusCode::CREATED || resp.status() == StatusCode::NO_CONTENT {
            return Ok(());
        }
        let e = self.fail(Method::PUT, &url, resp).await;
        self.cancel_upload(repo, &session).await;
        Err(e)
    }

    /// [`Self::push_blob`], and when the registry refuses a monolithic
    /// `PUT` (`400`, `405`, `413`, `501`), [`Self::push_blob_chunked`] in
    /// chunks of `chunk` bytes over a stream `open` makes anew.
    pub async fn push_blob_or_chunks<F, Fut>(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        chunk: usize,
        open: F,
    ) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::io::Result<ByteStream>>,
    {
        let source = |e: std::io::Error| {
            ClientError::Outbound(OutboundError::Transport(
                "blob source".into(),
                e.to_string(),
            ))
        };
        match self
            .push_blob(repo, digest, size, open().await.map_err(source)?)
            .await
        {
            Err(e)
                if matches!(
                    e.status(),
                    Some(
                        StatusCode::BAD_REQUEST
                            | StatusCode::METHOD_NOT_ALLOWED
                            | StatusCode::PAYLOAD_TOO_LARGE
                            | StatusCode::NOT_IMPLEMENTED
                    )
                ) && !matches!(e.code(), "DIGEST_INVALID" | "SIZE_INVALID") =>
            {
                let body = open().await.map_err(source)?;
                self.push_blob_chunked(repo, digest, body, chunk).await
            }
            r => r,
        }
    }

    /// Pushes a blob in `PATCH` chunks of `chunk` bytes with
    /// `Content-Range`, then a `PUT` with the digest.
    pub async fn push_blob_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        body: ByteStream,
        chunk: usize,
    ) -> Result<()> {
        let mut session = self.start_upload(repo).await?;
        let mut offset = 0u64;
        let mut buf = bytes::BytesMut::new();
        let mut body = body;
        let mut done = false;
        while !done {
            while buf.len() < chunk.max(1) {
                match body.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        self.cancel_upload(repo, &session).await;
                        return Err(ClientError::Outbound(OutboundError::Transport(
                            "blob source".into(),
                            e.to_string(),
                        )));
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if buf.is_empty() {
                break;
            }
            let part = buf.split_to(buf.len().min(chunk.max(1))).freeze();
            done = done && buf.is_empty();
            let end = offset + part.len() as u64 - 1;
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("{offset}-{end}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            let a = self
                .call(
                    Method::PATCH,
                    &session,
                    &[push(repo)],
                    h,
                    Some(part.clone()),
                    &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT],
                )
                .await?;
            offset = end + 1;
            session = self.location(&a.headers, &session)?;
        }
        let url = Self::with_digest(&session, digest);
        self.call(
            Method::PUT,
            &url,
            &[push(repo)],
            HeaderMap::new(),
            None,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT],
        )
        .await?;
        Ok(())
    }

    /// The referrers of `digest` (the descriptors of the OCI referrers
    /// API, every page); none when the registry does not have the API.
    pub async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut url = Some(self.url(&format!("/v2/{repo}/referrers/{digest}")));
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > MAX_PAGES {
                break;
            }
            let a = match self
                .call(
                    Method::GET,
                    &u,
                    &[pull(repo)],
                    Self::accept(&[OCI_INDEX]),
                    None,
                    &[StatusCode::OK],
                )
                .await
            {
                Ok(a) => a,
                Err(e)
                    if e.is_not_found() || e.status() == Some(StatusCode::METHOD_NOT_ALLOWED) =>
                {
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            let v: serde_json::Value = serde_json::from_slice(&a.body)
                .map_err(|e| ClientError::Protocol(path_of(&u), e.to_string()))?;
            let before = out.len();
            out.extend(v["manifests"].as_array().cloned().unwrap_or_default());
            url = next_link(&a.headers)
                .filter(|_| out.len() > before)
                .map(|l| self.resolve(&l));
        }
        Ok(out)
    }
}

fn same_kind(a: &Challenge, b: &Challenge) -> bool {
    matches!(
        (a, b),
        (Challenge::Basic, Challenge::Basic) | (Challenge::Bearer { .. }, Challenge::Bearer { .. })
    )
}

/// The `mediaType` a manifest names itself, for a registry that serves it
/// as plain JSON.
fn media_type_in(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v["mediaType"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/_catalog?last=b&n=2>; rel="next""#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"<http://x/prev>; rel="prev", <http://x/next>; rel=next"#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("http://x/next"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn error_bodies_and_paths() {
        let (c, m) = oci_error(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"gone"}]}"#);
        assert_eq!((c.as_str(), m.as_str()), ("MANIFEST_UNKNOWN", "gone"));
        assert_eq!(oci_error(b"<html>"), (String::new(), String::new()));
        assert_eq!(
            path_of("http://h:1/v2/x/blobs/uploads/u?_state=secret"),
            "/v2/x/blobs/uploads/u"
        );
    }

    #[test]
    fn endpoint_urls_are_normalised_and_checked() {
        let http = SafeClient::with_policy(super::super::AddressPolicy::new(true)).unwrap();
        let ep = |u: &str| Endpoint {
            url: u.into(),
            ..Endpoint::default()
        };
        let c = RegistryClient::new(http.clone(), ep("http://127.0.0.1:5000/v2/")).unwrap();
        assert_eq!(c.url("/v2/"), "http://127.0.0.1:5000/v2/");
        assert_eq!(c.resolve("/v2/a?x"), "http://127.0.0.1:5000/v2/a?x");
        let strict = SafeClient::with_policy(super::super::AddressPolicy::new(false)).unwrap();
        let e = RegistryClient::new(strict, ep("http://169.254.169.254/")).unwrap_err();
        assert!(
            matches!(e, ClientError::Outbound(ref o) if o.is_refused()),
            "{e}"
        );
        assert!(RegistryClient::new(http, ep("ftp://x/")).is_err());
    }

    #[test]
    fn errors_tell_statuses_apart() {
        let e = |s: u16| ClientError::Status {
            method: Method::GET,
            path: "/v2/".into(),
            status: StatusCode::from_u16(s).unwrap(),
            code: "X".into(),
            message: String::new(),
            retry_after: None,
        };
        assert!(e(404).is_not_found());
        assert!(e(401).is_denied() && e(403).is_denied());
        assert!(e(429).is_rate_limited() && e(429).is_transient());
        assert!(e(503).is_transient() && !e(404).is_transient());
        assert_eq!(e(404).code(), "X");
    }
}
