//! Hostile and out-of-bounds input on `/v2/`: every answer is a clear 4xx
//! with an OCI code, never a 5xx, never a panic, and nothing stored is
//! lost. Server faults name a request id, never their cause.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::registry::{Registry, RegistryOptions};
use berth::store::{Item, Kv, KvError, Page, Query, WriteOp};
use common::*;

#[tokio::test]
async fn content_range_arithmetic_never_overflows() {
    let app = TestApp::new().await;
    let path = app.start_upload("r").await;
    for range in ["0-18446744073709551615", "5-3", "18446744073709551615-0"] {
        let r = app.patch(&path, range, b"abc".to_vec()).await;
        assert_eq!(
            r.status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}: {}",
            r.text()
        );
        assert_eq!(r.header("range"), "0-0", "{range}");
    }
    for range in ["0-99999999999999999999", "a-b", "-1-2"] {
        let r = app.patch(&path, range, b"abc".to_vec()).await;
        assert_eq!(r.code(), "BLOB_UPLOAD_INVALID", "{range}");
    }
    // The session is untouched and completes.
    assert_eq!(
        app.patch(&path, "0-2", b"abc".to_vec()).await.status,
        StatusCode::ACCEPTED
    );
    // A final PUT whose chunk does not start at the offset: 416.
    let d = digest(b"abcdef");
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[("content-range", "4-6")],
            b"def".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", r.text());
    assert_eq!(r.header("range"), "0-2");
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[("content-range", "3-5")],
            b"def".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn range_reads_never_overflow() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"0123456789").await;
    for (range, status) in [
        ("bytes=0-18446744073709551615", StatusCode::PARTIAL_CONTENT),
        ("bytes=-18446744073709551615", StatusCode::PARTIAL_CONTENT),
        (
            "bytes=18446744073709551615-",
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        (
            "bytes=99999999999999999999-1",
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
    ] {
        let r = app
            .send(
                Method::GET,
                &format!("/v2/r/blobs/{d}"),
                &[("range", range)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, status, "{range}");
    }
}

/// 300 chunks of 100 bytes into a registry cutting 4 KiB parts, at most
/// `max_parts` of them: the registry, the session, the bytes, and the first
/// chunk refused (its position and answer), if any.
async fn tiny_patches(max_parts: usize) -> (TestApp, String, Vec<u8>, Option<(usize, Resp)>) {
    let opts = RegistryOptions {
        part_size: 4096,
        min_part_size: 4096,
        max_parts,
        ..Default::default()
    };
    let app = TestApp::with(opts, None).await;
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let path = app.start_upload("r").await;
    for (i, c) in data.chunks(100).enumerate() {
        let range = format!("{}-{}", i * 100, i * 100 + c.len() - 1);
        let r = app.patch(&path, &range, c.to_vec()).await;
        if r.status != StatusCode::ACCEPTED {
            return (app, path, data, Some((i * 100, r)));
        }
    }
    (app, path, data, None)
}

#[tokio::test]
async fn tiny_patches_are_staged_and_parts_are_capped() {
    // 30,000 bytes in 4 KiB parts is 7 parts: past a cap of 3.
    let (app, path, _, refused) = tiny_patches(3).await;
    let (at, r) = refused.expect("the parts cap was never reached");
    assert_eq!(r.code(), "SIZE_INVALID", "{}", r.text());
    assert!(r.text().contains("reached 3 parts"), "{}", r.text());
    assert!(at >= 3 * 4096, "refused too early, at {at}");
    // The session stands where it stood.
    let status = app.get(&path).await;
    assert_eq!(status.header("range"), format!("0-{}", at - 1));
}

#[tokio::test]
async fn tiny_patches_complete_within_the_cap() {
    // Staged and joined: 300 chunks make 7 parts, never 300.
    let (app, path, data, refused) = tiny_patches(8).await;
    assert!(
        refused.is_none(),
        "{:?}",
        refused.map(|(at, r)| (at, r.text()))
    );
    let d = digest(&data);
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
        &data[..]
    );
}

#[tokio::test]
async fn overlong_listing_cursors_are_400() {
    let app = TestApp::new().await;
    app.push_image("r", "v1", "x").await;
    let long = "a".repeat(300);
    for uri in [
        format!("/v2/_catalog?last={long}"),
        format!("/v2/r/tags/list?last={long}"),
    ] {
        let r = app.get(&uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            "{uri}"
        );
    }
    let r = app.get("/v2/r/referrers/sha256:aa?last=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (_, d) = app.push_image("r", "v2", "y").await;
    let r = app
        .get(&format!("/v2/r/referrers/{d}?last=not-a-digest"))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn unsupported_digest_algorithms_are_refused_everywhere() {
    let app = TestApp::new().await;
    let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
    let long = format!("foo:{}", "a".repeat(2000));
    for uri in [
        format!("/v2/r/blobs/{md5}"),
        format!("/v2/r/blobs/{long}"),
        format!("/v2/r/referrers/{long}"),
    ] {
        let r = app.get(&uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            "{uri}"
        );
    }
    let r = app
        .send(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest={md5}"),
            &[],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = app
        .send(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?mount={long}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    // A manifest naming one.
    let cfg = "{}";
    app.push_blob("r", cfg.as_bytes()).await;
    let mut m: serde_json::Value = serde_json::from_slice(&image_manifest(
        &[(cfg, "application/vnd.oci.empty.v1+json")],
        &[],
        None,
        None,
    ))
    .unwrap();
    m["layers"] = serde_json::json!([{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":long,"size":1}]);
    let r = app
        .put_manifest(
            "/v2/r/manifests/bad",
            OCI_MANIFEST,
            serde_json::to_vec(&m).unwrap(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
}

#[tokio::test]
async fn descriptor_sizes_must_match_the_stored_content() {
    let app = TestApp::new().await;
    let cfg = r#"{"architecture":"amd64","os":"linux"}"#;
    let layer = "layer bytes";
    app.push_blob("r", cfg.as_bytes()).await;
    app.push_blob("r", layer.as_bytes()).await;
    let good = image_manifest(
        &[(cfg, "application/vnd.oci.image.config.v1+json")],
        &[layer],
        None,
        None,
    );
    let mut m: serde_json::Value = serde_json::from_slice(&good).unwrap();
    m["layers"][0]["size"] = (layer.len() + 1).into();
    let r = app
        .put_manifest(
            "/v2/r/manifests/v1",
            OCI_MANIFEST,
            serde_json::to_vec(&m).unwrap(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
    assert!(r.text().contains("says 12 bytes"), "{}", r.text());
    // Two descriptors of one digest that disagree.
    let mut m: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let twin = serde_json::json!({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":digest(layer.as_bytes()),"size":1});
    m["layers"].as_array_mut().unwrap().push(twin);
    let r = app
        .put_manifest(
            "/v2/r/manifests/v1",
            OCI_MANIFEST,
            serde_json::to_vec(&m).unwrap(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID", "{}", r.text());
    // An index whose child's size is wrong.
    let r = app
        .put_manifest("/v2/r/manifests/v1", OCI_MANIFEST, good.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let index = serde_json::json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
        {"mediaType":OCI_MANIFEST,"digest":digest(&good),"size":good.len() + 5}]});
    let r = app
        .put_manifest(
            "/v2/r/manifests/multi",
            OCI_INDEX,
            serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID", "{}", r.text());
    // Nothing stored was touched.
    assert_eq!(app.get("/v2/r/manifests/v1").await.body.as_ref(), &good[..]);
}

#[tokio::test]
async fn an_unparsable_reference_reads_as_unknown_and_writes_as_invalid() {
    let app = TestApp::new().await;
    for method in [Method::GET, Method::HEAD, Method::DELETE] {
        let r = app
            .send(
                method.clone(),
                "/v2/r/manifests/.INVALID_MANIFEST_NAME",
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
    let r = app
        .put_manifest(
            "/v2/r/manifests/.INVALID_MANIFEST_NAME",
            OCI_MANIFEST,
            b"{}".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "TAG_INVALID");
}

#[tokio::test]
async fn referrers_are_paged_by_size() {
    let app = TestApp::new().await;
    let (m, d) = app.push_image("r", "v1", "subject").await;
    let cfg = "{}";
    app.push_blob("r", cfg.as_bytes()).await;
    let mut pushed = std::collections::BTreeSet::new();
    for i in 0..24 {
        // ~100 KB of annotations each: about 2.4 MB of descriptors in all.
        let mut art: serde_json::Value = serde_json::from_slice(&image_manifest(
            &[(cfg, "application/vnd.oci.empty.v1+json")],
            &[],
            Some("application/vnd.example.note"),
            Some((&d, m.len())),
        ))
        .unwrap();
        art["annotations"] = serde_json::json!({"note": format!("{i:03}{}", "n".repeat(100_000))});
        let art = serde_json::to_vec(&art).unwrap();
        let ad = digest(&art);
        let r = app
            .put_manifest(&format!("/v2/r/manifests/{ad}"), OCI_MANIFEST, art)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        pushed.insert(ad);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some(format!(
        "/v2/r/referrers/{d}?artifactType=application/vnd.example.note"
    ));
    let mut pages = 0;
    while let Some(uri) = next.take() {
        let r = app.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body.len() < 2 * 1024 * 1024,
            "a page of {} bytes",
            r.body.len()
        );
        for entry in r.json()["manifests"].as_array().unwrap() {
            assert!(
                seen.insert(entry["digest"].as_str().unwrap().to_owned()),
                "listed twice"
            );
        }
        pages += 1;
        let link = r.header("link");
        if !link.is_empty() {
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            assert!(
                link.contains("artifactType="),
                "the filter carries over: {link}"
            );
            next = Some(
                link.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert!(pages >= 2, "one page of 2.4 MB");
    assert_eq!(seen, pushed);
}

/// A metadata store whose reads of one repository fail with a message
/// that names things a client must not see.
struct Leaky {
    inner: Arc<dyn Kv>,
}

#[async_trait]
impl Kv for Leaky {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        if pk.contains("secret-repo") {
            return Err(KvError::Backend(
                "table arn:aws:dynamodb:us-east-1:123456789012:table/prod at /var/lib/berth".into(),
            ));
        }
        self.inner.get(pk, sk).await
    }
    async fn batch_get(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, KvError> {
        self.inner.batch_get(keys).await
    }
    async fn query(&self, q: &Query) -> Result<Page, KvError> {
        self.inner.query(q).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), KvError> {
        self.inner.transact(ops).await
    }
}

#[tokio::test]
async fn server_faults_name_a_request_id_not_their_cause() {
    let base = TestApp::new().await;
    let leaky = Registry::new(
        Arc::new(Leaky {
            inner: base.registry.kv().clone(),
        }),
        base.registry.blob_store().clone(),
        RegistryOptions::default(),
    );
    let app = TestApp::over(leaky);
    let r = app
        .get(&format!("/v2/secret-repo/blobs/{}", digest(b"x")))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.code(), "UNKNOWN");
    let text = r.text();
    for leak in ["arn:aws", "123456789012", "/var/lib", "dynamodb"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    let id = r.header("x-request-id");
    assert_eq!(id.len(), 32, "every response carries its request id");
    assert!(text.contains(id), "{text}");
    // Ordinary answers carry one too.
    assert_eq!(app.get("/v2/").await.header("x-request-id").len(), 32);
}
