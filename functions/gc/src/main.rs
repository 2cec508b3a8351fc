//! The `gc` function: from its queue, the tasks of garbage-collection
//! runs (and, every few minutes from an EventBridge schedule, the due
//! scheduled runs, stalled tasks and expired upload sessions).

use std::sync::Arc;

use berth::jobs::gc::Gc;
use berth::lambda::init_tracing;
use berth::lambda::worker::handle_event;
use berth::store::aws::sqs::SqsQueue;
use berth::wiring;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let aws = wiring::Aws::from_env().await?;
    let registry = wiring::aws_registry(&aws, Default::default());
    let url = aws
        .settings
        .gc_queue
        .clone()
        .ok_or("the gc function needs GC_QUEUE_URL (its own queue) to fan out")?;
    let queue = Arc::new(SqsQueue::new(&aws.sdk, &url, &aws.calls));
    let gc = Gc::new(registry, queue);
    lambda_runtime::run(service_fn(|event| handle_event(event, &gc))).await
}
