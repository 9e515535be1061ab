//! LAN sync benchmark with three real `kasir run` processes on loopback (release build),
//! printed as one JSON document:
//!
//! - `propagation`: time from a 201 at till A to the sale being visible through till B's
//!   API, over `N` sales (env `KASIR_BENCH_LAN_SALES`, default 1000), with C connected;
//! - `catch_up`: a till that was down while A sold `M` sales (env
//!   `KASIR_BENCH_CATCHUP`, default 10000) restarts; time until it holds them all;
//! - `bytes_per_sale`: sync frame bytes sent by A per sale (from `/metrics`).
//!
//! Run: `cargo bench --workspace --bench lan` (env `KASIR_BENCH_LOG`: see `Till::start`).

use kasir_testkit::percentile;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KASIR: &str = env!("CARGO_BIN_EXE_kasir");

fn kasir(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(KASIR)
        .arg("--data")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .expect("kasir");
    assert!(
        out.status.success(),
        "kasir {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

struct Till {
    dir: tempfile::TempDir,
    sync_port: u16,
    http_port: u16,
    eid: String,
    child: Option<Child>,
    agent: ureq::Agent,
}

impl Till {
    fn new(dir: tempfile::TempDir) -> Till {
        let eid = kasir(dir.path(), &["status"])["endpoint_id"]
            .as_str()
            .expect("eid")
            .to_owned();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Till {
            dir,
            sync_port: kasir_testkit::free_port(),
            http_port: kasir_testkit::free_port(),
            eid,
            child: None,
            agent,
        }
    }

    fn start(&mut self, peers: &[String]) {
        let mut cmd = Command::new(KASIR);
        cmd.arg("--data").arg(self.dir.path()).args([
            "run",
            "--no-mdns",
            "--listen",
            &format!("127.0.0.1:{}", self.sync_port),
            "--http",
            &format!("127.0.0.1:{}", self.http_port),
        ]);
        for p in peers {
            cmd.args(["--peer", p]);
        }
        // Diagnosis: `KASIR_BENCH_LOG=kasir_node=debug` keeps each daemon's log in
        // `kasir-lan-PORT.log` under the temp dir (`merged a sync message` lines time
        // each merge).
        let stderr = match std::env::var("KASIR_BENCH_LOG") {
            Ok(filter) => {
                cmd.env("KASIR_LOG", filter);
                let path = std::env::temp_dir().join(format!("kasir-lan-{}.log", self.sync_port));
                Stdio::from(std::fs::File::create(path).expect("log file"))
            }
            Err(_) => {
                cmd.env("KASIR_LOG", "error");
                Stdio::null()
            }
        };
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("run"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get("/v1/health").is_none() {
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn peer_arg(&self) -> String {
        format!("{}@127.0.0.1:{}", self.eid, self.sync_port)
    }

    /// `Bearer <device token>`: the API wants credentials, and the device's own token
    /// (which the daemon writes) is what the `kasir` command sends.
    fn authorization(&self) -> String {
        let token =
            std::fs::read_to_string(self.dir.path().join("device.token")).unwrap_or_default();
        format!("Bearer {}", token.trim())
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut r = self
            .agent
            .get(format!("http://127.0.0.1:{}{path}", self.http_port))
            .header("Authorization", self.authorization())
            .call()
            .ok()?;
        Some((r.status().as_u16(), r.body_mut().read_to_string().ok()?))
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut r = self
            .agent
            .post(format!("http://127.0.0.1:{}{path}", self.http_port))
            .header("Authorization", self.authorization())
            .send_json(body)
            .expect("post");
        r.body_mut().read_json().expect("json")
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").expect("metrics");
        text.lines()
            .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0.0)
    }

    fn sales_count(&self) -> u64 {
        self.metric("kasir_sales") as u64
    }
}

impl Drop for Till {
    fn drop(&mut self) {
        self.stop();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("KASIR_BENCH_LAN_SALES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let m: usize = std::env::var("KASIR_BENCH_CATCHUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let a_dir = tempfile::tempdir().expect("tmp");
    kasir(
        a_dir.path(),
        &["init", "--store-name", "Bench", "--till-code", "A1"],
    );
    kasir(
        a_dir.path(),
        &[
            "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "2500", "--stock",
            "1000000",
        ],
    );
    let mut a = Till::new(a_dir);
    a.start(&[]);
    let join = || {
        let ticket = a.post("/v1/invites", &json!({}))["ticket"]
            .as_str()
            .expect("ticket")
            .to_owned();
        let dir = tempfile::tempdir().expect("tmp");
        kasir(dir.path(), &["join", &ticket]);
        Till::new(dir)
    };
    let mut b = join();
    let mut c = join();
    b.start(&[a.peer_arg()]);
    c.start(&[a.peer_arg(), b.peer_arg()]);
    std::thread::sleep(Duration::from_millis(500));

    eprintln!("propagation over {n} sales...");
    let sent_before = a.metric("kasir_sync_bytes_sent_total");
    let mut lat_ms = Vec::with_capacity(n);
    for _ in 0..n {
        let v = a.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 1}]}));
        let t0 = Instant::now();
        let id = v["sale_id"].as_str().expect("id").to_owned();
        loop {
            if let Some((200, _)) = b.get(&format!("/v1/sales/{id}")) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "sale never reached B"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let sent = a.metric("kasir_sync_bytes_sent_total") - sent_before;
    lat_ms.sort_by(|x, y| x.total_cmp(y));

    eprintln!("catch-up of {m} sales...");
    c.stop();
    let t_sell = Instant::now();
    for _ in 0..m {
        a.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 1}]}));
    }
    let sell_s = t_sell.elapsed().as_secs_f64();
    let target = a.sales_count();
    let t0 = Instant::now();
    c.start(&[a.peer_arg(), b.peer_arg()]);
    while c.sales_count() < target {
        assert!(t0.elapsed() < Duration::from_secs(300), "catch-up stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let catch_up_s = t0.elapsed().as_secs_f64();
    let result = json!({
        "propagation_ms": {
            "n": n,
            "p50": (percentile(&lat_ms, 0.5) * 100.0).round() / 100.0,
            "p99": (percentile(&lat_ms, 0.99) * 100.0).round() / 100.0,
            "max": (percentile(&lat_ms, 1.0) * 100.0).round() / 100.0,
        },
        "bytes_sent_by_a_per_sale": (sent / n as f64).round(),
        "catch_up": {
            "missed_sales": m,
            "seconds_including_restart": (catch_up_s * 100.0).round() / 100.0,
            "seconds_to_sell_them_at_a": (sell_s * 10.0).round() / 10.0,
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    drop((a, b, c));
}
