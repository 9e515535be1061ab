//! Shared helpers for the node's integration tests: run the real `kasir` binary against
//! a temporary data directory, and start `kasir run` daemons on free loopback ports.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `kasir` binary built for these tests.
pub fn kasir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kasir"))
}

/// A till's data directory, deleted on drop.
pub struct Till {
    pub dir: tempfile::TempDir,
}

impl Till {
    /// A fresh, initialised store with one till `T1`.
    pub fn init() -> Till {
        let till = Till::empty();
        till.ok(&["init", "--store-name", "Warung Test", "--till-code", "T1"]);
        till
    }

    /// A data directory with nothing in it.
    pub fn empty() -> Till {
        Till {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kasir --data DIR --json ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(kasir_bin())
            .arg("--data")
            .arg(self.path())
            .arg("--json")
            .args(args)
            .env("KASIR_LOG", "warn")
            .output()
            .expect("run kasir")
    }

    /// Runs and expects success; returns the parsed JSON on stdout.
    pub fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kasir {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kasir {args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs and expects failure with a one-line message on stderr; returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kasir {args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "one error line expected, got: {err}");
        assert!(!err.contains("panicked"), "kasir panicked: {err}");
        lines[0].to_owned()
    }

    /// Starts `kasir run --http` on a free port and waits until it answers.
    pub fn daemon(&self) -> Daemon {
        Daemon::start(self.path())
    }
}

/// A free loopback port (racy by nature, good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `kasir run` process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub agent: ureq::Agent,
}

impl Daemon {
    pub fn start(dir: &Path) -> Daemon {
        Daemon::start_with(dir, &["--no-mdns", "--listen", "127.0.0.1:0"], None)
    }

    /// `kasir run --http 127.0.0.1:<free> ARGS...`, stderr to `log` when given.
    pub fn start_with(dir: &Path, args: &[&str], log: Option<&Path>) -> Daemon {
        let port = free_port();
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("log file"),
            ),
            None => Stdio::inherit(),
        };
        let child = Command::new(kasir_bin())
            .arg("--data")
            .arg(dir)
            .args(["run", "--http", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("KASIR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kasir run");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(resp) = daemon
                .agent
                .get(format!("{}/v1/health", daemon.base))
                .call()
                && resp.status() == 200
            {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kasir run did not become healthy");
    }

    /// GET returning (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .expect("GET");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST raw bytes returning (status, JSON body).
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .expect("POST");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST JSON returning (status, JSON body).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string().as_bytes())
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
