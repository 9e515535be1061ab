//! The cloud relay as a real process: `kasir-relay run` on fixed ports, and its
//! one-shot commands against the same database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::free_port;
use crate::process::relay_bin;

/// A `kasir-relay run` process on fixed ports (a restart reuses them, as tills
/// remember the address).
pub struct RelayProc {
    db: String,
    brokers: Option<String>,
    listen: u16,
    http: u16,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// The relay's endpoint id.
    pub endpoint_id: String,
}

impl RelayProc {
    /// Starts a relay on `db` (migrating it), publishing to `brokers` if given.
    pub fn start(db: &str, brokers: Option<&str>) -> RelayProc {
        RelayProc::start_with(db, brokers, &[])
    }

    /// [`RelayProc::start`] with extra environment variables.
    pub fn start_with(db: &str, brokers: Option<&str>, env: &[(&str, &str)]) -> RelayProc {
        let mut r = RelayProc {
            db: db.to_owned(),
            brokers: brokers.map(str::to_owned),
            listen: free_port(),
            http: free_port(),
            log: std::env::temp_dir().join(format!(
                "kasir-test-relay-{}-{}.log",
                std::process::id(),
                free_port()
            )),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            endpoint_id: String::new(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("relay log");
        let mut cmd = Command::new(relay_bin());
        cmd.args([
            "run",
            "--listen",
            &format!("127.0.0.1:{}", self.listen),
            "--http",
            &format!("127.0.0.1:{}", self.http),
        ])
        .env("DATABASE_URL", &self.db)
        .env("KASIR_LOG", "info,kasir_relay=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
        match &self.brokers {
            Some(b) => cmd.env("KAFKA_BROKERS", b),
            None => cmd.env_remove("KAFKA_BROKERS"),
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("spawn kasir-relay");
        let stdout = child.stdout.take().expect("relay stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("relay stdout line");
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "kasir-relay run did not start: {line}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        self.endpoint_id = started["endpoint_id"]
            .as_str()
            .expect("endpoint_id")
            .to_owned();
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT` of the sync endpoint.
    pub fn sync_addr(&self) -> String {
        format!("127.0.0.1:{}", self.listen)
    }

    /// Base URL of the head-office API.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Runs a `kasir-relay --json` command against the same database.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(relay_bin())
            .arg("--json")
            .args(args)
            .env("DATABASE_URL", &self.db)
            .env_remove("KAFKA_BROKERS")
            .output()
            .expect("run kasir-relay");
        json_of(&out, &format!("kasir-relay {args:?}"))
    }

    /// Creates a tenant; returns its id.
    pub fn tenant(&self, name: &str) -> String {
        self.cli(&["tenant", "create", "--name", name])["tenant_id"]
            .as_str()
            .expect("tenant_id")
            .to_owned()
    }

    /// An adoption ticket for `store` of `tenant`, naming this instance's address.
    pub fn adopt_ticket(&self, tenant: &str, store: &str) -> String {
        let addr = self.sync_addr();
        self.cli(&[
            "store",
            "adopt",
            "--tenant",
            tenant,
            "--store-id",
            store,
            "--addr",
            &addr,
        ])["ticket"]
            .as_str()
            .expect("ticket")
            .to_owned()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts again on the same ports with `env` set (replacing earlier values of the
    /// same variables): a configuration change, as an operator would restart for one.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        for (k, v) in env {
            self.env.retain(|(key, _)| key != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        self.restart();
    }

    /// The relay's `/metrics`, in the text format (read values with [`crate::metric`]).
    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.http_url()))
            .call()
            .expect("relay metrics")
            .body_mut()
            .read_to_string()
            .expect("metrics text")
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("relay log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn json_of(out: &std::process::Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
