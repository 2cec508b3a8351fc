//! The `admin` binary as Lambda runs it: polling a Runtime API, invoked
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
    assert_eq!(route.function, "admin");
    serde_json::to_vec(&Gateway::default().event(
        &route,
        &req,
        "request-1",
        Duration::from_secs(1_700_000_000),
    ))
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
        let Outcome::Response(out) = api.invoke(&event(method, uri)).await else {
            panic!("no response to {method} {uri}")
        };
        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["statusCode"], 501);
        let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "NOT_IMPLEMENTED");
    }
}
