//! The `token` binary as Lambda runs it: polling a Runtime API, invoked
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
async fn answers_that_the_token_service_is_not_configured_yet() {
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(Path::new(env!("CARGO_BIN_EXE_berth-token")), "token", &[])
        .unwrap();
    for (method, uri) in [
        (
            "GET",
            "/service/token?service=registry.test&scope=repository:a:pull",
        ),
        ("POST", "/service/token"),
    ] {
        let out = api
            .invoke_http("token", &request(method, uri))
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 501);
        let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
    }
}
