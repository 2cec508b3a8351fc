//! Webhooks end to end over the embedded stores: policies saved through
//! Harbor's API (`/projects/{p}/webhook/…`), events turned into
//! deliveries by the `webhook` worker, and a real HTTP receiver started
//! here on `127.0.0.1:0` that records what it gets.
//!
//! What is pinned: Harbor's default payload, CloudEvents and Slack
//! formats; the signature and the auth header; retries with backoff, then
//! the execution `Error` in the history and the job in the dead-letter
//! queue; a refusal (`4xx`) is not retried; an event heard twice makes
//! one execution, a delivery job run twice sends once; the receiver,
//! reading back what it is told about, finds it; server-side request
//! forgery: targets refused on save (metadata, `file:`, EC2's IPv6
//! endpoint, private addresses unless allowed) and a redirect to the
//! metadata address refused without connecting. All traffic goes to
//! 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth::http::api::api_router;
use berth::oci::{Reference, RepoName};
use berth::outbound::{AddressPolicy, ClientOptions, SafeClient};
use berth::registry::Registry;
use berth::registry::events::Event;
use berth::store::local_queue::LocalQueue;
use berth::store::{Job, Queue};
use berth::webhook::history::Executions;
use berth::webhook::policy::{StoredPolicy, Target, WebhookPolicies, WebhookPolicy};
use berth::webhook::{WebhookOptions, Webhooks, sign};
use serde_json::{Value, json};

#[path = "support/api.rs"]
mod api_support;
mod common;

use api_support::{ADMIN, Client};

// ---- the receiver -----------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    headers: HeaderMap,
    body: Vec<u8>,
    /// Whether the artifact the payload names could be read back then.
    found: Option<bool>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    redirect: Arc<Mutex<Option<String>>>,
    registry: Registry,
}

/// The artifact a payload names (Harbor's default or CloudEvents), if any.
fn named(v: &Value) -> Option<(String, String)> {
    let data = v.get("event_data").or_else(|| v.get("data"))?;
    let repo = data["repository"]["repo_full_name"].as_str()?;
    let digest = data["resources"][0]["digest"].as_str()?;
    Some((repo.to_owned(), digest.to_owned()))
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Read back what the event names, as a CI job would.
    let found = match serde_json::from_slice::<Value>(&body)
        .ok()
        .as_ref()
        .and_then(named)
    {
        Some((repo, digest)) => match (repo.parse::<RepoName>(), digest.parse()) {
            (Ok(repo), Ok(d)) => Some(
                r.registry
                    .artifact(&repo, &Reference::Digest(d))
                    .await
                    .is_ok(),
            ),
            _ => Some(false),
        },
        None => None,
    };
    r.got.lock().unwrap().push(Got {
        headers,
        body: body.to_vec(),
        found,
    });
    if let Some(loc) = r.redirect.lock().unwrap().clone() {
        return (StatusCode::FOUND, [("location", loc)]).into_response();
    }
    StatusCode::from_u16(r.status.load(Ordering::SeqCst))
        .unwrap()
        .into_response()
}

impl Receiver {
    /// A receiver on 127.0.0.1 answering 200; returns it and its URL.
    async fn start(registry: Registry) -> (Receiver, String) {
        let r = Receiver {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            redirect: Arc::default(),
            registry,
        };
        let app = Router::new()
            .route("/hook", axum::routing::any(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (r, format!("http://{addr}/hook"))
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

// ---- the world --------------------------------------------------------------

struct World {
    api: Router,
    registry: Registry,
    policies: WebhookPolicies,
    executions: Executions,
    queue: Arc<LocalQueue>,
    dlq: Arc<LocalQueue>,
    webhooks: Webhooks,
    receiver: Receiver,
    url: String,
    project_id: i64,
    _dir: tempfile::TempDir,
}

impl Client for World {
    fn router(&self) -> &Router {
        &self.api
    }
}

const HOOKS: &str = "/api/v2.0/projects/team/webhook/policies";

async fn world() -> World {
    let p = api_support::parts(
        "a webhook test seed, long enough 0123456",
        Default::default(),
    )
    .await;
    let queue = Arc::new(LocalQueue::new(
        p.kv.clone(),
        "webhook",
        Duration::from_secs(30),
    ));
    let dlq = Arc::new(LocalQueue::new(
        p.kv.clone(),
        "webhook-dlq",
        Duration::from_secs(30),
    ));
    let webhooks = Webhooks::new(
        p.registry.clone(),
        queue.clone(),
        dlq.clone(),
        WebhookOptions {
            delays: vec![Duration::from_millis(50), Duration::from_millis(100)],
            lease: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            public_url: Some("https://reg.example:5000".into()),
            addresses: Some(AddressPolicy::new(true)),
            lookup: None,
        },
    );
    let (receiver, url) = Receiver::start(p.registry.clone()).await;
    let api = api_router(p.iam.clone(), p.registry.clone(), None);
    let mut w = World {
        api,
        registry: p.registry,
        policies: WebhookPolicies::new(p.kv.clone()),
        executions: Executions::new(p.kv.clone()),
        queue,
        dlq,
        webhooks,
        receiver,
        url,
        project_id: 0,
        _dir: p.dir,
    };
    w.project_id = w.project("team", false, ADMIN).await;
    w
}

fn target(kind: &str, address: &str, format: &str) -> Target {
    Target {
        kind: kind.into(),
        address: address.into(),
        auth_header: "Bearer let-me-in".into(),
        skip_cert_verify: false,
        payload_format: format.into(),
    }
}

impl World {
    /// Saves a policy on the receiver (as an administrator who allows
    /// loopback targets would).
    async fn hook(&self, name: &str, t: Target, events: &[&str]) -> StoredPolicy {
        let p = WebhookPolicy {
            name: name.into(),
            targets: vec![t],
            event_types: events.iter().map(|e| (*e).to_owned()).collect(),
            enabled: true,
            ..WebhookPolicy::default()
        };
        self.policies
            .create(
                "team",
                self.project_id,
                p,
                "admin",
                AddressPolicy::new(true),
            )
            .await
            .unwrap()
    }

    /// Pushes `team/app:v1`; returns the push event the registry raises.
    async fn push(&self, seed: &str) -> Event {
        let (digest, size) = api_support::push_image(
            &self.registry,
            "team/app",
            "v1",
            seed,
            &format!("{seed}-layer"),
        )
        .await;
        Event::new(
            "PUSH_ARTIFACT",
            "team",
            json!({"repository": "team/app", "digest": digest.to_string(), "tags": ["v1"],
                "media_type": api_support::OCI_MANIFEST, "size": size, "operator": "admin"}),
        )
    }

    /// Saves a policy on the receiver for pushes, in Harbor's default
    /// format.
    async fn push_hook(&self, name: &str) -> StoredPolicy {
        self.hook(
            name,
            target("http", &self.url, "Default"),
            &["PUSH_ARTIFACT"],
        )
        .await
    }

    /// Hands `e` to the webhook worker and runs its jobs until the
    /// executions of `policy` have finished.
    async fn deliver(&self, e: &Event, policy: i64) {
        self.webhooks.on_event(e).await.unwrap();
        self.pump_until(async || self.finished(policy).await).await;
    }

    /// Another webhook worker on this world's registry and queues.
    fn worker(&self, options: WebhookOptions) -> Webhooks {
        Webhooks::new(
            self.registry.clone(),
            self.queue.clone(),
            self.dlq.clone(),
            options,
        )
    }

    /// Runs the webhook queue's jobs until `done` holds (or a generous
    /// deadline passes: the caller's assertions then say what is missing).
    async fn pump_until(&self, done: impl AsyncFn() -> bool) {
        self.pump_with(&self.webhooks, done).await;
    }

    /// [`World::pump_until`] with another worker running the jobs.
    async fn pump_with(&self, webhooks: &Webhooks, done: impl AsyncFn() -> bool) {
        for _ in 0..1000 {
            for r in self.queue.receive(10).await.unwrap() {
                if webhooks.run(&r.job).await.is_ok() {
                    self.queue.ack(&r.receipt).await.unwrap();
                }
            }
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The executions of a policy, newest first.
    async fn executions_of(&self, policy: i64) -> Vec<berth::webhook::Execution> {
        self.executions.page(policy, 0, 100).await.unwrap().0
    }

    async fn finished(&self, policy: i64) -> bool {
        let e = self.executions_of(policy).await;
        !e.is_empty() && e.iter().all(berth::webhook::Execution::finished)
    }

    /// `POST …/webhook/policies/test` with `body` (a saved policy's id, or
    /// a policy).
    async fn test_hook(&self, body: Value) -> api_support::Resp {
        self.call(Method::POST, &format!("{HOOKS}/test"), ADMIN, Some(body))
            .await
    }

    /// Sets whether webhook targets may be private addresses (the
    /// administrator's `webhook_allow_private`).
    async fn allow_private(&self, allow: bool) {
        self.put(
            "/api/v2.0/configurations",
            ADMIN,
            json!({"webhook_allow_private": allow}),
        )
        .await
        .ok(StatusCode::OK);
    }

    async fn dead_letters(&self) -> Vec<Job> {
        self.dlq
            .receive(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.job)
            .collect()
    }
}

// ---- delivery ---------------------------------------------------------------

#[tokio::test]
async fn a_push_is_delivered_in_harbors_format_signed_and_authorized() {
    let w = world().await;
    let hook = w.push_hook("ci").await;
    let e = w.push("one").await;
    w.deliver(&e, hook.policy.id).await;

    let got = w.receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let g = &got[0];
    assert_eq!(g.header("content-type"), "application/json");
    assert_eq!(g.header("authorization"), "Bearer let-me-in");
    assert_eq!(g.header("x-berth-signature"), sign(&hook.secret, &g.body));
    assert_eq!(g.header("x-berth-event-id"), e.id);
    // The receiver found the artifact it was told about.
    assert_eq!(g.found, Some(true));
    let v = g.json();
    assert_eq!(v["type"], "PUSH_ARTIFACT");
    assert_eq!(v["occur_at"], e.at / 1000);
    assert_eq!(v["operator"], "admin");
    let r = &v["event_data"]["resources"][0];
    assert_eq!(r["digest"], e.data["digest"]);
    assert_eq!(r["tag"], "v1");
    assert_eq!(r["resource_url"], "reg.example:5000/team/app:v1");
    let repo = &v["event_data"]["repository"];
    assert_eq!(repo["name"], "app");
    assert_eq!(repo["namespace"], "team");
    assert_eq!(repo["repo_full_name"], "team/app");
    assert_eq!(repo["repo_type"], "private");
    assert!(repo["date_created"].as_i64().unwrap() > 0);

    // The history, through the API.
    let path = format!("{HOOKS}/{}/executions", hook.policy.id);
    let r = w.get(&path, ADMIN).await;
    r.ok(StatusCode::OK);
    let execs = r.json();
    assert_eq!(execs.as_array().unwrap().len(), 1);
    assert_eq!(execs[0]["status"], "Success");
    assert_eq!(execs[0]["vendor_type"], "WEBHOOK");
    assert_eq!(execs[0]["extra_attrs"]["event_type"], "PUSH_ARTIFACT");
    let eid = execs[0]["id"].as_i64().unwrap();
    let r = w.get(&format!("{path}/{eid}/tasks"), ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json()[0]["run_count"], 1);
    assert_eq!(
        r.json()[0]["extra_attrs"]["attempts"][0]["status_code"],
        200
    );
    let r = w.get(&format!("{path}/{eid}/tasks/{eid}/log"), ADMIN).await;
    r.ok(StatusCode::OK);
    assert!(
        r.text().contains("attempt 1: status 200: delivered"),
        "{}",
        r.text()
    );

    // Nothing went to the dead-letter queue.
    assert!(w.dead_letters().await.is_empty());
}

#[tokio::test]
async fn cloud_events_format() {
    let w = world().await;
    let hook = w
        .hook(
            "ce",
            target("http", &w.url, "CloudEvents"),
            &["PUSH_ARTIFACT"],
        )
        .await;
    let e = w.push("ce").await;
    w.deliver(&e, hook.policy.id).await;
    let got = w.receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let g = &got[0];
    assert_eq!(g.header("content-type"), "application/cloudevents+json");
    assert_eq!(g.header("x-berth-signature"), sign(&hook.secret, &g.body));
    assert_eq!(g.found, Some(true));
    let v = g.json();
    assert_eq!(v["specversion"], "1.0");
    assert_eq!(v["id"], e.id);
    assert_eq!(v["type"], "harbor.artifact.pushed");
    assert_eq!(
        v["source"],
        format!(
            "/projects/{}/webhook/policies/{}",
            w.project_id, hook.policy.id
        )
    );
    assert_eq!(v["datacontenttype"], "application/json");
    assert_eq!(v["operator"], "admin");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["data"]["resources"][0]["tag"], "v1");
}

#[tokio::test]
async fn slack_format() {
    let w = world().await;
    let hook = w
        .hook("chat", target("slack", &w.url, ""), &["PUSH_ARTIFACT"])
        .await;
    let e = w.push("slack").await;
    w.deliver(&e, hook.policy.id).await;
    let got = w.receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let g = &got[0];
    // Slack's incoming webhooks take no auth header: the URL is the secret.
    assert_eq!(g.header("authorization"), "");
    let v = g.json();
    let text: Vec<&str> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert!(text.iter().any(|t| t.contains("PUSH_ARTIFACT")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("team/app")), "{text:?}");
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_then_the_dead_letter_queue() {
    let w = world().await;
    w.receiver.answer(500);
    let hook = w.push_hook("flaky").await;
    let e = w.push("fail").await;
    w.deliver(&e, hook.policy.id).await;

    // Three attempts: the first and one per configured delay.
    assert_eq!(w.receiver.got().len(), 3);
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].status, "Error");
    assert_eq!(execs[0].attempts, 3);
    let attempts = w.executions.attempts(execs[0].id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        [500, 500, 500]
    );
    assert!(attempts.windows(2).all(|p| p[0].at <= p[1].at));
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].kind, "webhook.deliver");
    assert_eq!(dead[0].payload["exec"], execs[0].id);

    let path = format!("{HOOKS}/{}/executions", hook.policy.id);
    let r = w.get(&path, ADMIN).await;
    assert_eq!(r.json()[0]["status"], "Error");
    assert!(
        r.json()[0]["status_message"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    let eid = execs[0].id;
    let log = w.get(&format!("{path}/{eid}/tasks/{eid}/log"), ADMIN).await;
    assert_eq!(
        log.text().matches("status 500").count(),
        3,
        "{}",
        log.text()
    );
}

#[tokio::test]
async fn a_refusing_receiver_is_not_retried() {
    let w = world().await;
    w.receiver.answer(404);
    let hook = w.push_hook("gone").await;
    let e = w.push("gone").await;
    w.deliver(&e, hook.policy.id).await;
    assert_eq!(w.receiver.got().len(), 1);
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs[0].status, "Error");
    assert_eq!(execs[0].attempts, 1);
    assert_eq!(w.dead_letters().await.len(), 1);
}

#[tokio::test]
async fn a_recovering_receiver_gets_the_event_on_a_retry() {
    let w = world().await;
    w.receiver.answer(503);
    let hook = w.push_hook("later").await;
    let e = w.push("later").await;
    w.webhooks.on_event(&e).await.unwrap();
    w.pump_until(async || !w.receiver.got().is_empty()).await;
    w.receiver.answer(200);
    w.pump_until(async || w.finished(hook.policy.id).await)
        .await;
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs[0].status, "Success");
    assert_eq!(execs[0].attempts, 2);
    let got = w.receiver.got();
    assert_eq!(got.len(), 2);
    // The same bytes, signature and event id on every attempt.
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[0].header("x-berth-signature"),
        got[1].header("x-berth-signature")
    );
    assert_eq!(got[1].header("x-berth-event-id"), e.id);
    assert!(w.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_event_heard_twice_makes_one_execution_and_one_delivery() {
    let w = world().await;
    let hook = w.push_hook("once").await;
    let e = w.push("twice").await;
    w.webhooks.on_event(&e).await.unwrap();
    w.webhooks.on_event(&e).await.unwrap();
    // Both deliver jobs (one per hearing) are queued; one sends.
    let jobs = w.queue.receive(10).await.unwrap();
    assert!(!jobs.is_empty());
    for r in &jobs {
        assert!(w.webhooks.run(&r.job).await.unwrap());
    }
    // The same job redelivered (the queue's at-least-once) sends nothing.
    assert!(w.webhooks.run(&jobs[0].job).await.unwrap());
    w.deliver(&e, hook.policy.id).await;
    assert_eq!(w.executions_of(hook.policy.id).await.len(), 1);
    assert_eq!(w.receiver.got().len(), 1);
    let r = w
        .get(&format!("{HOOKS}/{}/executions", hook.policy.id), ADMIN)
        .await;
    assert_eq!(r.header("x-total-count"), "1");
}

#[tokio::test]
async fn only_enabled_policies_subscribed_to_the_event_fire() {
    let w = world().await;
    let pull_only = w
        .hook(
            "pulls",
            target("http", &w.url, "Default"),
            &["PULL_ARTIFACT"],
        )
        .await;
    let off = w.push_hook("off").await;
    let mut p = off.policy.clone();
    p.enabled = false;
    w.policies
        .update("team", w.project_id, p.id, p, AddressPolicy::new(true))
        .await
        .unwrap();
    let on = w.push_hook("on").await;
    let e = w.push("filter").await;
    w.deliver(&e, on.policy.id).await;
    assert!(w.executions_of(pull_only.policy.id).await.is_empty());
    assert!(w.executions_of(off.policy.id).await.is_empty());
    assert_eq!(w.receiver.got().len(), 1);
    // Another project's events do not reach this one's policies.
    let other = Event::new(
        "PUSH_ARTIFACT",
        "elsewhere",
        json!({"repository": "elsewhere/x"}),
    );
    w.webhooks.on_event(&other).await.unwrap();
    assert_eq!(w.executions_of(on.policy.id).await.len(), 1);
}

#[tokio::test]
async fn quota_events_carry_harbors_details() {
    let w = world().await;
    let hook = w
        .hook(
            "quota",
            target("http", &w.url, "Default"),
            &["QUOTA_WARNING"],
        )
        .await;
    let e = Event::new(
        "QUOTA_WARNING",
        "team",
        json!({"repository": "team/app", "digest": "sha256:ab", "used": 90, "limit": 100,
            "message": "quota usage reach 90%"}),
    );
    w.deliver(&e, hook.policy.id).await;
    let v = w.receiver.got()[0].json();
    assert_eq!(v["type"], "QUOTA_WARNING");
    assert_eq!(
        v["event_data"]["custom_attributes"]["Details"],
        "quota usage reach 90%"
    );
    assert_eq!(v["event_data"]["repository"]["repo_full_name"], "team/app");
}

// ---- with the registry's events ---------------------------------------------

/// The whole path: a push and a delete through the registry put their
/// events in the outbox with the change, the events queue carries them to
/// the dispatch, the dispatch to the webhook worker, and the receiver —
/// reading back what it is told about — finds the pushed artifact and no
/// longer finds the deleted one.
#[tokio::test]
async fn registry_events_reach_the_receiver_after_their_commit() {
    use berth::jobs::events::Dispatch;
    let w = world().await;
    let registry = w.registry.clone().with_events(w.queue.clone());
    let webhooks = Webhooks::new(
        registry.clone(),
        w.queue.clone(),
        w.dlq.clone(),
        WebhookOptions {
            delays: vec![Duration::from_millis(50)],
            public_url: Some("https://reg.example:5000".into()),
            addresses: Some(AddressPolicy::new(true)),
            ..WebhookOptions::default()
        },
    );
    let dispatch = Dispatch::new(registry.clone(), vec![Arc::new(webhooks.clone())]);
    let hook = w
        .hook(
            "all",
            target("http", &w.url, "Default"),
            &["PUSH_ARTIFACT", "DELETE_ARTIFACT"],
        )
        .await;
    let (digest, _) = api_support::push_image(&registry, "team/app", "v1", "e2e", "e2e-l").await;
    let repo: RepoName = "team/app".parse().unwrap();
    let pump = async |want: usize| {
        for _ in 0..1000 {
            for r in w.queue.receive(10).await.unwrap() {
                let done = match dispatch.run(&r.job).await {
                    Ok(true) => true,
                    Ok(false) => webhooks.run(&r.job).await.is_ok(),
                    Err(_) => false,
                };
                if done {
                    w.queue.ack(&r.receipt).await.unwrap();
                }
            }
            let execs = w.executions_of(hook.policy.id).await;
            if execs.len() >= want && execs.iter().all(berth::webhook::Execution::finished) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    pump(1).await;
    registry
        .delete_manifest(&repo, &Reference::Digest(digest.clone()))
        .await
        .unwrap();
    pump(2).await;

    let got = w.receiver.got();
    let kinds: Vec<String> = got
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["PUSH_ARTIFACT", "DELETE_ARTIFACT"]);
    assert_eq!(
        got[0].found,
        Some(true),
        "announced before the push committed"
    );
    assert_eq!(
        got[1].found,
        Some(false),
        "announced before the delete committed"
    );
    for g in &got {
        assert_eq!(
            g.json()["event_data"]["resources"][0]["digest"],
            digest.to_string()
        );
        assert_eq!(g.header("x-berth-signature"), sign(&hook.secret, &g.body));
    }
    assert!(registry.outbox(10).await.unwrap().is_empty());
}

// ---- server-side request forgery -------------------------------------------

fn policy_body(address: &str) -> Value {
    json!({
        "name": format!("hook-{}", address.len()),
        "enabled": true,
        "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": address, "auth_header": "", "skip_cert_verify": false}],
    })
}

#[tokio::test]
async fn forbidden_targets_are_refused_on_save() {
    let w = world().await;
    for address in [
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://0xa9fea9fe/",
        "gopher://example.com/",
        // Private targets are off unless the administrator allows them.
        w.url.as_str(),
    ] {
        let r = w.post(HOOKS, ADMIN, policy_body(address)).await;
        r.err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        assert!(
            r.message().contains("address") || r.message().contains("URL"),
            "{address}: {}",
            r.message()
        );
    }
    // A policy saved earlier cannot be changed to such a target either.
    let r = w
        .post(HOOKS, ADMIN, policy_body("https://hooks.example.com/x"))
        .await;
    r.ok(StatusCode::CREATED);
    let id = r.location_id();
    let r = w
        .put(
            &format!("{HOOKS}/{id}"),
            ADMIN,
            json!({"targets": [{"type": "http", "address": "http://169.254.169.254/"}]}),
        )
        .await;
    r.err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    // Nothing reached the receiver.
    assert!(w.receiver.got().is_empty());
}

#[tokio::test]
async fn private_targets_are_accepted_when_the_administrator_allows_them() {
    let w = world().await;
    w.allow_private(true).await;
    let r = w.post(HOOKS, ADMIN, policy_body(&w.url)).await;
    r.ok(StatusCode::CREATED);
    let id = r.location_id();
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    // The test delivery of the saved policy, signed with its secret.
    let r = w.test_hook(json!({"id": id})).await;
    r.ok(StatusCode::OK);
    let got = w.receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "PUSH_ARTIFACT");
    assert_eq!(got[0].json()["operator"], "admin");
    assert_eq!(
        got[0].header("x-berth-signature"),
        sign(&secret, &got[0].body)
    );
    // A receiver that refuses makes the test a 400 that says so.
    w.receiver.answer(500);
    let r = w.test_hook(json!({"id": id})).await;
    r.err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(r.message().contains("500"), "{}", r.message());
    w.allow_private(false).await;
    let mut body = policy_body(&w.url);
    body["name"] = "another".into();
    w.post(HOOKS, ADMIN, body)
        .await
        .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused_without_connecting() {
    let w = world().await;
    *w.receiver.redirect.lock().unwrap() = Some("http://169.254.169.254/latest/meta-data/".into());
    let hook = w.push_hook("sneaky").await;
    let e = w.push("redirect").await;
    w.deliver(&e, hook.policy.id).await;
    // The receiver on loopback was asked once; the redirect was refused by
    // the address filter (no retry: the verdict cannot change).
    assert_eq!(w.receiver.got().len(), 1);
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs[0].status, "Error");
    assert_eq!(execs[0].attempts, 1);
    assert!(
        execs[0].message.contains("169.254.169.254"),
        "{}",
        execs[0].message
    );
    assert!(execs[0].message.contains("refused"), "{}", execs[0].message);
    assert_eq!(w.dead_letters().await.len(), 1);
}

#[tokio::test]
async fn a_target_made_private_after_saving_is_refused_at_delivery() {
    let w = world().await;
    let hook = w.push_hook("now-private").await;
    // The same worker, with private targets no longer allowed.
    let strict = w.worker(WebhookOptions {
        addresses: Some(AddressPolicy::new(false)),
        delays: vec![],
        ..WebhookOptions::default()
    });
    let e = w.push("strict").await;
    strict.on_event(&e).await.unwrap();
    w.pump_with(&strict, async || w.finished(hook.policy.id).await)
        .await;
    assert!(w.receiver.got().is_empty());
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs[0].status, "Error");
    assert!(execs[0].message.contains("refused"), "{}", execs[0].message);
}

/// Resolves every name to the instance-metadata address, without DNS.
struct ToMetadata;

impl berth::outbound::Lookup for ToMetadata {
    fn lookup(
        &self,
        _host: String,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::IpAddr>>> + Send>,
    > {
        Box::pin(async { Ok(vec!["169.254.169.254".parse().unwrap()]) })
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_the_metadata_address_is_refused_when_connecting() {
    let w = world().await;
    // Saved while the name looked harmless (names are not resolved on save).
    let hook = w
        .hook(
            "rebound",
            target("http", "http://hooks.rebinding.test/x", "Default"),
            &["PUSH_ARTIFACT"],
        )
        .await;
    let rebound = w.worker(WebhookOptions {
        addresses: Some(AddressPolicy::new(true)),
        lookup: Some(Arc::new(ToMetadata)),
        ..WebhookOptions::default()
    });
    let e = w.push("rebound").await;
    rebound.on_event(&e).await.unwrap();
    w.pump_with(&rebound, async || w.finished(hook.policy.id).await)
        .await;
    let execs = w.executions_of(hook.policy.id).await;
    assert_eq!(execs[0].status, "Error", "{}", execs[0].message);
    assert_eq!(execs[0].attempts, 1, "a refusal is not retried");
    assert!(
        execs[0].message.contains("169.254.169.254"),
        "{}",
        execs[0].message
    );
    assert_eq!(w.dead_letters().await.len(), 1);
}

// ---- the API ----------------------------------------------------------------

#[tokio::test]
async fn policies_crud_in_harbors_shapes() {
    let w = world().await;
    let body = json!({
        "name": "ci",
        "description": "tell CI",
        "enabled": true,
        "event_types": ["PUSH_ARTIFACT", "DELETE_ARTIFACT"],
        "targets": [{"type": "http", "address": "https://hooks.example.com/ci",
            "auth_header": "Bearer x", "skip_cert_verify": false, "payload_format": "CloudEvents"}],
    });
    let r = w.post(HOOKS, ADMIN, body.clone()).await;
    r.ok(StatusCode::CREATED);
    let id = r.location_id();
    assert_eq!(r.json()["id"], id);
    assert_eq!(r.json()["secret"].as_str().unwrap().len(), 64);
    // Names are unique in a project.
    w.post(HOOKS, ADMIN, body.clone())
        .await
        .err(StatusCode::CONFLICT, "CONFLICT");

    let r = w.get(&format!("{HOOKS}/{id}"), ADMIN).await;
    r.ok(StatusCode::OK);
    let v = r.json();
    assert_eq!(v["name"], "ci");
    assert_eq!(v["project_id"], w.project_id);
    assert_eq!(v["creator"], "admin");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["targets"][0]["type"], "http");
    assert_eq!(v["targets"][0]["payload_format"], "CloudEvents");
    assert!(v.get("secret").is_none());
    assert!(v["creation_time"].as_str().unwrap().ends_with('Z'));

    let r = w
        .put(
            &format!("{HOOKS}/{id}"),
            ADMIN,
            json!({"enabled": false, "name": "ci2"}),
        )
        .await;
    r.ok(StatusCode::OK);
    let v = w.get(&format!("{HOOKS}/{id}"), ADMIN).await.json();
    assert_eq!(v["enabled"], false);
    assert_eq!(v["name"], "ci2");
    // The old name is free again.
    w.post(HOOKS, ADMIN, body).await.ok(StatusCode::CREATED);

    let r = w.get(HOOKS, ADMIN).await;
    r.ok(StatusCode::OK);
    assert_eq!(r.header("x-total-count"), "2");

    let r = w
        .get("/api/v2.0/projects/team/webhook/lasttrigger", ADMIN)
        .await;
    r.ok(StatusCode::OK);
    assert_eq!(r.json().as_array().unwrap().len(), 4);

    let r = w.get("/api/v2.0/projects/team/webhook/events", ADMIN).await;
    r.ok(StatusCode::OK);
    let ev = r.json();
    assert_eq!(ev["event_type"].as_array().unwrap().len(), 9);
    assert_eq!(ev["notify_type"], json!(["http", "slack"]));
    assert_eq!(
        ev["payload_formats"][0]["formats"],
        json!(["Default", "CloudEvents"])
    );

    w.delete(&format!("{HOOKS}/{id}"), ADMIN)
        .await
        .ok(StatusCode::OK);
    w.get(&format!("{HOOKS}/{id}"), ADMIN)
        .await
        .err(StatusCode::NOT_FOUND, "NOT_FOUND");
    let log = w.audit_log().await;
    assert!(
        log.iter()
            .any(|e| e["resource_type"] == "notification-policy" && e["operation"] == "delete"),
        "{log:?}"
    );
}

#[tokio::test]
async fn invalid_policies_are_refused() {
    let w = world().await;
    for body in [
        json!({"name": "x", "event_types": ["PUSH_ARTIFACT"], "targets": []}),
        json!({"name": "x", "event_types": [], "targets": [{"type": "http", "address": "https://a.example/"}]}),
        json!({"name": "x", "event_types": ["NOPE"], "targets": [{"type": "http", "address": "https://a.example/"}]}),
        json!({"name": "", "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "http", "address": "https://a.example/"}]}),
        json!({"name": "x", "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "email", "address": "https://a.example/"}]}),
        json!({"name": "x", "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "slack", "address": "https://a.example/", "payload_format": "CloudEvents"}]}),
    ] {
        w.post(HOOKS, ADMIN, body)
            .await
            .err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn test_delivery_reaches_the_target_once() {
    let w = world().await;
    let client = SafeClient::new(ClientOptions {
        policy: AddressPolicy::new(true),
        ..ClientOptions::default()
    })
    .unwrap();
    let hook = w.push_hook("probe").await;
    let out = berth::webhook::test_delivery(
        &client,
        &hook.policy,
        ("team", w.project_id, false),
        Some("https://reg.example"),
        &hook.secret,
        "admin",
    )
    .await;
    assert!(out.ok(), "{out:?}");
    let got = w.receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "PUSH_ARTIFACT");
    assert_eq!(
        got[0].header("x-berth-signature"),
        sign(&hook.secret, &got[0].body)
    );
    // Through the API, a refused target is a 400 that says why.
    let r = w.test_hook(policy_body("http://169.254.169.254/")).await;
    r.err(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(w.receiver.got().len(), 1);
}
