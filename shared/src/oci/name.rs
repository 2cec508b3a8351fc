//! Repository names, tags and references.
//!
//! Grammar from the distribution spec:
//! `name = path-component ("/" path-component)*`,
//! `path-component = [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`,
//! `tag = [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, parse_digest};

/// Longest repository name accepted (Distribution's limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag accepted.
pub const MAX_TAG_LEN: usize = 128;

/// Why a name, tag or reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name is empty")]
    EmptyName,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    NameTooLong,
    #[error("repository name component {0:?} does not match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*")]
    BadComponent(String),
    #[error("tag {0:?} does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    BadTag(String),
    #[error("invalid digest {0:?}")]
    BadDigest(String),
}

/// A validated repository name such as `library/team/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !is_alnum(first) || !is_alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            if !matches!(b[i], b'.' | b'_' | b'-') {
                return false;
            }
            i += 1;
        }
        let sep = &b[start..i];
        let ok = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::EmptyName);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        if let Some(bad) = s.split('/').find(|c| !valid_component(c)) {
            return Err(NameError::BadComponent(bad.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= MAX_TAG_LEN
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::BadTag(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            parse_digest(s)
                .map(Reference::Digest)
                .map_err(|_| NameError::BadDigest(s.to_owned()))
        } else {
            s.parse().map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_spec_names() {
        for n in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e",
            "my-app",
            "my--app",
            "my__app",
            "my_app.v2",
            "0",
            "team/app-1.2_x",
        ] {
            assert!(n.parse::<RepoName>().is_ok(), "{n}");
        }
    }

    #[test]
    fn refuses_bad_names() {
        for n in [
            "", "A", "a/", "/a", "a//b", "-a", "a-", "a..b", "a___b", "a._b", "a b", "a%2fb", "ä",
        ] {
            assert!(n.parse::<RepoName>().is_err(), "{n:?}");
        }
        assert_eq!(
            "a".repeat(256).parse::<RepoName>(),
            Err(NameError::NameTooLong)
        );
    }

    #[test]
    fn tags() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_x.Y-1".parse::<Tag>().is_ok());
        assert!("x".repeat(128).parse::<Tag>().is_ok());
        assert!("x".repeat(129).parse::<Tag>().is_err());
        assert!(".x".parse::<Tag>().is_err());
        assert!("-x".parse::<Tag>().is_err());
        assert!("".parse::<Tag>().is_err());
        assert!("a/b".parse::<Tag>().is_err());
    }

    #[test]
    fn references() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!("sha256:short".parse::<Reference>().is_err());
        assert!(
            format!("sha256:{}", "A".repeat(64))
                .parse::<Reference>()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn name_parser_never_panics(s in "\\PC{0,300}") {
            let _ = s.parse::<RepoName>();
            let _ = s.parse::<Reference>();
        }

        #[test]
        fn generated_valid_names_parse(
            parts in proptest::collection::vec("[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,3}", 1..5)
        ) {
            let n = parts.join("/");
            prop_assume!(n.len() <= MAX_NAME_LEN);
            prop_assert_eq!(n.parse::<RepoName>().map(|r| r.to_string()), Ok(n.clone()));
        }

        #[test]
        fn valid_names_are_exactly_the_grammar(s in "[a-z0-9._/-]{1,20}") {
            // Cross-check the hand-written parser against a direct reading of the grammar.
            let by_grammar = s.split('/').all(grammar_component);
            prop_assert_eq!(s.parse::<RepoName>().is_ok(), by_grammar);
        }
    }

    /// Reference reading of the component grammar, via a tiny state machine
    /// over runs of alphanumerics and separators.
    fn grammar_component(c: &str) -> bool {
        let mut runs: Vec<(bool, String)> = Vec::new();
        for ch in c.chars() {
            let alnum = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            match runs.last_mut() {
                Some((a, s)) if *a == alnum => s.push(ch),
                _ => runs.push((alnum, ch.to_string())),
            }
        }
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return false;
        };
        first.0
            && last.0
            && runs
                .iter()
                .filter(|(a, _)| !a)
                .all(|(_, s)| s == "." || s == "_" || s == "__" || s.chars().all(|c| c == '-'))
    }
}
