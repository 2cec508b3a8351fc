//! Signed, expiring upload-session tokens (DESIGN §4, "upload gateway").
//!
//! When an upload starts on the Lambda API, its `Location` points at the
//! upload gateway and carries `_state=<token>`: the repository, the upload
//! id and an expiry, signed with HMAC-SHA256 under a key the API and the
//! gateway share. The gateway accepts upload requests only with a valid
//! token for that very repository and upload, so no credential has to
//! follow the client there. Tokens are refreshed on every response.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Query parameter that carries the token.
pub const STATE_PARAM: &str = "_state";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadTokenError {
    #[error("upload token is malformed")]
    Malformed,
    #[error("upload token signature is invalid")]
    BadSignature,
    #[error("upload token has expired")]
    Expired,
    #[error("upload token is for another upload")]
    WrongUpload,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Repository.
    r: String,
    /// Upload id.
    u: String,
    /// Expiry, epoch seconds.
    e: i64,
}

/// Issues and checks upload tokens with one secret key.
#[derive(Clone)]
pub struct UploadSigner {
    key: Vec<u8>,
    ttl_secs: i64,
}

impl std::fmt::Debug for UploadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("UploadSigner")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl UploadSigner {
    /// A signer; `key` should be at least 32 random bytes.
    pub fn new(key: &[u8], ttl_secs: i64) -> Self {
        Self {
            key: key.to_vec(),
            ttl_secs,
        }
    }

    /// A token for `repo`'s upload `id`, valid from `now` for the TTL.
    pub fn issue(&self, repo: &str, id: &str, now: i64) -> String {
        let claims = Claims {
            r: repo.to_owned(),
            u: id.to_owned(),
            e: now + self.ttl_secs,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, payload.as_bytes()));
        format!("{payload}.{sig}")
    }

    /// Checks a token for `repo`'s upload `id` at time `now`.
    pub fn verify(
        &self,
        token: &str,
        repo: &str,
        id: &str,
        now: i64,
    ) -> Result<(), UploadTokenError> {
        let (payload, sig) = token.split_once('.').ok_or(UploadTokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| UploadTokenError::Malformed)?;
        if !constant_time_eq(&sig, &hmac_sha256(&self.key, payload.as_bytes())) {
            return Err(UploadTokenError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| UploadTokenError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&json).map_err(|_| UploadTokenError::Malformed)?;
        if claims.e <= now {
            return Err(UploadTokenError::Expired);
        }
        if claims.r != repo || claims.u != id {
            return Err(UploadTokenError::WrongUpload);
        }
        Ok(())
    }
}

/// Where a secret key comes from when it is not in the configuration
/// itself (e.g. Secrets Manager, read by ARN).
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync + 'static {
    /// The secret's value. Called once per process, on first use.
    async fn fetch(&self) -> Result<String, String>;
}

/// The upload-token key: given directly, or read from a [`SecretSource`]
/// the first time a token is issued or checked — never at start-up, so a
/// Lambda function's cold start makes no network call for it. A failed
/// read is tried again on the next request.
#[derive(Clone)]
pub struct UploadKey {
    ready: std::sync::Arc<tokio::sync::OnceCell<UploadSigner>>,
    source: Option<std::sync::Arc<dyn SecretSource>>,
    ttl_secs: i64,
}

impl std::fmt::Debug for UploadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadKey")
            .field("loaded", &self.ready.initialized())
            .finish_non_exhaustive()
    }
}

/// Shortest accepted key, in bytes.
pub const MIN_KEY_LEN: usize = 32;

fn checked_key(secret: &str) -> Result<&[u8], String> {
    if secret.len() < MIN_KEY_LEN {
        Err(format!(
            "the upload-token key must be at least {MIN_KEY_LEN} characters"
        ))
    } else {
        Ok(secret.as_bytes())
    }
}

impl UploadKey {
    /// A key given directly (at least [`MIN_KEY_LEN`] characters).
    pub fn fixed(secret: &str, ttl_secs: i64) -> Result<Self, String> {
        Ok(Self::from_signer(UploadSigner::new(
            checked_key(secret)?,
            ttl_secs,
        )))
    }

    pub fn from_signer(signer: UploadSigner) -> Self {
        let ttl_secs = signer.ttl_secs;
        Self {
            ready: std::sync::Arc::new(tokio::sync::OnceCell::new_with(Some(signer))),
            source: None,
            ttl_secs,
        }
    }

    /// A key read from `source` on first use.
    pub fn from_source(source: std::sync::Arc<dyn SecretSource>, ttl_secs: i64) -> Self {
        Self {
            ready: std::sync::Arc::new(tokio::sync::OnceCell::new()),
            source: Some(source),
            ttl_secs,
        }
    }

    /// The signer, reading the key first if needed.
    pub async fn signer(&self) -> Result<&UploadSigner, String> {
        self.ready
            .get_or_try_init(|| async {
                let source = self
                    .source
                    .as_ref()
                    .ok_or_else(|| "no upload-token key is configured".to_owned())?;
                let secret = source.fetch().await?;
                Ok(UploadSigner::new(checked_key(&secret)?, self.ttl_secs))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Counting(std::sync::atomic::AtomicUsize, &'static str);

    #[async_trait::async_trait]
    impl SecretSource for Counting {
        async fn fetch(&self) -> Result<String, String> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                Err("the secret store is unreachable".to_owned())
            } else {
                Ok(self.1.to_owned())
            }
        }
    }

    #[tokio::test]
    async fn keys_from_a_source_load_once_and_retry_failures() {
        let source = std::sync::Arc::new(Counting(
            std::sync::atomic::AtomicUsize::new(0),
            "0123456789abcdef0123456789abcdef",
        ));
        let key = UploadKey::from_source(source.clone(), 60);
        assert!(key.signer().await.is_err(), "the first read fails");
        let token = key.signer().await.unwrap().issue("r", "u", 0);
        let fixed = UploadKey::fixed("0123456789abcdef0123456789abcdef", 60).unwrap();
        assert!(
            fixed
                .signer()
                .await
                .unwrap()
                .verify(&token, "r", "u", 1)
                .is_ok()
        );
        key.signer().await.unwrap();
        assert_eq!(source.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(UploadKey::fixed("short", 60).is_err());
        let short = UploadKey::from_source(
            std::sync::Arc::new(Counting(std::sync::atomic::AtomicUsize::new(1), "short")),
            60,
        );
        assert!(short.signer().await.is_err());
    }

    fn signer() -> UploadSigner {
        UploadSigner::new(b"0123456789abcdef0123456789abcdef", 3600)
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn issued_tokens_verify_for_their_upload_only() {
        let s = signer();
        let t = s.issue("lib/app", "abc", 1000);
        assert_eq!(s.verify(&t, "lib/app", "abc", 1001), Ok(()));
        assert_eq!(
            s.verify(&t, "lib/app", "abd", 1001),
            Err(UploadTokenError::WrongUpload)
        );
        assert_eq!(
            s.verify(&t, "lib/other", "abc", 1001),
            Err(UploadTokenError::WrongUpload)
        );
        assert_eq!(
            s.verify(&t, "lib/app", "abc", 4600),
            Err(UploadTokenError::Expired)
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        let s = signer();
        let t = s.issue("r", "id", 0);
        let other = UploadSigner::new(b"another key entirely, 32 bytes!!", 3600);
        assert_eq!(
            other.verify(&t, "r", "id", 1),
            Err(UploadTokenError::BadSignature)
        );
        let (_, sig) = t.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"r":"r","u":"id","e":99999999999}"#);
        assert_eq!(
            s.verify(&format!("{forged_payload}.{sig}"), "r", "id", 1),
            Err(UploadTokenError::BadSignature)
        );
        assert_eq!(
            s.verify("garbage", "r", "id", 1),
            Err(UploadTokenError::Malformed)
        );
        assert!(!format!("{s:?}").contains("0123"));
    }

    proptest! {
        #[test]
        fn verify_never_panics(t in "\\PC{0,120}") {
            let _ = signer().verify(&t, "r", "id", 0);
        }
    }
}
