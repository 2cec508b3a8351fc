//! The blob port: an S3-shaped object store.
//!
//! Objects are written whole ([`BlobStore::put`], for small objects) or as a
//! multipart upload whose parts are at least [`BlobStore::min_part_size`]
//! bytes except the last. Reads stream; nothing here holds a whole blob in
//! memory.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// A stream of body bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An object being read: its total size and the requested bytes.
pub struct ObjectBody {
    pub total_size: u64,
    pub body: ByteStream,
}

/// A finished part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("object not found")]
    NotFound,
    #[error("requested range is not satisfiable")]
    InvalidRange,
    #[error("multipart upload not found")]
    NoSuchUpload,
    /// Completion named parts that are not the ones stored (a part was
    /// rewritten by a concurrent request), or a part number skipped ahead of
    /// the next one (the filesystem store writes parts in order).
    #[error("the parts named do not match the parts uploaded")]
    PartsMismatch,
    #[error("blob store: {0}")]
    Backend(String),
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            BlobError::NotFound
        } else {
            BlobError::Backend(e.to_string())
        }
    }
}

/// The blob port.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Writes a small object in one call.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError>;
    /// Reads an object, or the inclusive byte range `start..=end` of it (an
    /// end past the object is clamped; a start past it is `InvalidRange`).
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, BlobError>;
    /// The object's size, if it exists.
    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError>;
    /// Removes an object; removing an absent object succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Keys under `prefix` in ascending order after `after`, at most `limit`.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError>;

    async fn create_multipart(&self, key: &str) -> Result<String, BlobError>;
    /// Uploads part `number` (1-based). Re-uploading a number replaces it.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String, BlobError>;
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError>;

    /// A short-lived URL that serves the object, computed locally (no
    /// network call); `None` when this store cannot presign (the server
    /// then streams the bytes itself).
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<String>, BlobError>;
    /// Smallest part a multipart upload accepts, except the last one.
    fn min_part_size(&self) -> u64;

    /// Removes what abandoned uploads left behind longer ago than
    /// `older_than`: unfinished multipart uploads and staged objects (under
    /// `uploads/`); returns how many. The registry calls it with a bound
    /// longer than any upload session lives. On S3 the bucket's lifecycle
    /// rules do this (the default does nothing).
    async fn expire_abandoned(&self, older_than: Duration) -> Result<u64, BlobError> {
        let _ = older_than;
        Ok(0)
    }
}

/// Reads a whole (small) object into memory.
pub async fn read_all(store: &dyn BlobStore, key: &str) -> Result<Bytes, BlobError> {
    let mut obj = store.get(key, None).await?;
    let mut buf = bytes::BytesMut::with_capacity(obj.total_size as usize);
    while let Some(chunk) = obj.body.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}
