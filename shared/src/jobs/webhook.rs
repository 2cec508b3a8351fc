//! The `webhook` worker: turns events into deliveries to the targets of
//! the project's webhook policies, retries them with backoff and gives up
//! into the dead-letter queue.
//!
//! - [`Webhooks::on_event`] (the `event` job, dispatched by the events
//!   queue's worker) finds the enabled policies of the event's project
//!   that subscribe to its type and makes one execution per policy,
//!   keyed by (policy id, event id): an event heard twice makes no second
//!   execution. Each execution not yet attempted gets a
//!   [`DELIVER`] job; a copy of that job is harmless (see below), so the
//!   event's redelivery after a crash between the two steps resends it.
//! - [`Webhooks::run`] makes one attempt of a [`DELIVER`] job. The
//!   attempt is taken with a conditional write on the number of attempts
//!   made ([`crate::webhook::history`]), so two copies of a job send once.
//!   Before the outcome is recorded, the next job is queued: the retry
//!   (delayed by [`WebhookOptions::delays`]) or, after the last attempt,
//!   the job itself to the dead-letter queue. A crash between the two
//!   leaves the attempt's lease to run out and the job to come back and
//!   take the attempt over: at least once, never lost.
//!
//! Events are announced only after their change commits (the outbox,
//! `registry::events`), so a receiver that reads back what an event
//! names finds it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::iam::directory::Directory;
use crate::oci::RepoName;
use crate::outbound::{AddressPolicy, ClientOptions, Lookup, SafeClient};
use crate::registry::Registry;
use crate::registry::events::Event;
use crate::store::{Job, KvError, Queue};
use crate::webhook::deliver::{self, Outcome};
use crate::webhook::history::{self, Attempt, Executions, Take};
use crate::webhook::payload::{self, Context, EVENT_TYPES};
use crate::webhook::policy::{StoredPolicy, Target, WebhookError, WebhookPolicies, WebhookPolicy};

/// Job kind: one attempt of one execution.
pub const DELIVER: &str = "webhook.deliver";

/// Tunables of the webhook worker.
#[derive(Clone)]
pub struct WebhookOptions {
    /// The wait before each retry: attempts are one more than its length.
    pub delays: Vec<Duration>,
    /// How long an attempt is held before a redelivered job may take it
    /// over (longer than `timeout`, shorter than the queue's visibility
    /// timeout).
    pub lease: Duration,
    /// From sending to the receiver's answer.
    pub timeout: Duration,
    /// The registry's public URL (`resource_url`s name its host).
    pub public_url: Option<String>,
    /// Overrides the address policy (tests); `None`: the effective
    /// setting ([`crate::webhook::address_policy`]), read per delivery.
    pub addresses: Option<AddressPolicy>,
    /// Name resolution (tests resolve names without DNS).
    pub lookup: Option<Arc<dyn Lookup>>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            delays: [10, 30, 90, 270].map(Duration::from_secs).to_vec(),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            public_url: None,
            addresses: None,
            lookup: None,
        }
    }
}

/// Why webhook work failed (the queue brings the job back).
#[derive(Debug, thiserror::Error)]
pub enum WebhookJobError {
    #[error("malformed webhook job: {0}")]
    Malformed(String),
    #[error("execution {0} is being attempted by another worker")]
    Busy(i64),
    #[error("could not queue a webhook job: {0}")]
    Queue(String),
    #[error(transparent)]
    Policy(#[from] WebhookError),
    #[error(transparent)]
    Store(#[from] KvError),
}

/// A [`DELIVER`] job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Deliver {
    policy: i64,
    exec: i64,
    /// Attempts made before this one.
    attempt: i64,
}

/// What the `webhook` worker does.
#[derive(Clone)]
pub struct Webhooks {
    registry: Registry,
    dir: Directory,
    policies: WebhookPolicies,
    executions: Executions,
    queue: Arc<dyn Queue>,
    dlq: Arc<dyn Queue>,
    opts: WebhookOptions,
    /// Clients by `allow_private` (false, true).
    clients: Arc<[Result<SafeClient, String>; 2]>,
}

impl Webhooks {
    pub fn new(
        registry: Registry,
        queue: Arc<dyn Queue>,
        dlq: Arc<dyn Queue>,
        opts: WebhookOptions,
    ) -> Self {
        let kv = registry.kv().clone();
        let client = |allow: bool| {
            let mut o = ClientOptions {
                policy: AddressPolicy::new(allow),
                timeout: opts.timeout,
                connect_timeout: opts.timeout,
                ..ClientOptions::default()
            };
            if let Some(l) = &opts.lookup {
                o.lookup = l.clone();
            }
            SafeClient::new(o).map_err(|e| e.to_string())
        };
        Self {
            dir: Directory::new(kv.clone()),
            policies: WebhookPolicies::new(kv.clone()),
            executions: Executions::new(kv),
            clients: Arc::new([client(false), client(true)]),
            registry,
            queue,
            dlq,
            opts,
        }
    }

    pub fn executions(&self) -> &Executions {
        &self.executions
    }

    pub fn policies(&self) -> &WebhookPolicies {
        &self.policies
    }

    /// The address policy deliveries follow now.
    pub async fn address_policy(&self) -> AddressPolicy {
        match self.opts.addresses {
            Some(p) => p,
            None => crate::webhook::address_policy(&self.dir).await,
        }
    }

    async fn client(&self) -> Result<&SafeClient, String> {
        let allow = self.address_policy().await.allow_private;
        self.clients[usize::from(allow)]
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Makes the executions `e` calls for and queues their first attempts.
    pub async fn on_event(&self, e: &Event) -> Result<(), WebhookJobError> {
        if !EVENT_TYPES.contains(&e.kind.as_str()) {
            return Ok(());
        }
        let Some(project) = self
            .dir
            .project(&e.project)
            .await
            .map_err(|err| KvError::Backend(err.to_string()))?
        else {
            return Ok(());
        };
        let policies: Vec<StoredPolicy> = self
            .policies
            .list(&project.name, project.id)
            .await?
            .into_iter()
            .filter(|p| p.policy.fires_on(&e.kind))
            .collect();
        if policies.is_empty() {
            return Ok(());
        }
        let mut ctx = Context {
            // The public URL's host; without one, the host the client used
            // for the request that raised the event.
            host: match host_of(self.opts.public_url.as_deref()) {
                h if h.is_empty() => e.data["host"].as_str().unwrap_or_default().to_owned(),
                h => h,
            },
            project_id: project.id,
            public: project.public,
            repo_created: 0,
            policy_id: 0,
        };
        if let Some(repo) = e
            .data
            .get("repository")
            .and_then(|r| r.as_str())
            .and_then(|r| r.parse::<RepoName>().ok())
            && let Ok(Some(r)) = self.registry.repository(&repo).await
        {
            ctx.repo_created = r.created;
        }
        for p in policies {
            let Some(target) = p.policy.target() else {
                continue;
            };
            ctx.policy_id = p.policy.id;
            let format = target.format();
            let body = payload::render(format, e, &ctx);
            let (exec, _) = self
                .executions
                .ensure(p.policy.id, e, &body, &format!("{format:?}"))
                .await?;
            if !exec.finished() && exec.attempts == 0 {
                self.send_deliver(p.policy.id, exec.id, 0, Duration::ZERO)
                    .await?;
            }
        }
        Ok(())
    }

    async fn send_deliver(
        &self,
        policy: i64,
        exec: i64,
        attempt: i64,
        delay: Duration,
    ) -> Result<(), WebhookJobError> {
        let job = deliver_job(policy, exec, attempt);
        let sent = if delay.is_zero() {
            self.queue.send(&job).await
        } else {
            self.queue.send_after(&job, delay).await
        };
        sent.map_err(|e| WebhookJobError::Queue(e.to_string()))
    }

    /// Runs a `webhook.*` job; false for kinds this worker does not know.
    pub async fn run(&self, job: &Job) -> Result<bool, WebhookJobError> {
        if job.kind != DELIVER {
            if job.kind.starts_with("webhook.") {
                tracing::warn!(kind = %job.kind, "unknown webhook job kind; dropped");
            }
            return Ok(false);
        }
        let d: Deliver = serde_json::from_value(job.payload.clone())
            .map_err(|e| WebhookJobError::Malformed(e.to_string()))?;
        match self
            .executions
            .take(d.policy, d.exec, d.attempt, self.opts.lease)
            .await?
        {
            Take::Go => {}
            Take::Done => return Ok(true),
            Take::Busy => return Err(WebhookJobError::Busy(d.exec)),
        }
        let Some(exec) = self.executions.get(d.policy, d.exec).await? else {
            return Ok(true);
        };
        let policy = self
            .policies
            .get(
                &exec.project,
                project_id_of(&self.dir, &exec.project).await,
                d.policy,
            )
            .await?;
        let outcome = match &policy {
            None => Outcome {
                status: 0,
                error: "the webhook policy was deleted".into(),
                retry: false,
            },
            Some(p) if !p.policy.enabled => Outcome {
                status: 0,
                error: "the webhook policy was disabled".into(),
                retry: false,
            },
            Some(p) => match (p.policy.target(), self.client().await) {
                (Some(t), Ok(client)) => {
                    deliver::attempt(client, t, &exec.body, &p.secret, &exec.event_id).await
                }
                (None, _) => Outcome {
                    status: 0,
                    error: "the webhook policy has no target".into(),
                    retry: false,
                },
                (_, Err(e)) => Outcome {
                    status: 0,
                    error: e,
                    retry: true,
                },
            },
        };
        self.settle(&d, &outcome).await?;
        Ok(true)
    }

    /// Queues what comes after an attempt, then records it.
    async fn settle(&self, d: &Deliver, outcome: &Outcome) -> Result<(), WebhookJobError> {
        let made = d.attempt + 1;
        let status = if outcome.ok() {
            history::SUCCESS
        } else if outcome.retry && (made as usize) <= self.opts.delays.len() {
            let delay = self.opts.delays[(made - 1) as usize];
            self.send_deliver(d.policy, d.exec, made, delay).await?;
            history::RUNNING
        } else {
            self.dlq
                .send(&deliver_job(d.policy, d.exec, d.attempt))
                .await
                .map_err(|e| WebhookJobError::Queue(e.to_string()))?;
            history::ERROR
        };
        if !outcome.ok() {
            tracing::info!(
                policy = d.policy,
                execution = d.exec,
                attempt = made,
                status = outcome.status,
                error = %outcome.error,
                "webhook delivery failed"
            );
        }
        let a = Attempt {
            attempt: made,
            at: crate::store::now_millis(),
            status_code: outcome.status,
            error: outcome.error.clone(),
        };
        self.executions.record(d.policy, d.exec, &a, status).await?;
        Ok(())
    }
}

/// Webhooks hear every committed event (the events queue's dispatch).
#[async_trait::async_trait]
impl crate::jobs::events::Subscriber for Webhooks {
    async fn on_event(&self, event: &Event) -> Result<(), String> {
        Webhooks::on_event(self, event)
            .await
            .map_err(|e| e.to_string())
    }
}

fn deliver_job(policy: i64, exec: i64, attempt: i64) -> Job {
    let mut job = Job::new(
        DELIVER,
        serde_json::to_value(Deliver {
            policy,
            exec,
            attempt,
        })
        .unwrap_or_default(),
    );
    // One id per attempt: a queue that deduplicates by id still sees each.
    job.id = format!("webhook-{exec}-{attempt}");
    job
}

async fn project_id_of(dir: &Directory, project: &str) -> i64 {
    match dir.project(project).await {
        Ok(Some(p)) => p.id,
        _ => -1,
    }
}

/// The host of a public URL (`https://reg.example:5000/` → `reg.example:5000`).
fn host_of(public_url: Option<&str>) -> String {
    let Some(u) = public_url else {
        return String::new();
    };
    let u = u.split_once("://").map_or(u, |(_, rest)| rest);
    u.split('/').next().unwrap_or_default().to_owned()
}

/// The event a test delivery sends: a push of `library/hello-world:latest`
/// into the policy's project, by `operator`.
pub fn test_event(project: &str, operator: &str) -> Event {
    Event::new(
        "PUSH_ARTIFACT",
        project,
        serde_json::json!({
            "repository": format!("{project}/hello-world"),
            "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "tags": ["latest"],
            "operator": operator,
        }),
    )
}

/// Sends `policy`'s target one test event now, without retries or
/// history; the outcome of the attempt.
pub async fn test_delivery(
    client: &SafeClient,
    policy: &WebhookPolicy,
    project: (&str, i64, bool),
    public_url: Option<&str>,
    secret: &str,
    operator: &str,
) -> Outcome {
    let Some(target): Option<&Target> = policy.target() else {
        return Outcome {
            status: 0,
            error: "the webhook policy has no target".into(),
            retry: false,
        };
    };
    let e = test_event(project.0, operator);
    let ctx = Context {
        host: host_of(public_url),
        project_id: project.1,
        public: project.2,
        repo_created: 0,
        policy_id: policy.id,
    };
    let body = payload::render(target.format(), &e, &ctx);
    deliver::attempt(client, target, &body, secret, &e.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_public_urls() {
        assert_eq!(
            host_of(Some("https://reg.example:5000/")),
            "reg.example:5000"
        );
        assert_eq!(host_of(Some("reg.example")), "reg.example");
        assert_eq!(host_of(None), "");
    }
}
