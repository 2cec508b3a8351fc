//! The `admin` binary as Lambda runs it: polling a Runtime API, invoked
//! with API Gateway events.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::RuntimeApi;
use bytes::Bytes;
use http::Request;

fn request(method: &str, uri: &str) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test")
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn answers_with_harbors_not_implemented_error() {
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(Path::new(env!("CARGO_BIN_EXE_berth-admin")), "admin", &[])
        .unwrap();
    for (method, uri) in [
        ("GET", "/api/v2.0/projects?page=1"),
        ("DELETE", "/api/v2.0/projects/library"),
    ] {
        let out = api
            .invoke_http("admin", &request(method, uri))
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 501);
        let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "NOT_IMPLEMENTED");
    }
}
