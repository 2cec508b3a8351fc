//! The web portal's files, embedded by `build.rs` (`ASSETS`, and where
//! they came from: `ORIGIN`); `berth serve` serves them with
//! [`berth::http::portal`].

include!(concat!(env!("OUT_DIR"), "/portal_assets.rs"));
