//! The `manifest` binary as Lambda runs it, configured from its
//! environment against DynamoDB and S3 on moto (`localstack/moto-up`).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use berth::lambda::runtime_api::RuntimeApi;
use berth::testing::MotoUp;
use bytes::Bytes;
use http::Request;

const BIN: &str = env!("CARGO_BIN_EXE_berth-manifest");

/// Invokes the manifest binary with the event API Gateway would send to
/// `route_function` (`manifest` and `blob` serve the same `/v2` router).
async fn call_as(
    api: &RuntimeApi,
    route_function: &str,
    method: &str,
    uri: &str,
) -> serde_json::Value {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test")
        .header(
            "authorization",
            berth::testing::test_bearer("fn/app", &["pull", "push"]),
        )
        .body(Bytes::new())
        .unwrap();
    api.invoke_http(route_function, &req).await.unwrap()
}

async fn call(api: &RuntimeApi, method: &str, uri: &str) -> serde_json::Value {
    call_as(api, "manifest", method, uri).await
}

#[tokio::test]
async fn serves_the_registry_api_from_dynamodb_and_s3() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let env = [moto.env.clone(), berth::testing::identity_env()].concat();
    let _function = api.spawn(Path::new(BIN), "manifest", &env).unwrap();

    // Without a token: the challenge names the token function's route.
    let anonymous = Request::builder()
        .uri("/v2/fn/app/manifests/latest")
        .header("host", "registry.test")
        .body(Bytes::new())
        .unwrap();
    let out = api.invoke_http("manifest", &anonymous).await.unwrap();
    assert_eq!(out["statusCode"], 401, "{out}");
    assert!(
        out["headers"]["www-authenticate"]
            .as_str()
            .unwrap()
            .starts_with("Bearer realm=\"https://registry.test/service/token\""),
        "{out}"
    );

    let out = call(&api, "GET", "/v2/").await;
    assert_eq!(
        (out["statusCode"].as_u64(), out["body"].as_str()),
        (Some(200), Some("{}"))
    );
    assert_eq!(
        out["headers"]["docker-distribution-api-version"],
        "registry/2.0"
    );

    let out = call(&api, "GET", "/v2/fn/app/manifests/latest").await;
    assert_eq!(out["statusCode"], 404);
    assert!(
        out["body"].as_str().unwrap().contains("MANIFEST_UNKNOWN"),
        "{out}"
    );

    // A DynamoDB write: the session of a new upload.
    let out = call_as(&api, "blob", "POST", "/v2/fn/app/blobs/uploads/").await;
    assert_eq!(out["statusCode"], 202, "{out}");
    assert!(
        out["headers"]["location"]
            .as_str()
            .unwrap()
            .starts_with("https://registry.test/v2/fn/app/blobs/uploads/")
    );
}

#[tokio::test]
async fn fails_its_init_without_its_configuration() {
    let api = RuntimeApi::start().await.unwrap();
    let mut function = api
        .spawn(
            Path::new(BIN),
            "manifest",
            &[("METADATA_TABLE".to_owned(), String::new())],
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = function.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the function started without METADATA_TABLE"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
}
