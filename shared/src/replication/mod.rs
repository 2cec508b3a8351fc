//! Replication between registries (Harbor's `replication` and `registry`
//! resources): registry endpoints ([`endpoints`]), replication policies
//! and their filters ([`policies`], [`filter`]), the two sides of a copy
//! behind one trait ([`adapter`]: this registry through
//! [`crate::registry::Registry`], another one through
//! [`crate::outbound::registry::RegistryClient`]) and the copy of one
//! artifact ([`copy`]). The executions and their queue tasks are in
//! [`worker`] (the `replication` worker's [`worker::Replication`], also
//! `crate::jobs::replication`).
//!
//! A policy copies from its source to its destination; one of them is
//! this registry (Harbor's "local" registry, id 0): push-based policies
//! name a `dest_registry`, pull-based ones a `src_registry`.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `REPLICATION#REGISTRY` | `<id, 20 digits>` | an endpoint (JSON, credential included) |
//! | `REPLICATION#REGISTRYNAME` | `<name>` | its name, unique |
//! | `REPLICATION#POLICY` | `<id, 20 digits>` | a policy (JSON) |
//! | `REPLICATION#POLICYNAME` | `<name>` | its name, unique |
//! | `REPLICATION#EVENT#<policy id>` | `<event id>` | the execution an event started (at most one) |
//! | `REPLICATION#EXEC#<policy id>` | `<run id, 20 digits>` | the policy's executions |

pub mod adapter;
pub mod copy;
pub mod endpoints;
pub mod filter;
pub mod policies;
pub mod worker;

pub use endpoints::{Credential, Endpoint, Endpoints, endpoint};
pub use policies::{Filter, Policies, Policy, Trigger};

use std::sync::Arc;

use crate::iam::directory::{Directory, DirectoryError};
use crate::store::{Item, Kv, KvError, Query};

/// Why a replication change or copy was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The request is malformed (Harbor's 400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// Something else still depends on it (412).
    #[error("{0}")]
    Precondition(String),
    /// The other registry refused or could not be reached.
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Kv(#[from] KvError),
}

pub type Result<T, E = ReplicationError> = std::result::Result<T, E>;

/// The adapter types Berth can replicate with (`/replication/adapters`):
/// Harbor's names, plus `berth`.
pub const ADAPTERS: [&str; 3] = ["berth", "docker-registry", "harbor"];

/// Every item under `pk` that `decode` reads, by sort key; stops paging
/// once `max` are read (the store's cap on endpoints or policies).
async fn list_all<T>(
    kv: &dyn Kv,
    pk: &str,
    max: usize,
    decode: fn(&Item) -> Option<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut q = Query::prefix(pk, "", 500);
    loop {
        let page = kv.query(&q).await?;
        out.extend(page.items.iter().filter_map(decode));
        match page.next {
            Some(n) if out.len() < max => q.after = Some(n),
            _ => return Ok(out),
        }
    }
}

/// The next id of the directory's counter `kind` (`registry`,
/// `replication_policy`).
async fn next_id(kv: Arc<dyn Kv>, kind: &str) -> Result<i64> {
    Directory::new(kv).next_id(kind).await.map_err(|e| match e {
        DirectoryError::Kv(k) => ReplicationError::Kv(k),
        e => ReplicationError::Remote(e.to_string()),
    })
}
