//! The metadata port: a DynamoDB-shaped key-value store.
//!
//! Items live under a partition key `pk` and a sort key `sk` and carry named
//! attributes. Writes may carry a condition; up to [`MAX_TRANSACTION_OPS`]
//! writes commit all-or-nothing. An item whose [`TTL_ATTR`] (epoch seconds)
//! is in the past is expired: reads do not return it and conditions treat it
//! as absent, on every adapter.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// DynamoDB's limit for one `TransactWriteItems`.
pub const MAX_TRANSACTION_OPS: usize = 100;
/// Attribute holding an item's expiry time, in epoch seconds.
pub const TTL_ATTR: &str = "ttl";

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attr {
    S(String),
    N(i64),
    B(Vec<u8>),
}

/// One stored item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub attrs: BTreeMap<String, Attr>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            attrs: BTreeMap::new(),
        }
    }

    #[must_use]
    pub fn with(mut self, name: &str, value: Attr) -> Self {
        self.attrs.insert(name.to_owned(), value);
        self
    }

    pub fn s(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(Attr::S(s)) => Some(s),
            _ => None,
        }
    }

    pub fn n(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name) {
            Some(Attr::N(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn b(&self, name: &str) -> Option<&[u8]> {
        match self.attrs.get(name) {
            Some(Attr::B(b)) => Some(b),
            _ => None,
        }
    }

    /// True when the item's TTL has passed at `now` (epoch seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        self.n(TTL_ATTR).is_some_and(|t| t <= now)
    }
}

/// A write condition, evaluated against the item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Always,
    NotExists,
    Exists,
    /// The item exists and the attribute equals the value.
    Eq(String, Attr),
    /// The item exists and the numeric attribute is below the value.
    Lt(String, i64),
    /// The item exists and the numeric attribute is at least the value.
    Ge(String, i64),
    /// The item is absent, or has no such attribute.
    Missing(String),
    /// Every condition holds (an empty list holds).
    All(Vec<Cond>),
    /// At least one condition holds.
    Any(Vec<Cond>),
}

impl Cond {
    /// Evaluates the condition against the current (unexpired) item.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Cond::Always, _) => true,
            (Cond::NotExists, c) => c.is_none(),
            (Cond::Exists, c) => c.is_some(),
            (Cond::Eq(name, v), Some(i)) => i.attrs.get(name) == Some(v),
            (Cond::Lt(name, v), Some(i)) => i.n(name).is_some_and(|n| n < *v),
            (Cond::Ge(name, v), Some(i)) => i.n(name).is_some_and(|n| n >= *v),
            (Cond::Eq(..) | Cond::Lt(..) | Cond::Ge(..), None) => false,
            (Cond::Missing(name), c) => c.is_none_or(|i| !i.attrs.contains_key(name)),
            (Cond::All(cs), c) => cs.iter().all(|x| x.holds(c)),
            (Cond::Any(cs), c) => cs.iter().any(|x| x.holds(c)),
        }
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Creates or replaces the whole item.
    Put { item: Item, cond: Cond },
    /// Removes the item; deleting an absent item succeeds unless the condition fails.
    Delete { pk: String, sk: String, cond: Cond },
    /// Only checks the condition (inside a transaction).
    Check { pk: String, sk: String, cond: Cond },
    /// Sets attributes on an existing item; fails if the item is absent.
    Update {
        pk: String,
        sk: String,
        set: BTreeMap<String, Attr>,
        cond: Cond,
    },
    /// Counters: adds each delta to a numeric attribute (absent counts as
    /// 0), sets `set`, and sets each of `init` only where the attribute is
    /// absent; creates the item when it is absent (DynamoDB's `ADD` and
    /// `if_not_exists`), unless the condition says otherwise.
    Upsert {
        pk: String,
        sk: String,
        add: BTreeMap<String, i64>,
        set: BTreeMap<String, Attr>,
        init: BTreeMap<String, Attr>,
        cond: Cond,
    },
}

impl WriteOp {
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put { item, .. } => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk, .. }
            | WriteOp::Check { pk, sk, .. }
            | WriteOp::Update { pk, sk, .. }
            | WriteOp::Upsert { pk, sk, .. } => (pk, sk),
        }
    }

    pub fn put(item: Item) -> Self {
        WriteOp::Put {
            item,
            cond: Cond::Always,
        }
    }

    pub fn delete(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        WriteOp::Delete {
            pk: pk.into(),
            sk: sk.into(),
            cond: Cond::Always,
        }
    }

    /// Adds `delta` to the counter `name` of item (`pk`, `sk`), creating
    /// the item if needed.
    pub fn count(pk: impl Into<String>, sk: impl Into<String>, name: &str, delta: i64) -> Self {
        WriteOp::Upsert {
            pk: pk.into(),
            sk: sk.into(),
            add: [(name.to_owned(), delta)].into(),
            set: BTreeMap::new(),
            init: BTreeMap::new(),
            cond: Cond::Always,
        }
    }

    /// Applies the write to `current`, returning the new item (None = absent),
    /// or [`ConditionFailed`] if the condition does not hold. The embedded
    /// adapters evaluate writes with this one function.
    pub fn apply(&self, current: Option<&Item>) -> Result<Option<Item>, ConditionFailed> {
        let ok = match self {
            WriteOp::Put { cond, .. }
            | WriteOp::Delete { cond, .. }
            | WriteOp::Check { cond, .. }
            | WriteOp::Upsert { cond, .. } => cond.holds(current),
            WriteOp::Update { cond, .. } => current.is_some() && cond.holds(current),
        };
        if !ok {
            return Err(ConditionFailed);
        }
        Ok(match self {
            WriteOp::Put { item, .. } => Some(item.clone()),
            WriteOp::Delete { .. } => None,
            WriteOp::Check { .. } => current.cloned(),
            WriteOp::Update { set, .. } => current.map(|c| {
                let mut n = c.clone();
                n.attrs
                    .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                n
            }),
            WriteOp::Upsert {
                pk,
                sk,
                add,
                set,
                init,
                ..
            } => {
                let mut n = current
                    .cloned()
                    .unwrap_or_else(|| Item::new(pk.clone(), sk.clone()));
                for (k, d) in add {
                    let v = n.n(k).unwrap_or(0).saturating_add(*d);
                    n.attrs.insert(k.clone(), Attr::N(v));
                }
                for (k, v) in init {
                    n.attrs.entry(k.clone()).or_insert_with(|| v.clone());
                }
                n.attrs
                    .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(n)
            }
        })
    }
}

/// A write's condition did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionFailed;

/// Which sort keys a query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

impl SkRange {
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            SkRange::All => true,
            SkRange::Prefix(p) => sk.starts_with(p.as_str()),
            SkRange::Between(a, b) => a.as_str() <= sk && sk <= b.as_str(),
        }
    }
}

/// A query over one partition, in ascending sort-key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub range: SkRange,
    /// Items per page (at least 1).
    pub limit: usize,
    /// Resume after this sort key (exclusive): the previous page's `next`.
    pub after: Option<String>,
    /// Descending sort-key order (`after` then continues downwards).
    pub reverse: bool,
}

impl Query {
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>, limit: usize) -> Self {
        Self {
            pk: pk.into(),
            range: SkRange::Prefix(prefix.into()),
            limit,
            after: None,
            reverse: false,
        }
    }

    /// The same query in descending sort-key order.
    #[must_use]
    pub fn reversed(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Set when more items may follow: the cursor for the next page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A condition failed; `index` is the failing operation in a transaction.
    #[error("condition failed (operation {index})")]
    ConditionFailed { index: usize },
    #[error(
        "a transaction holds at most {MAX_TRANSACTION_OPS} operations and touches each item once"
    )]
    InvalidTransaction,
    /// Concurrent transactions on the same items kept the write from
    /// committing (DynamoDB's `TransactionConflict`); retrying may succeed.
    #[error("the write conflicted with concurrent writes")]
    Conflict,
    #[error("metadata store: {0}")]
    Backend(String),
}

/// The metadata port.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError>;
    /// Reads many items at once; the answer is in the order of `keys`.
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, KvError>;
    async fn query(&self, q: &Query) -> Result<Page, KvError>;
    /// One conditional write.
    async fn write(&self, op: WriteOp) -> Result<(), KvError> {
        self.transact(vec![op]).await
    }
    /// All-or-nothing writes; at most [`MAX_TRANSACTION_OPS`], each item once.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), KvError>;
}

/// Rejects transactions DynamoDB would reject, so the embedded adapter
/// behaves the same.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<(), KvError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(KvError::InvalidTransaction);
    }
    let mut keys = std::collections::HashSet::new();
    if ops.iter().all(|op| keys.insert(op.key())) {
        Ok(())
    } else {
        Err(KvError::InvalidTransaction)
    }
}
