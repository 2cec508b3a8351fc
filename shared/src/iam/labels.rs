//! Labels (Harbor's `Label`): global labels and project labels, and their
//! attachments to artifacts.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `LABEL#<id>` | `META` | the label (JSON `doc`); `refs`: how many artifacts carry it |
//! | `LABELS#g` or `LABELS#p#<project id>` | `NAME#<name>` | the scope's index by name, with the label's `doc` and `id` |
//! | `LABELS#g` or `LABELS#p#<project id>` | `COUNT` | `n`: how many labels the scope holds |
//! | `REPO#<repo>` | `LABEL#<digest>#<id>` | an attachment ([`crate::registry::keys::artifact_label`]) |
//! | `LABELREF#<id>` | `<repo>@<digest>` | where a label is attached (reverse index) |
//!
//! A name is unique in its scope because its index item is written with
//! `NotExists` in the transaction that creates (or renames) the label; the
//! scope's count moves in the same transaction, so a listing's total is one
//! read. Attaching moves the label's `refs` with the condition that the
//! label exists, and deleting a label requires `refs` to be 0 once its
//! attachments are gone: an attachment racing with the delete either lands
//! before (and is removed by the delete's next round) or fails.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::directory::{Directory, DirectoryError, Result};
use crate::oci::{Digest, RepoName};
use crate::registry::keys as rkeys;
use crate::store::{Attr, Cond, Item, KvError, Query, WriteOp};

const DOC: &str = "doc";
const META: &str = "META";
/// Label item: attachments carrying it.
const REFS: &str = rkeys::attr::LABEL_REFS;
/// Scope count item: labels in the scope.
const N: &str = "n";
/// Reverse entry: the attachment's key.
const APK: &str = "apk";
const ASK: &str = "ask";
/// Sort-key prefix of a scope's name index (and of its page cursors).
pub const NAME_PREFIX: &str = "NAME#";
const COUNT: &str = "COUNT";
/// Attachments handled per transaction (three operations each).
const ATTACH_CHUNK: usize = 30;
/// Keys per `batch_get` (DynamoDB's limit).
const BATCH_GET: usize = 100;
/// Rounds a label delete waits out concurrent attachments before it
/// treats a `refs` that never reaches 0 as drift and deletes anyway.
const DELETE_ROUNDS: usize = 8;

/// Longest label name (Harbor's limit).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description (Berth's limit: items stay small).
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

pub mod keys {
    // A label's record and its reverse index are named by the registry's
    // keys, which an artifact delete writes too: one definition of each.
    pub use crate::registry::keys::{label_record as label, label_refs as label_ref};
    pub const GLOBAL_SCOPE: &str = "LABELS#g";
    pub fn project_scope(project_id: i64) -> String {
        format!("LABELS#p#{project_id}")
    }
    pub fn name(name: &str) -> String {
        format!("{}{name}", super::NAME_PREFIX)
    }
}

/// Where a label lives: everywhere (`g`) or in one project (`p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelScope {
    Global,
    Project(i64),
}

impl LabelScope {
    /// Harbor's `scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelScope::Global => "g",
            LabelScope::Project(_) => "p",
        }
    }

    /// Harbor's `project_id` (0 for global labels).
    pub fn project_id(self) -> i64 {
        match self {
            LabelScope::Global => 0,
            LabelScope::Project(p) => p,
        }
    }

    fn pk(self) -> String {
        match self {
            LabelScope::Global => keys::GLOBAL_SCOPE.to_owned(),
            LabelScope::Project(p) => keys::project_scope(p),
        }
    }
}

/// A label (Harbor's `Label`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub color: String,
    /// `g` or `p`.
    pub scope: String,
    /// The project of a `p` label; 0 for `g`.
    #[serde(default)]
    pub project_id: i64,
    pub created: i64,
    pub updated: i64,
}

impl Label {
    pub fn scope(&self) -> LabelScope {
        if self.scope == "p" {
            LabelScope::Project(self.project_id)
        } else {
            LabelScope::Global
        }
    }

    /// Harbor's rules (name 1 to 128 characters, scope `g` or `p`, a
    /// project for `p`) and Berth's: a color is `#rrggbb` or empty, a
    /// description at most [`MAX_DESCRIPTION_CHARS`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DirectoryError::Invalid(m));
        let chars = self.name.chars().count();
        if self.name.trim().is_empty() {
            return bad("label name is required".to_owned());
        }
        if chars > MAX_NAME_CHARS {
            return bad(format!(
                "label name is too long: at most {MAX_NAME_CHARS} characters"
            ));
        }
        if self.name.chars().any(char::is_control) {
            return bad("label name must not hold control characters".to_owned());
        }
        if !valid_color(&self.color) {
            return bad(format!(
                "label color {:?} is invalid: use #rrggbb or leave it empty",
                self.color
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return bad(format!(
                "label description is too long: at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        match (self.scope.as_str(), self.project_id) {
            ("g", 0) => Ok(()),
            ("g", _) => bad("a global label belongs to no project".to_owned()),
            ("p", p) if p > 0 => Ok(()),
            ("p", _) => bad("a project label needs a project_id".to_owned()),
            (s, _) => bad(format!("invalid label scope {s:?}: use g or p")),
        }
    }
}

/// `#rrggbb` (any case) or empty.
pub fn valid_color(c: &str) -> bool {
    c.is_empty()
        || (c.len() == 7 && c.starts_with('#') && c.bytes().skip(1).all(|b| b.is_ascii_hexdigit()))
}

fn encode(l: &Label) -> Attr {
    Attr::S(serde_json::to_string(l).unwrap_or_default())
}

fn decode(item: &Item) -> Result<Label> {
    let s = item
        .s(DOC)
        .ok_or_else(|| DirectoryError::Corrupt(format!("{} has no document", item.pk)))?;
    serde_json::from_str(s).map_err(|e| DirectoryError::Corrupt(format!("{}: {e}", item.pk)))
}

fn index_item(l: &Label) -> Item {
    Item::new(l.scope().pk(), keys::name(&l.name))
        .with("id", Attr::N(l.id))
        .with(DOC, encode(l))
}

fn count_op(scope: LabelScope, delta: i64) -> WriteOp {
    WriteOp::count(scope.pk(), COUNT, N, delta)
}

/// Moves a label's attachment count, on the condition that it exists.
fn refs_op(label_id: i64, delta: i64) -> WriteOp {
    WriteOp::Upsert {
        pk: keys::label(label_id),
        sk: META.to_owned(),
        add: [(REFS.to_owned(), delta)].into(),
        set: BTreeMap::new(),
        init: BTreeMap::new(),
        cond: Cond::Exists,
    }
}

fn label_ref_sk(repo: &RepoName, digest: &Digest) -> String {
    rkeys::label_ref_entry(repo, digest)
}

/// Labels and their attachments, over the directory's store.
#[derive(Clone)]
pub struct Labels {
    dir: Directory,
}

impl Directory {
    /// The label store.
    pub fn labels(&self) -> Labels {
        Labels { dir: self.clone() }
    }
}

impl Labels {
    pub async fn get(&self, id: i64) -> Result<Option<Label>> {
        match self.dir.kv().get(&keys::label(id), META).await? {
            Some(item) => decode(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Many labels in one batch read per 100, in the order of `ids`
    /// (missing ones left out).
    pub async fn get_many(&self, ids: &[i64]) -> Result<Vec<Label>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET) {
            let lookups: Vec<(String, String)> = chunk
                .iter()
                .map(|id| (keys::label(*id), META.to_owned()))
                .collect();
            for item in self
                .dir
                .kv()
                .batch_get(&lookups)
                .await?
                .into_iter()
                .flatten()
            {
                out.push(decode(&item)?);
            }
        }
        Ok(out)
    }

    /// Creates a label (validated here) with a new id; a project label's
    /// project must exist. A name taken in the scope is a conflict.
    pub async fn create(&self, mut label: Label) -> Result<Label> {
        label.validate()?;
        label.id = self.dir.next_id("label").await?;
        let scope = label.scope();
        let mut ops = vec![
            WriteOp::Put {
                item: Item::new(keys::label(label.id), META)
                    .with(DOC, encode(&label))
                    .with(REFS, Attr::N(0)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: index_item(&label),
                cond: Cond::NotExists,
            },
            count_op(scope, 1),
        ];
        if let LabelScope::Project(p) = scope {
            ops.push(WriteOp::Check {
                pk: super::directory::keys::project_id(p),
                sk: META.to_owned(),
                cond: Cond::Exists,
            });
        }
        self.dir.kv().transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { index: 3 } => {
                DirectoryError::NotFound(format!("project {} not found", scope.project_id()))
            }
            KvError::ConditionFailed { .. } => {
                DirectoryError::Conflict(format!("label {} already exists", label.name))
            }
            e => e.into(),
        })?;
        Ok(label)
    }

    /// Replaces a label (its name, description and color; never its scope),
    /// on the condition that it is still `previous`. A rename moves the
    /// name's index entry in the same transaction, conditioned on the new
    /// name being free, so concurrent renames cannot make duplicates.
    pub async fn save(&self, previous: &Label, next: &Label) -> Result<()> {
        next.validate()?;
        if next.id != previous.id
            || next.scope != previous.scope
            || next.project_id != previous.project_id
        {
            return Err(DirectoryError::Invalid(
                "a label's id and scope cannot change".to_owned(),
            ));
        }
        let mut ops = vec![WriteOp::Update {
            pk: keys::label(next.id),
            sk: META.to_owned(),
            set: [(DOC.to_owned(), encode(next))].into(),
            cond: Cond::Eq(DOC.to_owned(), encode(previous)),
        }];
        if next.name == previous.name {
            ops.push(WriteOp::Put {
                item: index_item(next),
                cond: Cond::Exists,
            });
        } else {
            ops.push(WriteOp::delete(
                previous.scope().pk(),
                keys::name(&previous.name),
            ));
            ops.push(WriteOp::Put {
                item: index_item(next),
                cond: Cond::NotExists,
            });
        }
        let renamed = next.name != previous.name;
        self.dir.kv().transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { index: 2 } if renamed => {
                DirectoryError::Conflict(format!("label {} already exists", next.name))
            }
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(
                "the label was changed by another request; try again".to_owned(),
            ),
            e => e.into(),
        })
    }

    /// How many labels a scope holds (one read).
    pub async fn count(&self, scope: LabelScope) -> Result<usize> {
        let item = self.dir.kv().get(&scope.pk(), COUNT).await?;
        Ok(item
            .and_then(|i| i.n(N))
            .map_or(0, |n| usize::try_from(n).unwrap_or(0)))
    }

    /// One page of a scope's labels by name: at most `limit` after the
    /// cursor `after` (a previous page's `next`).
    pub async fn page(
        &self,
        scope: LabelScope,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Label>, Option<String>)> {
        let mut q = Query::prefix(scope.pk(), NAME_PREFIX, limit.max(1));
        q.after = after;
        let page = self.dir.kv().query(&q).await?;
        let labels = page.items.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok((labels, page.next))
    }

    /// The labels of a scope by name, at most `max` of them.
    pub async fn list(&self, scope: LabelScope, max: usize) -> Result<Vec<Label>> {
        let mut out = Vec::new();
        let mut after = None;
        while out.len() < max {
            let (labels, next) = self.page(scope, after, (max - out.len()).min(500)).await?;
            out.extend(labels);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(out)
    }

    /// Deletes a label, detaching it from every artifact first (in
    /// batches); the label goes once no attachment is left.
    pub async fn delete(&self, label: &Label) -> Result<()> {
        let kv = self.dir.kv();
        let mut label = label.clone();
        // Whether the name's index entry is this label's (it is, unless
        // the store drifted).
        let mut own_index = true;
        let mut rounds = 0;
        loop {
            let page = kv
                .query(&Query::prefix(keys::label_ref(label.id), "", ATTACH_CHUNK))
                .await?;
            if !page.items.is_empty() {
                let mut ops = Vec::with_capacity(page.items.len() * 2 + 1);
                for r in &page.items {
                    if let (Some(apk), Some(ask)) = (r.s(APK), r.s(ASK)) {
                        ops.push(WriteOp::delete(apk, ask));
                    }
                    ops.push(WriteOp::delete(r.pk.clone(), r.sk.clone()));
                }
                let n = i64::try_from(page.items.len()).unwrap_or(0);
                ops.push(refs_op(label.id, -n));
                match kv.transact(ops.clone()).await {
                    Ok(()) | Err(KvError::Conflict) => {}
                    // Only the count's condition can fail: the label went
                    // (a concurrent delete); its entries go all the same.
                    Err(KvError::ConditionFailed { .. }) => {
                        ops.pop();
                        match kv.transact(ops).await {
                            Ok(()) | Err(KvError::Conflict) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                continue;
            }
            // No attachment left: the label goes, unless one was added
            // meanwhile (then `refs` is not 0 and the loop goes again).
            rounds += 1;
            let cond = if rounds < DELETE_ROUNDS {
                Cond::Eq(REFS.to_owned(), Attr::N(0))
            } else {
                Cond::Exists
            };
            let mut ops = vec![
                WriteOp::Delete {
                    pk: keys::label(label.id),
                    sk: META.to_owned(),
                    cond,
                },
                count_op(label.scope(), -1),
            ];
            if own_index {
                ops.push(WriteOp::Delete {
                    pk: label.scope().pk(),
                    sk: keys::name(&label.name),
                    cond: Cond::Eq("id".to_owned(), Attr::N(label.id)),
                });
            }
            match kv.transact(ops).await {
                Ok(()) => return Ok(()),
                Err(KvError::ConditionFailed { index: 0 }) => {
                    if kv.get(&keys::label(label.id), META).await?.is_none() {
                        // Gone (a concurrent delete); an index entry left
                        // behind by drift goes too, so the name is free.
                        let repair = vec![
                            WriteOp::Delete {
                                pk: label.scope().pk(),
                                sk: keys::name(&label.name),
                                cond: Cond::Eq("id".to_owned(), Attr::N(label.id)),
                            },
                            count_op(label.scope(), -1),
                        ];
                        match kv.transact(repair).await {
                            Ok(()) | Err(KvError::ConditionFailed { .. } | KvError::Conflict) => {}
                            Err(e) => return Err(e.into()),
                        }
                        return Err(DirectoryError::NotFound(format!(
                            "label {} not found",
                            label.id
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                // The name's index entry is not this label's: renamed
                // meanwhile (delete what it is now), or drifted.
                Err(KvError::ConditionFailed { .. }) => match self.get(label.id).await? {
                    Some(now) if now.name != label.name => label = now,
                    Some(_) => own_index = false,
                    None => {
                        return Err(DirectoryError::NotFound(format!(
                            "label {} not found",
                            label.id
                        )));
                    }
                },
                Err(KvError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes every label of a project (for a project delete).
    pub async fn delete_project_labels(&self, project_id: i64) -> Result<()> {
        let mut after = None;
        loop {
            let (labels, next) = self
                .page(LabelScope::Project(project_id), after, 100)
                .await?;
            for l in &labels {
                match self.delete(l).await {
                    Ok(()) | Err(DirectoryError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    // ---- attachments ------------------------------------------------------

    /// Attaches a label to an artifact (the manifest `digest` in `repo`),
    /// in one transaction conditioned on the label and the manifest
    /// existing. A project label attaches only to artifacts of its own
    /// project (`Invalid` otherwise); attaching twice is a `Conflict`; a
    /// missing label or artifact is `NotFound`. Returns the label.
    pub async fn attach(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> Result<Label> {
        let label = self
            .get(label_id)
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("label {label_id} not found")))?;
        if let LabelScope::Project(pid) = label.scope() {
            let project = rkeys::project_of(repo.as_str());
            let owner = self.dir.project(project).await?;
            if owner.map(|p| p.id) != Some(pid) {
                return Err(DirectoryError::Invalid(format!(
                    "label {label_id} belongs to another project than {project}"
                )));
            }
        }
        let apk = rkeys::repo(repo);
        let ask = rkeys::artifact_label(digest, label_id);
        let now = crate::store::now_secs();
        let ops = vec![
            refs_op(label_id, 1),
            WriteOp::Check {
                pk: apk.clone(),
                sk: rkeys::manifest(digest),
                cond: Cond::Exists,
            },
            WriteOp::Put {
                item: Item::new(apk.clone(), ask.clone())
                    .with("id", Attr::N(label_id))
                    .with("created", Attr::N(now)),
                cond: Cond::NotExists,
            },
            WriteOp::put(
                Item::new(keys::label_ref(label_id), label_ref_sk(repo, digest))
                    .with(APK, Attr::S(apk))
                    .with(ASK, Attr::S(ask)),
            ),
        ];
        self.dir.kv().transact(ops).await.map_err(|e| match e {
            KvError::ConditionFailed { index: 0 } => {
                DirectoryError::NotFound(format!("label {label_id} not found"))
            }
            KvError::ConditionFailed { index: 1 } => {
                DirectoryError::NotFound(format!("artifact {repo}@{digest} not found"))
            }
            KvError::ConditionFailed { .. } => DirectoryError::Conflict(format!(
                "label {label_id} is already attached to {repo}@{digest}"
            )),
            e => e.into(),
        })?;
        Ok(label)
    }

    /// Removes a label from an artifact; `NotFound` when it is not attached.
    pub async fn detach(&self, repo: &RepoName, digest: &Digest, label_id: i64) -> Result<()> {
        let apk = rkeys::repo(repo);
        let ask = rkeys::artifact_label(digest, label_id);
        let mut ops = vec![
            WriteOp::Delete {
                pk: apk,
                sk: ask,
                cond: Cond::Exists,
            },
            WriteOp::delete(keys::label_ref(label_id), label_ref_sk(repo, digest)),
            refs_op(label_id, -1),
        ];
        let not_attached = || {
            DirectoryError::NotFound(format!(
                "label {label_id} is not attached to {repo}@{digest}"
            ))
        };
        match self.dir.kv().transact(ops.clone()).await {
            Ok(()) => Ok(()),
            Err(KvError::ConditionFailed { index: 0 }) => Err(not_attached()),
            // The label itself is gone (it cannot be while attached, but
            // an attachment must never be stuck): drop the entries alone.
            Err(KvError::ConditionFailed { .. }) => {
                ops.pop();
                self.dir.kv().transact(ops).await.map_err(|e| match e {
                    KvError::ConditionFailed { .. } => not_attached(),
                    e => e.into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The ids of the labels attached to an artifact (one query per 1,000).
    pub async fn label_ids_of(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<i64>> {
        let mut q = Query::prefix(
            rkeys::repo(repo),
            rkeys::artifact_label_prefix(digest),
            1000,
        );
        let mut ids = Vec::new();
        loop {
            let page = self.dir.kv().query(&q).await?;
            ids.extend(page.items.iter().filter_map(|i| i.n("id")));
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(ids),
            }
        }
    }

    /// The labels attached to an artifact, by id: one query and one batch
    /// read.
    pub async fn labels_of(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<Label>> {
        let ids = self.label_ids_of(repo, digest).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.get_many(&ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, scope: &str, project_id: i64, color: &str) -> Label {
        Label {
            id: 1,
            name: name.to_owned(),
            description: String::new(),
            color: color.to_owned(),
            scope: scope.to_owned(),
            project_id,
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn validation_follows_harbor() {
        assert!(label("ok", "g", 0, "#A1b2C3").validate().is_ok());
        assert!(label("ok", "p", 3, "").validate().is_ok());
        assert!(label("", "g", 0, "").validate().is_err());
        assert!(label(&"x".repeat(129), "g", 0, "").validate().is_err());
        assert!(label(&"é".repeat(128), "g", 0, "").validate().is_ok());
        assert!(label("ok", "g", 0, "red").validate().is_err());
        assert!(label("ok", "g", 0, "#12345").validate().is_err());
        assert!(label("ok", "x", 0, "").validate().is_err());
        assert!(label("ok", "p", 0, "").validate().is_err());
        assert!(label("ok", "g", 4, "").validate().is_err());
    }
}
