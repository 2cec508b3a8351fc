//! Blob uploads: monolithic, POST+PUT, chunked PATCH, cross-repository
//! mount, and the sweeper of abandoned sessions.
//!
//! Bytes stream through [`Registry::ingest`]: they are hashed as they arrive
//! and cut into multipart parts of `part_size`. What is left at the end of a
//! request becomes a part if it is at least `min_part_size`, and otherwise
//! is staged as a small object and joined with the next chunk. The hash
//! state is saved in the session, so the final PUT checks the digest
//! without reading the blob back, and completing the multipart upload puts
//! the object in place with no copy (DESIGN §4).
//!
//! # Concurrency
//!
//! Requests on one session race when a client misbehaves or retries, and
//! the rules below keep any interleaving safe:
//!
//! - Every session write is conditioned on the version that was read, and
//!   so is the transaction that ends a session: of two finishers, exactly
//!   one commits; the other is told the upload is gone.
//! - Bytes are placed under a key no other request writes: a multipart
//!   upload created by a request gets a fresh key, and so does a blob put
//!   whole. A multipart upload saved by an earlier request completes once
//!   (a second completion, or a part written after it, fails).
//! - The object `BLOB#<digest>/META` points at is never deleted here. A
//!   second copy of a stored digest is dropped only after the stored object
//!   has been seen with the right size; if it is missing or wrong, the new
//!   copy replaces it.
//! - What a failed request created (a multipart upload, staged objects,
//!   a placed object) is removed before it answers; sessions abandoned by
//!   their clients are swept after they expire ([`Registry::sweep_uploads`]).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::keys::{self, attr};
use super::usage::{self, Charges};
use super::{Registry, RegistryError, Result};
use crate::oci::{Algorithm, Digest, HashState, RepoName};
use crate::store::blob::read_all;
use crate::store::kv::TTL_ATTR;
use crate::store::{
    Attr, BlobError, ByteStream, CompletedPart, Cond, Item, KvError, Query, SkRange, WriteOp,
    now_secs,
};

/// How long a session's item outlives its expiry, so the sweeper can still
/// read what to clean up (DynamoDB removes expired items within days).
const SWEEP_GRACE_SECS: i64 = 3 * 24 * 3600;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    /// Bytes received so far.
    pub offset: u64,
}

/// What one sweep of expired upload sessions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Index entries looked at (sessions old enough to have expired).
    pub examined: u64,
    /// Expired sessions whose data and records were removed.
    pub removed: u64,
    /// Leftovers of uploads that never had a session (a monolithic upload
    /// cut off mid-way) or lost it, removed by the store's lifecycle.
    pub abandoned: u64,
}

/// The persisted upload session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    repo: String,
    /// Key of the object the multipart upload completes into.
    key: String,
    mpu: Option<String>,
    /// ETags of parts 1, 2, … in order.
    etags: Vec<String>,
    staged: Option<String>,
    offset: u64,
    hash: Vec<u8>,
    /// When the session was opened (epoch seconds).
    created: i64,
}

impl Session {
    fn new(repo: &RepoName, alg: Algorithm, created: i64) -> Self {
        Self {
            repo: repo.to_string(),
            key: String::new(),
            mpu: None,
            etags: Vec::new(),
            staged: None,
            offset: 0,
            hash: HashState::new(alg).to_bytes(),
            created,
        }
    }

    fn parts(&self) -> Vec<CompletedPart> {
        self.etags
            .iter()
            .zip(1..)
            .map(|(etag, number)| CompletedPart {
                number,
                etag: etag.clone(),
            })
            .collect()
    }
}

/// A session plus the version it was read at (0: never stored).
struct Loaded {
    id: String,
    version: i64,
    s: Session,
}

/// What this request created, to remove if it fails.
#[derive(Default)]
struct Created {
    /// A multipart upload opened by this request: (key, upload id).
    mpu: Option<(String, String)>,
    /// Staged objects written by this request.
    staged: Vec<String>,
    /// The object this request placed (completed or put whole).
    placed: Option<String>,
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn corrupt(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::UploadInvalid(format!("upload session is unreadable: {e}"))
}

fn gone() -> RegistryError {
    RegistryError::UploadGone(
        "it was finished, cancelled or changed by a concurrent request".into(),
    )
}

/// Checks a chunk's inclusive `Content-Range` against where the upload
/// stands; returns the byte count it announces.
fn check_range(range: Option<(u64, u64)>, offset: u64) -> Result<Option<u64>> {
    let Some((start, end)) = range else {
        return Ok(None);
    };
    if start != offset {
        return Err(RegistryError::RangeInvalid { offset });
    }
    match end.checked_sub(start).and_then(|d| d.checked_add(1)) {
        Some(len) => Ok(Some(len)),
        None => Err(RegistryError::RangeInvalid { offset }),
    }
}

fn check_received(announced: Option<u64>, received: u64) -> Result<()> {
    match announced {
        Some(n) if n != received => Err(RegistryError::SizeInvalid(format!(
            "Content-Range announced {n} bytes, body had {received}"
        ))),
        _ => Ok(()),
    }
}

impl Registry {
    /// Opens an upload session (`POST /blobs/uploads/`).
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadStatus> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_secs();
        let l = Loaded {
            s: Session::new(repo, Algorithm::Sha256, now),
            id,
            version: 0,
        };
        let (index_pk, index_sk) = keys::upload_index(&l.id, now);
        self.kv
            .transact(vec![
                WriteOp::Put {
                    item: self.session_item(&l, 1, now)?,
                    cond: Cond::NotExists,
                },
                WriteOp::put(Item::new(index_pk, index_sk)),
            ])
            .await?;
        Ok(UploadStatus {
            id: l.id,
            offset: 0,
        })
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
        let announced = check_range(range, l.s.offset)?;
        let old_stage = l.s.staged.clone();
        let mut created = Created::default();
        let saved = async {
            let (tail, received) = self.ingest(&mut l, body, &mut created).await?;
            check_received(announced, received)?;
            l.s.staged = None;
            if !tail.is_empty() {
                if tail.len() as u64 >= self.stage_below() {
                    self.write_part(&mut l.s, tail.freeze(), &mut created)
                        .await?;
                } else {
                    let key = keys::staged_object(&l.id);
                    created.staged.push(key.clone());
                    self.blobs.put(&key, tail.freeze()).await?;
                    l.s.staged = Some(key);
                }
            }
            self.save_session(&l).await
        }
        .await;
        if let Err(e) = saved {
            self.remove_created(created, None).await;
            return Err(e);
        }
        if let Some(old) = old_stage {
            self.forget_object(&old).await;
        }
        Ok(UploadStatus {
            id: l.id,
            offset: l.s.offset,
        })
    }

    /// Completes an upload (`PUT ?digest=`), with an optional last chunk
    /// whose inclusive `Content-Range` is `range`.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<(u64, u64)>,
        body: ByteStream,
    ) -> Result<()> {
        let alg = algorithm(digest)?;
        // One read for the session and what the commit decides on.
        let (mut l, seen) = self
            .load_session_with(repo, id, &seen_keys(repo, digest))
            .await?;
        let announced = check_range(range, l.s.offset)?;
        let old_stage = l.s.staged.clone();
        let mut created = Created::default();
        let finished = async {
            let (tail, received) = self.ingest(&mut l, body, &mut created).await?;
            check_received(announced, received)?;
            self.verify_and_place(&mut l, alg, digest, tail, &mut created)
                .await?;
            let key = created.placed.clone().unwrap_or_default();
            self.commit_blob(repo, digest, l.s.offset, &key, Some(&l), Some(seen))
                .await
        }
        .await;
        match finished {
            Ok(Committed::New) => {}
            Ok(Committed::Existing(ours)) => self.forget_object(&ours).await,
            Err(e) => {
                if matches!(
                    e,
                    RegistryError::DigestInvalid(_) | RegistryError::QuotaExceeded(_)
                ) {
                    // The content is not what the client claimed, or has
                    // no room: the session cannot be finished any more.
                    self.discard(&l).await;
                    self.end_session(&l).await;
                }
                self.remove_created(created, Some(digest)).await;
                return Err(e);
            }
        }
        if let Some(old) = old_stage {
            self.forget_object(&old).await;
        }
        Ok(())
    }

    /// A whole blob in one request (`POST ?digest=`): no session is stored,
    /// and the content is hashed with the digest's own algorithm.
    pub async fn monolithic_upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<()> {
        let alg = algorithm(digest)?;
        let mut l = Loaded {
            s: Session::new(repo, alg, now_secs()),
            id: uuid::Uuid::new_v4().simple().to_string(),
            version: 0,
        };
        let mut created = Created::default();
        let done = async {
            let seen = self.kv.batch_get(&seen_keys(repo, digest)).await?;
            let (tail, _) = self.ingest(&mut l, body, &mut created).await?;
            self.verify_and_place(&mut l, alg, digest, tail, &mut created)
                .await?;
            let key = created.placed.clone().unwrap_or_default();
            self.commit_blob(repo, digest, l.s.offset, &key, None, Some(seen))
                .await
        }
        .await;
        match done {
            Ok(Committed::New) => Ok(()),
            Ok(Committed::Existing(ours)) => {
                self.forget_object(&ours).await;
                Ok(())
            }
            Err(e) => {
                self.remove_created(created, Some(digest)).await;
                Err(e)
            }
        }
    }

    /// Abandons an upload (`DELETE`).
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        let l = self.load_session(repo, id).await?;
        match self.kv.transact(end_session_ops(&l)).await {
            Ok(()) => {
                self.discard(&l).await;
                Ok(())
            }
            Err(KvError::ConditionFailed { .. }) => Err(gone()),
            Err(e) => Err(e.into()),
        }
    }

    /// Links a blob from `from` (or, without `from`, any blob this registry
    /// holds) into `repo`. Returns false when there is nothing to mount;
    /// refuses when the project has no room for it.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        for _ in 0..5 {
            let mut lookups = seen_keys(repo, digest);
            if let Some(f) = from {
                lookups.push((keys::repo(f), keys::blob_link(digest)));
            }
            let found = self.kv.batch_get(&lookups).await?;
            // Mounting from a repository needs its link: it is what says
            // the blob may be read through that repository.
            if from.is_some() && found.get(4).is_none_or(Option::is_none) {
                return Ok(false);
            }
            let Some(meta) = &found[0] else {
                return Ok(false);
            };
            let (Some(size), Some(key)) = (meta.n(attr::SIZE), meta.s(attr::KEY)) else {
                return Ok(false);
            };
            let now = now_secs();
            let new_link = found[1].is_none();
            // The new link carries the object key META names now.
            let ops = vec![blob_record_write(
                digest,
                i64::from(new_link),
                [(attr::LAST_REFERENCED.to_owned(), Attr::N(now))].into(),
                Cond::Eq(attr::KEY.to_owned(), Attr::S(key.to_owned())),
            )];
            if self
                .link_and_commit(ops, 0, repo, digest, size, key, &found, now)
                .await?
            {
                return Ok(true);
            }
            // The blob was collected, replaced or linked meanwhile: read again.
        }
        Ok(false)
    }

    /// Removes expired upload sessions and their data: multipart uploads,
    /// staged chunks, records. `now` is the sweep's clock (epoch seconds).
    /// Idempotent; safe to run while uploads continue.
    pub async fn sweep_uploads(&self, now: i64) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        // Only sessions older than the idle TTL can have expired.
        let bound = keys::upload_index_sk(now - self.opts.upload_ttl.as_secs() as i64, "");
        for shard in keys::UPLOAD_INDEX_SHARDS {
            let mut q = Query {
                pk: keys::upload_index_pk(shard),
                range: SkRange::Between(String::new(), bound.clone()),
                limit: 100,
                after: None,
                reverse: false,
            };
            loop {
                let page = self.kv.query(&q).await?;
                for entry in &page.items {
                    report.examined += 1;
                    if self.sweep_one(entry, now).await? {
                        report.removed += 1;
                    }
                }
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
        }
        // Older than any session can be: nothing alive is touched.
        let day = std::time::Duration::from_secs(24 * 3600);
        report.abandoned = self
            .blobs
            .expire_abandoned(self.opts.upload_max_age + day)
            .await?;
        Ok(report)
    }

    /// Sweeps the session of one index entry if it has expired.
    async fn sweep_one(&self, entry: &Item, now: i64) -> Result<bool> {
        let id = entry.sk.rsplit('#').next().unwrap_or_default().to_owned();
        let drop_entry = WriteOp::delete(entry.pk.clone(), entry.sk.clone());
        let Some(item) = self.kv.get(&keys::upload(&id), keys::META).await? else {
            // Finished long ago, or removed by the store's own TTL.
            self.kv.write(drop_entry).await?;
            return Ok(false);
        };
        if item.n(attr::EXPIRES).is_some_and(|e| e > now) {
            return Ok(false);
        }
        let l = match decode_session(&id, &item) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(upload = %id, error = %e, "dropping an unreadable upload session");
                self.kv
                    .transact(vec![
                        drop_entry,
                        WriteOp::delete(keys::upload(&id), keys::META),
                    ])
                    .await?;
                return Ok(true);
            }
        };
        match self.kv.transact(end_session_ops(&l)).await {
            Ok(()) => {
                self.discard(&l).await;
                Ok(true)
            }
            // Renewed by a request meanwhile: it lives on.
            Err(KvError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Tails shorter than this are staged rather than written as parts.
    fn stage_below(&self) -> u64 {
        self.opts.min_part_size.max(self.blobs.min_part_size())
    }

    /// Streams `body` into the session: hashes it and writes full parts.
    /// Returns the unwritten tail (staged bytes first) and the body length.
    async fn ingest(
        &self,
        l: &mut Loaded,
        mut body: ByteStream,
        created: &mut Created,
    ) -> Result<(BytesMut, u64)> {
        let mut hasher = HashState::from_bytes(&l.s.hash).map_err(corrupt)?;
        let part_size = self.opts.part_size.max(self.stage_below() as usize).max(1);
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
                self.write_part(&mut l.s, part, created).await?;
            }
        }
        l.s.offset = l.s.offset.checked_add(received).ok_or_else(|| {
            RegistryError::SizeInvalid("the upload is larger than any blob can be".into())
        })?;
        l.s.hash = hasher.to_bytes();
        Ok((buf, received))
    }

    async fn write_part(&self, s: &mut Session, data: Bytes, created: &mut Created) -> Result<()> {
        if s.etags.len() >= self.opts.max_parts {
            return Err(RegistryError::SizeInvalid(format!(
                "the upload reached {} parts; send chunks of at least {} bytes",
                self.opts.max_parts, self.opts.part_size
            )));
        }
        let upload_id = match &s.mpu {
            Some(u) => u.clone(),
            None => {
                let key = keys::new_blob_object();
                let u = self.blobs.create_multipart(&key).await?;
                created.mpu = Some((key.clone(), u.clone()));
                s.key = key;
                s.mpu = Some(u.clone());
                u
            }
        };
        let number = s.etags.len() as u32 + 1;
        let etag = self
            .blobs
            .upload_part(&s.key, &upload_id, number, data)
            .await?;
        s.etags.push(etag);
        Ok(())
    }

    /// Checks the digest and puts the object in place (recorded in
    /// `created.placed`). A digest in the session's own algorithm is checked
    /// from the saved hash state before anything is placed; another
    /// algorithm is checked by reading the placed object back (the rare
    /// case: clients name content by SHA-256).
    async fn verify_and_place(
        &self,
        l: &mut Loaded,
        alg: Algorithm,
        digest: &Digest,
        tail: BytesMut,
        created: &mut Created,
    ) -> Result<()> {
        let state = HashState::from_bytes(&l.s.hash).map_err(corrupt)?;
        let same_alg = state.algorithm() == alg;
        if same_alg {
            check_digest(&state.digest(), digest)?;
        }
        let key = match l.s.mpu.clone() {
            Some(upload_id) => {
                let saved = created.mpu.is_none();
                let completed = async {
                    if !tail.is_empty() {
                        self.write_part(&mut l.s, tail.freeze(), created).await?;
                    }
                    self.blobs
                        .complete_multipart(&l.s.key, &upload_id, &l.s.parts())
                        .await
                        .map_err(RegistryError::from)
                }
                .await;
                match completed {
                    Ok(()) => {}
                    // A multipart upload saved by an earlier request is
                    // gone, but its object is in place with every byte the
                    // session holds: an earlier attempt completed it and
                    // died before recording it (its key is this session's
                    // alone). Record it now.
                    Err(RegistryError::Blob(BlobError::NoSuchUpload))
                        if saved && self.blobs.head(&l.s.key).await? == Some(l.s.offset) => {}
                    Err(e) => return Err(e),
                }
                // Completed: nothing left to abort.
                created.mpu = None;
                l.s.key.clone()
            }
            None => {
                let key = keys::new_blob_object();
                self.blobs.put(&key, tail.freeze()).await?;
                key
            }
        };
        created.placed = Some(key.clone());
        if !same_alg {
            let mut hasher = HashState::new(alg);
            let mut obj = self.blobs.get(&key, None).await?;
            while let Some(chunk) = obj.body.next().await {
                hasher.update(&chunk.map_err(RegistryError::Body)?);
            }
            check_digest(&hasher.digest(), digest)?;
        }
        Ok(())
    }

    /// Records a placed blob and links it into `repo`, ending the session
    /// (only if nobody changed it since it was read). If the registry
    /// already holds the digest, links the stored object instead, unless
    /// that object is missing or has the wrong size, in which case the new
    /// one replaces it. A new link charges the project when the digest is
    /// new to it, conditioned on the room under its quota. `seen` is what
    /// an earlier read found at [`seen_keys`].
    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        key: &str,
        session: Option<&Loaded>,
        mut seen: Option<Vec<Option<Item>>>,
    ) -> Result<Committed> {
        // A stored object already seen intact by this request.
        let mut intact: Option<String> = None;
        for _ in 0..8 {
            let found = match seen.take() {
                Some(f) => f,
                None => self.kv.batch_get(&seen_keys(repo, digest)).await?,
            };
            let now = now_secs();
            // The session's ops come first: one of them failing means
            // another request got there first.
            let mut ops = session.map(end_session_ops).unwrap_or_default();
            let session_ops = ops.len();
            let new_link = i64::from(found[1].is_none());
            let (outcome, object) = match &found[0] {
                None => {
                    ops.push(WriteOp::Put {
                        item: Item::new(keys::blob(digest), keys::META)
                            .with(attr::SIZE, Attr::N(size as i64))
                            .with(attr::KEY, Attr::S(key.to_owned()))
                            .with(attr::LAST_REFERENCED, Attr::N(now))
                            .with(attr::LINKS, Attr::N(1)),
                        cond: Cond::NotExists,
                    });
                    (Committed::New, key.to_owned())
                }
                Some(existing) => {
                    let stored = existing.s(attr::KEY).unwrap_or_default().to_owned();
                    if stored == key {
                        // Nothing can have recorded a key this request just made.
                        return Err(RegistryError::UploadInvalid(
                            "the blob record already names this upload's object".into(),
                        ));
                    }
                    let unchanged = Cond::Eq(attr::KEY.to_owned(), Attr::S(stored.clone()));
                    let ok = intact.as_deref() == Some(stored.as_str())
                        || self.blobs.head(&stored).await? == Some(size);
                    let mut set =
                        BTreeMap::from([(attr::LAST_REFERENCED.to_owned(), Attr::N(now))]);
                    if ok {
                        intact = Some(stored.clone());
                        ops.push(blob_record_write(digest, new_link, set, unchanged));
                        (Committed::Existing(key.to_owned()), stored)
                    } else {
                        tracing::warn!(%digest, key = %stored, "stored blob object is missing or has the wrong size; replacing it with the new upload");
                        set.insert(attr::KEY.to_owned(), Attr::S(key.to_owned()));
                        set.insert(attr::SIZE.to_owned(), Attr::N(size as i64));
                        ops.push(blob_record_write(digest, new_link, set, unchanged));
                        (Committed::New, key.to_owned())
                    }
                }
            };
            if self
                .link_and_commit(
                    ops,
                    session_ops,
                    repo,
                    digest,
                    size as i64,
                    &object,
                    &found,
                    now,
                )
                .await?
            {
                return Ok(outcome);
            }
        }
        Err(RegistryError::Busy)
    }

    /// Adds to `ops` the writes linking `digest` (stored at `key`) into
    /// `repo` given what [`seen_keys`] read (`found`), with the project's
    /// charge and quota warning, and commits. False when something read
    /// changed meanwhile (read again); a refused charge is the quota
    /// error; a failure among the first `session_ops` writes means another
    /// request ended the session.
    #[allow(clippy::too_many_arguments)]
    async fn link_and_commit(
        &self,
        mut ops: Vec<WriteOp>,
        session_ops: usize,
        repo: &RepoName,
        digest: &Digest,
        size: i64,
        key: &str,
        found: &[Option<Item>],
        now: i64,
    ) -> Result<bool> {
        let mut charges = Charges::default();
        link_ops(
            &mut ops,
            &mut charges,
            repo,
            digest,
            size,
            key,
            found[1].as_ref(),
            found[2].as_ref(),
            now,
        );
        let project = keys::project_of(repo.as_str());
        charges.warn(
            &mut ops,
            project,
            found[3].as_ref(),
            self.opts.quota_warning_pct,
        );
        let at = charges.push_into(&mut ops, now);
        let events = super::events::events_in(&ops);
        match self.kv.transact(ops).await {
            Ok(()) => {
                self.announce(&events).await;
                Ok(true)
            }
            Err(KvError::ConditionFailed { index }) if index < session_ops => Err(gone()),
            Err(KvError::ConditionFailed { index }) => match charges.project_at(at, index) {
                Some((p, d)) => match self.refused_charge(p, d).await {
                    RegistryError::Kv(_) => Ok(false),
                    e => Err(e),
                },
                None => Ok(false),
            },
            Err(KvError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a session together with `extra` items in one call.
    async fn load_session_with(
        &self,
        repo: &RepoName,
        id: &str,
        extra: &[(String, String)],
    ) -> Result<(Loaded, Vec<Option<Item>>)> {
        if !valid_upload_id(id) {
            return Err(RegistryError::UploadUnknown);
        }
        let mut lookups = vec![(keys::upload(id), keys::META.to_owned())];
        lookups.extend_from_slice(extra);
        let mut found = self.kv.batch_get(&lookups).await?;
        let item = found.remove(0).ok_or(RegistryError::UploadUnknown)?;
        Ok((self.session_of(repo, id, &item)?, found))
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
        self.session_of(repo, id, &item)
    }

    fn session_of(&self, repo: &RepoName, id: &str, item: &Item) -> Result<Loaded> {
        if item.n(attr::EXPIRES).is_some_and(|e| e <= now_secs()) {
            return Err(RegistryError::UploadUnknown);
        }
        let l = decode_session(id, item)?;
        if l.s.repo != repo.as_str() {
            return Err(RegistryError::UploadUnknown);
        }
        Ok(l)
    }

    /// The session item at `version`: it expires after the idle TTL, and
    /// never later than the session's maximum age.
    fn session_item(&self, l: &Loaded, version: i64, now: i64) -> Result<Item> {
        let doc = serde_json::to_vec(&l.s).map_err(corrupt)?;
        let expires = (now + self.opts.upload_ttl.as_secs() as i64)
            .min(l.s.created + self.opts.upload_max_age.as_secs() as i64);
        Ok(Item::new(keys::upload(&l.id), keys::META)
            .with(attr::DOC, Attr::B(doc))
            .with(attr::VERSION, Attr::N(version))
            .with(attr::EXPIRES, Attr::N(expires))
            .with(TTL_ATTR, Attr::N(expires + SWEEP_GRACE_SECS)))
    }

    /// Saves the session if nobody else changed it since it was read.
    async fn save_session(&self, l: &Loaded) -> Result<()> {
        let item = self.session_item(l, l.version + 1, now_secs())?;
        let cond = Cond::Eq(attr::VERSION.to_owned(), Attr::N(l.version));
        match self.kv.write(WriteOp::Put { item, cond }).await {
            Err(KvError::ConditionFailed { .. }) => Err(gone()),
            r => Ok(r?),
        }
    }

    /// Removes a session's records if it is still as read (best effort).
    async fn end_session(&self, l: &Loaded) {
        if l.version > 0
            && let Err(e) = self.kv.transact(end_session_ops(l)).await
        {
            tracing::debug!(error = %e, "upload session not ended");
        }
    }

    /// Drops the bytes of an abandoned session (best effort).
    async fn discard(&self, l: &Loaded) {
        if let Some(u) = &l.s.mpu {
            self.abort_quietly(&l.s.key, u).await;
        }
        if let Some(staged) = &l.s.staged {
            self.forget_object(staged).await;
        }
    }

    /// Aborts a multipart upload (best effort: the sweeper and the bucket's
    /// lifecycle rules catch what this misses).
    async fn abort_quietly(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.blobs.abort_multipart(key, upload_id).await {
            tracing::debug!(error = %e, "could not abort a multipart upload");
        }
    }

    /// Removes what a failed request created. A placed object is deleted
    /// only if the digest's record does not name it.
    async fn remove_created(&self, created: Created, digest: Option<&Digest>) {
        if let Some((key, u)) = &created.mpu {
            self.abort_quietly(key, u).await;
        }
        for key in &created.staged {
            self.forget_object(key).await;
        }
        let Some(placed) = created.placed else {
            return;
        };
        let recorded = match digest {
            Some(d) => match self.kv.get(&keys::blob(d), keys::META).await {
                Ok(meta) => meta.and_then(|m| m.s(attr::KEY).map(str::to_owned)),
                // Unsure: keeping an orphan is safe, deleting might not be.
                Err(_) => return,
            },
            None => None,
        };
        if recorded.as_deref() != Some(placed.as_str()) {
            self.forget_object(&placed).await;
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

/// How a finished upload was recorded.
enum Committed {
    /// The placed object is the digest's object now.
    New,
    /// The digest was already stored; the placed object (this key) is a
    /// spare copy to delete.
    Existing(String),
}

fn algorithm(digest: &Digest) -> Result<Algorithm> {
    Algorithm::of(digest).ok_or_else(|| {
        RegistryError::DigestInvalid(format!(
            "digest algorithm {} is not supported; use sha256 or sha512",
            digest.algorithm()
        ))
    })
}

fn check_digest(actual: &Digest, claimed: &Digest) -> Result<()> {
    if actual == claimed {
        Ok(())
    } else {
        Err(RegistryError::DigestInvalid(format!(
            "content has digest {actual}, not {claimed}"
        )))
    }
}

fn decode_session(id: &str, item: &Item) -> Result<Loaded> {
    let doc = item.b(attr::DOC).ok_or_else(|| corrupt("no document"))?;
    let s: Session = serde_json::from_slice(doc).map_err(corrupt)?;
    Ok(Loaded {
        id: id.to_owned(),
        version: item.n(attr::VERSION).unwrap_or(0),
        s,
    })
}

/// Deletes a session (if still at the version read) and its index entry.
fn end_session_ops(l: &Loaded) -> Vec<WriteOp> {
    let (index_pk, index_sk) = keys::upload_index(&l.id, l.s.created);
    vec![
        WriteOp::Delete {
            pk: keys::upload(&l.id),
            sk: keys::META.to_owned(),
            cond: Cond::Eq(attr::VERSION.to_owned(), Attr::N(l.version)),
        },
        WriteOp::delete(index_pk, index_sk),
    ]
}

/// The items a blob commit or mount decides on: the digest's record,
/// `repo`'s link and the project's holder count.
pub(super) fn seen_keys(repo: &RepoName, digest: &Digest) -> Vec<(String, String)> {
    vec![
        (keys::blob(digest), keys::META.to_owned()),
        (keys::repo(repo), keys::blob_link(digest)),
        usage::ref_key(keys::project_of(repo.as_str()), digest),
        usage::quota_key(keys::project_of(repo.as_str())),
    ]
}

/// The repository's link to a blob, relied on at `now`.
pub(super) fn link_item(repo: &RepoName, digest: &Digest, size: u64, key: &str, now: i64) -> Item {
    Item::new(keys::repo(repo), keys::blob_link(digest))
        .with(attr::SIZE, Attr::N(size as i64))
        .with(attr::KEY, Attr::S(key.to_owned()))
        .with(attr::LAST_REFERENCED, Attr::N(now))
}

/// A change to a blob's record: `links` added to its link count, `set`
/// written, if `cond` holds.
pub(super) fn blob_record_write(
    digest: &Digest,
    links: i64,
    set: BTreeMap<String, Attr>,
    cond: Cond,
) -> WriteOp {
    WriteOp::Upsert {
        pk: keys::blob(digest),
        sk: keys::META.to_owned(),
        add: if links == 0 {
            BTreeMap::new()
        } else {
            [(attr::LINKS.to_owned(), links)].into()
        },
        set,
        init: BTreeMap::new(),
        cond,
    }
}

/// Writes linking `digest` (stored at `key`) into `repo`, given the link
/// and the project's holder count as read: a new link is created only if
/// still absent, counted for the project (charging it for a digest new to
/// it) and makes the repository known to the collector. The caller
/// counts the link on the blob's record.
#[allow(clippy::too_many_arguments)]
pub(super) fn link_ops(
    ops: &mut Vec<WriteOp>,
    charges: &mut Charges,
    repo: &RepoName,
    digest: &Digest,
    size: i64,
    key: &str,
    link: Option<&Item>,
    count: Option<&Item>,
    now: i64,
) {
    let project = keys::project_of(repo.as_str());
    ops.push(WriteOp::Put {
        item: link_item(repo, digest, size as u64, key, now),
        cond: if link.is_none() {
            Cond::NotExists
        } else {
            Cond::Exists
        },
    });
    if link.is_none() {
        charges.add(project, usage::hold(ops, project, digest, size, count));
        ops.push(linked_entry(repo, now));
    }
}

/// The collector's entry for a repository that holds something, relied on
/// at `now` (it is removed only when older than the grace and the
/// repository is empty).
pub(super) fn linked_entry(repo: &RepoName, now: i64) -> WriteOp {
    WriteOp::put(
        Item::new(keys::linked(repo.as_str()), repo.as_str())
            .with(attr::LAST_REFERENCED, Attr::N(now)),
    )
}

/// Writes removing `repo`'s link to `digest` (as read: `link`), if `cond`
/// holds on it: the blob record's link count (when there is a record),
/// the project's holder count (releasing the bytes when it was the
/// last), and a candidate entry for the collector.
#[allow(clippy::too_many_arguments)]
pub(super) fn unlink_ops(
    ops: &mut Vec<WriteOp>,
    charges: &mut Charges,
    repo: &RepoName,
    digest: &Digest,
    has_record: bool,
    count: Option<&Item>,
    cond: Cond,
) {
    let project = keys::project_of(repo.as_str());
    ops.push(WriteOp::Delete {
        pk: keys::repo(repo),
        sk: keys::blob_link(digest),
        cond,
    });
    if has_record {
        ops.push(blob_record_write(digest, -1, BTreeMap::new(), Cond::Exists));
    }
    charges.add(project, -usage::release(ops, project, digest, count));
    ops.push(WriteOp::put(super::gc::candidate(digest)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_checked_without_overflow() {
        assert_eq!(check_range(None, 5).unwrap(), None);
        assert_eq!(check_range(Some((5, 9)), 5).unwrap(), Some(5));
        assert!(matches!(
            check_range(Some((0, 9)), 5),
            Err(RegistryError::RangeInvalid { offset: 5 })
        ));
        assert!(matches!(
            check_range(Some((0, u64::MAX)), 0),
            Err(RegistryError::RangeInvalid { offset: 0 })
        ));
        assert!(matches!(
            check_range(Some((5, 4)), 5),
            Err(RegistryError::RangeInvalid { .. })
        ));
        assert_eq!(check_range(Some((1, u64::MAX)), 1).unwrap(), Some(u64::MAX));
    }
}
