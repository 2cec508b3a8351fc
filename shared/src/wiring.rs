//! The composition root: which adapters back the registry, built from
//! configuration (STYLE §9).
//!
//! This is the one module that knows both the services and the adapters.
//! The binaries in `functions/` call it; adapters never do, so `store/aws`
//! does not know the [`Registry`] it is plugged into. Nothing here makes a
//! network call: AWS clients are built from the standard environment, and
//! secrets are read on first use (a Lambda cold start stays local).

use crate::auth::UploadKey;
use crate::http::UPLOAD_TOKEN_TTL_SECS;
#[cfg(any(feature = "local", all(feature = "aws-dynamodb", feature = "aws-s3")))]
use crate::registry::{Registry, RegistryOptions};

/// The environment variable holding the upload-token key itself.
pub const UPLOAD_SECRET_ENV: &str = "BERTH_UPLOAD_SECRET";
/// The environment variable naming a Secrets Manager secret that holds
/// the upload-token key (used when [`UPLOAD_SECRET_ENV`] is unset).
pub const UPLOAD_SECRET_ARN_ENV: &str = "BERTH_UPLOAD_SECRET_ARN";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The AWS side of one process: the SDK configuration, Berth's resource
/// names and the call counter every client reports to.
#[cfg(feature = "aws-core")]
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub settings: crate::config::AwsSettings,
    pub calls: crate::store::aws::CallCounter,
}

#[cfg(feature = "aws-core")]
impl Aws {
    /// From the standard AWS environment and `METADATA_TABLE`,
    /// `BLOB_BUCKET`, … (see [`crate::config::AwsSettings`]).
    pub async fn from_env() -> Result<Self, String> {
        let settings = crate::config::AwsSettings::from_env().map_err(|e| e.to_string())?;
        Ok(Self {
            sdk: crate::store::aws::load_sdk_config().await,
            settings,
            calls: Default::default(),
        })
    }
}

/// The registry over DynamoDB and S3.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub fn aws_registry(aws: &Aws, opts: RegistryOptions) -> Registry {
    use crate::store::aws::{dynamodb::DynamoKv, s3::S3BlobStore};
    let s = &aws.settings;
    let kv = DynamoKv::new(&aws.sdk, &s.table, &aws.calls);
    let blobs = S3BlobStore::new(&aws.sdk, &s.bucket, s.s3_path_style, &aws.calls);
    Registry::new(std::sync::Arc::new(kv), std::sync::Arc::new(blobs), opts)
}

/// The registry over the embedded stores under `data_dir`.
#[cfg(feature = "local")]
pub async fn local_registry(
    data_dir: &std::path::Path,
    opts: RegistryOptions,
) -> Result<Registry, String> {
    let (kv, blobs) = crate::store::open_local(data_dir).await?;
    Ok(Registry::new(kv, blobs, opts))
}

/// The upload-token key: [`UPLOAD_SECRET_ENV`] itself, or the secret
/// [`UPLOAD_SECRET_ARN_ENV`] names, read from Secrets Manager on first use
/// (needs `aws`). `None` when neither is set.
#[cfg(feature = "aws-core")]
pub fn upload_key_from_env(aws: Option<&Aws>) -> Result<Option<UploadKey>, String> {
    if let Some(secret) = env(UPLOAD_SECRET_ENV) {
        return UploadKey::fixed(&secret, UPLOAD_TOKEN_TTL_SECS).map(Some);
    }
    let Some(arn) = env(UPLOAD_SECRET_ARN_ENV) else {
        return Ok(None);
    };
    secret_key(arn, aws).map(Some)
}

/// The upload-token key (from [`UPLOAD_SECRET_ENV`] only: a build without
/// AWS support cannot read a secret by ARN).
#[cfg(not(feature = "aws-core"))]
pub fn upload_key_from_env() -> Result<Option<UploadKey>, String> {
    match env(UPLOAD_SECRET_ENV) {
        Some(secret) => UploadKey::fixed(&secret, UPLOAD_TOKEN_TTL_SECS).map(Some),
        None if env(UPLOAD_SECRET_ARN_ENV).is_some() => Err(format!(
            "{UPLOAD_SECRET_ARN_ENV} needs a build with AWS support"
        )),
        None => Ok(None),
    }
}

#[cfg(feature = "aws-secrets")]
fn secret_key(arn: String, aws: Option<&Aws>) -> Result<UploadKey, String> {
    let aws = aws.ok_or_else(|| {
        format!("{UPLOAD_SECRET_ARN_ENV} is read with the AWS configuration; none was loaded")
    })?;
    let source = crate::store::aws::secrets::SecretsManagerSecret::new(&aws.sdk, &arn, &aws.calls);
    Ok(UploadKey::from_source(
        std::sync::Arc::new(source),
        UPLOAD_TOKEN_TTL_SECS,
    ))
}

#[cfg(all(feature = "aws-core", not(feature = "aws-secrets")))]
fn secret_key(_arn: String, _aws: Option<&Aws>) -> Result<UploadKey, String> {
    Err(format!(
        "{UPLOAD_SECRET_ARN_ENV} needs a build with Secrets Manager support"
    ))
}

/// The upload settings of a Lambda function, from its environment:
/// `BERTH_UPLOAD_GATEWAY_URL` and the key (see [`upload_key_from_env`]).
#[cfg(feature = "aws-core")]
pub fn upload_routing_from_env(aws: Option<&Aws>) -> Result<crate::http::UploadRouting, String> {
    crate::http::UploadRouting::configure(
        env("BERTH_UPLOAD_GATEWAY_URL"),
        upload_key_from_env(aws)?,
        false,
    )
}
