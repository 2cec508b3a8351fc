//! The composition root: which adapters back the registry, built from
//! configuration (STYLE §9).
//!
//! This is the one module that knows both the services and the adapters.
//! The binaries in `functions/` call it; adapters never do, so `store/aws`
//! does not know the [`Registry`] it is plugged into. Nothing here makes a
//! network call: AWS clients are built from the standard environment, and
//! secrets are read on first use (a Lambda cold start stays local).

use crate::auth::UploadKey;
use crate::http::UPLOAD_TOKEN_TTL_SECS;
#[cfg(any(feature = "local", all(feature = "aws-dynamodb", feature = "aws-s3")))]
use crate::registry::{Registry, RegistryOptions};

/// The environment variable holding the upload-token key itself.
pub const UPLOAD_SECRET_ENV: &str = "BERTH_UPLOAD_SECRET";
/// The environment variable naming a Secrets Manager secret that holds
/// the upload-token key (used when [`UPLOAD_SECRET_ENV`] is unset).
pub const UPLOAD_SECRET_ARN_ENV: &str = "BERTH_UPLOAD_SECRET_ARN";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The AWS side of one process: the SDK configuration, Berth's resource
/// names and the call counter every client reports to.
#[cfg(feature = "aws-core")]
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub settings: crate::config::AwsSettings,
    pub calls: crate::store::aws::CallCounter,
}

#[cfg(feature = "aws-core")]
impl Aws {
    /// From the standard AWS environment and `METADATA_TABLE`,
    /// `BLOB_BUCKET`, … (see [`crate::config::AwsSettings`]).
    pub async fn from_env() -> Result<Self, String> {
        let settings = crate::config::AwsSettings::from_env().map_err(|e| e.to_string())?;
        Ok(Self {
            sdk: crate::store::aws::load_sdk_config().await,
            settings,
            calls: Default::default(),
        })
    }
}

/// The registry over DynamoDB and S3, sending the events its changes
/// commit to the events queue (`WEBHOOK_QUEUE_URL`) when this function may.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub fn aws_registry(aws: &Aws, opts: RegistryOptions) -> Registry {
    use crate::store::aws::{dynamodb::DynamoKv, s3::S3BlobStore};
    let s = &aws.settings;
    let kv = DynamoKv::new(&aws.sdk, &s.table, &aws.calls);
    let blobs = S3BlobStore::new(&aws.sdk, &s.bucket, s.s3_path_style, &aws.calls);
    let registry = Registry::new(std::sync::Arc::new(kv), std::sync::Arc::new(blobs), opts);
    match aws_queue(aws, s.webhook_queue.as_deref()) {
        Some(events) => registry.with_events(events),
        None => registry,
    }
}

/// An SQS queue by URL, if given and this build has SQS.
#[cfg(feature = "aws-core")]
fn aws_queue(aws: &Aws, url: Option<&str>) -> Option<std::sync::Arc<dyn crate::store::Queue>> {
    #[cfg(feature = "aws-sqs")]
    {
        url.map(|u| {
            std::sync::Arc::new(crate::store::aws::sqs::SqsQueue::new(
                &aws.sdk, u, &aws.calls,
            )) as std::sync::Arc<dyn crate::store::Queue>
        })
    }
    #[cfg(not(feature = "aws-sqs"))]
    {
        let _ = (aws, url);
        None
    }
}

/// The workers' queues (`GC_QUEUE_URL`, `WEBHOOK_QUEUE_URL`,
/// `REPLICATION_QUEUE_URL`, `WEBHOOK_DLQ_URL`), if this function may send
/// to the gc queue; a queue it may not send to falls back to the gc queue
/// (only the workers that own a queue send their own tasks to it).
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3", feature = "aws-sqs"))]
pub fn aws_jobs(aws: &Aws, registry: &Registry) -> Option<crate::jobs::Jobs> {
    let s = &aws.settings;
    let gc = aws_queue(aws, s.gc_queue.as_deref())
        .or_else(|| aws_queue(aws, s.replication_queue.as_deref()))
        .or_else(|| aws_queue(aws, s.webhook_queue.as_deref()))?;
    let or_gc = |url: Option<&str>| aws_queue(aws, url).unwrap_or_else(|| gc.clone());
    let queues = crate::jobs::Queues {
        events: or_gc(s.webhook_queue.as_deref()),
        replication: or_gc(s.replication_queue.as_deref()),
        dead_letters: or_gc(s.webhook_dlq.as_deref()),
        gc: gc.clone(),
    };
    Some(crate::jobs::Jobs::with_queues(registry.clone(), queues))
}

/// Without SQS support there is no job queue to send to.
#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3", not(feature = "aws-sqs")))]
pub fn aws_jobs(_aws: &Aws, _registry: &Registry) -> Option<crate::jobs::Jobs> {
    None
}

/// The registry over the embedded stores under `data_dir`.
#[cfg(feature = "local")]
pub async fn local_registry(
    data_dir: &std::path::Path,
    opts: RegistryOptions,
) -> Result<Registry, String> {
    let (kv, blobs) = crate::store::open_local(data_dir).await?;
    Ok(Registry::new(kv, blobs, opts))
}

/// The upload-token key: [`UPLOAD_SECRET_ENV`] itself, or the secret
/// [`UPLOAD_SECRET_ARN_ENV`] names, read from Secrets Manager on first use
/// (needs `aws`). `None` when neither is set.
#[cfg(feature = "aws-core")]
pub fn upload_key_from_env(aws: Option<&Aws>) -> Result<Option<UploadKey>, String> {
    if let Some(secret) = env(UPLOAD_SECRET_ENV) {
        return UploadKey::fixed(&secret, UPLOAD_TOKEN_TTL_SECS).map(Some);
    }
    let Some(arn) = env(UPLOAD_SECRET_ARN_ENV) else {
        return Ok(None);
    };
    secret_key(arn, aws).map(Some)
}

/// The upload-token key (from [`UPLOAD_SECRET_ENV`] only: a build without
/// AWS support cannot read a secret by ARN).
#[cfg(not(feature = "aws-core"))]
pub fn upload_key_from_env() -> Result<Option<UploadKey>, String> {
    match env(UPLOAD_SECRET_ENV) {
        Some(secret) => UploadKey::fixed(&secret, UPLOAD_TOKEN_TTL_SECS).map(Some),
        None if env(UPLOAD_SECRET_ARN_ENV).is_some() => Err(format!(
            "{UPLOAD_SECRET_ARN_ENV} needs a build with AWS support"
        )),
        None => Ok(None),
    }
}

#[cfg(feature = "aws-secrets")]
fn secret_key(arn: String, aws: Option<&Aws>) -> Result<UploadKey, String> {
    let aws = aws.ok_or_else(|| {
        format!("{UPLOAD_SECRET_ARN_ENV} is read with the AWS configuration; none was loaded")
    })?;
    let source = crate::store::aws::secrets::SecretsManagerSecret::new(&aws.sdk, &arn, &aws.calls);
    Ok(UploadKey::from_source(
        std::sync::Arc::new(source),
        UPLOAD_TOKEN_TTL_SECS,
    ))
}

#[cfg(all(feature = "aws-core", not(feature = "aws-secrets")))]
fn secret_key(_arn: String, _aws: Option<&Aws>) -> Result<UploadKey, String> {
    Err(format!(
        "{UPLOAD_SECRET_ARN_ENV} needs a build with Secrets Manager support"
    ))
}

/// The upload settings of a Lambda function, from its environment:
/// `BERTH_UPLOAD_GATEWAY_URL` and the key (see [`upload_key_from_env`]).
#[cfg(feature = "aws-core")]
pub fn upload_routing_from_env(aws: Option<&Aws>) -> Result<crate::http::UploadRouting, String> {
    crate::http::UploadRouting::configure(
        env("BERTH_UPLOAD_GATEWAY_URL"),
        upload_key_from_env(aws)?,
        false,
    )
}

// ---- identity -----------------------------------------------------------

/// The token service's keys given directly (the text of a key file or
/// secret: `{"seeds":[…]}` or one bare seed). For the AWS side the secret
/// is named by [`TOKEN_KEY_SECRET_ARN_ENV`] instead.
pub const TOKEN_KEYS_ENV: &str = "BERTH_TOKEN_KEYS";
/// The Secrets Manager secret holding the token signing seed(s): read by
/// the `token` function only (the registry functions verify with the
/// public keys the token service publishes in the metadata table).
pub const TOKEN_KEY_SECRET_ARN_ENV: &str = "BERTH_TOKEN_KEY_SECRET_ARN";
/// The bootstrap admin's password (first start only).
pub const ADMIN_PASSWORD_ENV: &str = "BERTH_ADMIN_PASSWORD";
/// The secret holding the bootstrap admin's password (AWS).
pub const ADMIN_PASSWORD_SECRET_ARN_ENV: &str = "BERTH_ADMIN_PASSWORD_SECRET_ARN";
/// The token `service` (audience); default [`crate::iam::token::DEFAULT_SERVICE`].
pub const TOKEN_SERVICE_ENV: &str = "BERTH_TOKEN_SERVICE";

/// The token service name from the environment.
pub fn token_service() -> String {
    env(TOKEN_SERVICE_ENV).unwrap_or_else(|| crate::iam::token::DEFAULT_SERVICE.to_owned())
}

/// Public keys handed to a registry function directly (a JSON list of
/// JWKs, or `{"keys":[…]}`), besides those the token service publishes.
pub const TOKEN_PUBLIC_KEYS_ENV: &str = "BERTH_TOKEN_PUBLIC_KEYS";

/// The identity side of a registry function: verification only, with the
/// public keys of [`TOKEN_PUBLIC_KEYS_ENV`] if set.
pub fn verifying_iam(kv: std::sync::Arc<dyn crate::store::Kv>) -> Result<crate::iam::Iam, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Jwks {
        List(Vec<crate::iam::token::Jwk>),
        Set { keys: Vec<crate::iam::token::Jwk> },
    }
    let jwks = match env(TOKEN_PUBLIC_KEYS_ENV) {
        Some(text) => match serde_json::from_str::<Jwks>(&text)
            .map_err(|e| format!("{TOKEN_PUBLIC_KEYS_ENV}: {e}"))?
        {
            Jwks::List(k) | Jwks::Set { keys: k } => k,
        },
        None => Vec::new(),
    };
    Ok(crate::iam::Iam::with_public_keys(
        kv,
        None,
        &jwks,
        &token_service(),
    ))
}

/// The identity side of a process over its metadata store.
pub fn iam(
    kv: std::sync::Arc<dyn crate::store::Kv>,
    keys: Option<std::sync::Arc<crate::iam::KeyRing>>,
) -> crate::iam::Iam {
    crate::iam::Iam::new(kv, keys, &token_service())
}

/// The local token keys: [`TOKEN_KEYS_ENV`], else `<data dir>/token-keys.json`,
/// created with a fresh random seed (mode 0600) on first start.
pub fn local_token_keys(data_dir: &std::path::Path) -> Result<crate::iam::KeyRing, String> {
    use crate::iam::token::{KeyRing, SeedFile, random_seed};
    if let Some(text) = env(TOKEN_KEYS_ENV) {
        return KeyRing::from_secret_text(&text).map_err(|e| e.to_string());
    }
    let path = data_dir.join("token-keys.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            KeyRing::from_secret_text(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| format!("{}: {e}", data_dir.display()))?;
            let file = SeedFile {
                seeds: vec![random_seed()],
            };
            let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
            write_private(&path, text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            KeyRing::from_seeds(&file.seeds).map_err(|e| e.to_string())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes a file only its owner can read (a new file, never replacing one).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A value given directly in `direct`, or read from the secret `arn_var` names.
#[cfg(feature = "aws-core")]
async fn env_or_secret(
    direct: &str,
    arn_var: &str,
    aws: Option<&Aws>,
) -> Result<Option<String>, String> {
    if let Some(v) = env(direct) {
        return Ok(Some(v));
    }
    let Some(arn) = env(arn_var) else {
        return Ok(None);
    };
    read_secret(&arn, aws).await.map(Some)
}

#[cfg(feature = "aws-secrets")]
async fn read_secret(arn: &str, aws: Option<&Aws>) -> Result<String, String> {
    use crate::auth::SecretSource;
    let aws = aws.ok_or_else(|| {
        format!("the secret {arn} is read with the AWS configuration; none was loaded")
    })?;
    crate::store::aws::secrets::SecretsManagerSecret::new(&aws.sdk, arn, &aws.calls)
        .fetch()
        .await
}

#[cfg(all(feature = "aws-core", not(feature = "aws-secrets")))]
async fn read_secret(arn: &str, _aws: Option<&Aws>) -> Result<String, String> {
    Err(format!(
        "reading the secret {arn} needs a build with Secrets Manager support"
    ))
}

/// The token signing keys of the `token` function: [`TOKEN_KEYS_ENV`] or
/// the secret [`TOKEN_KEY_SECRET_ARN_ENV`] names.
#[cfg(feature = "aws-core")]
pub async fn token_keys_from_env(aws: Option<&Aws>) -> Result<crate::iam::KeyRing, String> {
    let text = env_or_secret(TOKEN_KEYS_ENV, TOKEN_KEY_SECRET_ARN_ENV, aws)
        .await?
        .ok_or_else(|| {
            format!("the token service needs {TOKEN_KEYS_ENV} or {TOKEN_KEY_SECRET_ARN_ENV}")
        })?;
    crate::iam::KeyRing::from_secret_text(&text).map_err(|e| e.to_string())
}

/// The bootstrap admin password: [`ADMIN_PASSWORD_ENV`] or the secret
/// [`ADMIN_PASSWORD_SECRET_ARN_ENV`] names (`None`: generate one).
#[cfg(feature = "aws-core")]
pub async fn admin_password_from_env(aws: Option<&Aws>) -> Result<Option<String>, String> {
    env_or_secret(ADMIN_PASSWORD_ENV, ADMIN_PASSWORD_SECRET_ARN_ENV, aws).await
}

/// The bootstrap admin password from [`ADMIN_PASSWORD_ENV`] (builds without AWS).
#[cfg(not(feature = "aws-core"))]
pub async fn admin_password_from_env() -> Result<Option<String>, String> {
    Ok(env(ADMIN_PASSWORD_ENV))
}

/// First-start work of a process that holds the directory: the `admin`
/// user and the `library` project (DESIGN §7), and — where the signing
/// keys are — their public halves published for the registry functions.
/// Returns the admin password if it was generated here (show it once).
pub async fn bootstrap_identity(
    iam: &crate::iam::Iam,
    admin_password: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(p) = admin_password
        && let Err(rule) = crate::iam::password::check_password_rules(p)
    {
        tracing::warn!("{ADMIN_PASSWORD_ENV} does not follow the password rules: {rule}");
    }
    let generated = iam
        .directory
        .bootstrap(admin_password, crate::store::now_secs())
        .await
        .map_err(|e| format!("bootstrapping users and projects: {e}"))?;
    if let Some(keys) = &iam.keys {
        iam.directory
            .publish_jwks(&keys.jwks())
            .await
            .map_err(|e| format!("publishing the token public keys: {e}"))?;
    }
    Ok(generated)
}
