//! The two sides of a copy behind one trait: this registry, read and
//! written through [`Registry`] directly (no HTTP, no tokens), and another
//! registry through [`RegistryClient`] (OCI Distribution API; for Harbor
//! and Berth peers also their `/api/v2.0` to create a missing project).
//!
//! Every blob crosses as a stream ([`ByteStream`]): neither side holds a
//! whole blob in memory.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::endpoints::Endpoint;
use crate::iam::directory::{Directory, DirectoryError, Project};
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, Reference, RepoName};
use crate::outbound::SafeClient;
use crate::outbound::registry::{self as remote, ClientError, RegistryClient};
use crate::registry::{Registry, RegistryError};
use crate::store::{ByteStream, now_secs};

/// Why a side could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error(transparent)]
    Local(#[from] RegistryError),
    #[error(transparent)]
    Remote(#[from] ClientError),
    #[error("{0}")]
    Other(String),
}

impl AdapterError {
    /// The other side refused a body as too large (`413`): send it in
    /// chunks instead.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::Remote(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE))
    }

    /// Whether retrying later may help (the copy task fails and its
    /// message comes back); otherwise the task is a failure.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Remote(e) => e.is_transient(),
            Self::Local(RegistryError::Busy | RegistryError::Kv(_) | RegistryError::Blob(_)) => {
                true
            }
            _ => false,
        }
    }
}

pub type Result<T, E = AdapterError> = std::result::Result<T, E>;

/// A manifest as read from a side.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// One side of a replication.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// Checks that the side answers and accepts the credential.
    async fn ping(&self) -> Result<()>;
    /// Every repository, by name.
    async fn repositories(&self) -> Result<Vec<String>>;
    /// Every tag of `repo` (none for an unknown repository).
    async fn tags(&self, repo: &str) -> Result<Vec<String>>;
    /// The digest `reference` names in `repo`, if any.
    async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<Digest>>;
    /// A manifest's exact bytes, if it exists.
    async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Manifest>>;
    /// Stores manifest bytes under `reference` (a tag or their digest).
    async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<()>;
    /// Deletes a manifest; false when it was not there.
    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Whether `repo` holds the blob.
    async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool>;
    /// Links a blob the side already holds (in `from`, or anywhere when
    /// the side can tell) into `repo` without its bytes; false when it
    /// must be sent.
    async fn mount_blob(&self, repo: &str, digest: &Digest, from: Option<&str>) -> Result<bool>;
    /// Streams a blob out: its size (if known) and bytes.
    async fn blob(&self, repo: &str, digest: &Digest) -> Result<(Option<u64>, ByteStream)>;
    /// Streams a blob in.
    async fn put_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<()>;
    /// Streams a blob in as chunks of `chunk` bytes (for a side whose
    /// requests are size-limited, e.g. behind API Gateway); by default as
    /// [`Adapter::put_blob`].
    async fn put_blob_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
        _chunk: usize,
    ) -> Result<()> {
        self.put_blob(repo, digest, size, body).await
    }
    /// The digests of the manifests whose subject is `digest`.
    async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Digest>>;
    /// Gets `repo` ready to receive (creates its project where projects
    /// exist).
    async fn prepare(&self, repo: &str) -> Result<()>;
    /// Tags of cosign's tag-scheme accessories of `digest`
    /// (`sha256-<hex>.sig`, `.att`, `.sbom`) that the side hides from its
    /// artifact listing (this registry lists them with their subject; a
    /// remote lists them as tags, copied like any other).
    async fn accessory_tags(&self, _repo: &str, _digest: &Digest) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Label names of an artifact (`None`: the side has no labels).
    async fn labels(&self, _repo: &str, _digest: &Digest) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
}

fn repo_name(repo: &str) -> Result<RepoName> {
    repo.parse()
        .map_err(|e| AdapterError::Other(format!("invalid repository name {repo:?}: {e}")))
}

fn reference(r: &str) -> Result<Reference> {
    r.parse()
        .map_err(|e| AdapterError::Other(format!("invalid reference {r:?}: {e}")))
}

/// This registry as a side.
#[derive(Clone)]
pub struct Local {
    registry: Registry,
}

impl Local {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

/// `Ok(None)` for what a side does not have.
fn absent<T>(r: std::result::Result<T, RegistryError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(
            RegistryError::ManifestUnknown
            | RegistryError::BlobUnknown(_)
            | RegistryError::NameUnknown,
        ) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl Adapter for Local {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self.registry.catalog(Some(1000), last.as_deref()).await?;
            last = page.names.last().cloned();
            out.extend(page.names);
            if !page.more || last.is_none() {
                return Ok(out);
            }
        }
    }

    async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let name = repo_name(repo)?;
        let mut out = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let Some(page) = absent(
                self.registry
                    .list_tags(&name, Some(1000), last.as_deref())
                    .await,
            )?
            else {
                return Ok(out);
            };
            last = page.names.last().cloned();
            out.extend(page.names);
            if !page.more || last.is_none() {
                return Ok(out);
            }
        }
    }

    async fn head_manifest(&self, repo: &str, r: &str) -> Result<Option<Digest>> {
        let got = absent(
            self.registry
                .get_manifest(&repo_name(repo)?, &reference(r)?, false)
                .await,
        )?;
        Ok(got.map(|m| m.digest))
    }

    async fn manifest(&self, repo: &str, r: &str) -> Result<Option<Manifest>> {
        let got = absent(
            self.registry
                .get_manifest(&repo_name(repo)?, &reference(r)?, true)
                .await,
        )?;
        Ok(got.and_then(|m| {
            Some(Manifest {
                digest: m.digest,
                media_type: m.media_type,
                bytes: m.bytes?,
            })
        }))
    }

    async fn put_manifest(
        &self,
        repo: &str,
        r: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<()> {
        self.registry
            .put_manifest(&repo_name(repo)?, &reference(r)?, Some(media_type), bytes)
            .await?;
        Ok(())
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let done = absent(
            self.registry
                .delete_manifest(&repo_name(repo)?, &Reference::Digest(digest.clone()))
                .await,
        )?;
        Ok(done.is_some())
    }

    async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Ok(absent(self.registry.blob_info(&repo_name(repo)?, digest).await)?.is_some())
    }

    async fn mount_blob(&self, repo: &str, digest: &Digest, _from: Option<&str>) -> Result<bool> {
        // This registry knows every blob it holds: no source repository
        // is needed.
        Ok(self
            .registry
            .mount_blob(&repo_name(repo)?, digest, None)
            .await?)
    }

    async fn blob(&self, repo: &str, digest: &Digest) -> Result<(Option<u64>, ByteStream)> {
        let info = self.registry.blob_info(&repo_name(repo)?, digest).await?;
        let body = self.registry.read_blob(digest, &info, None).await?;
        Ok((Some(info.size), body.body))
    }

    async fn put_blob(
        &self,
        repo: &str,
        digest: &Digest,
        _size: u64,
        body: ByteStream,
    ) -> Result<()> {
        self.registry
            .monolithic_upload(&repo_name(repo)?, digest, body)
            .await?;
        Ok(())
    }

    async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Digest>> {
        let name = repo_name(repo)?;
        let mut out = Vec::new();
        let mut after: Option<Digest> = None;
        loop {
            let page = self
                .registry
                .referrers(&name, digest, None, after.as_ref())
                .await?;
            out.extend(descriptor_digests(&page.manifests));
            match page.next.and_then(|n| parse_digest(&n).ok()) {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    async fn prepare(&self, repo: &str) -> Result<()> {
        let project = crate::registry::keys::project_of(repo);
        let dir = Directory::new(self.registry.kv().clone());
        let dir_err = |e: DirectoryError| AdapterError::Other(e.to_string());
        if dir.project(project).await.map_err(dir_err)?.is_some() {
            return Ok(());
        }
        // Harbor's pull-based replication creates the project it writes
        // into, private, owned by the admin.
        let admin = dir.user("admin").await.map_err(dir_err)?;
        let now = now_secs();
        let p = Project {
            id: 0,
            name: project.to_owned(),
            public: false,
            owner_id: admin.as_ref().map_or(1, |u| u.id),
            owner_name: admin.map_or_else(|| "admin".to_owned(), |u| u.username),
            created: now,
            updated: now,
        };
        match dir.create_project(p).await {
            Ok(_) | Err(DirectoryError::Conflict(_)) => Ok(()),
            Err(e) => Err(dir_err(e)),
        }
    }

    async fn accessory_tags(&self, repo: &str, digest: &Digest) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for suffix in ["sig", "att", "sbom"] {
            let tag = format!("{}-{}.{suffix}", digest.algorithm(), digest.digest());
            if self.head_manifest(repo, &tag).await?.is_some() {
                out.push(tag);
            }
        }
        Ok(out)
    }

    async fn labels(&self, repo: &str, digest: &Digest) -> Result<Option<Vec<String>>> {
        let dir = Directory::new(self.registry.kv().clone());
        let labels = dir.labels();
        let err = |e: DirectoryError| AdapterError::Other(e.to_string());
        let ids = labels
            .label_ids_of(&repo_name(repo)?, digest)
            .await
            .map_err(err)?;
        let found = labels.get_many(&ids).await.map_err(err)?;
        Ok(Some(found.into_iter().map(|l| l.name).collect()))
    }
}

/// Digests of the descriptors of a referrers answer.
fn descriptor_digests(list: &[serde_json::Value]) -> Vec<Digest> {
    list.iter()
        .filter_map(|d| d.get("digest")?.as_str())
        .filter_map(|d| parse_digest(d).ok())
        .collect()
}

/// Another registry as a side.
#[derive(Clone)]
pub struct Remote {
    client: RegistryClient,
    http: SafeClient,
    endpoint: Arc<Endpoint>,
}

impl Remote {
    /// A side over `endpoint`, reached through `http`.
    pub fn new(http: SafeClient, endpoint: Endpoint) -> Result<Self> {
        let client = RegistryClient::new(
            http.clone(),
            remote::Endpoint {
                url: endpoint.url.clone(),
                credential: endpoint
                    .credential
                    .as_ref()
                    .map(|c| (c.access_key.clone(), c.access_secret.clone())),
                insecure: endpoint.insecure,
            },
        )?;
        Ok(Self {
            client,
            http,
            endpoint: Arc::new(endpoint),
        })
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The management API's headers: the credential as Basic auth.
    fn api_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.endpoint.credential {
            use base64::Engine as _;
            let enc = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.access_key, c.access_secret));
            if let Ok(v) = HeaderValue::from_str(&format!("Basic {enc}")) {
                h.insert(header::AUTHORIZATION, v);
            }
        }
        h
    }

    /// Creates `project` through a Harbor-style API (Harbor, Berth) unless
    /// it exists (`HEAD /projects?project_name=`, which a robot account
    /// that may push but not create projects can ask too).
    async fn create_project(&self, project: &str) -> Result<()> {
        let url = format!("{}/api/v2.0/projects", self.endpoint.url);
        let exists = self
            .http
            .fetch(
                Method::HEAD,
                &format!("{url}?project_name={project}"),
                self.api_headers(),
                None,
                64 * 1024,
            )
            .await
            .map_err(ClientError::from)?;
        if exists.status == StatusCode::OK {
            return Ok(());
        }
        let mut h = self.api_headers();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let body = serde_json::json!({"project_name": project, "metadata": {"public": "false"}});
        let a = self
            .http
            .fetch(
                Method::POST,
                &url,
                h,
                Some(Bytes::from(body.to_string())),
                64 * 1024,
            )
            .await
            .map_err(ClientError::from)?;
        match a.status {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(()),
            s => Err(AdapterError::Other(format!(
                "creating project {project:?} on {}: {s}",
                self.endpoint.name
            ))),
        }
    }
}

/// `Ok(None)` for what the remote does not have.
fn remote_absent<T>(r: std::result::Result<T, ClientError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl Adapter for Remote {
    async fn ping(&self) -> Result<()> {
        if self.client.ping().await? {
            Ok(())
        } else {
            Err(AdapterError::Other(
                "the registry refused the credential".to_owned(),
            ))
        }
    }

    async fn repositories(&self) -> Result<Vec<String>> {
        Ok(self.client.catalog().await?)
    }

    async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        Ok(remote_absent(self.client.tags(repo).await)?.unwrap_or_default())
    }

    async fn head_manifest(&self, repo: &str, r: &str) -> Result<Option<Digest>> {
        Ok(remote_absent(self.client.head_manifest(repo, r).await)?
            .flatten()
            .map(|h| h.digest))
    }

    async fn manifest(&self, repo: &str, r: &str) -> Result<Option<Manifest>> {
        Ok(
            remote_absent(self.client.get_manifest(repo, r, &[]).await)?.map(|m| Manifest {
                digest: m.digest,
                media_type: m.media_type,
                bytes: m.bytes,
            }),
        )
    }

    async fn put_manifest(
        &self,
        repo: &str,
        r: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<()> {
        self.client.put_manifest(repo, r, media_type, bytes).await?;
        Ok(())
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Ok(self.client.delete_manifest(repo, digest.as_ref()).await?)
    }

    async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        Ok(remote_absent(self.client.head_blob(repo, digest).await)?
            .flatten()
            .is_some())
    }

    async fn mount_blob(&self, repo: &str, digest: &Digest, from: Option<&str>) -> Result<bool> {
        match from {
            Some(f) if f != repo => Ok(self.client.mount_blob(repo, digest, f).await?),
            _ => Ok(false),
        }
    }

    async fn blob(&self, repo: &str, digest: &Digest) -> Result<(Option<u64>, ByteStream)> {
        let b = self.client.get_blob(repo, digest).await?;
        Ok((b.size, b.body))
    }

    async fn put_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<()> {
        Ok(self.client.push_blob(repo, digest, size, body).await?)
    }

    async fn put_blob_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        _size: u64,
        body: ByteStream,
        chunk: usize,
    ) -> Result<()> {
        Ok(self
            .client
            .push_blob_chunked(repo, digest, body, chunk)
            .await?)
    }

    async fn referrers(&self, repo: &str, digest: &Digest) -> Result<Vec<Digest>> {
        let list = remote_absent(self.client.referrers(repo, digest).await)?.unwrap_or_default();
        Ok(descriptor_digests(&list))
    }

    async fn prepare(&self, repo: &str) -> Result<()> {
        match self.endpoint.kind.as_str() {
            "harbor" | "berth" => {
                self.create_project(crate::registry::keys::project_of(repo))
                    .await
            }
            _ => Ok(()),
        }
    }
}

/// Counts a stream's bytes as they pass (for progress and throughput).
pub fn counted(body: ByteStream, counter: Arc<std::sync::atomic::AtomicU64>) -> ByteStream {
    Box::pin(body.inspect(move |chunk| {
        if let Ok(b) = chunk {
            counter.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }))
}

/// Holds a stream to `kib_per_sec` KiB per second (Harbor's per-task
/// `speed`): after each chunk, waits until the bytes so far are no ahead
/// of the rate.
pub fn throttled(body: ByteStream, kib_per_sec: u64) -> ByteStream {
    let rate = kib_per_sec.max(1) * 1024;
    let start = tokio::time::Instant::now();
    Box::pin(futures_util::stream::unfold(
        (body, 0u64),
        move |(mut body, sent)| async move {
            let chunk = body.next().await?;
            let sent = sent + chunk.as_ref().map_or(0, |b| b.len() as u64);
            let due = start + std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
            Some((chunk, (body, sent)))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn throttling_passes_every_byte() {
        let chunks: Vec<std::io::Result<Bytes>> =
            (0..4).map(|i| Ok(Bytes::from(vec![i; 1024]))).collect();
        let body: ByteStream = Box::pin(futures_util::stream::iter(chunks));
        let out: Vec<u8> = throttled(body, 1)
            .map(|c| c.map(|b| b.to_vec()).unwrap_or_default())
            .concat()
            .await;
        assert_eq!(out.len(), 4096);
        assert_eq!(out[1024], 1);
    }
}
