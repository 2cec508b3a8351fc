//! The OCI grammar and wire types, parsed once at the edge into newtypes.
//!
//! - [`name`]: repository names, tags and references
//!   ([distribution-spec "Pulling manifests"](https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests));
//! - [`digest`]: content digests and a SHA-256 whose state survives between requests;
//! - [`manifest`]: media types and manifest validation (image manifest, index, Docker schema2).

pub mod digest;
pub mod manifest;
pub mod name;

pub use digest::{Algorithm, Digest, HashState, sha256_digest};
pub use manifest::{ManifestKind, ParsedManifest, Referenced};
pub use name::{Reference, RepoName, Tag};
