//! Writers racing on one upload, tag or manifest (STYLE §15), on both
//! backends: the embedded stores and DynamoDB + S3 on moto. Each scenario
//! is one function over a [`TestApp`]; `races!` runs it on each backend.
//!
//! The invariant every test checks in the end: whatever was acknowledged
//! (a 201) can be pulled back byte for byte, nothing answers 5xx, and a
//! listed tag always resolves to a manifest.
#![allow(clippy::unwrap_used)]

mod common;
#[cfg(feature = "aws")]
#[path = "support/moto.rs"]
mod support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::registry::RegistryOptions;
use common::*;

/// A unique repository name under `prefix`.
fn repo(prefix: &str) -> String {
    format!(
        "race/{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn path_of(location: &str) -> String {
    location.trim_start_matches("http://localhost").to_owned()
}

/// Opens a session and sends `first` as one chunk; returns the session path.
async fn open_with(app: &TestApp, repo: &str, first: &[u8]) -> String {
    let path = app.start_upload(repo).await;
    if first.is_empty() {
        return path;
    }
    let r = app
        .patch(&path, &format!("0-{}", first.len() - 1), first.to_vec())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    path_of(r.header("location"))
}

/// Reads a blob through the router, following a presigned redirect.
async fn pull(app: &TestApp, repo: &str, digest: &str) -> Option<Vec<u8>> {
    let r = app.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    match r.status {
        StatusCode::OK => Some(r.body.to_vec()),
        StatusCode::TEMPORARY_REDIRECT => {
            let out = std::process::Command::new("curl")
                .args(["-sf", "--noproxy", "*", r.header("location")])
                .output()
                .unwrap();
            assert!(out.status.success(), "presigned GET failed");
            Some(out.stdout)
        }
        StatusCode::NOT_FOUND => None,
        s => panic!("blob GET answered {s}: {}", r.text()),
    }
}

/// The blob is in `repo` with exactly `data` (compared by digest, so a
/// failure prints something readable).
async fn assert_serves(app: &TestApp, repo: &str, d: &str, data: &[u8]) {
    let got = pull(app, repo, d).await;
    assert_eq!(
        got.as_deref().map(|b| (b.len(), digest(b))),
        Some((data.len(), digest(data))),
        "{repo} must serve {d}"
    );
}

/// Sends every request at once; answers in request order.
async fn all_at_once(app: &TestApp, reqs: Vec<(Method, String, Vec<u8>)>) -> Vec<Resp> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|(m, uri, body)| {
            let router = app.router.clone();
            tokio::spawn(async move { send_to(&router, m, &uri, &[], body).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn assert_no_server_error<'a>(rs: impl IntoIterator<Item = &'a Resp>) {
    for r in rs {
        assert!(!r.status.is_server_error(), "{}: {}", r.status, r.text());
    }
}

/// The bug this file started from: two finishers of one session both
/// answered 201 and the second deleted the object the first had recorded.
async fn racing_finishers_of_one_session_keep_the_blob(app: TestApp, size: usize) {
    let r = repo("finish");
    let data = bytes(size, 1);
    let (head, tail) = data.split_at(size / 2);
    let path = open_with(&app, &r, head).await;
    let d = digest(&data);
    let reqs = (0..6)
        .map(|_| (Method::PUT, format!("{path}?digest={d}"), tail.to_vec()))
        .collect();
    let rs = all_at_once(&app, reqs).await;
    assert_no_server_error(&rs);
    let won = rs
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert!(won >= 1, "no finisher succeeded");
    // Losers are told the upload is gone (or, on a multipart upload whose
    // last part another finisher rewrote, that it is no longer valid).
    for r in rs.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert!(
            ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"].contains(&r.code().as_str()),
            "{}",
            r.text()
        );
    }
    assert_serves(&app, &r, &d, &data).await;
    // The digest is whole for later pushes too (dedupe onto the stored copy).
    let other = repo("finish-again");
    assert_eq!(app.push_blob(&other, &data).await, d);
    assert_serves(&app, &other, &d, &data).await;
    assert_serves(&app, &r, &d, &data).await;
}

/// A hostile client finishing one session twice with different content:
/// at most one digest is stored, and it serves its own bytes.
async fn finishers_with_different_content_cannot_mix_bytes(app: TestApp, size: usize) {
    let r = repo("mixed");
    let head = bytes(size / 2, 2);
    let path = open_with(&app, &r, &head).await;
    let tails = [bytes(size / 2, 3), bytes(size / 2 + 7, 4)];
    let full: Vec<Vec<u8>> = tails.iter().map(|t| [&head[..], t].concat()).collect();
    let ds: Vec<String> = full.iter().map(|f| digest(f)).collect();
    let reqs = (0..6)
        .map(|i| {
            let k = i % 2;
            (
                Method::PUT,
                format!("{path}?digest={}", ds[k]),
                tails[k].clone(),
            )
        })
        .collect();
    let rs = all_at_once(&app, reqs).await;
    assert_no_server_error(&rs);
    for (k, d) in ds.iter().enumerate() {
        let acked = rs
            .iter()
            .enumerate()
            .any(|(i, r)| i % 2 == k && r.status == StatusCode::CREATED);
        match pull(&app, &r, d).await {
            Some(b) => assert!(b == full[k], "digest {d} serves other bytes"),
            None => assert!(!acked, "acknowledged {d} is gone"),
        }
    }
}

/// Two uploads of the same bytes finishing while others mount the blob
/// and push manifests referencing it.
async fn finishers_race_mounts_and_manifest_puts(app: TestApp, size: usize) {
    let (a, b, c) = (repo("src-a"), repo("src-b"), repo("mount"));
    let layer = bytes(size, 5);
    let d = digest(&layer);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    app.push_blob(&a, &config).await;
    app.push_blob(&b, &config).await;
    let pa = open_with(&app, &a, &layer[..size / 2]).await;
    let pb = open_with(&app, &b, &layer[..size / 2]).await;
    let manifest = image_manifest(
        &[(
            std::str::from_utf8(&config).unwrap(),
            "application/vnd.oci.image.config.v1+json",
        )],
        &[],
        None,
        None,
    );
    // A manifest over the layer, pushed by the raw JSON (the helper takes text layers).
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m["layers"] = serde_json::json!([{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":d,"size":size}]);
    let manifest = serde_json::to_vec(&m).unwrap();
    let mut reqs = vec![
        (
            Method::PUT,
            format!("{pa}?digest={d}"),
            layer[size / 2..].to_vec(),
        ),
        (
            Method::PUT,
            format!("{pb}?digest={d}"),
            layer[size / 2..].to_vec(),
        ),
        (
            Method::POST,
            format!("/v2/{c}/blobs/uploads/?mount={d}&from={a}"),
            Vec::new(),
        ),
        (
            Method::POST,
            format!("/v2/{c}/blobs/uploads/?mount={d}"),
            Vec::new(),
        ),
    ];
    for (i, repo) in [&a, &b, &a, &b].iter().enumerate() {
        reqs.push((
            Method::PUT,
            format!("/v2/{repo}/manifests/t{i}"),
            manifest.clone(),
        ));
    }
    // Manifest PUTs need their content type.
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|(m, uri, body)| {
            let router = app.router.clone();
            tokio::spawn(async move {
                let ct: &[(&str, &str)] = if uri.contains("/manifests/") {
                    &[("content-type", OCI_MANIFEST)]
                } else {
                    &[]
                };
                (uri.clone(), send_to(&router, m, &uri, ct, body).await)
            })
        })
        .collect();
    let mut rs = Vec::new();
    for t in tasks {
        rs.push(t.await.unwrap());
    }
    assert_no_server_error(rs.iter().map(|(_, r)| r));
    for (uri, r) in &rs {
        if r.status != StatusCode::CREATED {
            continue;
        }
        let name = uri
            .trim_start_matches("/v2/")
            .split("/blobs/")
            .next()
            .unwrap();
        let name = name.split("/manifests/").next().unwrap();
        if uri.contains("/manifests/") {
            let tag = uri.rsplit('/').next().unwrap();
            let got = app.get(&format!("/v2/{name}/manifests/{tag}")).await;
            assert_eq!(got.status, StatusCode::OK, "{uri}: {}", got.text());
        }
        assert_serves(&app, name, &d, &layer).await;
    }
}

/// A stored object lost behind the registry's back (an operator's
/// mistake, a bug of old): the next upload of those bytes replaces it
/// instead of being deduplicated onto nothing.
async fn a_lost_object_is_replaced_by_the_next_upload(app: TestApp, size: usize) {
    let (a, b, c) = (repo("lost-a"), repo("lost-b"), repo("lost-c"));
    let data = bytes(size, 6);
    let d = app.push_blob(&a, &data).await;
    let digest: berth::oci::Digest = d.parse().unwrap();
    let info = app
        .registry
        .blob_info(&a.parse().unwrap(), &digest)
        .await
        .unwrap();
    app.registry.blob_store().delete(&info.key).await.unwrap();
    assert_eq!(app.push_blob(&b, &data).await, d);
    assert_serves(&app, &b, &d, &data).await;
    assert_eq!(app.push_blob(&c, &data).await, d);
    assert_serves(&app, &c, &d, &data).await;
}

/// A manifest delete racing pushes of tags to the same manifest: a tag that
/// is listed always resolves (before, `HEAD` said 200, `GET` 404).
async fn deletes_racing_tag_pushes_leave_no_dangling_tag(app: TestApp) {
    let r = repo("dangling");
    let (m, d) = app.push_image(&r, "t0", "dangling").await;
    for round in 0..12 {
        let mut reqs = vec![(Method::DELETE, format!("/v2/{r}/manifests/{d}"), Vec::new())];
        for t in 0..3 {
            reqs.push((Method::PUT, format!("/v2/{r}/manifests/t{t}"), m.clone()));
        }
        let tasks: Vec<_> = reqs
            .into_iter()
            .map(|(method, uri, body)| {
                let router = app.router.clone();
                tokio::spawn(async move {
                    send_to(
                        &router,
                        method,
                        &uri,
                        &[("content-type", OCI_MANIFEST)],
                        body,
                    )
                    .await
                })
            })
            .collect();
        let mut rs = Vec::new();
        for t in tasks {
            rs.push(t.await.unwrap());
        }
        assert_no_server_error(&rs);
        let tags = app.get(&format!("/v2/{r}/tags/list")).await;
        let listed: Vec<String> = match tags.status {
            StatusCode::OK => serde_json::from_value(tags.json()["tags"].clone()).unwrap(),
            _ => Vec::new(),
        };
        for t in listed {
            let head = app
                .send(
                    Method::HEAD,
                    &format!("/v2/{r}/manifests/{t}"),
                    &[],
                    Body::empty(),
                )
                .await;
            let get = app.get(&format!("/v2/{r}/manifests/{t}")).await;
            assert_eq!(
                (head.status, get.status),
                (StatusCode::OK, StatusCode::OK),
                "round {round}: tag {t} is listed but its manifest is gone"
            );
        }
    }
}

/// Many clients pushing one tag at once all succeed (a client cannot retry
/// a 4xx); the tag ends on one of their manifests, and each is pullable.
async fn concurrent_pushes_of_one_tag_all_succeed(app: TestApp) {
    let r = repo("tag");
    let mut manifests = Vec::new();
    for i in 0..16 {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{i}}}"#);
        app.push_blob(&r, config.as_bytes()).await;
        manifests.push(image_manifest(
            &[(&config, "application/vnd.oci.image.config.v1+json")],
            &[],
            None,
            None,
        ));
    }
    let tasks: Vec<_> = manifests
        .iter()
        .map(|m| {
            let (router, uri, body) = (
                app.router.clone(),
                format!("/v2/{r}/manifests/latest"),
                m.clone(),
            );
            tokio::spawn(async move {
                send_to(
                    &router,
                    Method::PUT,
                    &uri,
                    &[("content-type", OCI_MANIFEST)],
                    body,
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let resp = t.await.unwrap();
        assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    }
    let latest = app.get(&format!("/v2/{r}/manifests/latest")).await;
    assert_eq!(latest.status, StatusCode::OK);
    assert!(manifests.iter().any(|m| m[..] == latest.body[..]));
    for m in &manifests {
        let got = app.get(&format!("/v2/{r}/manifests/{}", digest(m))).await;
        assert_eq!(got.status, StatusCode::OK);
    }
    // The tag's reverse index is exact: deleting every other manifest
    // leaves the tag alone.
    let keep = digest(&latest.body);
    for m in manifests.iter().filter(|m| digest(m) != keep) {
        let r2 = app
            .send(
                Method::DELETE,
                &format!("/v2/{r}/manifests/{}", digest(m)),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r2.status, StatusCode::ACCEPTED);
    }
    assert_eq!(
        app.get(&format!("/v2/{r}/manifests/latest")).await.status,
        StatusCode::OK
    );
}

/// Expired sessions are swept with their multipart upload and staged
/// chunk; live ones are not.
async fn expired_sessions_are_swept_with_their_data(app: TestApp) {
    let r = repo("sweep");
    let store = app.registry.blob_store().clone();
    // 6 MiB (one multipart part), then 1 KiB (a staged tail).
    let data = bytes(6 * 1024 * 1024 + 1024, 7);
    let path = open_with(&app, &r, &data[..6 * 1024 * 1024]).await;
    let range = format!("{}-{}", 6 * 1024 * 1024, data.len() - 1);
    let resp = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", &range)],
            data[6 * 1024 * 1024..].to_vec(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text());
    let staged_before = store.list("uploads/", None, 10_000).await.unwrap();
    assert!(!staged_before.is_empty(), "the tail should be staged");
    let now = berth::store::now_secs();
    // (Other tests share the AWS table: count only this session's fate.)
    app.registry.sweep_uploads(now + 3600).await.unwrap();
    assert_eq!(app.get(&path).await.status, StatusCode::NO_CONTENT);
    let staged_live = store.list("uploads/", None, 10_000).await.unwrap();
    assert!(staged_before.iter().all(|k| staged_live.contains(k)));
    let late = app.registry.sweep_uploads(now + 25 * 3600).await.unwrap();
    assert!(late.removed >= 1, "{late:?}");
    assert_eq!(app.get(&path).await.code(), "BLOB_UPLOAD_UNKNOWN");
    let staged_after = store.list("uploads/", None, 10_000).await.unwrap();
    for key in &staged_before {
        assert!(!staged_after.contains(key), "{key} survived the sweep");
    }
    // Sweeping again is harmless.
    app.registry.sweep_uploads(now + 25 * 3600).await.unwrap();
}

/// A chunk whose body breaks off mid-way leaves nothing behind, and the
/// session carries on from where it stood.
async fn a_failed_chunk_leaves_nothing_behind(app: TestApp) {
    let r = repo("broken");
    let path = open_with(&app, &r, b"").await;
    let store = app.registry.blob_store().clone();
    let before = store.list("uploads/", None, 10_000).await.unwrap();
    // 6 MiB, then the connection "breaks".
    let good = bytes(6 * 1024 * 1024, 8);
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(good.clone().into()),
        Err(std::io::Error::other("client went away")),
    ];
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let resp = app
        .send(
            Method::PATCH,
            &path,
            &[("content-range", "0-99999999")],
            body,
        )
        .await;
    assert!(
        resp.status.is_client_error(),
        "{}: {}",
        resp.status,
        resp.text()
    );
    assert_eq!(store.list("uploads/", None, 10_000).await.unwrap(), before);
    let status = app.get(&path).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    // Nothing of the broken chunk counts.
    assert_eq!(status.header("range"), "0-0");
    // The session still completes with the whole blob sent again.
    let d = digest(&good);
    let resp = app
        .send(
            Method::PUT,
            &format!("{path}?digest={d}"),
            &[],
            good.clone(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    assert_serves(&app, &r, &d, &good).await;
}

/// An index body over the given child manifests (amd64 platform each).
fn index_of(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<_> = children
        .iter()
        .map(|(m, d)| {
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(),
                "platform": {"architecture": "amd64", "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
    }))
    .unwrap()
}

/// Indexes adopting shared children while children are pushed again,
/// tagged and deleted, and indexes deleted: afterwards the repository's
/// artifact count is exactly its top-level artifacts, each manifest's
/// parent count is the number of indexes listing it, and a manifest is
/// top-level exactly when nothing lists it. Several rounds.
async fn artifact_counts_stay_exact_under_racing_pushes_and_deletes(app: TestApp) {
    let r = repo("counts");
    let name: berth::oci::RepoName = r.parse().unwrap();
    let reg = app.registry.clone();
    for round in 0..3u8 {
        // Eight images pushed at once.
        let pushes: Vec<_> = (0..8)
            .map(|i| {
                let app = &app;
                let r = &r;
                async move {
                    app.push_image(r, &format!("c{i}-{round}"), &format!("{round}-{i}"))
                        .await
                }
            })
            .collect();
        let images: Vec<(Vec<u8>, String)> = futures_util::future::join_all(pushes).await;
        let child = |i: usize| (images[i].0.as_slice(), images[i].1.as_str());
        let idx = [
            index_of(&[child(0), child(1), child(2)]),
            index_of(&[child(1), child(2), child(3), child(1)]),
            index_of(&[child(3), child(4)]),
        ];
        // Indexes adopting overlapping children, racing a child delete, a
        // child pushed again under another tag and one index's delete.
        let mut reqs: Vec<(Method, String, Vec<u8>)> = idx
            .iter()
            .enumerate()
            .map(|(k, body)| {
                (
                    Method::PUT,
                    format!("/v2/{r}/manifests/idx{k}-{round}"),
                    body.clone(),
                )
            })
            .collect();
        reqs.push((
            Method::DELETE,
            format!("/v2/{r}/manifests/{}", images[5].1),
            Vec::new(),
        ));
        reqs.push((
            Method::DELETE,
            format!("/v2/{r}/manifests/{}", images[3].1),
            Vec::new(),
        ));
        reqs.push((
            Method::PUT,
            format!("/v2/{r}/manifests/again-{round}"),
            images[6].0.clone(),
        ));
        reqs.push((
            Method::PUT,
            format!("/v2/{r}/manifests/again0-{round}"),
            images[0].0.clone(),
        ));
        let rs = all_at_once_typed(&app, reqs).await;
        assert_no_server_error(&rs);
        // Then one index goes while another adopts a child of it.
        let d0 = digest(&idx[0]);
        let rs = all_at_once_typed(
            &app,
            vec![
                (
                    Method::DELETE,
                    format!("/v2/{r}/manifests/{d0}"),
                    Vec::new(),
                ),
                (
                    Method::PUT,
                    format!("/v2/{r}/manifests/idx3-{round}"),
                    index_of(&[child(2), child(7)]),
                ),
            ],
        )
        .await;
        assert_no_server_error(&rs);
        check_counts(&reg, &name).await;
    }
}

/// An index listing more children than one transaction can adopt: the
/// push succeeds, the first thirty (in digest order) leave the artifact
/// list, the rest stay, the counts hold; its delete gives all back.
async fn a_large_index_adopts_at_most_thirty_children(app: TestApp) {
    let r = repo("large");
    let name: berth::oci::RepoName = r.parse().unwrap();
    let pushes: Vec<_> = (0..40)
        .map(|i| {
            let app = &app;
            let r = &r;
            async move {
                app.push_image(r, &format!("c{i}"), &format!("large-{i}"))
                    .await
            }
        })
        .collect();
    let images: Vec<(Vec<u8>, String)> = futures_util::future::join_all(pushes).await;
    let children: Vec<(&[u8], &str)> = images
        .iter()
        .map(|(m, d)| (m.as_slice(), d.as_str()))
        .collect();
    let index = index_of(&children);
    let resp = app
        .put_manifest(&format!("/v2/{r}/manifests/big"), OCI_INDEX, index.clone())
        .await;
    assert_eq!(resp.status, StatusCode::CREATED, "{}", resp.text());
    let reg = app.registry.clone();
    assert_eq!(
        reg.artifact_count(&name).await.unwrap(),
        11,
        "the index and ten children"
    );
    let resp = app
        .send(
            Method::DELETE,
            &format!("/v2/{r}/manifests/{}", digest(&index)),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text());
    assert_eq!(reg.artifact_count(&name).await.unwrap(), 40);
    let listed = reg
        .artifacts(
            &name,
            berth::registry::catalog::Order::default(),
            100,
            &|_| true,
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 40);
}

/// Sends requests at once with their content types (manifests by body).
async fn all_at_once_typed(app: &TestApp, reqs: Vec<(Method, String, Vec<u8>)>) -> Vec<Resp> {
    let futs = reqs.into_iter().map(|(m, path, body)| {
        let ct = if body
            .windows(OCI_INDEX.len())
            .any(|w| w == OCI_INDEX.as_bytes())
        {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        };
        async move { app.send(m, &path, &[("content-type", ct)], body).await }
    });
    futures_util::future::join_all(futs).await
}

/// The invariants of the artifact bookkeeping, read back from storage.
async fn check_counts(reg: &berth::registry::Registry, name: &berth::oci::RepoName) {
    use berth::registry::catalog::Order;
    let listed = reg
        .artifacts(name, Order::default(), 10_000, &|_| true)
        .await
        .unwrap();
    let count = reg.artifact_count(name).await.unwrap();
    assert_eq!(
        usize::try_from(count).unwrap(),
        listed.items.len(),
        "the counter must equal the listed top-level artifacts"
    );
    // Every manifest of the repository, with what lists it.
    let kv = reg.kv();
    let pk = format!("REPO#{name}");
    let mut q = berth::store::Query::prefix(pk.clone(), "MANIFEST#", 1000);
    let mut manifests = Vec::new();
    loop {
        let page = kv.query(&q).await.unwrap();
        manifests.extend(page.items);
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    let mut listed_by: std::collections::HashMap<String, i64> = Default::default();
    for m in &manifests {
        let body: serde_json::Value =
            serde_json::from_slice(m.b("bytes").unwrap_or_default()).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for c in body["manifests"].as_array().into_iter().flatten() {
            let d = c["digest"].as_str().unwrap().to_owned();
            if seen.insert(d.clone()) {
                *listed_by.entry(d).or_default() += 1;
            }
        }
    }
    let top: std::collections::HashSet<String> =
        listed.items.iter().map(|a| a.digest.to_string()).collect();
    for m in &manifests {
        let d = m.sk.trim_start_matches("MANIFEST#").to_owned();
        let parents = listed_by.get(&d).copied().unwrap_or(0);
        assert_eq!(m.n("parents").unwrap_or(0), parents, "parents of {d}");
        assert_eq!(
            top.contains(&d),
            parents == 0,
            "{d} is top-level exactly when nothing lists it"
        );
    }
}

macro_rules! races {
    ($($name:ident $(($arg:expr))?),+ $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(TestApp::with(RegistryOptions::default(), None).await $(, $arg)?).await;
                }
            )+
        }

        #[cfg(feature = "aws")]
        mod aws {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let calls = berth::store::aws::CallCounter::default();
                    let registry = support::moto().registry(&calls).await;
                    super::$name(TestApp::over(registry) $(, $arg)?).await;
                }
            )+
        }
    };
}

races!(
    racing_finishers_of_one_session_keep_the_blob(64 * 1024),
    finishers_with_different_content_cannot_mix_bytes(64 * 1024),
    finishers_race_mounts_and_manifest_puts(64 * 1024),
    a_lost_object_is_replaced_by_the_next_upload(4096),
    deletes_racing_tag_pushes_leave_no_dangling_tag,
    concurrent_pushes_of_one_tag_all_succeed,
    expired_sessions_are_swept_with_their_data,
    a_failed_chunk_leaves_nothing_behind,
    artifact_counts_stay_exact_under_racing_pushes_and_deletes,
    a_large_index_adopts_at_most_thirty_children,
);

/// The same finisher races with multipart uploads (bytes beyond one part).
mod multipart {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_finishers_of_one_multipart_session_keep_the_blob() {
        racing_finishers_of_one_session_keep_the_blob(
            TestApp::with(RegistryOptions::default(), None).await,
            12 * 1024 * 1024,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn multipart_finishers_with_different_content_cannot_mix_bytes() {
        finishers_with_different_content_cannot_mix_bytes(
            TestApp::with(RegistryOptions::default(), None).await,
            12 * 1024 * 1024,
        )
        .await;
    }

    #[cfg(feature = "aws")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_finishers_of_one_multipart_session_keep_the_blob_on_aws() {
        let calls = berth::store::aws::CallCounter::default();
        let registry = support::moto().registry(&calls).await;
        racing_finishers_of_one_session_keep_the_blob(TestApp::over(registry), 12 * 1024 * 1024)
            .await;
    }
}
