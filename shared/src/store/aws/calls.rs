//! Counting the AWS calls each operation makes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// An SDK interceptor that counts requests sent, per `Service.Operation`.
/// Counted once a request has been sent and answered, so retries count
/// and presigning (which stops before transmission) does not.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// Calls so far, e.g. `{"DynamoDB.GetItem": 1}`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls to one service (`DynamoDB`, `S3`, `SQS`).
    pub fn service_total(&self, service: &str) -> u64 {
        let prefix = format!("{service}.");
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "BerthCallCounter"
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let service = match m.service() {
                "dynamodb" | "DynamoDB" => "DynamoDB",
                "s3" | "S3" => "S3",
                "sqs" | "SQS" => "SQS",
                "secretsmanager" | "Secrets Manager" => "SecretsManager",
                other => other,
            };
            if let Ok(mut c) = self.counts.lock() {
                *c.entry(format!("{service}.{}", m.name())).or_default() += 1;
            }
        }
        Ok(())
    }
}
