//! The registry service: uploads, blobs, manifests, tags, referrers and the
//! catalog, written once against the storage ports.
//!
//! Layering: HTTP routes call this service; this service never calls a
//! route; only adapters (in `store/`) talk to storage. Keys and attribute
//! names live in [`keys`], the one description of the data model.

mod blobs;
pub mod keys;
mod listing;
mod manifests;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use crate::oci::Digest;
use crate::oci::manifest::ManifestError;
use crate::store::{BlobError, BlobStore, Kv, KvError};

pub use blobs::BlobInfo;
pub use listing::Listing;
pub use manifests::{PutOutcome, StoredManifest};
pub use uploads::UploadStatus;

/// Everything the registry can refuse or fail with. The HTTP layer maps
/// each variant to one OCI error code and status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry")]
    BlobUnknown(Digest),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk did not start where the upload stands.
    #[error("chunk must start at offset {offset}")]
    RangeInvalid { offset: u64 },
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    #[error("manifest references a blob or manifest unknown to this repository")]
    ManifestBlobUnknown(Digest),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(#[from] ManifestError),
    #[error("manifest unknown to registry")]
    ManifestUnknown,
    #[error("manifest media type {0} is not in the Accept header")]
    ManifestNotAcceptable(String),
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("manifest is larger than {max} bytes")]
    ManifestTooLarge { max: usize },
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("request body could not be read: {0}")]
    Body(std::io::Error),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Tunables of the registry service.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Target size of multipart parts written while an upload streams in.
    pub part_size: usize,
    /// How long an idle upload session lives.
    pub upload_ttl: Duration,
    /// Lifetime of presigned blob URLs.
    pub presign_ttl: Duration,
    /// Manifests up to this size are stored inside their metadata item;
    /// larger ones go to the blob store (DynamoDB items stop at 400 KB).
    pub inline_manifest_max: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            upload_ttl: Duration::from_secs(24 * 3600),
            presign_ttl: Duration::from_secs(300),
            inline_manifest_max: 350 * 1024,
        }
    }
}

/// The registry service over its ports.
#[derive(Clone)]
pub struct Registry {
    kv: Arc<dyn Kv>,
    blobs: Arc<dyn BlobStore>,
    opts: RegistryOptions,
}

impl Registry {
    pub fn new(kv: Arc<dyn Kv>, blobs: Arc<dyn BlobStore>, opts: RegistryOptions) -> Self {
        Self { kv, blobs, opts }
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    pub fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }
}
