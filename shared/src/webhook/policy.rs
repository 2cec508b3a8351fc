//! Harbor's `WebhookPolicy` and where it is kept.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `WEBHOOK#<project name>` | `P#<id, 20 digits>` | `doc`: the policy (JSON); `secret`: its signing key |
//! | `WEBHOOK#<project name>` | `N#<policy name>` | `id`: the policy holding the name |
//! | `WEBHOOK#<project name>` | `T#<id, 20 digits>#<event type>` | `at`: when the policy last fired for that event type |
//!
//! A project's policies share a partition, so an event finds the
//! policies of its project with one query. A name is claimed by its own
//! item, written in the transaction that writes the policy on the
//! condition that the name is free: two policies never share a name
//! (Harbor's unique `name`), however the writes race. A policy keeps the
//! id of its project, and only policies of the project that now holds
//! the name are read, so a project deleted and created again never
//! inherits the old one's policies.
//!
//! Harbor's API accepts several targets per policy; its portal edits
//! one, and Berth keeps one (one delivery history per execution), which
//! is refused otherwise with a message that says so.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::payload::{EVENT_TYPES, PayloadFormat};
use crate::iam::directory::{Directory, DirectoryError};
use crate::outbound::{AddressPolicy, OutboundError, check_url};
use crate::store::{Attr, Cond, Item, Kv, KvError, Query, WriteOp, now_secs};

/// Notify types (Harbor's `notify_type`).
pub const HTTP: &str = "http";
pub const SLACK: &str = "slack";

const MAX_NAME: usize = 256;
const MAX_DESCRIPTION: usize = 1024;
const MAX_ADDRESS: usize = 2048;
const MAX_AUTH_HEADER: usize = 4096;

/// What a policy change can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request is wrong (the API's 400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Kv(#[from] KvError),
}

pub type Result<T, E = WebhookError> = std::result::Result<T, E>;

/// Harbor's `WebhookTargetObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Target {
    /// `http` or `slack`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub address: String,
    /// Sent as the `Authorization` header (http targets).
    #[serde(default)]
    pub auth_header: String,
    /// Kept and shown for Harbor's clients; Berth verifies certificates
    /// whatever it says (an unverified TLS target is a forgeable one).
    #[serde(default)]
    pub skip_cert_verify: bool,
    /// `Default` or `CloudEvents` (http); `Default` (slack).
    #[serde(default)]
    pub payload_format: String,
}

impl Target {
    pub fn format(&self) -> PayloadFormat {
        if self.kind == SLACK {
            PayloadFormat::Slack
        } else if self.payload_format == "CloudEvents" {
            PayloadFormat::CloudEvents
        } else {
            PayloadFormat::Default
        }
    }
}

/// Harbor's `WebhookPolicy` (times in epoch seconds; the API shows them
/// in RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WebhookPolicy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub project_id: i64,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub creator: String,
    #[serde(default)]
    pub creation_time: i64,
    #[serde(default)]
    pub update_time: i64,
}

impl WebhookPolicy {
    /// The one target.
    pub fn target(&self) -> Option<&Target> {
        self.targets.first()
    }

    /// Whether the policy is on and subscribes to `event_type`.
    pub fn fires_on(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|e| e == event_type)
    }

    /// Fills in defaults (the payload format) and checks the policy; the
    /// target's address is checked against `addresses` without sending
    /// anything.
    pub fn normalize(&mut self, addresses: AddressPolicy) -> Result<()> {
        let bad = |m: String| Err(WebhookError::Invalid(m));
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return bad("a webhook policy needs a name".into());
        }
        if self.name.len() > MAX_NAME {
            return bad(format!("the name is longer than {MAX_NAME} characters"));
        }
        if self.description.len() > MAX_DESCRIPTION {
            return bad(format!(
                "the description is longer than {MAX_DESCRIPTION} characters"
            ));
        }
        if self.targets.len() != 1 {
            return bad(format!(
                "a webhook policy has exactly one target, not {}",
                self.targets.len()
            ));
        }
        for t in &mut self.targets {
            normalize_target(t, addresses)?;
        }
        if self.event_types.is_empty() {
            return bad("a webhook policy needs at least one event type".into());
        }
        self.event_types.sort();
        self.event_types.dedup();
        if let Some(e) = self
            .event_types
            .iter()
            .find(|e| !EVENT_TYPES.contains(&e.as_str()))
        {
            return bad(format!(
                "unsupported event type {e:?}; supported: {}",
                EVENT_TYPES.join(", ")
            ));
        }
        Ok(())
    }
}

fn normalize_target(t: &mut Target, addresses: AddressPolicy) -> Result<()> {
    let bad = |m: String| Err(WebhookError::Invalid(m));
    t.address = t.address.trim().to_owned();
    match t.kind.as_str() {
        HTTP | SLACK => {}
        "" => return bad("the target needs a type: http or slack".into()),
        other => return bad(format!("unsupported notify type {other:?}: http or slack")),
    }
    match (t.kind.as_str(), t.payload_format.as_str()) {
        (_, "") => "Default".clone_into(&mut t.payload_format),
        (HTTP, "Default" | "CloudEvents") | (SLACK, "Default") => {}
        (kind, f) => {
            return bad(format!(
                "unsupported payload format {f:?} for {kind} targets"
            ));
        }
    }
    if t.address.is_empty() {
        return bad("the target needs an address".into());
    }
    if t.address.len() > MAX_ADDRESS {
        return bad(format!(
            "the address is longer than {MAX_ADDRESS} characters"
        ));
    }
    check_url(addresses, &t.address).map_err(|e| refusal(&t.address, &e))?;
    if t.auth_header.len() > MAX_AUTH_HEADER || http::HeaderValue::from_str(&t.auth_header).is_err()
    {
        return bad("the auth header must be one line of visible characters, at most 4096".into());
    }
    Ok(())
}

/// The 400 message of a refused or malformed address.
fn refusal(address: &str, e: &OutboundError) -> WebhookError {
    WebhookError::Invalid(match e {
        OutboundError::Refused(why) => format!("invalid target address {address:?}: {why}"),
        e => format!("invalid target address: {e}"),
    })
}

const PK_PREFIX: &str = "WEBHOOK#";
const DOC: &str = "doc";
const SECRET: &str = "secret";
/// Bumped by every write: an update is conditioned on the version read.
const VERSION: &str = "v";

fn pk(project: &str) -> String {
    format!("{PK_PREFIX}{project}")
}

fn policy_sk(id: i64) -> String {
    format!("P#{id:020}")
}

fn name_sk(name: &str) -> String {
    format!("N#{name}")
}

fn trigger_sk(id: i64, event_type: &str) -> String {
    format!("T#{id:020}#{event_type}")
}

fn taken(name: &str) -> WebhookError {
    WebhookError::Conflict(format!(
        "a webhook policy named {name:?} already exists in the project"
    ))
}

/// A stored policy with its signing secret.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub policy: WebhookPolicy,
    pub secret: String,
    /// The stored item's version.
    pub version: i64,
}

fn decode(item: &Item) -> Result<StoredPolicy> {
    let corrupt = |m: String| WebhookError::Corrupt(format!("{} {}: {m}", item.pk, item.sk));
    let doc = item.b(DOC).ok_or_else(|| corrupt("no document".into()))?;
    let policy = serde_json::from_slice(doc).map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredPolicy {
        policy,
        secret: item.s(SECRET).unwrap_or_default().to_owned(),
        version: item.n(VERSION).unwrap_or(0),
    })
}

fn encode(project: &str, p: &StoredPolicy) -> Result<Item> {
    let doc = serde_json::to_vec(&p.policy).map_err(|e| WebhookError::Corrupt(e.to_string()))?;
    Ok(Item::new(pk(project), policy_sk(p.policy.id))
        .with(DOC, Attr::B(doc))
        .with(SECRET, Attr::S(p.secret.clone()))
        .with(VERSION, Attr::N(p.version)))
}

/// A new signing secret: 32 random bytes, hex.
fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

/// The webhook policies of every project, over the metadata port.
#[derive(Clone)]
pub struct WebhookPolicies {
    kv: Arc<dyn Kv>,
}

impl WebhookPolicies {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    /// The policies of project `project` (whose id is `project_id`), by id.
    pub async fn list(&self, project: &str, project_id: i64) -> Result<Vec<StoredPolicy>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(pk(project), "P#", 200);
        loop {
            let page = self.kv.query(&q).await?;
            for item in &page.items {
                let p = decode(item)?;
                if p.policy.project_id == project_id {
                    out.push(p);
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// One policy of the project.
    pub async fn get(
        &self,
        project: &str,
        project_id: i64,
        id: i64,
    ) -> Result<Option<StoredPolicy>> {
        Ok(match self.kv.get(&pk(project), &policy_sk(id)).await? {
            Some(item) => Some(decode(&item)?).filter(|p| p.policy.project_id == project_id),
            None => None,
        })
    }

    /// Saves a new policy (checked here against `addresses`) by
    /// `creator`; returns it, with its id and its new signing secret.
    /// A name the project already uses is a `Conflict`.
    pub async fn create(
        &self,
        project: &str,
        project_id: i64,
        mut policy: WebhookPolicy,
        creator: &str,
        addresses: AddressPolicy,
    ) -> Result<StoredPolicy> {
        policy.normalize(addresses)?;
        let now = now_secs();
        policy.id = Directory::new(self.kv.clone())
            .next_id("webhook_policy")
            .await
            .map_err(|e| match e {
                DirectoryError::Kv(k) => WebhookError::Kv(k),
                e => WebhookError::Corrupt(e.to_string()),
            })?;
        policy.project_id = project_id;
        creator.clone_into(&mut policy.creator);
        policy.creation_time = now;
        policy.update_time = now;
        let stored = StoredPolicy {
            policy,
            secret: new_secret(),
            version: 1,
        };
        let ops = vec![
            WriteOp::Put {
                item: encode(project, &stored)?,
                cond: Cond::NotExists,
            },
            self.claim_name(project, project_id, &stored.policy).await?,
        ];
        self.commit(ops, &stored.policy.name).await?;
        Ok(stored)
    }

    /// The write that claims `p`'s name: the name is free, already `p`'s,
    /// or left by a policy that is gone (of a project deleted since).
    async fn claim_name(
        &self,
        project: &str,
        project_id: i64,
        p: &WebhookPolicy,
    ) -> Result<WriteOp> {
        let item = Item::new(pk(project), name_sk(&p.name)).with("id", Attr::N(p.id));
        let cond = match self.kv.get(&pk(project), &name_sk(&p.name)).await? {
            None => Cond::NotExists,
            Some(held) => {
                let holder = held.n("id").unwrap_or(0);
                if holder != p.id && self.get(project, project_id, holder).await?.is_some() {
                    return Err(taken(&p.name));
                }
                Cond::Eq("id".into(), Attr::N(holder))
            }
        };
        Ok(WriteOp::Put { item, cond })
    }

    async fn commit(&self, ops: Vec<WriteOp>, name: &str) -> Result<()> {
        match self.kv.transact(ops).await {
            Ok(()) => Ok(()),
            Err(KvError::ConditionFailed { index: 1 }) => Err(taken(name)),
            Err(KvError::ConditionFailed { .. } | KvError::Conflict) => Err(
                WebhookError::Conflict("the webhook policy changed meanwhile; retry".into()),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces policy `id` with `policy` (checked here), keeping its id,
    /// project, creator, creation time and secret.
    pub async fn update(
        &self,
        project: &str,
        project_id: i64,
        id: i64,
        mut policy: WebhookPolicy,
        addresses: AddressPolicy,
    ) -> Result<WebhookPolicy> {
        policy.normalize(addresses)?;
        let old = self
            .get(project, project_id, id)
            .await?
            .ok_or_else(|| WebhookError::NotFound(format!("webhook policy {id} not found")))?;
        policy.id = id;
        policy.project_id = project_id;
        policy.creator = old.policy.creator.clone();
        policy.creation_time = old.policy.creation_time;
        policy.update_time = now_secs();
        let stored = StoredPolicy {
            policy,
            secret: old.secret.clone(),
            version: old.version + 1,
        };
        let mut ops = vec![
            WriteOp::Put {
                item: encode(project, &stored)?,
                // Nobody changed it since it was read.
                cond: Cond::Eq(VERSION.into(), Attr::N(old.version)),
            },
            self.claim_name(project, project_id, &stored.policy).await?,
        ];
        if old.policy.name != stored.policy.name {
            ops.push(WriteOp::Delete {
                pk: pk(project),
                sk: name_sk(&old.policy.name),
                cond: Cond::Eq("id".into(), Attr::N(id)),
            });
        }
        self.commit(ops, &stored.policy.name).await?;
        Ok(stored.policy)
    }

    /// Removes policy `id` (its executions stay until they expire).
    pub async fn delete(&self, project: &str, project_id: i64, id: i64) -> Result<()> {
        let old = self
            .get(project, project_id, id)
            .await?
            .ok_or_else(|| WebhookError::NotFound(format!("webhook policy {id} not found")))?;
        let ops = vec![
            WriteOp::delete(pk(project), policy_sk(id)),
            WriteOp::Delete {
                pk: pk(project),
                sk: name_sk(&old.policy.name),
                cond: Cond::Always,
            },
        ];
        self.kv.transact(ops).await?;
        // Its last triggers (best effort: a leftover is never shown, as
        // only existing policies' triggers are).
        let q = Query::prefix(pk(project), format!("T#{id:020}#"), 100);
        if let Ok(page) = self.kv.query(&q).await {
            for t in page.items {
                let _ = self.kv.write(WriteOp::delete(t.pk, t.sk)).await;
            }
        }
        Ok(())
    }

    /// The write that records that policy `id` fired for `event_type` at
    /// `at` (epoch seconds).
    pub fn trigger_put(project: &str, id: i64, event_type: &str, at: i64) -> WriteOp {
        WriteOp::put(Item::new(pk(project), trigger_sk(id, event_type)).with("at", Attr::N(at)))
    }

    /// When each policy of the project last fired, by (policy id, event type).
    pub async fn last_triggers(&self, project: &str) -> Result<Vec<(i64, String, i64)>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(pk(project), "T#", 500);
        loop {
            let page = self.kv.query(&q).await?;
            for item in &page.items {
                let mut parts = item.sk.splitn(3, '#').skip(1);
                let (Some(id), Some(event)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let Ok(id) = id.parse() {
                    out.push((id, event.to_owned(), item.n("at").unwrap_or(0)));
                }
            }
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(address: &str) -> WebhookPolicy {
        WebhookPolicy {
            name: "hook".into(),
            targets: vec![Target {
                kind: HTTP.into(),
                address: address.into(),
                ..Target::default()
            }],
            event_types: vec!["PUSH_ARTIFACT".into()],
            enabled: true,
            ..WebhookPolicy::default()
        }
    }

    #[test]
    fn targets_are_checked_on_save() {
        let deny = AddressPolicy::new(false);
        let allow = AddressPolicy::new(true);
        for bad in [
            "http://169.254.169.254/",
            "file:///etc/passwd",
            "http://[fd00:ec2::254]/",
            "gopher://x/",
        ] {
            for p in [deny, allow] {
                let e = policy(bad).normalize(p).unwrap_err();
                assert!(matches!(e, WebhookError::Invalid(_)), "{bad}: {e}");
            }
        }
        assert!(policy("http://127.0.0.1:9/").normalize(deny).is_err());
        assert!(policy("http://127.0.0.1:9/").normalize(allow).is_ok());
        assert!(
            policy("https://hooks.example.com/x")
                .normalize(deny)
                .is_ok()
        );
    }

    #[test]
    fn policies_are_checked() {
        let p = AddressPolicy::new(false);
        let ok = "https://hooks.example.com/x";
        let mut two = policy(ok);
        two.targets.push(two.targets[0].clone());
        assert!(two.normalize(p).is_err());
        let mut unknown = policy(ok);
        unknown.event_types = vec!["NOPE".into()];
        assert!(unknown.normalize(p).is_err());
        let mut none = policy(ok);
        none.event_types.clear();
        assert!(none.normalize(p).is_err());
        let mut header = policy(ok);
        header.targets[0].auth_header = "a\r\nX-Evil: 1".into();
        assert!(header.normalize(p).is_err());
        let mut slack_ce = policy(ok);
        slack_ce.targets[0].kind = SLACK.into();
        slack_ce.targets[0].payload_format = "CloudEvents".into();
        assert!(slack_ce.normalize(p).is_err());
        let mut fine = policy(ok);
        fine.normalize(p).unwrap();
        assert_eq!(fine.targets[0].payload_format, "Default");
    }
}
