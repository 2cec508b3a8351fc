//! The `gc` worker's jobs. For now: sweeping expired upload sessions (their
//! multipart uploads, staged chunks and records), on the worker's schedule
//! and on demand. Garbage collection of blobs and manifests builds on it.

use crate::registry::{Registry, SweepReport};
use crate::store::{Job, now_secs};

/// Job kind: sweep expired upload sessions now.
pub const SWEEP_UPLOADS: &str = "uploads.sweep";

/// What the `gc` worker does.
#[derive(Clone)]
pub struct Gc {
    registry: Registry,
}

/// The outcome of a job the worker does not know: acknowledged (so the
/// queue does not fill up with it), with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Swept(SweepReport),
    Ignored,
}

impl Gc {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// Runs one job; idempotent.
    pub async fn run(&self, job: &Job) -> Result<Outcome, String> {
        match job.kind.as_str() {
            SWEEP_UPLOADS => self.tick().await.map(Outcome::Swept),
            other => {
                tracing::warn!(job = %job.id, kind = other, "gc: unknown job kind; acknowledged without action");
                Ok(Outcome::Ignored)
            }
        }
    }

    /// The scheduled run: sweeps expired upload sessions.
    pub async fn tick(&self) -> Result<SweepReport, String> {
        let report = self
            .registry
            .sweep_uploads(now_secs())
            .await
            .map_err(|e| e.to_string())?;
        if report.removed > 0 {
            tracing::info!(
                removed = report.removed,
                examined = report.examined,
                "swept expired upload sessions"
            );
        }
        Ok(report)
    }
}
