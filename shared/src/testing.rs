//! Test fixtures shared by the crates of this workspace (feature
//! `contract`): the AWS emulator, started the way users start it.

use std::path::PathBuf;
use std::process::Command;

/// A moto server with Berth's table, bucket and queues, started by
/// `localstack/moto-up` in a private state directory and stopped (by
/// `localstack/moto-down`) when dropped.
pub struct MotoUp {
    dir: PathBuf,
    /// The environment that points Berth at it (`METADATA_TABLE`,
    /// `BLOB_BUCKET`, `AWS_ENDPOINT_URL`, credentials, …).
    pub env: Vec<(String, String)>,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../localstack")
        .join(name)
}

impl MotoUp {
    pub fn start() -> Result<Self, String> {
        let dir =
            std::env::temp_dir().join(format!("berth-moto-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // Owned from here on: dropped (and moto stopped) on every error.
        let mut up = Self {
            dir,
            env: Vec::new(),
        };
        let out = Command::new("bash")
            .arg(script("moto-up"))
            .env("BERTH_MOTO_DIR", &up.dir)
            .output()
            .map_err(|e| format!("moto-up: {e}"))?;
        if !out.status.success() {
            return Err(format!("moto-up: {}", String::from_utf8_lossy(&out.stderr)));
        }
        up.env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Ok(up)
    }

    /// One variable of [`Self::env`].
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Drop for MotoUp {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("moto-down"))
            .env("BERTH_MOTO_DIR", &self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
