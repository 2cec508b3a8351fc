//! Events others must hear about (quota warnings and refusals today;
//! pushes, deletes and the rest with the webhook issue), written to an
//! outbox item in the same transaction as the change they report, so an
//! event is never lost and never announced before its change commits
//! (DESIGN §10). Delivery reads the outbox; until it exists, the items
//! wait there.

use serde::{Deserialize, Serialize};

use super::{Registry, Result};
use crate::store::{Attr, Item, Query, SkRange, WriteOp};

/// Harbor's event types raised here.
pub const QUOTA_WARNING: &str = "QUOTA_WARNING";
pub const QUOTA_EXCEED: &str = "QUOTA_EXCEED";

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
    let shard = event.id.chars().next().unwrap_or('0');
    let doc = serde_json::to_vec(event).unwrap_or_default();
    WriteOp::put(
        Item::new(outbox_pk(shard), format!("{:020}#{}", event.at, event.id))
            .with(super::keys::attr::DOC, Attr::B(doc)),
    )
}

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
    /// ride with, such as a refused push); best effort.
    pub(super) async fn raise(&self, event: Event) {
        if let Err(e) = self.kv.write(outbox_put(&event)).await {
            tracing::warn!(kind = %event.kind, error = %e, "could not record an event");
        }
    }
}
