//! Secrets Manager as a [`SecretSource`]: a secret read by ARN (its
//! `SecretString`), once, when first needed.
//!
//! The Lambda functions get the upload-token key this way: the template
//! passes only the secret's ARN (`BERTH_UPLOAD_SECRET_ARN`), so the key
//! never appears in a function's configuration, and nothing is read at
//! start-up.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use super::CallCounter;
use crate::auth::SecretSource;

/// One secret in Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManagerSecret {
    client: Client,
    arn: String,
}

impl SecretsManagerSecret {
    pub fn new(sdk: &aws_config::SdkConfig, arn: &str, counter: &CallCounter) -> Self {
        let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(counter.clone())
            .build();
        Self {
            client: Client::from_conf(conf),
            arn: arn.to_owned(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    async fn fetch(&self) -> Result<String, String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Secrets Manager {}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or("the secret could not be read")
                )
            })?;
        out.secret_string
            .ok_or_else(|| "the secret has no string value".to_owned())
    }
}
