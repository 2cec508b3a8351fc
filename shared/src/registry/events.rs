//! Events others must hear about: pushes, pulls, deletes, quota warnings
//! and refusals, retention, replication and scan outcomes (DESIGN §10).
//!
//! **The outbox.** A change others must hear about writes its event as an
//! outbox item (`OUTBOX#<shard>`) in the same transaction as the change.
//! After the commit, the same request sends the event to the events queue
//! ([`Registry::with_events`]) as a job of kind [`EVENT_JOB`]. The consumer
//! (the `webhook` worker, `jobs::events`) dispatches it and only then
//! deletes the outbox item ([`Registry::settle_event`]). A process that dies
//! between the commit and the send leaves the item behind; the periodic
//! sweep ([`Registry::resend_outbox`]) sends every item older than a minute
//! again. So an event is never lost, and never sent before its change
//! committed (there is nothing to send before: the item and the change
//! commit together or not at all). Delivery is at least once: consumers
//! key what they create by the event's id.
//!
//! The request path pays one queue send and no extra metadata call: the
//! outbox item rides in the transaction the change already makes, and the
//! consumer, not the request, deletes it.
//!
//! **Pulls** change nothing that must commit, so a pull's event is sent
//! right after the pull, best effort, with no outbox item.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Registry, Result};
use crate::store::{Attr, Cond, Item, Job, Query, Queue, SkRange, WriteOp};

/// Harbor's event type names.
pub mod kinds {
    pub const PUSH_ARTIFACT: &str = "PUSH_ARTIFACT";
    pub const PULL_ARTIFACT: &str = "PULL_ARTIFACT";
    pub const DELETE_ARTIFACT: &str = "DELETE_ARTIFACT";
    pub const QUOTA_EXCEED: &str = "QUOTA_EXCEED";
    pub const QUOTA_WARNING: &str = "QUOTA_WARNING";
    pub const SCANNING_COMPLETED: &str = "SCANNING_COMPLETED";
    pub const SCANNING_FAILED: &str = "SCANNING_FAILED";
    pub const REPLICATION: &str = "REPLICATION";
    pub const TAG_RETENTION: &str = "TAG_RETENTION";

    /// Every type, in Harbor's order.
    pub const ALL: [&str; 9] = [
        PUSH_ARTIFACT,
        PULL_ARTIFACT,
        DELETE_ARTIFACT,
        QUOTA_EXCEED,
        QUOTA_WARNING,
        SCANNING_COMPLETED,
        SCANNING_FAILED,
        REPLICATION,
        TAG_RETENTION,
    ];
}

pub use kinds::{QUOTA_EXCEED, QUOTA_WARNING};

/// The job kind that carries an [`Event`] on the events queue.
pub const EVENT_JOB: &str = "event";

/// How old an outbox item must be before the sweep sends it again (the
/// request that wrote it normally sent it within milliseconds).
pub const OUTBOX_RESEND_AFTER: Duration = Duration::from_secs(60);

/// Who acts in the current request, and the host the client used: the
/// events the request raises name them (`operator`; `host` is what a
/// `resource_url` starts with when no public URL is configured).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub operator: String,
    pub host: String,
}

tokio::task_local! {
    /// The current request's [`Actor`].
    pub static ACTOR: Actor;
}

/// The current request's actor, if a handler set one.
pub fn actor() -> Actor {
    ACTOR.try_with(Clone::clone).unwrap_or_default()
}

/// One event as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique; consumers deduplicate by it.
    pub id: String,
    /// Harbor's event type name.
    pub kind: String,
    /// Epoch milliseconds.
    pub at: i64,
    pub project: String,
    pub data: serde_json::Value,
}

impl Event {
    /// The outbox item's key.
    fn key(&self) -> (String, String) {
        let shard = self.id.chars().next().unwrap_or('0');
        (outbox_pk(shard), format!("{:020}#{}", self.at, self.id))
    }

    /// An artifact event (push, pull, delete): `data` is `repository`,
    /// `digest`, `tags`, `media_type`, `size` and `operator`.
    pub fn artifact(
        kind: &str,
        repo: &crate::oci::RepoName,
        digest: &crate::oci::Digest,
        tags: Vec<String>,
        media_type: &str,
        size: i64,
    ) -> Self {
        let project = super::keys::project_of(repo.as_str());
        let actor = actor();
        Self::new(
            kind,
            project,
            serde_json::json!({
                "repository": repo.as_str(),
                "digest": digest.as_ref(),
                "tags": tags,
                "media_type": media_type,
                "size": size,
                "operator": actor.operator,
                "host": actor.host,
            }),
        )
    }

    pub fn new(kind: &str, project: &str, data: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind: kind.to_owned(),
            at: crate::store::now_millis(),
            project: project.to_owned(),
            data,
        }
    }
}

const OUTBOX_SHARDS: [char; 16] = super::keys::UPLOAD_INDEX_SHARDS;

fn outbox_pk(shard: char) -> String {
    format!("OUTBOX#{shard}")
}

/// The write that puts `event` in the outbox.
pub(super) fn outbox_put(event: &Event) -> WriteOp {
    let doc = serde_json::to_vec(event).unwrap_or_default();
    let (pk, sk) = event.key();
    WriteOp::put(Item::new(pk, sk).with(super::keys::attr::DOC, Attr::B(doc)))
}

/// The events among a committed transaction's writes.
pub(super) fn events_in(ops: &[WriteOp]) -> Vec<Event> {
    ops.iter()
        .filter_map(|op| match op {
            WriteOp::Put { item, .. } if item.pk.starts_with("OUTBOX#") => item
                .b(super::keys::attr::DOC)
                .and_then(|d| serde_json::from_slice(d).ok()),
            _ => None,
        })
        .collect()
}

/// The events queue of a registry (none: events wait in the outbox).
pub(super) type EventSink = Option<Arc<dyn Queue>>;

/// When the sweep last sent an outbox item again.
const RESENT: &str = "resent";

impl Registry {
    /// Events waiting in the outbox, oldest first within each shard.
    pub async fn outbox(&self, max: usize) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for shard in OUTBOX_SHARDS {
            let q = Query {
                pk: outbox_pk(shard),
                range: SkRange::All,
                limit: max.max(1),
                after: None,
                reverse: false,
            };
            let page = self.kv.query(&q).await?;
            out.extend(
                page.items
                    .iter()
                    .filter_map(|i| serde_json::from_slice(i.b(super::keys::attr::DOC)?).ok()),
            );
        }
        out.truncate(max);
        Ok(out)
    }

    /// Puts an event in the outbox on its own (for what has no change to
    /// ride with, such as a refused push), then sends it; best effort.
    pub async fn raise(&self, event: Event) {
        if let Err(e) = self.kv.write(outbox_put(&event)).await {
            tracing::warn!(kind = %event.kind, error = %e, "could not record an event");
            return;
        }
        self.announce(std::slice::from_ref(&event)).await;
    }

    /// Sends events whose changes committed to the events queue. A failed
    /// send is left to the sweep (the outbox item stays).
    pub(super) async fn announce(&self, events: &[Event]) {
        let Some(sink) = &self.events else { return };
        for event in events {
            if let Err(e) = send_event(sink.as_ref(), event).await {
                tracing::warn!(kind = %event.kind, id = %event.id, error = %e, "event not sent now; the outbox sweep sends it");
            }
        }
    }

    /// Sends an event that has no change behind it (a pull), best effort:
    /// in the background, so the pull does not wait for the queue.
    pub fn emit(&self, event: Event) {
        let Some(sink) = self.events.clone() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = send_event(sink.as_ref(), &event).await {
                tracing::warn!(kind = %event.kind, error = %e, "event lost: the queue refused it");
            }
        });
    }

    /// Whether this registry sends events anywhere.
    pub fn has_event_sink(&self) -> bool {
        self.events.is_some()
    }

    /// Deletes an event's outbox item once it has been dispatched.
    pub async fn settle_event(&self, event: &Event) -> Result<()> {
        let (pk, sk) = event.key();
        self.kv.write(WriteOp::delete(pk, sk)).await?;
        Ok(())
    }

    /// Sends again the outbox items older than `older_than` (a crash left
    /// them, or their consumer is behind), each at most once per
    /// `older_than`. Returns how many it sent.
    pub async fn resend_outbox(&self, older_than: Duration, max: usize) -> Result<usize> {
        let Some(sink) = self.events.clone() else {
            return Ok(0);
        };
        let now = crate::store::now_millis();
        let before = now - older_than.as_millis() as i64;
        let mut sent = 0;
        for shard in OUTBOX_SHARDS {
            let q = Query {
                pk: outbox_pk(shard),
                range: SkRange::Between(String::new(), format!("{before:020}~")),
                limit: max.max(1),
                after: None,
                reverse: false,
            };
            for item in self.kv.query(&q).await?.items {
                if item.n(RESENT).is_some_and(|t| t > before) {
                    continue;
                }
                let Some(event) = item
                    .b(super::keys::attr::DOC)
                    .and_then(|d| serde_json::from_slice::<Event>(d).ok())
                else {
                    self.kv.write(WriteOp::delete(item.pk, item.sk)).await?;
                    continue;
                };
                let mark = WriteOp::Update {
                    pk: item.pk.clone(),
                    sk: item.sk.clone(),
                    set: [(RESENT.to_owned(), Attr::N(now))].into(),
                    cond: Cond::Exists,
                };
                match self.kv.write(mark).await {
                    Ok(()) => {}
                    // Settled meanwhile.
                    Err(crate::store::KvError::ConditionFailed { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
                if send_event(sink.as_ref(), &event).await.is_ok() {
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }
}

async fn send_event(sink: &dyn Queue, event: &Event) -> std::result::Result<(), String> {
    let payload = serde_json::to_value(event).map_err(|e| e.to_string())?;
    let mut job = Job::new(EVENT_JOB, payload);
    job.id = event.id.clone();
    sink.send(&job).await.map_err(|e| e.to_string())
}
