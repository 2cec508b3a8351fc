//! Deliveries and their history: one execution per (policy, event), with
//! one task (its one target; Harbor's task id is the execution's id) and
//! one record per attempt.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `WHEXEC#<policy id>` | `<execution id, 20 digits>` | the execution: event, status, attempts made, the payload sent |
//! | `WHEXEC#<policy id>` | `count` | how many executions the policy has |
//! | `WHEVENT#<policy id>` | `<event id>` | `exec`: the execution made for that event |
//! | `WHATTEMPT#<execution id>` | `<attempt, 4 digits>` | one attempt: time, status code, error |
//!
//! An execution is created in one transaction with its event's item, on
//! the condition that the event has none yet: an event Berth hears twice
//! (the events queue delivers at least once) makes one execution. An
//! attempt is taken with a conditional write on the number of attempts
//! made and a lease (`inflight`), so two copies of a delivery job never
//! both send; a worker that dies mid-attempt leaves a lease that runs out,
//! and the job's redelivery takes the attempt over. The attempt's record
//! and the execution's new state commit together.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::policy::WebhookPolicies;
use crate::iam::directory::{Directory, DirectoryError};
use crate::registry::events::Event;
use crate::store::{Attr, Cond, Item, Kv, KvError, Query, SkRange, WriteOp, now_millis, now_secs};

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCESS: &str = "Success";
pub const ERROR: &str = "Error";

const COUNT_SK: &str = "count";

/// One execution as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: i64,
    pub policy_id: i64,
    pub project: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    /// The last attempt's error, on a failed execution.
    pub message: String,
    /// Epoch seconds.
    pub created: i64,
    pub updated: i64,
    /// Epoch seconds; 0 while unfinished.
    pub ended: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// The payload, the same bytes on every attempt.
    pub body: Vec<u8>,
    /// The payload format's name (`Default`, `CloudEvents`, `Slack`).
    pub format: String,
}

impl Execution {
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), SUCCESS | ERROR)
    }
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: i64,
    /// Epoch milliseconds.
    pub at: i64,
    /// The receiver's status code (0: no answer).
    pub status_code: u16,
    /// What went wrong (empty on success).
    pub error: String,
}

/// What taking an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Yours: send it.
    Go,
    /// Made already, or the execution is finished (a redelivery).
    Done,
    /// Another worker is making it now.
    Busy,
}

fn exec_pk(policy: i64) -> String {
    format!("WHEXEC#{policy}")
}

fn event_pk(policy: i64) -> String {
    format!("WHEVENT#{policy}")
}

fn attempt_pk(exec: i64) -> String {
    format!("WHATTEMPT#{exec}")
}

fn exec_sk(id: i64) -> String {
    format!("{id:020}")
}

fn decode(item: &Item) -> Option<Execution> {
    let policy_id = item.pk.strip_prefix("WHEXEC#")?.parse().ok()?;
    Some(Execution {
        id: item.sk.parse().ok()?,
        policy_id,
        project: item.s("project").unwrap_or_default().to_owned(),
        event_id: item.s("event").unwrap_or_default().to_owned(),
        event_type: item.s("event_type").unwrap_or_default().to_owned(),
        status: item.s("status").unwrap_or(PENDING).to_owned(),
        message: item.s("message").unwrap_or_default().to_owned(),
        created: item.n("created").unwrap_or(0),
        updated: item.n("updated").unwrap_or(0),
        ended: item.n("ended").unwrap_or(0),
        attempts: item.n("attempts").unwrap_or(0),
        body: item.b("body").map(<[u8]>::to_vec).unwrap_or_default(),
        format: item.s("format").unwrap_or_default().to_owned(),
    })
}

/// The executions of every policy, over the metadata port.
#[derive(Clone)]
pub struct Executions {
    kv: Arc<dyn Kv>,
}

pub type Result<T> = std::result::Result<T, KvError>;

impl Executions {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// The execution of policy `policy` for `event`, created (with
    /// `body`, the payload in `format`) unless the event has one already;
    /// true when this call created it.
    pub async fn ensure(
        &self,
        policy: i64,
        event: &Event,
        body: &[u8],
        format: &str,
    ) -> Result<(Execution, bool)> {
        if let Some(e) = self.of_event(policy, &event.id).await? {
            return Ok((e, false));
        }
        let id = Directory::new(self.kv.clone())
            .next_id("webhook_execution")
            .await
            .map_err(|e| match e {
                DirectoryError::Kv(k) => k,
                e => KvError::Backend(e.to_string()),
            })?;
        let now = now_secs();
        let item = Item::new(exec_pk(policy), exec_sk(id))
            .with("project", Attr::S(event.project.clone()))
            .with("event", Attr::S(event.id.clone()))
            .with("event_type", Attr::S(event.kind.clone()))
            .with("status", Attr::S(PENDING.to_owned()))
            .with("created", Attr::N(now))
            .with("updated", Attr::N(now))
            .with("attempts", Attr::N(0))
            .with("body", Attr::B(body.to_vec()))
            .with("format", Attr::S(format.to_owned()));
        let ops = vec![
            WriteOp::Put {
                item: Item::new(event_pk(policy), &event.id).with("exec", Attr::N(id)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: item.clone(),
                cond: Cond::NotExists,
            },
            WriteOp::count(exec_pk(policy), COUNT_SK, "n", 1),
            WebhookPolicies::trigger_put(&event.project, policy, &event.kind, now),
        ];
        match self.kv.transact(ops).await {
            Ok(()) => Ok((decode(&item).ok_or(KvError::Conflict)?, true)),
            // The same event, handled at the same time elsewhere.
            Err(KvError::ConditionFailed { .. } | KvError::Conflict) => self
                .of_event(policy, &event.id)
                .await?
                .map(|e| (e, false))
                .ok_or(KvError::Conflict),
            Err(e) => Err(e),
        }
    }

    /// The execution made for event `event` of policy `policy`.
    pub async fn of_event(&self, policy: i64, event: &str) -> Result<Option<Execution>> {
        let Some(item) = self.kv.get(&event_pk(policy), event).await? else {
            return Ok(None);
        };
        match item.n("exec") {
            Some(id) => self.get(policy, id).await,
            None => Ok(None),
        }
    }

    pub async fn get(&self, policy: i64, id: i64) -> Result<Option<Execution>> {
        Ok(self
            .kv
            .get(&exec_pk(policy), &exec_sk(id))
            .await?
            .and_then(|i| decode(&i)))
    }

    /// A page of the policy's executions, newest first, and how many it has.
    pub async fn page(
        &self,
        policy: i64,
        skip: usize,
        size: usize,
    ) -> Result<(Vec<Execution>, i64)> {
        let total = self
            .kv
            .get(&exec_pk(policy), COUNT_SK)
            .await?
            .and_then(|i| i.n("n"))
            .unwrap_or(0);
        let mut out = Vec::new();
        let mut seen = 0;
        let mut q = Query {
            pk: exec_pk(policy),
            range: SkRange::Prefix("0".into()),
            limit: (skip + size).clamp(1, 500),
            after: None,
            reverse: true,
        };
        loop {
            let page = self.kv.query(&q).await?;
            for item in &page.items {
                seen += 1;
                if seen > skip
                    && let Some(e) = decode(item)
                {
                    out.push(e);
                    if out.len() >= size {
                        return Ok((out, total));
                    }
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok((out, total)),
            }
        }
    }

    /// Takes attempt `attempt` (0-based: the number of attempts made
    /// before it) of an execution for `lease`.
    pub async fn take(&self, policy: i64, id: i64, attempt: i64, lease: Duration) -> Result<Take> {
        let Some(exec) = self.get(policy, id).await? else {
            return Ok(Take::Done);
        };
        if exec.finished() || exec.attempts != attempt {
            return Ok(Take::Done);
        }
        let now = now_millis();
        let op = WriteOp::Update {
            pk: exec_pk(policy),
            sk: exec_sk(id),
            set: [
                (
                    "inflight".to_owned(),
                    Attr::N(now + lease.as_millis() as i64),
                ),
                ("status".to_owned(), Attr::S(RUNNING.to_owned())),
            ]
            .into(),
            cond: Cond::All(vec![
                Cond::Eq("attempts".into(), Attr::N(attempt)),
                Cond::Any(vec![
                    Cond::Missing("inflight".into()),
                    Cond::Lt("inflight".into(), now),
                ]),
            ]),
        };
        match self.kv.write(op).await {
            Ok(()) => Ok(Take::Go),
            Err(KvError::ConditionFailed { .. } | KvError::Conflict) => {
                match self.get(policy, id).await? {
                    Some(e) if !e.finished() && e.attempts == attempt => Ok(Take::Busy),
                    _ => Ok(Take::Done),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Records attempt `a` (taken with [`Self::take`]) and moves the
    /// execution to `status` (`Running` while retries remain).
    pub async fn record(&self, policy: i64, id: i64, a: &Attempt, status: &str) -> Result<()> {
        let now = now_secs();
        let mut set: std::collections::BTreeMap<String, Attr> = [
            ("attempts".to_owned(), Attr::N(a.attempt)),
            ("inflight".to_owned(), Attr::N(0)),
            ("status".to_owned(), Attr::S(status.to_owned())),
            ("updated".to_owned(), Attr::N(now)),
            ("message".to_owned(), Attr::S(a.error.clone())),
        ]
        .into();
        if matches!(status, SUCCESS | ERROR) {
            set.insert("ended".into(), Attr::N(now));
        }
        let mut item = Item::new(attempt_pk(id), format!("{:04}", a.attempt))
            .with("at", Attr::N(a.at))
            .with("code", Attr::N(i64::from(a.status_code)));
        if !a.error.is_empty() {
            item = item.with("error", Attr::S(a.error.clone()));
        }
        let ops = vec![
            WriteOp::Update {
                pk: exec_pk(policy),
                sk: exec_sk(id),
                set,
                cond: Cond::Eq("attempts".into(), Attr::N(a.attempt - 1)),
            },
            WriteOp::put(item),
        ];
        match self.kv.transact(ops).await {
            // Recorded by a worker that took the attempt over meanwhile.
            Ok(()) | Err(KvError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every attempt of an execution, first first.
    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        let page = self
            .kv
            .query(&Query::prefix(attempt_pk(id), "", 1000))
            .await?;
        Ok(page
            .items
            .iter()
            .map(|i| Attempt {
                attempt: i.sk.parse().unwrap_or(0),
                at: i.n("at").unwrap_or(0),
                status_code: u16::try_from(i.n("code").unwrap_or(0)).unwrap_or(0),
                error: i.s("error").unwrap_or_default().to_owned(),
            })
            .collect())
    }
}
