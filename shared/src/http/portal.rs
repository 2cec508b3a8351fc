//! The web portal, served by `berth serve` from files compiled into the
//! binary (the `berth` crate's build script embeds `portal/dist`; this
//! crate only sees the resulting table, so the Lambda functions, which
//! never serve the portal, carry none of it).
//!
//! The portal is the router's fallback: whatever no API route took.
//!
//! | request | answer |
//! | --- | --- |
//! | any method on `/v2`, `/api`, `/c`, `/service` or below | the API's own JSON error (404 `no such endpoint` where no API route matched), never HTML |
//! | GET/HEAD of an embedded file (`/index.html`, `/assets/app-1a2b3c.js`, `/favicon.svg`) | the file |
//! | GET/HEAD of another path under `/assets/` | 404: a page that asks for a chunk a newer build replaced must fail, not parse HTML as script |
//! | GET/HEAD of any other path (`/`, `/harbor/projects/3/repositories/a%2Fb`) | `index.html`: the app routes it in the browser |
//! | another method outside the API prefixes | 405 with `Allow: GET, HEAD` (the OCI error body) |
//!
//! Caching: files under `/assets/` carry a content hash in their names, so
//! they are `immutable` for a year; everything else (chiefly `index.html`,
//! which names the current hashes) is `no-cache`: stored, but revalidated
//! every time with its `ETag` ([RFC 9111 §5.2.2.4]). Revalidation
//! (`If-None-Match`, [RFC 9110 §13.1.2]) answers 304.
//!
//! Compression: the build script stores a gzip copy of each file it helps;
//! it is served when `Accept-Encoding` accepts gzip, under its own `ETag`
//! (a strong validator names one representation), with
//! `Vary: Accept-Encoding` on both variants.
//!
//! HTML responses carry the document's security policy
//! ([`CONTENT_SECURITY_POLICY`]: scripts, styles, images and API calls only
//! from this origin, no framing); every portal response carries
//! `X-Content-Type-Options: nosniff`.
//!
//! [RFC 9111 §5.2.2.4]: https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.4
//! [RFC 9110 §13.1.2]: https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, OciCode};

/// The policy of every HTML page of the portal. `style-src` allows inline
/// styles because component libraries set `style` attributes; scripts
/// never run inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'self'; form-action 'self'";

/// `Cache-Control` of content-hashed files (`/assets/…`).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of every other file: keep, but revalidate before use.
pub const CACHE_REVALIDATE: &str = "no-cache";

/// Path prefixes that belong to the APIs: the portal never answers there,
/// so an API client that gets a path wrong sees the API's error, not a page.
const API_PREFIXES: [&str; 4] = ["/v2", "/api", "/c", "/service"];

/// Where content-hashed files live (Vite's `build.assetsDir`).
const ASSETS_DIR: &str = "/assets/";

const INDEX: &str = "/index.html";

/// One file of the portal, as the build script embeds it.
#[derive(Debug)]
pub struct PortalAsset {
    /// The URL path it is served at: `/index.html`, `/assets/index-1a2b3c.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// `body` gzip-compressed, when that makes it smaller.
    pub gzip: Option<&'static [u8]>,
    /// A strong validator of `body`, unquoted, of `[0-9A-Za-z]` (the build
    /// script uses the hex SHA-256 of `body`). The `ETag` of the gzip
    /// copy is derived from it.
    pub etag: &'static str,
}

/// The embedded portal: a table of files with an `/index.html`.
#[derive(Clone, Copy, Debug)]
pub struct Portal {
    assets: &'static [PortalAsset],
    index: &'static PortalAsset,
}

impl Portal {
    /// The portal over a table of files; `None` if it has no `/index.html`.
    pub fn new(assets: &'static [PortalAsset]) -> Option<Self> {
        let index = assets.iter().find(|a| a.path == INDEX)?;
        Some(Self { assets, index })
    }

    /// The embedded files.
    pub fn assets(&self) -> &'static [PortalAsset] {
        self.assets
    }

    /// The answer to a request no route took (see the module docs).
    pub fn respond(&self, req: &Request) -> Response {
        let path = req.uri().path();
        if is_api_path(path) {
            return super::no_such_endpoint().into_response();
        }
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return method_not_allowed(),
        };
        let asset = match self.assets.iter().find(|a| a.path == path) {
            Some(asset) => asset,
            None if path.starts_with(ASSETS_DIR) => {
                return super::no_such_endpoint().into_response();
            }
            None => self.index,
        };
        serve(asset, req.headers(), head)
    }
}

/// `/v2`, `/api`, `/c`, `/service`, or a path below one of them.
fn is_api_path(path: &str) -> bool {
    API_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn method_not_allowed() -> Response {
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        OciCode::Unsupported,
        "the portal answers GET and HEAD only",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    resp
}

fn serve(asset: &PortalAsset, req: &HeaderMap, head: bool) -> Response {
    let gzip = asset.gzip.filter(|_| accepts_gzip(req));
    let etag = match gzip {
        Some(_) => format!("\"{}-gz\"", asset.etag),
        None => format!("\"{}\"", asset.etag),
    };
    let cache = if asset.path.starts_with(ASSETS_DIR) {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };

    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }

    // Either copy is the same file: a validator of either one is current.
    if none_match(req, asset.etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }

    let body = gzip.unwrap_or(asset.body);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if gzip.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if head {
        Body::empty()
    } else {
        Body::from(body)
    };
    (StatusCode::OK, headers, body).into_response()
}

/// Whether `If-None-Match` names this file (weak comparison, as RFC 9110
/// §13.1.2 has it for `If-None-Match`), in either encoding, or is `*`.
fn none_match(req: &HeaderMap, etag: &str) -> bool {
    req.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| {
            if tag == "*" {
                return true;
            }
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            let Some(inner) = opaque.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
                return false;
            };
            inner == etag || inner.strip_suffix("-gz") == Some(etag)
        })
}

/// Whether `Accept-Encoding` accepts gzip: `gzip` (or `x-gzip`) with a
/// non-zero weight, else `*` with one ([RFC 9110 §12.5.3]).
///
/// [RFC 9110 §12.5.3]: https://www.rfc-editor.org/rfc/rfc9110#section-12.5.3
fn accepts_gzip(req: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for coding in req
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(weight);
        } else if name == "*" {
            any = Some(weight);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn api_prefixes_match_whole_segments() {
        for api in [
            "/v2",
            "/v2/",
            "/v2/a/b",
            "/api",
            "/api/v2.0/x",
            "/c/login",
            "/service/token",
        ] {
            assert!(is_api_path(api), "{api}");
        }
        for page in [
            "/",
            "/v2x",
            "/apis",
            "/cats",
            "/services",
            "/harbor/v2",
            "/index.html",
        ] {
            assert!(!is_api_path(page), "{page}");
        }
    }

    #[test]
    fn accept_encoding_weights_decide_gzip() {
        let accepts = |v: &str| accepts_gzip(&headers(header::ACCEPT_ENCODING, v));
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("deflate, *"));
        assert!(accepts("x-gzip"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("*, gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_compares_weakly_across_encodings() {
        let matches = |v: &str| none_match(&headers(header::IF_NONE_MATCH, v), "abc");
        assert!(matches("\"abc\""));
        assert!(matches("W/\"abc\""));
        assert!(matches("\"x\", \"abc-gz\""));
        assert!(matches("*"));
        assert!(!matches("\"abcd\""));
        assert!(!matches("abc"));
        assert!(!matches("\"ab\"-gz"));
    }
}
