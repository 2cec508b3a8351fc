//! Passwords: from the environment, or typed at the terminal without echo.
//! Never from the command line, which other users of the machine can read.

use std::io::{BufRead as _, IsTerminal as _};

use super::error::CliError;

/// The password of `--username`.
pub(crate) const PASSWORD_ENV: &str = "BERTH_PASSWORD";
/// The password for `user create` and `user passwd`.
pub(crate) const NEW_PASSWORD_ENV: &str = "BERTH_NEW_PASSWORD";

/// The login password: `BERTH_PASSWORD`, else prompted for when stdin is a
/// terminal.
pub(crate) fn login_password(username: &str, url: &str) -> Result<String, CliError> {
    if let Some(p) = from_env(PASSWORD_ENV)? {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Local(format!(
            "no password: set {PASSWORD_ENV} (passwords are never taken from the command line)"
        )));
    }
    let p = read_hidden(&format!("Password for {username} at {url}: "))?;
    non_empty(p)
}

/// A new password (for `what`): `BERTH_NEW_PASSWORD`; else, at a terminal,
/// typed twice; else the first line of stdin.
pub(crate) fn new_password(what: &str) -> Result<String, CliError> {
    if let Some(p) = from_env(NEW_PASSWORD_ENV)? {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| {
            CliError::Local(format!("cannot read the new password from stdin: {e}"))
        })?;
        return non_empty(trim_newline(line)).map_err(|_| {
            CliError::Local(format!(
                "no new password: set {NEW_PASSWORD_ENV} or write it on stdin"
            ))
        });
    }
    let first = non_empty(read_hidden(&format!("New password for {what}: "))?)?;
    let second = read_hidden("Repeat it: ")?;
    if first != second {
        return Err(CliError::Local("the passwords do not match".to_owned()));
    }
    Ok(first)
}

fn from_env(name: &str) -> Result<Option<String>, CliError> {
    match std::env::var(name) {
        Ok(p) if p.is_empty() => Err(CliError::Local(format!("{name} is empty"))),
        Ok(p) => Ok(Some(p)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(CliError::Local(format!("{name} is not valid UTF-8")))
        }
    }
}

fn non_empty(p: String) -> Result<String, CliError> {
    if p.is_empty() {
        Err(CliError::Local("the password is empty".to_owned()))
    } else {
        Ok(p)
    }
}

fn trim_newline(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

/// Prompts on stderr and reads one line from the terminal on stdin with
/// echo off (restored afterwards).
fn read_hidden(prompt: &str) -> Result<String, CliError> {
    let fail = |e: std::io::Error| CliError::Local(format!("cannot read the password: {e}"));
    eprint!("{prompt}");
    let stdin = std::io::stdin();
    let echo = EchoOff::new(&stdin).map_err(fail)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.map_err(fail)?;
    Ok(trim_newline(line))
}

/// Terminal echo switched off until dropped.
#[cfg(unix)]
struct EchoOff<'a> {
    stdin: &'a std::io::Stdin,
    saved: rustix::termios::Termios,
}

#[cfg(unix)]
impl<'a> EchoOff<'a> {
    fn new(stdin: &'a std::io::Stdin) -> std::io::Result<Self> {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(stdin, OptionalActions::Flush, &quiet)?;
        Ok(Self { stdin, saved })
    }
}

#[cfg(unix)]
impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            self.stdin,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Elsewhere the password is echoed (Berth's CLI targets Unix).
#[cfg(not(unix))]
struct EchoOff;

#[cfg(not(unix))]
impl EchoOff {
    fn new(_: &std::io::Stdin) -> std::io::Result<Self> {
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_trimmed_once() {
        assert_eq!(trim_newline("pw\n".to_owned()), "pw");
        assert_eq!(trim_newline("pw\r\n".to_owned()), "pw");
        assert_eq!(trim_newline("pw".to_owned()), "pw");
        assert_eq!(trim_newline("pw \n\n".to_owned()), "pw \n");
    }

    #[test]
    fn empty_passwords_are_refused() {
        assert!(non_empty(String::new()).is_err());
        assert_eq!(non_empty("x".to_owned()).ok().as_deref(), Some("x"));
    }
}
