//! The registry service: uploads, blobs, manifests, tags, referrers and the
//! catalog, written once against the storage ports.
//!
//! Layering: HTTP routes call this service; this service never calls a
//! route; only adapters (in `store/`) talk to storage. Keys and attribute
//! names live in [`keys`], the one description of the data model.

pub mod artifacts;
mod blobs;
pub mod catalog;
pub mod events;
pub mod gc;
pub mod keys;
mod listing;
mod manifests;
pub mod proxy;
mod uploads;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use crate::oci::Digest;
use crate::oci::manifest::ManifestError;
use crate::store::{BlobError, BlobStore, Kv, KvError};

pub use blobs::BlobInfo;
pub use listing::{Listing, ReferrersPage};
pub use manifests::{PutOutcome, StoredManifest};
pub use uploads::{SweepReport, UploadStatus};
pub use usage::Usage;

/// Everything the registry can refuse or fail with. The HTTP layer maps
/// each variant to one OCI error code and status, in one place.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry")]
    BlobUnknown(Digest),
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    /// The session was finished, cancelled or changed by a concurrent
    /// request while this one ran.
    #[error("blob upload unknown to registry: {0}")]
    UploadGone(String),
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
    /// A descriptor's size differs from the stored content's.
    #[error("manifest invalid: {0}")]
    DescriptorMismatch(String),
    /// A query parameter is out of bounds.
    #[error("{0}")]
    BadParameter(String),
    /// The metadata store kept refusing a write because of concurrent
    /// writers; the client may retry.
    #[error("too many concurrent changes to the same item; retry")]
    Busy,
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The project's storage quota has no room for the change.
    #[error("{0}")]
    QuotaExceeded(String),
    /// An immutable tag would be moved or deleted.
    #[error("{0}")]
    Immutable(String),
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
    /// What is left at the end of a request below this size is staged and
    /// joined with the next chunk instead of becoming a part (at least the
    /// store's own minimum part size: 5 MiB on S3). Staging on every backend
    /// keeps the number of parts, and with it the cost of each request,
    /// bounded; each request copies at most this much staged data.
    pub min_part_size: u64,
    /// Most parts one upload may have; beyond, the client is told to send
    /// bigger chunks. Keeps the session item small (DynamoDB items stop
    /// at 400 KB) and under S3's 10,000 parts.
    pub max_parts: usize,
    /// How long an idle upload session lives (each request renews it).
    pub upload_ttl: Duration,
    /// The longest an upload session lives, however busy. The bucket's
    /// lifecycle rules for unfinished uploads must be longer than this.
    pub upload_max_age: Duration,
    /// Lifetime of presigned blob URLs.
    pub presign_ttl: Duration,
    /// Manifests up to this size are stored inside their metadata item;
    /// larger ones go to the blob store (DynamoDB items stop at 400 KB).
    pub inline_manifest_max: usize,
    /// How long an unreferenced blob link, untagged manifest or blob is
    /// left alone by the collector (DESIGN §6): longer than the slowest
    /// push takes from its first upload to its manifest. At least
    /// [`MIN_GC_GRACE`].
    pub gc_grace: Duration,
    /// A project's usage crossing this percentage of its limit raises a
    /// `QUOTA_WARNING` event (0: never).
    pub quota_warning_pct: u8,
}

/// The shortest grace the collector's safety argument allows: a manifest
/// push checks that no more than half of it passed between its read and
/// its commit (`registry::gc`), so the half must outlast that step.
pub const MIN_GC_GRACE: Duration = Duration::from_secs(4);

/// The default grace: an hour, far longer than any push.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(3600);

impl RegistryOptions {
    /// The grace, raised to [`MIN_GC_GRACE`] (so `0` means the shortest).
    pub fn grace(&self) -> Duration {
        self.gc_grace.max(MIN_GC_GRACE)
    }
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            min_part_size: 1024 * 1024,
            max_parts: 5_000,
            upload_ttl: Duration::from_secs(24 * 3600),
            upload_max_age: Duration::from_secs(7 * 24 * 3600),
            presign_ttl: Duration::from_secs(300),
            inline_manifest_max: 350 * 1024,
            gc_grace: DEFAULT_GC_GRACE,
            quota_warning_pct: 85,
        }
    }
}

/// The registry service over its ports.
#[derive(Clone)]
pub struct Registry {
    kv: Arc<dyn Kv>,
    blobs: Arc<dyn BlobStore>,
    opts: RegistryOptions,
    /// Pulls counted in memory until written in a batch.
    pulls: catalog::SharedPulls,
    /// Where committed events go (`events`).
    events: events::EventSink,
}

impl Registry {
    pub fn new(kv: Arc<dyn Kv>, blobs: Arc<dyn BlobStore>, opts: RegistryOptions) -> Self {
        Self {
            kv,
            blobs,
            opts,
            pulls: Default::default(),
            events: None,
        }
    }

    /// This registry, sending the events its changes commit to `queue`
    /// (the events queue: the `webhook` worker's).
    pub fn with_events(mut self, queue: std::sync::Arc<dyn crate::store::Queue>) -> Self {
        self.events = Some(queue);
        self
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    pub fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }
}
