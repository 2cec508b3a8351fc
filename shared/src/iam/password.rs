//! Passwords (argon2id) and robot secrets.
//!
//! Passwords are hashed with argon2id (19 MiB, 2 passes, 1 lane: OWASP's
//! recommended minimum) into a PHC string. A check for an unknown user still
//! runs one verification against a fixed hash, so the time an answer takes
//! does not tell which user names exist. Robot secrets are 32 random
//! characters (≈190 bits): a slow hash adds nothing to such a secret, so
//! they are stored as SHA-256 and compared in constant time.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

fn argon() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    argon()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing a password failed: {e}"))
}

/// Checks a password against a stored PHC hash (constant time in the
/// password; a malformed hash never matches).
pub fn verify_password(password: &str, hash: &str) -> bool {
    argon().verify_password(password.as_bytes(), hash).is_ok()
}

/// Spends the time of one verification, for an unknown principal.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not a real password 1A").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// Harbor's password rules: 8 to 128 characters with at least one
/// uppercase letter, one lowercase letter and one digit.
pub fn check_password_rules(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    let ok = (8..=128).contains(&n)
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(
            "the password must be 8 to 128 characters long with at least one uppercase \
             letter, one lowercase letter and one number",
        )
    }
}

/// A new robot secret: 32 characters from `[A-Za-z0-9]` (as Harbor's).
pub fn new_robot_secret() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// The stored form of a robot secret.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored digest in constant time.
pub fn secret_matches(secret: &str, digest: &str) -> bool {
    let presented = secret_digest(secret);
    presented.as_bytes().ct_eq(digest.as_bytes()).into()
}

/// A random opaque identifier (session ids, CSRF tokens): 256 bits.
pub fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("Secret123").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("Secret123", &h));
        assert!(!verify_password("Secret124", &h));
        assert!(!verify_password("Secret123", "garbage"));
    }

    #[test]
    fn harbor_rules() {
        assert!(check_password_rules("Harbor12345").is_ok());
        for bad in ["short1A", "alllowercase1", "ALLUPPER1", "NoDigitsHere"] {
            assert!(check_password_rules(bad).is_err(), "{bad}");
        }
        assert!(check_password_rules(&format!("Aa1{}", "x".repeat(126))).is_err());
    }

    #[test]
    fn robot_secrets() {
        let s = new_robot_secret();
        assert_eq!(s.len(), 32);
        let d = secret_digest(&s);
        assert!(secret_matches(&s, &d));
        assert!(!secret_matches("wrong", &d));
    }
}
