//! Harbor's tag retention policies (`RetentionPolicy`): the model, its
//! validation, the evaluation of a policy over a repository's artifacts
//! (pure), and the policies' storage.
//!
//! ## Semantics (Harbor's `src/pkg/retention`)
//!
//! A policy holds up to [`MAX_RULES`] rules combined with the algorithm
//! `or`. Each enabled rule applies to the repositories *all* its
//! repository selectors select (the launcher's sequential `Select`), and
//! within such a repository to the artifacts *all* its tag selectors
//! select (the processor's `&&` chain); its template then keeps some of
//! those (`latestPushedK`, `latestPulledN`, `latestActiveK`,
//! `nDaysSinceLastPush`, `nDaysSinceLastPull`, `lastXDays`, `always`).
//! What a repository keeps is the union of what its rules keep; every
//! other top-level artifact of the repository is deleted, except one with
//! an immutable tag, which stays (Harbor's `retainAction`, reported as
//! `IMMUTABLE`). A repository no enabled rule applies to is left alone.
//!
//! Untagged artifacts are candidates too, and a rule keeps one only if its
//! tag selectors select it ([`Selector::selects_tags`], Harbor's
//! doublestar selector): a `matches` selector selects untagged artifacts
//! when its `extras` say `{"untagged": true}`, an `excludes` selector when
//! they say `{"untagged": false}` (there the box means "exclude untagged
//! ones too"); without `extras`, Harbor's upgrade default selects them
//! either way. So `matches **` without the box keeps only tagged
//! artifacts, and the untagged ones go unless another rule keeps them;
//! `excludes **` without it keeps only the untagged ones (Harbor PR
//! #10922).
//!
//! A tag selector may also be Harbor's label selector
//! (`src/lib/selector/selectors/label`): `{"kind": "label", "decoration":
//! "withLabels" | "withoutLabels", "pattern": "<names, comma-separated>"}`.
//! It looks at the names of the labels attached to the artifact, never at
//! its tags (so it selects untagged artifacts alike): `withLabels`
//! selects an artifact that carries *every* listed label, `withoutLabels`
//! one that carries *none* of them (for one label, the complement of
//! `withLabels`; for several, not: an artifact with some of them is
//! selected by neither). Names are compared exactly, as written between
//! the commas (Harbor's `strings.Split`, no trimming). It combines with
//! doublestar selectors in the same rule like any tag selector (all must
//! select). Harbor itself leaves the label selector unregistered (its
//! `Register(label.Kind, …)` is commented out in
//! `src/lib/selector/selectors/index/index.go`), so there a policy using
//! one is stored but its executions fail; and its
//! `/retentions/metadatas` lists doublestar tag selectors only, as Berth's
//! does. Berth runs label selectors with the selector's own semantics.
//!
//! An artifact's push time is the latest of its own and its tags' push
//! times, its pull time its last pull (Harbor's `GetCandidates`). Ties
//! in the "latest" templates are broken by digest, so the same input
//! always gives the same answer (a dry run and the real run agree).
//!
//! ## Storage
//!
//! | pk | sk | holds |
//! | --- | --- | --- |
//! | `POLICY#<project name>` | `RETENTION` | `doc`: the policy (JSON); `id`; `v`: version |
//! | `RETENTION#<id>` | `META` | `project`, `project_id`: the policy's project; `execs`: executions started |
//! | `RETENTIONS` | `<id, 20 digits>` | `project`: present while the policy has a schedule |
//!
//! One policy per project, as Harbor (its project metadata `retention_id`).
//! Ids come from the directory's counter `retention`. A policy's cron is
//! kept in [`crate::jobs::schedule::Schedules`] under `retention#<id>`;
//! the `RETENTIONS` index lists the policies the worker's tick asks about.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::immutable::PolicyError;
use super::selector::{
    KIND_DOUBLESTAR, KIND_LABEL, MAX_EXTRAS_LEN, Selector, SelectorRole, WITH_LABELS,
    WITHOUT_LABELS,
};
use crate::iam::directory::{Directory, DirectoryError, keys as dkeys};
use crate::jobs::schedule::{Schedules, next_after};
use crate::store::{Attr, Cond, Item, Kv, KvError, Query, WriteOp};

/// Most rules a policy holds (Harbor's `CreateRetention` / `UpdateRetention`).
pub const MAX_RULES: usize = 15;
/// Most selectors in one list.
pub const MAX_SELECTORS: usize = 10;
/// Largest policy, serialized.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The only algorithm.
pub const ALGORITHM_OR: &str = "or";
/// The only action.
pub const ACTION_RETAIN: &str = "retain";
/// The only trigger kind, and its setting.
pub const TRIGGER_SCHEDULE: &str = "Schedule";
pub const SETTING_CRON: &str = "cron";
/// The only scope level, and the only scope selectors' key.
pub const SCOPE_PROJECT: &str = "project";
pub const SCOPE_REPOSITORY: &str = "repository";

/// Rule templates (Harbor's `TemplateID`s; each names its parameter too).
pub const LATEST_PUSHED_K: &str = "latestPushedK";
pub const LATEST_PULLED_N: &str = "latestPulledN";
pub const LATEST_ACTIVE_K: &str = "latestActiveK";
pub const N_DAYS_SINCE_LAST_PUSH: &str = "nDaysSinceLastPush";
pub const N_DAYS_SINCE_LAST_PULL: &str = "nDaysSinceLastPull";
pub const LAST_X_DAYS: &str = "lastXDays";
pub const ALWAYS: &str = "always";

/// Harbor's bounds: counts below `math.MaxInt16`, days at most 20190904.
const MAX_COUNT: i64 = i16::MAX as i64 - 1;
const MAX_DAYS: i64 = 20_190_904;
const DAY_SECS: i64 = 86_400;

const PK_PREFIX: &str = "POLICY#";
const SK: &str = "RETENTION";
const LOOKUP_SK: &str = "META";
/// The index of scheduled policies.
pub const SCHEDULED_PK: &str = "RETENTIONS";
const DOC: &str = "doc";
const VERSION: &str = "v";
const ATTEMPTS: usize = 25;

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

/// The key of a project's policy item.
pub fn policy_key(project: &str) -> (String, String) {
    (format!("{PK_PREFIX}{project}"), SK.to_owned())
}

/// The key of a policy's lookup item (its project, its execution count).
pub fn lookup_key(id: i64) -> (String, String) {
    (format!("RETENTION#{id}"), LOOKUP_SK.to_owned())
}

/// The name of a policy's schedule in [`Schedules`].
pub fn schedule_name(id: i64) -> String {
    format!("retention#{id}")
}

// ---- the model ----------------------------------------------------------------

/// `null` reads as the default (Harbor's clients send `null` lists).
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A selector as a request may carry it (any field missing or `null`).
#[derive(Deserialize)]
struct SelectorIn {
    kind: Option<String>,
    decoration: Option<String>,
    pattern: Option<String>,
    extras: Option<String>,
}

impl From<SelectorIn> for Selector {
    fn from(s: SelectorIn) -> Self {
        Selector {
            kind: s.kind.unwrap_or_default(),
            decoration: s.decoration.unwrap_or_default(),
            pattern: s.pattern.unwrap_or_default(),
            extras: s.extras.unwrap_or_default(),
        }
    }
}

fn selectors<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Selector>, D::Error> {
    let list: Option<Vec<SelectorIn>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(Selector::from)
        .collect())
}

fn scope_selectors<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, Vec<Selector>>, D::Error> {
    let map: Option<BTreeMap<String, Option<Vec<SelectorIn>>>> = Option::deserialize(d)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.unwrap_or_default()
                    .into_iter()
                    .map(Selector::from)
                    .collect(),
            )
        })
        .collect())
}

/// Harbor's `RetentionRule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRule {
    #[serde(default, deserialize_with = "nullable")]
    pub id: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub priority: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub disabled: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub action: String,
    #[serde(default, deserialize_with = "nullable")]
    pub template: String,
    /// The template's parameter, under the template's name.
    #[serde(default, deserialize_with = "nullable")]
    pub params: Map<String, Value>,
    #[serde(default, deserialize_with = "selectors")]
    pub tag_selectors: Vec<Selector>,
    /// By scope; only `repository` exists for project policies.
    #[serde(default, deserialize_with = "scope_selectors")]
    pub scope_selectors: BTreeMap<String, Vec<Selector>>,
}

/// Harbor's `RetentionRuleTrigger`: `{"kind": "Schedule", "settings": {"cron": "…"}}`
/// (an empty cron: no schedule, manual runs only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub settings: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Map<String, Value>>,
}

/// Harbor's `RetentionPolicyScope`: `{"level": "project", "ref": <project id>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default, deserialize_with = "nullable")]
    pub level: String,
    #[serde(rename = "ref", default, deserialize_with = "nullable")]
    pub reference: i64,
}

/// Harbor's `RetentionPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    #[serde(default, deserialize_with = "nullable")]
    pub id: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub algorithm: String,
    #[serde(default, deserialize_with = "nullable")]
    pub rules: Vec<RetentionRule>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// A rule's template with its parameter, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The `k` most recently pushed.
    LatestPushedK(usize),
    /// The `n` most recently pulled.
    LatestPulledN(usize),
    /// The `k` most recently pushed or pulled, whichever is later.
    LatestActiveK(usize),
    /// Pushed within the last `n` days.
    NDaysSinceLastPush(i64),
    /// Pulled within the last `n` days.
    NDaysSinceLastPull(i64),
    /// Pushed within the last `x` days (Harbor's older `lastXDays`: strictly after the cutoff).
    LastXDays(i64),
    /// Everything selected.
    Always,
}

/// Harbor's `ParseJSONInt`: a JSON number, taken as an integer.
fn json_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

impl Template {
    /// The rule's template with its parameter, as Harbor's index checks
    /// it: a registered template, its required parameter present, an
    /// integer within Harbor's bounds.
    pub fn of(rule: &RetentionRule) -> std::result::Result<Template, String> {
        let name = rule.template.as_str();
        let max = match name {
            ALWAYS => return Ok(Template::Always),
            LATEST_PUSHED_K | LATEST_PULLED_N | LATEST_ACTIVE_K => MAX_COUNT,
            N_DAYS_SINCE_LAST_PUSH | N_DAYS_SINCE_LAST_PULL | LAST_X_DAYS => MAX_DAYS,
            "" => return Err("empty rule template ID".to_owned()),
            other => {
                return Err(format!(
                    "rule evaluator {other} is not registered: use one of {LATEST_PUSHED_K}, \
                     {LATEST_PULLED_N}, {LATEST_ACTIVE_K}, {N_DAYS_SINCE_LAST_PUSH}, \
                     {N_DAYS_SINCE_LAST_PULL}, {LAST_X_DAYS}, {ALWAYS}"
                ));
            }
        };
        let raw = rule
            .params
            .get(name)
            .ok_or_else(|| format!("missing required parameter {name} for rule {name}"))?;
        let v =
            json_int(raw).ok_or_else(|| format!("{name} type error: an integer is required"))?;
        if v < 0 {
            return Err(format!("{name} is less than zero"));
        }
        if v > max {
            return Err(format!("{name} is too large: at most {max}"));
        }
        let n = usize::try_from(v).unwrap_or(usize::MAX);
        Ok(match name {
            LATEST_PUSHED_K => Template::LatestPushedK(n),
            LATEST_PULLED_N => Template::LatestPulledN(n),
            LATEST_ACTIVE_K => Template::LatestActiveK(n),
            N_DAYS_SINCE_LAST_PUSH => Template::NDaysSinceLastPush(v),
            N_DAYS_SINCE_LAST_PULL => Template::NDaysSinceLastPull(v),
            _ => Template::LastXDays(v),
        })
    }

    /// Which of `selected` (indexes into `all`) the template keeps at
    /// `now` (epoch seconds).
    fn keep(self, all: &[Candidate], selected: &[usize], now: i64) -> Vec<usize> {
        let latest = |k: usize, key: &dyn Fn(&Candidate) -> i64| -> Vec<usize> {
            let mut v = selected.to_vec();
            v.sort_by(|&a, &b| {
                key(&all[b])
                    .cmp(&key(&all[a]))
                    .then_with(|| all[a].digest.cmp(&all[b].digest))
            });
            v.truncate(k);
            v
        };
        let within = |cutoff: i64, at: &dyn Fn(&Candidate) -> i64, strict: bool| -> Vec<usize> {
            selected
                .iter()
                .copied()
                .filter(|&i| {
                    let t = at(&all[i]);
                    if strict { t > cutoff } else { t >= cutoff }
                })
                .collect()
        };
        let days = |n: i64| now.saturating_sub(n.saturating_mul(DAY_SECS));
        match self {
            Template::Always => selected.to_vec(),
            Template::LatestPushedK(k) => latest(k, &|c| c.pushed),
            Template::LatestPulledN(n) => latest(n, &|c| c.pulled),
            Template::LatestActiveK(k) => latest(k, &|c| c.pushed.max(c.pulled)),
            Template::NDaysSinceLastPush(n) => within(days(n), &|c| c.pushed, false),
            // Never pulled is never within (Harbor's zero time).
            Template::NDaysSinceLastPull(n) => within(
                days(n),
                &|c| if c.pulled > 0 { c.pulled } else { i64::MIN },
                false,
            ),
            Template::LastXDays(x) => within(days(x), &|c| c.pushed, true),
        }
    }
}

impl RetentionRule {
    /// Whether the rule applies to the repository `repo_in_project` (its
    /// path without `project/`): every repository selector selects it.
    /// A rule without repository selectors applies to every repository
    /// (Harbor's launcher filters by none).
    pub fn applies_to(&self, repo_in_project: &str) -> bool {
        self.scope_selectors
            .get(SCOPE_REPOSITORY)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .all(|s| s.selects(repo_in_project))
    }

    /// Whether every tag selector selects an artifact with `tags` and the
    /// labels named `labels`: a doublestar selector looks at the tags
    /// ([`Selector::selects_tags`]), a label selector at the labels
    /// ([`label_selects`]).
    pub fn selects(&self, tags: &[&str], labels: &[String]) -> bool {
        self.tag_selectors.iter().all(|s| {
            if s.kind == KIND_LABEL {
                label_selects(s, labels)
            } else {
                s.selects_tags(tags)
            }
        })
    }

    /// Whether every label tag selector has a decoration the evaluation
    /// knows (Harbor's selector index refuses any other).
    fn readable_selectors(&self) -> std::result::Result<(), String> {
        match self
            .tag_selectors
            .iter()
            .find(|s| s.kind == KIND_LABEL && label_decoration(s).is_none())
        {
            Some(s) => Err(format!(
                "decoration {:?} of selector {KIND_LABEL} is not supported",
                s.decoration
            )),
            None => Ok(()),
        }
    }

    /// The rule as it counts for Harbor's conflict check: without its id.
    fn content(&self) -> RetentionRule {
        RetentionRule {
            id: 0,
            ..self.clone()
        }
    }

    fn validate(&self, n: usize) -> Result<()> {
        let bad = |m: String| Err(PolicyError::Invalid(format!("rule {n}: {m}")));
        if self.action != ACTION_RETAIN {
            return bad(format!(
                "invalid action {:?}: a retention rule's action is {ACTION_RETAIN:?}",
                self.action
            ));
        }
        if let Err(m) = Template::of(self) {
            return bad(m);
        }
        check_selectors(n, "tag_selectors", &self.tag_selectors, SelectorRole::Tag)?;
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
            n,
            "scope_selectors.repository",
            repos,
            SelectorRole::Repository,
        )
    }
}

fn check_selectors(n: usize, name: &str, list: &[Selector], role: SelectorRole) -> Result<()> {
    if list.is_empty() {
        return Err(PolicyError::Invalid(format!(
            "rule {n}: {name} must hold a selector"
        )));
    }
    if list.len() > MAX_SELECTORS {
        return Err(PolicyError::Invalid(format!(
            "rule {n}: {name} holds at most {MAX_SELECTORS} selectors"
        )));
    }
    for s in list {
        let checked = match (role, s.kind.as_str()) {
            (SelectorRole::Tag, KIND_LABEL) => validate_label_selector(s),
            (SelectorRole::Tag, kind) if kind != KIND_DOUBLESTAR => Err(format!(
                "selector kind {kind:?} is not supported: use {KIND_DOUBLESTAR} or {KIND_LABEL}"
            )),
            _ => s.validate(role),
        };
        checked.map_err(|m| PolicyError::Invalid(format!("rule {n}: {name}: {m}")))?;
    }
    Ok(())
}

// ---- label selectors ----------------------------------------------------------

/// Longest label selector pattern accepted, in bytes.
pub const MAX_LABEL_PATTERN_LEN: usize = 2048;

/// A label selector's decoration: `Some(true)` for `withLabels`,
/// `Some(false)` for `withoutLabels`, `None` for any other.
fn label_decoration(s: &Selector) -> Option<bool> {
    match s.decoration.as_str() {
        WITH_LABELS => Some(true),
        WITHOUT_LABELS => Some(false),
        _ => None,
    }
}

/// Whether the label selector `s` selects an artifact carrying the labels
/// named `labels` (Harbor's label `isMatched`): with `withLabels`, when
/// it carries every name of the pattern; with `withoutLabels`, when it
/// carries none of them. The pattern's names are split at commas and
/// compared exactly; an empty pattern selects everything (Harbor's `New`
/// makes it an empty list). Another decoration selects nothing (the
/// evaluation refuses it first: [`evaluate_repository`]).
pub fn label_selects(s: &Selector, labels: &[String]) -> bool {
    let Some(with) = label_decoration(s) else {
        return false;
    };
    s.pattern.is_empty()
        || s.pattern
            .split(',')
            .all(|name| labels.iter().any(|l| l == name) == with)
}

/// Checks a label tag selector for a rule: a decoration `withLabels` or
/// `withoutLabels`, a pattern of comma-separated label names (none blank:
/// a label's name never is, so a blank one is a slip), `extras` (if any,
/// unused) a JSON object as for doublestar selectors.
fn validate_label_selector(s: &Selector) -> std::result::Result<(), String> {
    if label_decoration(s).is_none() {
        return Err(format!(
            "selector decoration {:?} is invalid for a {KIND_LABEL} selector: use {WITH_LABELS} or {WITHOUT_LABELS}",
            s.decoration
        ));
    }
    if s.pattern.is_empty() {
        return Err("selector pattern is required: label names, comma-separated".to_owned());
    }
    if s.pattern.len() > MAX_LABEL_PATTERN_LEN {
        return Err(format!(
            "label selector pattern is too long: at most {MAX_LABEL_PATTERN_LEN} bytes"
        ));
    }
    if s.pattern.split(',').any(|name| name.trim().is_empty()) {
        return Err(format!(
            "label selector pattern {:?} holds a blank label name",
            s.pattern
        ));
    }
    if s.extras.len() > MAX_EXTRAS_LEN {
        return Err(format!(
            "selector extras are too long: at most {MAX_EXTRAS_LEN} bytes"
        ));
    }
    if !s.extras.is_empty()
        && !serde_json::from_str::<Value>(&s.extras).is_ok_and(|v| v.is_object())
    {
        return Err("selector extras must be a JSON object in a string".to_owned());
    }
    Ok(())
}

impl RetentionPolicy {
    /// A policy of `project_id` with `rules`, no schedule.
    pub fn new(project_id: i64, rules: Vec<RetentionRule>) -> Self {
        RetentionPolicy {
            id: 0,
            algorithm: ALGORITHM_OR.to_owned(),
            rules,
            trigger: Some(Trigger {
                kind: TRIGGER_SCHEDULE.to_owned(),
                settings: [(SETTING_CRON.to_owned(), Value::String(String::new()))]
                    .into_iter()
                    .collect(),
                references: None,
            }),
            scope: Some(Scope {
                level: SCOPE_PROJECT.to_owned(),
                reference: project_id,
            }),
        }
    }

    /// The project the policy's scope names (0: none).
    pub fn project_id(&self) -> i64 {
        self.scope.as_ref().map_or(0, |s| s.reference)
    }

    /// The schedule's cron (empty: none).
    pub fn cron(&self) -> &str {
        self.trigger
            .as_ref()
            .and_then(|t| t.settings.get(SETTING_CRON))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
    }

    /// Fills in what has one possible value when a client leaves it out
    /// (the algorithm, each rule's action), then checks the policy.
    pub fn normalize(&mut self) -> Result<()> {
        if self.algorithm.is_empty() {
            ALGORITHM_OR.clone_into(&mut self.algorithm);
        }
        for r in &mut self.rules {
            if r.action.is_empty() {
                ACTION_RETAIN.clone_into(&mut r.action);
            }
        }
        self.validate()
    }

    /// Checks the policy as Harbor does (its handler's 15-rule cap and
    /// conflict check, `Metadata.Valid`, the rule index's parameter
    /// checks, `ValidateRetentionPolicy`'s cron check): `Invalid` (400),
    /// or `Conflict` (409) for two rules that are the same.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.rules.len() > MAX_RULES {
            return bad(format!("only {MAX_RULES} rules are allowed at most"));
        }
        let mut seen: Vec<RetentionRule> = Vec::with_capacity(self.rules.len());
        for (n, r) in self.rules.iter().enumerate() {
            let c = r.content();
            if let Some(old) = seen.iter().position(|s| *s == c) {
                return Err(PolicyError::Conflict(format!(
                    "rule {n} is conflict with rule {old}"
                )));
            }
            seen.push(c);
        }
        if self.algorithm != ALGORITHM_OR {
            return bad(format!(
                "invalid algorithm {:?}: the only algorithm is {ALGORITHM_OR:?}",
                self.algorithm
            ));
        }
        let Some(trigger) = &self.trigger else {
            return bad("trigger is required".to_owned());
        };
        if trigger.kind != TRIGGER_SCHEDULE {
            return bad(format!(
                "not support Trigger {:?}: the only trigger kind is {TRIGGER_SCHEDULE:?}",
                trigger.kind
            ));
        }
        match trigger.settings.get(SETTING_CRON) {
            None => return bad("trigger.settings.cron is required (\"\" for none)".to_owned()),
            Some(Value::String(_)) => {}
            Some(_) => {
                return bad(
                    "invalid cron type for scheduled tag retention: must be a string".to_owned(),
                );
            }
        }
        let cron = self.cron();
        if !cron.is_empty() && next_after(cron, 0).is_none() {
            return bad(format!(
                "invalid cron string for scheduled tag retention: {cron:?} \
                 (6 fields: second minute hour day month weekday)"
            ));
        }
        let Some(scope) = &self.scope else {
            return bad("scope is required".to_owned());
        };
        if scope.level != SCOPE_PROJECT {
            return bad(format!("scope {} is not support", scope.level));
        }
        if scope.reference <= 0 {
            return bad(format!("invalid Project id {}", scope.reference));
        }
        for (n, r) in self.rules.iter().enumerate() {
            r.validate(n)?;
        }
        let size = serde_json::to_vec(self).map_or(usize::MAX, |v| v.len());
        if size > MAX_POLICY_BYTES {
            return bad(format!(
                "the policy is too large: at most {MAX_POLICY_BYTES} bytes"
            ));
        }
        Ok(())
    }

    /// The enabled rules that apply to the repository `repo_in_project`
    /// (its path without `project/`), in order.
    pub fn rules_for(&self, repo_in_project: &str) -> Vec<&RetentionRule> {
        self.rules
            .iter()
            .filter(|r| !r.disabled && r.applies_to(repo_in_project))
            .collect()
    }
}

// ---- evaluation ---------------------------------------------------------------

/// One top-level artifact of a repository, as the evaluation sees it
/// (Harbor's `selector.Candidate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The repository's path without `project/`.
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Epoch seconds: the latest of its and its tags' pushes.
    pub pushed: i64,
    /// Epoch seconds of its last pull (0: never).
    pub pulled: i64,
    /// Label names.
    pub labels: Vec<String>,
    /// Whether one of its tags is immutable.
    pub immutable: bool,
}

/// What a policy decides about one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// A rule keeps it.
    Retained,
    /// No rule keeps it.
    Deleted,
    /// No rule keeps it, but an immutable tag does (Harbor's `IMMUTABLE`).
    Immutable,
}

impl Verdict {
    /// Whether the artifact stays.
    pub fn stays(self) -> bool {
        self != Verdict::Deleted
    }
}

/// The verdicts on one repository's `candidates` (in their order) under
/// `rules` (those applying to the repository: [`RetentionPolicy::rules_for`]),
/// at `now` (epoch seconds). No rule: everything stays. A rule whose
/// template, or a label selector's decoration, cannot be read fails the
/// whole evaluation (nothing is deleted on a policy that cannot be read).
pub fn evaluate_repository(
    rules: &[&RetentionRule],
    candidates: &[Candidate],
    now: i64,
) -> std::result::Result<Vec<Verdict>, String> {
    // Harbor's `or` processor adds only rules with tag selectors.
    let rules: Vec<(&RetentionRule, Template)> = rules
        .iter()
        .filter(|r| !r.tag_selectors.is_empty())
        .map(|r| {
            r.readable_selectors()?;
            Template::of(r).map(|t| (*r, t))
        })
        .collect::<std::result::Result<_, _>>()?;
    if rules.is_empty() {
        return Ok(vec![Verdict::Retained; candidates.len()]);
    }
    let mut kept = vec![false; candidates.len()];
    let tags: Vec<Vec<&str>> = candidates
        .iter()
        .map(|c| c.tags.iter().map(String::as_str).collect())
        .collect();
    for (rule, template) in rules {
        let selected: Vec<usize> = (0..candidates.len())
            .filter(|&i| rule.selects(&tags[i], &candidates[i].labels))
            .collect();
        for i in template.keep(candidates, &selected, now) {
            kept[i] = true;
        }
    }
    Ok(candidates
        .iter()
        .zip(kept)
        .map(|(c, k)| match (k, c.immutable) {
            (true, _) => Verdict::Retained,
            (false, true) => Verdict::Immutable,
            (false, false) => Verdict::Deleted,
        })
        .collect())
}

/// The verdicts on candidates of any repositories of the policy's project
/// (in their order): each repository evaluated on its own with the rules
/// that apply to it.
pub fn evaluate(
    policy: &RetentionPolicy,
    candidates: &[Candidate],
    now: i64,
) -> std::result::Result<Vec<Verdict>, String> {
    let mut by_repo: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        by_repo.entry(c.repository.as_str()).or_default().push(i);
    }
    let mut out = vec![Verdict::Retained; candidates.len()];
    for (repo, idx) in by_repo {
        let rules = policy.rules_for(repo);
        let group: Vec<Candidate> = idx.iter().map(|&i| candidates[i].clone()).collect();
        for (i, v) in idx.iter().zip(evaluate_repository(&rules, &group, now)?) {
            out[*i] = v;
        }
    }
    Ok(out)
}

// ---- storage --------------------------------------------------------------------

/// Where a stored policy belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub project: String,
    pub project_id: i64,
}

/// The policies of every project, over the metadata port.
#[derive(Clone)]
pub struct RetentionPolicies {
    kv: Arc<dyn Kv>,
}

fn corrupt(item: &Item, m: impl std::fmt::Display) -> PolicyError {
    PolicyError::Corrupt(format!("{} {}: {m}", item.pk, item.sk))
}

/// The policy and version in a policy item.
fn read(item: &Item) -> Result<(RetentionPolicy, i64)> {
    let v = item.n(VERSION).ok_or_else(|| corrupt(item, "no version"))?;
    let doc = item.b(DOC).ok_or_else(|| corrupt(item, "no document"))?;
    let mut p: RetentionPolicy = serde_json::from_slice(doc).map_err(|e| corrupt(item, e))?;
    if let Some(id) = item.n("id") {
        p.id = id;
    }
    Ok((p, v))
}

fn policy_item(project: &str, p: &RetentionPolicy, version: i64) -> Result<Item> {
    let doc = serde_json::to_vec(p)
        .map_err(|e| PolicyError::Corrupt(format!("cannot encode the policy: {e}")))?;
    let (pk, sk) = policy_key(project);
    Ok(Item::new(pk, sk)
        .with(DOC, Attr::B(doc))
        .with("id", Attr::N(p.id))
        .with(VERSION, Attr::N(version)))
}

fn scheduled_sk(id: i64) -> String {
    format!("{id:020}")
}

impl RetentionPolicies {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        RetentionPolicies { kv }
    }

    /// The project a policy id belongs to.
    pub async fn owner(&self, id: i64) -> Result<Option<Owner>> {
        let (pk, sk) = lookup_key(id);
        Ok(self.kv.get(&pk, &sk).await?.and_then(|i| {
            Some(Owner {
                project: i.s("project")?.to_owned(),
                project_id: i.n("project_id").unwrap_or(0),
            })
        }))
    }

    /// A project's policy, if it has one.
    pub async fn of_project(&self, project: &str) -> Result<Option<RetentionPolicy>> {
        let (pk, sk) = policy_key(project);
        match self.kv.get(&pk, &sk).await? {
            Some(item) => Ok(Some(read(&item)?.0)),
            None => Ok(None),
        }
    }

    /// The id of a project's policy (Harbor's project metadata
    /// `retention_id`), if it has one.
    pub async fn id_of_project(&self, project: &str) -> Result<Option<i64>> {
        Ok(self.of_project(project).await?.map(|p| p.id))
    }

    /// A policy by id, with its owner.
    pub async fn get(&self, id: i64) -> Result<Option<(Owner, RetentionPolicy)>> {
        let Some(owner) = self.owner(id).await? else {
            return Ok(None);
        };
        Ok(self
            .of_project(&owner.project)
            .await?
            .filter(|p| p.id == id)
            .map(|p| (owner, p)))
    }

    /// Stores a new policy (normalized and validated here) for `project`
    /// (whose id the policy's scope must name), with a new id. A project
    /// that has a policy already refuses another (`Invalid`, as Harbor's
    /// 400); a project that is gone is `NotFound`.
    pub async fn create(&self, project: &str, mut policy: RetentionPolicy) -> Result<i64> {
        policy.normalize()?;
        let project_id = policy.project_id();
        if let Some(old) = self.id_of_project(project).await? {
            return Err(PolicyError::Invalid(format!(
                "project {project_id} already has retention policy {old}"
            )));
        }
        policy.id = Directory::new(self.kv.clone())
            .next_id("retention")
            .await
            .map_err(|e| match e {
                DirectoryError::Kv(k) => PolicyError::Kv(k),
                e => PolicyError::Corrupt(e.to_string()),
            })?;
        let id = policy.id;
        let (lpk, lsk) = lookup_key(id);
        let mut ops = vec![
            WriteOp::Put {
                item: policy_item(project, &policy, 1)?,
                cond: Cond::NotExists,
            },
            WriteOp::Put {
                item: Item::new(lpk, lsk)
                    .with("project", Attr::S(project.to_owned()))
                    .with("project_id", Attr::N(project_id)),
                cond: Cond::NotExists,
            },
            WriteOp::Check {
                pk: dkeys::project_id(project_id),
                sk: "META".to_owned(),
                cond: Cond::Eq("name".to_owned(), Attr::S(project.to_owned())),
            },
        ];
        if !policy.cron().is_empty() {
            ops.push(WriteOp::put(
                Item::new(SCHEDULED_PK, scheduled_sk(id))
                    .with("project", Attr::S(project.to_owned())),
            ));
        }
        match self.kv.transact(ops).await {
            Ok(()) => {}
            Err(KvError::ConditionFailed { index: 0 }) => {
                let old = self.id_of_project(project).await?.unwrap_or(0);
                return Err(PolicyError::Invalid(format!(
                    "project {project_id} already has retention policy {old}"
                )));
            }
            Err(KvError::ConditionFailed { index: 2 }) => {
                return Err(PolicyError::NotFound(format!(
                    "project {project} ({project_id}) not found"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.schedule(id, policy.cron()).await?;
        Ok(id)
    }

    /// Replaces policy `id` with `policy` (normalized and validated here;
    /// its id and project stay: the scope must name the same project).
    pub async fn update(&self, id: i64, mut policy: RetentionPolicy) -> Result<()> {
        let not_found = || PolicyError::NotFound(format!("retention policy {id} not found"));
        let owner = self.owner(id).await?.ok_or_else(not_found)?;
        if policy.scope.is_none() {
            policy.scope = Some(Scope {
                level: SCOPE_PROJECT.to_owned(),
                reference: owner.project_id,
            });
        }
        policy.normalize()?;
        if policy.project_id() != owner.project_id {
            return Err(PolicyError::Invalid(format!(
                "retention policy {id} belongs to project {}: its scope cannot change",
                owner.project_id
            )));
        }
        policy.id = id;
        let (pk, sk) = policy_key(&owner.project);
        for _ in 0..ATTEMPTS {
            let item = self.kv.get(&pk, &sk).await?.ok_or_else(not_found)?;
            let (old, v) = read(&item)?;
            if old.id != id {
                return Err(not_found());
            }
            let mut ops = vec![WriteOp::Put {
                item: policy_item(&owner.project, &policy, v.saturating_add(1))?,
                cond: Cond::Eq(VERSION.to_owned(), Attr::N(v)),
            }];
            ops.push(if policy.cron().is_empty() {
                WriteOp::delete(SCHEDULED_PK, scheduled_sk(id))
            } else {
                WriteOp::put(
                    Item::new(SCHEDULED_PK, scheduled_sk(id))
                        .with("project", Attr::S(owner.project.clone())),
                )
            });
            match self.kv.transact(ops).await {
                Ok(()) => {
                    // Harbor reschedules only when the cron changes.
                    if old.cron() != policy.cron() {
                        self.schedule(id, policy.cron()).await?;
                    }
                    return Ok(());
                }
                Err(KvError::ConditionFailed { .. } | KvError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(PolicyError::Kv(KvError::Conflict))
    }

    /// Deletes policy `id` and its schedule. The executions it ran stay
    /// in the job store (unreachable through the API once the policy is
    /// gone; ids are never reused).
    pub async fn delete(&self, id: i64) -> Result<()> {
        let not_found = || PolicyError::NotFound(format!("retention policy {id} not found"));
        let owner = self.owner(id).await?.ok_or_else(not_found)?;
        let (pk, sk) = policy_key(&owner.project);
        let (lpk, lsk) = lookup_key(id);
        let ops = vec![
            WriteOp::Delete {
                pk,
                sk,
                cond: Cond::Any(vec![
                    Cond::NotExists,
                    Cond::Eq("id".to_owned(), Attr::N(id)),
                ]),
            },
            WriteOp::delete(lpk, lsk),
            WriteOp::delete(SCHEDULED_PK, scheduled_sk(id)),
        ];
        match self.kv.transact(ops).await {
            Ok(()) => {}
            Err(KvError::ConditionFailed { .. }) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
        self.schedule(id, "").await
    }

    /// Deletes a project's policy, if any (the project is being deleted).
    pub async fn delete_project(&self, project: &str) -> Result<()> {
        match self.id_of_project(project).await? {
            Some(id) => match self.delete(id).await {
                Ok(()) | Err(PolicyError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            None => Ok(()),
        }
    }

    /// The ids of the policies that have a schedule.
    pub async fn scheduled(&self) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        let mut q = Query::prefix(SCHEDULED_PK, "", 500);
        loop {
            let page = self.kv.query(&q).await?;
            out.extend(page.items.iter().filter_map(|i| i.sk.parse::<i64>().ok()));
            match page.next {
                Some(n) => q.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Sets (or, with an empty cron, clears) the schedule of policy `id`.
    async fn schedule(&self, id: i64, cron: &str) -> Result<()> {
        let (kind, cron) = if cron.is_empty() {
            ("None", "")
        } else {
            ("Custom", cron)
        };
        Schedules::new(self.kv.clone())
            .set(
                &schedule_name(id),
                kind,
                cron,
                serde_json::json!({ "policy_id": id }),
                crate::store::now_secs(),
            )
            .await
            .map(drop)
            .map_err(|e| match e {
                crate::jobs::schedule::ScheduleError::Invalid(m) => PolicyError::Invalid(m),
                crate::jobs::schedule::ScheduleError::Store(k) => PolicyError::Kv(k),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::selector::{EXCLUDES, MATCHES, REPO_EXCLUDES, REPO_MATCHES};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn rule(
        template: &str,
        param: Option<i64>,
        tag: (&str, &str, bool),
        repo: (&str, &str),
    ) -> RetentionRule {
        RetentionRule {
            id: 0,
            priority: 0,
            disabled: false,
            action: ACTION_RETAIN.to_owned(),
            template: template.to_owned(),
            params: param
                .map(|p| (template.to_owned(), json!(p)))
                .into_iter()
                .collect(),
            tag_selectors: vec![Selector {
                extras: format!("{{\"untagged\":{}}}", tag.2),
                ..Selector::doublestar(tag.0, tag.1)
            }],
            scope_selectors: [(
                SCOPE_REPOSITORY.to_owned(),
                vec![Selector::doublestar(repo.0, repo.1)],
            )]
            .into(),
        }
    }

    fn all_tags(template: &str, param: Option<i64>) -> RetentionRule {
        rule(template, param, (MATCHES, "**", true), (REPO_MATCHES, "**"))
    }

    fn cand(digest: &str, tags: &[&str], pushed: i64, pulled: i64) -> Candidate {
        Candidate {
            repository: "app".to_owned(),
            digest: digest.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            pushed,
            pulled,
            labels: Vec::new(),
            immutable: false,
        }
    }

    fn label_sel(decoration: &str, pattern: &str) -> Selector {
        Selector {
            kind: KIND_LABEL.to_owned(),
            decoration: decoration.to_owned(),
            pattern: pattern.to_owned(),
            extras: String::new(),
        }
    }

    /// An `always` rule over every repository with only `selectors`.
    fn always_with(selectors: Vec<Selector>) -> RetentionRule {
        RetentionRule {
            tag_selectors: selectors,
            ..all_tags(ALWAYS, None)
        }
    }

    fn labelled(digest: &str, tags: &[&str], labels: &[&str]) -> Candidate {
        Candidate {
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..cand(digest, tags, 1, 0)
        }
    }

    fn kept(rules: &[RetentionRule], cands: &[Candidate]) -> Vec<String> {
        let refs: Vec<&RetentionRule> = rules.iter().collect();
        let v = evaluate_repository(&refs, cands, NOW).expect("evaluates");
        cands
            .iter()
            .zip(v)
            .filter(|(_, v)| v.stays())
            .map(|(c, _)| c.digest.clone())
            .collect()
    }

    #[test]
    fn harbors_json_reads_and_writes() {
        let body = json!({
            "algorithm": "or",
            "rules": [{
                "disabled": false, "action": "retain", "template": "latestPushedK",
                "params": {"latestPushedK": 10},
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}
            }],
            "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}, "references": {}},
            "scope": {"level": "project", "ref": 3}
        });
        let mut p: RetentionPolicy = serde_json::from_value(body).expect("policy");
        p.normalize().expect("valid");
        assert_eq!(p.project_id(), 3);
        assert_eq!(p.cron(), "0 0 0 * * *");
        assert_eq!(Template::of(&p.rules[0]), Ok(Template::LatestPushedK(10)));
        let out = serde_json::to_value(&p).expect("json");
        assert_eq!(out["scope"], json!({"level": "project", "ref": 3}));
        assert_eq!(
            out["rules"][0]["tag_selectors"][0]["extras"],
            "{\"untagged\":true}"
        );
        assert_eq!(out["rules"][0]["params"], json!({"latestPushedK": 10}));
        // Nulls read as empty.
        let p: RetentionPolicy = serde_json::from_value(json!({
            "algorithm": null, "rules": [{"params": null, "tag_selectors": null,
            "scope_selectors": {"repository": null}, "template": "always"}],
            "trigger": null, "scope": null
        }))
        .expect("nulls");
        assert!(p.rules[0].tag_selectors.is_empty() && p.trigger.is_none());
    }

    #[test]
    fn templates_and_parameters_follow_harbors_index() {
        let t = |template: &str, v: Value| {
            let mut r = all_tags(template, None);
            r.params = [(template.to_owned(), v)].into_iter().collect();
            Template::of(&r)
        };
        assert_eq!(t(LATEST_PULLED_N, json!(3)), Ok(Template::LatestPulledN(3)));
        assert_eq!(
            t(LATEST_ACTIVE_K, json!(2.0)),
            Ok(Template::LatestActiveK(2))
        );
        assert_eq!(
            t(N_DAYS_SINCE_LAST_PUSH, json!(7)),
            Ok(Template::NDaysSinceLastPush(7))
        );
        assert_eq!(
            t(N_DAYS_SINCE_LAST_PULL, json!(0)),
            Ok(Template::NDaysSinceLastPull(0))
        );
        assert_eq!(
            t(LAST_X_DAYS, json!(20_190_904)),
            Ok(Template::LastXDays(20_190_904))
        );
        assert_eq!(Template::of(&all_tags(ALWAYS, None)), Ok(Template::Always));
        for (template, v) in [
            (LATEST_PUSHED_K, json!(-1)),
            (LATEST_PUSHED_K, json!(32_767)),
            (LATEST_PUSHED_K, json!("3")),
            (LATEST_PUSHED_K, json!(1.5)),
            (N_DAYS_SINCE_LAST_PULL, json!(20_190_905)),
            (N_DAYS_SINCE_LAST_PUSH, json!(null)),
        ] {
            assert!(t(template, v.clone()).is_err(), "{template} {v}");
        }
        assert!(
            Template::of(&all_tags(LATEST_PUSHED_K, None)).is_err(),
            "required"
        );
        assert!(
            Template::of(&all_tags("nothing", None)).is_err(),
            "not registered in Harbor"
        );
        assert!(Template::of(&all_tags("", None)).is_err());
    }

    #[test]
    fn validation() {
        let ok = RetentionPolicy::new(3, vec![all_tags(LATEST_PUSHED_K, Some(2))]);
        assert!(ok.validate().is_ok());
        let with = |f: &dyn Fn(&mut RetentionPolicy)| {
            let mut p = ok.clone();
            f(&mut p);
            p.validate()
        };
        let invalid: Vec<(&str, Result<()>)> = vec![
            ("algorithm", with(&|p| p.algorithm = "and".into())),
            (
                "16 rules",
                with(&|p| {
                    p.rules = (0..16)
                        .map(|i| all_tags(LATEST_PUSHED_K, Some(i)))
                        .collect();
                }),
            ),
            ("no trigger", with(&|p| p.trigger = None)),
            (
                "trigger kind",
                with(&|p| p.trigger.as_mut().expect("t").kind = "Event".into()),
            ),
            (
                "no cron",
                with(&|p| p.trigger.as_mut().expect("t").settings.clear()),
            ),
            (
                "cron type",
                with(&|p| {
                    p.trigger
                        .as_mut()
                        .expect("t")
                        .settings
                        .insert(SETTING_CRON.into(), json!(5));
                }),
            ),
            (
                "bad cron",
                with(&|p| {
                    p.trigger
                        .as_mut()
                        .expect("t")
                        .settings
                        .insert(SETTING_CRON.into(), json!("* * *"));
                }),
            ),
            ("no scope", with(&|p| p.scope = None)),
            (
                "scope level",
                with(&|p| p.scope.as_mut().expect("s").level = "system".into()),
            ),
            (
                "scope ref",
                with(&|p| p.scope.as_mut().expect("s").reference = 0),
            ),
            ("action", with(&|p| p.rules[0].action = "delete".into())),
            (
                "template",
                with(&|p| p.rules[0].template = "nothing".into()),
            ),
            (
                "param",
                with(&|p| {
                    p.rules[0].params.insert(LATEST_PUSHED_K.into(), json!(-2));
                }),
            ),
            (
                "no tag selector",
                with(&|p| p.rules[0].tag_selectors.clear()),
            ),
            (
                "tag decoration",
                with(&|p| p.rules[0].tag_selectors[0].decoration = REPO_MATCHES.into()),
            ),
            (
                "no repository selector",
                with(&|p| p.rules[0].scope_selectors.clear()),
            ),
            (
                "other scope",
                with(&|p| {
                    p.rules[0].scope_selectors.insert(
                        "namespace".into(),
                        vec![Selector::doublestar(REPO_MATCHES, "**")],
                    );
                }),
            ),
            (
                "bad pattern",
                with(&|p| p.rules[0].tag_selectors[0].pattern = "[a".into()),
            ),
            (
                "extras",
                with(&|p| p.rules[0].tag_selectors[0].extras = "[]".into()),
            ),
            (
                "other tag selector kind",
                with(&|p| p.rules[0].tag_selectors[0].kind = "regex".into()),
            ),
            (
                "label decoration",
                with(&|p| p.rules[0].tag_selectors = vec![label_sel(MATCHES, "keep")]),
            ),
            (
                "label decoration case",
                with(&|p| p.rules[0].tag_selectors = vec![label_sel("withlabels", "keep")]),
            ),
            (
                "no label",
                with(&|p| p.rules[0].tag_selectors = vec![label_sel(WITH_LABELS, "")]),
            ),
            (
                "blank label",
                with(&|p| p.rules[0].tag_selectors = vec![label_sel(WITH_LABELS, "keep,")]),
            ),
            (
                "blank label between",
                with(&|p| {
                    p.rules[0].tag_selectors = vec![label_sel(WITHOUT_LABELS, "a, ,b")];
                }),
            ),
            (
                "long label pattern",
                with(&|p| {
                    p.rules[0].tag_selectors = vec![label_sel(
                        WITH_LABELS,
                        &"a".repeat(MAX_LABEL_PATTERN_LEN + 1),
                    )];
                }),
            ),
            (
                "label extras",
                with(&|p| {
                    p.rules[0].tag_selectors = vec![Selector {
                        extras: "1".into(),
                        ..label_sel(WITH_LABELS, "keep")
                    }];
                }),
            ),
            (
                "label repository selector",
                with(&|p| {
                    p.rules[0].scope_selectors.insert(
                        SCOPE_REPOSITORY.into(),
                        vec![label_sel(WITH_LABELS, "keep")],
                    );
                }),
            ),
        ];
        for (what, r) in invalid {
            assert!(matches!(r, Err(PolicyError::Invalid(_))), "{what}: {r:?}");
        }
        // Two identical rules (ids aside) conflict, as Harbor's checkRuleConflict.
        let mut twice = ok.clone();
        let mut again = twice.rules[0].clone();
        again.id = 7;
        twice.rules.push(again);
        assert!(matches!(twice.validate(), Err(PolicyError::Conflict(_))));
        // Defaults fill in.
        let mut p = ok.clone();
        p.algorithm.clear();
        p.rules[0].action.clear();
        p.normalize().expect("defaults");
        assert_eq!(
            (p.algorithm.as_str(), p.rules[0].action.as_str()),
            ("or", "retain")
        );
        // Label tag selectors, alone or with doublestar ones, are fine.
        for selectors in [
            vec![label_sel(WITH_LABELS, "keep")],
            vec![label_sel(WITHOUT_LABELS, "keep,prod")],
            vec![
                Selector::doublestar(MATCHES, "v*"),
                label_sel(WITH_LABELS, "a label, with spaces"),
                Selector {
                    extras: "{\"untagged\":true}".into(),
                    ..label_sel(WITHOUT_LABELS, "tmp")
                },
            ],
        ] {
            let mut p = ok.clone();
            p.rules[0].tag_selectors = selectors.clone();
            assert!(p.validate().is_ok(), "{selectors:?}: {:?}", p.validate());
        }
        // Fifteen rules are fine; an empty cron too.
        let mut p = ok;
        p.rules = (0..15)
            .map(|i| all_tags(LATEST_PUSHED_K, Some(i)))
            .collect();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn latest_pushed_keeps_k_newest_and_breaks_ties_by_digest() {
        let c = vec![
            cand("d1", &["a"], 100, 0),
            cand("d2", &["b"], 300, 0),
            cand("d3", &["c"], 200, 0),
            cand("d0", &["d"], 300, 0),
        ];
        assert_eq!(
            kept(&[all_tags(LATEST_PUSHED_K, Some(2))], &c),
            ["d2", "d0"]
        );
        assert_eq!(
            kept(&[all_tags(LATEST_PUSHED_K, Some(0))], &c),
            Vec::<String>::new()
        );
        assert_eq!(kept(&[all_tags(LATEST_PUSHED_K, Some(9))], &c).len(), 4);
    }

    #[test]
    fn pulled_active_and_days() {
        let day = DAY_SECS;
        let c = vec![
            cand("a", &["1"], NOW - 10 * day, NOW - day),
            cand("b", &["2"], NOW - day, 0),
            cand("c", &["3"], NOW - 40 * day, NOW - 20 * day),
            cand("d", &["4"], NOW - 3 * day, NOW - 3 * day),
        ];
        assert_eq!(kept(&[all_tags(LATEST_PULLED_N, Some(2))], &c), ["a", "d"]);
        // Active: max(push, pull): a=NOW-1d, b=NOW-1d, d=NOW-3d, c=NOW-20d.
        assert_eq!(kept(&[all_tags(LATEST_ACTIVE_K, Some(2))], &c), ["a", "b"]);
        assert_eq!(
            kept(&[all_tags(N_DAYS_SINCE_LAST_PUSH, Some(5))], &c),
            ["b", "d"]
        );
        assert_eq!(
            kept(&[all_tags(N_DAYS_SINCE_LAST_PULL, Some(5))], &c),
            ["a", "d"]
        );
        // Never pulled is never within n days.
        assert_eq!(
            kept(&[all_tags(N_DAYS_SINCE_LAST_PULL, Some(100_000))], &c),
            ["a", "c", "d"]
        );
        // The boundary: at the cutoff counts for nDays (>=), not for lastXDays (>).
        let edge = vec![cand("e", &["x"], NOW - 3 * day, 0)];
        assert_eq!(
            kept(&[all_tags(N_DAYS_SINCE_LAST_PUSH, Some(3))], &edge),
            ["e"]
        );
        assert!(kept(&[all_tags(LAST_X_DAYS, Some(3))], &edge).is_empty());
    }

    #[test]
    fn rules_are_a_union_and_selectors_narrow_them() {
        let c = vec![
            cand("v1", &["v1"], 1, 0),
            cand("v2", &["v2"], 2, 0),
            cand("dev", &["dev-1"], 3, 0),
            cand("latest", &["latest", "v3"], 4, 0),
            cand("none", &[], 5, 0),
        ];
        let v_only = rule(ALWAYS, None, (MATCHES, "v*", false), (REPO_MATCHES, "**"));
        let newest = rule(
            LATEST_PUSHED_K,
            Some(1),
            (MATCHES, "**", false),
            (REPO_MATCHES, "**"),
        );
        assert_eq!(
            kept(std::slice::from_ref(&v_only), &c),
            ["v1", "v2", "latest"]
        );
        // The newest *tagged* artifact: the untagged one is not selected.
        assert_eq!(kept(std::slice::from_ref(&newest), &c), ["latest"]);
        assert_eq!(kept(&[v_only.clone(), newest], &c), ["v1", "v2", "latest"]);
        let dev = rule(ALWAYS, None, (EXCLUDES, "v*", false), (REPO_MATCHES, "**"));
        // excludes: any tag not matching; untagged ones unless the box
        // ("exclude untagged too") is ticked.
        assert_eq!(kept(&[dev], &c), ["dev", "latest", "none"]);
        // Harbor PR #10922 (c): excluding ** keeps only the untagged ones;
        // (d): with the box, nothing.
        let untagged = rule(ALWAYS, None, (EXCLUDES, "**", false), (REPO_MATCHES, "**"));
        assert_eq!(kept(&[untagged], &c), ["none"]);
        let nothing = rule(ALWAYS, None, (EXCLUDES, "**", true), (REPO_MATCHES, "**"));
        assert!(kept(&[nothing], &c).is_empty());
        // (a) matching ** with the box keeps everything.
        let all = rule(ALWAYS, None, (MATCHES, "**", true), (REPO_MATCHES, "**"));
        assert_eq!(kept(&[all], &c).len(), 5);
        // Without extras, Harbor's upgrade default selects untagged ones.
        let mut bare = rule(
            ALWAYS,
            None,
            (MATCHES, "latest", false),
            (REPO_MATCHES, "**"),
        );
        bare.tag_selectors[0].extras.clear();
        assert_eq!(kept(&[bare], &c), ["latest", "none"]);
        let with_untagged = rule(
            ALWAYS,
            None,
            (MATCHES, "latest", true),
            (REPO_MATCHES, "**"),
        );
        assert_eq!(kept(&[with_untagged], &c), ["latest", "none"]);
        // Two tag selectors: both must select.
        let mut both = rule(ALWAYS, None, (MATCHES, "v*", false), (REPO_MATCHES, "**"));
        both.tag_selectors
            .push(Selector::doublestar(EXCLUDES, "v2"));
        assert_eq!(kept(&[both], &c), ["v1", "latest"]);
        // No rule: everything stays.
        assert_eq!(kept(&[], &c).len(), 5);
    }

    #[test]
    fn immutable_artifacts_stay() {
        let mut c = vec![cand("a", &["v1"], 1, 0), cand("b", &["v2"], 2, 0)];
        c[0].immutable = true;
        let refs = [all_tags(LATEST_PUSHED_K, Some(0))];
        let r: Vec<&RetentionRule> = refs.iter().collect();
        assert_eq!(
            evaluate_repository(&r, &c, NOW).expect("ok"),
            [Verdict::Immutable, Verdict::Deleted]
        );
        // Retained by a rule: retained, whatever its tags.
        let refs = [all_tags(ALWAYS, None)];
        let r: Vec<&RetentionRule> = refs.iter().collect();
        assert_eq!(
            evaluate_repository(&r, &c, NOW).expect("ok"),
            [Verdict::Retained, Verdict::Retained]
        );
    }

    #[test]
    fn repositories_are_chosen_by_all_scope_selectors_of_enabled_rules() {
        let mut p = RetentionPolicy::new(
            1,
            vec![
                rule(
                    ALWAYS,
                    None,
                    (MATCHES, "**", true),
                    (REPO_MATCHES, "team/**"),
                ),
                rule(
                    LATEST_PUSHED_K,
                    Some(1),
                    (MATCHES, "**", true),
                    (REPO_EXCLUDES, "team/**"),
                ),
            ],
        );
        p.rules[0]
            .scope_selectors
            .get_mut(SCOPE_REPOSITORY)
            .expect("repository")
            .push(Selector::doublestar(REPO_EXCLUDES, "team/tmp"));
        assert_eq!(p.rules_for("team/app").len(), 1);
        assert!(p.rules_for("team/app")[0].template == ALWAYS);
        assert!(p.rules_for("team/tmp").is_empty());
        assert_eq!(p.rules_for("web")[0].template, LATEST_PUSHED_K);
        p.rules[1].disabled = true;
        assert!(p.rules_for("web").is_empty());
        // evaluate() groups by repository.
        let mut c = vec![
            cand("a", &["1"], 1, 0),
            cand("b", &["2"], 2, 0),
            cand("c", &["3"], 3, 0),
        ];
        c[0].repository = "team/app".into();
        c[1].repository = "web".into();
        c[2].repository = "web".into();
        p.rules[1].disabled = false;
        assert_eq!(
            evaluate(&p, &c, NOW).expect("ok"),
            [Verdict::Retained, Verdict::Deleted, Verdict::Retained]
        );
    }

    #[test]
    fn an_unreadable_rule_fails_the_evaluation() {
        let mut r = all_tags(LATEST_PUSHED_K, Some(1));
        r.template = "nothing".into();
        assert!(evaluate_repository(&[&r], &[cand("a", &["1"], 1, 0)], NOW).is_err());
        // So does a label selector of a decoration Harbor does not register.
        let r = always_with(vec![label_sel("with", "keep")]);
        assert!(evaluate_repository(&[&r], &[labelled("a", &["1"], &["keep"])], NOW).is_err());
    }

    #[test]
    fn harbors_label_selector_json_reads_and_writes() {
        let body = json!({
            "algorithm": "or",
            "rules": [{
                "disabled": false, "action": "retain", "template": "always", "params": {},
                "tag_selectors": [
                    {"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"},
                    {"kind": "label", "decoration": "withLabels", "pattern": "keep,prod"}
                ],
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}
            }],
            "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
            "scope": {"level": "project", "ref": 3}
        });
        let mut p: RetentionPolicy = serde_json::from_value(body).expect("policy");
        p.normalize().expect("valid");
        assert_eq!(
            p.rules[0].tag_selectors[1],
            label_sel(WITH_LABELS, "keep,prod")
        );
        let out = serde_json::to_value(&p).expect("json");
        assert_eq!(
            out["rules"][0]["tag_selectors"][1],
            json!({"kind": "label", "decoration": "withLabels", "pattern": "keep,prod"})
        );
    }

    #[test]
    fn label_selectors_follow_harbors_is_matched() {
        let c = vec![
            labelled("both", &["v1"], &["keep", "prod"]),
            labelled("keep", &["v2"], &["keep"]),
            labelled("prod", &["dev"], &["prod"]),
            labelled("bare", &["v3"], &[]),
            labelled("untagged-keep", &[], &["keep"]),
            labelled("untagged-bare", &[], &[]),
            labelled("near", &["v4"], &["Keep", " keep", "keep "]),
        ];
        let k = |selectors: Vec<Selector>| kept(&[always_with(selectors)], &c);
        // withLabels: every listed label; tags do not matter.
        assert_eq!(
            k(vec![label_sel(WITH_LABELS, "keep")]),
            ["both", "keep", "untagged-keep"]
        );
        assert_eq!(k(vec![label_sel(WITH_LABELS, "keep,prod")]), ["both"]);
        assert_eq!(k(vec![label_sel(WITH_LABELS, "prod,keep")]), ["both"]);
        // A label no artifact carries: nothing (an artifact without
        // labels is never selected by withLabels).
        assert!(k(vec![label_sel(WITH_LABELS, "ghost")]).is_empty());
        assert!(k(vec![label_sel(WITH_LABELS, "keep,ghost")]).is_empty());
        // withoutLabels: none of the listed labels. For one label, the
        // complement of withLabels.
        assert_eq!(
            k(vec![label_sel(WITHOUT_LABELS, "keep")]),
            ["prod", "bare", "untagged-bare", "near"]
        );
        // For several, not: `keep` and `prod` carry one of the two.
        assert_eq!(
            k(vec![label_sel(WITHOUT_LABELS, "keep,prod")]),
            ["bare", "untagged-bare", "near"]
        );
        assert_eq!(k(vec![label_sel(WITHOUT_LABELS, "ghost")]).len(), c.len());
        // Names compare exactly: no trimming, no case folding.
        assert_eq!(k(vec![label_sel(WITH_LABELS, "Keep")]), ["near"]);
        assert_eq!(k(vec![label_sel(WITH_LABELS, " keep,keep ")]), ["near"]);
        // An empty pattern (validation refuses it) selects everything, as
        // Harbor's `New` makes it an empty list.
        assert_eq!(k(vec![label_sel(WITH_LABELS, "")]).len(), c.len());
        assert_eq!(k(vec![label_sel(WITHOUT_LABELS, "")]).len(), c.len());
        // With a doublestar selector in the same rule: both must select.
        let mut tagged_only = Selector::doublestar(MATCHES, "v*");
        tagged_only.extras = "{\"untagged\":false}".into();
        assert_eq!(
            k(vec![tagged_only, label_sel(WITH_LABELS, "keep")]),
            ["both", "keep"]
        );
        let mut untagged_too = Selector::doublestar(MATCHES, "v*");
        untagged_too.extras = "{\"untagged\":true}".into();
        assert_eq!(
            k(vec![untagged_too.clone(), label_sel(WITH_LABELS, "keep")]),
            ["both", "keep", "untagged-keep"]
        );
        assert_eq!(
            k(vec![
                label_sel(WITHOUT_LABELS, "prod"),
                untagged_too,
                label_sel(WITHOUT_LABELS, "Keep")
            ]),
            ["keep", "bare", "untagged-keep", "untagged-bare"]
        );
        // Two label selectors: both must select.
        assert_eq!(
            k(vec![
                label_sel(WITH_LABELS, "keep"),
                label_sel(WITHOUT_LABELS, "prod")
            ]),
            ["keep", "untagged-keep"]
        );
        // In separate rules: the union; with a count, the label narrows
        // what is counted.
        let newest_v = rule(
            LATEST_PUSHED_K,
            Some(1),
            (MATCHES, "v*", false),
            (REPO_MATCHES, "**"),
        );
        let mut newest_bare_v = newest_v.clone();
        newest_bare_v
            .tag_selectors
            .push(label_sel(WITHOUT_LABELS, "keep"));
        let mut c = c;
        for (i, x) in c.iter_mut().enumerate() {
            x.pushed = i as i64;
        }
        assert_eq!(kept(std::slice::from_ref(&newest_v), &c), ["near"]);
        assert_eq!(kept(std::slice::from_ref(&newest_bare_v), &c), ["near"]);
        c.pop();
        assert_eq!(kept(std::slice::from_ref(&newest_bare_v), &c), ["bare"]);
        assert_eq!(
            kept(
                &[
                    newest_bare_v,
                    always_with(vec![label_sel(WITH_LABELS, "keep")])
                ],
                &c
            ),
            ["both", "keep", "bare", "untagged-keep"]
        );
        // Immutable ones stay whatever the labels.
        c[3].immutable = true;
        let r = always_with(vec![label_sel(WITH_LABELS, "keep")]);
        assert_eq!(
            evaluate_repository(&[&r], &c, NOW).expect("ok")[3],
            Verdict::Immutable
        );
    }

    // ---- properties ----

    fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
        proptest::collection::vec(
            (
                proptest::collection::vec("[a-c]{1,2}", 0..3),
                0i64..50,
                0i64..50,
                any::<bool>(),
                0u8..2,
                proptest::sample::subsequence(vec!["keep", "prod"], 0..=2),
            ),
            0..24,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(
                    |(i, (tags, pushed, pulled, immutable, repo, labels))| Candidate {
                        repository: format!("r{repo}"),
                        digest: format!("sha256:{i:04}"),
                        tags,
                        pushed: NOW - pushed * DAY_SECS,
                        pulled: if pulled == 0 {
                            0
                        } else {
                            NOW - pulled * DAY_SECS
                        },
                        labels: labels.into_iter().map(str::to_owned).collect(),
                        immutable,
                    },
                )
                .collect()
        })
    }

    fn any_rule() -> impl Strategy<Value = RetentionRule> {
        (
            prop_oneof![
                Just(LATEST_PUSHED_K),
                Just(LATEST_PULLED_N),
                Just(LATEST_ACTIVE_K),
                Just(N_DAYS_SINCE_LAST_PUSH),
                Just(N_DAYS_SINCE_LAST_PULL),
                Just(LAST_X_DAYS),
                Just(ALWAYS),
            ],
            0i64..30,
            prop_oneof![Just(MATCHES), Just(EXCLUDES)],
            prop_oneof![Just("**"), Just("a*"), Just("{b,c}*")],
            any::<bool>(),
            prop_oneof![Just("**"), Just("r0")],
            proptest::option::of((
                prop_oneof![Just(WITH_LABELS), Just(WITHOUT_LABELS)],
                prop_oneof![Just("keep"), Just("keep,prod")],
            )),
        )
            .prop_map(|(t, n, dec, pat, untagged, repo, label)| {
                let mut r = rule(
                    t,
                    (t != ALWAYS).then_some(n),
                    (dec, pat, untagged),
                    (REPO_MATCHES, repo),
                );
                if let Some((dec, pat)) = label {
                    r.tag_selectors.push(label_sel(dec, pat));
                }
                r
            })
    }

    proptest! {
        #[test]
        fn always_retains_everything(c in candidates()) {
            let p = RetentionPolicy::new(1, vec![all_tags(ALWAYS, None)]);
            prop_assert!(evaluate(&p, &c, NOW).expect("ok").iter().all(|v| *v == Verdict::Retained));
        }

        #[test]
        fn latest_pushed_k_retains_min_k_n_per_repository(c in candidates(), k in 0usize..10) {
            let mut c = c;
            for x in &mut c {
                x.immutable = false;
            }
            let p = RetentionPolicy::new(1, vec![all_tags(LATEST_PUSHED_K, Some(k as i64))]);
            let v = evaluate(&p, &c, NOW).expect("ok");
            for repo in ["r0", "r1"] {
                let idx: Vec<usize> = (0..c.len()).filter(|&i| c[i].repository == repo).collect();
                let kept: Vec<usize> = idx.iter().copied().filter(|&i| v[i] == Verdict::Retained).collect();
                prop_assert_eq!(kept.len(), k.min(idx.len()));
                // And they are the newest: nothing deleted is newer than something kept.
                for &d in idx.iter().filter(|&&i| v[i] == Verdict::Deleted) {
                    for &r in &kept {
                        prop_assert!(c[d].pushed <= c[r].pushed);
                    }
                }
            }
        }

        #[test]
        fn verdicts_partition_the_candidates(c in candidates(), rules in proptest::collection::vec(any_rule(), 0..4)) {
            let p = RetentionPolicy::new(1, rules);
            let v = evaluate(&p, &c, NOW).expect("ok");
            prop_assert_eq!(v.len(), c.len());
            for (x, verdict) in c.iter().zip(&v) {
                // Immutable ones never go; Immutable is only for them.
                prop_assert!(!(x.immutable && *verdict == Verdict::Deleted));
                prop_assert!(*verdict != Verdict::Immutable || x.immutable);
            }
            // The same input, the same answer.
            prop_assert_eq!(evaluate(&p, &c, NOW).expect("ok"), v);
        }

        #[test]
        fn label_selectors_are_harbors(c in candidates(), names in proptest::sample::subsequence(vec!["keep", "prod", "ghost"], 1..=3)) {
            let pattern = names.join(",");
            let policy = |decoration: &str| {
                RetentionPolicy::new(1, vec![always_with(vec![label_sel(decoration, &pattern)])])
            };
            let retained = |p: &RetentionPolicy| -> Vec<bool> {
                evaluate(p, &c, NOW).expect("ok").iter().map(|v| *v == Verdict::Retained).collect()
            };
            let (with, without) = (policy(WITH_LABELS), policy(WITHOUT_LABELS));
            prop_assert!(with.validate().is_ok() && without.validate().is_ok());
            let (with, without) = (retained(&with), retained(&without));
            for (i, x) in c.iter().enumerate() {
                let has = |n: &&str| x.labels.iter().any(|l| l == n);
                prop_assert_eq!(with[i], names.iter().all(has), "{:?}", x);
                prop_assert_eq!(without[i], !names.iter().any(has), "{:?}", x);
                if names.len() == 1 {
                    prop_assert!(with[i] != without[i]);
                }
            }
        }

        #[test]
        fn the_result_is_the_union_of_the_rules(c in candidates(), a in any_rule(), b in any_rule()) {
            let kept = |rules: Vec<RetentionRule>| -> Vec<bool> {
                let p = RetentionPolicy::new(1, rules);
                evaluate(&p, &c, NOW).expect("ok").iter().map(|v| *v == Verdict::Retained).collect()
            };
            let (ka, kb, both) = (kept(vec![a.clone()]), kept(vec![b.clone()]), kept(vec![a.clone(), b.clone()]));
            for (i, x) in c.iter().enumerate() {
                let want = match (a.applies_to(&x.repository), b.applies_to(&x.repository)) {
                    (true, true) => ka[i] || kb[i],
                    (true, false) => ka[i],
                    (false, true) => kb[i],
                    // A repository no rule applies to keeps everything.
                    (false, false) => true,
                };
                prop_assert_eq!(both[i], want, "{:?}", x);
            }
        }
    }
}
