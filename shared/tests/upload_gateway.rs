//! The upload gateway (DESIGN §4): the API hands out upload `Location`s on
//! the gateway with a signed, expiring token; the gateway serves upload
//! sessions only, and only with a valid token.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::auth::{UploadKey, UploadSigner};
use berth::http::UploadRouting;
use berth::registry::RegistryOptions;
use common::*;

const KEY: &[u8] = b"test key of thirty-two bytes!!!!";

async fn api_and_gateway() -> (TestApp, axum::Router) {
    let api = TestApp::build(RegistryOptions::default(), None, |mut s| {
        s.uploads = UploadRouting {
            gateway_url: Some("http://uploads.example".to_owned()),
            key: Some(UploadKey::from_signer(UploadSigner::new(KEY, 3600))),
            is_gateway: false,
        };
        s
    })
    .await;
    let gateway = api.sibling(|mut s| {
        s.uploads = UploadRouting {
            gateway_url: None,
            key: Some(UploadKey::from_signer(UploadSigner::new(KEY, 3600))),
            is_gateway: true,
        };
        // The gateway knows the registry's URL for finished blobs.
        s.public_url = Some("http://registry.example".to_owned());
        s
    });
    (api, gateway)
}

fn path_of(location: &str) -> String {
    location
        .trim_start_matches("http://uploads.example")
        .trim_start_matches("http://localhost")
        .to_owned()
}

#[tokio::test]
async fn upload_continues_on_the_gateway_with_a_token() {
    let (api, gateway) = api_and_gateway().await;
    let r = api
        .send(
            Method::POST,
            "/v2/lib/big/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let location = r.header("location").to_owned();
    assert!(
        location.starts_with("http://uploads.example/v2/lib/big/blobs/uploads/"),
        "{location}"
    );
    assert!(location.contains("?_state="), "{location}");

    let data = vec![7u8; 300_000];
    let r = send_to(
        &gateway,
        Method::PATCH,
        &path_of(&location),
        &[],
        data.clone(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    let next = r.header("location").to_owned();
    assert!(
        next.starts_with("http://localhost/v2/lib/big/blobs/uploads/") && next.contains("_state="),
        "{next}"
    );

    let d = digest(&data);
    let r = send_to(
        &gateway,
        Method::PUT,
        &format!("{}&digest={d}", path_of(&next)),
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
    assert_eq!(
        api.get(&format!("/v2/lib/big/blobs/{d}")).await.body.len(),
        data.len()
    );
}

#[tokio::test]
async fn gateway_refuses_missing_forged_and_misdirected_tokens() {
    let (api, gateway) = api_and_gateway().await;
    let location = api
        .send(Method::POST, "/v2/lib/a/blobs/uploads/", &[], Body::empty())
        .await
        .header("location")
        .to_owned();
    let path = path_of(&location);
    let bare = path.split('?').next().unwrap().to_owned();

    let r = send_to(&gateway, Method::PATCH, &bare, &[], b"x".to_vec()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );

    let forged = UploadSigner::new(b"some other key, also 32 bytes!!!", 3600);
    let id = bare.rsplit('/').next().unwrap();
    let token = forged.issue("lib/a", id, berth::store::now_secs());
    let r = send_to(
        &gateway,
        Method::PATCH,
        &format!("{bare}?_state={token}"),
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let expired = UploadSigner::new(KEY, -10).issue("lib/a", id, berth::store::now_secs());
    let r = send_to(
        &gateway,
        Method::PATCH,
        &format!("{bare}?_state={expired}"),
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A token for one repository does not open another's upload path.
    let moved = path.replace("/v2/lib/a/", "/v2/lib/b/");
    assert_eq!(
        send_to(&gateway, Method::PATCH, &moved, &[], b"x".to_vec())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The upload is untouched by the refused requests.
    let r = send_to(&gateway, Method::GET, &path, &[], Body::empty()).await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::NO_CONTENT, "0-0")
    );
}

#[tokio::test]
async fn gateway_serves_nothing_but_uploads() {
    let (api, gateway) = api_and_gateway().await;
    api.push_image("lib/app", "v1", "x").await;
    assert_eq!(
        send_to(&gateway, Method::GET, "/v2/", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    for (m, p) in [
        (Method::GET, "/v2/lib/app/manifests/v1"),
        (Method::POST, "/v2/lib/app/blobs/uploads/"),
        (Method::GET, "/v2/_catalog"),
    ] {
        assert_eq!(
            send_to(&gateway, m, p, &[], Body::empty()).await.status,
            StatusCode::NOT_FOUND,
            "{p}"
        );
    }
}
