//! The `token` function: `GET/POST /service/token`. The only function that
//! reads the signing key (the secret `BERTH_TOKEN_KEY_SECRET_ARN` names).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth::lambda::functions::run_identity_function("token").await
}
