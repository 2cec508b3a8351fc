//! The web portal as `berth serve` mounts it: the router's fallback serves
//! a table of embedded files (here a small handmade one) and `index.html`
//! for every other page, while the API prefixes keep their JSON errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};

use axum::body::Body;
use axum::http::{Method, StatusCode};
use berth::http::portal::{CACHE_IMMUTABLE, CONTENT_SECURITY_POLICY};
use berth::http::{AppState, Portal, PortalAsset};
use common::{Resp, TestApp};

const INDEX: &str = "<!doctype html><html><head>\
    <script type=\"module\" src=\"/assets/app-1a2b3c.js\"></script>\
    </head><body><main id=\"app\"></main></body></html>";
const SCRIPT: &str = "export const answer = 42; console.log('the portal, at last');\n";
const ICON: &[u8] = b"\x89PNG\r\n\x1a\n not really a picture";

fn gzip(body: &[u8]) -> &'static [u8] {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body).unwrap();
    enc.finish().unwrap().leak()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Three files, as the build script lists them: an index and a hashed
/// script with gzip copies, an icon without.
fn assets() -> &'static [PortalAsset] {
    Box::leak(Box::new([
        PortalAsset {
            path: "/assets/app-1a2b3c.js",
            content_type: "text/javascript; charset=utf-8",
            body: SCRIPT.as_bytes(),
            gzip: Some(gzip(SCRIPT.as_bytes())),
            etag: "5c41pt",
        },
        PortalAsset {
            path: "/favicon.png",
            content_type: "image/png",
            body: ICON,
            gzip: None,
            etag: "1c0n",
        },
        PortalAsset {
            path: "/index.html",
            content_type: "text/html; charset=utf-8",
            body: INDEX.as_bytes(),
            gzip: Some(gzip(INDEX.as_bytes())),
            etag: "1nd3x",
        },
    ]))
}

/// The local application with identity (as `berth serve` runs it, so the
/// management API is mounted) and the portal.
async fn app() -> TestApp {
    let portal = Portal::new(assets()).unwrap();
    TestApp::build(Default::default(), None, |s: AppState| AppState {
        iam: Some(berth::wiring::iam(s.registry.kv().clone(), None)),
        portal: Some(portal),
        ..s
    })
    .await
}

async fn get(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Resp {
    app.send(Method::GET, uri, headers, Body::empty()).await
}

#[track_caller]
fn assert_index_page(r: &Resp) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(r.header("cache-control"), "no-cache");
    assert_eq!(r.header("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("referrer-policy"), "same-origin");
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(r.header("etag"), "\"1nd3x\"");
    assert_eq!(r.text(), INDEX);
}

#[track_caller]
fn assert_not_html(r: &Resp) {
    assert!(
        r.header("content-type").starts_with("application/json"),
        "{} {:?}: {}",
        r.status,
        r.headers,
        r.text()
    );
    assert!(!r.text().contains("<html"), "{}", r.text());
}

#[tokio::test]
async fn root_and_deep_links_get_the_index_page() {
    let app = app().await;
    for uri in [
        "/",
        "/index.html",
        "/harbor/projects",
        "/harbor/projects/3/repositories/a%2Fb",
        "/harbor/projects/3/repositories/a%2Fb/artifacts-tab/artifacts/sha256:0123abcd",
        "/harbor/sign-in?redirect_url=%2Fharbor%2Fusers",
    ] {
        let r = get(&app, uri, &[]).await;
        assert_index_page(&r);
    }
}

#[test]
fn the_csp_is_the_documented_one() {
    assert_eq!(
        CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    );
}

#[tokio::test]
async fn hashed_assets_are_immutable_with_their_type() {
    let app = app().await;
    let r = get(&app, "/assets/app-1a2b3c.js", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(r.header("cache-control"), CACHE_IMMUTABLE);
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("etag"), "\"5c41pt\"");
    assert_eq!(r.header("content-length"), SCRIPT.len().to_string());
    assert_eq!(r.text(), SCRIPT);
    // The page's policy belongs to documents only.
    assert_eq!(r.header("content-security-policy"), "");
}

#[tokio::test]
async fn other_files_are_revalidated() {
    let app = app().await;
    let r = get(&app, "/favicon.png", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.header("cache-control"), "no-cache");
    // No gzip copy: served as it is, and nothing to vary on.
    assert_eq!(r.header("content-encoding"), "");
    assert_eq!(r.header("vary"), "");
    assert_eq!(&r.body[..], ICON);
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304() {
    let app = app().await;
    for (uri, tag) in [
        ("/assets/app-1a2b3c.js", "\"5c41pt\""),
        ("/assets/app-1a2b3c.js", "W/\"5c41pt\""),
        ("/assets/app-1a2b3c.js", "\"other\", \"5c41pt-gz\""),
        ("/harbor/projects", "\"1nd3x\""),
        ("/", "*"),
    ] {
        let r = get(&app, uri, &[("if-none-match", tag)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{uri} {tag}");
        assert!(r.body.is_empty());
        assert!(!r.header("etag").is_empty());
        assert!(!r.header("cache-control").is_empty());
    }
    let r = get(
        &app,
        "/assets/app-1a2b3c.js",
        &[("if-none-match", "\"1nd3x\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "another file's tag");
    assert_eq!(r.text(), SCRIPT);
}

#[tokio::test]
async fn gzip_is_served_when_accepted() {
    let app = app().await;
    let r = get(
        &app,
        "/assets/app-1a2b3c.js",
        &[("accept-encoding", "br, gzip, deflate")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-encoding"), "gzip");
    assert_eq!(r.header("vary"), "accept-encoding");
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(r.header("etag"), "\"5c41pt-gz\"");
    assert_eq!(r.header("content-length"), r.body.len().to_string());
    assert_eq!(gunzip(&r.body), SCRIPT.as_bytes());

    let r = get(&app, "/harbor/logs", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding"), "gzip");
    assert_eq!(r.header("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert_eq!(gunzip(&r.body), INDEX.as_bytes());

    for refused in ["", "identity", "gzip;q=0", "br"] {
        let r = get(
            &app,
            "/assets/app-1a2b3c.js",
            &[("accept-encoding", refused)],
        )
        .await;
        assert_eq!(r.header("content-encoding"), "", "{refused:?}");
        assert_eq!(r.header("vary"), "accept-encoding", "{refused:?}");
        assert_eq!(r.text(), SCRIPT, "{refused:?}");
    }
}

#[tokio::test]
async fn head_answers_the_headers_of_get() {
    let app = app().await;
    let r = app
        .send(Method::HEAD, "/harbor/users", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), INDEX.len().to_string());
    assert_eq!(r.header("content-security-policy"), CONTENT_SECURITY_POLICY);
}

#[tokio::test]
async fn a_missing_hashed_asset_is_404_not_the_page() {
    let app = app().await;
    let r = get(&app, "/assets/app-0ld.js", &[]).await;
    r.assert_error(StatusCode::NOT_FOUND, "UNSUPPORTED");
    assert_not_html(&r);
}

#[tokio::test]
async fn api_paths_keep_their_errors() {
    let app = app().await;
    // The registry asks for a token, as it does without the portal.
    let r = get(&app, "/v2/nope/manifests/x", &[]).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_not_html(&r);
    // Harbor's 404 from the management API.
    let r = get(&app, "/api/v2.0/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["errors"][0]["code"], "NOT_FOUND");
    assert_not_html(&r);
    // Paths under the API prefixes that no router serves: today's 404.
    for uri in [
        "/api",
        "/api/v3/projects",
        "/c",
        "/c/nope",
        "/service/token", // no signing keys here
        "/service/nope",
    ] {
        for method in [Method::GET, Method::POST] {
            let r = app.send(method.clone(), uri, &[], Body::empty()).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(
                r.text(),
                r#"{"errors":[{"code":"UNSUPPORTED","message":"no such endpoint"}]}"#
            );
        }
    }
}

#[tokio::test]
async fn other_methods_are_not_allowed_and_get_no_page() {
    let app = app().await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        for uri in ["/harbor/x", "/", "/assets/app-1a2b3c.js"] {
            let r = app.send(method.clone(), uri, &[], "x=1").await;
            r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
            assert_eq!(r.header("allow"), "GET, HEAD");
            assert_not_html(&r);
        }
    }
}

#[tokio::test]
async fn without_a_portal_every_other_path_is_404() {
    let app = TestApp::new().await;
    for uri in ["/", "/harbor/projects", "/index.html"] {
        let r = app.get(uri).await;
        r.assert_error(StatusCode::NOT_FOUND, "UNSUPPORTED");
        assert_eq!(r.json()["errors"][0]["message"], "no such endpoint");
    }
}

#[test]
fn a_portal_needs_an_index_page() {
    static NO_INDEX: [PortalAsset; 1] = [PortalAsset {
        path: "/assets/app.js",
        content_type: "text/javascript",
        body: b"",
        gzip: None,
        etag: "e",
    }];
    assert!(Portal::new(&NO_INDEX).is_none());
    assert_eq!(Portal::new(assets()).unwrap().assets().len(), 3);
}
