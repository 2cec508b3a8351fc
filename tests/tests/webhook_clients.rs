//! Webhooks end to end: a receiver in the test (a small HTTP server on
//! `127.0.0.1`, recording every request) behind a project's webhook policy
//! (Harbor's `…/projects/{p}/webhook/policies`), while skopeo pushes and
//! pulls and the API deletes:
//!
//! - `PUSH_ARTIFACT`, `PULL_ARTIFACT` and `DELETE_ARTIFACT` arrive in
//!   Harbor's default format, with the target's `Authorization` header and
//!   Berth's `X-Berth-Signature` (HMAC-SHA256 of the body under the secret
//!   the create answered with, checked here); the receiver reads the pushed
//!   artifact back through the API while it holds the push event, and it is
//!   there (an event is announced only after its write committed); the
//!   executions, tasks and task logs show the deliveries with status 200;
//! - a receiver answering `500` is retried, and each failed attempt is
//!   recorded with its status code and named in the task log;
//! - a target on the instance-metadata address is refused when the policy
//!   is saved (`400`), and nothing is stored;
//! - a CloudEvents target gets `application/cloudevents+json`, `specversion`
//!   1.0 and `type` `harbor.artifact.pushed`.
//!
//! The harness starts Berth with `BERTH_WEBHOOK_ALLOW_PRIVATE=true`, so
//! loopback receivers are allowed. Skipped on Distribution (no
//! `/api/v2.0`, no webhooks).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use berth_e2e::containers::ContainersEnv;
use berth_e2e::http::Response;
use berth_e2e::oci::{Image, OciLayout};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, http, require_tools, skip_requested};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a delivery (or a run of retries) may take to show up.
const WAIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// What the receiver's hook noted while handling it.
    note: String,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The Harbor event type of a default-format body.
    fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} {}", self.method, self.path)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        writeln!(f, "\n{}", String::from_utf8_lossy(&self.body))?;
        if !self.note.is_empty() {
            writeln!(f, "(receiver noted: {})", self.note)?;
        }
        Ok(())
    }
}

/// Decides a request's answer: the status, and a note kept with it.
type Hook = dyn Fn(&Delivery) -> (u16, String) + Send + Sync;

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Delivery>>,
    changed: Condvar,
}

/// A tiny HTTP/1.1 server on `127.0.0.1:0`, one request per connection
/// (`Connection: close`), answering what its hook says.
struct Receiver {
    addr: SocketAddr,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(hook: impl Fn(&Delivery) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let hook: Arc<Hook> = Arc::new(hook);
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, hook) = (log.clone(), hook.clone());
                    std::thread::spawn(move || serve(conn, &log, &*hook));
                }
            })
        };
        Self {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn all(&self) -> Vec<Delivery> {
        self.log.seen.lock().unwrap().clone()
    }

    /// Waits (on the receiver's condition variable, no fixed sleeps) until
    /// `want` holds for what was received; returns it.
    fn wait_until(&self, what: &str, want: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + WAIT;
        let mut seen = self.log.seen.lock().unwrap();
        loop {
            if want(&seen) {
                return seen.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let all: Vec<String> = seen.iter().map(ToString::to_string).collect();
                panic!(
                    "the receiver did not get {what} within {WAIT:?}; it got {}:\n{}",
                    all.len(),
                    all.join("\n---\n")
                );
            }
            seen = self
                .log
                .changed
                .wait_timeout(seen, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Waits for a default-format event of `kind`; returns it.
    fn wait_event(&self, kind: &str) -> Delivery {
        let all = self.wait_until(kind, |d| d.iter().any(|d| d.event_type() == kind));
        all.into_iter().find(|d| d.event_type() == kind).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from `conn`, records it, answers the hook's status.
fn serve(conn: TcpStream, log: &Log, hook: &Hook) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // the Drop guard's wake-up, or a probe
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = find("content-length") {
        body = vec![0; len.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
    }
    let mut d = Delivery {
        method,
        path,
        headers,
        body,
        note: String::new(),
    };
    let (status, note) = hook(&d);
    d.note = note;
    log.seen.lock().unwrap().push(d);
    log.changed.notify_all();
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} Receiver\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = conn.flush();
}

// ---------------------------------------------------------------------------
// HMAC-SHA256 (RFC 2104) over the sha2 this package has
// ---------------------------------------------------------------------------

fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

/// Checks the delivery's `X-Berth-Signature` against `secret`.
fn assert_signed(d: &Delivery, secret: &str) {
    let got = d
        .header("x-berth-signature")
        .unwrap_or_else(|| panic!("no X-Berth-Signature on:\n{d}"));
    let want = format!("sha256={}", hmac_sha256(secret.as_bytes(), &d.body));
    assert_eq!(
        got, want,
        "the signature is not HMAC-SHA256(secret, body):\n{d}"
    );
}

// ---------------------------------------------------------------------------
// Set-up and API helpers
// ---------------------------------------------------------------------------

struct Setup {
    reg: Registry,
    env: ContainersEnv,
    work: tempfile::TempDir,
    rng: Rng,
}

fn setup(test: &str, project: &str) -> Option<Setup> {
    if skip_requested(test) {
        return None;
    }
    if !Target::from_env().is_berth() {
        eprintln!("SKIPPED {test}: Distribution has no /api/v2.0 and no webhooks");
        return None;
    }
    require_tools(&["skopeo", "curl"]);
    let reg = Registry::start();
    reg.create_project(project, false);
    let env = ContainersEnv::new(&[reg.host()]);
    env.login(&reg);
    Some(Setup {
        reg,
        env,
        work: berth_e2e::tempdir("berth-e2e-webhook."),
        rng: Rng::new(),
    })
}

impl Setup {
    /// A random image in an OCI layout of its own, tagged `src`.
    fn image(&mut self, name: &str) -> (OciLayout, Image) {
        let image = Image::random("amd64", &mut self.rng);
        let mut layout = OciLayout::create(&self.work.path().join(name));
        layout.add_image(&image, "src");
        (layout, image)
    }

    fn push(&self, layout: &OciLayout, repo_tag: &str) {
        self.env
            .skopeo()
            .args([
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &layout.reference("src"),
                &format!("docker://{}", self.reg.image(repo_tag)),
            ])
            .ok();
    }

    fn pull(&self, repo_tag: &str, into: &str) {
        let dest = OciLayout::create(&self.work.path().join(into));
        self.env
            .skopeo()
            .args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{}", self.reg.image(repo_tag)),
                &dest.reference("pulled"),
            ])
            .ok();
    }

    fn api_ok(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Response {
        let r = self.reg.api(method, path, body);
        assert_eq!(r.status, want, "{method} /api/v2.0{path}:\n{r}");
        r
    }

    /// Creates a policy; returns its id and signing secret.
    fn create_policy(&self, project: &str, body: &Value) -> (i64, String) {
        let r = self.api_ok(
            "POST",
            &format!("/projects/{project}/webhook/policies"),
            Some(body),
            201,
        );
        let v = r.json();
        let id = v["id"].as_i64().unwrap_or_else(|| panic!("no id in:\n{r}"));
        let secret = v["secret"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("no secret in:\n{r}"))
            .to_owned();
        berth_e2e::record_secret(&secret);
        let location = r.header("location").unwrap_or_default();
        assert!(
            location.ends_with(&format!("/webhook/policies/{id}")),
            "Location {location:?} does not name policy {id}"
        );
        (id, secret)
    }

    /// The policy's executions (first page, newest first).
    fn executions(&self, project: &str, policy: i64) -> Vec<Value> {
        let r = self.api_ok(
            "GET",
            &format!("/projects/{project}/webhook/policies/{policy}/executions?page_size=100"),
            None,
            200,
        );
        r.json().as_array().cloned().unwrap_or_default()
    }

    /// An execution's one task.
    fn task(&self, project: &str, policy: i64, exec: i64) -> Value {
        let r = self.api_ok(
            "GET",
            &format!("/projects/{project}/webhook/policies/{policy}/executions/{exec}/tasks"),
            None,
            200,
        );
        let tasks = r.json();
        assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{r}");
        tasks[0].clone()
    }

    fn task_log(&self, project: &str, policy: i64, exec: i64, task: i64) -> String {
        let r = self.api_ok(
            "GET",
            &format!(
                "/projects/{project}/webhook/policies/{policy}/executions/{exec}/tasks/{task}/log"
            ),
            None,
            200,
        );
        r.body_str()
    }

    /// Polls the executions until one for `event_type` satisfies `done`.
    fn wait_execution(
        &self,
        project: &str,
        policy: i64,
        event_type: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let t = Instant::now();
        loop {
            let all = self.executions(project, policy);
            if let Some(e) = all
                .iter()
                .find(|e| e["extra_attrs"]["event_type"] == event_type && done(e))
            {
                return e.clone();
            }
            assert!(
                t.elapsed() < WAIT,
                "no {event_type} execution of policy {policy} as wanted within {WAIT:?}: {:#}",
                Value::Array(all)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn policy_body(name: &str, events: &[&str], address: &str, auth: &str, format: &str) -> Value {
    json!({
        "name": name,
        "description": "e2e",
        "event_types": events,
        "targets": [{
            "type": "http",
            "address": address,
            "auth_header": auth,
            "skip_cert_verify": false,
            "payload_format": format,
        }],
        "enabled": true,
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn hmac_matches_rfc_4231() {
    // Test case 2 (and case 6, a key longer than the block).
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn push_pull_delete_reach_a_signed_receiver() {
    let project = "hooked";
    let test = "push_pull_delete_reach_a_signed_receiver";
    let Some(mut s) = setup(test, project) else {
        return;
    };
    let token = format!("Bearer e2e-hook-{}", s.rng.hex(24));
    berth_e2e::record_secret(&token);
    // The receiver reads a pushed artifact back through the API before it
    // answers: the event must not be announced before the write committed.
    let api = s.reg.url("/api/v2.0");
    let basic = s.reg.admin().basic_header();
    let receiver = Receiver::start(move |d| {
        let v = d.json();
        if v["type"] != "PUSH_ARTIFACT" {
            return (200, String::new());
        }
        let repo = v["event_data"]["repository"]["name"].as_str().unwrap_or("");
        let ns = v["event_data"]["repository"]["namespace"]
            .as_str()
            .unwrap_or("");
        let tag = v["event_data"]["resources"][0]["tag"]
            .as_str()
            .unwrap_or("");
        let url = format!(
            "{api}/projects/{ns}/repositories/{}/artifacts/{tag}",
            repo.replace('/', "%252F")
        );
        let r = http::Request::new("GET", &url)
            .raw()
            .header("Authorization", &basic)
            .header("Accept", "application/json")
            .send();
        let digest = if r.status == 200 {
            r.json()["digest"].as_str().unwrap_or_default().to_owned()
        } else {
            String::new()
        };
        (200, format!("read-back {} {digest}", r.status))
    });
    let (id, secret) = s.create_policy(
        project,
        &policy_body(
            "to-receiver",
            &["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT"],
            &receiver.url("/hook"),
            &token,
            "Default",
        ),
    );
    // The policy reads back as saved; the secret is not part of it.
    let p = s.api_ok(
        "GET",
        &format!("/projects/{project}/webhook/policies/{id}"),
        None,
        200,
    );
    let pv = p.json();
    assert_eq!(pv["name"], "to-receiver", "{p}");
    assert_eq!(pv["enabled"], true, "{p}");
    assert_eq!(pv["targets"][0]["address"], receiver.url("/hook"), "{p}");
    assert!(
        !p.body_str().contains(&secret),
        "the secret is shown again:\n{p}"
    );

    // Push.
    let (layout, image) = s.image("app");
    let repo = format!("{project}/app");
    s.push(&layout, &format!("{repo}:v1"));
    let push = receiver.wait_event("PUSH_ARTIFACT");
    eprintln!("PUSH_ARTIFACT delivery:\n{push}");
    assert_eq!(push.method, "POST", "{push}");
    assert_eq!(push.path, "/hook", "{push}");
    assert_eq!(push.header("authorization"), Some(token.as_str()), "{push}");
    assert!(
        push.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{push}"
    );
    assert_signed(&push, &secret);
    assert!(
        push.header("x-berth-event-id")
            .is_some_and(|v| !v.is_empty()),
        "no X-Berth-Event-Id:\n{push}"
    );
    let v = push.json();
    assert!(
        v["occur_at"].as_i64().is_some_and(|t| t > 1_600_000_000),
        "{push}"
    );
    assert_eq!(v["operator"], s.reg.admin_user(), "{push}");
    let res = &v["event_data"]["resources"][0];
    assert_eq!(res["digest"], image.manifest.digest.as_str(), "{push}");
    assert_eq!(res["tag"], "v1", "{push}");
    let url = res["resource_url"].as_str().unwrap_or_default();
    assert!(
        url.ends_with(&format!("{repo}:v1")),
        "resource_url {url:?}:\n{push}"
    );
    if url != format!("{}/{repo}:v1", s.reg.host()) {
        eprintln!(
            "NOTE resource_url is {url:?}, not prefixed with the registry host {}",
            s.reg.host()
        );
    }
    let r = &v["event_data"]["repository"];
    assert_eq!(r["name"], "app", "{push}");
    assert_eq!(r["namespace"], project, "{push}");
    assert_eq!(r["repo_full_name"], repo.as_str(), "{push}");
    assert_eq!(r["repo_type"], "private", "{push}");
    assert_eq!(
        push.note,
        format!("read-back 200 {}", image.manifest.digest),
        "the pushed artifact could not be read back while its event was being delivered:\n{push}"
    );

    // Pull.
    s.pull(&format!("{repo}:v1"), "pulled");
    let pull = receiver.wait_event("PULL_ARTIFACT");
    assert_signed(&pull, &secret);
    assert_eq!(pull.header("authorization"), Some(token.as_str()), "{pull}");
    let v = pull.json();
    assert_eq!(
        v["event_data"]["resources"][0]["digest"],
        image.manifest.digest.as_str(),
        "{pull}"
    );
    assert_eq!(
        v["event_data"]["repository"]["repo_full_name"],
        repo.as_str(),
        "{pull}"
    );
    assert_ne!(
        pull.header("x-berth-event-id"),
        push.header("x-berth-event-id"),
        "two events with one id"
    );

    // Delete through the API.
    s.api_ok(
        "DELETE",
        &format!("/projects/{project}/repositories/app/artifacts/v1"),
        None,
        200,
    );
    let del = receiver.wait_event("DELETE_ARTIFACT");
    assert_signed(&del, &secret);
    let v = del.json();
    assert_eq!(
        v["event_data"]["resources"][0]["digest"],
        image.manifest.digest.as_str(),
        "{del}"
    );
    assert_eq!(
        v["event_data"]["repository"]["repo_full_name"],
        repo.as_str(),
        "{del}"
    );

    // The history: each event's execution succeeded, with one attempt
    // answered 200, and its payload is what the receiver got.
    for (kind, got) in [
        ("PUSH_ARTIFACT", &push),
        ("PULL_ARTIFACT", &pull),
        ("DELETE_ARTIFACT", &del),
    ] {
        let e = s.wait_execution(project, id, kind, |e| {
            e["status"] == "Success"
                && e["extra_attrs"]["event_id"].as_str() == got.header("x-berth-event-id")
        });
        assert_eq!(e["vendor_type"], "WEBHOOK", "{e:#}");
        assert_eq!(e["vendor_id"], id, "{e:#}");
        assert_eq!(
            e["extra_attrs"]["payload"]
                .as_str()
                .unwrap_or_default()
                .as_bytes(),
            got.body.as_slice(),
            "{kind}: the recorded payload is not the body delivered: {e:#}"
        );
        let eid = e["id"].as_i64().unwrap();
        let task = s.task(project, id, eid);
        assert_eq!(task["status"], "Success", "{task:#}");
        assert_eq!(task["run_count"], 1, "{task:#}");
        let attempts = task["extra_attrs"]["attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(attempts.len(), 1, "{task:#}");
        assert_eq!(attempts[0]["status_code"], 200, "{task:#}");
        let log = s.task_log(project, id, eid, task["id"].as_i64().unwrap());
        assert!(log.contains("status 200"), "{kind} task log:\n{log}");
        assert!(log.contains(kind), "{kind} task log:\n{log}");
    }
    // Every delivery was a signed POST to the hook.
    for d in receiver.all() {
        assert_eq!(d.method, "POST", "{d}");
        assert_signed(&d, &secret);
    }
    // The last triggers name each event type of the policy.
    let lt = s.api_ok(
        "GET",
        &format!("/projects/{project}/webhook/lasttrigger"),
        None,
        200,
    );
    let lt = lt.json();
    for kind in ["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT"] {
        assert!(
            lt.as_array()
                .unwrap()
                .iter()
                .any(|t| t["event_type"] == kind && t["last_trigger_time"].as_str().is_some()),
            "no last trigger for {kind}: {lt:#}"
        );
    }
}

#[test]
fn a_failing_receiver_is_retried_and_recorded() {
    let project = "failing";
    let test = "a_failing_receiver_is_retried_and_recorded";
    let Some(mut s) = setup(test, project) else {
        return;
    };
    let receiver = Receiver::start(|_| (500, String::new()));
    let (id, secret) = s.create_policy(
        project,
        &policy_body(
            "broken",
            &["PUSH_ARTIFACT"],
            &receiver.url("/fail"),
            "",
            "Default",
        ),
    );
    let (layout, _) = s.image("app");
    s.push(&layout, &format!("{project}/app:v1"));
    // At least two attempts reach the receiver: the first, and the first
    // retry (the default delays are 10 s, 30 s, …).
    let got = receiver.wait_until("two attempts", |d| d.len() >= 2);
    let event = got[0].header("x-berth-event-id").map(str::to_owned);
    assert!(event.is_some(), "no X-Berth-Event-Id:\n{}", got[0]);
    for d in &got {
        assert_eq!(d.event_type(), "PUSH_ARTIFACT", "{d}");
        assert_eq!(
            d.header("x-berth-event-id").map(str::to_owned),
            event,
            "a retry carries another event id:\n{d}"
        );
        assert_eq!(d.body, got[0].body, "a retry sent another body:\n{d}");
        assert_signed(d, &secret);
        assert_eq!(
            d.header("authorization"),
            None,
            "an empty auth_header was sent:\n{d}"
        );
    }
    // The history records both failed attempts with their 500 and the
    // execution is not a success.
    let t = Instant::now();
    let (exec, task) = loop {
        let e = s.wait_execution(project, id, "PUSH_ARTIFACT", |_| true);
        let eid = e["id"].as_i64().unwrap();
        let task = s.task(project, id, eid);
        let n = task["extra_attrs"]["attempts"]
            .as_array()
            .map_or(0, Vec::len);
        if n >= 2 {
            break (e, task);
        }
        assert!(
            t.elapsed() < WAIT,
            "fewer than two attempts recorded within {WAIT:?}: {task:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_ne!(exec["status"], "Success", "{exec:#}");
    assert!(
        ["Running", "Pending", "Error"].contains(&exec["status"].as_str().unwrap_or("")),
        "{exec:#}"
    );
    assert!(
        task["run_count"].as_i64().is_some_and(|n| n >= 2),
        "{task:#}"
    );
    for a in task["extra_attrs"]["attempts"].as_array().unwrap() {
        assert_eq!(a["status_code"], 500, "{task:#}");
        assert!(
            a["error"].as_str().is_some_and(|e| e.contains("500")),
            "{task:#}"
        );
    }
    let eid = exec["id"].as_i64().unwrap();
    let log = s.task_log(project, id, eid, task["id"].as_i64().unwrap());
    let failed = log.lines().filter(|l| l.contains("status 500")).count();
    assert!(failed >= 2, "the task log does not name two 500s:\n{log}");
    assert!(
        !receiver.all().is_empty() && receiver.all().iter().all(|d| d.path == "/fail"),
        "deliveries went elsewhere"
    );
}

#[test]
fn a_metadata_address_is_refused_on_save() {
    let project = "guarded";
    let test = "a_metadata_address_is_refused_on_save";
    let Some(s) = setup(test, project) else {
        return;
    };
    let path = format!("/projects/{project}/webhook/policies");
    let bad = policy_body(
        "metadata",
        &["PUSH_ARTIFACT"],
        "http://169.254.169.254/latest",
        "",
        "Default",
    );
    let r = s.reg.api("POST", &path, Some(&bad));
    assert_eq!(r.status, 400, "a metadata target was accepted:\n{r}");
    assert!(
        r.body_str().contains("169.254.169.254"),
        "the refusal does not name the address:\n{r}"
    );
    // Nothing was saved.
    let list = s.api_ok("GET", &path, None, 200).json();
    assert_eq!(list, json!([]), "{list:#}");
    // Nor can a saved policy be pointed there.
    let receiver = Receiver::start(|_| (200, String::new()));
    let (id, _) = s.create_policy(
        project,
        &policy_body(
            "fine",
            &["PUSH_ARTIFACT"],
            &receiver.url("/ok"),
            "",
            "Default",
        ),
    );
    let r = s.reg.api("PUT", &format!("{path}/{id}"), Some(&bad));
    assert_eq!(
        r.status, 400,
        "a policy was moved to a metadata target:\n{r}"
    );
    let p = s.api_ok("GET", &format!("{path}/{id}"), None, 200).json();
    assert_eq!(p["targets"][0]["address"], receiver.url("/ok"), "{p:#}");
    // The test delivery refuses it too, and nothing reached the receiver.
    let r = s.reg.api("POST", &format!("{path}/test"), Some(&bad));
    assert_eq!(r.status, 400, "a test delivery to a metadata target:\n{r}");
    assert!(receiver.all().is_empty(), "the receiver was called");
}

#[test]
fn cloudevents_format() {
    let project = "clouds";
    let test = "cloudevents_format";
    let Some(mut s) = setup(test, project) else {
        return;
    };
    let receiver = Receiver::start(|_| (200, String::new()));
    let (id, secret) = s.create_policy(
        project,
        &policy_body(
            "ce",
            &["PUSH_ARTIFACT"],
            &receiver.url("/ce"),
            "",
            "CloudEvents",
        ),
    );
    let (layout, image) = s.image("app");
    s.push(&layout, &format!("{project}/app:v1"));
    let got = receiver.wait_until("a CloudEvent", |d| !d.is_empty());
    let d = &got[0];
    eprintln!("CloudEvents delivery:\n{d}");
    assert_eq!(
        d.header("content-type"),
        Some("application/cloudevents+json"),
        "{d}"
    );
    assert_signed(d, &secret);
    let v = d.json();
    assert_eq!(v["specversion"], "1.0", "{d}");
    assert_eq!(v["type"], "harbor.artifact.pushed", "{d}");
    assert_eq!(v["id"].as_str(), d.header("x-berth-event-id"), "{d}");
    assert!(
        v["source"]
            .as_str()
            .is_some_and(|src| src.ends_with(&format!("/webhook/policies/{id}"))),
        "{d}"
    );
    assert!(v["time"].as_str().is_some_and(|t| !t.is_empty()), "{d}");
    assert_eq!(
        v["data"]["resources"][0]["digest"],
        image.manifest.digest.as_str(),
        "{d}"
    );
    assert_eq!(v["data"]["resources"][0]["tag"], "v1", "{d}");
    assert_eq!(
        v["data"]["repository"]["repo_full_name"],
        format!("{project}/app"),
        "{d}"
    );
    s.wait_execution(project, id, "PUSH_ARTIFACT", |e| e["status"] == "Success");
}
