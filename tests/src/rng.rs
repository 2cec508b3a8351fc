//! A small, fast pseudo-random generator (SplitMix64) for test data.
//! Not cryptographic; its output is incompressible, which is all we need.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the clock, the process id and a counter, so
    /// every call in every test gets different data.
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::with_seed(nanos ^ (u64::from(std::process::id()) << 32) ^ count.rotate_left(17))
    }

    pub fn with_seed(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.fill(&mut buf);
        buf
    }

    /// A number in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    /// `len` lowercase hex characters.
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = hex::encode(self.bytes(len.div_ceil(2)));
        s.truncate(len);
        s
    }

    /// Writes `size` random bytes to `path`; returns their sha256 (hex).
    pub fn write_file(&mut self, path: &Path, size: u64) -> std::io::Result<String> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            self.fill(&mut buf[..n]);
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            left -= n as u64;
        }
        file.flush()?;
        Ok(hex::encode(hasher.finalize()))
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}
