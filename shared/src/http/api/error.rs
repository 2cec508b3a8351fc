//! The one place `/api/v2.0` errors become wire responses: Harbor's body
//! `{"errors":[{"code":"NOT_FOUND","message":"…"}]}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::iam::DirectoryError;
use crate::store::KvError;

/// An error of the management API on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Harbor's error code for a status.
    pub fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION",
            StatusCode::PAYLOAD_TOO_LARGE => "BAD_REQUEST",
            StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
            s if s.is_server_error() => "INTERNAL_SERVER_ERROR",
            _ => "BAD_REQUEST",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A server fault's own message may name keys or backend errors:
        // it goes to the log, the client gets the request id.
        let generic;
        let message = if self.status.is_server_error() {
            let id = crate::http::request_id().unwrap_or_else(|| "-".to_owned());
            tracing::error!(status = %self.status, request_id = %id, message = %self.message, "api request failed");
            generic = format!("internal server error (request id {id})");
            generic.as_str()
        } else {
            self.message.as_str()
        };
        let body = Body {
            errors: [Entry {
                code: self.code(),
                message,
            }],
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(m) => ApiError::not_found(m),
            DirectoryError::Conflict(m) => ApiError::conflict(m),
            DirectoryError::Invalid(m) => ApiError::bad_request(m),
            DirectoryError::Kv(KvError::Conflict | KvError::ConditionFailed { .. }) => {
                ApiError::conflict("the resource was changed by another request; try again")
            }
            e @ (DirectoryError::Corrupt(_) | DirectoryError::Kv(_)) => {
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        DirectoryError::Kv(e).into()
    }
}

/// The result of a management API handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::registry::RegistryError> for ApiError {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::RegistryError as R;
        match e {
            R::ManifestUnknown => ApiError::not_found("artifact not found"),
            R::NameUnknown => ApiError::not_found("repository not found"),
            R::BlobUnknown(d) | R::ManifestBlobUnknown(d) => {
                ApiError::not_found(format!("blob {d} not found in the repository"))
            }
            R::Busy => {
                ApiError::conflict("too many concurrent changes to the same item; try again")
            }
            R::Kv(k) => k.into(),
            R::QuotaExceeded(m) => ApiError::forbidden(m),
            R::Immutable(m) => ApiError::precondition(m),
            e @ (R::ManifestInvalid(_)
            | R::DigestInvalid(_)
            | R::DescriptorMismatch(_)
            | R::BadParameter(_)
            | R::Unsupported(_)
            | R::ManifestTooLarge { .. }
            | R::SizeInvalid(_)
            | R::ManifestNotAcceptable(_)) => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(e.to_string()),
        }
    }
}
