//! Registry endpoints (Harbor's `Registry`): the other registries
//! policies replicate with and proxy-cache projects front.
//!
//! The credential's secret is stored as given, in the endpoint's item:
//! replication must present it to the other registry, so it cannot be
//! hashed. It is never returned by the API (which shows `*****`), never
//! logged, and lives only in the metadata store (DynamoDB encrypts items
//! at rest; the embedded store is a file of the server's user).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ADAPTERS, ReplicationError, Result};
use crate::store::{Attr, Cond, Item, Kv, KvError, WriteOp, now_secs};

const PK: &str = "REPLICATION#REGISTRY";
const NAME_PK: &str = "REPLICATION#REGISTRYNAME";
/// Longest name and description accepted.
const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 1024;
/// Most endpoints one registry keeps (listing reads them all).
pub const MAX_ENDPOINTS: usize = 1000;

/// Health as Harbor's `status` says it.
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
pub const UNKNOWN: &str = "unknown";

/// How an endpoint authenticates (Harbor's `RegistryCredential`; `basic`
/// only: the user name and password or token, presented as Basic auth or
/// exchanged for a bearer token as the other registry asks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    #[serde(rename = "type")]
    pub kind: String,
    pub access_key: String,
    pub access_secret: String,
}

/// A registry endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// One of [`ADAPTERS`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Base URL, without a trailing `/`.
    pub url: String,
    #[serde(default)]
    pub credential: Option<Credential>,
    #[serde(default)]
    pub insecure: bool,
    /// [`HEALTHY`], [`UNHEALTHY`] or [`UNKNOWN`], as the last check found.
    #[serde(default)]
    pub status: String,
    /// Epoch seconds.
    pub created: i64,
    pub updated: i64,
}

impl Endpoint {
    /// A new endpoint (id 0 until created).
    pub fn new(name: &str, kind: &str, url: &str) -> Self {
        Self {
            id: 0,
            name: name.to_owned(),
            description: String::new(),
            kind: kind.to_owned(),
            url: url.to_owned(),
            credential: None,
            insecure: false,
            status: UNKNOWN.to_owned(),
            created: 0,
            updated: 0,
        }
    }

    /// Checks what a client may set; trims the URL's trailing `/`.
    pub fn normalize(&mut self) -> Result<()> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return Err(invalid("the registry name is required"));
        }
        if self.name.len() > MAX_NAME || self.description.len() > MAX_DESCRIPTION {
            return Err(invalid(format!(
                "the registry name is at most {MAX_NAME} characters, the description {MAX_DESCRIPTION}"
            )));
        }
        if !ADAPTERS.contains(&self.kind.as_str()) {
            return Err(invalid(format!(
                "invalid registry type {:?}: one of {}",
                self.kind,
                ADAPTERS.join(", ")
            )));
        }
        self.url = self.url.trim().trim_end_matches('/').to_owned();
        check_url(&self.url)?;
        if let Some(c) = &mut self.credential {
            if c.kind.is_empty() {
                c.kind = "basic".to_owned();
            }
            if c.kind != "basic" {
                return Err(invalid(format!(
                    "credential type {:?} is not supported: basic",
                    c.kind
                )));
            }
        }
        if self
            .credential
            .as_ref()
            .is_some_and(|c| c.access_key.is_empty() && c.access_secret.is_empty())
        {
            self.credential = None;
        }
        if self.status.is_empty() {
            self.status = UNKNOWN.to_owned();
        }
        Ok(())
    }
}

/// Refuses what is not an absolute http(s) URL with a host. Where it may
/// connect is decided when connecting ([`crate::outbound::SafeClient`]).
pub fn check_url(url: &str) -> Result<()> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| invalid(format!("invalid registry URL {url:?}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(()),
        _ => Err(invalid(format!(
            "invalid registry URL {url:?}: an absolute http or https URL is needed"
        ))),
    }
}

fn invalid(m: impl Into<String>) -> ReplicationError {
    ReplicationError::Invalid(m.into())
}

fn sk(id: i64) -> String {
    format!("{id:020}")
}

fn decode(item: &Item) -> Option<Endpoint> {
    serde_json::from_slice(item.b("doc")?).ok()
}

fn encode(e: &Endpoint) -> Result<Item> {
    let doc = serde_json::to_vec(e).map_err(|e| ReplicationError::Invalid(e.to_string()))?;
    Ok(Item::new(PK, sk(e.id)).with("doc", Attr::B(doc)))
}

fn name_item(name: &str, id: i64) -> Item {
    Item::new(NAME_PK, name).with("id", Attr::N(id))
}

/// Reads endpoint `id` with its credential (for replication and the proxy
/// cache; the API masks the secret).
pub async fn endpoint(kv: &Arc<dyn Kv>, id: i64) -> Option<Endpoint> {
    match kv.get(PK, &sk(id)).await {
        Ok(item) => item.as_ref().and_then(decode),
        Err(e) => {
            tracing::warn!(registry = id, error = %e, "could not read a registry endpoint");
            None
        }
    }
}

/// The endpoints.
#[derive(Clone)]
pub struct Endpoints {
    kv: Arc<dyn Kv>,
}

fn name_taken(name: &str) -> ReplicationError {
    ReplicationError::Conflict(format!("the registry name {name:?} is already used"))
}

impl Endpoints {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Endpoint>> {
        Ok(self.kv.get(PK, &sk(id)).await?.as_ref().and_then(decode))
    }

    /// Every endpoint, by id.
    pub async fn list(&self) -> Result<Vec<Endpoint>> {
        super::list_all(self.kv.as_ref(), PK, MAX_ENDPOINTS, decode).await
    }

    /// Stores a new endpoint (normalized here); returns its id.
    pub async fn create(&self, mut e: Endpoint) -> Result<i64> {
        e.normalize()?;
        if self.list().await?.len() >= MAX_ENDPOINTS {
            return Err(invalid(format!(
                "a registry holds at most {MAX_ENDPOINTS} endpoints"
            )));
        }
        e.id = super::next_id(self.kv.clone(), "registry").await?;
        let now = now_secs();
        e.created = now;
        e.updated = now;
        let ops = vec![
            WriteOp::Put {
                item: name_item(&e.name, e.id),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: encode(&e)?,
                cond: Cond::NotExists,
            },
        ];
        match self.kv.transact(ops).await {
            Ok(()) => Ok(e.id),
            Err(KvError::ConditionFailed { index: 0 }) => Err(name_taken(&e.name)),
            Err(err) => Err(err.into()),
        }
    }

    /// Replaces endpoint `old.id` with `new` (normalized here), moving its
    /// name if it changed; `old` is what was read (the write is
    /// conditional on it, so a concurrent change is a conflict).
    pub async fn update(&self, old: &Endpoint, mut new: Endpoint) -> Result<()> {
        new.normalize()?;
        new.id = old.id;
        new.created = old.created;
        new.updated = now_secs();
        let old_doc = encode(old)?;
        let mut ops = vec![WriteOp::Put {
            item: encode(&new)?,
            cond: Cond::Eq(
                "doc".into(),
                old_doc.attrs.get("doc").cloned().unwrap_or(Attr::N(0)),
            ),
        }];
        if new.name != old.name {
            ops.push(WriteOp::Put {
                item: name_item(&new.name, new.id),
                cond: Cond::NotExists,
            });
            ops.push(WriteOp::Delete {
                pk: NAME_PK.to_owned(),
                sk: old.name.clone(),
                cond: Cond::Always,
            });
        }
        match self.kv.transact(ops).await {
            Ok(()) => Ok(()),
            Err(KvError::ConditionFailed { index: 1 }) => Err(name_taken(&new.name)),
            Err(KvError::ConditionFailed { .. }) => Err(ReplicationError::Conflict(format!(
                "registry {} was changed meanwhile; try again",
                old.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Records what a health check found (best effort).
    pub async fn set_status(&self, id: i64, status: &str) {
        let Ok(Some(mut e)) = self.get(id).await else {
            return;
        };
        if e.status == status {
            return;
        }
        e.status = status.to_owned();
        if let Ok(item) = encode(&e)
            && let Err(err) = self
                .kv
                .write(WriteOp::Put {
                    item,
                    cond: Cond::Exists,
                })
                .await
        {
            tracing::warn!(registry = id, error = %err, "could not record a registry's health");
        }
    }

    /// Removes an endpoint (the caller checks that no policy uses it).
    pub async fn delete(&self, e: &Endpoint) -> Result<()> {
        self.kv
            .transact(vec![
                WriteOp::Delete {
                    pk: PK.to_owned(),
                    sk: sk(e.id),
                    cond: Cond::Exists,
                },
                WriteOp::Delete {
                    pk: NAME_PK.to_owned(),
                    sk: e.name.clone(),
                    cond: Cond::Always,
                },
            ])
            .await
            .map_err(|err| match err {
                KvError::ConditionFailed { .. } => {
                    ReplicationError::NotFound(format!("registry {} not found", e.id))
                }
                err => err.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http() {
        assert!(check_url("https://r.example.com").is_ok());
        assert!(check_url("http://127.0.0.1:5000").is_ok());
        for bad in ["ftp://x", "r.example.com", "", "http://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalize_checks_type_and_trims() {
        let mut e = Endpoint::new(" a ", "docker-registry", "http://h:5000/");
        e.normalize().unwrap();
        assert_eq!((e.name.as_str(), e.url.as_str()), ("a", "http://h:5000"));
        let mut e = Endpoint::new("a", "quay", "http://h");
        assert!(e.normalize().is_err());
    }
}
