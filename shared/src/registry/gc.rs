//! Online garbage collection (DESIGN §6): what one collection does to one
//! repository and to one shard of candidate blobs, while pushes go on.
//! `jobs::gc` runs these as queue tasks and keeps the history.
//!
//! # What is collected
//!
//! A collection that starts at `started` uses `cutoff = started − grace`.
//! 1. With `delete_untagged`, each top-level artifact with no tag last
//!    pushed before the cutoff is deleted as Harbor deletes artifacts (its
//!    accessories, and index children nothing else lists, go with it).
//!    A manifest an index lists is not top-level and stays; an accessory
//!    stays while its subject exists.
//! 2. A repository's blob link that none of its manifests references and
//!    that nothing relied on since the cutoff is removed, with its counts
//!    (the project's usage drops when no link or manifest of the project
//!    holds the digest any more).
//! 3. A blob whose last link went (`links = 0`) and that nothing linked
//!    since the cutoff loses its record, conditioned on exactly that, and
//!    only then its object.
//!
//! # Why no acknowledged push loses a blob
//!
//! A manifest push reads its links, then commits a transaction that holds
//! each link to *still exist* (a `Check`), refreshing the link's time when
//! it is older than half the grace — so popular links are written at most
//! once per half grace, not on every push. The push also refuses to commit
//! when more than half the grace passed since its read (it reads again).
//! So right after a push commits at `t`, every link it relies on has a
//! time after `t − grace`: either just refreshed (≥ read time ≥ `t` −
//! grace/2), or fresh when read (≥ read time − grace/2 ≥ `t` − grace).
//!
//! Step 2 reads the repository's manifests after `started` and removes a
//! link only under the condition `time < cutoff`. A push that committed
//! before that read is seen (its manifest references the link). A push
//! that commits after it has `t > started`, so its links' times are after
//! `t − grace > cutoff` and the removal's condition fails. A removal that
//! commits first makes the push's `Check` fail: the client is told
//! `MANIFEST_BLOB_UNKNOWN` and uploads again. Step 3 is guarded the same
//! way by the exact link count: an upload or mount that links the blob
//! again raises it in a transaction conditioned on the record, so either
//! it lands first (the record's delete fails) or the record is gone first
//! (the upload stores its own copy). Objects are deleted only after their
//! record, and a record names a key no other record names.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::keys::{self, attr};
use super::manifests::Refs;
use super::{Registry, Result};
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, RepoName};
use crate::store::{Attr, Cond, Item, KvError, Query, SkRange, WriteOp};

/// What sweeping one repository did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSweep {
    /// Untagged artifacts deleted.
    pub artifacts: u64,
    /// Blob links examined and removed.
    pub links_examined: u64,
    pub links_removed: u64,
    /// Sizes of the removed links.
    pub link_bytes: i64,
}

/// What sweeping one shard of candidate blobs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobSweep {
    pub examined: u64,
    /// Blobs deleted (record and object) and their bytes.
    pub deleted: u64,
    pub freed: i64,
}

/// The time attribute of an entry the collector decides on by age.
const AT: &str = attr::LAST_REFERENCED;

impl Registry {
    /// The cutoff of a collection that started at `started`.
    pub fn gc_cutoff(&self, started: i64) -> i64 {
        started - self.opts.grace().as_secs() as i64
    }

    /// One page of the repositories that hold anything, from `shard` of
    /// the collector's index.
    pub async fn linked_page(
        &self,
        shard: char,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RepoName>, Option<String>)> {
        let q = Query {
            pk: keys::linked_shard(shard),
            range: SkRange::All,
            limit: limit.max(1),
            after,
            reverse: false,
        };
        let page = self.kv.query(&q).await?;
        let repos = page
            .items
            .iter()
            .filter_map(|i| i.sk.parse().ok())
            .collect();
        Ok((repos, page.next))
    }

    /// Steps 1 and 2 for one repository. Idempotent: run twice, the second
    /// run finds nothing more to do.
    pub async fn gc_repository(
        &self,
        repo: &RepoName,
        started: i64,
        delete_untagged: bool,
        dry_run: bool,
    ) -> Result<RepoSweep> {
        let cutoff = self.gc_cutoff(started);
        let mut out = RepoSweep::default();
        let mut doomed: HashSet<String> = HashSet::new();
        if delete_untagged {
            self.sweep_untagged(repo, cutoff, dry_run, &mut out, &mut doomed)
                .await?;
        }
        let pk = keys::repo(repo);
        // What the repository's manifests reference (read after `started`).
        let mut referenced: HashSet<String> = HashSet::new();
        let mut manifests = 0u64;
        self.each(&pk, "MANIFEST#", |item| {
            let digest = item.sk.strip_prefix("MANIFEST#").unwrap_or_default();
            if doomed.contains(digest) {
                return;
            }
            manifests += 1;
            if let Some(refs) = item
                .b(attr::REFS)
                .and_then(|b| serde_json::from_slice::<Refs>(b).ok())
            {
                referenced.extend(refs.blobs);
            }
        })
        .await?;
        let mut unreferenced = Vec::new();
        let mut links = 0u64;
        self.each(&pk, keys::BLOB_PREFIX, |link| {
            links += 1;
            let digest = link.sk.strip_prefix(keys::BLOB_PREFIX).unwrap_or_default();
            let old = link.n(AT).is_none_or(|t| t < cutoff);
            if old && !referenced.contains(digest) {
                unreferenced.push(link.clone());
            }
        })
        .await?;
        out.links_examined = links;
        if dry_run {
            out.links_removed = unreferenced.len() as u64;
            out.link_bytes = unreferenced.iter().filter_map(|l| l.n(attr::SIZE)).sum();
            return Ok(out);
        }
        let left = links - unreferenced.len() as u64;
        if !unreferenced.is_empty() {
            self.ensure_quota(keys::project_of(repo.as_str())).await?;
            // Only if nothing relied on the link since the cutoff.
            let still_old = |_: &Item| {
                Cond::Any(vec![
                    Cond::Missing(AT.to_owned()),
                    Cond::Lt(AT.to_owned(), cutoff),
                ])
            };
            let gone = self.unlink(repo, unreferenced, &still_old).await?;
            out.links_removed = gone.links;
            out.link_bytes = gone.bytes;
        }
        if manifests == 0 && left == 0 {
            // Nothing left: the repository leaves the collector's index,
            // unless something was linked since the cutoff.
            let op = WriteOp::Delete {
                pk: keys::linked(repo.as_str()),
                sk: repo.to_string(),
                cond: Cond::Lt(AT.to_owned(), cutoff),
            };
            match self.kv.write(op).await {
                Ok(()) | Err(KvError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Step 1: untagged top-level artifacts, and accessories whose subject
    /// is gone, last pushed before `cutoff`. `doomed` collects what a dry
    /// run would delete, so step 2 can estimate without deleting.
    async fn sweep_untagged(
        &self,
        repo: &RepoName,
        cutoff: i64,
        dry_run: bool,
        out: &mut RepoSweep,
        doomed: &mut HashSet<String>,
    ) -> Result<()> {
        let pk = keys::repo(repo);
        let mut candidates: Vec<Digest> = Vec::new();
        self.each(&pk, keys::ART_PREFIX, |entry| {
            if let Some(d) = keys::art_digest(&entry.sk) {
                candidates.push(d);
            }
        })
        .await?;
        // Accessories whose subject is gone.
        let mut accessories: Vec<(Digest, Digest)> = Vec::new();
        self.each(&pk, keys::ACC_PREFIX, |entry| {
            let rest = entry.sk.strip_prefix(keys::ACC_PREFIX).unwrap_or_default();
            if let Some((s, d)) = rest.split_once('#')
                && let (Ok(s), Ok(d)) = (parse_digest(s), parse_digest(d))
            {
                accessories.push((s, d));
            }
        })
        .await?;
        for chunk in accessories.chunks(100) {
            let lookups: Vec<(String, String)> = chunk
                .iter()
                .map(|(s, _)| (pk.clone(), keys::manifest(s)))
                .collect();
            let subjects = self.kv.batch_get(&lookups).await?;
            for ((_, d), subject) in chunk.iter().zip(subjects) {
                if subject.is_none() {
                    candidates.push(d.clone());
                }
            }
        }
        for chunk in candidates.chunks(100) {
            let records = self.artifact_records(repo, chunk).await?;
            for rec in records.into_iter().flatten() {
                if rec.pushed >= cutoff || !self.tags_of(repo, &rec.digest).await?.is_empty() {
                    continue;
                }
                if dry_run {
                    doomed.insert(rec.digest.to_string());
                    for a in self.accessories_of(repo, &rec.digest).await? {
                        doomed.insert(a.digest.to_string());
                    }
                    out.artifacts += 1;
                    continue;
                }
                if !self.delete_untagged(repo, &rec.digest, cutoff).await? {
                    continue;
                }
                out.artifacts += 1;
                // Its accessories go with it (they are of no use alone),
                // and the index children nothing else lists.
                for a in self.accessories_of(repo, &rec.digest).await? {
                    if let Some(acc) = self.artifact_record(repo, &a.digest).await?
                        && let Err(e) = self.delete_artifact(repo, &acc).await
                    {
                        tracing::warn!(%repo, digest = %a.digest, error = %e, "gc: an accessory of a collected artifact stays");
                    }
                }
                for child in self
                    .artifact_records(repo, &rec.children())
                    .await?
                    .into_iter()
                    .flatten()
                {
                    if child.parents == 0
                        && self.delete_untagged(repo, &child.digest, cutoff).await?
                    {
                        out.artifacts += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Step 3 for one shard of candidate blobs. Idempotent, and safe to
    /// resume: a blob whose record went but whose object a crash left is
    /// remembered on its candidate entry and removed by the next run.
    pub async fn gc_blobs(&self, shard: char, started: i64, dry_run: bool) -> Result<BlobSweep> {
        let cutoff = self.gc_cutoff(started);
        let mut out = BlobSweep::default();
        let mut q = Query {
            pk: keys::gc_candidate_shard(shard),
            range: SkRange::All,
            limit: 100,
            after: None,
            reverse: false,
        };
        loop {
            let page = self.kv.query(&q).await?;
            let mut entries: Vec<(Item, Digest)> = Vec::with_capacity(page.items.len());
            for e in page.items {
                match parse_digest(&e.sk) {
                    Ok(d) => entries.push((e, d)),
                    Err(_) => self.drop_candidate(&e).await?,
                }
            }
            let lookups: Vec<(String, String)> = entries
                .iter()
                .map(|(_, d)| (keys::blob(d), keys::META.to_owned()))
                .collect();
            let metas = if lookups.is_empty() {
                Vec::new()
            } else {
                self.kv.batch_get(&lookups).await?
            };
            for ((entry, digest), meta) in entries.iter().zip(metas) {
                out.examined += 1;
                let done = self
                    .collect_blob(entry, digest, meta, cutoff, dry_run)
                    .await?;
                if let Some(size) = done {
                    out.deleted += 1;
                    out.freed += size;
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Decides on one candidate; returns the bytes freed when the blob
    /// went (or, in a dry run, would go).
    async fn collect_blob(
        &self,
        entry: &Item,
        digest: &Digest,
        meta: Option<Item>,
        cutoff: i64,
        dry_run: bool,
    ) -> Result<Option<i64>> {
        // An object whose record an earlier run removed: finish the job.
        let doomed = entry.s(attr::KEY).map(str::to_owned);
        let Some(meta) = meta else {
            if let Some(key) = doomed
                && !dry_run
            {
                self.blobs.delete(&key).await?;
            }
            if !dry_run {
                self.drop_candidate(entry).await?;
            }
            return Ok(None);
        };
        let links = meta.n(attr::LINKS);
        let old = meta.n(AT).is_none_or(|t| t < cutoff);
        match links {
            Some(0) if old => {}
            // Young: a later collection decides.
            Some(0) => return Ok(None),
            // Linked again (its next unlink queues it again), or recorded
            // before links were counted (never collected).
            _ => {
                if !dry_run {
                    self.drop_candidate(entry).await?;
                }
                return Ok(None);
            }
        }
        let size = meta.n(attr::SIZE).unwrap_or(0);
        if dry_run {
            return Ok(Some(size));
        }
        let Some(key) = meta.s(attr::KEY).map(str::to_owned) else {
            return Ok(None);
        };
        // The record goes only if still unlinked and untouched since the
        // cutoff; the entry remembers the object in the same transaction.
        let ops = vec![
            WriteOp::Delete {
                pk: keys::blob(digest),
                sk: keys::META.to_owned(),
                cond: Cond::All(vec![
                    Cond::Eq(attr::LINKS.to_owned(), Attr::N(0)),
                    Cond::Eq(attr::KEY.to_owned(), Attr::S(key.clone())),
                    Cond::Any(vec![
                        Cond::Missing(AT.to_owned()),
                        Cond::Lt(AT.to_owned(), cutoff),
                    ]),
                ]),
            },
            WriteOp::Put {
                item: entry.clone().with(attr::KEY, Attr::S(key.clone())),
                cond: candidate_unchanged(entry),
            },
        ];
        match self.kv.transact(ops).await {
            Ok(()) => {}
            // Linked again or touched meanwhile: it stays.
            Err(KvError::ConditionFailed { .. } | KvError::Conflict) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.blobs.delete(&key).await?;
        self.drop_candidate(&entry.clone().with(attr::KEY, Attr::S(key)))
            .await?;
        Ok(Some(size))
    }

    /// Removes a candidate entry unless an unlink queued the blob again
    /// since it was read.
    async fn drop_candidate(&self, entry: &Item) -> Result<()> {
        let op = WriteOp::Delete {
            pk: entry.pk.clone(),
            sk: entry.sk.clone(),
            cond: candidate_unchanged(entry),
        };
        match self.kv.write(op).await {
            Ok(()) | Err(KvError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Calls `f` on every item of `pk` under `prefix`, a page at a time.
    async fn each(&self, pk: &str, prefix: &str, mut f: impl FnMut(&Item)) -> Result<()> {
        let mut q = Query::prefix(pk, prefix, 500);
        loop {
            let page = self.kv.query(&q).await?;
            page.items.iter().for_each(&mut f);
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(()),
            }
        }
    }
}

/// A candidate entry is rewritten (with a new mark) by every unlink.
fn candidate_unchanged(entry: &Item) -> Cond {
    match entry.s(attr::NONCE) {
        Some(n) => Cond::Eq(attr::NONCE.to_owned(), Attr::S(n.to_owned())),
        None => Cond::Exists,
    }
}

/// The candidate entry an unlink writes for `digest`.
pub(super) fn candidate(digest: &Digest) -> Item {
    Item::new(keys::gc_candidates(digest), digest.to_string())
        .with(attr::NONCE, Attr::S(super::artifacts::nonce()))
}
