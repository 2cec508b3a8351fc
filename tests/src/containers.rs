//! An isolated configuration for the containers/image tools (skopeo, podman):
//! private registries.conf, policy, storage, auth file and temp dirs, so a
//! test neither reads nor writes the machine's global container state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::{Cmd, Registry};

pub struct ContainersEnv {
    dir: TempDir,
}

impl ContainersEnv {
    /// A fresh environment in which every host in `insecure_hosts`
    /// (`127.0.0.1:<port>`) is reached over plain HTTP.
    pub fn new(insecure_hosts: &[String]) -> Self {
        let dir = crate::tempdir("berth-e2e-containers.");
        let root = dir.path();
        for sub in [
            "storage",
            "run",
            "tmp",
            "libpod-tmp",
            "networks",
            "volumes",
            "registries.d",
        ] {
            std::fs::create_dir_all(root.join(sub)).expect("cannot create a containers dir");
        }
        let mut registries = String::from(
            "# written by berth-e2e\nunqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
        );
        for host in insecure_hosts {
            registries.push_str(&format!(
                "\n[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"
            ));
        }
        write(root, "registries.conf", &registries);
        write(
            root,
            "policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        write(
            root,
            "storage.conf",
            &format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                root.join("run").display(),
                root.join("storage").display()
            ),
        );
        write(
            root,
            "containers.conf",
            &format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{}\"\n\
                 [network]\nnetwork_config_dir = \"{}\"\n",
                root.join("events.log").display(),
                root.join("networks").display()
            ),
        );
        write(root, "auth.json", "{}");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Applies the environment variables every containers tool reads.
    fn with_env(&self, cmd: Cmd) -> Cmd {
        cmd.env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .env("TMPDIR", self.path("tmp"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .timeout(Duration::from_secs(180))
    }

    /// `skopeo` with this environment's policy, registries.d and temp dir.
    pub fn skopeo(&self) -> Cmd {
        self.with_env(Cmd::new("skopeo"))
            .arg("--policy")
            .arg(self.path("policy.json"))
            .arg("--registries.d")
            .arg(self.path("registries.d"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
    }

    /// `podman` as root on private vfs storage (no global state touched).
    pub fn podman(&self) -> Cmd {
        self.with_env(Cmd::new("podman"))
            .arg("--root")
            .arg(self.path("storage"))
            .arg("--runroot")
            .arg(self.path("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--tmpdir")
            .arg(self.path("libpod-tmp"))
            .arg("--network-config-dir")
            .arg(self.path("networks"))
            .arg("--volumepath")
            .arg(self.path("volumes"))
    }

    /// Logs skopeo and podman (they share this environment's auth file) in
    /// to `reg` as its admin: `skopeo login`. Nothing where the registry
    /// needs no login (Distribution).
    pub fn login(&self, reg: &Registry) {
        if reg.requires_auth() {
            self.login_as(&reg.host(), reg.admin_user(), reg.admin_password())
                .ok();
        }
    }

    /// `skopeo login --tls-verify=false -u <user> -p <password> <host>`
    /// (writes this environment's auth file), not yet run.
    pub fn login_as(&self, host: &str, user: &str, password: &str) -> Cmd {
        self.skopeo()
            .args([
                "login",
                "--tls-verify=false",
                "--username",
                user,
                "--password",
                password,
            ])
            .arg(host)
    }

    /// Path of this environment's signature policy (for podman's
    /// `--signature-policy`).
    pub fn policy(&self) -> PathBuf {
        self.path("policy.json")
    }
}

impl Drop for ContainersEnv {
    fn drop(&mut self) {
        crate::unmount_under(self.dir.path());
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::write(&path, content)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
