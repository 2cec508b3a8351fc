//! Building OCI images and image layouts on disk from scratch, and reading
//! layouts back. Everything (tar, gzip, JSON) is produced here byte by byte,
//! so a test knows the exact digests a registry must preserve.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::rng::Rng;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Accept header value covering every manifest type in use.
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Content plus its media type and digest.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: digest_of(&bytes),
            bytes,
        }
    }

    /// A JSON document serialized compactly (keys sorted).
    pub fn json(media_type: &str, value: &Value) -> Self {
        Self::new(
            media_type,
            serde_json::to_vec(value).expect("serializing JSON cannot fail"),
        )
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size(),
        })
    }
}

/// A single-platform image: config, layers and manifest.
#[derive(Clone, Debug)]
pub struct Image {
    pub os: String,
    pub architecture: String,
    pub config: Blob,
    pub layers: Vec<Blob>,
    /// Digests of the uncompressed layer tars, as listed in the config.
    pub diff_ids: Vec<String>,
    pub manifest: Blob,
}

impl Image {
    /// A linux image for `architecture` with two small random layers: one
    /// plain tar and one gzip'd tar, each holding one file of random bytes.
    pub fn random(architecture: &str, rng: &mut Rng) -> Self {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, media_type) in [OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP].into_iter().enumerate() {
            let size = rng.range(4 * 1024, 64 * 1024);
            let content = rng.bytes(size);
            let tar = tar(&[
                TarEntry::Dir("e2e/".to_owned()),
                TarEntry::File(format!("e2e/{architecture}-layer{i}.bin"), content),
            ]);
            diff_ids.push(digest_of(&tar));
            let bytes = if media_type == OCI_LAYER_TAR_GZIP {
                gzip_stored(&tar)
            } else {
                tar
            };
            layers.push(Blob::new(media_type, bytes));
        }
        let config = Blob::json(
            OCI_CONFIG,
            &json!({
                "created": "2024-01-01T00:00:00Z",
                "architecture": architecture,
                "os": "linux",
                "config": {
                    "Env": ["PATH=/"],
                    "Labels": { "org.berth.e2e.nonce": rng.hex(16) },
                },
                "rootfs": { "type": "layers", "diff_ids": diff_ids },
                "history": diff_ids.iter().enumerate().map(|(i, _)| json!({
                    "created": "2024-01-01T00:00:00Z",
                    "created_by": format!("berth-e2e layer {i}"),
                })).collect::<Vec<_>>(),
            }),
        );
        let manifest = Blob::json(
            OCI_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
            }),
        );
        Self {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            config,
            layers,
            diff_ids,
            manifest,
        }
    }

    /// Every blob the manifest references (config first).
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// The manifest descriptor with this image's platform.
    pub fn platform_descriptor(&self) -> Value {
        let mut desc = self.manifest.descriptor();
        desc["platform"] = json!({ "architecture": self.architecture, "os": self.os });
        desc
    }
}

/// A multi-platform image index over some images.
#[derive(Clone, Debug)]
pub struct Index {
    pub images: Vec<Image>,
    pub manifest: Blob,
}

impl Index {
    pub fn new(images: Vec<Image>) -> Self {
        let manifest = Blob::json(
            OCI_INDEX,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": images.iter().map(Image::platform_descriptor).collect::<Vec<_>>(),
            }),
        );
        Self { images, manifest }
    }

    /// A linux index for the given architectures, each a random image.
    pub fn random(architectures: &[&str], rng: &mut Rng) -> Self {
        Self::new(
            architectures
                .iter()
                .map(|arch| Image::random(arch, rng))
                .collect(),
        )
    }
}

/// An OCI image layout directory being written.
pub struct OciLayout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    /// Creates `dir` (and `oci-layout`, `blobs/sha256/`).
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("cannot create the layout dir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("cannot write oci-layout");
        let layout = Self {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        };
        layout.write_index();
        layout
    }

    pub fn put_blob(&self, blob: &Blob) {
        let path = blob_path(&self.dir, &blob.digest);
        std::fs::write(&path, &blob.bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Writes the image's blobs and manifest, and names it `tag`.
    pub fn add_image(&mut self, image: &Image, tag: &str) {
        self.put_image_blobs(image);
        self.add_ref(&image.manifest, tag);
    }

    /// Writes the index, all its images, and names the index `tag`.
    pub fn add_index(&mut self, index: &Index, tag: &str) {
        for image in &index.images {
            self.put_image_blobs(image);
        }
        self.put_blob(&index.manifest);
        self.add_ref(&index.manifest, tag);
    }

    fn put_image_blobs(&self, image: &Image) {
        for blob in image.blobs() {
            self.put_blob(blob);
        }
        self.put_blob(&image.manifest);
    }

    fn add_ref(&mut self, manifest: &Blob, tag: &str) {
        let mut desc = manifest.descriptor();
        desc["annotations"] = json!({ REF_NAME: tag });
        self.refs.push(desc);
        self.write_index();
    }

    fn write_index(&self) {
        let index = json!({ "schemaVersion": 2, "manifests": self.refs });
        let bytes = serde_json::to_vec_pretty(&index).expect("serializing JSON cannot fail");
        std::fs::write(self.dir.join("index.json"), bytes).expect("cannot write index.json");
    }

    /// `oci:<dir>:<tag>` for skopeo.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

/// Path of a blob inside a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(algorithm).join(hex)
}

/// Reads a blob of a layout; panics with the path if it is absent.
pub fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = blob_path(layout, digest);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read blob {}: {e}", path.display()))
}

/// The descriptor in a layout's `index.json` named `tag`.
pub fn resolve_tag(layout: &Path, tag: &str) -> Value {
    let path = layout.join("index.json");
    let text =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let index: Value = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["annotations"][REF_NAME] == tag)
        .cloned()
        .unwrap_or_else(|| panic!("no manifest named {tag:?} in {}: {index}", path.display()))
}

/// An entry of a tar archive built by [`tar`].
pub enum TarEntry {
    Dir(String),
    File(String, Vec<u8>),
}

/// A POSIX ustar archive of the entries (root-owned, fixed mtime).
pub fn tar(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (name, mode, kind, data): (&str, u32, u8, &[u8]) = match entry {
            TarEntry::Dir(name) => (name, 0o755, b'5', &[]),
            TarEntry::File(name, data) => (name, 0o644, b'0', data),
        };
        assert!(name.len() < 100, "tar entry name too long: {name}");
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        put_octal(&mut header[100..108], u64::from(mode));
        put_octal(&mut header[108..116], 0);
        put_octal(&mut header[116..124], 0);
        put_octal(&mut header[124..136], data.len() as u64);
        put_octal(&mut header[136..148], 1_704_067_200); // 2024-01-01
        header[148..156].fill(b' ');
        header[156] = kind;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[265..269].copy_from_slice(b"root");
        header[297..301].copy_from_slice(b"root");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        let checksum = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(checksum.as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Writes `value` as zero-padded octal with a trailing NUL into `field`.
fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

/// A valid gzip stream of `data` using deflate "stored" (uncompressed)
/// blocks: real gzip framing and CRC without needing a compressor.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        out.push(u8::from(last));
        let len = u16::try_from(block.len()).expect("blocks are at most 65535 bytes");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE), as gzip uses.
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn tar_is_block_aligned_with_valid_checksum() {
        let t = tar(&[TarEntry::File("a.txt".to_owned(), b"hello".to_vec())]);
        assert_eq!(t.len() % 512, 0);
        assert_eq!(t.len(), 512 + 512 + 1024);
        let mut header = t[..512].to_vec();
        let stored = String::from_utf8_lossy(&header[148..154]).into_owned();
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(&stored, 8).unwrap(), sum);
    }
}
