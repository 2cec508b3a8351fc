//! The `token` function: `GET/POST /service/token`. It answers "not yet
//! configured" until the token service lands; its signing key will come
//! from the SSM SecureString named by `TOKEN_SIGNING_KEY_PARAMETER`.

use berth::lambda::{functions, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    lambda_http::run(functions::token_router()).await
}
