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
use super::events::{Event, events_in, kinds, outbox_put};
use super::keys::{self, attr};
use super::uploads::linked_entry;
use super::usage::{self, Charges};
use super::{Registry, RegistryError, Result};
use crate::oci::digest::{digest_bytes, parse_digest};
use crate::oci::manifest::{MAX_MANIFEST_SIZE, ParsedManifest, parse_manifest};
use crate::oci::{Algorithm, Digest, Reference, RepoName, Tag};
use crate::policy::immutable;
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
    pub(super) blobs: Vec<String>,
    pub(super) children: Vec<String>,
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
                Err(e) => return Err(e),
                Ok(events) => {
                    self.announce(&events).await;
                    return Ok(PutOutcome {
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
    ) -> Result<Vec<Event>> {
        let repo_pk = keys::repo(repo);
        let project = keys::project_of(repo.as_str());
        let read_at = std::time::Instant::now();
        let at = now_secs();
        // One batch read: links, children, current tag, catalog entry, the
        // manifest itself, the project's holder count of it, and the
        // project's immutability rules when a tag moves.
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
        lookups.push(usage::ref_key(project, digest));
        lookups.push(usage::quota_key(project));
        let rules_at = lookups.len();
        if tag.is_some() {
            lookups.push(immutable::rules_key(project));
        }
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
        if let Some(t) = tag {
            let current = found[tag_at].as_ref().and_then(|i| i.s(attr::DIGEST));
            if current.is_some_and(|c| c != digest.as_ref())
                && self.immutable_tag(repo, t.as_str(), found[rules_at].as_ref())
            {
                return Err(immutable_refusal(repo, t.as_str(), Refused::Push));
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
            ops.push(linked_entry(repo, at));
        }
        if new_repo || change.new_manifest {
            ops.push(repo_meta_op(repo, change.artifacts, now));
        }
        ops.push(outbox_put(&Event::artifact(
            kinds::PUSH_ARTIFACT,
            repo,
            digest,
            tag.map(|t| vec![t.as_str().to_owned()]).unwrap_or_default(),
            parsed.kind.media_type(),
            size as i64,
        )));
        let mut charges = Charges::default();
        if found[self_at].is_none() {
            // The manifest is new to the repository: one more holder of
            // its digest in the project.
            let held = usage::hold(
                &mut ops,
                project,
                digest,
                size as i64,
                found[self_at + 1].as_ref(),
            );
            charges.add(project, held);
        }
        charges.warn(
            &mut ops,
            project,
            found[self_at + 2].as_ref(),
            self.opts.quota_warning_pct,
        );
        let charge_ops = {
            let mut c = Vec::new();
            charges.push_into(&mut c, now);
            c
        };
        let touches: Vec<WriteOp> = parsed
            .blobs
            .iter()
            .zip(&found)
            .map(|(b, link)| self.rely_on_link(repo, &b.digest, link.as_ref(), at))
            .collect();
        // Manifests with very many layers: rely on the surplus links first,
        // in transactions of their own (refreshing early is harmless).
        let room = MAX_TRANSACTION_OPS.saturating_sub(ops.len() + charge_ops.len());
        let (early, last) = touches.split_at(touches.len().saturating_sub(room));
        for chunk in early.chunks(MAX_TRANSACTION_OPS) {
            self.transact_touching(chunk.to_vec(), &Charges::default(), 0)
                .await?;
        }
        ops.extend_from_slice(last);
        let charges_at = ops.len();
        ops.extend(charge_ops);
        // The collector's safety rests on this (see `registry::gc`): no
        // more than half the grace passes between reading the links and
        // committing. A push slower than that reads again.
        if read_at.elapsed() > self.opts.grace() / 2 {
            return Err(RegistryError::Kv(KvError::Conflict));
        }
        let events = events_in(&ops);
        self.transact_touching(ops, &charges, charges_at).await?;
        Ok(events)
    }

    /// The write that relies on `repo`'s link to `digest` (as read at
    /// `at`) in a push: a check that it still exists, which also refreshes
    /// its time when that is older than half the grace (DESIGN §6). Links
    /// of popular layers are so written at most once per half grace, not
    /// on every push, and the collector stays safe: after the push
    /// commits, the link's time is within a grace of the commit (see
    /// `registry::gc`).
    fn rely_on_link(
        &self,
        repo: &RepoName,
        digest: &Digest,
        link: Option<&Item>,
        at: i64,
    ) -> WriteOp {
        let half = (self.opts.grace().as_secs() / 2) as i64;
        let fresh = link
            .and_then(|l| l.n(attr::LAST_REFERENCED))
            .is_some_and(|t| t >= at - half);
        let (pk, sk) = (keys::repo(repo), keys::blob_link(digest));
        if fresh {
            WriteOp::Check {
                pk,
                sk,
                cond: Cond::Exists,
            }
        } else {
            WriteOp::Update {
                pk,
                sk,
                set: [(attr::LAST_REFERENCED.to_owned(), Attr::N(at))].into(),
                cond: Cond::Exists,
            }
        }
    }

    /// Runs a push's transaction, reporting a failed link as
    /// `MANIFEST_BLOB_UNKNOWN` (the blob was collected meanwhile) and a
    /// failed charge (from `charges_at`) as the quota refusal it is.
    async fn transact_touching(
        &self,
        ops: Vec<WriteOp>,
        charges: &Charges,
        charges_at: usize,
    ) -> Result<()> {
        let touched = |index: usize| match ops.get(index) {
            Some(WriteOp::Update { sk, .. } | WriteOp::Check { sk, .. }) => sk
                .strip_prefix(keys::BLOB_PREFIX)
                .and_then(|d| parse_digest(d).ok()),
            _ => None,
        };
        match self.kv.transact(ops.clone()).await {
            Err(KvError::ConditionFailed { index }) => {
                if let Some((p, d)) = charges.project_at(charges_at, index) {
                    return Err(self.refused_charge(p, d).await);
                }
                match touched(index) {
                    Some(d) => Err(RegistryError::ManifestBlobUnknown(d)),
                    None => Err(RegistryError::Kv(KvError::ConditionFailed { index })),
                }
            }
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
    /// referrer entry. An immutable tag is neither deleted nor deleted with.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let repo_pk = keys::repo(repo);
        match reference {
            Reference::Tag(t) => {
                let project = keys::project_of(repo.as_str());
                let found = self
                    .kv
                    .batch_get(&[
                        (repo_pk.clone(), keys::tag(t.as_str())),
                        immutable::rules_key(project),
                    ])
                    .await?;
                let item = found[0].as_ref().ok_or(RegistryError::ManifestUnknown)?;
                if self.immutable_tag(repo, t.as_str(), found[1].as_ref()) {
                    return Err(immutable_refusal(repo, t.as_str(), Refused::Delete));
                }
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
                    match self.try_delete_manifest(repo, d, None).await {
                        Err(RegistryError::Kv(
                            KvError::ConditionFailed { .. } | KvError::Conflict,
                        )) => backoff.wait().await?,
                        r => return r.map(drop),
                    }
                }
            }
        }
    }

    /// Deletes a manifest the collector found untagged, only if it still
    /// has no tag and was last pushed before `cutoff` (epoch seconds):
    /// false when it changed meanwhile (it stays).
    pub(super) async fn delete_untagged(
        &self,
        repo: &RepoName,
        digest: &Digest,
        cutoff: i64,
    ) -> Result<bool> {
        match self.try_delete_manifest(repo, digest, Some(cutoff)).await {
            Ok(deleted) => Ok(deleted),
            Err(RegistryError::Kv(KvError::ConditionFailed { .. } | KvError::Conflict))
            | Err(RegistryError::ManifestUnknown) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One attempt at deleting a manifest with its tags and referrer entry:
    /// fails with `ConditionFailed` if a concurrent push or tag move
    /// changed what was read. With `untagged_before`, deletes only an
    /// untagged manifest pushed before it (false otherwise).
    async fn try_delete_manifest(
        &self,
        repo: &RepoName,
        d: &Digest,
        untagged_before: Option<i64>,
    ) -> Result<bool> {
        let repo_pk = keys::repo(repo);
        let project = keys::project_of(repo.as_str());
        let found = self
            .kv
            .batch_get(&[
                (repo_pk.clone(), keys::manifest(d)),
                usage::ref_key(project, d),
                immutable::rules_key(project),
                (keys::quota(project), keys::META.to_owned()),
            ])
            .await?;
        let item = found[0].clone().ok_or(RegistryError::ManifestUnknown)?;
        let reverse = self.sort_keys(&repo_pk, &keys::tag_of_prefix(d)).await?;
        let tag_name = |sk: &str| sk.rsplit('#').next().unwrap_or_default().to_owned();
        if let Some(cutoff) = untagged_before
            && (!reverse.is_empty() || item.n(attr::PUSHED_AT).unwrap_or(0) >= cutoff)
        {
            return Ok(false);
        }
        if let Some(t) = reverse
            .iter()
            .map(|sk| tag_name(sk))
            .find(|t| self.immutable_tag(repo, t, found[2].as_ref()))
        {
            return Err(immutable_refusal(repo, &t, Refused::Delete));
        }
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
        let now = now_secs();
        if delta != 0 {
            last.push(repo_meta_op(repo, delta, now));
        }
        if let Some(subject) = item.s(attr::SUBJECT).and_then(|s| parse_digest(s).ok()) {
            last.push(WriteOp::delete(
                repo_pk.clone(),
                keys::referrer(&subject, d),
            ));
        }
        // One holder fewer of the digest in the project.
        let mut charges = Charges::default();
        charges.add(
            project,
            -usage::release(&mut last, project, d, found[1].as_ref()),
        );
        if found[3].is_none() && found[1].is_some() {
            self.ensure_quota(project).await?;
        }
        charges.push_into(&mut last, now);
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
        let deleted = Event::artifact(
            kinds::DELETE_ARTIFACT,
            repo,
            d,
            reverse.iter().map(|sk| tag_name(sk)).collect(),
            item.s(attr::MEDIA_TYPE).unwrap_or_default(),
            item.n(attr::SIZE).unwrap_or(0),
        );
        last.push(outbox_put(&deleted));
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
        self.announce(&[deleted]).await;
        Ok(true)
    }

    /// Which of `tags` of `repo` the project's immutability rules hold.
    pub async fn immutable_tags(&self, repo: &RepoName, tags: &[&str]) -> Result<Vec<bool>> {
        let (pk, sk) = immutable::rules_key(keys::project_of(repo.as_str()));
        let rules = self.kv.get(&pk, &sk).await?;
        Ok(tags
            .iter()
            .map(|t| self.immutable_tag(repo, t, rules.as_ref()))
            .collect())
    }

    /// Whether `tag` of `repo` is immutable under the project's rules
    /// (`rules`: their item as read).
    pub(super) fn immutable_tag(&self, repo: &RepoName, tag: &str, rules: Option<&Item>) -> bool {
        let rules = immutable::decode(rules);
        if rules.is_empty() {
            return false;
        }
        let path = repo
            .as_str()
            .split_once('/')
            .map_or(repo.as_str(), |(_, r)| r);
        immutable::is_immutable(&rules, path, tag)
    }
}

/// What a refused change to an immutable tag was.
#[derive(Debug, Clone, Copy)]
pub(super) enum Refused {
    /// A push moving the tag.
    Push,
    /// Moving it through the API.
    Update,
    Delete,
}

/// Harbor's refusal of a change to an immutable tag (its words).
pub(super) fn immutable_refusal(repo: &RepoName, tag: &str, what: Refused) -> RegistryError {
    let path = repo
        .as_str()
        .split_once('/')
        .map_or(repo.as_str(), |(_, r)| r);
    RegistryError::Immutable(match what {
        Refused::Push => {
            format!("Failed to process request due to '{path}:{tag}' configured as immutable.")
        }
        Refused::Update => format!("the tag {tag} configured as immutable, cannot be updated"),
        Refused::Delete => format!("the tag {tag} configured as immutable, cannot be deleted"),
    })
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
