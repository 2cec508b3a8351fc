//! Crash durability of `berth serve` on embedded storage: the server is
//! killed with SIGKILL (`kill -9`) in the middle of pushes, many times, and
//! started again on the same data directory each time.
//!
//! What must hold, checked after every restart (the clients hold their next
//! request meanwhile) and for everything at the end:
//!
//! - every acknowledged push (a response fully received with its 201) can be
//!   pulled byte for byte: each blob by digest, each manifest by digest, and
//!   each tag names the last manifest acknowledged for it (or one pushed
//!   after that whose PUT was cut off, which may have committed);
//! - no unfinished blob is visible: a blob upload that never got its 201 is
//!   absent (HEAD 404) or, if it committed just before the kill, exactly right;
//! - an upload session cut off by a kill continues when its interrupted
//!   request is sent again, or that request answers a clean 4xx:
//!   `BLOB_UPLOAD_UNKNOWN`, `BLOB_UPLOAD_INVALID`, or 416 whose `Range` is
//!   where the session really is;
//! - no request ever answers a 5xx.
//!
//! SIGKILL does not drop the page cache, so these tests cannot show that
//! the store fsyncs what it must (only a power cut could); they show that
//! the state on disk at any instant the process can die is consistent.
//!
//! Requests go over plain `TcpStream`s (HTTP/1.1, `Connection: close`,
//! `Expect: 100-continue` before a body), so "acknowledged" is exact: the
//! status line, headers and whole body of the response arrived. Blob bytes
//! are compared by their SHA-256 and length. Sizes and kill moments come
//! from a seeded generator; the seed is printed and `BERTH_E2E_CRASH_SEED`
//! replays the same choices (thread timing still differs).
//!
//! Only the `berth` target is tested: one process whose whole state is its
//! data directory, so killing it and starting it again on that directory is
//! the whole story. Other targets skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use berth_e2e::auth::{self, Auth, Challenge};
use berth_e2e::oci;
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, skip_requested};
use serde_json::json;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Berth cuts uploads into multipart parts of this size.
const PART: usize = 8 * MIB;
/// How long one request may take before the test gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client waits for the server to come back after a kill.
const RESTART_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- HTTP

struct Req<'a> {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: &'a [u8],
}

impl<'a> Req<'a> {
    fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: &[],
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    fn line(&self) -> String {
        format!("{} {} ({} bytes)", self.method, self.path, self.body.len())
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `errors[0].code` of an OCI error body.
    fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v["errors"][0]["code"].as_str().map(str::to_owned)
    }

    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]).into_owned();
        let range = self.header("Range").unwrap_or("-");
        format!("HTTP {} (Range: {range}) {body}", self.status)
    }
}

fn io_err(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned())
}

/// Reads a status line and headers.
fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io_err("connection closed before the response"));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io_err(&format!("not a status line: {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io_err("connection closed inside the response head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, headers));
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}

fn read_body(
    r: &mut impl BufRead,
    method: &str,
    status: u16,
    headers: &[(String, String)],
) -> std::io::Result<Vec<u8>> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(Vec::new());
    }
    if header("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(io_err("connection closed inside a chunked body"));
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io_err(&format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    }
    match header("Content-Length").map(str::parse::<usize>) {
        Some(Ok(len)) => {
            let mut body = vec![0; len];
            r.read_exact(&mut body)?;
            Ok(body)
        }
        Some(Err(_)) => Err(io_err("bad Content-Length")),
        None => {
            let mut body = Vec::new();
            r.read_to_end(&mut body)?;
            Ok(body)
        }
    }
}

/// One request as the registry's admin: with the token cached for its
/// repository, and after a `401` Bearer challenge (no token yet, or one the
/// restarted server does not take) once more with a fresh one from the
/// challenge's realm. A token request that gets no answer (the server was
/// killed meanwhile) is a broken connection, like any other.
fn exchange(port: u16, req: &Req<'_>) -> std::io::Result<Resp> {
    let url = format!("http://127.0.0.1:{port}{}", req.path);
    let token = auth::cached_token(&url, &Auth::Default);
    let resp = exchange_once(port, req, token.as_deref())?;
    if resp.status != 401 {
        return Ok(resp);
    }
    let Some(challenge) = resp
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
        .find_map(|(_, v)| Challenge::parse(v))
    else {
        return Ok(resp);
    };
    let token = auth::renew_token(&url, &Auth::Default, &challenge)
        .map_err(|e| io_err(&format!("no token for {}: {e}", req.line())))?;
    exchange_once(port, req, Some(&token))
}

/// One request on a fresh connection. A body is sent only after the server
/// asked for it (`100 Continue`), so an early answer (a 416 before the
/// chunk) arrives whole. `Err` when the connection failed or closed before
/// the whole response arrived.
fn exchange_once(port: u16, req: &Req<'_>, bearer: Option<&str>) -> std::io::Result<Resp> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::with_capacity(256 * KIB, stream);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n",
        req.method, req.path
    );
    if matches!(req.method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    if !req.body.is_empty() {
        head.push_str("Expect: 100-continue\r\n");
        if !req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
        {
            head.push_str("Content-Type: application/octet-stream\r\n");
        }
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    let (mut status, mut headers) = read_head(&mut r)?;
    if status == 100 {
        // The server may answer before it has read the whole body (a store
        // error in the middle of a chunk) and close the connection: the
        // write then fails, but the answer is there to read.
        let sent = w.write_all(req.body);
        (status, headers) = match (read_head(&mut r), sent) {
            (Ok(head), _) => head,
            (Err(e), Ok(())) | (Err(_), Err(e)) => return Err(e),
        };
    }
    let body = read_body(&mut r, req.method, status, &headers)?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// The path (and query) of a `Location`, absolute or not: the server's
/// port changes with every restart.
fn location_path(resp: &Resp) -> Option<String> {
    let loc = resp.header("Location")?;
    match loc.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_owned()),
        None => Some(loc.to_owned()),
    }
}

fn with_query(path: &str, query: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{query}")
}

// ---------------------------------------------------------------- state

/// The server as the clients see it. The controller sets `down` before a
/// kill and bumps `epoch` once the new server answers.
#[derive(Default)]
struct Server {
    port: AtomicU16,
    epoch: AtomicU64,
    down: AtomicBool,
    /// No more kills are coming.
    last_round_over: AtomicBool,
    /// Clients finish their current push and stop.
    stop: AtomicBool,
    /// Clients hold their next request while the controller checks.
    paused: AtomicBool,
    /// Responses received (any status), for the controller's pacing.
    answered: AtomicU64,
}

#[derive(Clone)]
struct BlobRec {
    repo: String,
    digest: String,
    len: usize,
}

#[derive(Clone)]
struct ManifestRec {
    repo: String,
    digest: String,
    bytes: Vec<u8>,
}

/// What a tag may point at: the last manifest acknowledged for it, or one
/// pushed after that whose PUT was cut off.
#[derive(Default)]
struct TagRec {
    acked: Option<String>,
    after: Vec<String>,
}

#[derive(Default)]
struct Stats {
    /// Acknowledged blobs by how they were pushed.
    acked: BTreeMap<&'static str, usize>,
    acked_bytes: u64,
    /// Chunked uploads acknowledged with a chunk over one part.
    acked_with_big_chunk: usize,
    /// Requests cut off by a kill, by method.
    cut_off: BTreeMap<&'static str, usize>,
    /// What the request sent again after a kill answered.
    after_kill: BTreeMap<String, usize>,
    manifests: usize,
    blobs_in_doubt: usize,
    in_doubt_present: usize,
    in_doubt_absent: usize,
}

#[derive(Default)]
struct Ledger {
    blobs: Vec<BlobRec>,
    blobs_in_doubt: Vec<BlobRec>,
    manifests: Vec<ManifestRec>,
    manifests_in_doubt: Vec<ManifestRec>,
    tags: BTreeMap<(String, String), TagRec>,
    failures: Vec<String>,
    stats: Stats,
}

#[derive(Clone)]
struct Ctx {
    server: Arc<Server>,
    ledger: Arc<Mutex<Ledger>>,
}

enum Sent {
    Resp(Resp),
    /// The connection failed because the server was killed; it is running
    /// again now.
    Killed,
    /// The connection failed and no kill explains it (a failure, recorded).
    Broken,
}

impl Ctx {
    fn new() -> Self {
        Self {
            server: Arc::default(),
            ledger: Arc::default(),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, msg: String) {
        eprintln!("FAILURE: {msg}");
        self.ledger().failures.push(msg);
    }

    /// Sends `req` to the current server. A broken connection is `Killed`
    /// once the server is back, or `Broken` (a failure) if no kill explains
    /// it. (No caller accepts a 5xx: each reports any answer it does not
    /// expect.)
    fn send(&self, req: &Req<'_>) -> Sent {
        while self.server.paused.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        let epoch = self.server.epoch.load(SeqCst);
        let port = self.server.port.load(SeqCst);
        match exchange(port, req) {
            Ok(resp) => {
                self.server.answered.fetch_add(1, SeqCst);
                Sent::Resp(resp)
            }
            Err(e) => {
                if !self.server.down.load(SeqCst) && self.server.epoch.load(SeqCst) == epoch {
                    self.fail(format!("{} failed with no kill: {e}", req.line()));
                    return Sent::Broken;
                }
                *self.ledger().stats.cut_off.entry(req.method).or_default() += 1;
                self.wait_for_restart(epoch);
                Sent::Killed
            }
        }
    }

    fn wait_for_restart(&self, epoch: u64) {
        let deadline = Instant::now() + RESTART_WAIT;
        while self.server.down.load(SeqCst) || self.server.epoch.load(SeqCst) == epoch {
            if self.server.last_round_over.load(SeqCst) && !self.server.down.load(SeqCst) {
                return;
            }
            if Instant::now() > deadline {
                self.fail("the server did not come back".to_owned());
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn acked(&self, rec: BlobRec, how: &'static str) {
        let mut l = self.ledger();
        *l.stats.acked.entry(how).or_default() += 1;
        l.stats.acked_bytes += rec.len as u64;
        l.blobs.push(rec);
    }

    fn in_doubt(&self, rec: BlobRec) {
        let mut l = self.ledger();
        l.stats.blobs_in_doubt += 1;
        l.blobs_in_doubt.push(rec);
    }

    fn after_kill(&self, outcome: String) {
        *self.ledger().stats.after_kill.entry(outcome).or_default() += 1;
    }

    /// `POST ?digest=` with the whole blob. Not retried after a kill: the
    /// blob is then one that never got its 201.
    fn monolithic(&self, repo: &str, data: &[u8]) -> bool {
        let digest = oci::digest_of(data);
        let rec = BlobRec {
            repo: repo.to_owned(),
            digest: digest.clone(),
            len: data.len(),
        };
        let req = Req::new("POST", format!("/v2/{repo}/blobs/uploads/?digest={digest}")).body(data);
        match self.send(&req) {
            Sent::Resp(r) if r.status == 201 => {
                self.check_created(&req, &r, &digest);
                self.acked(rec, "monolithic POST");
                true
            }
            Sent::Resp(r) => {
                self.fail(format!("{} answered {}", req.line(), r.describe()));
                self.in_doubt(rec);
                false
            }
            Sent::Killed | Sent::Broken => {
                self.in_doubt(rec);
                false
            }
        }
    }

    fn check_created(&self, req: &Req<'_>, r: &Resp, digest: &str) {
        if r.header("Docker-Content-Digest") != Some(digest) {
            self.fail(format!(
                "{} answered 201 without Docker-Content-Digest {digest}: {:?}",
                req.line(),
                r.headers
            ));
        }
    }

    /// An upload session: `POST`, a `PATCH` per entry of `chunks` (each
    /// with its `Content-Range`), then `PUT ?digest=` with the rest. After
    /// a kill the interrupted request is sent again as it was; its answer
    /// may be a clean 4xx, every other answer must be the normal one.
    fn session(&self, repo: &str, data: &[u8], chunks: &[usize], how: &'static str) -> bool {
        let digest = oci::digest_of(data);
        let rec = BlobRec {
            repo: repo.to_owned(),
            digest: digest.clone(),
            len: data.len(),
        };
        let post = Req::new("POST", format!("/v2/{repo}/blobs/uploads/"));
        let mut path = match self.send(&post) {
            Sent::Resp(r) if r.status == 202 => match location_path(&r) {
                Some(p) => p,
                None => {
                    self.fail(format!("{} answered 202 without Location", post.line()));
                    self.in_doubt(rec);
                    return false;
                }
            },
            Sent::Resp(r) => {
                self.fail(format!("{} answered {}", post.line(), r.describe()));
                self.in_doubt(rec);
                return false;
            }
            Sent::Killed | Sent::Broken => {
                self.in_doubt(rec);
                return false;
            }
        };
        let mut offset = 0;
        let mut next = 0;
        let mut cut_off = false;
        loop {
            let patch = next < chunks.len() && offset < data.len();
            let end = if patch {
                (offset + chunks[next]).min(data.len())
            } else {
                data.len()
            };
            let req = if patch {
                Req::new("PATCH", path.clone())
                    .header("Content-Range", format!("{offset}-{}", end - 1))
                    .body(&data[offset..end])
            } else {
                Req::new("PUT", with_query(&path, &format!("digest={digest}")))
                    .body(&data[offset..])
            };
            let r = match self.send(&req) {
                Sent::Resp(r) => r,
                Sent::Killed => {
                    cut_off = true;
                    continue;
                }
                Sent::Broken => {
                    self.in_doubt(rec);
                    return false;
                }
            };
            let after_kill = std::mem::replace(&mut cut_off, false);
            let code = r.code().unwrap_or_default();
            let outcome = format!("{} {} {code}", req.method, r.status);
            if after_kill {
                self.after_kill(outcome.trim_end().to_owned());
            }
            let want_range = format!("0-{}", end.saturating_sub(1));
            match (patch, r.status) {
                (true, 202) => {
                    if r.header("Range") != Some(want_range.as_str()) {
                        self.fail(format!(
                            "{} answered 202 with Range {:?}, not {want_range}",
                            req.line(),
                            r.header("Range")
                        ));
                        self.in_doubt(rec);
                        return false;
                    }
                    if let Some(p) = location_path(&r) {
                        path = p;
                    }
                    offset = end;
                    next += 1;
                }
                (false, 201) => {
                    self.check_created(&req, &r, &digest);
                    if chunks.iter().any(|c| *c > PART) {
                        self.ledger().stats.acked_with_big_chunk += 1;
                    }
                    self.acked(rec, how);
                    return true;
                }
                // The chunk had landed before the kill, its answer had not:
                // the session must say it is past this chunk, and a status
                // request must agree.
                (true, 416) if after_kill => {
                    if r.header("Range") != Some(want_range.as_str()) {
                        self.fail(format!(
                            "{} answered 416 with Range {:?}, but the chunk ends at {end}",
                            req.line(),
                            r.header("Range")
                        ));
                        self.in_doubt(rec);
                        return false;
                    }
                    let status = Req::new("GET", path.clone());
                    match self.send(&status) {
                        Sent::Resp(s) if s.status == 204 => {
                            if s.header("Range") != Some(want_range.as_str()) {
                                self.fail(format!(
                                    "{} answered Range {:?} after a 416 with {want_range}",
                                    status.line(),
                                    s.header("Range")
                                ));
                                self.in_doubt(rec);
                                return false;
                            }
                        }
                        Sent::Resp(s) => {
                            self.fail(format!("{} answered {}", status.line(), s.describe()));
                            self.in_doubt(rec);
                            return false;
                        }
                        Sent::Killed => cut_off = true,
                        Sent::Broken => {
                            self.in_doubt(rec);
                            return false;
                        }
                    }
                    offset = end;
                    next += 1;
                }
                (_, 404) if after_kill && code == "BLOB_UPLOAD_UNKNOWN" => {
                    self.in_doubt(rec);
                    return false;
                }
                (_, 400) if after_kill && code == "BLOB_UPLOAD_INVALID" => {
                    self.in_doubt(rec);
                    return false;
                }
                _ => {
                    let when = if after_kill {
                        " (sent again after a kill)"
                    } else {
                        ""
                    };
                    self.fail(format!("{}{when} answered {}", req.line(), r.describe()));
                    self.in_doubt(rec);
                    return false;
                }
            }
        }
    }

    /// `PUT` of a manifest by tag, sent again once if a kill cut it off.
    fn manifest(&self, repo: &str, tag: &str, bytes: Vec<u8>) {
        let digest = oci::digest_of(&bytes);
        self.ledger()
            .tags
            .entry((repo.to_owned(), tag.to_owned()))
            .or_default()
            .after
            .push(digest.clone());
        let req = Req::new("PUT", format!("/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", oci::OCI_MANIFEST)
            .body(&bytes);
        for _ in 0..2 {
            match self.send(&req) {
                Sent::Resp(r) if r.status == 201 => {
                    self.check_created(&req, &r, &digest);
                    let mut l = self.ledger();
                    l.stats.manifests += 1;
                    let t = l.tags.entry((repo.to_owned(), tag.to_owned())).or_default();
                    t.acked = Some(digest.clone());
                    t.after.clear();
                    l.manifests.push(ManifestRec {
                        repo: repo.to_owned(),
                        digest,
                        bytes,
                    });
                    return;
                }
                Sent::Resp(r) => {
                    self.fail(format!("{} answered {}", req.line(), r.describe()));
                    break;
                }
                Sent::Killed => {}
                Sent::Broken => break,
            }
        }
        self.ledger().manifests_in_doubt.push(ManifestRec {
            repo: repo.to_owned(),
            digest,
            bytes,
        });
    }
}

// ---------------------------------------------------------------- pushes

/// Chunk sizes for `len` bytes, drawn from `size`: at least two chunks
/// (unless the first takes everything), then a stop one time in
/// `stop_one_in`; the final `PUT` carries what is left (sometimes the last
/// chunk, sometimes nothing).
fn chunk_plan(
    rng: &mut Rng,
    len: usize,
    size: fn(&mut Rng) -> usize,
    stop_one_in: usize,
) -> Vec<usize> {
    let mut plan = Vec::new();
    let mut sum = 0;
    while sum < len {
        if plan.len() >= 2 && rng.range(0, stop_one_in) == 0 {
            break;
        }
        // Never a first chunk of 1 byte, so a `Range` of `0-0` always
        // means offset 0.
        let chunk = size(rng).max(2).min(len - sum);
        plan.push(chunk);
        sum += chunk;
    }
    if sum == len && plan.len() > 2 && rng.range(0, 2) == 0 {
        plan.pop();
    }
    plan
}

/// Main test chunks: 64 KiB to 1 MiB, one in four over a whole part.
fn image_chunk(rng: &mut Rng) -> usize {
    if rng.range(0, 4) == 0 {
        rng.range(PART + MIB / 2, PART + 2 * MIB)
    } else {
        rng.range(64 * KIB, MIB)
    }
}

/// Regression test chunks: mostly 8-256 KiB (today each one is a part
/// write and a part-index write on the filesystem store), some 5-6 MiB,
/// now and then one over a whole part.
fn session_chunk(rng: &mut Rng) -> usize {
    match rng.range(0, 24) {
        0 => rng.range(PART + MIB / 2, PART + MIB),
        1..=3 => rng.range(5 * MIB, 6 * MIB),
        _ => rng.range(8 * KIB, 256 * KIB),
    }
}

/// One push in the main test: a config (monolithic), a layer pushed one of
/// three ways, and a manifest naming both under one of three tags.
fn push_image(ctx: &Ctx, rng: &mut Rng, client: usize, n: u64) {
    let repo = format!("crash/c{client}");
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"nonce": rng.hex(16)}},
    }))
    .unwrap_or_default();
    let config_ok = ctx.monolithic(&repo, &config);
    let (layer, layer_ok) = match n % 3 {
        0 => {
            let len = rng.range(KIB, MIB);
            let data = rng.bytes(len);
            let ok = ctx.monolithic(&repo, &data);
            (data, ok)
        }
        1 => {
            let len = rng.range(KIB, 10 * MIB);
            let data = rng.bytes(len);
            let ok = ctx.session(&repo, &data, &[], "POST + PUT");
            (data, ok)
        }
        _ => {
            let len = rng.range(MIB, 18 * MIB);
            let data = rng.bytes(len);
            let plan = chunk_plan(rng, data.len(), image_chunk, 4);
            let ok = ctx.session(&repo, &data, &plan, "chunked PATCH + PUT");
            (data, ok)
        }
    };
    if !(config_ok && layer_ok) {
        return;
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": oci::digest_of(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": oci::OCI_LAYER_TAR,
            "digest": oci::digest_of(&layer),
            "size": layer.len(),
        }],
    }))
    .unwrap_or_default();
    ctx.manifest(&repo, &format!("t{}", n % 3), manifest);
}

/// One session in the regression test: many chunks ([`session_chunk`]).
fn push_chunked(ctx: &Ctx, rng: &mut Rng, client: usize, _n: u64) {
    let repo = format!("crash/s{client}");
    let len = rng.range(2 * MIB, 10 * MIB);
    let data = rng.bytes(len);
    let plan = chunk_plan(rng, data.len(), session_chunk, 40);
    ctx.session(&repo, &data, &plan, "chunked PATCH + PUT");
}

// ---------------------------------------------------------------- checks

fn get(port: u16, req: &Req<'_>) -> Result<Resp, String> {
    exchange(port, req).map_err(|e| format!("{}: {e}", req.line()))
}

fn check_blob(port: u16, b: &BlobRec) -> Result<(), String> {
    let req = Req::new("GET", format!("/v2/{}/blobs/{}", b.repo, b.digest));
    let r = get(port, &req)?;
    if r.status != 200 {
        return Err(format!(
            "acknowledged blob {}: {} answered {}",
            b.digest,
            req.line(),
            r.describe()
        ));
    }
    let got = oci::digest_of(&r.body);
    if r.body.len() != b.len || got != b.digest {
        return Err(format!(
            "acknowledged blob {} ({} bytes) came back as {} bytes with digest {got}",
            b.digest,
            b.len,
            r.body.len()
        ));
    }
    Ok(())
}

fn check_manifest(port: u16, m: &ManifestRec, acknowledged: bool) -> Result<bool, String> {
    let req = Req::new("GET", format!("/v2/{}/manifests/{}", m.repo, m.digest))
        .header("Accept", oci::OCI_MANIFEST);
    let r = get(port, &req)?;
    match r.status {
        200 if r.body == m.bytes => Ok(true),
        404 if !acknowledged && r.code().as_deref() == Some("MANIFEST_UNKNOWN") => Ok(false),
        _ => Err(format!(
            "manifest {} (acknowledged: {acknowledged}): {} answered {} ({} bytes, want {})",
            m.digest,
            req.line(),
            r.describe(),
            r.body.len(),
            m.bytes.len()
        )),
    }
}

fn check_tag(port: u16, repo: &str, tag: &str, t: &TagRec) -> Result<(), String> {
    let req =
        Req::new("GET", format!("/v2/{repo}/manifests/{tag}")).header("Accept", oci::OCI_MANIFEST);
    let r = get(port, &req)?;
    let allowed: Vec<&String> = t.acked.iter().chain(&t.after).collect();
    let ok = match r.status {
        200 => allowed.contains(&&oci::digest_of(&r.body)),
        404 => t.acked.is_none(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {repo}:{tag} should be one of {allowed:?}: {} answered {} (digest {})",
            req.line(),
            r.describe(),
            oci::digest_of(&r.body)
        ))
    }
}

/// A blob that never got its 201: absent, or exactly right.
fn check_in_doubt(port: u16, b: &BlobRec) -> Result<bool, String> {
    let req = Req::new("HEAD", format!("/v2/{}/blobs/{}", b.repo, b.digest));
    let r = get(port, &req)?;
    match r.status {
        404 => Ok(false),
        200 => check_blob(port, b)
            .map(|()| true)
            .map_err(|e| format!("unacknowledged blob, present but wrong: {e}")),
        _ => Err(format!(
            "unacknowledged blob {}: {} answered {}",
            b.digest,
            req.line(),
            r.describe()
        )),
    }
}

// ---------------------------------------------------------------- driver

struct Plan {
    name: &'static str,
    rounds: usize,
    clients: usize,
    /// A kill comes this many milliseconds after a restart (at random), and
    /// not before the new server has answered some requests.
    kill_after_ms: (usize, usize),
    push: fn(&Ctx, &mut Rng, usize, u64),
}

fn seed() -> u64 {
    match std::env::var("BERTH_E2E_CRASH_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("BERTH_E2E_CRASH_SEED={s:?} is not a number")),
        Err(_) => Rng::new().next_u64(),
    }
}

/// Starts the server, runs `plan.clients` pushing threads, kills and
/// restarts the server `plan.rounds` times (after each restart, with the
/// clients held, checks what was acknowledged since the last check), stops
/// the clients and checks everything. Panics with every failure.
fn run(plan: &Plan) {
    if skip_requested(plan.name) {
        return;
    }
    let target = Target::from_env();
    if target != Target::Berth {
        eprintln!(
            "SKIPPED {}: kill -9 and restart on the same data directory is only meaningful \
             for embedded storage (BERTH_E2E_TARGET=berth), not {target}",
            plan.name
        );
        return;
    }
    let seed = seed();
    eprintln!(
        "{}: seed {seed} (replay the same sizes and kill moments with BERTH_E2E_CRASH_SEED={seed})",
        plan.name
    );
    let started = Instant::now();
    let mut rng = Rng::with_seed(seed);
    let mut reg = Registry::start_target(Target::Berth);
    // The clients push into project `crash` as the admin.
    reg.ensure_project("crash");
    let ctx = Ctx::new();
    ctx.server.port.store(reg.port(), SeqCst);
    let clients: Vec<_> = (0..plan.clients)
        .map(|i| {
            let ctx = ctx.clone();
            let push = plan.push;
            let mut rng = Rng::with_seed(rng.next_u64());
            std::thread::spawn(move || {
                let mut n = 0;
                while !ctx.server.stop.load(SeqCst) {
                    push(&ctx, &mut rng, i, n);
                    n += 1;
                }
            })
        })
        .collect();

    let (mut blobs_checked, mut manifests_checked) = (0, 0);
    for round in 1..=plan.rounds {
        let delay =
            Duration::from_millis(rng.range(plan.kill_after_ms.0, plan.kill_after_ms.1) as u64);
        let answered = ctx.server.answered.load(SeqCst);
        let since = Instant::now();
        // Let the new server do some work first, so every kill lands on
        // requests in flight.
        while since.elapsed() < delay || ctx.server.answered.load(SeqCst) < answered + 4 {
            if since.elapsed() > RESTART_WAIT {
                ctx.fail(format!("round {round}: the clients got no answers"));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ran = since.elapsed();
        ctx.server.down.store(true, SeqCst);
        let pid = reg.server_pid();
        reg.kill_server();
        if let Err(e) = reg.restart() {
            ctx.server.last_round_over.store(true, SeqCst);
            ctx.server.stop.store(true, SeqCst);
            ctx.server.down.store(false, SeqCst);
            panic!("after kill {round}: {e}");
        }
        // The clients wait for the check: it reads what was acknowledged
        // before the kill from a server nothing else is writing to yet.
        ctx.server.paused.store(true, SeqCst);
        ctx.server.port.store(reg.port(), SeqCst);
        ctx.server.epoch.fetch_add(1, SeqCst);
        ctx.server.down.store(false, SeqCst);
        // What was acknowledged until the kill is there after it.
        let (blobs, manifests) = {
            let l = ctx.ledger();
            (
                l.blobs[blobs_checked..].to_vec(),
                l.manifests[manifests_checked..].to_vec(),
            )
        };
        let checking = Instant::now();
        blobs_checked += blobs.len();
        manifests_checked += manifests.len();
        for b in &blobs {
            if let Err(e) = check_blob(reg.port(), b) {
                ctx.fail(format!("after kill {round}: {e}"));
            }
        }
        for m in &manifests {
            if let Err(e) = check_manifest(reg.port(), m, true) {
                ctx.fail(format!("after kill {round}: {e}"));
            }
        }
        ctx.server.paused.store(false, SeqCst);
        eprintln!(
            "kill {round}/{}: pid {} killed after {:?}; restarted on port {}; the {} blobs and {} manifests acknowledged since the last check are intact (checked in {:?}; {:?} so far)",
            plan.rounds,
            pid.unwrap_or(0),
            ran,
            reg.port(),
            blobs.len(),
            manifests.len(),
            checking.elapsed(),
            started.elapsed()
        );
    }
    ctx.server.last_round_over.store(true, SeqCst);
    ctx.server.stop.store(true, SeqCst);
    for c in clients {
        if c.join().is_err() {
            ctx.fail("a client thread panicked".to_owned());
        }
    }

    // Everything, on the last server.
    let clients_done = started.elapsed();
    let port = reg.port();
    let mut l = ctx.ledger();
    let mut failures = Vec::new();
    for b in &l.blobs {
        failures.extend(check_blob(port, b).err());
    }
    let (mut present, mut absent) = (0, 0);
    for b in &l.blobs_in_doubt {
        match check_in_doubt(port, b) {
            Ok(true) => present += 1,
            Ok(false) => absent += 1,
            Err(e) => failures.push(e),
        }
    }
    for m in &l.manifests {
        failures.extend(check_manifest(port, m, true).err());
    }
    for m in &l.manifests_in_doubt {
        failures.extend(check_manifest(port, m, false).err());
    }
    for ((repo, tag), t) in &l.tags {
        failures.extend(check_tag(port, repo, tag, t).err());
    }
    l.stats.in_doubt_present = present;
    l.stats.in_doubt_absent = absent;
    l.failures.extend(failures);
    let s = &l.stats;
    eprintln!(
        "{}: {} kills in {clients_done:?}, final check done at {:?}; acknowledged blobs {:?} ({} MiB; {} chunked with a chunk over {} MiB), {} manifests; requests cut off {:?}; answers to a request sent again after a kill {:?}; blobs never acknowledged: {} ({} present and exact, {} absent)",
        plan.name,
        plan.rounds,
        started.elapsed(),
        s.acked,
        s.acked_bytes / MIB as u64,
        s.acked_with_big_chunk,
        PART / MIB,
        s.manifests,
        s.cut_off,
        s.after_kill,
        s.blobs_in_doubt,
        s.in_doubt_present,
        s.in_doubt_absent,
    );
    if !l.failures.is_empty() {
        panic!(
            "{} failures (seed {seed}):\n{}\n--- server log tail ---\n{}",
            l.failures.len(),
            l.failures
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            reg.log_tail()
        );
    }
    assert!(
        s.cut_off.values().sum::<usize>() > 0,
        "no kill cut off a request; the test tested nothing"
    );
}

/// Images pushed by four clients (monolithic, POST+PUT and chunked layers,
/// chunks up to over one part), the server killed 30 times.
#[test]
fn acknowledged_pushes_survive_kill_9() {
    run(&Plan {
        name: "acknowledged_pushes_survive_kill_9",
        rounds: 30,
        clients: 4,
        kill_after_ms: (100, 1000),
        push: push_image,
    });
}

/// Regression: a kill in the middle of a chunk's part-index write once left
/// the index truncated, and every later PATCH or PUT of that session
/// answered 500 ("part 11 is out of order"). Many chunked sessions are cut
/// off at once, repeatedly; each one's next request must answer 2xx or a
/// clean 4xx, and the session then continue to a 201 or stop there.
#[test]
fn sessions_cut_off_mid_patch_continue_or_fail_cleanly() {
    run(&Plan {
        name: "sessions_cut_off_mid_patch_continue_or_fail_cleanly",
        rounds: 20,
        clients: 16,
        kill_after_ms: (100, 600),
        push: push_chunked,
    });
}
