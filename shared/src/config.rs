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
            other => Err(ConfigError::Invalid {
                name: "BERTH_BACKEND",
                value: other.to_owned(),
                expected: "local or aws",
            }),
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
            other => Err(ConfigError::Invalid {
                name: "BERTH_LOG_FORMAT",
                value: other.to_owned(),
                expected: "text or json",
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("upload settings: {0}")]
    Uploads(String),
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
        Err(ConfigError::Invalid {
            name: "BERTH_PUBLIC_URL",
            value: s.to_owned(),
            expected: "an http:// or https:// URL",
        })
    }
}

/// Names of the AWS resources, from the environment (the variable names
/// are defined once in `infra/resources.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `METADATA_TABLE`
    pub table: String,
    /// `BLOB_BUCKET`
    pub bucket: String,
    /// `WEBHOOK_QUEUE_URL`, `REPLICATION_QUEUE_URL`, `GC_QUEUE_URL` (optional)
    pub webhook_queue: Option<String>,
    pub replication_queue: Option<String>,
    pub gc_queue: Option<String>,
    /// `WEBHOOK_DLQ_URL`: the webhook queue's dead-letter queue, where a
    /// delivery goes after its last retry (optional).
    pub webhook_dlq: Option<String>,
    /// Path-style S3 addressing: on by default when an endpoint override
    /// (`AWS_ENDPOINT_URL[_S3]`) points at an emulator; `BERTH_S3_PATH_STYLE`
    /// overrides.
    pub s3_path_style: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be set for the aws backend")]
pub struct MissingVar(pub &'static str);

impl AwsSettings {
    pub fn from_env() -> Result<Self, MissingVar> {
        let var = |n: &'static str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let required = |n: &'static str| var(n).ok_or(MissingVar(n));
        let overridden = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| var(v).is_some());
        Ok(Self {
            table: required("METADATA_TABLE")?,
            bucket: required("BLOB_BUCKET")?,
            webhook_queue: var("WEBHOOK_QUEUE_URL"),
            replication_queue: var("REPLICATION_QUEUE_URL"),
            gc_queue: var("GC_QUEUE_URL"),
            webhook_dlq: var("WEBHOOK_DLQ_URL"),
            s3_path_style: var("BERTH_S3_PATH_STYLE")
                .map_or(overridden, |v| v == "true" || v == "1"),
        })
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
        assert_eq!(
            parse_public_url("https://reg.example.com/").as_deref(),
            Ok("https://reg.example.com")
        );
        assert!(parse_public_url("reg.example.com").is_err());
    }
}
