//! Replication policies (Harbor's `ReplicationPolicy`): what to copy
//! (filters), from where to where (one side is this registry), when
//! (trigger) and how (destination namespace, override, deletions).
//!
//! A scheduled policy's timing lives in [`crate::jobs::schedule`] under
//! [`schedule_name`], so the worker's tick starts its executions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ReplicationError, Result};
use crate::jobs::schedule::{Schedules, next_after};
use crate::policy::selector::validate_pattern;
use crate::store::{Attr, Cond, Item, Kv, KvError, WriteOp, now_secs};

const PK: &str = "REPLICATION#POLICY";
const NAME_PK: &str = "REPLICATION#POLICYNAME";
/// Most policies one registry keeps (listing and event matching read
/// them all).
pub const MAX_POLICIES: usize = 1000;
const MAX_FILTERS: usize = 20;

/// Trigger types (Harbor's words).
pub const MANUAL: &str = "manual";
pub const SCHEDULED: &str = "scheduled";
pub const EVENT_BASED: &str = "event_based";

/// Filter types and decorations.
pub const NAME: &str = "name";
pub const TAG: &str = "tag";
pub const LABEL: &str = "label";
pub const RESOURCE: &str = "resource";
pub const MATCHES: &str = "matches";
pub const EXCLUDES: &str = "excludes";

/// One filter: `value` is a doublestar pattern (`name`, `tag`), a list of
/// label names (`label`) or `image` / `artifact` (`resource`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub decoration: String,
}

impl Filter {
    /// The value as a pattern (`name`, `tag`, `resource`).
    pub fn pattern(&self) -> &str {
        self.value.as_str().unwrap_or_default()
    }

    /// The value as label names (`label`; a single string is one name).
    pub fn labels(&self) -> Vec<String> {
        match &self.value {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            serde_json::Value::String(s) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// Whether the decoration excludes what matches.
    pub fn excludes(&self) -> bool {
        self.decoration == EXCLUDES
    }
}

/// When a policy runs (Harbor's `ReplicationTrigger`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: String,
    /// The 6-field cron of a scheduled trigger.
    #[serde(default)]
    pub cron: String,
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            kind: MANUAL.to_owned(),
            cron: String::new(),
        }
    }
}

/// A replication policy as stored. Registry id 0 (or none) is this
/// registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The remote source of a pull-based policy.
    #[serde(default)]
    pub src_registry: Option<i64>,
    /// The remote destination of a push-based policy.
    #[serde(default)]
    pub dest_registry: Option<i64>,
    #[serde(default)]
    pub dest_namespace: String,
    /// How many leading path components `dest_namespace` replaces (-1:
    /// Harbor's legacy mode, the first one).
    #[serde(default = "legacy")]
    pub dest_namespace_replace_count: i8,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub replicate_deletion: bool,
    #[serde(default)]
    pub override_: bool,
    #[serde(default)]
    pub enabled: bool,
    /// KiB per second per task (-1 or 0: unlimited).
    #[serde(default)]
    pub speed: i32,
    /// Send blobs in chunks (to a destination that limits request sizes).
    #[serde(default)]
    pub copy_by_chunk: bool,
    #[serde(default)]
    pub single_active_replication: bool,
    pub created: i64,
    pub updated: i64,
}

fn legacy() -> i8 {
    -1
}

/// The schedule item of a scheduled policy.
pub fn schedule_name(policy_id: i64) -> String {
    format!("replication#{policy_id}")
}

fn invalid(m: impl Into<String>) -> ReplicationError {
    ReplicationError::Invalid(m.into())
}

impl Policy {
    /// A new, enabled, manual policy (id 0 until created).
    pub fn new(name: &str) -> Self {
        Self {
            id: 0,
            name: name.to_owned(),
            description: String::new(),
            src_registry: None,
            dest_registry: None,
            dest_namespace: String::new(),
            dest_namespace_replace_count: -1,
            filters: Vec::new(),
            trigger: Trigger::default(),
            replicate_deletion: false,
            override_: true,
            enabled: true,
            speed: -1,
            copy_by_chunk: false,
            single_active_replication: false,
            created: 0,
            updated: 0,
        }
    }

    /// The remote registry: the source of a pull-based policy, else the
    /// destination.
    pub fn remote(&self) -> i64 {
        self.src_registry
            .filter(|id| *id > 0)
            .or(self.dest_registry)
            .unwrap_or(0)
    }

    /// Whether this registry is the source (push-based).
    pub fn push_based(&self) -> bool {
        self.src_registry.is_none_or(|id| id == 0)
    }

    /// Checks a policy as Harbor's `ReplicationPolicy.Validate` does.
    pub fn normalize(&mut self) -> Result<()> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return Err(invalid("the policy name is required"));
        }
        if self.name.len() > 255 || self.description.len() > 1024 {
            return Err(invalid(
                "the policy name is at most 255 characters, the description 1024",
            ));
        }
        let src = self.src_registry.filter(|id| *id > 0);
        let dst = self.dest_registry.filter(|id| *id > 0);
        match (src, dst) {
            (None, None) => {
                return Err(invalid(
                    "either src_registry or dest_registry must be another registry",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "one of src_registry and dest_registry must be this registry (id 0)",
                ));
            }
            _ => {}
        }
        self.src_registry = src;
        self.dest_registry = dst;
        self.dest_namespace = self.dest_namespace.trim().trim_matches('/').to_owned();
        if !self.dest_namespace.is_empty()
            && self.dest_namespace.parse::<crate::oci::RepoName>().is_err()
        {
            return Err(invalid(format!(
                "invalid dest_namespace {:?}",
                self.dest_namespace
            )));
        }
        if self.dest_namespace_replace_count < -1 {
            return Err(invalid("dest_namespace_replace_count is -1 or more"));
        }
        if self.filters.len() > MAX_FILTERS {
            return Err(invalid(format!("at most {MAX_FILTERS} filters")));
        }
        for f in &mut self.filters {
            check_filter(f)?;
        }
        match self.trigger.kind.as_str() {
            "" => self.trigger.kind = MANUAL.to_owned(),
            MANUAL => {}
            EVENT_BASED if !self.push_based() => {
                return Err(invalid(
                    "the event_based trigger is for push-based policies only",
                ));
            }
            EVENT_BASED => {}
            SCHEDULED => {
                let cron = self.trigger.cron.trim().to_owned();
                if next_after(&cron, now_secs()).is_none() {
                    return Err(invalid(format!(
                        "invalid cron {cron:?}: 6 fields (second minute hour day month weekday)"
                    )));
                }
                self.trigger.cron = cron;
            }
            other => {
                return Err(invalid(format!(
                    "invalid trigger type {other:?}: manual, scheduled or event_based"
                )));
            }
        }
        if self.trigger.kind != SCHEDULED {
            self.trigger.cron.clear();
        }
        Ok(())
    }
}

fn check_filter(f: &mut Filter) -> Result<()> {
    if f.decoration.is_empty() {
        f.decoration = MATCHES.to_owned();
    }
    if f.decoration != MATCHES && f.decoration != EXCLUDES {
        return Err(invalid(format!(
            "invalid filter decoration {:?}: matches or excludes",
            f.decoration
        )));
    }
    match f.kind.as_str() {
        NAME | TAG => {
            let p = f
                .value
                .as_str()
                .ok_or_else(|| invalid(format!("the {} filter's value is a pattern", f.kind)))?;
            validate_pattern(p).map_err(|e| invalid(e.to_string()))
        }
        LABEL => {
            if !f.value.is_array() && !f.value.is_string() {
                return Err(invalid("the label filter's value is a list of label names"));
            }
            Ok(())
        }
        RESOURCE => match f.value.as_str() {
            Some("image" | "artifact") => Ok(()),
            _ => Err(invalid(
                "the resource filter's value is \"image\" or \"artifact\"",
            )),
        },
        other => Err(invalid(format!(
            "invalid filter type {other:?}: name, tag, label or resource"
        ))),
    }
}

/// The destination repository of `repository` (Harbor's
/// `replaceNamespace`): no namespace keeps it; `replace_count` -1 replaces
/// the first component (the project), 0 prefixes the namespace, `n`
/// replaces the first `n` components (which must leave at least one).
pub fn dest_repository(repository: &str, namespace: &str, replace_count: i8) -> Result<String> {
    if namespace.is_empty() {
        return Ok(repository.to_owned());
    }
    let parts: Vec<&str> = repository.split('/').collect();
    let rest = match replace_count {
        ..0 => match repository.split_once('/') {
            Some((_, rest)) => rest.to_owned(),
            None => repository.to_owned(),
        },
        0 => repository.to_owned(),
        n if (n as usize) < parts.len() => parts[n as usize..].join("/"),
        n => {
            return Err(invalid(format!(
                "the source repository {repository:?} has {} path components; {n} cannot be replaced",
                parts.len()
            )));
        }
    };
    Ok(format!("{namespace}/{rest}"))
}

fn sk(id: i64) -> String {
    format!("{id:020}")
}

fn decode(item: &Item) -> Option<Policy> {
    serde_json::from_slice(item.b("doc")?).ok()
}

fn encode(p: &Policy) -> Result<Item> {
    let doc = serde_json::to_vec(p).map_err(|e| invalid(e.to_string()))?;
    Ok(Item::new(PK, sk(p.id)).with("doc", Attr::B(doc)))
}

fn name_taken(name: &str) -> ReplicationError {
    ReplicationError::Conflict(format!("the policy name {name:?} is already used"))
}

/// The policies.
#[derive(Clone)]
pub struct Policies {
    kv: Arc<dyn Kv>,
}

impl Policies {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub async fn get(&self, id: i64) -> Result<Option<Policy>> {
        Ok(self.kv.get(PK, &sk(id)).await?.as_ref().and_then(decode))
    }

    /// Every policy, by id.
    pub async fn list(&self) -> Result<Vec<Policy>> {
        super::list_all(self.kv.as_ref(), PK, MAX_POLICIES, decode).await
    }

    /// Stores a new policy (normalized here; the caller checks that its
    /// registry exists); returns its id.
    pub async fn create(&self, mut p: Policy) -> Result<i64> {
        p.normalize()?;
        if self.list().await?.len() >= MAX_POLICIES {
            return Err(invalid(format!(
                "a registry holds at most {MAX_POLICIES} replication policies"
            )));
        }
        p.id = super::next_id(self.kv.clone(), "replication_policy").await?;
        let now = now_secs();
        p.created = now;
        p.updated = now;
        let ops = vec![
            WriteOp::Put {
                item: Item::new(NAME_PK, p.name.clone()).with("id", Attr::N(p.id)),
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: encode(&p)?,
                cond: Cond::NotExists,
            },
        ];
        match self.kv.transact(ops).await {
            Ok(()) => {}
            Err(KvError::ConditionFailed { index: 0 }) => return Err(name_taken(&p.name)),
            Err(e) => return Err(e.into()),
        }
        self.schedule(&p).await?;
        Ok(p.id)
    }

    /// Replaces policy `old.id` with `new` (normalized here), on the
    /// condition that it is still `old`.
    pub async fn update(&self, old: &Policy, mut new: Policy) -> Result<()> {
        new.normalize()?;
        new.id = old.id;
        new.created = old.created;
        new.updated = now_secs();
        let old_doc = encode(old)?.attrs.remove("doc").unwrap_or(Attr::N(0));
        let mut ops = vec![WriteOp::Put {
            item: encode(&new)?,
            cond: Cond::Eq("doc".into(), old_doc),
        }];
        if new.name != old.name {
            ops.push(WriteOp::Put {
                item: Item::new(NAME_PK, new.name.clone()).with("id", Attr::N(new.id)),
                cond: Cond::NotExists,
            });
            ops.push(WriteOp::delete(NAME_PK, old.name.clone()));
        }
        match self.kv.transact(ops).await {
            Ok(()) => {}
            Err(KvError::ConditionFailed { index: 1 }) => return Err(name_taken(&new.name)),
            Err(KvError::ConditionFailed { .. }) => {
                return Err(ReplicationError::Conflict(format!(
                    "policy {} was changed meanwhile; try again",
                    old.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.schedule(&new).await
    }

    /// Removes a policy and its schedule (the caller checks that no
    /// execution of it runs).
    pub async fn delete(&self, p: &Policy) -> Result<()> {
        self.kv
            .transact(vec![
                WriteOp::Delete {
                    pk: PK.to_owned(),
                    sk: sk(p.id),
                    cond: Cond::Exists,
                },
                WriteOp::delete(NAME_PK, p.name.clone()),
            ])
            .await
            .map_err(|e| match e {
                KvError::ConditionFailed { .. } => {
                    ReplicationError::NotFound(format!("policy {} not found", p.id))
                }
                e => e.into(),
            })?;
        let mut off = p.clone();
        off.trigger = Trigger::default();
        self.schedule(&off).await
    }

    /// Sets (or clears) the schedule of a policy.
    async fn schedule(&self, p: &Policy) -> Result<()> {
        let s = Schedules::new(self.kv.clone());
        let (kind, cron) = if p.enabled && p.trigger.kind == SCHEDULED {
            ("Custom", p.trigger.cron.as_str())
        } else {
            ("None", "")
        };
        s.set(
            &schedule_name(p.id),
            kind,
            cron,
            serde_json::json!({"policy_id": p.id}),
            now_secs(),
        )
        .await
        .map_err(|e| match e {
            crate::jobs::schedule::ScheduleError::Invalid(m) => invalid(m),
            crate::jobs::schedule::ScheduleError::Store(k) => k.into(),
        })?;
        Ok(())
    }

    /// Whether any policy replicates with registry `id`.
    pub async fn uses_registry(&self, id: i64) -> Result<bool> {
        Ok(self
            .list()
            .await?
            .iter()
            .any(|p| p.src_registry == Some(id) || p.dest_registry == Some(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_replace_as_harbor() {
        let d = |r: &str, n: &str, c: i8| dest_repository(r, n, c).ok();
        assert_eq!(d("lib/a/b", "", -1).as_deref(), Some("lib/a/b"));
        assert_eq!(d("lib/a/b", "ns", -1).as_deref(), Some("ns/a/b"));
        assert_eq!(d("lib/a/b", "ns", 0).as_deref(), Some("ns/lib/a/b"));
        assert_eq!(d("lib/a/b", "ns", 1).as_deref(), Some("ns/a/b"));
        assert_eq!(d("lib/a/b", "ns", 2).as_deref(), Some("ns/b"));
        assert_eq!(d("lib/a/b", "ns", 3), None);
    }

    #[test]
    fn policies_need_one_remote_side() {
        let mut p = Policy::new("p");
        assert!(p.normalize().is_err());
        p.dest_registry = Some(1);
        assert!(p.normalize().is_ok());
        p.src_registry = Some(2);
        assert!(p.normalize().is_err());
        let mut pull = Policy::new("p");
        pull.src_registry = Some(2);
        pull.trigger.kind = EVENT_BASED.to_owned();
        assert!(pull.normalize().is_err());
    }

    #[test]
    fn filters_are_checked() {
        let mut p = Policy::new("p");
        p.dest_registry = Some(1);
        p.filters = vec![Filter {
            kind: NAME.into(),
            value: "lib/**".into(),
            decoration: String::new(),
        }];
        assert!(p.normalize().is_ok());
        assert_eq!(p.filters[0].decoration, MATCHES);
        p.filters[0].kind = "size".into();
        assert!(p.normalize().is_err());
    }
}
