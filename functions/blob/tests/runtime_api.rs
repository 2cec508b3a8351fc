//! The `blob` binary as Lambda runs it, against DynamoDB and S3 on moto
//! (`localstack/moto-up`): a chunk uploaded through a base64 event, the
//! upload finished, and the pull redirected to a presigned URL.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth::lambda::runtime_api::RuntimeApi;
use berth::testing::MotoUp;
use bytes::Bytes;
use http::Request;

async fn call(
    api: &RuntimeApi,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> serde_json::Value {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test")
        .header(
            "authorization",
            berth::testing::test_bearer("fn/app", &["pull", "push"]),
        );
    if !body.is_empty() {
        req = req
            .header("content-type", content_type)
            .header("content-range", format!("0-{}", body.len() - 1));
    }
    let req = req.body(Bytes::from(body)).unwrap();
    api.invoke_http("blob", &req).await.unwrap()
}

#[tokio::test]
async fn uploads_a_chunk_and_redirects_pulls_to_s3() {
    let moto = MotoUp::start().unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(
            Path::new(env!("CARGO_BIN_EXE_berth-blob")),
            "blob",
            &[moto.env.clone(), berth::testing::identity_env()].concat(),
        )
        .unwrap();

    let out = call(&api, "POST", "/v2/fn/app/blobs/uploads/", "", Vec::new()).await;
    assert_eq!(out["statusCode"], 202, "{out}");
    let location = out["headers"]["location"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://registry.test")
        .to_owned();

    let data: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let digest = berth::oci::sha256_digest(&data).to_string();
    let out = call(
        &api,
        "PATCH",
        &location,
        "application/octet-stream",
        data.clone(),
    )
    .await;
    assert_eq!(out["statusCode"], 202, "{out}");
    assert_eq!(out["headers"]["range"], format!("0-{}", data.len() - 1));
    let out = call(
        &api,
        "PUT",
        &format!("{location}?digest={digest}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(out["statusCode"], 201, "{out}");

    let out = call(
        &api,
        "GET",
        &format!("/v2/fn/app/blobs/{digest}"),
        "",
        Vec::new(),
    )
    .await;
    assert_eq!(out["statusCode"], 307, "{out}");
    let endpoint = moto.var("AWS_ENDPOINT_URL").unwrap().to_owned();
    assert!(
        out["headers"]["location"]
            .as_str()
            .unwrap()
            .starts_with(&endpoint),
        "{out}"
    );
    assert_eq!(out["headers"]["docker-content-digest"], digest.as_str());
}
