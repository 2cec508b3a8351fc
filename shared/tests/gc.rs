//! Online garbage collection and exact quotas, on both backends (the
//! embedded stores, and DynamoDB + S3 on moto):
//!
//! - pushes that share blobs race a collector that runs round after round
//!   with the shortest grace: every acknowledged manifest stays pullable,
//!   byte for byte, and afterwards nothing unreferenced survives;
//! - the half-grace refresh of links keeps the collector's condition safe;
//! - every queue message of a run processed twice changes nothing the
//!   second time, and a task whose worker died is taken over;
//! - after a random sequence of pushes, mounts, deletes and collections,
//!   the stored usage equals a recount from scratch.
#![allow(clippy::unwrap_used)]

mod common;
#[cfg(feature = "aws")]
#[path = "support/moto.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth::oci::{Digest, Reference, RepoName, Tag, sha256_digest};
use berth::registry::keys::{self, GC_SHARDS};
use berth::registry::{MIN_GC_GRACE, Registry, RegistryError, RegistryOptions};
use berth::store::{Attr, ByteStream, Queue, WriteOp, now_secs};
use bytes::Bytes;
use common::*;

fn opts() -> RegistryOptions {
    RegistryOptions {
        gc_grace: Duration::ZERO,
        ..RegistryOptions::default()
    }
}

fn name(project: &str, prefix: &str) -> RepoName {
    format!(
        "{project}/{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
    .parse()
    .unwrap()
}

fn stream(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(data)) },
    ))
}

async fn upload(reg: &Registry, repo: &RepoName, data: &[u8]) -> Result<Digest, RegistryError> {
    let d = sha256_digest(data);
    reg.monolithic_upload(repo, &d, stream(data.to_vec()))
        .await?;
    Ok(d)
}

/// Config and layers of a small image; `layers` are their contents.
fn manifest_of(config: &str, layers: &[String]) -> Vec<u8> {
    let refs: Vec<&str> = layers.iter().map(String::as_str).collect();
    image_manifest(
        &[(config, "application/vnd.oci.image.config.v1+json")],
        &refs,
        None,
        None,
    )
}

/// Pushes an image as a client does: blobs (re-uploading any the
/// collector took meanwhile), then the manifest; returns its digest.
async fn push(
    reg: &Registry,
    repo: &RepoName,
    tag: &str,
    config: &str,
    layers: &[String],
) -> Digest {
    for attempt in 0.. {
        assert!(attempt < 20, "a push kept losing its blobs");
        for blob in std::iter::once(config.to_owned()).chain(layers.iter().cloned()) {
            let d = sha256_digest(blob.as_bytes());
            if reg.blob_info(repo, &d).await.is_err() {
                upload(reg, repo, blob.as_bytes()).await.unwrap();
            }
        }
        let m = manifest_of(config, layers);
        let tag: Tag = tag.parse().unwrap();
        match reg
            .put_manifest(
                repo,
                &Reference::Tag(tag),
                Some(OCI_MANIFEST),
                Bytes::from(m),
            )
            .await
        {
            Ok(out) => return out.digest,
            // Collected between the check and the manifest: upload again.
            Err(RegistryError::ManifestBlobUnknown(_)) => continue,
            Err(e) => panic!("push failed: {e}"),
        }
    }
    unreachable!()
}

/// The blob reads back whole with its digest.
async fn assert_pullable(reg: &Registry, repo: &RepoName, d: &Digest) {
    use futures_util::StreamExt;
    let info = reg
        .blob_info(repo, d)
        .await
        .unwrap_or_else(|e| panic!("{repo} lost {d}: {e}"));
    let mut body = reg.read_blob(d, &info, None).await.unwrap().body;
    let mut all = Vec::new();
    while let Some(c) = body.next().await {
        all.extend_from_slice(&c.unwrap());
    }
    assert_eq!(&sha256_digest(&all), d, "{repo} serves other bytes for {d}");
}

/// One full collection, run in place (what the queue tasks do).
async fn collect(reg: &Registry, repos: &[RepoName], started: i64, untagged: bool) {
    for r in repos {
        reg.gc_repository(r, started, untagged, false)
            .await
            .unwrap();
    }
    for s in GC_SHARDS {
        reg.gc_blobs(s, started, false).await.unwrap();
    }
}

fn layer(i: usize) -> String {
    format!("shared-layer-{i}-{}", "x".repeat(100 + i))
}

/// A push the registry acknowledged: repository, tag, blobs.
type Acked = (RepoName, String, Vec<Digest>);

/// The race the design is about: pushers sharing base layers (some
/// waiting longer than the grace between their blobs and their
/// manifest, some deleting what they pushed) while the collector runs
/// round after round.
async fn pushes_racing_the_collector_lose_nothing(reg: Registry) {
    let project = format!("gcrace{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let repos: Vec<RepoName> = (0..4).map(|i| name(&project, &format!("r{i}"))).collect();
    let acked: Arc<std::sync::Mutex<Vec<Acked>>> = Default::default();
    let pushes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let grace = reg.options().grace();
    // The collector: round after round, each with a fresh start time.
    let collector = {
        let (reg, repos, stop) = (reg.clone(), repos.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = 0u64;
            while !stop.load(Ordering::SeqCst) {
                collect(&reg, &repos, now_secs(), true).await;
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            rounds
        })
    };
    let mut writers = Vec::new();
    for w in 0..6usize {
        let (reg, repos, acked, pushes) =
            (reg.clone(), repos.clone(), acked.clone(), pushes.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..6usize {
                let repo = &repos[(w + i) % repos.len()];
                let layers = vec![layer(i % 3), layer(3 + w % 2), format!("own-{w}-{i}")];
                let config = format!("{{\"writer\":{w},\"push\":{i}}}");
                let tag = format!("w{w}-{i}");
                if (w + i) % 3 == 0 {
                    // Blobs first, then a pause past the grace: the
                    // collector may take them before the manifest comes.
                    for l in &layers {
                        upload(&reg, repo, l.as_bytes()).await.unwrap();
                    }
                    tokio::time::sleep(grace + Duration::from_millis(500)).await;
                }
                let d = push(&reg, repo, &tag, &config, &layers).await;
                pushes.fetch_add(1, Ordering::SeqCst);
                let blobs: Vec<Digest> = std::iter::once(config.clone())
                    .chain(layers.iter().cloned())
                    .map(|b| sha256_digest(b.as_bytes()))
                    .collect();
                if i % 4 == 3 {
                    // Deleted: its unique blobs become garbage.
                    reg.delete_manifest(repo, &Reference::Digest(d))
                        .await
                        .unwrap();
                } else {
                    acked.lock().unwrap().push((repo.clone(), tag, blobs));
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let rounds = collector.await.unwrap();
    eprintln!(
        "gc race: {} pushes, {rounds} collection rounds, grace {}s",
        pushes.load(Ordering::SeqCst),
        grace.as_secs()
    );
    assert!(rounds >= 3, "the collector ran only {rounds} rounds");
    let acked = acked.lock().unwrap().clone();
    for (repo, tag, blobs) in &acked {
        let m = reg
            .get_manifest(repo, &Reference::Tag(tag.parse().unwrap()), true)
            .await
            .unwrap_or_else(|e| panic!("{repo}:{tag} lost: {e}"));
        assert_eq!(m.digest, sha256_digest(m.bytes.as_ref().unwrap()));
        for d in blobs {
            assert_pullable(&reg, repo, d).await;
        }
    }
    // Once everything is older than the grace, a collection leaves only
    // what the surviving manifests reference.
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    collect(&reg, &repos, now_secs(), true).await;
    let live: BTreeSet<String> = acked
        .iter()
        .flat_map(|(_, _, b)| b.iter().map(ToString::to_string))
        .collect();
    let mut all: Vec<Digest> = Vec::new();
    for w in 0..6usize {
        for i in 0..6usize {
            all.push(sha256_digest(format!("own-{w}-{i}").as_bytes()));
            all.push(sha256_digest(
                format!("{{\"writer\":{w},\"push\":{i}}}").as_bytes(),
            ));
        }
    }
    for i in 0..5 {
        all.push(sha256_digest(layer(i).as_bytes()));
    }
    for d in &all {
        let meta = reg.kv().get(&keys::blob(d), keys::META).await.unwrap();
        assert_eq!(
            meta.is_some(),
            live.contains(&d.to_string()),
            "{d}: stored = {}, referenced = {}",
            meta.is_some(),
            live.contains(&d.to_string())
        );
    }
    for (repo, _, blobs) in &acked {
        for d in blobs {
            assert_pullable(&reg, repo, d).await;
        }
    }
    // Usage stayed exact throughout.
    assert_eq!(
        reg.usage(&project).await.unwrap().used,
        reg.recount_usage(&project).await.unwrap()
    );
}

/// A link read fresh is only checked, not rewritten; one older than half
/// the grace is refreshed; either way, right after the push its time is
/// within a grace of the commit, so a collection that starts now cannot
/// remove it.
async fn half_grace_refresh_keeps_the_condition_safe(reg: Registry) {
    let repo = name("half", "r");
    let grace = reg.options().grace().as_secs() as i64;
    let layers = vec!["half-grace-layer".to_owned()];
    push(&reg, &repo, "a", "{\"c\":1}", &layers).await;
    let d = sha256_digest(layers[0].as_bytes());
    let link_time = |reg: Registry, repo: RepoName, d: Digest| async move {
        reg.kv()
            .get(&keys::repo(&repo), &keys::blob_link(&d))
            .await
            .unwrap()
            .unwrap()
            .n("lra")
            .unwrap()
    };
    for (age, refreshed) in [(grace * 4 / 10, false), (grace * 6 / 10 + 1, true)] {
        let set = now_secs() - age;
        reg.kv()
            .write(WriteOp::Update {
                pk: keys::repo(&repo),
                sk: keys::blob_link(&d),
                set: [("lra".to_owned(), Attr::N(set))].into(),
                cond: berth::store::Cond::Exists,
            })
            .await
            .unwrap();
        push(
            &reg,
            &repo,
            &format!("t{age}"),
            &format!("{{\"c\":{age}}}"),
            &layers,
        )
        .await;
        let after = link_time(reg.clone(), repo.clone(), d.clone()).await;
        assert_eq!(
            after != set,
            refreshed,
            "age {age}: link time {set} -> {after}"
        );
        assert!(
            after > now_secs() - grace,
            "the link is collectable right after a push"
        );
        // A collection starting now, even with the manifests hidden from
        // it, cannot take the link: its condition fails.
        reg.delete_manifest(&repo, &Reference::Tag(format!("t{age}").parse().unwrap()))
            .await
            .unwrap();
        reg.gc_repository(&repo, now_secs(), false, false)
            .await
            .unwrap();
        assert_pullable(&reg, &repo, &d).await;
    }
}

/// Every message of a collection delivered twice: the second delivery
/// changes nothing. Then a task whose worker died mid-way (it took the
/// task and never finished) is taken over by the next delivery.
async fn redelivered_and_abandoned_tasks_change_nothing_twice(
    reg: Registry,
    queue: Arc<dyn Queue>,
) {
    let project = format!("gcq{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let repo = name(&project, "r");
    for i in 0..3 {
        let layers = vec![format!("redeliver-{project}-{i}")];
        push(
            &reg,
            &repo,
            &format!("v{i}"),
            &format!("{{\"r\":{i}}}"),
            &layers,
        )
        .await;
        if i < 2 {
            // Untagged: the collection deletes the artifact, then its blobs.
            let t = format!("v{i}").parse().unwrap();
            reg.delete_manifest(&repo, &Reference::Tag(t))
                .await
                .unwrap();
        }
    }
    tokio::time::sleep(reg.options().grace() + Duration::from_secs(1)).await;
    let gc =
        berth::jobs::gc::Gc::new(reg.clone(), queue.clone()).with_lease(Duration::from_secs(2));
    let run = gc
        .start(
            "Manual",
            berth::jobs::gc::GcParams {
                delete_untagged: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut abandoned = false;
    let mut snapshots = 0;
    for _ in 0..2000 {
        let batch = queue.receive(10).await.unwrap();
        if batch.is_empty() {
            let r = gc.runs().get(run.id).await.unwrap().unwrap();
            if r.finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for m in batch {
            let is_repo_task = m.job.kind == berth::jobs::gc::REPO;
            if is_repo_task && !abandoned {
                // A worker takes the task and dies: nothing is acked, the
                // lease runs out, the message comes back.
                let p: serde_json::Value = m.job.payload.clone();
                let key = p["key"].as_str().unwrap().to_owned();
                let took = gc
                    .runs()
                    .take(run.id, &key, Duration::from_secs(2))
                    .await
                    .unwrap();
                assert!(matches!(took, berth::jobs::runs::Take::Go(_)));
                abandoned = true;
                // Redelivered before the lease ran out: refused (retried later).
                assert!(gc.run(&m.job).await.is_err());
                tokio::time::sleep(Duration::from_millis(2100)).await;
            }
            gc.run(&m.job).await.unwrap();
            let before = gc.runs().get(run.id).await.unwrap().unwrap().counts;
            let kept = stored_blobs(&reg, &project).await;
            // The same message again: nothing changes.
            gc.run(&m.job).await.unwrap();
            assert_eq!(gc.runs().get(run.id).await.unwrap().unwrap().counts, before);
            assert_eq!(stored_blobs(&reg, &project).await, kept);
            snapshots += 1;
            queue.ack(&m.receipt).await.unwrap();
        }
    }
    assert!(abandoned, "no repository task was seen");
    let r = gc.runs().get(run.id).await.unwrap().unwrap();
    assert_eq!(r.status, "Success", "{r:?}");
    assert!(snapshots > 16);
    // (On a shared emulator other tests' garbage may be counted too.)
    assert!(r.count("artifacts") >= 2, "{r:?}");
    let left: BTreeSet<String> = [
        "redeliver-{project}-2".replace("{project}", &project),
        "{\"r\":2}".to_owned(),
    ]
    .iter()
    .map(|b| sha256_digest(b.as_bytes()).to_string())
    .collect();
    assert_eq!(stored_blobs(&reg, &project).await, left, "{r:?}");
    // The tagged one is whole.
    let m = reg
        .get_manifest(&repo, &Reference::Tag("v2".parse().unwrap()), true)
        .await
        .unwrap();
    assert!(m.bytes.is_some());
    assert_pullable(
        &reg,
        &repo,
        &sha256_digest(format!("redeliver-{project}-2").as_bytes()),
    )
    .await;
}

/// The blob records a project's pushes could have made.
async fn stored_blobs(reg: &Registry, project: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for i in 0..3 {
        for b in [format!("redeliver-{project}-{i}"), format!("{{\"r\":{i}}}")] {
            let d = sha256_digest(b.as_bytes());
            if reg
                .kv()
                .get(&keys::blob(&d), keys::META)
                .await
                .unwrap()
                .is_some()
            {
                out.insert(d.to_string());
            }
        }
    }
    out
}

/// A random walk of pushes, mounts (within and across projects), tag
/// deletes, artifact deletes, blob deletes and collections; after every
/// step each project's stored usage equals a recount from scratch.
async fn usage_equals_a_recount_after_random_changes(reg: Registry) {
    let seed = now_secs() as u64;
    let mut rng = seed;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let projects = [format!("qa{}", &tag[..6]), format!("qb{}", &tag[..6])];
    let repos: Vec<RepoName> = projects
        .iter()
        .flat_map(|p| (0..2).map(move |i| name(p, &format!("r{i}"))))
        .collect();
    let pool: Vec<String> = (0..6)
        .map(|i| format!("quota-{tag}-{i}-{}", "q".repeat(i * 37)))
        .collect();
    let mut pushed: Vec<(RepoName, Digest, String)> = Vec::new();
    let mut log = Vec::new();
    for step in 0..60 {
        let repo = repos[next(repos.len())].clone();
        let op = next(7);
        match op {
            0 | 1 => {
                let layers: Vec<String> = (0..2).map(|_| pool[next(pool.len())].clone()).collect();
                let t = format!("s{step}");
                let d = push(&reg, &repo, &t, &format!("{{\"q\":{step}}}"), &layers).await;
                pushed.push((repo.clone(), d, t));
            }
            2 => {
                let from = repos[next(repos.len())].clone();
                let d = sha256_digest(pool[next(pool.len())].as_bytes());
                reg.mount_blob(&repo, &d, Some(&from)).await.unwrap();
            }
            3 if !pushed.is_empty() => {
                let (r, _, t) = pushed[next(pushed.len())].clone();
                let _ = reg
                    .delete_manifest(&r, &Reference::Tag(t.parse().unwrap()))
                    .await;
            }
            4 if !pushed.is_empty() => {
                let (r, d, _) = pushed.remove(next(pushed.len()));
                let _ = reg.delete_manifest(&r, &Reference::Digest(d)).await;
            }
            5 => {
                let d = sha256_digest(pool[next(pool.len())].as_bytes());
                let _ = reg.delete_blob(&repo, &d).await;
            }
            _ => {
                // A collection that sees everything as old enough.
                let started = now_secs() + reg.options().grace().as_secs() as i64 + 1;
                collect(&reg, &repos, started, next(2) == 0).await;
            }
        }
        log.push(op);
        for p in &projects {
            let stored = reg.usage(p).await.unwrap().used;
            let counted = reg.recount_usage(p).await.unwrap();
            assert_eq!(
                stored, counted,
                "project {p} after steps {log:?} (seed {seed})"
            );
        }
    }
}

/// Over quota: a blob upload is refused at finalize and a manifest push
/// before it is accepted; nothing half-written remains, and usage stays
/// exact. A limit below usage refuses more; lifting it accepts again.
async fn quota_refuses_uploads_and_manifests_over_the_limit(reg: Registry) {
    let project = format!("qlim{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let repo = name(&project, "r");
    reg.set_quota_limit(&project, Some(700)).await.unwrap();
    let small = "s".repeat(300);
    upload(&reg, &repo, small.as_bytes()).await.unwrap();
    let big = "b".repeat(800);
    match upload(&reg, &repo, big.as_bytes()).await {
        Err(RegistryError::QuotaExceeded(m)) => assert!(m.contains("quota exceeded"), "{m}"),
        r => panic!("an upload over the quota was not refused: {r:?}"),
    }
    assert!(
        reg.blob_info(&repo, &sha256_digest(big.as_bytes()))
            .await
            .is_err()
    );
    // Config and layer fit; the manifest (~480 bytes) does not.
    let config = "{\"architecture\":\"amd64\",\"x\":1}";
    upload(&reg, &repo, config.as_bytes()).await.unwrap();
    // Past 85 % of the limit: a warning.
    let third = "w".repeat(300);
    upload(&reg, &repo, third.as_bytes()).await.unwrap();
    let m = manifest_of(config, std::slice::from_ref(&small));
    let r = reg
        .put_manifest(
            &repo,
            &Reference::Tag("v1".parse().unwrap()),
            Some(OCI_MANIFEST),
            Bytes::from(m.clone()),
        )
        .await;
    assert!(matches!(r, Err(RegistryError::QuotaExceeded(_))), "{r:?}");
    assert!(
        reg.get_manifest(&repo, &Reference::Tag("v1".parse().unwrap()), false)
            .await
            .is_err()
    );
    let blobs = (small.len() + config.len() + third.len()) as i64;
    assert_eq!(reg.usage(&project).await.unwrap().used, blobs);
    reg.set_quota_limit(&project, None).await.unwrap();
    reg.put_manifest(
        &repo,
        &Reference::Tag("v1".parse().unwrap()),
        Some(OCI_MANIFEST),
        Bytes::from(m.clone()),
    )
    .await
    .unwrap();
    let u = reg.usage(&project).await.unwrap();
    assert_eq!(u.used, blobs + m.len() as i64);
    assert_eq!(u.used, reg.recount_usage(&project).await.unwrap());
    // A second repository of the project sharing the layer: charged once.
    let other = name(&project, "o");
    reg.mount_blob(&other, &sha256_digest(small.as_bytes()), Some(&repo))
        .await
        .unwrap();
    assert_eq!(reg.usage(&project).await.unwrap().used, u.used);
    // A limit below usage: nothing more fits.
    reg.set_quota_limit(&project, Some(10)).await.unwrap();
    assert!(matches!(
        upload(&reg, &repo, b"one more byte").await,
        Err(RegistryError::QuotaExceeded(_))
    ));
    // Crossing 85 % of the limit raised a warning, in the same
    // transaction as the upload; each refusal an exceed event.
    let events: Vec<_> = reg
        .outbox(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.project == project)
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "QUOTA_EXCEED").count(),
        3,
        "{kinds:?}"
    );
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "QUOTA_WARNING")
        .collect();
    assert_eq!(warnings.len(), 1, "{kinds:?}");
    assert_eq!(warnings[0].data["limit"], 700);
    assert!(warnings[0].data["used"].as_i64().unwrap() >= 595);
}

#[cfg(feature = "aws")]
static SERIAL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

macro_rules! on_both_backends {
    ($($name:ident $(($($extra:tt)*))?),+ $(,)?) => {
        mod embedded {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let app = TestApp::with(opts(), None).await;
                    on_both_backends!(@call $name, app.registry.clone(), app.registry.kv().clone() $(, $($extra)*)?);
                }
            )+
        }

        #[cfg(feature = "aws")]
        mod aws {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    // A whole collection run sees the shared table: it runs
                    // alone; the others share (their checks allow it).
                    let (_alone, _shared);
                    if stringify!($name).starts_with("redelivered") {
                        _alone = SERIAL.write().await;
                    } else {
                        _shared = SERIAL.read().await;
                    }
                    let calls = berth::store::aws::CallCounter::default();
                    let moto = support::moto();
                    let reg = Registry::new(moto.kv(&calls).await, moto.blobs(&calls).await, opts());
                    on_both_backends!(@call $name, reg.clone(), reg.kv().clone() $(, $($extra)*)?);
                }
            )+
        }
    };
    (@call $name:ident, $reg:expr, $kv:expr) => { super::$name($reg).await };
    (@call $name:ident, $reg:expr, $kv:expr, queue) => {{
        let queue: Arc<dyn Queue> = Arc::new(berth::store::local_queue::LocalQueue::new(
            $kv,
            &format!("gc-test-{}", uuid::Uuid::new_v4().simple()),
            Duration::from_secs(30),
        ));
        super::$name($reg, queue).await
    }};
}

on_both_backends!(
    pushes_racing_the_collector_lose_nothing,
    half_grace_refresh_keeps_the_condition_safe,
    redelivered_and_abandoned_tasks_change_nothing_twice(queue),
    usage_equals_a_recount_after_random_changes,
    quota_refuses_uploads_and_manifests_over_the_limit,
);

#[test]
fn the_shortest_grace_is_the_designs_minimum() {
    assert_eq!(opts().grace(), MIN_GC_GRACE);
    let _ = BTreeMap::<String, i64>::new();
}
