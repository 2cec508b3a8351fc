//! Exact storage usage per project (Harbor's quotas), and the reference
//! counts that keep it exact.
//!
//! A project is charged once for each digest any of its repositories holds,
//! as a blob link or as a manifest — a layer shared by ten repositories of
//! one project counts once, as in Harbor. `QREF#<project>#<digest>` counts
//! the holders; the project's `QUOTA#` item changes by the digest's size
//! exactly when that count leaves or reaches zero, in the same transaction
//! as the link or manifest write that moves it. Nothing recounts, so
//! nothing drifts: [`Registry::recount_usage`] exists only to prove it.
//!
//! The quota item carries `used`, the `limit` (absent: unlimited) and
//! `room` = limit − used (or a huge number without a limit). A charge adds
//! to `used`, takes from `room`, and is conditioned on `room` covering it,
//! so two concurrent pushes can never both squeeze under the limit.

use std::collections::BTreeMap;

use super::keys::{self, attr};
use super::{Registry, RegistryError, Result};
use crate::oci::{Digest, RepoName};
use crate::store::{Attr, Cond, Item, KvError, Query, WriteOp};

/// The room a project without a limit has: more than any registry holds.
const UNLIMITED_ROOM: i64 = i64::MAX / 4;

/// A project's storage usage and limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub project: String,
    /// Bytes used.
    pub used: i64,
    /// Bytes allowed; `None`: unlimited (Harbor's `-1`).
    pub limit: Option<i64>,
    /// When usage was first recorded (epoch seconds).
    pub created: i64,
    pub updated: i64,
}

impl Usage {
    fn of(project: &str, item: &Item) -> Self {
        Self {
            project: project.to_owned(),
            used: item.n(attr::USED).unwrap_or(0),
            limit: item.n(attr::LIMIT),
            created: item.n(attr::CREATED).unwrap_or(0),
            updated: item.n(attr::UPDATED).unwrap_or(0),
        }
    }
}

/// The key of a project's quota item.
pub(super) fn quota_key(project: &str) -> (String, String) {
    (keys::quota(project), keys::META.to_owned())
}

/// The key of `digest`'s holder count in `project`.
pub(super) fn ref_key(project: &str, digest: &Digest) -> (String, String) {
    (keys::project_ref(project, digest), keys::META.to_owned())
}

/// Writes adding one holder of `digest` (`size` bytes) to `project`, given
/// its count as read; returns the bytes the project is newly charged.
pub(super) fn hold(
    ops: &mut Vec<WriteOp>,
    project: &str,
    digest: &Digest,
    size: i64,
    count: Option<&Item>,
) -> i64 {
    let (pk, sk) = ref_key(project, digest);
    match count.and_then(|c| c.n(attr::COUNT)) {
        None => {
            ops.push(WriteOp::Put {
                item: Item::new(pk, sk)
                    .with(attr::COUNT, Attr::N(1))
                    .with(attr::SIZE, Attr::N(size)),
                cond: Cond::NotExists,
            });
            size
        }
        Some(n) => {
            ops.push(WriteOp::Update {
                pk,
                sk,
                set: [(attr::COUNT.to_owned(), Attr::N(n + 1))].into(),
                cond: Cond::Eq(attr::COUNT.to_owned(), Attr::N(n)),
            });
            0
        }
    }
}

/// Writes removing one holder of `digest` from `project`, given its count
/// as read; returns the bytes released (the size when it was the last).
pub(super) fn release(
    ops: &mut Vec<WriteOp>,
    project: &str,
    digest: &Digest,
    count: Option<&Item>,
) -> i64 {
    let (pk, sk) = ref_key(project, digest);
    let Some(c) = count else {
        // Held before usage was counted (or counted by nobody): nothing to give back.
        return 0;
    };
    let n = c.n(attr::COUNT).unwrap_or(0);
    let read = Cond::Eq(attr::COUNT.to_owned(), Attr::N(n));
    if n <= 1 {
        ops.push(WriteOp::Delete { pk, sk, cond: read });
        c.n(attr::SIZE).unwrap_or(0)
    } else {
        ops.push(WriteOp::Update {
            pk,
            sk,
            set: [(attr::COUNT.to_owned(), Attr::N(n - 1))].into(),
            cond: read,
        });
        0
    }
}

/// Charges gathered over one transaction: one write per project.
#[derive(Debug, Default)]
pub(super) struct Charges(BTreeMap<String, i64>);

impl Charges {
    pub(super) fn add(&mut self, project: &str, bytes: i64) {
        if bytes != 0 {
            *self.0.entry(project.to_owned()).or_default() += bytes;
        }
    }

    /// Appends the quota writes; returns where they start in `ops`.
    pub(super) fn push_into(&self, ops: &mut Vec<WriteOp>, now: i64) -> usize {
        let at = ops.len();
        ops.extend(
            self.0
                .iter()
                .filter(|(_, d)| **d != 0)
                .map(|(p, d)| charge(p, *d, now)),
        );
        at
    }

    /// Adds a `QUOTA_WARNING` event when this change takes `project` across
    /// `pct` percent of its limit (`quota`: its item as read before).
    pub(super) fn warn(
        &self,
        ops: &mut Vec<WriteOp>,
        project: &str,
        quota: Option<&Item>,
        pct: u8,
    ) {
        let (Some(q), Some(delta)) = (quota, self.0.get(project)) else {
            return;
        };
        let (Some(limit), used) = (q.n(attr::LIMIT), q.n(attr::USED).unwrap_or(0)) else {
            return;
        };
        let line = i128::from(limit) * i128::from(pct);
        let (before, after) = (i128::from(used) * 100, i128::from(used + delta) * 100);
        if pct > 0 && limit > 0 && before < line && after >= line {
            ops.push(super::events::outbox_put(&super::events::Event::new(
                super::events::QUOTA_WARNING,
                project,
                serde_json::json!({"used": used + delta, "limit": limit, "percent": pct}),
            )));
        }
    }

    /// The project charged by the write at `index` of `ops` (from `at`).
    pub(super) fn project_at(&self, at: usize, index: usize) -> Option<(&str, i64)> {
        let i = index.checked_sub(at)?;
        self.0
            .iter()
            .filter(|(_, d)| **d != 0)
            .nth(i)
            .map(|(p, d)| (p.as_str(), *d))
    }
}

/// The quota item's change by `delta` bytes. A growth needs the room for
/// it; every change needs the item (created once per project by
/// [`Registry::ensure_quota`]).
fn charge(project: &str, delta: i64, now: i64) -> WriteOp {
    WriteOp::Upsert {
        pk: keys::quota(project),
        sk: keys::META.to_owned(),
        add: [
            (attr::USED.to_owned(), delta),
            (attr::ROOM.to_owned(), -delta),
        ]
        .into(),
        set: [(attr::UPDATED.to_owned(), Attr::N(now))].into(),
        init: BTreeMap::new(),
        cond: if delta > 0 {
            Cond::Ge(attr::ROOM.to_owned(), delta)
        } else {
            Cond::Exists
        },
    }
}

/// Harbor's words for a size.
fn human(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

impl Registry {
    /// What a failed charge means: the project is over its quota (an
    /// error for the client), or the item was missing or moved (created
    /// now; the caller retries with [`KvError::Conflict`]).
    pub(super) async fn refused_charge(&self, project: &str, delta: i64) -> RegistryError {
        match self.kv.get(&keys::quota(project), keys::META).await {
            Ok(None) => match self.ensure_quota(project).await {
                Ok(_) => RegistryError::Kv(KvError::Conflict),
                Err(e) => e,
            },
            Ok(Some(item)) => {
                let u = Usage::of(project, &item);
                match u.limit {
                    Some(limit) if item.n(attr::ROOM).unwrap_or(0) < delta => {
                        self.raise(super::events::Event::new(
                            super::events::QUOTA_EXCEED,
                            project,
                            serde_json::json!({"used": u.used, "limit": limit, "adding": delta}),
                        ))
                        .await;
                        RegistryError::QuotaExceeded(format!(
                            "quota exceeded when processing the request of adding {} of storage \
                             resource, which when updated to current usage of {} will exceed the \
                             configured upper limit of {} (project {project})",
                            human(delta),
                            human(u.used),
                            human(limit)
                        ))
                    }
                    _ => RegistryError::Kv(KvError::Conflict),
                }
            }
            Err(e) => e.into(),
        }
    }

    /// The project's usage item, created (from a recount, for data stored
    /// before usage was counted) if it does not exist yet.
    pub async fn ensure_quota(&self, project: &str) -> Result<Usage> {
        if let Some(item) = self.kv.get(&keys::quota(project), keys::META).await? {
            return Ok(Usage::of(project, &item));
        }
        let used = self.recount_usage(project).await?;
        let now = crate::store::now_secs();
        let item = Item::new(keys::quota(project), keys::META)
            .with(attr::USED, Attr::N(used))
            .with(attr::ROOM, Attr::N(UNLIMITED_ROOM - used))
            .with(attr::CREATED, Attr::N(now))
            .with(attr::UPDATED, Attr::N(now));
        match self
            .kv
            .write(WriteOp::Put {
                item: item.clone(),
                cond: Cond::NotExists,
            })
            .await
        {
            Ok(()) => Ok(Usage::of(project, &item)),
            Err(KvError::ConditionFailed { .. }) => {
                let item = self.kv.get(&keys::quota(project), keys::META).await?;
                Ok(Usage::of(
                    project,
                    &item.unwrap_or(item_placeholder(project)),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The project's usage (and limit).
    pub async fn usage(&self, project: &str) -> Result<Usage> {
        self.ensure_quota(project).await
    }

    /// Sets (or, with `None`, lifts) the project's storage limit. A limit
    /// below what is used is allowed: nothing more fits until usage drops.
    pub async fn set_quota_limit(&self, project: &str, limit: Option<i64>) -> Result<Usage> {
        if limit.is_some_and(|l| l < 0) {
            return Err(RegistryError::BadParameter(
                "a storage limit is -1 (unlimited) or a number of bytes".into(),
            ));
        }
        for _ in 0..20 {
            let current = self.ensure_quota(project).await?;
            let room = limit.map_or(UNLIMITED_ROOM, |l| l) - current.used;
            let now = crate::store::now_secs();
            let mut item = Item::new(keys::quota(project), keys::META)
                .with(attr::USED, Attr::N(current.used))
                .with(attr::ROOM, Attr::N(room))
                .with(attr::CREATED, Attr::N(current.created))
                .with(attr::UPDATED, Attr::N(now));
            if let Some(l) = limit {
                item = item.with(attr::LIMIT, Attr::N(l));
            }
            let cond = Cond::Eq(attr::USED.to_owned(), Attr::N(current.used));
            match self.kv.write(WriteOp::Put { item, cond }).await {
                Ok(()) => {
                    return Ok(Usage {
                        limit,
                        updated: now,
                        ..current
                    });
                }
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RegistryError::Busy)
    }

    /// The bytes `projects` use together, as recorded (a project with no
    /// usage item yet counts 0): batch reads of their quota items.
    pub async fn total_usage(&self, projects: &[String]) -> Result<i64> {
        let mut total = 0;
        for chunk in projects.chunks(100) {
            let keys: Vec<(String, String)> = chunk.iter().map(|p| quota_key(p)).collect();
            total += self
                .kv
                .batch_get(&keys)
                .await?
                .iter()
                .flatten()
                .filter_map(|i| i.n(attr::USED))
                .sum::<i64>();
        }
        Ok(total)
    }

    /// Forgets a project's usage (the project is being deleted).
    pub async fn delete_quota(&self, project: &str) -> Result<()> {
        Ok(self
            .kv
            .write(WriteOp::delete(keys::quota(project), keys::META))
            .await?)
    }

    /// The repositories of `project` that hold anything.
    pub async fn linked_repositories(&self, project: &str) -> Result<Vec<RepoName>> {
        let pk = keys::linked(project);
        let names = self.sort_keys(&pk, &format!("{project}/")).await?;
        Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// Counts a project's usage from scratch: every distinct digest its
    /// repositories link or hold as a manifest, once. Reads everything; for
    /// tests, checks and the first use of a project stored before usage
    /// was counted.
    pub async fn recount_usage(&self, project: &str) -> Result<i64> {
        let mut sizes: BTreeMap<String, i64> = BTreeMap::new();
        for repo in self.linked_repositories(project).await? {
            let pk = keys::repo(&repo);
            for prefix in [keys::BLOB_PREFIX, "MANIFEST#"] {
                let mut q = Query::prefix(&pk, prefix, 500);
                loop {
                    let page = self.kv.query(&q).await?;
                    for item in &page.items {
                        let digest = item.sk.strip_prefix(prefix).unwrap_or_default();
                        sizes.insert(digest.to_owned(), item.n(attr::SIZE).unwrap_or(0));
                    }
                    match page.next {
                        Some(n) => q.after = Some(n),
                        None => break,
                    }
                }
            }
        }
        Ok(sizes.values().sum())
    }
}

fn item_placeholder(project: &str) -> Item {
    Item::new(keys::quota(project), keys::META)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_harbor_writes_them() {
        assert_eq!(human(0), "0.0 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn charges_fold_per_project_and_find_the_failed_one() {
        let mut c = Charges::default();
        c.add("a", 5);
        c.add("b", 0);
        c.add("a", -2);
        c.add("c", 7);
        let mut ops = vec![WriteOp::delete("x", "y")];
        let at = c.push_into(&mut ops, 1);
        assert_eq!(at, 1);
        assert_eq!(ops.len(), 3);
        assert_eq!(c.project_at(at, 2), Some(("c", 7)));
        assert_eq!(c.project_at(at, 0), None);
    }
}
