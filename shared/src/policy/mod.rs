//! Project policies over tags: Harbor's doublestar [`selector`]s, shared
//! by tag immutability and tag retention rules, and the [`immutable`] tag
//! rules with their storage.
//!
//! Pure matching lives in `selector`; `immutable` adds the rules' storage
//! over the metadata port and the check a push or delete asks
//! ([`immutable::is_immutable`]).

pub mod immutable;
pub mod retention;
pub mod selector;

pub use immutable::{ImmutableRule, ImmutableRules, PolicyError};
pub use selector::{Selector, SelectorRole, matches};
