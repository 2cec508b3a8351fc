//! Typed configuration. Every setting has an environment variable; the
//! local binary adds flags with the same names (`--data-dir` /
//! `BERTH_DATA_DIR`), the Lambda functions read the environment only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where metadata and blobs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Embedded: redb metadata and filesystem blobs under the data dir.
    #[default]
    Local,
    /// DynamoDB, S3 and SQS (or an emulator via `AWS_ENDPOINT_URL`).
    Aws,
}

impl FromStr for Backend {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Self::Local),
            "aws" => Ok(Self::Aws),
            other => Err(ConfigError::Invalid { name: "BERTH_BACKEND", value: other.to_owned(), expected: "local or aws" }),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(ConfigError::Invalid { name: "BERTH_LOG_FORMAT", value: other.to_owned(), expected: "text or json" }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid { name: &'static str, value: String, expected: &'static str },
}

/// The local server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub backend: Backend,
    /// The URL clients reach Berth at, used in `Location` headers and token
    /// realms. Without it, URLs are built from the request's `Host`.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
pub const DEFAULT_DATA_DIR: &str = "./berth-data";

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            backend: Backend::Local,
            public_url: None,
            log_format: LogFormat::Text,
        }
    }
}

/// Normalises a public URL: no trailing slash, must be http(s).
pub fn parse_public_url(s: &str) -> Result<String, ConfigError> {
    let t = s.trim_end_matches('/');
    if (t.starts_with("http://") || t.starts_with("https://")) && t.len() > "https://".len() {
        Ok(t.to_owned())
    } else {
        Err(ConfigError::Invalid { name: "BERTH_PUBLIC_URL", value: s.to_owned(), expected: "an http:// or https:// URL" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_enums_and_urls() {
        assert_eq!("aws".parse::<Backend>(), Ok(Backend::Aws));
        assert!("s3".parse::<Backend>().is_err());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(parse_public_url("https://reg.example.com/").as_deref(), Ok("https://reg.example.com"));
        assert!(parse_public_url("reg.example.com").is_err());
    }
}
