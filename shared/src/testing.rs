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

/// The token seed the function tests give the `token` function.
pub const TEST_TOKEN_SEED: &str = "berth function tests token seed 0123456789";
/// The bootstrap admin password of the function tests.
pub const TEST_ADMIN_PASSWORD: &str = "Harbor12345";

/// The keys derived from [`TEST_TOKEN_SEED`].
pub fn test_keys() -> crate::iam::KeyRing {
    crate::iam::KeyRing::from_seeds(&[TEST_TOKEN_SEED]).expect("the test seed is long enough")
}

/// The identity settings of the function binaries under test: the signing
/// seed (token), the admin password (token, admin) and the public keys
/// (registry functions, which then need no published key set).
pub fn identity_env() -> Vec<(String, String)> {
    let jwks = serde_json::to_string(&test_keys().jwks()).unwrap_or_default();
    vec![
        ("BERTH_TOKEN_KEYS".to_owned(), TEST_TOKEN_SEED.to_owned()),
        (
            "BERTH_ADMIN_PASSWORD".to_owned(),
            TEST_ADMIN_PASSWORD.to_owned(),
        ),
        ("BERTH_TOKEN_PUBLIC_KEYS".to_owned(), jwks),
    ]
}

/// `Bearer <token>` granting `actions` on repository `name`, signed with
/// [`test_keys`].
pub fn test_bearer(name: &str, actions: &[&str]) -> String {
    use crate::iam::token::{ResourceActions, TokenUse, new_claims};
    let claims = new_claims(
        crate::iam::token::DEFAULT_SERVICE,
        "admin",
        vec![ResourceActions {
            kind: "repository".to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }],
        TokenUse::Access,
        crate::store::now_secs(),
        600,
    );
    format!("Bearer {}", test_keys().sign(&claims).unwrap_or_default())
}
