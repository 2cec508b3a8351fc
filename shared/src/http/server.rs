//! The HTTP/1.1 server loop behind `berth serve` and `berth stack`: hyper's
//! connection driver under limits that keep slow and stalled clients from
//! holding the process's connections, file descriptors and memory.
//!
//! | limit | what it bounds |
//! | --- | --- |
//! | [`Limits::header_timeout`] | a request head must arrive within it, from the moment the server starts reading one: a new connection, or a keep-alive connection after its last response (so it is also the keep-alive idle timeout) |
//! | [`Limits::body_idle_timeout`] | a request body that delivers no byte for this long fails ([`IdleTimeout`]); a response the client stops reading fails the connection after as long ([`StallGuard`]). Neither limits a transfer that keeps moving, however slowly |
//! | [`Limits::max_connections`] | open connections; beyond it a new connection is answered `503` with `Retry-After` and closed at once |
//! | [`Limits::shutdown_grace`] | how long in-flight requests may run after shutdown begins |
//!
//! HTTP/1.1 only: hyper handles one request at a time per HTTP/1
//! connection, so the connection limit also bounds requests in flight.
//! Registry clients speak HTTP/1.1 to a plain-HTTP registry (HTTP/2 needs
//! TLS with ALPN for them), so cleartext HTTP/2 is not offered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Sleep;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server's resource limits; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// Defaults: 30 s for a request head (hyper's own default, and Go's usual
/// `ReadHeaderTimeout` range); 60 s without a byte of body (nginx's
/// `client_body_timeout` and `send_timeout`); 1024 connections (about 200
/// docker clients at 5 parallel layer transfers each); 30 s to finish
/// in-flight requests at shutdown.
impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            body_idle_timeout: Duration::from_secs(DEFAULT_BODY_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Semaphores hold at most this many permits; far above any sane limit.
pub const MAX_CONNECTIONS_CEILING: usize = 1 << 20;

/// File descriptors a connection may need: its socket, and a blob file
/// while a request reads or writes one.
const FDS_PER_CONNECTION: u64 = 2;
/// Descriptors the process needs besides connections: the listener, the
/// metadata database, the runtime, AWS clients' sockets.
const FDS_RESERVED: u64 = 64;

/// What every connection refused at the limit is told, written straight to
/// the socket without reading the request: `503` with the OCI error body
/// (Distribution's code for it, `UNAVAILABLE`).
static BUSY_RESPONSE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable","detail":"too many connections"}]}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         content-type: application/json\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\n\
         connection: close\r\n\
         content-length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
});

/// A hint, not a promise: stalled connections leave within the header or
/// body idle timeout, normal ones within a request.
const RETRY_AFTER_SECS: u64 = 2;

/// Lines about refused connections or accept errors: at most one per this.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` under `limits` until `shutdown` resolves,
/// then lets in-flight requests finish (up to `limits.shutdown_grace`) and
/// returns. Accepted sockets get `TCP_NODELAY`: a small blob's body is
/// written after its headers, and with Nagle's algorithm that second write
/// waits for the client's delayed ACK (~40 ms on Linux).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS_CEILING);
    tracing::debug!(?limits, "serving");
    let permits = Arc::new(Semaphore::new(max));
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut refused = Throttle::default();
    let mut accept_errors = Throttle::default();
    let mut backoff = Duration::ZERO;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::ZERO;
                (tcp, peer)
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: wait for
                // connections to close instead of spinning on accept.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                if let Some(n) = accept_errors.hit() {
                    tracing::error!(error = %e, errors = n, "cannot accept connections");
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(tcp);
            if let Some(n) = refused.hit() {
                tracing::warn!(
                    max_connections = max,
                    refused = n,
                    "connection limit reached: answering new connections 503"
                );
            }
            continue;
        };
        tokio::spawn(connection(
            tcp,
            PeerAddr(peer),
            builder.clone(),
            router.clone(),
            limits.body_idle_timeout,
            phase_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    drain(&permits, max, &phase_tx, limits.shutdown_grace).await;
    Ok(())
}

/// Asks every connection to finish its request and close, waits for them
/// up to `grace`, then drops the rest.
async fn drain(permits: &Semaphore, max: usize, phase: &watch::Sender<Phase>, grace: Duration) {
    let open = max - permits.available_permits();
    if open > 0 {
        tracing::info!(connections = open, "waiting for in-flight requests");
    }
    phase.send_replace(Phase::Draining);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_ok()
    {
        return;
    }
    let open = max - permits.available_permits();
    tracing::warn!(
        connections = open,
        "closing connections still open after the shutdown grace"
    );
    phase.send_replace(Phase::Closing);
    let _ = tokio::time::timeout(Duration::from_secs(1), permits.acquire_many(all)).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in progress, then close.
    Draining,
    /// Close now.
    Closing,
}

/// The address a request's connection comes from (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// One connection, holding its `permit` until it closes.
async fn connection(
    tcp: TcpStream,
    peer: PeerAddr,
    builder: http1::Builder,
    router: Router,
    body_idle_timeout: Duration,
    mut phase: watch::Receiver<Phase>,
    permit: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(|body| IdleTimeout::new(body, body_idle_timeout));
        req.extensions_mut().insert(peer);
        router.clone().oneshot(req)
    });
    let io = TokioIo::new(StallGuard::new(tcp, body_idle_timeout));
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Closing };
                match now {
                    Phase::Serving => {}
                    Phase::Draining if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Phase::Draining => {}
                    Phase::Closing => break,
                }
            }
        }
    }
    drop(permit);
}

/// Answers a connection over the limit with [`BUSY_RESPONSE`] and closes
/// it, without a task or a wait: the write fits the empty send buffer of a
/// fresh socket; what the client already sent is read and dropped so that
/// closing sends FIN rather than a reset that could discard the answer.
fn refuse(tcp: TcpStream) {
    let _ = tcp.try_write(&BUSY_RESPONSE);
    let Ok(std) = tcp.into_std() else { return };
    let _ = std.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match io::Read::read(&mut &std, &mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Lets a repeated event through at most once per [`LOG_EVERY`], counting
/// the events in between.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    /// Records an event; `Some(events since the last line)` when a line is due.
    fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// A request body that fails when no frame arrives for `timeout` while it
/// is being read. The clock runs only while the reader waits on the client:
/// a handler busy between reads (writing a part to S3) never trips it, and
/// a transfer of any length passes as long as bytes keep coming.
pub struct IdleTimeout<B> {
    inner: B,
    clock: IdleClock,
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            clock: IdleClock::new(timeout),
        }
    }
}

/// The clock behind [`IdleTimeout`] and [`StallGuard`]: it runs only across
/// an unbroken stretch of waits on the client, and starts again after any
/// progress.
struct IdleClock {
    timeout: Duration,
    /// Created on the first wait, re-armed at the start of each stretch.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl IdleClock {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            timer: None,
            waiting: false,
        }
    }

    /// The client made progress: the next wait starts a new stretch.
    fn progressed(&mut self) {
        self.waiting = false;
    }

    /// The client kept us waiting: `Ready` once the stretch has lasted
    /// `timeout`, else `Pending` with a wake-up registered for then.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.waiting {
            self.waiting = true;
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

/// The error a request body yields after [`Limits::body_idle_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes arrived for {0:?}")]
pub struct BodyIdleTimeout(pub Duration);

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.clock.progressed();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(this.clock.poll_expired(cx));
        Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.clock.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket whose writes fail with `TimedOut` when the client has accepted
/// no byte for `timeout`: a client that stops reading a response (a blob
/// GET) cannot hold its connection and the file behind it forever. Reads
/// pass through; their limits are the header and body timeouts.
pub struct StallGuard<T> {
    io: T,
    clock: IdleClock,
}

impl<T> StallGuard<T> {
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            clock: IdleClock::new(timeout),
        }
    }

    /// A write that would block starts the clock, or fails once it has run
    /// out; any write that goes through stops it.
    fn progress<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        if result.is_ready() {
            self.clock.progressed();
            return result;
        }
        ready!(self.clock.poll_expired(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing of the response for the body idle timeout",
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit, and warns when
/// `max_connections` could still run the process out of descriptors.
/// Returns the soft limit now in force (`None` where it is unknown or
/// unlimited).
pub fn prepare_fd_limit(max_connections: usize) -> Option<u64> {
    let limit = raise_fd_limit();
    let needed = (max_connections as u64)
        .saturating_mul(FDS_PER_CONNECTION)
        .saturating_add(FDS_RESERVED);
    if let Some(limit) = limit.filter(|l| *l < needed) {
        tracing::warn!(
            max_connections,
            open_files_limit = limit,
            needed,
            "the open-files limit is below what --max-connections may need; \
             raise `ulimit -n` or lower --max-connections"
        );
    }
    limit
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit in force afterwards.
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_some() && now.current != now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(
                from = ?now.current,
                to = ?now.maximum,
                "raised the open-files limit"
            ),
            Err(e) => tracing::debug!(error = %e, "could not raise the open-files limit"),
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;

    type Chunk = Result<Frame<Bytes>, io::Error>;

    /// An `mpsc::Receiver` as a `Stream` of body frames.
    struct Frames(mpsc::Receiver<Chunk>);

    impl futures_util::Stream for Frames {
        type Item = Chunk;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
            self.0.poll_recv(cx)
        }
    }

    /// A body the test feeds through a channel.
    fn channel_body(timeout: Duration) -> (mpsc::Sender<Chunk>, IdleTimeout<StreamBody<Frames>>) {
        let (tx, rx) = mpsc::channel(8);
        (tx, IdleTimeout::new(StreamBody::new(Frames(rx)), timeout))
    }

    fn data(s: &'static str) -> Chunk {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_delivering_fails_after_the_idle_timeout() {
        let (tx, mut body) = channel_body(Duration::from_secs(10));
        tx.send(data("abc")).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abc");
        let started = tokio::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyIdleTimeout>(), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_body_never_times_out() {
        let (tx, body) = channel_body(Duration::from_secs(10));
        let feeder = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                tx.send(data("x")).await.unwrap();
            }
        });
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 100);
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn time_between_reads_is_not_idle_time() {
        let (tx, mut body) = channel_body(Duration::from_secs(10));
        tx.send(data("a")).await.unwrap();
        body.frame().await.unwrap().unwrap();
        // The reader is busy for longer than the timeout, then waits again
        // for a client that sends within the timeout.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(9)).await;
            tx.send(data("b")).await.unwrap();
        });
        let next = body.frame().await.unwrap().unwrap();
        assert_eq!(next.into_data().unwrap(), "b");
        feeder.await.unwrap();
        assert!(body.frame().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn errors_and_the_end_pass_through() {
        let (tx, mut body) = channel_body(Duration::from_secs(10));
        tx.send(Err(io::Error::other("reset"))).await.unwrap();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(!err.is::<BodyIdleTimeout>());
        drop(tx);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_accepts_fails_after_the_timeout() {
        use tokio::io::AsyncWriteExt;
        // A pipe with a small buffer that nobody reads.
        let (client, server) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let err = guarded.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_keeps_its_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(server, Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 4096 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                got += client.read(&mut buf).await.unwrap();
            }
        });
        guarded.write_all(&[0u8; 4096]).await.unwrap();
        reader.await.unwrap();
    }

    #[test]
    fn throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut t = Throttle::default();
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
        t.last = t.last.map(|l| l - LOG_EVERY);
        assert_eq!(t.hit(), Some(3));
    }

    #[test]
    fn the_busy_response_is_well_formed() {
        let text = std::str::from_utf8(&BUSY_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["errors"][0]["code"], "UNAVAILABLE");
        assert!(head.starts_with("HTTP/1.1 503 "));
    }
}
