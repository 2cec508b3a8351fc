//! The `gc` function: garbage collection, upload-session expiry and
//! retention, from its queue and an EventBridge schedule. Its job kinds
//! arrive in a later release; until then every job is logged and
//! acknowledged.

use berth::lambda::init_tracing;
use berth::lambda::worker::{NotConfigured, handle_event};
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let handler = NotConfigured::new("gc");
    lambda_runtime::run(service_fn(|event| handle_event(event, &handler))).await
}
