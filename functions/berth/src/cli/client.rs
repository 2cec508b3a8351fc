//! A small HTTP/1.1 client for `/api/v2.0`: Basic auth on every request,
//! Harbor's error bodies, `Location` ids and `Link` paging.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::error::CliError;

/// The API's root, under the server's base URL.
pub(crate) const API_ROOT: &str = "/api/v2.0";
/// Items asked for per page when listing.
pub(crate) const PAGE_SIZE: usize = 100;
/// Pages followed at most (a guard against a server whose paging loops).
const MAX_PAGES: usize = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one whole request: sending it and reading the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read (a list of 100 items is a few tens of KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What is escaped in a path segment or query value: everything but the
/// unreserved characters of RFC 3986.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The server's base URL, split: `https://host:port` and a path prefix
/// (empty, or `/something` without a trailing slash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    https: bool,
    origin: String,
    prefix: String,
}

impl BaseUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::Local(format!("--url {url:?}: {why}"));
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|_| bad("not a URL (expected http://host:port)"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(bad("only http:// and https:// are supported")),
            None => return Err(bad("give the scheme, as in http://host:port")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials do not go in the URL (use --username and BERTH_PASSWORD)",
            ));
        }
        if uri.query().is_some() {
            return Err(bad("a base URL has no query"));
        }
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            https,
            origin: format!("{scheme}://{authority}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `/api/v2.0/<segments…>`, each segment percent-encoded, under the
    /// prefix: a target for [`Api`]'s requests.
    pub(crate) fn path(&self, segments: &[&str]) -> String {
        let mut p = format!("{}{API_ROOT}", self.prefix);
        for s in segments {
            p.push('/');
            p.push_str(&enc(s));
        }
        p
    }

    /// The path and query of a `Link` target on this server: relative ones
    /// as they are; absolute ones only on this origin (credentials are never
    /// sent anywhere else).
    fn link_target(&self, link: &str) -> Option<String> {
        if link.starts_with('/') && !link.starts_with("//") {
            return Some(link.to_owned());
        }
        let uri: Uri = link.parse().ok()?;
        let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
        if !origin.eq_ignore_ascii_case(&self.origin) {
            return None;
        }
        uri.path_and_query().map(|pq| pq.as_str().to_owned())
    }
}

/// Appends `key=value` pairs (values percent-encoded) to `target`.
pub(crate) fn with_query(target: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = target.to_owned();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 && !target.contains('?') {
            '?'
        } else {
            '&'
        });
        out.push_str(k);
        out.push('=');
        out.push_str(&enc(v));
    }
    out
}

/// The `rel="next"` target of `Link` header values
/// (`<…>; rel="next", <…>; rel="prev"`), if any.
pub(crate) fn link_next<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let params_end = after[close + 1..]
                .find('<')
                .map_or(after.len(), |i| close + 1 + i);
            let params = &after[close + 1..params_end];
            let is_next = params.split(';').any(|p| {
                let mut kv = p.splitn(2, '=');
                let key = kv.next().unwrap_or_default().trim();
                let val = kv.next().unwrap_or_default().trim().trim_matches('"');
                key.eq_ignore_ascii_case("rel")
                    && val
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next && !target.is_empty() {
                return Some(target.trim().to_owned());
            }
            rest = &after[params_end..];
        }
    }
    None
}

/// The id at the end of a `Location` (`/api/v2.0/users/5` → 5).
pub(crate) fn location_id(location: &str) -> Option<i64> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    super::as_id(last)
}

/// What a create call answered: the new resource's `Location` (and the id
/// at its end) and a body, if there was one (`POST /robots` sends one).
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) location: Option<String>,
    pub(crate) id: Option<i64>,
    pub(crate) body: Value,
}

/// One answer: status, headers, body (read whole).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Result<Value, CliError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError::Local(format!("the server's answer is not JSON ({e})")))
    }
}

enum Transport {
    Http(Client<HttpConnector, Full<Bytes>>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// The API of one server, as one user.
pub(crate) struct Api {
    base: BaseUrl,
    auth: HeaderValue,
    transport: Transport,
}

impl Api {
    pub(crate) fn new(base: BaseUrl, username: &str, password: &str) -> Result<Self, CliError> {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|e| CliError::Local(format!("cannot build the Authorization header: {e}")))?;
        auth.set_sensitive(true);
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let builder = Client::builder(TokioExecutor::new());
        let transport = if base.https {
            http.enforce_http(false);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| {
                    CliError::Local(format!("cannot load the system's CA certificates: {e}"))
                })?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            Transport::Https(builder.build(https))
        } else {
            Transport::Http(builder.build(http))
        };
        Ok(Self {
            base,
            auth,
            transport,
        })
    }

    /// See [`BaseUrl::path`].
    pub(crate) fn path(&self, segments: &[&str]) -> String {
        self.base.path(segments)
    }

    /// Sends one request to `target` (a path and query on the server) and
    /// reads the answer, whatever its status.
    async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{target}", self.base.origin);
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        // Every project path here names the project (never its id).
        if target.starts_with(&self.path(&["projects", ""])) {
            req = req.header("X-Is-Resource-Name", "true");
        }
        let payload = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(v)
                        .map_err(|e| CliError::Local(format!("cannot encode the request: {e}")))?,
                )
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| CliError::Local(format!("bad request to {url}: {e}")))?;
        let exchange = async {
            let resp = match &self.transport {
                Transport::Http(c) => c.request(req).await,
                Transport::Https(c) => c.request(req).await,
            }
            .map_err(|e| self.transport_error(&e))?;
            let (parts, body) = resp.into_parts();
            let body = http_body_util::Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    CliError::Transport(format!(
                        "reading the answer from {}: {}",
                        self.base.origin,
                        error_chain(&*e)
                    ))
                })?
                .to_bytes();
            Ok::<_, CliError>(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                CliError::Transport(format!(
                    "the server at {} did not answer within {}s",
                    self.base.origin,
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
    }

    fn transport_error(&self, e: &hyper_util::client::legacy::Error) -> CliError {
        let origin = &self.base.origin;
        if e.is_connect() {
            CliError::Transport(format!(
                "cannot connect to {origin}: {} (is the server running? set --url or BERTH_URL)",
                root_cause(e)
            ))
        } else {
            CliError::Transport(format!("request to {origin} failed: {}", error_chain(e)))
        }
    }

    /// Sends and fails on any status but 2xx.
    async fn call(
        &self,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CliError> {
        let answer = self.send(method, target, body).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            let reason = http::StatusCode::from_u16(answer.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default();
            Err(CliError::from_response(answer.status, reason, &answer.body))
        }
    }

    /// `GET target`, the answer's JSON.
    pub(crate) async fn get(&self, target: &str) -> Result<Value, CliError> {
        self.call(Method::GET, target, None).await?.json()
    }

    /// `GET target`, the answer as text (`/system/gc/{id}/log`).
    pub(crate) async fn get_text(&self, target: &str) -> Result<String, CliError> {
        let answer = self.call(Method::GET, target, None).await?;
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// Every item of a paged list: `page`/`page_size` on the first request,
    /// then the `Link: <…>; rel="next"` targets, or (without `Link`) the next
    /// page number while full pages come back.
    pub(crate) async fn list(
        &self,
        target: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, CliError> {
        let size = PAGE_SIZE.to_string();
        let first = |page: usize| {
            let page = page.to_string();
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("page", &page));
            q.push(("page_size", &size));
            with_query(target, &q)
        };
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut page = 1;
        let mut next = Some(first(page));
        while let Some(t) = next.take() {
            if !seen.insert(t.clone()) || seen.len() > MAX_PAGES {
                break;
            }
            let answer = self.call(Method::GET, &t, None).await?;
            let batch = match answer.json()? {
                Value::Array(batch) => batch,
                Value::Null => Vec::new(),
                _ => {
                    return Err(CliError::Local(format!(
                        "the server's answer to GET {t} is not a list"
                    )));
                }
            };
            let n = batch.len();
            items.extend(batch);
            let links = answer
                .headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok());
            next = match link_next(links) {
                Some(link) => self.base.link_target(&link),
                None if n == PAGE_SIZE => {
                    page += 1;
                    Some(first(page))
                }
                None => None,
            };
        }
        Ok(items)
    }

    /// `POST target` with `body`: the `Location`, its id, and any body.
    pub(crate) async fn create(&self, target: &str, body: &Value) -> Result<Created, CliError> {
        let answer = self.call(Method::POST, target, Some(body)).await?;
        let location = answer
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer.json().unwrap_or(Value::Null);
        let id = location
            .as_deref()
            .and_then(location_id)
            .or_else(|| body.get("id").and_then(Value::as_i64));
        Ok(Created { location, id, body })
    }

    /// `PUT target` with `body`.
    pub(crate) async fn put(&self, target: &str, body: &Value) -> Result<(), CliError> {
        self.call(Method::PUT, target, Some(body)).await.map(drop)
    }

    /// `PATCH target` with `body`, the answer's JSON.
    pub(crate) async fn patch(&self, target: &str, body: &Value) -> Result<Value, CliError> {
        self.call(Method::PATCH, target, Some(body)).await?.json()
    }

    /// `DELETE target`.
    pub(crate) async fn delete(&self, target: &str) -> Result<(), CliError> {
        self.call(Method::DELETE, target, None).await.map(drop)
    }
}

/// The innermost source of an error (`Connection refused (os error 111)`
/// rather than `client error (Connect)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(source) = cur.source() {
        cur = source;
    }
    cur.to_string()
}

/// An error and its sources, `a: b: c`, without repeats.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_split_into_origin_and_prefix() {
        let b = BaseUrl::parse("http://127.0.0.1:5000").expect("valid");
        assert_eq!(b.origin, "http://127.0.0.1:5000");
        assert_eq!(b.path(&["users"]), "/api/v2.0/users");
        let b = BaseUrl::parse("https://reg.example.com/harbor/").expect("valid");
        assert!(b.https);
        assert_eq!(
            b.path(&["projects", "p", "members"]),
            "/harbor/api/v2.0/projects/p/members"
        );
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for url in [
            "127.0.0.1:5000",
            "ftp://host",
            "http://user:pw@host",
            "http://host/?x=1",
            "not a url",
        ] {
            assert!(BaseUrl::parse(url).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let b = BaseUrl::parse("http://h").expect("valid");
        assert_eq!(b.path(&["robots", "a/b c"]), "/api/v2.0/robots/a%2Fb%20c");
        assert_eq!(
            b.path(&["users", "robot$p+ci"]),
            "/api/v2.0/users/robot%24p%2Bci"
        );
    }

    #[test]
    fn queries_are_appended_encoded() {
        assert_eq!(
            with_query("/r", &[("q", "Level=project,ProjectID=3"), ("page", "1")]),
            "/r?q=Level%3Dproject%2CProjectID%3D3&page=1"
        );
        assert_eq!(with_query("/r?a=1", &[("b", "x y")]), "/r?a=1&b=x%20y");
        assert_eq!(with_query("/r", &[]), "/r");
    }

    #[test]
    fn link_next_is_found_among_the_relations() {
        let v = r#"</api/v2.0/users?page=1&page_size=2>; rel="prev" , </api/v2.0/users?page=3&page_size=2>; rel="next""#;
        assert_eq!(
            link_next([v]).as_deref(),
            Some("/api/v2.0/users?page=3&page_size=2")
        );
        assert_eq!(
            link_next([r#"</a?q=x,y>; rel=next"#]).as_deref(),
            Some("/a?q=x,y")
        );
        assert_eq!(
            link_next([r#"</a>; title="x"; REL="prefetch Next""#]).as_deref(),
            Some("/a")
        );
        assert_eq!(
            link_next([r#"</a>; rel="prev""#, r#"</b>; rel="next""#]).as_deref(),
            Some("/b")
        );
        assert_eq!(link_next([r#"</a>; rel="prev""#]), None);
        assert_eq!(link_next([r#"</a; rel="next""#]), None);
        assert_eq!(link_next(["garbage"]), None);
        assert_eq!(link_next(Vec::<&str>::new()), None);
    }

    #[test]
    fn link_targets_stay_on_the_server() {
        let b = BaseUrl::parse("http://127.0.0.1:5000").expect("valid");
        assert_eq!(
            b.link_target("/api/v2.0/users?page=2").as_deref(),
            Some("/api/v2.0/users?page=2")
        );
        assert_eq!(
            b.link_target("http://127.0.0.1:5000/api/v2.0/users?page=2")
                .as_deref(),
            Some("/api/v2.0/users?page=2")
        );
        assert_eq!(b.link_target("http://evil.example/api/v2.0/users"), None);
        assert_eq!(b.link_target("//evil.example/api/v2.0/users"), None);
        assert_eq!(b.link_target("https://127.0.0.1:5000/api/v2.0/users"), None);
    }

    #[test]
    fn location_ids_are_the_last_segment() {
        assert_eq!(location_id("/api/v2.0/users/5"), Some(5));
        assert_eq!(location_id("http://h:5000/api/v2.0/projects/12/"), Some(12));
        assert_eq!(location_id("/api/v2.0/projects/p/members/7?x=1"), Some(7));
        assert_eq!(location_id("/api/v2.0/robots/"), None);
        assert_eq!(location_id("/api/v2.0/projects/p"), None);
        assert_eq!(location_id(""), None);
    }

    #[test]
    fn error_chains_skip_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(error_chain(&io), "connection refused");
        assert_eq!(root_cause(&io), "connection refused");
    }
}
