//! Registry tokens (the Docker token protocol): ES256 JWTs carrying the
//! granted `access`, signed by the token service and verified by the
//! registry with the public keys alone (DESIGN §4, §10).
//!
//! Keys are derived from secret seeds: a seed (any string of at least 32
//! bytes, from the data dir locally or from the `token` function's secret in
//! AWS) is run through SHA-256 with a label into a P-256 private scalar.
//! So AWS needs no key-generation step — the template's random secret is
//! the seed — and rotation is "put a new seed first": every seed still
//! listed stays valid for verification, each under its own `kid` (a
//! fingerprint of the public key).
//!
//! Verification is cached by a SHA-256 of the token until the token
//! expires (bounded), so the hot path pays one hash and one map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The `aud` of every token (the `service` clients name).
pub const DEFAULT_SERVICE: &str = "berth-registry";
/// The `iss` of every token.
pub const ISSUER: &str = "berth-token-service";
/// Access tokens live this long (Harbor's default is 30 minutes).
pub const ACCESS_TOKEN_TTL_SECS: i64 = 1800;
/// Refresh tokens (OAuth2 `offline_token`) live this long.
pub const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// How often a verifier re-reads the published public keys.
const RELOAD_EVERY_SECS: i64 = 300;
/// The least time between two re-reads for an unknown key id.
const RELOAD_UNKNOWN_AFTER_SECS: i64 = 10;
/// Verified tokens kept in the cache at most.
const CACHE_MAX: usize = 16_384;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("signing key: {0}")]
    Key(String),
}

/// One `access` entry: `{type, name, actions}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// A requested scope: `type[(class)]:name:action,action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one `scope` parameter (names may contain `:`, as in a
    /// `host:port/repo`: the type ends at the first colon, the actions
    /// start after the last).
    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
        if kind.is_empty() || name.is_empty() || s.len() > 1024 {
            return None;
        }
        let actions: Vec<String> = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    pub fn to_string_form(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    Access,
    Refresh,
}

/// The claims of Berth's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The principal: a user name, a robot's full name, or `""` (anonymous).
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceActions>,
    /// Access or refresh; a token without it is refused.
    #[serde(rename = "use")]
    pub token_use: TokenUse,
    /// Refresh tokens: the principal's credential generation when issued
    /// (a password change or secret refresh invalidates them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<i64>,
    /// Projects the request named that do not exist (signed-in callers
    /// only): the registry answers `NAME_UNKNOWN` "project … not found"
    /// for them rather than a bare denial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl Claims {
    /// Whether the token grants `action` on `kind:name`.
    pub fn grants(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

/// A public key as a JWK (`kty: EC`, `crv: P-256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub kid: String,
    pub x: String,
    pub y: String,
}

/// A signing key derived from a seed.
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The order of P-256's group (big-endian): scalars must be below it.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

impl SigningKey {
    /// Derives the key pair from a seed of at least 32 bytes.
    pub fn from_seed(seed: &str) -> Result<SigningKey, TokenError> {
        if seed.len() < 32 {
            return Err(TokenError::Key(
                "a token signing seed has at least 32 characters".to_owned(),
            ));
        }
        // SHA-256(label ‖ counter ‖ seed) until the value is a valid
        // scalar (1 ≤ d < n); the first try fails with probability ~2⁻³².
        let mut counter = 0u8;
        let scalar = loop {
            let mut h = Sha256::new();
            h.update(b"berth token signing key v1");
            h.update([counter]);
            h.update(seed.as_bytes());
            let d: [u8; 32] = h.finalize().into();
            if d < P256_ORDER && d != [0u8; 32] {
                break d;
            }
            counter = counter.wrapping_add(1);
        };
        // RFC 5915 ECPrivateKey { version 1, privateKey, [0] prime256v1 }.
        let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
        der.extend_from_slice(&scalar);
        der.extend_from_slice(&[
            0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
        ]);
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| TokenError::Key("cannot encode the key".to_owned()))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(TokenError::Key("unexpected public key encoding".to_owned()));
        }
        let kid = B64URL.encode(&Sha256::digest(point)[..15]);
        let jwk = Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            kid: kid.clone(),
            x: B64URL.encode(&point[1..33]),
            y: B64URL.encode(&point[33..65]),
        };
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        })
    }
}

/// The keys of the token service: the first signs, all verify.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

/// The JSON form of a key file or secret: `{"seeds": ["…", "…"]}`, newest
/// (signing) first. A secret may also hold one bare seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct SeedFile {
    pub seeds: Vec<String>,
}

impl KeyRing {
    pub fn from_seeds<S: AsRef<str>>(seeds: &[S]) -> Result<KeyRing, TokenError> {
        if seeds.is_empty() {
            return Err(TokenError::Key("no signing seed".to_owned()));
        }
        let keys = seeds
            .iter()
            .map(|s| SigningKey::from_seed(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing { keys })
    }

    /// Reads a secret's text: the JSON [`SeedFile`] or one bare seed.
    pub fn from_secret_text(text: &str) -> Result<KeyRing, TokenError> {
        let text = text.trim();
        match serde_json::from_str::<SeedFile>(text) {
            Ok(f) => KeyRing::from_seeds(&f.seeds),
            Err(_) if !text.starts_with('{') => KeyRing::from_seeds(&[text]),
            Err(e) => Err(TokenError::Key(format!("key file: {e}"))),
        }
    }

    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(|k| k.jwk.clone()).collect()
    }

    fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let key = self.signing();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))
    }
}

/// Where a verifier finds public keys it has not seen (a rotation).
#[async_trait::async_trait]
pub trait PublicKeySource: Send + Sync {
    async fn load(&self) -> Result<Vec<Jwk>, String>;
}

struct CacheEntry {
    claims: Arc<Claims>,
    exp: i64,
}

/// Verifies tokens with public keys only, and caches what it verified.
pub struct Verifier {
    service: String,
    /// The keys given at construction (a process's own key ring): always kept.
    own: Vec<Jwk>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    source: Option<Arc<dyn PublicKeySource>>,
    /// When the source was last read (epoch seconds): at most every 10 s.
    last_reload: Mutex<i64>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(service: &str, jwks: &[Jwk], source: Option<Arc<dyn PublicKeySource>>) -> Self {
        let v = Self {
            service: service.to_owned(),
            own: jwks.to_vec(),
            keys: RwLock::new(HashMap::new()),
            source,
            last_reload: Mutex::new(i64::MIN),
            cache: Mutex::new(HashMap::new()),
        };
        v.install(&[]);
        v
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Replaces the published keys with `published` (plus the process's
    /// own): a key dropped from the token service's set stops verifying.
    fn install(&self, published: &[Jwk]) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.clear();
        for k in self.own.iter().chain(published) {
            if k.kty == "EC"
                && k.crv == "P-256"
                && let Ok(d) = DecodingKey::from_ec_components(&k.x, &k.y)
            {
                keys.insert(k.kid.clone(), d);
            }
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// Verifies an access token for this service at `now`.
    pub async fn verify_access(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenError> {
        let id: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cached(&id, now) {
            return Ok(hit);
        }
        let claims = self.verify(token, now).await?;
        if claims.token_use != TokenUse::Access {
            return Err(TokenError::Invalid("not an access token".to_owned()));
        }
        let claims = Arc::new(claims);
        self.remember(id, &claims, now);
        Ok(claims)
    }

    fn cached(&self, id: &[u8; 32], now: i64) -> Option<Arc<Claims>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let e = cache.get(id)?;
        // The cache is only a shortcut: nbf was checked when it was filled
        // and only exp can newly fail.
        (e.exp > now).then(|| e.claims.clone())
    }

    fn remember(&self, id: [u8; 32], claims: &Arc<Claims>, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, e| e.exp > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(
            id,
            CacheEntry {
                claims: claims.clone(),
                exp: claims.exp,
            },
        );
    }

    /// Verifies signature, algorithm, issuer, audience and times (no
    /// cache): for access and refresh tokens alike.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid(
                "only ES256 tokens are accepted".to_owned(),
            ));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        // The published set is re-read when a token names a key not seen
        // yet (a rotation; at most every 10 s) and every 5 minutes (so a
        // dropped key stops verifying).
        self.reload(now, RELOAD_EVERY_SECS).await;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.reload(now, RELOAD_UNKNOWN_AFTER_SECS).await;
                self.key(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[&self.service]);
        v.set_issuer(&[ISSUER]);
        // Times are checked below against the caller's clock (one clock
        // for the cache and the check; tests drive it).
        v.validate_exp = false;
        v.validate_nbf = false;
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let c = data.claims;
        if c.exp <= now || c.nbf > now {
            return Err(TokenError::Invalid(
                "token is expired or not yet valid".to_owned(),
            ));
        }
        Ok(c)
    }

    async fn reload(&self, now: i64, min_age: i64) {
        let Some(source) = &self.source else { return };
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
            if now.saturating_sub(*last) < min_age {
                return;
            }
            *last = now;
        }
        match source.load().await {
            Ok(jwks) => self.install(&jwks),
            Err(e) => tracing::warn!(error = %e, "reading the token public keys failed"),
        }
    }
}

/// Builds claims for a new token.
pub fn new_claims(
    service: &str,
    sub: &str,
    access: Vec<ResourceActions>,
    token_use: TokenUse,
    now: i64,
    ttl: i64,
) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        sub: sub.to_owned(),
        aud: service.to_owned(),
        exp: now + ttl,
        nbf: now - 1,
        iat: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        access,
        token_use,
        cred: None,
        missing: Vec::new(),
    }
}

/// A fresh random seed (local key files).
pub fn random_seed() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    B64URL.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "0123456789abcdef0123456789abcdef-test";

    fn ring() -> KeyRing {
        KeyRing::from_seeds(&[SEED]).expect("ring")
    }

    fn claims(now: i64) -> Claims {
        new_claims(
            DEFAULT_SERVICE,
            "alice",
            vec![ResourceActions {
                kind: "repository".into(),
                name: "p/app".into(),
                actions: vec!["pull".into()],
            }],
            TokenUse::Access,
            now,
            60,
        )
    }

    #[tokio::test]
    async fn signs_and_verifies_with_the_public_key_only() {
        let r = ring();
        let now = 1_700_000_000;
        let t = r.sign(&claims(now)).expect("sign");
        let v = Verifier::new(DEFAULT_SERVICE, &r.jwks(), None);
        let c = v.verify_access(&t, now).await.expect("verify");
        assert!(c.grants("repository", "p/app", "pull"));
        assert!(!c.grants("repository", "p/app", "push"));
        assert!(!c.grants("repository", "p/other", "pull"));
        // Cached, and the cache still honours expiry.
        assert!(v.verify_access(&t, now + 1).await.is_ok());
        assert!(v.verify_access(&t, now + 61).await.is_err());
    }

    #[test]
    fn derivation_is_deterministic_and_seed_specific() {
        let a = SigningKey::from_seed(SEED).expect("a");
        let b = SigningKey::from_seed(SEED).expect("b");
        let c = SigningKey::from_seed("another seed that is long enough!!").expect("c");
        assert_eq!(a.jwk, b.jwk);
        assert_ne!(a.kid, c.kid);
        assert!(SigningKey::from_seed("short").is_err());
    }

    #[tokio::test]
    async fn refuses_foreign_keys_and_wrong_audience() {
        let now = 1_700_000_000;
        let t = ring().sign(&claims(now)).expect("sign");
        let other = KeyRing::from_seeds(&["another seed that is long enough!!"]).expect("o");
        let v = Verifier::new(DEFAULT_SERVICE, &other.jwks(), None);
        assert_eq!(
            v.verify_access(&t, now).await.unwrap_err(),
            TokenError::UnknownKey
        );
        let v = Verifier::new("elsewhere", &ring().jwks(), None);
        assert!(v.verify_access(&t, now).await.is_err());
    }

    /// Keys published in turn: old only, new + old, new only.
    struct Published(std::sync::Mutex<Vec<Jwk>>);

    #[async_trait::async_trait]
    impl PublicKeySource for Published {
        async fn load(&self) -> Result<Vec<Jwk>, String> {
            Ok(self.0.lock().expect("lock").clone())
        }
    }

    #[tokio::test]
    async fn rotation_keeps_both_keys_valid_then_drops_the_old_one() {
        const NEW: &str = "the new seed, long enough for a key!!";
        let old = ring();
        let both = KeyRing::from_seeds(&[NEW, SEED]).expect("both");
        let new = KeyRing::from_seeds(&[NEW]).expect("new");
        let published = Arc::new(Published(std::sync::Mutex::new(old.jwks())));
        let v = Verifier::new(DEFAULT_SERVICE, &[], Some(published.clone()));
        let mut now = 1_700_000_000;
        let by_old = old.sign(&claims(now)).expect("old");
        assert!(v.verify(&by_old, now).await.is_ok());
        // Rotation: the new key signs, the old one still verifies.
        *published.0.lock().expect("lock") = both.jwks();
        now += 20;
        let by_new = both.sign(&claims(now)).expect("new");
        assert!(
            v.verify(&by_new, now).await.is_ok(),
            "a new kid is looked up"
        );
        assert!(v.verify(&by_old, now).await.is_ok());
        // The old seed is dropped: after the next periodic re-read, its
        // tokens no longer verify.
        *published.0.lock().expect("lock") = new.jwks();
        now += RELOAD_EVERY_SECS + 1;
        let mut c = claims(now);
        c.exp = now + 60;
        let fresh_old = old.sign(&c).expect("old");
        assert_eq!(
            v.verify(&fresh_old, now).await.unwrap_err(),
            TokenError::UnknownKey
        );
        assert!(v.verify(&new.sign(&c).expect("new"), now).await.is_ok());
    }

    #[test]
    fn scopes_parse() {
        let s = Scope::parse("repository:library/app:pull,push").expect("scope");
        assert_eq!(s.name, "library/app");
        assert_eq!(s.actions, ["pull", "push"]);
        let s = Scope::parse("repository(plugin):host:5000/a/b:pull").expect("scope");
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "host:5000/a/b")
        );
        assert!(Scope::parse("registry:catalog:*").is_some());
        assert!(Scope::parse("nonsense").is_none());
        assert!(Scope::parse("repository::pull").is_none());
    }

    #[test]
    fn secret_text_forms() {
        assert!(KeyRing::from_secret_text(SEED).is_ok());
        let json = format!(r#"{{"seeds":["{SEED}","another seed that is long enough!!"]}}"#);
        assert_eq!(
            KeyRing::from_secret_text(&json).expect("json").jwks().len(),
            2
        );
        assert!(KeyRing::from_secret_text("{broken").is_err());
    }
}
