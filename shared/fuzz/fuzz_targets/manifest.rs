#![no_main]
//! Manifest validation accepts or refuses any bytes under any media type.
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 6] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ct = TYPES[selector as usize % TYPES.len()];
    if let Ok(p) = berth::oci::manifest::parse_manifest(ct, body) {
        // Whatever is accepted names digests that print and re-parse.
        for d in p.blobs.iter().chain(&p.children) {
            assert!(berth::oci::digest::parse_digest(&d.digest.to_string()).is_ok());
        }
    }
});
