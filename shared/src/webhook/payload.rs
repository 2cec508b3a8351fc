//! What a webhook receiver gets, in Harbor's formats (its
//! `pkg/notifier/model` payload and `pkg/notifier/formats`):
//!
//! - **Default**: `{"type", "occur_at", "operator", "event_data"}`, where
//!   `event_data` holds `resources` (`digest`, `tag`, `resource_url`, and
//!   `scan_overview` for scans) and `repository` (`date_created`, `name`,
//!   `namespace`, `repo_full_name`, `repo_type`) for artifact, quota and
//!   scan events, `custom_attributes.Details` for quota events,
//!   `replication` for replication events and `retention` for retention
//!   runs.
//! - **CloudEvents** 1.0, structured mode (`application/cloudevents+json`):
//!   `specversion`, `id` (the event's id), `source`
//!   (`/projects/<project id>/webhook/policies/<policy id>`), `type`
//!   (`harbor.artifact.pushed`, …), `time`, `datacontenttype`, `data` (the
//!   default format's `event_data`) and the `operator` extension.
//! - **Slack**: an incoming-webhook message of `blocks`, Harbor's
//!   template: the event type, the time, the operator and the event data
//!   as a code block.

use serde_json::{Value, json};

use crate::iam::audit::rfc3339;
use crate::registry::events::{Event, kinds};

/// Harbor's webhook event types, in the order its portal lists them.
pub const EVENT_TYPES: [&str; 9] = [
    kinds::DELETE_ARTIFACT,
    kinds::PULL_ARTIFACT,
    kinds::PUSH_ARTIFACT,
    kinds::QUOTA_EXCEED,
    kinds::QUOTA_WARNING,
    kinds::REPLICATION,
    kinds::SCANNING_FAILED,
    kinds::SCANNING_COMPLETED,
    kinds::TAG_RETENTION,
];

/// The signature header: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-berth-signature";

/// How a target wants its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    Default,
    CloudEvents,
    Slack,
}

impl PayloadFormat {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            PayloadFormat::CloudEvents => "application/cloudevents+json",
            PayloadFormat::Default | PayloadFormat::Slack => "application/json",
        }
    }
}

/// The CloudEvents type of a Harbor event type.
pub fn cloud_event_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "DELETE_ARTIFACT" => "harbor.artifact.deleted",
        "PULL_ARTIFACT" => "harbor.artifact.pulled",
        "PUSH_ARTIFACT" => "harbor.artifact.pushed",
        "QUOTA_EXCEED" => "harbor.quota.exceeded",
        "QUOTA_WARNING" => "harbor.quota.warned",
        "REPLICATION" => "harbor.replication.status.changed",
        "SCANNING_FAILED" => "harbor.scan.failed",
        "SCANNING_COMPLETED" => "harbor.scan.completed",
        "TAG_RETENTION" => "harbor.tag_retention.finished",
        _ => return None,
    })
}

/// What an event's payload needs besides the event.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The registry's host as clients reach it (`resource_url`'s prefix).
    pub host: String,
    pub project_id: i64,
    pub public: bool,
    /// When the repository was created (epoch seconds; 0: unknown).
    pub repo_created: i64,
    pub policy_id: i64,
}

fn s<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Harbor's `Repository` of an event's repository.
fn repository(e: &Event, ctx: &Context) -> Value {
    let full = s(&e.data, "repository");
    let name = full
        .split_once('/')
        .map_or(full, |(_, rest)| rest)
        .to_owned();
    let mut v = json!({
        "name": name,
        "namespace": e.project,
        "repo_full_name": full,
        "repo_type": if ctx.public { "public" } else { "private" },
    });
    if ctx.repo_created > 0 {
        v["date_created"] = ctx.repo_created.into();
    }
    v
}

/// The artifact's reference as Harbor shows it: its first tag, else its
/// digest.
fn reference(data: &Value) -> (String, String) {
    let digest = s(data, "digest").to_owned();
    let tag = data
        .get("tags")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .or_else(|| data.get("tag").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .map_or_else(|| digest.clone(), str::to_owned);
    (digest, tag)
}

/// `<host>/<repo>:<tag>` or `<host>/<repo>@<digest>`.
fn resource_url(host: &str, repo: &str, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    let host = host.trim_end_matches('/');
    if host.is_empty() {
        format!("{repo}{sep}{reference}")
    } else {
        format!("{host}/{repo}{sep}{reference}")
    }
}

/// Harbor's `event_data` of an event.
pub fn event_data(e: &Event, ctx: &Context) -> Value {
    let data = &e.data;
    match e.kind.as_str() {
        "REPLICATION" => json!({"replication": data.get("replication").unwrap_or(data)}),
        "TAG_RETENTION" => json!({"retention": data.get("retention").unwrap_or(data)}),
        kind => {
            let (digest, tag) = reference(data);
            let repo = s(data, "repository");
            let mut out = json!({"repository": repository(e, ctx)});
            if !digest.is_empty() {
                let mut r = json!({"digest": digest, "tag": tag});
                if kind.ends_with("_ARTIFACT") || kind.starts_with("SCANNING_") {
                    r["resource_url"] = resource_url(&ctx.host, repo, &tag).into();
                }
                if let Some(o) = data.get("scan_overview") {
                    r["scan_overview"] = o.clone();
                }
                out["resources"] = json!([r]);
            }
            if kind.starts_with("QUOTA_") {
                out["custom_attributes"] = json!({"Details": s(data, "message")});
            }
            out
        }
    }
}

/// Harbor's default payload.
pub fn default_payload(e: &Event, ctx: &Context) -> Value {
    json!({
        "type": e.kind,
        "occur_at": e.at / 1000,
        "operator": s(&e.data, "operator"),
        "event_data": event_data(e, ctx),
    })
}

/// The CloudEvents 1.0 envelope.
pub fn cloud_event(e: &Event, ctx: &Context) -> Value {
    json!({
        "specversion": "1.0",
        "id": e.id,
        "source": format!("/projects/{}/webhook/policies/{}", ctx.project_id, ctx.policy_id),
        "type": cloud_event_type(&e.kind).unwrap_or("harbor.event"),
        "time": rfc3339(e.at / 1000),
        "datacontenttype": "application/json",
        "data": event_data(e, ctx),
        "operator": s(&e.data, "operator"),
    })
}

/// A Slack incoming-webhook message (Harbor's template).
pub fn slack_message(e: &Event, ctx: &Context) -> Value {
    let section =
        |text: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    let data = serde_json::to_string_pretty(&event_data(e, ctx)).unwrap_or_default();
    let secs = e.at / 1000;
    json!({
        "text": format!("{} in {}", e.kind, e.project),
        "blocks": [
            section("*Harbor webhook events*".into()),
            section(format!("*event_type:* {}", e.kind)),
            section(format!("*occur_at:* <!date^{secs}^{{date}} at {{time}}|{}>", rfc3339(secs))),
            section(format!("*operator:* {}", s(&e.data, "operator"))),
            section("*event_data:*".into()),
            section(format!("```{data}```")),
        ],
    })
}

/// The request body of `e` in `format`.
pub fn render(format: PayloadFormat, e: &Event, ctx: &Context) -> Vec<u8> {
    let v = match format {
        PayloadFormat::Default => default_payload(e, ctx),
        PayloadFormat::CloudEvents => cloud_event(e, ctx),
        PayloadFormat::Slack => slack_message(e, ctx),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The signature header's value for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Event {
        Event {
            id: "e1".into(),
            kind: "PUSH_ARTIFACT".into(),
            at: 1_700_000_000_123,
            project: "lib".into(),
            data: json!({"repository": "lib/app/web", "digest": "sha256:ab", "tags": ["v1"],
                "operator": "alice"}),
        }
    }

    fn ctx() -> Context {
        Context {
            host: "reg.example:5000".into(),
            project_id: 3,
            public: true,
            repo_created: 1_600_000_000,
            policy_id: 7,
        }
    }

    #[test]
    fn default_payload_is_harbors() {
        let v = default_payload(&push(), &ctx());
        assert_eq!(v["type"], "PUSH_ARTIFACT");
        assert_eq!(v["occur_at"], 1_700_000_000);
        assert_eq!(v["operator"], "alice");
        let r = &v["event_data"]["resources"][0];
        assert_eq!(r["tag"], "v1");
        assert_eq!(r["resource_url"], "reg.example:5000/lib/app/web:v1");
        let repo = &v["event_data"]["repository"];
        assert_eq!(repo["name"], "app/web");
        assert_eq!(repo["namespace"], "lib");
        assert_eq!(repo["repo_full_name"], "lib/app/web");
        assert_eq!(repo["repo_type"], "public");
        assert_eq!(repo["date_created"], 1_600_000_000);
    }

    #[test]
    fn untagged_artifacts_are_named_by_digest() {
        let mut e = push();
        e.data["tags"] = json!([]);
        let v = default_payload(&e, &ctx());
        let r = &v["event_data"]["resources"][0];
        assert_eq!(r["tag"], "sha256:ab");
        assert_eq!(r["resource_url"], "reg.example:5000/lib/app/web@sha256:ab");
    }

    #[test]
    fn cloud_events_envelope() {
        let v = cloud_event(&push(), &ctx());
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "e1");
        assert_eq!(v["type"], "harbor.artifact.pushed");
        assert_eq!(v["source"], "/projects/3/webhook/policies/7");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["operator"], "alice");
        assert_eq!(v["data"]["resources"][0]["digest"], "sha256:ab");
        for k in EVENT_TYPES {
            assert!(cloud_event_type(k).is_some(), "{k}");
        }
    }

    #[test]
    fn quota_events_carry_details() {
        let e = Event {
            kind: "QUOTA_WARNING".into(),
            data: json!({"repository": "lib/app", "digest": "sha256:cd", "message": "85% used"}),
            ..push()
        };
        let v = default_payload(&e, &ctx());
        assert_eq!(v["event_data"]["custom_attributes"]["Details"], "85% used");
        assert_eq!(v["event_data"]["resources"][0]["digest"], "sha256:cd");
    }

    #[test]
    fn slack_message_has_blocks() {
        let v = slack_message(&push(), &ctx());
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.iter().any(|b| {
            b["text"]["text"]
                .as_str()
                .unwrap()
                .contains("PUSH_ARTIFACT")
        }));
    }

    #[test]
    fn signature_is_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
