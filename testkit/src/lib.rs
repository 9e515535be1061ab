//! Real processes and throwaway services for Kasir's tests, benches and `kasir demo`.
//!
//! - [`till`]: a till's data directory driven through the `kasir` binary, and its
//!   `kasir run` daemon.
//! - [`relay`]: `kasir-relay run` as a process.
//! - [`pg`]: a throwaway PostgreSQL cluster from the machine's server binaries (also what
//!   `kasir demo` runs on when `DATABASE_URL` is not set), one shared cluster per test
//!   binary with a fresh database per test, and private clusters for tests that restart
//!   theirs.
//! - [`tansu`]: a Kafka-protocol broker (tansu, memory storage).
//! - [`foreign`]: the node's bindings and their real foreign callers (CPython, Kotlin
//!   on the JVM).
//! - [`webhook`]: a webhook receiver on loopback that can stop and start again.
//! - [`hostile`]: a hostile store member that forges, signs and sends what honest
//!   replicas must refuse (trust tests).
//! - [`totals`]: PostgreSQL's totals compared with a till's.
//! - [`process`]: this build's binaries, signals, and watchdogs that clean up after a
//!   test process however it ended; [`free_port`], [`wait_for`], [`percentile`] for
//!   tests and benches.
//!
//! Nothing here is skipped when a service is missing: a test that needs one fails,
//! naming `scripts/services install`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::net::TcpListener;
use std::time::{Duration, Instant};

pub mod browser;
pub mod fleet;
pub mod foreign;
pub mod hostile;
pub mod pg;
pub mod process;
pub mod relay;
pub mod tansu;
pub mod till;
pub mod tls;
pub mod totals;
pub mod webhook;

pub use relay::RelayProc;
pub use tansu::Tansu;
pub use till::{BACKUP_PASSPHRASE, Daemon, Till};

/// A receipt printer on the network (`tcp://127.0.0.1:PORT`, as an Ethernet ESC/POS
/// printer listens on 9100) that records the bytes of each of its first `jobs`
/// connections, then is switched off (its port closed).
pub fn tcp_printer(jobs: usize) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a printer port");
    let port = listener.local_addr().expect("printer address").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..jobs {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got);
            let _ = tx.send(got);
        }
    });
    (port, rx)
}

/// Whether `bytes` (a print job) contain `text`.
pub fn printed(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Ports [`free_port`] hands out: below Linux's ephemeral range (32768–60999), from
/// which the kernel picks every `bind(0)` and outgoing connection's port.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1, free for TCP and UDP a moment ago, that this process has not
/// handed out before. Tills keep their ports from creation to start (peers remember
/// them), so a port taken from the ephemeral range could meanwhile become some
/// connection's source port or another test's `bind(0)`; these come from below it, at
/// random, and never twice in one process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..2_000 {
        let port = rng.gen_range(TEST_PORTS);
        let Ok(mut given) = GIVEN.lock() else { break };
        if given.contains(&port) {
            continue;
        }
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            given.insert(port);
            return port;
        }
    }
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Copies the directory tree `from` into `to` (created), as a fixture is copied into a
/// test's own directory.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Polls `f` until it returns `Some`, or panics naming `what` after `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A multi-threaded runtime for sqlx and async libraries in synchronous tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// A photo of the product-recognition fixtures (`ml/tests/fixtures/<name>.jpg`), as a
/// command-line argument.
pub fn fixture_photo(name: &str) -> String {
    foreign::root()
        .join("ml/tests/fixtures")
        .join(format!("{name}.jpg"))
        .to_string_lossy()
        .into_owned()
}

/// The `p`-quantile (0 to 1, nearest rank) of `sorted` samples; 0 when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Whether this run is CI's (`CI` set and not `false`/`0`): there every part a test
/// needs is installed, so a missing one is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The value of one Prometheus sample in `text` (the text exposition format), by its
/// name and labels exactly as exposed (`kasir_sync_refused_changes_total{reason="revoked"}`);
/// 0 when the series is absent (a counter that never moved).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .find_map(|rest| rest.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Checks a `/metrics` body with Prometheus's own linter, `promtool check metrics`
/// (Debian's `prometheus` package, which `scripts/test` installs): it must parse as the
/// text format and pass every lint (help text, counter names, units). Fails the test,
/// never skips, when promtool is missing.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("promtool is not installed (Debian: apt-get install prometheus)")
        });
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- the metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
