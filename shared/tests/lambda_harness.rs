//! The `/v2` functions driven through the API Gateway / Lambda harness
//! (`berth::lambda`): every request becomes a payload format 2.0 event
//! under the platform's limits, runs through `lambda_http`'s adapter, and
//! comes back as API Gateway would answer. Storage is embedded
//! (`open_local` on a temporary directory), behind an S3-like blob store
//! that presigns and refuses small multipart parts.
#![cfg(feature = "lambda")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use berth::http::AppState;
use berth::lambda::apigw::{Gateway, GatewayConfig, LambdaFunction};
use berth::lambda::functions::registry_router;
use berth::lambda::limits::{LAMBDA_MAX_REQUEST, MAX_INVOCATION_BODY};
use berth::lambda::routes::RouteTable;
use berth::lambda::stack::Stack;
use berth::registry::{Registry, RegistryOptions};
use berth::store::BlobStore;
use common::{Resp, StrictParts};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tower::ServiceExt;

const MIB: usize = 1024 * 1024;
const HOST: &str = "registry.test";
const PRESIGN_PREFIX: &str = "https://berth-blobs.s3.test/";

struct Harness {
    /// The local stack: API Gateway routing + the harness + the functions.
    stack: Router,
    state: Arc<AppState>,
    blobs: Arc<dyn BlobStore>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(presign: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (kv, fs) = berth::store::open_local(dir.path()).await.unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(StrictParts::new(
            fs,
            5 * MIB as u64,
            presign.then_some(PRESIGN_PREFIX),
        ));
        let registry = Registry::new(kv, blobs.clone(), RegistryOptions::default());
        let state = Arc::new(AppState::new(registry));
        let gateway = GatewayConfig {
            forwarded_proto: "http".to_owned(),
            forwarded_port: 80,
            ..GatewayConfig::default()
        };
        let stack = Stack::registry(state.clone(), gateway)
            .unwrap()
            .into_router();
        Self {
            stack,
            state,
            blobs,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", HOST);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .stack
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// Starts an upload; returns its path (`/v2/.../blobs/uploads/<id>`).
    async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let location = r.header("location");
        let path = location
            .strip_prefix(&format!("http://{HOST}"))
            .unwrap_or(location)
            .to_owned();
        assert!(
            path.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
            "{location}"
        );
        path
    }

    async fn patch(&self, upload: &str, start: usize, chunk: &[u8]) -> Resp {
        let range = format!("{start}-{}", start + chunk.len() - 1);
        let len = chunk.len().to_string();
        let headers = [
            ("content-type", "application/octet-stream"),
            ("content-range", range.as_str()),
            ("content-length", len.as_str()),
        ];
        self.send(Method::PATCH, upload, &headers, chunk.to_vec())
            .await
    }

    /// Reads a blob the way a client does: GET, then follow the redirect
    /// to "S3" (the object behind the presigned URL).
    async fn pull(&self, repo: &str, digest: &str) -> Vec<u8> {
        let r = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{}", r.text());
        assert_eq!(r.header("docker-content-digest"), digest);
        let url = r.header("location");
        let key = url
            .strip_prefix(PRESIGN_PREFIX)
            .and_then(|k| k.split('?').next())
            .unwrap();
        let obj = self.blobs.get(key, None).await.unwrap();
        let chunks: Vec<Bytes> = obj.body.map(Result::unwrap).collect().await;
        chunks.concat()
    }
}

fn digest(data: &[u8]) -> String {
    berth::oci::sha256_digest(data).to_string()
}

/// Bytes that are not valid UTF-8 and do not repeat with a short period.
fn layer(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn chunked_push_of_a_64_mib_layer_through_lambda_pulls_back_identical() {
    let h = Harness::new(true).await;
    let data = layer(64 * MIB, 1);
    let d = digest(&data);
    let upload = h.start_upload("library/team/app").await;
    for (i, chunk) in data.chunks(4 * MIB).enumerate() {
        let r = h.patch(&upload, i * 4 * MIB, chunk).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "chunk {i}: {}", r.text());
        assert_eq!(r.header("range"), format!("0-{}", (i + 1) * 4 * MIB - 1));
    }
    let r = h
        .send(
            Method::PUT,
            &format!("{upload}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), d);

    let head = h
        .send(
            Method::HEAD,
            &format!("/v2/library/team/app/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), (64 * MIB).to_string());
    assert!(head.body.is_empty());

    let pulled = h.pull("library/team/app", &d).await;
    assert_eq!(pulled.len(), data.len());
    assert!(pulled == data, "pulled bytes differ from the pushed layer");
}

#[tokio::test]
async fn an_oversized_patch_is_refused_as_the_platform_does_and_the_upload_goes_on() {
    let h = Harness::new(true).await;
    let data = layer(12 * MIB + 5, 2);
    let upload = h.start_upload("big").await;
    let r = h.patch(&upload, 0, &data[..4 * MIB]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);

    // 8 MiB fits API Gateway but its event (base64) is over Lambda's 6 MiB.
    let r = h.patch(&upload, 4 * MIB, &data[4 * MIB..12 * MIB]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "Request Entity Too Large"})
    );
    assert!(!r.header("apigw-requestid").is_empty());

    // Over 10 MiB: API Gateway itself refuses.
    let r = h.patch(&upload, 4 * MIB, &data[..11 * MIB]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.text(), "HTTP content length exceeded 10485760 bytes.");

    // Just under the event limit, but over what always fits: the function's
    // own layer answers, with the OCI error telling the client what to do.
    let r = h
        .patch(
            &upload,
            4 * MIB,
            &data[4 * MIB..4 * MIB + MAX_INVOCATION_BODY as usize + 1],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "SIZE_INVALID");
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("chunked upload (PATCH chunks ≤ 4 MiB)")
    );

    // The session is untouched and the upload completes in small chunks.
    let r = h.send(Method::GET, &upload, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), format!("0-{}", 4 * MIB - 1));
    let mut offset = 4 * MIB;
    for chunk in data[4 * MIB..].chunks(3 * MIB) {
        let r = h.patch(&upload, offset, chunk).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        offset += chunk.len();
    }
    let d = digest(&data);
    let r = h
        .send(
            Method::PUT,
            &format!("{upload}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(h.pull("big", &d).await == data);
}

#[tokio::test]
async fn the_function_layer_refuses_before_reading_the_body() {
    let h = Harness::new(true).await;
    let router = registry_router(h.state.clone());
    // A body that fails if anyone reads it: the layer must answer first.
    let poisoned = Body::from_stream(futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("the body was read"))
    }));
    let req = Request::builder()
        .method(Method::PATCH)
        .uri("/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef")
        .header("content-length", (6 * MIB).to_string())
        .body(poisoned)
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["errors"][0]["code"], "SIZE_INVALID");
    assert_eq!(body["errors"][0]["detail"]["max"], MAX_INVOCATION_BODY);
}

#[tokio::test]
async fn binary_and_text_bodies_survive_the_event_round_trip() {
    // No presigning: the function streams blob bytes back itself, so the
    // response body comes back base64-encoded too.
    let h = Harness::new(false).await;
    let mut data: Vec<u8> = (0..=255u8).cycle().take(3 * 256).collect();
    data.extend(layer(100_000, 3));
    let d = digest(&data);
    let r = h
        .send(
            Method::POST,
            &format!("/v2/bin/blobs/uploads/?digest={d}"),
            &[("content-type", "application/octet-stream")],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = h
        .send(
            Method::GET,
            &format!("/v2/bin/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), data.len().to_string());
    assert!(r.body == data, "binary body changed on the way");

    // A manifest is JSON text: its exact bytes (non-ASCII included) must
    // survive, or its digest would change.
    let config = r#"{"architecture":"arm64","os":"linux","author":"Zoë \u00e9 ✓"}"#
        .as_bytes()
        .to_vec();
    let cd = digest(&config);
    let r = h
        .send(
            Method::POST,
            &format!("/v2/bin/blobs/uploads/?digest={cd}"),
            &[],
            config.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let manifest = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{cd}\", \"size\": {}}},\n  \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"{d}\", \"size\": {}}}],\n  \"annotations\": {{\"org.opencontainers.image.description\": \"déjà vu ✓ 🚢\"}}\n}}",
        config.len(),
        data.len()
    );
    let md = digest(manifest.as_bytes());
    let ct = [("content-type", "application/vnd.oci.image.manifest.v1+json")];
    let r = h
        .send(Method::PUT, "/v2/bin/manifests/v1", &ct, manifest.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), md);
    let r = h
        .send(
            Method::GET,
            "/v2/bin/manifests/v1",
            &[("accept", "application/vnd.oci.image.manifest.v1+json")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, manifest.as_bytes());
    assert_eq!(digest(&r.body), md);
}

#[tokio::test]
async fn head_get_and_redirect_headers_survive() {
    let h = Harness::new(true).await;
    let config = br#"{"os":"linux"}"#.to_vec();
    let cd = digest(&config);
    h.send(
        Method::POST,
        &format!("/v2/a/b/blobs/uploads/?digest={cd}"),
        &[],
        config.clone(),
    )
    .await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let md = digest(manifest.as_bytes());
    let ct = [("content-type", "application/vnd.oci.image.manifest.v1+json")];
    for tag in ["v1", "v2", "v3"] {
        let r = h
            .send(
                Method::PUT,
                &format!("/v2/a/b/manifests/{tag}"),
                &ct,
                manifest.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            r.header("location"),
            format!("http://registry.test/v2/a/b/manifests/{md}")
        );
    }

    let r = h
        .send(Method::HEAD, "/v2/a/b/manifests/v1", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), manifest.len().to_string());
    assert_eq!(
        r.header("content-type"),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(r.header("docker-content-digest"), md);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    assert!(r.body.is_empty());

    let r = h
        .send(
            Method::GET,
            &format!("/v2/a/b/manifests/{md}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        (r.status, r.header("etag")),
        (StatusCode::OK, format!("\"{md}\"").as_str())
    );

    let r = h
        .send(
            Method::HEAD,
            &format!("/v2/a/b/blobs/{cd}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), config.len().to_string());
    assert_eq!(r.header("docker-content-digest"), cd);

    let r = h
        .send(
            Method::GET,
            &format!("/v2/a/b/blobs/{cd}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert!(
        r.header("location").starts_with(PRESIGN_PREFIX),
        "{}",
        r.header("location")
    );
    assert!(r.header("location").contains("X-Amz-Signature="));
    assert!(h.pull("a/b", &cd).await == config);

    let r = h
        .send(Method::GET, "/v2/a/b/tags/list?n=2", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["tags"], serde_json::json!(["v1", "v2"]));
    assert!(r.header("link").contains("last=v2"), "{}", r.header("link"));

    let r = h
        .send(
            Method::GET,
            &format!("/v2/a/b/blobs/{md}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["errors"][0]["code"], "BLOB_UNKNOWN");
}

#[tokio::test]
async fn a_response_over_the_lambda_limit_is_a_500_not_a_crash() {
    let h = Harness::new(false).await;
    let data = layer(7 * MIB, 4);
    let d = digest(&data);
    let upload = h.start_upload("large").await;
    for (i, chunk) in data.chunks(4 * MIB).enumerate() {
        assert_eq!(
            h.patch(&upload, i * 4 * MIB, chunk).await.status,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        h.send(
            Method::PUT,
            &format!("{upload}?digest={d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::CREATED
    );

    let r = h
        .send(
            Method::GET,
            &format!("/v2/large/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "Internal Server Error"})
    );

    // Ranged reads that fit still work, on the same function.
    let r = h
        .send(
            Method::GET,
            &format!("/v2/large/blobs/{d}"),
            &[("range", "bytes=1048576-5242879")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert!(r.body[..] == data[MIB..5 * MIB]);
}

#[tokio::test]
async fn unknown_paths_and_unconfigured_functions_answer_clearly() {
    let h = Harness::new(true).await;
    let r = h
        .send(
            Method::GET,
            "/service/token?service=registry.test&scope=repository:a:pull",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.json()["errors"][0]["code"], "UNSUPPORTED");

    let r = h
        .send(
            Method::DELETE,
            "/api/v2.0/projects/library",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.json()["errors"][0]["code"], "NOT_IMPLEMENTED");

    // No route: `$default` sends it to the blob function (which may also
    // clean up uploads of names deeper than the enumerated routes), which
    // answers with an OCI error.
    let r = h
        .send(Method::GET, "/nothing/here", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["errors"][0]["code"], "UNSUPPORTED");
    let r = h.send(Method::GET, "/v2/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn events_have_the_api_gateway_shape_and_lambda_http_reads_them() {
    let gateway = Gateway::new(GatewayConfig::default());
    let route = RouteTable::builtin()
        .unwrap()
        .select("PATCH", "/v2/a/b/blobs/uploads/abc");
    let req = Request::builder()
        .method(Method::PATCH)
        .uri("/v2/a/b/blobs/uploads/abc?_state=x%2By&n=1&n=2")
        .header("host", HOST)
        .header("content-type", "application/octet-stream")
        .header("accept", "a/b")
        .header("accept", "c/d")
        .header("cookie", "one=1; two=2")
        .header("user-agent", "docker/27")
        .body(Bytes::from_static(&[0xff, 0x00, 0x10]))
        .unwrap();
    let event = gateway.event(&route, &req, "req-1", Duration::from_secs(1_584_039_838));
    assert_eq!(event["version"], "2.0");
    assert_eq!(
        event["routeKey"],
        "PATCH /v2/{n1}/{n2}/blobs/uploads/{upload}"
    );
    assert_eq!(event["rawPath"], "/v2/a/b/blobs/uploads/abc");
    assert_eq!(event["rawQueryString"], "_state=x%2By&n=1&n=2");
    assert_eq!(event["queryStringParameters"]["n"], "1,2");
    assert_eq!(event["pathParameters"]["upload"], "abc");
    assert_eq!(event["headers"]["accept"], "a/b,c/d");
    assert_eq!(event["headers"]["x-forwarded-proto"], "https");
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(event["cookies"], serde_json::json!(["one=1", "two=2"]));
    assert_eq!(event["requestContext"]["http"]["method"], "PATCH");
    assert_eq!(event["requestContext"]["http"]["userAgent"], "docker/27");
    assert_eq!(
        event["requestContext"]["time"],
        "12/Mar/2020:19:03:58 +0000"
    );
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "/wAQ");

    let parsed = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(parsed.method(), Method::PATCH);
    assert_eq!(
        parsed.uri().to_string(),
        "https://registry.test/v2/a/b/blobs/uploads/abc?_state=x%2By&n=1&n=2"
    );
    assert_eq!(parsed.headers()["cookie"], "one=1; two=2");
    assert_eq!(parsed.body().as_ref(), [0xff, 0x00, 0x10]);
}

#[tokio::test]
async fn a_panicking_function_is_a_500_and_the_process_lives_on() {
    let router = Router::new().route(
        "/boom",
        axum::routing::get(|| async {
            if true {
                panic!("handler bug");
            }
            "unreachable"
        }),
    );
    let function = LambdaFunction::new("boom", router);
    let route =
        RouteTable::from_json(r#"{"maxNameDepth":0,"families":[],"fixed":[],"default":"boom"}"#)
            .unwrap()
            .select("GET", "/boom");
    let gateway = Gateway::default();
    for _ in 0..2 {
        let req = Request::builder()
            .uri("/boom")
            .header("host", HOST)
            .body(Bytes::new())
            .unwrap();
        let resp = gateway.forward(&function, &route, req).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

#[tokio::test]
async fn lambda_refuses_events_over_six_mib_before_running_the_function() {
    let function = LambdaFunction::new("manifest", Router::new());
    let payload = vec![b' '; LAMBDA_MAX_REQUEST + 1];
    let err = function.invoke(&payload, "id").await.unwrap_err();
    assert_eq!(
        err,
        berth::lambda::apigw::InvokeError::RequestTooLarge {
            size: LAMBDA_MAX_REQUEST + 1
        }
    );
}

/// The identity functions through API Gateway events: the challenge names
/// the token function's route on the host used, the token function issues,
/// the blob function accepts its token, the admin function serves Harbor's
/// API and the portal login.
#[tokio::test]
async fn identity_works_through_the_functions() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let (kv, blobs) = berth::store::open_local(dir.path()).await.unwrap();
    let registry = Registry::new(kv, blobs, RegistryOptions::default());
    let keys = Arc::new(
        berth::iam::KeyRing::from_seeds(&["lambda harness seed 0123456789abcdef"]).unwrap(),
    );
    let iam = berth::wiring::iam(registry.kv().clone(), Some(keys));
    berth::wiring::bootstrap_identity(&iam, Some("Harbor12345"))
        .await
        .unwrap();
    let mut state = AppState::new(registry);
    state.iam = Some(iam);
    let gateway = GatewayConfig {
        forwarded_proto: "http".to_owned(),
        forwarded_port: 80,
        ..GatewayConfig::default()
    };
    let stack = Stack::registry(Arc::new(state), gateway)
        .unwrap()
        .into_router();
    let send = |method: Method, uri: &str, headers: &[(&str, &str)], body: Vec<u8>| {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", HOST);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let stack = stack.clone();
        let req = req.body(Body::from(body)).unwrap();
        async move {
            let resp = stack.oneshot(req).await.unwrap();
            Resp::read(resp).await
        }
    };
    let r = send(Method::GET, "/v2/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .starts_with(&format!("Bearer realm=\"http://{HOST}/service/token\"")),
        "{}",
        r.header("www-authenticate")
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:Harbor12345")
    );
    let r = send(
        Method::GET,
        "/service/token?service=berth-registry&scope=repository:library/app:pull,push",
        &[("authorization", &basic)],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let bearer = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let data = b"through the blob function".to_vec();
    let d = common::digest(&data);
    let r = send(
        Method::POST,
        &format!("/v2/library/app/blobs/uploads/?digest={d}"),
        &[("authorization", &bearer)],
        data,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = send(
        Method::GET,
        "/api/v2.0/users/current",
        &[("authorization", &basic)],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["username"], "admin");
    let r = send(
        Method::POST,
        "/c/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"principal=admin&password=Harbor12345".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("set-cookie").starts_with("sid="));
    assert!(!r.header("x-harbor-csrf-token").is_empty());
}
