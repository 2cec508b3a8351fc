//! A private Docker daemon for one test binary: vfs storage, no networking
//! changes (no bridge, no iptables), all state in its own temporary
//! directory, API on a unix socket in that directory. It starts and manages
//! its own containerd (also under that directory).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Cmd;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Dockerd {
    child: Option<Child>,
    client: PathBuf,
    dir: TempDir,
}

impl Dockerd {
    /// Starts `dockerd` (`$BERTH_E2E_DOCKERD`, default `dockerd` on PATH) and
    /// waits until its API answers `/_ping`.
    pub fn start() -> Self {
        let dir = crate::tempdir("berth-e2e-dockerd.");
        let root = dir.path();
        for sub in ["data", "exec", "client"] {
            std::fs::create_dir_all(root.join(sub)).expect("cannot create a dockerd dir");
        }
        std::fs::write(root.join("daemon.json"), "{}\n").expect("cannot write daemon.json");
        let daemon = std::env::var("BERTH_E2E_DOCKERD").unwrap_or_else(|_| "dockerd".to_owned());
        let client = docker_client();
        crate::require_tools(&[daemon.as_str(), &client.to_string_lossy(), "containerd"]);
        let log_path = root.join("dockerd.log");
        let log = File::create(&log_path).expect("cannot create the dockerd log");
        let log_err = log
            .try_clone()
            .expect("cannot clone the dockerd log handle");
        let mut command = Command::new(&daemon);
        command
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("docker.sock").display()))
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-masq=false",
                "--userland-proxy=false",
            ])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start {daemon}: {e}; run `tests/install-deps` (as root)")
        });
        let mut daemon_guard = Self {
            child: Some(child),
            client,
            dir,
        };
        daemon_guard.wait_ready();
        daemon_guard
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "dockerd exited with {status} during startup\n--- dockerd log ---\n{}",
                    self.log_tail()
                );
            }
            if ping(&self.socket()) {
                eprintln!("dockerd ready after {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "dockerd did not answer /_ping within {READY_TIMEOUT:?}\n--- dockerd log ---\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `docker` client bound to this daemon, with a private config dir.
    pub fn docker(&self) -> Cmd {
        Cmd::new(&self.client)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .timeout(Duration::from_secs(240))
    }

    /// `docker login` to `reg` as its admin; nothing where the registry
    /// needs no login (Distribution).
    pub fn login(&self, reg: &crate::Registry) {
        if reg.requires_auth() {
            self.login_as(&reg.host(), reg.admin_user(), reg.admin_password())
                .ok();
        }
    }

    /// `docker login -u <user> -p <password> <host>`, not yet run.
    pub fn login_as(&self, host: &str, user: &str, password: &str) -> Cmd {
        self.docker()
            .args(["login", "--username", user, "--password", password])
            .arg(host)
    }

    /// `docker image inspect <image>`: the image's JSON object.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.docker().args(["image", "inspect", image]).ok();
        let json = out.json();
        json.get(0)
            .cloned()
            .unwrap_or_else(|| panic!("docker image inspect printed no image:\n{out}"))
    }

    /// Builds `image` (legacy builder, `DOCKER_BUILDKIT=0`) as `FROM scratch`
    /// plus one fresh random (incompressible) file `/big.bin` of `size`
    /// bytes, with the build context under `work`. Returns the image ID.
    pub fn build_random_image(&self, work: &Path, image: &str, size: u64) -> String {
        let context = work.join("context");
        std::fs::create_dir_all(&context).expect("cannot create the build context");
        let t = Instant::now();
        crate::rng::Rng::new()
            .write_file(&context.join("big.bin"), size)
            .expect("cannot write the random file");
        eprintln!("wrote {size} random bytes in {:?}", t.elapsed());
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nCOPY big.bin /big.bin\n",
        )
        .expect("cannot write the Dockerfile");
        let iid_file = work.join("iid");
        let t = Instant::now();
        self.docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--tag", image, "--iidfile"])
            .arg(&iid_file)
            .arg(&context)
            .ok();
        eprintln!("docker build took {:?}", t.elapsed());
        let built_id = std::fs::read_to_string(&iid_file)
            .expect("docker build wrote no --iidfile")
            .trim()
            .to_owned();
        // The context is not needed any more; it is big.
        let _ = std::fs::remove_dir_all(&context);
        let built = self.inspect(image);
        assert_eq!(built["Id"], built_id.as_str(), "{built:#}");
        assert!(
            built["Size"].as_u64().unwrap_or(0) >= size,
            "the image should hold the big file: {built:#}"
        );
        built_id
    }

    /// `docker push <image>`; returns the manifest digest it reported.
    pub fn push(&self, image: &str) -> String {
        let t = Instant::now();
        let push = self.docker().args(["push", image]).ok();
        eprintln!("docker push took {:?}", t.elapsed());
        let digest = push
            .stdout_str()
            .split_whitespace()
            .skip_while(|w| *w != "digest:")
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no `digest:` in docker push output:\n{push}"));
        assert!(digest.starts_with("sha256:"), "{push}");
        digest
    }

    pub fn log_tail(&self) -> String {
        match std::fs::read(self.dir.path().join("dockerd.log")) {
            Ok(bytes) => crate::cmd::tail(&bytes),
            Err(e) => format!("(cannot read the dockerd log: {e})"),
        }
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after a grace period), makes
    /// sure its containerd is gone, and removes its mounts.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("dockerd did not stop within {STOP_TIMEOUT:?}; killing it");
            let _ = child.kill();
        }
        let _ = child.wait();
        kill_leftover_containerd(self.dir.path());
        crate::unmount_under(self.dir.path());
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- dockerd log ---\n{}", self.log_tail());
        }
        self.stop();
    }
}

/// The docker CLI: `$BERTH_E2E_DOCKER`, else Debian's `/usr/bin/docker`
/// (it ships with, and matches, the `dockerd` we start), else `docker` on PATH.
pub fn docker_client() -> PathBuf {
    if let Some(client) = std::env::var_os("BERTH_E2E_DOCKER") {
        return PathBuf::from(client);
    }
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    crate::find_on_path("docker").unwrap_or_else(|| PathBuf::from("docker"))
}

/// `GET /_ping` over the daemon's unix socket.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = [0u8; 32];
    let n = stream.read(&mut answer).unwrap_or(0);
    answer[..n].starts_with(b"HTTP/1.1 200")
}

/// If dockerd died without stopping its managed containerd, kill it (only
/// if that PID still runs a containerd with our own config path).
fn kill_leftover_containerd(root: &Path) {
    let pid_file = root.join("exec/containerd/containerd.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        return;
    };
    let pid = pid.trim();
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let ours = String::from_utf8_lossy(&cmdline).contains(&*root.to_string_lossy());
    if !ours {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
