//! Ports (the storage the domain needs) and their adapters.
//!
//! Three ports, each shaped like the AWS service that backs it in the cloud:
//! [`Kv`] (DynamoDB), [`BlobStore`] (S3) and [`Queue`] (SQS). Domain code
//! holds them as `Arc<dyn Trait>` and never sees an SDK or file type.
//! Every adapter passes the same contract suite ([`contract`]).

pub mod blob;
pub mod kv;
pub mod queue;

#[cfg(feature = "local")]
pub mod fs_blob;
#[cfg(feature = "local")]
pub mod local_queue;
#[cfg(feature = "local")]
pub mod redb_kv;

#[cfg(any(test, feature = "contract"))]
pub mod contract;

#[cfg(feature = "aws-core")]
pub mod aws;

pub use blob::{BlobError, BlobStore, ByteStream, CompletedPart, ObjectBody};
pub use kv::{Attr, Cond, Item, Kv, KvError, Page, Query, SkRange, WriteOp};
pub use queue::{Job, Queue, QueueError, Received};

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens the embedded adapters under `data_dir`: `meta.redb` for metadata
/// and `blobs/` for objects.
#[cfg(feature = "local")]
pub async fn open_local(
    data_dir: &std::path::Path,
) -> Result<(std::sync::Arc<dyn Kv>, std::sync::Arc<dyn BlobStore>), String> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let kv = redb_kv::RedbKv::open(&data_dir.join("meta.redb")).map_err(|e| e.to_string())?;
    let blobs = fs_blob::FsBlobStore::open(&data_dir.join("blobs"))
        .await
        .map_err(|e| e.to_string())?;
    Ok((std::sync::Arc::new(kv), std::sync::Arc::new(blobs)))
}
