//! Harness for Berth's end-to-end tests.
//!
//! The tests in `tests/tests/` drive real container clients (skopeo, podman,
//! docker, the oras Python SDK, curl) against a registry started per test on a
//! free `127.0.0.1` port. The registry is a black box: Berth's own `berth
//! serve` (embedded storage, or the AWS backend on a private moto), Berth's
//! serverless stack (`berth stack` + the upload gateway, on moto), or the
//! reference implementation (Distribution), chosen by the environment
//! variable `BERTH_E2E_TARGET` (see [`registry::Target`]).
//!
//! Everything a test starts is bounded in time and is stopped by a `Drop`
//! guard, so a failing test leaves nothing running.

pub mod auth;
pub mod aws;
pub mod cmd;
pub mod containers;
pub mod dockerd;
pub mod http;
pub mod oci;
pub mod process;
pub mod registry;
pub mod rng;

use std::path::{Path, PathBuf};

pub use cmd::{Cmd, Output};
pub use registry::{Registry, Target};

/// Returns true (and says so on stderr) when `BERTH_E2E_SKIP=1` asks to skip
/// the end-to-end tests. Each test calls this first and returns early.
pub fn skip_requested(test: &str) -> bool {
    let skip = std::env::var("BERTH_E2E_SKIP").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("SKIPPED {test}: BERTH_E2E_SKIP=1");
    }
    skip
}

/// The Python interpreter with the `oras` and `moto[server]` packages:
/// `$BERTH_E2E_PYTHON`, default `python3` (`tests/install-deps` installs
/// into the same one).
pub fn python() -> String {
    std::env::var("BERTH_E2E_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Directory of helper scripts shipped with the tests (`tests/scripts`).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// A fresh temporary directory, removed when dropped. It lives under
/// `BERTH_E2E_TMPDIR` when set, else the system temporary directory.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    let result = match std::env::var_os("BERTH_E2E_TMPDIR") {
        Some(base) => builder.tempdir_in(base),
        None => builder.tempdir(),
    };
    result.expect("cannot create a temporary directory (check BERTH_E2E_TMPDIR / TMPDIR)")
}

/// Panics with a pointer to `tests/install-deps` unless every named program
/// is found on `PATH` (or is an existing path).
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| find_on_path(tool).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "missing e2e test dependencies: {}; run `tests/install-deps` (as root) to install them",
        missing.join(", ")
    );
}

/// Locates a program on `PATH`; a name containing `/` is taken as a path.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Unmounts (lazily) every mount point at or below `dir`, deepest first.
/// Used when tearing down daemons that bind-mount their state directories.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&point)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Where server logs and the secrets tests handed out are kept for the
/// log scan (`tests/scan-logs`): `BERTH_E2E_LOG_ARCHIVE`, when set.
fn log_archive() -> Option<PathBuf> {
    std::env::var_os("BERTH_E2E_LOG_ARCHIVE").map(PathBuf::from)
}

/// Keeps a copy of a server log for the log scan (no-op without an archive).
pub fn archive_log(log: &Path, label: &str) {
    let Some(dir) = log_archive() else { return };
    let _ = std::fs::create_dir_all(&dir);
    let name = format!(
        "{label}-{}-{}",
        std::process::id(),
        log.file_name()
            .map_or_else(|| "log".into(), |n| n.to_string_lossy())
    );
    let mut target = dir.join(&name);
    let mut n = 0;
    while target.exists() {
        n += 1;
        target = dir.join(format!("{name}.{n}"));
    }
    let _ = std::fs::copy(log, target);
}

/// Notes a secret a test handed to the server (a password, a robot
/// secret), so the log scan can prove it never reached a log line.
pub fn record_secret(secret: &str) {
    use std::io::Write;
    let Some(dir) = log_archive() else { return };
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("secrets.list"))
    {
        let _ = writeln!(f, "{secret}");
    }
}
