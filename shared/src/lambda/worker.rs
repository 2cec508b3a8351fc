//! SQS worker functions: one handler call per message, failures reported
//! as partial batch responses (`ReportBatchItemFailures` is on in the
//! template, so only the failed messages come back, and after
//! `maxReceiveCount` tries they land in the dead-letter queue).
//!
//! Messages are JSON [`Job`]s. A message whose format version `v` this
//! build does not know is refused explicitly (a batch item failure, so it
//! ends in the DLQ for an operator to see), never guessed at. SQS delivers
//! at least once: handlers must be idempotent per [`Job::id`].

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::store::Job;

/// The job message format versions this build understands.
pub const SUPPORTED_JOB_VERSIONS: [u64; 1] = [1];

/// Why a message was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("message is not a job: {0}")]
    Malformed(String),
    #[error(
        "job message format v{0} is not supported by this build (supported: {SUPPORTED_JOB_VERSIONS:?})"
    )]
    UnsupportedVersion(u64),
    #[error("job failed: {0}")]
    Failed(String),
}

/// Parses a message body into a [`Job`], refusing unknown versions.
pub fn parse_job(body: &str) -> Result<Job, JobError> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))?;
    let v = value
        .get("v")
        .and_then(Value::as_u64)
        .ok_or_else(|| JobError::Malformed("no numeric `v` field".to_owned()))?;
    if !SUPPORTED_JOB_VERSIONS.contains(&v) {
        return Err(JobError::UnsupportedVersion(v));
    }
    serde_json::from_value(value).map_err(|e| JobError::Malformed(e.to_string()))
}

/// What a worker function does with its jobs (and its schedule, if it has
/// one).
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs one job. Must be idempotent: a job can arrive more than once.
    async fn run(&self, job: &Job) -> Result<(), JobError>;

    /// Runs the scheduled work (an EventBridge schedule invoked the function).
    async fn tick(&self) -> Result<(), JobError> {
        Ok(())
    }
}

/// A worker whose jobs arrive in a later release: it logs and acknowledges
/// every job, so nothing piles up in the queue meanwhile.
#[derive(Debug, Clone)]
pub struct NotConfigured {
    function: &'static str,
}

impl NotConfigured {
    pub const fn new(function: &'static str) -> Self {
        Self { function }
    }
}

#[async_trait]
impl JobHandler for NotConfigured {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        tracing::warn!(function = self.function, job = %job.id, kind = %job.kind, "job kind not yet configured; acknowledged without action");
        Ok(())
    }

    async fn tick(&self) -> Result<(), JobError> {
        tracing::info!(
            function = self.function,
            "scheduled run: nothing configured yet"
        );
        Ok(())
    }
}

#[async_trait]
impl JobHandler for crate::jobs::Jobs {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        crate::jobs::Jobs::run(self, job)
            .await
            .map_err(JobError::Failed)
    }

    async fn tick(&self) -> Result<(), JobError> {
        crate::jobs::Jobs::tick(self)
            .await
            .map_err(JobError::Failed)
    }
}

#[async_trait]
impl JobHandler for crate::jobs::gc::Gc {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        crate::jobs::gc::Gc::run(self, job)
            .await
            .map(drop)
            .map_err(JobError::Failed)
    }

    async fn tick(&self) -> Result<(), JobError> {
        crate::jobs::gc::Gc::tick(self)
            .await
            .map(drop)
            .map_err(JobError::Failed)
    }
}

/// Runs `handler` once per record and reports the records that failed.
pub async fn process_batch(event: &SqsEvent, handler: &dyn JobHandler) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.as_deref().unwrap_or_default();
        let result = match record.body.as_deref() {
            Some(body) => match parse_job(body) {
                Ok(job) => handler.run(&job).await,
                Err(e) => Err(e),
            },
            None => Err(JobError::Malformed("empty message".to_owned())),
        };
        if let Err(e) = result {
            tracing::error!(message = id, error = %e, "message failed; SQS will redeliver it");
            response.add_failure(id);
        }
    }
    response
}

/// The Lambda handler of a worker function: SQS batches and, for
/// functions with a schedule, EventBridge scheduled events.
pub async fn handle_event(
    event: LambdaEvent<Value>,
    handler: &dyn JobHandler,
) -> Result<Value, lambda_runtime::Error> {
    let payload = event.payload;
    if payload.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        if let Some(r) = batch.records.iter().find(|r| r.message_id.is_none()) {
            // Without an id a failure cannot be reported per message: fail
            // the whole batch so nothing is lost.
            return Err(
                format!("SQS record without messageId from {:?}", r.event_source_arn).into(),
            );
        }
        return Ok(serde_json::to_value(process_batch(&batch, handler).await)?);
    }
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        handler.tick().await?;
        return Ok(Value::Object(Default::default()));
    }
    Err("unrecognised event: neither an SQS batch nor a scheduled event".into())
}
