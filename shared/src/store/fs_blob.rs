//! Embedded [`BlobStore`] adapter on the local filesystem.
//!
//! ```text
//! root/objects/<key>            finished objects, one file each
//! root/multipart/<id>/data      the parts of an upload, appended in order
//! root/multipart/<id>/parts     the part index: one `<end> <etag>\n` a part
//! root/multipart/<id>/key       the object key (for operators)
//! root/tmp/                     files and directories being built or removed
//! ```
//!
//! An object is written to a file under `tmp/` and renamed into place, so a
//! reader never sees half an object. A multipart upload appends its parts,
//! in order, to one `data` file, so completing it is a rename, not a copy.
//! Re-uploading part `n` truncates back to the end of part `n - 1` first,
//! which makes a retried request safe; every write gets a fresh ETag and
//! writers of one upload take turns (in this process), so (as on S3)
//! completing with a part's stale ETag fails instead of assembling another
//! writer's bytes. Completing may name a prefix `1..=k` of the parts written
//! (S3 accepts a subset): the data is cut at the end of part `k`. Parts
//! can only be appended, so a part number past the next one, or a
//! completion naming anything but a prefix, is [`BlobError::PartsMismatch`].
//!
//! # Crash consistency
//!
//! The process may die at any instant (`kill -9`, OOM) and the machine may
//! lose power; what is on disk must then still make sense, and what a call
//! reported as done must still be there. The rules:
//!
//! - **Nothing is rewritten in place.** A file that becomes visible is
//!   complete and fsynced, then renamed into place, then its directory is
//!   fsynced before the call returns (for an object, every directory from
//!   its parent up to `objects/`, so that newly created ones are durable
//!   too). A new upload's directory is built under `tmp/` and renamed into
//!   `multipart/` whole. An upload being removed is first renamed into
//!   `tmp/`, so it is either whole or gone.
//! - **The part index is the truth** about an upload. It is replaced as a
//!   whole (`parts.new`, fsync, rename over `parts`, fsync the directory), so
//!   it is always one complete version. Invariant: every part the index
//!   names has its bytes in `data` at the offsets it names, and those bytes
//!   are not touched while the index names them; bytes past the last
//!   indexed part are leftovers of an interrupted write and mean nothing.
//!
//! `upload_part(n)` keeps the invariant at every instant:
//!
//! 1. if part `n` replaces written parts, the index is first cut to parts
//!    `1..n` (atomically, as above) — a crash before the rename leaves the
//!    old state, after it parts `n..` are simply unwritten, bytes intact;
//! 2. `data` is cut to the end of part `n - 1`, the part is written and
//!    fsynced — this only touches bytes past the indexed parts;
//! 3. the index naming part `n` replaces the old one — before the rename the
//!    new bytes are leftovers, after it they are part `n`, already durable
//!    because the data was fsynced before the index was renamed;
//! 4. only then is the ETag returned, so a caller never holds an ETag whose
//!    part the index does not name (a later rewrite can drop it: completing
//!    with it is then `PartsMismatch`).
//!
//! `complete_multipart(1..=k)`:
//!
//! 1. if `k` is less than the parts written, the index is first cut to `k`;
//! 2. `data` is cut to the end of part `k` and fsynced;
//! 3. `data` is renamed to `objects/<key>` and the directories fsynced: the
//!    object appears whole, or not at all;
//! 4. the upload's directory is renamed into `tmp/` and removed.
//!
//! A crash between 3 and 4 leaves an index without `data`: completing again
//! with the same parts finds the object in place, with the size the index
//! promises, and succeeds; writing a part answers `NoSuchUpload`.
//!
//! Older versions rewrote the index in place, so a crash could leave it
//! truncated or ending in half a line. A last line without its newline is
//! ignored: the data was written before the index, so what remains is a
//! prefix of the parts, which the invariant allows (the registry's session
//! then names more parts than the store has, and its next request is a
//! `PartsMismatch`, a client error, instead of a server error forever).
//!
//! Leftovers of a crash under `tmp/` are removed when the store is opened,
//! once they are an hour old (no write takes that long, so nothing in
//! progress is removed). `kill -9` does not drop the page cache, so only a
//! power loss or kernel crash makes the fsyncs matter; the ordering above is
//! what makes the state consistent at every instant either way.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::blob::{BlobError, BlobStore, CompletedPart, ObjectBody};

/// How old a leftover under `tmp/` must be before [`FsBlobStore::open`]
/// removes it.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

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

/// What the part index says: where each part ends in `data`, and its ETag.
type PartIndex = Vec<(u64, String)>;

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

/// Runs blocking filesystem work (a sequence of writes, fsyncs and renames)
/// on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, BlobError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BlobError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::Backend(format!("blob store task failed: {e}")))?
}

/// Makes the entries of `dir` (creations, renames) durable.
fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    // Only Unix lets a directory be opened and fsynced; elsewhere renames
    // are as durable as the filesystem makes them.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `contents` to a new file at `path` and fsyncs it.
fn write_synced(path: &Path, contents: &[u8]) -> Result<(), BlobError> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(contents)?;
    f.sync_data()?;
    Ok(())
}

/// Replaces `dir/parts` with `parts`, atomically and durably.
fn write_index(dir: &Path, parts: &[(u64, String)]) -> Result<(), BlobError> {
    let text: String = parts
        .iter()
        .map(|(end, etag)| format!("{end} {etag}\n"))
        .collect();
    // One writer per upload at a time, so a fixed name is enough; a file
    // left by a crash is simply overwritten.
    let new = dir.join("parts.new");
    write_synced(&new, text.as_bytes())?;
    std::fs::rename(&new, dir.join("parts"))?;
    sync_dir(dir)
}

/// Reads `dir/parts`; `NoSuchUpload` if there is none.
fn read_index(dir: &Path) -> Result<PartIndex, BlobError> {
    let text = match std::fs::read_to_string(dir.join("parts")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BlobError::NoSuchUpload);
        }
        Err(e) => return Err(e.into()),
    };
    parse_index(&text)
        .ok_or_else(|| BlobError::Backend(format!("corrupt part index in {}", dir.display())))
}

/// Parses an index; `None` if a complete line is malformed. A last line
/// without its newline (a torn in-place write of an older version) is not
/// part of the index.
fn parse_index(text: &str) -> Option<PartIndex> {
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    let mut parts = PartIndex::new();
    for line in complete.lines() {
        let (end, etag) = line.split_once(' ')?;
        let end = end.parse::<u64>().ok()?;
        if etag.is_empty() || parts.last().is_some_and(|(prev, _)| *prev > end) {
            return None;
        }
        parts.push((end, etag.to_owned()));
    }
    Some(parts)
}

/// Opens an upload's `data` for writing; `NoSuchUpload` if it is gone.
fn open_data(dir: &Path) -> Result<std::fs::File, BlobError> {
    match std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("data"))
    {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NoSuchUpload),
        Err(e) => Err(e.into()),
    }
}

/// Cuts `f` to `len` bytes, which the index says it holds at least.
fn cut_data(f: &std::fs::File, len: u64, dir: &Path) -> Result<(), BlobError> {
    let have = f.metadata()?.len();
    if have < len {
        return Err(BlobError::Backend(format!(
            "{} holds {have} bytes but its index names {len}",
            dir.join("data").display()
        )));
    }
    f.set_len(len)?;
    Ok(())
}

/// Renames `from` into the directory `into` under a fresh name and removes
/// it there: a directory is whole or gone, never half removed. A missing
/// `from` is not an error.
fn remove_dir(from: &Path, into: &Path) -> Result<(), BlobError> {
    let doomed = into.join(uuid::Uuid::new_v4().simple().to_string());
    match std::fs::rename(from, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if let Some(parent) = from.parent() {
        sync_dir(parent)?;
    }
    std::fs::remove_dir_all(&doomed)?;
    Ok(())
}

/// Removes a completed upload's directory. The object is in place, so this
/// is cleanup: a failure is logged, not returned.
fn forget_upload(dir: &Path, tmp: &Path) {
    if let Err(e) = remove_dir(dir, tmp) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot remove a completed upload");
    }
}

/// Removes entries of `dir` last modified longer than `max_age` ago (best
/// effort); returns how many went. With `recurse`, looks into the
/// subdirectories that stay, and removes them once empty.
fn sweep_old(dir: &Path, max_age: Duration, recurse: bool) -> Result<u64, BlobError> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > max_age);
        let path = entry.path();
        if meta.is_dir() && recurse {
            removed += sweep_old(&path, max_age, true)?;
            // An old directory goes once empty (a young one may be about to
            // receive an object).
            if old {
                let _ = std::fs::remove_dir(&path);
            }
            continue;
        }
        if !old {
            continue;
        }
        let gone = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot remove a leftover")
            }
        }
    }
    Ok(removed)
}

/// Removes entries of `tmp` older than `max_age` (best effort).
fn sweep_tmp(tmp: &Path, max_age: Duration) -> Result<(), BlobError> {
    sweep_old(tmp, max_age, false).map(drop)
}

impl FsBlobStore {
    /// Opens (or creates) the store under `root`, removing old leftovers of
    /// interrupted writes.
    pub async fn open(root: &Path) -> Result<Self, BlobError> {
        let root = root.to_owned();
        let store = Self {
            root: root.clone(),
            locks: Default::default(),
        };
        blocking(move || {
            for d in ["objects", "multipart", "tmp"] {
                std::fs::create_dir_all(root.join(d))?;
            }
            sync_dir(&root)?;
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            sweep_tmp(&root.join("tmp"), TMP_MAX_AGE)
        })
        .await?;
        Ok(store)
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

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn tmp_path(&self) -> PathBuf {
        self.tmp_dir()
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Renames the complete, fsynced file `from` to `dest` (an object path)
    /// and makes the rename durable, with any directories it needed.
    fn place(objects: &Path, from: &Path, dest: &Path) -> Result<(), BlobError> {
        let parent = dest
            .parent()
            .ok_or_else(|| BlobError::Backend(format!("{} has no parent", dest.display())))?;
        std::fs::create_dir_all(parent)?;
        std::fs::rename(from, dest)?;
        // The new entry, and those of directories just created (here or by
        // a concurrent writer): fsyncing a directory with nothing new is
        // cheap.
        for dir in parent.ancestors() {
            sync_dir(dir)?;
            if dir == objects || !dir.starts_with(objects) {
                break;
            }
        }
        Ok(())
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
        let dest = self.object(key)?;
        let tmp = self.tmp_path();
        let objects = self.root.join("objects");
        blocking(move || {
            write_synced(&tmp, &data)?;
            let placed = Self::place(&objects, &tmp, &dest);
            if placed.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            placed
        })
        .await
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
        let building = self.tmp_path();
        let key = key.to_owned();
        blocking(move || {
            std::fs::create_dir(&building)?;
            let built = (|| {
                write_synced(&building.join("key"), key.as_bytes())?;
                write_synced(&building.join("data"), b"")?;
                write_synced(&building.join("parts"), b"")?;
                sync_dir(&building)?;
                std::fs::rename(&building, &dir)?;
                match dir.parent() {
                    Some(multipart) => sync_dir(multipart),
                    None => Ok(()),
                }
            })();
            if built.is_err() {
                let _ = std::fs::remove_dir_all(&building);
            }
            built
        })
        .await?;
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
        let key = key.to_owned();
        blocking(move || {
            let mut parts = read_index(&dir)?;
            let n = number as usize;
            if n == 0 {
                return Err(BlobError::Backend(format!(
                    "part numbers start at 1, not 0 ({key})"
                )));
            }
            if n > parts.len() + 1 {
                // Part n - 1 is not stored (an interrupted request's part
                // was dropped, or a concurrent writer replaced it): this
                // upload cannot continue.
                return Err(BlobError::PartsMismatch);
            }
            let mut f = open_data(&dir)?;
            if n <= parts.len() {
                // Forget the parts being replaced before touching their bytes.
                parts.truncate(n - 1);
                write_index(&dir, &parts)?;
            }
            let start = parts.last().map_or(0, |(end, _)| *end);
            cut_data(&f, start, &dir)?;
            f.seek(SeekFrom::Start(start))?;
            f.write_all(&data)?;
            f.sync_data()?;
            // A fresh ETag per write, as S3's differs per content: completing
            // with the ETag of a part since overwritten fails.
            let etag = format!("\"{number}-{}\"", uuid::Uuid::new_v4().simple());
            parts.push((start + data.len() as u64, etag.clone()));
            write_index(&dir, &parts)?;
            Ok(etag)
        })
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let dir = self.upload_dir(upload_id)?;
        let dest = self.object(key)?;
        let _writer = self.lock_upload(upload_id).await;
        let named = parts.to_vec();
        let objects = self.root.join("objects");
        let tmp = self.tmp_dir();
        blocking(move || {
            let written = read_index(&dir)?;
            let k = named.len();
            let prefix = k > 0
                && k <= written.len()
                && named
                    .iter()
                    .zip(&written)
                    .enumerate()
                    .all(|(i, (p, (_, etag)))| p.number as usize == i + 1 && &p.etag == etag);
            if !prefix {
                return Err(BlobError::PartsMismatch);
            }
            let end = written[k - 1].0;
            let f = match open_data(&dir) {
                Ok(f) => f,
                // Placed before a crash, not yet cleaned up: done already.
                Err(BlobError::NoSuchUpload)
                    if std::fs::metadata(&dest).is_ok_and(|m| m.len() == end) =>
                {
                    forget_upload(&dir, &tmp);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if k < written.len() {
                write_index(&dir, &written[..k])?;
            }
            cut_data(&f, end, &dir)?;
            f.sync_data()?;
            drop(f);
            Self::place(&objects, &dir.join("data"), &dest)?;
            forget_upload(&dir, &tmp);
            Ok(())
        })
        .await
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), BlobError> {
        let dir = self.upload_dir(upload_id)?;
        let _writer = self.lock_upload(upload_id).await;
        let tmp = self.tmp_dir();
        blocking(move || remove_dir(&dir, &tmp)).await
    }

    async fn presign_get(&self, _key: &str, _ttl: Duration) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    fn min_part_size(&self) -> u64 {
        0
    }

    /// The bucket's lifecycle rules, on the filesystem: unfinished
    /// multipart uploads (a directory's time changes with every part) and
    /// staged objects older than `older_than`, and old leftovers in `tmp/`.
    async fn expire_abandoned(&self, older_than: Duration) -> Result<u64, BlobError> {
        let root = self.root.clone();
        blocking(move || {
            sweep_tmp(&root.join("tmp"), TMP_MAX_AGE)?;
            let uploads = sweep_old(&root.join("multipart"), older_than, false)?;
            let staged = sweep_old(&root.join("objects").join("uploads"), older_than, true)?;
            Ok(uploads + staged)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::blob::read_all;

    async fn store() -> (tempfile::TempDir, FsBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        (dir, store)
    }

    fn bytes(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    fn part(number: u32, etag: &str) -> CompletedPart {
        CompletedPart {
            number,
            etag: etag.to_owned(),
        }
    }

    /// Uploads `sizes.len()` parts; returns the upload id, its directory,
    /// the completed parts and all the bytes.
    async fn upload(
        s: &FsBlobStore,
        key: &str,
        sizes: &[usize],
    ) -> (String, PathBuf, Vec<CompletedPart>, Vec<u8>) {
        let id = s.create_multipart(key).await.unwrap();
        let mut done = Vec::new();
        let mut all = Vec::new();
        for (i, len) in sizes.iter().enumerate() {
            let n = i as u32 + 1;
            let b = bytes(*len, n as u8);
            all.extend_from_slice(&b);
            done.push(part(n, &s.upload_part(key, &id, n, b).await.unwrap()));
        }
        let dir = s.upload_dir(&id).unwrap();
        (id, dir, done, all)
    }

    #[test]
    fn index_parsing_drops_a_torn_last_line_only() {
        assert_eq!(parse_index(""), Some(vec![]));
        assert_eq!(
            parse_index("10 \"1-a\"\n25 \"2-b\"\n"),
            Some(vec![(10, "\"1-a\"".to_owned()), (25, "\"2-b\"".to_owned())])
        );
        assert_eq!(
            parse_index("10 \"1-a\"\n2"),
            Some(vec![(10, "\"1-a\"".to_owned())])
        );
        assert_eq!(parse_index("10"), Some(vec![]));
        assert_eq!(parse_index("x \"1-a\"\n"), None);
        assert_eq!(parse_index("10\n"), None);
        assert_eq!(parse_index("10 \"1-a\"\n5 \"2-b\"\n"), None);
    }

    #[tokio::test]
    async fn the_index_is_replaced_never_rewritten() {
        let (_d, s) = store().await;
        let (_, dir, done, _) = upload(&s, "k/a", &[10, 20]).await;
        let text = std::fs::read_to_string(dir.join("parts")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        assert!(text.contains(&done[1].etag));
        assert!(!dir.join("parts.new").exists());
    }

    /// A crash after a part's bytes were written but before the index named
    /// them: the bytes are leftovers, and the part can be written again.
    #[tokio::test]
    async fn leftover_bytes_past_the_index_are_ignored() {
        let (_d, s) = store().await;
        let (id, dir, mut done, mut all) = upload(&s, "k/b", &[10, 20]).await;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data"))
            .unwrap();
        f.write_all(&[0xEE; 77]).unwrap();
        std::fs::write(dir.join("parts.new"), "garbage").unwrap();
        let b = bytes(5, 3);
        all.extend_from_slice(&b);
        done.push(part(3, &s.upload_part("k/b", &id, 3, b).await.unwrap()));
        s.complete_multipart("k/b", &id, &done).await.unwrap();
        assert_eq!(read_all(&s, "k/b").await.unwrap(), all);
    }

    /// A crash while replacing part 2 after the index was cut: part 2 is
    /// gone, part 1 intact; the registry's session, which named part 2,
    /// gets a client error.
    #[tokio::test]
    async fn an_interrupted_rewrite_leaves_a_prefix() {
        let (_d, s) = store().await;
        let (id, dir, done, all) = upload(&s, "k/c", &[10, 20]).await;
        write_index(&dir, &read_index(&dir).unwrap()[..1]).unwrap();
        assert_eq!(
            s.upload_part("k/c", &id, 3, bytes(1, 1)).await,
            Err(BlobError::PartsMismatch)
        );
        assert_eq!(
            s.complete_multipart("k/c", &id, &done).await,
            Err(BlobError::PartsMismatch)
        );
        s.complete_multipart("k/c", &id, &done[..1]).await.unwrap();
        assert_eq!(read_all(&s, "k/c").await.unwrap(), all[..10]);
    }

    /// An index torn by an older version's in-place write: its complete
    /// lines still count, the rest is a client error, not a server error.
    #[tokio::test]
    async fn a_torn_index_from_an_older_version_is_a_prefix() {
        let (_d, s) = store().await;
        let (id, dir, done, all) = upload(&s, "k/d", &[10, 20, 30]).await;
        let text = std::fs::read_to_string(dir.join("parts")).unwrap();
        let cut = text.find('\n').unwrap() + 4;
        std::fs::write(dir.join("parts"), &text[..cut]).unwrap();
        assert_eq!(
            s.upload_part("k/d", &id, 4, bytes(1, 1)).await,
            Err(BlobError::PartsMismatch)
        );
        let etag = s.upload_part("k/d", &id, 2, bytes(20, 2)).await.unwrap();
        s.complete_multipart("k/d", &id, &[done[0].clone(), part(2, &etag)])
            .await
            .unwrap();
        assert_eq!(read_all(&s, "k/d").await.unwrap(), all[..30]);
    }

    #[tokio::test]
    async fn completing_with_a_prefix_cuts_the_rest() {
        let (_d, s) = store().await;
        let (id, dir, done, all) = upload(&s, "k/e", &[10, 20, 30]).await;
        s.complete_multipart("k/e", &id, &done[..2]).await.unwrap();
        assert_eq!(read_all(&s, "k/e").await.unwrap(), all[..30]);
        assert!(!dir.exists());
        assert_eq!(
            s.upload_part("k/e", &id, 3, bytes(1, 1)).await,
            Err(BlobError::NoSuchUpload)
        );
    }

    #[tokio::test]
    async fn completion_names_exactly_a_prefix() {
        let (_d, s) = store().await;
        let (id, _, done, _) = upload(&s, "k/f", &[10, 20, 30]).await;
        let wrong_etag = [done[0].clone(), part(2, "\"2-nope\"")];
        let gap = [done[0].clone(), done[2].clone()];
        let out_of_order = [done[1].clone(), done[0].clone()];
        let renumbered = [part(2, &done[0].etag)];
        let too_many = [
            done[0].clone(),
            done[1].clone(),
            done[2].clone(),
            part(4, "\"4-x\""),
        ];
        for bad in [
            &wrong_etag[..],
            &gap,
            &out_of_order,
            &renumbered,
            &too_many,
            &[],
        ] {
            assert_eq!(
                s.complete_multipart("k/f", &id, bad).await,
                Err(BlobError::PartsMismatch),
                "{bad:?}"
            );
        }
        assert_eq!(s.head("k/f").await.unwrap(), None);
        s.complete_multipart("k/f", &id, &done).await.unwrap();
        assert_eq!(s.head("k/f").await.unwrap(), Some(60));
    }

    /// A crash after the object was renamed into place but before the
    /// upload's directory was removed: completing again succeeds.
    #[tokio::test]
    async fn completion_interrupted_after_the_rename_finishes_on_retry() {
        let (_d, s) = store().await;
        let (id, dir, done, all) = upload(&s, "k/g", &[10, 20]).await;
        let dest = s.object("k/g").unwrap();
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::rename(dir.join("data"), &dest).unwrap();
        assert_eq!(
            s.upload_part("k/g", &id, 3, bytes(1, 1)).await,
            Err(BlobError::NoSuchUpload)
        );
        s.complete_multipart("k/g", &id, &done).await.unwrap();
        assert!(!dir.exists());
        assert_eq!(read_all(&s, "k/g").await.unwrap(), all);
        assert_eq!(
            s.complete_multipart("k/g", &id, &done).await,
            Err(BlobError::NoSuchUpload)
        );
    }

    #[tokio::test]
    async fn a_part_number_past_the_next_is_a_mismatch() {
        let (_d, s) = store().await;
        let (id, _, _, _) = upload(&s, "k/h", &[10]).await;
        assert_eq!(
            s.upload_part("k/h", &id, 3, bytes(1, 1)).await,
            Err(BlobError::PartsMismatch)
        );
        assert!(matches!(
            s.upload_part("k/h", &id, 0, bytes(1, 1)).await,
            Err(BlobError::Backend(_))
        ));
    }

    #[tokio::test]
    async fn abandoned_uploads_and_staged_objects_expire_like_bucket_rules() {
        let (dir, store) = store().await;
        let nine_days_ago = std::time::SystemTime::now() - Duration::from_secs(9 * 24 * 3600);
        let age = |p: &Path| {
            std::fs::File::open(p)
                .unwrap()
                .set_modified(nine_days_ago)
                .unwrap()
        };
        let old_upload = store.create_multipart("blobs/aa/old").await.unwrap();
        let live_upload = store.create_multipart("blobs/aa/live").await.unwrap();
        store
            .put("uploads/s1/staged-old", bytes(10, 1))
            .await
            .unwrap();
        store
            .put("uploads/s2/staged-live", bytes(10, 2))
            .await
            .unwrap();
        store.put("blobs/bb/kept", bytes(10, 3)).await.unwrap();
        let objects = dir.path().join("objects");
        age(&store.upload_dir(&old_upload).unwrap());
        age(&objects.join("uploads/s1/staged-old"));
        age(&objects.join("uploads/s1"));
        age(&objects.join("blobs/bb/kept"));
        let removed = store
            .expire_abandoned(Duration::from_secs(8 * 24 * 3600))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        assert!(!store.upload_dir(&old_upload).unwrap().exists());
        assert!(store.upload_dir(&live_upload).unwrap().exists());
        assert!(
            !objects.join("uploads/s1").exists(),
            "old empty dir goes too"
        );
        assert_eq!(
            store.head("uploads/s2/staged-live").await.unwrap(),
            Some(10)
        );
        // Blobs are garbage collection's business, never the lifecycle's.
        assert_eq!(store.head("blobs/bb/kept").await.unwrap(), Some(10));
    }

    #[tokio::test]
    async fn open_sweeps_only_old_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = FsBlobStore::open(dir.path()).await.unwrap().tmp_dir();
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        std::fs::create_dir(tmp.join("old-dir")).unwrap();
        std::fs::write(tmp.join("old-dir/data"), "x").unwrap();
        std::fs::write(tmp.join("old-file"), "x").unwrap();
        std::fs::write(tmp.join("fresh"), "x").unwrap();
        for old in ["old-dir", "old-file"] {
            std::fs::File::open(tmp.join(old))
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        FsBlobStore::open(dir.path()).await.unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["fresh"]);
    }

    #[tokio::test]
    async fn abort_removes_the_upload_whole() {
        let (_d, s) = store().await;
        let (id, dir, _, _) = upload(&s, "k/i", &[10]).await;
        s.abort_multipart("k/i", &id).await.unwrap();
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        s.abort_multipart("k/i", &id).await.unwrap();
    }
}
