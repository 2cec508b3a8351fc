#![no_main]
//! A saved hash state either restores or is refused; a restored state hashes on.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut s) = berth::oci::HashState::from_bytes(data) {
        s.update(data);
        let _ = s.digest();
        assert_eq!(berth::oci::HashState::from_bytes(&s.to_bytes()).map(|r| r.digest()), Ok(s.digest()));
    }
});
