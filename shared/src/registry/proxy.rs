//! Proxy-cache projects: a project bound to an upstream registry endpoint
//! (Harbor's `registry_id`) serves pulls through a cache of the upstream.
//!
//! - A manifest by tag is re-validated with a `HEAD` upstream on every
//!   pull. A digest already cached is served from the cache (the tag moved
//!   to it if it had moved upstream); else the manifest is fetched, served
//!   from the upstream's bytes, and stored in the background through the
//!   normal push path once its blobs are here (so it is visible in the API
//!   and counted by quota and retention). When the upstream is down,
//!   errs or answers `429`, the cached tag is served.
//! - A manifest by digest: the cache, else the upstream (then stored).
//!   An index's children are fetched when clients ask for them; the index
//!   is stored once they are all cached.
//! - A blob not cached is fetched from the upstream once and streamed to
//!   the client while it is stored (one pump feeds both; a client that
//!   goes away does not stop the store). Concurrent first pulls of one
//!   blob fetch it once: one fetch per repository and digest in a
//!   process (the others wait for it and read the cache), and a marker
//!   item with a TTL across processes.
//!
//! Every failure of the upstream ends in "not cached here": the handlers
//! then answer from the cache alone.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `PROXY#<project>` | `META` | the project's upstream registry id |
//! | `PROXYFETCH#<repo>@<digest>` | `META` | a process is fetching this blob (TTL) |

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::keys::META;
use super::{Registry, RegistryError, Result, StoredManifest};
use crate::oci::manifest::parse_manifest;
use crate::oci::{Digest, Reference, RepoName};
use crate::outbound::registry::{ClientError, Endpoint, RegistryClient, RemoteManifest};
use crate::outbound::{AddressPolicy, SafeClient};
use crate::store::kv::TTL_ATTR;
use crate::store::{Attr, ByteStream, Cond, Item, KvError, WriteOp, now_secs};

const REGISTRY_ATTR: &str = "registry";
/// How long a binding read is trusted in this process (bindings are set
/// when a project is created).
const BINDING_TTL: Duration = Duration::from_secs(10);
/// How long a blob's fetch marker lives: a process that died holding it
/// delays the others' fetch this long at most.
const FETCH_MARKER_SECS: i64 = 120;
/// How long a stored-in-the-background index waits for its children.
const INDEX_WAIT: Duration = Duration::from_secs(600);
/// Chunks buffered between the upstream and the client or the store.
const PIPE_DEPTH: usize = 8;

fn binding_pk(project: &str) -> String {
    format!("PROXY#{project}")
}

fn marker_pk(repo: &RepoName, digest: &Digest) -> String {
    format!("PROXYFETCH#{repo}@{digest}")
}

/// A proxy project's upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub registry_id: i64,
    pub endpoint: Endpoint,
    /// The endpoint's adapter type (`docker-registry`, `harbor`, …).
    pub kind: String,
}

/// A binding read: the store (by address) and the project.
type BindingKey = (usize, String);

/// What is shared by every request of the process: fetches in flight,
/// clients (with their token caches), binding reads.
#[derive(Default)]
struct Shared {
    flights: Mutex<HashMap<String, watch::Receiver<bool>>>,
    clients: Mutex<HashMap<String, RegistryClient>>,
    bindings: Mutex<HashMap<BindingKey, (Option<i64>, Instant)>>,
}

static SHARED: LazyLock<Shared> = LazyLock::new(Shared::default);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A client of `endpoint` under policy `p`, shared by the process (so
/// tokens are reused).
fn client_for(endpoint: &Endpoint, p: AddressPolicy) -> Option<RegistryClient> {
    let key = format!(
        "{}|{}|{:?}|{}",
        p.allow_private,
        endpoint.url,
        endpoint.credential.as_ref().map(|c| {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(format!("{}:{}", c.0, c.1)))
        }),
        endpoint.insecure
    );
    if let Some(c) = lock(&SHARED.clients).get(&key) {
        return Some(c.clone());
    }
    let made = SafeClient::with_policy(p)
        .map_err(ClientError::from)
        .and_then(|http| RegistryClient::new(http, endpoint.clone()));
    match made {
        Ok(c) => {
            lock(&SHARED.clients).insert(key, c.clone());
            Some(c)
        }
        Err(e) => {
            tracing::warn!(url = %endpoint.url, error = %e, "proxy cache: unusable upstream");
            None
        }
    }
}

/// The upstream repository of `repo`: the part after the project.
fn upstream_repo(repo: &RepoName) -> Option<&str> {
    repo.as_str().split_once('/').map(|(_, rest)| rest)
}

/// The cache of a tagged manifest is good as long as the tag points there.
fn same_digest(m: &StoredManifest, d: &Digest) -> bool {
    &m.digest == d
}

impl Registry {
    /// Binds `project` to upstream `registry_id` (a proxy-cache project),
    /// or unbinds it with `None`.
    pub async fn set_proxy_binding(&self, project: &str, registry_id: Option<i64>) -> Result<()> {
        let op = match registry_id {
            Some(id) => WriteOp::Put {
                item: Item::new(binding_pk(project), META).with(REGISTRY_ATTR, Attr::N(id)),
                cond: Cond::Always,
            },
            None => WriteOp::Delete {
                pk: binding_pk(project),
                sk: META.to_owned(),
                cond: Cond::Always,
            },
        };
        self.kv.write(op).await?;
        lock(&SHARED.bindings).remove(&(self.kv_id(), project.to_owned()));
        Ok(())
    }

    /// The upstream registry id `project` is bound to, if it is a proxy
    /// cache (read from the store).
    pub async fn proxy_binding(&self, project: &str) -> Result<Option<i64>> {
        Ok(self
            .kv
            .get(&binding_pk(project), META)
            .await?
            .and_then(|i| i.n(REGISTRY_ATTR)))
    }

    fn kv_id(&self) -> usize {
        Arc::as_ptr(&self.kv) as *const () as usize
    }

    /// [`Self::proxy_binding`], trusted for a few seconds in the process:
    /// every pull asks.
    async fn cached_binding(&self, project: &str) -> Option<i64> {
        let key = (self.kv_id(), project.to_owned());
        if let Some((id, at)) = lock(&SHARED.bindings).get(&key)
            && at.elapsed() < BINDING_TTL
        {
            return *id;
        }
        match self.proxy_binding(project).await {
            Ok(id) => {
                lock(&SHARED.bindings).insert(key, (id, Instant::now()));
                id
            }
            Err(e) => {
                tracing::warn!(project, error = %e, "proxy cache: cannot read the binding");
                None
            }
        }
    }

    /// Whether `project` is a proxy cache (its content comes from the
    /// upstream alone: clients do not push there, as in Harbor).
    pub async fn is_proxy_project(&self, project: &str) -> bool {
        self.cached_binding(project).await.is_some()
    }

    /// The upstream of `project`, if it is a proxy-cache project whose
    /// endpoint still exists.
    pub async fn upstream_of(&self, project: &str) -> Option<Upstream> {
        let id = self.cached_binding(project).await?;
        let e = crate::replication::endpoints::endpoint(&self.kv, id).await?;
        Some(Upstream {
            registry_id: id,
            kind: e.kind.clone(),
            endpoint: Endpoint {
                url: e.url,
                credential: e
                    .credential
                    .map(|c| (c.access_key, c.access_secret))
                    .filter(|(k, s)| !k.is_empty() || !s.is_empty()),
                insecure: e.insecure,
            },
        })
    }

    /// The client and upstream repository of `repo`, if its project is a
    /// proxy cache.
    async fn proxied(&self, repo: &RepoName) -> Option<(RegistryClient, String)> {
        let project = super::keys::project_of(repo.as_str());
        let up = self.upstream_of(project).await?;
        let rest = upstream_repo(repo)?;
        // Docker Hub's official images live under `library/`.
        let name = if up.kind == "docker-hub" && !rest.contains('/') {
            format!("library/{rest}")
        } else {
            rest.to_owned()
        };
        // Upstreams are outbound targets like webhooks: the same address
        // policy (`/configurations`' `webhook_allow_private`, else the
        // process default).
        let policy =
            crate::outbound::policy_for(&crate::iam::directory::Directory::new(self.kv.clone()))
                .await;
        Some((client_for(&up.endpoint, policy)?, name))
    }

    /// A manifest of a proxy-cache project as it should be served, or
    /// `None` to serve from the cache as usual (not a proxy project, the
    /// upstream down or without it, or the cache current).
    pub async fn proxy_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> Option<StoredManifest> {
        let (client, up_repo) = self.proxied(repo).await?;
        let wanted = match reference {
            Reference::Digest(d) => {
                if self.get_manifest(repo, reference, false).await.is_ok() {
                    return None;
                }
                d.clone()
            }
            Reference::Tag(t) => match client.head_manifest(&up_repo, t.as_str()).await {
                Ok(Some(h)) => {
                    if let Ok(m) = self
                        .get_manifest(repo, &Reference::Digest(h.digest.clone()), false)
                        .await
                    {
                        self.follow_tag(repo, t, &m).await;
                        return None;
                    }
                    h.digest
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(repo = %repo, error = %e, "proxy cache: upstream unavailable; serving the cache");
                    return None;
                }
            },
        };
        let remote = match client.get_manifest(&up_repo, wanted.as_ref(), &[]).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "proxy cache: cannot fetch a manifest");
                return None;
            }
        };
        let served = StoredManifest {
            digest: remote.digest.clone(),
            media_type: remote.media_type.clone(),
            size: remote.bytes.len() as u64,
            bytes: with_body.then(|| remote.bytes.clone()),
        };
        let this = self.clone();
        let repo = repo.clone();
        let reference = reference.clone();
        tokio::spawn(async move {
            this.cache_manifest(&client, &up_repo, &repo, &reference, remote)
                .await;
        });
        Some(served)
    }

    /// Points a cached tag at `m` when the upstream moved it there.
    async fn follow_tag(&self, repo: &RepoName, tag: &crate::oci::Tag, m: &StoredManifest) {
        let current = self
            .get_manifest(repo, &Reference::Tag(tag.clone()), false)
            .await;
        if current.is_ok_and(|c| same_digest(&c, &m.digest)) {
            return;
        }
        if let Err(e) = self.add_tag(repo, tag, &m.digest).await {
            tracing::warn!(repo = %repo, error = %e, "proxy cache: cannot move a cached tag");
        }
    }

    /// Stores a fetched manifest through the push path once what it
    /// references is cached: an image's blobs are fetched (once, shared
    /// with clients pulling them), an index waits for its children.
    async fn cache_manifest(
        &self,
        client: &RegistryClient,
        up_repo: &str,
        repo: &RepoName,
        reference: &Reference,
        remote: RemoteManifest,
    ) {
        let parsed = match parse_manifest(Some(&remote.media_type), &remote.bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "proxy cache: upstream manifest not storable");
                return;
            }
        };
        for b in &parsed.blobs {
            if self.blob_info(repo, &b.digest).await.is_ok() {
                continue;
            }
            if let Err(e) = self.ensure_blob(client, up_repo, repo, &b.digest).await {
                tracing::warn!(repo = %repo, error = %e, "proxy cache: cannot cache a blob");
                return;
            }
        }
        let started = Instant::now();
        loop {
            let mut missing = false;
            for c in &parsed.children {
                if self
                    .get_manifest(repo, &Reference::Digest(c.digest.clone()), false)
                    .await
                    .is_err()
                {
                    missing = true;
                    break;
                }
            }
            if !missing {
                break;
            }
            if started.elapsed() > INDEX_WAIT {
                tracing::info!(repo = %repo, "proxy cache: index not stored, children not pulled");
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Err(e) = self
            .put_manifest(repo, reference, Some(&remote.media_type), remote.bytes)
            .await
        {
            tracing::warn!(repo = %repo, error = %e, "proxy cache: cannot store a manifest");
        }
    }

    /// The size of a blob the upstream has (for `HEAD` of a blob not yet
    /// cached), or `None`.
    pub async fn proxy_blob_size(&self, repo: &RepoName, digest: &Digest) -> Option<u64> {
        let (client, up_repo) = self.proxied(repo).await?;
        client.head_blob(&up_repo, digest).await.ok().flatten()
    }

    /// A blob of a proxy-cache project that is not cached: streamed from
    /// the upstream while it is stored, or, when another request is
    /// fetching it, read from the cache once that request stored it.
    /// `None`: not a proxy project, or neither the upstream nor the cache
    /// has it.
    pub async fn proxy_blob(&self, repo: &RepoName, digest: &Digest) -> Option<ProxiedBlob> {
        let (client, up_repo) = self.proxied(repo).await?;
        match self.start_fetch(repo, digest).await {
            Fetch::Mine(flight) => self.pump(client, up_repo, repo, digest, flight).await,
            Fetch::Theirs => self.cached_blob(repo, digest).await,
        }
    }

    async fn cached_blob(&self, repo: &RepoName, digest: &Digest) -> Option<ProxiedBlob> {
        let info = self.blob_info(repo, digest).await.ok()?;
        let body = self.read_blob(digest, &info, None).await.ok()?;
        Some(ProxiedBlob {
            size: Some(info.size),
            body: body.body,
        })
    }

    /// Fetches a blob into the cache without a client (for a manifest
    /// stored in the background).
    async fn ensure_blob(
        &self,
        client: &RegistryClient,
        up_repo: &str,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<()> {
        let flight = match self.start_fetch(repo, digest).await {
            Fetch::Theirs => {
                return self.blob_info(repo, digest).await.map(|_| ());
            }
            Fetch::Mine(f) => f,
        };
        let Some(blob) = self
            .pump(client.clone(), up_repo.to_owned(), repo, digest, flight)
            .await
        else {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        };
        // Drain what the pump offers the absent client; the store goes on
        // regardless, and finishes before the stream ends.
        let mut body = blob.body;
        while body.next().await.is_some() {}
        self.blob_info(repo, digest).await.map(|_| ())
    }

    /// Either this request fetches the blob (its [`Flight`]), or another
    /// did and the cache has it now (or it failed, and this one fetches).
    async fn start_fetch(&self, repo: &RepoName, digest: &Digest) -> Fetch {
        let key = format!("{}|{repo}@{digest}", self.kv_id());
        loop {
            let waiting = {
                let mut flights = lock(&SHARED.flights);
                match flights.get(&key) {
                    Some(rx) => Waiting::Other(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(false);
                        flights.insert(key.clone(), rx);
                        Waiting::Mine(Flight {
                            key: key.clone(),
                            done: tx,
                            marker: None,
                        })
                    }
                }
            };
            match waiting {
                Waiting::Other(mut rx) => {
                    let _ = rx.wait_for(|done| *done).await;
                    if self.blob_info(repo, digest).await.is_ok() {
                        return Fetch::Theirs;
                    }
                    // The other fetch failed: try ours.
                    continue;
                }
                Waiting::Mine(mut flight) => {
                    // Another process may be fetching it (its marker):
                    // wait until the cache has it, or the marker is gone
                    // (finished, failed, or expired) and ours.
                    loop {
                        if self.claim_marker(repo, digest).await {
                            flight.marker = Some(marker_pk(repo, digest));
                            // A fetch that ended between this request's
                            // look at the cache and the claim stored it.
                            if self.blob_info(repo, digest).await.is_ok() {
                                flight.finish(self).await;
                                return Fetch::Theirs;
                            }
                            return Fetch::Mine(flight);
                        }
                        if self.blob_info(repo, digest).await.is_ok() {
                            return Fetch::Theirs;
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }
    }

    /// Takes the cross-process fetch marker; `false` if another process
    /// holds it.
    async fn claim_marker(&self, repo: &RepoName, digest: &Digest) -> bool {
        let item = Item::new(marker_pk(repo, digest), META)
            .with(TTL_ATTR, Attr::N(now_secs() + FETCH_MARKER_SECS));
        match self
            .kv
            .write(WriteOp::Put {
                item,
                cond: Cond::NotExists,
            })
            .await
        {
            Ok(()) => true,
            Err(KvError::ConditionFailed { .. }) => false,
            // The marker only saves a fetch; without it, fetch.
            Err(_) => true,
        }
    }

    /// Fetches the blob and feeds one stream to the store and one to the
    /// caller, from one task that keeps storing if the caller leaves.
    async fn pump(
        &self,
        client: RegistryClient,
        up_repo: String,
        repo: &RepoName,
        digest: &Digest,
        flight: Flight,
    ) -> Option<ProxiedBlob> {
        let upstream = match client.get_blob(&up_repo, digest).await {
            Ok(b) => b,
            Err(e) => {
                if !e.is_not_found() {
                    tracing::warn!(repo = %repo, error = %e, "proxy cache: cannot fetch a blob");
                }
                flight.finish(self).await;
                return None;
            }
        };
        let (client_tx, client_rx) = mpsc::channel::<std::io::Result<Bytes>>(PIPE_DEPTH);
        let (store_tx, store_rx) = mpsc::channel::<std::io::Result<Bytes>>(PIPE_DEPTH);
        let this = self.clone();
        let repo = repo.clone();
        let digest = digest.clone();
        tokio::spawn(async move {
            let store = this.monolithic_upload(&repo, &digest, receiver_stream(store_rx));
            let feed = async move {
                let mut body = upstream.body;
                let mut client_tx = Some(client_tx);
                while let Some(chunk) = body.next().await {
                    let failed = chunk.is_err();
                    let for_client = match &chunk {
                        Ok(b) => Ok(b.clone()),
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    };
                    if let Some(tx) = &client_tx
                        && tx.send(for_client).await.is_err()
                    {
                        client_tx = None;
                    }
                    if store_tx.send(chunk).await.is_err() || failed {
                        break;
                    }
                }
                drop(store_tx);
                client_tx
            };
            let (stored, client_tx) = tokio::join!(store, feed);
            if let Err(e) = stored {
                tracing::warn!(repo = %repo, digest = %digest, error = %e, "proxy cache: blob not stored");
            }
            flight.finish(&this).await;
            // The client's stream ends only now, so a client that read it
            // all finds the blob cached.
            drop(client_tx);
        });
        Some(ProxiedBlob {
            size: upstream.size,
            body: receiver_stream(client_rx),
        })
    }
}

/// A blob served by the proxy: its length when known, and the bytes.
pub struct ProxiedBlob {
    pub size: Option<u64>,
    pub body: ByteStream,
}

enum Fetch {
    /// This request fetches; the others wait for its flight.
    Mine(Flight),
    /// Another request fetched it: the cache has it.
    Theirs,
}

enum Waiting {
    Other(watch::Receiver<bool>),
    Mine(Flight),
}

/// This process's fetch of one blob: waiters are told when it ends.
struct Flight {
    key: String,
    done: watch::Sender<bool>,
    marker: Option<String>,
}

impl Flight {
    /// Ends the fetch: the marker goes, then (on drop) the waiters learn.
    async fn finish(mut self, registry: &Registry) {
        if let Some(pk) = self.marker.take() {
            let _ = registry
                .kv
                .write(WriteOp::Delete {
                    pk,
                    sk: META.to_owned(),
                    cond: Cond::Always,
                })
                .await;
        }
    }
}

/// However a fetch ends (finished, failed, its request dropped), the
/// process forgets it and its waiters wake; a marker left behind expires.
impl Drop for Flight {
    fn drop(&mut self) {
        lock(&SHARED.flights).remove(&self.key);
        let _ = self.done.send(true);
    }
}

fn receiver_stream(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_repositories_drop_the_project() {
        let r: RepoName = "proxy/library/alpine".parse().unwrap();
        assert_eq!(upstream_repo(&r), Some("library/alpine"));
        let r: RepoName = "proxy".parse().unwrap();
        assert_eq!(upstream_repo(&r), None);
    }
}
