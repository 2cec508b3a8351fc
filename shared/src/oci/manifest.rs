//! Media types and manifest validation.
//!
//! Berth stores manifest bytes exactly as received (the digest is over the
//! bytes); this module only reads them to learn what they reference.
//! Accepted: OCI image manifest and index, Docker schema2 manifest and
//! manifest list. Docker schema1 and the withdrawn OCI artifact manifest are
//! refused with a clear error.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::digest::{Algorithm, Digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// The four manifest shapes Berth stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    OciImage,
    OciIndex,
    DockerImage,
    DockerList,
}

impl ManifestKind {
    pub fn from_media_type(mt: &str) -> Option<Self> {
        match mt {
            OCI_MANIFEST => Some(Self::OciImage),
            OCI_INDEX => Some(Self::OciIndex),
            DOCKER_MANIFEST => Some(Self::DockerImage),
            DOCKER_LIST => Some(Self::DockerList),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::OciImage => OCI_MANIFEST,
            Self::OciIndex => OCI_INDEX,
            Self::DockerImage => DOCKER_MANIFEST,
            Self::DockerList => DOCKER_LIST,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, Self::OciIndex | Self::DockerList)
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "Docker schema1 manifests are not supported; push with a client that writes schema2 or OCI manifests"
    )]
    Schema1,
    #[error(
        "the OCI artifact manifest was withdrawn from OCI 1.1; use an image manifest with artifactType"
    )]
    ArtifactManifest,
    #[error("unsupported manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch { header: String, body: String },
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("manifest is not valid JSON for {kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
    #[error("digest {0} uses an unsupported algorithm; use sha256 or sha512")]
    UnsupportedDigest(String),
    #[error("descriptors of {0} disagree on its size")]
    SizeConflict(String),
}

/// A blob or manifest a manifest references, with the size its
/// descriptor claims (clients trust that size, so the push checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referenced {
    pub digest: Digest,
    pub size: u64,
}

/// What a valid manifest references and says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    pub kind: ManifestKind,
    /// Blobs that must exist in the repository (config and layers, minus
    /// foreign layers that carry `urls`), each once.
    pub blobs: Vec<Referenced>,
    /// Child manifests of an index that must exist in the repository.
    pub children: Vec<Referenced>,
    pub subject: Option<Digest>,
    /// For the referrers API: `artifactType`, else the config media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The few fields read before choosing a full parser.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

/// Strips parameters and case from a Content-Type value.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Validates manifest bytes sent with `content_type`.
pub fn parse_manifest(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ParsedManifest, ManifestError> {
    let header = content_type.map(essence).filter(|s| !s.is_empty());
    if let Some(h) = header.as_deref() {
        check_refused(h)?;
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid {
        kind: "a manifest",
        reason: e.to_string(),
    })?;
    if let Some(b) = probe.media_type.as_deref() {
        check_refused(b)?;
    }
    if matches!(&probe.schema_version, Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1))
    {
        return Err(ManifestError::Schema1);
    }
    let header_kind = header.as_deref().and_then(ManifestKind::from_media_type);
    let body_kind = probe
        .media_type
        .as_deref()
        .and_then(ManifestKind::from_media_type);
    let kind = match (header_kind, body_kind, probe.media_type.as_deref()) {
        (Some(h), _, Some(b)) if h.media_type() != b => {
            return Err(ManifestError::MediaTypeMismatch {
                header: h.media_type().to_owned(),
                body: b.to_owned(),
            });
        }
        (Some(h), _, _) => h,
        (None, Some(b), _) => b,
        (None, None, Some(b)) => return Err(ManifestError::UnknownMediaType(b.to_owned())),
        (None, None, None) => {
            // Neither says: an OCI manifest or index may omit mediaType.
            let generic = matches!(
                header.as_deref(),
                None | Some("application/json" | "application/octet-stream")
            );
            match (generic, probe.manifests.is_some(), probe.config.is_some()) {
                (true, true, false) => ManifestKind::OciIndex,
                (true, false, true) => ManifestKind::OciImage,
                _ => return Err(ManifestError::UnknownMediaType(header.unwrap_or_default())),
            }
        }
    };
    match probe.schema_version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => {}
        _ => return Err(ManifestError::SchemaVersion),
    }
    if kind.is_index() {
        parse_index(kind, bytes)
    } else {
        parse_image(kind, bytes)
    }
}

fn check_refused(mt: &str) -> Result<(), ManifestError> {
    match mt {
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(ManifestError::Schema1),
        OCI_ARTIFACT_MANIFEST => Err(ManifestError::ArtifactManifest),
        _ => Ok(()),
    }
}

fn invalid(kind: ManifestKind) -> impl Fn(serde_json::Error) -> ManifestError {
    move |e| ManifestError::Invalid {
        kind: kind.media_type(),
        reason: e.to_string(),
    }
}

fn annotations(
    a: Option<&std::collections::HashMap<String, String>>,
) -> Option<std::collections::BTreeMap<String, String>> {
    a.filter(|m| !m.is_empty())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn parse_image(kind: ManifestKind, bytes: &[u8]) -> Result<ParsedManifest, ManifestError> {
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(invalid(kind))?;
    let all = std::iter::once(m.config())
        .chain(m.layers())
        .chain(m.subject().as_ref());
    check_algorithms(all)?;
    let foreign = |d: &&Descriptor| d.urls().as_ref().is_some_and(|u| !u.is_empty());
    let blobs =
        referenced(std::iter::once(m.config()).chain(m.layers().iter().filter(|d| !foreign(d))))?;
    let artifact_type = m
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .or_else(|| Some(m.config().media_type().to_string()));
    Ok(ParsedManifest {
        kind,
        blobs,
        children: Vec::new(),
        subject: m.subject().as_ref().map(|s| s.digest().clone()),
        artifact_type,
        annotations: annotations(m.annotations().as_ref()),
    })
}

fn parse_index(kind: ManifestKind, bytes: &[u8]) -> Result<ParsedManifest, ManifestError> {
    let m: ImageIndex = serde_json::from_slice(bytes).map_err(invalid(kind))?;
    check_algorithms(m.manifests().iter().chain(m.subject().as_ref()))?;
    let children = referenced(m.manifests().iter())?;
    Ok(ParsedManifest {
        kind,
        blobs: Vec::new(),
        children,
        subject: m.subject().as_ref().map(|s| s.digest().clone()),
        artifact_type: m.artifact_type().as_ref().map(|t| t.to_string()),
        annotations: annotations(m.annotations().as_ref()),
    })
}

/// Refuses digests Berth cannot verify (and whose length is unbounded).
fn check_algorithms<'a>(
    descriptors: impl Iterator<Item = &'a Descriptor>,
) -> Result<(), ManifestError> {
    for d in descriptors {
        if Algorithm::of(d.digest()).is_none() {
            return Err(ManifestError::UnsupportedDigest(d.digest().to_string()));
        }
    }
    Ok(())
}

/// Each referenced digest once; two descriptors of one digest must agree
/// on its size.
fn referenced<'a>(
    descriptors: impl Iterator<Item = &'a Descriptor>,
) -> Result<Vec<Referenced>, ManifestError> {
    let mut sizes = std::collections::HashMap::new();
    let mut out = Vec::new();
    for d in descriptors {
        match sizes.insert(d.digest().to_string(), d.size()) {
            None => out.push(Referenced {
                digest: d.digest().clone(),
                size: d.size(),
            }),
            Some(s) if s == d.size() => {}
            Some(_) => return Err(ManifestError::SizeConflict(d.digest().to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(mt: Option<&str>, extra: &str) -> String {
        let mt = mt
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":3}},
                      {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":3}}]{extra}}}"#,
            d('a'),
            d('b'),
            d('b')
        )
    }

    #[test]
    fn oci_image_lists_config_and_layers_once() {
        let p =
            parse_manifest(Some(OCI_MANIFEST), image(Some(OCI_MANIFEST), "").as_bytes()).unwrap();
        assert_eq!(p.kind, ManifestKind::OciImage);
        assert_eq!(
            p.blobs
                .iter()
                .map(|x| x.digest.to_string())
                .collect::<Vec<_>>(),
            [d('a'), d('b')]
        );
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn media_type_may_come_from_either_side() {
        let body = image(None, "");
        assert_eq!(
            parse_manifest(Some(OCI_MANIFEST), body.as_bytes())
                .unwrap()
                .kind,
            ManifestKind::OciImage
        );
        assert_eq!(
            parse_manifest(None, body.as_bytes()).unwrap().kind,
            ManifestKind::OciImage
        );
        let body = image(Some(DOCKER_MANIFEST), "");
        assert_eq!(
            parse_manifest(None, body.as_bytes()).unwrap().kind,
            ManifestKind::DockerImage
        );
        assert_eq!(
            parse_manifest(
                Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
                body.as_bytes()
            )
            .unwrap()
            .kind,
            ManifestKind::DockerImage
        );
    }

    #[test]
    fn mismatched_media_types_are_refused() {
        let body = image(Some(DOCKER_MANIFEST), "");
        assert!(matches!(
            parse_manifest(Some(OCI_MANIFEST), body.as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
    }

    #[test]
    fn subject_and_artifact_type_are_read() {
        let extra = format!(
            r#","artifactType":"application/x-sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9}},"annotations":{{"k":"v"}}"#,
            d('c')
        );
        let p = parse_manifest(Some(OCI_MANIFEST), image(None, &extra).as_bytes()).unwrap();
        assert_eq!(p.subject.map(|s| s.to_string()), Some(d('c')));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
        assert_eq!(p.annotations.unwrap()["k"], "v");
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":2}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":3,"urls":["https://example.com/l"]}}]}}"#,
            d('a'),
            d('b')
        );
        let p = parse_manifest(None, body.as_bytes()).unwrap();
        assert_eq!(p.blobs.len(), 1);
    }

    #[test]
    fn index_lists_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let p = parse_manifest(Some(OCI_INDEX), body.as_bytes()).unwrap();
        assert_eq!(p.kind, ManifestKind::OciIndex);
        assert_eq!(p.children.len(), 2);
        assert!(p.blobs.is_empty());
        let docker = body.replace(OCI_INDEX, DOCKER_LIST);
        assert_eq!(
            parse_manifest(Some(DOCKER_LIST), docker.as_bytes())
                .unwrap()
                .kind,
            ManifestKind::DockerList
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let schema1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        assert_eq!(
            parse_manifest(Some(DOCKER_SCHEMA1_SIGNED), schema1.as_bytes()),
            Err(ManifestError::Schema1)
        );
        assert_eq!(
            parse_manifest(None, schema1.as_bytes()),
            Err(ManifestError::Schema1)
        );
        assert_eq!(
            parse_manifest(Some(DOCKER_MANIFEST), schema1.as_bytes()),
            Err(ManifestError::Schema1)
        );
        assert_eq!(
            parse_manifest(Some(OCI_ARTIFACT_MANIFEST), b"{}"),
            Err(ManifestError::ArtifactManifest)
        );
        assert!(matches!(
            parse_manifest(Some(OCI_MANIFEST), b"not json"),
            Err(ManifestError::Invalid { .. })
        ));
        assert!(matches!(
            parse_manifest(Some(OCI_MANIFEST), br#"{"schemaVersion":2,"layers":[]}"#),
            Err(ManifestError::Invalid { .. })
        ));
        assert_eq!(
            parse_manifest(Some("text/plain"), image(None, "").as_bytes()),
            Err(ManifestError::UnknownMediaType("text/plain".to_owned()))
        );
        assert_eq!(
            parse_manifest(
                Some(OCI_MANIFEST),
                image(None, "")
                    .replace("\"schemaVersion\":2", "\"schemaVersion\":3")
                    .as_bytes()
            ),
            Err(ManifestError::SchemaVersion)
        );
    }

    proptest! {
        #[test]
        fn manifest_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), ct in proptest::option::of("\\PC{0,60}")) {
            let _ = parse_manifest(ct.as_deref(), &bytes);
        }

        #[test]
        fn mutated_manifests_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            let mut body = image(Some(OCI_MANIFEST), "").into_bytes();
            let i = pos % body.len();
            body[i] = byte;
            let _ = parse_manifest(Some(OCI_MANIFEST), &body);
        }
    }
}
