//! The `admin` binary as Lambda runs it, against DynamoDB on moto: the
//! bootstrap (admin user, public `library`), Harbor's API with Basic auth,
//! and the portal's login.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::RuntimeApi;
use berth::testing::{MotoUp, TEST_ADMIN_PASSWORD, identity_env};
use bytes::Bytes;
use http::Request;

fn request(method: &str, uri: &str, auth: Option<&str>) -> Request<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    b.body(Bytes::new()).unwrap()
}

fn json(out: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(out["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn serves_harbors_api_over_dynamodb() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    // The admin function holds no signing key.
    let env: Vec<(String, String)> = [moto.env.clone(), identity_env()]
        .concat()
        .into_iter()
        .filter(|(k, _)| k != "BERTH_TOKEN_KEYS")
        .collect();
    let _function = api
        .spawn(Path::new(env!("CARGO_BIN_EXE_berth-admin")), "admin", &env)
        .unwrap();
    let out = api
        .invoke_http("admin", &request("GET", "/api/v2.0/projects", None))
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(json(&out)[0]["name"], "library");

    let out = api
        .invoke_http(
            "admin",
            &request("DELETE", "/api/v2.0/projects/library", None),
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 401, "{out}");
    assert_eq!(json(&out)["errors"][0]["code"], "UNAUTHORIZED");

    use base64::Engine;
    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{TEST_ADMIN_PASSWORD}"))
    );
    let out = api
        .invoke_http(
            "admin",
            &request("GET", "/api/v2.0/users/current", Some(&admin)),
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    assert_eq!(json(&out)["username"], "admin");
    assert_eq!(json(&out)["sysadmin_flag"], true);
}
