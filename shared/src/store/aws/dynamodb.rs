//! DynamoDB [`Kv`] adapter: the single table of DESIGN §5 (`pk`, `sk`,
//! TTL attribute `ttl`).
//!
//! Reads are strongly consistent (a push is followed at once by a pull).
//! Conditions become condition expressions; since DynamoDB deletes expired
//! items only eventually, every existence test also looks at the TTL, so
//! an expired item is absent here exactly as in the embedded store.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::CallCounter;
use crate::store::kv::{
    Attr, Cond, Item, Kv, KvError, Page, Query, SkRange, TTL_ATTR, WriteOp, validate_transaction,
};
use crate::store::now_secs;

const PK: &str = "pk";
const SK: &str = "sk";
/// BatchGetItem's limit.
const BATCH_GET_MAX: usize = 100;

/// The DynamoDB metadata store.
#[derive(Clone, Debug)]
pub struct DynamoKv {
    client: Client,
    table: String,
}

fn backend<E: std::fmt::Debug + ProvideErrorMetadata>(e: E) -> KvError {
    let code = e.code().unwrap_or("unknown").to_owned();
    let msg = e.message().unwrap_or("").to_owned();
    KvError::Backend(format!("DynamoDB {code}: {msg}"))
}

fn to_av(a: &Attr) -> AttributeValue {
    match a {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.to_string()),
        Attr::B(b) => AttributeValue::B(Blob::new(b.clone())),
    }
}

fn from_item(mut m: HashMap<String, AttributeValue>) -> Result<Item, KvError> {
    let take_s = |m: &mut HashMap<String, AttributeValue>, k: &str| match m.remove(k) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(KvError::Backend(format!("item without string {k}"))),
    };
    let pk = take_s(&mut m, PK)?;
    let sk = take_s(&mut m, SK)?;
    let mut attrs = BTreeMap::new();
    for (k, v) in m {
        let a = match v {
            AttributeValue::S(s) => Attr::S(s),
            AttributeValue::N(n) => Attr::N(
                n.parse()
                    .map_err(|_| KvError::Backend(format!("attribute {k} is not an integer")))?,
            ),
            AttributeValue::B(b) => Attr::B(b.into_inner()),
            other => {
                return Err(KvError::Backend(format!(
                    "attribute {k} has an unsupported type {other:?}"
                )));
            }
        };
        attrs.insert(k, a);
    }
    Ok(Item { pk, sk, attrs })
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.to_owned())),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

fn to_item(i: &Item) -> HashMap<String, AttributeValue> {
    let mut m = key(&i.pk, &i.sk);
    m.extend(i.attrs.iter().map(|(k, v)| (k.clone(), to_av(v))));
    m
}

/// Whether a condition holds whatever the item (renders to nothing).
fn always(c: &Cond) -> bool {
    match c {
        Cond::Always => true,
        Cond::All(cs) => cs.iter().all(always),
        Cond::Any(cs) => cs.iter().any(always),
        _ => false,
    }
}

/// A condition expression with its placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, n: &str) -> String {
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), n.to_owned());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    /// "The item exists and has not expired."
    fn live(&mut self, now: i64) -> String {
        let pk = self.name(PK);
        let ttl = self.name(TTL_ATTR);
        let now = self.value(AttributeValue::N(now.to_string()));
        format!("(attribute_exists({pk}) AND (attribute_not_exists({ttl}) OR {ttl} > {now}))")
    }

    fn condition(&mut self, c: &Cond, now: i64) -> Option<String> {
        match c {
            Cond::Always => None,
            Cond::Exists => Some(self.live(now)),
            Cond::NotExists => Some(format!("NOT {}", self.live(now))),
            Cond::Eq(a, v) => {
                let live = self.live(now);
                let (n, v) = (self.name(a), self.value(to_av(v)));
                Some(format!("{live} AND {n} = {v}"))
            }
            Cond::Lt(a, v) => {
                let live = self.live(now);
                let (n, v) = (self.name(a), self.value(AttributeValue::N(v.to_string())));
                Some(format!("{live} AND {n} < {v}"))
            }
            Cond::Ge(a, v) => {
                let live = self.live(now);
                let (n, v) = (self.name(a), self.value(AttributeValue::N(v.to_string())));
                Some(format!("{live} AND {n} >= {v}"))
            }
            Cond::Missing(a) => {
                let live = self.live(now);
                let n = self.name(a);
                Some(format!("(NOT {live} OR attribute_not_exists({n}))"))
            }
            // A part that renders to nothing always holds. AND binds
            // tighter than OR, and every rendered OR is parenthesised, so
            // parts join without parentheses of their own (DynamoDB
            // refuses redundant ones).
            Cond::All(cs) => {
                let parts: Vec<String> = cs.iter().filter_map(|c| self.condition(c, now)).collect();
                (!parts.is_empty()).then(|| parts.join(" AND "))
            }
            Cond::Any(cs) => {
                if cs.iter().any(always) {
                    return None;
                }
                let mut parts = Vec::with_capacity(cs.len());
                for c in cs {
                    parts.push(self.condition(c, now)?);
                }
                if parts.is_empty() {
                    // Nothing to satisfy: never holds.
                    let live = self.live(now);
                    return Some(format!("NOT {live} AND {live}"));
                }
                if parts.len() == 1 {
                    return parts.pop();
                }
                Some(format!("({})", parts.join(" OR ")))
            }
        }
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// One write, in DynamoDB's terms.
enum Prepared {
    Put(Put),
    Delete(Delete),
    Update(Update),
    Check(ConditionCheck),
    /// A check that always holds: nothing to send.
    Nothing,
}

impl DynamoKv {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, counter: &CallCounter) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(counter.clone())
            .build();
        Self {
            client: Client::from_conf(conf),
            table: table.to_owned(),
        }
    }

    fn prepare(&self, op: &WriteOp, now: i64) -> Result<Prepared, KvError> {
        let mut e = Expr::default();
        let build_err =
            |err: aws_sdk_dynamodb::error::BuildError| KvError::Backend(err.to_string());
        Ok(match op {
            WriteOp::Put { item, cond } => {
                let c = e.condition(cond, now);
                Prepared::Put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_item(item)))
                        .set_condition_expression(c)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(build_err)?,
                )
            }
            WriteOp::Delete { pk, sk, cond } => {
                let c = e.condition(cond, now);
                Prepared::Delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .set_condition_expression(c)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(build_err)?,
                )
            }
            WriteOp::Check { pk, sk, cond } => match e.condition(cond, now) {
                None => Prepared::Nothing,
                Some(c) => Prepared::Check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .condition_expression(c)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(build_err)?,
                ),
            },
            WriteOp::Update { pk, sk, set, cond } => {
                let live = e.live(now);
                let c = match e.condition(cond, now) {
                    Some(c) => format!("{live} AND {c}"),
                    None => live,
                };
                let sets: Vec<String> = set
                    .iter()
                    .map(|(k, v)| {
                        let n = e.name(k);
                        let v = e.value(to_av(v));
                        format!("{n} = {v}")
                    })
                    .collect();
                Prepared::Update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .update_expression(format!("SET {}", sets.join(", ")))
                        .condition_expression(c)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(build_err)?,
                )
            }
            WriteOp::Upsert {
                pk,
                sk,
                add,
                set,
                init,
                cond,
            } => {
                let c = e.condition(cond, now);
                let mut sets: Vec<String> = Vec::new();
                for (k, v) in set {
                    let (n, v) = (e.name(k), e.value(to_av(v)));
                    sets.push(format!("{n} = {v}"));
                }
                for (k, v) in init {
                    let (n, v) = (e.name(k), e.value(to_av(v)));
                    sets.push(format!("{n} = if_not_exists({n}, {v})"));
                }
                let adds: Vec<String> = add
                    .iter()
                    .map(|(k, d)| {
                        let n = e.name(k);
                        let v = e.value(AttributeValue::N(d.to_string()));
                        format!("{n} {v}")
                    })
                    .collect();
                let mut expr = Vec::new();
                if !sets.is_empty() {
                    expr.push(format!("SET {}", sets.join(", ")));
                }
                if !adds.is_empty() {
                    expr.push(format!("ADD {}", adds.join(", ")));
                }
                if expr.is_empty() {
                    // Nothing to change: still create the item.
                    let n = e.name(PK);
                    let v = e.value(AttributeValue::S(pk.clone()));
                    expr.push(format!("SET {n} = {v}"));
                }
                Prepared::Update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .update_expression(expr.join(" "))
                        .set_condition_expression(c)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(build_err)?,
                )
            }
        })
    }

    /// Sends one write as a plain (cheaper) request instead of a transaction.
    async fn write_one(&self, op: Prepared) -> Result<(), KvError> {
        fn check<T, E: ProvideErrorMetadata + std::fmt::Debug>(
            r: Result<T, SdkError<E, HttpResponse>>,
        ) -> Result<(), KvError> {
            match r {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                    Err(KvError::ConditionFailed { index: 0 })
                }
                // The item is part of a transaction in flight.
                Err(e) if e.code() == Some("TransactionConflictException") => {
                    Err(KvError::Conflict)
                }
                Err(e) => Err(backend(e)),
            }
        }
        let c = &self.client;
        match op {
            Prepared::Put(p) => check(
                c.put_item()
                    .table_name(p.table_name)
                    .set_item(Some(p.item))
                    .set_condition_expression(p.condition_expression)
                    .set_expression_attribute_names(p.expression_attribute_names)
                    .set_expression_attribute_values(p.expression_attribute_values)
                    .send()
                    .await,
            ),
            Prepared::Delete(d) => check(
                c.delete_item()
                    .table_name(d.table_name)
                    .set_key(Some(d.key))
                    .set_condition_expression(d.condition_expression)
                    .set_expression_attribute_names(d.expression_attribute_names)
                    .set_expression_attribute_values(d.expression_attribute_values)
                    .send()
                    .await,
            ),
            Prepared::Update(u) => check(
                c.update_item()
                    .table_name(u.table_name)
                    .set_key(Some(u.key))
                    .update_expression(u.update_expression)
                    .set_condition_expression(u.condition_expression)
                    .set_expression_attribute_names(u.expression_attribute_names)
                    .set_expression_attribute_values(u.expression_attribute_values)
                    .send()
                    .await,
            ),
            // `write` sends lone checks as transactions.
            Prepared::Check(_) => Err(KvError::InvalidTransaction),
            Prepared::Nothing => Ok(()),
        }
    }
}

#[async_trait]
impl Kv for DynamoKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        match out.item {
            Some(m) => {
                let item = from_item(m)?;
                Ok((!item.expired_at(now_secs())).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, KvError> {
        let mut unique: Vec<&(String, String)> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| KvError::Backend(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ka)
                    .send()
                    .await
                    .map_err(backend)?;
                for m in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let item = from_item(m)?;
                    found.insert((item.pk.clone(), item.sk.clone()), item);
                }
                if let Some(mut rest) = out.unprocessed_keys
                    && let Some(ka) = rest.remove(&self.table)
                {
                    pending = ka.keys;
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
                }
            }
        }
        let now = now_secs();
        Ok(keys
            .iter()
            .map(|k| found.get(k).filter(|i| !i.expired_at(now)).cloned())
            .collect())
    }

    async fn query(&self, q: &Query) -> Result<Page, KvError> {
        let mut e = Expr::default();
        let pk = e.name(PK);
        let pkv = e.value(AttributeValue::S(q.pk.clone()));
        // DynamoDB refuses empty strings in key conditions: an empty
        // prefix is the whole partition, an empty lower bound is no bound.
        let cond = match &q.range {
            SkRange::All => format!("{pk} = {pkv}"),
            SkRange::Prefix(p) if p.is_empty() => format!("{pk} = {pkv}"),
            SkRange::Between(a, b) if a.is_empty() => {
                let sk = e.name(SK);
                let vb = e.value(AttributeValue::S(b.clone()));
                format!("{pk} = {pkv} AND {sk} <= {vb}")
            }
            SkRange::Prefix(p) => {
                let sk = e.name(SK);
                let v = e.value(AttributeValue::S(p.clone()));
                format!("{pk} = {pkv} AND begins_with({sk}, {v})")
            }
            SkRange::Between(a, b) => {
                let sk = e.name(SK);
                let (va, vb) = (
                    e.value(AttributeValue::S(a.clone())),
                    e.value(AttributeValue::S(b.clone())),
                );
                format!("{pk} = {pkv} AND {sk} BETWEEN {va} AND {vb}")
            }
        };
        let start = q.after.as_ref().map(|a| key(&q.pk, a));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .set_exclusive_start_key(start)
            .scan_index_forward(!q.reverse)
            .limit(q.limit.clamp(1, i32::MAX as usize) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let now = now_secs();
        let mut items = Vec::new();
        for m in out.items.unwrap_or_default() {
            let item = from_item(m)?;
            if !item.expired_at(now) {
                items.push(item);
            }
        }
        let next = out.last_evaluated_key.and_then(|mut k| match k.remove(SK) {
            Some(AttributeValue::S(s)) => Some(s),
            _ => None,
        });
        Ok(Page { items, next })
    }

    async fn write(&self, op: WriteOp) -> Result<(), KvError> {
        if matches!(op, WriteOp::Check { .. }) {
            return self.transact(vec![op]).await;
        }
        let prepared = self.prepare(&op, now_secs())?;
        self.write_one(prepared).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), KvError> {
        validate_transaction(&ops)?;
        let now = now_secs();
        // Positions in `ops` of the items sent (always-true checks are not).
        let mut sent_index = Vec::new();
        let mut items = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let item = match self.prepare(op, now)? {
                Prepared::Put(p) => TransactWriteItem::builder().put(p).build(),
                Prepared::Delete(d) => TransactWriteItem::builder().delete(d).build(),
                Prepared::Update(u) => TransactWriteItem::builder().update(u).build(),
                Prepared::Check(c) => TransactWriteItem::builder().condition_check(c).build(),
                Prepared::Nothing => continue,
            };
            sent_index.push(i);
            items.push(item);
        }
        if items.is_empty() {
            return Ok(());
        }
        let mut attempt = 0u32;
        loop {
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let Err(e) = r else { return Ok(()) };
            let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) =
                e.as_service_error()
            else {
                return Err(backend(e));
            };
            let reasons = t.cancellation_reasons();
            if let Some(pos) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                return Err(KvError::ConditionFailed {
                    index: sent_index.get(pos).copied().unwrap_or(pos),
                });
            }
            // Conflicts with a concurrent transaction: retry a few times.
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict {
                return Err(backend(e));
            }
            if attempt >= 4 {
                return Err(KvError::Conflict);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
        }
    }
}
