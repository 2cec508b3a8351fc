//! Query strings of the management API: parameters, Harbor's `q`
//! filter syntax, and paging (`page`, `page_size`, `X-Total-Count`, `Link`).

use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::{ApiError, ApiResult};

/// Decoded query parameters, in order.
pub(crate) struct Params(Vec<(String, String)>);

fn decode_component(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses a `application/x-www-form-urlencoded` text (query or form body).
pub(crate) fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// Harbor's booleans, capitalised or not.
pub(crate) fn parse_bool(name: &str, v: &str) -> ApiResult<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

impl Params {
    pub(crate) fn of(uri: &Uri) -> Self {
        Params(parse_urlencoded(uri.query().unwrap_or("")))
    }

    /// A parameter's value; empty values count as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.get(name).map(|v| parse_bool(name, v)).transpose()
    }

    pub(crate) fn paging(&self) -> ApiResult<Paging> {
        let num = |name: &str, default: u64| -> ApiResult<u64> {
            match self.get(name) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a positive number"))
                }),
            }
        };
        let page = match num("page", 1)? {
            0 => return Err(ApiError::bad_request("page must be at least 1")),
            n => n,
        };
        let size = match num("page_size", 10)? {
            n if n == 0 || n > 100 => {
                return Err(ApiError::bad_request(format!(
                    "page_size must be between 1 and 100, not {n}"
                )));
            }
            n => n,
        };
        Ok(Paging {
            page: usize::try_from(page).unwrap_or(usize::MAX),
            size: usize::try_from(size).unwrap_or(100),
        })
    }

    /// Harbor's `q` filter, parsed.
    pub(crate) fn q(&self) -> ApiResult<Vec<(String, QVal)>> {
        match self.get("q") {
            Some(q) => parse_q(q),
            None => Ok(Vec::new()),
        }
    }
}

/// One `q` value: `k=v`, `k=~v`, `k=[a~b]`, `k={a b}` or `k=(a b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QVal {
    Exact(String),
    Fuzzy(String),
    Range(Option<String>, Option<String>),
    AnyOf(Vec<String>),
}

impl QVal {
    /// Whether a string value satisfies the filter (a range compares as text).
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            QVal::Exact(v) => s == v,
            QVal::Fuzzy(v) => s.contains(v.as_str()),
            QVal::AnyOf(vs) => vs.iter().any(|v| v == s),
            QVal::Range(a, b) => {
                a.as_deref().is_none_or(|a| a <= s) && b.as_deref().is_none_or(|b| s <= b)
            }
        }
    }
}

/// Parses Harbor's `q`: `k=v,k2=~v2,k3=[a~b],k4={a b}`.
pub(crate) fn parse_q(q: &str) -> ApiResult<Vec<(String, QVal)>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in q.char_indices() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' if depth == 0 => {
                return Err(ApiError::bad_request(format!(
                    "invalid query {q:?}: {c:?} closes nothing"
                )));
            }
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(ApiError::bad_request(format!(
            "invalid query {q:?}: unbalanced brackets"
        )));
    }
    parts.push(&q[start..]);
    let mut out = Vec::new();
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            ApiError::bad_request(format!("invalid query {part:?}: expected key=value"))
        })?;
        let k = k.trim().to_owned();
        let v = v.trim();
        let val = if let Some(f) = v.strip_prefix('~') {
            QVal::Fuzzy(f.to_owned())
        } else if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let (a, b) = inner
                .split_once('~')
                .ok_or_else(|| ApiError::bad_request(format!("invalid range in {part:?}")))?;
            let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
            QVal::Range(opt(a), opt(b))
        } else if let Some(inner) = v
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .or_else(|| v.strip_prefix('(').and_then(|r| r.strip_suffix(')')))
        {
            QVal::AnyOf(inner.split_whitespace().map(str::to_owned).collect())
        } else {
            QVal::Exact(v.to_owned())
        };
        out.push((k, val));
    }
    Ok(out)
}

/// One requested page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub(crate) page: usize,
    pub(crate) size: usize,
}

impl Paging {
    pub(crate) fn skip(&self) -> usize {
        (self.page - 1).saturating_mul(self.size)
    }

    /// This page of `items`.
    pub(crate) fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.skip())
            .take(self.size)
            .collect()
    }
}

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn page_link(uri: &Uri, paging: Paging, page: usize) -> String {
    page_link_with(uri, paging, page, None)
}

fn page_link_with(uri: &Uri, paging: Paging, page: usize, cursor: Option<&str>) -> String {
    let mut q: Vec<String> = Params::of(uri)
        .0
        .into_iter()
        .filter(|(k, _)| k != "page" && k != "page_size" && k != "cursor")
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(&k, QUERY_VALUE),
                utf8_percent_encode(&v, QUERY_VALUE)
            )
        })
        .collect();
    q.push(format!("page={page}"));
    q.push(format!("page_size={}", paging.size));
    if let Some(c) = cursor {
        q.push(format!("cursor={c}"));
    }
    format!("<{}?{}>", uri.path(), q.join("&"))
}

// ---- cursor paging ------------------------------------------------------------

/// A page cursor as it travels in a `Link` URL: the sort key to continue
/// after, base64url-encoded (opaque to clients).
pub(crate) fn encode_cursor(sk: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

impl Params {
    /// The `cursor` of a `Link` URL, checked to belong to this listing
    /// (its sort keys start with `prefix`).
    pub(crate) fn cursor(&self, prefix: &str) -> ApiResult<Option<String>> {
        use base64::Engine as _;
        let Some(c) = self.get("cursor") else {
            return Ok(None);
        };
        let bad =
            || ApiError::bad_request("invalid cursor: follow the Link header's URLs as given");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| bad())?;
        let sk = String::from_utf8(raw).map_err(|_| bad())?;
        if sk.starts_with(prefix) && sk.len() <= 1024 {
            Ok(Some(sk))
        } else {
            Err(bad())
        }
    }

    /// The `sort` parameter, one of `allowed` (the first is the default).
    pub(crate) fn sort(&self, allowed: &[&'static str]) -> ApiResult<&'static str> {
        let Some(v) = self.get("sort") else {
            return Ok(allowed.first().copied().unwrap_or_default());
        };
        let v = v.trim();
        allowed.iter().copied().find(|a| *a == v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "cannot sort by {v:?} here; supported: {}",
                allowed.join(", ")
            ))
        })
    }

    /// The `q` filter, refusing keys other than `known`.
    pub(crate) fn q_of(&self, known: &[&str]) -> ApiResult<Vec<(String, QVal)>> {
        let q = self.q()?;
        if let Some((k, _)) = q.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "cannot filter by {k:?} here; supported: {}",
                known.join(", ")
            )));
        }
        Ok(q)
    }
}

/// One page of a cursor-paged listing: `fetch(cursor, n)` answers at most
/// `n` entries after `cursor` and the cursor after them (None at the end;
/// it may answer fewer while more follow). Without a cursor, the pages
/// before `paging.page` are walked over first. Returns the page, the next
/// cursor and how many entries came before the page.
pub(crate) async fn cursor_page<T, F, Fut>(
    paging: Paging,
    cursor: Option<String>,
    fetch: F,
) -> ApiResult<(Vec<T>, Option<String>, usize)>
where
    F: Fn(Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = ApiResult<(Vec<T>, Option<String>)>>,
{
    let mut cursor = cursor;
    let mut before = 0;
    if cursor.is_none() {
        let skip = paging.skip();
        while before < skip {
            let (items, next) = fetch(cursor.take(), (skip - before).min(100)).await?;
            before += items.len();
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok((Vec::new(), None, before)),
            }
        }
    }
    let mut out = Vec::new();
    loop {
        let (items, next) = fetch(cursor.take(), paging.size - out.len()).await?;
        out.extend(items);
        match next {
            Some(n) if out.len() < paging.size => cursor = Some(n),
            next => return Ok((out, next, before)),
        }
    }
}

/// A cursor-paged list with `X-Total-Count` and `Link` headers. `total`
/// is the exact count when known (a counter read); for a filtered list
/// it is what was seen, plus one while more may follow.
pub(crate) fn cursor_page_response<T: Serialize>(
    uri: &Uri,
    paging: Paging,
    total: Option<usize>,
    before: usize,
    items: &[T],
    next: Option<&str>,
) -> Response {
    let seen = before + items.len();
    let total = match total {
        Some(t) => t.max(seen),
        None if next.is_some() => seen + 1,
        None => seen,
    };
    let next = next.map(|n| page_link_with(uri, paging, paging.page + 1, Some(&encode_cursor(n))));
    list_response(uri, paging, total, items, next)
}

/// A JSON list page with Harbor's `X-Total-Count` and `Link` headers.
pub(crate) fn page_response<T: Serialize>(
    uri: &Uri,
    paging: Paging,
    total: usize,
    items: &[T],
) -> Response {
    let next = (paging.skip().saturating_add(paging.size) < total)
        .then(|| page_link(uri, paging, paging.page + 1));
    list_response(uri, paging, total, items, next)
}

/// The JSON list with `X-Total-Count` and a `Link` to the previous page
/// and, when given, the next.
fn list_response<T: Serialize>(
    uri: &Uri,
    paging: Paging,
    total: usize,
    items: &[T],
    next: Option<String>,
) -> Response {
    let mut resp = axum::Json(items).into_response();
    let h = resp.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total));
    let mut links = Vec::new();
    if paging.page > 1 {
        links.push(format!(
            "{}; rel=\"prev\"",
            page_link(uri, paging, paging.page - 1)
        ));
    }
    if let Some(n) = next {
        links.push(format!("{n}; rel=\"next\""));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(" , "))
    {
        h.insert("link", v);
    }
    resp
}

/// Pages a whole filtered list.
pub(crate) fn paged<T: Serialize>(uri: &Uri, paging: Paging, all: Vec<T>) -> Response {
    let total = all.len();
    let items = paging.slice(all);
    page_response(uri, paging, total, &items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_syntax() {
        let q = parse_q("Level=project,ProjectID=3,name=~bot,op_time=[2024-01-01 00:00:00~2024-02-01 00:00:00],operation={create delete}")
            .expect("q");
        assert_eq!(
            q[0],
            ("Level".to_owned(), QVal::Exact("project".to_owned()))
        );
        assert_eq!(q[1].1, QVal::Exact("3".to_owned()));
        assert_eq!(q[2].1, QVal::Fuzzy("bot".to_owned()));
        assert!(matches!(&q[3].1, QVal::Range(Some(a), Some(_)) if a == "2024-01-01 00:00:00"));
        assert!(q[4].1.matches("delete") && !q[4].1.matches("pull"));
        assert!(parse_q("novalue").is_err());
    }

    #[test]
    fn q_edge_cases() {
        // Commas inside brackets belong to the value; spaces around keys go.
        let q =
            parse_q(" name = ~a , tags={x y},r=[~5],l=(1 2),t=[2024-01-01 00:00:00~]").expect("q");
        assert_eq!(q[0], ("name".to_owned(), QVal::Fuzzy("a".to_owned())));
        assert_eq!(q[1].1, QVal::AnyOf(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(q[2].1, QVal::Range(None, Some("5".to_owned())));
        assert_eq!(q[3].1, QVal::AnyOf(vec!["1".to_owned(), "2".to_owned()]));
        assert_eq!(
            q[4].1,
            QVal::Range(Some("2024-01-01 00:00:00".to_owned()), None)
        );
        // A value may hold '=' (only the first one splits).
        assert_eq!(
            parse_q("a=b=c").expect("eq")[0].1,
            QVal::Exact("b=c".to_owned())
        );
        // An empty q is no filter; empty parts are skipped.
        assert!(parse_q("").expect("empty").is_empty());
        assert!(parse_q(",,").expect("commas").is_empty());
        // Unbalanced or stray brackets, a missing '=', a range without '~'.
        for bad in [
            "tags=((((",
            "tags=(a))",
            "a=]",
            "novalue",
            "r=[5]",
            "x=[a~b",
        ] {
            assert!(parse_q(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn paging_bounds() {
        let p = |q: &str| Params::of(&format!("/x?{q}").parse().expect("uri")).paging();
        assert!(p("page_size=0").is_err());
        assert!(p("page_size=101").is_err());
        assert!(p("page_size=1000").is_err());
        assert!(p("page=0").is_err());
        assert!(p("page=-1").is_err());
        assert!(p("page_size=ten").is_err());
        let ok = p("page=3&page_size=100").expect("paging");
        assert_eq!((ok.page, ok.size, ok.skip()), (3, 100, 200));
        let d = p("").expect("defaults");
        assert_eq!((d.page, d.size), (1, 10));
    }

    #[test]
    fn cursors_round_trip_and_refuse_foreign_keys() {
        let c = encode_cursor("ART#0001#sha256:ab");
        let p = Params::of(&format!("/x?cursor={c}").parse().expect("uri"));
        assert_eq!(
            p.cursor("ART#").expect("cursor").as_deref(),
            Some("ART#0001#sha256:ab")
        );
        assert!(p.cursor("REPO#").is_err(), "a cursor of another listing");
        let bad = Params::of(&"/x?cursor=%%%".parse().expect("uri"));
        assert!(bad.cursor("ART#").is_err());
    }

    #[test]
    fn sort_keys_are_checked() {
        let p = |q: &str| Params::of(&format!("/x?{q}").parse().expect("uri"));
        assert_eq!(p("").sort(&["name", "-name"]).expect("default"), "name");
        assert_eq!(
            p("sort=-name").sort(&["name", "-name"]).expect("desc"),
            "-name"
        );
        let err = p("sort=bogus").sort(&["name"]).expect_err("unknown");
        assert!(format!("{err:?}").contains("supported: name"));
    }

    proptest::proptest! {
        /// Any text parses or is refused; never a panic.
        #[test]
        fn q_never_panics(s in "\\PC{0,64}") {
            let _ = parse_q(&s);
        }

        /// Well-formed filters of plain words parse back to what was written.
        #[test]
        fn plain_filters_round_trip(pairs in proptest::collection::vec(("[a-z_]{1,8}", "[a-zA-Z0-9._-]{1,12}"), 1..5)) {
            let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let parsed = parse_q(&q.join(",")).expect("well-formed");
            let want: Vec<(String, QVal)> = pairs.iter().map(|(k, v)| (k.clone(), QVal::Exact(v.clone()))).collect();
            proptest::prop_assert_eq!(parsed, want);
        }
    }

    #[test]
    fn booleans_take_any_case() {
        assert!(parse_bool("x", "True").expect("bool"));
        assert!(!parse_bool("x", "FALSE").expect("bool"));
        assert!(parse_bool("x", "yes").is_err());
    }
}
