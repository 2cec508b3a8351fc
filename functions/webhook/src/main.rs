//! The `webhook` function: from its queue, the committed events (handed
//! to webhook policies and event-based replication) and the webhook
//! deliveries with their retries; every minute from an EventBridge
//! schedule, the event outbox sweep (events a crash left unsent) and the
//! rest of the scheduled work.
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
        .ticking(Worker::Webhook);
    lambda_runtime::run(service_fn(|event| handle_event(event, &jobs))).await
}
