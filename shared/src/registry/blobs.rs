//! Blob reads and deletes. A read costs one metadata lookup (the
//! repository's link, which carries size and object key) and no storage
//! call: the caller either redirects to a presigned URL or streams.

use super::keys::{self, attr};
use super::{Registry, RegistryError, Result};
use crate::oci::{Digest, RepoName};
use crate::store::{Cond, KvError, ObjectBody, WriteOp};

/// What a repository knows of one of its blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    pub key: String,
}

impl Registry {
    /// Size and object key of a blob linked into `repo`.
    pub async fn blob_info(&self, repo: &RepoName, digest: &Digest) -> Result<BlobInfo> {
        let link = self
            .kv
            .get(&keys::repo(repo), &keys::blob_link(digest))
            .await?;
        let unknown = || RegistryError::BlobUnknown(digest.clone());
        let link = link.ok_or_else(unknown)?;
        match (link.n(attr::SIZE), link.s(attr::KEY)) {
            (Some(size), Some(key)) => Ok(BlobInfo {
                size: size as u64,
                key: key.to_owned(),
            }),
            _ => Err(unknown()),
        }
    }

    /// A presigned URL for the blob, when the store can make one.
    pub async fn blob_url(&self, info: &BlobInfo) -> Result<Option<String>> {
        Ok(self
            .blobs
            .presign_get(&info.key, self.opts.presign_ttl)
            .await?)
    }

    /// Streams the blob, or the inclusive byte range of it.
    pub async fn read_blob(
        &self,
        digest: &Digest,
        info: &BlobInfo,
        range: Option<(u64, u64)>,
    ) -> Result<ObjectBody> {
        self.blobs.get(&info.key, range).await.map_err(|e| match e {
            crate::store::BlobError::NotFound => RegistryError::BlobUnknown(digest.clone()),
            e => e.into(),
        })
    }

    /// Unlinks a blob from `repo`. The bytes stay until garbage collection
    /// finds nothing else referencing them.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let op = WriteOp::Delete {
            pk: keys::repo(repo),
            sk: keys::blob_link(digest),
            cond: Cond::Exists,
        };
        match self.kv.write(op).await {
            Err(KvError::ConditionFailed { .. }) => Err(RegistryError::BlobUnknown(digest.clone())),
            r => Ok(r?),
        }
    }
}
