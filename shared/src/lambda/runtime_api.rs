//! A Lambda Runtime API on 127.0.0.1, to run the function binaries
//! themselves (not just their routers) as Lambda runs them: the binary
//! polls `GET /2018-06-01/runtime/invocation/next`, gets an event, and
//! posts its response or error back.
//!
//! ```text
//! let api = RuntimeApi::start().await?;
//! Command::new("target/debug/berth-token").envs(api.env("token")).spawn()?;
//! let outcome = api.invoke(&event_json).await;
//! ```
//!
//! The invocation payload limits of [`super::limits`] apply both ways.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, oneshot};

use super::limits::{LAMBDA_MAX_REQUEST, LAMBDA_MAX_RESPONSE};

const PREFIX: &str = "/2018-06-01/runtime";

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's response payload.
    Response(Vec<u8>),
    /// The function reported an error (`/invocation/{id}/error`).
    Error(serde_json::Value),
    /// The function failed to start (`/init/error`).
    InitError(serde_json::Value),
    /// The event is over Lambda's invocation payload limit; nothing ran.
    RequestTooLarge,
    /// The function's response is over Lambda's response payload limit.
    ResponseTooLarge,
    /// No answer within the timeout.
    TimedOut,
}

struct Invocation {
    id: String,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<serde_json::Value>>,
    arrived: Notify,
    failed_init: Notify,
    /// When the function first asked for an event: the end of its init.
    first_poll: Mutex<Option<std::time::Instant>>,
    polled: Notify,
}

/// A running Runtime API endpoint.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(respond),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(fail))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `AWS_LAMBDA_RUNTIME_API`: host and port.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives a function's process.
    pub fn env(&self, function: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// When the function first polled for an event (the end of its
    /// initialisation), waiting up to `timeout` for it.
    pub async fn first_poll(&self, timeout: Duration) -> Option<std::time::Instant> {
        let polled = self.shared.polled.notified();
        if let Some(t) = *lock(&self.shared.first_poll) {
            return Some(t);
        }
        tokio::select! {
            () = polled => *lock(&self.shared.first_poll),
            () = tokio::time::sleep(timeout) => *lock(&self.shared.first_poll),
        }
    }

    /// Queues one invocation and waits (up to `timeout`) for its outcome.
    pub async fn invoke_within(&self, payload: &[u8], timeout: Duration) -> Outcome {
        if payload.len() > LAMBDA_MAX_REQUEST {
            return Outcome::RequestTooLarge;
        }
        if let Some(e) = lock(&self.shared.init_error).clone() {
            return Outcome::InitError(e);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.waiting).insert(id.clone(), tx);
        lock(&self.shared.queue).push_back(Invocation {
            id: id.clone(),
            payload: payload.to_vec(),
        });
        self.shared.arrived.notify_one();
        let init_failed = self.shared.failed_init.notified();
        let outcome = tokio::select! {
            r = rx => r.unwrap_or(Outcome::TimedOut),
            () = init_failed => Outcome::InitError(lock(&self.shared.init_error).clone().unwrap_or_default()),
            () = tokio::time::sleep(timeout) => Outcome::TimedOut,
        };
        lock(&self.shared.waiting).remove(&id);
        outcome
    }

    /// [`invoke_within`](Self::invoke_within) 30 seconds.
    pub async fn invoke(&self, payload: &[u8]) -> Outcome {
        self.invoke_within(payload, Duration::from_secs(30)).await
    }

    /// Invokes the function with the API Gateway event of `req`, as
    /// `infra/routes.json` routes it; fails unless the route leads to
    /// `function` and the function answers with a response payload.
    pub async fn invoke_http(
        &self,
        function: &str,
        req: &http::Request<Bytes>,
    ) -> Result<serde_json::Value, String> {
        let what = format!("{} {}", req.method(), req.uri());
        let table = super::routes::RouteTable::builtin().map_err(|e| e.to_string())?;
        let route = table.select(req.method().as_str(), req.uri().path());
        if route.function != function {
            return Err(format!(
                "{what} routes to {}, not {function}",
                route.function
            ));
        }
        let event = super::apigw::Gateway::default().event(
            &route,
            req,
            "request-1",
            Duration::from_secs(1_700_000_000),
        );
        let payload = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        match self.invoke(&payload).await {
            Outcome::Response(out) => {
                serde_json::from_slice(&out).map_err(|e| format!("{what}: {e}"))
            }
            other => Err(format!("{what}: {other:?}")),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    {
        let mut first = lock(&shared.first_poll);
        if first.is_none() {
            *first = Some(std::time::Instant::now());
            shared.polled.notify_waiters();
        }
    }
    loop {
        let arrived = shared.arrived.notified();
        if let Some(inv) = lock(&shared.queue).pop_front() {
            let deadline = (SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + Duration::from_secs(30))
            .as_millis();
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", header(&inv.id));
            headers.insert("lambda-runtime-deadline-ms", header(&deadline.to_string()));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:local"),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"),
            );
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            return (headers, inv.payload).into_response();
        }
        arrived.await;
    }
}

fn complete(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&shared.waiting).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > LAMBDA_MAX_RESPONSE {
        complete(&shared, &id, Outcome::ResponseTooLarge);
        let msg = format!("Exceeded maximum allowed payload size ({LAMBDA_MAX_RESPONSE} bytes).");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(
                serde_json::json!({"errorMessage": msg, "errorType": "RequestEntityTooLarge"}),
            ),
        )
            .into_response();
    }
    complete(&shared, &id, Outcome::Response(body.to_vec())).into_response()
}

async fn fail(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let err = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    complete(&shared, &id, Outcome::Error(err)).into_response()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let err = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    *lock(&shared.init_error) = Some(err);
    shared.failed_init.notify_waiters();
    StatusCode::ACCEPTED
}

/// A function binary running against a [`RuntimeApi`]; killed when
/// dropped. Its log lines (stdout) are dropped; stderr is inherited.
pub struct FunctionProcess {
    child: std::process::Child,
}

impl RuntimeApi {
    /// Starts `program` with the environment of [`env`](Self::env) plus
    /// `extra`, as the Lambda service starts a function.
    pub fn spawn(
        &self,
        program: &std::path::Path,
        function: &str,
        extra: &[(String, String)],
    ) -> std::io::Result<FunctionProcess> {
        let child = std::process::Command::new(program)
            .envs(self.env(function))
            .envs(extra.iter().cloned())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(FunctionProcess { child })
    }
}

impl FunctionProcess {
    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
