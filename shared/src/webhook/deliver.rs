//! One HTTP attempt at a target, and what its outcome means for retries.
//!
//! A `2xx` is a delivery. `408`, `429`, `5xx`, a timeout and a transport
//! error are worth another attempt. Any other answer (`3xx` left after
//! the redirects Berth follows, and `4xx`: the receiver refuses this
//! request, and would refuse its identical copy) fails at once, as does a
//! target the address filter refuses: retrying cannot change the
//! verdict, and a refused target must not be knocked on five times.
//!
//! A request carries `Content-Type` (`application/json`, or
//! `application/cloudevents+json`), the target's auth header as
//! `Authorization` (http targets only: a Slack incoming webhook's URL is
//! its secret), the signature ([`SIGNATURE_HEADER`]) and the event's id
//! ([`EVENT_ID_HEADER`]), the same on every attempt.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::EVENT_ID_HEADER;
use super::payload::{SIGNATURE_HEADER, sign};
use super::policy::{HTTP, Target};
use crate::outbound::{OutboundError, SafeClient};

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's status (0: no answer).
    pub status: u16,
    /// Empty on success.
    pub error: String,
    /// Whether another attempt may succeed.
    pub retry: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_empty()
    }
}

/// Whether a receiver's answer is worth another attempt.
pub fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// The request headers of a delivery.
fn headers(target: &Target, body: &[u8], secret: &str, event_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(target.format().content_type()),
    );
    if target.kind == HTTP
        && !target.auth_header.is_empty()
        && let Ok(mut v) = HeaderValue::from_str(&target.auth_header)
    {
        v.set_sensitive(true);
        h.insert(header::AUTHORIZATION, v);
    }
    if !secret.is_empty()
        && let Ok(v) = HeaderValue::from_str(&sign(secret, body))
    {
        h.insert(SIGNATURE_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(event_id) {
        h.insert(EVENT_ID_HEADER, v);
    }
    h
}

/// POSTs `body` to the target once.
pub async fn attempt(
    client: &SafeClient,
    target: &Target,
    body: &[u8],
    secret: &str,
    event_id: &str,
) -> Outcome {
    let h = headers(target, body, secret, event_id);
    let sent = client
        .send(
            Method::POST,
            &target.address,
            h,
            Some(Bytes::copy_from_slice(body)),
        )
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                Outcome {
                    status: status.as_u16(),
                    error: String::new(),
                    retry: false,
                }
            } else {
                Outcome {
                    status: status.as_u16(),
                    error: format!("the receiver answered {status}"),
                    retry: retryable(status),
                }
            }
        }
        Err(e) => Outcome {
            status: 0,
            retry: matches!(e, OutboundError::Transport(..) | OutboundError::Timeout(..)),
            error: e.to_string(),
        },
    }
}
