//! Identity and access (Harbor's model): users, projects, members and
//! roles, robot accounts, the Docker token service's grants and keys, and
//! the audit log.
//!
//! Layering: the token service ([`grant`]) and the management API read the
//! [`directory`]; the registry path reads none of it — it verifies tokens
//! with public keys alone ([`token::Verifier`], DESIGN §4).

pub mod audit;
pub mod directory;
pub mod grant;
pub mod labels;
pub mod password;
pub mod rbac;
pub mod token;

pub use audit::{AuditEntry, AuditLog};
pub use directory::{Directory, DirectoryError, Member, Principal, Project, Robot, User};
pub use rbac::{Action, Resource, Role};
pub use token::{Claims, KeyRing, Scope, Verifier};

use std::sync::Arc;

/// Everything identity-related one process holds: the directory, the audit
/// log, the verifier of registry tokens and — in the token service and
/// `berth serve` only — the signing keys.
#[derive(Clone)]
pub struct Iam {
    pub directory: Directory,
    pub audit: AuditLog,
    /// Verifies registry tokens (public keys only).
    pub verifier: Arc<Verifier>,
    /// Signs tokens; `None` in processes that must not hold the private
    /// key (the registry and admin functions in AWS).
    pub keys: Option<Arc<KeyRing>>,
    /// The `service` (JWT audience) this registry answers to.
    pub service: String,
}

impl Iam {
    /// The identity side over a metadata store, with signing keys (local
    /// processes and the token function) or without (verification only,
    /// keys read from the directory's published set).
    pub fn new(kv: Arc<dyn crate::store::Kv>, keys: Option<Arc<KeyRing>>, service: &str) -> Self {
        let jwks = keys.as_ref().map(|k| k.jwks()).unwrap_or_default();
        Self::with_public_keys(kv, keys, &jwks, service)
    }

    /// As [`Iam::new`], with public keys known from the start (given to a
    /// registry function in its configuration) besides the published ones.
    pub fn with_public_keys(
        kv: Arc<dyn crate::store::Kv>,
        keys: Option<Arc<KeyRing>>,
        jwks: &[token::Jwk],
        service: &str,
    ) -> Self {
        let directory = Directory::new(kv.clone());
        let source: Arc<dyn token::PublicKeySource> = Arc::new(DirectoryKeys(directory.clone()));
        let record_pulls = std::env::var("BERTH_AUDIT_PULLS").map_or(true, |v| v != "false");
        let retention_days = std::env::var("BERTH_AUDIT_RETENTION_DAYS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|d| (1..=3650).contains(d))
            .unwrap_or(90);
        Self {
            audit: AuditLog::new(kv, retention_days, record_pulls),
            verifier: Arc::new(Verifier::new(service, jwks, Some(source))),
            directory,
            keys,
            service: service.to_owned(),
        }
    }
}

/// Public keys as the token service published them in the directory.
struct DirectoryKeys(Directory);

#[async_trait::async_trait]
impl token::PublicKeySource for DirectoryKeys {
    async fn load(&self) -> Result<Vec<token::Jwk>, String> {
        self.0.jwks().await.map_err(|e| e.to_string())
    }
}
