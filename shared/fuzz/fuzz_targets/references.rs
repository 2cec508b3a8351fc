#![no_main]
//! Names, tags, references and digests: parse, and what parses prints back the same.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = s.parse::<berth::oci::RepoName>() {
        assert_eq!(n.to_string(), s);
    }
    if let Ok(r) = s.parse::<berth::oci::Reference>() {
        assert_eq!(r.to_string(), s);
    }
    let _ = berth::oci::digest::parse_digest(s);
    let signer = berth::auth::UploadSigner::new(b"fuzzing key, thirty-two bytes!!!", 60);
    let _ = signer.verify(s, "repo", "id", 0);
});
