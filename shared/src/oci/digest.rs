//! Content digests, and a SHA-256 whose state can be saved between requests.
//!
//! A chunked upload arrives over many HTTP requests, which in AWS mode land on
//! different Lambda invocations. [`Sha256State`] serialises the running hash
//! (eight words, the byte count and the unprocessed tail) into the upload
//! session, so finalising an upload never reads the blob back.

use sha2::Digest as _;

pub use oci_spec::image::Digest;
use oci_spec::image::DigestAlgorithm;

/// Parses and validates a digest (`algorithm:encoded`). SHA-256 and SHA-512
/// digests must have the right length and lowercase hex.
pub fn parse_digest(s: &str) -> Result<Digest, String> {
    s.parse::<Digest>().map_err(|e| e.to_string())
}

/// True when the digest uses SHA-256, the one algorithm Berth computes.
pub fn is_sha256(d: &Digest) -> bool {
    matches!(d.algorithm(), DigestAlgorithm::Sha256)
}

/// The SHA-256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_from_hash(&sha2::Sha256::digest(bytes).into())
}

fn digest_from_hash(hash: &[u8; 32]) -> Digest {
    format!("sha256:{}", hex::encode(hash))
        .parse()
        .unwrap_or_else(|_| unreachable!("64 lowercase hex characters always form a sha256 digest"))
}

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A resumable SHA-256: the compression state plus the partial block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256State {
    h: [u32; 8],
    tail: Vec<u8>,
    len: u64,
}

/// A saved state that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt saved hash state")]
pub struct CorruptState;

impl Default for Sha256State {
    fn default() -> Self {
        Self {
            h: IV,
            tail: Vec::with_capacity(64),
            len: 0,
        }
    }
}

impl Sha256State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 64 {
                return;
            }
            let block: [u8; 64] = self.tail[..].try_into().unwrap_or([0; 64]);
            sha2::block_api::compress256(&mut self.h, &[block]);
            self.tail.clear();
        }
        let (blocks, rest) = data.as_chunks::<64>();
        if !blocks.is_empty() {
            sha2::block_api::compress256(&mut self.h, blocks);
        }
        self.tail.extend_from_slice(rest);
    }

    /// The digest of everything hashed so far; the state stays usable.
    pub fn digest(&self) -> Digest {
        let mut h = self.h;
        let mut last = self.tail.clone();
        last.push(0x80);
        while last.len() % 64 != 56 {
            last.push(0);
        }
        last.extend_from_slice(&(self.len.wrapping_mul(8)).to_be_bytes());
        let (blocks, _) = last.as_chunks::<64>();
        sha2::block_api::compress256(&mut h, blocks);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(h) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        digest_from_hash(&out)
    }

    /// Serialises the state: 32 bytes of words, 8 bytes of length, the tail.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.tail.len());
        for w in self.h {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.tail);
        v
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, CorruptState> {
        if b.len() < 40 || b.len() >= 40 + 64 {
            return Err(CorruptState);
        }
        let mut h = [0u32; 8];
        for (w, c) in h.iter_mut().zip(b[..32].chunks_exact(4)) {
            *w = u32::from_be_bytes(c.try_into().map_err(|_| CorruptState)?);
        }
        let len = u64::from_be_bytes(b[32..40].try_into().map_err(|_| CorruptState)?);
        let tail = b[40..].to_vec();
        if len % 64 != tail.len() as u64 {
            return Err(CorruptState);
        }
        Ok(Self { h, tail, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            Sha256State::new().digest().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut s = Sha256State::new();
        s.update(b"abc");
        assert_eq!(
            s.digest().to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn corrupt_states_are_refused() {
        assert!(Sha256State::from_bytes(&[]).is_err());
        assert!(Sha256State::from_bytes(&[0; 41]).is_err());
        assert!(Sha256State::from_bytes(&[0; 200]).is_err());
        assert!(Sha256State::from_bytes(&Sha256State::new().to_bytes()).is_ok());
    }

    #[test]
    fn digests_parse_strictly() {
        assert!(parse_digest(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(parse_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(parse_digest("sha256:abc").is_err());
        assert!(parse_digest("sha256").is_err());
        assert!(parse_digest(":abc").is_err());
        assert!(parse_digest(&format!("sha256:{}", "G".repeat(64))).is_err());
    }

    proptest! {
        #[test]
        fn resumed_hash_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..600),
                                        cuts in proptest::collection::vec(0usize..600, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut state = Sha256State::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                state.update(&data[prev..c]);
                // Every chunk boundary is a request boundary: save and restore.
                state = Sha256State::from_bytes(&state.to_bytes()).unwrap();
                prev = c;
            }
            prop_assert_eq!(state.digest(), sha256_digest(&data));
        }

        #[test]
        fn digest_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_digest(&s);
        }
    }
}
