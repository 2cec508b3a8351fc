//! The background-work port: an SQS-shaped queue.
//!
//! Delivery is at least once, so every job handler must be idempotent. Job
//! messages carry a format version (`v`) so old messages left in a queue
//! across a deploy are still understood or refused explicitly.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One job message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Message format version.
    pub v: u32,
    /// Unique id; handlers use it to recognise a redelivery.
    pub id: String,
    /// What to do, e.g. `gc.sweep`.
    pub kind: String,
    pub payload: serde_json::Value,
}

impl Job {
    pub fn new(kind: &str, payload: serde_json::Value) -> Self {
        Self {
            v: 1,
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_owned(),
            payload,
        }
    }
}

/// The longest delay a queue gives a message (SQS's `DelaySeconds` cap).
pub const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// A received job and the handle that acknowledges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub receipt: String,
    pub job: Job,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue: {0}")]
    Backend(String),
}

/// The queue port.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, job: &Job) -> Result<(), QueueError>;
    /// Sends a job that becomes visible only after `delay` (retries with
    /// backoff). SQS caps the delay at 15 minutes; longer delays are
    /// capped there.
    async fn send_after(&self, job: &Job, delay: std::time::Duration) -> Result<(), QueueError>;
    /// Takes up to `max` visible jobs; they reappear after the visibility
    /// timeout unless acknowledged.
    async fn receive(&self, max: usize) -> Result<Vec<Received>, QueueError>;
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
}
