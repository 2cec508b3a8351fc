//! Raw HTTP checks (through curl) that hold for any conforming OCI registry.

use berth_e2e::http::{self, Challenge};
use berth_e2e::oci::{self, Blob};
use berth_e2e::rng::Rng;
use berth_e2e::{Registry, require_tools, skip_requested};
use serde_json::json;

fn start(test: &str) -> Option<Registry> {
    if skip_requested(test) {
        return None;
    }
    require_tools(&["curl"]);
    let reg = Registry::start();
    // Requests go as the admin (the token flow of `berth_e2e::auth`), into
    // project `e2e`.
    reg.ensure_project("e2e");
    Some(reg)
}

#[test]
fn base_endpoint_answers_200() {
    let Some(reg) = start("base_endpoint_answers_200") else {
        return;
    };
    http::get(&reg.url("/v2/")).send().expect_status(200);
}

/// Without a token Berth's `/v2/` is a `401` with the Docker token
/// challenge: the realm on the host the client used, the service, no scope.
/// (Distribution runs without auth: `200`.)
#[test]
fn base_endpoint_challenges_anonymous_clients() {
    let Some(reg) = start("base_endpoint_challenges_anonymous_clients") else {
        return;
    };
    let resp = http::get(&reg.url("/v2/")).raw().send();
    if !reg.requires_auth() {
        resp.expect_status(200);
        return;
    }
    resp.expect_status(401);
    let challenge = Challenge::of(&resp)
        .unwrap_or_else(|| panic!("a 401 must carry a Bearer challenge:\n{resp}"));
    assert_eq!(
        challenge.realm,
        reg.url("/service/token"),
        "the realm is on the host the client used:\n{resp}"
    );
    assert_eq!(challenge.service, "berth-registry", "{resp}");
    assert!(challenge.scopes.is_empty(), "{resp}");
}

#[test]
fn unknown_tag_is_404_manifest_unknown() {
    let Some(reg) = start("unknown_tag_is_404_manifest_unknown") else {
        return;
    };
    let resp = http::get(&reg.url("/v2/e2e/nothing/manifests/no-such-tag"))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    resp.expect_status(404);
    assert_eq!(
        resp.error_code().as_deref(),
        Some("MANIFEST_UNKNOWN"),
        "errors[0].code should be MANIFEST_UNKNOWN:\n{resp}"
    );
}

#[test]
fn unknown_blob_head_is_404() {
    let Some(reg) = start("unknown_blob_head_is_404") else {
        return;
    };
    let digest = oci::digest_of(b"berth-e2e: a blob nobody pushed");
    http::head(&reg.url(&format!("/v2/e2e/nothing/blobs/{digest}")))
        .send()
        .expect_status(404);
}

#[test]
fn unknown_blob_get_is_404_blob_unknown() {
    let Some(reg) = start("unknown_blob_get_is_404_blob_unknown") else {
        return;
    };
    let digest = oci::digest_of(b"berth-e2e: another blob nobody pushed");
    let resp = http::get(&reg.url(&format!("/v2/e2e/nothing/blobs/{digest}"))).send();
    resp.expect_status(404);
    assert_eq!(
        resp.error_code().as_deref(),
        Some("BLOB_UNKNOWN"),
        "errors[0].code should be BLOB_UNKNOWN:\n{resp}"
    );
}

#[test]
fn invalid_repository_name_is_4xx() {
    let Some(reg) = start("invalid_repository_name_is_4xx") else {
        return;
    };
    let resp = http::get(&reg.url("/v2/Bad/manifests/x"))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    assert!(
        (400..500).contains(&resp.status),
        "an upper-case repository name must be rejected with a 4xx:\n{resp}"
    );
    // Where the body is JSON it must be an OCI error body. (Distribution's
    // router does not match the name at all and answers a plain-text 404.)
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
        assert!(
            body["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "a JSON error body must carry a non-empty `errors` array:\n{resp}"
        );
    }
}

/// Monolithic blob upload (POST + PUT ?digest=), manifest PUT, reads by tag
/// and digest, then delete.
#[test]
fn blob_and_manifest_roundtrip() {
    let Some(reg) = start("blob_and_manifest_roundtrip") else {
        return;
    };
    let mut rng = Rng::new();
    let repo = "e2e/raw";
    let layer = Blob::new(oci::OCI_LAYER_TAR, rng.bytes(10_000));
    let config = Blob::json(oci::OCI_EMPTY, &json!({}));
    for blob in [&layer, &config] {
        let started = http::post(&reg.url(&format!("/v2/{repo}/blobs/uploads/"))).send();
        started.expect_status(202);
        let location = started
            .header("Location")
            .unwrap_or_else(|| panic!("upload POST must return Location:\n{started}"));
        let location = if location.starts_with('/') {
            reg.url(location)
        } else {
            location.to_owned()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = http::put(&format!("{location}{sep}digest={}", blob.digest))
            .body(blob.bytes.clone())
            .send();
        done.expect_status(201);
        assert_eq!(
            done.header("Docker-Content-Digest"),
            Some(blob.digest.as_str()),
            "{done}"
        );
        let blob_url = reg.url(&format!("/v2/{repo}/blobs/{}", blob.digest));
        if let Some(aws) = reg.aws() {
            // Over S3 a blob GET is a redirect to a presigned URL on the
            // emulator, path style (`<endpoint>/<bucket>/<key>?X-Amz-...`).
            let redirect = http::get(&blob_url).send();
            redirect.expect_status(307);
            let bucket = aws.get("BLOB_BUCKET").unwrap_or_default();
            let to = redirect.header("Location").unwrap_or_default();
            assert!(
                to.starts_with(&format!("{}/{bucket}/", aws.endpoint))
                    && to.contains("X-Amz-Signature="),
                "a blob GET should redirect to a presigned path-style URL on {}:\n{redirect}",
                aws.endpoint
            );
            assert_eq!(
                redirect.header("Docker-Content-Digest"),
                Some(blob.digest.as_str()),
                "{redirect}"
            );
        }
        let got = http::get(&blob_url).follow().send();
        got.expect_status(200);
        assert!(got.body == blob.bytes, "blob content differs after upload");
    }

    let manifest = Blob::json(
        oci::OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }),
    );
    let put = http::put(&reg.url(&format!("/v2/{repo}/manifests/v1")))
        .header("Content-Type", oci::OCI_MANIFEST)
        .body(manifest.bytes.clone())
        .send();
    put.expect_status(201);
    assert_eq!(
        put.header("Docker-Content-Digest"),
        Some(manifest.digest.as_str()),
        "{put}"
    );

    for reference in ["v1", manifest.digest.as_str()] {
        let url = reg.url(&format!("/v2/{repo}/manifests/{reference}"));
        let got = http::get(&url)
            .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
            .send();
        got.expect_status(200);
        assert!(got.body == manifest.bytes, "manifest bytes differ:\n{got}");
        assert_eq!(got.header("Content-Type"), Some(oci::OCI_MANIFEST), "{got}");
        let head = http::head(&url)
            .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
            .send();
        head.expect_status(200);
        assert_eq!(
            head.header("Docker-Content-Digest"),
            Some(manifest.digest.as_str()),
            "{head}"
        );
        assert_eq!(
            head.header("Content-Length"),
            Some(manifest.size().to_string().as_str()),
            "{head}"
        );
    }

    let tags = http::get(&reg.url(&format!("/v2/{repo}/tags/list"))).send();
    tags.expect_status(200);
    assert_eq!(tags.json()["tags"], json!(["v1"]), "{tags}");

    http::delete(&reg.url(&format!("/v2/{repo}/manifests/{}", manifest.digest)))
        .send()
        .expect_status(202);
    let gone = http::get(&reg.url(&format!("/v2/{repo}/manifests/{}", manifest.digest)))
        .header("Accept", oci::ACCEPT_ALL_MANIFESTS)
        .send();
    gone.expect_status(404);
    assert_eq!(
        gone.error_code().as_deref(),
        Some("MANIFEST_UNKNOWN"),
        "{gone}"
    );
}
