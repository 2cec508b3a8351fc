//! The consumer of the events queue: each `event` job (an
//! [`Event`] whose change committed, see `registry::events`) goes to every
//! subscriber — webhook policies, event-based replication — and only then
//! is its outbox item deleted. A subscriber that fails leaves the job to be
//! delivered again; subscribers key what they create by the event's id, so
//! a second delivery creates nothing twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::registry::Registry;
use crate::registry::events::{EVENT_JOB, Event, OUTBOX_RESEND_AFTER};
use crate::store::Job;

/// Something that acts on events (idempotently per event id).
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    async fn on_event(&self, event: &Event) -> Result<(), String>;
}

/// Hands each event to its subscribers.
#[derive(Clone)]
pub struct Dispatch {
    registry: Registry,
    subscribers: Vec<Arc<dyn Subscriber>>,
}

impl Dispatch {
    pub fn new(registry: Registry, subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Self {
            registry,
            subscribers,
        }
    }

    /// Runs an `event` job; false for any other kind.
    pub async fn run(&self, job: &Job) -> Result<bool, String> {
        if job.kind != EVENT_JOB {
            return Ok(false);
        }
        let event: Event = match serde_json::from_value(job.payload.clone()) {
            Ok(e) => e,
            Err(e) => {
                // Nothing to retry: a malformed event never gets better.
                tracing::warn!(job = %job.id, error = %e, "dropping an unreadable event");
                return Ok(true);
            }
        };
        let mut failed = Vec::new();
        for s in &self.subscribers {
            if let Err(e) = s.on_event(&event).await {
                failed.push(e);
            }
        }
        if !failed.is_empty() {
            return Err(format!(
                "event {} ({}): {}",
                event.id,
                event.kind,
                failed.join("; ")
            ));
        }
        self.registry
            .settle_event(&event)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// The periodic sweep: sends again what the outbox still holds after
    /// [`OUTBOX_RESEND_AFTER`].
    pub async fn tick(&self) -> Result<(), String> {
        self.sweep(OUTBOX_RESEND_AFTER).await.map(drop)
    }

    /// Sends again outbox items older than `older_than`.
    pub async fn sweep(&self, older_than: Duration) -> Result<usize, String> {
        self.registry
            .resend_outbox(older_than, 100)
            .await
            .map_err(|e| e.to_string())
    }
}
