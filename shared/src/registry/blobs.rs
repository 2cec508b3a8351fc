//! Blob reads and deletes. A read costs one metadata lookup (the
//! repository's link, which carries size and object key) and no storage
//! call: the caller either redirects to a presigned URL or streams.

use super::keys::{self, attr};
use super::uploads::unlink_ops;
use super::usage::{self, Charges};
use super::{Registry, RegistryError, Result};
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, RepoName};
use crate::store::{Cond, Item, KvError, ObjectBody, now_secs};

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
    /// finds nothing else linking them.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let link = self
            .kv
            .get(&keys::repo(repo), &keys::blob_link(digest))
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        let gone = self.unlink(repo, vec![link], &|_| Cond::Exists).await?;
        if gone.links == 0 {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        Ok(())
    }

    /// Removes `repo`'s links (items as read), each only if `cond` holds on
    /// it, with their counts (see [`unlink_ops`]): in transactions of a few
    /// dozen, falling back to one at a time when one of them changed.
    /// Links whose condition fails stay.
    pub(super) async fn unlink(
        &self,
        repo: &RepoName,
        links: Vec<Item>,
        cond: &(dyn Fn(&Item) -> Cond + Sync),
    ) -> Result<Unlinked> {
        const BATCH: usize = 20;
        let mut out = Unlinked::default();
        for chunk in links.chunks(BATCH) {
            let digests: Vec<Digest> = chunk
                .iter()
                .filter_map(|l| parse_digest(l.sk.strip_prefix(keys::BLOB_PREFIX)?).ok())
                .collect();
            if digests.len() != chunk.len() {
                tracing::warn!(%repo, "skipping unreadable blob links");
            }
            match self.unlink_batch(repo, chunk, &digests, cond).await {
                Ok(done) => out.add(done),
                Err(RegistryError::Kv(KvError::ConditionFailed { .. } | KvError::Conflict))
                    if chunk.len() > 1 =>
                {
                    for (link, d) in chunk.iter().zip(&digests) {
                        for _ in 0..3 {
                            let fresh = self.kv.get(&link.pk, &link.sk).await?;
                            let Some(fresh) = fresh else { break };
                            match self
                                .unlink_batch(
                                    repo,
                                    std::slice::from_ref(&fresh),
                                    std::slice::from_ref(d),
                                    cond,
                                )
                                .await
                            {
                                Ok(done) => {
                                    out.add(done);
                                    break;
                                }
                                Err(RegistryError::Kv(
                                    KvError::ConditionFailed { .. } | KvError::Conflict,
                                )) => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                Err(RegistryError::Kv(KvError::ConditionFailed { .. } | KvError::Conflict)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn unlink_batch(
        &self,
        repo: &RepoName,
        links: &[Item],
        digests: &[Digest],
        cond: &(dyn Fn(&Item) -> Cond + Sync),
    ) -> Result<Unlinked> {
        let project = keys::project_of(repo.as_str());
        let mut lookups = Vec::with_capacity(digests.len() * 2);
        for d in digests {
            lookups.push((keys::blob(d), keys::META.to_owned()));
            lookups.push(usage::ref_key(project, d));
        }
        let found = self.kv.batch_get(&lookups).await?;
        let mut ops = Vec::new();
        let mut charges = Charges::default();
        let mut done = Unlinked::default();
        for ((link, d), pair) in links.iter().zip(digests).zip(found.chunks(2)) {
            unlink_ops(
                &mut ops,
                &mut charges,
                repo,
                d,
                pair[0].is_some(),
                pair[1].as_ref(),
                cond(link),
            );
            done.links += 1;
            done.bytes += link.n(attr::SIZE).unwrap_or(0);
        }
        if ops.is_empty() {
            return Ok(done);
        }
        charges.push_into(&mut ops, now_secs());
        self.kv.transact(ops).await?;
        Ok(done)
    }
}

/// What [`Registry::unlink`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Unlinked {
    pub links: u64,
    /// The links' sizes (not necessarily bytes freed: others may hold them).
    pub bytes: i64,
}

impl Unlinked {
    fn add(&mut self, o: Unlinked) {
        self.links += o.links;
        self.bytes += o.bytes;
    }
}
