//! The `manifest` function: `/v2/`, manifests, tags, referrers and the
//! catalog (API Gateway routes them here; see `infra/routes.json`).

use std::sync::Arc;

use berth::http::AppState;
use berth::lambda::{FunctionConfig, functions, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let config = FunctionConfig::from_env()?;
    // One SdkConfig and its clients, built once per execution environment.
    let registry = berth::store::aws::registry_from_env().await?;
    let state = Arc::new(AppState {
        registry,
        public_url: config.public_url,
        uploads: config.uploads,
    });
    lambda_http::run(functions::registry_router(state)).await
}
