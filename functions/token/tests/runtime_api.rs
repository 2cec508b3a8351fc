//! The `token` binary as Lambda runs it, against DynamoDB on moto: it
//! bootstraps the directory, issues tokens that verify with the public
//! keys it publishes, and refuses bad credentials.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::RuntimeApi;
use berth::testing::{MotoUp, TEST_ADMIN_PASSWORD, identity_env, test_keys};
use bytes::Bytes;
use http::Request;

fn request(method: &str, uri: &str, auth: Option<&str>, body: &str) -> Request<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if !body.is_empty() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    b.body(Bytes::from(body.to_owned())).unwrap()
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn issues_tokens_the_registry_verifies() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    // The token function gets the seed; no public keys are handed over:
    // it publishes them itself.
    let env: Vec<(String, String)> = [moto.env.clone(), identity_env()]
        .concat()
        .into_iter()
        .filter(|(k, _)| k != "BERTH_TOKEN_PUBLIC_KEYS")
        .collect();
    let _function = api
        .spawn(Path::new(env!("CARGO_BIN_EXE_berth-token")), "token", &env)
        .unwrap();
    let admin = basic("admin", TEST_ADMIN_PASSWORD);
    let out = api
        .invoke_http(
            "token",
            &request(
                "GET",
                "/service/token?service=berth-registry&scope=repository:library/app:pull,push",
                Some(&admin),
                "",
            ),
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    let body: serde_json::Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    let token = body["token"].as_str().unwrap();
    let verifier = berth::iam::Verifier::new("berth-registry", &test_keys().jwks(), None);
    let claims = verifier
        .verify_access(token, berth::store::now_secs())
        .await
        .unwrap();
    assert!(claims.grants("repository", "library/app", "push"));

    // The OAuth2 form.
    let out = api
        .invoke_http(
            "token",
            &request(
                "POST",
                "/service/token",
                None,
                &format!(
                    "grant_type=password&service=berth-registry&username=admin&password={TEST_ADMIN_PASSWORD}&scope=repository%3Alibrary%2Fapp%3Apull"
                ),
            ),
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");

    // Wrong password.
    let out = api
        .invoke_http(
            "token",
            &request(
                "GET",
                "/service/token?service=berth-registry",
                Some(&basic("admin", "wrong")),
                "",
            ),
        )
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 401, "{out}");
}
