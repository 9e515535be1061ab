//! Processes: where the binaries of this build are, signals, and watchdogs that clean up
//! after a test process however it ended.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use rustix::process::Signal;

/// The directory holding this build's binaries (`target/<profile>`): a test or bench
/// executable runs from `target/<profile>/deps`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// A binary of this build, next to the running test; panics naming the fix when it was
/// not built (`cargo test --workspace` builds every binary of the workspace).
pub fn workspace_bin(name: &str) -> PathBuf {
    let bin = bin_dir().join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// The `kasir` binary of this build.
pub fn kasir_bin() -> PathBuf {
    workspace_bin("kasir")
}

/// The `kasir-relay` binary of this build.
pub fn relay_bin() -> PathBuf {
    workspace_bin("kasir-relay")
}

/// Sends `sig` to the process `pid`.
pub fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    rustix::process::kill_process(pid, sig).map_err(io::Error::from)
}

/// Whether the process `pid` exists.
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// Runs `sh -c script` in the background, detached: a short-lived `sh` starts it as a
/// background job in its own session (`setsid` where available) with every standard
/// stream closed, and exits at once. The script outlives this process, holds none of its
/// pipes, and leaves no zombie behind (init adopts it).
pub fn watchdog(script: &str) -> io::Result<()> {
    const DETACH: &str = r#"if command -v setsid >/dev/null 2>&1; then
  setsid sh -c "$0" </dev/null >/dev/null 2>&1 &
else
  sh -c "$0" </dev/null >/dev/null 2>&1 &
fi"#;
    let status = Command::new("sh")
        .arg("-c")
        .arg(DETACH)
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the watchdog's sh failed: {status}"
        )))
    }
}

/// Single-quotes `path` for `sh`.
pub fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}

/// `kasir run` on a data directory without a store: the first-run page, killed when
/// dropped however the test ends.
pub struct FirstRun {
    child: std::process::Child,
    /// The link `kasir run` printed, with its one-time setup code.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl FirstRun {
    /// Starts `kasir run` on `data` (created empty if missing) serving HTTP on `port`,
    /// and reads the first-run link from its first line of output.
    pub fn start(data: &Path, port: u16) -> FirstRun {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(kasir_bin())
            .arg("--data")
            .arg(data)
            .args(["run", "--no-mdns", "--listen", "127.0.0.1:0"])
            .args(["--http", &format!("127.0.0.1:{port}")])
            .env("KASIR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("kasir run: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        if let Err(e) = BufReader::new(stdout).read_line(&mut line) {
            let _ = child.kill();
            panic!("the first-run line: {e}");
        }
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned);
        let Some(url) = url else {
            let _ = child.kill();
            panic!("no link in {line:?}");
        };
        FirstRun {
            child,
            url,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for FirstRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn signals_reach_a_child_and_its_absence_is_seen() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        assert!(alive(child.id()));
        signal(child.id(), Signal::TERM).expect("TERM");
        let status = child.wait().expect("wait");
        assert!(!status.success());
        assert!(signal(child.id(), Signal::TERM).is_err());
    }
}
