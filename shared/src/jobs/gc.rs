//! The `gc` worker: online garbage collection runs (manual, scheduled or
//! dry), fanned out over queue messages so no invocation runs long, and
//! the sweep of expired upload sessions.
//!
//! A run starts with one listing task per shard of the collector's index
//! of repositories; a listing task pages through its shard, adding one
//! task per repository (and one for its next page). When the last of
//! those finishes, the run moves to its blob phase: one task per shard of
//! candidate blobs, plus the expired uploads. Each task is an item taken
//! with a lease ([`super::runs`]), so a redelivered message does nothing
//! twice and a worker killed mid-task is replaced by the next delivery.
//! What a repository or blob task does is in `registry::gc`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::runs::{self, Run, Runs, TaskSpec};
use crate::registry::keys::GC_SHARDS;
use crate::registry::{Registry, SweepReport};
use crate::store::{Job, Queue, now_secs};

/// Job kind: sweep expired upload sessions now.
pub const SWEEP_UPLOADS: &str = "uploads.sweep";
/// Task kinds of a collection run.
pub const LIST: &str = "gc.list";
pub const REPO: &str = "gc.repo";
pub const BLOBS: &str = "gc.blobs";
pub const UPLOADS: &str = "gc.uploads";

/// The run kind in the job store, and the schedule's name.
pub const KIND: &str = "gc";

const PHASE_REPOS: &str = "repos";
const PHASE_BLOBS: &str = "blobs";

/// What a collection is asked to do (Harbor's `parameters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcParams {
    #[serde(default)]
    pub delete_untagged: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Harbor's worker count; accepted and shown, the queue decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<i64>,
}

/// A run's stored parameters: what was asked and when it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    asked: GcParams,
    /// The run's clock (epoch seconds): the cutoff is this minus the grace.
    started: i64,
}

/// One task message's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    run: i64,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<char>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
}

/// What the `gc` worker does.
#[derive(Clone)]
pub struct Gc {
    registry: Registry,
    runs: Runs,
    queue: Arc<dyn Queue>,
    /// How long a worker holds a task before another may take it over.
    lease: Duration,
    /// Retention runs: their jobs share this worker and its queue.
    retention: super::retention::Retention,
}

/// What one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Swept(SweepReport),
    /// A collection task ran (or was found done already).
    Task,
    /// A job kind this worker does not know: acknowledged with a warning.
    Ignored,
}

/// Why a collection could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a garbage collection is already running (run {0})")]
    Running(i64),
    #[error(transparent)]
    Store(#[from] crate::store::KvError),
    #[error("could not queue the collection: {0}")]
    Queue(String),
}

fn job(kind: &str, p: &Payload) -> TaskSpec {
    TaskSpec {
        key: p.key.clone(),
        job: Job::new(kind, serde_json::to_value(p).unwrap_or_default()),
    }
}

impl Gc {
    pub fn new(registry: Registry, queue: Arc<dyn Queue>) -> Self {
        let runs = Runs::new(registry.kv().clone(), KIND);
        let retention = super::retention::Retention::new(registry.clone(), queue.clone());
        Self {
            registry,
            runs,
            queue,
            lease: Duration::from_secs(300),
            retention,
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

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts a collection (`trigger`: `Manual` or `Schedule`). One runs
    /// at a time.
    pub async fn start(&self, trigger: &str, params: GcParams) -> Result<Run, StartError> {
        if let Some(r) = self.runs.page(None, 1).await?.0.first()
            && !r.finished()
        {
            return Err(StartError::Running(r.id));
        }
        let stored = Stored {
            asked: params,
            started: now_secs(),
        };
        let params_json = serde_json::to_value(&stored).unwrap_or_default();
        let first = |id: i64| -> Vec<TaskSpec> {
            GC_SHARDS
                .iter()
                .map(|s| {
                    job(
                        LIST,
                        &Payload {
                            run: id,
                            key: format!("list#{s}#"),
                            shard: Some(*s),
                            after: None,
                            repo: None,
                        },
                    )
                })
                .collect()
        };
        let run = self
            .runs
            .create(trigger, params_json, params.dry_run, PHASE_REPOS, &first)
            .await?;
        let first = first(run.id);
        self.runs
            .log(
                run.id,
                &format!(
                    "collection started ({trigger}): delete_untagged={}, dry_run={}, grace={}s",
                    params.delete_untagged,
                    params.dry_run,
                    self.registry.options().grace().as_secs()
                ),
            )
            .await;
        self.send(&first).await.map_err(StartError::Queue)?;
        Ok(run)
    }

    async fn send(&self, tasks: &[TaskSpec]) -> Result<(), String> {
        for t in tasks {
            self.queue.send(&t.job).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Runs one job; idempotent.
    pub async fn run(&self, job: &Job) -> Result<Outcome, String> {
        match job.kind.as_str() {
            SWEEP_UPLOADS => self.sweep_uploads().await.map(Outcome::Swept),
            LIST | REPO | BLOBS | UPLOADS => self.task(job).await.map(|()| Outcome::Task),
            k if k.starts_with("retention.") => {
                self.retention.run(job).await.map(|()| Outcome::Task)
            }
            other => {
                tracing::warn!(job = %job.id, kind = other, "gc: unknown job kind; acknowledged without action");
                Ok(Outcome::Ignored)
            }
        }
    }

    async fn task(&self, job: &Job) -> Result<(), String> {
        let p: Payload = serde_json::from_value(job.payload.clone())
            .map_err(|e| format!("gc task payload: {e}"))?;
        let Some((token, run)) = self.runs.claim(p.run, &p.key, self.lease).await? else {
            return Ok(());
        };
        let stored: Stored = serde_json::from_value(run.params.clone())
            .map_err(|e| format!("gc run params: {e}"))?;
        let work = self.work(job.kind.as_str(), &p, &stored).await;
        if let Some(last) = self.runs.settle(p.run, &p.key, &token, work).await? {
            self.next_phase(&last).await?;
        }
        Ok(())
    }

    /// The work of one task; returns its counts.
    async fn work(
        &self,
        kind: &str,
        p: &Payload,
        stored: &Stored,
    ) -> Result<BTreeMap<String, i64>, String> {
        let reg = &self.registry;
        let dry = stored.asked.dry_run;
        let mut counts = BTreeMap::new();
        match kind {
            LIST => {
                let shard = p.shard.ok_or("gc list task without a shard")?;
                let (repos, next) = reg
                    .linked_page(shard, p.after.clone(), 100)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut tasks: Vec<TaskSpec> = repos
                    .iter()
                    .map(|r| {
                        job(
                            REPO,
                            &Payload {
                                run: p.run,
                                key: format!("repo#{r}"),
                                shard: None,
                                after: None,
                                repo: Some(r.to_string()),
                            },
                        )
                    })
                    .collect();
                if let Some(next) = next {
                    tasks.push(job(
                        LIST,
                        &Payload {
                            run: p.run,
                            key: format!("list#{shard}#{next}"),
                            shard: Some(shard),
                            after: Some(next),
                            repo: None,
                        },
                    ));
                }
                self.runs
                    .add_tasks(p.run, &tasks, None)
                    .await
                    .map_err(|e| e.to_string())?;
                self.send(&tasks).await?;
                counts.insert("repositories".into(), repos.len() as i64);
            }
            REPO => {
                let name = p
                    .repo
                    .as_deref()
                    .ok_or("gc repo task without a repository")?;
                let repo = name
                    .parse()
                    .map_err(|_| format!("bad repository {name:?}"))?;
                let s = reg
                    .gc_repository(&repo, stored.started, stored.asked.delete_untagged, dry)
                    .await
                    .map_err(|e| e.to_string())?;
                counts.insert("artifacts".into(), s.artifacts as i64);
                counts.insert("links_examined".into(), s.links_examined as i64);
                counts.insert("links".into(), s.links_removed as i64);
                counts.insert("link_bytes".into(), s.link_bytes);
                if s.artifacts > 0 || s.links_removed > 0 {
                    let verb = if dry { "would remove" } else { "removed" };
                    self.runs
                        .log(
                            p.run,
                            &format!(
                                "{name}: {verb} {} untagged artifacts and {} unreferenced blob links",
                                s.artifacts, s.links_removed
                            ),
                        )
                        .await;
                }
            }
            BLOBS => {
                let shard = p.shard.ok_or("gc blob task without a shard")?;
                let s = reg
                    .gc_blobs(shard, stored.started, dry)
                    .await
                    .map_err(|e| e.to_string())?;
                counts.insert("blobs_examined".into(), s.examined as i64);
                counts.insert("blobs".into(), s.deleted as i64);
                counts.insert("freed".into(), s.freed);
            }
            UPLOADS if !dry => {
                let r = self.sweep_uploads().await?;
                counts.insert("uploads".into(), r.removed as i64);
            }
            _ => {}
        }
        Ok(counts)
    }

    /// After the last task of a phase: the next phase, or the end.
    async fn next_phase(&self, run: &Run) -> Result<(), String> {
        match run.phase.as_str() {
            PHASE_REPOS => {
                let mut tasks: Vec<TaskSpec> = GC_SHARDS
                    .iter()
                    .map(|s| {
                        job(
                            BLOBS,
                            &Payload {
                                run: run.id,
                                key: format!("blobs#{s}"),
                                shard: Some(*s),
                                after: None,
                                repo: None,
                            },
                        )
                    })
                    .collect();
                tasks.push(job(
                    UPLOADS,
                    &Payload {
                        run: run.id,
                        key: "uploads".into(),
                        shard: None,
                        after: None,
                        repo: None,
                    },
                ));
                // Only the worker that moves the phase sends the tasks.
                if self
                    .runs
                    .add_tasks(run.id, &tasks, Some((PHASE_REPOS, PHASE_BLOBS)))
                    .await
                    .map_err(|e| e.to_string())?
                {
                    self.send(&tasks).await?;
                }
            }
            PHASE_BLOBS
                if self
                    .runs
                    .set_status(run.id, &[runs::RUNNING], runs::SUCCESS)
                    .await
                    .map_err(|e| e.to_string())? =>
            {
                let verb = if run.dry_run { "would free" } else { "freed" };
                self.runs
                    .log(
                        run.id,
                        &format!(
                            "collection finished: {} untagged artifacts, {} blob links, {} blobs; {verb} {} bytes",
                            run.count("artifacts"),
                            run.count("links"),
                            run.count("blobs"),
                            run.count("freed") + if run.dry_run { run.count("link_bytes") } else { 0 },
                        ),
                    )
                    .await;
                tracing::info!(
                    run = run.id,
                    artifacts = run.count("artifacts"),
                    links = run.count("links"),
                    blobs = run.count("blobs"),
                    freed = run.count("freed"),
                    "garbage collection finished"
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Sweeps expired upload sessions.
    pub async fn sweep_uploads(&self) -> Result<SweepReport, String> {
        let report = self
            .registry
            .sweep_uploads(now_secs())
            .await
            .map_err(|e| e.to_string())?;
        if report.removed > 0 {
            tracing::info!(
                removed = report.removed,
                examined = report.examined,
                "swept expired upload sessions"
            );
        }
        Ok(report)
    }

    /// The scheduled work: a due scheduled collection, the tasks a crash
    /// left unsent, and expired upload sessions.
    pub async fn tick(&self) -> Result<(), String> {
        let now = now_secs();
        if let Err(e) = self.retention.tick().await {
            tracing::warn!(error = %e, "scheduled retention work failed");
        }
        match super::schedule::Schedules::new(self.registry.kv().clone())
            .claim_due(KIND, now)
            .await
        {
            Ok(Some(params)) => {
                let params: GcParams = serde_json::from_value(params).unwrap_or_default();
                match self.start("Schedule", params).await {
                    Ok(run) => tracing::info!(run = run.id, "scheduled garbage collection started"),
                    Err(e) => {
                        tracing::warn!(error = %e, "scheduled garbage collection not started")
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading the gc schedule failed"),
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
                "resent the tasks of a stalled collection"
            );
        }
        self.sweep_uploads().await.map(drop)
    }
}
