//! Registry authentication as clients do it: the `WWW-Authenticate`
//! challenge of a `401`, and the Docker token protocol
//! ([distribution's token spec](https://distribution.github.io/distribution/spec/auth/token/)).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Token auth: ask `realm` for a token for `service` and the scopes.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// HTTP Basic credentials on every request.
    Basic,
}

/// Parses a `WWW-Authenticate` value: `Bearer realm="…",service="…",
/// scope="…"` (parameters in any order, quoted or not, commas inside
/// quotes kept) or `Basic realm="…"`. `None` for other schemes or a
/// Bearer challenge without a realm.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm").filter(|r| !r.is_empty())?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `k="v", k2=v2` → map (keys lower-cased; the first of repeated keys).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                val.push(n);
                            }
                        }
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
                val = val.trim().to_owned();
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.entry(key).or_insert(val);
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// A token endpoint's answer (`token`, or OAuth2's `access_token`).
#[derive(Debug, Deserialize)]
pub(super) struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenAnswer {
    /// The token and how long to keep it: its `expires_in` (the spec's
    /// default 60 s when absent) less a margin for the request's flight.
    pub(super) fn into_token(self) -> Option<(String, Duration)> {
        let t = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let secs = self.expires_in.unwrap_or(60).max(1);
        let keep = Duration::from_secs(secs.saturating_sub(secs.min(10) / 2).max(1));
        Some((t, keep))
    }
}

/// Tokens by the scopes they were asked for, until they expire.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    tokens: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    pub(super) fn get(&self, scopes: &str) -> Option<String> {
        self.tokens
            .get(scopes)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    pub(super) fn put(&mut self, scopes: &str, token: String, keep: Duration) {
        let now = Instant::now();
        self.tokens.retain(|_, (_, until)| *until > now);
        self.tokens.insert(scopes.to_owned(), (token, now + keep));
    }

    pub(super) fn forget(&mut self, scopes: &str) {
        self.tokens.remove(scopes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            })
        );
        // Any order, spaces, unquoted values, extra parameters, case.
        let c = parse_challenge(
            r#"bearer  service=harbor-registry , error="invalid_token", realm=http://127.0.0.1:5000/service/token"#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5000/service/token".into(),
                service: Some("harbor-registry".into()),
                scope: None,
            })
        );
        let c = parse_challenge(r#"Bearer realm="a\"b",scope="""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: Some(String::new()),
            })
        );
    }

    #[test]
    fn other_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge("Bearer"), None);
    }

    #[test]
    fn tokens_and_their_lifetimes() {
        let a: TokenAnswer =
            serde_json::from_str(r#"{"token":"t1","expires_in":300,"issued_at":"x"}"#).unwrap();
        let (t, keep) = a.into_token().unwrap();
        assert_eq!(t, "t1");
        assert_eq!(keep, Duration::from_secs(295));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t2"}"#).unwrap();
        assert_eq!(a.into_token().unwrap().0, "t2");
        let a: TokenAnswer = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(a.into_token().is_none());
        let mut cache = TokenCache::default();
        cache.put("s", "tok".into(), Duration::from_secs(60));
        assert_eq!(cache.get("s").as_deref(), Some("tok"));
        assert_eq!(cache.get("other"), None);
        cache.forget("s");
        assert_eq!(cache.get("s"), None);
    }

    #[test]
    fn params_never_panic_on_junk() {
        for s in [
            "Bearer =,,,=",
            "Bearer realm=\"unterminated",
            "Bearer ,realm",
            "Bearer \\",
        ] {
            let _ = parse_challenge(s);
        }
    }
}
