//! The OCI distribution-spec conformance suite's checks, as Berth's own
//! end-to-end test, on every target.
//!
//! The suite (`conformance/` in github.com/opencontainers/distribution-spec)
//! comes in two shapes and both are re-written here from what they send and
//! expect (no code of theirs is used):
//!
//! - the v1.1 workflows (`01_pull_test.go` … `04_management_test.go`,
//!   fixtures in `setup.go`): the tests [`pull`], [`push`],
//!   [`content_discovery`] and [`content_management`]. Each runs its
//!   workflow twice on one registry, with sha256 and then with sha512
//!   digests, each pass in its own repository. In a sha512 pass every blob
//!   and manifest is named by its sha512 digest (upload `?digest=`,
//!   descriptors inside manifests, the `/blobs/` and `/manifests/` and
//!   `/referrers/` paths). A tag alone names content by the registry's
//!   canonical sha256, so wherever the workflow pushes a manifest by tag the
//!   sha512 pass first pushes the same bytes by their sha512 digest (as the
//!   suite's own sha512 data does), and a digest header answered for a tag
//!   may be either digest of those bytes.
//! - the 1.1 runner that replaced them (`run.go`, `api.go`, `testdata.go`,
//!   the version that reports sha512 results): [`blob_apis`] (every blob
//!   upload API, ranged reads, well-known blobs and corrupted uploads, for
//!   sha256 and sha512 blobs) and [`data_types`] (eighteen kinds of content,
//!   one of them all-sha512, each pushed, listed, read, queried for referrers
//!   and deleted, then the manifest error cases).
//!
//! Requests behave as the suite's Go client does: redirects are followed
//! (the AWS targets answer blob reads with a `307` to presigned storage), a
//! `Location` is resolved against the URL its request was sent to (so on
//! `berth-stack` uploads continue on the gateway, wherever it points), query
//! parameters are added as Go's `url.Values` does (parsed, set, re-encoded
//! sorted by key), and bodies the runner sends without a length go chunked.
//!
//! Checks the suite makes optional are skipped with the reason, and only
//! those: behaviour it accepts either way (a `202` instead of a mount, a full
//! blob instead of a range, no `OCI-Filters-Applied`), features off in its
//! 1.1 configuration (upload cancel, tag parameters, sparse manifests,
//! automatic cross-mount), and, on Distribution 2.8, the referrers API.
//!
//! Each test starts one registry, runs every check of its workflow in the
//! suite's order and collects the failures; at the end it prints a summary
//! and fails listing each failed check with its request, what was expected
//! and what came back.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use berth_e2e::http;
use berth_e2e::oci::{self, TarEntry};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, Target, require_tools, skip_requested};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256, Sha512};

const MT_MANIFEST: &str = oci::OCI_MANIFEST;
const MT_INDEX: &str = oci::OCI_INDEX;
const MT_CONFIG: &str = oci::OCI_CONFIG;
const MT_EMPTY: &str = oci::OCI_EMPTY;
const MT_LAYER: &str = oci::OCI_LAYER_TAR;
const MT_LAYER_GZIP: &str = oci::OCI_LAYER_TAR_GZIP;
const MT_LAYER_PREFIX: &str = "application/vnd.oci.image.layer.v1.";
const MT_LAYER_ND: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const MT_LAYER_ND_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const MT_OCTET: &str = "application/octet-stream";
/// Two artifact types of our own for the runner's artifacts.
const MT_ARTIFACT_ONE: &str = "application/vnd.berth.conformance.one.v1";
const MT_ARTIFACT_TWO: &str = "application/vnd.berth.conformance.two.v1";

/// The error codes of the distribution spec, any of which a 400 may carry.
const ERROR_CODES: [&str; 15] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
];

/// The runner's smallest chunk for chunked uploads (unless the registry
/// asks for more with `OCI-Chunk-Min-Length`).
const CHUNK_MIN: usize = 1024;

// ---------------------------------------------------------------------------
// The test functions: one registry each.
// ---------------------------------------------------------------------------

/// v1.1 workflow 1: pull blobs and manifests, by tag and by digest.
#[test]
fn pull() {
    run_workflow("pull", |rep, cx| {
        for algo in Algo::ALL {
            legacy_pull(rep, cx, algo);
        }
    });
}

/// v1.1 workflow 2: streamed, monolithic and chunked uploads, cross-repository
/// mounts, manifest uploads.
#[test]
fn push() {
    run_workflow("push", |rep, cx| {
        for algo in Algo::ALL {
            legacy_push(rep, cx, algo);
        }
    });
}

/// v1.1 workflow 3: tag listing (order, `n`, `last`) and the referrers API.
#[test]
fn content_discovery() {
    run_workflow("content_discovery", |rep, cx| {
        for algo in Algo::ALL {
            legacy_discovery(rep, cx, algo);
        }
    });
}

/// v1.1 workflow 4: deleting tags, manifests and blobs.
#[test]
fn content_management() {
    run_workflow("content_management", |rep, cx| {
        for algo in Algo::ALL {
            legacy_management(rep, cx, algo);
        }
    });
}

/// The 1.1 runner's registry ping, empty repository, and blob API tests, for
/// sha256 and then sha512 blobs.
#[test]
fn blob_apis() {
    run_workflow("blob_apis", |rep, cx| {
        runner_ping_and_empty(rep, cx);
        for algo in Algo::ALL {
            runner_blob_apis(rep, cx, algo);
        }
    });
}

/// The 1.1 runner's data tests (every kind of content, one all-sha512) and
/// its manifest error cases.
#[test]
fn data_types() {
    run_workflow("data_types", |rep, cx| {
        // In the runner these follow the blob API tests, which leave every
        // upload API tried for both digest algorithms, and their verdicts:
        // an API that failed once (for sha512, say) is no longer preferred,
        // so each later push may try it first and fail again. Here, on a
        // registry of their own, the verdicts start empty: the same checks
        // run, a failing API is repeated less often.
        cx.apis.borrow_mut().mark_all_tried();
        runner_data_types(rep, cx);
        runner_manifest_errors(rep, cx);
    });
}

fn run_workflow(name: &'static str, body: impl FnOnce(&mut Report, &Cx<'_>)) {
    if skip_requested(&format!("conformance::{name}")) {
        return;
    }
    require_tools(&["curl"]);
    let reg = Registry::start();
    // The suite's repositories live in project `conformance`; requests
    // authenticate as the admin with the Docker token flow (`berth_e2e::auth`).
    reg.ensure_project("conformance");
    let cx = Cx::new(&reg);
    let mut rep = Report::new(name, reg.target());
    body(&mut rep, &cx);
    rep.finish();
}

// ---------------------------------------------------------------------------
// Digests and content.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Algo {
    #[default]
    Sha256,
    Sha512,
}

impl Algo {
    const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn digest(self, data: &[u8]) -> String {
        match self {
            Self::Sha256 => format!("sha256:{}", hex::encode(Sha256::digest(data))),
            Self::Sha512 => format!("sha512:{}", hex::encode(Sha512::digest(data))),
        }
    }

    fn of_digest(digest: &str) -> Self {
        if digest.starts_with("sha512:") {
            Self::Sha512
        } else {
            Self::Sha256
        }
    }
}

/// Bytes with their media type and their digest in one algorithm.
#[derive(Clone, Debug)]
struct Content {
    media_type: String,
    digest: String,
    bytes: Vec<u8>,
}

impl Content {
    fn new(algo: Algo, media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: algo.digest(&bytes),
            bytes,
        }
    }

    fn json(algo: Algo, media_type: &str, value: &Value) -> Self {
        Self::new(
            algo,
            media_type,
            serde_json::to_vec(value).expect("serializing JSON cannot fail"),
        )
    }

    /// Pretty-printed JSON, as the v1.1 workflows' fixtures are.
    fn json_pretty(algo: Algo, media_type: &str, value: &Value) -> Self {
        Self::new(
            algo,
            media_type,
            serde_json::to_vec_pretty(value).expect("serializing JSON cannot fail"),
        )
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.len() })
    }
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// URLs, the way Go's net/url treats them.
// ---------------------------------------------------------------------------

/// Resolves `reference` (a `Location` header) against `base`, the URL the
/// request was sent to (RFC 3986 section 5, as Go's `URL.Parse` does).
fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.trim();
    if let Some((scheme, _)) = reference.split_once(':')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return reference.to_owned();
    }
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[authority_start..]
        .find(['/', '?', '#'])
        .map_or(base.len(), |i| authority_start + i);
    let origin = &base[..origin_end];
    if let Some(rest) = reference.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("http");
        return format!("{scheme}://{rest}");
    }
    let after_origin = &base[origin_end..];
    let without_fragment = after_origin.split('#').next().unwrap_or("");
    let base_path = without_fragment.split('?').next().unwrap_or("");
    if reference.is_empty() {
        return format!("{origin}{without_fragment}");
    }
    if reference.starts_with('?') || reference.starts_with('#') {
        let base_part = if reference.starts_with('?') {
            base_path
        } else {
            without_fragment
        };
        return format!("{origin}{base_part}{reference}");
    }
    let tail_at = reference.find(['?', '#']).unwrap_or(reference.len());
    let (ref_path, tail) = reference.split_at(tail_at);
    let merged = if ref_path.starts_with('/') {
        ref_path.to_owned()
    } else {
        let dir = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        format!("{dir}{ref_path}")
    };
    format!("{origin}{}{tail}", remove_dot_segments(&merged))
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// The path of a URL (no origin, no query).
fn url_path(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Sets (`replace`) or adds a query parameter the way Go code does with
/// `q := u.Query(); q.Set(k, v); u.RawQuery = q.Encode()`: the query is
/// decoded, changed, and encoded again sorted by key.
fn with_param(url: &str, key: &str, value: &str, replace: bool) -> String {
    let (without_fragment, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let (base, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params
            .entry(query_unescape(k))
            .or_default()
            .push(query_unescape(v));
    }
    let values = params.entry(key.to_owned()).or_default();
    if replace {
        values.clear();
    }
    values.push(value.to_owned());
    let encoded: Vec<String> = params
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| format!("{}={}", query_escape(k), query_escape(v)))
        })
        .collect();
    let mut out = format!("{base}?{}", encoded.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn set_param(url: &str, key: &str, value: &str) -> String {
    with_param(url, key, value, true)
}

fn add_param(url: &str, key: &str, value: &str) -> String {
    with_param(url, key, value, false)
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn query_unescape(s: &str) -> String {
    fn hex_value(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex_value(bytes[i + 1])? * 16 + hex_value(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Requests and what came back.
// ---------------------------------------------------------------------------

/// A request as the suite builds it; sent through `berth_e2e::http` (curl)
/// with redirects followed, as Go's default client does.
struct Req {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    chunked: bool,
}

impl Req {
    fn new(method: &'static str, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            chunked: false,
        }
    }

    fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    fn head(url: impl Into<String>) -> Self {
        Self::new("HEAD", url)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A body of known length (`Content-Length`).
    fn body(mut self, bytes: &[u8]) -> Self {
        self.body = Some(bytes.to_vec());
        self
    }

    /// A body the runner sends without a length: Go then streams it with
    /// `Transfer-Encoding: chunked` (unless it is empty).
    fn streamed(mut self, bytes: &[u8]) -> Self {
        self.chunked = !bytes.is_empty();
        self.body = Some(bytes.to_vec());
        self
    }

    fn describe(&self) -> String {
        let mut s = format!("{} {}", self.method, self.url);
        for (k, v) in &self.headers {
            let _ = write!(s, "\n          {k}: {v}");
        }
        match &self.body {
            Some(b) if self.chunked => {
                let _ = write!(s, "\n          body: {} bytes, chunked", b.len());
            }
            Some(b) => {
                let _ = write!(s, "\n          body: {} bytes", b.len());
            }
            None => {}
        }
        s
    }

    fn send(self) -> Result<Ex, Miss> {
        let description = self.describe();
        let mut req = http::Request::new(self.method, &self.url).follow();
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if self.chunked {
            req = req.header("Transfer-Encoding", "chunked");
        }
        if let Some(body) = self.body {
            req = req.body(body);
        }
        match req.try_send() {
            Ok(mut resp) => Ok(Ex {
                // curl saves a HEAD response's header block as its body; Go
                // (like any client) reads no body at all.
                resp: {
                    if self.method == "HEAD" {
                        resp.body.clear();
                    }
                    resp
                },
                req: description,
                url: self.url,
            }),
            Err(e) => Err(Miss::Fail(format!(
                "request:  {description}\nno HTTP response: {e}"
            ))),
        }
    }
}

/// One exchange: the request sent and the (final) response.
struct Ex {
    req: String,
    url: String,
    resp: http::Response,
}

impl Ex {
    fn status(&self) -> u16 {
        self.resp.status
    }

    /// The first value of a header, if it is there and not empty (Go's
    /// `Header.Get` plus the suite's "not empty" tests).
    fn header(&self, name: &str) -> Option<&str> {
        self.resp.header(name).filter(|v| !v.is_empty())
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "request:  {}\nresponse: HTTP {}",
            self.req, self.resp.status
        );
        for (k, v) in &self.resp.headers {
            if !k.eq_ignore_ascii_case("date") {
                let _ = write!(s, "\n          {k}: {v}");
            }
        }
        let _ = write!(s, "\n          body: {}", snippet(&self.resp.body));
        if self.resp.body_cut_short {
            s.push_str(" (the connection closed before Content-Length bytes came)");
        }
        s
    }

    fn fail(&self, expected: impl std::fmt::Display) -> Miss {
        Miss::Fail(format!("expected: {expected}\n{}", self.describe()))
    }

    fn unsupported(&self, why: impl std::fmt::Display) -> Miss {
        Miss::Unsupported(format!(
            "{why} (HTTP {} to {})",
            self.status(),
            self.req_line()
        ))
    }

    fn req_line(&self) -> &str {
        self.req.lines().next().unwrap_or("")
    }

    fn want_status(&self, codes: &[u16]) -> Result<(), Miss> {
        if codes.contains(&self.status()) {
            Ok(())
        } else if codes.len() == 1 {
            Err(self.fail(format!("status {}", codes[0])))
        } else {
            Err(self.fail(format!("status one of {codes:?}")))
        }
    }

    fn want_2xx(&self) -> Result<(), Miss> {
        if (200..300).contains(&self.status()) {
            Ok(())
        } else {
            Err(self.fail("a 2xx status"))
        }
    }

    /// One of the header's values must be exactly `value`.
    fn want_header(&self, name: &str, value: &str) -> Result<(), Miss> {
        if self.resp.header_values(name).contains(&value) {
            Ok(())
        } else {
            Err(self.fail(format!("header {name}: {value}")))
        }
    }

    /// The header's first value must be exactly `value` (Go's
    /// `Header.Get`, as the v1.1 workflows compare).
    fn want_first_header(&self, name: &str, value: &str) -> Result<(), Miss> {
        if self.resp.header(name) == Some(value) {
            Ok(())
        } else {
            Err(self.fail(format!("header {name}: {value}")))
        }
    }

    fn want_header_present(&self, name: &str) -> Result<(), Miss> {
        if self.resp.header_values(name).is_empty() {
            Err(self.fail(format!("a {name} header")))
        } else {
            Ok(())
        }
    }

    fn want_body(&self, expected: &[u8]) -> Result<(), Miss> {
        let got = &self.resp.body;
        if got.as_slice() == expected {
            return Ok(());
        }
        let first_difference = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| got.len().min(expected.len()));
        Err(self.fail(format!(
            "a body of the {} bytes sent (got {} bytes, first difference at byte {first_difference})",
            expected.len(),
            got.len()
        )))
    }

    /// A `Docker-Content-Digest` header, when present, must be one of
    /// `accepted`.
    fn want_digest_header(&self, accepted: &[&str]) -> Result<(), Miss> {
        match self.header("Docker-Content-Digest") {
            Some(h) if !accepted.contains(&h) => Err(self.fail(format!(
                "Docker-Content-Digest (when present) {}",
                accepted.join(" or ")
            ))),
            _ => Ok(()),
        }
    }

    /// The `Location` header resolved against this request's URL.
    fn location(&self) -> Result<String, Miss> {
        match self.header("Location") {
            Some(loc) => Ok(resolve(&self.url, loc)),
            None => Err(self.fail("a Location header")),
        }
    }

    fn json(&self) -> Result<Value, Miss> {
        serde_json::from_slice(&self.resp.body).map_err(|e| self.fail(format!("a JSON body ({e})")))
    }

    fn error_code(&self) -> Option<String> {
        self.resp.error_code()
    }
}

fn snippet(body: &[u8]) -> String {
    const SHOWN: usize = 600;
    if body.is_empty() {
        return "(empty)".to_owned();
    }
    match std::str::from_utf8(body) {
        Ok(text) if !text.chars().any(|c| c.is_control() && !c.is_whitespace()) => {
            let shown: String = text.chars().take(SHOWN).collect();
            if shown.len() < text.len() {
                format!("{shown}… ({} bytes)", body.len())
            } else {
                shown
            }
        }
        _ => format!("{} bytes of binary data", body.len()),
    }
}

// ---------------------------------------------------------------------------
// Outcomes and the report.
// ---------------------------------------------------------------------------

/// Why a check did not pass.
enum Miss {
    /// A conformance failure: the message says what was expected and shows
    /// the exchange.
    Fail(String),
    /// Something the suite lets a registry not support (it records a skip).
    Unsupported(String),
}

impl From<String> for Miss {
    fn from(message: String) -> Self {
        Self::Fail(message)
    }
}

fn after_failed(check: &str) -> Miss {
    Miss::Fail(format!(
        "cannot run: it continues from the check {check:?}, which did not pass"
    ))
}

fn needs<'a, T>(value: &'a Option<T>, check: &str) -> Result<&'a T, Miss> {
    value.as_ref().ok_or_else(|| after_failed(check))
}

struct Report {
    workflow: &'static str,
    target: Target,
    section: String,
    passed: usize,
    skipped: Vec<String>,
    notes: Vec<String>,
    failures: Vec<String>,
    started: Instant,
}

impl Report {
    fn new(workflow: &'static str, target: Target) -> Self {
        Self {
            workflow,
            target,
            section: String::new(),
            passed: 0,
            skipped: Vec::new(),
            notes: Vec::new(),
            failures: Vec::new(),
            started: Instant::now(),
        }
    }

    fn section(&mut self, name: impl Into<String>) {
        self.section = name.into();
    }

    fn check<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, Miss>) -> Option<T> {
        self.record(name, f()).0
    }

    /// Like [`Report::check`], also saying how it went.
    fn check_status(&mut self, name: &str, f: impl FnOnce() -> Result<(), Miss>) -> Status {
        self.record(name, f()).1
    }

    fn record<T>(&mut self, name: &str, result: Result<T, Miss>) -> (Option<T>, Status) {
        match result {
            Ok(value) => {
                self.passed += 1;
                (Some(value), Status::Pass)
            }
            Err(Miss::Fail(message)) => {
                eprintln!("[{}] FAIL  {} | {name}", self.workflow, self.section);
                self.failures.push(format!(
                    "[{}] {name}\n{}",
                    self.section,
                    indent(&message, "    ")
                ));
                (None, Status::Fail)
            }
            Err(Miss::Unsupported(why)) => {
                self.skip(name, &format!("optional in the suite: {why}"));
                (None, Status::Skip)
            }
        }
    }

    fn skip(&mut self, name: &str, reason: &str) {
        eprintln!(
            "[{}] skip  {} | {name}: {reason}",
            self.workflow, self.section
        );
        self.skipped
            .push(format!("[{}] {name}: {reason}", self.section));
    }

    fn note(&mut self, message: &str) {
        eprintln!("[{}] note  {} | {message}", self.workflow, self.section);
        self.notes.push(format!("[{}] {message}", self.section));
    }

    fn finish(self) {
        let total = self.passed + self.failures.len() + self.skipped.len();
        let mut summary = format!(
            "conformance {} on {}: {} checks, {} passed, {} failed, {} skipped, in {:.1?}",
            self.workflow,
            self.target,
            total,
            self.passed,
            self.failures.len(),
            self.skipped.len(),
            self.started.elapsed()
        );
        for (title, list) in [("skipped", &self.skipped), ("notes", &self.notes)] {
            if !list.is_empty() {
                let _ = write!(summary, "\n{title}:");
                for item in list {
                    let _ = write!(summary, "\n  - {item}");
                }
            }
        }
        eprintln!("{summary}");
        if self.failures.is_empty() {
            return;
        }
        let mut failed = String::new();
        for (i, failure) in self.failures.iter().enumerate() {
            let _ = write!(
                failed,
                "\n{:>3}. {}\n",
                i + 1,
                indent(failure, "     ").trim_start()
            );
        }
        panic!(
            "{} of {total} conformance checks of `{}` failed on {}:\n{failed}",
            self.failures.len(),
            self.workflow,
            self.target
        );
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// The client context: the registry and the runner's memory of upload APIs.
// ---------------------------------------------------------------------------

struct Cx<'a> {
    reg: &'a Registry,
    target: Target,
    apis: RefCell<ApiState>,
}

impl<'a> Cx<'a> {
    fn new(reg: &'a Registry) -> Self {
        Self {
            reg,
            target: reg.target(),
            apis: RefCell::new(ApiState::default()),
        }
    }

    fn referrers_supported(&self) -> bool {
        self.target.supports_referrers()
    }

    fn uploads_url(&self, repo: &str) -> String {
        self.reg.url(&format!("/v2/{repo}/blobs/uploads/"))
    }

    fn blob_url(&self, repo: &str, digest: &str) -> String {
        self.reg.url(&format!("/v2/{repo}/blobs/{digest}"))
    }

    fn manifest_url(&self, repo: &str, reference: &str) -> String {
        self.reg.url(&format!("/v2/{repo}/manifests/{reference}"))
    }

    fn tags_url(&self, repo: &str) -> String {
        self.reg.url(&format!("/v2/{repo}/tags/list"))
    }

    fn referrers_url(&self, repo: &str, digest: &str) -> String {
        self.reg.url(&format!("/v2/{repo}/referrers/{digest}"))
    }
}

// ===========================================================================
// The v1.1 workflows.
// ===========================================================================

/// The v1.1 fixtures, for one digest algorithm.
struct Fixtures {
    algo: Algo,
    /// One image config per workflow (a random author makes each unique).
    configs: Vec<Content>,
    /// A small gzip'd tar, shared by every manifest.
    layer: Content,
    /// One manifest per workflow, over `configs[i]` and `layer`.
    manifests: Vec<Content>,
    /// A manifest with no layers (and no `mediaType`) over `configs[1]`.
    empty_layer_manifest: Content,
    /// 42 random bytes (streamed upload, cross-mount).
    blob_a: Content,
    /// 42 random bytes uploaded in two chunks (may grow to the registry's
    /// minimum chunk length).
    blob_b: Vec<u8>,
    /// A digest of content nobody uploads.
    dummy: String,
    empty_json: Content,
    ref_blob_a: Content,
    ref_blob_b: Content,
    /// Referrers of `manifests[4]`: artifact type in the config media type…
    ref_a_config: Content,
    ref_b_config: Content,
    /// … or in `artifactType` over an empty config.
    ref_a_layer: Content,
    ref_b_layer: Content,
    /// A referrer of `manifests[3]`, which this workflow never pushes.
    ref_c_layer: Content,
    /// An index referrer of `manifests[4]` with its own artifact type.
    ref_index: Content,
    /// Referrer digest → the value of its one annotation.
    annotations: BTreeMap<String, String>,
}

const TYPE_A: &str = "application/vnd.berth.conformance.type-a";
const TYPE_B: &str = "application/vnd.berth.conformance.type-b";
const TYPE_INDEX: &str = "application/vnd.berth.conformance.bundle";
const ANNOTATION: &str = "org.berth.conformance.test";

impl Fixtures {
    fn new(algo: Algo) -> Self {
        let mut rng = Rng::new();
        let configs: Vec<Content> = (0..5)
            .map(|_| {
                Content::json_pretty(
                    algo,
                    MT_CONFIG,
                    &json!({
                        "author": rng.hex(16),
                        "architecture": "amd64",
                        "os": "linux",
                        "rootfs": { "type": "layers", "diff_ids": [] },
                    }),
                )
            })
            .collect();
        let tar = oci::tar(&[TarEntry::File(
            "test.txt".to_owned(),
            b"berth conformance: a small layer\n".to_vec(),
        )]);
        let layer = Content::new(algo, MT_LAYER_GZIP, oci::gzip_stored(&tar));
        let config_descriptor = |config: &Content| {
            // The data field carries the config itself, plus a field no
            // spec knows: registries must store and serve both untouched.
            json!({
                "mediaType": MT_CONFIG,
                "digest": config.digest,
                "size": config.len(),
                "data": base64(&config.bytes),
                "newUnspecifiedField": base64(b"berth says hello"),
            })
        };
        let manifests: Vec<Content> = configs
            .iter()
            .map(|config| {
                Content::json_pretty(
                    algo,
                    MT_MANIFEST,
                    &json!({
                        "schemaVersion": 2,
                        "mediaType": MT_MANIFEST,
                        "config": config_descriptor(config),
                        "layers": [legacy_descriptor(&layer)],
                    }),
                )
            })
            .collect();
        let empty_layer_manifest = Content::json_pretty(
            algo,
            MT_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "config": config_descriptor(&configs[1]),
                "layers": [],
            }),
        );
        let blob_a = Content::new(algo, MT_OCTET, rng.bytes(42));
        let empty_json = Content::new(algo, MT_EMPTY, b"{}".to_vec());
        let ref_blob_a = Content::new(algo, TYPE_A, b"berth conformance: referrer blob A".to_vec());
        let ref_blob_b = Content::new(algo, TYPE_B, b"berth conformance: referrer blob B".to_vec());
        let subject = legacy_descriptor(&manifests[4]);
        let mut annotations = BTreeMap::new();
        let mut referrer = |config: Value,
                            artifact_type: Option<&str>,
                            layer: Value,
                            subject: &Value,
                            note: Option<&str>| {
            let mut m = json!({
                "schemaVersion": 2,
                "mediaType": MT_MANIFEST,
                "config": config,
                "subject": subject,
                "layers": [layer],
            });
            if let Some(t) = artifact_type {
                m["artifactType"] = json!(t);
            }
            if let Some(n) = note {
                m["annotations"] = json!({ ANNOTATION: n });
            }
            let content = Content::json_pretty(algo, MT_MANIFEST, &m);
            if let Some(n) = note {
                annotations.insert(content.digest.clone(), n.to_owned());
            }
            content
        };
        let empty = legacy_descriptor(&empty_json);
        let ref_a_config = referrer(
            legacy_descriptor(&ref_blob_a),
            None,
            empty.clone(),
            &subject,
            Some("config a"),
        );
        let ref_b_config = referrer(
            legacy_descriptor(&ref_blob_b),
            None,
            empty.clone(),
            &subject,
            Some("config b"),
        );
        let ref_a_layer = referrer(
            empty.clone(),
            Some(TYPE_A),
            legacy_descriptor(&ref_blob_a),
            &subject,
            Some("layer a"),
        );
        let ref_b_layer = referrer(
            empty.clone(),
            Some(TYPE_B),
            legacy_descriptor(&ref_blob_b),
            &subject,
            Some("layer b"),
        );
        let ref_c_layer = referrer(
            empty,
            Some(TYPE_B),
            legacy_descriptor(&ref_blob_b),
            &legacy_descriptor(&manifests[3]),
            None,
        );
        let ref_index = Content::json_pretty(
            algo,
            MT_INDEX,
            &json!({
                "schemaVersion": 2,
                "mediaType": MT_INDEX,
                "artifactType": TYPE_INDEX,
                "manifests": [legacy_descriptor(&ref_a_config), legacy_descriptor(&ref_a_layer)],
                "subject": subject,
                "annotations": { ANNOTATION: "index" },
            }),
        );
        annotations.insert(ref_index.digest.clone(), "index".to_owned());
        Self {
            algo,
            configs,
            layer,
            manifests,
            empty_layer_manifest,
            blob_a,
            blob_b: rng.bytes(42),
            dummy: algo.digest(b"berth conformance: nobody uploads this"),
            empty_json,
            ref_blob_a,
            ref_blob_b,
            ref_a_config,
            ref_b_config,
            ref_a_layer,
            ref_b_layer,
            ref_c_layer,
            ref_index,
            annotations,
        }
    }

    /// The two chunks of `blob_b` (the first one byte longer) and their
    /// `Content-Range`s.
    fn chunks(&self) -> [(&[u8], String); 2] {
        let split = self.blob_b.len() / 2 + 1;
        [
            (&self.blob_b[..split], format!("0-{}", split - 1)),
            (
                &self.blob_b[split..],
                format!("{split}-{}", self.blob_b.len() - 1),
            ),
        ]
    }

    /// Digests a registry may answer for `manifest` pushed by tag: its own,
    /// and in a sha512 pass also the canonical sha256 of the same bytes.
    fn tag_digests(&self, manifest: &Content) -> Vec<String> {
        let mut digests = vec![manifest.digest.clone()];
        if self.algo != Algo::Sha256 {
            digests.push(Algo::Sha256.digest(&manifest.bytes));
        }
        digests
    }
}

/// A descriptor as the v1.1 fixtures write it: with the unspecified field
/// present (and null).
fn legacy_descriptor(content: &Content) -> Value {
    json!({
        "mediaType": content.media_type,
        "digest": content.digest,
        "size": content.len(),
        "newUnspecifiedField": null,
    })
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// POST an upload, then PUT the content to its `Location` with `?digest=`
/// (the workflows' "populate" steps): a 2xx is all they ask.
fn populate_blob(cx: &Cx<'_>, repo: &str, content: &Content) -> Result<(), Miss> {
    let post = Req::new("POST", cx.uploads_url(repo)).send()?;
    let location = post.location()?;
    Req::new("PUT", set_param(&location, "digest", &content.digest))
        .header("Content-Type", MT_OCTET)
        .body(&content.bytes)
        .send()?
        .want_2xx()
}

fn put_manifest(cx: &Cx<'_>, repo: &str, reference: &str, manifest: &Content) -> Result<Ex, Miss> {
    Req::new("PUT", cx.manifest_url(repo, reference))
        .header("Content-Type", &manifest.media_type)
        .body(&manifest.bytes)
        .send()
}

/// In a sha512 pass, a manifest about to be pushed by tag is first pushed
/// by its sha512 digest (with `strict`, a 201 with a `Location` is asked,
/// else any 2xx).
fn push_by_digest_first(
    cx: &Cx<'_>,
    fx: &Fixtures,
    repo: &str,
    manifest: &Content,
    strict: bool,
) -> Result<(), Miss> {
    if fx.algo == Algo::Sha256 {
        return Ok(());
    }
    let put = put_manifest(cx, repo, &manifest.digest, manifest)?;
    if strict {
        put.want_status(&[201])?;
        put.location().map(drop)
    } else {
        put.want_2xx()
    }
}

fn delete_ok(ex: &Ex, also: &[u16]) -> Result<(), Miss> {
    if (200..300).contains(&ex.status()) || also.contains(&ex.status()) {
        Ok(())
    } else {
        Err(ex.fail(format!("a 2xx status, or one of {also:?}")))
    }
}

fn legacy_pull(rep: &mut Report, cx: &Cx<'_>, algo: Algo) {
    let fx = Fixtures::new(algo);
    let repo = format!("conformance/pull-{}", algo.name());
    let a = algo.name();
    let tag = "tagtest0";

    rep.section(format!("{a} Pull / Setup"));
    for (i, config) in fx.configs[..2].iter().enumerate() {
        rep.check(
            &format!("Populate registry with test blob (config {i})"),
            || populate_blob(cx, &repo, config),
        );
    }
    rep.check("Populate registry with test layer", || {
        populate_blob(cx, &repo, &fx.layer)
    });
    rep.check(
        "Populate registry with test manifest (manifest 0, by tag)",
        || {
            push_by_digest_first(cx, &fx, &repo, &fx.manifests[0], false)?;
            put_manifest(cx, &repo, tag, &fx.manifests[0])?.want_2xx()
        },
    );
    rep.check(
        "Populate registry with test manifest (manifest 1, by digest)",
        || put_manifest(cx, &repo, &fx.manifests[1].digest, &fx.manifests[1])?.want_2xx(),
    );

    rep.section(format!("{a} Pull / Pull blobs"));
    rep.check(
        "HEAD request to nonexistent blob should result in 404 response",
        || {
            Req::head(cx.blob_url(&repo, &fx.dummy))
                .send()?
                .want_status(&[404])
        },
    );
    rep.check("HEAD request to existing blob should yield 200", || {
        let ex = Req::head(cx.blob_url(&repo, &fx.configs[0].digest)).send()?;
        ex.want_status(&[200])?;
        ex.want_digest_header(&[&fx.configs[0].digest])
    });
    rep.check("GET nonexistent blob should result in 404 response", || {
        Req::get(cx.blob_url(&repo, &fx.dummy))
            .send()?
            .want_status(&[404])
    });
    rep.check("GET request to existing blob URL should yield 200", || {
        Req::get(cx.blob_url(&repo, &fx.configs[0].digest))
            .send()?
            .want_status(&[200])
    });

    rep.section(format!("{a} Pull / Pull manifests"));
    let nonexistent = ".INVALID_MANIFEST_NAME";
    rep.check(
        "HEAD request to nonexistent manifest should return 404",
        || {
            Req::head(cx.manifest_url(&repo, nonexistent))
                .send()?
                .want_status(&[404])
        },
    );
    for (i, manifest) in fx.manifests[..2].iter().enumerate() {
        rep.check(
            &format!("HEAD request to manifest[{i}] path (digest) should yield 200 response"),
            || {
                let ex = Req::head(cx.manifest_url(&repo, &manifest.digest))
                    .header("Accept", MT_MANIFEST)
                    .send()?;
                ex.want_status(&[200])?;
                ex.want_digest_header(&[&manifest.digest])
            },
        );
    }
    rep.check(
        "HEAD request to manifest path (tag) should yield 200 response",
        || {
            let ex = Req::head(cx.manifest_url(&repo, tag))
                .header("Accept", MT_MANIFEST)
                .send()?;
            ex.want_status(&[200])?;
            ex.want_digest_header(&as_refs(&fx.tag_digests(&fx.manifests[0])))
        },
    );
    rep.check("GET nonexistent manifest should return 404", || {
        Req::get(cx.manifest_url(&repo, nonexistent))
            .send()?
            .want_status(&[404])
    });
    for (i, manifest) in fx.manifests[..2].iter().enumerate() {
        rep.check(
            &format!("GET request to manifest[{i}] path (digest) should yield 200 response"),
            || {
                Req::get(cx.manifest_url(&repo, &manifest.digest))
                    .header("Accept", MT_MANIFEST)
                    .send()?
                    .want_status(&[200])
            },
        );
    }
    rep.check(
        "GET request to manifest path (tag) should yield 200 response",
        || {
            Req::get(cx.manifest_url(&repo, tag))
                .header("Accept", MT_MANIFEST)
                .send()?
                .want_status(&[200])
        },
    );

    rep.section(format!("{a} Pull / Error codes"));
    rep.check(
        "400 response body should contain OCI-conforming JSON message",
        || {
            let ex = Req::get(cx.manifest_url(&repo, &format!("{a}:totallywrong")))
                .header("Content-Type", MT_MANIFEST)
                .body(b"blablabla")
                .send()?;
            ex.want_status(&[400, 404])?;
            if ex.status() == 400 {
                match ex.error_code() {
                    Some(code) if ERROR_CODES.contains(&code.as_str()) => {}
                    _ => return Err(ex.fail("errors[0].code, one of the spec's error codes")),
                }
            }
            Ok(())
        },
    );

    rep.section(format!("{a} Pull / Teardown"));
    for (i, manifest) in fx.manifests[..2].iter().enumerate() {
        rep.check(&format!("Delete manifest[{i}] created in setup"), || {
            delete_ok(
                &Req::new("DELETE", cx.manifest_url(&repo, &manifest.digest)).send()?,
                &[405],
            )
        });
    }
    for (name, blob) in [
        ("Delete config[0] blob created in setup", &fx.configs[0]),
        ("Delete config[1] blob created in setup", &fx.configs[1]),
        ("Delete layer blob created in setup", &fx.layer),
    ] {
        rep.check(name, || {
            delete_ok(
                &Req::new("DELETE", cx.blob_url(&repo, &blob.digest)).send()?,
                &[404, 405],
            )
        });
    }
}

fn legacy_push(rep: &mut Report, cx: &Cx<'_>, algo: Algo) {
    let mut fx = Fixtures::new(algo);
    let repo = format!("conformance/push-{}", algo.name());
    // The suite's cross-mount target is a one-segment name; on Berth a
    // repository lives in a project, so it goes into `conformance` too.
    let cross = format!("conformance/cross-{}", Rng::new().hex(12));
    let a = algo.name();

    rep.section(format!("{a} Push / Blob Upload Streamed"));
    let streamed = rep.check(
        "PATCH request with blob in body should yield 202 response",
        || {
            let post = Req::new("POST", cx.uploads_url(&repo)).send()?;
            let location = post.location()?;
            let patch = Req::new("PATCH", location)
                .header("Content-Type", MT_OCTET)
                .body(&fx.blob_a.bytes)
                .send()?;
            patch.want_status(&[202])?;
            Ok(patch)
        },
    );
    rep.check(
        "PUT request to session URL with digest should yield 201 response",
        || {
            let patch = needs(
                &streamed,
                "PATCH request with blob in body should yield 202 response",
            )?;
            let put = Req::new(
                "PUT",
                set_param(&patch.location()?, "digest", &fx.blob_a.digest),
            )
            .header("Content-Type", MT_OCTET)
            .send()?;
            put.want_status(&[201])?;
            put.location().map(drop)
        },
    );

    rep.section(format!("{a} Push / Blob Upload Monolithic"));
    rep.check("GET nonexistent blob should result in 404 response", || {
        Req::get(cx.blob_url(&repo, &fx.dummy))
            .send()?
            .want_status(&[404])
    });
    let config = fx.configs[1].clone();
    let mut last = rep.check(
        "POST request with digest and blob should yield a 201 or 202",
        || {
            let post = Req::new(
                "POST",
                set_param(&cx.uploads_url(&repo), "digest", &config.digest),
            )
            .header("Content-Type", MT_OCTET)
            .body(&config.bytes)
            .send()?;
            post.location()?;
            post.want_status(&[201, 202])?;
            Ok(post)
        },
    );
    rep.check(
        "GET request to blob URL from prior request should yield 200 or 404 based on response code",
        || {
            let post = needs(
                &last,
                "POST request with digest and blob should yield a 201 or 202",
            )?;
            let get = Req::get(cx.blob_url(&repo, &config.digest)).send()?;
            get.want_status(&[if post.status() == 202 { 404 } else { 200 }])
        },
    );
    if let Some(post) = rep.check("POST request should yield a session ID", || {
        let post = Req::new("POST", cx.uploads_url(&repo)).send()?;
        post.want_status(&[202])?;
        Ok(post)
    }) {
        last = Some(post);
    }
    rep.check("PUT upload of a blob should yield a 201 Response", || {
        let post = needs(&last, "POST request should yield a session ID")?;
        let put = Req::new(
            "PUT",
            set_param(&post.location()?, "digest", &config.digest),
        )
        .header("Content-Type", MT_OCTET)
        .body(&config.bytes)
        .send()?;
        put.location()?;
        put.want_status(&[201])
    });
    rep.check(
        "GET request to existing blob should yield 200 response",
        || {
            Req::get(cx.blob_url(&repo, &config.digest))
                .send()?
                .want_status(&[200])
        },
    );
    rep.check(
        "PUT upload of a layer blob should yield a 201 Response",
        || {
            let post = Req::new("POST", cx.uploads_url(&repo)).send()?;
            let put = Req::new(
                "PUT",
                set_param(&post.location()?, "digest", &fx.layer.digest),
            )
            .header("Content-Type", MT_OCTET)
            .body(&fx.layer.bytes)
            .send()?;
            put.location()?;
            put.want_status(&[201])
        },
    );
    rep.check(
        "GET request to existing layer should yield 200 response",
        || {
            Req::get(cx.blob_url(&repo, &fx.layer.digest))
                .send()?
                .want_status(&[200])
        },
    );

    rep.section(format!("{a} Push / Blob Upload Chunked"));
    rep.check("Out-of-order blob upload should return 416", || {
        let post = Req::new("POST", cx.uploads_url(&repo)).send()?;
        let location = post.location()?;
        // A registry's minimum chunk length may make the blob grow.
        let min_length: Option<usize> = post
            .header("OCI-Chunk-Min-Length")
            .and_then(|v| v.trim().parse().ok());
        if let Some(min) = min_length
            && min > fx.chunks()[0].0.len()
        {
            fx.blob_b = Rng::new().bytes(min * 2 - 2);
        }
        let [_, (chunk2, range2)] = fx.chunks();
        Req::new("PATCH", location)
            .header("Content-Type", MT_OCTET)
            .header("Content-Range", &range2)
            .body(chunk2)
            .send()?
            .want_status(&[416])
    });
    let blob_b_digest = algo.digest(&fx.blob_b);
    let [(chunk1, range1), (chunk2, range2)] = fx.chunks();
    let mut started: Option<Ex> = None;
    let mut last = rep.check("PATCH request with first chunk should return 202", || {
        let post = Req::new("POST", cx.uploads_url(&repo)).send()?;
        let location = post.location()?;
        started = Some(post);
        let patch = Req::new("PATCH", location)
            .header("Content-Type", MT_OCTET)
            .header("Content-Range", &range1)
            .body(chunk1)
            .send()?;
        patch.want_status(&[202])?;
        patch.want_first_header("Range", &range1)?;
        Ok(patch)
    });
    rep.check("Retry previous blob chunk should return 416", || {
        let post = needs(&started, "PATCH request with first chunk should return 202")?;
        Req::new("PATCH", post.location()?)
            .header("Content-Type", MT_OCTET)
            .header("Content-Range", &range1)
            .body(chunk1)
            .send()?
            .want_status(&[416])
    });
    let stale = rep.check(
        "Get on stale blob upload should return 204 with a range and location",
        || {
            let post = needs(&started, "PATCH request with first chunk should return 202")?;
            let get = Req::get(post.location()?).send()?;
            get.want_status(&[204])?;
            get.location()?;
            get.want_first_header("Range", &range1)?;
            Ok(get)
        },
    );
    if stale.is_some() {
        last = stale;
    }
    let last = rep.check("PATCH request with second chunk should return 202", || {
        let prev = needs(
            &last,
            "Get on stale blob upload should return 204 with a range and location",
        )?;
        let patch = Req::new("PATCH", prev.location()?)
            .header("Content-Range", &range2)
            .header("Content-Type", MT_OCTET)
            .body(chunk2)
            .send()?;
        patch.want_status(&[202])?;
        patch.want_first_header("Range", &format!("0-{}", fx.blob_b.len() - 1))?;
        patch.location()?;
        Ok(patch)
    });
    rep.check("PUT request with digest should return 201", || {
        let patch = needs(&last, "PATCH request with second chunk should return 202")?;
        let put = Req::new(
            "PUT",
            set_param(&patch.location()?, "digest", &blob_b_digest),
        )
        .header("Content-Type", MT_OCTET)
        .send()?;
        put.want_status(&[201])?;
        put.location().map(drop)
    });

    rep.section(format!("{a} Push / Cross-Repository Blob Mount"));
    rep.check(
        "Cross-mounting of a blob without the from argument should yield session id",
        || {
            let post = Req::new(
                "POST",
                set_param(&cx.uploads_url(&cross), "mount", &fx.dummy),
            )
            .send()?;
            post.want_status(&[202])?;
            post.location().map(drop)
        },
    );
    let mount = rep.check(
        "POST request to mount another repository's blob should return 201 or 202",
        || {
            let url = set_param(&cx.uploads_url(&cross), "mount", &fx.blob_a.digest);
            let post = Req::new("POST", set_param(&url, "from", &repo)).send()?;
            post.want_status(&[201, 202])?;
            Ok(post)
        },
    );
    let mounted = mount.as_ref().map(Ex::status);
    let name = "GET request to test digest within cross-mount namespace should return 200";
    if mounted == Some(202) {
        rep.skip(
            name,
            "the mount answered 202 (an upload session), which the suite allows",
        );
    } else {
        rep.check(name, || {
            let post = needs(
                &mount,
                "POST request to mount another repository's blob should return 201 or 202",
            )?;
            let location = post.location()?;
            let expected = format!("/v2/{cross}/blobs/{}", fx.blob_a.digest);
            if url_path(&location) != expected {
                return Err(post.fail(format!("a Location with the path {expected}")));
            }
            Req::get(location).send()?.want_status(&[200])
        });
    }
    let name = "Cross-mounting of nonexistent blob should yield session id";
    if mounted == Some(201) {
        rep.skip(name, "the mount answered 201 (the blob was mounted)");
    } else if mounted.is_none() {
        rep.skip(name, "the mount check above did not pass");
    } else {
        rep.check(name, || {
            let post = needs(
                &mount,
                "POST request to mount another repository's blob should return 201 or 202",
            )?;
            let prefix = format!("/v2/{cross}/blobs/uploads/");
            if url_path(&post.location()?).starts_with(&prefix) {
                Ok(())
            } else {
                Err(post.fail(format!("a Location whose path starts with {prefix}")))
            }
        });
    }
    for name in [
        "Cross-mounting without from, and automatic content discovery enabled should return a 201",
        "Cross-mounting without from, and automatic content discovery disabled should return a 202",
    ] {
        rep.skip(
            name,
            "runs only when the registry's behaviour is declared (OCI_AUTOMATIC_CROSSMOUNT)",
        );
    }

    rep.section(format!("{a} Push / Manifest Upload"));
    rep.check("GET nonexistent manifest should return 404", || {
        Req::get(cx.manifest_url(&repo, ".INVALID_MANIFEST_NAME"))
            .send()?
            .want_status(&[404])
    });
    let manifest = &fx.manifests[1];
    rep.check("PUT should accept a manifest upload", || {
        push_by_digest_first(cx, &fx, &repo, manifest, true)?;
        for i in 0..4 {
            let put = put_manifest(cx, &repo, &format!("test{i}"), manifest)?;
            put.location()?;
            put.want_status(&[201])?;
        }
        Ok(())
    });
    let empty_layers = rep.check(
        "Registry should accept a manifest upload with no layers",
        || {
            push_by_digest_first(cx, &fx, &repo, &fx.empty_layer_manifest, false)?;
            let put = put_manifest(cx, &repo, "emptylayer", &fx.empty_layer_manifest)?;
            if put.status() == 201 {
                put.location()?;
                Ok(true)
            } else {
                Ok(false)
            }
        },
    );
    if empty_layers == Some(false) {
        rep.note("an image manifest with no layers is not supported (the suite warns only)");
    }
    let empty_pushed = empty_layers == Some(true);
    rep.check(
        "GET request to manifest URL (digest) should yield 200 response",
        || {
            Req::get(cx.manifest_url(&repo, &manifest.digest))
                .header("Accept", MT_MANIFEST)
                .send()?
                .want_status(&[200])
        },
    );

    rep.section(format!("{a} Push / Teardown"));
    rep.check("Delete manifest created in tests", || {
        delete_ok(
            &Req::new("DELETE", cx.manifest_url(&repo, &manifest.digest)).send()?,
            &[405],
        )?;
        if empty_pushed {
            delete_ok(
                &Req::new(
                    "DELETE",
                    cx.manifest_url(&repo, &fx.empty_layer_manifest.digest),
                )
                .send()?,
                &[405],
            )?;
        }
        Ok(())
    });
    for (name, blob) in [
        ("Delete config blob created in tests", &config),
        ("Delete layer blob created in setup", &fx.layer),
    ] {
        rep.check(name, || {
            delete_ok(
                &Req::new("DELETE", cx.blob_url(&repo, &blob.digest)).send()?,
                &[404, 405],
            )
        });
    }
}

/// The `tags` of a tag list body (empty when it is not one).
fn tag_names(ex: &Ex) -> Vec<String> {
    serde_json::from_slice::<Value>(&ex.resp.body)
        .ok()
        .and_then(|v| v.get("tags").cloned())
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

/// The `manifests` of a referrers response.
fn index_manifests(ex: &Ex) -> Result<Vec<Value>, Miss> {
    let body = ex.json()?;
    match body.get("manifests") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => Ok(list.clone()),
        Some(_) => Err(ex.fail("a JSON index with a `manifests` array")),
    }
}

fn legacy_discovery(rep: &mut Report, cx: &Cx<'_>, algo: Algo) {
    let fx = Fixtures::new(algo);
    let repo = format!("conformance/discovery-{}", algo.name());
    let a = algo.name();
    let referrers = cx.referrers_supported();

    rep.section(format!("{a} Content Discovery / Setup"));
    rep.check("Populate registry with test blob", || {
        populate_blob(cx, &repo, &fx.configs[2])
    });
    rep.check("Populate registry with test layer", || {
        populate_blob(cx, &repo, &fx.layer)
    });
    rep.check("Populate registry with test tags", || {
        push_by_digest_first(cx, &fx, &repo, &fx.manifests[2], false)?;
        for i in 0..4 {
            for tag in [format!("test{i}"), format!("TEST{i}")] {
                put_manifest(cx, &repo, &tag, &fx.manifests[2])?.want_2xx()?;
            }
        }
        Ok(())
    });
    if !referrers {
        rep.note(&format!(
            "OCI-Subject headers are not checked: {} has no referrers API",
            cx.target
        ));
    }
    let subject = |put: &Ex, digest: &str| {
        if referrers {
            put.want_first_header("OCI-Subject", digest)
        } else {
            Ok(())
        }
    };
    rep.check("References setup", || {
        populate_blob(cx, &repo, &fx.empty_json)?;
        // Referrers pushed before their subject…
        populate_blob(cx, &repo, &fx.ref_blob_a)?;
        for referrer in [&fx.ref_a_config, &fx.ref_a_layer, &fx.ref_index] {
            let put = put_manifest(cx, &repo, &referrer.digest, referrer)?;
            put.want_2xx()?;
            subject(&put, &fx.manifests[4].digest)?;
        }
        populate_blob(cx, &repo, &fx.configs[4])?;
        populate_blob(cx, &repo, &fx.layer)?;
        push_by_digest_first(cx, &fx, &repo, &fx.manifests[4], false)?;
        put_manifest(cx, &repo, "tagtest0", &fx.manifests[4])?.want_2xx()?;
        // … and after it.
        populate_blob(cx, &repo, &fx.ref_blob_b)?;
        for referrer in [&fx.ref_b_config, &fx.ref_b_layer] {
            let put = put_manifest(cx, &repo, &referrer.digest, referrer)?;
            put.want_2xx()?;
            subject(&put, &fx.manifests[4].digest)?;
        }
        // A referrer of a subject that is never pushed.
        let put = put_manifest(cx, &repo, &fx.ref_c_layer.digest, &fx.ref_c_layer)?;
        put.want_2xx()?;
        subject(&put, &fx.manifests[3].digest)
    });

    rep.section(format!(
        "{a} Content Discovery / Test content discovery endpoints (listing tags)"
    ));
    let mut num_tags = 4;
    rep.check(
        "GET request to list tags should yield 200 response and be in sorted order",
        || {
            let ex = Req::get(cx.tags_url(&repo)).send()?;
            ex.want_status(&[200])?;
            let tags = tag_names(&ex);
            num_tags = tags.len();
            let mut lexical = tags.clone();
            lexical.sort_by_key(|t| t.to_lowercase());
            let mut ascii = tags.clone();
            ascii.sort();
            if tags == lexical || tags == ascii {
                Ok(())
            } else {
                Err(ex.fail("tags in lexical (case-insensitive) or in ASCII order"))
            }
        },
    );
    let n = num_tags / 2;
    rep.check(
        "GET number of tags should be limitable by `n` query parameter",
        || {
            let ex = Req::get(set_param(&cx.tags_url(&repo), "n", &n.to_string())).send()?;
            ex.want_status(&[200])?;
            if tag_names(&ex).len() == n {
                Ok(())
            } else {
                Err(ex.fail(format!("{n} tags")))
            }
        },
    );
    rep.check("GET start of tag is set by `last` query parameter", || {
        let url = set_param(&cx.tags_url(&repo), "n", &n.to_string());
        let first = Req::get(&url).send()?;
        first.want_status(&[200])?;
        let tags = tag_names(&first);
        let Some(last) = n.checked_sub(1).and_then(|i| tags.get(i)) else {
            return Err(first.fail(format!("{n} tags")));
        };
        let next = Req::get(set_param(&url, "last", last)).send()?;
        next.want_status(&[200])?;
        let rest = tag_names(&next);
        if rest.len() > n || rest.contains(last) {
            return Err(next.fail(format!("at most {n} tags, none of them {last:?}")));
        }
        Ok(())
    });

    rep.section(format!(
        "{a} Content Discovery / Test content discovery endpoints (listing references)"
    ));
    let names = [
        "GET request to nonexistent blob should result in empty 200 response",
        "GET request to existing blob should yield 200",
        "GET request to existing blob with filter should yield 200",
        "GET request to missing manifest should yield 200",
    ];
    if referrers {
        let list = |digest: &str, artifact_type: Option<&str>| -> Result<(Ex, Vec<Value>), Miss> {
            let mut url = cx.referrers_url(&repo, digest);
            if let Some(t) = artifact_type {
                url = set_param(&url, "artifactType", t);
            }
            let ex = Req::get(url).send()?;
            ex.want_status(&[200])?;
            ex.want_first_header("Content-Type", MT_INDEX)?;
            let manifests = index_manifests(&ex)?;
            Ok((ex, manifests))
        };
        let annotated = |ex: &Ex, manifests: &[Value]| -> Result<(), Miss> {
            for m in manifests {
                let digest = m["digest"].as_str().unwrap_or_default();
                let expected = fx.annotations.get(digest).map_or("", String::as_str);
                let annotations = m["annotations"].as_object();
                if annotations.map_or(0, Map::len) != 1
                    || m["annotations"][ANNOTATION].as_str() != Some(expected)
                {
                    return Err(ex.fail(format!(
                        "descriptor {digest} with exactly one annotation, {ANNOTATION}: {expected:?}"
                    )));
                }
            }
            Ok(())
        };
        rep.check(names[0], || {
            let (ex, manifests) = list(&fx.dummy, None)?;
            if manifests.is_empty() {
                Ok(())
            } else {
                Err(ex.fail("an empty `manifests` list"))
            }
        });
        rep.check(names[1], || {
            let (ex, manifests) = list(&fx.manifests[4].digest, None)?;
            if manifests.len() != 5 || manifests[0]["digest"] == manifests[1]["digest"] {
                return Err(ex.fail("5 different referrers"));
            }
            annotated(&ex, &manifests)
        });
        let unfiltered = rep
            .check(names[2], || {
                let (ex, manifests) = list(&fx.manifests[4].digest, Some(TYPE_A))?;
                if ex.header("OCI-Filters-Applied").is_some() {
                    if manifests.len() != 2 {
                        return Err(ex.fail(format!("the 2 referrers of type {TYPE_A}")));
                    }
                    ex.want_first_header("OCI-Filters-Applied", "artifactType")?;
                    annotated(&ex, &manifests)?;
                    Ok(false)
                } else {
                    if manifests.len() != 5 {
                        return Err(ex.fail("5 referrers (no OCI-Filters-Applied header)"));
                    }
                    annotated(&ex, &manifests)?;
                    Ok(true)
                }
            })
            .unwrap_or(false);
        if unfiltered {
            rep.note(
                "filtering referrers by artifactType is not implemented (the suite warns only)",
            );
        }
        rep.check(names[3], || {
            let (ex, manifests) = list(&fx.manifests[3].digest, None)?;
            if manifests.len() == 1
                && manifests[0]["digest"].as_str() == Some(fx.ref_c_layer.digest.as_str())
            {
                Ok(())
            } else {
                Err(ex.fail(format!("exactly one referrer, {}", fx.ref_c_layer.digest)))
            }
        });
    } else {
        for name in names {
            rep.skip(name, &format!("{} has no referrers API", cx.target));
        }
    }

    rep.section(format!("{a} Content Discovery / Teardown"));
    let delete_manifests = |list: &[&Content]| -> Result<(), Miss> {
        for m in list {
            delete_ok(
                &Req::new("DELETE", cx.manifest_url(&repo, &m.digest)).send()?,
                &[404, 405],
            )?;
        }
        Ok(())
    };
    let delete_blobs = |list: &[&Content]| -> Result<(), Miss> {
        for b in list {
            delete_ok(
                &Req::new("DELETE", cx.blob_url(&repo, &b.digest)).send()?,
                &[404, 405],
            )?;
        }
        Ok(())
    };
    rep.check("Delete created manifest & associated tags", || {
        delete_manifests(&[
            &fx.ref_index,
            &fx.manifests[2],
            &fx.manifests[4],
            &fx.ref_a_config,
            &fx.ref_a_layer,
            &fx.ref_b_config,
            &fx.ref_b_layer,
            &fx.ref_c_layer,
        ])
    });
    rep.check("Delete config blob created in tests", || {
        delete_blobs(&[&fx.configs[2]])
    });
    rep.check("Delete layer blob created in setup", || {
        delete_blobs(&[&fx.layer])
    });
    rep.check("References teardown", || {
        delete_manifests(&[
            &fx.ref_index,
            &fx.ref_a_config,
            &fx.ref_a_layer,
            &fx.manifests[4],
            &fx.ref_b_config,
            &fx.ref_b_layer,
        ])?;
        delete_blobs(&[
            &fx.configs[4],
            &fx.ref_blob_a,
            &fx.ref_blob_b,
            &fx.empty_json,
        ])
    });
}

fn legacy_management(rep: &mut Report, cx: &Cx<'_>, algo: Algo) {
    let fx = Fixtures::new(algo);
    let repo = format!("conformance/management-{}", algo.name());
    let a = algo.name();
    let tag = "tagtest0";
    let manifest = &fx.manifests[3];
    let config = &fx.configs[3];

    rep.section(format!("{a} Content Management / Setup"));
    rep.check("Populate registry with test config blob", || {
        populate_blob(cx, &repo, config)
    });
    rep.check("Populate registry with test layer", || {
        populate_blob(cx, &repo, &fx.layer)
    });
    rep.check("Populate registry with test tag", || {
        push_by_digest_first(cx, &fx, &repo, manifest, false)?;
        put_manifest(cx, &repo, tag, manifest)?.want_2xx()
    });
    let num_tags = rep
        .check(
            "Check how many tags there are before anything gets deleted",
            || {
                let ex = Req::get(cx.tags_url(&repo)).send()?;
                ex.want_status(&[200])?;
                ex.json()?;
                Ok(tag_names(&ex).len())
            },
        )
        .unwrap_or(0);

    rep.section(format!("{a} Content Management / Manifest delete"));
    rep.check(
        "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)",
        || {
            let ex = Req::new("DELETE", cx.manifest_url(&repo, tag)).send()?;
            ex.want_status(&[400, 202, 405])?;
            if ex.status() == 400 && ex.error_code().as_deref() != Some("UNSUPPORTED") {
                return Err(ex.fail("errors[0].code UNSUPPORTED with a 400"));
            }
            Ok(())
        },
    );
    rep.check(
        "DELETE request to manifest (digest) should yield 202 response unless already deleted",
        || {
            Req::new("DELETE", cx.manifest_url(&repo, &manifest.digest))
                .send()?
                .want_status(&[202, 404])
        },
    );
    rep.check(
        "GET request to deleted manifest URL should yield 404 response, unless delete is disallowed",
        || {
            Req::get(cx.manifest_url(&repo, &manifest.digest))
                .send()?
                .want_status(&[404, 200])
        },
    );
    rep.check(
        "GET request to tags list should reflect manifest deletion",
        || {
            let ex = Req::get(cx.tags_url(&repo)).send()?;
            ex.want_status(&[404, 200])?;
            let expected = num_tags.checked_sub(1);
            if ex.status() == 200 {
                ex.json()?;
                if expected != Some(tag_names(&ex).len()) {
                    return Err(ex.fail(format!("{} tags", num_tags as i64 - 1)));
                }
            } else if expected != Some(0) {
                return Err(ex.fail(format!("{} tags, not a 404", num_tags as i64 - 1)));
            }
            Ok(())
        },
    );

    rep.section(format!("{a} Content Management / Blob delete"));
    let blob_delete_allowed = rep
        .check(
            "DELETE request to blob URL should yield 202 response",
            || {
                Req::new("DELETE", cx.blob_url(&repo, &config.digest))
                    .send()?
                    .want_status(&[202, 404, 405])?;
                let layer = Req::new("DELETE", cx.blob_url(&repo, &fx.layer.digest)).send()?;
                layer.want_status(&[202, 404, 405])?;
                Ok(layer.status() != 405)
            },
        )
        .unwrap_or(true);
    let name = "GET request to deleted blob URL should yield 404 response";
    if blob_delete_allowed {
        rep.check(name, || {
            Req::get(cx.blob_url(&repo, &config.digest))
                .send()?
                .want_status(&[404])
        });
    } else {
        rep.skip(name, "the registry disallows blob deletion (405)");
    }
}

// ===========================================================================
// The 1.1 runner.
// ===========================================================================

const REPO1: &str = "conformance/repo1";
const REPO2: &str = "conformance/repo2";

/// How a check went, ordered as the runner merges them (worst wins).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    #[default]
    Unknown,
    Skip,
    Pass,
    Fail,
}

/// The blob upload APIs, in the runner's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BlobApi {
    PostPut,
    PostOnly,
    Stream,
    Chunked,
}

impl BlobApi {
    const ALL: [Self; 4] = [Self::PostPut, Self::PostOnly, Self::Stream, Self::Chunked];

    fn check_name(self) -> &'static str {
        match self {
            Self::PostPut => "blob-post-put",
            Self::PostOnly => "blob-post-only",
            Self::Stream => "blob-patch-stream",
            Self::Chunked => "blob-patch-chunked",
        }
    }
}

/// What the runner remembers of the upload APIs, to pick one when it just
/// needs a blob pushed: first APIs not tried yet (at all, then with this
/// digest algorithm), then those that never failed, then the rest; each
/// attempt is a check of its own, until one passes.
#[derive(Default)]
struct ApiState {
    tried: BTreeSet<BlobApi>,
    tried_with: BTreeSet<(Algo, BlobApi)>,
    status: BTreeMap<BlobApi, Status>,
}

impl ApiState {
    fn mark_all_tried(&mut self) {
        for api in BlobApi::ALL {
            self.tried.insert(api);
            for algo in Algo::ALL {
                self.tried_with.insert((algo, api));
            }
        }
    }

    fn record(&mut self, api: BlobApi, algo: Algo, status: Status) {
        self.tried.insert(api);
        self.tried_with.insert((algo, api));
        let merged = self.status.entry(api).or_default();
        *merged = (*merged).max(status);
    }

    fn order(&self, algo: Algo) -> Vec<BlobApi> {
        let mut order: Vec<BlobApi> = Vec::new();
        let passes: [&dyn Fn(BlobApi) -> bool; 4] = [
            &|api| !self.tried.contains(&api),
            &|api| !self.tried_with.contains(&(algo, api)),
            &|api| self.status.get(&api) == Some(&Status::Pass),
            &|_| true,
        ];
        for wanted in passes {
            for api in BlobApi::ALL {
                if wanted(api) && !order.contains(&api) {
                    order.push(api);
                }
            }
        }
        order
    }
}

/// How an upload goes.
#[derive(Clone, Copy, Default)]
struct Opts {
    /// Chunked: the last chunk goes with the closing PUT.
    put_last: bool,
    /// Chunked: before each chunk, one at the wrong offset (expecting 416),
    /// then a GET of the session to learn where it stands.
    out_of_order: bool,
    /// The bytes do not match the digest: the upload must end in a 400.
    bad_digest: bool,
}

/// Which range a ranged blob GET asks for, and what a registry that serves
/// ranges must answer.
#[derive(Clone, Copy)]
enum RangeWant {
    /// 206 with these bytes (inclusive).
    Partial(usize, usize),
    /// 416.
    NotSatisfiable,
}

fn subject_digest(manifest: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(manifest).ok()?;
    value["subject"]["digest"].as_str().map(str::to_owned)
}

impl Cx<'_> {
    /// One upload through `api`, as check `api.check_name()`, remembered
    /// for later picks. Returns whether it passed.
    fn upload(
        &self,
        rep: &mut Report,
        api: BlobApi,
        repo: &str,
        content: &Content,
        opts: Opts,
        min_chunk: &mut Option<usize>,
    ) -> bool {
        let bad = opts.bad_digest;
        let status = rep.check_status(api.check_name(), || match api {
            BlobApi::PostPut => self.blob_post_put(repo, content, bad),
            BlobApi::PostOnly => self.blob_post_only(repo, content, bad),
            BlobApi::Stream => self.blob_stream(repo, content, bad),
            BlobApi::Chunked => self.blob_chunked(repo, content, opts, min_chunk),
        });
        self.apis
            .borrow_mut()
            .record(api, Algo::of_digest(&content.digest), status);
        status == Status::Pass
    }

    fn upload_simple(&self, rep: &mut Report, api: BlobApi, repo: &str, content: &Content) -> bool {
        self.upload(rep, api, repo, content, Opts::default(), &mut None)
    }

    /// The runner's "push this blob any way that works".
    fn push_blob_any(&self, rep: &mut Report, repo: &str, content: &Content) -> bool {
        let order = self.apis.borrow().order(Algo::of_digest(&content.digest));
        order
            .into_iter()
            .any(|api| self.upload_simple(rep, api, repo, content))
    }

    /// GET of a finished upload's `Location`: the blob itself.
    fn verify_location(&self, finished: &Ex, bytes: &[u8]) -> Result<(), Miss> {
        let location = finished.location()?;
        self.verify_blob_at(finished, &location, bytes)
    }

    fn verify_blob_at(&self, finished: &Ex, location: &str, bytes: &[u8]) -> Result<(), Miss> {
        let get = Req::get(location).send()?;
        if get.status() == 200 && get.resp.body.as_slice() == bytes {
            return Ok(());
        }
        Err(Miss::Fail(format!(
            "expected: the blob (200 and its {} bytes) at the Location of the finished upload\n{}\n\
             then the GET of that Location:\n{}",
            bytes.len(),
            finished.describe(),
            get.describe()
        )))
    }

    fn blob_post_put(&self, repo: &str, content: &Content, bad_digest: bool) -> Result<(), Miss> {
        let post = Req::new("POST", self.uploads_url(repo)).send()?;
        post.want_status(&[202])?;
        let url = set_param(&post.location()?, "digest", &content.digest);
        let put = Req::new("PUT", url)
            .header("Content-Type", MT_OCTET)
            .body(&content.bytes)
            .send()?;
        if bad_digest {
            return put.want_status(&[400]);
        }
        put.want_status(&[201])?;
        put.want_digest_header(&[&content.digest])?;
        self.verify_location(&put, &content.bytes)
    }

    fn blob_post_only(&self, repo: &str, content: &Content, bad_digest: bool) -> Result<(), Miss> {
        let url = set_param(&self.uploads_url(repo), "digest", &content.digest);
        let post = Req::new("POST", url)
            .header("Content-Type", MT_OCTET)
            .body(&content.bytes)
            .send()?;
        if bad_digest {
            post.want_status(&[400, 202])?;
        } else {
            post.want_status(&[201, 202])?;
            post.want_header_present("Location")?;
        }
        if post.status() == 202 {
            let url = set_param(&post.location()?, "digest", &content.digest);
            let put = Req::new("PUT", url)
                .header("Content-Type", MT_OCTET)
                .body(&content.bytes)
                .send()?;
            put.want_status(&[if bad_digest { 400 } else { 201 }])?;
            return Err(post.unsupported(
                "no content in the upload POST (202, an upload session); the PUT that followed worked",
            ));
        }
        if bad_digest {
            return Ok(());
        }
        post.want_digest_header(&[&content.digest])?;
        self.verify_location(&post, &content.bytes)
    }

    fn blob_stream(&self, repo: &str, content: &Content, bad_digest: bool) -> Result<(), Miss> {
        let post = Req::new("POST", self.uploads_url(repo)).send()?;
        post.want_status(&[202])?;
        let location = post.location()?;
        let patch = Req::new("PATCH", location.as_str())
            .header("Content-Type", MT_OCTET)
            .streamed(&content.bytes)
            .send()?;
        patch.want_status(&[202])?;
        let location = patch.location().unwrap_or(location);
        let put = Req::new("PUT", set_param(&location, "digest", &content.digest))
            .header("Content-Type", MT_OCTET)
            .send()?;
        if bad_digest {
            return put.want_status(&[400]);
        }
        put.want_status(&[201])?;
        put.want_header_present("Location")?;
        put.want_digest_header(&[&content.digest])?;
        self.verify_location(&put, &content.bytes)
    }

    fn blob_chunked(
        &self,
        repo: &str,
        content: &Content,
        chunking: Opts,
        min_chunk: &mut Option<usize>,
    ) -> Result<(), Miss> {
        let bad_digest = chunking.bad_digest;
        let bytes = &content.bytes;
        let len = bytes.len();
        let post = Req::new("POST", self.uploads_url(repo)).send()?;
        post.want_status(&[202])?;
        let mut asked = 0;
        if let Some(min) = post.header("OCI-Chunk-Min-Length") {
            asked = min.trim().parse::<usize>().map_err(|e| {
                post.fail(format!("an OCI-Chunk-Min-Length that is a number ({e})"))
            })?;
            if min_chunk.is_none_or(|m| asked > m) {
                *min_chunk = Some(asked);
            }
        }
        let mut chunk = (len / 3 + 1).max(asked).max(CHUNK_MIN).min(len);
        if chunk == 0 {
            chunk = 1;
        }
        // The latest Location seen (resolved), where each request goes.
        let mut location = Some(post.location()?);
        let mut finished: Option<Ex> = None;
        let mut next = 0;
        let lost =
            || Miss::Fail("expected: a Location to continue the upload; none came".to_owned());
        while next < len {
            if chunking.out_of_order {
                let mut url = location.clone().ok_or_else(lost)?;
                // A chunk that skips ahead (or, near the end, starts over).
                let mut bad_start = next + chunk;
                if bad_start >= len {
                    bad_start = 0;
                }
                let bad_end = (bad_start + chunk - 1).min(len - 1);
                let mut method = "PATCH";
                if chunking.put_last && bad_end == len - 1 {
                    method = "PUT";
                    url = set_param(&url, "digest", &content.digest);
                }
                let wrong = Req::new(method, url.as_str())
                    .header("Content-Type", MT_OCTET)
                    .header("Content-Range", &format!("{bad_start}-{bad_end}"))
                    .body(&bytes[bad_start..=bad_end])
                    .send()?;
                wrong.want_status(&[416])?;
                location = wrong.location().ok().or(location);
                // Ask the session where it stands.
                let status = Req::get(url.as_str()).send()?;
                status.want_status(&[204])?;
                location = status.location().ok().or(location);
                let range = status.header("Range").unwrap_or("");
                let end = range
                    .strip_prefix("0-")
                    .and_then(|e| e.parse::<i64>().ok())
                    .ok_or_else(|| status.fail("a Range header 0-<last byte>"))?;
                if next > 0 && end != next as i64 - 1 {
                    return Err(status.fail(format!("Range: 0-{}", next - 1)));
                }
            }
            let mut url = location.clone().ok_or_else(lost)?;
            let start = next;
            let end = (start + chunk - 1).min(len - 1);
            next = end + 1;
            let is_last = end == len - 1;
            if chunking.put_last && is_last {
                url = set_param(&url, "digest", &content.digest);
            }
            let method = if chunking.put_last && is_last {
                "PUT"
            } else {
                "PATCH"
            };
            let sent = Req::new(method, url.as_str())
                .header("Content-Type", MT_OCTET)
                .header("Content-Range", &format!("{start}-{end}"))
                .body(&bytes[start..=end])
                .send()?;
            if method == "PUT" && bad_digest {
                sent.want_status(&[400])?;
            } else if method == "PUT" {
                sent.want_status(&[201])?;
                location = sent.location().ok().or(location);
                finished = Some(sent);
            } else {
                sent.want_status(&[202])?;
                location = sent.location().ok().or(location);
            }
        }
        if !chunking.put_last {
            let url = set_param(
                &location.clone().ok_or_else(lost)?,
                "digest",
                &content.digest,
            );
            let put = Req::new("PUT", url)
                .header("Content-Type", MT_OCTET)
                .send()?;
            if bad_digest {
                put.want_status(&[400])?;
            } else {
                put.want_status(&[201])?;
                location = put.location().ok().or(location);
                finished = Some(put);
            }
        }
        if bad_digest {
            return Ok(());
        }
        let Some(put) = finished else {
            return Err(Miss::Fail(
                "expected: a closing PUT; none was sent".to_owned(),
            ));
        };
        put.want_digest_header(&[&content.digest])?;
        // The runner reads the last Location it saw (the PUT's, if it had one).
        let blob = location.ok_or_else(lost)?;
        self.verify_blob_at(&put, &blob, bytes)
    }

    /// Mount `content` into `repo` from `from` (or from wherever, with no
    /// `from`). A 202 (an upload session instead) is followed by the PUT of
    /// the content, and is then "unsupported" if that worked.
    fn blob_mount(&self, repo: &str, from: Option<&str>, content: &Content) -> Result<Ex, Miss> {
        let mut url = set_param(&self.uploads_url(repo), "mount", &content.digest);
        if let Some(from) = from {
            url = set_param(&url, "from", from);
        }
        let post = Req::new("POST", url).send()?;
        post.want_status(&[201, 202])?;
        let location = post.location()?;
        if post.status() == 202 {
            let put = Req::new("PUT", set_param(&location, "digest", &content.digest))
                .header("Content-Type", MT_OCTET)
                .body(&content.bytes)
                .send()?;
            put.want_status(&[201])?;
            put.want_digest_header(&[&content.digest])?;
            self.verify_location(&put, &content.bytes)?;
            return Err(post.unsupported(
                "the mount answered 202 (an upload session); the PUT that followed worked",
            ));
        }
        post.want_digest_header(&[&content.digest])?;
        self.verify_location(&post, &content.bytes)?;
        Ok(post)
    }

    /// A mount of a blob the source does not have must open an upload
    /// session (202), and the content PUT there must work.
    fn blob_mount_missing(&self, repo: &str, from: &str, content: &Content) -> Result<(), Miss> {
        match self.blob_mount(repo, Some(from), content) {
            Err(Miss::Unsupported(_)) => Ok(()),
            Err(fail) => Err(fail),
            Ok(post) => Err(post.fail(format!(
                "a 202: {from} does not have {}, so it cannot be mounted",
                content.digest
            ))),
        }
    }

    /// HEAD and GET check the length and bytes only where they are known:
    /// any non-empty blob, and the empty one under its sha256 digest.
    fn length_known(content: &Content) -> bool {
        !content.bytes.is_empty() || content.digest == Algo::Sha256.digest(b"")
    }

    fn blob_head_exists(&self, repo: &str, content: &Content) -> Result<(), Miss> {
        let ex = Req::head(self.blob_url(repo, &content.digest)).send()?;
        ex.want_status(&[200])?;
        ex.want_body(b"")?;
        if Self::length_known(content) {
            ex.want_header("Content-Length", &content.len().to_string())?;
        }
        ex.want_digest_header(&[&content.digest])
    }

    fn blob_get_exists(&self, repo: &str, content: &Content) -> Result<(), Miss> {
        let ex = Req::get(self.blob_url(repo, &content.digest)).send()?;
        ex.want_status(&[200])?;
        if Self::length_known(content) {
            ex.want_body(&content.bytes)?;
            ex.want_header("Content-Length", &content.len().to_string())?;
        }
        ex.want_digest_header(&[&content.digest])
    }

    fn range_get(
        &self,
        repo: &str,
        content: &Content,
        range: &str,
        want: RangeWant,
    ) -> Result<(), Miss> {
        let bytes = &content.bytes;
        let len = bytes.len();
        let ex = Req::get(self.blob_url(repo, &content.digest))
            .header("Range", &format!("bytes={range}"))
            .send()?;
        let (served, expected) = match want {
            RangeWant::Partial(start, end) => {
                let known = format!("bytes {start}-{end}/{len}");
                let unknown = format!("bytes {start}-{end}/*");
                let content_range = ex.resp.header_values("Content-Range");
                (
                    ex.status() == 206
                        && ex.resp.body.as_slice() == &bytes[start..=end]
                        && ex
                            .resp
                            .header_values("Content-Length")
                            .contains(&(end - start + 1).to_string().as_str())
                        && (content_range.contains(&known.as_str())
                            || content_range.contains(&unknown.as_str())),
                    format!(
                        "206 with bytes {start}-{end} (Content-Length {}, Content-Range {known} or {unknown})",
                        end - start + 1
                    ),
                )
            }
            RangeWant::NotSatisfiable => (ex.status() == 416, "416".to_owned()),
        };
        if served {
            return Ok(());
        }
        let whole = ex.status() == 200
            && ex.resp.body.as_slice() == bytes.as_slice()
            && ex
                .resp
                .header_values("Content-Length")
                .contains(&len.to_string().as_str());
        if whole {
            return Err(ex.unsupported("range requests: the whole blob came back (200)"));
        }
        Err(ex.fail(format!("{expected}, or the whole blob with a 200")))
    }

    fn blob_delete(&self, repo: &str, digest: &str) -> Result<(), Miss> {
        let ex = Req::new("DELETE", self.blob_url(repo, digest)).send()?;
        ex.want_status(&[202, 404, 405])?;
        if ex.status() == 405 {
            return Err(ex.unsupported("blob deletion (405)"));
        }
        Ok(())
    }

    /// The runner's blob delete, then (if it was allowed) its check that the
    /// blob is gone at once.
    fn test_delete_blob(&self, rep: &mut Report, repo: &str, digest: &str) {
        if rep
            .check("blob-delete", || self.blob_delete(repo, digest))
            .is_some()
        {
            rep.check("blob-delete atomic", || {
                Req::head(self.blob_url(repo, digest))
                    .send()?
                    .want_status(&[404])
            });
        }
    }

    fn manifest_req(&self, method: &'static str, repo: &str, reference: &str) -> Req {
        Req::new(method, self.manifest_url(repo, reference))
            .header("Accept", MT_INDEX)
            .header("Accept", MT_MANIFEST)
    }

    /// PUT (by digest or tag), then the runner's checks of the answer: 201,
    /// `OCI-Subject` for a manifest with a subject (where referrers are
    /// tested), the digest header, and a GET of `Location` giving the bytes
    /// back. A corrupted manifest must get a 400.
    fn manifest_put(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
        bad_digest: bool,
    ) -> Result<(), Miss> {
        let put = Req::new("PUT", self.manifest_url(repo, reference))
            .header("Content-Type", &manifest.media_type)
            .streamed(&manifest.bytes)
            .send()?;
        if bad_digest {
            return put.want_status(&[400]);
        }
        put.want_status(&[201])?;
        if self.referrers_supported()
            && let Some(subject) = subject_digest(&manifest.bytes)
        {
            put.want_header("OCI-Subject", &subject)?;
        }
        put.want_digest_header(&[&manifest.digest])?;
        let get = Req::get(put.location()?)
            .header("Accept", MT_INDEX)
            .header("Accept", MT_MANIFEST)
            .send()?;
        get.want_status(&[200])?;
        get.want_header("Content-Type", &manifest.media_type)?;
        get.want_header("Content-Length", &manifest.len().to_string())?;
        get.want_body(&manifest.bytes)
    }

    fn manifest_get_exists(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
    ) -> Result<(), Miss> {
        let ex = self.manifest_req("GET", repo, reference).send()?;
        ex.want_status(&[200])?;
        ex.want_body(&manifest.bytes)?;
        ex.want_header("Content-Type", &manifest.media_type)?;
        ex.want_header("Content-Length", &manifest.len().to_string())?;
        ex.want_digest_header(&[&manifest.digest])
    }

    fn manifest_head_exists(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
    ) -> Result<(), Miss> {
        let ex = self.manifest_req("HEAD", repo, reference).send()?;
        ex.want_status(&[200])?;
        ex.want_body(b"")?;
        ex.want_header("Content-Type", &manifest.media_type)?;
        ex.want_header("Content-Length", &manifest.len().to_string())?;
        ex.want_digest_header(&[&manifest.digest])
    }

    /// DELETE of a tag or a manifest, then (if allowed) the check that it is
    /// gone at once.
    fn test_delete_manifest(&self, rep: &mut Report, name: &str, repo: &str, reference: &str) {
        let deleted = rep.check(name, || {
            let ex = Req::new("DELETE", self.manifest_url(repo, reference)).send()?;
            ex.want_status(&[202, 404, 400, 405])?;
            if matches!(ex.status(), 400 | 405) {
                return Err(ex.unsupported("deletion"));
            }
            Ok(())
        });
        if deleted.is_some() {
            rep.check(&format!("{name} atomic"), || {
                self.manifest_req("HEAD", repo, reference)
                    .send()?
                    .want_status(&[404])
            });
        }
    }

    /// The runner's referrers listing: 200, the index media type, a JSON
    /// OCI index.
    fn referrers(
        &self,
        repo: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<(Ex, Vec<Value>), Miss> {
        let mut url = self.referrers_url(repo, subject);
        if let Some(t) = artifact_type {
            url = add_param(&url, "artifactType", t);
        }
        let ex = Req::get(url).send()?;
        ex.want_header("Content-Type", MT_INDEX)?;
        ex.want_status(&[200])?;
        let body = ex.json()?;
        if body["mediaType"] != json!(MT_INDEX) || body["schemaVersion"] != json!(2) {
            return Err(ex.fail("an OCI index: mediaType of an index and schemaVersion 2"));
        }
        let manifests = index_manifests(&ex)?;
        Ok((ex, manifests))
    }

    /// The runner's tag listing: 200 with a tag list, or 404.
    fn tag_list(&self, repo: &str, last: Option<&str>) -> Result<Vec<String>, Miss> {
        let mut url = self.tags_url(repo);
        if let Some(last) = last {
            url = add_param(&url, "last", last);
        }
        let ex = Req::get(url).send()?;
        ex.want_status(&[200, 404])?;
        if ex.status() == 404 {
            return Ok(Vec::new());
        }
        ex.json()?;
        Ok(tag_names(&ex))
    }
}

fn runner_ping_and_empty(rep: &mut Report, cx: &Cx<'_>) {
    rep.section("ping");
    rep.check("GET /v2/", || Req::get(cx.reg.url("/v2/")).send().map(drop));
    rep.section("empty");
    rep.check("tag list", || cx.tag_list(REPO1, None).map(drop));
    let subject = Algo::Sha256.digest(Rng::new().hex(32).as_bytes());
    if cx.referrers_supported() {
        rep.check("referrers", || {
            cx.referrers(REPO1, &subject, None).map(drop)
        });
    } else {
        rep.skip("referrers", &format!("{} has no referrers API", cx.target));
    }
}

fn runner_blob_apis(rep: &mut Report, cx: &Cx<'_>, algo: Algo) {
    let a = algo.name();
    let mut rng = Rng::new();
    let mut blob = |size: usize| Content::new(algo, MT_OCTET, rng.bytes(size));
    let post_cancel = blob(512);
    rep.section(format!("{a} blobs / get-missing"));
    rep.check("blob-get", || {
        Req::get(cx.blob_url(REPO1, &post_cancel.digest))
            .send()?
            .want_status(&[404])
    });
    let mut min_chunk: Option<usize> = None;
    let tests = [
        "post only",
        "post+put",
        "chunked single",
        "stream",
        "mount",
        "mount anonymous",
        "mount missing",
        "post cancel",
        "chunked multi",
        "chunked multi and put chunk",
        "chunked out-of-order",
        "chunked out-of-order and put chunk",
    ];
    for test in tests {
        rep.section(format!("{a} blobs / {test}"));
        let content = match test {
            "post cancel" => post_cancel.clone(),
            t if t.starts_with("chunked ") && t != "chunked single" => {
                blob(min_chunk.unwrap_or(0).max(CHUNK_MIN) * 3 - 5)
            }
            _ => blob(512),
        };
        let chunked = |put_last, out_of_order| Opts {
            put_last,
            out_of_order,
            bad_digest: false,
        };
        let pushed = match test {
            "post only" => cx.upload_simple(rep, BlobApi::PostOnly, REPO1, &content),
            "post+put" => cx.upload_simple(rep, BlobApi::PostPut, REPO1, &content),
            "stream" => cx.upload_simple(rep, BlobApi::Stream, REPO1, &content),
            "chunked single" | "chunked multi" => cx.upload(
                rep,
                BlobApi::Chunked,
                REPO1,
                &content,
                Opts::default(),
                &mut min_chunk,
            ),
            "chunked multi and put chunk" => cx.upload(
                rep,
                BlobApi::Chunked,
                REPO1,
                &content,
                chunked(true, false),
                &mut min_chunk,
            ),
            "chunked out-of-order" => cx.upload(
                rep,
                BlobApi::Chunked,
                REPO1,
                &content,
                chunked(false, true),
                &mut min_chunk,
            ),
            "chunked out-of-order and put chunk" => cx.upload(
                rep,
                BlobApi::Chunked,
                REPO1,
                &content,
                chunked(true, true),
                &mut min_chunk,
            ),
            "mount" => {
                cx.push_blob_any(rep, REPO2, &content);
                rep.check("blob-mount", || cx.blob_mount(REPO1, Some(REPO2), &content))
                    .is_some()
            }
            "mount anonymous" => {
                cx.push_blob_any(rep, REPO2, &content);
                rep.check("blob-mount-anonymous", || {
                    cx.blob_mount(REPO1, None, &content)
                })
                .is_some()
            }
            "mount missing" => rep
                .check("blob-mount", || {
                    cx.blob_mount_missing(REPO1, REPO2, &content)
                })
                .is_some(),
            _ => {
                rep.skip(
                    "blob-post-cancel",
                    "upload cancel is off in the suite's 1.1 configuration (OCI_API_BLOBS_UPLOAD_CANCEL)",
                );
                false
            }
        };
        if pushed {
            rep.check("blob-head", || cx.blob_head_exists(REPO1, &content));
            rep.check("blob-get", || cx.blob_get_exists(REPO1, &content));
        }
        cx.test_delete_blob(rep, REPO1, &content.digest);
        if test.starts_with("mount") && test != "mount missing" {
            cx.test_delete_blob(rep, REPO2, &content.digest);
        }
    }

    rep.section(format!("{a} blobs / range requests"));
    let ranged = blob(2048);
    if cx.push_blob_any(rep, REPO1, &ranged) {
        for (name, range, want) in [
            ("range 500-1499", "500-1499", RangeWant::Partial(500, 1499)),
            ("range 500-", "500-", RangeWant::Partial(500, 2047)),
            ("range -500", "-500", RangeWant::Partial(1548, 2047)),
            (
                "range 2000-5000",
                "2000-5000",
                RangeWant::Partial(2000, 2047),
            ),
            ("range 500-0", "500-0", RangeWant::NotSatisfiable),
            ("range 5000-10000", "5000-10000", RangeWant::NotSatisfiable),
        ] {
            rep.check(name, || cx.range_get(REPO1, &ranged, range, want));
        }
        cx.test_delete_blob(rep, REPO1, &ranged.digest);
    } else {
        // The runner counts this as a failure of its own.
        rep.check("range requests", || -> Result<(), Miss> {
            Err(Miss::Fail(format!(
                "cannot run: no upload API could push the {} blob to read (see above)",
                algo.name()
            )))
        });
    }

    for (name, bytes) in [("empty", &b""[..]), ("emptyJSON", &b"{}"[..])] {
        rep.section(format!("{a} blobs / {name}"));
        let content = Content::new(algo, MT_OCTET, bytes.to_vec());
        cx.push_blob_any(rep, REPO1, &content);
        rep.check("blob-head", || cx.blob_head_exists(REPO1, &content));
        rep.check("blob-get", || cx.blob_get_exists(REPO1, &content));
        cx.test_delete_blob(rep, REPO1, &content.digest);
    }

    let size = min_chunk.unwrap_or(0).max(CHUNK_MIN) * 3 - 5;
    for (test, api) in [
        ("bad digest post only", BlobApi::PostOnly),
        ("bad digest post+put", BlobApi::PostPut),
        ("bad digest chunked", BlobApi::Chunked),
        // The runner passes this one the same options as the one above.
        ("bad digest chunked and put chunk", BlobApi::Chunked),
        ("bad digest stream", BlobApi::Stream),
    ] {
        rep.section(format!("{a} blobs / {test}"));
        let good = blob(size);
        let mut corrupted = good.clone();
        corrupted.bytes.extend_from_slice(b" and then some");
        let opts = Opts {
            bad_digest: true,
            ..Opts::default()
        };
        cx.upload(rep, api, REPO1, &corrupted, opts, &mut None);
    }
}

// ---------------------------------------------------------------------------
// The runner's test data.
// ---------------------------------------------------------------------------

/// `(os, architecture)`.
type Platform = (&'static str, &'static str);

const AMD64: Platform = ("linux", "amd64");
const ARM64: Platform = ("linux", "arm64");

/// Options for generating content (the runner's `genWith…`); children of
/// an index are generated with their parent's options.
#[derive(Clone, Default)]
struct Gen {
    algo: Algo,
    annotations: Option<Map<String, Value>>,
    /// Add one annotation with a random key and value.
    annotation_unique: bool,
    artifact_type: Option<&'static str>,
    uncompressed: bool,
    config_bytes: Option<Vec<u8>>,
    config_media_type: Option<&'static str>,
    /// Add a field with a random name to configs, manifests and indexes.
    extra_field: bool,
    layer_bytes: Option<Vec<u8>>,
    layer_count: Option<usize>,
    layer_media_type: Option<&'static str>,
    platform: Option<Platform>,
    platforms: Option<Vec<Platform>>,
    /// Fill every descriptor's `data` field.
    data_field: bool,
    subject: Option<Value>,
    tag: Option<&'static str>,
}

impl Gen {
    fn tag(mut self, tag: &'static str) -> Self {
        self.tag = Some(tag);
        self
    }

    fn algo(mut self, algo: Algo) -> Self {
        self.algo = algo;
        self
    }

    fn annotations(mut self, pairs: &[(&str, &str)]) -> Self {
        let map = self.annotations.get_or_insert_with(Map::new);
        for (k, v) in pairs {
            map.insert((*k).to_owned(), json!(v));
        }
        self
    }

    fn unique_annotation(mut self) -> Self {
        self.annotation_unique = true;
        self
    }

    fn artifact(mut self, artifact_type: &'static str) -> Self {
        self.artifact_type = Some(artifact_type);
        self
    }

    /// An empty JSON config, as artifacts carry.
    fn empty_config(mut self) -> Self {
        self.config_media_type = Some(MT_EMPTY);
        self.config_bytes = Some(b"{}".to_vec());
        self
    }

    fn layers(mut self, count: usize, media_type: Option<&'static str>) -> Self {
        self.layer_count = Some(count);
        self.layer_media_type = media_type;
        self
    }

    fn platforms(mut self, platforms: &[Platform]) -> Self {
        self.platforms = Some(platforms.to_vec());
        self
    }

    fn subject(mut self, descriptor: Value) -> Self {
        self.subject = Some(descriptor);
        self
    }
}

/// What a referrers listing must hold for one referrer.
#[derive(Clone, Debug)]
struct Referrer {
    media_type: String,
    artifact_type: String,
    digest: String,
    size: usize,
    annotations: Map<String, Value>,
}

impl Referrer {
    fn matches(&self, d: &Value) -> bool {
        d["digest"].as_str() == Some(self.digest.as_str())
            && d["mediaType"].as_str() == Some(self.media_type.as_str())
            && d["size"].as_u64() == u64::try_from(self.size).ok()
            && d["artifactType"].as_str().unwrap_or("") == self.artifact_type
            && self
                .annotations
                .iter()
                .all(|(k, v)| d["annotations"].get(k) == Some(v))
    }
}

/// One kind of content: its blobs, its manifests in push order, its tags,
/// and the referrers it creates.
struct DataSet {
    name: &'static str,
    rng: Rng,
    descriptors: BTreeMap<String, Value>,
    blobs: Vec<Content>,
    manifests: Vec<Content>,
    tags: BTreeMap<String, String>,
    referrers: BTreeMap<String, Vec<Referrer>>,
    /// Manifests whose bytes no longer match their digest: the push must
    /// fail, and they are not read back.
    corrupted: BTreeSet<String>,
}

impl DataSet {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            rng: Rng::new(),
            descriptors: BTreeMap::new(),
            blobs: Vec::new(),
            manifests: Vec::new(),
            tags: BTreeMap::new(),
            referrers: BTreeMap::new(),
            corrupted: BTreeSet::new(),
        }
    }

    fn descriptor(&self, digest: &str) -> Value {
        self.descriptors[digest].clone()
    }

    fn manifest(&self, digest: &str) -> Option<&Content> {
        self.manifests.iter().find(|m| m.digest == digest)
    }

    /// Registers content (a blob, unless `manifest`) and its descriptor.
    fn register(&mut self, content: Content, g: &Gen, manifest: bool) -> String {
        let mut descriptor = content.descriptor();
        if g.data_field {
            descriptor["data"] = json!(base64(&content.bytes));
        }
        let digest = content.digest.clone();
        self.descriptors.insert(digest.clone(), descriptor);
        if manifest {
            self.manifests.push(content);
        } else if !self.blobs.iter().any(|b| b.digest == digest) {
            self.blobs.push(content);
        }
        digest
    }

    fn add_blob(&mut self, bytes: Vec<u8>, media_type: &str, g: &Gen) -> String {
        self.register(Content::new(g.algo, media_type, bytes), g, false)
    }

    fn extra_field(&mut self, object: &mut Map<String, Value>, g: &Gen) {
        if g.extra_field {
            let key = format!("org.berth.conformance.{}", self.rng.hex(12));
            object.insert(key, json!(self.rng.hex(16)));
        }
    }

    fn annotations(&mut self, g: &Gen) -> Option<Map<String, Value>> {
        let mut annotations = g.annotations.clone();
        if g.annotation_unique {
            let key = format!("org.berth.conformance.unique.{}", self.rng.hex(12));
            let value = json!(self.rng.hex(16));
            annotations.get_or_insert_with(Map::new).insert(key, value);
        }
        annotations
    }

    /// A tar of one small text file (gzip'd unless `g.uncompressed`);
    /// returns its digest and its uncompressed digest.
    fn gen_layer(&mut self, number: usize, g: &Gen) -> (String, String) {
        let text = format!(
            "Berth conformance file {number}; today's lucky number is {}\n",
            self.rng.next_u64()
        );
        let tar = oci::tar(&[TarEntry::File(
            format!("berth-conformance-{number}.txt"),
            text.into_bytes(),
        )]);
        let diff_id = g.algo.digest(&tar);
        let (bytes, media_type) = if g.uncompressed {
            (tar, MT_LAYER)
        } else {
            (oci::gzip_stored(&tar), MT_LAYER_GZIP)
        };
        (self.add_blob(bytes, media_type, g), diff_id)
    }

    fn gen_config(&mut self, platform: Platform, diff_ids: &[String], g: &Gen) -> String {
        let mut config = Map::new();
        config.insert("author".to_owned(), json!("Berth conformance"));
        config.insert("architecture".to_owned(), json!(platform.1));
        config.insert("os".to_owned(), json!(platform.0));
        config.insert(
            "rootfs".to_owned(),
            json!({ "type": "layers", "diff_ids": diff_ids }),
        );
        self.extra_field(&mut config, g);
        self.register(
            Content::json(g.algo, MT_CONFIG, &Value::Object(config)),
            g,
            false,
        )
    }

    fn gen_manifest(&mut self, config: Value, layers: Vec<Value>, g: &Gen) -> String {
        let mut m = Map::new();
        m.insert("schemaVersion".to_owned(), json!(2));
        m.insert("mediaType".to_owned(), json!(MT_MANIFEST));
        if let Some(t) = g.artifact_type {
            m.insert("artifactType".to_owned(), json!(t));
        }
        let config_type = config["mediaType"].as_str().unwrap_or("").to_owned();
        m.insert("config".to_owned(), config);
        m.insert("layers".to_owned(), Value::Array(layers));
        if let Some(subject) = &g.subject {
            m.insert("subject".to_owned(), subject.clone());
        }
        let annotations = self.annotations(g);
        if let Some(a) = &annotations {
            m.insert("annotations".to_owned(), Value::Object(a.clone()));
        }
        self.extra_field(&mut m, g);
        let content = Content::json(g.algo, MT_MANIFEST, &Value::Object(m));
        let artifact_type = g.artifact_type.map_or(config_type, str::to_owned);
        self.finish_manifest(content, artifact_type, annotations, g)
    }

    fn finish_manifest(
        &mut self,
        content: Content,
        artifact_type: String,
        annotations: Option<Map<String, Value>>,
        g: &Gen,
    ) -> String {
        let referrer = Referrer {
            media_type: content.media_type.clone(),
            artifact_type,
            digest: content.digest.clone(),
            size: content.len(),
            annotations: annotations.unwrap_or_default(),
        };
        let digest = self.register(content, g, true);
        if let Some(subject) = g.subject.as_ref().and_then(|s| s["digest"].as_str()) {
            self.referrers
                .entry(subject.to_owned())
                .or_default()
                .push(referrer);
        }
        if let Some(tag) = g.tag {
            self.tags.insert(tag.to_owned(), digest.clone());
        }
        digest
    }

    /// An image: layers (or artifact blobs), a config, a manifest.
    fn gen_manifest_full(&mut self, g: &Gen) -> String {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for number in 0..g.layer_count.unwrap_or(2) {
            match g.layer_media_type {
                None => {
                    let (digest, diff_id) = self.gen_layer(number, g);
                    layers.push(digest);
                    diff_ids.push(diff_id);
                }
                Some(t) if t.starts_with(MT_LAYER_PREFIX) => {
                    let (digest, diff_id) = self.gen_layer(number, g);
                    layers.push(digest);
                    diff_ids.push(diff_id);
                }
                Some(t) => {
                    let bytes = g
                        .layer_bytes
                        .clone()
                        .unwrap_or_else(|| self.rng.bytes(2048));
                    let digest = self.add_blob(bytes, t, g);
                    diff_ids.push(digest.clone());
                    layers.push(digest);
                }
            }
        }
        let config = match g.config_media_type {
            None | Some(MT_CONFIG) => self.gen_config(g.platform.unwrap_or(AMD64), &diff_ids, g),
            Some(t) => self.add_blob(g.config_bytes.clone().unwrap_or_default(), t, g),
        };
        let layers = layers.iter().map(|d| self.descriptor(d)).collect();
        let config = self.descriptor(&config);
        self.gen_manifest(config, layers, g)
    }

    fn gen_index(&mut self, children: &[(Option<Platform>, String)], g: &Gen) -> String {
        let mut index = Map::new();
        index.insert("schemaVersion".to_owned(), json!(2));
        index.insert("mediaType".to_owned(), json!(MT_INDEX));
        if let Some(t) = g.artifact_type {
            index.insert("artifactType".to_owned(), json!(t));
        }
        let manifests = children
            .iter()
            .map(|(platform, digest)| {
                let mut d = self.descriptor(digest);
                if let Some((os, architecture)) = platform {
                    d["platform"] = json!({ "architecture": architecture, "os": os });
                }
                d
            })
            .collect();
        index.insert("manifests".to_owned(), Value::Array(manifests));
        if let Some(subject) = &g.subject {
            index.insert("subject".to_owned(), subject.clone());
        }
        let annotations = self.annotations(g);
        if let Some(a) = &annotations {
            index.insert("annotations".to_owned(), Value::Object(a.clone()));
        }
        self.extra_field(&mut index, g);
        let content = Content::json(g.algo, MT_INDEX, &Value::Object(index));
        let artifact_type = g.artifact_type.unwrap_or("").to_owned();
        self.finish_manifest(content, artifact_type, annotations, g)
    }

    /// An index over one image per platform, each made with the same
    /// options.
    fn gen_index_full(&mut self, g: &Gen) -> String {
        let platforms = g.platforms.clone().unwrap_or_else(|| vec![AMD64, ARM64]);
        let children: Vec<(Option<Platform>, String)> = platforms
            .iter()
            .map(|p| {
                let child = Gen {
                    platform: Some(*p),
                    ..g.clone()
                };
                (Some(*p), self.gen_manifest_full(&child))
            })
            .collect();
        self.gen_index(&children, g)
    }
}

/// The runner's data sets, in its order (those off in its 1.1
/// configuration are `Err` with the reason).
fn data_sets() -> Vec<Result<DataSet, (&'static str, &'static str)>> {
    let mut sets = Vec::new();
    let mut one = |name: &'static str, build: &dyn Fn(&mut DataSet)| {
        let mut ds = DataSet::new(name);
        build(&mut ds);
        sets.push(Ok(ds));
    };
    one("image", &|ds| {
        ds.gen_manifest_full(&Gen::default().tag("image"));
    });
    one("image-uncompressed", &|ds| {
        let g = Gen {
            uncompressed: true,
            ..Gen::default().tag("image-uncompressed")
        };
        ds.gen_manifest_full(&g);
    });
    one("large-manifest", &|ds| {
        // 390 annotations of 10,000 bytes: a manifest of about 3.9 MB.
        let value = "A".repeat(10_000);
        let mut g = Gen::default().tag("large-manifest");
        let map = g.annotations.get_or_insert_with(Map::new);
        for i in 0..390 {
            map.insert(format!("large-annotation-{i}"), json!(value));
        }
        ds.gen_manifest_full(&g);
    });
    one("index", &|ds| {
        ds.gen_index_full(&Gen::default().tag("index").platforms(&[AMD64, ARM64]));
    });
    one("nested-index", &|ds| {
        let inner = Gen::default().platforms(&[AMD64, ARM64]);
        let first = ds.gen_index_full(&inner);
        let second = ds.gen_index_full(&inner);
        ds.gen_index(
            &[(None, first), (None, second)],
            &Gen::default().tag("index-of-index"),
        );
    });
    one("empty-index", &|ds| {
        ds.gen_index_full(&Gen::default().tag("index").platforms(&[]));
    });
    one("artifact", &|ds| {
        let g = Gen::default()
            .tag("artifact")
            .artifact(MT_ARTIFACT_ONE)
            .empty_config()
            .layers(1, Some(MT_ARTIFACT_ONE));
        ds.gen_manifest_full(&g);
    });
    one("artifact-index", &|ds| {
        let g = Gen::default()
            .tag("artifact-index")
            .platforms(&[AMD64, ARM64])
            .artifact(MT_ARTIFACT_ONE)
            .empty_config()
            .layers(1, Some(MT_ARTIFACT_ONE));
        ds.gen_index_full(&g);
    });
    one("artifact-without-layers", &|ds| {
        let g = Gen {
            layer_bytes: Some(b"{}".to_vec()),
            ..Gen::default()
                .tag("artifact-without-layers")
                .artifact(MT_ARTIFACT_ONE)
                .empty_config()
                .layers(1, Some(MT_EMPTY))
        };
        ds.gen_manifest_full(&g);
    });
    one("artifacts-with-subject", &|ds| {
        let subject = ds.gen_manifest_full(&Gen::default().tag("image"));
        let subject = ds.descriptor(&subject);
        ds.gen_manifest_full(&Gen::default().subject(subject.clone()));
        for (artifact_type, layer_type, tag) in [
            (MT_ARTIFACT_ONE, MT_ARTIFACT_ONE, "tagged-artifact1"),
            (MT_ARTIFACT_TWO, MT_OCTET, "tagged-artifact2"),
        ] {
            let g = Gen::default()
                .artifact(artifact_type)
                .annotations(&[("org.berth.conformance", "a referrer")])
                .unique_annotation()
                .empty_config()
                .layers(1, Some(layer_type))
                .subject(subject.clone())
                .tag(tag);
            ds.gen_manifest_full(&g);
        }
    });
    one("index-with-subject", &|ds| {
        let subject = ds.gen_index_full(&Gen::default().tag("index"));
        let subject = ds.descriptor(&subject);
        let g = Gen::default()
            .artifact(MT_ARTIFACT_ONE)
            .annotations(&[("org.berth.conformance", "a referrer")])
            .unique_annotation()
            .empty_config()
            .layers(1, Some(MT_ARTIFACT_ONE))
            .subject(subject)
            .tag("tagged-artifact");
        ds.gen_index_full(&g);
    });
    one("missing-subject", &|ds| {
        let subject = json!({
            "mediaType": MT_MANIFEST,
            "size": 123,
            "digest": Algo::Sha256.digest(b"berth conformance: content nobody pushes"),
        });
        let g = Gen::default()
            .artifact(MT_ARTIFACT_ONE)
            .annotations(&[("org.berth.conformance", "a referrer")])
            .unique_annotation()
            .empty_config()
            .layers(1, Some(MT_ARTIFACT_ONE))
            .subject(subject)
            .tag("tagged-artifact");
        ds.gen_manifest_full(&g);
    });
    one("data-field", &|ds| {
        let g = Gen {
            data_field: true,
            ..Gen::default().tag("data-field")
        };
        ds.gen_manifest_full(&g);
    });
    one("non-distributable-layers", &|ds| {
        // Two layers that live elsewhere (never pushed), one ordinary.
        let g = Gen::default();
        let mut foreign = Vec::new();
        let mut diff_ids = Vec::new();
        for (media_type, size) in [(MT_LAYER_ND_GZIP, 123_456), (MT_LAYER_ND, 12_345)] {
            let digest = Algo::Sha256.digest(&ds.rng.bytes(256));
            let hex = digest.trim_start_matches("sha256:");
            foreign.push(json!({
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "urls": [format!("https://example.com/berth-conformance/blobs/{hex}")],
            }));
            diff_ids.push(Algo::Sha256.digest(&ds.rng.bytes(256)));
        }
        let (layer, diff_id) = ds.gen_layer(1, &g);
        diff_ids.push(diff_id);
        foreign.push(ds.descriptor(&layer));
        let config = ds.gen_config(AMD64, &diff_ids, &g);
        let config = ds.descriptor(&config);
        ds.gen_manifest(
            config,
            foreign,
            &Gen::default().tag("non-distributable-image"),
        );
    });
    one("custom-fields", &|ds| {
        let g = Gen {
            extra_field: true,
            ..Gen::default()
                .tag("custom-fields")
                .platforms(&[AMD64, ARM64])
        };
        ds.gen_index_full(&g);
    });
    one("no-layers", &|ds| {
        ds.gen_manifest_full(&Gen::default().tag("no-layers").layers(0, None));
    });
    sets.push(Err((
        "sparse",
        "sparse manifests are off in the suite's default configuration (OCI_DATA_SPARSE)",
    )));
    let mut one = |name: &'static str, build: &dyn Fn(&mut DataSet)| {
        let mut ds = DataSet::new(name);
        build(&mut ds);
        sets.push(Ok(ds));
    };
    one("sha512", &|ds| {
        // Pushed by digest only: a tag would name the canonical sha256.
        ds.gen_index_full(&Gen::default().algo(Algo::Sha512));
    });
    for name in ["tag-param-sha256", "tag-param-sha512"] {
        sets.push(Err((
            name,
            "tag parameters on manifest PUTs are off in the suite's 1.1 configuration \
             (OCI_API_MANIFESTS_TAG_PARAM, a 1.1+dev feature)",
        )));
    }
    let mut ds = DataSet::new("bad-digest-image");
    let digest = ds.gen_manifest_full(&Gen::default());
    if let Some(m) = ds.manifests.iter_mut().find(|m| m.digest == digest) {
        // Two spaces more: the bytes no longer match the digest.
        m.bytes.extend_from_slice(b"  ");
    }
    ds.corrupted.insert(digest);
    sets.push(Ok(ds));
    sets
}

/// The runner's flow for one data set: push, list, HEAD, GET, referrers,
/// delete.
fn runner_data_set(rep: &mut Report, cx: &Cx<'_>, repo: &str, ds: &DataSet) {
    let name = ds.name;
    rep.section(format!("{name} / push"));
    for blob in &ds.blobs {
        cx.push_blob_any(rep, repo, blob);
    }
    for m in &ds.manifests {
        let bad = ds.corrupted.contains(&m.digest);
        rep.check("manifest-by-digest", || {
            cx.manifest_put(repo, &m.digest, m, bad)
        });
    }
    let mut pushed_tags = BTreeSet::new();
    for (tag, digest) in &ds.tags {
        let Some(m) = ds.manifest(digest) else {
            continue;
        };
        let bad = ds.corrupted.contains(digest);
        if rep
            .check("manifest-by-tag", || cx.manifest_put(repo, tag, m, bad))
            .is_some()
        {
            pushed_tags.insert(tag.clone());
        }
    }

    rep.section(format!("{name} / tag-list"));
    rep.check("tag-list", || {
        let tags = cx.tag_list(repo, None)?;
        let mut problems = Vec::new();
        for tag in ds.tags.keys() {
            if !tags.contains(tag) {
                problems.push(format!("tag {tag:?} is missing from the listing"));
            }
        }
        if tags.len() >= 2 {
            let mut sorted = tags.clone();
            sorted.sort();
            let end = sorted.len() / 2;
            let last = &sorted[end - 1];
            let after = cx.tag_list(repo, Some(last))?;
            for tag in &sorted[..end] {
                if after.contains(tag) {
                    problems.push(format!("tag {tag:?} listed with last={last:?}"));
                }
            }
            for tag in &sorted[end..] {
                if !after.contains(tag) {
                    problems.push(format!("tag {tag:?} missing with last={last:?}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Miss::Fail(format!(
                "expected: every tag pushed, and `last` to page after it\n{}\nlisting: {tags:?}",
                problems.join("\n")
            )))
        }
    });

    let readable = |digest: &String| !ds.corrupted.contains(digest);
    rep.section(format!("{name} / head"));
    for (tag, digest) in ds.tags.iter().filter(|(_, d)| readable(d)) {
        if let Some(m) = ds.manifest(digest) {
            rep.check("manifest-head-by-tag", || {
                cx.manifest_head_exists(repo, tag, m)
            });
        }
    }
    for m in ds.manifests.iter().filter(|m| readable(&m.digest)) {
        rep.check("manifest-head-by-digest", || {
            cx.manifest_head_exists(repo, &m.digest, m)
        });
    }
    for blob in &ds.blobs {
        rep.check("blob-head", || cx.blob_head_exists(repo, blob));
    }

    rep.section(format!("{name} / pull"));
    for (tag, digest) in ds.tags.iter().filter(|(_, d)| readable(d)) {
        if let Some(m) = ds.manifest(digest) {
            rep.check("manifest-by-tag", || cx.manifest_get_exists(repo, tag, m));
        }
    }
    for m in ds.manifests.iter().filter(|m| readable(&m.digest)) {
        rep.check("manifest-by-digest", || {
            cx.manifest_get_exists(repo, &m.digest, m)
        });
    }
    for blob in &ds.blobs {
        rep.check("blob-get", || cx.blob_get_exists(repo, blob));
    }

    if !ds.referrers.is_empty() {
        rep.section(format!("{name} / referrers"));
        if cx.referrers_supported() {
            rep.check("referrers", || runner_referrers(cx, repo, ds));
        } else {
            rep.skip("referrers", &format!("{} has no referrers API", cx.target));
        }
    }

    rep.section(format!("{name} / delete"));
    for tag in &pushed_tags {
        cx.test_delete_manifest(rep, "tag-delete", repo, tag);
    }
    for m in ds.manifests.iter().rev() {
        cx.test_delete_manifest(rep, "manifest-delete", repo, &m.digest);
    }
    for blob in &ds.blobs {
        cx.test_delete_blob(rep, repo, &blob.digest);
    }
}

/// Every subject's referrers listed, then listed per artifact type.
fn runner_referrers(cx: &Cx<'_>, repo: &str, ds: &DataSet) -> Result<(), Miss> {
    let mut problems = Vec::new();
    let mut unfiltered = Vec::new();
    for (subject, expected) in &ds.referrers {
        let (ex, listed) = cx.referrers(repo, subject, None)?;
        for goal in expected {
            if !listed.iter().any(|d| goal.matches(d)) {
                problems.push(format!(
                    "referrer {} (artifactType {:?}) missing or different in:\n{}",
                    goal.digest,
                    goal.artifact_type,
                    ex.describe()
                ));
            }
        }
        let types: BTreeSet<&str> = expected.iter().map(|g| g.artifact_type.as_str()).collect();
        for artifact_type in types {
            let (ex, listed) = cx.referrers(repo, subject, Some(artifact_type))?;
            let filtered = ex
                .resp
                .header_values("OCI-Filters-Applied")
                .iter()
                .flat_map(|v| v.split(','))
                .any(|f| f.trim() == "artifactType");
            if !filtered {
                unfiltered.push(ex.req_line().to_owned());
            }
            for goal in expected {
                if (!filtered || goal.artifact_type == artifact_type)
                    && !listed.iter().any(|d| goal.matches(d))
                {
                    problems.push(format!(
                        "referrer {} missing with artifactType={artifact_type:?} in:\n{}",
                        goal.digest,
                        ex.describe()
                    ));
                }
            }
            if filtered {
                for d in &listed {
                    if d["artifactType"].as_str().unwrap_or("") != artifact_type {
                        problems.push(format!(
                            "descriptor {d} listed with artifactType={artifact_type:?} in:\n{}",
                            ex.describe()
                        ));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Miss::Fail(format!(
            "expected: every referrer listed for its subject (and only matching ones when filtered)\n{}",
            problems.join("\n")
        )));
    }
    if !unfiltered.is_empty() {
        return Err(Miss::Unsupported(format!(
            "no `OCI-Filters-Applied: artifactType` on {}",
            unfiltered.join(", ")
        )));
    }
    Ok(())
}

fn runner_data_types(rep: &mut Report, cx: &Cx<'_>) {
    for set in data_sets() {
        match set {
            Ok(ds) => runner_data_set(rep, cx, REPO1, &ds),
            Err((name, why)) => {
                rep.section(name);
                rep.skip("data set", why);
            }
        }
    }
}

fn runner_manifest_errors(rep: &mut Report, cx: &Cx<'_>) {
    let mut rng = Rng::new();
    rep.section("missing-manifest");
    let digest = Algo::Sha256.digest(&rng.bytes(1024));
    rep.check("by-digest", || {
        cx.manifest_req("GET", REPO1, &digest)
            .send()?
            .want_status(&[404])
    });
    let tag = format!("missing-{}", rng.hex(20));
    rep.check("by-tag", || {
        cx.manifest_req("GET", REPO1, &tag)
            .send()?
            .want_status(&[404])
    });

    rep.section("invalid-digest-format");
    let mut ds = DataSet::new("invalid-manifest-digest");
    let digest = ds.gen_manifest_full(&Gen::default().layers(1, None));
    for blob in &ds.blobs {
        cx.push_blob_any(rep, REPO1, blob);
    }
    let bad_reference = "sha256:baddigeststring";
    if let Some(m) = ds.manifest(&digest) {
        rep.check("manifest-put", || {
            cx.manifest_put(REPO1, bad_reference, m, true)
        });
    }
    rep.check("manifest-get", || {
        cx.manifest_req("GET", REPO1, bad_reference)
            .send()?
            .want_status(&[404, 400])
    });
    cx.test_delete_manifest(rep, "manifest-delete", REPO1, &digest);
    for blob in &ds.blobs {
        cx.test_delete_blob(rep, REPO1, &blob.digest);
    }
}
