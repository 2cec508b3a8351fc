//! The one parser from a `/v2/...` path to a typed route.
//!
//! Repository names contain `/`, so the path is read from its end: the
//! last segments name the endpoint (`manifests/<ref>`, `blobs/<digest>`,
//! `blobs/uploads/<id>`, `tags/list`, `referrers/<digest>`), everything
//! before them is the name.

use crate::oci::digest::parse_digest;
use crate::oci::name::NameError;
use crate::oci::{Digest, Reference, RepoName};

/// A parsed `/v2/` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route {
    Base,
    Catalog,
    Manifest {
        name: RepoName,
        reference: Reference,
    },
    Blob {
        name: RepoName,
        digest: Digest,
    },
    UploadStart {
        name: RepoName,
        /// `?mount=<digest>[&from=<name>]`: link an existing blob instead of
        /// uploading it (read from the query by [`V2Route::with_query`]).
        mount: Option<Mount>,
    },
    Upload {
        name: RepoName,
        id: String,
    },
    Tags {
        name: RepoName,
    },
    Referrers {
        name: RepoName,
        digest: Digest,
    },
}

/// A cross-repository mount request (`POST /blobs/uploads/?mount=…`).
///
/// The source is part of the route because it is what an authorization
/// layer must check: mounting reads a blob through `from`, so the caller
/// needs pull access there as well as push access to the target. Without
/// `from` the registry would look for the blob anywhere it holds it, which
/// only a caller who may read every repository should get; an
/// authorization layer turns that into a plain upload for everyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub digest: Digest,
    pub from: Option<RepoName>,
}

impl V2Route {
    /// Completes the route with what its query string says (the mount
    /// source of an upload start); other routes are returned unchanged.
    pub fn with_query(self, query: Option<&str>) -> Result<Self, RouteError> {
        let V2Route::UploadStart { name, .. } = self else {
            return Ok(self);
        };
        let mut mount = None;
        let mut from = None;
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            match k {
                "mount" => mount = Some(digest(&v)?),
                "from" => from = Some(v.parse::<RepoName>().map_err(RouteError::Name)?),
                _ => {}
            }
        }
        let mount = mount.map(|digest| Mount { digest, from });
        Ok(V2Route::UploadStart { name, mount })
    }

    /// The repository the route touches, if any.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            V2Route::Base | V2Route::Catalog => None,
            V2Route::Manifest { name, .. }
            | V2Route::Blob { name, .. }
            | V2Route::UploadStart { name, .. }
            | V2Route::Upload { name, .. }
            | V2Route::Tags { name }
            | V2Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such endpoint")]
    NotFound,
    #[error("invalid repository name: {0}")]
    Name(NameError),
    #[error("invalid reference: {0}")]
    Reference(NameError),
    #[error("invalid digest {0:?}")]
    Digest(String),
}

fn name(segments: &[&str]) -> Result<RepoName, RouteError> {
    segments.join("/").parse().map_err(RouteError::Name)
}

fn digest(s: &str) -> Result<Digest, RouteError> {
    parse_digest(s).map_err(|_| RouteError::Digest(s.to_owned()))
}

/// Parses the path of a request under `/v2`.
pub fn parse_v2_path(path: &str) -> Result<V2Route, RouteError> {
    let rest = path.strip_prefix("/v2").ok_or(RouteError::NotFound)?;
    let rest = match rest {
        "" | "/" => return Ok(V2Route::Base),
        r => r.strip_prefix('/').ok_or(RouteError::NotFound)?,
    };
    if rest == "_catalog" {
        return Ok(V2Route::Catalog);
    }
    let s: Vec<&str> = rest.split('/').collect();
    let n = s.len();
    let tail = |k: usize| if n > k { Some(&s[..n - k]) } else { None };
    if n >= 4 && s[n - 3] == "blobs" && s[n - 2] == "uploads" {
        let name = name(&s[..n - 3])?;
        return Ok(match s[n - 1] {
            "" => V2Route::UploadStart { name, mount: None },
            id => V2Route::Upload {
                name,
                id: id.to_owned(),
            },
        });
    }
    match (tail(2), s.get(n.wrapping_sub(2)).copied(), s[n - 1]) {
        (Some(prefix), Some("manifests"), r) => {
            let name = name(prefix)?;
            let reference = r.parse().map_err(RouteError::Reference)?;
            Ok(V2Route::Manifest { name, reference })
        }
        (Some(prefix), Some("blobs"), "uploads") => Ok(V2Route::UploadStart {
            name: name(prefix)?,
            mount: None,
        }),
        (Some(prefix), Some("blobs"), d) => Ok(V2Route::Blob {
            name: name(prefix)?,
            digest: digest(d)?,
        }),
        (Some(prefix), Some("tags"), "list") => Ok(V2Route::Tags {
            name: name(prefix)?,
        }),
        (Some(prefix), Some("referrers"), d) => Ok(V2Route::Referrers {
            name: name(prefix)?,
            digest: digest(d)?,
        }),
        _ => Err(RouteError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn n(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(parse_v2_path("/v2/"), Ok(V2Route::Base));
        assert_eq!(parse_v2_path("/v2"), Ok(V2Route::Base));
        assert_eq!(parse_v2_path("/v2/_catalog"), Ok(V2Route::Catalog));
        assert_eq!(
            parse_v2_path("/v2/library/team/app/manifests/v1"),
            Ok(V2Route::Manifest {
                name: n("library/team/app"),
                reference: "v1".parse().unwrap()
            })
        );
        assert_eq!(
            parse_v2_path(&format!("/v2/a/manifests/{D}")),
            Ok(V2Route::Manifest {
                name: n("a"),
                reference: D.parse().unwrap()
            })
        );
        assert_eq!(
            parse_v2_path(&format!("/v2/a/b/blobs/{D}")),
            Ok(V2Route::Blob {
                name: n("a/b"),
                digest: D.parse().unwrap()
            })
        );
        assert_eq!(
            parse_v2_path("/v2/a/blobs/uploads/"),
            Ok(V2Route::UploadStart {
                name: n("a"),
                mount: None
            })
        );
        assert_eq!(
            parse_v2_path("/v2/a/blobs/uploads"),
            Ok(V2Route::UploadStart {
                name: n("a"),
                mount: None
            })
        );
        assert_eq!(
            parse_v2_path("/v2/a/b/blobs/uploads/0123abcd"),
            Ok(V2Route::Upload {
                name: n("a/b"),
                id: "0123abcd".into()
            })
        );
        assert_eq!(
            parse_v2_path("/v2/x/tags/list"),
            Ok(V2Route::Tags { name: n("x") })
        );
        assert_eq!(
            parse_v2_path(&format!("/v2/x/referrers/{D}")),
            Ok(V2Route::Referrers {
                name: n("x"),
                digest: D.parse().unwrap()
            })
        );
    }

    #[test]
    fn endpoint_words_may_appear_inside_names() {
        assert_eq!(
            parse_v2_path("/v2/blobs/manifests/manifests/latest"),
            Ok(V2Route::Manifest {
                name: n("blobs/manifests"),
                reference: "latest".parse().unwrap()
            })
        );
        assert_eq!(
            parse_v2_path("/v2/tags/uploads/tags/list"),
            Ok(V2Route::Tags {
                name: n("tags/uploads")
            })
        );
    }

    #[test]
    fn mounts_carry_their_source() {
        let start = || parse_v2_path("/v2/a/blobs/uploads/").unwrap();
        assert_eq!(
            start().with_query(Some(&format!("mount={D}&from=b%2Fc"))),
            Ok(V2Route::UploadStart {
                name: n("a"),
                mount: Some(Mount {
                    digest: D.parse().unwrap(),
                    from: Some(n("b/c"))
                })
            })
        );
        assert_eq!(
            start().with_query(Some(&format!("mount={D}"))),
            Ok(V2Route::UploadStart {
                name: n("a"),
                mount: Some(Mount {
                    digest: D.parse().unwrap(),
                    from: None
                })
            })
        );
        assert_eq!(start().with_query(Some("from=b")), Ok(start()));
        assert!(matches!(
            start().with_query(Some("mount=sha256:zz")),
            Err(RouteError::Digest(_))
        ));
        assert!(matches!(
            start().with_query(Some(&format!("mount={D}&from=B"))),
            Err(RouteError::Name(_))
        ));
        let blob = parse_v2_path(&format!("/v2/a/blobs/{D}")).unwrap();
        assert_eq!(blob.clone().with_query(Some("mount=x")), Ok(blob));
    }

    #[test]
    fn refuses_bad_paths() {
        assert_eq!(parse_v2_path("/v3/"), Err(RouteError::NotFound));
        assert_eq!(parse_v2_path("/v2x"), Err(RouteError::NotFound));
        assert_eq!(
            parse_v2_path("/v2/manifests/latest"),
            Err(RouteError::NotFound)
        );
        assert_eq!(parse_v2_path("/v2/a/b"), Err(RouteError::NotFound));
        assert!(matches!(
            parse_v2_path("/v2/Upper/manifests/x"),
            Err(RouteError::Name(_))
        ));
        assert!(matches!(
            parse_v2_path("/v2/a//b/manifests/x"),
            Err(RouteError::Name(_))
        ));
        assert!(matches!(
            parse_v2_path("/v2/a/manifests/sha256:xyz"),
            Err(RouteError::Reference(_))
        ));
        assert!(matches!(
            parse_v2_path("/v2/a/manifests/-x"),
            Err(RouteError::Reference(_))
        ));
        assert!(matches!(
            parse_v2_path("/v2/a/blobs/sha256:zz"),
            Err(RouteError::Digest(_))
        ));
        assert!(matches!(
            parse_v2_path("/v2/a%2Fb/tags/list"),
            Err(RouteError::Name(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(path in "/v2(/[a-zA-Z0-9:_.%-]{0,12}){0,8}/?") {
            let _ = parse_v2_path(&path);
        }

        #[test]
        fn arbitrary_text_never_panics(path in "\\PC{0,200}", query in "\\PC{0,100}") {
            if let Ok(r) = parse_v2_path(&path) {
                let _ = r.with_query(Some(&query));
            }
        }
    }
}
