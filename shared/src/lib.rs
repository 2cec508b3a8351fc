//! Berth: an enterprise container registry as serverless functions.
//!
//! # Layout
//!
//! - [`oci`]: the OCI grammar (names, tags, digests), manifest validation,
//!   a resumable SHA-256. Pure; no I/O.
//! - [`store`]: the ports [`store::Kv`], [`store::BlobStore`],
//!   [`store::Queue`] and their adapters, with the contract suite every
//!   adapter passes.
//! - [`registry`]: the registry service (uploads, blobs, manifests, tags,
//!   referrers, catalog) written once against the ports.
//! - [`http`]: the routers: typed `/v2/` route parsing, handlers, the one
//!   place errors become OCI error bodies, and the embedded web portal as
//!   the local server's fallback.
//! - [`jobs`]: background work (the `gc` worker's sweeps), idempotent, run
//!   by the SQS worker functions and by `berth serve` in-process.
//! - [`auth`]: signed upload-session tokens.
//! - [`iam`]: identity and access: users, projects, roles, robots, the
//!   token service's grants and ES256 keys, the audit log.
//! - [`policy`]: project policies over tags: Harbor's doublestar
//!   selectors and the tag immutability rules.
//! - [`outbound`]: HTTP to other servers (webhook receivers, peer
//!   registries), guarded against server-side request forgery.
//! - [`replication`]: copies between registries: endpoints, policies
//!   and filters, the adapters of each side, executions as queue tasks.
//! - [`webhook`]: Harbor's webhook policies, their payloads (Harbor's
//!   JSON, CloudEvents, Slack), signatures and delivery history.
//! - [`config`]: typed configuration from flags and the environment.
//! - [`wiring`]: the composition root: which adapters back the registry.
//! - `lambda` (feature `lambda`): the per-route Lambda functions' routers,
//!   the API Gateway / Lambda limits harness, SQS worker helpers, and the
//!   local "API Gateway" stack.
//!
//! Layering: routes call services; services never call routes; only
//! adapters talk to storage.

pub mod auth;
pub mod config;
pub mod http;
pub mod iam;
pub mod jobs;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod oci;
pub mod outbound;
pub mod policy;
pub mod registry;
pub mod replication;
pub mod store;
#[cfg(feature = "contract")]
pub mod testing;
pub mod webhook;
pub mod wiring;
