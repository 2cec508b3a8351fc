//! The `replication` worker: executions of replication policies (Harbor's
//! `ReplicationExecution`), each a run of queue tasks ([`crate::jobs::runs`])
//! so none runs long and a crash loses nothing.
//!
//! - A manual or scheduled execution starts with one listing task, which
//!   lists the source's repositories the name filters select and adds a
//!   task per repository; a repository task lists its artifacts, applies
//!   the filters and adds one copy task per artifact (Harbor's tasks).
//! - An event-based execution (a push to, or a delete from, this
//!   registry) starts with the one copy (or deletion) task of the event's
//!   artifact. Each event starts at most one execution per policy: a
//!   marker keyed by (policy, event id) is claimed with a conditional
//!   write before the run is created, and names the run afterwards.
//! - A copy task copies its artifact in the order [`super::copy`] gives,
//!   so it can be killed anywhere and run again: what the destination has
//!   is skipped. A failure the other side may get over (no answer, `5xx`,
//!   `429`) returns the task to the queue, up to [`MAX_ATTEMPTS`]; others
//!   fail the task at once. A listing task that keeps failing (a source
//!   that refuses the credential) is given up after as many attempts. An execution with a failed task ends `Error`
//!   (Harbor's `Failed`).
//! - Stopping an execution marks it `Stopped`: tasks taken later do
//!   nothing, and a copy under way stops at its next blob or manifest.
//! - When an execution ends, a `REPLICATION` event is raised.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `REPLICATION#TASK#<run id>` | `<task key>` | a copy task's report: status, attempts, times, log |
//! | `REPLICATION#ATTEMPT#<run id>` | `<task key>` | a listing task's attempts |
//! | `REPLICATION#BLOB#<registry id>` | `<digest>` | a repository of that registry a copy put the blob in (a mount source) |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, AdapterError, Local, Remote};
use super::copy::{BlobHints, Copied, Copy, Proceed};
use super::endpoints::{self, Endpoint, Endpoints};
use super::filter::{Candidate, repository_selected, select};
use super::policies::{self, Policies, Policy, dest_repository, schedule_name};
use crate::jobs::runs::{self, Run, Runs, TaskSpec};
use crate::jobs::schedule::Schedules;
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, RepoName};
use crate::outbound::{AddressPolicy, ClientOptions, SafeClient};
use crate::registry::Registry;
use crate::registry::catalog::Order;
use crate::registry::events::{Event, kinds};
use crate::store::{
    Attr, Cond, Item, Job, Kv, KvError, Query, Queue, WriteOp, now_millis, now_secs,
};

/// The run kind in the job store.
pub const KIND: &str = "replication";
/// Task kinds (every job kind of this worker starts with `replication.`).
pub const LIST: &str = "replication.list";
pub const REPO: &str = "replication.repo";
pub const COPY: &str = "replication.copy";
pub const DELETE: &str = "replication.delete";
/// Attempts of a copy task before it fails for good.
pub const MAX_ATTEMPTS: i64 = 5;

/// Run triggers (the job store's words) and Harbor's.
pub const MANUAL: &str = "Manual";
pub const SCHEDULE: &str = "Schedule";
pub const EVENT: &str = "Event";

const PHASE_LIST: &str = "list";
const PHASE_EVENT: &str = "event";
/// Artifacts a repository task reads per page.
const ARTIFACT_PAGE: usize = 100;
/// Most bytes of log a task keeps.
const MAX_TASK_LOG: usize = 64 * 1024;
/// How long an unfinished event claim blocks another delivery.
const EVENT_CLAIM: Duration = Duration::from_secs(120);

/// Task statuses as Harbor shows them.
pub mod status {
    pub const PENDING: &str = "Pending";
    pub const IN_PROGRESS: &str = "InProgress";
    pub const SUCCEED: &str = "Succeed";
    pub const FAILED: &str = "Failed";
    pub const STOPPED: &str = "Stopped";
}

/// Harbor's trigger word of a run.
pub fn harbor_trigger(run: &Run) -> &'static str {
    match run.trigger.as_str() {
        SCHEDULE => policies::SCHEDULED,
        EVENT => policies::EVENT_BASED,
        _ => policies::MANUAL,
    }
}

/// Harbor's status word of a run.
pub fn harbor_status(run: &Run) -> &'static str {
    match run.status.as_str() {
        runs::SUCCESS => status::SUCCEED,
        runs::ERROR => status::FAILED,
        runs::STOPPED => status::STOPPED,
        _ => status::IN_PROGRESS,
    }
}

/// A run's stored parameters: the policy as it was when it started (no
/// credential: tasks read the endpoint when they run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub policy: Policy,
    pub started: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The stored parameters of a run.
pub fn stored_of(run: &Run) -> Option<Stored> {
    serde_json::from_value(run.params.clone()).ok()
}

/// One task message's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    run: i64,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// A repository task's cursor (local sources page their artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

fn task(kind: &str, p: &Payload) -> TaskSpec {
    TaskSpec {
        key: p.key.clone(),
        job: Job::new(kind, serde_json::to_value(p).unwrap_or_default()),
    }
}

/// The key of an artifact's copy (or deletion) task.
pub fn artifact_key(op: &str, repo: &str, digest: &str) -> String {
    format!("{op}#{repo}@{digest}")
}

/// Harbor's numeric id of a task: stable, from its key.
pub fn task_id(key: &str) -> i64 {
    let d = crate::oci::sha256_digest(key.as_bytes());
    i64::from_str_radix(&d.digest()[..12], 16).unwrap_or(0)
}

/// Why an execution could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("replication policy {0} not found")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] KvError),
    #[error("could not queue the replication: {0}")]
    Queue(String),
}

/// A copy task's report as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskReport {
    pub key: String,
    pub status: String,
    pub attempts: i64,
    pub started: i64,
    pub finished: i64,
    pub log: String,
}

fn report_pk(run: i64) -> String {
    format!("REPLICATION#TASK#{run}")
}

fn exec_pk(policy: i64) -> String {
    format!("REPLICATION#EXEC#{policy}")
}

fn event_pk(policy: i64) -> String {
    format!("REPLICATION#EVENT#{policy}")
}

fn run_sk(run: i64) -> String {
    format!("{run:020}")
}

/// A client for peers: blobs take long, so the answer may too.
pub fn peer_client(policy: AddressPolicy) -> Result<SafeClient, String> {
    SafeClient::new(ClientOptions {
        policy,
        timeout: Duration::from_secs(3600),
        ..ClientOptions::default()
    })
    .map_err(|e| e.to_string())
}

/// Starts, runs and stops replication executions.
#[derive(Clone)]
pub struct Replication {
    registry: Registry,
    runs: Runs,
    queue: Arc<dyn Queue>,
    lease: Duration,
    /// Fixed address policy; `None`: the one in force when a task runs
    /// ([`crate::outbound::policy_for`]).
    address_policy: Option<AddressPolicy>,
}

impl Replication {
    /// Over `registry`, sending tasks to `queue` (the replication queue).
    pub fn new(registry: Registry, queue: Arc<dyn Queue>) -> Self {
        let runs = Runs::new(registry.kv().clone(), KIND);
        Self {
            registry,
            runs,
            queue,
            lease: Duration::from_secs(600),
            address_policy: None,
        }
    }

    /// How long a worker holds a task before a redelivery may take it over
    /// (shorter than the queue's visibility timeout).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Which addresses peers may have, whatever `/configurations` says.
    #[must_use]
    pub fn with_address_policy(mut self, policy: AddressPolicy) -> Self {
        self.address_policy = Some(policy);
        self
    }

    /// Which addresses peers may have now.
    pub async fn address_policy(&self) -> AddressPolicy {
        match self.address_policy {
            Some(p) => p,
            None => {
                let dir = crate::iam::directory::Directory::new(self.registry.kv().clone());
                crate::outbound::policy_for(&dir).await
            }
        }
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    pub fn policies(&self) -> Policies {
        Policies::new(self.registry.kv().clone())
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.registry.kv().clone())
    }

    /// A side over endpoint `e`.
    pub async fn remote(&self, e: Endpoint) -> Result<Remote, String> {
        let http = peer_client(self.address_policy().await)?;
        Remote::new(http, e).map_err(|e| e.to_string())
    }

    /// The side a registry id names (0: this registry).
    async fn side(&self, id: Option<i64>) -> Result<Box<dyn Adapter>, String> {
        match id.filter(|i| *i > 0) {
            None => Ok(Box::new(Local::new(self.registry.clone()))),
            Some(id) => {
                let e = endpoints::endpoint(self.registry.kv(), id)
                    .await
                    .ok_or_else(|| format!("registry {id} not found"))?;
                Ok(Box::new(self.remote(e).await?))
            }
        }
    }

    // ---- starting -------------------------------------------------------

    /// Starts an execution of policy `policy_id` (`trigger`: [`MANUAL`] or
    /// [`SCHEDULE`]).
    pub async fn start(&self, policy_id: i64, trigger: &str) -> Result<Run, StartError> {
        let policy = self
            .policies()
            .get(policy_id)
            .await
            .map_err(|e| match e {
                super::ReplicationError::Kv(k) => StartError::Store(k),
                e => StartError::Invalid(e.to_string()),
            })?
            .ok_or(StartError::NotFound(policy_id))?;
        if !policy.enabled {
            return Err(StartError::Invalid(format!(
                "the policy {policy_id} is disabled"
            )));
        }
        if endpoints::endpoint(self.registry.kv(), policy.remote())
            .await
            .is_none()
        {
            return Err(StartError::Invalid(format!(
                "the registry {} of policy {policy_id} does not exist",
                policy.remote()
            )));
        }
        if policy.single_active_replication && self.running(policy_id).await? {
            return Err(StartError::Invalid(format!(
                "an execution of policy {policy_id} is still running (single_active_replication)"
            )));
        }
        let stored = Stored {
            policy,
            started: now_secs(),
            event_id: None,
        };
        let first = |id: i64| {
            vec![task(
                LIST,
                &Payload {
                    run: id,
                    key: "list".to_owned(),
                    repo: None,
                    digest: None,
                    tags: Vec::new(),
                    after: None,
                },
            )]
        };
        self.create(trigger, &stored, PHASE_LIST, &first).await
    }

    /// Whether an execution of the policy has not ended.
    async fn running(&self, policy_id: i64) -> Result<bool, KvError> {
        Ok(self
            .policy_runs(policy_id, 20)
            .await?
            .iter()
            .any(|r| !r.finished()))
    }

    /// Creates a run, lists it under its policy and sends its first tasks.
    async fn create(
        &self,
        trigger: &str,
        stored: &Stored,
        phase: &str,
        first: &(dyn Fn(i64) -> Vec<TaskSpec> + Sync),
    ) -> Result<Run, StartError> {
        let params = serde_json::to_value(stored).map_err(|e| StartError::Queue(e.to_string()))?;
        let run = self
            .runs
            .create(trigger, params, false, phase, first)
            .await?;
        self.registry
            .kv()
            .write(WriteOp::put(Item::new(
                exec_pk(stored.policy.id),
                run_sk(run.id),
            )))
            .await?;
        let p = &stored.policy;
        self.runs
            .log(
                run.id,
                &format!(
                    "replication started ({trigger}): policy {} {:?}, {} registry {}",
                    p.id,
                    p.name,
                    if p.push_based() { "to" } else { "from" },
                    p.remote()
                ),
            )
            .await;
        self.send(&first(run.id)).await.map_err(StartError::Queue)?;
        Ok(run)
    }

    async fn send(&self, tasks: &[TaskSpec]) -> Result<(), String> {
        for t in tasks {
            self.queue.send(&t.job).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Stops an execution; false when it was not running.
    pub async fn stop(&self, run: i64, by: &str) -> Result<bool, KvError> {
        let stopped = self
            .runs
            .set_status(run, &[runs::PENDING, runs::RUNNING], runs::STOPPED)
            .await?;
        if stopped {
            self.runs.log(run, &format!("stopped by {by}")).await;
            if let Some(r) = self.runs.get(run).await? {
                self.announce(&r);
            }
        }
        Ok(stopped)
    }

    // ---- events ---------------------------------------------------------

    /// Starts the executions an artifact event calls for: every enabled,
    /// event-based, push-based policy whose filters select the artifact
    /// (a push is copied; a delete is propagated by policies that
    /// replicate deletions). Idempotent per (policy, event id).
    pub async fn on_event(&self, e: &Event) -> Result<(), String> {
        let op = match e.kind.as_str() {
            kinds::PUSH_ARTIFACT => COPY,
            kinds::DELETE_ARTIFACT => DELETE,
            _ => return Ok(()),
        };
        let (Some(repo), Some(digest)) = (
            e.data.get("repository").and_then(|v| v.as_str()),
            e.data.get("digest").and_then(|v| v.as_str()),
        ) else {
            return Ok(());
        };
        let tags: Vec<String> = e
            .data
            .get("tags")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let policies = self.policies().list().await.map_err(|e| e.to_string())?;
        let wanted: Vec<Policy> = policies
            .into_iter()
            .filter(|p| p.enabled && p.trigger.kind == policies::EVENT_BASED && p.push_based())
            .filter(|p| op == COPY || p.replicate_deletion)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let candidate = self.event_candidate(e, repo, digest, &tags).await;
        let mut failed = Vec::new();
        for p in wanted {
            let Some(selected) = select(&p.filters, &candidate) else {
                continue;
            };
            // A push event's untagged artifact is copied only if the
            // filters keep untagged ones.
            if let Err(err) = self
                .start_for_event(&p, e, op, repo, digest, selected)
                .await
            {
                failed.push(format!("policy {}: {err}", p.id));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    async fn event_candidate(
        &self,
        e: &Event,
        repo: &str,
        digest: &str,
        tags: &[String],
    ) -> Candidate {
        let media_type = e
            .data
            .get("media_type")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let mut c = Candidate {
            repository: repo.to_owned(),
            tags: tags.to_vec(),
            labels: None,
            media_type,
            config_type: None,
        };
        if let (Ok(name), Ok(d)) = (repo.parse::<RepoName>(), parse_digest(digest)) {
            let local = Local::new(self.registry.clone());
            c.labels = local.labels(repo, &d).await.ok().flatten();
            if let Ok(art) = self
                .registry
                .artifact(&name, &crate::oci::Reference::Digest(d))
                .await
            {
                c.config_type = config_type(&art.bytes);
                c.media_type = art.media_type;
            }
        }
        c
    }

    /// One policy's execution for one event, at most once.
    async fn start_for_event(
        &self,
        p: &Policy,
        e: &Event,
        op: &str,
        repo: &str,
        digest: &str,
        tags: Vec<String>,
    ) -> Result<(), String> {
        let kv = self.registry.kv();
        let pk = event_pk(p.id);
        let now = now_millis();
        let err = |e: KvError| e.to_string();
        match kv.get(&pk, &e.id).await.map_err(err)? {
            Some(m) if m.n("run").is_some() => return Ok(()),
            Some(m) => {
                let at = m.n("at").unwrap_or(0);
                if at + EVENT_CLAIM.as_millis() as i64 > now {
                    return Err("another delivery of this event is starting it".to_owned());
                }
                // Its claimer died: take the claim over, unless its run
                // was created after all.
                let cond = Cond::Eq("at".into(), Attr::N(at));
                let item = Item::new(&pk, &e.id).with("at", Attr::N(now));
                match kv.write(WriteOp::Put { item, cond }).await {
                    Ok(()) => {}
                    Err(KvError::ConditionFailed { .. }) => return Ok(()),
                    Err(x) => return Err(x.to_string()),
                }
                if let Some(run) = self.run_of_event(p.id, &e.id).await.map_err(err)? {
                    return self.mark_event(p.id, &e.id, run).await;
                }
            }
            None => {
                let item = Item::new(&pk, &e.id).with("at", Attr::N(now));
                match kv
                    .write(WriteOp::Put {
                        item,
                        cond: Cond::NotExists,
                    })
                    .await
                {
                    Ok(()) => {}
                    // Another delivery claimed it meanwhile.
                    Err(KvError::ConditionFailed { .. }) => return Ok(()),
                    Err(x) => return Err(x.to_string()),
                }
            }
        }
        let stored = Stored {
            policy: p.clone(),
            started: now_secs(),
            event_id: Some(e.id.clone()),
        };
        let payload = Payload {
            run: 0,
            key: artifact_key(if op == COPY { "copy" } else { "delete" }, repo, digest),
            repo: Some(repo.to_owned()),
            digest: Some(digest.to_owned()),
            tags,
            after: None,
        };
        let first = |id: i64| {
            let mut p = payload.clone();
            p.run = id;
            vec![task(op, &p)]
        };
        let run = self
            .create(EVENT, &stored, PHASE_EVENT, &first)
            .await
            .map_err(|e| e.to_string())?;
        self.mark_event(p.id, &e.id, run.id).await
    }

    async fn mark_event(&self, policy: i64, event: &str, run: i64) -> Result<(), String> {
        let item = Item::new(event_pk(policy), event)
            .with("at", Attr::N(now_millis()))
            .with("run", Attr::N(run));
        self.registry
            .kv()
            .write(WriteOp::put(item))
            .await
            .map_err(|e| e.to_string())
    }

    /// The run a policy started for an event, among its newest runs.
    async fn run_of_event(&self, policy: i64, event: &str) -> Result<Option<i64>, KvError> {
        for run in self.policy_runs(policy, 50).await? {
            if stored_of(&run).and_then(|s| s.event_id).as_deref() == Some(event) {
                return Ok(Some(run.id));
            }
        }
        Ok(None)
    }

    /// The newest `max` runs of a policy, newest first.
    pub async fn policy_runs(&self, policy: i64, max: usize) -> Result<Vec<Run>, KvError> {
        let ids = self.policy_run_ids(policy, max).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.runs.get(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The ids of a policy's newest `max` runs, newest first.
    pub async fn policy_run_ids(&self, policy: i64, max: usize) -> Result<Vec<i64>, KvError> {
        policy_run_ids(self.registry.kv(), policy, max).await
    }

    // ---- running --------------------------------------------------------

    /// Runs one job of this worker; false for a kind that is not one
    /// (`replication.*` only). Idempotent.
    pub async fn run(&self, job: &Job) -> Result<bool, String> {
        match job.kind.as_str() {
            LIST | REPO | COPY | DELETE => {
                self.task(job).await?;
                Ok(true)
            }
            k if k.starts_with("replication.") => {
                tracing::warn!(job = %job.id, kind = k, "replication: unknown job kind; acknowledged without action");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn task(&self, job: &Job) -> Result<(), String> {
        let p: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| format!("replication task payload: {e}"))?;
        let Some((token, run)) = self.runs.claim(p.run, &p.key, self.lease).await? else {
            return Ok(());
        };
        let stored = stored_of(&run).ok_or("replication run params unreadable")?;
        let work = match job.kind.as_str() {
            LIST | REPO => self.listing(job.kind.as_str(), &p, &stored).await?,
            _ => self.artifact(job.kind.as_str(), &p, &stored).await,
        };
        let after = self.runs.settle(p.run, &p.key, &token, work).await?;
        if let Some(after) = after {
            self.finish(&after).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A listing task, given up (and counted as failed) after
    /// [`MAX_ATTEMPTS`] failures, so a source that keeps refusing ends the
    /// execution `Error` rather than retrying forever.
    async fn listing(
        &self,
        kind: &str,
        p: &Payload,
        stored: &Stored,
    ) -> Result<Result<std::collections::BTreeMap<String, i64>, String>, String> {
        let attempts = self.count_attempt(p.run, &p.key).await?;
        let work = if kind == LIST {
            self.list(p, stored).await
        } else {
            self.repository(p, stored).await
        };
        Ok(match work {
            Err(e) if attempts >= MAX_ATTEMPTS => {
                self.runs
                    .log(
                        p.run,
                        &format!("task {} failed {attempts} times; given up: {e}", p.key),
                    )
                    .await;
                Ok([("listing_failed".to_owned(), 1)].into())
            }
            w => w,
        })
    }

    /// Counts an attempt of a listing task; returns it.
    async fn count_attempt(&self, run: i64, key: &str) -> Result<i64, String> {
        let kv = self.registry.kv();
        let pk = format!("REPLICATION#ATTEMPT#{run}");
        kv.write(WriteOp::count(&pk, key, "n", 1))
            .await
            .map_err(|e| e.to_string())?;
        Ok(kv
            .get(&pk, key)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|i| i.n("n"))
            .unwrap_or(1))
    }

    /// Ends a run whose last task finished.
    async fn finish(&self, run: &Run) -> Result<(), KvError> {
        let failed = run.count("failed");
        let to = if failed > 0 || run.count("listing_failed") > 0 {
            runs::ERROR
        } else {
            runs::SUCCESS
        };
        if !self.runs.set_status(run.id, &[runs::RUNNING], to).await? {
            return Ok(());
        }
        self.runs
            .log(
                run.id,
                &format!(
                    "replication finished: {} artifacts, {} succeeded, {} failed; {} blobs copied ({} bytes), {} skipped",
                    total_of(run),
                    run.count("succeed"),
                    failed,
                    run.count("blobs_copied"),
                    run.count("bytes"),
                    run.count("blobs_skipped") + run.count("blobs_mounted"),
                ),
            )
            .await;
        if let Some(r) = self.runs.get(run.id).await? {
            self.announce(&r);
        }
        Ok(())
    }

    /// Raises the `REPLICATION` event of a finished run.
    fn announce(&self, run: &Run) {
        let Some(stored) = stored_of(run) else {
            return;
        };
        let p = &stored.policy;
        let data = serde_json::json!({
            "policy_id": p.id,
            "policy_name": p.name,
            "execution_id": run.id,
            "trigger": harbor_trigger(run),
            "status": harbor_status(run),
            "src_registry": p.src_registry.unwrap_or(0),
            "dest_registry": p.dest_registry.unwrap_or(0),
            "dest_namespace": p.dest_namespace,
            "total": total_of(run),
            "succeed": run.count("succeed"),
            "failed": run.count("failed"),
        });
        self.registry
            .emit(Event::new(kinds::REPLICATION, &event_project(p), data));
    }

    /// A listing task: the source's repositories the name filters select,
    /// one task each.
    async fn list(
        &self,
        p: &Payload,
        stored: &Stored,
    ) -> Result<std::collections::BTreeMap<String, i64>, String> {
        let policy = &stored.policy;
        let src = self.side(policy.src_registry).await?;
        let repos = src.repositories().await.map_err(|e| e.to_string())?;
        let tasks: Vec<TaskSpec> = repos
            .iter()
            .filter(|r| repository_selected(&policy.filters, r))
            .map(|r| {
                task(
                    REPO,
                    &Payload {
                        run: p.run,
                        key: format!("repo#{r}"),
                        repo: Some(r.clone()),
                        digest: None,
                        tags: Vec::new(),
                        after: None,
                    },
                )
            })
            .collect();
        self.runs
            .log(
                p.run,
                &format!("{} of {} repositories selected", tasks.len(), repos.len()),
            )
            .await;
        self.add(p.run, &tasks).await?;
        Ok([("listing".to_owned(), 1)].into())
    }

    async fn add(&self, run: i64, tasks: &[TaskSpec]) -> Result<(), String> {
        if !tasks.is_empty()
            && self
                .runs
                .add_tasks(run, tasks, None)
                .await
                .map_err(|e| e.to_string())?
        {
            self.send(tasks).await?;
        }
        Ok(())
    }

    /// A repository task: its artifacts the filters select, one copy task
    /// each (a local source pages through its artifacts, a task a page).
    async fn repository(
        &self,
        p: &Payload,
        stored: &Stored,
    ) -> Result<std::collections::BTreeMap<String, i64>, String> {
        let repo = p.repo.clone().ok_or("repository task without repository")?;
        let policy = &stored.policy;
        let (candidates, next) = if policy.push_based() {
            self.local_candidates(&repo, p.after.clone()).await?
        } else {
            (self.remote_candidates(policy, &repo).await?, None)
        };
        let mut tasks: Vec<TaskSpec> = candidates
            .iter()
            .filter_map(|(digest, c)| {
                let tags = select(&policy.filters, c)?;
                Some(task(
                    COPY,
                    &Payload {
                        run: p.run,
                        key: artifact_key("copy", &repo, digest),
                        repo: Some(repo.clone()),
                        digest: Some(digest.clone()),
                        tags,
                        after: None,
                    },
                ))
            })
            .collect();
        let listed = tasks.len() as i64;
        if let Some(next) = next {
            tasks.push(task(
                REPO,
                &Payload {
                    run: p.run,
                    key: format!("repo#{repo}#{next}"),
                    repo: Some(repo.clone()),
                    digest: None,
                    tags: Vec::new(),
                    after: Some(next),
                },
            ));
        }
        self.add(p.run, &tasks).await?;
        Ok([("listing".to_owned(), 1), ("listed".to_owned(), listed)].into())
    }

    /// A page of a local repository's top-level artifacts.
    async fn local_candidates(
        &self,
        repo: &str,
        after: Option<String>,
    ) -> Result<(Vec<(String, Candidate)>, Option<String>), String> {
        let name: RepoName = repo.parse().map_err(|e| format!("{repo}: {e}"))?;
        let page = self
            .registry
            .artifacts(
                &name,
                Order {
                    after,
                    reverse: false,
                },
                ARTIFACT_PAGE,
                &|_| true,
            )
            .await
            .map_err(|e| e.to_string())?;
        let local = Local::new(self.registry.clone());
        let mut out = Vec::new();
        for art in page.items {
            let tags = self
                .registry
                .tags_of(&name, &art.digest)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|t| t.name)
                .collect();
            let labels = local
                .labels(repo, &art.digest)
                .await
                .map_err(|e| e.to_string())?;
            out.push((
                art.digest.to_string(),
                Candidate {
                    repository: repo.to_owned(),
                    tags,
                    labels,
                    config_type: config_type(&art.bytes),
                    media_type: art.media_type,
                },
            ));
        }
        Ok((out, page.next))
    }

    /// A remote repository's tagged artifacts (tags grouped by digest).
    async fn remote_candidates(
        &self,
        policy: &Policy,
        repo: &str,
    ) -> Result<Vec<(String, Candidate)>, String> {
        let src = self.side(policy.src_registry).await?;
        let tags = src.tags(repo).await.map_err(|e| e.to_string())?;
        let needs_manifest = policy.filters.iter().any(|f| f.kind == policies::RESOURCE);
        let mut by_digest: std::collections::BTreeMap<String, Candidate> = Default::default();
        for tag in tags {
            let Some(digest) = src
                .head_manifest(repo, &tag)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let key = digest.to_string();
            if !by_digest.contains_key(&key) {
                let mut c = Candidate {
                    repository: repo.to_owned(),
                    ..Candidate::default()
                };
                if needs_manifest
                    && let Some(m) = src.manifest(repo, &key).await.map_err(|e| e.to_string())?
                {
                    c.config_type = config_type(&m.bytes);
                    c.media_type = m.media_type;
                }
                by_digest.insert(key.clone(), c);
            }
            if let Some(c) = by_digest.get_mut(&key) {
                c.tags.push(tag);
            }
        }
        Ok(by_digest.into_iter().collect())
    }

    /// A copy or deletion task.
    async fn artifact(
        &self,
        kind: &str,
        p: &Payload,
        stored: &Stored,
    ) -> Result<std::collections::BTreeMap<String, i64>, String> {
        let policy = &stored.policy;
        let repo = p.repo.clone().ok_or("artifact task without repository")?;
        let digest: Digest = p
            .digest
            .as_deref()
            .and_then(|d| parse_digest(d).ok())
            .ok_or("artifact task without digest")?;
        let attempts = self.begin_report(p.run, &p.key).await?;
        let dst_repo = match dest_repository(
            &repo,
            &policy.dest_namespace,
            policy.dest_namespace_replace_count,
        ) {
            Ok(d) => d,
            Err(e) => return self.fail_task(p, &e.to_string(), Vec::new()).await,
        };
        let (src, dst) = match (
            self.side(policy.src_registry).await,
            self.side(policy.dest_registry).await,
        ) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => return self.fail_task(p, &e, Vec::new()).await,
        };
        let mut copied = Copied::default();
        let outcome = if kind == DELETE {
            copied
                .log
                .push(format!("deleting {dst_repo}@{digest} at the destination"));
            dst.delete_manifest(&dst_repo, &digest).await.map(|found| {
                if !found {
                    copied.log.push("it was not there".to_owned());
                }
            })
        } else {
            let stop = StopCheck {
                runs: self.runs.clone(),
                run: p.run,
            };
            let hints = Hints {
                kv: self.registry.kv().clone(),
                registry: policy.dest_registry.unwrap_or(0),
            };
            let copy = Copy {
                src: src.as_ref(),
                dst: dst.as_ref(),
                src_repo: &repo,
                dst_repo: &dst_repo,
                override_tags: policy.override_,
                proceed: &stop,
                hints: &hints,
                chunk: policy.copy_by_chunk.then_some(super::copy::DEFAULT_CHUNK),
                speed: u64::try_from(policy.speed).ok().filter(|s| *s > 0),
            };
            copied.log.push(format!(
                "copying {repo}@{digest} (tags {:?}) to {dst_repo}",
                p.tags
            ));
            copy.artifact(&digest, &p.tags, &mut copied).await
        };
        match outcome {
            Ok(()) => {
                let mut counts: std::collections::BTreeMap<String, i64> = [
                    ("succeed".to_owned(), 1),
                    ("blobs_copied".to_owned(), copied.blobs_copied),
                    ("blobs_skipped".to_owned(), copied.blobs_skipped),
                    ("blobs_mounted".to_owned(), copied.blobs_mounted),
                    ("manifests_copied".to_owned(), copied.manifests_copied),
                    ("bytes".to_owned(), copied.bytes() as i64),
                ]
                .into();
                counts.retain(|_, v| *v != 0);
                copied.log.push(format!(
                    "done: {} blobs copied ({} bytes), {} already there, {} mounted; {} manifests copied, {} already there; {} tags set, {} left alone",
                    copied.blobs_copied,
                    copied.bytes(),
                    copied.blobs_skipped,
                    copied.blobs_mounted,
                    copied.manifests_copied,
                    copied.manifests_skipped,
                    copied.tags_set,
                    copied.tags_kept
                ));
                self.end_report(p.run, &p.key, status::SUCCEED, &copied.log)
                    .await?;
                Ok(counts)
            }
            Err(e) if is_stop(&e) => {
                copied.log.push("stopped".to_owned());
                self.end_report(p.run, &p.key, status::STOPPED, &copied.log)
                    .await?;
                Ok([("stopped".to_owned(), 1)].into())
            }
            Err(e) if e.is_transient() && attempts < MAX_ATTEMPTS => {
                copied
                    .log
                    .push(format!("attempt {attempts} failed (will be retried): {e}"));
                self.append_report(p.run, &p.key, &copied.log).await;
                Err(e.to_string())
            }
            Err(e) => self.fail_task(p, &e.to_string(), copied.log).await,
        }
    }

    async fn fail_task(
        &self,
        p: &Payload,
        why: &str,
        mut log: Vec<String>,
    ) -> Result<std::collections::BTreeMap<String, i64>, String> {
        log.push(format!("failed: {why}"));
        self.end_report(p.run, &p.key, status::FAILED, &log).await?;
        self.runs
            .log(p.run, &format!("task {} failed: {why}", p.key))
            .await;
        Ok([("failed".to_owned(), 1)].into())
    }

    // ---- task reports ---------------------------------------------------

    /// Marks a task in progress and counts the attempt; returns it.
    async fn begin_report(&self, run: i64, key: &str) -> Result<i64, String> {
        let kv = self.registry.kv();
        kv.write(WriteOp::Upsert {
            pk: report_pk(run),
            sk: key.to_owned(),
            add: [("attempts".to_owned(), 1)].into(),
            set: [("status".to_owned(), Attr::S(status::IN_PROGRESS.to_owned()))].into(),
            init: [("started".to_owned(), Attr::N(now_secs()))].into(),
            cond: Cond::Always,
        })
        .await
        .map_err(|e| e.to_string())?;
        let item = kv
            .get(&report_pk(run), key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(item.and_then(|i| i.n("attempts")).unwrap_or(1))
    }

    async fn append_report(&self, run: i64, key: &str, lines: &[String]) {
        if let Err(e) = self.write_report(run, key, None, lines).await {
            tracing::warn!(run, error = %e, "could not write a replication task's log");
        }
    }

    async fn end_report(
        &self,
        run: i64,
        key: &str,
        status: &str,
        lines: &[String],
    ) -> Result<(), String> {
        self.write_report(run, key, Some(status), lines).await
    }

    async fn write_report(
        &self,
        run: i64,
        key: &str,
        status: Option<&str>,
        lines: &[String],
    ) -> Result<(), String> {
        let kv = self.registry.kv();
        let current = kv
            .get(&report_pk(run), key)
            .await
            .map_err(|e| e.to_string())?;
        let mut log = current
            .as_ref()
            .and_then(|i| i.s("log"))
            .unwrap_or_default()
            .to_owned();
        let stamp = crate::iam::audit::rfc3339(now_secs());
        for l in lines {
            log.push_str(&format!("{stamp} {l}\n"));
        }
        if log.len() > MAX_TASK_LOG {
            let cut = log.len() - MAX_TASK_LOG;
            let cut = (cut..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(log.len());
            log = log.split_off(cut);
        }
        let mut set = std::collections::BTreeMap::from([("log".to_owned(), Attr::S(log))]);
        if let Some(s) = status {
            set.insert("status".into(), Attr::S(s.to_owned()));
            set.insert("finished".into(), Attr::N(now_secs()));
        }
        kv.write(WriteOp::Upsert {
            pk: report_pk(run),
            sk: key.to_owned(),
            add: Default::default(),
            set,
            init: Default::default(),
            cond: Cond::Always,
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// The reports of a run's copy tasks, by key.
    pub async fn reports(
        &self,
        run: i64,
    ) -> Result<std::collections::BTreeMap<String, TaskReport>, KvError> {
        reports(self.registry.kv(), run).await
    }

    // ---- the tick ---------------------------------------------------------

    /// The scheduled work: due scheduled policies, and the tasks of
    /// stalled executions sent again.
    pub async fn tick(&self) -> Result<(), String> {
        let now = now_secs();
        let schedules = Schedules::new(self.registry.kv().clone());
        let policies = self.policies().list().await.map_err(|e| e.to_string())?;
        for p in policies
            .iter()
            .filter(|p| p.enabled && p.trigger.kind == policies::SCHEDULED)
        {
            let due = schedules
                .claim_due(&schedule_name(p.id), now)
                .await
                .map_err(|e| e.to_string())?;
            if due.is_some()
                && let Err(e) = self.start(p.id, SCHEDULE).await
            {
                tracing::warn!(policy = p.id, error = %e, "a scheduled replication did not start");
            }
        }
        let stalled = self
            .runs
            .stalled(self.lease * 2)
            .await
            .map_err(|e| e.to_string())?;
        for j in &stalled {
            self.queue.send(j).await.map_err(|e| e.to_string())?;
        }
        if !stalled.is_empty() {
            tracing::info!(
                tasks = stalled.len(),
                "resent the tasks of a stalled replication"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl crate::jobs::events::Subscriber for Replication {
    async fn on_event(&self, event: &Event) -> Result<(), String> {
        Replication::on_event(self, event).await
    }
}

/// The project a policy's `REPLICATION` event belongs to (whose webhooks
/// hear of it): for a push-based policy, the project its first name
/// filter names literally; for a pull-based one, the first component of
/// its destination namespace; else none.
fn event_project(p: &Policy) -> String {
    let literal = |s: &str| {
        let first = s.split('/').next().unwrap_or_default();
        (!first.is_empty() && !first.contains(['*', '?', '[', '{', '\\'])).then(|| first.to_owned())
    };
    let found = if p.push_based() {
        p.filters
            .iter()
            .find(|f| f.kind == policies::NAME && !f.excludes())
            .and_then(|f| literal(f.pattern()))
    } else {
        literal(&p.dest_namespace)
    };
    found.unwrap_or_default()
}

/// The number of artifacts of a run (Harbor's `total`).
pub fn total_of(run: &Run) -> i64 {
    if run.phase == PHASE_EVENT {
        run.tasks
    } else {
        run.count("listed")
    }
}

fn is_stop(e: &AdapterError) -> bool {
    matches!(e, AdapterError::Other(m) if m == "stopped")
}

/// The config media type of an image manifest's bytes.
fn config_type(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("config")?
        .get("mediaType")?
        .as_str()
        .map(str::to_owned)
}

/// Stops a copy once its run is no longer running (a check point per
/// blob and manifest).
struct StopCheck {
    runs: Runs,
    run: i64,
}

#[async_trait]
impl Proceed for StopCheck {
    async fn proceed(&self) -> bool {
        match self.runs.get(self.run).await {
            Ok(Some(r)) => r.status == runs::RUNNING,
            Ok(None) => false,
            // Cannot tell: go on (the copy is idempotent).
            Err(_) => true,
        }
    }
}

/// The ids of a policy's newest `max` runs, newest first.
pub async fn policy_run_ids(
    kv: &Arc<dyn Kv>,
    policy: i64,
    max: usize,
) -> Result<Vec<i64>, KvError> {
    let mut q = Query::prefix(exec_pk(policy), "", max.clamp(1, 1000)).reversed();
    let mut out = Vec::new();
    loop {
        let page = kv.query(&q).await?;
        out.extend(page.items.iter().filter_map(|i| i.sk.parse::<i64>().ok()));
        match page.next {
            Some(n) if out.len() < max => q.after = Some(n),
            _ => {
                out.truncate(max);
                return Ok(out);
            }
        }
    }
}

/// The reports of a run's copy tasks, by key.
pub async fn reports(
    kv: &Arc<dyn Kv>,
    run: i64,
) -> Result<std::collections::BTreeMap<String, TaskReport>, KvError> {
    let mut out = std::collections::BTreeMap::new();
    let mut q = Query::prefix(report_pk(run), "", 500);
    loop {
        let page = kv.query(&q).await?;
        for i in &page.items {
            out.insert(
                i.sk.clone(),
                TaskReport {
                    key: i.sk.clone(),
                    status: i.s("status").unwrap_or_default().to_owned(),
                    attempts: i.n("attempts").unwrap_or(0),
                    started: i.n("started").unwrap_or(0),
                    finished: i.n("finished").unwrap_or(0),
                    log: i.s("log").unwrap_or_default().to_owned(),
                },
            );
        }
        match page.next {
            Some(n) => q.after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Which repository of a destination registry a blob was last copied
/// into: a later copy of the same blob to another repository mounts it
/// from there (a stale hint costs one refused mount).
struct Hints {
    kv: Arc<dyn Kv>,
    registry: i64,
}

impl Hints {
    fn pk(&self) -> String {
        format!("REPLICATION#BLOB#{}", self.registry)
    }
}

#[async_trait]
impl BlobHints for Hints {
    async fn holder(&self, digest: &Digest) -> Option<String> {
        let item = self.kv.get(&self.pk(), digest.as_ref()).await.ok()??;
        item.s("repo").map(str::to_owned)
    }

    async fn note(&self, digest: &Digest, repo: &str) {
        let item = Item::new(self.pk(), digest.to_string())
            .with("repo", Attr::S(repo.to_owned()))
            .with("at", Attr::N(now_secs()));
        if let Err(e) = self.kv.write(WriteOp::put(item)).await {
            tracing::debug!(error = %e, "could not note where a blob was copied");
        }
    }
}
