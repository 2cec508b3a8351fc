//! The Lambda-limits harness: an API Gateway HTTP API in front of Lambda
//! functions, faithful where it matters for a registry.
//!
//! A request goes through the same hands as in AWS:
//!
//! 1. **API Gateway** ([`Gateway`]) buffers the body and refuses one over
//!    10 MiB, then builds the payload format 2.0 event: `rawPath`,
//!    `rawQueryString`, lower-case headers (duplicates joined with commas),
//!    `cookies`, `requestContext.http`, and the body as text or, for
//!    binary content, base64 (4/3 larger).
//! 2. **Lambda** ([`LambdaFunction::invoke`]) refuses an event JSON over
//!    6 MiB, then the runtime deserializes it into `lambda_http`'s request
//!    and calls the function's `Router` through `lambda_http`'s own adapter
//!    (the one `lambda_http::run` uses), so the request the router sees and
//!    the response JSON (text or base64 body, `cookies`) are produced by the
//!    library itself. A panic or an undeserializable event is a function
//!    error; so is a response JSON over 6 MiB + 100 bytes.
//! 3. **API Gateway** turns the response JSON back into HTTP, or answers
//!    for the platform when something above failed.
//!
//! What the client sees when a limit is hit (as observed on AWS):
//!
//! | failure | status | body |
//! | --- | --- | --- |
//! | body over 10 MiB | 413 | `HTTP content length exceeded 10485760 bytes.` (`content-type: text; charset=utf-8`) |
//! | event over 6 MiB | 413 | `{"message":"Request Entity Too Large"}` |
//! | response over 6 MiB + 100, panic, bad event | 500 | `{"message":"Internal Server Error"}` |

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Map, Value, json};
use tower::Service;

use super::limits::{API_GATEWAY_MAX_BODY, LAMBDA_MAX_REQUEST, LAMBDA_MAX_RESPONSE};
use super::routes::Selected;

/// Headers API Gateway does not forward: hop-by-hop headers, and `cookie`,
/// which travels in the event's `cookies` array.
const NOT_FORWARDED: [HeaderName; 5] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
    header::COOKIE,
];

/// How the emulated API Gateway presents itself to the functions.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub api_id: String,
    pub account_id: String,
    /// `requestContext.stage`; `$default` keeps the stage out of paths.
    pub stage: String,
    /// `x-forwarded-proto` sent to the functions (`https` in AWS; `http`
    /// for a local stack clients reach over plain HTTP).
    pub forwarded_proto: String,
    /// `x-forwarded-port`.
    pub forwarded_port: u16,
    /// `requestContext.http.sourceIp` and `x-forwarded-for`.
    pub source_ip: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_id: "berthlocal".to_owned(),
            account_id: "000000000000".to_owned(),
            stage: "$default".to_owned(),
            forwarded_proto: "https".to_owned(),
            forwarded_port: 443,
            source_ip: "127.0.0.1".to_owned(),
        }
    }
}

/// Why an invocation produced no function response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The event is over Lambda's synchronous payload limit; the function
    /// never ran.
    #[error(
        "request payload of {size} bytes is over the {LAMBDA_MAX_REQUEST}-byte invocation limit"
    )]
    RequestTooLarge { size: usize },
    /// The function's response is over Lambda's response payload limit.
    #[error(
        "response payload size exceeded maximum allowed payload size ({LAMBDA_MAX_RESPONSE} bytes): {size} bytes"
    )]
    ResponseTooLarge { size: usize },
    /// The runtime reported an error: the event did not deserialize, the
    /// handler panicked, or the response did not serialize.
    #[error("function error: {0}")]
    Function(String),
}

/// One Lambda function serving an HTTP `Router`, invoked the way
/// `lambda_http::run(router)` runs it.
#[derive(Clone)]
pub struct LambdaFunction {
    name: String,
    router: Router,
}

impl LambdaFunction {
    pub fn new(name: impl Into<String>, router: Router) -> Self {
        Self {
            name: name.into(),
            router,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one invocation with a raw event payload and returns the raw
    /// response payload, enforcing Lambda's payload limits on both.
    pub async fn invoke(&self, payload: &[u8], request_id: &str) -> Result<Vec<u8>, InvokeError> {
        if payload.len() > LAMBDA_MAX_REQUEST {
            return Err(InvokeError::RequestTooLarge {
                size: payload.len(),
            });
        }
        // What the runtime does with the bytes it fetched from the Runtime API.
        let event: LambdaRequest = serde_json::from_slice(payload)
            .map_err(|e| InvokeError::Function(format!("event did not deserialize: {e}")))?;
        let mut context = Context::default();
        context.request_id = request_id.to_owned();
        context.deadline = deadline_millis(Duration::from_secs(29));
        context.invoked_function_arn = format!(
            "arn:aws:lambda:us-east-1:000000000000:function:{}",
            self.name
        );
        // `lambda_http::run(router)` is `lambda_runtime::run(Adapter::from(router))`.
        // (The adapter itself is not `Send`; only its future is kept.)
        let call = {
            let mut adapter = lambda_http::Adapter::from(self.router.clone());
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                adapter.call(LambdaEvent::new(event, context))
            }))
            .map_err(|p| {
                InvokeError::Function(format!("handler panicked: {}", panic_message(&*p)))
            })?
        };
        let response = match AssertUnwindSafe(call).catch_unwind().await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(p) => {
                return Err(InvokeError::Function(format!(
                    "handler panicked: {}",
                    panic_message(&*p)
                )));
            }
        };
        let out = serde_json::to_vec(&response)
            .map_err(|e| InvokeError::Function(format!("response did not serialize: {e}")))?;
        if out.len() > LAMBDA_MAX_RESPONSE {
            return Err(InvokeError::ResponseTooLarge { size: out.len() });
        }
        Ok(out)
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn deadline_millis(budget: Duration) -> u64 {
    (now() + budget).as_millis() as u64
}

/// The emulated API Gateway stage.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    config: GatewayConfig,
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Buffers the request body as API Gateway does, refusing more than
    /// 10 MiB, then [`forward`](Self::forward)s it. An over-limit body is
    /// read to its end (up to 1 GiB) before the 413, so that a client
    /// still sending it gets the answer rather than a reset connection.
    pub async fn handle(
        &self,
        function: &LambdaFunction,
        route: &Selected,
        req: Request<Body>,
    ) -> Response<Body> {
        let request_id = new_request_id();
        let (parts, body) = req.into_parts();
        let bytes = match buffer_body(body).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge { read }) => {
                tracing::warn!(path = %parts.uri.path(), read, "request body over API Gateway's limit");
                return body_too_large(&request_id);
            }
            Err(BodyError::Read(e)) => {
                tracing::warn!(error = %e, "request body could not be read");
                return platform_error(StatusCode::BAD_REQUEST, "Bad Request", &request_id);
            }
        };
        self.forward_with_id(
            function,
            route,
            Request::from_parts(parts, bytes),
            &request_id,
        )
        .await
    }

    /// Sends a buffered request to `function` as the event for `route`.
    pub async fn forward(
        &self,
        function: &LambdaFunction,
        route: &Selected,
        req: Request<Bytes>,
    ) -> Response<Body> {
        self.forward_with_id(function, route, req, &new_request_id())
            .await
    }

    async fn forward_with_id(
        &self,
        function: &LambdaFunction,
        route: &Selected,
        req: Request<Bytes>,
        request_id: &str,
    ) -> Response<Body> {
        if req.body().len() > API_GATEWAY_MAX_BODY {
            return body_too_large(request_id);
        }
        let head = req.method() == Method::HEAD;
        let event = self.event(route, &req, request_id, now());
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "event did not serialize");
                return platform_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    request_id,
                );
            }
        };
        match function.invoke(&payload, request_id).await {
            Ok(out) => integration_response(&out, head, request_id),
            Err(e @ InvokeError::RequestTooLarge { .. }) => {
                tracing::warn!(function = function.name(), route = %route.route_key, error = %e, "invocation refused");
                platform_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                    request_id,
                )
            }
            Err(e) => {
                tracing::error!(function = function.name(), route = %route.route_key, error = %e, "invocation failed");
                platform_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    request_id,
                )
            }
        }
    }

    /// The payload format 2.0 event API Gateway sends for `req`.
    pub fn event(
        &self,
        route: &Selected,
        req: &Request<Bytes>,
        request_id: &str,
        at: Duration,
    ) -> Value {
        let cfg = &self.config;
        let body = req.body();
        let mut headers = Map::new();
        for name in req.headers().keys() {
            if NOT_FORWARDED.contains(name) {
                continue;
            }
            let joined: Vec<&str> = req
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            headers.insert(name.as_str().to_owned(), joined.join(",").into());
        }
        if !body.is_empty() {
            headers.insert("content-length".to_owned(), body.len().to_string().into());
        }
        headers.insert("x-forwarded-for".to_owned(), cfg.source_ip.clone().into());
        headers.insert(
            "x-forwarded-port".to_owned(),
            cfg.forwarded_port.to_string().into(),
        );
        headers.insert(
            "x-forwarded-proto".to_owned(),
            cfg.forwarded_proto.clone().into(),
        );
        headers.insert(
            "x-amzn-trace-id".to_owned(),
            format!(
                "Root=1-{:08x}-{}",
                at.as_secs(),
                request_id
                    .replace('-', "")
                    .chars()
                    .take(24)
                    .collect::<String>()
            )
            .into(),
        );

        let cookies: Vec<Value> = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| c.to_owned().into())
            .collect();

        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let domain_prefix = host.split('.').next().unwrap_or_default().to_owned();
        let raw_path = req.uri().path().to_owned();
        let raw_query = req.uri().query().unwrap_or("").to_owned();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();

        let mut event = json!({
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": cfg.account_id,
                "apiId": cfg.api_id,
                "domainName": host,
                "domainPrefix": domain_prefix,
                "http": {
                    "method": req.method().as_str(),
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": cfg.source_ip,
                    "userAgent": user_agent,
                },
                "requestId": request_id,
                "routeKey": route.route_key,
                "stage": cfg.stage,
                "time": clf_time(at.as_secs()),
                "timeEpoch": at.as_millis() as u64,
            },
            "isBase64Encoded": false,
        });
        if !cookies.is_empty() {
            event["cookies"] = cookies.into();
        }
        let query = query_parameters(&raw_query);
        if !query.is_empty() {
            event["queryStringParameters"] = query.into();
        }
        if !route.path_params.is_empty() {
            event["pathParameters"] = json!(route.path_params);
        }
        if !body.is_empty() {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match std::str::from_utf8(body) {
                Ok(text) if is_text(content_type) => event["body"] = text.into(),
                _ => {
                    event["body"] = BASE64.encode(body).into();
                    event["isBase64Encoded"] = true.into();
                }
            }
        }
        event
    }
}

enum BodyError {
    TooLarge { read: u64 },
    Read(axum::Error),
}

/// How much of an over-limit body is read (and dropped) before answering.
/// A client that streams a whole layer in one request (as `docker push`
/// does) then reads the 413 instead of failing with a broken pipe.
const DRAIN_LIMIT: u64 = 1 << 30;

/// Buffers a body of at most [`API_GATEWAY_MAX_BODY`] bytes.
async fn buffer_body(mut body: Body) -> Result<Bytes, BodyError> {
    let mut buf = bytes::BytesMut::new();
    let mut read = 0u64;
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
            continue;
        };
        read += data.len() as u64;
        if !over && buf.len() + data.len() > API_GATEWAY_MAX_BODY {
            over = true;
            buf = bytes::BytesMut::new();
        }
        if !over {
            buf.extend_from_slice(&data);
        } else if read > DRAIN_LIMIT {
            break;
        }
    }
    if over {
        Err(BodyError::TooLarge { read })
    } else {
        Ok(buf.freeze())
    }
}

/// Whether API Gateway passes a body of this media type as text rather
/// than base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || [
            "application/json",
            "application/javascript",
            "application/xml",
            "application/x-www-form-urlencoded",
            "application/yaml",
        ]
        .contains(&essence.as_str())
        || ["+json", "+xml", "+yaml"]
            .iter()
            .any(|s| essence.ends_with(s))
}

/// `queryStringParameters`: decoded, duplicates joined with commas.
fn query_parameters(raw: &str) -> Map<String, Value> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.entry(dec(k)).or_default().push(dec(v));
    }
    out.into_iter()
        .map(|(k, v)| (k, v.join(",").into()))
        .collect()
}

/// `12/Mar/2020:19:03:58 +0000`, the format of `requestContext.time`.
fn clf_time(epoch_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (epoch_secs / 86_400) as i64;
    let secs = epoch_secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// API Gateway's own answer (not the function's).
fn platform_error(status: StatusCode, message: &str, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(json!({ "message": message }).to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_request_id(resp.headers_mut(), request_id);
    resp
}

fn body_too_large(request_id: &str) -> Response<Body> {
    let mut resp = Response::new(Body::from(format!(
        "HTTP content length exceeded {API_GATEWAY_MAX_BODY} bytes."
    )));
    *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    // Sic: this is the content type API Gateway sends with this answer.
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text; charset=utf-8"),
    );
    add_request_id(resp.headers_mut(), request_id);
    resp
}

fn add_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", v);
    }
}

/// API Gateway's reading of a format 2.0 function response.
fn integration_response(payload: &[u8], head: bool, request_id: &str) -> Response<Body> {
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        tracing::error!("function response is not JSON");
        return platform_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        );
    };
    // Without a statusCode the whole payload is a 200 JSON body.
    let Some(status) = value.get("statusCode").and_then(Value::as_u64) else {
        let mut resp = Response::new(Body::from(payload.to_vec()));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add_request_id(resp.headers_mut(), request_id);
        return resp;
    };
    let Ok(status) = u16::try_from(status)
        .map_err(|_| ())
        .and_then(|s| StatusCode::from_u16(s).map_err(|_| ()))
    else {
        return platform_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        );
    };
    let body: Vec<u8> = match (
        value.get("body").and_then(Value::as_str),
        value.get("isBase64Encoded").and_then(Value::as_bool),
    ) {
        (Some(b), Some(true)) => match BASE64.decode(b) {
            Ok(bytes) => bytes,
            Err(_) => {
                return platform_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    request_id,
                );
            }
        },
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let mut headers = HeaderMap::new();
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            let (Ok(name), Some(Ok(v))) = (
                HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            headers.append(name, v);
        }
    }
    for cookie in value
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    // The length on the wire is the body's; a HEAD answer keeps the one
    // the function computed for the GET it stands for.
    if !head || !headers.contains_key(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    add_request_id(&mut headers, request_id);
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body)
    });
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_in_common_log_format() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(1_584_039_838), "12/Mar/2020:19:03:58 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn text_and_binary_media_types() {
        assert!(is_text(Some("application/vnd.oci.image.manifest.v1+json")));
        assert!(is_text(Some("text/plain; charset=utf-8")));
        assert!(is_text(Some("Application/JSON")));
        assert!(!is_text(Some("application/octet-stream")));
        assert!(!is_text(None));
    }

    #[test]
    fn query_parameters_are_decoded_and_joined() {
        let q = query_parameters("digest=sha256%3Aab&n=1&n=2&flag");
        assert_eq!(q["digest"], "sha256:ab");
        assert_eq!(q["n"], "1,2");
        assert_eq!(q["flag"], "");
    }

    #[test]
    fn function_responses_without_status_are_json_200() {
        let r = integration_response(br#"{"hello":"world"}"#, false, "id");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let r = integration_response(b"not json", false, "id");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
