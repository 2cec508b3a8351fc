//! Handlers of the OCI distribution API: extract, call the service, answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;

use super::AppState;
use super::error::{ApiError, OciCode};
use super::route::V2Route;
use crate::auth::upload_token::STATE_PARAM;
use crate::oci::digest::parse_digest;
use crate::oci::manifest::{MAX_MANIFEST_SIZE, OCI_INDEX, essence};
use crate::oci::{Digest, RepoName};
use crate::registry::events::{Event, kinds};
use crate::registry::{Listing, RegistryError, StoredManifest, UploadStatus};
use crate::store::{ByteStream, now_secs};

type HandlerResult = Result<Response, ApiError>;

const DIGEST_HEADER: &str = "docker-content-digest";
const UPLOAD_UUID_HEADER: &str = "docker-upload-uuid";

/// The single entry point for `/v2/`: the route was parsed by middleware.
pub(super) async fn dispatch(
    State(state): State<Arc<AppState>>,
    Extension(route): Extension<V2Route>,
    req: Request,
) -> Response {
    handle(&state, &route, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(state: &AppState, route: &V2Route, req: Request) -> HandlerResult {
    let (req, body) = req.into_parts();
    let method = req.method.clone();
    if state.uploads.is_gateway {
        gateway_guard(state, route, &req).await?;
    }
    match (route, &method) {
        (V2Route::Base, &Method::GET | &Method::HEAD) => Ok(base()),
        (V2Route::Catalog, &Method::GET) => catalog(state, &req).await,
        (V2Route::Tags { name }, &Method::GET) => tags(state, name, &req).await,
        (V2Route::Manifest { name, reference }, &Method::GET | &Method::HEAD) => {
            get_manifest(state, name, reference, &req, method == Method::HEAD).await
        }
        (V2Route::Manifest { name, reference }, &Method::PUT) => {
            put_manifest(state, name, reference, &req, body).await
        }
        (V2Route::Manifest { name, reference }, &Method::DELETE) => state
            .registry
            .delete_manifest(name, reference)
            .await
            .map_err(ApiError::from)
            .map(|()| accepted()),
        (V2Route::Blob { name, digest }, &Method::GET | &Method::HEAD) => {
            get_blob(state, name, digest, &req, method == Method::HEAD).await
        }
        (V2Route::Blob { name, digest }, &Method::DELETE) => state
            .registry
            .delete_blob(name, digest)
            .await
            .map_err(ApiError::from)
            .map(|()| accepted()),
        (V2Route::UploadStart { name, mount }, &Method::POST) => {
            start_upload(state, name, mount.as_ref(), &req, body).await
        }
        (V2Route::Upload { name, id }, &Method::GET) => {
            let status = state.registry.upload_status(name, id).await?;
            upload_response(state, name, &status, StatusCode::NO_CONTENT, &req).await
        }
        (V2Route::Upload { name, id }, &Method::PATCH) => {
            patch_upload(state, name, id, &req, body).await
        }
        (V2Route::Upload { name, id }, &Method::PUT) => {
            finish_upload(state, name, id, &req, body).await
        }
        (V2Route::Upload { name, id }, &Method::DELETE) => state
            .registry
            .cancel_upload(name, id)
            .await
            .map_err(ApiError::from)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
        (V2Route::Referrers { name, digest }, &Method::GET) => {
            referrers(state, name, digest, &req).await
        }
        _ => Err(ApiError::unsupported(format!(
            "{method} is not supported here"
        ))),
    }
}

fn base() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn query(req: &Parts) -> Result<HashMap<String, String>, ApiError> {
    let q = req.uri.query().unwrap_or("");
    serde_urlencoded_lite(q).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            OciCode::Unsupported,
            "malformed query string",
        )
    })
}

/// Decodes `a=b&c=d` (the last of repeated keys wins).
fn serde_urlencoded_lite(q: &str) -> Option<HashMap<String, String>> {
    super::form_pairs(q).map(|pairs| pairs.into_iter().collect())
}

/// The registry's URL as clients use it: the configured public URL, else
/// the scheme and host of the request. On the upload gateway the public
/// URL is the registry's (required there), so a finished blob's
/// `Location` sends clients back to the registry.
fn registry_base(state: &AppState, req: &Parts) -> String {
    match &state.public_url {
        Some(u) => u.clone(),
        None => request_base(req),
    }
}

/// Where upload sessions continue: the upload gateway if there is one,
/// else this registry.
fn upload_base(state: &AppState, req: &Parts) -> String {
    match (&state.uploads.gateway_url, state.uploads.is_gateway) {
        (Some(gateway), _) => gateway.clone(),
        (None, true) => request_base(req),
        (None, false) => registry_base(state, req),
    }
}

/// The scheme and host this request was sent to.
fn request_base(req: &Parts) -> String {
    super::public_base(None, &req.headers)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(TryStreamExt::map_err(
        body.into_data_stream(),
        std::io::Error::other,
    ))
}

fn parse_n(q: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    q.get("n")
        .map(|n| n.parse::<usize>())
        .transpose()
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                OciCode::Unsupported,
                "n must be a non-negative integer",
            )
        })
}

fn listing_response(
    req: &Parts,
    listing: &Listing,
    n: Option<usize>,
    body: serde_json::Value,
) -> Response {
    let mut resp = axum::Json(body).into_response();
    if listing.more
        && let Some(last) = listing.names.last()
    {
        let mut link = format!("<{}?", req.uri.path());
        if let Some(n) = n {
            link.push_str(&format!("n={n}&"));
        }
        let last: String =
            percent_encoding::utf8_percent_encode(last, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        link.push_str(&format!("last={last}>; rel=\"next\""));
        resp.headers_mut().insert(header::LINK, header_value(&link));
    }
    resp
}

async fn catalog(state: &AppState, req: &Parts) -> HandlerResult {
    let q = query(req)?;
    let n = parse_n(&q)?;
    let listing = state
        .registry
        .catalog(n, q.get("last").map(String::as_str))
        .await?;
    let body = serde_json::json!({ "repositories": listing.names });
    Ok(listing_response(req, &listing, n, body))
}

async fn tags(state: &AppState, name: &RepoName, req: &Parts) -> HandlerResult {
    let q = query(req)?;
    let n = parse_n(&q)?;
    let listing = state
        .registry
        .list_tags(name, n, q.get("last").map(String::as_str))
        .await?;
    let body = serde_json::json!({ "name": name.as_str(), "tags": listing.names });
    Ok(listing_response(req, &listing, n, body))
}

/// Whether the client's `Accept` allows `media_type`. No `Accept`, a
/// wildcard, or an `Accept` that names no manifest type at all (a generic
/// client) all allow it.
fn acceptable(headers: &HeaderMap, media_type: &str) -> bool {
    let offered: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(essence)
        .filter(|s| !s.is_empty())
        .collect();
    let names_manifests = offered
        .iter()
        .any(|o| crate::oci::ManifestKind::from_media_type(o).is_some());
    !names_manifests
        || offered
            .iter()
            .any(|o| o == media_type || o == "*/*" || o == "application/*")
}

fn manifest_headers(m: &StoredManifest) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, header_value(&m.media_type)),
        (header::CONTENT_LENGTH, HeaderValue::from(m.size)),
        (
            header::HeaderName::from_static(DIGEST_HEADER),
            header_value(m.digest.as_ref()),
        ),
        (header::ETAG, header_value(&format!("\"{}\"", m.digest))),
    ]
}

async fn get_manifest(
    state: &AppState,
    name: &RepoName,
    reference: &crate::oci::Reference,
    req: &Parts,
    head: bool,
) -> HandlerResult {
    // A proxy-cache project may answer from its upstream instead.
    let m = match state.registry.proxy_manifest(name, reference, !head).await {
        Some(m) => m,
        None => state.registry.get_manifest(name, reference, !head).await?,
    };
    if !acceptable(&req.headers, &m.media_type) {
        return Err(RegistryError::ManifestNotAcceptable(m.media_type).into());
    }
    let headers = manifest_headers(&m);
    if !head && let Some(batch) = state.registry.note_pull(name, &m.digest) {
        let registry = state.registry.clone();
        tokio::spawn(async move { registry.write_pulls(batch).await });
    }
    if !head && state.registry.has_event_sink() {
        let tags = match reference {
            crate::oci::Reference::Tag(t) => vec![t.as_str().to_owned()],
            crate::oci::Reference::Digest(_) => Vec::new(),
        };
        state.registry.emit(Event::artifact(
            kinds::PULL_ARTIFACT,
            name,
            &m.digest,
            tags,
            &m.media_type,
            m.size as i64,
        ));
    }
    Ok(match m.bytes {
        Some(b) if !head => (headers, b).into_response(),
        _ => (headers, Body::empty()).into_response(),
    })
}

async fn put_manifest(
    state: &AppState,
    name: &RepoName,
    reference: &crate::oci::Reference,
    req: &Parts,
    body: Body,
) -> HandlerResult {
    refuse_proxy_push(state, name).await?;
    let content_type = &req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let too_large = || {
        ApiError::from(RegistryError::ManifestTooLarge {
            max: MAX_MANIFEST_SIZE,
        })
    };
    let declared = &req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > MAX_MANIFEST_SIZE as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, MAX_MANIFEST_SIZE);
    let bytes: Bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err(RegistryError::Body(std::io::Error::other(e)).into()),
    };
    let out = state
        .registry
        .put_manifest(name, reference, content_type.as_deref(), bytes)
        .await?;
    let digest = out.digest.to_string();
    let base = registry_base(state, req);
    let mut headers = vec![
        (
            header::LOCATION,
            header_value(&format!("{base}/v2/{name}/manifests/{digest}")),
        ),
        (
            header::HeaderName::from_static(DIGEST_HEADER),
            header_value(&digest),
        ),
    ];
    if let Some(subject) = out.subject {
        headers.push((
            header::HeaderName::from_static("oci-subject"),
            header_value(subject.as_ref()),
        ));
    }
    let mut resp = StatusCode::CREATED.into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`. `Ok(None)`
/// means "whole object" (no or unsupported header); `Err` means 416.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| ())?;
            let end: u64 = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                b.parse::<u64>()
                    .map_err(|_| ())?
                    .min(size.saturating_sub(1))
            };
            (start, end)
        }
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (true, true) => return Err(()),
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    state: &AppState,
    name: &RepoName,
    digest: &Digest,
    req: &Parts,
    head: bool,
) -> HandlerResult {
    let info = match state.registry.blob_info(name, digest).await {
        Err(RegistryError::BlobUnknown(_)) => return proxy_blob(state, name, digest, head).await,
        r => r?,
    };
    let digest_header = (
        header::HeaderName::from_static(DIGEST_HEADER),
        header_value(digest.as_ref()),
    );
    if head {
        let headers = [
            digest_header,
            (header::CONTENT_LENGTH, HeaderValue::from(info.size)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ];
        return Ok((headers, Body::empty()).into_response());
    }
    if let Some(url) = state.registry.blob_url(&info).await? {
        let headers = [digest_header, (header::LOCATION, header_value(&url))];
        return Ok((StatusCode::TEMPORARY_REDIRECT, headers).into_response());
    }
    let range = parse_range(&req.headers, info.size).map_err(|()| {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            OciCode::RangeInvalid,
            "requested range is not satisfiable",
        );
        e.headers.push((
            header::CONTENT_RANGE,
            header_value(&format!("bytes */{}", info.size)),
        ));
        e
    })?;
    let obj = state.registry.read_blob(digest, &info, range).await?;
    let mut resp = Body::from_stream(obj.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::HeaderName::from_static(DIGEST_HEADER),
        header_value(digest.as_ref()),
    );
    match range {
        Some((s, e)) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(e - s + 1));
            h.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {s}-{e}/{}", obj.total_size)),
            );
        }
        None => {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(obj.total_size));
        }
    }
    Ok(resp)
}

/// Proxy-cache projects hold what their upstream has; clients do not
/// push there (Harbor refuses it too).
async fn refuse_proxy_push(state: &AppState, name: &RepoName) -> Result<(), ApiError> {
    let project = crate::registry::keys::project_of(name.as_str());
    if state.registry.is_proxy_project(project).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            OciCode::Denied,
            format!("project {project} is a proxy cache: it cannot be pushed to"),
        ));
    }
    Ok(())
}

/// A blob a proxy-cache project does not hold yet: its size from the
/// upstream (`HEAD`), or its bytes streamed while they are stored.
async fn proxy_blob(
    state: &AppState,
    name: &RepoName,
    digest: &Digest,
    head: bool,
) -> HandlerResult {
    let unknown = || ApiError::from(RegistryError::BlobUnknown(digest.clone()));
    let (size, body) = if head {
        let size = state.registry.proxy_blob_size(name, digest).await;
        (Some(size.ok_or_else(unknown)?), Body::empty())
    } else {
        let blob = state
            .registry
            .proxy_blob(name, digest)
            .await
            .ok_or_else(unknown)?;
        (blob.size, Body::from_stream(blob.body))
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::HeaderName::from_static(DIGEST_HEADER),
        header_value(digest.as_ref()),
    );
    if let Some(size) = size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    Ok(resp)
}

fn digest_param(q: &HashMap<String, String>) -> Result<Option<Digest>, ApiError> {
    q.get("digest")
        .map(|d| parse_digest(d))
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                OciCode::DigestInvalid,
                format!("invalid digest: {e}"),
            )
        })
}

/// `201 Created` for a stored blob; its `Location` is absolute on the
/// registry (clients resolve a relative one against the host they sent
/// the request to, which for a finished upload may be the gateway).
fn blob_created(state: &AppState, req: &Parts, name: &RepoName, digest: &Digest) -> Response {
    let d = digest.to_string();
    let base = registry_base(state, req);
    let headers = [
        (
            header::LOCATION,
            header_value(&format!("{base}/v2/{name}/blobs/{d}")),
        ),
        (
            header::HeaderName::from_static(DIGEST_HEADER),
            header_value(&d),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(0)),
    ];
    (StatusCode::CREATED, headers).into_response()
}

/// The upload gateway serves only upload sessions, each with a valid token.
async fn gateway_guard(state: &AppState, route: &V2Route, req: &Parts) -> Result<(), ApiError> {
    let V2Route::Upload { name, id } = route else {
        if *route == V2Route::Base {
            return Ok(());
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            OciCode::Unsupported,
            "the upload gateway serves upload sessions only",
        ));
    };
    let unauthorized =
        |m: String| ApiError::new(StatusCode::UNAUTHORIZED, OciCode::Unauthorized, m);
    let signer = upload_signer(state)
        .await?
        .ok_or_else(|| unauthorized("the upload gateway has no signing key".to_owned()))?;
    let q = query(req)?;
    let token = q
        .get(STATE_PARAM)
        .ok_or_else(|| unauthorized("upload token missing".to_owned()))?;
    signer
        .verify(token, name.as_str(), id, now_secs())
        .map_err(|e| unauthorized(e.to_string()))
}

/// The upload-token signer, if uploads are signed (loading its key on
/// first use); a key that cannot be loaded is a server fault.
async fn upload_signer(state: &AppState) -> Result<Option<&crate::auth::UploadSigner>, ApiError> {
    let Some(key) = &state.uploads.key else {
        return Ok(None);
    };
    key.signer().await.map(Some).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            OciCode::Unknown,
            format!("the upload-token key is unavailable: {e}"),
        )
    })
}

async fn upload_response(
    state: &AppState,
    name: &RepoName,
    status: &UploadStatus,
    code: StatusCode,
    req: &Parts,
) -> HandlerResult {
    let base = upload_base(state, req);
    let mut location = format!("{base}/v2/{name}/blobs/uploads/{}", status.id);
    if let Some(signer) = upload_signer(state).await? {
        let token = signer.issue(name.as_str(), &status.id, now_secs());
        location.push_str(&format!("?{STATE_PARAM}={token}"));
    }
    let headers = [
        (header::LOCATION, header_value(&location)),
        (
            header::RANGE,
            header_value(&format!("0-{}", status.offset.saturating_sub(1))),
        ),
        (
            header::HeaderName::from_static(UPLOAD_UUID_HEADER),
            header_value(&status.id),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(0)),
    ];
    Ok((code, headers).into_response())
}

async fn start_upload(
    state: &AppState,
    name: &RepoName,
    mount: Option<&crate::http::Mount>,
    req: &Parts,
    body: Body,
) -> HandlerResult {
    refuse_proxy_push(state, name).await?;
    if let Some(m) = mount {
        if state
            .registry
            .mount_blob(name, &m.digest, m.from.as_ref())
            .await?
        {
            return Ok(blob_created(state, req, name, &m.digest));
        }
    } else if let Some(digest) = digest_param(&query(req)?)? {
        state
            .registry
            .monolithic_upload(name, &digest, body_stream(body))
            .await?;
        return Ok(blob_created(state, req, name, &digest));
    }
    let status = state.registry.start_upload(name).await?;
    upload_response(state, name, &status, StatusCode::ACCEPTED, req).await
}

/// Parses a chunk's `Content-Range: <start>-<end>` (inclusive).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            OciCode::BlobUploadInvalid,
            "Content-Range must be <start>-<end>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse::<u64>().map_err(|_| bad())?;
    let end = b.trim().parse::<u64>().map_err(|_| bad())?;
    Ok(Some((start, end)))
}

async fn patch_upload(
    state: &AppState,
    name: &RepoName,
    id: &str,
    req: &Parts,
    body: Body,
) -> HandlerResult {
    let range = content_range(&req.headers)?;
    let status = state
        .registry
        .patch_upload(name, id, range, body_stream(body))
        .await?;
    upload_response(state, name, &status, StatusCode::ACCEPTED, req).await
}

async fn finish_upload(
    state: &AppState,
    name: &RepoName,
    id: &str,
    req: &Parts,
    body: Body,
) -> HandlerResult {
    let q = query(req)?;
    let digest = digest_param(&q)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            OciCode::DigestInvalid,
            "the digest query parameter is required",
        )
    })?;
    let range = content_range(&req.headers)?;
    state
        .registry
        .finish_upload(name, id, &digest, range, body_stream(body))
        .await?;
    Ok(blob_created(state, req, name, &digest))
}

async fn referrers(
    state: &AppState,
    name: &RepoName,
    digest: &Digest,
    req: &Parts,
) -> HandlerResult {
    let q = query(req)?;
    let filter = q.get("artifactType").filter(|t| !t.is_empty());
    let after = q
        .get("last")
        .map(|l| parse_digest(l))
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                OciCode::DigestInvalid,
                format!("invalid last: {e}"),
            )
        })?;
    let page = state
        .registry
        .referrers(name, digest, filter.map(String::as_str), after.as_ref())
        .await?;
    let body = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page.manifests });
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        h.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    if let Some(next) = page.next {
        let mut link = format!("<{}?last={next}", req.uri.path());
        if let Some(t) = filter {
            let t: String =
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            link.push_str(&format!("&artifactType={t}"));
        }
        link.push_str(">; rel=\"next\"");
        h.insert(header::LINK, header_value(&link));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn ranges() {
        let r = |v: &str, size| parse_range(&h(header::RANGE, v), size);
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=95-200", 100), Ok(Some((95, 99))));
        assert_eq!(r("bytes=100-", 100), Err(()));
        assert_eq!(r("bytes=5-1", 100), Err(()));
        assert_eq!(r("bytes=x-1", 100), Err(()));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(parse_range(&HeaderMap::new(), 100), Ok(None));
    }

    #[test]
    fn content_ranges() {
        let c = |v: &str| content_range(&h(header::CONTENT_RANGE, v)).map_err(|e| e.code);
        assert_eq!(c("0-99"), Ok(Some((0, 99))));
        assert_eq!(c("bytes 10-19/*"), Ok(Some((10, 19))));
        assert_eq!(c("abc"), Err(OciCode::BlobUploadInvalid));
        assert_eq!(c("-5"), Err(OciCode::BlobUploadInvalid));
    }

    #[test]
    fn accept_negotiation() {
        let oci = crate::oci::manifest::OCI_MANIFEST;
        assert!(acceptable(&HeaderMap::new(), oci));
        assert!(acceptable(&h(header::ACCEPT, "application/json"), oci));
        assert!(acceptable(&h(header::ACCEPT, "*/*"), oci));
        assert!(acceptable(
            &h(header::ACCEPT, &format!("{OCI_INDEX}, {oci};q=0.5")),
            oci
        ));
        assert!(!acceptable(&h(header::ACCEPT, OCI_INDEX), oci));
    }

    #[test]
    fn query_strings() {
        let q = serde_urlencoded_lite("n=10&last=a%2Fb&x").unwrap();
        assert_eq!(q["n"], "10");
        assert_eq!(q["last"], "a/b");
        assert_eq!(q["x"], "");
        assert!(serde_urlencoded_lite("a=%FF").is_none());
    }

    proptest! {
        #[test]
        fn header_parsers_never_panic(v in "[ -~]{0,40}", size in 0u64..1000) {
            let _ = parse_range(&h(header::RANGE, &v), size);
            let _ = content_range(&h(header::CONTENT_RANGE, &v));
            let _ = serde_urlencoded_lite(&v);
        }
    }
}
