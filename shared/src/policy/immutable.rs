//! Harbor's tag immutability rules (`ImmutableRule`): a tag a rule selects
//! cannot be overwritten by a push nor deleted.
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `POLICY#<project name>` | `IMMUTABLE` | `doc`: the JSON list of the project's rules; `v`: its version |
//!
//! All of a project's rules are one item, so a manifest push reads them in
//! the batch read it already makes ([`rules_key`], [`decode`],
//! [`is_immutable`]); Harbor's portal caps a project at
//! [`MAX_RULES`] rules, which Berth enforces, so the item stays small.
//! Every change reads the item and writes it back on the condition that
//! `v` is still the version read, retrying when another change came
//! first: concurrent changes never lose one another. `v` only grows, even
//! across [`ImmutableRules::delete_all`] (which empties the list rather
//! than removing the item), so a write conditioned on an old version can
//! never succeed against a newer list that happens to reach the same
//! number. A new rule's write also checks that the project (by id and
//! name) still exists, so no rule outlives a project deleted meanwhile.
//!
//! Matching follows Harbor's `pkg/immutable/match/rule`: an enabled rule
//! makes a tag immutable when its *first* repository selector selects the
//! repository path (without the project) and its *first* tag selector
//! selects the tag; further selectors are kept but, as in Harbor, not
//! consulted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::selector::{Selector, SelectorRole};
use crate::iam::directory::{Directory, DirectoryError, keys as dkeys};
use crate::store::{Attr, Cond, Item, Kv, KvError, WriteOp};

/// Most rules a project holds (Harbor's portal limit).
pub const MAX_RULES: usize = 15;
/// Most selectors in one list (Harbor consults the first).
pub const MAX_SELECTORS: usize = 10;
/// Largest `params`, serialized.
pub const MAX_PARAMS_BYTES: usize = 2048;
/// The only action of an immutability rule.
pub const ACTION: &str = "immutable";
/// The only template of an immutability rule.
pub const TEMPLATE: &str = "immutable_template";
/// The only scope selectors' key.
pub const SCOPE_REPOSITORY: &str = "repository";

const PK_PREFIX: &str = "POLICY#";
const SK: &str = "IMMUTABLE";
const DOC: &str = "doc";
const VERSION: &str = "v";
/// Attempts of a change racing others before it answers a conflict.
const ATTEMPTS: usize = 25;

/// The key of a project's rules item.
pub fn rules_key(project: &str) -> (String, String) {
    (format!("{PK_PREFIX}{project}"), SK.to_owned())
}

/// What a rules change can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
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

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// Harbor's `ImmutableRule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImmutableRule {
    #[serde(default)]
    pub id: i64,
    /// The project's id (Harbor keeps it; its API does not show it).
    #[serde(default)]
    pub project_id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub template: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    /// By scope; only `repository` exists.
    #[serde(default)]
    pub scope_selectors: BTreeMap<String, Vec<Selector>>,
}

impl ImmutableRule {
    /// An enabled rule with one repository and one tag selector.
    pub fn new(repository: Selector, tag: Selector) -> Self {
        ImmutableRule {
            id: 0,
            project_id: 0,
            priority: 0,
            disabled: false,
            action: ACTION.to_owned(),
            template: TEMPLATE.to_owned(),
            params: Map::new(),
            tag_selectors: vec![tag],
            scope_selectors: [(SCOPE_REPOSITORY.to_owned(), vec![repository])].into(),
        }
    }

    /// Fills in what Harbor's clients may leave out (the action and the
    /// template, which have one value each) and checks the rest.
    pub fn normalize(&mut self) -> Result<()> {
        if self.action.is_empty() {
            ACTION.clone_into(&mut self.action);
        }
        if self.template.is_empty() {
            TEMPLATE.clone_into(&mut self.template);
        }
        self.validate()
    }

    /// Checks the rule: action `immutable`, template
    /// `immutable_template`, 1 to [`MAX_SELECTORS`] valid tag selectors
    /// (`matches`/`excludes`) and repository selectors
    /// (`repoMatches`/`repoExcludes`, under `repository`, the only
    /// scope), small `params`.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.action != ACTION {
            return bad(format!(
                "invalid action {:?}: an immutable tag rule's action is {ACTION:?}",
                self.action
            ));
        }
        if self.template != TEMPLATE {
            return bad(format!(
                "invalid template {:?}: an immutable tag rule's template is {TEMPLATE:?}",
                self.template
            ));
        }
        check_selectors("tag_selectors", &self.tag_selectors, SelectorRole::Tag)?;
        if let Some(other) = self.scope_selectors.keys().find(|k| *k != SCOPE_REPOSITORY) {
            return bad(format!(
                "invalid scope selector {other:?}: the only scope is {SCOPE_REPOSITORY:?}"
            ));
        }
        let repos = self
            .scope_selectors
            .get(SCOPE_REPOSITORY)
            .map_or(&[][..], Vec::as_slice);
        check_selectors(
            "scope_selectors.repository",
            repos,
            SelectorRole::Repository,
        )?;
        let params = serde_json::to_vec(&self.params).map_or(usize::MAX, |v| v.len());
        if params > MAX_PARAMS_BYTES {
            return bad(format!(
                "params are too large: at most {MAX_PARAMS_BYTES} bytes"
            ));
        }
        Ok(())
    }

    /// Whether the rule (enabled or not) selects `tag` in the repository
    /// `repo_in_project` (the path without `project/`): Harbor consults
    /// the first repository selector and the first tag selector.
    pub fn selects(&self, repo_in_project: &str, tag: &str) -> bool {
        let repo = self
            .scope_selectors
            .get(SCOPE_REPOSITORY)
            .and_then(|s| s.first());
        match (repo, self.tag_selectors.first()) {
            (Some(r), Some(t)) => r.selects(repo_in_project) && t.selects(tag),
            _ => false,
        }
    }

    /// The rule's content, what makes two rules the same rule (Harbor's
    /// unique `tag_filter`): everything but the id, the project and the
    /// switch.
    fn same_as(&self, other: &ImmutableRule) -> bool {
        self.priority == other.priority
            && self.action == other.action
            && self.template == other.template
            && self.params == other.params
            && self.tag_selectors == other.tag_selectors
            && self.scope_selectors == other.scope_selectors
    }
}

fn check_selectors(name: &str, list: &[Selector], role: SelectorRole) -> Result<()> {
    if list.is_empty() {
        return Err(PolicyError::Invalid(format!("{name} must hold a selector")));
    }
    if list.len() > MAX_SELECTORS {
        return Err(PolicyError::Invalid(format!(
            "{name} holds at most {MAX_SELECTORS} selectors"
        )));
    }
    for s in list {
        s.validate(role)
            .map_err(|m| PolicyError::Invalid(format!("{name}: {m}")))?;
    }
    Ok(())
}

/// Whether `tag` in the repository `repo_in_project` (its path without
/// `project/`) is immutable under `rules`: some enabled rule selects it.
pub fn is_immutable(rules: &[ImmutableRule], repo_in_project: &str, tag: &str) -> bool {
    rules
        .iter()
        .any(|r| !r.disabled && r.selects(repo_in_project, tag))
}

/// The rules in a project's rules item (absent: none). Tolerant: an
/// unreadable item counts as no rules, with a warning.
pub fn decode(item: Option<&Item>) -> Vec<ImmutableRule> {
    match item.map(read) {
        None => Vec::new(),
        Some(Ok((rules, _))) => rules,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "immutable tag rules unreadable; applying none");
            Vec::new()
        }
    }
}

/// The rules and the version of a stored item, strictly.
fn read(item: &Item) -> Result<(Vec<ImmutableRule>, i64)> {
    let corrupt = |m: String| PolicyError::Corrupt(format!("{} {}: {m}", item.pk, item.sk));
    let v = item
        .n(VERSION)
        .ok_or_else(|| corrupt("no version".to_owned()))?;
    let bytes = match (item.b(DOC), item.s(DOC)) {
        (Some(b), _) => b,
        (None, Some(s)) => s.as_bytes(),
        (None, None) => return Err(corrupt("no document".to_owned())),
    };
    let rules = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok((rules, v))
}

/// The rules store of every project, over the metadata port.
#[derive(Clone)]
pub struct ImmutableRules {
    kv: Arc<dyn Kv>,
}

impl ImmutableRules {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        ImmutableRules { kv }
    }

    /// A project's rules by id (one read).
    pub async fn list(&self, project: &str) -> Result<Vec<ImmutableRule>> {
        let (pk, sk) = rules_key(project);
        Ok(match self.kv.get(&pk, &sk).await? {
            Some(item) => read(&item)?.0,
            None => Vec::new(),
        })
    }

    /// One rule of a project.
    pub async fn get(&self, project: &str, id: i64) -> Result<Option<ImmutableRule>> {
        Ok(self.list(project).await?.into_iter().find(|r| r.id == id))
    }

    /// Adds a rule (normalized and validated here) to the project
    /// `project` whose id is `project_id`, with a new id; Harbor creates
    /// rules enabled, whatever `disabled` says. A project holding
    /// [`MAX_RULES`] rules refuses more (`Invalid`); a rule the same as
    /// one the project holds is a `Conflict`; a project that is gone is
    /// `NotFound`.
    pub async fn create(
        &self,
        project: &str,
        project_id: i64,
        mut rule: ImmutableRule,
    ) -> Result<i64> {
        rule.normalize()?;
        rule.disabled = false;
        rule.project_id = project_id;
        rule.id = Directory::new(self.kv.clone())
            .next_id("immutable_rule")
            .await
            .map_err(|e| match e {
                DirectoryError::Kv(k) => PolicyError::Kv(k),
                e => PolicyError::Corrupt(e.to_string()),
            })?;
        let id = rule.id;
        self.change(project, Some(project_id), |rules| {
            if rules.len() >= MAX_RULES {
                return Err(PolicyError::Invalid(format!(
                    "a project holds at most {MAX_RULES} immutable tag rules"
                )));
            }
            if rules.iter().any(|r| r.same_as(&rule)) {
                return Err(PolicyError::Conflict(
                    "immutable rule already exists".to_owned(),
                ));
            }
            rules.push(rule.clone());
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Replaces rule `id` of the project with `rule` (normalized and
    /// validated here; its id and project stay). `NotFound` when the
    /// project holds no such rule.
    pub async fn update(&self, project: &str, id: i64, mut rule: ImmutableRule) -> Result<()> {
        rule.normalize()?;
        rule.id = id;
        self.change(project, None, |rules| {
            let slot = rules
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or_else(|| not_found(id))?;
            rule.project_id = slot.project_id;
            *slot = rule.clone();
            Ok(())
        })
        .await
    }

    /// Removes rule `id` of the project; `NotFound` when it holds no such
    /// rule.
    pub async fn delete(&self, project: &str, id: i64) -> Result<()> {
        self.change(project, None, |rules| {
            let at = rules
                .iter()
                .position(|r| r.id == id)
                .ok_or_else(|| not_found(id))?;
            rules.remove(at);
            Ok(())
        })
        .await
    }

    /// Removes every rule of the project (for a project delete). The item
    /// stays, empty, so its version keeps growing (see the module
    /// documentation); an unreadable item is emptied too.
    pub async fn delete_all(&self, project: &str) -> Result<()> {
        let (pk, sk) = rules_key(project);
        for _ in 0..ATTEMPTS {
            let Some(item) = self.kv.get(&pk, &sk).await? else {
                return Ok(());
            };
            let (cond, v) = match item.n(VERSION) {
                Some(v) => (Cond::Eq(VERSION.to_owned(), Attr::N(v)), v),
                None => (Cond::Exists, 0),
            };
            let put = WriteOp::Put {
                item: Item::new(pk.clone(), sk.clone())
                    .with(DOC, Attr::B(b"[]".to_vec()))
                    .with(VERSION, Attr::N(v.saturating_add(1))),
                cond,
            };
            match self.kv.write(put).await {
                Ok(()) => return Ok(()),
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(PolicyError::Kv(KvError::Conflict))
    }

    /// Reads the project's rules, applies `f` and writes them back on the
    /// condition that the version is still the one read (and, with
    /// `project_id`, that the project still exists), again from the read
    /// when another change came first.
    async fn change<T>(
        &self,
        project: &str,
        project_id: Option<i64>,
        mut f: impl FnMut(&mut Vec<ImmutableRule>) -> Result<T>,
    ) -> Result<T> {
        let (pk, sk) = rules_key(project);
        for _ in 0..ATTEMPTS {
            let item = self.kv.get(&pk, &sk).await?;
            let (mut rules, version) = match &item {
                Some(item) => {
                    let (rules, v) = read(item)?;
                    (rules, Some(v))
                }
                None => (Vec::new(), None),
            };
            let out = f(&mut rules)?;
            rules.sort_by_key(|r| r.id);
            let doc = serde_json::to_vec(&rules)
                .map_err(|e| PolicyError::Corrupt(format!("cannot encode rules: {e}")))?;
            let cond = match version {
                Some(v) => Cond::Eq(VERSION.to_owned(), Attr::N(v)),
                None => Cond::NotExists,
            };
            let mut ops = vec![WriteOp::Put {
                item: Item::new(pk.clone(), sk.clone())
                    .with(DOC, Attr::B(doc))
                    .with(VERSION, Attr::N(version.unwrap_or(0).saturating_add(1))),
                cond,
            }];
            if let Some(pid) = project_id {
                ops.push(WriteOp::Check {
                    pk: dkeys::project_id(pid),
                    sk: "META".to_owned(),
                    cond: Cond::Eq("name".to_owned(), Attr::S(project.to_owned())),
                });
            }
            match self.kv.transact(ops).await {
                Ok(()) => return Ok(out),
                Err(KvError::ConditionFailed { index: 0 } | KvError::Conflict) => {}
                Err(KvError::ConditionFailed { .. }) => {
                    return Err(PolicyError::NotFound(format!(
                        "project {project} not found"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(PolicyError::Kv(KvError::Conflict))
    }
}

fn not_found(id: i64) -> PolicyError {
    PolicyError::NotFound(format!("immutable rule {id} not found"))
}

#[cfg(test)]
mod tests {
    use super::super::selector::{EXCLUDES, MATCHES, REPO_EXCLUDES, REPO_MATCHES};
    use super::*;
    use crate::iam::Project;

    fn rule(repo: (&str, &str), tag: (&str, &str)) -> ImmutableRule {
        ImmutableRule::new(
            Selector::doublestar(repo.0, repo.1),
            Selector::doublestar(tag.0, tag.1),
        )
    }

    #[test]
    fn harbors_json_reads() {
        let r: ImmutableRule = serde_json::from_str(
            r#"{"id":0,"priority":0,"disabled":false,"action":"immutable","template":"immutable_template",
                "tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v*"}],
                "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}"#,
        )
        .expect("rule");
        assert!(r.validate().is_ok());
        assert!(r.selects("team/app", "v1") && !r.selects("team/app", "latest"));
    }

    #[test]
    fn validation() {
        let ok = rule((REPO_MATCHES, "**"), (MATCHES, "**"));
        assert!(ok.validate().is_ok());
        let mut r = ok.clone();
        r.action = String::new();
        r.template = String::new();
        r.normalize().expect("defaults");
        assert_eq!((r.action.as_str(), r.template.as_str()), (ACTION, TEMPLATE));
        let broken: Vec<(&str, ImmutableRule)> = vec![
            (
                "action",
                ImmutableRule {
                    action: "retain".into(),
                    ..ok.clone()
                },
            ),
            (
                "template",
                ImmutableRule {
                    template: "latestPushedK".into(),
                    ..ok.clone()
                },
            ),
            (
                "no tag selector",
                ImmutableRule {
                    tag_selectors: vec![],
                    ..ok.clone()
                },
            ),
            (
                "no scope",
                ImmutableRule {
                    scope_selectors: BTreeMap::new(),
                    ..ok.clone()
                },
            ),
            (
                "tag decoration on a repository",
                rule((MATCHES, "**"), (MATCHES, "**")),
            ),
            (
                "repository decoration on a tag",
                rule((REPO_MATCHES, "**"), (REPO_MATCHES, "**")),
            ),
            ("empty pattern", rule((REPO_MATCHES, "**"), (MATCHES, ""))),
            ("bad pattern", rule((REPO_MATCHES, "[a"), (MATCHES, "**"))),
            (
                "long pattern",
                rule((REPO_MATCHES, &"a".repeat(257)), (MATCHES, "**")),
            ),
            (
                "other scope",
                ImmutableRule {
                    scope_selectors: [
                        (
                            SCOPE_REPOSITORY.to_owned(),
                            vec![Selector::doublestar(REPO_MATCHES, "**")],
                        ),
                        (
                            "namespace".to_owned(),
                            vec![Selector::doublestar(REPO_MATCHES, "**")],
                        ),
                    ]
                    .into(),
                    ..ok.clone()
                },
            ),
            (
                "too many selectors",
                ImmutableRule {
                    tag_selectors: vec![Selector::doublestar(MATCHES, "x"); MAX_SELECTORS + 1],
                    ..ok.clone()
                },
            ),
            (
                "big params",
                ImmutableRule {
                    params: [("x".to_owned(), Value::String("y".repeat(MAX_PARAMS_BYTES)))]
                        .into_iter()
                        .collect(),
                    ..ok.clone()
                },
            ),
        ];
        for (what, r) in broken {
            assert!(
                matches!(r.validate(), Err(PolicyError::Invalid(_))),
                "{what}"
            );
        }
        let mut kind = ok;
        kind.tag_selectors[0].kind = "label".into();
        assert!(kind.validate().is_err());
    }

    #[test]
    fn immutability_follows_harbors_matcher() {
        let rules = vec![
            rule((REPO_MATCHES, "team/**"), (MATCHES, "v*")),
            rule((REPO_EXCLUDES, "scratch/**"), (EXCLUDES, "{latest,dev-*}")),
        ];
        assert!(is_immutable(&rules, "team/app", "v1.0"));
        assert!(!is_immutable(&rules, "scratch/app", "v1.0"));
        // The second rule: every repository but scratch/…, every tag but
        // latest and dev-*.
        assert!(is_immutable(&rules, "web", "1.0"));
        assert!(!is_immutable(&rules, "web", "latest"));
        assert!(!is_immutable(&rules, "web", "dev-42"));
        assert!(!is_immutable(&rules, "scratch/x", "1.0"));
        // Disabled rules do not count.
        let mut off = rules.clone();
        for r in &mut off {
            r.disabled = true;
        }
        assert!(!is_immutable(&off, "team/app", "v1.0"));
        assert!(!is_immutable(&[], "team/app", "v1.0"));
        // Only the first selector of each list counts (Harbor's matcher).
        let mut two = rule((REPO_MATCHES, "team/**"), (MATCHES, "v*"));
        two.tag_selectors
            .push(Selector::doublestar(MATCHES, "nothing"));
        two.scope_selectors
            .get_mut(SCOPE_REPOSITORY)
            .expect("repository")
            .push(Selector::doublestar(REPO_MATCHES, "nothing"));
        assert!(is_immutable(&[two], "team/app", "v2"));
        // No repository selector: never selects.
        let none = ImmutableRule {
            scope_selectors: BTreeMap::new(),
            ..rule((REPO_MATCHES, "**"), (MATCHES, "**"))
        };
        assert!(!is_immutable(&[none], "a", "b"));
    }

    #[test]
    fn decode_is_tolerant() {
        assert!(decode(None).is_empty());
        let (pk, sk) = rules_key("p");
        assert_eq!((pk.as_str(), sk.as_str()), ("POLICY#p", "IMMUTABLE"));
        let garbage = Item::new(pk.clone(), sk.clone())
            .with(DOC, Attr::B(b"{not json".to_vec()))
            .with(VERSION, Attr::N(1));
        assert!(decode(Some(&garbage)).is_empty());
        let no_version = Item::new(pk.clone(), sk.clone()).with(DOC, Attr::B(b"[]".to_vec()));
        assert!(decode(Some(&no_version)).is_empty());
        let doc =
            serde_json::to_vec(&vec![rule((REPO_MATCHES, "**"), (MATCHES, "**"))]).expect("json");
        let good = Item::new(pk, sk)
            .with(DOC, Attr::B(doc))
            .with(VERSION, Attr::N(3));
        assert_eq!(decode(Some(&good)).len(), 1);
    }

    async fn store() -> (tempfile::TempDir, ImmutableRules, Directory, Project) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kv, _) = crate::store::open_local(dir.path()).await.expect("store");
        let d = Directory::new(kv.clone());
        let p = d
            .create_project(Project {
                id: 0,
                name: "team".to_owned(),
                public: false,
                owner_id: 1,
                owner_name: "admin".to_owned(),
                created: 0,
                updated: 0,
            })
            .await
            .expect("project");
        (dir, ImmutableRules::new(kv), d, p)
    }

    #[tokio::test]
    async fn crud() {
        let (_dir, rules, _d, p) = store().await;
        let mut r = rule((REPO_MATCHES, "**"), (MATCHES, "v*"));
        r.disabled = true;
        r.action = String::new();
        let a = rules
            .create(&p.name, p.id, r.clone())
            .await
            .expect("create");
        let listed = rules.list(&p.name).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, a);
        assert_eq!(listed[0].project_id, p.id);
        assert!(!listed[0].disabled, "Harbor creates rules enabled");
        assert_eq!(listed[0].action, ACTION);
        // The same content again is a conflict (Harbor's unique tag_filter).
        assert!(matches!(
            rules.create(&p.name, p.id, r.clone()).await,
            Err(PolicyError::Conflict(_))
        ));
        let b = rules
            .create(&p.name, p.id, rule((REPO_MATCHES, "**"), (MATCHES, "1.*")))
            .await
            .expect("second");
        assert!(b > a);
        let mut changed = listed[0].clone();
        changed.disabled = true;
        changed.tag_selectors[0].pattern = "release-*".to_owned();
        rules.update(&p.name, a, changed).await.expect("update");
        let got = rules.get(&p.name, a).await.expect("get").expect("rule");
        assert!(got.disabled);
        assert_eq!(got.tag_selectors[0].pattern, "release-*");
        assert_eq!(got.project_id, p.id);
        assert!(matches!(
            rules.update(&p.name, 999, got.clone()).await,
            Err(PolicyError::NotFound(_))
        ));
        assert!(matches!(
            rules
                .update(
                    &p.name,
                    a,
                    ImmutableRule {
                        tag_selectors: vec![],
                        ..got
                    }
                )
                .await,
            Err(PolicyError::Invalid(_))
        ));
        rules.delete(&p.name, a).await.expect("delete");
        assert!(matches!(
            rules.delete(&p.name, a).await,
            Err(PolicyError::NotFound(_))
        ));
        assert_eq!(
            rules
                .list(&p.name)
                .await
                .expect("list")
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![b]
        );
        // Other projects' rules are their own.
        assert!(rules.list("other").await.expect("other").is_empty());
        assert!(matches!(
            rules.delete("other", b).await,
            Err(PolicyError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn at_most_fifteen_rules() {
        let (_dir, rules, _d, p) = store().await;
        for i in 0..MAX_RULES {
            rules
                .create(
                    &p.name,
                    p.id,
                    rule((REPO_MATCHES, "**"), (MATCHES, &format!("v{i}"))),
                )
                .await
                .expect("create");
        }
        assert!(matches!(
            rules
                .create(&p.name, p.id, rule((REPO_MATCHES, "**"), (MATCHES, "x")))
                .await,
            Err(PolicyError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn rules_need_their_project() {
        let (_dir, rules, d, p) = store().await;
        // Another id under the same name: not this project.
        assert!(matches!(
            rules
                .create(
                    &p.name,
                    p.id + 100,
                    rule((REPO_MATCHES, "**"), (MATCHES, "x"))
                )
                .await,
            Err(PolicyError::NotFound(_))
        ));
        assert!(matches!(
            rules
                .create("nowhere", p.id, rule((REPO_MATCHES, "**"), (MATCHES, "x")))
                .await,
            Err(PolicyError::NotFound(_))
        ));
        rules
            .create(&p.name, p.id, rule((REPO_MATCHES, "**"), (MATCHES, "x")))
            .await
            .expect("create");
        let (pk, sk) = rules_key(&p.name);
        let before = d
            .kv()
            .get(&pk, &sk)
            .await
            .expect("get")
            .expect("item")
            .n(VERSION);
        rules.delete_all(&p.name).await.expect("delete all");
        assert!(rules.list(&p.name).await.expect("list").is_empty());
        let after = d
            .kv()
            .get(&pk, &sk)
            .await
            .expect("get")
            .expect("item")
            .n(VERSION);
        assert!(
            after > before,
            "the version keeps growing: {before:?} → {after:?}"
        );
        rules
            .delete_all("nowhere")
            .await
            .expect("nothing to delete");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_lose_nothing() {
        let (_dir, rules, _d, p) = store().await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let rules = rules.clone();
            let name = p.name.clone();
            tasks.push(tokio::spawn(async move {
                rules
                    .create(
                        &name,
                        p.id,
                        rule((REPO_MATCHES, "**"), (MATCHES, &format!("t{i}"))),
                    )
                    .await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.expect("join").expect("create"));
        }
        ids.sort_unstable();
        let stored: Vec<i64> = rules
            .list(&p.name)
            .await
            .expect("list")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(stored, ids);
    }
}
