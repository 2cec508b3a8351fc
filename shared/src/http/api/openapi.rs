//! Berth's own OpenAPI 3.0 document of `/api/v2.0` (`openapi.json` beside
//! this file), served at `/api/v2.0/openapi.json` and `/api/v2.0/swagger.json`.
//!
//! The document is a subset of Harbor's API definition: Harbor's paths,
//! operation ids, parameters and field types, with Berth's extensions
//! marked `x-berth`. `tests/harbor_api/check_openapi_subset.py` compares it
//! with Harbor's definition; the tests below keep it and the router from
//! drifting apart.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v2.0/openapi.json`.
pub(crate) async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// Where the document's paths live (its only server URL).
    const BASE: &str = "/api/v2.0";
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// A path with every `{param}` as `{}`: the router's parameter names
    /// are its own business, only their positions reach the wire.
    fn shape(path: &str) -> String {
        let mut out = String::with_capacity(path.len());
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                _ if !in_param => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// `(shape, METHOD)` of every documented operation but HEAD.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = doc();
        let paths = doc["paths"].as_object().expect("paths");
        let mut out = BTreeSet::new();
        for (path, item) in paths {
            for m in METHODS {
                if m != "head" && item.get(m).is_some() {
                    out.insert((shape(path), m.to_ascii_uppercase()));
                }
            }
        }
        out
    }

    /// `(shape, METHOD)` of every route under `/api/v2.0` but HEAD, catch-alls
    /// and the trailing-slash twins, relative to `/api/v2.0`.
    fn routed() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, methods) in crate::http::api::route_table() {
            let Some(rel) = path.strip_prefix(BASE) else {
                continue; // the portal's /c/login and /c/log_out
            };
            if rel.contains("{*") || rel.is_empty() || rel == "/" {
                continue; // Harbor's 404 for unknown paths
            }
            let rel = if rel.len() > 1 {
                rel.trim_end_matches('/')
            } else {
                rel
            };
            for m in methods {
                if !m.eq_ignore_ascii_case("HEAD") {
                    out.insert((shape(rel), m.to_ascii_uppercase()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let documented = documented();
        let routed = routed();
        let undocumented: Vec<String> = routed
            .difference(&documented)
            .map(|(p, m)| format!("{m} {BASE}{p}"))
            .collect();
        let unrouted: Vec<String> = documented
            .difference(&routed)
            .map(|(p, m)| format!("{m} {BASE}{p}"))
            .collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "openapi.json and the router disagree.\n\
             routed but not documented in openapi.json:\n  {}\n\
             documented in openapi.json but not routed:\n  {}",
            undocumented.join("\n  "),
            unrouted.join("\n  "),
        );
    }

    #[test]
    fn documented_head_operations_are_on_routed_paths() {
        let doc = doc();
        let routed: BTreeSet<String> = routed().into_iter().map(|(p, _)| p).collect();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            if item.get("head").is_some() {
                assert!(routed.contains(&shape(path)), "HEAD {path} is not routed");
            }
        }
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
        doc.pointer(r.strip_prefix('#')?)
    }

    fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        if let Some(s) = v.as_str() {
                            out.push(s);
                        }
                    } else {
                        collect_refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn document_is_well_formed() {
        let doc = doc();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.0.")),
            "openapi is {}",
            doc["openapi"]
        );
        assert_eq!(doc["servers"][0]["url"], BASE);
        assert_eq!(
            doc["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        for r in refs {
            assert!(resolve(&doc, r).is_some(), "dangling $ref {r}");
        }
        let mut ids = BTreeSet::new();
        let mut linked = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with('/'), "path {path} is not absolute");
            let in_template: BTreeSet<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(name, _)| name))
                .collect();
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{m} {path} has no operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                let mut declared = BTreeSet::new();
                let params = item["parameters"]
                    .as_array()
                    .into_iter()
                    .chain(op["parameters"].as_array())
                    .flatten();
                for p in params {
                    let p = match p["$ref"].as_str() {
                        Some(r) => resolve(&doc, r).expect("parameter $ref"),
                        None => p,
                    };
                    if p["in"] == "path" {
                        declared.insert(p["name"].as_str().expect("name"));
                    }
                }
                assert_eq!(
                    declared, in_template,
                    "{m} {path}: declared path parameters differ from the template"
                );
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{m} {path} has no success response"
                );
                for (status, resp) in responses {
                    if let Some(links) = resp["links"].as_object() {
                        for (name, link) in links {
                            let target = link["operationId"].as_str().unwrap_or_default();
                            linked.push((format!("{m} {path} {status} link {name}"), target));
                        }
                    }
                    if !(status.starts_with('4') || status.starts_with('5')) || m == "head" {
                        continue;
                    }
                    let resp = match resp["$ref"].as_str() {
                        Some(r) => resolve(&doc, r).expect("response $ref"),
                        None => resp,
                    };
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Errors",
                        "{m} {path} {status} is not Harbor's Errors body"
                    );
                }
            }
        }
        for (at, target) in linked {
            assert!(ids.contains(target), "{at}: no operation {target:?}");
        }
    }

    #[tokio::test]
    async fn served_as_json() {
        let resp = document().await;
        assert_eq!(resp.status(), axum::http::StatusCode::OK);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            HeaderValue::from_static("application/json")
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(body.as_ref(), DOCUMENT.as_bytes());
    }
}
