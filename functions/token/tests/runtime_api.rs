//! The `token` binary as Lambda runs it: polling a Runtime API, invoked
//! with API Gateway events.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use berth::lambda::apigw::Gateway;
use berth::lambda::routes::RouteTable;
use berth::lambda::runtime_api::{Outcome, RuntimeApi};
use bytes::Bytes;
use http::Request;

fn event(method: &str, uri: &str) -> Vec<u8> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test")
        .body(Bytes::new())
        .unwrap();
    let route = RouteTable::builtin()
        .unwrap()
        .select(method, req.uri().path());
    assert_eq!(route.function, "token");
    serde_json::to_vec(&Gateway::default().event(
        &route,
        &req,
        "request-1",
        Duration::from_secs(1_700_000_000),
    ))
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
        let Outcome::Response(out) = api.invoke(&event(method, uri)).await else {
            panic!("no response to {method} {uri}")
        };
        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["statusCode"], 501);
        let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
    }
}
