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
        let page = num("page", 1)?.max(1);
        let size = match num("page_size", 10)? {
            0 => 10,
            n if n > 100 => {
                return Err(ApiError::bad_request("page_size must be at most 100"));
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
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
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
    let mut q: Vec<String> = Params::of(uri)
        .0
        .into_iter()
        .filter(|(k, _)| k != "page" && k != "page_size")
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
    format!("<{}?{}>", uri.path(), q.join("&"))
}

/// A JSON list page with Harbor's `X-Total-Count` and `Link` headers.
pub(crate) fn page_response<T: Serialize>(
    uri: &Uri,
    paging: Paging,
    total: usize,
    items: &[T],
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
    if paging.skip().saturating_add(paging.size) < total {
        links.push(format!(
            "{}; rel=\"next\"",
            page_link(uri, paging, paging.page + 1)
        ));
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
    fn booleans_take_any_case() {
        assert!(parse_bool("x", "True").expect("bool"));
        assert!(!parse_bool("x", "FALSE").expect("bool"));
        assert!(parse_bool("x", "yes").is_err());
    }
}
