#![no_main]
//! Any path under /v2 parses to a route or an error, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = berth::http::parse_v2_path(&format!("/v2/{s}"));
        let _ = berth::http::parse_v2_path(s);
    }
});
