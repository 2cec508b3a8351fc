//! The OCI distribution API, end to end through the router (`oneshot`), on
//! embedded storage. One test per behaviour of the spec.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::registry::RegistryOptions;
use common::*;

#[tokio::test]
async fn base_endpoint_answers_with_api_version() {
    let app = TestApp::new().await;
    let r = app.get("/v2/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    assert_eq!(app.get("/v2").await.status, StatusCode::OK);
}

#[tokio::test]
async fn monolithic_upload_then_pull_blob() {
    let app = TestApp::new().await;
    let d = app.push_blob("a/b", b"hello blob").await;
    let head = app
        .send(
            Method::HEAD,
            &format!("/v2/a/b/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "10");
    assert_eq!(head.header("docker-content-digest"), d);
    let get = app.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(get.body.as_ref(), b"hello blob");
    // Another repository cannot read it without a mount.
    assert_eq!(
        app.get(&format!("/v2/other/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );
}

#[tokio::test]
async fn monolithic_upload_with_wrong_digest_is_refused_and_stores_nothing() {
    let app = TestApp::new().await;
    let wrong = digest(b"something else");
    let r = app
        .send(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    assert_eq!(
        app.send(
            Method::HEAD,
            &format!("/v2/r/blobs/{wrong}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn post_then_put_with_body() {
    let app = TestApp::new().await;
    let r = app
        .send(Method::POST, "/v2/r/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let location = r.header("location").to_owned();
    assert!(
        location.starts_with("http://localhost/v2/r/blobs/uploads/"),
        "{location}"
    );
    assert!(!r.header("docker-upload-uuid").is_empty());
    let d = digest(b"put body");
    let path = location.trim_start_matches("http://localhost");
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            b"put body".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        format!("http://localhost/v2/r/blobs/{d}")
    );
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
        b"put body"
    );
    // The session is gone once the upload is complete.
    assert_eq!(app.get(path).await.code(), "BLOB_UPLOAD_UNKNOWN");
}

async fn chunked_push(app: &TestApp, repo: &str, data: &[u8], chunk: usize) -> String {
    let path = app.start_upload(repo).await;
    let mut offset = 0;
    for c in data.chunks(chunk) {
        let range = format!("{}-{}", offset, offset + c.len() - 1);
        let r = app
            .send(
                Method::PATCH,
                &path,
                &[("content-range", &range)],
                c.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        offset += c.len();
        assert_eq!(r.header("range"), format!("0-{}", offset - 1));
    }
    let d = digest(data);
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    d
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn chunked_upload_with_content_range() {
    let app = TestApp::new().await;
    let data = pattern(100_000);
    let d = chunked_push(&app, "r", &data, 30_000).await;
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
        data.as_slice()
    );
}

#[tokio::test]
async fn chunks_cut_into_many_parts_reassemble_exactly() {
    let opts = RegistryOptions {
        part_size: 1000,
        ..Default::default()
    };
    let app = TestApp::with(opts, None).await;
    let data = pattern(12_345);
    let d = chunked_push(&app, "r", &data, 777).await;
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
        data.as_slice()
    );
}

#[tokio::test]
async fn small_chunks_are_staged_until_a_part_is_big_enough() {
    // An S3-like store refusing non-final parts under 4000 bytes.
    let opts = RegistryOptions {
        part_size: 4096,
        ..Default::default()
    };
    let app = TestApp::with(opts, Some(4000)).await;
    for (len, chunk) in [
        (20_000, 1500),
        (20_000, 4096),
        (3_000, 1000),
        (9_000, 9_000),
        (0, 1),
    ] {
        let data = pattern(len);
        let d = if len == 0 {
            app.push_blob("r", &data).await
        } else {
            chunked_push(&app, "r", &data, chunk).await
        };
        assert_eq!(
            app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
            data.as_slice(),
            "len {len} chunk {chunk}"
        );
    }
}

#[tokio::test]
async fn patch_without_content_range_streams_the_whole_body() {
    let app = TestApp::with(
        RegistryOptions {
            part_size: 4096,
            ..Default::default()
        },
        Some(4096),
    )
    .await;
    let data = pattern(50_000);
    let path = app.start_upload("r").await;
    let r = app.send(Method::PATCH, &path, &[], data.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-49999");
    let d = digest(&data);
    assert_eq!(
        app.send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.body.as_ref(),
        data.as_slice()
    );
}

#[tokio::test]
async fn out_of_order_chunk_gets_416_and_upload_survives() {
    let app = TestApp::new().await;
    let path = app.start_upload("r").await;
    app.send(
        Method::PATCH,
        &path,
        &[("content-range", "0-2")],
        b"abc".to_vec(),
    )
    .await;
    let r = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", "10-12")],
            b"xyz".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("range"), "0-2");
    let status = app.get(&path).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-2");
    let r = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", "3-5")],
            b"def".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let d = digest(b"abcdef");
    assert_eq!(
        app.send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn malformed_content_range_and_length_mismatch_are_400() {
    let app = TestApp::new().await;
    let path = app.start_upload("r").await;
    let r = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", "zero-ten")],
            b"abc".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID");
    let r = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", "0-9")],
            b"abc".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "SIZE_INVALID");
    assert_eq!(app.get(&path).await.header("range"), "0-0");
}

#[tokio::test]
async fn final_put_with_wrong_digest_is_refused() {
    let app = TestApp::new().await;
    let path = app.start_upload("r").await;
    app.send(Method::PATCH, &path, &[], b"abc".to_vec()).await;
    let r = app
        .send(
            Method::PUT,
            &format!("{path}?digest={}", digest(b"abd")),
            &[],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    let r = app.send(Method::PUT, &path, &[], Body::empty()).await;
    assert_eq!(r.code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let app = TestApp::new().await;
    let path = app.start_upload("r").await;
    app.send(Method::PATCH, &path, &[], b"abc".to_vec()).await;
    assert_eq!(
        app.send(Method::DELETE, &path, &[], Body::empty())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = app.get(&path).await;
    r.assert_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    // An upload id is only valid in its own repository.
    let other = app.start_upload("r").await.replace("/v2/r/", "/v2/s/");
    assert_eq!(app.get(&other).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        app.get("/v2/r/blobs/uploads/not-an-id").await.code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let app = TestApp::new().await;
    let d = app.push_blob("src", b"shared layer").await;
    let r = app
        .send(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        format!("http://localhost/v2/dst/blobs/{d}")
    );
    assert_eq!(
        app.get(&format!("/v2/dst/blobs/{d}")).await.body.as_ref(),
        b"shared layer"
    );
    // Without `from`, a blob the registry holds is mounted too.
    let r = app
        .send(
            Method::POST,
            &format!("/v2/third/blobs/uploads/?mount={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // An unknown blob falls back to a new upload session.
    let unknown = digest(b"nope");
    let r = app
        .send(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={unknown}&from=src"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = app
        .send(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=Bad"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.code(), "NAME_INVALID");
}

#[tokio::test]
async fn same_blob_pushed_twice_is_stored_once() {
    let app = TestApp::new().await;
    app.push_blob("a", b"dup").await;
    app.push_blob("b", b"dup").await;
    let stored = app
        .registry
        .blob_store()
        .list("blobs/", None, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[tokio::test]
async fn ranged_blob_reads() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"0123456789").await;
    let uri = format!("/v2/r/blobs/{d}");
    let r = app
        .send(Method::GET, &uri, &[("range", "bytes=2-5")], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), b"2345");
    assert_eq!(r.header("content-range"), "bytes 2-5/10");
    let r = app
        .send(Method::GET, &uri, &[("range", "bytes=-3")], Body::empty())
        .await;
    assert_eq!(r.body.as_ref(), b"789");
    let r = app
        .send(
            Method::GET,
            &uri,
            &[("range", "bytes=20-30")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */10");
}

#[tokio::test]
async fn blob_delete_unlinks() {
    let app = TestApp::new().await;
    let d = app.push_blob("r", b"bye").await;
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/v2/r/blobs/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/v2/r/blobs/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn manifest_push_and_pull_by_tag_and_digest_keeps_exact_bytes() {
    let app = TestApp::new().await;
    let (m, d) = app.push_image("lib/app", "v1", "x").await;
    for reference in ["v1", d.as_str()] {
        let r = app
            .send(
                Method::GET,
                &format!("/v2/lib/app/manifests/{reference}"),
                &[("accept", OCI_MANIFEST)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), m.as_slice());
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), d);
        let h = app
            .send(
                Method::HEAD,
                &format!("/v2/lib/app/manifests/{reference}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(
            (h.status, h.header("content-length")),
            (StatusCode::OK, m.len().to_string().as_str())
        );
        assert!(h.body.is_empty());
    }
}

#[tokio::test]
async fn manifest_accept_negotiation() {
    let app = TestApp::new().await;
    app.push_image("r", "v1", "x").await;
    let r = app
        .send(
            Method::GET,
            "/v2/r/manifests/v1",
            &[("accept", OCI_INDEX)],
            Body::empty(),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    let r = app
        .send(
            Method::GET,
            "/v2/r/manifests/v1",
            &[("accept", "*/*")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn manifest_with_missing_blob_is_refused_and_tag_kept() {
    let app = TestApp::new().await;
    let (m1, _) = app.push_image("r", "v1", "x").await;
    let m = image_manifest(
        &[("{}", "application/vnd.oci.image.config.v1+json")],
        &["never pushed"],
        None,
        None,
    );
    let r = app
        .put_manifest("/v2/r/manifests/v1", OCI_MANIFEST, m)
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        app.get("/v2/r/manifests/v1").await.body.as_ref(),
        m1.as_slice()
    );
}

#[tokio::test]
async fn manifest_put_by_digest_must_match() {
    let app = TestApp::new().await;
    let (m, d) = app.push_image("r", "v1", "x").await;
    let r = app
        .put_manifest(&format!("/v2/r/manifests/{d}"), OCI_MANIFEST, m.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let wrong = digest(b"x");
    let r = app
        .put_manifest(&format!("/v2/r/manifests/{wrong}"), OCI_MANIFEST, m)
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn index_needs_its_children() {
    let app = TestApp::new().await;
    let (m1, d1) = app.push_image("r", "amd", "a").await;
    let (m2, d2) = app.push_image("r", "arm", "b").await;
    let index = |children: &[(&str, usize)]| {
        let ms: Vec<_> = children
            .iter()
            .map(|(d, s)| serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": {"os":"linux","architecture":"amd64"}}))
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":ms}),
        )
        .unwrap()
    };
    let missing = digest(b"missing");
    let bad = index(&[(&d1, m1.len()), (&missing, 5)]);
    let r = app
        .put_manifest("/v2/r/manifests/multi", OCI_INDEX, bad)
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    let good = index(&[(&d1, m1.len()), (&d2, m2.len())]);
    let r = app
        .put_manifest("/v2/r/manifests/multi", OCI_INDEX, good.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.get("/v2/r/manifests/multi").await;
    assert_eq!(
        (r.body.as_ref(), r.header("content-type")),
        (good.as_slice(), OCI_INDEX)
    );
}

#[tokio::test]
async fn invalid_manifests_get_manifest_invalid() {
    let app = TestApp::new().await;
    let schema1 =
        br#"{"schemaVersion":1,"name":"r","tag":"v1","fsLayers":[],"history":[]}"#.to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            schema1,
        ),
        (OCI_MANIFEST, b"{not json".to_vec()),
        (OCI_MANIFEST, br#"{"schemaVersion":2}"#.to_vec()),
        ("text/plain", br#"{"schemaVersion":2,"config":{}}"#.to_vec()),
        (OCI_MANIFEST, Vec::new()),
    ];
    for (ct, body) in cases {
        let r = app.put_manifest("/v2/r/manifests/v1", ct, body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            "{ct}"
        );
    }
}

#[tokio::test]
async fn oversized_manifest_is_413() {
    let app = TestApp::new().await;
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = app
        .put_manifest("/v2/r/manifests/v1", OCI_MANIFEST, big)
        .await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID");
}

#[tokio::test]
async fn large_manifest_spills_out_of_the_metadata_item() {
    let opts = RegistryOptions {
        inline_manifest_max: 100,
        ..Default::default()
    };
    let app = TestApp::with(opts, None).await;
    let (m, d) = app.push_image("r", "v1", "spill").await;
    assert!(m.len() > 100);
    assert_eq!(
        app.get(&format!("/v2/r/manifests/{d}")).await.body.as_ref(),
        m.as_slice()
    );
}

#[tokio::test]
async fn tags_list_paginates_with_link() {
    let app = TestApp::new().await;
    for t in ["c", "a", "b", "d", "e"] {
        app.push_image("r", t, "x").await;
    }
    let all = app.get("/v2/r/tags/list").await.json();
    assert_eq!(
        all,
        serde_json::json!({"name":"r","tags":["a","b","c","d","e"]})
    );
    let p1 = app.get("/v2/r/tags/list?n=2").await;
    assert_eq!(p1.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        p1.header("link"),
        "</v2/r/tags/list?n=2&last=b>; rel=\"next\""
    );
    let p2 = app.get("/v2/r/tags/list?n=2&last=b").await;
    assert_eq!(p2.json()["tags"], serde_json::json!(["c", "d"]));
    let p3 = app.get("/v2/r/tags/list?n=2&last=d").await;
    assert_eq!(p3.json()["tags"], serde_json::json!(["e"]));
    assert_eq!(p3.header("link"), "");
    assert_eq!(
        app.get("/v2/r/tags/list?n=0").await.json()["tags"],
        serde_json::json!([])
    );
    assert_eq!(
        app.get("/v2/r/tags/list?n=x").await.status,
        StatusCode::BAD_REQUEST
    );
    let r = app.get("/v2/nothing/tags/list").await;
    r.assert_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_paginates() {
    let app = TestApp::new().await;
    for repo in ["b/x", "a", "c"] {
        app.push_image(repo, "v1", repo).await;
    }
    assert_eq!(
        app.get("/v2/_catalog").await.json(),
        serde_json::json!({"repositories":["a","b/x","c"]})
    );
    let p1 = app.get("/v2/_catalog?n=1").await;
    assert_eq!(p1.json()["repositories"], serde_json::json!(["a"]));
    assert_eq!(p1.header("link"), "</v2/_catalog?n=1&last=a>; rel=\"next\"");
    assert_eq!(
        app.get("/v2/_catalog?n=5&last=a").await.json()["repositories"],
        serde_json::json!(["b/x", "c"])
    );
}

#[tokio::test]
async fn referrers_list_and_filter_by_artifact_type() {
    let app = TestApp::new().await;
    let (m, d) = app.push_image("r", "v1", "subject").await;
    let mut pushed = Vec::new();
    for (i, at) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let cfg = "{}";
        app.push_blob("r", cfg.as_bytes()).await;
        let layer = format!("payload {i}");
        app.push_blob("r", layer.as_bytes()).await;
        let art = image_manifest(
            &[(cfg, "application/vnd.oci.empty.v1+json")],
            &[&layer],
            Some(at),
            Some((&d, m.len())),
        );
        let ad = digest(&art);
        let r = app
            .put_manifest(&format!("/v2/r/manifests/{ad}"), OCI_MANIFEST, art.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.header("oci-subject"), d);
        pushed.push((ad, art.len(), *at));
    }
    let r = app.get(&format!("/v2/r/referrers/{d}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    let idx = r.json();
    assert_eq!(idx["mediaType"], OCI_INDEX);
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);
    let r = app
        .get(&format!(
            "/v2/r/referrers/{d}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let only = r.json()["manifests"].clone();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["digest"], pushed[1].0.as_str());
    assert_eq!(only[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(only[0]["size"], pushed[1].1);
    // A subject nobody refers to has an empty list, not an error.
    let r = app
        .get(&format!("/v2/r/referrers/{}", digest(b"none")))
        .await;
    assert_eq!(
        (r.status, r.json()["manifests"].clone()),
        (StatusCode::OK, serde_json::json!([]))
    );
    // Deleting a referrer removes it from the list.
    app.send(
        Method::DELETE,
        &format!("/v2/r/manifests/{}", pushed[0].0),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        app.get(&format!("/v2/r/referrers/{d}")).await.json()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn referrer_may_be_pushed_before_its_subject() {
    let app = TestApp::new().await;
    let subject = digest(b"not yet pushed");
    app.push_blob("r", b"{}").await;
    let art = image_manifest(
        &[("{}", "application/vnd.oci.empty.v1+json")],
        &[],
        Some("application/x"),
        Some((&subject, 10)),
    );
    let r = app
        .put_manifest(
            &format!("/v2/r/manifests/{}", digest(&art)),
            OCI_MANIFEST,
            art,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        app.get(&format!("/v2/r/referrers/{subject}")).await.json()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn deleting_a_tag_keeps_the_manifest() {
    let app = TestApp::new().await;
    let (_, d) = app.push_image("r", "v1", "x").await;
    assert_eq!(
        app.send(Method::DELETE, "/v2/r/manifests/v1", &[], Body::empty())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.get("/v2/r/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        app.get(&format!("/v2/r/manifests/{d}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(Method::DELETE, "/v2/r/manifests/v1", &[], Body::empty())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleting_a_manifest_removes_its_tags() {
    let app = TestApp::new().await;
    let (m, d) = app.push_image("r", "v1", "x").await;
    app.put_manifest("/v2/r/manifests/also", OCI_MANIFEST, m)
        .await;
    app.push_image("r", "other", "y").await;
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/v2/r/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.get(&format!("/v2/r/manifests/{d}")).await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        app.get("/v2/r/tags/list").await.json()["tags"],
        serde_json::json!(["other"])
    );
    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/v2/r/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .code(),
        "MANIFEST_UNKNOWN"
    );
}

#[tokio::test]
async fn retagging_moves_the_tag_and_its_reverse_index() {
    let app = TestApp::new().await;
    let (_, d1) = app.push_image("r", "latest", "one").await;
    let (m2, d2) = app.push_image("r", "latest", "two").await;
    assert_eq!(
        app.get("/v2/r/manifests/latest").await.body.as_ref(),
        m2.as_slice()
    );
    // Deleting the old manifest must not take the moved tag with it.
    app.send(
        Method::DELETE,
        &format!("/v2/r/manifests/{d1}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        app.get("/v2/r/manifests/latest")
            .await
            .header("docker-content-digest"),
        d2
    );
}

#[tokio::test]
async fn bad_names_references_and_endpoints() {
    let app = TestApp::new().await;
    let r = app.get("/v2/UPPER/manifests/v1").await;
    r.assert_error(StatusCode::BAD_REQUEST, "NAME_INVALID");
    let r = app
        .put_manifest("/v2/r/manifests/-bad", OCI_MANIFEST, b"{}".to_vec())
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "TAG_INVALID");
    let r = app.get("/v2/r/blobs/sha256:123").await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    let r = app.get("/v2/r/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .send(Method::POST, "/v2/r/manifests/v1", &[], Body::empty())
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
    let r = app.get("/elsewhere").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .send(
            Method::POST,
            "/v2/r/blobs/uploads/?digest=sha256:nothex",
            &[],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = app
        .send(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest=sha512:{}", "a".repeat(128)),
            &[],
            b"x".to_vec(),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn unknown_things_are_404_with_codes() {
    let app = TestApp::new().await;
    assert_eq!(
        app.get("/v2/r/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        app.get(&format!("/v2/r/blobs/{}", digest(b"x")))
            .await
            .code(),
        "BLOB_UNKNOWN"
    );
    let h = app
        .send(
            Method::HEAD,
            &format!("/v2/r/blobs/{}", digest(b"x")),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(h.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chunks_to_one_upload_never_mix_their_bytes() {
    let app = std::sync::Arc::new(
        TestApp::with(
            RegistryOptions {
                part_size: 4096,
                ..Default::default()
            },
            None,
        )
        .await,
    );
    for round in 0..5u8 {
        let path = app.start_upload("race").await;
        let a: Vec<u8> = vec![round.wrapping_mul(2); 20_000];
        let b: Vec<u8> = vec![round.wrapping_mul(2) + 1; 20_000];
        let send = |data: Vec<u8>| {
            let (app, path) = (app.clone(), path.clone());
            tokio::spawn(async move {
                app.send(Method::PATCH, &path, &[("content-range", "0-19999")], data)
                    .await
                    .status
            })
        };
        let (ra, rb) = (send(a.clone()), send(b.clone()));
        let (sa, sb) = (ra.await.unwrap(), rb.await.unwrap());
        // Exactly one chunk is accepted; the other is refused, not merged.
        let winner = match (sa, sb) {
            (StatusCode::ACCEPTED, s) if s != StatusCode::ACCEPTED => &a,
            (s, StatusCode::ACCEPTED) if s != StatusCode::ACCEPTED => &b,
            other => panic!("round {round}: {other:?}"),
        };
        let d = digest(winner);
        let r = app
            .send(
                Method::PUT,
                &format!("{path}?digest={d}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "round {round}: {:?}",
            r.text()
        );
        assert_eq!(
            app.get(&format!("/v2/race/blobs/{d}")).await.body.as_ref(),
            winner.as_slice()
        );
    }
}
