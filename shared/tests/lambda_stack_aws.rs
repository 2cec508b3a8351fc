//! The functions as deployed: the local API Gateway stack (events, base64,
//! the Lambda limits) over the AWS adapters, against moto; and the
//! emulator scripts of `localstack/` that tests and developers use.
#![cfg(all(feature = "lambda", feature = "aws"))]
#![allow(clippy::unwrap_used)]

#[path = "support/moto.rs"]
mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use berth::http::AppState;
use berth::lambda::apigw::GatewayConfig;
use berth::lambda::stack::Stack;
use berth::store::aws::CallCounter;
use http_body_util::BodyExt;
use support::moto;
use tower::ServiceExt;

const MIB: usize = 1024 * 1024;

async fn send(
    stack: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = stack
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// GET over plain HTTP/1.1 (the presigned URL points at moto's S3).
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 4 + size..];
        }
        body = out;
    }
    (status, body)
}

#[tokio::test]
async fn a_chunked_push_through_lambda_on_aws_pulls_back_through_a_presigned_url() {
    let m = moto();
    let registry = m.registry(&CallCounter::default()).await;
    let state = Arc::new(AppState::new(registry));
    let gateway = GatewayConfig {
        forwarded_proto: "http".to_owned(),
        forwarded_port: 80,
        ..GatewayConfig::default()
    };
    let stack = Stack::registry(state, gateway).unwrap().into_router();

    let data: Vec<u8> = (0..(11 * MIB + 12_345) as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let digest = berth::oci::sha256_digest(&data).to_string();
    let (status, headers, _) = send(
        &stack,
        Method::POST,
        "/v2/aws/app/blobs/uploads/",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let location = headers["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("http://registry.test")
        .to_owned();
    for (i, chunk) in data.chunks(4 * MIB).enumerate() {
        let range = format!("{}-{}", i * 4 * MIB, i * 4 * MIB + chunk.len() - 1);
        let h = [
            ("content-type", "application/octet-stream"),
            ("content-range", range.as_str()),
        ];
        let (status, _, body) = send(&stack, Method::PATCH, &location, &h, chunk.to_vec()).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, body) = send(
        &stack,
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, headers, _) = send(
        &stack,
        Method::HEAD,
        &format!("/v2/aws/app/blobs/{digest}"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], data.len().to_string().as_str());

    let (status, headers, _) = send(
        &stack,
        Method::GET,
        &format!("/v2/aws/app/blobs/{digest}"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    let url = headers["location"].to_str().unwrap().to_owned();
    assert!(url.starts_with(&m.endpoint), "{url}");
    let (status, pulled) = tokio::task::spawn_blocking(move || http_get(&url))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(pulled == data, "the presigned URL served different bytes");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn moto_up_serves_the_resources_and_moto_down_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = || {
        let out = Command::new("bash")
            .arg(root().join("localstack/moto-up"))
            .env("BERTH_MOTO_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto-up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = up();
    for var in [
        "METADATA_TABLE",
        "BLOB_BUCKET",
        "WEBHOOK_QUEUE_URL",
        "REPLICATION_QUEUE_URL",
        "GC_QUEUE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
    ] {
        assert!(
            first
                .lines()
                .any(|l| l.starts_with(&format!("export {var}="))),
            "no {var} in:\n{first}"
        );
    }
    // A second call reuses the running server and converges.
    assert_eq!(up(), first);
    let pid: u32 = std::fs::read_to_string(dir.path().join("moto.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let out = Command::new("bash")
        .arg(root().join("localstack/moto-down"))
        .env("BERTH_MOTO_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!dir.path().join("moto.pid").exists());
    let gone = (0..50).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its (detached) parent.
        let done = state.is_empty() || state.split(' ').nth(2) == Some("Z");
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        done
    });
    assert!(gone, "moto (pid {pid}) still runs after moto-down");
}
