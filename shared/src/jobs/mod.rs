//! Background work, written once and run by the SQS worker functions in
//! AWS (`functions/gc`, …) and by in-process tasks in `berth serve`.
//!
//! Jobs arrive at least once: every job here is idempotent. Long work is a
//! run of tasks ([`runs`]).

pub mod events;
pub mod gc;
pub mod replication;
pub mod retention;
pub mod runs;
pub mod schedule;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use crate::registry::Registry;
use crate::store::{Job, Queue};

/// The queues of the workers: in AWS one SQS queue per worker function;
/// in `berth serve` embedded durable queues; in tests possibly one queue
/// for everything (jobs are routed by kind, not by queue).
#[derive(Clone)]
pub struct Queues {
    /// The `gc` worker's: collections, retention runs.
    pub gc: Arc<dyn Queue>,
    /// The `webhook` worker's: events, webhook deliveries.
    pub events: Arc<dyn Queue>,
    /// The `replication` worker's: replication tasks.
    pub replication: Arc<dyn Queue>,
    /// Where webhook deliveries go after their last retry.
    pub dead_letters: Arc<dyn Queue>,
}

impl Queues {
    /// Everything on one queue.
    pub fn single(queue: Arc<dyn Queue>) -> Self {
        Self {
            gc: queue.clone(),
            events: queue.clone(),
            replication: queue.clone(),
            dead_letters: queue,
        }
    }
}

/// Whose scheduled work a process's tick runs: in AWS each worker
/// function has its own schedule; `berth serve` runs them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    All,
    Gc,
    Webhook,
    Replication,
}

impl Worker {
    fn ticks(self, w: Worker) -> bool {
        self == Worker::All || self == w
    }
}

/// The job side of a process that starts jobs: the queues they go to and
/// the workers' entry points (the API starts runs through these).
#[derive(Clone)]
pub struct Jobs {
    /// The `gc` worker's queue.
    pub queue: Arc<dyn Queue>,
    pub queues: Queues,
    pub gc: gc::Gc,
    /// Starts and stops retention runs (whose tasks the `gc` worker runs).
    pub retention: retention::Retention,
    /// Hands committed events to their subscribers.
    pub dispatch: events::Dispatch,
    /// Webhook policies' deliveries (the `webhook` worker).
    pub webhooks: webhook::Webhooks,
    /// Replication executions (the `replication` worker).
    pub replication: replication::Replication,
    /// Whose scheduled work [`Jobs::tick`] runs.
    pub ticks: Worker,
}

impl Jobs {
    /// Jobs with every queue the same one (tests, tools).
    pub fn new(registry: Registry, queue: Arc<dyn Queue>) -> Self {
        Self::with_queues(registry, Queues::single(queue))
    }

    /// Jobs over the workers' queues. The registry the jobs use sends its
    /// events to `queues.events`.
    pub fn with_queues(registry: Registry, queues: Queues) -> Self {
        Self::with_options(registry, queues, webhook::WebhookOptions::default())
    }

    /// [`Self::with_queues`] with the webhook worker's options (its
    /// retry delays, the public URL its payloads name).
    pub fn with_options(
        registry: Registry,
        queues: Queues,
        webhook_opts: webhook::WebhookOptions,
    ) -> Self {
        let registry = registry.with_events(queues.events.clone());
        let webhooks = webhook::Webhooks::new(
            registry.clone(),
            queues.events.clone(),
            queues.dead_letters.clone(),
            webhook_opts,
        );
        let replication =
            replication::Replication::new(registry.clone(), queues.replication.clone());
        let subscribers: Vec<Arc<dyn events::Subscriber>> =
            vec![Arc::new(webhooks.clone()), Arc::new(replication.clone())];
        Self {
            retention: retention::Retention::new(registry.clone(), queues.gc.clone()),
            gc: gc::Gc::new(registry.clone(), queues.gc.clone()),
            dispatch: events::Dispatch::new(registry, subscribers),
            webhooks,
            replication,
            queue: queues.gc.clone(),
            queues,
            ticks: Worker::All,
        }
    }

    /// These jobs, ticking only `worker`'s scheduled work.
    pub fn ticking(mut self, worker: Worker) -> Self {
        self.ticks = worker;
        self
    }

    /// Runs one job of any worker, chosen by its kind; idempotent.
    pub async fn run(&self, job: &Job) -> Result<(), String> {
        if self.dispatch.run(job).await? {
            return Ok(());
        }
        if self.webhooks.run(job).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        if self.replication.run(job).await? {
            return Ok(());
        }
        self.gc.run(job).await.map(drop)
    }

    /// Every worker's scheduled work; a failure of one does not stop the
    /// others.
    pub async fn tick(&self) -> Result<(), String> {
        let mut failed = Vec::new();
        if self.ticks.ticks(Worker::Webhook)
            && let Err(e) = self.dispatch.tick().await
        {
            failed.push(format!("event outbox: {e}"));
        }
        if self.ticks.ticks(Worker::Gc)
            && let Err(e) = self.gc.tick().await
        {
            failed.push(format!("gc: {e}"));
        }
        if self.ticks.ticks(Worker::Replication)
            && let Err(e) = self.replication.tick().await
        {
            failed.push(format!("replication: {e}"));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }
}

/// Runs the job workers inside this process (`berth serve`): for each
/// distinct queue, takes jobs, runs them, and acknowledges those that
/// succeeded (a failed or interrupted one reappears after the queue's
/// visibility timeout, as on SQS); every `tick`, runs the scheduled work.
/// The tick runs in a task of its own: a receive is never cancelled
/// half-way (it would leave the messages it took hidden until their
/// timeout).
pub fn spawn_local_workers(jobs: Jobs, tick: Duration) -> tokio::task::JoinHandle<()> {
    let ticker_jobs = jobs.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick.max(Duration::from_millis(200)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = ticker_jobs.tick().await {
                tracing::warn!(error = %e, "scheduled job work failed");
            }
        }
    });
    let q = &jobs.queues;
    let mut queues: Vec<Arc<dyn Queue>> = Vec::new();
    for queue in [&q.gc, &q.events, &q.replication] {
        if !queues.iter().any(|x| Arc::ptr_eq(x, queue)) {
            queues.push(queue.clone());
        }
    }
    let workers: Vec<_> = queues
        .into_iter()
        .map(|queue| tokio::spawn(work_queue(jobs.clone(), queue)))
        .collect();
    tokio::spawn(async move {
        for w in workers {
            let _ = w.await;
        }
    })
}

/// One queue's worker loop.
async fn work_queue(jobs: Jobs, queue: Arc<dyn Queue>) {
    use futures_util::StreamExt;
    loop {
        let batch = match queue.receive(8).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "receiving jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        futures_util::stream::iter(batch)
            .for_each_concurrent(4, |r| {
                let (jobs, queue) = (jobs.clone(), queue.clone());
                async move {
                    match jobs.run(&r.job).await {
                        Ok(()) => {
                            if let Err(e) = queue.ack(&r.receipt).await {
                                tracing::warn!(error = %e, "acknowledging a job failed");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(job = %r.job.id, kind = %r.job.kind, error = %e, "job failed; it will be retried");
                        }
                    }
                }
            })
            .await;
    }
}
