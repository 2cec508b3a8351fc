//! Background work, written once and run by the SQS worker functions in
//! AWS (`functions/gc`, …) and by in-process tasks in `berth serve`.
//!
//! Jobs arrive at least once: every job here is idempotent. Long work is a
//! run of tasks ([`runs`]).

pub mod gc;
pub mod retention;
pub mod runs;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use crate::registry::Registry;
use crate::store::Queue;

/// The job side of a process that starts jobs: the queue they go to and
/// the workers' entry points (the API starts runs through these).
#[derive(Clone)]
pub struct Jobs {
    pub queue: Arc<dyn Queue>,
    pub gc: gc::Gc,
    /// Starts and stops retention runs (whose tasks the `gc` worker runs).
    pub retention: retention::Retention,
}

impl Jobs {
    pub fn new(registry: Registry, queue: Arc<dyn Queue>) -> Self {
        Self {
            retention: retention::Retention::new(registry.clone(), queue.clone()),
            gc: gc::Gc::new(registry, queue.clone()),
            queue,
        }
    }
}

/// Runs the job workers inside this process (`berth serve`): takes jobs
/// from the queue, runs them, and acknowledges those that succeeded (a
/// failed or interrupted one reappears after the queue's visibility
/// timeout, as on SQS); every `tick`, runs the scheduled work. The tick
/// runs in a task of its own: a receive is never cancelled half-way (it
/// would leave the messages it took hidden until their timeout).
pub fn spawn_local_workers(jobs: Jobs, tick: Duration) -> tokio::task::JoinHandle<()> {
    use futures_util::StreamExt;
    let ticker_jobs = jobs.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = ticker_jobs.gc.tick().await {
                tracing::warn!(error = %e, "scheduled job work failed");
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let batch = match jobs.queue.receive(8).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving jobs failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            futures_util::stream::iter(batch)
                .for_each_concurrent(2, |r| {
                    let jobs = jobs.clone();
                    async move {
                        match jobs.gc.run(&r.job).await {
                            Ok(_) => {
                                if let Err(e) = jobs.queue.ack(&r.receipt).await {
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
    })
}
