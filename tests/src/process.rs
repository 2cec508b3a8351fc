//! Background processes a test starts (registries, the upload gateway, the
//! AWS emulator): output to a log file, readiness over HTTP, killed by PID
//! when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One child process with its stdout and stderr in `log`. Dropping it kills
/// the process (SIGKILL to its PID) and reaps it.
pub struct Process {
    name: String,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdin closed and stdout+stderr going to `log`.
    /// `name` and `port` are for messages and look-ups.
    pub fn spawn(name: &str, port: u16, mut command: Command, log: &Path) -> Result<Self, String> {
        let log_file =
            File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("cannot clone the log file handle: {e}"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err));
        let child = command.spawn().map_err(|e| {
            format!(
                "cannot start {name} (`{}`): {e}",
                command.get_program().to_string_lossy()
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            port,
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()))
    }

    /// The last few KiB of the log.
    pub fn log_tail(&self) -> String {
        match std::fs::read(&self.log) {
            Ok(bytes) => crate::cmd::tail(&bytes),
            Err(e) => format!("(cannot read {}: {e})", self.log.display()),
        }
    }

    /// `Err` (saying how) if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} was stopped", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} (pid {}) exited with {status}",
                self.name,
                child.id()
            )),
            Err(e) => Err(format!("cannot wait for {}: {e}", self.name)),
        }
    }

    /// Kills the process by its PID with SIGKILL (`kill -9`: no chance to
    /// flush or clean up) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `--- <name> log on 127.0.0.1:<port> (<path>) ---` and the log tail.
    pub fn describe_log(&self) -> String {
        format!(
            "--- {} log on 127.0.0.1:{} ({}) ---\n{}",
            self.name,
            self.port,
            self.log.display(),
            self.log_tail()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `GET http://127.0.0.1:<port><path>` answers with a status in
/// `ready`, failing early if any process of `group` exits meanwhile.
pub fn wait_http(
    group: &mut [Process],
    port: u16,
    path: &str,
    ready: &[u16],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        for p in group.iter_mut() {
            p.check_running()
                .map_err(|e| format!("{e} while waiting for GET 127.0.0.1:{port}{path}"))?;
        }
        let last = match probe(port, path) {
            Ok(code) if ready.contains(&code) => return Ok(()),
            Ok(code) => format!("it answered {code}"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "GET http://127.0.0.1:{port}{path} did not answer {ready:?} within {timeout:?} ({last})"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Minimal HTTP/1.1 `GET <path>` to `127.0.0.1:<port>`, returning the status.
pub fn probe(port: u16, path: &str) -> Result<u16, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct TCP ports on 127.0.0.1 that were free a moment ago (all
/// bound at once, so they differ).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("cannot bind a free port on 127.0.0.1")
        })
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .map(|a| a.port())
            .expect("a bound listener has an address")
    })
}

/// Removes from `command`'s environment every inherited variable whose name
/// starts with one of `prefixes`.
pub fn env_remove_prefixed(command: &mut Command, prefixes: &[&str]) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&key);
        }
    }
}
