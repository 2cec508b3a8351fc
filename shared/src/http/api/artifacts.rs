//! `/api/v2.0/projects/{p}/repositories/{r}/artifacts…`: artifacts, their
//! tags, accessories, additions and labels, in Harbor's shapes.
//!
//! What an artifact *is* comes from its manifest (inline in its metadata
//! item) and, for `extra_attrs` and additions, from its config blob and
//! (for charts) its chart archive, read only when asked for.

use std::collections::BTreeMap;
use std::io::Read as _;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::projects::require;
use super::query::{Params, QVal, cursor_page, cursor_page_response};
use super::repositories::{existing, repo_in, stable_id};
use super::{ApiError, ApiResult, Caller, P, Shared, created, json_body, rfc3339};
use crate::iam::{Action, Project, Resource};
use crate::oci::digest::parse_digest;
use crate::oci::{Digest, Reference, RepoName, Tag};
use crate::registry::catalog::{AccessoryRecord, ArtifactRecord, Order, TagRecord};
use crate::registry::keys;

/// The most bytes of a config or chart archive read to describe an artifact.
const MAX_DESCRIBED_BLOB: u64 = 4 * 1024 * 1024;
/// The most bytes unpacked from a chart archive while looking for a file.
const MAX_CHART_UNPACKED: u64 = 64 * 1024 * 1024;
/// The most bytes of one file taken from a chart archive.
const MAX_CHART_FILE: u64 = 1024 * 1024;

/// Harbor's time for "never" (Go's zero time).
const NEVER: &str = "0001-01-01T00:00:00.000Z";

fn time_or_never(secs: i64) -> String {
    if secs > 0 {
        rfc3339(secs)
    } else {
        NEVER.to_owned()
    }
}

// ---- what a manifest says ---------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
    #[serde(default)]
    manifests: Vec<Desc>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: i64,
    platform: Option<Value>,
    annotations: Option<BTreeMap<String, String>>,
    urls: Option<Vec<String>>,
}

impl Doc {
    fn of(rec: &ArtifactRecord) -> Doc {
        serde_json::from_slice(&rec.bytes).unwrap_or_default()
    }

    fn is_index(&self) -> bool {
        !self.manifests.is_empty() || self.config.is_none() && self.layers.is_empty()
    }

    /// Harbor's `media_type`: the config's media type, else the manifest's.
    fn media_type(&self, rec: &ArtifactRecord) -> String {
        match &self.config {
            Some(c) if !c.media_type.is_empty() && c.media_type != EMPTY_CONFIG => {
                c.media_type.clone()
            }
            _ => self
                .artifact_type
                .clone()
                .or_else(|| self.media_type.clone())
                .unwrap_or_else(|| rec.media_type.clone()),
        }
    }
}

const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Harbor's artifact `type`: IMAGE, CHART, CNAB, …, from the config (or
/// artifact) media type; `application/vnd.<vendor>.<type>.config.<v>+json`
/// names its own type; anything else is UNKNOWN.
fn artifact_kind(doc: &Doc, media_type: &str) -> String {
    if doc.is_index() {
        let cnab = doc
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("io.cnab.runtime_version"));
        return if cnab { "CNAB" } else { "IMAGE" }.to_owned();
    }
    match media_type {
        m if IMAGE_CONFIGS.contains(&m) => "IMAGE".to_owned(),
        HELM_CONFIG => "CHART".to_owned(),
        "application/vnd.cnab.config.v1+json" => "CNAB".to_owned(),
        m => m
            .strip_prefix("application/vnd.")
            .and_then(|r| r.split_once('.'))
            .and_then(|(_, r)| r.split_once(".config."))
            .filter(|(t, v)| !t.is_empty() && v.ends_with("+json"))
            .map_or_else(|| "UNKNOWN".to_owned(), |(t, _)| t.to_ascii_uppercase()),
    }
}

// ---- the request's options ---------------------------------------------------

/// The `with_*` switches of artifact reads.
#[derive(Debug, Clone, Copy)]
struct With {
    tag: bool,
    label: bool,
    scan_overview: bool,
    accessory: bool,
    signature: bool,
    immutable_status: bool,
}

impl With {
    fn of(params: &Params) -> ApiResult<With> {
        let flag = |name: &str, default: bool| -> ApiResult<bool> {
            Ok(params.bool(name)?.unwrap_or(default))
        };
        Ok(With {
            tag: flag("with_tag", true)?,
            label: flag("with_label", false)?,
            scan_overview: flag("with_scan_overview", false)?,
            accessory: flag("with_accessory", false)?,
            signature: flag("with_signature", false)?,
            immutable_status: flag("with_immutable_status", false)?,
        })
    }
}

/// What an artifact's JSON is built from.
struct View<'a> {
    ctx: &'a Shared,
    project: &'a Project,
    repo: &'a RepoName,
}

impl View<'_> {
    fn base_path(&self) -> String {
        let short = self
            .repo
            .as_str()
            .split_once('/')
            .map_or("", |(_, r)| r)
            .replace('/', "%252F");
        format!(
            "/api/v2.0/projects/{}/repositories/{short}",
            self.project.name
        )
    }

    fn artifact_id(&self, digest: &Digest) -> i64 {
        stable_id("artifact", &format!("{}@{digest}", self.repo))
    }

    /// Which of `tags` the project's immutability rules hold (all false
    /// unless `with_immutable_status` asked).
    async fn immutable(&self, tags: &[TagRecord], with: With) -> ApiResult<Vec<bool>> {
        if !with.immutable_status {
            return Ok(vec![false; tags.len()]);
        }
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        Ok(self.ctx.registry.immutable_tags(self.repo, &names).await?)
    }

    fn tag_json(
        &self,
        digest: &Digest,
        t: &TagRecord,
        with: With,
        signed: bool,
        immutable: bool,
    ) -> Value {
        let mut v = json!({
            "id": stable_id("tag", &format!("{}:{}", self.repo, t.name)),
            "repository_id": stable_id("repository", self.repo.as_str()),
            "artifact_id": self.artifact_id(digest),
            "name": t.name,
            "push_time": rfc3339(t.pushed),
            "pull_time": NEVER,
            "immutable": immutable,
        });
        if with.signature {
            v["signed"] = json!(signed);
        }
        v
    }

    fn accessory_json(&self, subject: &Digest, a: &AccessoryRecord) -> Value {
        json!({
            "id": stable_id("accessory", &format!("{}@{}", self.repo, a.digest)),
            "artifact_id": self.artifact_id(&a.digest),
            "subject_artifact_id": self.artifact_id(subject),
            "subject_artifact_digest": subject.to_string(),
            "subject_artifact_repo": self.repo.as_str(),
            "size": a.size,
            "digest": a.digest.to_string(),
            "type": a.kind,
            "icon": "",
            "creation_time": rfc3339(a.pushed),
        })
    }

    /// Harbor's `Artifact`.
    async fn artifact_json(&self, rec: &ArtifactRecord, with: With) -> ApiResult<Value> {
        let doc = Doc::of(rec);
        let media_type = doc.media_type(rec);
        let kind = artifact_kind(&doc, &media_type);
        let id = self.artifact_id(&rec.digest);
        let references: Vec<Value> = doc
            .manifests
            .iter()
            .map(|m| {
                let mut r = json!({
                    "parent_id": id,
                    "child_id": parse_digest(&m.digest)
                        .map(|d| self.artifact_id(&d))
                        .unwrap_or(0),
                    "child_digest": m.digest,
                });
                if let Some(p) = &m.platform {
                    r["platform"] = p.clone();
                }
                if let Some(a) = &m.annotations {
                    r["annotations"] = json!(a);
                }
                if let Some(u) = &m.urls {
                    r["urls"] = json!(u);
                }
                r
            })
            .collect();
        let base = format!("{}/artifacts/{}", self.base_path(), rec.digest);
        let mut links = Map::new();
        match kind.as_str() {
            "IMAGE" if !doc.is_index() => {
                links.insert(
                    "build_history".into(),
                    json!({"absolute": false, "href": format!("{base}/additions/build_history")}),
                );
            }
            "CHART" => {
                for a in ["values.yaml", "readme.md", "dependencies"] {
                    links.insert(
                        a.into(),
                        json!({"absolute": false, "href": format!("{base}/additions/{a}")}),
                    );
                }
            }
            _ => {}
        }
        let mut v = json!({
            "id": id,
            "type": kind,
            "media_type": media_type,
            "manifest_media_type": rec.media_type,
            "artifact_type": doc.artifact_type.clone().unwrap_or_else(|| media_type.clone()),
            "project_id": self.project.id,
            "repository_id": stable_id("repository", self.repo.as_str()),
            "repository_name": self.repo.as_str(),
            "digest": rec.digest.to_string(),
            "size": self.total_size(rec, &doc).await?,
            "icon": "",
            "push_time": rfc3339(rec.pushed),
            "pull_time": time_or_never(rec.pulled),
            "extra_attrs": self.extra_attrs(&doc, &kind).await?,
            "annotations": doc.annotations.clone().unwrap_or_default(),
            "references": references,
            "addition_links": links,
        });
        let accessories = if with.accessory || with.signature {
            self.ctx
                .registry
                .accessories_of(self.repo, &rec.digest)
                .await?
        } else {
            Vec::new()
        };
        if with.tag {
            let signed = accessories.iter().any(|a| a.kind.starts_with("signature."));
            let records = self.ctx.registry.tags_of(self.repo, &rec.digest).await?;
            let immutable = self.immutable(&records, with).await?;
            let tags: Vec<Value> = records
                .iter()
                .zip(immutable)
                .map(|(t, i)| self.tag_json(&rec.digest, t, with, signed, i))
                .collect();
            v["tags"] = json!(tags);
        }
        if with.label {
            let labels = self
                .ctx
                .iam
                .directory
                .labels()
                .labels_of(self.repo, &rec.digest)
                .await?;
            v["labels"] = json!(
                labels
                    .iter()
                    .map(super::labels::label_json)
                    .collect::<Vec<_>>()
            );
        }
        if with.accessory {
            v["accessories"] = json!(
                accessories
                    .iter()
                    .map(|a| self.accessory_json(&rec.digest, a))
                    .collect::<Vec<_>>()
            );
        }
        if with.scan_overview {
            // Scanning comes later: an artifact not yet scanned has no overview.
            v["scan_overview"] = json!({});
        }
        Ok(v)
    }

    /// The artifact's size as Harbor counts it: the manifest plus its
    /// config and layers; an index: itself plus its children's sizes.
    async fn total_size(&self, rec: &ArtifactRecord, doc: &Doc) -> ApiResult<u64> {
        let own = |doc: &Doc| {
            doc.config
                .iter()
                .chain(&doc.layers)
                .map(|d| d.size.max(0) as u64)
                .sum::<u64>()
        };
        if doc.manifests.is_empty() {
            return Ok(rec.size + own(doc));
        }
        let children: Vec<Digest> = doc
            .manifests
            .iter()
            .filter_map(|m| parse_digest(&m.digest).ok())
            .collect();
        let found = self
            .ctx
            .registry
            .artifact_records(self.repo, &children)
            .await?;
        let mut total = rec.size;
        for (m, child) in doc.manifests.iter().zip(found) {
            total += match child {
                Some(c) => c.size + own(&Doc::of(&c)),
                None => m.size.max(0) as u64,
            };
        }
        Ok(total)
    }

    async fn config(&self, doc: &Doc) -> ApiResult<Option<Value>> {
        let Some(c) = &doc.config else {
            return Ok(None);
        };
        let Ok(d) = parse_digest(&c.digest) else {
            return Ok(None);
        };
        let bytes = self
            .ctx
            .registry
            .small_blob(self.repo, &d, MAX_DESCRIBED_BLOB)
            .await?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Harbor's `extra_attrs`: architecture, os, created, author and
    /// config of an image; the chart's metadata of a chart.
    async fn extra_attrs(&self, doc: &Doc, kind: &str) -> ApiResult<Value> {
        if doc.is_index() {
            return Ok(json!({}));
        }
        let Some(config) = self.config(doc).await? else {
            return Ok(json!({}));
        };
        Ok(match kind {
            "IMAGE" => {
                let mut m = Map::new();
                for k in [
                    "architecture",
                    "os",
                    "created",
                    "author",
                    "variant",
                    "os.version",
                ] {
                    if let Some(v) = config.get(k).filter(|v| !v.is_null()) {
                        m.insert(k.to_owned(), v.clone());
                    }
                }
                if let Some(c) = config.get("config").filter(|v| !v.is_null()) {
                    m.insert("config".to_owned(), c.clone());
                }
                Value::Object(m)
            }
            "CHART" => config,
            _ => json!({}),
        })
    }

    /// A file of a chart archive (`values.yaml`, `README.md`), by its name
    /// inside the chart's top directory (case-insensitive).
    async fn chart_file(&self, doc: &Doc, file: &str) -> ApiResult<Option<String>> {
        let Some(layer) = doc.layers.iter().find(|l| l.media_type == HELM_CHART) else {
            return Ok(None);
        };
        let Ok(d) = parse_digest(&layer.digest) else {
            return Ok(None);
        };
        let Some(archive) = self
            .ctx
            .registry
            .small_blob(self.repo, &d, MAX_DESCRIBED_BLOB)
            .await?
        else {
            return Ok(None);
        };
        Ok(read_chart_file(&archive, file))
    }
}

/// A file directly inside a chart archive's top directory.
fn read_chart_file(archive: &[u8], file: &str) -> Option<String> {
    // A bound on what is unpacked: a small archive can expand enormously.
    let gz = flate2::read::GzDecoder::new(archive).take(MAX_CHART_UNPACKED);
    let mut tar = tar::Archive::new(gz);
    for entry in tar.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let mut parts = path.trim_start_matches("./").split('/');
        let (Some(_chart), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if name.eq_ignore_ascii_case(file) {
            let mut out = String::new();
            entry
                .by_ref()
                .take(MAX_CHART_FILE)
                .read_to_string(&mut out)
                .ok()?;
            return Some(out);
        }
    }
    None
}

/// The artifact description of any bytes (for the fuzz target).
pub(crate) fn fuzz_describe(manifest: &[u8], archive: &[u8]) -> String {
    let doc: Doc = serde_json::from_slice(manifest).unwrap_or_default();
    let media_type = match &doc.config {
        Some(c) => c.media_type.clone(),
        None => doc.media_type.clone().unwrap_or_default(),
    };
    let kind = artifact_kind(&doc, &media_type);
    let file = read_chart_file(archive, "values.yaml").unwrap_or_default();
    format!("{kind} {}", file.len())
}

// ---- paths -----------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct ArtPath {
    project_name: String,
    repository_name: String,
    reference: String,
}

#[derive(Deserialize)]
pub(crate) struct TagPath {
    project_name: String,
    repository_name: String,
    reference: String,
    tag_name: String,
}

#[derive(Deserialize)]
pub(crate) struct AdditionPath {
    project_name: String,
    repository_name: String,
    reference: String,
    addition: String,
}

#[derive(Deserialize)]
pub(crate) struct LabelPath {
    project_name: String,
    repository_name: String,
    reference: String,
    label_id: i64,
}

fn parse_reference(r: &str) -> ApiResult<Reference> {
    if r.contains(':') {
        parse_digest(r)
            .map(Reference::Digest)
            .map_err(|e| ApiError::bad_request(format!("invalid digest {r:?}: {e}")))
    } else {
        r.parse::<Tag>()
            .map(Reference::Tag)
            .map_err(|_| ApiError::bad_request(format!("invalid tag {r:?}")))
    }
}

/// An artifact a path names, with its project and repository.
struct Target {
    project: Project,
    repo: RepoName,
    rec: ArtifactRecord,
}

impl Target {
    /// Records `operation` on this artifact in the audit log.
    async fn audit(&self, ctx: &Shared, caller: &Caller, operation: &str) {
        let resource = format!("{}@{}", self.repo, self.rec.digest);
        ctx.audit(
            caller,
            &resource,
            "artifact",
            operation,
            Some(&self.project.name),
        )
        .await;
    }

    fn view<'a>(&'a self, ctx: &'a Shared) -> View<'a> {
        View {
            ctx,
            project: &self.project,
            repo: &self.repo,
        }
    }
}

/// The `{project_name}`, `{repository_name}` and `{reference}` of a path.
trait ArtifactPath {
    fn parts(&self) -> (&str, &str, &str);
}

macro_rules! artifact_path {
    ($($t:ty),+) => {$(
        impl ArtifactPath for $t {
            fn parts(&self) -> (&str, &str, &str) {
                (&self.project_name, &self.repository_name, &self.reference)
            }
        }
    )+};
}

artifact_path!(ArtPath, TagPath, AdditionPath, LabelPath);

/// The artifact a path names, after checking the caller may do `action`
/// on `resource` there.
async fn artifact_at(
    ctx: &Shared,
    caller: &Caller,
    path: &impl ArtifactPath,
    resource: Resource,
    action: Action,
) -> ApiResult<Target> {
    let (project, repository, reference) = path.parts();
    let (p, pa, name) = repo_in(ctx, caller, project, repository).await?;
    require(caller, &pa, resource, action)?;
    let reference = parse_reference(reference)?;
    let rec = ctx
        .registry
        .artifact(&name, &reference)
        .await
        .map_err(|e| match e {
            crate::registry::RegistryError::ManifestUnknown => {
                ApiError::not_found(format!("artifact {name}{} not found", shown(&reference)))
            }
            e => e.into(),
        })?;
    Ok(Target {
        project: p,
        repo: name,
        rec,
    })
}

fn shown(r: &Reference) -> String {
    match r {
        Reference::Tag(t) => format!(":{}", t.as_str()),
        Reference::Digest(d) => format!("@{d}"),
    }
}

// ---- handlers ----------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct RepoPath {
    project_name: String,
    repository_name: String,
}

/// The `q` filter of an artifact listing.
struct ArtifactFilter {
    q: Vec<(String, QVal)>,
}

impl ArtifactFilter {
    const KEYS: [&'static str; 5] = ["tags", "digest", "media_type", "type", "labels"];

    fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

/// `GET …/artifacts`
pub(crate) async fn list(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(path): P<RepoPath>,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    let reverse = params.sort(&["-push_time", "push_time"])? == "push_time";
    let with = With::of(&params)?;
    let filter = ArtifactFilter {
        q: params.q_of(&ArtifactFilter::KEYS)?,
    };
    let cursor = params.cursor(keys::ART_PREFIX)?;
    let (p, pa, name) = repo_in(&ctx, &caller, &path.project_name, &path.repository_name).await?;
    require(&caller, &pa, Resource::Artifact, Action::List)?;
    existing(&ctx, &name).await?;
    let c2 = View {
        ctx: &ctx,
        project: &p,
        repo: &name,
    };
    // Filters on what the manifest says are applied while paging; a tag
    // filter needs the tags, read per candidate.
    let tag_filter = filter
        .q
        .iter()
        .find(|(k, _)| k == "tags")
        .map(|(_, v)| v.clone());
    let label_filter = filter
        .q
        .iter()
        .find(|(k, _)| k == "labels")
        .map(|(_, v)| label_ids(v))
        .transpose()?;
    let plain: Vec<(String, QVal)> = filter
        .q
        .iter()
        .filter(|(k, _)| k != "tags" && k != "labels")
        .cloned()
        .collect();
    let keep = |r: &ArtifactRecord| {
        if plain.is_empty() {
            return true;
        }
        // The manifest is parsed once per candidate, not once per filter.
        let doc = Doc::of(r);
        let media_type = doc.media_type(r);
        plain.iter().all(|(k, v)| match k.as_str() {
            "digest" => v.matches(r.digest.as_ref()),
            "media_type" => v.matches(&media_type) || v.matches(&r.media_type),
            "type" => v.matches(&artifact_kind(&doc, &media_type)),
            _ => true,
        })
    };
    let (items, next, before) = cursor_page(paging, cursor, |after, n| {
        let ctx = &ctx;
        let name = &name;
        let keep = &keep;
        let tag_filter = &tag_filter;
        let label_filter = &label_filter;
        async move {
            let page = ctx
                .registry
                .artifacts(name, Order { after, reverse }, n, keep)
                .await?;
            let mut out = Vec::with_capacity(page.items.len());
            for r in page.items {
                if let Some(f) = tag_filter {
                    let tags = ctx.registry.tags_of(name, &r.digest).await?;
                    if !tags_match(f, &tags) {
                        continue;
                    }
                }
                if let Some(wanted) = label_filter {
                    let has = ctx
                        .iam
                        .directory
                        .labels()
                        .label_ids_of(name, &r.digest)
                        .await?;
                    if !wanted.iter().all(|id| has.contains(id)) {
                        continue;
                    }
                }
                out.push(r);
            }
            Ok((out, page.next))
        }
    })
    .await?;
    let mut out = Vec::with_capacity(items.len());
    for r in &items {
        out.push(c2.artifact_json(r, with).await?);
    }
    let total = if filter.is_empty() {
        Some(usize::try_from(ctx.registry.artifact_count(&name).await?).unwrap_or(0))
    } else {
        None
    };
    Ok(cursor_page_response(
        &uri,
        paging,
        total,
        before,
        &out,
        next.as_deref(),
    ))
}

/// The label ids of `q=labels=(1 2)` (an artifact must carry all) or
/// `labels=1`.
fn label_ids(v: &QVal) -> ApiResult<Vec<i64>> {
    let list = match v {
        QVal::Exact(s) => vec![s.clone()],
        QVal::AnyOf(l) => l.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "labels takes label ids: labels=(1 2)",
            ));
        }
    };
    list.iter()
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("labels: {s:?} is not a label id")))
        })
        .collect()
}

/// Harbor's tag filter: `tags=*` (tagged), `tags=nil` (untagged), a name,
/// `~part`, or a list.
fn tags_match(f: &QVal, tags: &[TagRecord]) -> bool {
    match f {
        QVal::Exact(v) if v == "*" => !tags.is_empty(),
        QVal::Exact(v) if v == "nil" => tags.is_empty(),
        f => tags.iter().any(|t| f.matches(&t.name)),
    }
}

/// `GET …/artifacts/{reference}`
pub(crate) async fn get_one(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(path): P<ArtPath>,
) -> ApiResult<Response> {
    let with = With::of(&Params::of(&uri))?;
    let t = artifact_at(&ctx, &caller, &path, Resource::Artifact, Action::Read).await?;
    let rec = &t.rec;
    let c2 = t.view(&ctx);
    Ok(axum::Json(c2.artifact_json(rec, with).await?).into_response())
}

/// `DELETE …/artifacts/{reference}`: the artifact with its tags, its
/// accessories, and the index children nothing else references.
pub(crate) async fn delete(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<ArtPath>,
) -> ApiResult<Response> {
    let t = artifact_at(&ctx, &caller, &path, Resource::Artifact, Action::Delete).await?;
    let (name, rec) = (&t.repo, &t.rec);
    ctx.registry.delete_artifact(name, rec).await?;
    t.audit(&ctx, &caller, "delete").await;
    Ok(StatusCode::OK.into_response())
}

/// `POST …/artifacts?from=<project>/<repo>(:tag|@digest)`: copies.
pub(crate) async fn copy(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(path): P<RepoPath>,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let from = params
        .get("from")
        .ok_or_else(|| {
            ApiError::bad_request("from is required: <project>/<repository>:<tag> or @<digest>")
        })?
        .to_owned();
    let (src_repo, reference) = match from.rsplit_once('@') {
        Some((r, d)) => (r, parse_reference(d)?),
        None => match from.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, parse_reference(t)?),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "from {from:?} names no tag or digest"
                )));
            }
        },
    };
    let (src_project, src_short) = src_repo
        .split_once('/')
        .ok_or_else(|| ApiError::bad_request(format!("from {from:?} names no project")))?;
    let (_, src_pa, src) = repo_in(&ctx, &caller, src_project, src_short).await?;
    require(&caller, &src_pa, Resource::Repository, Action::Pull)?;
    let (p, pa, dst) = repo_in(&ctx, &caller, &path.project_name, &path.repository_name).await?;
    require(&caller, &pa, Resource::Artifact, Action::Create)?;
    let digest = ctx
        .registry
        .copy_artifact(&src, &reference, &dst)
        .await
        .map_err(|e| match e {
            crate::registry::RegistryError::ManifestUnknown => {
                ApiError::not_found(format!("artifact {from} not found"))
            }
            e => e.into(),
        })?;
    let resource = format!("{dst}@{digest}");
    ctx.audit(&caller, &resource, "artifact", "create", Some(&p.name))
        .await;
    let c2 = View {
        ctx: &ctx,
        project: &p,
        repo: &dst,
    };
    Ok(created(&format!("{}/artifacts/{digest}", c2.base_path())))
}

/// `GET …/artifacts/{reference}/tags`
pub(crate) async fn list_tags(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(path): P<ArtPath>,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    params.sort(&["name"])?;
    let q = params.q_of(&["name"])?;
    let with = With::of(&params)?;
    let t = artifact_at(&ctx, &caller, &path, Resource::Tag, Action::List).await?;
    let (name, rec) = (&t.repo, &t.rec);
    let c2 = t.view(&ctx);
    // The tags of one artifact: one query (they are few per artifact).
    let tags: Vec<TagRecord> = ctx
        .registry
        .tags_of(name, &rec.digest)
        .await?
        .into_iter()
        .filter(|t| q.iter().all(|(_, v)| v.matches(&t.name)))
        .collect();
    let immutable = c2.immutable(&tags, with).await?;
    let out: Vec<Value> = tags
        .iter()
        .zip(immutable)
        .map(|(t, i)| c2.tag_json(&rec.digest, t, with, false, i))
        .collect();
    Ok(super::query::paged(&uri, paging, out))
}

#[derive(Deserialize)]
struct NewTag {
    name: String,
}

/// `POST …/artifacts/{reference}/tags`
pub(crate) async fn create_tag(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<ArtPath>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: NewTag = json_body(&body)?;
    let tag: Tag = req
        .name
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid tag name {:?}", req.name)))?;
    let t = artifact_at(&ctx, &caller, &path, Resource::Tag, Action::Create).await?;
    let (p, name, rec) = (&t.project, &t.repo, &t.rec);
    if ctx
        .registry
        .artifact(name, &Reference::Tag(tag.clone()))
        .await
        .is_ok()
    {
        return Err(ApiError::conflict(format!(
            "tag {} already exists in {name}",
            tag.as_str()
        )));
    }
    ctx.registry.add_tag(name, &tag, &rec.digest).await?;
    let resource = format!("{name}:{}", tag.as_str());
    ctx.audit(&caller, &resource, "tag", "create", Some(&p.name))
        .await;
    let c2 = t.view(&ctx);
    Ok(created(&format!(
        "{}/artifacts/{}/tags/{}",
        c2.base_path(),
        rec.digest,
        tag.as_str()
    )))
}

/// `DELETE …/artifacts/{reference}/tags/{tag_name}`
pub(crate) async fn delete_tag(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<TagPath>,
) -> ApiResult<Response> {
    let t = artifact_at(&ctx, &caller, &path, Resource::Tag, Action::Delete).await?;
    let (p, name, rec) = (&t.project, &t.repo, &t.rec);
    let not_found =
        || ApiError::not_found(format!("tag {} not found on the artifact", path.tag_name));
    let tag: Tag = path.tag_name.parse().map_err(|_| not_found())?;
    let target = ctx
        .registry
        .artifact(name, &Reference::Tag(tag.clone()))
        .await
        .map_err(|_| not_found())?;
    if target.digest != rec.digest {
        return Err(not_found());
    }
    ctx.registry
        .delete_manifest(name, &Reference::Tag(tag.clone()))
        .await
        .map_err(|e| match e {
            crate::registry::RegistryError::ManifestUnknown => not_found(),
            e => e.into(),
        })?;
    let resource = format!("{name}:{}", tag.as_str());
    ctx.audit(&caller, &resource, "tag", "delete", Some(&p.name))
        .await;
    Ok(StatusCode::OK.into_response())
}

/// `GET …/artifacts/{reference}/accessories`
pub(crate) async fn list_accessories(
    State(ctx): State<Shared>,
    caller: Caller,
    uri: Uri,
    P(path): P<ArtPath>,
) -> ApiResult<Response> {
    let params = Params::of(&uri);
    let paging = params.paging()?;
    params.sort(&["creation_time"])?;
    let q = params.q_of(&["type", "digest"])?;
    let t = artifact_at(&ctx, &caller, &path, Resource::Accessory, Action::List).await?;
    let (name, rec) = (&t.repo, &t.rec);
    let c2 = t.view(&ctx);
    let out: Vec<Value> = ctx
        .registry
        .accessories_of(name, &rec.digest)
        .await?
        .iter()
        .filter(|a| {
            q.iter().all(|(k, v)| match k.as_str() {
                "type" => v.matches(&a.kind),
                _ => v.matches(a.digest.as_ref()),
            })
        })
        .map(|a| c2.accessory_json(&rec.digest, a))
        .collect();
    Ok(super::query::paged(&uri, paging, out))
}

/// `GET …/artifacts/{reference}/additions/{addition}`
pub(crate) async fn addition(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<AdditionPath>,
) -> ApiResult<Response> {
    let t = artifact_at(
        &ctx,
        &caller,
        &path,
        Resource::ArtifactAddition,
        Action::Read,
    )
    .await?;
    let rec = &t.rec;
    let c2 = t.view(&ctx);
    let doc = Doc::of(rec);
    let kind = artifact_kind(&doc, &doc.media_type(rec));
    let none = || ApiError::not_found(format!("the artifact has no addition {:?}", path.addition));
    let text = |body: String| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    };
    match (kind.as_str(), path.addition.to_ascii_lowercase().as_str()) {
        ("IMAGE", "build_history") if !doc.is_index() => {
            let config = c2.config(&doc).await?.unwrap_or_default();
            let history = config.get("history").cloned().unwrap_or_else(|| json!([]));
            Ok(axum::Json(history).into_response())
        }
        ("CHART", "values.yaml") => Ok(text(
            c2.chart_file(&doc, "values.yaml").await?.ok_or_else(none)?,
        )),
        ("CHART", "readme.md") => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            c2.chart_file(&doc, "README.md").await?.ok_or_else(none)?,
        )
            .into_response()),
        ("CHART", "dependencies") => {
            let config = c2.config(&doc).await?.unwrap_or_default();
            let deps = config
                .get("dependencies")
                .cloned()
                .unwrap_or_else(|| json!([]));
            Ok(axum::Json(deps).into_response())
        }
        _ => Err(none()),
    }
}

#[derive(Deserialize)]
struct LabelRef {
    id: i64,
}

/// `POST …/artifacts/{reference}/labels`
pub(crate) async fn add_label(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<ArtPath>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: LabelRef = json_body(&body)?;
    let t = artifact_at(
        &ctx,
        &caller,
        &path,
        Resource::ArtifactLabel,
        Action::Create,
    )
    .await?;
    let (name, rec) = (&t.repo, &t.rec);
    ctx.iam
        .directory
        .labels()
        .attach(name, &rec.digest, req.id)
        .await?;
    t.audit(&ctx, &caller, "update").await;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE …/artifacts/{reference}/labels/{label_id}`
pub(crate) async fn remove_label(
    State(ctx): State<Shared>,
    caller: Caller,
    P(path): P<LabelPath>,
) -> ApiResult<Response> {
    let t = artifact_at(
        &ctx,
        &caller,
        &path,
        Resource::ArtifactLabel,
        Action::Delete,
    )
    .await?;
    let (name, rec) = (&t.repo, &t.rec);
    ctx.iam
        .directory
        .labels()
        .detach(name, &rec.digest, path.label_id)
        .await?;
    t.audit(&ctx, &caller, "update").await;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_harbor() {
        let image = Doc {
            config: Some(Desc {
                media_type: IMAGE_CONFIGS[0].to_owned(),
                ..Desc::default()
            }),
            ..Doc::default()
        };
        assert_eq!(artifact_kind(&image, IMAGE_CONFIGS[0]), "IMAGE");
        assert_eq!(artifact_kind(&image, HELM_CONFIG), "CHART");
        assert_eq!(
            artifact_kind(&image, "application/vnd.acme.rocket.config.v1+json"),
            "ROCKET"
        );
        assert_eq!(artifact_kind(&image, "text/plain"), "UNKNOWN");
        let index = Doc {
            manifests: vec![Desc::default()],
            ..Doc::default()
        };
        assert_eq!(artifact_kind(&index, ""), "IMAGE");
    }

    #[test]
    fn chart_files_come_from_the_top_directory() {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, body) in [
            ("mychart/Chart.yaml", "name: mychart\n"),
            ("mychart/values.yaml", "replicas: 2\n"),
            ("mychart/charts/dep/values.yaml", "nested: true\n"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, body.as_bytes())
                .expect("append");
        }
        let raw = tar.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).expect("gz");
        let archive = gz.finish().expect("gz");
        assert_eq!(
            read_chart_file(&archive, "values.yaml").as_deref(),
            Some("replicas: 2\n")
        );
        assert_eq!(read_chart_file(&archive, "README.md"), None);
        assert_eq!(read_chart_file(b"not a gzip", "values.yaml"), None);
    }
}
