//! Artifact bookkeeping: which manifests are *top-level artifacts* (what
//! Harbor lists), which are accessories of another, how many artifacts a
//! repository has — all changed in the same transaction as the push or
//! delete that changes them, so the counts cannot drift.
//!
//! - A new manifest with a `subject`, or pushed under cosign's tag
//!   convention `sha256-<hex>.sig`, is an **accessory** of that subject:
//!   an `ACC#<subject>#<digest>` entry, never listed on its own.
//! - Any other new manifest is **top-level**: an `ART#` index entry (newest
//!   push first) and `+1` on the repository's artifact count.
//! - A new index takes its children out of the top level (`parents + 1`,
//!   their `ART#` entry removed, `-1` each); deleting the index puts a
//!   child whose last parent it was back.
//! - Every change to a manifest item changes its nonce and is conditioned
//!   on the nonce read, so two writers racing on one child never both
//!   count it (the loser reads again).

use std::collections::BTreeMap;

use super::keys::{self, attr};
use crate::oci::manifest::ParsedManifest;
use crate::oci::{Digest, RepoName, Tag};
use crate::store::{Attr, Cond, Item, WriteOp};

/// The most children one index adopts (takes out of the artifact list):
/// their bookkeeping, two writes each, must fit one transaction with the
/// rest of the push, and with the delete's on the way out.
pub const MAX_ADOPTED: usize = 30;

/// Harbor's accessory types.
pub const COSIGN_SIGNATURE: &str = "signature.cosign";
pub const NOTATION_SIGNATURE: &str = "signature.notation";
pub const HARBOR_SBOM: &str = "harbor.sbom";
pub const SUBJECT_ACCESSORY: &str = "subject.accessory";

/// What a push changed in the counts.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Change {
    /// The manifest was new to the repository.
    pub(super) new_manifest: bool,
    /// Net change of the repository's artifact count.
    pub(super) artifacts: i64,
}

/// The accessory type of a manifest from what it declares.
pub fn accessory_type(artifact_type: Option<&str>) -> &'static str {
    match artifact_type.unwrap_or_default() {
        "application/vnd.dev.cosign.artifact.sig.v1+json"
        | "application/vnd.dev.cosign.simplesigning.v1+json" => COSIGN_SIGNATURE,
        "application/vnd.cncf.notary.signature" => NOTATION_SIGNATURE,
        "application/vnd.goharbor.harbor.sbom.v1" => HARBOR_SBOM,
        _ => SUBJECT_ACCESSORY,
    }
}

/// The layer media type of cosign's signatures.
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The subject named by cosign's signature tag `sha256-<hex>.sig`.
pub fn cosign_subject(tag: &str) -> Option<Digest> {
    let hex = tag.strip_prefix("sha256-")?.strip_suffix(".sig")?;
    crate::oci::digest::parse_digest(&format!("sha256:{hex}")).ok()
}

/// A manifest item's nonce condition: unchanged since it was read.
pub(super) fn unchanged(item: &Item) -> Cond {
    match item.s(attr::NONCE) {
        Some(n) => Cond::Eq(attr::NONCE.to_owned(), Attr::S(n.to_owned())),
        None => Cond::Exists,
    }
}

/// The `ART#` sort key of a manifest while it is top-level.
pub(super) fn art_of(item: &Item) -> Option<&str> {
    item.s(attr::ART).filter(|s| !s.is_empty())
}

fn art_entry(repo_pk: &str, sk: String, digest: &Digest) -> WriteOp {
    WriteOp::put(Item::new(repo_pk, sk).with(attr::DIGEST, Attr::S(digest.to_string())))
}

/// Now in epoch milliseconds: `ART#` keys order pushes within a second.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh write nonce for a manifest item.
pub(super) fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The repository record's change: artifact count, update time, and its
/// creation time the first time.
pub(super) fn repo_meta_op(repo: &RepoName, artifacts: i64, now: i64) -> WriteOp {
    WriteOp::Upsert {
        pk: keys::repo(repo),
        sk: keys::META.to_owned(),
        add: [(attr::ARTIFACTS.to_owned(), artifacts)].into(),
        set: [(attr::UPDATED.to_owned(), Attr::N(now))].into(),
        init: [(attr::CREATED.to_owned(), Attr::N(now))].into(),
        cond: Cond::Always,
    }
}

/// Writes of a manifest push: the manifest item (created, or refreshed
/// keeping what it knows), its index or accessory entry, and for a new
/// index the children's parent counts.
#[allow(clippy::too_many_arguments)]
pub(super) fn artifact_ops(
    ops: &mut Vec<WriteOp>,
    repo: &RepoName,
    digest: &Digest,
    parsed: &ParsedManifest,
    tag: Option<&Tag>,
    manifest: &Item,
    existing: Option<&Item>,
    children: &[(&Digest, Option<&Item>)],
    size: usize,
    now: i64,
) -> Change {
    let repo_pk = keys::repo(repo);
    let fresh_nonce = manifest.s(attr::NONCE).unwrap_or_default().to_owned();
    if let Some(cur) = existing {
        // Pushed again: newer push time, new nonce; parents, labels and
        // accessory standing stay. A top-level artifact moves to the top.
        let mut set = BTreeMap::from([
            (attr::PUSHED_AT.to_owned(), Attr::N(now)),
            (attr::NONCE.to_owned(), Attr::S(fresh_nonce)),
        ]);
        if let Some(old) = art_of(cur) {
            let new = keys::art(now_ms(), digest);
            if old != new {
                ops.push(WriteOp::delete(&repo_pk, old));
                ops.push(art_entry(&repo_pk, new.clone(), digest));
                set.insert(attr::ART.to_owned(), Attr::S(new));
            }
        }
        ops.push(WriteOp::Update {
            pk: repo_pk,
            sk: keys::manifest(digest),
            set,
            cond: unchanged(cur),
        });
        return Change::default();
    }
    let mut change = Change {
        new_manifest: true,
        artifacts: 0,
    };
    let mut item = manifest.clone().with(attr::PARENTS, Attr::N(0));
    // cosign's tag convention counts only for a manifest that carries a
    // simple-signing layer (as Harbor checks).
    let signs = || {
        manifest
            .b(attr::BYTES)
            .is_some_and(|b| contains(b, SIMPLE_SIGNING.as_bytes()))
    };
    let cosign = tag
        .and_then(|t| cosign_subject(t.as_str()))
        .filter(|_| signs());
    let accessory = match (&parsed.subject, cosign) {
        (Some(s), _) => Some((accessory_type(parsed.artifact_type.as_deref()), s.clone())),
        (None, Some(s)) => Some((COSIGN_SIGNATURE, s)),
        (None, None) => None,
    };
    // An accessory's size, as Harbor shows it: manifest, config and layers.
    let whole = size as i64 + parsed.blobs.iter().map(|b| b.size as i64).sum::<i64>();
    match accessory {
        Some((kind, subject)) => {
            item = item
                .with(attr::ACCESSORY, Attr::S(kind.to_owned()))
                .with(attr::ACCESSORY_OF, Attr::S(subject.to_string()));
            ops.push(WriteOp::put(
                Item::new(&repo_pk, keys::accessory(&subject, digest))
                    .with(attr::DIGEST, Attr::S(digest.to_string()))
                    .with(attr::TYPE, Attr::S(kind.to_owned()))
                    .with(attr::SIZE, Attr::N(whole))
                    .with(attr::PUSHED_AT, Attr::N(now)),
            ));
        }
        None => {
            let art = keys::art(now_ms(), digest);
            ops.push(art_entry(&repo_pk, art.clone(), digest));
            item = item.with(attr::ART, Attr::S(art));
            change.artifacts += 1;
        }
    }
    // A new index adopts its children: each once however often listed,
    // the first MAX_ADOPTED in digest order (a delete releases exactly
    // those: the index keeps how many), so its bookkeeping always fits the
    // push's one transaction. Children beyond stay listed on their own.
    let mut adopted: Vec<(&Digest, &Item)> = children
        .iter()
        .filter_map(|(d, f)| Some((*d, (*f)?)))
        .collect();
    adopted.sort_by_key(|(d, _)| d.to_string());
    adopted.dedup_by_key(|(d, _)| d.to_string());
    adopted.truncate(MAX_ADOPTED);
    if !children.is_empty() {
        item = item.with(attr::ADOPTED, Attr::N(adopted.len() as i64));
    }
    ops.push(WriteOp::Put {
        item,
        cond: Cond::NotExists,
    });
    for (child, c) in adopted {
        let parents = c.n(attr::PARENTS).unwrap_or(0).max(0) + 1;
        let mut set = BTreeMap::from([
            (attr::PARENTS.to_owned(), Attr::N(parents)),
            (attr::NONCE.to_owned(), Attr::S(nonce())),
        ]);
        if let Some(old) = art_of(c) {
            ops.push(WriteOp::delete(&repo_pk, old));
            set.insert(attr::ART.to_owned(), Attr::S(String::new()));
            change.artifacts -= 1;
        }
        ops.push(WriteOp::Update {
            pk: repo_pk.clone(),
            sk: keys::manifest(child),
            set,
            cond: unchanged(c),
        });
    }
    change
}

/// Writes of a manifest delete besides the manifest and its tags: its
/// index or accessory entry, its labels, and the children it releases
/// (`children` as read, with their items). Returns the change of the
/// repository's artifact count.
pub(super) fn release_ops(
    ops: &mut Vec<WriteOp>,
    repo: &RepoName,
    digest: &Digest,
    item: &Item,
    children: &[(Digest, Option<Item>)],
    labels: &[String],
) -> i64 {
    let repo_pk = keys::repo(repo);
    let mut delta = 0;
    if let Some(art) = art_of(item) {
        ops.push(WriteOp::delete(&repo_pk, art));
        delta -= 1;
    }
    let subject = item
        .s(attr::ACCESSORY_OF)
        .and_then(|s| crate::oci::digest::parse_digest(s).ok());
    if let Some(s) = subject {
        ops.push(WriteOp::delete(&repo_pk, keys::accessory(&s, digest)));
    }
    // Labels come off with it: the attachment, the label's reverse entry
    // and its attachment count (on the condition that the label is still
    // there; a label being deleted takes its attachments itself).
    for sk in labels {
        ops.push(WriteOp::delete(&repo_pk, sk.clone()));
        if let Some(id) = keys::artifact_label_id(sk) {
            ops.push(WriteOp::delete(
                keys::label_refs(id),
                keys::label_ref_entry(repo, digest),
            ));
            ops.push(WriteOp::Upsert {
                pk: keys::label_record(id),
                sk: keys::META.to_owned(),
                add: [(attr::LABEL_REFS.to_owned(), -1)].into(),
                set: BTreeMap::new(),
                init: BTreeMap::new(),
                cond: Cond::Exists,
            });
        }
    }
    // The children it adopted (`children` is in digest order, distinct).
    let adopted = item
        .n(attr::ADOPTED)
        .map_or(children.len(), |n| usize::try_from(n).unwrap_or(0));
    for (child, found) in children.iter().take(adopted) {
        let Some(c) = found else { continue };
        let parents = (c.n(attr::PARENTS).unwrap_or(1) - 1).max(0);
        let mut set = BTreeMap::from([
            (attr::PARENTS.to_owned(), Attr::N(parents)),
            (attr::NONCE.to_owned(), Attr::S(nonce())),
        ]);
        let orphan = parents == 0 && c.s(attr::ACCESSORY).is_none() && art_of(c).is_none();
        if orphan {
            let pushed = c.n(attr::PUSHED_AT).unwrap_or(0);
            let art = keys::art(pushed.saturating_mul(1000), child);
            ops.push(art_entry(&repo_pk, art.clone(), child));
            set.insert(attr::ART.to_owned(), Attr::S(art));
            delta += 1;
        }
        ops.push(WriteOp::Update {
            pk: repo_pk.clone(),
            sk: keys::manifest(child),
            set,
            cond: unchanged(c),
        });
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_name_their_subject() {
        let hex = "a".repeat(64);
        let d = cosign_subject(&format!("sha256-{hex}.sig")).expect("subject");
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert!(cosign_subject(&format!("sha256-{hex}.att")).is_none());
        assert!(cosign_subject("sha256-abc.sig").is_none());
        assert!(cosign_subject("v1.sig").is_none());
    }

    #[test]
    fn accessory_types_follow_harbor() {
        assert_eq!(
            accessory_type(Some("application/vnd.cncf.notary.signature")),
            NOTATION_SIGNATURE
        );
        assert_eq!(
            accessory_type(Some("application/spdx+json")),
            SUBJECT_ACCESSORY
        );
        assert_eq!(accessory_type(None), SUBJECT_ACCESSORY);
    }
}
