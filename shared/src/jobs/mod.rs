//! Background work, written once and run by the SQS worker functions in
//! AWS (`functions/gc`, …) and by in-process tasks in `berth serve`.
//!
//! Jobs arrive at least once: every job here is idempotent.

pub mod gc;
