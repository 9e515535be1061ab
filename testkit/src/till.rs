//! Tills as real processes: a data directory driven through the `kasir` binary
//! ([`Till`]) and its `kasir run` daemon ([`Daemon`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::free_port;
use crate::process::{Signal, kasir_bin, signal};

/// An HTTP client that reports every status instead of failing on 4xx/5xx.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A running `kasir run` process with its HTTP API; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The client of the API.
    pub agent: ureq::Agent,
    /// The data directory (its `device.token` authenticates requests).
    pub dir: PathBuf,
}

impl Daemon {
    /// `kasir run` on a free HTTP port, loopback sync, no mDNS; stderr inherited.
    pub fn start(dir: &Path) -> Daemon {
        Daemon::start_with(dir, &["--no-mdns", "--listen", "127.0.0.1:0"], None)
    }

    /// `kasir run --http 127.0.0.1:<free> ARGS...`, stderr to `log` when given.
    pub fn start_with(dir: &Path, args: &[&str], log: Option<&Path>) -> Daemon {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Daemon::spawn(dir, free_port(), &args, log, "warn")
    }

    fn spawn(dir: &Path, http: u16, args: &[String], log: Option<&Path>, level: &str) -> Daemon {
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
            .args(["run", "--http", &format!("127.0.0.1:{http}")])
            .args(args)
            .env("KASIR_LOG", level)
            .env("KASIR_BACKUP_PASSPHRASE", BACKUP_PASSPHRASE)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kasir run");
        let daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{http}"),
            agent: agent(Duration::from_secs(30)),
            dir: dir.to_owned(),
        };
        let mut daemon = daemon;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(resp) = daemon
                .agent
                .get(format!("{}/v1/health", daemon.base))
                .call()
                && resp.status() == 200
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                let log = log
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .unwrap_or_default();
                panic!("kasir run on port {http} exited ({status}) before it was healthy: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kasir run on port {http} did not become healthy in 60 s");
    }

    fn answer(mut resp: ureq::http::Response<ureq::Body>) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `Bearer <device token>`: the device's own token, as the `kasir` command sends it
    /// (empty before the daemon has created it).
    pub fn authorization(&self) -> String {
        let token = std::fs::read_to_string(self.dir.join("device.token")).unwrap_or_default();
        format!("Bearer {}", token.trim())
    }

    /// GET returning (status, JSON body; a body that is not JSON as a string), with the
    /// device token.
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, &self.authorization())
    }

    /// GET with the given `Authorization` header (empty: none).
    pub fn get_as(&self, path: &str, authorization: &str) -> (u16, Value) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if !authorization.is_empty() {
            req = req.header("authorization", authorization);
        }
        Daemon::answer(req.call().expect("GET"))
    }

    /// POST raw bytes (as JSON) returning (status, JSON body), with the device token.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        self.post_as(path, body, &self.authorization())
    }

    /// POST JSON bytes with the given `Authorization` header (empty: none).
    pub fn post_as(&self, path: &str, body: &[u8], authorization: &str) -> (u16, Value) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if !authorization.is_empty() {
            req = req.header("authorization", authorization);
        }
        Daemon::answer(req.send(body).expect("POST"))
    }

    /// POST JSON returning (status, JSON body).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string().as_bytes())
    }

    /// Stops the daemon the way a shutdown does (SIGTERM: it says goodbye to its peers).
    pub fn shutdown(mut self) {
        let _ = signal(self.child.id(), Signal::TERM);
        let _ = self.child.wait();
    }

    /// Kills the process with SIGKILL (a till losing power) and waits for it.
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

/// The backup passphrase every `kasir` the test kit runs has in its environment.
pub const BACKUP_PASSPHRASE: &str = "sandi cadangan uji";

/// A till's data directory (deleted on drop), driven through the `kasir` binary, with
/// its own daemon on fixed ports when started (a restart reuses them, as peers remember
/// the address).
#[derive(Debug)]
pub struct Till {
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// Where `init` and `join` keep the database key: outside the data directory, as on
    /// a real till (the key file's path is recorded in the directory).
    keys: tempfile::TempDir,
    http: u16,
    listen: u16,
    daemon: Option<Daemon>,
}

impl Till {
    /// A data directory with nothing in it.
    pub fn empty() -> Till {
        Till {
            dir: tempfile::Builder::new()
                .prefix("kasir-test-till-")
                .tempdir()
                .expect("temp dir"),
            keys: tempfile::Builder::new()
                .prefix("kasir-test-keys-")
                .tempdir()
                .expect("temp dir"),
            http: free_port(),
            listen: free_port(),
            daemon: None,
        }
    }

    /// A fresh store "Warung Test" with this till as owner `T1`.
    pub fn init() -> Till {
        Till::init_named("Warung Test", "T1")
    }

    /// A new store with this till as owner, encrypted at rest (as every till the test
    /// kit makes: the suite runs on encrypted data directories).
    pub fn init_named(store_name: &str, till_code: &str) -> Till {
        let t = Till::empty();
        let key = t.key_file();
        t.ok(&[
            "init",
            "--store-name",
            store_name,
            "--till-code",
            till_code,
            "--encrypt",
            "--key-file",
            &key,
        ]);
        t
    }

    /// The till's database, opened directly (with its key when it is encrypted), for
    /// tests that look under the engine.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.path().join("kasir.sqlite")).expect("open db");
        if let Ok(key) = std::fs::read(self.key_file()) {
            conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex(&key)))
                .expect("key the db");
        }
        conn
    }

    /// Every document chunk the till holds, read through its key and concatenated: what
    /// a search of its documents (for PIN hashes, say) runs over.
    pub fn chunk_bytes(&self) -> Vec<u8> {
        self.db()
            .prepare("SELECT data FROM chunks")
            .and_then(|mut q| {
                q.query_map([], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("the till's chunks")
            .concat()
    }

    /// The key file `init` and `join` give this till's data directory.
    pub fn key_file(&self) -> String {
        self.keys.path().join("kasir.key").display().to_string()
    }

    /// A new store with this till as owner, and the owner's user `owner` with `pin`.
    pub fn with_owner(store_name: &str, till_code: &str, owner: &str, pin: &str) -> Till {
        let t = Till::empty();
        let key = t.key_file();
        t.ok(&[
            "init",
            "--store-name",
            store_name,
            "--till-code",
            till_code,
            "--owner-name",
            owner,
            "--owner-pin",
            pin,
            "--encrypt",
            "--key-file",
            &key,
        ]);
        t
    }

    /// `kasir user add`: a user with `role` and `pin`; returns what it printed.
    pub fn add_user(&self, name: &str, role: &str, pin: &str) -> Value {
        self.ok(&["user", "add", "--name", name, "--role", role, "--pin", pin])
    }

    /// A new store with this till as owner and `products` (`(sku, name, price)`), each
    /// with `stock` on hand.
    pub fn with_products(
        store_name: &str,
        till_code: &str,
        products: &[(&str, &str, u32)],
        stock: u32,
    ) -> Till {
        let t = Till::init_named(store_name, till_code);
        for (sku, name, price) in products {
            t.add_product(sku, name, &price.to_string(), &stock.to_string(), &[]);
        }
        t
    }

    /// `kasir product add` of `sku` with `stock` on hand and any further flags
    /// (`["--barcode", "8998866200578", "--category", "Makanan"]`).
    pub fn add_product(
        &self,
        sku: &str,
        name: &str,
        price: &str,
        stock: &str,
        flags: &[&str],
    ) -> Value {
        let mut args = vec![
            "product", "add", "--sku", sku, "--name", name, "--price", price, "--stock", stock,
        ];
        args.extend_from_slice(flags);
        self.ok(&args)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kasir --data DIR --json ARGS...` (through the daemon when one runs).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// [`Till::run`] with environment variables set (over the test kit's own).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(kasir_bin())
            .arg("--data")
            .arg(self.path())
            .arg("--json")
            .args(args)
            .env("KASIR_LOG", "warn")
            .env("KASIR_BACKUP_PASSPHRASE", BACKUP_PASSPHRASE)
            .envs(env.iter().copied())
            .output()
            .expect("run kasir")
    }

    /// Runs and expects success; returns the JSON it printed.
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

    /// Runs and expects failure with one `error:` line on stderr; returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kasir {args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "one error line expected, got: {err}");
        assert!(!err.contains("panicked"), "kasir panicked: {err}");
        lines[0].to_owned()
    }

    /// The store id.
    pub fn store_id(&self) -> String {
        self.ok(&["status"])["store_id"]
            .as_str()
            .expect("store_id")
            .to_owned()
    }

    /// The till's endpoint id.
    pub fn endpoint_id(&self) -> String {
        self.ok(&["status"])["endpoint_id"]
            .as_str()
            .expect("endpoint_id")
            .to_owned()
    }

    /// `EID@127.0.0.1:PORT` of this till's own daemon, for other tills' `--peer`.
    pub fn peer_arg(&self) -> String {
        format!("{}@127.0.0.1:{}", self.endpoint_id(), self.listen)
    }

    /// A separate `kasir run` on a free port (see [`Daemon::start`]).
    pub fn daemon(&self) -> Daemon {
        Daemon::start(self.path())
    }

    /// Starts this till's own daemon on its fixed ports, no mDNS, with `--peer` flags;
    /// it logs to `daemon.log` in the data directory.
    pub fn start(&mut self, peers: &[String]) {
        self.start_with(peers, &[]);
    }

    /// [`Till::start`] with further `kasir run` flags.
    pub fn start_with(&mut self, peers: &[String], more: &[&str]) {
        let mut args: Vec<String> = [
            "--listen",
            &format!("127.0.0.1:{}", self.listen),
            "--no-mdns",
        ]
        .map(str::to_owned)
        .to_vec();
        for p in peers {
            args.extend(["--peer".to_owned(), p.clone()]);
        }
        args.extend(more.iter().map(|a| (*a).to_owned()));
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        self.daemon = Some(Daemon::spawn(
            self.dir.path(),
            self.http,
            &args,
            Some(&log),
            "info",
        ));
    }

    /// Stops the own daemon the way a shutdown does (SIGTERM).
    pub fn shutdown(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown();
        }
    }

    /// Stops the own daemon with SIGKILL (a till losing power).
    pub fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.kill9();
        }
    }

    /// The own daemon (started by [`Till::start`]), for requests with other headers.
    pub fn running(&self) -> &Daemon {
        self.daemon
            .as_ref()
            .expect("the till's daemon is not running: call start() first")
    }

    /// GET on the own daemon: (status, JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.running().get(path)
    }

    /// POST JSON to the own daemon: (status, JSON).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.running().post(path, body)
    }

    /// Logs `name` in on the own daemon with `pin`; returns the `Authorization` value
    /// of the session.
    pub fn login(&self, name: &str, pin: &str) -> String {
        let body = json!({ "name": name, "pin": pin }).to_string();
        let (status, v) = self.running().post_as("/v1/sessions", body.as_bytes(), "");
        assert_eq!(status, 201, "login of {name}: {v}");
        format!("Bearer {}", v["token"].as_str().expect("token"))
    }

    /// POST JSON to the own daemon as `authorization` (a session from [`Till::login`]).
    pub fn post_as(&self, path: &str, body: &Value, authorization: &str) -> (u16, Value) {
        self.running()
            .post_as(path, body.to_string().as_bytes(), authorization)
    }

    /// GET on the own daemon as `authorization`.
    pub fn get_as(&self, path: &str, authorization: &str) -> (u16, Value) {
        self.running().get_as(path, authorization)
    }

    /// Sells `lines` (`[(sku, qty)]`) through the own daemon; returns (sale_id, total).
    pub fn sell(&self, lines: &[(&str, u32)]) -> (String, i64) {
        let body = json!({
            "lines": lines.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>()
        });
        let (status, v) = self.post("/v1/sales", &body);
        assert_eq!(status, 201, "sale refused: {v}");
        (
            v["sale_id"].as_str().expect("sale_id").to_owned(),
            v["total"].as_i64().expect("total"),
        )
    }

    /// Makes an invite on the own daemon and joins `other` (an empty till) with it.
    pub fn admit(&self, other: &Till) {
        let (status, v) = self.post("/v1/invites", &json!({}));
        assert_eq!(status, 201, "invite: {v}");
        let key = other.key_file();
        other.ok(&[
            "join",
            v["ticket"].as_str().expect("ticket"),
            "--encrypt",
            "--key-file",
            &key,
        ]);
    }

    fn log_path(&self) -> PathBuf {
        self.path().join("daemon.log")
    }

    /// What the own daemon logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Till {
    fn drop(&mut self) {
        self.stop();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
