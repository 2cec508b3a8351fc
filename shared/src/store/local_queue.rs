//! Embedded [`Queue`] adapter: jobs are items in the metadata store, so the
//! queue is as durable as the store itself.
//!
//! An item's sort key starts with the time it becomes visible. Receiving a
//! job moves it to `now + visibility timeout` in one transaction (the new key
//! is the receipt); acknowledging deletes it. A worker that dies leaves its
//! job to reappear, as SQS does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::kv::{Attr, Cond, Item, Kv, KvError, Query, SkRange, WriteOp};
use super::now_millis;
use super::queue::{Job, Queue, QueueError, Received};

const PK: &str = "QUEUE";

/// The embedded queue.
#[derive(Clone)]
pub struct LocalQueue {
    kv: Arc<dyn Kv>,
    name: String,
    visibility: Duration,
}

fn backend(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl LocalQueue {
    pub fn new(kv: Arc<dyn Kv>, name: &str, visibility: Duration) -> Self {
        Self {
            kv,
            name: name.to_owned(),
            visibility,
        }
    }

    fn pk(&self) -> String {
        format!("{PK}#{}", self.name)
    }

    fn sk(visible_at: i64, id: &str) -> String {
        format!("{visible_at:020}#{id}")
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.send_after(job, Duration::ZERO).await
    }

    async fn send_after(&self, job: &Job, delay: Duration) -> Result<(), QueueError> {
        let body = serde_json::to_vec(job).map_err(backend)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let at = now_millis() + delay.min(super::queue::MAX_DELAY).as_millis() as i64;
        let item = Item::new(self.pk(), Self::sk(at, &id)).with("job", Attr::B(body));
        self.kv.write(WriteOp::put(item)).await.map_err(backend)
    }

    async fn receive(&self, max: usize) -> Result<Vec<Received>, QueueError> {
        let now = now_millis();
        let q = Query {
            pk: self.pk(),
            range: SkRange::Between(String::new(), format!("{now:020}~")),
            limit: max.max(1),
            after: None,
            reverse: false,
        };
        let page = self.kv.query(&q).await.map_err(backend)?;
        let hidden_until = now + self.visibility.as_millis() as i64;
        let mut out = Vec::new();
        for item in page.items {
            let Some(body) = item.b("job") else { continue };
            let job: Job = match serde_json::from_slice(body) {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping an unreadable queue message");
                    self.kv
                        .write(WriteOp::delete(item.pk.clone(), item.sk.clone()))
                        .await
                        .map_err(backend)?;
                    continue;
                }
            };
            let id = item.sk.rsplit('#').next().unwrap_or_default().to_owned();
            let receipt = Self::sk(hidden_until, &id);
            let moved = Item {
                sk: receipt.clone(),
                ..item.clone()
            };
            let take = vec![
                WriteOp::Delete {
                    pk: item.pk.clone(),
                    sk: item.sk.clone(),
                    cond: Cond::Exists,
                },
                WriteOp::put(moved),
            ];
            match self.kv.transact(take).await {
                Ok(()) => out.push(Received { receipt, job }),
                // Another worker took it first.
                Err(KvError::ConditionFailed { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.kv
            .write(WriteOp::delete(self.pk(), receipt))
            .await
            .map_err(backend)
    }
}
