//! The `blob` function: blob GET/HEAD (307 to a presigned S3 URL), DELETE,
//! and uploads (`/v2/<name>/blobs/uploads/...`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth::lambda::functions::run_registry_function().await
}
