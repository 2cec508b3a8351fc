//! The `admin` function: Harbor's `/api/v2.0/...`. It answers "not yet
//! configured" (Harbor's `NOT_IMPLEMENTED`) until the admin API lands.

use berth::lambda::{functions, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    lambda_http::run(functions::admin_router()).await
}
