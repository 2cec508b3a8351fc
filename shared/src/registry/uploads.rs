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

use super::keys::{self, attr};
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
        let mut l = self.load_session(repo, id).await?;
        let announced = check_range(range, l.s.offset)?;
        let old_stage = l.s.staged.clone();
        let mut created = Created::default();
        let finished = async {
            let (tail, received) = self.ingest(&mut l, body, &mut created).await?;
            check_received(announced, received)?;
            self.verify_and_place(&mut l, alg, digest, tail, &mut created)
                .await?;
            let key = created.placed.clone().unwrap_or_default();
            self.commit_blob(repo, digest, l.s.offset, &key, Some(&l))
                .await
        }
        .await;
        match finished {
            Ok(Committed::New) => {}
            Ok(Committed::Existing(ours)) => self.forget_object(&ours).await,
            Err(e) => {
                if matches!(e, RegistryError::DigestInvalid(_)) {
                    // The content is not what the client claimed: the
                    // session cannot be finished any more; drop it.
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
            let (tail, _) = self.ingest(&mut l, body, &mut created).await?;
            self.verify_and_place(&mut l, alg, digest, tail, &mut created)
                .await?;
            let key = created.placed.clone().unwrap_or_default();
            self.commit_blob(repo, digest, l.s.offset, &key, None).await
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
    /// holds) into `repo`. Returns false when there is nothing to mount.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        let meta_key = (keys::blob(digest), keys::META.to_owned());
        let found = match from {
            Some(f) => {
                let link_key = (keys::repo(f), keys::blob_link(digest));
                let mut found = self.kv.batch_get(&[meta_key, link_key]).await?;
                // Mounting from a repository needs its link: it is what
                // says the blob may be read through that repository.
                if found.pop().flatten().is_none() {
                    return Ok(false);
                }
                found.pop().flatten()
            }
            None => self.kv.get(&meta_key.0, &meta_key.1).await?,
        };
        let Some(meta) = found else {
            return Ok(false);
        };
        let (Some(size), Some(key)) = (meta.n(attr::SIZE), meta.s(attr::KEY)) else {
            return Ok(false);
        };
        // The new link carries the object key META names now.
        let ops = vec![
            WriteOp::Update {
                pk: keys::blob(digest),
                sk: keys::META.to_owned(),
                set: [(attr::LAST_REFERENCED.to_owned(), Attr::N(now_secs()))].into(),
                cond: Cond::Eq(attr::KEY.to_owned(), Attr::S(key.to_owned())),
            },
            WriteOp::put(link_item(repo, digest, size as u64, key)),
        ];
        match self.kv.transact(ops).await {
            Ok(()) => Ok(true),
            // The blob was collected or replaced since it was read.
            Err(KvError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
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
    /// one replaces it.
    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        key: &str,
        session: Option<&Loaded>,
    ) -> Result<Committed> {
        let now = now_secs();
        let session_ops = || session.map(end_session_ops).unwrap_or_default();
        // The session's ops come first: index 0 failing means another
        // request got there first.
        let lost_race =
            |e: &KvError| session.is_some() && matches!(e, KvError::ConditionFailed { index: 0 });
        // Ends the session and records `key` as the digest's object, if `cond`
        // holds on `META`.
        let record_ours = |cond: Cond| {
            let mut ops = session_ops();
            ops.push(WriteOp::Put {
                item: Item::new(keys::blob(digest), keys::META)
                    .with(attr::SIZE, Attr::N(size as i64))
                    .with(attr::KEY, Attr::S(key.to_owned()))
                    .with(attr::LAST_REFERENCED, Attr::N(now)),
                cond,
            });
            ops.push(WriteOp::put(link_item(repo, digest, size, key)));
            ops
        };
        let meta_at = session_ops().len();
        match self.kv.transact(record_ours(Cond::NotExists)).await {
            Ok(()) => return Ok(Committed::New),
            Err(e) if lost_race(&e) => return Err(gone()),
            Err(KvError::ConditionFailed { index }) if index == meta_at => {}
            Err(e) => return Err(e.into()),
        }
        // Already stored. Keep the stored copy if it is really there.
        for _ in 0..5 {
            let (ops, outcome) = match self.kv.get(&keys::blob(digest), keys::META).await? {
                // Collected meanwhile: store ours as the first copy.
                None => (record_ours(Cond::NotExists), Committed::New),
                Some(existing) => {
                    let stored_key = existing.s(attr::KEY).unwrap_or_default().to_owned();
                    if stored_key == key {
                        // Nothing can have recorded a key this request just made.
                        return Err(RegistryError::UploadInvalid(
                            "the blob record already names this upload's object".into(),
                        ));
                    }
                    let unchanged = Cond::Eq(attr::KEY.to_owned(), Attr::S(stored_key.clone()));
                    if self.blobs.head(&stored_key).await? == Some(size) {
                        let mut ops = session_ops();
                        ops.push(WriteOp::Update {
                            pk: keys::blob(digest),
                            sk: keys::META.to_owned(),
                            set: [(attr::LAST_REFERENCED.to_owned(), Attr::N(now))].into(),
                            cond: unchanged,
                        });
                        ops.push(WriteOp::put(link_item(repo, digest, size, &stored_key)));
                        (ops, Committed::Existing(key.to_owned()))
                    } else {
                        tracing::warn!(%digest, key = %stored_key, "stored blob object is missing or has the wrong size; replacing it with the new upload");
                        (record_ours(unchanged), Committed::New)
                    }
                }
            };
            match self.kv.transact(ops).await {
                Ok(()) => return Ok(outcome),
                Err(e) if lost_race(&e) => return Err(gone()),
                Err(KvError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Busy)
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
        if item.n(attr::EXPIRES).is_some_and(|e| e <= now_secs()) {
            return Err(RegistryError::UploadUnknown);
        }
        let l = decode_session(id, &item)?;
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
