#![no_main]
//! The management API's untrusted inputs: query strings (paging, Harbor's
//! `q`, `sort`, page cursors), and stored content it describes (manifests
//! of any shape, chart archives of any bytes). Nothing panics.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = berth::http::api::fuzzing::listing_query(&text);
    let q = format!("q={}", text.replace('&', "%26"));
    let _ = berth::http::api::fuzzing::listing_query(&q);
    let (manifest, archive) = data.split_at(data.len() / 2);
    let _ = berth::http::api::fuzzing::describe(manifest, archive);
});
