//! Raw HTTP requests through `curl`, for checks no container client makes.
//!
//! Requests authenticate by themselves with the Docker token flow
//! ([`crate::auth`]): as the registry's admin by default, or as set with
//! [`Request::auth`].

use std::fmt;
use std::time::Duration;

use crate::Cmd;
pub use crate::auth::{Auth, Challenge, Credentials};

/// An HTTP request to be sent with `curl`.
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    follow_redirects: bool,
    auth: Auth,
}

pub fn get(url: &str) -> Request {
    Request::new("GET", url)
}

pub fn head(url: &str) -> Request {
    Request::new("HEAD", url)
}

pub fn put(url: &str) -> Request {
    Request::new("PUT", url)
}

pub fn post(url: &str) -> Request {
    Request::new("POST", url)
}

pub fn delete(url: &str) -> Request {
    Request::new("DELETE", url)
}

pub fn patch(url: &str) -> Request {
    Request::new("PATCH", url)
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            follow_redirects: false,
            auth: Auth::Default,
        }
    }

    /// Whom the request authenticates as (default: the credentials
    /// registered for its host, see [`crate::auth`]).
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// As `user` with `password`, through the token flow.
    #[must_use]
    pub fn basic(self, user: &str, password: &str) -> Self {
        self.auth(Auth::basic(user, password))
    }

    /// Without any credentials or token: what an anonymous client sees first.
    #[must_use]
    pub fn raw(self) -> Self {
        self.auth(Auth::Raw)
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Follow redirects (a registry may answer blob GETs with a 307 to storage).
    #[must_use]
    pub fn follow(mut self) -> Self {
        self.follow_redirects = true;
        self
    }

    /// Sends the request; panics (with curl's output) if curl fails.
    pub fn send(self) -> Response {
        match self.exchange() {
            Ok((response, None)) => response,
            Ok((_, Some(failure))) | Err(failure) => panic!("{failure}"),
        }
    }

    /// Sends the request; `Err` (with curl's output) if no response came,
    /// e.g. the connection was refused or timed out, so a caller can record
    /// the failure and go on. A response whose body ends before its
    /// `Content-Length` (curl exit 18) is still a response, as it is for a
    /// client that never reads the body (the body is what arrived).
    pub fn try_send(self) -> Result<Response, String> {
        match self.exchange()? {
            (response, None) => Ok(response),
            (response, Some(_)) if response.body_cut_short => Ok(response),
            (_, Some(failure)) => Err(failure),
        }
    }

    /// The response, and curl's failure if it exited non-zero; `Err` if
    /// curl printed no status code. With a token flow: first with the
    /// cached token (if any), and once more with a fresh one after a Bearer
    /// challenge.
    fn exchange(self) -> Result<(Response, Option<String>), String> {
        let Some(who) = crate::auth::resolve(&self.auth, &self.url) else {
            return self.exchange_once(None);
        };
        let cached = crate::auth::cached(&self.url, who.as_ref());
        let first = self.exchange_once(cached.as_deref())?;
        match crate::auth::renew(&self.url, who.as_ref(), &first.0) {
            Some(token) => self.exchange_once(Some(&token)),
            None => Ok(first),
        }
    }

    fn exchange_once(&self, bearer: Option<&str>) -> Result<(Response, Option<String>), String> {
        let dir = crate::tempdir("berth-e2e-curl.");
        let head_file = dir.path().join("headers");
        let body_file = dir.path().join("body");
        let mut cmd = Cmd::new("curl")
            .args(["-sS", "--noproxy", "*", "--max-time", "60"])
            .arg("-D")
            .arg(&head_file)
            .arg("-o")
            .arg(&body_file)
            .args(["-w", "%{http_code}"])
            .timeout(Duration::from_secs(70));
        if self.method == "HEAD" {
            cmd = cmd.arg("--head");
        } else {
            cmd = cmd.args(["-X", self.method.as_str()]);
        }
        if self.follow_redirects {
            cmd = cmd.arg("-L");
        }
        let has_content_type = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (name, value) in &self.headers {
            cmd = cmd.arg("-H").arg(format!("{name}: {value}"));
        }
        if let Some(token) = bearer {
            cmd = cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        if let Some(body) = &self.body {
            let upload = dir.path().join("upload");
            std::fs::write(&upload, body).expect("cannot write the request body file");
            // curl would otherwise add a form content type and Expect: 100-continue.
            if !has_content_type {
                cmd = cmd.args(["-H", "Content-Type: application/octet-stream"]);
            }
            cmd = cmd
                .args(["-H", "Expect:"])
                .arg("--data-binary")
                .arg(format!("@{}", upload.display()));
        } else if matches!(self.method.as_str(), "PUT" | "POST" | "PATCH") {
            cmd = cmd.args(["-H", "Content-Length: 0"]);
        }
        cmd = cmd.arg(&self.url);
        let command = cmd.display();
        let out = cmd.run();
        let failure = (!out.status.success()).then(|| format!("command failed:\n{out}"));
        let status: u16 = out
            .stdout_str()
            .trim()
            .parse()
            .map_err(|e| format!("curl printed no status code ({e}):\n{out}"))?;
        let head_text = std::fs::read_to_string(&head_file).unwrap_or_default();
        let body = std::fs::read(&body_file).unwrap_or_default();
        let response = Response {
            command,
            status,
            headers: parse_last_header_block(&head_text),
            body,
            // curl: "(18) Partial file", a body shorter than announced.
            body_cut_short: status != 0 && out.status.code() == Some(18),
        };
        Ok((response, failure))
    }
}

/// The headers of the final response in a `curl -D` dump (which also holds
/// interim `100 Continue` and redirect responses).
fn parse_last_header_block(text: &str) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            headers.clear();
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// What the registry answered.
pub struct Response {
    pub command: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended before its `Content-Length` (only [`Request::try_send`]
    /// returns such a response).
    pub body_cut_short: bool,
}

impl Response {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (case-insensitive name), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the full response if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}):\n{self}"))
    }

    /// Panics with the full response unless the status is `expected`.
    pub fn expect_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status, expected,
            "expected HTTP {expected}, got:\n{self}"
        );
        self
    }

    /// `errors[0].code` of an OCI error body, if there is one.
    pub fn error_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        json.get("errors")?
            .get(0)?
            .get("code")?
            .as_str()
            .map(str::to_owned)
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", crate::cmd::tail(&self.body))
    }
}
