//! Long jobs as items with a state machine (DESIGN §10): one run item plus
//! one task item per unit of work, each task also a queue message.
//!
//! - A run moves `Pending → Running → Success | Error | Stopped` (Harbor's
//!   words), only by conditional writes.
//! - Tasks are created (each only once) in the same transaction that adds
//!   them to the run's `pending` count, *before* their messages are sent.
//!   A worker takes a task with a conditional write and a lease; a
//!   redelivered message for a finished task does nothing, and one for a
//!   task whose worker died (its lease ran out) takes it over.
//! - A task's counts land on the run in the same transaction that finishes
//!   the task, so a redelivery never counts twice.
//! - A crash between creating tasks and sending their messages leaves
//!   tasks nobody works on: [`Runs::stalled`] finds them for the scheduled
//!   tick to send again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::kv::MAX_TRANSACTION_OPS;
use crate::store::{
    Attr, Cond, Item, Job, Kv, KvError, Query, SkRange, WriteOp, now_millis, now_secs,
};

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCESS: &str = "Success";
pub const ERROR: &str = "Error";
pub const STOPPED: &str = "Stopped";

const TASK_PENDING: &str = "pending";
const TASK_RUNNING: &str = "running";
const TASK_DONE: &str = "done";
const COUNT_PREFIX: &str = "c.";

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub kind: String,
    pub status: String,
    /// `Manual`, `Schedule` or `Event`.
    pub trigger: String,
    pub params: serde_json::Value,
    pub dry_run: bool,
    /// Epoch seconds.
    pub created: i64,
    pub updated: i64,
    /// Tasks created, and those not finished yet.
    pub tasks: i64,
    pub pending: i64,
    pub phase: String,
    pub counts: BTreeMap<String, i64>,
}

impl Run {
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), SUCCESS | ERROR | STOPPED)
    }

    pub fn count(&self, name: &str) -> i64 {
        self.counts.get(name).copied().unwrap_or(0)
    }
}

/// A unit of work: its key within the run and its message.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub key: String,
    pub job: Job,
}

/// What taking a task found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Yours, under this lease token.
    Go(String),
    /// Finished already (a redelivery), or its run was stopped.
    Done,
    /// Another worker holds it.
    Busy,
}

/// The runs of one kind (`gc`, `retention`, …).
#[derive(Clone)]
pub struct Runs {
    kv: Arc<dyn Kv>,
    kind: String,
}

pub type Result<T> = std::result::Result<T, KvError>;

fn counts_of(item: &Item) -> BTreeMap<String, i64> {
    item.attrs
        .iter()
        .filter_map(|(k, v)| match v {
            Attr::N(n) => Some((k.strip_prefix(COUNT_PREFIX)?.to_owned(), *n)),
            _ => None,
        })
        .collect()
}

impl Runs {
    pub fn new(kv: Arc<dyn Kv>, kind: &str) -> Self {
        Self {
            kv,
            kind: kind.to_owned(),
        }
    }

    fn pk(&self) -> String {
        format!("RUN#{}", self.kind)
    }

    fn sk(id: i64) -> String {
        format!("{id:020}")
    }

    fn task_pk(&self, id: i64) -> String {
        format!("RUNTASK#{}#{id}", self.kind)
    }

    fn log_pk(&self, id: i64) -> String {
        format!("RUNLOG#{}#{id}", self.kind)
    }

    fn decode(&self, item: &Item) -> Option<Run> {
        Some(Run {
            id: item.sk.parse().ok()?,
            kind: self.kind.clone(),
            status: item.s("status").unwrap_or(PENDING).to_owned(),
            trigger: item.s("trigger").unwrap_or("Manual").to_owned(),
            params: item
                .b("params")
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(serde_json::Value::Null),
            dry_run: item.n("dry") == Some(1),
            created: item.n("created").unwrap_or(0),
            updated: item.n("updated").unwrap_or(0),
            tasks: item.n("tasks").unwrap_or(0),
            pending: item.n("pending").unwrap_or(0),
            phase: item.s("phase").unwrap_or_default().to_owned(),
            counts: counts_of(item),
        })
    }

    /// A new id: one more than the newest run's.
    async fn next_id(&self) -> Result<i64> {
        let mut q = Query::prefix(self.pk(), "", 1).reversed();
        q.range = SkRange::All;
        let page = self.kv.query(&q).await?;
        Ok(page
            .items
            .first()
            .and_then(|i| i.sk.parse::<i64>().ok())
            .unwrap_or(0)
            + 1)
    }

    /// Starts a run in `phase` with its first tasks (at most 90), running.
    pub async fn create(
        &self,
        trigger: &str,
        params: serde_json::Value,
        dry_run: bool,
        phase: &str,
        first: &(dyn Fn(i64) -> Vec<TaskSpec> + Sync),
    ) -> Result<Run> {
        let body = serde_json::to_vec(&params).map_err(|e| KvError::Backend(e.to_string()))?;
        for _ in 0..20 {
            let id = self.next_id().await?;
            let first = first(id);
            let now = now_secs();
            let item = Item::new(self.pk(), Self::sk(id))
                .with("status", Attr::S(RUNNING.to_owned()))
                .with("trigger", Attr::S(trigger.to_owned()))
                .with("params", Attr::B(body.clone()))
                .with("dry", Attr::N(i64::from(dry_run)))
                .with("created", Attr::N(now))
                .with("updated", Attr::N(now))
                .with("tasks", Attr::N(first.len() as i64))
                .with("pending", Attr::N(first.len() as i64))
                .with("phase", Attr::S(phase.to_owned()));
            if first.len() > MAX_TRANSACTION_OPS - 1 {
                return Err(KvError::InvalidTransaction);
            }
            let mut ops = vec![WriteOp::Put {
                item: item.clone(),
                cond: Cond::NotExists,
            }];
            ops.extend(first.iter().map(|t| self.task_put(id, t)));
            match self.kv.transact(ops).await {
                Ok(()) => return Ok(self.decode(&item).unwrap_or_else(|| unreachable_run(id))),
                // Another run took the id: the next one.
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KvError::Conflict)
    }

    fn task_put(&self, id: i64, t: &TaskSpec) -> WriteOp {
        let job = serde_json::to_vec(&t.job).unwrap_or_default();
        WriteOp::Put {
            item: Item::new(self.task_pk(id), &t.key)
                .with("status", Attr::S(TASK_PENDING.to_owned()))
                .with("job", Attr::B(job)),
            cond: Cond::NotExists,
        }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Run>> {
        Ok(self
            .kv
            .get(&self.pk(), &Self::sk(id))
            .await?
            .and_then(|i| self.decode(&i)))
    }

    /// Runs newest first, after the run `after` (exclusive).
    pub async fn page(&self, after: Option<i64>, limit: usize) -> Result<(Vec<Run>, bool)> {
        let q = Query {
            pk: self.pk(),
            range: SkRange::All,
            limit: limit.max(1),
            after: after.map(Self::sk),
            reverse: true,
        };
        let page = self.kv.query(&q).await?;
        Ok((
            page.items.iter().filter_map(|i| self.decode(i)).collect(),
            page.next.is_some(),
        ))
    }

    /// How many runs there are (the newest id: runs are never removed).
    pub async fn count(&self) -> Result<i64> {
        Ok(self.next_id().await? - 1)
    }

    /// Adds tasks to a running run (each once: a redelivered fan-out adds
    /// nothing new); with `phase`, only if the run is in `phase.0`, moving
    /// it to `phase.1` in the same transaction. Returns false when the
    /// run was not running (or not in that phase).
    pub async fn add_tasks(
        &self,
        id: i64,
        tasks: &[TaskSpec],
        phase: Option<(&str, &str)>,
    ) -> Result<bool> {
        let mut phase = phase;
        for chunk in tasks.chunks(MAX_TRANSACTION_OPS - 10) {
            let existing = self
                .kv
                .batch_get(
                    &chunk
                        .iter()
                        .map(|t| (self.task_pk(id), t.key.clone()))
                        .collect::<Vec<_>>(),
                )
                .await?;
            let fresh: Vec<&TaskSpec> = chunk
                .iter()
                .zip(existing)
                .filter(|(_, e)| e.is_none())
                .map(|(t, _)| t)
                .collect();
            if fresh.is_empty() && phase.is_none() {
                continue;
            }
            let mut cond = vec![Cond::Eq("status".into(), Attr::S(RUNNING.to_owned()))];
            let mut set = BTreeMap::from([("updated".to_owned(), Attr::N(now_secs()))]);
            if let Some((from, to)) = phase.take() {
                cond.push(Cond::Eq("phase".into(), Attr::S(from.to_owned())));
                set.insert("phase".into(), Attr::S(to.to_owned()));
            }
            let n = fresh.len() as i64;
            let mut ops = vec![WriteOp::Upsert {
                pk: self.pk(),
                sk: Self::sk(id),
                add: [("tasks".to_owned(), n), ("pending".to_owned(), n)].into(),
                set,
                init: BTreeMap::new(),
                cond: Cond::All(cond),
            }];
            ops.extend(fresh.iter().map(|t| self.task_put(id, t)));
            match self.kv.transact(ops).await {
                Ok(()) => {}
                Err(KvError::ConditionFailed { index: 0 }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Takes task `key` of run `id` for `lease`.
    pub async fn take(&self, id: i64, key: &str, lease: Duration) -> Result<Take> {
        let Some(run) = self.get(id).await? else {
            return Ok(Take::Done);
        };
        if run.finished() {
            return Ok(Take::Done);
        }
        let Some(task) = self.kv.get(&self.task_pk(id), key).await? else {
            return Ok(Take::Done);
        };
        let now = now_millis();
        let cond = match task.s("status") {
            Some(TASK_DONE) => return Ok(Take::Done),
            Some(TASK_RUNNING) if task.n("lease").unwrap_or(0) > now => return Ok(Take::Busy),
            // Pending, or its worker's lease ran out: take it over.
            Some(s) => Cond::All(vec![
                Cond::Eq("status".into(), Attr::S(s.to_owned())),
                match task.s("token") {
                    Some(t) => Cond::Eq("token".into(), Attr::S(t.to_owned())),
                    None => Cond::Missing("token".into()),
                },
            ]),
            None => Cond::Exists,
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        let op = WriteOp::Update {
            pk: self.task_pk(id),
            sk: key.to_owned(),
            set: [
                ("status".to_owned(), Attr::S(TASK_RUNNING.to_owned())),
                ("token".to_owned(), Attr::S(token.clone())),
                ("lease".to_owned(), Attr::N(now + lease.as_millis() as i64)),
            ]
            .into(),
            cond,
        };
        match self.kv.write(op).await {
            Ok(()) => Ok(Take::Go(token)),
            Err(KvError::ConditionFailed { .. } | KvError::Conflict) => Ok(Take::Busy),
            Err(e) => Err(e),
        }
    }

    /// A worker's claim on task `key` of run `id`: the lease token and the
    /// run, or None when there is nothing to do (the task or its run is
    /// finished: a redelivery); an error when another worker holds the
    /// task (the queue brings the message back after its lease).
    pub async fn claim(
        &self,
        id: i64,
        key: &str,
        lease: Duration,
    ) -> std::result::Result<Option<(String, Run)>, String> {
        let token = match self.take(id, key, lease).await.map_err(|e| e.to_string())? {
            Take::Go(t) => t,
            Take::Done => return Ok(None),
            Take::Busy => {
                return Err(format!(
                    "{} task {key} of run {id} is held by another worker",
                    self.kind
                ));
            }
        };
        let run = self
            .get(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} run {id} vanished", self.kind))?;
        Ok(Some((token, run)))
    }

    /// Finishes a task taken under `token`, adding its counts to the run;
    /// returns the run as it is afterwards (None: the task was finished
    /// by someone else, e.g. after this worker's lease ran out).
    pub async fn finish(
        &self,
        id: i64,
        key: &str,
        token: &str,
        counts: &BTreeMap<String, i64>,
    ) -> Result<Option<Run>> {
        let mut add: BTreeMap<String, i64> = counts
            .iter()
            .map(|(k, v)| (format!("{COUNT_PREFIX}{k}"), *v))
            .collect();
        add.insert("pending".into(), -1);
        let ops = vec![
            WriteOp::Update {
                pk: self.task_pk(id),
                sk: key.to_owned(),
                set: counts
                    .iter()
                    .map(|(k, v)| (format!("{COUNT_PREFIX}{k}"), Attr::N(*v)))
                    .chain([
                        ("status".to_owned(), Attr::S(TASK_DONE.to_owned())),
                        ("finished".to_owned(), Attr::N(now_secs())),
                    ])
                    .collect(),
                cond: Cond::Eq("token".into(), Attr::S(token.to_owned())),
            },
            WriteOp::Upsert {
                pk: self.pk(),
                sk: Self::sk(id),
                add,
                set: [("updated".to_owned(), Attr::N(now_secs()))].into(),
                init: BTreeMap::new(),
                cond: Cond::Exists,
            },
        ];
        match self.kv.transact(ops).await {
            Ok(()) => self.get(id).await,
            Err(KvError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends a claimed task with what its work gave: a failure is logged on
    /// the run and returned (the queue brings the message back); a success
    /// finishes the task with its counts. Returns the run when this was its
    /// last pending task.
    pub async fn settle(
        &self,
        id: i64,
        key: &str,
        token: &str,
        work: std::result::Result<BTreeMap<String, i64>, String>,
    ) -> std::result::Result<Option<Run>, String> {
        let counts = match work {
            Ok(c) => c,
            Err(e) => {
                self.log(id, &format!("task {key} failed (will be retried): {e}"))
                    .await;
                return Err(e);
            }
        };
        let after = self
            .finish(id, key, token, &counts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(after.filter(|r| r.pending == 0))
    }

    /// Moves a run to `to` if it is in one of `from`.
    pub async fn set_status(&self, id: i64, from: &[&str], to: &str) -> Result<bool> {
        let op = WriteOp::Update {
            pk: self.pk(),
            sk: Self::sk(id),
            set: [
                ("status".to_owned(), Attr::S(to.to_owned())),
                ("updated".to_owned(), Attr::N(now_secs())),
            ]
            .into(),
            cond: Cond::Any(
                from.iter()
                    .map(|f| Cond::Eq("status".into(), Attr::S((*f).to_owned())))
                    .collect(),
            ),
        };
        match self.kv.write(op).await {
            Ok(()) => Ok(true),
            Err(KvError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Appends a line to the run's log.
    pub async fn log(&self, id: i64, line: &str) {
        let sk = format!(
            "{:020}#{}",
            now_millis(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let item = Item::new(self.log_pk(id), sk).with("line", Attr::S(line.to_owned()));
        if let Err(e) = self.kv.write(WriteOp::put(item)).await {
            tracing::warn!(run = id, error = %e, "could not write a job log line");
        }
    }

    /// The run's log, oldest line first, each with its time (RFC 3339).
    pub async fn logs(&self, id: i64, max: usize) -> Result<Vec<(i64, String)>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(self.log_pk(id), "", 500);
        loop {
            let page = self.kv.query(&q).await?;
            for i in page.items {
                let at =
                    i.sk.split('#')
                        .next()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                out.push((at, i.s("line").unwrap_or_default().to_owned()));
                if out.len() >= max {
                    return Ok(out);
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// The messages of unfinished tasks of running runs nobody updated
    /// for `quiet`: what a crash between creating tasks and sending them,
    /// or a message lost to the dead-letter queue, left behind.
    pub async fn stalled(&self, quiet: Duration) -> Result<Vec<Job>> {
        let (runs, _) = self.page(None, 20).await?;
        let before = now_secs() - quiet.as_secs() as i64;
        let mut out = Vec::new();
        for run in runs
            .iter()
            .filter(|r| r.status == RUNNING && r.updated < before)
        {
            let mut q = Query::prefix(self.task_pk(run.id), "", 500);
            loop {
                let page = self.kv.query(&q).await?;
                for t in &page.items {
                    let unfinished = t.s("status") != Some(TASK_DONE);
                    let expired = t.n("lease").unwrap_or(0) <= now_millis();
                    if unfinished
                        && expired
                        && let Some(job) = t.b("job").and_then(|b| serde_json::from_slice(b).ok())
                    {
                        out.push(job);
                    }
                }
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
            // Marked, so the next tick waits another `quiet` before resending.
            let _ = self
                .kv
                .write(WriteOp::Update {
                    pk: self.pk(),
                    sk: Self::sk(run.id),
                    set: [("updated".to_owned(), Attr::N(now_secs()))].into(),
                    cond: Cond::Exists,
                })
                .await;
        }
        Ok(out)
    }

    /// Task items of a run with their status and counts, in key order.
    pub async fn tasks(&self, id: i64) -> Result<Vec<(String, String, BTreeMap<String, i64>)>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(self.task_pk(id), "", 500);
        loop {
            let page = self.kv.query(&q).await?;
            out.extend(page.items.iter().map(|t| {
                (
                    t.sk.clone(),
                    t.s("status").unwrap_or(TASK_PENDING).to_owned(),
                    counts_of(t),
                )
            }));
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }
}

fn unreachable_run(id: i64) -> Run {
    Run {
        id,
        kind: String::new(),
        status: RUNNING.to_owned(),
        trigger: String::new(),
        params: serde_json::Value::Null,
        dry_run: false,
        created: 0,
        updated: 0,
        tasks: 0,
        pending: 0,
        phase: String::new(),
        counts: BTreeMap::new(),
    }
}
