//! HTTP to other servers: webhook receivers, peer registries, proxy-cache
//! upstreams. Every address those come from is user input, so every
//! connection goes through [`SafeClient`], which refuses what could reach
//! the machine's own neighbourhood (server-side request forgery):
//!
//! - only `http` and `https` URLs;
//! - link-local and instance-metadata addresses (`169.254.0.0/16`,
//!   `fe80::/10`, `fd00:ec2::254`) and unroutable ones (unspecified,
//!   multicast, broadcast) always;
//! - loopback and private ranges unless the operator allows them
//!   ([`AddressPolicy::allow_private`], `BERTH_WEBHOOK_ALLOW_PRIVATE`).
//!
//! The check runs where it cannot be dodged: on the addresses a name
//! resolves to, inside the connector, right before connecting (a name that
//! resolved to a public address when a policy was saved and to
//! `169.254.169.254` now is refused now), on literal addresses before the
//! connector is called, and again on every redirect hop, which the client
//! follows itself. A refused target never sees a packet: the decision is
//! made before a socket is opened.

pub mod registry;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// Boxed error of bodies and transports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body: bytes (replayable across redirects) or a stream.
pub type Body = BoxBody<Bytes, BoxError>;

/// Why an outbound request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The target is not allowed (scheme or address); nothing was sent.
    #[error("target refused: {0}")]
    Refused(String),
    #[error("bad URL {0:?}: {1}")]
    BadUrl(String, String),
    #[error("cannot reach {0}: {1}")]
    Transport(String, String),
    #[error("{0} did not answer within {1}s")]
    Timeout(String, u64),
    #[error("too many redirects from {0}")]
    Redirects(String),
}

impl OutboundError {
    /// Whether this is the address filter's refusal.
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Which addresses outbound connections may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Loopback and private ranges (RFC 1918, CGNAT, ULA) too.
    pub allow_private: bool,
}

/// The instance-metadata address of EC2's IPv6 endpoint.
const EC2_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

impl AddressPolicy {
    pub const fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Why `ip` may not be reached, if it may not.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => self.refusal_v4(v4),
            IpAddr::V6(v6) => self.refusal_v6(v6),
        }
    }

    fn refusal_v4(&self, ip: Ipv4Addr) -> Option<&'static str> {
        let o = ip.octets();
        if ip.is_link_local() {
            return Some("a link-local or instance-metadata address");
        }
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || o[0] == 0 {
            return Some("an unroutable address");
        }
        let private = ip.is_loopback()
            || ip.is_private()
            || (o[0] == 100 && (o[1] & 0xc0) == 64)
            || (o[0] == 192 && o[1] == 0 && o[2] == 0);
        (private && !self.allow_private).then_some("a loopback or private address")
    }

    fn refusal_v6(&self, ip: Ipv6Addr) -> Option<&'static str> {
        let seg = ip.segments();
        if ip == EC2_METADATA_V6 || (seg[0] & 0xffc0) == 0xfe80 {
            return Some("a link-local or instance-metadata address");
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return Some("an unroutable address");
        }
        // NAT64 of a v4 address: judge the v4 address.
        if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
            let v4 = Ipv4Addr::new(
                (seg[6] >> 8) as u8,
                seg[6] as u8,
                (seg[7] >> 8) as u8,
                seg[7] as u8,
            );
            return self.refusal_v4(v4);
        }
        let private = ip.is_loopback() || (seg[0] & 0xfe00) == 0xfc00;
        (private && !self.allow_private).then_some("a loopback or private address")
    }

    /// Checks one address, naming the host in the refusal.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        match self.refusal(ip) {
            Some(why) => Err(OutboundError::Refused(format!(
                "{host} is {why} ({ip}); {}",
                if why.starts_with("a loopback") {
                    "allow private targets with BERTH_WEBHOOK_ALLOW_PRIVATE=true"
                } else {
                    "such targets are never allowed"
                }
            ))),
            None => Ok(()),
        }
    }
}

/// The environment variable of the process default of
/// [`AddressPolicy::allow_private`].
pub const ALLOW_PRIVATE_ENV: &str = "BERTH_WEBHOOK_ALLOW_PRIVATE";

static DEFAULT_ALLOW_PRIVATE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sets the process default (the `--webhook-allow-private` flag); the
/// first call wins.
pub fn set_default_allow_private(allow: bool) {
    let _ = DEFAULT_ALLOW_PRIVATE.set(allow);
}

/// The process default: the flag, else `BERTH_WEBHOOK_ALLOW_PRIVATE`
/// (`true`/`1`), else off.
pub fn default_allow_private() -> bool {
    *DEFAULT_ALLOW_PRIVATE.get_or_init(|| {
        std::env::var(ALLOW_PRIVATE_ENV)
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    })
}

/// The address policy now in force: the `/configurations` setting
/// `webhook_allow_private` when an admin set it, else the process default.
pub async fn policy_for(directory: &crate::iam::directory::Directory) -> AddressPolicy {
    let setting = match directory.settings().await {
        Ok(s) => s.webhook_allow_private,
        Err(e) => {
            tracing::warn!(error = %e, "reading settings failed; using the default address policy");
            None
        }
    };
    AddressPolicy::new(setting.unwrap_or_else(default_allow_private))
}

/// Name resolution, replaceable in tests (so a test can make a name
/// resolve to a metadata address without any DNS).
pub trait Lookup: Send + Sync + 'static {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// The connector's resolver: resolves, then drops every address the
/// policy refuses; a name left with none fails to connect with the
/// refusal as its cause.
#[derive(Clone)]
struct FilteringResolver {
    policy: AddressPolicy,
    lookup: Arc<dyn Lookup>,
}

impl tower::Service<Name> for FilteringResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let ips = this.lookup.lookup(host.clone()).await?;
            let mut refused = None;
            let ok: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| match this.policy.check(&host, *ip) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if ok.is_empty() {
                let why = refused.map_or_else(
                    || format!("{host} resolves to no address"),
                    |e| e.to_string(),
                );
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    RefusedAddress(why),
                ));
            }
            Ok(ok.into_iter())
        })
    }
}

/// The resolver's refusal, found again in a connect error's causes.
#[derive(Debug)]
struct RefusedAddress(String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<FilteringResolver>>;

/// Options of a [`SafeClient`].
#[derive(Clone)]
pub struct ClientOptions {
    pub policy: AddressPolicy,
    pub connect_timeout: Duration,
    /// From sending the request to the response's headers.
    pub timeout: Duration,
    pub max_redirects: usize,
    pub lookup: Arc<dyn Lookup>,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            policy: AddressPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_redirects: 5,
            lookup: Arc::new(SystemLookup),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An HTTP/1.1 client (http and https) that reaches only what its
/// [`AddressPolicy`] allows, and follows redirects itself.
#[derive(Clone)]
pub struct SafeClient {
    client: Client<Connector, Body>,
    opts: ClientOptions,
}

/// A buffered answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Wraps bytes as a request body.
pub fn bytes_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// An empty request body.
pub fn empty_body() -> Body {
    bytes_body(Bytes::new())
}

fn host_of(uri: &Uri) -> String {
    uri.authority()
        .map_or_else(String::new, |a| a.as_str().to_owned())
}

/// The causes of an error, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Finds the resolver's refusal among an error's causes.
fn refused_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<RefusedAddress>() {
            return Some(r.0.clone());
        }
        // `io::Error::source()` skips the error it wraps: look inside.
        if let Some(r) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<RefusedAddress>())
        {
            return Some(r.0.clone());
        }
        cur = c.source();
    }
    None
}

impl SafeClient {
    pub fn new(opts: ClientOptions) -> Result<Self, OutboundError> {
        let resolver = FilteringResolver {
            policy: opts.policy,
            lookup: opts.lookup.clone(),
        };
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_connect_timeout(Some(opts.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                OutboundError::Transport("TLS".into(), format!("no CA certificates: {e}"))
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self { client, opts })
    }

    /// A client with default options and `policy`.
    pub fn with_policy(policy: AddressPolicy) -> Result<Self, OutboundError> {
        Self::new(ClientOptions {
            policy,
            ..ClientOptions::default()
        })
    }

    pub fn policy(&self) -> AddressPolicy {
        self.opts.policy
    }

    /// Checks a URL without sending anything: its scheme, and its host if
    /// it is a literal address (names are checked when resolved).
    pub fn check_url(&self, url: &str) -> Result<Uri, OutboundError> {
        check_url(self.opts.policy, url)
    }

    /// Sends one request and follows redirects (re-checking each target):
    /// `307`/`308` repeat the method and a replayable body, `301`/`302`/
    /// `303` continue with a `GET` (or `HEAD`) without a body. A streamed
    /// body is never replayed: its redirect is answered as is.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>, OutboundError> {
        let mut method = method;
        let mut uri = self.check_url(url)?;
        let mut body = body;
        let mut headers = headers;
        for _ in 0..=self.opts.max_redirects {
            let b = body.clone().map_or_else(empty_body, bytes_body);
            let resp = self.send_once(method.clone(), &uri, &headers, b).await?;
            let status = resp.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(loc) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let next = resolve_location(&uri, loc)?;
            let next = self.check_url(&next)?;
            if next.authority() != uri.authority() {
                // Credentials never follow a redirect to another host.
                headers.remove(header::AUTHORIZATION);
                headers.remove(header::COOKIE);
            }
            if !matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                if method != Method::HEAD {
                    method = Method::GET;
                }
                body = None;
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
            }
            uri = next;
        }
        Err(OutboundError::Redirects(url.to_owned()))
    }

    /// Sends one request with a streamed body; no redirect is followed.
    pub async fn send_stream(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, OutboundError> {
        let uri = self.check_url(url)?;
        self.send_once(method, &uri, &headers, body).await
    }

    async fn send_once(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, OutboundError> {
        let mut req = Request::builder().method(method).uri(uri.clone());
        if let Some(h) = req.headers_mut() {
            h.extend(headers.clone());
            if !h.contains_key(header::USER_AGENT)
                && let Ok(v) = self.opts.user_agent.parse()
            {
                h.insert(header::USER_AGENT, v);
            }
        }
        let host = host_of(uri);
        let req = req
            .body(body)
            .map_err(|e| OutboundError::BadUrl(uri.to_string(), e.to_string()))?;
        match tokio::time::timeout(self.opts.timeout, self.client.request(req)).await {
            Err(_) => Err(OutboundError::Timeout(host, self.opts.timeout.as_secs())),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(match refused_cause(&e) {
                Some(why) => OutboundError::Refused(why),
                None => OutboundError::Transport(host, chain(&e)),
            }),
        }
    }

    /// [`Self::send`], then reads the body (at most `limit` bytes; the rest
    /// is an error) within the client's timeout.
    pub async fn fetch(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        limit: usize,
    ) -> Result<Answer, OutboundError> {
        let resp = self.send(method, url, headers, body).await?;
        read_answer(resp, limit, self.opts.timeout, url).await
    }
}

/// Reads a response's body (at most `limit` bytes) within `timeout`.
pub async fn read_answer(
    resp: Response<Incoming>,
    limit: usize,
    timeout: Duration,
    url: &str,
) -> Result<Answer, OutboundError> {
    let (parts, body) = resp.into_parts();
    let host = url.to_owned();
    let read = async {
        Limited::new(body, limit)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| OutboundError::Transport(host.clone(), chain(&*e)))
    };
    let body = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| OutboundError::Timeout(host.clone(), timeout.as_secs()))??;
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Checks a URL's scheme and, when its host is a literal address, the
/// address.
pub fn check_url(policy: AddressPolicy, url: &str) -> Result<Uri, OutboundError> {
    // A scheme other than http(s) is refused as such, even where the rest
    // would not parse as an HTTP URI (`file:///etc/passwd`).
    if let Some((scheme, _)) = url.split_once(':')
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
        && url[scheme.len()..].starts_with("://")
    {
        return Err(OutboundError::Refused(format!(
            "only http and https URLs are allowed, not {scheme}:"
        )));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| OutboundError::BadUrl(url.to_owned(), e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(OutboundError::Refused(format!(
                "only http and https URLs are allowed, not {other}:"
            )));
        }
        None => {
            return Err(OutboundError::BadUrl(
                url.to_owned(),
                "an absolute http or https URL is needed".into(),
            ));
        }
    }
    let host = uri
        .host()
        .ok_or_else(|| OutboundError::BadUrl(url.to_owned(), "no host".into()))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(OutboundError::BadUrl(
            url.to_owned(),
            "credentials in the URL are not allowed; use the auth settings".into(),
        ));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        policy.check(host, ip)?;
    } else if let Some(ip) = legacy_ipv4(bare) {
        // `http://2852039166/` or `0xa9.0xfe.0xa9.0xfe`: what some
        // resolvers read as an address is judged as one.
        policy.check(host, IpAddr::V4(ip))?;
    }
    Ok(uri)
}

/// Reads the numeric forms of IPv4 that `inet_aton` accepts (decimal,
/// octal, hex parts; fewer than four parts), which are not dotted quads.
fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let n = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    let (last, head) = nums.split_last()?;
    let mut v: u64 = 0;
    for (i, n) in head.iter().enumerate() {
        if *n > 255 {
            return None;
        }
        v |= n << (24 - 8 * i);
    }
    let room = 32 - 8 * head.len();
    if *last >= (1u64 << room) {
        return None;
    }
    Some(Ipv4Addr::from((v | last) as u32))
}

/// Resolves a `Location` against the URL it came from.
fn resolve_location(base: &Uri, loc: &str) -> Result<String, OutboundError> {
    if loc.starts_with("http://") || loc.starts_with("https://") || loc.contains("://") {
        return Ok(loc.to_owned());
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let auth = base.authority().map_or("", |a| a.as_str());
    if let Some(rest) = loc.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if loc.starts_with('/') {
        return Ok(format!("{scheme}://{auth}{loc}"));
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{auth}{dir}{loc}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: AddressPolicy, url: &str) -> bool {
        check_url(policy, url).is_err_and(|e| e.is_refused())
    }

    #[test]
    fn metadata_and_link_local_are_always_refused() {
        for allow in [false, true] {
            let p = AddressPolicy::new(allow);
            for url in [
                "http://169.254.169.254/latest/meta-data/",
                "http://169.254.0.1/",
                "http://[fe80::1]/",
                "http://[fd00:ec2::254]/",
                "http://[::ffff:169.254.169.254]/",
                "http://[64:ff9b::a9fe:a9fe]/",
                "http://2852039166/",
                "http://0xa9.0xfe.0xa9.0xfe/",
                "http://0251.0376.0251.0376/",
                "http://169.254.43518/",
                "http://0.0.0.0/",
                "http://[::]/",
                "http://224.0.0.1/",
            ] {
                assert!(refused(p, url), "{url} with allow_private={allow}");
            }
        }
    }

    #[test]
    fn private_ranges_only_when_allowed() {
        let urls = [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[fc00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
        ];
        for url in urls {
            assert!(refused(AddressPolicy::new(false), url), "{url}");
            assert!(!refused(AddressPolicy::new(true), url), "{url}");
        }
        assert!(!refused(
            AddressPolicy::new(false),
            "https://93.184.216.34/"
        ));
        assert!(!refused(
            AddressPolicy::new(false),
            "https://hooks.slack.com/x"
        ));
    }

    #[test]
    fn only_http_and_https() {
        for url in [
            "file:///etc/passwd",
            "gopher://example.com/",
            "ftp://example.com/",
        ] {
            assert!(refused(AddressPolicy::new(true), url), "{url}");
        }
        assert!(check_url(AddressPolicy::new(true), "/relative").is_err());
        assert!(check_url(AddressPolicy::new(true), "http://user:pw@example.com/").is_err());
    }

    #[test]
    fn locations_resolve_against_their_base() {
        let base: Uri = "http://a.example:8080/x/y?q".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "/z").unwrap(),
            "http://a.example:8080/z"
        );
        assert_eq!(
            resolve_location(&base, "z").unwrap(),
            "http://a.example:8080/x/z"
        );
        assert_eq!(
            resolve_location(&base, "//b.example/").unwrap(),
            "http://b.example/"
        );
        assert_eq!(resolve_location(&base, "https://c/").unwrap(), "https://c/");
    }

    /// A name resolved to a metadata address is refused by the connector
    /// before any socket is opened.
    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        struct Fixed;
        impl Lookup for Fixed {
            fn lookup(
                &self,
                host: String,
            ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
                Box::pin(async move {
                    Ok(match host.as_str() {
                        "metadata.test" => vec!["169.254.169.254".parse().unwrap()],
                        _ => vec!["10.0.0.7".parse().unwrap()],
                    })
                })
            }
        }
        for allow in [false, true] {
            let c = SafeClient::new(ClientOptions {
                policy: AddressPolicy::new(allow),
                lookup: Arc::new(Fixed),
                ..ClientOptions::default()
            })
            .unwrap();
            let e = c
                .fetch(
                    Method::GET,
                    "http://metadata.test/latest",
                    HeaderMap::new(),
                    None,
                    1024,
                )
                .await
                .unwrap_err();
            assert!(e.is_refused(), "{e}");
        }
        let c = SafeClient::new(ClientOptions {
            lookup: Arc::new(Fixed),
            ..ClientOptions::default()
        })
        .unwrap();
        let e = c
            .fetch(
                Method::GET,
                "http://intranet.test/",
                HeaderMap::new(),
                None,
                1,
            )
            .await
            .unwrap_err();
        assert!(e.is_refused(), "{e}");
    }
}
