//! The one place errors become wire responses: the OCI error body
//! `{"errors":[{"code","message","detail"}]}` with the status the
//! distribution spec gives each code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::route::RouteError;
use crate::registry::RegistryError;
use crate::store::{BlobError, KvError};

/// Error codes of the distribution spec, plus `TAG_INVALID`, `RANGE_INVALID`
/// and `UNKNOWN` that Distribution also uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OciCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    RangeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    /// Harbor's code for a refused change to an immutable tag.
    Precondition,
    #[serde(rename = "TOOMANYREQUESTS")]
    TooManyRequests,
    Unknown,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: OciCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// Extra headers (e.g. `Range` on 416).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: OciCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            OciCode::Unsupported,
            message,
        )
    }
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    code: OciCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A server fault's own message may name paths, keys or backend
        // errors: it goes to the log, the client gets the request id.
        let generic;
        let (message, detail) = if self.status.is_server_error() {
            let id = super::request_id().unwrap_or_else(|| "-".to_owned());
            tracing::error!(status = %self.status, request_id = %id, message = %self.message, "request failed");
            generic = format!("internal server error (request id {id})");
            (generic.as_str(), None)
        } else {
            (self.message.as_str(), self.detail.as_ref())
        };
        let body = Body {
            errors: [Entry {
                code: self.code,
                message,
                detail,
            }],
        };
        let mut resp = (self.status, Json(body)).into_response();
        resp.headers_mut().extend(self.headers);
        resp
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        let (status, code) = match &e {
            RouteError::NotFound => (StatusCode::NOT_FOUND, OciCode::Unsupported),
            RouteError::Name(_) => (StatusCode::BAD_REQUEST, OciCode::NameInvalid),
            RouteError::Reference(_) => (StatusCode::BAD_REQUEST, OciCode::TagInvalid),
            RouteError::Digest(_) => (StatusCode::BAD_REQUEST, OciCode::DigestInvalid),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let message = e.to_string();
        let (status, code) = match &e {
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, OciCode::BlobUnknown),
            E::UploadUnknown | E::UploadGone(_) => {
                (StatusCode::NOT_FOUND, OciCode::BlobUploadUnknown)
            }
            E::UploadInvalid(_) | E::Body(_) => {
                (StatusCode::BAD_REQUEST, OciCode::BlobUploadInvalid)
            }
            E::RangeInvalid { .. } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                OciCode::BlobUploadInvalid,
            ),
            E::DigestInvalid(_) => (StatusCode::BAD_REQUEST, OciCode::DigestInvalid),
            E::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, OciCode::ManifestBlobUnknown),
            E::ManifestInvalid(_) | E::DescriptorMismatch(_) => {
                (StatusCode::BAD_REQUEST, OciCode::ManifestInvalid)
            }
            E::ManifestUnknown | E::ManifestNotAcceptable(_) => {
                (StatusCode::NOT_FOUND, OciCode::ManifestUnknown)
            }
            E::NameUnknown => (StatusCode::NOT_FOUND, OciCode::NameUnknown),
            E::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, OciCode::SizeInvalid),
            E::SizeInvalid(_) => (StatusCode::BAD_REQUEST, OciCode::SizeInvalid),
            E::Unsupported(_) | E::BadParameter(_) => {
                (StatusCode::BAD_REQUEST, OciCode::Unsupported)
            }
            // Harbor's answers: over quota is DENIED, an immutable tag a
            // failed precondition.
            E::QuotaExceeded(_) => (StatusCode::FORBIDDEN, OciCode::Denied),
            E::Immutable(_) => (StatusCode::PRECONDITION_FAILED, OciCode::Precondition),
            // Concurrent writers kept a write from committing: the client
            // may retry (a condition that failed where no caller expected
            // it means the same).
            E::Busy | E::Kv(KvError::Conflict | KvError::ConditionFailed { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, OciCode::TooManyRequests)
            }
            E::Blob(BlobError::NotFound) => (StatusCode::NOT_FOUND, OciCode::BlobUnknown),
            E::Blob(BlobError::InvalidRange) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, OciCode::RangeInvalid)
            }
            E::Blob(BlobError::NoSuchUpload) => (StatusCode::NOT_FOUND, OciCode::BlobUploadUnknown),
            E::Blob(BlobError::PartsMismatch) => {
                (StatusCode::BAD_REQUEST, OciCode::BlobUploadInvalid)
            }
            E::Kv(KvError::InvalidTransaction | KvError::Backend(_))
            | E::Blob(BlobError::Backend(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, OciCode::Unknown)
            }
        };
        let mut err = ApiError::new(status, code, message);
        match &e {
            E::BlobUnknown(d) | E::ManifestBlobUnknown(d) => {
                err = err.detail(serde_json::json!({ "digest": d.to_string() }))
            }
            E::RangeInvalid { offset } => {
                let end = offset.saturating_sub(1);
                if let Ok(v) = HeaderValue::from_str(&format!("0-{end}")) {
                    err.headers.push((header::RANGE, v));
                }
            }
            E::Busy | E::Kv(KvError::Conflict | KvError::ConditionFailed { .. }) => {
                err.headers
                    .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        err
    }
}
