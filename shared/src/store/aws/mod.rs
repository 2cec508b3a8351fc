//! AWS adapters: DynamoDB [`Kv`](super::Kv), S3 [`BlobStore`](super::BlobStore),
//! SQS [`Queue`](super::Queue).
//!
//! One `SdkConfig` is loaded per process (per Lambda init) and every client
//! is built from it. Emulators come in only through the SDK's standard
//! `AWS_ENDPOINT_URL`; S3 then uses path-style addressing. Every client
//! carries a [`CallCounter`] so tests can hold the per-operation budgets of
//! DESIGN §4.

mod calls;
#[cfg(feature = "aws-dynamodb")]
pub mod dynamodb;
#[cfg(feature = "aws-s3")]
pub mod s3;
#[cfg(feature = "aws-sqs")]
pub mod sqs;

pub use calls::CallCounter;

/// Loads the shared SDK configuration from the standard AWS environment.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The registry service over DynamoDB and S3, configured from the
/// environment (`METADATA_TABLE`, `BLOB_BUCKET`, standard AWS variables).
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub async fn registry_from_env() -> Result<crate::registry::Registry, String> {
    let settings = crate::config::AwsSettings::from_env().map_err(|e| e.to_string())?;
    let sdk = load_sdk_config().await;
    Ok(registry(&sdk, &settings, &CallCounter::default()))
}

/// The registry service over DynamoDB and S3 with explicit settings.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub fn registry(
    sdk: &aws_config::SdkConfig,
    settings: &crate::config::AwsSettings,
    counter: &CallCounter,
) -> crate::registry::Registry {
    let kv = dynamodb::DynamoKv::new(sdk, &settings.table, counter);
    let blobs = s3::S3BlobStore::new(sdk, &settings.bucket, settings.s3_path_style, counter);
    crate::registry::Registry::new(
        std::sync::Arc::new(kv),
        std::sync::Arc::new(blobs),
        crate::registry::RegistryOptions::default(),
    )
}
