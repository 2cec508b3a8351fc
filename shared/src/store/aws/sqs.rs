//! SQS [`Queue`] adapter. Messages are JSON [`Job`]s.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;

use super::CallCounter;
use crate::store::queue::{Job, MAX_DELAY, Queue, QueueError, Received};

/// One SQS queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

fn backend<E: ProvideErrorMetadata>(e: E) -> QueueError {
    QueueError::Backend(format!(
        "SQS {}: {}",
        e.code().unwrap_or("unknown"),
        e.message().unwrap_or("")
    ))
}

impl SqsQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: &str, counter: &CallCounter) -> Self {
        let conf = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(counter.clone())
            .build();
        Self {
            client: Client::from_conf(conf),
            url: url.to_owned(),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.send_after(job, std::time::Duration::ZERO).await
    }

    async fn send_after(&self, job: &Job, delay: std::time::Duration) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError::Backend(e.to_string()))?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body);
        if !delay.is_zero() {
            send = send.delay_seconds(delay.min(MAX_DELAY).as_secs().max(1) as i32);
        }
        send.send().await.map_err(backend)?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Received>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(backend)?;
        let mut got = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(body), Some(receipt)) = (m.body, m.receipt_handle) else {
                continue;
            };
            match serde_json::from_str::<Job>(&body) {
                Ok(job) => got.push(Received { receipt, job }),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable queue message"),
            }
        }
        Ok(got)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
