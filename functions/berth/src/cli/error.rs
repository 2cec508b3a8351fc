//! What can go wrong, and how it is told on stderr.

use serde_json::Value;

/// Longest piece of a non-JSON error body that is shown.
const MAX_BODY_SHOWN: usize = 200;

/// One entry of Harbor's `{"errors":[{"code","message"}]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiErrorItem {
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

#[derive(Debug)]
pub(crate) enum CliError {
    /// The server answered with an error status.
    Api {
        status: u16,
        items: Vec<ApiErrorItem>,
    },
    /// The server could not be reached, or the exchange broke off.
    Transport(String),
    /// Something on this side: bad arguments, no password, a name that is
    /// not found, an answer that is not what the API defines.
    Local(String),
}

impl CliError {
    /// The error from a non-2xx answer with `body`.
    pub(crate) fn from_response(status: u16, reason: &str, body: &[u8]) -> Self {
        let mut items = parse_error_body(body);
        if items.is_empty() {
            let text = String::from_utf8_lossy(body);
            let text = sanitize(text.trim());
            let message = if text.is_empty() {
                if reason.is_empty() {
                    "request failed".to_owned()
                } else {
                    reason.to_owned()
                }
            } else {
                truncate(&text, MAX_BODY_SHOWN)
            };
            items.push(ApiErrorItem {
                code: None,
                message,
            });
        }
        Self::Api { status, items }
    }

    /// The lines to print, each after `berth: `:
    /// `<message> (<code>, HTTP <status>)` per API error.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            Self::Api { status, items } => items
                .iter()
                .map(|item| match &item.code {
                    Some(code) => format!("{} ({code}, HTTP {status})", item.message),
                    None => format!("{} (HTTP {status})", item.message),
                })
                .collect(),
            Self::Transport(m) | Self::Local(m) => vec![m.clone()],
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines().join("; "))
    }
}

impl std::error::Error for CliError {}

/// The entries of a Harbor error body, `{"errors":[{"code","message"}]}`
/// (a bare `{"code","message"}` is taken too). Empty when the body is not
/// one.
pub(crate) fn parse_error_body(body: &[u8]) -> Vec<ApiErrorItem> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let item = |v: &Value| -> Option<ApiErrorItem> {
        let code = v
            .get("code")
            .and_then(|c| match c {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|c| !c.is_empty())
            .map(|c| sanitize(&c));
        let message = v
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(sanitize);
        match (code, message) {
            (None, None) => None,
            (code, Some(message)) => Some(ApiErrorItem { code, message }),
            (Some(code), None) => Some(ApiErrorItem {
                message: code.to_lowercase().replace('_', " "),
                code: Some(code),
            }),
        }
    };
    match value.get("errors") {
        Some(Value::Array(errors)) => errors.iter().filter_map(item).collect(),
        _ => item(&value).into_iter().collect(),
    }
}

/// Text from the server, made safe to print on a terminal: control
/// characters (escape sequences, newlines) become spaces.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_errors_print_message_code_and_status() {
        let body = br#"{"errors":[{"code":"NOT_FOUND","message":"project p not found"}]}"#;
        let e = CliError::from_response(404, "Not Found", body);
        assert_eq!(e.lines(), ["project p not found (NOT_FOUND, HTTP 404)"]);
        assert!(matches!(e, CliError::Api { status: 404, .. }));
    }

    #[test]
    fn every_error_of_the_body_is_printed() {
        let body = br#"{"errors":[{"code":"A","message":"one"},{"code":"B","message":"two"}]}"#;
        let e = CliError::from_response(400, "Bad Request", body);
        assert_eq!(e.lines(), ["one (A, HTTP 400)", "two (B, HTTP 400)"]);
    }

    #[test]
    fn partial_and_foreign_bodies_still_say_something() {
        let e = CliError::from_response(
            401,
            "Unauthorized",
            br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
        );
        assert_eq!(e.lines(), ["unauthorized (UNAUTHORIZED, HTTP 401)"]);
        let e = CliError::from_response(
            409,
            "Conflict",
            br#"{"code":"CONFLICT","message":"exists"}"#,
        );
        assert_eq!(e.lines(), ["exists (CONFLICT, HTTP 409)"]);
        let e = CliError::from_response(502, "Bad Gateway", b"<html>bad\ngateway</html>\n");
        assert_eq!(e.lines(), ["<html>bad gateway</html> (HTTP 502)"]);
        let e = CliError::from_response(404, "Not Found", b"");
        assert_eq!(e.lines(), ["Not Found (HTTP 404)"]);
        let e = CliError::from_response(500, "", br#"{"errors":[]}"#);
        assert_eq!(e.lines(), ["{\"errors\":[]} (HTTP 500)"]);
    }

    #[test]
    fn long_foreign_bodies_are_cut() {
        let body = "x".repeat(1000);
        let e = CliError::from_response(500, "Internal Server Error", body.as_bytes());
        let line = &e.lines()[0];
        assert!(line.starts_with(&"x".repeat(MAX_BODY_SHOWN)));
        assert!(line.contains('…'));
        assert!(line.len() < 300);
    }

    #[test]
    fn terminal_escapes_from_the_server_are_neutralised() {
        let body = br#"{"errors":[{"code":"X","message":"a\u001b[31mred\nb"}]}"#;
        let e = CliError::from_response(400, "Bad Request", body);
        assert_eq!(e.lines(), ["a [31mred b (X, HTTP 400)"]);
    }
}
