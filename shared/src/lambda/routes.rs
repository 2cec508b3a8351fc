//! API Gateway routes, from the one definition in `infra/routes.json`.
//!
//! An HTTP API's `{proxy+}` must be the last segment and repository names
//! contain `/`, so each `/v2` route family is enumerated for name depths
//! `1..=maxNameDepth` (DESIGN §8). `infra/gen-template` writes the same
//! expansion into `template.yaml`; a test checks the two agree. Inside a
//! function, [`crate::http::parse_v2_path`] parses the path again: the
//! route only picks the function.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `infra/routes.json`, compiled in.
pub const ROUTES_JSON: &str = include_str!("../../../infra/routes.json");

/// The route key API Gateway gives requests no route matched.
pub const DEFAULT_ROUTE_KEY: &str = "$default";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoutesFile {
    max_name_depth: usize,
    families: Vec<Family>,
    fixed: Vec<Fixed>,
    default: String,
}

#[derive(Debug, Deserialize)]
struct Family {
    function: String,
    methods: Vec<String>,
    suffix: String,
}

#[derive(Debug, Deserialize)]
struct Fixed {
    function: String,
    methods: Vec<String>,
    path: String,
}

/// One expanded route: `METHOD /path` sent to `function`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// An HTTP method, or `ANY`.
    pub method: String,
    /// The path template, e.g. `/v2/{n1}/{n2}/manifests/{reference}`.
    pub path: String,
    pub function: String,
}

impl Route {
    /// API Gateway's route key, e.g. `GET /v2/{n1}/tags/list`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A path template segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Static(String),
    Param(String),
    Greedy(String),
}

fn segments(path: &str) -> Vec<Segment> {
    path.strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_owned()),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Static(s.to_owned()),
            },
        )
        .collect()
}

/// The route a request selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// `METHOD /template`, or `$default`.
    pub route_key: String,
    pub function: String,
    /// Values of the template's `{params}`.
    pub path_params: BTreeMap<String, String>,
}

/// Every route of the HTTP API and the `$default` function.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<(Route, Vec<Segment>)>,
    default: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutesError {
    #[error("routes.json is not valid: {0}")]
    Json(String),
    #[error("route {0} is defined twice")]
    Duplicate(String),
    #[error("route {0} has a greedy {{proxy+}} segment that is not the last one")]
    GreedyNotLast(String),
}

impl RouteTable {
    /// The table compiled in from `infra/routes.json`.
    pub fn builtin() -> Result<Self, RoutesError> {
        Self::from_json(ROUTES_JSON)
    }

    /// Expands a `routes.json` document.
    pub fn from_json(json: &str) -> Result<Self, RoutesError> {
        let file: RoutesFile =
            serde_json::from_str(json).map_err(|e| RoutesError::Json(e.to_string()))?;
        let mut routes = Vec::new();
        for f in &file.fixed {
            for m in &f.methods {
                routes.push(Route {
                    method: m.clone(),
                    path: f.path.clone(),
                    function: f.function.clone(),
                });
            }
        }
        for depth in 1..=file.max_name_depth {
            let name: String = (1..=depth).map(|i| format!("{{n{i}}}/")).collect();
            for f in &file.families {
                for m in &f.methods {
                    let path = format!("/v2/{name}{}", f.suffix);
                    routes.push(Route {
                        method: m.clone(),
                        path,
                        function: f.function.clone(),
                    });
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut table = Vec::with_capacity(routes.len());
        for r in routes {
            if !seen.insert(r.key()) {
                return Err(RoutesError::Duplicate(r.key()));
            }
            let segs = segments(&r.path);
            if segs
                .iter()
                .rev()
                .skip(1)
                .any(|s| matches!(s, Segment::Greedy(_)))
            {
                return Err(RoutesError::GreedyNotLast(r.key()));
            }
            table.push((r, segs));
        }
        Ok(Self {
            routes: table,
            default: file.default,
        })
    }

    /// The expanded routes (without `$default`).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(r, _)| r)
    }

    /// The function `$default` goes to.
    pub fn default_function(&self) -> &str {
        &self.default
    }

    /// Every function some route names.
    pub fn functions(&self) -> std::collections::BTreeSet<&str> {
        self.routes()
            .map(|r| r.function.as_str())
            .chain([self.default.as_str()])
            .collect()
    }

    /// API Gateway's route selection: among the routes whose template and
    /// method match, the most specific wins (no greedy segment before one,
    /// then more static segments, then an exact method before `ANY`);
    /// nothing matching goes to `$default`.
    pub fn select(&self, method: &str, path: &str) -> Selected {
        let request: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        let mut best: Option<(Specificity, &Route, BTreeMap<String, String>)> = None;
        for (route, segs) in &self.routes {
            let exact_method = route.method == method;
            if !exact_method && route.method != "ANY" {
                continue;
            }
            let Some(params) = match_segments(segs, &request) else {
                continue;
            };
            let greedy = segs
                .iter()
                .filter(|s| matches!(s, Segment::Greedy(_)))
                .count();
            let statics = segs
                .iter()
                .filter(|s| matches!(s, Segment::Static(_)))
                .count();
            let rank = Specificity {
                no_greedy: greedy == 0,
                statics,
                exact_method,
            };
            if best.as_ref().is_none_or(|(b, _, _)| rank > *b) {
                best = Some((rank, route, params));
            }
        }
        match best {
            Some((_, route, path_params)) => Selected {
                route_key: route.key(),
                function: route.function.clone(),
                path_params,
            },
            None => Selected {
                route_key: DEFAULT_ROUTE_KEY.to_owned(),
                function: self.default.clone(),
                path_params: BTreeMap::new(),
            },
        }
    }
}

/// How specific a matching route is; a greater value wins. Field order
/// is priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    no_greedy: bool,
    statics: usize,
    exact_method: bool,
}

fn match_segments(template: &[Segment], request: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, seg) in template.iter().enumerate() {
        match seg {
            Segment::Static(s) => {
                if request.get(i) != Some(&s.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let v = request.get(i).filter(|v| !v.is_empty())?;
                params.insert(name.clone(), (*v).to_owned());
            }
            Segment::Greedy(name) => {
                let rest = request.get(i..)?.join("/");
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.clone(), rest);
                return Some(params);
            }
        }
    }
    (request.len() == template.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::builtin().unwrap()
    }

    #[test]
    fn builtin_table_expands_every_depth() {
        let t = table();
        let keys: Vec<String> = t.routes().map(Route::key).collect();
        assert!(keys.contains(&"GET /v2/{n1}/manifests/{reference}".to_owned()));
        assert!(keys.contains(
            &"PATCH /v2/{n1}/{n2}/{n3}/{n4}/{n5}/{n6}/blobs/uploads/{upload}".to_owned()
        ));
        assert!(!keys.iter().any(|k| k.contains("{n7}")));
        assert!(
            keys.len() < 300,
            "an HTTP API holds at most 300 routes, got {}",
            keys.len()
        );
        assert_eq!(
            t.functions(),
            ["admin", "blob", "manifest", "token"].into_iter().collect()
        );
    }

    #[test]
    fn selects_by_family_and_depth() {
        let t = table();
        let s = t.select("GET", "/v2/library/team/app/manifests/v1");
        assert_eq!(s.function, "manifest");
        assert_eq!(s.route_key, "GET /v2/{n1}/{n2}/{n3}/manifests/{reference}");
        assert_eq!(s.path_params["n3"], "app");
        assert_eq!(s.path_params["reference"], "v1");
        assert_eq!(
            t.select("PATCH", "/v2/a/blobs/uploads/abc").function,
            "blob"
        );
        assert_eq!(
            t.select("POST", "/v2/a/b/blobs/uploads/").route_key,
            "POST /v2/{n1}/{n2}/blobs/uploads/"
        );
        assert_eq!(
            t.select("POST", "/v2/a/b/blobs/uploads").route_key,
            "POST /v2/{n1}/{n2}/blobs/uploads"
        );
        assert_eq!(t.select("HEAD", "/v2/a/blobs/sha256:00").function, "blob");
        assert_eq!(t.select("GET", "/v2/").route_key, "GET /v2/");
        assert_eq!(
            t.select("GET", "/v2/_catalog").route_key,
            "GET /v2/_catalog"
        );
        assert_eq!(t.select("POST", "/service/token").function, "token");
    }

    #[test]
    fn the_most_specific_route_wins() {
        let json = r#"{"maxNameDepth":0,"families":[],"default":"d","fixed":[
            {"function":"param","methods":["GET"],"path":"/a/{x}"},
            {"function":"static","methods":["GET"],"path":"/a/b"},
            {"function":"any","methods":["ANY"],"path":"/a/b"},
            {"function":"greedy","methods":["GET"],"path":"/a/{p+}"}]}"#;
        let t = RouteTable::from_json(json).unwrap();
        assert_eq!(t.select("GET", "/a/b").function, "static");
        assert_eq!(t.select("PUT", "/a/b").function, "any");
        assert_eq!(t.select("GET", "/a/c").function, "param");
        assert_eq!(t.select("GET", "/a/c/d").function, "greedy");
        assert_eq!(t.select("GET", "/b").function, "d");
    }

    #[test]
    fn greedy_routes_take_the_rest_and_any_method() {
        let t = table();
        let s = t.select("DELETE", "/api/v2.0/projects/library/repositories");
        assert_eq!(s.function, "admin");
        assert_eq!(s.route_key, "ANY /api/v2.0/{proxy+}");
        assert_eq!(s.path_params["proxy"], "projects/library/repositories");
        assert_eq!(t.select("GET", "/api/v2.0/").route_key, DEFAULT_ROUTE_KEY);
    }

    #[test]
    fn unmatched_requests_go_to_default() {
        let t = table();
        for (m, p) in [
            ("GET", "/"),
            ("GET", "/v2/a/b/c/d/e/f/g/manifests/x"),
            ("POST", "/v2/a/manifests/x"),
            ("GET", "/v2//manifests/x"),
        ] {
            let s = t.select(m, p);
            assert_eq!(
                (s.route_key.as_str(), s.function.as_str()),
                (DEFAULT_ROUTE_KEY, "blob"),
                "{m} {p}"
            );
        }
    }

    #[test]
    fn refuses_bad_definitions() {
        let dup = r#"{"maxNameDepth":1,"families":[],"fixed":[{"function":"a","methods":["GET","GET"],"path":"/x"}],"default":"a"}"#;
        assert!(matches!(
            RouteTable::from_json(dup),
            Err(RoutesError::Duplicate(_))
        ));
        let greedy = r#"{"maxNameDepth":1,"families":[],"fixed":[{"function":"a","methods":["GET"],"path":"/{p+}/x"}],"default":"a"}"#;
        assert!(matches!(
            RouteTable::from_json(greedy),
            Err(RoutesError::GreedyNotLast(_))
        ));
        assert!(matches!(
            RouteTable::from_json("{}"),
            Err(RoutesError::Json(_))
        ));
    }
}
