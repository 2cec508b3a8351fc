//! The single-table data model (DESIGN §5): partition and sort keys, and
//! attribute names. Every key the registry writes is built here.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `REPO#<name>` | `TAG#<tag>` | digest, media type, size of the tagged manifest |
//! | `REPO#<name>` | `TAGOF#<digest>#<tag>` | reverse index: tags pointing at a manifest |
//! | `REPO#<name>` | `MANIFEST#<digest>` | bytes (or object key), media type, size, subject, references |
//! | `REPO#<name>` | `BLOB#<digest>` | link: this repository may serve this blob (size, object key) |
//! | `REPO#<name>` | `REFERRER#<subject>#<digest>` | descriptor served by the referrers API |
//! | `BLOB#<digest>` | `META` | size, object key, last referenced time (online GC) |
//! | `UPLOAD#<id>` | `META` | upload session, expires by TTL |
//! | `UPLOADS#<shard>` | `<created>#<id>` | index of open upload sessions, for the sweeper |
//! | `CATALOG` | `REPO#<name>` | one entry per repository, written on its first manifest |
//! | `REPO#<name>` | `META` | the repository: artifact count, pull count, description, times |
//! | `REPO#<name>` | `ART#<newest first>#<digest>` | index of the top-level artifacts, newest push first |
//! | `REPO#<name>` | `ACC#<subject>#<digest>` | an accessory (signature, SBOM, …) of a subject artifact |
//! | `REPO#<name>` | `LABEL#<digest>#<label id>` | a label attached to an artifact |
//! | `PSTATS#<project>` | `META` | the project's repository count |
//! | `QUOTA#<project>` | `META` | storage used, limit and room left (exact) |
//! | `QREF#<project>#<digest>` | `META` | how many links and manifests of the project hold the digest |
//! | `LINKED#<shard>` | `<repo>` | every repository that holds blobs, for the collector |
//! | `GCQ#<shard>` | `<digest>` | blobs that lost a link: what the collector looks at |
//!
//! Counts are changed in the same transaction as the change they count
//! (with `ADD`), so `X-Total-Count` of a listing is one read and never
//! drifts. A *top-level* artifact is a manifest that is neither a child of
//! an index in its repository nor an accessory: Harbor lists only those.

use crate::oci::{Digest, RepoName};

pub const META: &str = "META";
pub const CATALOG: &str = "CATALOG";
pub const TAG_PREFIX: &str = "TAG#";
pub const REPO_PREFIX: &str = "REPO#";
pub const BLOB_PREFIX: &str = "BLOB#";

/// Attribute names.
pub mod attr {
    pub const SIZE: &str = "size";
    pub const KEY: &str = "key";
    pub const MEDIA_TYPE: &str = "mt";
    pub const DIGEST: &str = "digest";
    pub const BYTES: &str = "bytes";
    pub const SUBJECT: &str = "subject";
    pub const REFS: &str = "refs";
    pub const DOC: &str = "doc";
    pub const VERSION: &str = "v";
    pub const PUSHED_AT: &str = "pushed";
    /// Blob link (and `LINKED#` entry): last time an upload, mount or
    /// manifest push relied on it (epoch seconds), refreshed at most every
    /// half grace (DESIGN §6, `registry::gc`).
    pub const LAST_REFERENCED: &str = "lra";
    /// Blob `META`: how many repository links name the blob, kept exact.
    pub const LINKS: &str = "links";
    /// Reference counts (`QREF#`).
    pub const COUNT: &str = "n";
    /// Quota item: bytes used, the limit (absent: unlimited) and the room
    /// left under it, which a charge is conditioned on.
    pub const USED: &str = "used";
    pub const LIMIT: &str = "limit";
    pub const ROOM: &str = "room";
    /// When an upload session expires (epoch seconds). The item's own TTL
    /// is later, so the sweeper still finds what to clean up.
    pub const EXPIRES: &str = "exp";
    /// A manifest item's write nonce: every put changes it, so a delete can
    /// be conditioned on nobody having pushed the manifest again meanwhile.
    pub const NONCE: &str = "nonce";
    /// Manifest: how many indexes in the repository reference it.
    pub const PARENTS: &str = "parents";
    /// Index manifest: how many of its children (in digest order) it adopted.
    pub const ADOPTED: &str = "adopted";
    /// Manifest: the sort key of its `ART#` entry while it is top-level.
    pub const ART: &str = "art";
    /// Manifest: its accessory type, when it is an accessory.
    pub const ACCESSORY: &str = "acc";
    /// Manifest: the subject of an accessory found by cosign's tag convention.
    pub const ACCESSORY_OF: &str = "accsub";
    /// Manifest: last pull (epoch seconds), written in batches.
    pub const PULLED: &str = "pulled";
    /// Repository record and project stats: counters and times.
    pub const ARTIFACTS: &str = "artifacts";
    pub const PULLS: &str = "pulls";
    pub const REPOS: &str = "repos";
    pub const CREATED: &str = "created";
    pub const UPDATED: &str = "updated";
    pub const DESCRIPTION: &str = "desc";
    /// Accessory entry: its type.
    pub const TYPE: &str = "type";
    /// Label record: how many artifacts carry the label.
    pub const LABEL_REFS: &str = "refs";
}

pub const ART_PREFIX: &str = "ART#";
pub const ACC_PREFIX: &str = "ACC#";
pub const LABEL_PREFIX: &str = "LABEL#";

/// Sort key of a top-level artifact's index entry: newest push first
/// (`pushed_ms` in epoch milliseconds).
pub fn art(pushed_ms: i64, digest: &Digest) -> String {
    format!("{ART_PREFIX}{:020}#{digest}", i64::MAX - pushed_ms.max(0))
}

/// The digest an `ART#` sort key names.
pub fn art_digest(sk: &str) -> Option<Digest> {
    let rest = sk.strip_prefix(ART_PREFIX)?;
    crate::oci::digest::parse_digest(rest.split_once('#')?.1).ok()
}

pub fn accessory(subject: &Digest, digest: &Digest) -> String {
    format!("{ACC_PREFIX}{subject}#{digest}")
}

pub fn accessory_prefix(subject: &Digest) -> String {
    format!("{ACC_PREFIX}{subject}#")
}

/// A label attached to an artifact.
pub fn artifact_label(digest: &Digest, label_id: i64) -> String {
    format!("{LABEL_PREFIX}{digest}#{label_id:020}")
}

pub fn artifact_label_prefix(digest: &Digest) -> String {
    format!("{LABEL_PREFIX}{digest}#")
}

/// A label's record (kept by `iam::labels`); `refs` counts its attachments.
pub fn label_record(id: i64) -> String {
    format!("LABEL#{id}")
}

/// A label's reverse index of attachments: one entry per artifact.
pub fn label_refs(id: i64) -> String {
    format!("LABELREF#{id}")
}

/// The reverse-index entry of an attachment to `digest` in `repo`.
pub fn label_ref_entry(repo: &RepoName, digest: &Digest) -> String {
    format!("{repo}@{digest}")
}

/// The label id an attachment's sort key names.
pub fn artifact_label_id(sk: &str) -> Option<i64> {
    sk.rsplit('#').next()?.parse().ok()
}

/// The project name of the statistics item counting every repository.
pub const ALL_PROJECTS: &str = "*";

/// The project statistics item: its repository count.
pub fn project_stats(project: &str) -> String {
    format!("PSTATS#{project}")
}

/// A project's quota and usage item.
pub fn quota(project: &str) -> String {
    format!("QUOTA#{project}")
}

/// How many links and manifests of `project` hold `digest` (the project is
/// charged for the digest while this is above zero).
pub fn project_ref(project: &str, digest: &Digest) -> String {
    format!("QREF#{project}#{digest}")
}

/// Shards of the `LINKED#` and `GCQ#` indexes.
pub const GC_SHARDS: [char; 16] = UPLOAD_INDEX_SHARDS;

fn shard_of(text: &str) -> char {
    // FNV-1a: stable across builds and platforms.
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    GC_SHARDS[(h % 16) as usize]
}

/// The `LINKED#` partition of `repo`: by project, so one project's
/// repositories share a partition.
pub fn linked(repo: &str) -> String {
    linked_shard(shard_of(project_of(repo)))
}

pub fn linked_shard(shard: char) -> String {
    format!("LINKED#{shard}")
}

/// The collector's candidate partition of `digest`.
pub fn gc_candidates(digest: &Digest) -> String {
    gc_candidate_shard(shard_of(digest.digest()))
}

pub fn gc_candidate_shard(shard: char) -> String {
    format!("GCQ#{shard}")
}

/// The project a repository belongs to (its first path component).
pub fn project_of(repo: &str) -> &str {
    repo.split_once('/').map_or(repo, |(p, _)| p)
}

pub fn repo(name: &RepoName) -> String {
    format!("{REPO_PREFIX}{name}")
}

pub fn tag(tag: &str) -> String {
    format!("{TAG_PREFIX}{tag}")
}

pub fn tag_of(digest: &Digest, tag: &str) -> String {
    format!("TAGOF#{digest}#{tag}")
}

pub fn tag_of_prefix(digest: &Digest) -> String {
    format!("TAGOF#{digest}#")
}

pub fn manifest(digest: &Digest) -> String {
    format!("MANIFEST#{digest}")
}

pub fn blob_link(digest: &Digest) -> String {
    format!("BLOB#{digest}")
}

pub fn referrer(subject: &Digest, digest: &Digest) -> String {
    format!("REFERRER#{subject}#{digest}")
}

pub fn referrer_prefix(subject: &Digest) -> String {
    format!("REFERRER#{subject}#")
}

pub fn blob(digest: &Digest) -> String {
    format!("{BLOB_PREFIX}{digest}")
}

/// The digest named by a `BLOB#<digest>` partition key.
pub fn blob_digest(pk: &str) -> Option<Digest> {
    crate::oci::digest::parse_digest(pk.strip_prefix(BLOB_PREFIX)?).ok()
}

pub fn upload(id: &str) -> String {
    format!("UPLOAD#{id}")
}

/// Shards of the open-uploads index (upload ids are hex: one per first digit).
pub const UPLOAD_INDEX_SHARDS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
];

/// Partition of the open-uploads index holding upload `id`.
pub fn upload_index_pk(shard: char) -> String {
    format!("UPLOADS#{shard}")
}

/// The open-uploads index entry of upload `id` created at `created`:
/// sorted by creation time, so the sweeper reads only old sessions.
pub fn upload_index(id: &str, created: i64) -> (String, String) {
    let shard = id.chars().next().unwrap_or('0');
    (upload_index_pk(shard), upload_index_sk(created, id))
}

/// Sort key of an index entry; `id` empty gives the bound for "created
/// before `created`".
pub fn upload_index_sk(created: i64, id: &str) -> String {
    format!("{:020}#{id}", created.max(0))
}

pub fn catalog_entry(name: &RepoName) -> String {
    format!("{REPO_PREFIX}{name}")
}

/// A new object key for an uploaded blob. Keys are named by the request
/// that places the bytes, not by the digest (unknown until the upload
/// ends), so completing a multipart upload needs no copy, and two requests
/// racing on one session never write the same key; the leading characters
/// spread keys over S3 prefixes.
pub fn new_blob_object() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shard = id.get(..2).unwrap_or("00");
    format!("blobs/{shard}/{id}")
}

/// Object key of bytes staged between two chunks of an upload: unique per
/// request, so concurrent chunks never overwrite what a session points at.
pub fn staged_object(upload_id: &str) -> String {
    format!(
        "uploads/{upload_id}/staged-{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// Object key of a manifest too large to keep inline.
pub fn manifest_object(digest: &Digest) -> String {
    format!("manifests/{}/{}", digest.algorithm(), digest.digest())
}
