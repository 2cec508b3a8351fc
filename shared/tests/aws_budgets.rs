//! The hot-path budgets of DESIGN §4, held by counting the AWS calls each
//! operation makes against the emulator (moto).
#![cfg(feature = "aws")]

mod common;
#[path = "support/moto.rs"]
mod support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::store::aws::CallCounter;
use common::*;

struct AwsApp {
    app: TestApp,
    calls: CallCounter,
}

async fn aws_app() -> AwsApp {
    let moto = support::moto();
    let calls = CallCounter::default();
    let registry = moto.registry(&calls).await;
    AwsApp {
        app: TestApp::over(registry),
        calls,
    }
}

impl std::ops::Deref for AwsApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl AwsApp {
    /// Runs a request and returns the calls it made.
    async fn measure(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (Resp, Calls) {
        self.calls.reset();
        let r = self.send(method, uri, headers, body).await;
        (r, Calls(self.calls.snapshot()))
    }
}

#[derive(Debug)]
struct Calls(std::collections::BTreeMap<String, u64>);

impl Calls {
    fn service(&self, s: &str) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{s}.")))
            .map(|(_, v)| v)
            .sum()
    }
    fn op(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }
}

fn repo(p: &str) -> String {
    format!("budget/{p}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_get_is_one_read_and_a_presigned_redirect() {
    let a = aws_app().await;
    let r = repo("blob");
    let d = a.push_blob(&r, b"some layer bytes").await;
    let (resp, calls) = a
        .measure(
            Method::GET,
            &format!("/v2/{r}/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::TEMPORARY_REDIRECT);
    assert!(calls.service("DynamoDB") <= 1, "{calls:?}");
    assert_eq!(calls.service("S3"), 0, "presigning is local: {calls:?}");
    let url = resp.header("location");
    assert!(
        url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="),
        "{url}"
    );
    let (resp, calls) = a
        .measure(
            Method::HEAD,
            &format!("/v2/{r}/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (resp.status, resp.header("content-length")),
        (StatusCode::OK, "16")
    );
    assert!(
        calls.service("DynamoDB") <= 1 && calls.service("S3") == 0,
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_url_serves_the_blob_and_expires_in_five_minutes() {
    let a = aws_app().await;
    let r = repo("presign");
    let d = a.push_blob(&r, b"presigned bytes").await;
    let resp = a
        .send(
            Method::GET,
            &format!("/v2/{r}/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    let url = resp.header("location").to_owned();
    // moto does not check signatures; check what the signature covers.
    let q: std::collections::HashMap<String, String> = url
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    assert_eq!(q["X-Amz-Expires"], "300");
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert!(q["X-Amz-SignedHeaders"].contains("host"));
    // The URL itself reaches the object on the emulator.
    let out = std::process::Command::new("curl")
        .args(["-sf", &url])
        .output()
        .expect("curl runs");
    assert_eq!(out.stdout, b"presigned bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_reads_stay_within_budget() {
    let a = aws_app().await;
    let r = repo("manifest");
    let (m, d) = a.push_image(&r, "v1", "budget").await;
    let (resp, calls) = a
        .measure(
            Method::GET,
            &format!("/v2/{r}/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(resp.body.as_ref(), m.as_slice());
    assert!(
        calls.service("DynamoDB") <= 1 && calls.service("S3") == 0,
        "by digest: {calls:?}"
    );
    let (resp, calls) = a
        .measure(
            Method::GET,
            &format!("/v2/{r}/manifests/v1"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(resp.body.as_ref(), m.as_slice());
    assert!(
        calls.service("DynamoDB") <= 2 && calls.service("S3") == 0,
        "by tag: {calls:?}"
    );
    let (resp, calls) = a
        .measure(
            Method::HEAD,
            &format!("/v2/{r}/manifests/v1"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(resp.header("docker-content-digest"), d);
    assert!(calls.service("DynamoDB") <= 1, "head by tag: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_put_is_one_batch_read_and_one_transaction() {
    let a = aws_app().await;
    let r = repo("put");
    let config = r#"{"os":"linux"}"#;
    let layers: Vec<String> = (0..5).map(|i| format!("layer {i}")).collect();
    a.push_blob(&r, config.as_bytes()).await;
    for l in &layers {
        a.push_blob(&r, l.as_bytes()).await;
    }
    let refs: Vec<&str> = layers.iter().map(String::as_str).collect();
    let m = image_manifest(
        &[(config, "application/vnd.oci.image.config.v1+json")],
        &refs,
        None,
        None,
    );
    let (resp, calls) = a
        .measure(
            Method::PUT,
            &format!("/v2/{r}/manifests/v1"),
            &[("content-type", OCI_MANIFEST)],
            m,
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    assert_eq!(calls.op("DynamoDB.BatchGetItem"), 1, "{calls:?}");
    assert_eq!(calls.op("DynamoDB.TransactWriteItems"), 1, "{calls:?}");
    assert_eq!(calls.service("DynamoDB"), 2, "{calls:?}");
    assert_eq!(calls.service("S3"), 0, "{calls:?}");
    // The push's event rides in that transaction (an outbox item) and is
    // sent after it with one queue call; its consumer deletes the item.
    assert_eq!(calls.op("SQS.SendMessage"), 1, "{calls:?}");
    assert_eq!(calls.service("SQS"), 1, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_finalize_never_copies_or_rereads() {
    let a = aws_app().await;
    let r = repo("upload");
    // 12 MiB in 3 MiB chunks: parts of 5 MiB+ are cut, small tails staged.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let resp = a
        .send(
            Method::POST,
            &format!("/v2/{r}/blobs/uploads/"),
            &[],
            Body::empty(),
        )
        .await;
    let path = resp
        .header("location")
        .trim_start_matches("http://localhost")
        .to_owned();
    let mut offset = 0;
    for c in data.chunks(3 * 1024 * 1024) {
        let range = format!("{}-{}", offset, offset + c.len() - 1);
        let resp = a
            .send(
                Method::PATCH,
                &path,
                &[("content-range", &range)],
                c.to_vec(),
            )
            .await;
        assert_eq!(
            resp.status,
            StatusCode::ACCEPTED,
            "{:?}",
            String::from_utf8_lossy(&resp.body)
        );
        offset += c.len();
    }
    let d = digest(&data);
    let (resp, calls) = a
        .measure(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        resp.status,
        StatusCode::CREATED,
        "{:?}",
        String::from_utf8_lossy(&resp.body)
    );
    assert!(calls.service("DynamoDB") <= 2, "{calls:?}");
    // No copy and no read of the blob. (A HEAD may appear on moto only: it
    // answers CompleteMultipartUpload with an XML root the SDK rejects, and
    // the adapter then confirms the object exists; real S3 never takes that path.)
    for forbidden in ["S3.CopyObject", "S3.UploadPartCopy", "S3.GetObject"] {
        assert_eq!(calls.op(forbidden), 0, "{forbidden}: {calls:?}");
    }
    assert!(calls.op("S3.HeadObject") <= 1, "{calls:?}");
    assert_eq!(calls.op("S3.CompleteMultipartUpload"), 1, "{calls:?}");
    // And the blob is whole.
    let resp = a
        .send(
            Method::GET,
            &format!("/v2/{r}/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    let out = std::process::Command::new("curl")
        .args(["-sf", resp.header("location")])
        .output()
        .unwrap();
    assert!(out.stdout == data, "blob differs after multipart assembly");
}

/// The upload-token key named by ARN (as the template passes it) is read
/// from Secrets Manager on the first upload, once, and never at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_key_is_read_from_secrets_manager_once_on_first_use() {
    use berth::http::UploadRouting;
    let moto = support::moto();
    let calls = CallCounter::default();
    let aws = moto.aws(&calls).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.sdk);
    let arn = secrets
        .create_secret()
        .name(format!(
            "berth-upload-key-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .secret_string("a key of at least thirty-two characters, for tokens")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let source = berth::store::aws::secrets::SecretsManagerSecret::new(&aws.sdk, &arn, &calls);
    let key = berth::auth::UploadKey::from_source(std::sync::Arc::new(source), 3600);
    let uploads =
        UploadRouting::configure(Some("https://uploads.example".into()), Some(key), false).unwrap();
    let app = TestApp::build(Default::default(), None, |mut s| {
        s.uploads = uploads;
        s
    })
    .await;
    assert_eq!(
        calls.service_total("SecretsManager"),
        0,
        "nothing is read at start-up"
    );
    for _ in 0..3 {
        let r = app
            .send(
                Method::POST,
                &format!("/v2/{}/blobs/uploads/", repo("key")),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert!(r.header("location").starts_with("https://uploads.example/"));
        assert!(r.header("location").contains("_state="));
    }
    assert_eq!(
        calls
            .snapshot()
            .get("SecretsManager.GetSecretValue")
            .copied(),
        Some(1),
        "{:?}",
        calls.snapshot()
    );
}

/// With identity on, the registry path stays stateless: a registry
/// function holding no key reads the published public keys once, then a
/// pull with a token costs exactly what an unauthenticated pull cost — no
/// user, project or membership record is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_pulls_read_no_identity_records() {
    use std::sync::Arc;
    let moto = support::moto();
    let calls = CallCounter::default();
    let registry = moto.registry(&calls).await;
    // The token function's side: keys, bootstrap, published public keys.
    let keys =
        Arc::new(berth::iam::KeyRing::from_seeds(&["budget-test-seed-0123456789abcdef"]).unwrap());
    let issuer = berth::wiring::iam(registry.kv().clone(), Some(keys.clone()));
    berth::wiring::bootstrap_identity(&issuer, Some("Harbor12345"))
        .await
        .unwrap();
    // The registry function's side: verification only.
    let verifier_only = berth::wiring::iam(registry.kv().clone(), None);
    let mut state = berth::http::AppState::new(registry.clone());
    state.iam = Some(verifier_only);
    let app = berth::http::app(Arc::new(state));
    let open = TestApp::over(registry);
    let r = format!("library/budget-{}", uuid::Uuid::new_v4().simple());
    let (_, manifest) = open.push_image(&r, "v1", "auth").await;
    let now = berth::store::now_secs();
    let claims = berth::iam::token::new_claims(
        "berth-registry",
        "admin",
        vec![berth::iam::token::ResourceActions {
            kind: "repository".to_owned(),
            name: r.clone(),
            actions: vec!["pull".to_owned()],
        }],
        berth::iam::token::TokenUse::Access,
        now,
        600,
    );
    let bearer = format!("Bearer {}", keys.sign(&claims).unwrap());
    let get = |uri: String| {
        let bearer = bearer.clone();
        let app = app.clone();
        async move {
            send_to(
                &app,
                Method::GET,
                &uri,
                &[("authorization", bearer.as_str())],
                Body::empty(),
            )
            .await
        }
    };
    calls.reset();
    let first = get(format!("/v2/{r}/manifests/v1")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let first_calls = Calls(calls.snapshot());
    // Tag + manifest, plus the public keys on first sight of the key id.
    assert_eq!(first_calls.service("DynamoDB"), 3, "{first_calls:?}");
    for uri in [
        format!("/v2/{r}/manifests/v1"),
        format!("/v2/{r}/manifests/{manifest}"),
    ] {
        calls.reset();
        let resp = get(uri).await;
        assert_eq!(resp.status, StatusCode::OK);
        let c = Calls(calls.snapshot());
        assert!(
            c.op("DynamoDB.GetItem") <= 2 && c.service("DynamoDB") <= 2,
            "{c:?}"
        );
        assert_eq!(c.service("S3"), 0, "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_counts_cost_no_write_per_pull() {
    let a = aws_app().await;
    let r = repo("pulls");
    let (_, d) = a.push_image(&r, "v1", "pulls").await;
    a.calls.reset();
    for _ in 0..30 {
        let resp = a.get(&format!("/v2/{r}/manifests/v1")).await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    let pulled = Calls(a.calls.snapshot());
    let writes = pulled.op("DynamoDB.UpdateItem")
        + pulled.op("DynamoDB.PutItem")
        + pulled.op("DynamoDB.TransactWriteItems");
    assert_eq!(writes, 0, "30 pulls: {pulled:?}");
    // The gathered counts go out in one batch: one update for the
    // artifact's pull time, one for the repository's count.
    a.calls.reset();
    a.registry.flush_pulls().await;
    let flushed = Calls(a.calls.snapshot());
    assert_eq!(flushed.op("DynamoDB.UpdateItem"), 2, "{flushed:?}");
    let name: berth::oci::RepoName = r.parse().unwrap();
    let rec = a.registry.repository(&name).await.unwrap().unwrap();
    assert_eq!(rec.pulls, 30);
    let art = a
        .registry
        .artifact(&name, &berth::oci::Reference::Digest(d.parse().unwrap()))
        .await
        .unwrap();
    assert!(art.pulled > 0);
}
