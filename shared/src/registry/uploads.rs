//! Blob uploads: monolithic, POST+PUT, chunked PATCH, cross-repository mount.
//!
//! Bytes stream through [`Registry::ingest`]: they are hashed as they arrive
//! and cut into multipart parts of `part_size`. What is left at the end of a
//! request is written as a part if the store accepts a part that small, and
//! otherwise staged as a small object and joined with the next chunk. The
//! SHA-256 state is saved in the session, so the final PUT checks the digest
//! without reading the blob back, and completing the multipart upload puts
//! the object in place with no copy (DESIGN §4).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::keys::{self, attr};
use super::{Registry, RegistryError, Result};
use crate::oci::digest::is_sha256;
use crate::oci::{Digest, RepoName, Sha256State};
use crate::store::blob::read_all;
use crate::store::kv::TTL_ATTR;
use crate::store::{Attr, ByteStream, CompletedPart, Cond, Item, KvError, WriteOp, now_secs};

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    /// Bytes received so far.
    pub offset: u64,
}

/// The persisted upload session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    repo: String,
    key: String,
    mpu: Option<String>,
    parts: Vec<CompletedPart>,
    staged: Option<String>,
    offset: u64,
    hash: Vec<u8>,
}

/// A session plus the version it was read at.
struct Loaded {
    id: String,
    version: i64,
    s: Session,
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn corrupt(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::UploadInvalid(format!("upload session is unreadable: {e}"))
}

impl Registry {
    /// Opens an upload session (`POST /blobs/uploads/`).
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadStatus> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let s = Session {
            repo: repo.to_string(),
            key: keys::blob_object(&id),
            mpu: None,
            parts: Vec::new(),
            staged: None,
            offset: 0,
            hash: Sha256State::new().to_bytes(),
        };
        let item = self.session_item(&id, &s, 1)?;
        self.kv
            .write(WriteOp::Put {
                item,
                cond: Cond::NotExists,
            })
            .await?;
        Ok(UploadStatus { id, offset: 0 })
    }

    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadStatus> {
        let l = self.load_session(repo, id).await?;
        Ok(UploadStatus {
            id: l.id,
            offset: l.s.offset,
        })
    }

    /// Appends a chunk (`PATCH`). `range` is the inclusive `Content-Range`.
    pub async fn patch_upload(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<UploadStatus> {
        let mut l = self.load_session(repo, id).await?;
        if let Some((start, end)) = range {
            if start != l.s.offset {
                return Err(RegistryError::RangeInvalid { offset: l.s.offset });
            }
            if end < start {
                return Err(RegistryError::UploadInvalid(format!(
                    "Content-Range {start}-{end} is empty"
                )));
            }
        }
        let (tail, received) = self.ingest(&mut l, body).await?;
        if let Some((start, end)) = range
            && end - start + 1 != received
        {
            return Err(RegistryError::SizeInvalid(format!(
                "Content-Range announced {} bytes, body had {received}",
                end - start + 1
            )));
        }
        let old_stage = l.s.staged.take();
        if !tail.is_empty() {
            if tail.len() as u64 >= self.blobs.min_part_size() {
                self.write_part(&mut l.s, tail.freeze()).await?;
            } else {
                let key = keys::staged_object(&l.id);
                self.blobs.put(&key, tail.freeze()).await?;
                l.s.staged = Some(key);
            }
        }
        self.save_session(&l).await?;
        if let Some(old) = old_stage {
            self.forget_object(&old).await;
        }
        Ok(UploadStatus {
            id: l.id,
            offset: l.s.offset,
        })
    }

    /// Completes an upload (`PUT ?digest=`), with an optional last chunk.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<()> {
        check_algorithm(digest)?;
        let mut l = self.load_session(repo, id).await?;
        let (tail, _) = self.ingest(&mut l, body).await?;
        let old_stage = l.s.staged.take();
        self.verify_and_place(&mut l, digest, tail).await?;
        self.commit_blob(repo, digest, l.s.offset, &l.s.key, Some(&l.id))
            .await?;
        if let Some(old) = old_stage {
            self.forget_object(&old).await;
        }
        Ok(())
    }

    /// A whole blob in one request (`POST ?digest=`): no session is stored.
    pub async fn monolithic_upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<()> {
        check_algorithm(digest)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut l = Loaded {
            s: Session {
                repo: repo.to_string(),
                key: keys::blob_object(&id),
                mpu: None,
                parts: Vec::new(),
                staged: None,
                offset: 0,
                hash: Sha256State::new().to_bytes(),
            },
            id,
            version: 0,
        };
        let (tail, _) = self.ingest(&mut l, body).await?;
        self.verify_and_place(&mut l, digest, tail).await?;
        self.commit_blob(repo, digest, l.s.offset, &l.s.key, None)
            .await
    }

    /// Abandons an upload (`DELETE`).
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        let l = self.load_session(repo, id).await?;
        self.discard(&l).await;
        self.kv
            .write(WriteOp::delete(keys::upload(&l.id), keys::META))
            .await?;
        Ok(())
    }

    /// Links a blob from `from` (or, without `from`, any blob this registry
    /// holds) into `repo`. Returns false when there is nothing to mount.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        let source = match from {
            Some(f) => {
                self.kv
                    .get(&keys::repo(f), &keys::blob_link(digest))
                    .await?
            }
            None => self.kv.get(&keys::blob(digest), keys::META).await?,
        };
        let Some(source) = source else {
            return Ok(false);
        };
        let (Some(size), Some(key)) = (source.n(attr::SIZE), source.s(attr::KEY)) else {
            return Ok(false);
        };
        let ops = vec![
            touch_blob(digest, now_secs()),
            WriteOp::put(link_item(repo, digest, size as u64, key)),
        ];
        match self.kv.transact(ops).await {
            Ok(()) => Ok(true),
            // The blob was collected since the link was read.
            Err(KvError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams `body` into the session: hashes it and writes full parts.
    /// Returns the unwritten tail (staged bytes first) and the body length.
    async fn ingest(&self, l: &mut Loaded, mut body: ByteStream) -> Result<(BytesMut, u64)> {
        let mut hasher = Sha256State::from_bytes(&l.s.hash).map_err(corrupt)?;
        let part_size = self
            .opts
            .part_size
            .max(self.blobs.min_part_size() as usize)
            .max(1);
        let mut buf = BytesMut::new();
        if let Some(staged) = &l.s.staged {
            buf.extend_from_slice(&read_all(self.blobs.as_ref(), staged).await?);
        }
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(RegistryError::Body)?;
            hasher.update(&chunk);
            received += chunk.len() as u64;
            buf.extend_from_slice(&chunk);
            while buf.len() >= part_size {
                let part = buf.split_to(part_size).freeze();
                self.write_part(&mut l.s, part).await?;
            }
        }
        l.s.offset += received;
        l.s.hash = hasher.to_bytes();
        Ok((buf, received))
    }

    async fn write_part(&self, s: &mut Session, data: Bytes) -> Result<()> {
        let upload_id = match &s.mpu {
            Some(u) => u.clone(),
            None => {
                let u = self.blobs.create_multipart(&s.key).await?;
                s.mpu = Some(u.clone());
                u
            }
        };
        let number = s.parts.len() as u32 + 1;
        let etag = self
            .blobs
            .upload_part(&s.key, &upload_id, number, data)
            .await?;
        s.parts.push(CompletedPart { number, etag });
        Ok(())
    }

    /// Checks the digest, then writes the tail and puts the object in place.
    async fn verify_and_place(
        &self,
        l: &mut Loaded,
        digest: &Digest,
        tail: BytesMut,
    ) -> Result<()> {
        let actual = Sha256State::from_bytes(&l.s.hash)
            .map_err(corrupt)?
            .digest();
        if &actual != digest {
            self.discard(l).await;
            if l.version > 0 {
                self.kv
                    .write(WriteOp::delete(keys::upload(&l.id), keys::META))
                    .await?;
            }
            return Err(RegistryError::DigestInvalid(format!(
                "content has digest {actual}, not {digest}"
            )));
        }
        match l.s.mpu.clone() {
            Some(upload_id) => {
                if !tail.is_empty() {
                    self.write_part(&mut l.s, tail.freeze()).await?;
                }
                self.blobs
                    .complete_multipart(&l.s.key, &upload_id, &l.s.parts)
                    .await?;
            }
            None => self.blobs.put(&l.s.key, tail.freeze()).await?,
        }
        Ok(())
    }

    /// Records a stored blob and links it into `repo`, ending the session.
    /// If the registry already holds the digest, links the existing object
    /// and drops the new copy.
    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        key: &str,
        session: Option<&str>,
    ) -> Result<()> {
        let now = now_secs();
        let end_session = || session.map(|id| WriteOp::delete(keys::upload(id), keys::META));
        let meta = Item::new(keys::blob(digest), keys::META)
            .with(attr::SIZE, Attr::N(size as i64))
            .with(attr::KEY, Attr::S(key.to_owned()))
            .with(attr::LAST_REFERENCED, Attr::N(now));
        let mut ops = vec![
            WriteOp::Put {
                item: meta,
                cond: Cond::NotExists,
            },
            WriteOp::put(link_item(repo, digest, size, key)),
        ];
        ops.extend(end_session());
        match self.kv.transact(ops).await {
            Ok(()) => return Ok(()),
            Err(KvError::ConditionFailed { index: 0 }) => {}
            Err(e) => return Err(e.into()),
        }
        // Already stored: keep the first copy.
        for _ in 0..3 {
            let Some(existing) = self.kv.get(&keys::blob(digest), keys::META).await? else {
                continue;
            };
            let existing_key = existing.s(attr::KEY).unwrap_or_default().to_owned();
            let mut ops = vec![
                touch_blob(digest, now),
                WriteOp::put(link_item(repo, digest, size, &existing_key)),
            ];
            ops.extend(end_session());
            match self.kv.transact(ops).await {
                Ok(()) => {
                    self.forget_object(key).await;
                    return Ok(());
                }
                Err(KvError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::UploadInvalid(
            "the blob changed state concurrently; retry the upload".to_owned(),
        ))
    }

    async fn load_session(&self, repo: &RepoName, id: &str) -> Result<Loaded> {
        if !valid_upload_id(id) {
            return Err(RegistryError::UploadUnknown);
        }
        let item = self
            .kv
            .get(&keys::upload(id), keys::META)
            .await?
            .ok_or(RegistryError::UploadUnknown)?;
        let doc = item.b(attr::DOC).ok_or_else(|| corrupt("no document"))?;
        let s: Session = serde_json::from_slice(doc).map_err(corrupt)?;
        if s.repo != repo.as_str() {
            return Err(RegistryError::UploadUnknown);
        }
        Ok(Loaded {
            id: id.to_owned(),
            version: item.n(attr::VERSION).unwrap_or(0),
            s,
        })
    }

    fn session_item(&self, id: &str, s: &Session, version: i64) -> Result<Item> {
        let doc = serde_json::to_vec(s).map_err(corrupt)?;
        Ok(Item::new(keys::upload(id), keys::META)
            .with(attr::DOC, Attr::B(doc))
            .with(attr::VERSION, Attr::N(version))
            .with(
                TTL_ATTR,
                Attr::N(now_secs() + self.opts.upload_ttl.as_secs() as i64),
            ))
    }

    /// Saves the session if nobody else changed it since it was read.
    async fn save_session(&self, l: &Loaded) -> Result<()> {
        let item = self.session_item(&l.id, &l.s, l.version + 1)?;
        let cond = Cond::Eq(attr::VERSION.to_owned(), Attr::N(l.version));
        match self.kv.write(WriteOp::Put { item, cond }).await {
            Err(KvError::ConditionFailed { .. }) => Err(RegistryError::UploadInvalid(
                "the upload was changed by a concurrent request".to_owned(),
            )),
            r => Ok(r?),
        }
    }

    /// Drops the bytes of an abandoned upload (best effort).
    async fn discard(&self, l: &Loaded) {
        if let Some(u) = &l.s.mpu
            && let Err(e) = self.blobs.abort_multipart(&l.s.key, u).await
        {
            tracing::warn!(error = %e, "could not abort a multipart upload");
        }
        if let Some(staged) = &l.s.staged {
            self.forget_object(staged).await;
        }
    }

    /// Deletes an object nothing points at any more (best effort: GC
    /// collects what this misses).
    async fn forget_object(&self, key: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(error = %e, key, "could not delete an unreferenced object");
        }
    }
}

fn check_algorithm(digest: &Digest) -> Result<()> {
    if is_sha256(digest) {
        Ok(())
    } else {
        Err(RegistryError::DigestInvalid(format!(
            "{} digests are not supported for uploads; use sha256",
            digest.algorithm()
        )))
    }
}

/// The repository's link to a blob.
pub(super) fn link_item(repo: &RepoName, digest: &Digest, size: u64, key: &str) -> Item {
    Item::new(keys::repo(repo), keys::blob_link(digest))
        .with(attr::SIZE, Attr::N(size as i64))
        .with(attr::KEY, Attr::S(key.to_owned()))
}

/// Marks a blob as referenced now; fails if the blob was collected (DESIGN §6).
pub(super) fn touch_blob(digest: &Digest, now: i64) -> WriteOp {
    WriteOp::Update {
        pk: keys::blob(digest),
        sk: keys::META.to_owned(),
        set: [(attr::LAST_REFERENCED.to_owned(), Attr::N(now))].into(),
        cond: Cond::Exists,
    }
}
