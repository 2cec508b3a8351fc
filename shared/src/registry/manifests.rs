//! Manifest push, pull and delete.
//!
//! A push costs one batch read (every referenced blob link or child
//! manifest, the current tag, the catalog entry) and one transaction that
//! writes the manifest, tag, referrer and catalog entry and marks each
//! referenced blob as just used, on the condition that it still exists — the
//! pact with the online garbage collector (DESIGN §6).
//!
//! # Concurrency
//!
//! - Moving a tag is conditioned on where the tag pointed when read. A
//!   writer that loses that race reads again and retries inside the server
//!   (with jittered backoff), so every concurrent push of one tag succeeds
//!   and the last one to commit wins: a client cannot retry a 4xx.
//! - Every put of a manifest item gives it a new nonce. Deleting a manifest
//!   removes it and every tag pointing at it in one transaction conditioned
//!   on that nonce and on each tag still pointing at it; a push that slips
//!   in between fails the condition and the delete starts over, so a tag
//!   never outlives its manifest.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::artifacts::{artifact_ops, nonce, release_ops, repo_meta_op};
use super::keys::{self, attr};
use super::uploads::touch_blob;
use super::{Registry, RegistryError, Result};
use crate::oci::digest::{digest_bytes, parse_digest};
use crate::oci::manifest::{MAX_MANIFEST_SIZE, ParsedManifest, parse_manifest};
use crate::oci::{Algorithm, Digest, Reference, RepoName, Tag};
use crate::store::blob::read_all;
use crate::store::kv::MAX_TRANSACTION_OPS;
use crate::store::{Attr, Cond, Item, KvError, Query, WriteOp, now_secs};

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The exact bytes pushed (absent when only the head was asked for).
    pub bytes: Option<Bytes>,
}

/// What a push reports back.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// What a manifest references, kept for deletes and garbage collection.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Refs {
    blobs: Vec<String>,
    children: Vec<String>,
}

/// The descriptor the referrers API lists.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReferrerDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Registry {
    /// Validates and stores a manifest under its digest and, for a tag
    /// reference, moves the tag to it.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<PutOutcome> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(RegistryError::ManifestTooLarge {
                max: MAX_MANIFEST_SIZE,
            });
        }
        let parsed = parse_manifest(content_type, &bytes)?;
        let tag = match reference {
            Reference::Digest(_) => None,
            Reference::Tag(t) => Some(t),
        };
        // Pushed by digest: named in that digest's algorithm; by tag: SHA-256.
        let digest = match reference {
            Reference::Digest(d) => {
                let alg = Algorithm::of(d).ok_or_else(|| {
                    RegistryError::DigestInvalid(format!(
                        "digest algorithm {} is not supported; use sha256 or sha512",
                        d.algorithm()
                    ))
                })?;
                let actual = digest_bytes(alg, &bytes);
                if &actual != d {
                    return Err(RegistryError::DigestInvalid(format!(
                        "manifest has digest {actual}, not {d}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => digest_bytes(Algorithm::Sha256, &bytes),
        };
        let now = now_secs();
        let manifest = self
            .manifest_item(repo, &digest, &parsed, &bytes, now)
            .await?;
        // A concurrent push may move the tag between our read and our
        // write; the tag's condition catches that and we read again.
        let mut backoff = Backoff::default();
        loop {
            let manifest = manifest.clone().with(attr::NONCE, Attr::S(nonce()));
            match self
                .try_put_manifest(repo, tag, &digest, &parsed, &manifest, bytes.len(), now)
                .await
            {
                Err(RegistryError::Kv(KvError::ConditionFailed { .. } | KvError::Conflict)) => {
                    backoff.wait().await?;
                }
                r => {
                    return r.map(|()| PutOutcome {
                        digest,
                        subject: parsed.subject.clone(),
                    });
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_put_manifest(
        &self,
        repo: &RepoName,
        tag: Option<&Tag>,
        digest: &Digest,
        parsed: &ParsedManifest,
        manifest: &Item,
        size: usize,
        now: i64,
    ) -> Result<()> {
        let repo_pk = keys::repo(repo);
        // One batch read: links, children, current tag, catalog entry.
        let mut lookups: Vec<(String, String)> = parsed
            .blobs
            .iter()
            .map(|b| (repo_pk.clone(), keys::blob_link(&b.digest)))
            .collect();
        lookups.extend(
            parsed
                .children
                .iter()
                .map(|c| (repo_pk.clone(), keys::manifest(&c.digest))),
        );
        let tag_at = lookups.len();
        if let Some(t) = tag {
            lookups.push((repo_pk.clone(), keys::tag(t.as_str())));
        }
        let catalog_at = lookups.len();
        lookups.push((keys::CATALOG.to_owned(), keys::catalog_entry(repo)));
        let self_at = lookups.len();
        lookups.push((repo_pk.clone(), keys::manifest(digest)));
        let found = self.kv.batch_get(&lookups).await?;
        let referenced = parsed.blobs.iter().chain(&parsed.children);
        for (r, f) in referenced.zip(&found) {
            let Some(f) = f else {
                return Err(RegistryError::ManifestBlobUnknown(r.digest.clone()));
            };
            // Clients trust a descriptor's size: it must be the content's.
            let stored = f.n(attr::SIZE).unwrap_or(-1);
            if stored != r.size as i64 {
                return Err(RegistryError::DescriptorMismatch(format!(
                    "the descriptor of {} says {} bytes, the stored content has {stored}",
                    r.digest, r.size
                )));
            }
        }

        let children_at = parsed.blobs.len();
        let children: Vec<(&Digest, Option<&Item>)> = parsed
            .children
            .iter()
            .zip(&found[children_at..children_at + parsed.children.len()])
            .map(|(c, f)| (&c.digest, f.as_ref()))
            .collect();
        let mut ops = Vec::new();
        let change = artifact_ops(
            &mut ops,
            repo,
            digest,
            parsed,
            tag,
            manifest,
            found[self_at].as_ref(),
            &children,
            size,
            now,
        );
        if let Some(t) = tag {
            ops.extend(tag_ops(
                repo,
                t,
                digest,
                parsed,
                size,
                now,
                found[tag_at].as_ref(),
            ));
        }
        if let Some(subject) = &parsed.subject {
            let d = ReferrerDescriptor {
                media_type: parsed.kind.media_type().to_owned(),
                digest: digest.to_string(),
                size: size as u64,
                artifact_type: parsed.artifact_type.clone(),
                annotations: parsed.annotations.clone(),
            };
            let doc =
                serde_json::to_vec(&d).map_err(|e| RegistryError::Unsupported(e.to_string()))?;
            ops.push(WriteOp::put(
                Item::new(&repo_pk, keys::referrer(subject, digest)).with(attr::DOC, Attr::B(doc)),
            ));
        }
        let new_repo = found[catalog_at].is_none();
        if new_repo {
            ops.push(WriteOp::Put {
                item: Item::new(keys::CATALOG, keys::catalog_entry(repo))
                    .with(attr::CREATED, Attr::N(now)),
                cond: Cond::NotExists,
            });
            let project = keys::project_of(repo.as_str());
            ops.push(WriteOp::count(
                keys::project_stats(project),
                keys::META,
                attr::REPOS,
                1,
            ));
            ops.push(WriteOp::count(
                keys::project_stats(keys::ALL_PROJECTS),
                keys::META,
                attr::REPOS,
                1,
            ));
        }
        if new_repo || change.new_manifest {
            ops.push(repo_meta_op(repo, change.artifacts, now));
        }
        let touches: Vec<WriteOp> = parsed
            .blobs
            .iter()
            .map(|b| touch_blob(&b.digest, now))
            .collect();
        // Manifests with very many layers: mark the surplus blobs first, in
        // transactions of their own (marking early is harmless).
        let room = MAX_TRANSACTION_OPS.saturating_sub(ops.len());
        let (early, last) = touches.split_at(touches.len().saturating_sub(room));
        for chunk in early.chunks(MAX_TRANSACTION_OPS) {
            self.transact_touching(chunk.to_vec()).await?;
        }
        ops.extend_from_slice(last);
        self.transact_touching(ops).await
    }

    /// Runs a transaction, reporting a failed blob touch as
    /// `MANIFEST_BLOB_UNKNOWN` (the blob was collected meanwhile).
    async fn transact_touching(&self, ops: Vec<WriteOp>) -> Result<()> {
        let touched = |index: usize| match ops.get(index) {
            Some(WriteOp::Update { pk, .. }) => keys::blob_digest(pk),
            _ => None,
        };
        match self.kv.transact(ops.clone()).await {
            Err(KvError::ConditionFailed { index }) => match touched(index) {
                Some(d) => Err(RegistryError::ManifestBlobUnknown(d)),
                None => Err(RegistryError::Kv(KvError::ConditionFailed { index })),
            },
            r => Ok(r?),
        }
    }

    async fn manifest_item(
        &self,
        repo: &RepoName,
        digest: &Digest,
        parsed: &ParsedManifest,
        bytes: &Bytes,
        now: i64,
    ) -> Result<Item> {
        let refs = Refs {
            blobs: parsed.blobs.iter().map(|b| b.digest.to_string()).collect(),
            children: parsed
                .children
                .iter()
                .map(|c| c.digest.to_string())
                .collect(),
        };
        let refs =
            serde_json::to_vec(&refs).map_err(|e| RegistryError::Unsupported(e.to_string()))?;
        let mut item = Item::new(keys::repo(repo), keys::manifest(digest))
            .with(
                attr::MEDIA_TYPE,
                Attr::S(parsed.kind.media_type().to_owned()),
            )
            .with(attr::SIZE, Attr::N(bytes.len() as i64))
            .with(attr::REFS, Attr::B(refs))
            .with(attr::PUSHED_AT, Attr::N(now));
        if let Some(s) = &parsed.subject {
            item = item.with(attr::SUBJECT, Attr::S(s.to_string()));
        }
        if bytes.len() <= self.opts.inline_manifest_max {
            item = item.with(attr::BYTES, Attr::B(bytes.to_vec()));
        } else {
            let key = keys::manifest_object(digest);
            self.blobs.put(&key, bytes.clone()).await?;
            item = item.with(attr::KEY, Attr::S(key));
        }
        Ok(item)
    }

    /// Reads a manifest. By tag without the body: one read (the tag item
    /// carries digest, type and size); otherwise one more for the bytes.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> Result<StoredManifest> {
        let repo_pk = keys::repo(repo);
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => {
                let item = self
                    .kv
                    .get(&repo_pk, &keys::tag(t.as_str()))
                    .await?
                    .ok_or(RegistryError::ManifestUnknown)?;
                let digest = item
                    .s(attr::DIGEST)
                    .and_then(|d| parse_digest(d).ok())
                    .ok_or(RegistryError::ManifestUnknown)?;
                if !with_body {
                    return Ok(StoredManifest {
                        digest,
                        media_type: item.s(attr::MEDIA_TYPE).unwrap_or_default().to_owned(),
                        size: item.n(attr::SIZE).unwrap_or(0) as u64,
                        bytes: None,
                    });
                }
                digest
            }
        };
        let item = self
            .kv
            .get(&repo_pk, &keys::manifest(&digest))
            .await?
            .ok_or(RegistryError::ManifestUnknown)?;
        let bytes = match (with_body, item.b(attr::BYTES), item.s(attr::KEY)) {
            (false, _, _) => None,
            (true, Some(b), _) => Some(Bytes::copy_from_slice(b)),
            (true, None, Some(key)) => Some(read_all(self.blobs.as_ref(), key).await?),
            (true, None, None) => return Err(RegistryError::ManifestUnknown),
        };
        Ok(StoredManifest {
            digest,
            media_type: item.s(attr::MEDIA_TYPE).unwrap_or_default().to_owned(),
            size: item.n(attr::SIZE).unwrap_or(0) as u64,
            bytes,
        })
    }

    /// Deletes a tag, or a manifest with every tag pointing at it and its
    /// referrer entry.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let repo_pk = keys::repo(repo);
        match reference {
            Reference::Tag(t) => {
                let item = self
                    .kv
                    .get(&repo_pk, &keys::tag(t.as_str()))
                    .await?
                    .ok_or(RegistryError::ManifestUnknown)?;
                let digest = item.s(attr::DIGEST).unwrap_or_default().to_owned();
                let mut ops = vec![WriteOp::Delete {
                    pk: repo_pk.clone(),
                    sk: keys::tag(t.as_str()),
                    cond: Cond::Eq(attr::DIGEST.to_owned(), Attr::S(digest.clone())),
                }];
                if let Ok(d) = parse_digest(&digest) {
                    ops.push(WriteOp::delete(
                        repo_pk.clone(),
                        keys::tag_of(&d, t.as_str()),
                    ));
                }
                match self.kv.transact(ops).await {
                    Err(KvError::ConditionFailed { .. }) => Err(RegistryError::ManifestUnknown),
                    r => Ok(r?),
                }
            }
            Reference::Digest(d) => {
                let mut backoff = Backoff::default();
                loop {
                    match self.try_delete_manifest(repo, d).await {
                        Err(RegistryError::Kv(
                            KvError::ConditionFailed { .. } | KvError::Conflict,
                        )) => backoff.wait().await?,
                        r => return r,
                    }
                }
            }
        }
    }

    /// One attempt at deleting a manifest with its tags and referrer entry:
    /// fails with `ConditionFailed` if a concurrent push or tag move
    /// changed what was read.
    async fn try_delete_manifest(&self, repo: &RepoName, d: &Digest) -> Result<()> {
        let repo_pk = keys::repo(repo);
        let item = self
            .kv
            .get(&repo_pk, &keys::manifest(d))
            .await?
            .ok_or(RegistryError::ManifestUnknown)?;
        let reverse = self.sort_keys(&repo_pk, &keys::tag_of_prefix(d)).await?;
        let tag_name = |sk: &str| sk.rsplit('#').next().unwrap_or_default().to_owned();
        let mut tags = Vec::with_capacity(reverse.len());
        for chunk in reverse.chunks(100) {
            let lookups: Vec<(String, String)> = chunk
                .iter()
                .map(|sk| (repo_pk.clone(), keys::tag(&tag_name(sk))))
                .collect();
            tags.extend(self.kv.batch_get(&lookups).await?);
        }
        // One group per tag, kept in one transaction: the tag (only if it
        // still points here) and its reverse entry.
        let here = Attr::S(d.to_string());
        let groups = reverse.iter().zip(&tags).map(|(sk, tag)| {
            let mut g = Vec::with_capacity(2);
            if tag.as_ref().and_then(|t| t.attrs.get(attr::DIGEST)) == Some(&here) {
                g.push(WriteOp::Delete {
                    pk: repo_pk.clone(),
                    sk: keys::tag(&tag_name(sk)),
                    cond: Cond::Eq(attr::DIGEST.to_owned(), here.clone()),
                });
            }
            g.push(WriteOp::delete(repo_pk.clone(), sk.clone()));
            g
        });
        let children = self.children_of(&repo_pk, &item).await?;
        let labels = self
            .sort_keys(&repo_pk, &keys::artifact_label_prefix(d))
            .await?;
        let mut last = Vec::with_capacity(2);
        let delta = release_ops(&mut last, repo, d, &item, &children, &labels);
        if delta != 0 {
            last.push(repo_meta_op(repo, delta, now_secs()));
        }
        if let Some(subject) = item.s(attr::SUBJECT).and_then(|s| parse_digest(s).ok()) {
            last.push(WriteOp::delete(
                repo_pk.clone(),
                keys::referrer(&subject, d),
            ));
        }
        // The manifest goes only if nobody pushed it again since it was
        // read (a push of a tag to it changes the nonce).
        let unchanged = match item.s(attr::NONCE) {
            Some(n) => Cond::Eq(attr::NONCE.to_owned(), Attr::S(n.to_owned())),
            None => Cond::Exists,
        };
        last.push(WriteOp::Delete {
            pk: repo_pk.clone(),
            sk: keys::manifest(d),
            cond: unchanged,
        });
        // Usually one transaction; with very many tags, the tags go first
        // in batches and the manifest last, so a failure never leaves a
        // tag without its manifest (and the next attempt reads afresh).
        let mut batches: Vec<Vec<WriteOp>> = Vec::new();
        let mut current = Vec::new();
        for g in groups.chain(std::iter::once(last)) {
            if current.len() + g.len() > MAX_TRANSACTION_OPS {
                batches.push(std::mem::take(&mut current));
            }
            current.extend(g);
        }
        batches.push(current);
        for batch in batches {
            self.kv.transact(batch).await?;
        }
        Ok(())
    }
}

impl Registry {
    /// Every sort key of `pk` under `prefix`.
    pub(super) async fn sort_keys(&self, pk: &str, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(pk, prefix, 100);
        loop {
            let page = self.kv.query(&q).await?;
            out.extend(page.items.into_iter().map(|i| i.sk));
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// The child manifests an index item references, with their items.
    pub(super) async fn children_of(
        &self,
        repo_pk: &str,
        item: &Item,
    ) -> Result<Vec<(Digest, Option<Item>)>> {
        let refs: Refs = item
            .b(attr::REFS)
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let mut digests: Vec<Digest> = refs
            .children
            .iter()
            .filter_map(|c| parse_digest(c).ok())
            .collect();
        digests.sort_by_key(ToString::to_string);
        digests.dedup();
        let mut out = Vec::with_capacity(digests.len());
        for chunk in digests.chunks(100) {
            let lookups: Vec<(String, String)> = chunk
                .iter()
                .map(|c| (repo_pk.to_owned(), keys::manifest(c)))
                .collect();
            let found = self.kv.batch_get(&lookups).await?;
            out.extend(chunk.iter().cloned().zip(found));
        }
        Ok(out)
    }
}

/// Writes that point `tag` at `digest`, replacing its previous target only
/// if nobody moved it since it was read.
pub(super) fn tag_ops(
    repo: &RepoName,
    tag: &Tag,
    digest: &Digest,
    parsed: &ParsedManifest,
    size: usize,
    now: i64,
    current: Option<&Item>,
) -> Vec<WriteOp> {
    let repo_pk = keys::repo(repo);
    let item = Item::new(&repo_pk, keys::tag(tag.as_str()))
        .with(attr::DIGEST, Attr::S(digest.to_string()))
        .with(
            attr::MEDIA_TYPE,
            Attr::S(parsed.kind.media_type().to_owned()),
        )
        .with(attr::SIZE, Attr::N(size as i64))
        .with(attr::PUSHED_AT, Attr::N(now));
    let previous = current.and_then(|c| c.s(attr::DIGEST)).map(str::to_owned);
    let cond = match &previous {
        Some(p) => Cond::Eq(attr::DIGEST.to_owned(), Attr::S(p.clone())),
        None => Cond::NotExists,
    };
    let mut ops = vec![WriteOp::Put { item, cond }];
    let reverse = keys::tag_of(digest, tag.as_str());
    match previous.as_deref().map(parse_digest) {
        Some(Ok(p)) if &p != digest => {
            ops.push(WriteOp::delete(&repo_pk, keys::tag_of(&p, tag.as_str())))
        }
        _ => {}
    }
    ops.push(WriteOp::put(Item::new(repo_pk, reverse)));
    ops
}

/// Jittered exponential backoff for writes that lost a race, giving up
/// (`Busy`) after enough attempts that only a pathological storm of
/// writers on one item reaches it.
#[derive(Default)]
pub(super) struct Backoff {
    attempt: u32,
}

impl Backoff {
    const MAX_ATTEMPTS: u32 = 60;

    pub(super) async fn wait(&mut self) -> Result<()> {
        self.attempt += 1;
        if self.attempt >= Self::MAX_ATTEMPTS {
            return Err(RegistryError::Busy);
        }
        let cap_ms = 2u64 << self.attempt.min(6);
        let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
        Ok(())
    }
}
