//! Slow and stalled clients against the real server loop
//! (`berth::http::serve`) on `127.0.0.1:0`, with timeouts of a second:
//! half-sent heads, idle keep-alive connections, bodies that stop, bodies
//! that trickle, responses nobody reads, floods of connections, shutdown.
//!
//! Every wait is "eventually, within a generous deadline": no test asserts
//! how fast anything happens. Tests that count the process's open file
//! descriptors run alone (an exclusive lock); the others share it.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode};
use berth::http::Limits;
use berth::http::server::IdleTimeout;
use common::*;
use http_body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Anything that should happen "after the timeout" must happen within this.
const DEADLINE: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(1);

/// Held shared by every test, exclusively by those that count descriptors;
/// taken before a test's runtime (itself a few descriptors) is built.
static FDS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a test beside the others.
fn shared(test: impl Future<Output = ()>) {
    let _shared = FDS.read().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(test);
}

/// Runs a test while no other test of this file runs.
fn alone(test: impl Future<Output = ()>) {
    let _alone = FDS.write().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(test);
}

fn limits(header: Duration, body_idle: Duration, max_connections: usize) -> Limits {
    Limits {
        header_timeout: header,
        body_idle_timeout: body_idle,
        max_connections,
        shutdown_grace: Duration::from_secs(10),
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _app: TestApp,
}

async fn start(limits: Limits) -> Server {
    start_with(TestApp::new().await, limits).await
}

async fn start_with(app: TestApp, limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(berth::http::serve(
        listener,
        app.router.clone(),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stop: Some(stop),
        task,
        _app: app,
    }
}

impl Server {
    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `serve` to return after [`Server::shutdown`].
    async fn stopped(self) {
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// A response read off a raw socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one response head from the front of `buf`; returns it and the
/// head's length, or `None` while incomplete.
fn parse_head(buf: &[u8]) -> Option<(Raw, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some((
        Raw {
            status,
            headers,
            body: Vec::new(),
        },
        end,
    ))
}

/// Reads one response; `buf` carries bytes read past it to the next call.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Raw> {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some((mut raw, head_len)) = parse_head(buf) {
            // 100 Continue: an interim response, not the answer.
            if raw.status == 100 {
                buf.drain(..head_len);
                continue;
            }
            let length = raw
                .header("content-length")
                .map(|v| v.parse::<usize>().unwrap());
            let close = raw
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            assert!(raw.header("transfer-encoding").is_none(), "{raw:?}");
            loop {
                let have = buf.len() - head_len;
                if length.is_some_and(|l| have >= l) {
                    break;
                }
                if length.is_none() && !close {
                    break;
                }
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body_len = length
                .unwrap_or(buf.len() - head_len)
                .min(buf.len() - head_len);
            raw.body = buf[head_len..head_len + body_len].to_vec();
            buf.drain(..head_len + body_len);
            return Ok(raw);
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn head(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut h = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// One request on a fresh connection that is closed after it.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Raw> {
    let length = body.len().to_string();
    let mut all = vec![("connection", "close"), ("content-length", length.as_str())];
    all.extend_from_slice(headers);
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(head(addr, method, path, &all).as_bytes())
        .await?;
    s.write_all(body).await?;
    read_response(&mut s, &mut Vec::new()).await
}

/// [`request`] as a well-behaved client does it: a `503` is retried after
/// its `Retry-After`, a refused or reset connection after a pause. Returns
/// the answer and how many times the server was busy.
async fn request_retrying(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (Raw, usize) {
    let give_up = tokio::time::Instant::now() + DEADLINE;
    let mut busy = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < give_up,
            "{method} {path}: still not served after {DEADLINE:?} ({busy} times busy)"
        );
        match request(addr, method, path, &[], body).await {
            Ok(r) if r.status == 503 => {
                busy += 1;
                let wait = r.header("retry-after").map_or(1, |v| v.parse().unwrap());
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            Ok(r) => return (r, busy),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Reads until the server closes the connection (end of stream or reset);
/// returns what arrived. Fails the test if it stays open past [`DEADLINE`].
async fn wait_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let read_all = async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_all)
        .await
        .expect("the server kept the connection open");
    got
}

fn status_of(response: &[u8]) -> u16 {
    parse_head(response)
        .unwrap_or_else(|| panic!("not a response: {:?}", String::from_utf8_lossy(response)))
        .0
        .status
}

/// The path (and query) of a `Location`, absolute or not.
fn path_of(location: &str) -> String {
    match location.strip_prefix("http://") {
        Some(rest) => rest[rest.find('/').unwrap()..].to_owned(),
        None => location.to_owned(),
    }
}

fn with_digest(path: &str, digest: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}digest={digest}")
}

async fn start_upload(addr: SocketAddr, repo: &str) -> String {
    let r = request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    path_of(r.header("location").unwrap())
}

/// Bytes that are not all alike, so a misplaced range shows in the digest.
fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// This process's sockets with local port `port`: the server's listener
/// and the connections it holds (`None` without Linux's `/proc`).
fn server_sockets(port: u16) -> Option<usize> {
    server_socket_states(port).map(|states| states.values().sum())
}

/// [`server_sockets`] by TCP state (`/proc/net/tcp`'s hex code: `01`
/// established, `08` close-wait, `0A` listen, …).
fn server_socket_states(port: u16) -> Option<std::collections::BTreeMap<String, usize>> {
    let mut ours = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        // A descriptor may close between the listing and the look.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'));
        if let Some(inode) = inode {
            ours.insert(inode.to_owned());
        }
    }
    // By inode: the kernel's table is read in pieces while it changes, so
    // a socket can be listed twice.
    let mut seen = std::collections::HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && fields.get(9).is_some_and(|i| ours.contains(*i)) {
                seen.insert(fields[9].to_owned(), fields[3].to_owned());
            }
        }
    }
    let mut states = std::collections::BTreeMap::new();
    for state in seen.into_values() {
        *states.entry(state).or_default() += 1;
    }
    Some(states)
}

/// Waits until the server holds no connection, only its listener.
async fn server_connections_close(port: u16) {
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while let Some(n) = server_sockets(port) {
        if n <= 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the server still holds {} connections",
            n - 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the process has at most `limit` open descriptors.
async fn fds_fall_to(limit: usize) {
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while let Some(n) = open_fds() {
        if n <= limit {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{n} descriptors still open, expected at most {limit}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_half_sent_request_head_is_cut_off_after_the_header_timeout() {
    shared(async {
        let server = start(limits(SHORT, Duration::from_secs(60), 16)).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        let got = wait_closed(&mut s).await;
        assert!(
            got.is_empty() || status_of(&got) >= 400,
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        // The server still serves everyone else.
        let r = request(server.addr, "GET", "/v2/", &[], b"").await.unwrap();
        assert_eq!(r.status, 200);
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    shared(async {
        let server = start(limits(SHORT, Duration::from_secs(60), 16)).await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let mut buf = Vec::new();
        // Two requests on one connection: it is kept alive between them.
        for _ in 0..2 {
            s.write_all(head(server.addr, "GET", "/v2/", &[]).as_bytes())
                .await
                .unwrap();
            let r = read_response(&mut s, &mut buf).await.unwrap();
            assert_eq!(r.status, 200);
            assert_ne!(r.header("connection"), Some("close"));
        }
        // Then it idles, and the server closes it without a word.
        assert_eq!(wait_closed(&mut s).await, b"");
    });
}

#[test]
fn a_stalled_upload_is_cut_off_and_its_session_stays_usable() {
    shared(async {
        let server = start(limits(SHORT, SHORT, 16)).await;
        let addr = server.addr;
        let data = blob(100_000);
        let upload = start_upload(addr, "library/app").await;

        // Announce 10 GB, send five bytes, stall.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let h = head(
            addr,
            "PATCH",
            &upload,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", "10000000000"),
            ],
        );
        s.write_all(h.as_bytes()).await.unwrap();
        s.write_all(&data[..5]).await.unwrap();
        let got = wait_closed(&mut s).await;
        let (answer, head_len) = parse_head(&got).expect("an answer before the close");
        assert_eq!(answer.status, 400, "{:?}", String::from_utf8_lossy(&got));
        let body: serde_json::Value = serde_json::from_slice(&got[head_len..]).unwrap();
        assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID");

        // The session goes on from wherever it stands (nothing, or the five bytes).
        let status = request(addr, "GET", &upload, &[], b"").await.unwrap();
        assert_eq!(status.status, 204, "{status:?}");
        let offset = match status.header("range") {
            Some("0-4") => 5,
            _ => 0,
        };
        let range = format!("{offset}-{}", data.len() - 1);
        let r = request(
            addr,
            "PATCH",
            &upload,
            &[
                ("content-type", "application/octet-stream"),
                ("content-range", &range),
            ],
            &data[offset..],
        )
        .await
        .unwrap();
        assert_eq!(r.status, 202, "{r:?}");
        let digest = digest(&data);
        let done = path_of(r.header("location").unwrap());
        let r = request(addr, "PUT", &with_digest(&done, &digest), &[], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{r:?}");
        let r = request(
            addr,
            "GET",
            &format!("/v2/library/app/blobs/{digest}"),
            &[],
            b"",
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == data, "the blob's bytes differ");
    });
}

#[test]
fn a_slow_steady_body_is_never_cut_off() {
    shared(async {
        let idle = 2 * SHORT;
        let server = start(limits(SHORT, idle, 16)).await;
        let addr = server.addr;
        let data = blob(40 * 4096);
        let upload = start_upload(addr, "library/slow").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let length = data.len().to_string();
        let h = head(
            addr,
            "PATCH",
            &upload,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &length),
            ],
        );
        s.write_all(h.as_bytes()).await.unwrap();
        // 40 pieces, a tenth of the idle timeout apart (ten times the
        // margin a scheduler hiccup would need): four idle timeouts in all.
        for piece in data.chunks(4096) {
            tokio::time::sleep(idle / 10).await;
            s.write_all(piece).await.unwrap();
        }
        let r = read_response(&mut s, &mut Vec::new()).await.unwrap();
        assert_eq!(r.status, 202, "{r:?}");
        assert_eq!(
            r.header("range"),
            Some(format!("0-{}", data.len() - 1).as_str())
        );
        let done = path_of(r.header("location").unwrap());
        let r = request(addr, "PUT", &with_digest(&done, &digest(&data)), &[], b"")
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{r:?}");
    });
}

#[test]
fn a_response_the_client_stops_reading_is_abandoned() {
    shared(async {
        let app = TestApp::new().await;
        // Far more than the kernel buffers on both sides can hold.
        let data = blob(32 << 20);
        let digest = app.push_blob("library/big", &data).await;
        let server = start_with(app, limits(SHORT, SHORT, 16)).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(server.addr).await.unwrap();
        let path = format!("/v2/library/big/blobs/{digest}");
        s.write_all(head(server.addr, "GET", &path, &[]).as_bytes())
            .await
            .unwrap();
        let mut first = [0u8; 16];
        s.read_exact(&mut first).await.unwrap();
        assert!(first.starts_with(b"HTTP/1.1 200"));
        // Read nothing for ten body idle timeouts, then everything there is:
        // the server gave up, so the blob comes out short.
        tokio::time::sleep(SHORT * 10).await;
        let rest = wait_closed(&mut s).await;
        assert!(
            first.len() + rest.len() < data.len(),
            "the whole blob arrived ({} bytes)",
            rest.len()
        );
    });
}

#[test]
fn a_connection_over_the_limit_is_answered_503_and_closed() {
    shared(async {
        let long = Duration::from_secs(120);
        let server = start(limits(long, long, 2)).await;
        // Two connections that say nothing take both places (they are
        // accepted in order, before the third).
        let first = TcpStream::connect(server.addr).await.unwrap();
        let second = TcpStream::connect(server.addr).await.unwrap();
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        let got = wait_closed(&mut third).await;
        let (r, head_len) = parse_head(&got).unwrap();
        assert_eq!(r.status, 503);
        assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
        assert_eq!(r.header("connection"), Some("close"));
        let length: usize = r.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, got.len() - head_len);
        let body: serde_json::Value = serde_json::from_slice(&got[head_len..]).unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
        // A client that goes away gives its place back.
        drop(first);
        let (r, _) = request_retrying(server.addr, "GET", "/v2/", b"").await;
        assert_eq!(r.status, 200);
        drop(second);
    });
}

#[test]
fn stalled_connections_beyond_the_limit_do_not_starve_a_client_or_leak_descriptors() {
    alone(async {
        const MAX: usize = 16;
        let server = start(limits(SHORT, SHORT, MAX)).await;
        let addr = server.addr;
        let r = request(addr, "GET", "/v2/", &[], b"").await.unwrap();
        assert_eq!(r.status, 200);
        let baseline = open_fds();

        let mut stalled = Vec::new();
        for i in 0..MAX + 50 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /v2/ HTTP/1.1\r\nhost: x\r\n")
                    .await
                    .unwrap();
            } else {
                let upload = format!(
                    "POST /v2/library/app/blobs/uploads/?digest={} HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000000\r\n\r\nabc",
                    digest(b"x")
                );
                s.write_all(upload.as_bytes()).await.unwrap();
            }
            stalled.push(s);
        }
        if let Some(held) = server_sockets(addr.port()) {
            // The listener, at most MAX connections, and one being refused.
            assert!(
                held <= MAX + 2,
                "the server holds {held} sockets: {:?}",
                server_socket_states(addr.port())
            );
        }
        if let (Some(base), Some(now)) = (baseline, open_fds()) {
            assert!(
                now <= base + stalled.len() + MAX + 8,
                "{now} descriptors open with {} clients (baseline {base})",
                stalled.len()
            );
        }

        let (r, busy) = request_retrying(addr, "GET", "/v2/", b"").await;
        assert_eq!(r.status, 200);
        eprintln!("the client was told 503 {busy} times");

        let mut refused = 0;
        for s in &mut stalled {
            let got = wait_closed(s).await;
            if !got.is_empty() {
                let status = status_of(&got);
                assert!(matches!(status, 400 | 503), "status {status}");
                refused += usize::from(status == 503);
            }
        }
        eprintln!(
            "{refused} of {} stalled connections were answered 503",
            stalled.len()
        );
        drop(stalled);
        server_connections_close(addr.port()).await;
        if let Some(base) = baseline {
            fds_fall_to(base + 2).await;
        }
        let r = request(addr, "GET", "/v2/", &[], b"").await.unwrap();
        assert_eq!(r.status, 200);
    });
}

/// The scenario from the issue, at the default connection limit and scaled
/// to one-second timeouts: 2,000 connections that stall, most announcing a
/// 10 GB upload. All are closed, and a client is served during and after.
#[test]
fn two_thousand_stalled_connections_at_the_default_limit() {
    alone(async {
        let defaults = Limits::default();
        let server = start(Limits {
            header_timeout: SHORT,
            body_idle_timeout: SHORT,
            ..defaults.clone()
        })
        .await;
        let addr = server.addr;
        let r = request(addr, "GET", "/v2/", &[], b"").await.unwrap();
        assert_eq!(r.status, 200);

        // This process holds both ends: 2,000 clients + up to the limit on the
        // server's side must fit its open-files limit.
        let spare = berth::http::server::raise_fd_limit()
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX))
            .saturating_sub(defaults.max_connections + 256);
        let count = 2000.min(spare);
        if count < 2000 {
            eprintln!("open-files limit too low for 2,000 clients: using {count}");
        }
        let baseline = open_fds();
        let flood_head = format!(
            "POST /v2/library/flood/blobs/uploads/?digest={} HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000000\r\n\r\n0123",
            digest(b"flood")
        );
        let mut stalled = Vec::with_capacity(count);
        for i in 0..count {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let bytes = if i % 4 == 0 {
                b"POST /v2/library/flood/blobs/uploads/ HTTP/1.1\r\nhost: x\r\n".as_slice()
            } else {
                flood_head.as_bytes()
            };
            // A refused connection may already be closed: that is fine.
            let _ = s.write_all(bytes).await;
            stalled.push(s);
        }
        if let Some(held) = server_sockets(addr.port()) {
            assert!(
                held <= defaults.max_connections + 2,
                "the server holds {held} sockets: {:?}",
                server_socket_states(addr.port())
            );
        }
        if let (Some(base), Some(now)) = (baseline, open_fds()) {
            assert!(
                now <= base + count + defaults.max_connections + 8,
                "{now} descriptors open with {count} clients (baseline {base})"
            );
        }

        // During: a client that honours 503 + Retry-After gets through.
        let during = tokio::spawn(async move { request_retrying(addr, "GET", "/v2/", b"").await });

        let waits: Vec<_> = stalled
            .into_iter()
            .map(|mut s| tokio::spawn(async move { wait_closed(&mut s).await }))
            .collect();
        let mut answered = std::collections::BTreeMap::<u16, usize>::new();
        for w in waits {
            let got = w.await.unwrap();
            if !got.is_empty() {
                *answered.entry(status_of(&got)).or_default() += 1;
            }
        }
        assert!(
            answered.keys().all(|s| matches!(s, 400 | 503)),
            "{answered:?}"
        );
        eprintln!("stalled connections' answers (the rest were closed silently): {answered:?}");
        let (r, busy) = during.await.unwrap();
        assert_eq!(r.status, 200);
        eprintln!("the client during the flood was told 503 {busy} times");

        // After: served at once, and every descriptor is back.
        let (r, _) = request_retrying(addr, "GET", "/v2/", b"").await;
        assert_eq!(r.status, 200);
        server_connections_close(addr.port()).await;
        if let Some(base) = baseline {
            fds_fall_to(base + 2).await;
        }
    });
}

#[test]
fn shutdown_lets_an_in_flight_upload_finish() {
    shared(async {
        let mut server = start(limits(Duration::from_secs(10), Duration::from_secs(10), 16)).await;
        let addr = server.addr;
        let data = blob(8192);
        let upload = start_upload(addr, "library/app").await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let length = data.len().to_string();
        let h = head(
            addr,
            "PATCH",
            &upload,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &length),
                ("expect", "100-continue"),
            ],
        );
        s.write_all(h.as_bytes()).await.unwrap();
        // `100 Continue` comes when the handler starts reading the body: the
        // request is in flight.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while parse_head(&buf).is_none() {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before 100 Continue");
            buf.extend_from_slice(&chunk[..n]);
        }
        let (interim, len) = parse_head(&buf).unwrap();
        assert_eq!(interim.status, 100);
        buf.drain(..len);

        server.shutdown();
        s.write_all(&data[..4096]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.write_all(&data[4096..]).await.unwrap();
        let r = read_response(&mut s, &mut buf).await.unwrap();
        assert_eq!(r.status, 202, "{r:?}");
        assert_eq!(wait_closed(&mut s).await, b"");
        server.stopped().await;
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    });
}

#[test]
fn shutdown_waits_for_a_stalled_request_only_for_the_grace_period() {
    shared(async {
        let long = Duration::from_secs(600);
        let mut server = start(Limits {
            shutdown_grace: SHORT,
            ..limits(long, long, 16)
        })
        .await;
        let upload = start_upload(server.addr, "library/app").await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let h = head(
            server.addr,
            "PATCH",
            &upload,
            &[("content-length", "1000"), ("expect", "100-continue")],
        );
        s.write_all(h.as_bytes()).await.unwrap();
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).await.unwrap();
        assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n"));
        // An idle keep-alive connection, too.
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        idle.write_all(head(server.addr, "GET", "/v2/", &[]).as_bytes())
            .await
            .unwrap();
        let r = read_response(&mut idle, &mut Vec::new()).await.unwrap();
        assert_eq!(r.status, 200);

        server.shutdown();
        assert_eq!(wait_closed(&mut idle).await, b"");
        server.stopped().await;
        wait_closed(&mut s).await;
    });
}

/// Router level: what a handler does with a body that stops arriving.
#[test]
fn a_stalled_body_is_a_400_and_the_upload_can_resume() {
    shared(async {
        let app = TestApp::new().await;
        let data = blob(10_000);
        let r = app
            .send(
                Method::POST,
                "/v2/library/app/blobs/uploads/",
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let upload = path_of(r.header("location"));
        let head_of_data = Bytes::copy_from_slice(&data[..100]);
        let stalled = futures_util::StreamExt::chain(
            futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(head_of_data))]),
            futures_util::stream::pending(),
        );
        let body = IdleTimeout::new(
            http_body_util::StreamBody::new(stalled),
            Duration::from_millis(300),
        );
        let r = app.send(Method::PATCH, &upload, &[], Body::new(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
        assert!(
            r.text().contains("no request body bytes arrived"),
            "{}",
            r.text()
        );

        let r = app.get(&upload).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let offset = if r.header("range") == "0-99" { 100 } else { 0 };
        let range = format!("{offset}-{}", data.len() - 1);
        let r = app
            .send(
                Method::PATCH,
                &upload,
                &[("content-range", &range)],
                data[offset..].to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let done = path_of(r.header("location"));
        let r = app
            .send(
                Method::PUT,
                &with_digest(&done, &digest(&data)),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    });
}
