//! The audit log: who did what to which resource, when, from where.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `AUDIT#<yyyy-mm-dd>` | `<inverted id>` | one entry (newest first within a day) |
//! | `PAUDIT#<project>#<yyyy-mm-dd>` | `<inverted id>` | the same entry, in its project's log |
//!
//! Entries expire by TTL (`BERTH_AUDIT_RETENTION_DAYS`, default 90). Changes
//! (push, delete, members, robots, projects, users, logins) are written as
//! they happen. Pulls are gathered in memory and written in batches, never
//! on the request's own path: the pulls of one artifact by one principal
//! from one address within a window (10 s, or until 50 different ones have
//! gathered) become one entry that carries their `count` and the time of
//! the first. A pull so costs a map update; the metadata store sees one
//! transaction per window and 50 distinct pulls. A process killed with
//! pulls gathered loses those. With `BERTH_AUDIT_PULLS=false` pulls are not
//! recorded at all.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::kv::TTL_ATTR;
use crate::store::{Attr, Item, Kv, KvError, Query, WriteOp};

/// One audit entry, in Harbor's `AuditLog` shape (plus the source address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub username: String,
    /// What was acted on: `library/app:v1`, `library/app@sha256:…`, a user
    /// or project name, a robot's full name.
    pub resource: String,
    /// `artifact`, `project`, `member`, `robot`, `user`, `login`.
    pub resource_type: String,
    /// `create`, `delete`, `update`, `pull`, `login`.
    pub operation: String,
    /// Epoch milliseconds.
    pub op_time_ms: i64,
    #[serde(default)]
    pub source_ip: String,
    /// The project the entry belongs to, if any.
    #[serde(default)]
    pub project: Option<String>,
    /// How many identical operations the entry stands for (pulls gathered
    /// in one window); 1 for everything else.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl AuditEntry {
    pub fn new(
        username: &str,
        resource: &str,
        resource_type: &str,
        operation: &str,
        source_ip: &str,
        project: Option<&str>,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        // Unique enough to order and page by: milliseconds, then 6 random digits.
        let id =
            ms.saturating_mul(1_000_000) / 1000 * 1000 + i64::from(rand::random::<u16>() % 1000);
        AuditEntry {
            id,
            username: username.to_owned(),
            resource: resource.to_owned(),
            resource_type: resource_type.to_owned(),
            operation: operation.to_owned(),
            op_time_ms: ms,
            source_ip: source_ip.to_owned(),
            project: project.map(str::to_owned),
            count: 1,
        }
    }

    /// RFC 3339 time of the entry.
    pub fn op_time(&self) -> String {
        rfc3339_ms(self.op_time_ms)
    }
}

fn take(g: &mut Gathered) -> Vec<AuditEntry> {
    g.since_ms = None;
    let mut v: Vec<AuditEntry> = g.entries.drain().map(|(_, e)| e).collect();
    v.sort_by_key(|e| e.id);
    v
}

/// Formats epoch milliseconds as RFC 3339 (UTC).
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Formats epoch seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    rfc3339_ms(secs.saturating_mul(1000))
}

/// `yyyy-mm-dd` of epoch milliseconds.
pub fn day_of(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

pub fn day_pk(day: &str) -> String {
    format!("AUDIT#{day}")
}

pub fn project_day_pk(project: &str, day: &str) -> String {
    format!("PAUDIT#{project}#{day}")
}

/// Sort key: ids inverted so a day's partition reads newest first.
pub fn entry_sk(id: i64) -> String {
    format!("{:019}", i64::MAX - id)
}

const BATCH: usize = 50;
const FLUSH_AFTER_MS: i64 = 10_000;

/// Pulls gathered since the last write: one entry per (principal,
/// artifact, address), counting repeats.
#[derive(Default)]
struct Gathered {
    entries: std::collections::HashMap<(String, String, String), AuditEntry>,
    /// When the oldest gathered pull happened (epoch ms).
    since_ms: Option<i64>,
}

/// Writes audit entries; gathers pulls.
#[derive(Clone)]
pub struct AuditLog {
    kv: Arc<dyn Kv>,
    retention_days: i64,
    record_pulls: bool,
    pending: Arc<Mutex<Gathered>>,
}

impl AuditLog {
    pub fn new(kv: Arc<dyn Kv>, retention_days: i64, record_pulls: bool) -> Self {
        Self {
            kv,
            retention_days: retention_days.max(1),
            record_pulls,
            pending: Arc::default(),
        }
    }

    fn items(&self, e: &AuditEntry) -> Vec<WriteOp> {
        let ttl = e.op_time_ms / 1000 + self.retention_days * 86_400;
        let day = day_of(e.op_time_ms);
        let doc = Attr::S(serde_json::to_string(e).unwrap_or_default());
        let mut ops = vec![WriteOp::put(
            Item::new(day_pk(&day), entry_sk(e.id))
                .with("doc", doc.clone())
                .with(TTL_ATTR, Attr::N(ttl)),
        )];
        if let Some(p) = &e.project {
            ops.push(WriteOp::put(
                Item::new(project_day_pk(p, &day), entry_sk(e.id))
                    .with("doc", doc)
                    .with(TTL_ATTR, Attr::N(ttl)),
            ));
        }
        ops
    }

    /// Records a change now.
    pub async fn record(&self, e: AuditEntry) -> Result<(), KvError> {
        self.kv.transact(self.items(&e)).await
    }

    /// Records a change without failing the caller: a failed audit write
    /// is logged (the change itself already committed).
    pub async fn record_quietly(&self, e: AuditEntry) {
        if let Err(err) = self.record(e).await {
            tracing::warn!(error = %err, "writing an audit entry failed");
        }
    }

    /// Whether pulls are recorded at all.
    pub fn records_pulls(&self) -> bool {
        self.record_pulls
    }

    /// Gathers a pull of `resource` by `username` from `source_ip` at
    /// `now_ms`; returns the batch to write when one is due (the caller
    /// writes it off the request path with [`AuditLog::write_batch`]).
    pub fn gather_pull(
        &self,
        username: &str,
        resource: &str,
        source_ip: &str,
        project: Option<&str>,
        now_ms: i64,
    ) -> Option<Vec<AuditEntry>> {
        if !self.record_pulls {
            return None;
        }
        let mut g = self.pending.lock().unwrap_or_else(|x| x.into_inner());
        let key = (
            username.to_owned(),
            resource.to_owned(),
            source_ip.to_owned(),
        );
        match g.entries.get_mut(&key) {
            Some(e) => e.count += 1,
            None => {
                let e = AuditEntry::new(username, resource, "artifact", "pull", source_ip, project);
                g.entries.insert(key, e);
            }
        }
        let since = *g.since_ms.get_or_insert(now_ms);
        if g.entries.len() >= BATCH || now_ms - since >= FLUSH_AFTER_MS {
            Some(take(&mut g))
        } else {
            None
        }
    }

    /// Takes whatever is gathered (periodic flush, shutdown).
    pub fn take_pending(&self) -> Vec<AuditEntry> {
        take(&mut self.pending.lock().unwrap_or_else(|x| x.into_inner()))
    }

    /// Writes whatever is buffered (a periodic flush, and at shutdown).
    pub async fn flush(&self) {
        let batch = self.take_pending();
        if !batch.is_empty() {
            self.write_batch(batch).await;
        }
    }

    /// Writes a batch of entries (in transactions of at most 100 items).
    pub async fn write_batch(&self, batch: Vec<AuditEntry>) {
        let mut ops: Vec<WriteOp> = Vec::new();
        for e in &batch {
            let items = self.items(e);
            if ops.len() + items.len() > crate::store::kv::MAX_TRANSACTION_OPS {
                self.flush_ops(std::mem::take(&mut ops)).await;
            }
            ops.extend(items);
        }
        if !ops.is_empty() {
            self.flush_ops(ops).await;
        }
    }

    async fn flush_ops(&self, ops: Vec<WriteOp>) {
        let n = ops.len();
        if let Err(e) = self.kv.transact(ops).await {
            tracing::warn!(error = %e, items = n, "writing buffered audit entries failed");
        }
    }

    /// One page of a log: the global log (`project` None) or a project's,
    /// newest first, walking back day by day from `today_ms` over the
    /// retention window. `cursor` is the previous page's `next`.
    pub async fn page(
        &self,
        project: Option<&str>,
        today_ms: i64,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, Option<String>), KvError> {
        let (mut day_index, mut after) = match cursor.and_then(|c| c.split_once('|')) {
            Some((d, a)) => (d.parse::<i64>().unwrap_or(0), Some(a.to_owned())),
            None => (0, None),
        };
        let mut out = Vec::new();
        while day_index <= self.retention_days && out.len() < limit {
            let day = day_of(today_ms - day_index * 86_400_000);
            let pk = match project {
                Some(p) => project_day_pk(p, &day),
                None => day_pk(&day),
            };
            let q = Query {
                pk,
                range: crate::store::SkRange::All,
                limit: limit - out.len(),
                after: after.take(),
                reverse: false,
            };
            let page = self.kv.query(&q).await?;
            for item in &page.items {
                if let Some(Ok(e)) = item.s("doc").map(serde_json::from_str::<AuditEntry>) {
                    out.push(e);
                }
            }
            match page.next {
                Some(n) if out.len() >= limit => {
                    return Ok((out, Some(format!("{day_index}|{n}"))));
                }
                Some(n) => after = Some(n),
                None => day_index += 1,
            }
        }
        let more = day_index <= self.retention_days;
        let next = (more && !out.is_empty()).then(|| format!("{day_index}|"));
        Ok((out, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "local")]
    #[test]
    fn repeated_pulls_gather_into_one_counted_entry() {
        let dir = tempfile::tempdir().expect("dir");
        let kv: Arc<dyn Kv> =
            Arc::new(crate::store::redb_kv::RedbKv::open(&dir.path().join("m")).expect("kv"));
        let log = AuditLog::new(kv, 1, true);
        let t0 = 1_700_000_000_000;
        for i in 0..30 {
            assert!(
                log.gather_pull("alice", "p/app:v1", "10.0.0.1", Some("p"), t0 + i)
                    .is_none()
            );
        }
        assert!(
            log.gather_pull("bob", "p/app:v1", "10.0.0.2", Some("p"), t0 + 40)
                .is_none()
        );
        let batch = log
            .gather_pull(
                "alice",
                "p/app:v1",
                "10.0.0.1",
                Some("p"),
                t0 + FLUSH_AFTER_MS,
            )
            .expect("the window closed");
        let counts: Vec<(&str, u64)> = batch
            .iter()
            .map(|e| (e.username.as_str(), e.count))
            .collect();
        assert_eq!(counts.len(), 2);
        assert!(counts.contains(&("alice", 31)) && counts.contains(&("bob", 1)));
        assert!(log.take_pending().is_empty());
        let off = AuditLog::new(log.kv.clone(), 1, false);
        assert!(off.gather_pull("alice", "p/app:v1", "", None, t0).is_none());
        assert!(off.take_pending().is_empty());
    }

    #[test]
    fn dates_and_keys() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(rfc3339(86_400), "1970-01-02T00:00:00Z");
        assert!(entry_sk(2) < entry_sk(1), "newer entries sort first");
    }
}
