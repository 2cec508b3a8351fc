//! The platform's size limits, and the layer that keeps the function
//! routers inside them.
//!
//! A request reaches a function only as an API Gateway event: the body is
//! capped by API Gateway (10 MiB), then the whole event JSON by Lambda
//! (6 MiB for a synchronous invocation), and binary bodies travel
//! base64-encoded, so they grow by 4/3 on the way (DESIGN §4).

use std::task::{Context, Poll};

use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::http::{ApiError, OciCode};

/// API Gateway's cap on a request body (HTTP API quota "Payload size:
/// 10 MB", enforced as 10,485,760 bytes).
pub const API_GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

/// Lambda's cap on a synchronous invocation's request payload, i.e. the
/// serialized event JSON (6 MiB).
pub const LAMBDA_MAX_REQUEST: usize = 6 * 1024 * 1024;

/// Lambda's cap on a synchronous invocation's response payload: 100 bytes
/// more than the request cap ("Response payload size exceeded maximum
/// allowed payload size (6291556 bytes)").
pub const LAMBDA_MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100;

/// Room kept in the event for everything but the body: headers, query,
/// request context. A registry request's envelope is about 2 KiB.
pub const EVENT_ENVELOPE_RESERVE: usize = 16 * 1024;

/// The largest body that always fits in one invocation, even base64-encoded:
/// 4,706,304 bytes (about 4.49 MiB).
pub const MAX_INVOCATION_BODY: u64 = ((LAMBDA_MAX_REQUEST - EVENT_ENVELOPE_RESERVE) / 4 * 3) as u64;

/// The chunk size clients are told to use through Lambda.
pub const RECOMMENDED_CHUNK: u64 = 4 * 1024 * 1024;

// What the layer lets through always fits, and so does a recommended chunk.
const _: () = assert!(
    base64_len(MAX_INVOCATION_BODY as usize) + EVENT_ENVELOPE_RESERVE <= LAMBDA_MAX_REQUEST
);
const _: () = assert!(RECOMMENDED_CHUNK <= MAX_INVOCATION_BODY);

/// Size of `n` bytes once base64-encoded (with padding).
pub const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Refuses, before reading it, a request whose body cannot fit in one
/// Lambda invocation: `413` with the OCI error `SIZE_INVALID` telling the
/// client to upload in chunks or through the upload gateway.
///
/// The size is the `Content-Length` header or, without one, the body's
/// exact size hint (in Lambda the body is already in memory).
#[derive(Debug, Clone, Copy)]
pub struct InvocationLimitLayer {
    max: u64,
}

impl InvocationLimitLayer {
    pub const fn new(max: u64) -> Self {
        Self { max }
    }
}

impl Default for InvocationLimitLayer {
    fn default() -> Self {
        Self::new(MAX_INVOCATION_BODY)
    }
}

impl<S> Layer<S> for InvocationLimitLayer {
    type Service = InvocationLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvocationLimit {
            inner,
            max: self.max,
        }
    }
}

/// The service made by [`InvocationLimitLayer`].
#[derive(Debug, Clone)]
pub struct InvocationLimit<S> {
    inner: S,
    max: u64,
}

/// The size a request announces for its body.
fn announced_size<B: http_body::Body>(req: &Request<B>) -> Option<u64> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    declared.or_else(|| http_body::Body::size_hint(req.body()).exact())
}

/// The `413 SIZE_INVALID` answer for a body of `size` bytes.
pub fn too_large_for_invocation(size: u64, max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        OciCode::SizeInvalid,
        format!(
            "a request body of {size} bytes does not fit in one Lambda invocation (at most {max} bytes); \
             use chunked upload (PATCH chunks ≤ 4 MiB) or the upload gateway"
        ),
    )
    .detail(serde_json::json!({ "size": size, "max": max, "chunk": RECOMMENDED_CHUNK }))
}

impl<S, B> Service<Request<B>> for InvocationLimit<S>
where
    S: Service<Request<B>, Response = Response>,
    B: http_body::Body,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match announced_size(&req) {
            Some(size) if size > self.max => Either::Left(ready(Ok(too_large_for_invocation(
                size, self.max,
            )
            .into_response()))),
            _ => Either::Right(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recommended_chunk_fits_base64_encoded_with_its_envelope() {
        assert_eq!(MAX_INVOCATION_BODY, 4_706_304);
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
    }
}
