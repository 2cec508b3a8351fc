//! `infra/build-gateway-image` makes an image that runs the upload gateway:
//! it builds the static `berth`, writes the OCI layout and pushes it with
//! skopeo to a local registry (Distribution, `docker-registry`, on a free
//! 127.0.0.1 port); the image pulled back has the gateway's entrypoint,
//! environment, port and architecture, its layer holds a statically linked
//! `berth` and the CA bundle, and on an x86_64 host the binary runs: started
//! the way the image's config says, it serves as the upload gateway.
//!
//! The build is `--profile dev` (a release build of the static binary takes
//! several minutes on a 2-core machine); `BERTH_GATEWAY_IMAGE_PROFILE=release`
//! checks the release build instead. `BERTH_GATEWAY_IMAGE_SKIP=1` skips the
//! test. Needs what infra/install-tools and tests/install-deps install
//! (cargo-lambda with zig, the musl standard library, skopeo,
//! docker-registry).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const REPOSITORY: &str = "berth/upload-gateway";
const TAG: &str = "test";
/// What the binary may take to answer on its port.
const START_DEADLINE: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> String {
    std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command to completion; panics with its output if it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out
}

/// A child process killed (by PID) when the test ends, its log printed if
/// the test failed.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &'static str, cmd: &mut Command, log: PathBuf) -> Self {
        let out = fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} did not start ({cmd:?}): {e}"));
        Proc { name, child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `GET path` answers `want`; panics if the process exits
    /// or the deadline passes.
    fn wait_for(&mut self, addr: SocketAddr, path: &str, want: u16) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}):\n{}", self.name, self.log());
            }
            if get(addr, path).is_some_and(|(s, _)| s == want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {want} on {path} in {START_DEADLINE:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// `GET path` over HTTP/1.1: (status, body), or `None` if nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    get_accepting(addr, path, "*/*")
}

fn get_accepting(addr: SocketAddr, path: &str, accept: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Distribution 2.8 on a free port, storing under `dir`.
fn start_registry(dir: &Path) -> (Proc, SocketAddr) {
    let bin = std::env::var("BERTH_E2E_DISTRIBUTION_BIN")
        .unwrap_or_else(|_| "/usr/bin/docker-registry".to_owned());
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("registry.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut registry = Proc::start(
        "docker-registry",
        Command::new(bin).arg("serve").arg(&config),
        dir.join("registry.log"),
    );
    registry.wait_for(addr, "/v2/", 200);
    (registry, addr)
}

/// The pulled image: its config and its layer unpacked.
struct Pulled {
    config: Value,
    rootfs: PathBuf,
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// `skopeo copy` back into a layout, then the config and layer from it.
fn pull(reference: &str, dir: &Path) -> Pulled {
    let layout = dir.join("pulled");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:{TAG}", layout.display()),
    ]));
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob_path(
        &layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = read_json(&blob_path(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    let rootfs = dir.join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(blob_path(&layout, layers[0]["digest"].as_str().unwrap()))
        .arg("-C")
        .arg(&rootfs));
    Pulled { config, rootfs }
}

/// ELF e_machine, and whether the file asks for a program interpreter
/// (a dynamic loader, which a `FROM scratch` image does not have).
fn elf_machine_and_interp(path: &Path) -> (u16, bool) {
    let data = fs::read(path).unwrap();
    assert_eq!(&data[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(data[4], 2, "64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let machine = u16_at(18);
    let phoff = u64::from_le_bytes(data[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    let interp = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) == 3
    });
    (machine, interp)
}

fn env_of(config: &Value) -> Vec<(String, String)> {
    config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn gateway_image_is_built_pushed_and_runs_the_gateway() {
    if std::env::var("BERTH_GATEWAY_IMAGE_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: BERTH_GATEWAY_IMAGE_SKIP=1");
        return;
    }
    let profile = std::env::var("BERTH_GATEWAY_IMAGE_PROFILE").unwrap_or_else(|_| "dev".to_owned());
    let tmp = tempfile::Builder::new()
        .prefix("berth-gateway-image-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let (registry, registry_addr) = start_registry(dir);

    // Build (cargo-lambda, musl), write the layout, push: one script run.
    let layout = dir.join("layout");
    let out = run(Command::new(python())
        .arg(root().join("infra/build-gateway-image"))
        .args(["--profile", &profile, "--tag", TAG, "--insecure"])
        .arg("--layout")
        .arg(&layout)
        .arg("--dest")
        .arg(format!("docker://{registry_addr}/{REPOSITORY}"))
        .current_dir(root()));
    let reference = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let prefix = format!("{registry_addr}/{REPOSITORY}@sha256:");
    assert!(
        reference.starts_with(&prefix) && reference.len() == prefix.len() + 64,
        "the script prints the pushed image by digest, not {reference:?}"
    );
    // The registry serves what the layout holds, under the tag too.
    let layout_index = read_json(&layout.join("index.json"));
    assert_eq!(
        reference.rsplit_once('@').unwrap().1,
        layout_index["manifests"][0]["digest"]
    );
    let (status, _) = get_accepting(
        registry_addr,
        &format!("/v2/{REPOSITORY}/manifests/{TAG}"),
        "application/vnd.oci.image.manifest.v1+json",
    )
    .unwrap();
    assert_eq!(status, 200, "tag {TAG} was pushed");

    let pulled = pull(&reference, dir);
    drop(registry);

    // The config: how ECS will start it.
    let c = &pulled.config;
    assert_eq!(c["os"], "linux");
    assert_eq!(c["architecture"], "amd64", "ECS Express Mode runs x86_64");
    assert_eq!(
        c["config"]["Entrypoint"],
        serde_json::json!(["/berth", "serve"])
    );
    assert!(c["config"]["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    let env = env_of(c);
    for want in [
        ("BERTH_BACKEND", "aws"),
        ("BERTH_UPLOAD_GATEWAY", "true"),
        ("BERTH_ADDR", "0.0.0.0:8080"),
        ("BERTH_LOG_FORMAT", "json"),
        ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
    ] {
        assert!(
            env.iter().any(|(k, v)| (k.as_str(), v.as_str()) == want),
            "image Env lacks {want:?}: {env:?}"
        );
    }
    assert!(
        c["config"]["User"]
            .as_str()
            .is_some_and(|u| !u.starts_with('0')),
        "the gateway does not run as root: {c}"
    );

    // The layer: a static berth and the CA bundle.
    let berth = pulled.rootfs.join("berth");
    let (machine, interp) = elf_machine_and_interp(&berth);
    assert_eq!(machine, 62, "x86_64 ELF");
    assert!(!interp, "berth must be statically linked (no PT_INTERP)");
    let bundle =
        fs::read_to_string(pulled.rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.contains("BEGIN CERTIFICATE"), "a PEM CA bundle");

    if std::env::consts::ARCH != "x86_64" {
        eprintln!(
            "not running the x86_64 binary on {}",
            std::env::consts::ARCH
        );
        return;
    }
    let out = run(Command::new(&berth).arg("--version"));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("berth "),
        "{}",
        text(&out)
    );

    // Started as the image says (entrypoint, Env), with what the stack
    // adds: it is the upload gateway, logging JSON. Every AWS endpoint is
    // a closed loopback port: nothing here reaches AWS.
    let entrypoint: Vec<String> = c["config"]["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(pulled.rootfs.join(entrypoint[0].trim_start_matches('/')));
    cmd.args(&entrypoint[1..])
        .env_clear()
        .current_dir(&pulled.rootfs);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    cmd.env(
        "SSL_CERT_FILE",
        pulled.rootfs.join("etc/ssl/certs/ca-certificates.crt"),
    )
    .env("BERTH_ADDR", addr.to_string())
    .env("METADATA_TABLE", "berth-metadata")
    .env("BLOB_BUCKET", "berth-blobs")
    .env("BERTH_PUBLIC_URL", "https://registry.example")
    .env(
        "BERTH_UPLOAD_SECRET",
        "0123456789abcdef0123456789abcdef0123456789abcdef",
    )
    .env("AWS_REGION", "us-east-1")
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let mut gateway = Proc::start("gateway", &mut cmd, dir.join("gateway.log"));
    gateway.wait_for(addr, "/v2/", 200);
    let (status, body) = get(addr, "/v2/_catalog").unwrap();
    assert_eq!(
        status, 404,
        "the gateway serves upload sessions only: {body}"
    );
    let (status, body) = get(addr, "/v2/library/app/blobs/uploads/abc").unwrap();
    assert_eq!(status, 401, "an upload without its token: {body}");
    let log = gateway.log();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "BERTH_LOG_FORMAT=json: {log}"
    );
}
