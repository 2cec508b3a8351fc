//! The `admin` function: Harbor's `/api/v2.0/...`, `/c/login`, `/c/log_out`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth::lambda::functions::run_identity_function("admin").await
}
