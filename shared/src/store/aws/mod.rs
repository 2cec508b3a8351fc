//! AWS adapters: DynamoDB [`Kv`](super::Kv), S3 [`BlobStore`](super::BlobStore),
//! SQS [`Queue`](super::Queue), Secrets Manager
//! [`SecretSource`](crate::auth::SecretSource). They speak their port only;
//! what is plugged into what is decided in [`crate::wiring`].
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
#[cfg(feature = "aws-secrets")]
pub mod secrets;
#[cfg(feature = "aws-sqs")]
pub mod sqs;

pub use calls::CallCounter;

/// Loads the shared SDK configuration from the standard AWS environment.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
