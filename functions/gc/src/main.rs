//! The `gc` function: from its queue and an EventBridge schedule, sweeps
//! expired upload sessions (multipart uploads, staged chunks, records).
//! Garbage collection and retention build on it.

use berth::jobs::gc::Gc;
use berth::lambda::init_tracing;
use berth::lambda::worker::handle_event;
use berth::wiring;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let aws = wiring::Aws::from_env().await?;
    let gc = Gc::new(wiring::aws_registry(&aws, Default::default()));
    lambda_runtime::run(service_fn(|event| handle_event(event, &gc))).await
}
