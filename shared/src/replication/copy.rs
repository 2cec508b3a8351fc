//! The copy of one artifact from one side to the other, in the order that
//! keeps the destination consistent at every step (so a copy killed at
//! any point leaves nothing half-visible, and running it again finishes
//! it):
//!
//! 1. an index's children, each with its blobs, before the index;
//! 2. a manifest's blobs (config and layers) before the manifest: each
//!    skipped when the destination has it (`HEAD`), else mounted when the
//!    destination can (this registry mounts any blob it holds; another
//!    one from a repository an earlier copy put it in, [`BlobHints`]),
//!    else streamed from the source;
//! 3. the manifest, by digest (untagged, so no client sees it yet);
//! 4. referrers (signatures, SBOMs) after their subject, the same way,
//!    and cosign's tag-scheme ones (`sha256-<hex>.sig`) with their tags;
//! 5. the tags last: a tag that names another digest at the destination
//!    is moved only when the policy says `override`.
//!
//! A manifest the destination already has is not walked again: a
//! registry holds a manifest only with everything it references.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::adapter::{Adapter, AdapterError, Result, counted, throttled};
use crate::oci::Digest;
use crate::oci::manifest::parse_manifest;
use crate::store::ByteStream;

/// Chunk size of a chunked blob copy: below API Gateway's 10 MiB request
/// limit.
pub const DEFAULT_CHUNK: usize = 8 * 1024 * 1024;

/// Deepest nesting followed (index → manifest → referrer → …).
const MAX_DEPTH: usize = 8;

/// What a copy did.
#[derive(Debug, Default)]
pub struct Copied {
    pub blobs_copied: i64,
    pub blobs_skipped: i64,
    pub blobs_mounted: i64,
    pub manifests_copied: i64,
    pub manifests_skipped: i64,
    pub tags_set: i64,
    /// Tags left alone because they name something else (no override).
    pub tags_kept: i64,
    /// Bytes streamed.
    pub bytes: Arc<AtomicU64>,
    /// What happened, a line each.
    pub log: Vec<String>,
}

impl Copied {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Says whether to go on (a stopped execution copies nothing more).
#[async_trait::async_trait]
pub trait Proceed: Send + Sync {
    async fn proceed(&self) -> bool;
}

/// Always goes on.
pub struct Always;

#[async_trait::async_trait]
impl Proceed for Always {
    async fn proceed(&self) -> bool {
        true
    }
}

/// Where the destination already holds a blob (a repository an earlier
/// copy put it in), so it can be mounted rather than sent again.
#[async_trait::async_trait]
pub trait BlobHints: Send + Sync {
    /// A destination repository that holds `digest`, if one is known.
    async fn holder(&self, digest: &Digest) -> Option<String>;
    /// Notes that `repo` at the destination now holds `digest`.
    async fn note(&self, digest: &Digest, repo: &str);
}

/// Knows nothing.
pub struct NoHints;

#[async_trait::async_trait]
impl BlobHints for NoHints {
    async fn holder(&self, _: &Digest) -> Option<String> {
        None
    }

    async fn note(&self, _: &Digest, _: &str) {}
}

/// One artifact copy: from `src_repo` on `src` to `dst_repo` on `dst`.
pub struct Copy<'a> {
    pub src: &'a dyn Adapter,
    pub dst: &'a dyn Adapter,
    pub src_repo: &'a str,
    pub dst_repo: &'a str,
    /// Move destination tags that name another digest.
    pub override_tags: bool,
    pub proceed: &'a dyn Proceed,
    pub hints: &'a dyn BlobHints,
    /// Send blobs in chunks of this many bytes (Harbor's `copy_by_chunk`).
    pub chunk: Option<usize>,
    /// Send at most this many KiB per second (Harbor's `speed`).
    pub speed: Option<u64>,
}

/// The copy was stopped at a check point.
pub fn stopped() -> AdapterError {
    AdapterError::Other("stopped".to_owned())
}

impl Copy<'_> {
    /// Copies `digest` with its children, blobs and referrers, then sets
    /// `tags` on it.
    pub async fn artifact(&self, digest: &Digest, tags: &[String], out: &mut Copied) -> Result<()> {
        self.dst.prepare(self.dst_repo).await?;
        let mut seen = HashSet::new();
        self.manifest(digest, 0, &mut seen, out).await?;
        // cosign's tag-scheme signatures and attestations, after their
        // subject like referrers.
        for tag in self.src.accessory_tags(self.src_repo, digest).await? {
            if let Some(d) = self.src.head_manifest(self.src_repo, &tag).await? {
                self.manifest(&d, 1, &mut seen, out).await?;
                self.tag(&d, &tag, out).await?;
            }
        }
        for tag in tags {
            self.tag(digest, tag, out).await?;
        }
        Ok(())
    }

    /// Copies one manifest (children and blobs first), then its referrers.
    async fn manifest(
        &self,
        digest: &Digest,
        depth: usize,
        seen: &mut HashSet<Digest>,
        out: &mut Copied,
    ) -> Result<()> {
        if depth > MAX_DEPTH || !seen.insert(digest.clone()) {
            return Ok(());
        }
        if !self.proceed.proceed().await {
            return Err(stopped());
        }
        let reference = digest.to_string();
        if self
            .dst
            .head_manifest(self.dst_repo, &reference)
            .await?
            .is_some()
        {
            out.manifests_skipped += 1;
        } else {
            let m = self
                .src
                .manifest(self.src_repo, &reference)
                .await?
                .ok_or_else(|| {
                    AdapterError::Other(format!(
                        "{}@{digest} is not in the source any more",
                        self.src_repo
                    ))
                })?;
            let media_type = (!m.media_type.is_empty()).then_some(m.media_type.as_str());
            let parsed = parse_manifest(media_type, &m.bytes)
                .map_err(|e| AdapterError::Other(format!("{}@{digest}: {e}", self.src_repo)))?;
            for child in &parsed.children {
                Box::pin(self.manifest(&child.digest, depth + 1, seen, out)).await?;
            }
            for blob in &parsed.blobs {
                self.blob(&blob.digest, blob.size, out).await?;
            }
            let media_type = media_type.unwrap_or(parsed.kind.media_type());
            self.dst
                .put_manifest(self.dst_repo, &reference, media_type, m.bytes.clone())
                .await?;
            out.manifests_copied += 1;
            out.log
                .push(format!("copied manifest {}@{digest}", self.dst_repo));
        }
        for r in self.src.referrers(self.src_repo, digest).await? {
            Box::pin(self.manifest(&r, depth + 1, seen, out)).await?;
        }
        Ok(())
    }

    /// Gets one blob to the destination: already there, mounted, or
    /// streamed.
    async fn blob(&self, digest: &Digest, size: u64, out: &mut Copied) -> Result<()> {
        if !self.proceed.proceed().await {
            return Err(stopped());
        }
        if self.dst.has_blob(self.dst_repo, digest).await? {
            out.blobs_skipped += 1;
            return Ok(());
        }
        let holder = self.hints.holder(digest).await;
        if self
            .dst
            .mount_blob(self.dst_repo, digest, holder.as_deref())
            .await?
        {
            out.blobs_mounted += 1;
            self.hints.note(digest, self.dst_repo).await;
            return Ok(());
        }
        self.send_blob(digest, size, out).await?;
        out.blobs_copied += 1;
        self.hints.note(digest, self.dst_repo).await;
        out.log.push(format!(
            "copied blob {digest} ({size} bytes) to {}",
            self.dst_repo
        ));
        Ok(())
    }

    /// A blob's bytes from the source, counted and held to the policy's
    /// speed.
    async fn source_blob(&self, digest: &Digest, out: &Copied) -> Result<ByteStream> {
        let (_, body) = self.src.blob(self.src_repo, digest).await?;
        let body = counted(body, out.bytes.clone());
        Ok(match self.speed {
            Some(kib) => throttled(body, kib),
            None => body,
        })
    }

    /// Streams a blob from the source: whole, or in chunks when the policy
    /// says so or the destination refuses it whole (`413`).
    async fn send_blob(&self, digest: &Digest, size: u64, out: &mut Copied) -> Result<()> {
        let body = self.source_blob(digest, out).await?;
        let whole = match self.chunk {
            Some(chunk) => {
                return self
                    .dst
                    .put_blob_chunked(self.dst_repo, digest, size, body, chunk)
                    .await;
            }
            None => self.dst.put_blob(self.dst_repo, digest, size, body).await,
        };
        match whole {
            Err(e) if e.is_too_large() => {
                out.log.push(format!(
                    "{digest} refused whole ({e}); sending it in chunks of {DEFAULT_CHUNK} bytes"
                ));
                let body = self.source_blob(digest, out).await?;
                self.dst
                    .put_blob_chunked(self.dst_repo, digest, size, body, DEFAULT_CHUNK)
                    .await
            }
            r => r,
        }
    }

    /// Points `tag` at `digest` at the destination, unless it names
    /// something else there and tags are not overridden.
    async fn tag(&self, digest: &Digest, tag: &str, out: &mut Copied) -> Result<()> {
        match self.dst.head_manifest(self.dst_repo, tag).await? {
            Some(d) if &d == digest => return Ok(()),
            Some(d) if !self.override_tags => {
                out.tags_kept += 1;
                out.log.push(format!(
                    "tag {}:{tag} names {d} at the destination; left alone (override is off)",
                    self.dst_repo
                ));
                return Ok(());
            }
            _ => {}
        }
        let m = self
            .src
            .manifest(self.src_repo, digest.as_ref())
            .await?
            .ok_or_else(|| {
                AdapterError::Other(format!(
                    "{}@{digest} is gone from the source",
                    self.src_repo
                ))
            })?;
        let media_type = if m.media_type.is_empty() {
            parse_manifest(None, &m.bytes)
                .map(|p| p.kind.media_type())
                .unwrap_or_default()
                .to_owned()
        } else {
            m.media_type
        };
        self.dst
            .put_manifest(self.dst_repo, tag, &media_type, m.bytes)
            .await?;
        out.tags_set += 1;
        out.log
            .push(format!("tagged {}:{tag} -> {digest}", self.dst_repo));
        Ok(())
    }
}

/// Deletes `digest` from `repo` on `dst` (delete propagation); false when
/// it was not there.
pub async fn delete(dst: &dyn Adapter, repo: &str, digest: &Digest) -> Result<bool> {
    dst.delete_manifest(repo, digest).await
}
