//! Embedded [`BlobStore`] adapter on the local filesystem.
//!
//! Every object is a file under `root/objects/`; writes go to a temporary
//! file that is renamed into place, so a reader never sees half an object.
//! A multipart upload appends its parts, in order, to one file under
//! `root/multipart/<id>/`, with a small index of where each part ends and
//! its ETag, so completing it is a rename, not a copy. Re-uploading part `n`
//! truncates back to the end of part `n - 1` first, which makes a retried
//! request safe; every write gets a fresh ETag and writers of one upload
//! take turns, so (as on S3) completing with a part's stale ETag fails
//! instead of assembling another writer's bytes.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::blob::{BlobError, BlobStore, CompletedPart, ObjectBody};

/// The filesystem blob store.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    /// Per-upload writer locks (held weakly: gone with their last user).
    locks: std::sync::Arc<
        std::sync::Mutex<
            std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
        >,
    >,
}

fn valid_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(BlobError::Backend(format!("invalid object key {key:?}")))
    }
}

impl FsBlobStore {
    pub async fn open(root: &Path) -> Result<Self, BlobError> {
        for d in ["objects", "multipart", "tmp"] {
            tokio::fs::create_dir_all(root.join(d)).await?;
        }
        Ok(Self {
            root: root.to_owned(),
            locks: Default::default(),
        })
    }

    fn object(&self, key: &str) -> Result<PathBuf, BlobError> {
        valid_key(key)?;
        Ok(self.root.join("objects").join(key))
    }

    fn upload_dir(&self, upload_id: &str) -> Result<PathBuf, BlobError> {
        if upload_id.is_empty()
            || !upload_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(BlobError::NoSuchUpload);
        }
        Ok(self.root.join("multipart").join(upload_id))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    async fn place(&self, tmp: &Path, key: &str) -> Result<(), BlobError> {
        let dest = self.object(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(tmp, &dest).await?;
        Ok(())
    }

    /// The parts written so far: where each ends, and its ETag; one
    /// `<end> <etag>` a line.
    async fn parts(dir: &Path) -> Result<Vec<(u64, String)>, BlobError> {
        let text = match tokio::fs::read_to_string(dir.join("parts")).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NoSuchUpload);
            }
            Err(e) => return Err(e.into()),
        };
        let corrupt = || BlobError::Backend(format!("corrupt part index in {}", dir.display()));
        text.lines()
            .map(|l| {
                let (end, etag) = l.split_once(' ').ok_or_else(corrupt)?;
                Ok((end.parse::<u64>().map_err(|_| corrupt())?, etag.to_owned()))
            })
            .collect()
    }

    /// One writer at a time per multipart upload: concurrent requests for
    /// the same part would otherwise interleave their bytes.
    async fn lock_upload(&self, upload_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.retain(|_, l| l.strong_count() > 0);
            match locks.get(upload_id).and_then(std::sync::Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(upload_id.to_owned(), std::sync::Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        self.object(key)?;
        let tmp = self.tmp_path();
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&data).await?;
        f.sync_all().await?;
        drop(f);
        self.place(&tmp, key).await
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, BlobError> {
        let mut f = tokio::fs::File::open(self.object(key)?).await?;
        let total_size = f.metadata().await?.len();
        let (start, len) = match range {
            None => (0, total_size),
            Some((s, e)) if s <= e && s < total_size => (s, e.min(total_size - 1) - s + 1),
            Some(_) => return Err(BlobError::InvalidRange),
        };
        f.seek(SeekFrom::Start(start)).await?;
        let body = ReaderStream::with_capacity(f.take(len), 256 * 1024);
        Ok(ObjectBody {
            total_size,
            body: Box::pin(body),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.object(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.object(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BlobError> {
        // Walk the tree under objects/; fine for the embedded store's sizes
        // (operators' tools and GC, never a request path).
        let base = self.root.join("objects");
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            while let Some(entry) = rd.next_entry().await? {
                let path = entry.path();
                if entry.file_type().await?.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&base) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        out.truncate(limit);
        Ok(out)
    }

    async fn create_multipart(&self, key: &str) -> Result<String, BlobError> {
        self.object(key)?;
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.upload_dir(&id)?;
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("key"), key).await?;
        tokio::fs::File::create(dir.join("data")).await?;
        tokio::fs::write(dir.join("parts"), "").await?;
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String, BlobError> {
        let dir = self.upload_dir(upload_id)?;
        let _writer = self.lock_upload(upload_id).await;
        let mut parts = Self::parts(&dir).await?;
        let n = number as usize;
        if n == 0 || n > parts.len() + 1 {
            return Err(BlobError::Backend(format!(
                "part {number} of {key} is out of order"
            )));
        }
        parts.truncate(n - 1);
        let start = parts.last().map_or(0, |(end, _)| *end);
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("data"))
            .await?;
        f.set_len(start).await?;
        f.seek(SeekFrom::Start(start)).await?;
        f.write_all(&data).await?;
        f.flush().await?;
        // A fresh ETag per write, as S3's differs per content: completing
        // with the ETag of a part since overwritten fails.
        let etag = format!("\"{number}-{}\"", uuid::Uuid::new_v4().simple());
        parts.push((start + data.len() as u64, etag.clone()));
        let index: String = parts
            .iter()
            .map(|(end, etag)| format!("{end} {etag}\n"))
            .collect();
        tokio::fs::write(dir.join("parts"), index).await?;
        Ok(etag)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let dir = self.upload_dir(upload_id)?;
        let _writer = self.lock_upload(upload_id).await;
        let written = Self::parts(&dir).await?;
        let matches = parts.len() == written.len()
            && parts
                .iter()
                .zip(&written)
                .enumerate()
                .all(|(i, (p, (_, etag)))| p.number as usize == i + 1 && &p.etag == etag);
        if parts.is_empty() || !matches {
            return Err(BlobError::PartsMismatch);
        }
        let data = dir.join("data");
        tokio::fs::File::open(&data).await?.sync_all().await?;
        self.place(&data, key).await?;
        tokio::fs::remove_dir_all(&dir).await?;
        Ok(())
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_dir_all(self.upload_dir(upload_id)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn presign_get(&self, _key: &str, _ttl: Duration) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    fn min_part_size(&self) -> u64 {
        0
    }
}
