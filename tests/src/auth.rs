//! The Docker token flow for raw HTTP requests ([`crate::http`]).
//!
//! Berth answers `/v2/…` without a token with `401` and
//! `WWW-Authenticate: Bearer realm="…",service="…"[,scope="…"]`; a client
//! fetches a token from the realm (with Basic credentials, or none for an
//! anonymous one) for the scopes it needs and sends it as
//! `Authorization: Bearer`. Distribution (no auth configured) never
//! challenges, so nothing here happens there.
//!
//! [`crate::http::Request`] does this by itself: a request made as
//! [`Auth::Default`] uses the credentials registered for its host
//! ([`register_credentials`], which [`crate::Registry`] does for its
//! admin), sends a cached token for the scopes its URL needs, and on a
//! `401` (or a `403` `insufficient_scope`) with a Bearer challenge fetches
//! a fresh token and sends the request once more.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::http::{self, Response};

/// Whom a raw HTTP request authenticates as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// The credentials registered for the request's host
    /// ([`register_credentials`]); no token flow if there are none.
    #[default]
    Default,
    /// The token flow without credentials (an anonymous token).
    Anonymous,
    /// The token flow with these Basic credentials.
    Basic(Credentials),
    /// No token flow at all: the request goes as it is, a `401` comes back.
    Raw,
}

impl Auth {
    pub fn basic(user: &str, password: &str) -> Self {
        Self::Basic(Credentials::new(user, password))
    }
}

/// A user name and password (or a robot's name and secret).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The `Authorization: Basic …` header value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

/// Credentials per `host:port`.
static CREDENTIALS: Mutex<Option<HashMap<String, Credentials>>> = Mutex::new(None);

/// Tokens per (host, principal, scope set).
type TokenKey = (String, Option<String>, String);
static TOKENS: Mutex<Option<HashMap<TokenKey, String>>> = Mutex::new(None);

/// Requests to `host` (`127.0.0.1:<port>`) made as [`Auth::Default`] use
/// `credentials` from now on.
pub fn register_credentials(host: &str, credentials: Credentials) {
    CREDENTIALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(host.to_owned(), credentials);
}

/// Forgets the credentials and tokens of `host` (its registry is gone).
pub fn forget_credentials(host: &str) {
    if let Some(map) = CREDENTIALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        map.remove(host);
    }
    if let Some(map) = TOKENS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        map.retain(|(h, _, _), _| h != host);
    }
}

fn registered(host: &str) -> Option<Credentials> {
    CREDENTIALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(host).cloned())
}

/// What a request as `auth` to `url` does: `None` for no token flow, else
/// the credentials of the flow (`Some(None)`: anonymous).
pub(crate) fn resolve(auth: &Auth, url: &str) -> Option<Option<Credentials>> {
    match auth {
        Auth::Default => registered(&host_of(url)?).map(Some),
        Auth::Anonymous => Some(None),
        Auth::Basic(c) => Some(Some(c.clone())),
        Auth::Raw => None,
    }
}

fn key(url: &str, who: Option<&Credentials>) -> Option<TokenKey> {
    Some((
        host_of(url)?,
        who.map(|c| c.user.clone()),
        scopes_for(url).join(" "),
    ))
}

/// The token cached for a request to `url` as `who`.
pub(crate) fn cached(url: &str, who: Option<&Credentials>) -> Option<String> {
    let key = key(url, who)?;
    TOKENS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(&key).cloned())
}

/// After `resp` to a request to `url` as `who`: a fresh token if the
/// response is a Bearer challenge (a `401`, or a `403` for
/// `insufficient_scope`) and the realm issued one, cached for next time.
pub(crate) fn renew(url: &str, who: Option<&Credentials>, resp: &Response) -> Option<String> {
    let challenged = resp.status == 401 || (resp.status == 403 && insufficient_scope(resp));
    if !challenged {
        return None;
    }
    renew_with(url, who, &Challenge::of(resp)?).ok()
}

fn renew_with(
    url: &str,
    who: Option<&Credentials>,
    challenge: &Challenge,
) -> Result<String, String> {
    let mut scopes = scopes_for(url);
    for s in &challenge.scopes {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let token = fetch_token(&challenge.realm, &challenge.service, &scopes, who)?;
    if let Some(key) = key(url, who) {
        TOKENS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(key, token.clone());
    }
    Ok(token)
}

/// For clients of their own (raw sockets): the cached token for a request
/// to `url` as `auth`, if any.
pub fn cached_token(url: &str, auth: &Auth) -> Option<String> {
    let who = resolve(auth, url)?;
    cached(url, who.as_ref())
}

/// For clients of their own: after a Bearer `challenge` to a request to
/// `url` as `auth`, a fresh token (cached for [`cached_token`]); `Err` if
/// `auth` has no token flow or the realm issued none (or did not answer).
pub fn renew_token(url: &str, auth: &Auth, challenge: &Challenge) -> Result<String, String> {
    let who = resolve(auth, url).ok_or_else(|| format!("no credentials for {url}"))?;
    renew_with(url, who.as_ref(), challenge)
}

fn insufficient_scope(resp: &Response) -> bool {
    resp.header_values("WWW-Authenticate")
        .iter()
        .any(|v| v.contains("insufficient_scope"))
        || resp.body_str().contains("insufficient_scope")
}

/// `GET <realm>?service=…&scope=…` (Basic `who`, or anonymous): the token,
/// or `Err` with the whole response.
pub fn fetch_token(
    realm: &str,
    service: &str,
    scopes: &[String],
    who: Option<&Credentials>,
) -> Result<String, String> {
    let resp = token_request(realm, service, scopes, who).try_send()?;
    if resp.status != 200 {
        return Err(format!("the token service refused:\n{resp}"));
    }
    let json: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| format!("the token answer is not JSON ({e}):\n{resp}"))?;
    json["token"]
        .as_str()
        .or_else(|| json["access_token"].as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("the token answer has no token:\n{resp}"))
}

/// The token request itself, for tests that look at the answer.
pub fn token_request(
    realm: &str,
    service: &str,
    scopes: &[String],
    who: Option<&Credentials>,
) -> http::Request {
    let mut url = format!("{realm}?service={}", encode(service));
    for s in scopes {
        url.push_str("&scope=");
        url.push_str(&encode(s));
    }
    let mut req = http::get(&url).auth(Auth::Raw);
    if let Some(c) = who {
        req = req.header("Authorization", &c.basic_header());
    }
    req
}

/// The scopes a request to `url` needs: every action on its repository
/// (and on the `from` repository of a cross-mount), or the catalog. The
/// token service grants what the caller may of them.
pub fn scopes_for(url: &str) -> Vec<String> {
    let Some(path_and_query) = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
    else {
        return Vec::new();
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Vec::new();
    };
    if rest == "_catalog" {
        return vec!["registry:catalog:*".to_owned()];
    }
    let mut scopes = Vec::new();
    let ends = ["/blobs/", "/manifests/", "/tags/", "/referrers/"];
    if let Some(end) = ends.iter().filter_map(|e| rest.find(e)).min() {
        scopes.push(repository_scope(&rest[..end]));
    }
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k == "from" {
            let from = decode(v);
            let scope = format!("repository:{from}:pull");
            if !scopes.contains(&scope) && !from.is_empty() {
                scopes.push(scope);
            }
        }
    }
    scopes
}

/// `repository:<name>:pull,push,delete`.
pub fn repository_scope(name: &str) -> String {
    format!("repository:{name}:pull,push,delete")
}

/// A `WWW-Authenticate: Bearer …` challenge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: String,
    /// Each `scope` parameter (one may hold several, space-separated).
    pub scopes: Vec<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// The Bearer challenge of a response, if it has one.
    pub fn of(resp: &Response) -> Option<Self> {
        resp.header_values("WWW-Authenticate")
            .into_iter()
            .find_map(Self::parse)
    }

    /// Parses `Bearer realm="…",service="…",scope="…",error="…"`.
    pub fn parse(value: &str) -> Option<Self> {
        let (scheme, params) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut out = Self::default();
        for (k, v) in parse_params(params) {
            match k.to_ascii_lowercase().as_str() {
                "realm" => out.realm = v,
                "service" => out.service = v,
                "scope" => out
                    .scopes
                    .extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned)),
                "error" => out.error = Some(v),
                _ => {}
            }
        }
        (!out.realm.is_empty()).then_some(out)
    }
}

/// `k="v",k2=v2` with quoted values that may hold commas.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (v, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((k, v));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// `host:port` of an `http://host:port/…` URL.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:5000/service/token",service="berth-registry",scope="repository:library/app:pull,push""#,
        )
        .expect("a challenge");
        assert_eq!(c.realm, "http://127.0.0.1:5000/service/token");
        assert_eq!(c.service, "berth-registry");
        assert_eq!(c.scopes, ["repository:library/app:pull,push"]);
        let c = Challenge::parse(
            r#"Bearer realm="http://h/t", service="s", error="insufficient_scope""#,
        )
        .expect("a challenge");
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert!(Challenge::parse(r#"Basic realm="x""#).is_none());
    }

    #[test]
    fn scopes_from_urls() {
        assert_eq!(
            scopes_for("http://h:1/v2/e2e/a/blobs/uploads/?mount=sha256:x&from=e2e%2Fb"),
            ["repository:e2e/a:pull,push,delete", "repository:e2e/b:pull"]
        );
        assert_eq!(
            scopes_for("http://h:1/v2/a/b/c/manifests/v1"),
            ["repository:a/b/c:pull,push,delete"]
        );
        assert_eq!(
            scopes_for("http://h:1/v2/_catalog?n=1"),
            ["registry:catalog:*"]
        );
        assert!(scopes_for("http://h:1/v2/").is_empty());
        assert_eq!(
            host_of("http://127.0.0.1:9/v2/").as_deref(),
            Some("127.0.0.1:9")
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
