//! A moto server (the AWS emulator) shared by the tests of one test binary,
//! with the resources of `infra/resources.json` created by
//! `localstack/create_resources.py` — the same script users run.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use berth::config::AwsSettings;
use berth::store::aws::CallCounter;

pub struct Moto {
    pub endpoint: String,
    pub env: HashMap<String, String>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Moto {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    // The watchdog shell stops moto (by PID) once this test process is gone.
    // localstack/moto-serve: moto with one request at a time (its
    // transactions are not isolated otherwise).
    let script = format!(
        "python3 {serve} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
        parent = std::process::id(),
        serve = repo_root().join("localstack/moto-serve").display(),
    );
    // The watchdog outlives this function on purpose; it reaps moto itself.
    #[allow(clippy::zombie_processes)]
    Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("moto-serve runs (tests/install-deps installs moto)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto-serve did not start on {endpoint}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("python3")
        .arg(repo_root().join("localstack/create_resources.py"))
        .args(["--endpoint-url", &endpoint])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "create_resources.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("export ").split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.trim_matches(|c| c == '"' || c == '\'').to_owned(),
            )
        })
        .collect();
    Moto { endpoint, env }
}

/// The emulator for this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

impl Moto {
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    pub fn settings(&self) -> AwsSettings {
        let get = |k: &str| {
            self.env
                .get(k)
                .cloned()
                .unwrap_or_else(|| panic!("create_resources.py printed no {k}"))
        };
        AwsSettings {
            table: get("METADATA_TABLE"),
            bucket: get("BLOB_BUCKET"),
            webhook_queue: self.env.get("WEBHOOK_QUEUE_URL").cloned(),
            replication_queue: self.env.get("REPLICATION_QUEUE_URL").cloned(),
            gc_queue: self.env.get("GC_QUEUE_URL").cloned(),
            webhook_dlq: self.env.get("WEBHOOK_DLQ_URL").cloned(),
            s3_path_style: true,
        }
    }

    /// The AWS side of a process on this emulator, reporting to `calls`.
    pub async fn aws(&self, calls: &CallCounter) -> berth::wiring::Aws {
        berth::wiring::Aws {
            sdk: self.sdk().await,
            settings: self.settings(),
            calls: calls.clone(),
        }
    }

    /// The registry service over this emulator's table and bucket.
    pub async fn registry(&self, calls: &CallCounter) -> berth::registry::Registry {
        berth::wiring::aws_registry(&self.aws(calls).await, Default::default())
    }

    pub async fn kv(&self, counter: &CallCounter) -> std::sync::Arc<dyn berth::store::Kv> {
        std::sync::Arc::new(berth::store::aws::dynamodb::DynamoKv::new(
            &self.sdk().await,
            &self.settings().table,
            counter,
        ))
    }

    pub async fn blobs(
        &self,
        counter: &CallCounter,
    ) -> std::sync::Arc<dyn berth::store::BlobStore> {
        let s = self.settings();
        std::sync::Arc::new(berth::store::aws::s3::S3BlobStore::new(
            &self.sdk().await,
            &s.bucket,
            true,
            counter,
        ))
    }

    pub async fn queue(&self, counter: &CallCounter) -> std::sync::Arc<dyn berth::store::Queue> {
        let url = self
            .settings()
            .gc_queue
            .expect("create_resources.py printed GC_QUEUE_URL");
        std::sync::Arc::new(berth::store::aws::sqs::SqsQueue::new(
            &self.sdk().await,
            &url,
            counter,
        ))
    }
}
