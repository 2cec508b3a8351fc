//! The event outbox (`registry::events`, `jobs::events`): every push and
//! delete puts its event in the same transaction as the change, the
//! request sends it after the commit, and a process that dies between the
//! commit and the send loses nothing: the sweep sends it later.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod api_support;
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_support::{parts, push_image, upload};
use async_trait::async_trait;
use berth::jobs::events::{Dispatch, Subscriber};
use berth::oci::{Reference, RepoName};
use berth::registry::events::{Event, kinds};
use berth::registry::{Registry, RegistryOptions};
use berth::store::local_queue::LocalQueue;
use berth::store::{Job, Queue, QueueError, Received};

/// A queue that refuses every send: the process "died" between the commit
/// and the send.
struct DeadQueue;

#[async_trait]
impl Queue for DeadQueue {
    async fn send(&self, _job: &Job) -> Result<(), QueueError> {
        Err(QueueError::Backend(
            "the process died before sending".into(),
        ))
    }
    async fn send_after(&self, _job: &Job, _d: Duration) -> Result<(), QueueError> {
        Err(QueueError::Backend(
            "the process died before sending".into(),
        ))
    }
    async fn receive(&self, _max: usize) -> Result<Vec<Received>, QueueError> {
        Ok(Vec::new())
    }
    async fn ack(&self, _receipt: &str) -> Result<(), QueueError> {
        Ok(())
    }
}

/// Records the events it gets and, for each, whether the change it reports
/// was already visible (never announced before its commit).
struct Witness {
    registry: Registry,
    seen: Mutex<Vec<(Event, bool)>>,
}

#[async_trait]
impl Subscriber for Witness {
    async fn on_event(&self, e: &Event) -> Result<(), String> {
        let repo: RepoName = e.data["repository"].as_str().unwrap().parse().unwrap();
        let digest: berth::oci::Digest = e.data["digest"].as_str().unwrap().parse().unwrap();
        let stored = self
            .registry
            .get_manifest(&repo, &Reference::Digest(digest), false)
            .await
            .is_ok();
        let visible = if e.kind == kinds::DELETE_ARTIFACT {
            !stored
        } else {
            stored
        };
        self.seen.lock().unwrap().push((e.clone(), visible));
        Ok(())
    }
}

/// Takes every job from `queue` and runs it through `dispatch`.
async fn drain(queue: &dyn Queue, dispatch: &Dispatch) -> usize {
    let mut n = 0;
    loop {
        let got = queue.receive(10).await.unwrap();
        if got.is_empty() {
            return n;
        }
        for r in got {
            assert!(dispatch.run(&r.job).await.unwrap(), "{}", r.job.kind);
            queue.ack(&r.receipt).await.unwrap();
            n += 1;
        }
    }
}

fn local_queue(registry: &Registry) -> Arc<dyn Queue> {
    Arc::new(LocalQueue::new(
        registry.kv().clone(),
        "events-test",
        Duration::from_secs(60),
    ))
}

/// A registry over fresh stores whose events go to an embedded queue, and
/// a dispatcher handing them to a [`Witness`]. Bind `_parts` by name: it
/// holds the stores' temporary directory.
struct Wired {
    _parts: api_support::Parts,
    queue: Arc<dyn Queue>,
    registry: Registry,
    witness: Arc<Witness>,
    dispatch: Dispatch,
}

async fn wired(seed: &str) -> Wired {
    let parts = parts(seed, RegistryOptions::default()).await;
    let queue = local_queue(&parts.registry);
    let registry = parts.registry.clone().with_events(queue.clone());
    let witness = Arc::new(Witness {
        registry: registry.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let dispatch = Dispatch::new(registry.clone(), vec![witness.clone()]);
    Wired {
        _parts: parts,
        queue,
        registry,
        witness,
        dispatch,
    }
}

#[tokio::test]
async fn push_and_delete_events_are_sent_after_their_commit() {
    let Wired {
        queue,
        registry,
        witness,
        dispatch,
        _parts,
    } = wired("events-commit-seed-of-thirty-two-characters").await;

    let (digest, size) = push_image(&registry, "lib/app", "v1", "cfg-1", "layer-1").await;
    assert_eq!(drain(queue.as_ref(), &dispatch).await, 1);
    let repo: RepoName = "lib/app".parse().unwrap();
    registry
        .delete_manifest(&repo, &Reference::Digest(digest.clone()))
        .await
        .unwrap();
    assert_eq!(drain(queue.as_ref(), &dispatch).await, 1);

    let seen = witness.seen.lock().unwrap().clone();
    let kinds: Vec<&str> = seen.iter().map(|(e, _)| e.kind.as_str()).collect();
    assert_eq!(kinds, [kinds::PUSH_ARTIFACT, kinds::DELETE_ARTIFACT]);
    for (e, visible) in &seen {
        assert!(visible, "{} was announced before its change", e.kind);
        assert_eq!(e.project, "lib");
        assert_eq!(e.data["digest"], digest.to_string());
        assert_eq!(e.data["tags"], serde_json::json!(["v1"]));
        assert_eq!(e.data["size"], size as i64);
    }
    assert_ne!(seen[0].0.id, seen[1].0.id);
    // Dispatched events leave nothing in the outbox.
    assert!(registry.outbox(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_event_survives_a_death_between_commit_and_send() {
    let p = parts(
        "events-death-seed-of-thirty-two-characters-",
        RegistryOptions::default(),
    )
    .await;
    // The process that pushes dies before it can send.
    let dying = p.registry.clone().with_events(Arc::new(DeadQueue));
    let (digest, _) = push_image(&dying, "lib/app", "v1", "cfg-2", "layer-2").await;
    let left = dying.outbox(10).await.unwrap();
    assert_eq!(left.len(), 1, "the event waits in the outbox");
    assert_eq!(left[0].kind, kinds::PUSH_ARTIFACT);

    // The next process's sweep sends it; its consumer settles it.
    let queue = local_queue(&p.registry);
    let next = p.registry.clone().with_events(queue.clone());
    let witness = Arc::new(Witness {
        registry: next.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let dispatch = Dispatch::new(next.clone(), vec![witness.clone()]);
    // Young items are left to the request that wrote them.
    assert_eq!(dispatch.sweep(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(dispatch.sweep(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(drain(queue.as_ref(), &dispatch).await, 1);
    let seen = witness.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.id, left[0].id, "the same event, by id");
    assert_eq!(seen[0].0.data["digest"], digest.to_string());
    assert!(next.outbox(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_change_raises_no_event() {
    let Wired {
        queue,
        registry,
        _parts,
        ..
    } = wired("events-refused-seed-of-thirty-two-characters").await;
    // A manifest whose layer was never uploaded is refused: no event.
    let cd = upload(&registry, "lib/app", "cfg-3").await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd.to_string(), "size": 5},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": berth::oci::sha256_digest(b"never uploaded").to_string(), "size": 14}],
    });
    let repo: RepoName = "lib/app".parse().unwrap();
    let refused = registry
        .put_manifest(
            &repo,
            &"v1".parse().unwrap(),
            Some("application/vnd.oci.image.manifest.v1+json"),
            serde_json::to_vec(&manifest).unwrap().into(),
        )
        .await;
    assert!(refused.is_err());
    assert!(registry.outbox(10).await.unwrap().is_empty());
    assert!(queue.receive(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_redelivered_event_is_settled_once_and_harmlessly() {
    let Wired {
        queue,
        registry,
        witness,
        dispatch,
        _parts,
    } = wired("events-redelivery-seed-of-thirty-two-characters").await;
    push_image(&registry, "lib/app", "v1", "cfg-4", "layer-4").await;
    let got = queue.receive(10).await.unwrap();
    assert_eq!(got.len(), 1);
    // Delivered twice (SQS is at least once): both runs succeed; the
    // subscriber sees the same id twice and dedupes by it.
    assert!(dispatch.run(&got[0].job).await.unwrap());
    assert!(dispatch.run(&got[0].job).await.unwrap());
    let seen = witness.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0.id, seen[1].0.id);
    assert_eq!(
        got[0].job.id, seen[0].0.id,
        "the job carries the event's id"
    );
}
