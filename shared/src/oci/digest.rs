//! Content digests, and hashes whose state can be saved between requests.
//!
//! A chunked upload arrives over many HTTP requests, which in AWS mode land on
//! different Lambda invocations. [`HashState`] serialises the running hash
//! (eight words, the byte count and the unprocessed tail) into the upload
//! session, so finalising an upload never reads the blob back.
//!
//! Berth accepts the two algorithms the image spec registers, SHA-256 and
//! SHA-512 ([image-spec, "Registered algorithms"](https://github.com/opencontainers/image-spec/blob/main/descriptor.md#registered-algorithms)).
//! Any other algorithm is refused where a digest enters: Berth could not
//! verify it, and its unbounded length would not fit a metadata key.

use sha2::Digest as _;

pub use oci_spec::image::Digest;
use oci_spec::image::DigestAlgorithm;

/// A digest algorithm Berth computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm of `d`, if Berth supports it.
    pub fn of(d: &Digest) -> Option<Self> {
        match d.algorithm() {
            DigestAlgorithm::Sha256 => Some(Self::Sha256),
            DigestAlgorithm::Sha512 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    fn from_tag(t: u8) -> Option<Self> {
        match t {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Bytes per compression block.
    fn block_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    /// Bytes per state word.
    fn word_len(self) -> usize {
        match self {
            Self::Sha256 => 4,
            Self::Sha512 => 8,
        }
    }

    /// Bytes of the message-length field in the final block.
    fn length_len(self) -> usize {
        match self {
            Self::Sha256 => 8,
            Self::Sha512 => 16,
        }
    }

    fn iv(self) -> [u64; 8] {
        match self {
            Self::Sha256 => SHA256_IV.map(u64::from),
            Self::Sha512 => SHA512_IV,
        }
    }

    /// Runs the compression function over whole blocks (`blocks.len()` is
    /// a multiple of [`Self::block_len`]).
    fn compress(self, h: &mut [u64; 8], blocks: &[u8]) {
        match self {
            Self::Sha256 => {
                let (blocks, _) = blocks.as_chunks::<64>();
                // The words are 32-bit here; the truncation is exact.
                let mut s = h.map(|w| w as u32);
                sha2::block_api::compress256(&mut s, blocks);
                *h = s.map(u64::from);
            }
            Self::Sha512 => {
                let (blocks, _) = blocks.as_chunks::<128>();
                sha2::block_api::compress512(h, blocks);
            }
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses and validates a digest (`algorithm:encoded`): SHA-256 or SHA-512,
/// with the right length and lowercase hex.
pub fn parse_digest(s: &str) -> Result<Digest, String> {
    let d = s.parse::<Digest>().map_err(|e| e.to_string())?;
    match Algorithm::of(&d) {
        Some(_) => Ok(d),
        None => Err(format!(
            "digest algorithm {:?} is not supported; use sha256 or sha512",
            d.algorithm().as_ref()
        )),
    }
}

/// True when the digest uses SHA-256, the algorithm Berth names content by.
pub fn is_sha256(d: &Digest) -> bool {
    Algorithm::of(d) == Some(Algorithm::Sha256)
}

/// The SHA-256 digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_from_hash(Algorithm::Sha256, &sha2::Sha256::digest(bytes))
}

/// The digest of `bytes` with `alg`.
pub fn digest_bytes(alg: Algorithm, bytes: &[u8]) -> Digest {
    match alg {
        Algorithm::Sha256 => sha256_digest(bytes),
        Algorithm::Sha512 => digest_from_hash(alg, &sha2::Sha512::digest(bytes)),
    }
}

fn digest_from_hash(alg: Algorithm, hash: &[u8]) -> Digest {
    format!("{alg}:{}", hex::encode(hash))
        .parse()
        .unwrap_or_else(|_| unreachable!("a hash's lowercase hex always forms a digest"))
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// A resumable SHA-256 or SHA-512: the compression state plus the partial
/// block, serialisable between requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashState {
    alg: Algorithm,
    /// The eight state words (32-bit values for SHA-256).
    h: [u64; 8],
    tail: Vec<u8>,
    len: u64,
}

/// A saved state that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt saved hash state")]
pub struct CorruptState;

impl HashState {
    pub fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            h: alg.iv(),
            tail: Vec::with_capacity(alg.block_len()),
            len: 0,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        let block = self.alg.block_len();
        self.len = self.len.wrapping_add(data.len() as u64);
        if !self.tail.is_empty() {
            let take = (block - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < block {
                return;
            }
            self.alg.compress(&mut self.h, &self.tail);
            self.tail.clear();
        }
        let whole = data.len() - data.len() % block;
        if whole > 0 {
            self.alg.compress(&mut self.h, &data[..whole]);
        }
        self.tail.extend_from_slice(&data[whole..]);
    }

    /// The digest of everything hashed so far; the state stays usable.
    pub fn digest(&self) -> Digest {
        let (block, length_len) = (self.alg.block_len(), self.alg.length_len());
        let mut h = self.h;
        let mut last = self.tail.clone();
        last.push(0x80);
        while last.len() % block != block - length_len {
            last.push(0);
        }
        let bits = u128::from(self.len).wrapping_mul(8).to_be_bytes();
        last.extend_from_slice(&bits[16 - length_len..]);
        self.alg.compress(&mut h, &last);
        let word = self.alg.word_len();
        let out: Vec<u8> = h
            .iter()
            .flat_map(|w| w.to_be_bytes()[8 - word..].to_vec())
            .collect();
        digest_from_hash(self.alg, &out)
    }

    /// Serialises the state: the algorithm (1 byte), the eight words, the
    /// byte count (8 bytes), the tail.
    pub fn to_bytes(&self) -> Vec<u8> {
        let word = self.alg.word_len();
        let mut v = Vec::with_capacity(1 + 8 * word + 8 + self.tail.len());
        v.push(self.alg.tag());
        for w in self.h {
            v.extend_from_slice(&w.to_be_bytes()[8 - word..]);
        }
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.tail);
        v
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, CorruptState> {
        let (&tag, rest) = b.split_first().ok_or(CorruptState)?;
        let alg = Algorithm::from_tag(tag).ok_or(CorruptState)?;
        let word = alg.word_len();
        let head = 8 * word + 8;
        if rest.len() < head || rest.len() >= head + alg.block_len() {
            return Err(CorruptState);
        }
        let mut h = [0u64; 8];
        for (w, c) in h.iter_mut().zip(rest[..8 * word].chunks_exact(word)) {
            let mut be = [0u8; 8];
            be[8 - word..].copy_from_slice(c);
            *w = u64::from_be_bytes(be);
        }
        let len_bytes: [u8; 8] = rest[8 * word..head].try_into().map_err(|_| CorruptState)?;
        let len = u64::from_be_bytes(len_bytes);
        let tail = rest[head..].to_vec();
        if len % alg.block_len() as u64 != tail.len() as u64 {
            return Err(CorruptState);
        }
        Ok(Self { alg, h, tail, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            HashState::new(Algorithm::Sha256).digest().to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut s = HashState::new(Algorithm::Sha256);
        s.update(b"abc");
        assert_eq!(
            s.digest().to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut s = HashState::new(Algorithm::Sha512);
        s.update(b"abc");
        assert_eq!(
            s.digest().to_string(),
            "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn corrupt_states_are_refused() {
        assert!(HashState::from_bytes(&[]).is_err());
        assert!(HashState::from_bytes(&[1; 43]).is_err());
        assert!(HashState::from_bytes(&[1; 200]).is_err());
        assert!(HashState::from_bytes(&[9; 41]).is_err());
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            assert!(HashState::from_bytes(&HashState::new(alg).to_bytes()).is_ok());
        }
    }

    #[test]
    fn digests_parse_strictly() {
        assert!(parse_digest(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(parse_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(parse_digest("sha256:abc").is_err());
        assert!(parse_digest("sha256").is_err());
        assert!(parse_digest(":abc").is_err());
        assert!(parse_digest(&format!("sha256:{}", "G".repeat(64))).is_err());
        // Unregistered algorithms: unverifiable, and unbounded in length.
        assert!(parse_digest("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
        assert!(parse_digest(&format!("foo:{}", "a".repeat(2000))).is_err());
    }

    proptest! {
        #[test]
        fn resumed_hash_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..1200),
                                        cuts in proptest::collection::vec(0usize..1200, 0..6),
                                        sha512 in any::<bool>()) {
            let alg = if sha512 { Algorithm::Sha512 } else { Algorithm::Sha256 };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut state = HashState::new(alg);
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                state.update(&data[prev..c]);
                // Every chunk boundary is a request boundary: save and restore.
                state = HashState::from_bytes(&state.to_bytes()).unwrap();
                prev = c;
            }
            prop_assert_eq!(state.digest(), digest_bytes(alg, &data));
        }

        #[test]
        fn digest_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_digest(&s);
        }

        #[test]
        fn state_decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = HashState::from_bytes(&b);
        }
    }
}
