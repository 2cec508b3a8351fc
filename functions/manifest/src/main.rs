//! The `manifest` function: `/v2/`, manifests, tags, referrers and the
//! catalog (API Gateway routes them here; see `infra/routes.json`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth::lambda::functions::run_registry_function().await
}
