//! The `retention` job: runs of a project's tag retention policy
//! ([`crate::policy::retention`]), manual, scheduled or dry, fanned out
//! over queue messages so no invocation runs long.
//!
//! A run (Harbor's *execution*) starts with one listing task; a listing
//! task pages through the project's repositories, adding one task per
//! repository some enabled rule applies to (Harbor's launcher makes no
//! task for the others) and one for its next page. A repository task
//! evaluates the policy over the repository's top-level artifacts and,
//! unless the run is dry, deletes exactly what the evaluation says; when
//! the last task finishes, the run is `Success`. The policy is copied
//! into the run when it starts, so every task of a run applies the same
//! policy, and its clock is the run's start.
//!
//! A repository task writes its plan (every artifact and its verdict)
//! before deleting anything, then the outcome of each deletion. A
//! redelivered message for a finished task does nothing ([`super::runs`]);
//! one for a task whose worker died picks up the stored plan and deletes
//! what is left of it, so a run never deletes more than its plan said.
//! An artifact that changed since it was evaluated (pushed again,
//! tagged, untagged) is left alone. Stopping a run marks it `Stopped`:
//! tasks taken later do nothing, and a task that already evaluated
//! deletes nothing more.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `RETENTION#<policy id>` | `EXEC#<run id, 20 digits>` | the policy's runs (newest last) |
//! | `RETENTIONTASK#<run id>` | `<repository>` | a repository task's report: status, times, counts, `chunks` |
//! | `RETENTIONTASK#<run id>#<repository>` | `<n, 6 digits>` | the report's entries, 100 a chunk |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::runs::{self, Run, Runs, TaskSpec};
use super::schedule::Schedules;
use crate::iam::directory::Directory;
use crate::oci::RepoName;
use crate::policy::immutable::{self, ImmutableRules, PolicyError};
use crate::policy::retention::{
    Candidate, RetentionPolicies, RetentionPolicy, Verdict, evaluate_repository, lookup_key,
    schedule_name,
};
use crate::registry::catalog::{ArtifactRecord, Order};
use crate::registry::events::{Event, kinds};
use crate::registry::{Registry, RegistryError};
use crate::store::{Attr, Cond, Item, Job, Kv, KvError, Query, Queue, WriteOp, now_secs};

/// The run kind in the job store.
pub const KIND: &str = "retention";
/// Task kinds of a run (every job kind of this worker starts with `retention.`).
pub const LIST: &str = "retention.list";
pub const REPO: &str = "retention.repo";

const PHASE: &str = "repos";
/// Repositories a listing task reads.
const LIST_PAGE: usize = 100;
/// Report entries a chunk item holds.
const CHUNK: usize = 100;

/// What became of one artifact (a report entry's `outcome`).
pub mod outcome {
    /// A rule keeps it.
    pub const RETAINED: &str = "retained";
    /// No rule keeps it, an immutable tag does.
    pub const IMMUTABLE: &str = "immutable (retained)";
    /// A dry run's deletion.
    pub const WOULD_DELETE: &str = "would delete";
    /// Planned for deletion, not done yet.
    pub const TO_DELETE: &str = "to delete";
    pub const DELETED: &str = "deleted";
    /// Pushed, tagged or untagged since it was evaluated: left alone.
    pub const CHANGED: &str = "retained (changed since evaluated)";
    /// The run was stopped before it was deleted.
    pub const STOPPED: &str = "retained (execution stopped)";
    /// Prefix of a failed deletion's outcome (the artifact stays).
    pub const ERROR: &str = "error: ";
}

/// One artifact of a repository task's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub digest: String,
    /// Sorted.
    pub tags: Vec<String>,
    /// Label names, sorted.
    pub labels: Vec<String>,
    /// Epoch seconds (its and its tags' latest push), as evaluated.
    pub pushed: i64,
    pub pulled: i64,
    /// One of [`outcome`].
    pub outcome: String,
}

impl Entry {
    /// Whether the run removed it (or, dry, would have).
    pub fn removed(&self) -> bool {
        self.outcome == outcome::DELETED || self.outcome == outcome::WOULD_DELETE
    }
}

/// What a repository task found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// The repository's full name.
    pub repository: String,
    pub dry_run: bool,
    /// `Running` while it works, then `Success` or `Stopped`.
    pub status: String,
    /// Epoch seconds (`finished` 0 while running).
    pub started: i64,
    pub finished: i64,
    /// Newest push first.
    pub entries: Vec<Entry>,
}

impl TaskReport {
    pub fn total(&self) -> i64 {
        self.entries.len() as i64
    }

    /// Harbor's `retained`: everything the run did not remove.
    pub fn retained(&self) -> i64 {
        self.total() - self.removed()
    }

    pub fn removed(&self) -> i64 {
        self.entries.iter().filter(|e| e.removed()).count() as i64
    }
}

/// One repository task of a run, as the tasks API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// Its key in the run (`repo#<repository>`).
    pub key: String,
    /// The repository's full name.
    pub repository: String,
    /// Harbor's job status: `Pending`, `Running`, `Success`, `Stopped`.
    pub status: String,
    pub started: i64,
    pub finished: i64,
    pub total: i64,
    pub retained: i64,
}

/// A run's stored parameters: the policy as it was when the run started.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    policy_id: i64,
    project: String,
    /// The run's clock (epoch seconds): "days since" rules count from it.
    started: i64,
    policy: RetentionPolicy,
}

/// One task message's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    run: i64,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("retention policy {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] KvError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("could not queue the retention run: {0}")]
    Queue(String),
}

/// The policy id a run applies (from its parameters).
pub fn policy_of(run: &Run) -> Option<i64> {
    run.params
        .get("policy_id")
        .and_then(serde_json::Value::as_i64)
}

fn job(kind: &str, p: &Payload) -> TaskSpec {
    TaskSpec {
        key: p.key.clone(),
        job: Job::new(kind, serde_json::to_value(p).unwrap_or_default()),
    }
}

fn list_key(page: u32) -> String {
    format!("list#{page:06}")
}

const REPO_PREFIX: &str = "repo#";

fn repo_key(repo: &str) -> String {
    format!("{REPO_PREFIX}{repo}")
}

fn exec_sk(run: i64) -> String {
    format!("EXEC#{run:020}")
}

fn report_pk(run: i64) -> String {
    format!("RETENTIONTASK#{run}")
}

fn chunk_pk(run: i64, repo: &str) -> String {
    format!("RETENTIONTASK#{run}#{repo}")
}

/// A repository's path without its project.
fn in_project(repo: &str) -> &str {
    repo.split_once('/').map_or(repo, |(_, r)| r)
}

/// What the retention worker does (run by the `gc` worker, which hands it
/// every `retention.*` job and calls its [`Retention::tick`]).
#[derive(Clone)]
pub struct Retention {
    registry: Registry,
    runs: Runs,
    queue: Arc<dyn Queue>,
    /// How long a worker holds a task before another may take it over.
    lease: Duration,
}

impl Retention {
    pub fn new(registry: Registry, queue: Arc<dyn Queue>) -> Self {
        let runs = Runs::new(registry.kv().clone(), KIND);
        Self {
            registry,
            runs,
            queue,
            lease: Duration::from_secs(300),
        }
    }

    /// How long a task is held before a redelivery may take it over
    /// (shorter than the queue's visibility timeout).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// What the runs did (the API's read side).
    pub fn history(&self) -> History {
        History::new(self.registry.kv().clone())
    }

    pub fn policies(&self) -> RetentionPolicies {
        RetentionPolicies::new(self.registry.kv().clone())
    }

    /// Starts a run of policy `policy_id` (`trigger`: `Manual` or
    /// `Schedule`); runs of one policy may overlap, as in Harbor.
    pub async fn start(
        &self,
        policy_id: i64,
        dry_run: bool,
        trigger: &str,
    ) -> Result<Run, StartError> {
        let (owner, policy) = self
            .policies()
            .get(policy_id)
            .await?
            .ok_or(StartError::NotFound(policy_id))?;
        let rules = policy.rules.iter().filter(|r| !r.disabled).count();
        let stored = Stored {
            policy_id,
            project: owner.project.clone(),
            started: now_secs(),
            policy,
        };
        let params = serde_json::to_value(&stored).map_err(|e| StartError::Queue(e.to_string()))?;
        let first = |id: i64| -> Vec<TaskSpec> {
            vec![job(
                LIST,
                &Payload {
                    run: id,
                    key: list_key(0),
                    page: Some(0),
                    after: None,
                    repo: None,
                },
            )]
        };
        let run = self
            .runs
            .create(trigger, params, dry_run, PHASE, &first)
            .await?;
        // Listed under its policy, on the condition that the policy is
        // still there (a policy deleted meanwhile runs nothing).
        let (pk, sk) = lookup_key(policy_id);
        let ops = vec![
            WriteOp::put(Item::new(pk.clone(), exec_sk(run.id))),
            WriteOp::Upsert {
                pk,
                sk,
                add: [("execs".to_owned(), 1)].into(),
                set: BTreeMap::new(),
                init: BTreeMap::new(),
                cond: Cond::Exists,
            },
        ];
        if let Err(e) = self.registry.kv().transact(ops).await {
            self.runs
                .set_status(run.id, &[runs::RUNNING], runs::STOPPED)
                .await?;
            return Err(match e {
                KvError::ConditionFailed { .. } => StartError::NotFound(policy_id),
                e => e.into(),
            });
        }
        self.runs
            .log(
                run.id,
                &format!(
                    "retention started ({trigger}): policy {policy_id} of project {}, {rules} enabled rules, dry_run={dry_run}",
                    owner.project
                ),
            )
            .await;
        self.send(&first(run.id)).await.map_err(StartError::Queue)?;
        Ok(run)
    }

    /// Writes a report: its chunks, then its header (which names them).
    async fn save_report(&self, run: i64, r: &TaskReport) -> Result<(), String> {
        let kv = self.registry.kv();
        let chunks: Vec<&[Entry]> = r.entries.chunks(CHUNK).collect();
        for (i, c) in chunks.iter().enumerate() {
            let body = serde_json::to_vec(c).map_err(|e| e.to_string())?;
            kv.write(WriteOp::put(
                Item::new(chunk_pk(run, &r.repository), format!("{i:06}"))
                    .with("entries", Attr::B(body)),
            ))
            .await
            .map_err(|e| e.to_string())?;
        }
        let header = Item::new(report_pk(run), r.repository.clone())
            .with("status", Attr::S(r.status.clone()))
            .with("dry", Attr::N(i64::from(r.dry_run)))
            .with("started", Attr::N(r.started))
            .with("finished", Attr::N(r.finished))
            .with("total", Attr::N(r.total()))
            .with("retained", Attr::N(r.retained()))
            .with("chunks", Attr::N(chunks.len() as i64));
        kv.write(WriteOp::put(header))
            .await
            .map_err(|e| e.to_string())
    }

    async fn send(&self, tasks: &[TaskSpec]) -> Result<(), String> {
        for t in tasks {
            self.queue.send(&t.job).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Runs one job; idempotent.
    pub async fn run(&self, job: &Job) -> Result<(), String> {
        match job.kind.as_str() {
            LIST | REPO => self.task(job).await,
            other => {
                tracing::warn!(job = %job.id, kind = other, "retention: unknown job kind; acknowledged without action");
                Ok(())
            }
        }
    }

    async fn task(&self, job: &Job) -> Result<(), String> {
        let p: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| format!("retention task payload: {e}"))?;
        let Some((token, run)) = self.runs.claim(p.run, &p.key, self.lease).await? else {
            return Ok(());
        };
        let stored: Stored = serde_json::from_value(run.params.clone())
            .map_err(|e| format!("retention run params: {e}"))?;
        let work = match job.kind.as_str() {
            LIST => self.list(&p, &stored).await,
            _ => self.repository(&p, &run, &stored).await,
        };
        let after = self.runs.settle(p.run, &p.key, &token, work).await?;
        if let Some(after) = after
            && self
                .runs
                .set_status(after.id, &[runs::RUNNING], runs::SUCCESS)
                .await
                .map_err(|e| e.to_string())?
        {
            let verb = if after.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            self.runs
                .log(
                    after.id,
                    &format!(
                        "retention finished: {} repositories, {} artifacts, {} retained, {verb} {}",
                        after.count("repositories"),
                        after.count("total"),
                        after.count("retained"),
                        after.count("deleted"),
                    ),
                )
                .await;
            tracing::info!(
                run = after.id,
                deleted = after.count("deleted"),
                dry_run = after.dry_run,
                "retention run finished"
            );
            // Only the run whose status moved here announces it (once).
            self.registry
                .raise(Event::new(
                    kinds::TAG_RETENTION,
                    &stored.project,
                    // Harbor's `Retention` event data.
                    serde_json::json!({
                        "retention": {
                            "execution_id": after.id,
                            "retention_policy_id": stored.policy_id,
                            "project_name": stored.project,
                            "result": "SUCCESS",
                            "dry_run": after.dry_run,
                            "total": after.count("total"),
                            "retained": after.count("retained"),
                            "deleted": after.count("deleted"),
                        },
                        "operator": after.trigger,
                    }),
                ))
                .await;
        }
        Ok(())
    }

    /// A listing task: one page of the project's repositories.
    async fn list(&self, p: &Payload, stored: &Stored) -> Result<BTreeMap<String, i64>, String> {
        let page = p.page.unwrap_or(0);
        let listed = self
            .registry
            .repositories(
                &format!("{}/", stored.project),
                Order {
                    after: p.after.clone(),
                    reverse: false,
                },
                LIST_PAGE,
                &|_| true,
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut tasks: Vec<TaskSpec> = listed
            .items
            .iter()
            .filter(|r| !stored.policy.rules_for(in_project(&r.name)).is_empty())
            .map(|r| {
                job(
                    REPO,
                    &Payload {
                        run: p.run,
                        key: repo_key(&r.name),
                        page: None,
                        after: None,
                        repo: Some(r.name.clone()),
                    },
                )
            })
            .collect();
        let selected = tasks.len() as i64;
        if let Some(next) = listed.next {
            tasks.push(job(
                LIST,
                &Payload {
                    run: p.run,
                    key: list_key(page + 1),
                    page: Some(page + 1),
                    after: Some(next),
                    repo: None,
                },
            ));
        }
        // Tasks are recorded before their messages go; a stopped run
        // takes no more.
        if !tasks.is_empty()
            && self
                .runs
                .add_tasks(p.run, &tasks, None)
                .await
                .map_err(|e| e.to_string())?
        {
            self.send(&tasks).await?;
        }
        Ok([("repositories".to_owned(), selected)].into())
    }

    /// A repository task: plan (or the plan a previous attempt stored),
    /// then the deletions it says.
    async fn repository(
        &self,
        p: &Payload,
        run: &Run,
        stored: &Stored,
    ) -> Result<BTreeMap<String, i64>, String> {
        let name = p
            .repo
            .as_deref()
            .ok_or("retention task without a repository")?;
        let repo: RepoName = name
            .parse()
            .map_err(|_| format!("bad repository {name:?}"))?;
        let mut report = match self
            .history()
            .report(run.id, name)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(r) => r,
            None => {
                let entries = self.plan(&repo, stored, run.dry_run).await?;
                let r = TaskReport {
                    repository: name.to_owned(),
                    dry_run: run.dry_run,
                    status: runs::RUNNING.to_owned(),
                    started: now_secs(),
                    finished: 0,
                    entries,
                };
                self.save_report(run.id, &r).await?;
                r
            }
        };
        // Harbor's stop check point: nothing is deleted after a stop.
        let stopped = self
            .runs
            .get(run.id)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.status == runs::STOPPED);
        let mut touched = false;
        for e in report
            .entries
            .iter_mut()
            .filter(|e| e.outcome == outcome::TO_DELETE)
        {
            e.outcome = if stopped {
                outcome::STOPPED.to_owned()
            } else {
                self.delete(&repo, e).await?
            };
            touched = true;
        }
        if report.finished == 0 || touched {
            report.status = if stopped {
                runs::STOPPED
            } else {
                runs::SUCCESS
            }
            .to_owned();
            report.finished = now_secs();
            self.save_report(run.id, &report).await?;
        }
        let verb = if run.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        self.runs
            .log(
                run.id,
                &format!(
                    "{name}: {} artifacts, {} retained, {verb} {}",
                    report.total(),
                    report.retained(),
                    report.removed()
                ),
            )
            .await;
        Ok([
            ("total".to_owned(), report.total()),
            ("retained".to_owned(), report.retained()),
            ("deleted".to_owned(), report.removed()),
        ]
        .into())
    }

    /// The candidates of a repository and the policy's verdicts on them.
    async fn plan(
        &self,
        repo: &RepoName,
        stored: &Stored,
        dry: bool,
    ) -> Result<Vec<Entry>, String> {
        let path = in_project(repo.as_str());
        let found = self.candidates(repo, &stored.project).await?;
        let rules = stored.policy.rules_for(path);
        let candidates: Vec<Candidate> = found.iter().map(|(c, _)| c.clone()).collect();
        let verdicts = evaluate_repository(&rules, &candidates, stored.started)?;
        Ok(candidates
            .into_iter()
            .zip(verdicts)
            .map(|(c, v)| Entry {
                digest: c.digest,
                tags: c.tags,
                labels: c.labels,
                pushed: c.pushed,
                pulled: c.pulled,
                outcome: match v {
                    Verdict::Retained => outcome::RETAINED,
                    Verdict::Immutable => outcome::IMMUTABLE,
                    Verdict::Deleted if dry => outcome::WOULD_DELETE,
                    Verdict::Deleted => outcome::TO_DELETE,
                }
                .to_owned(),
            })
            .collect())
    }

    /// A repository's top-level artifacts as candidates (newest push
    /// first), with their records.
    async fn candidates(
        &self,
        repo: &RepoName,
        project: &str,
    ) -> Result<Vec<(Candidate, ArtifactRecord)>, String> {
        let reg = &self.registry;
        let kv = reg.kv().clone();
        let path = in_project(repo.as_str());
        let rules = ImmutableRules::new(kv.clone())
            .list(project)
            .await
            .map_err(|e| e.to_string())?;
        let labels = Directory::new(kv).labels();
        let mut out = Vec::new();
        let mut label_ids: Vec<Vec<i64>> = Vec::new();
        let mut after = None;
        loop {
            let page = reg
                .artifacts(
                    repo,
                    Order {
                        after,
                        reverse: false,
                    },
                    100,
                    &|r: &ArtifactRecord| r.top_level && r.accessory.is_none(),
                )
                .await
                .map_err(|e| e.to_string())?;
            for rec in page.items {
                let (tags, pushed) = self.tags(repo, &rec).await?;
                let immutable = tags
                    .iter()
                    .any(|t| immutable::is_immutable(&rules, path, t));
                label_ids.push(
                    labels
                        .label_ids_of(repo, &rec.digest)
                        .await
                        .map_err(|e| e.to_string())?,
                );
                out.push((
                    Candidate {
                        repository: path.to_owned(),
                        digest: rec.digest.to_string(),
                        tags,
                        pushed,
                        pulled: rec.pulled,
                        labels: Vec::new(),
                        immutable,
                    },
                    rec,
                ));
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let unique: Vec<i64> = label_ids
            .iter()
            .flatten()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unique.is_empty() {
            let names: BTreeMap<i64, String> = labels
                .get_many(&unique)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|l| (l.id, l.name))
                .collect();
            for ((c, _), ids) in out.iter_mut().zip(&label_ids) {
                c.labels = ids.iter().filter_map(|i| names.get(i).cloned()).collect();
                c.labels.sort();
            }
        }
        Ok(out)
    }

    /// An artifact's tag names (sorted) and its push time: the latest of
    /// its own and its tags' (Harbor's candidate).
    async fn tags(
        &self,
        repo: &RepoName,
        rec: &ArtifactRecord,
    ) -> Result<(Vec<String>, i64), String> {
        let tags = self
            .registry
            .tags_of(repo, &rec.digest)
            .await
            .map_err(|e| e.to_string())?;
        let pushed = tags.iter().map(|t| t.pushed).fold(rec.pushed, i64::max);
        let mut names: Vec<String> = tags.into_iter().map(|t| t.name).collect();
        names.sort();
        Ok((names, pushed))
    }

    /// Deletes one planned artifact if it is as it was evaluated; its
    /// outcome. Fails only when storage does (the task is retried).
    async fn delete(&self, repo: &RepoName, e: &Entry) -> Result<String, String> {
        let reg = &self.registry;
        let Ok(digest) = crate::oci::digest::parse_digest(&e.digest) else {
            return Ok(format!("{}invalid digest", outcome::ERROR));
        };
        let rec = match reg
            .artifact_records(repo, std::slice::from_ref(&digest))
            .await
        {
            Ok(mut r) => r.pop().flatten(),
            Err(err) => return Err(err.to_string()),
        };
        // Gone already: deleted by an earlier attempt of this task (or by
        // someone else); either way, as planned.
        let Some(rec) = rec else {
            return Ok(outcome::DELETED.to_owned());
        };
        let (tags, pushed) = self.tags(repo, &rec).await?;
        if tags != e.tags || pushed != e.pushed || !rec.top_level {
            return Ok(outcome::CHANGED.to_owned());
        }
        match reg.delete_artifact(repo, &rec).await {
            Ok(()) | Err(RegistryError::ManifestUnknown) => Ok(outcome::DELETED.to_owned()),
            Err(RegistryError::Immutable(_)) => Ok(outcome::IMMUTABLE.to_owned()),
            Err(RegistryError::Kv(err)) => Err(err.to_string()),
            Err(err) => Ok(format!("{}{err}", outcome::ERROR)),
        }
    }

    /// The scheduled work: due scheduled runs, and the tasks of stalled
    /// runs a crash left unsent.
    pub async fn tick(&self) -> Result<(), String> {
        let now = now_secs();
        let schedules = Schedules::new(self.registry.kv().clone());
        let scheduled = self
            .policies()
            .scheduled()
            .await
            .map_err(|e| e.to_string())?;
        for id in scheduled {
            match schedules.claim_due(&schedule_name(id), now).await {
                Ok(Some(_)) => match self.start(id, false, "Schedule").await {
                    Ok(run) => {
                        tracing::info!(run = run.id, policy = id, "scheduled retention run started")
                    }
                    Err(e) => {
                        tracing::warn!(policy = id, error = %e, "scheduled retention run not started")
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(policy = id, error = %e, "reading a retention schedule failed")
                }
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
            tracing::warn!(
                tasks = stalled.len(),
                "resent the tasks of a stalled retention run"
            );
        }
        Ok(())
    }
}

/// The read side of retention runs (what the API shows), over the
/// metadata store alone: no queue needed.
#[derive(Clone)]
pub struct History {
    kv: Arc<dyn Kv>,
    runs: Runs,
}

impl History {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        let runs = Runs::new(kv.clone(), KIND);
        Self { kv, runs }
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// The runs of policy `policy_id`, newest first: `limit` after the
    /// first `skip`, and how many there are.
    pub async fn executions(
        &self,
        policy_id: i64,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<Run>, usize), KvError> {
        let kv = &self.kv;
        let (pk, sk) = lookup_key(policy_id);
        let total = kv
            .get(&pk, &sk)
            .await?
            .and_then(|i| i.n("execs"))
            .unwrap_or(0)
            .max(0) as usize;
        let mut q = Query::prefix(pk, "EXEC#", 500).reversed();
        let mut index = 0usize;
        let mut ids: Vec<i64> = Vec::new();
        'pages: loop {
            let page = kv.query(&q).await?;
            for item in &page.items {
                if index >= skip {
                    if ids.len() >= limit {
                        break 'pages;
                    }
                    if let Some(id) = item.sk.strip_prefix("EXEC#").and_then(|s| s.parse().ok()) {
                        ids.push(id);
                    }
                }
                index += 1;
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(run) = self.runs.get(id).await? {
                out.push(run);
            }
        }
        Ok((out, total))
    }

    /// Stops a pending or running run: tasks taken later do nothing, and
    /// a task that evaluated already deletes nothing more. False when
    /// the run had finished.
    pub async fn stop(&self, run: i64, by: &str) -> Result<bool, KvError> {
        let stopped = self
            .runs
            .set_status(run, &[runs::PENDING, runs::RUNNING], runs::STOPPED)
            .await?;
        if stopped {
            self.runs.log(run, &format!("stopped by {by}")).await;
        }
        Ok(stopped)
    }

    /// An unfinished run among the newest runs of policy `policy_id`, if any.
    pub async fn unfinished(&self, policy_id: i64) -> Result<Option<i64>, KvError> {
        let (runs, _) = self.executions(policy_id, 0, 20).await?;
        Ok(runs.iter().find(|r| !r.finished()).map(|r| r.id))
    }

    /// The repository tasks of a run, by repository name.
    pub async fn tasks(&self, run: &Run) -> Result<Vec<TaskInfo>, KvError> {
        let tasks: Vec<(String, String)> = self
            .runs
            .tasks(run.id)
            .await?
            .into_iter()
            .filter(|(k, _, _)| k.starts_with(REPO_PREFIX))
            .map(|(k, status, _)| (k, status))
            .collect();
        let keys: Vec<(String, String)> = tasks
            .iter()
            .map(|(k, _)| (report_pk(run.id), k[REPO_PREFIX.len()..].to_owned()))
            .collect();
        let mut headers = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            headers.extend(self.kv.batch_get(chunk).await?);
        }
        Ok(tasks
            .into_iter()
            .zip(headers)
            .map(|((key, task_status), header)| {
                let n = |a: &str| header.as_ref().and_then(|h| h.n(a)).unwrap_or(0);
                let status = match task_status.as_str() {
                    "done" => header
                        .as_ref()
                        .and_then(|h| h.s("status"))
                        .unwrap_or(runs::SUCCESS)
                        .to_owned(),
                    "running" => runs::RUNNING.to_owned(),
                    // Never taken: it will not run once the run is over.
                    _ if run.finished() => runs::STOPPED.to_owned(),
                    _ => runs::PENDING.to_owned(),
                };
                TaskInfo {
                    repository: key[REPO_PREFIX.len()..].to_owned(),
                    key,
                    status,
                    started: n("started"),
                    finished: n("finished"),
                    total: n("total"),
                    retained: n("retained"),
                }
            })
            .collect())
    }

    /// The report of a run's task on `repository` (its full name), if
    /// the task has started.
    pub async fn report(&self, run: i64, repository: &str) -> Result<Option<TaskReport>, KvError> {
        let kv = &self.kv;
        let Some(h) = kv.get(&report_pk(run), repository).await? else {
            return Ok(None);
        };
        let chunks = h.n("chunks").unwrap_or(0).max(0) as usize;
        let keys: Vec<(String, String)> = (0..chunks)
            .map(|i| (chunk_pk(run, repository), format!("{i:06}")))
            .collect();
        let mut entries = Vec::new();
        for part in keys.chunks(100) {
            for item in kv.batch_get(part).await? {
                let Some(item) = item else {
                    return Err(KvError::Backend(format!(
                        "retention report of {repository} in run {run} lacks a chunk"
                    )));
                };
                let list: Vec<Entry> = item
                    .b("entries")
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                entries.extend(list);
            }
        }
        Ok(Some(TaskReport {
            repository: repository.to_owned(),
            dry_run: h.n("dry") == Some(1),
            status: h.s("status").unwrap_or(runs::RUNNING).to_owned(),
            started: h.n("started").unwrap_or(0),
            finished: h.n("finished").unwrap_or(0),
            entries,
        }))
    }
}

/// The text of a repository task's log (`text/plain`): a summary, then
/// one line per artifact — digest, tags, labels, push and pull times,
/// and what became of it (`retained`, `deleted`, `would delete`, …).
pub fn render_log(run: &Run, r: &TaskReport) -> String {
    let time = |t: i64| {
        if t > 0 {
            crate::iam::audit::rfc3339(t)
        } else {
            "-".to_owned()
        }
    };
    let clean = |s: &str| s.replace(['\r', '\n', '|'], " ");
    let mut out = format!(
        "Repository: {}\nExecution: {} ({}{})\nStatus: {}\nStarted: {}\nFinished: {}\n\
         Candidates: {}, retained: {}, {}: {}\n\n\
         Digest | Tags | Labels | PushedTime | PulledTime | Retention\n",
        r.repository,
        run.id,
        run.trigger,
        if r.dry_run { ", dry run" } else { "" },
        r.status,
        time(r.started),
        time(r.finished),
        r.total(),
        r.retained(),
        if r.dry_run { "would delete" } else { "deleted" },
        r.removed(),
    );
    for e in &r.entries {
        out.push_str(&format!(
            "{} | {} | {} | {} | {} | {}\n",
            e.digest,
            clean(&e.tags.join(",")),
            clean(&e.labels.join(",")),
            time(e.pushed),
            time(e.pulled),
            e.outcome
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_count_as_harbor() {
        let e = |outcome: &str| Entry {
            digest: "sha256:1".into(),
            tags: vec!["a".into()],
            labels: vec![],
            pushed: 1,
            pulled: 0,
            outcome: outcome.into(),
        };
        let r = TaskReport {
            repository: "p/app".into(),
            dry_run: false,
            status: "Success".into(),
            started: 1,
            finished: 2,
            entries: vec![
                e(outcome::RETAINED),
                e(outcome::DELETED),
                e(outcome::IMMUTABLE),
                e(outcome::CHANGED),
                e("error: x"),
                e(outcome::WOULD_DELETE),
            ],
        };
        assert_eq!((r.total(), r.retained(), r.removed()), (6, 4, 2));
    }

    #[test]
    fn logs_have_one_line_per_artifact() {
        let run = Run {
            id: 4,
            kind: KIND.into(),
            status: "Success".into(),
            trigger: "Manual".into(),
            params: serde_json::json!({"policy_id": 9}),
            dry_run: true,
            created: 0,
            updated: 0,
            tasks: 2,
            pending: 0,
            phase: PHASE.into(),
            counts: BTreeMap::new(),
        };
        assert_eq!(policy_of(&run), Some(9));
        let r = TaskReport {
            repository: "p/app".into(),
            dry_run: true,
            status: "Success".into(),
            started: 60,
            finished: 61,
            entries: vec![Entry {
                digest: "sha256:ab".into(),
                tags: vec!["v1".into(), "x|y\n".into()],
                labels: vec!["prod".into()],
                pushed: 86_400,
                pulled: 0,
                outcome: outcome::WOULD_DELETE.into(),
            }],
        };
        let log = render_log(&run, &r);
        assert!(
            log.contains("Candidates: 1, retained: 0, would delete: 1"),
            "{log}"
        );
        let last = log.lines().last().unwrap_or_default();
        assert_eq!(
            last,
            "sha256:ab | v1,x y  | prod | 1970-01-02T00:00:00Z | - | would delete"
        );
    }
}
