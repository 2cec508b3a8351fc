//! Embedded [`BlobStore`] adapter on the local filesystem.
//!
//! Every object is a file under `root/objects/`; writes go to a temporary
//! file that is renamed into place, so a reader never sees half an object.
//! A multipart upload appends its parts, in order, to one file under
//! `root/multipart/<id>/`, with a small index of where each part ends, so
//! completing it is a rename, not a copy. Re-uploading part `n` truncates
//! back to the end of part `n - 1` first, which makes a retried request safe.

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

    /// Part end offsets, one decimal number a line.
    async fn part_ends(dir: &Path) -> Result<Vec<u64>, BlobError> {
        let text = match tokio::fs::read_to_string(dir.join("parts")).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NoSuchUpload);
            }
            Err(e) => return Err(e.into()),
        };
        text.lines()
            .map(|l| {
                l.parse::<u64>()
                    .map_err(|e| BlobError::Backend(e.to_string()))
            })
            .collect()
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
        let mut ends = Self::part_ends(&dir).await?;
        let n = number as usize;
        if n == 0 || n > ends.len() + 1 {
            return Err(BlobError::Backend(format!(
                "part {number} of {key} is out of order"
            )));
        }
        ends.truncate(n - 1);
        let start = ends.last().copied().unwrap_or(0);
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("data"))
            .await?;
        f.set_len(start).await?;
        f.seek(SeekFrom::Start(start)).await?;
        f.write_all(&data).await?;
        f.flush().await?;
        ends.push(start + data.len() as u64);
        let index: String = ends.iter().map(|e| format!("{e}\n")).collect();
        tokio::fs::write(dir.join("parts"), index).await?;
        Ok(format!("{number}-{}", data.len()))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let dir = self.upload_dir(upload_id)?;
        let ends = Self::part_ends(&dir).await?;
        let in_order = parts
            .iter()
            .enumerate()
            .all(|(i, p)| p.number as usize == i + 1);
        if parts.is_empty() || !in_order || parts.len() != ends.len() {
            return Err(BlobError::Backend(format!(
                "parts of {key} do not match the upload"
            )));
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
