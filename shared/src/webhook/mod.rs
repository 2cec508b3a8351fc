//! Webhooks: Harbor's per-project notification policies, the payloads
//! they send and the record of every delivery.
//!
//! - [`policy`]: Harbor's `WebhookPolicy` and its store, with the target
//!   checks (scheme, address, header) made when a policy is saved.
//! - [`payload`]: what a receiver gets: Harbor's default JSON, CloudEvents
//!   1.0 (as Harbor 2.8+) or a Slack incoming-webhook message, and the
//!   HMAC signature over the body ([`SIGNATURE_HEADER`]).
//! - [`history`]: one execution per (policy, event), created once however
//!   often the event is delivered to Berth, with each attempt's outcome.
//!
//! The worker that turns events into deliveries, retries them and gives
//! up into the dead-letter queue is [`Webhooks`] (`jobs/webhook.rs`).
//!
//! # Signatures
//!
//! Harbor signs nothing; Berth adds `X-Berth-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of the exact request body under a secret of the
//! policy's own, generated when the policy is created and returned once,
//! in the create response's body (`{"id", "secret"}`; Harbor's create
//! answers with no body, so Harbor clients are unaffected). The secret is
//! not the policy's `auth_header`: that value travels in every request
//! (any proxy or log that sees one delivery could then forge others) and
//! is often empty, while the secret never leaves Berth after creation.
//! Receivers that also want to refuse replays deduplicate on the
//! `X-Berth-Event-Id` header (the same for every attempt of an event).

pub mod deliver;
pub mod history;
pub mod payload;
pub mod policy;

pub use crate::jobs::webhook::{DELIVER, WebhookJobError, WebhookOptions, Webhooks, test_delivery};
pub use history::{Attempt, Execution, Executions};
pub use payload::{EVENT_TYPES, PayloadFormat, SIGNATURE_HEADER, sign};
pub use policy::{Target, WebhookError, WebhookPolicies, WebhookPolicy};

use crate::iam::directory::Directory;
use crate::outbound::AddressPolicy;

/// The event id of a delivery, the same on every attempt.
pub const EVENT_ID_HEADER: &str = "x-berth-event-id";

/// The addresses webhook targets may have now: the process default
/// (`BERTH_WEBHOOK_ALLOW_PRIVATE`), overridden by the `/configurations`
/// field `webhook_allow_private` when it is set. Read on every save and
/// every delivery, so a changed setting applies at once.
pub async fn address_policy(dir: &Directory) -> AddressPolicy {
    crate::outbound::policy_for(dir).await
}
