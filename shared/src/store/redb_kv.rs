//! Embedded [`Kv`] adapter on `redb`: one ACID file, one table keyed by
//! `(pk, sk)`, attributes encoded with postcard.
//!
//! Writes run on the blocking pool (a commit fsyncs); reads are short and
//! run inline. Transactions are redb write transactions, so conditions and
//! writes are evaluated and applied atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::kv::{Attr, Item, Kv, KvError, Page, Query, SkRange, WriteOp, validate_transaction};
use super::now_secs;

const ITEMS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("items");

/// The embedded metadata store.
#[derive(Clone)]
pub struct RedbKv {
    db: Arc<Database>,
}

fn backend(e: impl std::fmt::Display) -> KvError {
    KvError::Backend(e.to_string())
}

fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, KvError> {
    let attrs: BTreeMap<String, Attr> = postcard::from_bytes(bytes).map_err(backend)?;
    Ok(Item {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        attrs,
    })
}

impl RedbKv {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, KvError> {
        let db = Database::create(path).map_err(backend)?;
        let w = db.begin_write().map_err(backend)?;
        w.open_table(ITEMS).map_err(backend)?;
        w.commit().map_err(backend)?;
        Ok(Self { db: Arc::new(db) })
    }

    fn read_one(
        table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, KvError> {
        match table.get((pk, sk)).map_err(backend)? {
            Some(v) => {
                let item = decode(pk, sk, v.value())?;
                Ok((!item.expired_at(now)).then_some(item))
            }
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Kv for RedbKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        let r = self.db.begin_read().map_err(backend)?;
        let t = r.open_table(ITEMS).map_err(backend)?;
        Self::read_one(&t, pk, sk, now_secs())
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, KvError> {
        let r = self.db.begin_read().map_err(backend)?;
        let t = r.open_table(ITEMS).map_err(backend)?;
        let now = now_secs();
        keys.iter()
            .map(|(pk, sk)| Self::read_one(&t, pk, sk, now))
            .collect()
    }

    async fn query(&self, q: &Query) -> Result<Page, KvError> {
        let r = self.db.begin_read().map_err(backend)?;
        let t = r.open_table(ITEMS).map_err(backend)?;
        let now = now_secs();
        let start: &str = match (&q.after, &q.range) {
            (Some(a), _) => a,
            (None, SkRange::Prefix(p)) => p,
            (None, SkRange::Between(a, _)) => a,
            (None, SkRange::All) => "",
        };
        let limit = q.limit.max(1);
        let mut page = Page::default();
        let mut take = |sk: &str, v: &[u8]| -> Result<bool, KvError> {
            if q.after.as_deref() == Some(sk) || !q.range.contains(sk) {
                return Ok(true);
            }
            let item = decode(&q.pk, sk, v)?;
            if item.expired_at(now) {
                return Ok(true);
            }
            if page.items.len() == limit {
                page.next = page.items.last().map(|i| i.sk.clone());
                return Ok(false);
            }
            page.items.push(item);
            Ok(true)
        };
        if q.reverse {
            // Downwards from `after` (exclusive), or from the range's top.
            let (low, high): (String, Option<String>) = match &q.range {
                SkRange::All => (String::new(), None),
                SkRange::Prefix(p) => (p.clone(), Some(format!("{p}\u{10FFFF}"))),
                SkRange::Between(a, b) => (a.clone(), Some(b.clone())),
            };
            let high = match (&q.after, high) {
                (Some(a), _) => Some(a.clone()),
                (None, h) => h,
            };
            let lower = (q.pk.as_str(), low.as_str());
            let iter = match &high {
                Some(h) => t.range(lower..=(q.pk.as_str(), h.as_str())),
                None => t.range(lower..),
            }
            .map_err(backend)?;
            for entry in iter.rev() {
                let (k, v) = entry.map_err(backend)?;
                let (pk, sk) = k.value();
                if pk != q.pk {
                    continue;
                }
                if !take(sk, v.value())? {
                    break;
                }
            }
            return Ok(page);
        }
        for entry in t.range((q.pk.as_str(), start)..).map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            let (pk, sk) = k.value();
            if pk != q.pk {
                break;
            }
            if !q.range.contains(sk) && sk > start && !matches!(q.range, SkRange::All) {
                break;
            }
            if !take(sk, v.value())? {
                break;
            }
        }
        Ok(page)
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), KvError> {
        validate_transaction(&ops)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let w = db.begin_write().map_err(backend)?;
            {
                let mut t = w.open_table(ITEMS).map_err(backend)?;
                let now = now_secs();
                let mut results = Vec::with_capacity(ops.len());
                for (index, op) in ops.iter().enumerate() {
                    let (pk, sk) = op.key();
                    let current = Self::read_one(&t, pk, sk, now)?;
                    let next = op
                        .apply(current.as_ref())
                        .map_err(|_| KvError::ConditionFailed { index })?;
                    if !matches!(op, WriteOp::Check { .. }) {
                        results.push((pk, sk, next));
                    }
                }
                for (pk, sk, next) in results {
                    match next {
                        Some(item) => {
                            let bytes = postcard::to_allocvec(&item.attrs).map_err(backend)?;
                            t.insert((pk, sk), bytes.as_slice()).map_err(backend)?;
                        }
                        None => {
                            t.remove((pk, sk)).map_err(backend)?;
                        }
                    }
                }
            }
            // Dropping `w` without commit aborts on the error paths above.
            w.commit().map_err(backend)
        })
        .await
        .map_err(backend)?
    }
}
