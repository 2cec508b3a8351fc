//! The `replication` worker's entry point: [`Replication`] runs the
//! `replication.*` jobs of the replication queue, starts executions
//! (manual, scheduled, on events) and stops them. Written in
//! [`crate::replication::worker`], beside the policies, endpoints and
//! adapters it drives.

pub use crate::replication::worker::*;
