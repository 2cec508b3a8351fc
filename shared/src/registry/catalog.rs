//! What the management API reads about repositories and artifacts, and
//! the few changes it makes beyond the registry protocol: descriptions,
//! repository deletion, copies, pull counts.
//!
//! Every listing is one query on one partition with a cursor plus one
//! batch read of the records it names; every total is one counter read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::artifacts::art_of;
use super::keys::{self, attr};
use super::{Registry, RegistryError, Result};
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, Reference, RepoName, Tag};
use crate::store::blob::read_all;
use crate::store::{Attr, Cond, Item, KvError, Query, WriteOp, now_secs};

/// A repository as the API shows it.
#[derive(Debug, Clone, Default)]
pub struct RepoRecord {
    pub name: String,
    pub artifacts: i64,
    pub pulls: i64,
    pub created: i64,
    pub updated: i64,
    pub description: String,
}

impl RepoRecord {
    fn of(name: String, catalog: Option<&Item>, meta: Option<&Item>) -> Self {
        let n = |a: &str| meta.and_then(|m| m.n(a)).unwrap_or(0);
        let created = meta
            .and_then(|m| m.n(attr::CREATED))
            .or_else(|| catalog.and_then(|c| c.n(attr::CREATED)))
            .unwrap_or(0);
        Self {
            name,
            artifacts: n(attr::ARTIFACTS).max(0),
            pulls: n(attr::PULLS).max(0),
            created,
            updated: meta.and_then(|m| m.n(attr::UPDATED)).unwrap_or(created),
            description: meta
                .and_then(|m| m.s(attr::DESCRIPTION))
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// A manifest as the API shows it.
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub pushed: i64,
    pub pulled: i64,
    /// The manifest's bytes.
    pub bytes: Bytes,
    /// How many indexes in the repository list it.
    pub parents: i64,
    /// `(type, subject)` when it is an accessory.
    pub accessory: Option<(String, Digest)>,
    /// Whether Harbor would list it on its own.
    pub top_level: bool,
}

impl ArtifactRecord {
    /// The manifests an index lists (none for anything else).
    pub fn children(&self) -> Vec<Digest> {
        crate::oci::manifest::parse_manifest(Some(&self.media_type), &self.bytes)
            .map(|p| p.children.into_iter().map(|c| c.digest).collect())
            .unwrap_or_default()
    }
}

/// A tag as the API shows it.
#[derive(Debug, Clone)]
pub struct TagRecord {
    pub name: String,
    pub pushed: i64,
}

/// An accessory as the API shows it.
#[derive(Debug, Clone)]
pub struct AccessoryRecord {
    pub digest: Digest,
    pub kind: String,
    pub size: u64,
    pub pushed: i64,
}

/// One page and where the next starts.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// The cursor after the last entry examined, when more may follow.
    pub next: Option<String>,
}

/// Where a listing starts and which way it goes: after the sort key
/// `after` (a page cursor), in ascending or descending key order.
#[derive(Debug, Clone, Default)]
pub struct Order {
    pub after: Option<String>,
    pub reverse: bool,
}

/// The most index entries one filtered page examines before answering
/// with what it found (the cursor continues from there).
pub const MAX_EXAMINED: usize = 2_000;

impl Registry {
    /// The repository record, if the repository exists.
    pub async fn repository(&self, repo: &RepoName) -> Result<Option<RepoRecord>> {
        let found = self
            .kv
            .batch_get(&[
                (keys::CATALOG.to_owned(), keys::catalog_entry(repo)),
                (keys::repo(repo), keys::META.to_owned()),
            ])
            .await?;
        Ok(found[0]
            .as_ref()
            .map(|c| RepoRecord::of(repo.to_string(), Some(c), found[1].as_ref())))
    }

    /// Repositories whose names start with `prefix` (`"<project>/"`, or
    /// `""` for all), in name order after the cursor `after`, keeping
    /// those `keep` accepts; at most `limit`, examining at most
    /// [`MAX_EXAMINED`] entries.
    pub async fn repositories(
        &self,
        prefix: &str,
        order: Order,
        limit: usize,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Paged<RepoRecord>> {
        let full = format!("{}{prefix}", keys::REPO_PREFIX);
        let (entries, next) = self
            .walk(keys::CATALOG, &full, order, limit, &|i: &Item| {
                keep(&i.sk[keys::REPO_PREFIX.len()..])
            })
            .await?;
        let lookups: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                (
                    format!("{}{}", keys::REPO_PREFIX, &e.sk[keys::REPO_PREFIX.len()..]),
                    keys::META.to_owned(),
                )
            })
            .collect();
        let metas = self.batch(&lookups).await?;
        let items = entries
            .iter()
            .zip(&metas)
            .map(|(e, m)| {
                RepoRecord::of(
                    e.sk[keys::REPO_PREFIX.len()..].to_owned(),
                    Some(e),
                    m.as_ref(),
                )
            })
            .collect();
        Ok(Paged { items, next })
    }

    /// The number of repositories of a project (or of all, with
    /// [`keys::ALL_PROJECTS`]): one read.
    pub async fn repository_count(&self, project: &str) -> Result<i64> {
        let item = self
            .kv
            .get(&keys::project_stats(project), keys::META)
            .await?;
        Ok(item.and_then(|i| i.n(attr::REPOS)).unwrap_or(0).max(0))
    }

    /// Sets a repository's description.
    pub async fn set_description(&self, repo: &RepoName, text: &str) -> Result<()> {
        if self.repository(repo).await?.is_none() {
            return Err(RegistryError::NameUnknown);
        }
        self.kv
            .write(WriteOp::Upsert {
                pk: keys::repo(repo),
                sk: keys::META.to_owned(),
                add: Default::default(),
                set: [(attr::DESCRIPTION.to_owned(), Attr::S(text.to_owned()))].into(),
                init: [(attr::CREATED.to_owned(), Attr::N(now_secs()))].into(),
                cond: Cond::Always,
            })
            .await?;
        Ok(())
    }

    /// One page of a repository's top-level artifacts, newest push first,
    /// after the cursor `after`, keeping those `keep` accepts; at most
    /// `limit`, examining at most [`MAX_EXAMINED`] index entries.
    pub async fn artifacts(
        &self,
        repo: &RepoName,
        order: Order,
        limit: usize,
        keep: &(dyn Fn(&ArtifactRecord) -> bool + Sync),
    ) -> Result<Paged<ArtifactRecord>> {
        let pk = keys::repo(repo);
        let mut out = Vec::new();
        let mut cursor = order.after;
        let mut examined = 0;
        loop {
            let want = limit.saturating_sub(out.len()).max(1);
            let (entries, next) = self
                .walk(
                    &pk,
                    keys::ART_PREFIX,
                    Order {
                        after: cursor.take(),
                        reverse: order.reverse,
                    },
                    want,
                    &|_| true,
                )
                .await?;
            examined += entries.len();
            let digests: Vec<Digest> = entries
                .iter()
                .filter_map(|i| keys::art_digest(&i.sk))
                .collect();
            let records = self.artifact_records(repo, &digests).await?;
            out.extend(records.into_iter().flatten().filter(|r| keep(r)));
            match next {
                Some(n) if out.len() < limit && examined < MAX_EXAMINED => cursor = Some(n),
                next => return Ok(Paged { items: out, next }),
            }
        }
    }

    /// The number of top-level artifacts of a repository: one read.
    pub async fn artifact_count(&self, repo: &RepoName) -> Result<i64> {
        let item = self.kv.get(&keys::repo(repo), keys::META).await?;
        Ok(item.and_then(|i| i.n(attr::ARTIFACTS)).unwrap_or(0).max(0))
    }

    /// An artifact by digest or tag.
    pub async fn artifact(&self, repo: &RepoName, reference: &Reference) -> Result<ArtifactRecord> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => self.tag_target(repo, t).await?,
        };
        self.artifact_records(repo, std::slice::from_ref(&digest))
            .await?
            .pop()
            .flatten()
            .ok_or(RegistryError::ManifestUnknown)
    }

    async fn tag_target(&self, repo: &RepoName, tag: &Tag) -> Result<Digest> {
        self.kv
            .get(&keys::repo(repo), &keys::tag(tag.as_str()))
            .await?
            .and_then(|i| i.s(attr::DIGEST).and_then(|d| parse_digest(d).ok()))
            .ok_or(RegistryError::ManifestUnknown)
    }

    /// Manifest records of `digests` (None where absent), in order.
    pub async fn artifact_records(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> Result<Vec<Option<ArtifactRecord>>> {
        let pk = keys::repo(repo);
        let lookups: Vec<(String, String)> = digests
            .iter()
            .map(|d| (pk.clone(), keys::manifest(d)))
            .collect();
        let items = self.batch(&lookups).await?;
        let mut out = Vec::with_capacity(items.len());
        for (d, item) in digests.iter().zip(items) {
            out.push(match item {
                Some(i) => Some(self.record_of(d, &i).await?),
                None => None,
            });
        }
        Ok(out)
    }

    async fn record_of(&self, digest: &Digest, item: &Item) -> Result<ArtifactRecord> {
        let bytes = match (item.b(attr::BYTES), item.s(attr::KEY)) {
            (Some(b), _) => Bytes::copy_from_slice(b),
            (None, Some(key)) => read_all(self.blobs.as_ref(), key).await?,
            (None, None) => Bytes::new(),
        };
        let accessory = match (item.s(attr::ACCESSORY), item.s(attr::ACCESSORY_OF)) {
            (Some(k), Some(s)) => parse_digest(s).ok().map(|s| (k.to_owned(), s)),
            _ => None,
        };
        Ok(ArtifactRecord {
            digest: digest.clone(),
            media_type: item.s(attr::MEDIA_TYPE).unwrap_or_default().to_owned(),
            size: item.n(attr::SIZE).unwrap_or(0).max(0) as u64,
            pushed: item.n(attr::PUSHED_AT).unwrap_or(0),
            pulled: item.n(attr::PULLED).unwrap_or(0),
            bytes,
            parents: item.n(attr::PARENTS).unwrap_or(0),
            top_level: art_of(item).is_some(),
            accessory,
        })
    }

    /// The tags pointing at an artifact, by name.
    pub async fn tags_of(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<TagRecord>> {
        let pk = keys::repo(repo);
        let prefix = keys::tag_of_prefix(digest);
        let names: Vec<String> = self
            .sort_keys(&pk, &prefix)
            .await?
            .into_iter()
            .map(|sk| sk[prefix.len()..].to_owned())
            .collect();
        let lookups: Vec<(String, String)> =
            names.iter().map(|n| (pk.clone(), keys::tag(n))).collect();
        let items = self.batch(&lookups).await?;
        let here = Attr::S(digest.to_string());
        Ok(names
            .into_iter()
            .zip(items)
            .filter_map(|(name, item)| {
                let item = item?;
                (item.attrs.get(attr::DIGEST) == Some(&here)).then(|| TagRecord {
                    name,
                    pushed: item.n(attr::PUSHED_AT).unwrap_or(0),
                })
            })
            .collect())
    }

    /// The accessories of an artifact.
    pub async fn accessories_of(
        &self,
        repo: &RepoName,
        subject: &Digest,
    ) -> Result<Vec<AccessoryRecord>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(keys::repo(repo), keys::accessory_prefix(subject), 100);
        loop {
            let page = self.kv.query(&q).await?;
            for i in &page.items {
                let Some(digest) = i.s(attr::DIGEST).and_then(|d| parse_digest(d).ok()) else {
                    continue;
                };
                out.push(AccessoryRecord {
                    digest,
                    kind: i.s(attr::TYPE).unwrap_or_default().to_owned(),
                    size: i.n(attr::SIZE).unwrap_or(0).max(0) as u64,
                    pushed: i.n(attr::PUSHED_AT).unwrap_or(0),
                });
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// The bytes of a blob linked into `repo`, if it is at most `max`
    /// bytes (configs, charts, READMEs: small things the API shows).
    pub async fn small_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        max: u64,
    ) -> Result<Option<Bytes>> {
        let info = match self.blob_info(repo, digest).await {
            Ok(i) => i,
            Err(RegistryError::BlobUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if info.size > max {
            return Ok(None);
        }
        Ok(Some(read_all(self.blobs.as_ref(), &info.key).await?))
    }

    /// Deletes a repository: every manifest (with its tags, entries and
    /// labels), every blob link, then the repository itself with its
    /// count — the last in one transaction, conditioned on it existing.
    pub async fn delete_repository(&self, repo: &RepoName) -> Result<()> {
        if self.repository(repo).await?.is_none() {
            return Err(RegistryError::NameUnknown);
        }
        let pk = keys::repo(repo);
        // Indexes and accessories first, so children and subjects are
        // free to go (a delete that finds something already gone is fine).
        let manifests = self.sort_keys(&pk, "MANIFEST#").await?;
        let mut digests: Vec<Digest> = manifests
            .iter()
            .filter_map(|sk| parse_digest(sk.strip_prefix("MANIFEST#")?).ok())
            .collect();
        let records = self.artifact_records(repo, &digests).await?;
        let rank = |r: &Option<ArtifactRecord>| match r {
            Some(r) if r.accessory.is_some() => 0,
            Some(r)
                if crate::oci::manifest::ManifestKind::from_media_type(&r.media_type)
                    .is_some_and(|k| k.is_index()) =>
            {
                1
            }
            _ => 2,
        };
        let mut ranked: Vec<(u8, Digest)> = records
            .iter()
            .zip(digests.drain(..))
            .map(|(r, d)| (rank(r), d))
            .collect();
        ranked.sort_by_key(|(r, _)| *r);
        for (_, d) in ranked {
            match self.delete_manifest(repo, &Reference::Digest(d)).await {
                Ok(()) | Err(RegistryError::ManifestUnknown) => {}
                Err(e) => return Err(e),
            }
        }
        // Blob links, with their counts; then whatever else the partition
        // holds (stray entries).
        let mut links = Vec::new();
        let mut q = Query::prefix(&pk, keys::BLOB_PREFIX, 500);
        loop {
            let page = self.kv.query(&q).await?;
            links.extend(page.items);
            match page.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        self.ensure_quota(keys::project_of(repo.as_str())).await?;
        self.unlink(repo, links, &|_| Cond::Exists).await?;
        let rest = self.sort_keys(&pk, "").await?;
        let deletions: Vec<WriteOp> = rest
            .into_iter()
            .filter(|sk| sk != keys::META && !sk.starts_with(keys::BLOB_PREFIX))
            .map(|sk| WriteOp::delete(&pk, sk))
            .collect();
        for chunk in deletions.chunks(crate::store::kv::MAX_TRANSACTION_OPS) {
            self.kv.transact(chunk.to_vec()).await?;
        }
        let project = keys::project_of(repo.as_str());
        let ops = vec![
            WriteOp::Delete {
                pk: keys::CATALOG.to_owned(),
                sk: keys::catalog_entry(repo),
                cond: Cond::Exists,
            },
            WriteOp::delete(&pk, keys::META),
            WriteOp::count(keys::project_stats(project), keys::META, attr::REPOS, -1),
            WriteOp::count(
                keys::project_stats(keys::ALL_PROJECTS),
                keys::META,
                attr::REPOS,
                -1,
            ),
        ];
        match self.kv.transact(ops).await {
            Err(KvError::ConditionFailed { .. }) => Err(RegistryError::NameUnknown),
            r => Ok(r?),
        }
    }

    /// One artifact's record, if the repository holds it.
    pub async fn artifact_record(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<ArtifactRecord>> {
        Ok(self
            .artifact_records(repo, std::slice::from_ref(digest))
            .await?
            .pop()
            .flatten())
    }

    /// Deletes an artifact as Harbor does: with its tags, its
    /// accessories, and the index children nothing else lists.
    pub async fn delete_artifact(&self, repo: &RepoName, rec: &ArtifactRecord) -> Result<()> {
        self.delete_deeply(repo, rec, 0).await
    }

    async fn delete_deeply(&self, repo: &RepoName, rec: &ArtifactRecord, depth: u8) -> Result<()> {
        if depth < 4 {
            for a in self.accessories_of(repo, &rec.digest).await? {
                if let Some(acc) = self.artifact_record(repo, &a.digest).await? {
                    Box::pin(self.delete_deeply(repo, &acc, depth + 1)).await?;
                }
            }
        }
        match self
            .delete_manifest(repo, &Reference::Digest(rec.digest.clone()))
            .await
        {
            Ok(()) | Err(RegistryError::ManifestUnknown) => {}
            Err(e) => return Err(e),
        }
        for child in self
            .artifact_records(repo, &rec.children())
            .await?
            .into_iter()
            .flatten()
        {
            let untagged = self.tags_of(repo, &child.digest).await?.is_empty();
            if child.parents == 0 && untagged && depth < 4 {
                Box::pin(self.delete_deeply(repo, &child, depth + 1)).await?;
            }
        }
        Ok(())
    }

    /// Points `tag` at the artifact `digest` without pushing it again (its
    /// push time stays): the tag's writes, on the condition that the
    /// artifact is unchanged since read.
    pub async fn add_tag(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> Result<()> {
        let pk = keys::repo(repo);
        let mut backoff = super::manifests::Backoff::default();
        loop {
            let found = self
                .kv
                .batch_get(&[
                    (pk.clone(), keys::manifest(digest)),
                    (pk.clone(), keys::tag(tag.as_str())),
                    crate::policy::immutable::rules_key(keys::project_of(repo.as_str())),
                ])
                .await?;
            let Some(item) = &found[0] else {
                return Err(RegistryError::ManifestUnknown);
            };
            let moves = found[1]
                .as_ref()
                .and_then(|t| t.s(attr::DIGEST))
                .is_some_and(|d| d != digest.as_ref());
            if moves && self.immutable_tag(repo, tag.as_str(), found[2].as_ref()) {
                return Err(super::manifests::immutable_refusal(
                    repo,
                    tag.as_str(),
                    super::manifests::Refused::Update,
                ));
            }
            let rec = self.record_of(digest, item).await?;
            let parsed = crate::oci::manifest::parse_manifest(Some(&rec.media_type), &rec.bytes)?;
            let mut ops = super::manifests::tag_ops(
                repo,
                tag,
                digest,
                &parsed,
                rec.bytes.len(),
                now_secs(),
                found[1].as_ref(),
            );
            // A new nonce: a delete that read the manifest before this tag
            // existed must read again (and take the tag with it).
            ops.push(WriteOp::Update {
                pk: pk.clone(),
                sk: keys::manifest(digest),
                set: [(attr::NONCE.to_owned(), Attr::S(super::artifacts::nonce()))].into(),
                cond: super::artifacts::unchanged(item),
            });
            match self.kv.transact(ops).await {
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => backoff.wait().await?,
                r => return Ok(r?),
            }
        }
    }

    /// Copies an artifact (its index children first) into `to`, with its
    /// tags: blobs are linked, not copied (they are content-addressed).
    pub async fn copy_artifact(
        &self,
        from: &RepoName,
        reference: &Reference,
        to: &RepoName,
    ) -> Result<Digest> {
        let art = self.artifact(from, reference).await?;
        let parsed = crate::oci::manifest::parse_manifest(Some(&art.media_type), &art.bytes)?;
        for child in &parsed.children {
            Box::pin(self.copy_artifact(from, &Reference::Digest(child.digest.clone()), to))
                .await?;
        }
        for b in &parsed.blobs {
            if !self.mount_blob(to, &b.digest, Some(from)).await? {
                return Err(RegistryError::BlobUnknown(b.digest.clone()));
            }
        }
        let by_digest = Reference::Digest(art.digest.clone());
        self.put_manifest(to, &by_digest, Some(&art.media_type), art.bytes.clone())
            .await?;
        for t in self.tags_of(from, &art.digest).await? {
            if let Ok(tag) = t.name.parse::<Tag>() {
                self.put_manifest(
                    to,
                    &Reference::Tag(tag),
                    Some(&art.media_type),
                    art.bytes.clone(),
                )
                .await?;
            }
        }
        Ok(art.digest)
    }

    /// Entries of `pk` under `prefix` after `after` that `keep` accepts:
    /// at most `limit`, examining at most [`MAX_EXAMINED`]; the cursor
    /// is the last entry examined when more may follow.
    async fn walk(
        &self,
        pk: &str,
        prefix: &str,
        order: Order,
        limit: usize,
        keep: &(dyn Fn(&Item) -> bool + Sync),
    ) -> Result<(Vec<Item>, Option<String>)> {
        let mut q = Query::prefix(pk, prefix, limit.clamp(1, 1000));
        q.after = order.after;
        q.reverse = order.reverse;
        let mut out = Vec::new();
        let mut examined = 0;
        loop {
            let page = self.kv.query(&q).await?;
            let n = page.items.len();
            for (i, item) in page.items.into_iter().enumerate() {
                examined += 1;
                let sk = item.sk.clone();
                if keep(&item) {
                    out.push(item);
                }
                let more = page.next.is_some() || i + 1 < n;
                if out.len() == limit || examined >= MAX_EXAMINED {
                    return Ok((out, more.then_some(sk)));
                }
            }
            match page.next {
                Some(next) => q.after = Some(next),
                None => return Ok((out, None)),
            }
        }
    }

    /// A batch read of any number of keys.
    async fn batch(&self, lookups: &[(String, String)]) -> Result<Vec<Option<Item>>> {
        let mut out = Vec::with_capacity(lookups.len());
        for chunk in lookups.chunks(100) {
            out.extend(self.kv.batch_get(chunk).await?);
        }
        Ok(out)
    }

    /// Counts a pull of `digest` in `repo`; returns the gathered counts
    /// when they are due to be written ([`Registry::write_pulls`]).
    pub fn note_pull(&self, repo: &RepoName, digest: &Digest) -> Option<Vec<PullCount>> {
        self.pulls.note(repo, digest, now_secs())
    }

    /// Writes whatever pull counts are gathered.
    pub async fn flush_pulls(&self) {
        let batch = self.pulls.take();
        if !batch.is_empty() {
            self.write_pulls(batch).await;
        }
    }

    /// Adds gathered pulls to the repositories' counts and the artifacts'
    /// last pull times: one write per repository and per artifact per
    /// batch, never one per pull. Failures are logged (counts are
    /// statistics; the pulls themselves succeeded).
    pub async fn write_pulls(&self, batch: Vec<PullCount>) {
        let mut per_repo: HashMap<String, i64> = HashMap::new();
        let mut ops = Vec::new();
        for p in &batch {
            *per_repo.entry(p.repo.clone()).or_default() += p.count;
            ops.push(WriteOp::Update {
                pk: format!("{}{}", keys::REPO_PREFIX, p.repo),
                sk: format!("MANIFEST#{}", p.digest),
                set: [(attr::PULLED.to_owned(), Attr::N(p.last))].into(),
                cond: Cond::Exists,
            });
        }
        for (repo, n) in per_repo {
            ops.push(WriteOp::Upsert {
                pk: format!("{}{repo}", keys::REPO_PREFIX),
                sk: keys::META.to_owned(),
                add: [(attr::PULLS.to_owned(), n)].into(),
                set: Default::default(),
                init: Default::default(),
                cond: Cond::Exists,
            });
        }
        // Each write alone: one deleted artifact must not cost the others.
        for op in ops {
            if let Err(e) = self.kv.write(op).await
                && !matches!(e, KvError::ConditionFailed { .. })
            {
                tracing::warn!(error = %e, "writing pull counts failed");
            }
        }
    }
}

/// Pulls of one artifact gathered since the last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullCount {
    pub repo: String,
    pub digest: String,
    pub count: i64,
    /// The latest pull (epoch seconds).
    pub last: i64,
}

/// Pulls gathered in memory between writes: at most [`Pulls::BATCH`]
/// distinct artifacts or [`Pulls::FLUSH_AFTER_SECS`], whichever first. A
/// pull of an artifact already gathered allocates nothing.
#[derive(Default)]
pub struct Pulls {
    inner: Mutex<Gathered>,
}

/// Counts by repository and digest, how many artifacts, and when the
/// oldest was gathered.
#[derive(Default)]
struct Gathered {
    by_repo: HashMap<String, HashMap<String, PullCount>>,
    artifacts: usize,
    since: Option<i64>,
}

impl Pulls {
    pub const BATCH: usize = 50;
    pub const FLUSH_AFTER_SECS: i64 = 10;

    fn note(&self, repo: &RepoName, digest: &Digest, now: i64) -> Option<Vec<PullCount>> {
        let mut g = self.inner.lock().unwrap_or_else(|x| x.into_inner());
        let g = &mut *g;
        let digests = match g.by_repo.get_mut(repo.as_str()) {
            Some(d) => d,
            None => g.by_repo.entry(repo.to_string()).or_default(),
        };
        let key: &str = digest.as_ref();
        match digests.get_mut(key) {
            Some(e) => {
                e.count += 1;
                e.last = e.last.max(now);
            }
            None => {
                digests.insert(
                    key.to_owned(),
                    PullCount {
                        repo: repo.to_string(),
                        digest: key.to_owned(),
                        count: 1,
                        last: now,
                    },
                );
                g.artifacts += 1;
            }
        }
        let since = *g.since.get_or_insert(now);
        (g.artifacts >= Self::BATCH || now - since >= Self::FLUSH_AFTER_SECS).then(|| drain(g))
    }

    fn take(&self) -> Vec<PullCount> {
        drain(&mut self.inner.lock().unwrap_or_else(|x| x.into_inner()))
    }
}

fn drain(g: &mut Gathered) -> Vec<PullCount> {
    let out = g
        .by_repo
        .drain()
        .flat_map(|(_, d)| d.into_values())
        .collect();
    g.artifacts = 0;
    g.since = None;
    out
}

/// Shared handle on the gathered pulls.
pub type SharedPulls = Arc<Pulls>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_gather_per_artifact_and_flush_at_fifty_or_ten_seconds() {
        let p = Pulls::default();
        let repo: RepoName = "p/app".parse().expect("repo");
        let d = |i: u8| crate::oci::sha256_digest(&[i]);
        for t in 0..3 {
            assert!(p.note(&repo, &d(0), 100 + t).is_none());
        }
        assert!(p.note(&repo, &d(1), 104).is_none());
        let mut got = p.take();
        got.sort_by_key(|c| c.count);
        assert_eq!(
            got.iter().map(|c| (c.count, c.last)).collect::<Vec<_>>(),
            [(1, 104), (3, 102)]
        );
        assert!(p.take().is_empty());
        // Fifty distinct artifacts make a batch; so does the tenth second.
        for i in 0..49 {
            assert!(p.note(&repo, &d(i), 200).is_none());
        }
        assert_eq!(p.note(&repo, &d(49), 200).map(|b| b.len()), Some(50));
        assert!(p.note(&repo, &d(0), 300).is_none());
        assert_eq!(p.note(&repo, &d(0), 310).map(|b| b[0].count), Some(2));
    }
}
