//! Running client programs with a deadline and full context on failure.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default deadline for one client command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many bytes of stdout/stderr a failure message shows (the tail).
const SHOWN_BYTES: usize = 8 * 1024;

/// A command to run to completion within a deadline. Its stdout and stderr are
/// captured through temporary files (never pipes, so a chatty program cannot
/// block), and it is killed if the deadline passes.
pub struct Cmd {
    command: Command,
    timeout: Duration,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(program);
        command.stdin(Stdio::null());
        Self {
            command,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line, shell-quoted for display, with the environment
    /// variables this command sets in front.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .command
            .get_envs()
            .filter_map(|(k, v)| {
                v.map(|v| format!("{}={}", k.to_string_lossy(), quote(&v.to_string_lossy())))
            })
            .collect();
        parts.push(quote(&self.command.get_program().to_string_lossy()));
        parts.extend(self.command.get_args().map(|a| quote(&a.to_string_lossy())));
        parts.join(" ")
    }

    /// Runs the command and returns its output whatever its exit status.
    /// Panics if it cannot be started or does not finish within the deadline.
    pub fn run(mut self) -> Output {
        let display = self.display();
        let mut stdout = tempfile::tempfile().expect("cannot create a temporary file for stdout");
        let mut stderr = tempfile::tempfile().expect("cannot create a temporary file for stderr");
        self.command.stdout(Stdio::from(
            stdout.try_clone().expect("cannot clone the stdout file"),
        ));
        self.command.stderr(Stdio::from(
            stderr.try_clone().expect("cannot clone the stderr file"),
        ));
        let started = Instant::now();
        let mut child = match self.command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "cannot run `{display}`: program not found ({e}); run `tests/install-deps` (as root) to install the e2e test dependencies"
            ),
            Err(e) => panic!("cannot run `{display}`: {e}"),
        };
        let deadline = started + self.timeout;
        let mut pause = Duration::from_millis(5);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => panic!("waiting for `{display}` failed: {e}"),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let out = read_all(&mut stdout);
                let err = read_all(&mut stderr);
                panic!(
                    "TIMEOUT after {:?}: `{display}` was killed\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                    self.timeout,
                    tail(&out),
                    tail(&err)
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        Output {
            command: display,
            status,
            stdout: read_all(&mut stdout),
            stderr: read_all(&mut stderr),
            elapsed: started.elapsed(),
        }
    }

    /// Runs the command and panics (with its output) unless it succeeds.
    pub fn ok(self) -> Output {
        let out = self.run();
        assert!(out.status.success(), "command failed:\n{out}");
        out
    }

    /// Runs the command and panics (with its output) unless it fails.
    pub fn fails(self) -> Output {
        let out = self.run();
        assert!(
            !out.status.success(),
            "command unexpectedly succeeded:\n{out}"
        );
        out
    }
}

/// What a finished command printed.
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Stdout parsed as JSON; panics with the full context if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit: {} after {:?}", self.status, self.elapsed)?;
        writeln!(f, "--- stdout (tail) ---\n{}", tail(&self.stdout))?;
        write!(f, "--- stderr (tail) ---\n{}", tail(&self.stderr))
    }
}

fn read_all(file: &mut File) -> Vec<u8> {
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(0)).is_ok() {
        let _ = file.read_to_end(&mut buf);
    }
    buf
}

/// The last [`SHOWN_BYTES`] of `bytes`, as text.
pub fn tail(bytes: &[u8]) -> String {
    if bytes.len() <= SHOWN_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let start = bytes.len() - SHOWN_BYTES;
    format!(
        "[... {start} bytes cut ...]{}",
        String::from_utf8_lossy(&bytes[start..])
    )
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
