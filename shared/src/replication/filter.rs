//! What a policy's filters select (Harbor's `name`, `tag`, `label` and
//! `resource` filters), with the doublestar matcher of
//! [`crate::policy::selector`].
//!
//! - `name` matches the whole repository name (`library/**`);
//! - `tag` keeps the tags that match (or, `excludes`, that do not); a
//!   tagged artifact none of whose tags is kept is left out, an untagged
//!   one is kept only by a `**`/`*`/empty pattern (as Harbor's);
//! - `label` keeps artifacts carrying every listed label (or, `excludes`,
//!   none of them); labels are this registry's, so a label filter selects
//!   nothing from a remote source;
//! - `resource` `image` keeps container images (and indexes of them),
//!   `artifact` everything.

use super::policies::{Filter, LABEL, NAME, RESOURCE, TAG};
use crate::policy::selector::matches;

/// What the filters know of one artifact.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub repository: String,
    pub tags: Vec<String>,
    /// `None`: labels unknown (a remote source).
    pub labels: Option<Vec<String>>,
    /// Manifest media type, and the config media type of an image
    /// manifest.
    pub media_type: String,
    pub config_type: Option<String>,
}

/// Whether `repository` passes the name filters.
pub fn repository_selected(filters: &[Filter], repository: &str) -> bool {
    filters
        .iter()
        .filter(|f| f.kind == NAME)
        .all(|f| matches(f.pattern(), repository) != f.excludes())
}

/// The tags of `c` to replicate, or `None` when the artifact is not
/// selected at all.
pub fn select(filters: &[Filter], c: &Candidate) -> Option<Vec<String>> {
    if !repository_selected(filters, &c.repository) {
        return None;
    }
    let mut tags = c.tags.clone();
    for f in filters.iter().filter(|f| f.kind == TAG) {
        let pattern = f.pattern();
        if tags.is_empty() {
            // An untagged artifact: only "everything" keeps it.
            let all = matches!(pattern, "" | "*" | "**");
            if all == f.excludes() {
                return None;
            }
            continue;
        }
        tags.retain(|t| matches(pattern, t) != f.excludes());
        if tags.is_empty() {
            return None;
        }
    }
    for f in filters.iter().filter(|f| f.kind == LABEL) {
        let wanted = f.labels();
        if wanted.is_empty() {
            continue;
        }
        let Some(have) = &c.labels else {
            return None;
        };
        let ok = if f.excludes() {
            !wanted.iter().any(|w| have.contains(w))
        } else {
            wanted.iter().all(|w| have.contains(w))
        };
        if !ok {
            return None;
        }
    }
    for f in filters.iter().filter(|f| f.kind == RESOURCE) {
        let is_image = is_image(c);
        let selected = match f.pattern() {
            "image" => is_image,
            _ => true,
        };
        if selected == f.excludes() {
            return None;
        }
    }
    Some(tags)
}

/// Whether the artifact is a container image (or an index, whose children
/// Harbor treats as images).
fn is_image(c: &Candidate) -> bool {
    const IMAGE_CONFIGS: [&str; 2] = [
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    ];
    match c.config_type.as_deref() {
        Some(t) => IMAGE_CONFIGS.contains(&t),
        None => c.media_type.contains("index") || c.media_type.contains("manifest.list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: &str, value: serde_json::Value, decoration: &str) -> Filter {
        Filter {
            kind: kind.into(),
            value,
            decoration: decoration.into(),
        }
    }

    fn cand(repo: &str, tags: &[&str]) -> Candidate {
        Candidate {
            repository: repo.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            labels: Some(vec!["prod".into()]),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_type: Some("application/vnd.oci.image.config.v1+json".into()),
        }
    }

    #[test]
    fn name_and_tag_filters() {
        let fs = vec![
            f(NAME, "lib/**".into(), "matches"),
            f(TAG, "v*".into(), "matches"),
        ];
        assert_eq!(
            select(&fs, &cand("lib/a", &["v1", "latest"])),
            Some(vec!["v1".to_owned()])
        );
        assert_eq!(select(&fs, &cand("other/a", &["v1"])), None);
        assert_eq!(select(&fs, &cand("lib/a", &["latest"])), None);
        assert_eq!(select(&fs, &cand("lib/a", &[])), None);
        let ex = vec![f(TAG, "*-rc".into(), "excludes")];
        assert_eq!(
            select(&ex, &cand("lib/a", &["1-rc", "1"])),
            Some(vec!["1".to_owned()])
        );
        assert_eq!(select(&ex, &cand("lib/a", &[])), Some(vec![]));
    }

    #[test]
    fn label_and_resource_filters() {
        let fs = vec![f(LABEL, serde_json::json!(["prod"]), "matches")];
        assert!(select(&fs, &cand("a/b", &["1"])).is_some());
        let fs = vec![f(LABEL, serde_json::json!(["prod"]), "excludes")];
        assert!(select(&fs, &cand("a/b", &["1"])).is_none());
        let mut sig = cand("a/b", &["1"]);
        sig.config_type = Some("application/vnd.dev.cosign.simplesigning.v1+json".into());
        let img = vec![f(RESOURCE, "image".into(), "matches")];
        assert!(select(&img, &sig).is_none());
        assert!(select(&img, &cand("a/b", &["1"])).is_some());
    }
}
