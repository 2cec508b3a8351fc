//! The `blob` binary as Lambda runs it, against DynamoDB and S3 on moto
//! (`localstack/moto-up`): a chunk uploaded through a base64 event, the
//! upload finished, and the pull redirected to a presigned URL.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth::lambda::runtime_api::RuntimeApi;
use bytes::Bytes;
use http::Request;

/// moto with Berth's resources, stopped when dropped.
struct Moto {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../localstack")
        .join(name)
}

impl Moto {
    fn up() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script("moto-up"))
            .env("BERTH_MOTO_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto-up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Self { dir, env }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("moto-down"))
            .env("BERTH_MOTO_DIR", self.dir.path())
            .status();
    }
}

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
        .header("host", "registry.test");
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
    let moto = Moto::up();
    let api = RuntimeApi::start().await.unwrap();
    let _function = api
        .spawn(
            Path::new(env!("CARGO_BIN_EXE_berth-blob")),
            "blob",
            &moto.env,
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
    let endpoint = moto
        .env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .unwrap()
        .1
        .clone();
    assert!(
        out["headers"]["location"]
            .as_str()
            .unwrap()
            .starts_with(&endpoint),
        "{out}"
    );
    assert_eq!(out["headers"]["docker-content-digest"], digest.as_str());
}
