//! Shared helpers for the relay's integration tests; each test file says `mod support;`.
//!
//! - [`free_port`]: a TCP port on 127.0.0.1 that was free a moment ago.
//! - [`Tansu`]: a Kafka-protocol broker (tansu, memory storage) on a free port.
//! - [`postgres`] and [`fresh_database`]: one PostgreSQL cluster per test binary and a
//!   new, uniquely named database in it per test, so tests run in parallel.
//! - [`private_postgres`]: a cluster of the test's own, for tests that restart it.
//!
//! The services come from `scripts/services install`. A missing one fails the test
//! loudly; nothing is skipped.
//!
//! Statics are never dropped, so everything started here also gets a watchdog: a
//! detached `sh` loop that stops the service (and removes its files) once the test
//! process has exited, however it exited.
// Not every test file uses every helper, and `pub` here is for the test files.
#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kasir_relay::pg_cluster::Cluster;

pub mod procs;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The tansu binary: `$KASIR_TANSU`, else `/var/tmp/kasir-tools/bin/tansu`, else `tansu`
/// on `PATH`. Panics, naming `scripts/services install`, when there is none.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KASIR_TANSU").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "KASIR_TANSU={} does not exist; run scripts/services install",
            path.display()
        );
        return path;
    }
    let tools = PathBuf::from("/var/tmp/kasir-tools/bin/tansu");
    if tools.is_file() {
        return tools;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the tansu Kafka broker was not found (looked at $KASIR_TANSU, \
         /var/tmp/kasir-tools/bin/tansu and PATH); run scripts/services install"
    );
}

/// A tansu broker with memory storage on a port of 127.0.0.1; [`Drop`] kills it.
///
/// Memory storage means a stopped broker forgets its topics and messages: a test that
/// wants "the broker is unreachable for a while" should [`Tansu::pause`] and
/// [`Tansu::resume`] it (SIGSTOP/SIGCONT), which keeps its data. [`Tansu::stop`] with
/// [`Tansu::start_again`] is a broker that lost everything.
pub struct Tansu {
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Tansu {
    /// Starts a broker on a free port and waits until it accepts TCP connections.
    pub fn start() -> Tansu {
        let bin = tansu_binary();
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "kasir-test-tansu-{}-{port}.log",
                std::process::id()
            ));
            let mut tansu = Tansu {
                bin: bin.clone(),
                port,
                log,
                child: None,
                paused: false,
            };
            match tansu.spawn() {
                Ok(()) => return tansu,
                // Most likely the port was taken between choosing and binding it.
                Err(e) => last_failure = e,
            }
        }
        panic!("tansu did not start: {last_failure}");
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the broker printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the broker and waits for it. Its topics and messages are gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Starts a fresh broker on the same port (empty: memory storage). Panics if it
    /// does not come up.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("tansu did not start again on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Freezes the broker (SIGSTOP): connections hang, data is kept.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "-STOP");
            self.paused = true;
        }
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "-CONT");
            self.paused = false;
        }
    }

    /// Whether the broker is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Spawns the broker on `self.port` and waits for its port; `Err` with the log.
    fn spawn(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(&self.log).map_err(|e| format!("create log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let mut child = Command::new(&self.bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&url)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("tansu exited ({status}):\n{}", self.log()));
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("tansu did not listen within 15 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        watchdog(&format!(
            "while kill -0 {test} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill -KILL {pid} 2>/dev/null; rm -f {log}",
            test = std::process::id(),
            pid = child.id(),
            log = sh_quote(&self.log),
        ));
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The PostgreSQL cluster shared by this test binary, started on first use in
/// `$TMPDIR/kasir-test-pg-<pid>`, stopped and removed by a watchdog after the process
/// exits. Do not stop or restart it: other tests use it; see [`private_postgres`].
pub fn postgres() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kasir-test-pg-{}", std::process::id()));
        // A leftover of an earlier process that had the same pid.
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = Cluster::start(&dir).unwrap_or_else(|e| {
            panic!("cannot start the test PostgreSQL cluster (scripts/services install): {e}")
        });
        cluster
            .stop_when_process_exits(std::process::id(), true)
            .unwrap_or_else(|e| panic!("PostgreSQL watchdog: {e}"));
        cluster
    })
}

/// A new, empty database in the shared cluster, named `<prefix>_<n>` (prefix reduced
/// to `[a-z0-9_]`); returns its URL.
pub fn fresh_database(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = format!("{clean}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    postgres()
        .create_database(&name)
        .unwrap_or_else(|e| panic!("create database {name}: {e}"))
}

/// A PostgreSQL cluster of one test's own, in a temp dir removed with it; for tests that
/// stop, kill or restart the database server.
pub struct PrivatePostgres {
    /// The cluster (dropped, so stopped, before its directory is removed).
    pub cluster: Cluster,
    dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// The directory holding the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts a [`PrivatePostgres`]; panics naming `scripts/services install` on failure.
pub fn private_postgres() -> PrivatePostgres {
    let dir = tempfile::Builder::new()
        .prefix("kasir-test-pg-private-")
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start(dir.path()).unwrap_or_else(|e| {
        panic!("cannot start a PostgreSQL cluster (scripts/services install): {e}")
    });
    cluster
        .stop_when_process_exits(std::process::id(), true)
        .unwrap_or_else(|e| panic!("PostgreSQL watchdog: {e}"));
    PrivatePostgres { cluster, dir }
}

/// Sends `sig` (such as `-STOP`) to `pid` with `kill`.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("run kill {sig} {pid}: {e}"));
    assert!(status.success(), "kill {sig} {pid} failed: {status}");
}

/// Runs `sh -c script` detached: a short-lived `sh` starts it as a background job in its
/// own session (`setsid` where available) with no standard streams and exits at once, so
/// the script outlives the test process and leaves no zombie.
fn watchdog(script: &str) {
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
        .status()
        .unwrap_or_else(|e| panic!("spawn watchdog: {e}"));
    assert!(status.success(), "spawn watchdog: {status}");
}

fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}
