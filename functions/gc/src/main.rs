//! The `gc` function: from its queue, the tasks of garbage-collection
//! runs and retention runs (and, every few minutes from an EventBridge
//! schedule, the due scheduled runs, stalled tasks and expired upload
//! sessions).
//!
//! Every worker function runs the same job router (`berth::jobs::Jobs`),
//! which picks the handler by the job's kind.

use berth::jobs::Worker;
use berth::lambda::init_tracing;
use berth::lambda::worker::handle_event;
use berth::wiring;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let aws = wiring::Aws::from_env().await?;
    let registry = wiring::aws_registry(&aws, Default::default());
    let jobs = wiring::aws_jobs(&aws, &registry)
        .ok_or("this worker needs its queue's URL (GC_QUEUE_URL, WEBHOOK_QUEUE_URL or REPLICATION_QUEUE_URL)")?
        .ticking(Worker::Gc);
    lambda_runtime::run(service_fn(|event| handle_event(event, &jobs))).await
}
