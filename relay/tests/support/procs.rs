//! Real processes for end-to-end tests: `kasir-relay run` ([`RelayProc`]), till data
//! directories and `kasir run` daemons ([`Till`]), and the checks that compare what the
//! tills sold with what PostgreSQL and Kafka hold ([`compare`], [`kafka_event_ids`]).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Row;

use super::free_port;

/// The `kasir-relay` binary of this build.
pub fn relay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kasir-relay"))
}

/// The `kasir` binary next to it (`cargo test --workspace` builds both).
pub fn kasir_bin() -> PathBuf {
    let bin = relay_bin().with_file_name("kasir");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `secs` naming `what`.
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
        std::thread::sleep(Duration::from_millis(100));
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

/// A till: a data directory, optionally with its `kasir run` daemon.
pub struct Till {
    dir: tempfile::TempDir,
    http: u16,
    listen: u16,
    daemon: Option<Child>,
}

impl Till {
    /// An empty data directory.
    pub fn empty() -> Till {
        Till {
            dir: tempfile::Builder::new()
                .prefix("kasir-test-till-")
                .tempdir()
                .expect("temp dir"),
            http: free_port(),
            listen: free_port(),
            daemon: None,
        }
    }

    /// A new store with this till as owner.
    pub fn init(store_name: &str, till_code: &str) -> Till {
        let t = Till::empty();
        t.cli(&["init", "--store-name", store_name, "--till-code", till_code]);
        t
    }

    /// A new store with this till as owner and `products` (`(sku, name, price)`), each
    /// with `stock` on hand.
    pub fn with_products(
        store_name: &str,
        till_code: &str,
        products: &[(&str, &str, u32)],
        stock: u32,
    ) -> Till {
        let t = Till::init(store_name, till_code);
        for (sku, name, price) in products {
            t.cli(&[
                "product",
                "add",
                "--sku",
                sku,
                "--name",
                name,
                "--price",
                &price.to_string(),
                "--stock",
                &stock.to_string(),
            ]);
        }
        t
    }

    /// The store id.
    pub fn store_id(&self) -> String {
        self.cli(&["status"])["store_id"]
            .as_str()
            .expect("store_id")
            .to_owned()
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kasir --data DIR --json ARGS` (through the daemon when it runs).
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(kasir_bin())
            .arg("--data")
            .arg(self.path())
            .arg("--json")
            .args(args)
            .env("KASIR_LOG", "warn")
            .output()
            .expect("run kasir");
        json_of(&out, &format!("kasir {args:?}"))
    }

    /// Starts `kasir run` with fixed ports, no mDNS, and `--peer` flags.
    pub fn start(&mut self, peers: &[String]) {
        let log = std::fs::File::create(self.path().join("daemon.log")).expect("daemon log");
        let mut cmd = Command::new(kasir_bin());
        cmd.arg("--data")
            .arg(self.path())
            .args([
                "run",
                "--http",
                &format!("127.0.0.1:{}", self.http),
                "--listen",
                &format!("127.0.0.1:{}", self.listen),
                "--no-mdns",
            ])
            .env("KASIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for p in peers {
            cmd.args(["--peer", p]);
        }
        self.daemon = Some(cmd.spawn().expect("spawn kasir run"));
        wait_for(30, "the till daemon", || {
            ureq::get(&format!("http://127.0.0.1:{}/v1/health", self.http))
                .call()
                .ok()
        });
    }

    /// Stops the daemon the way a shutdown does (SIGTERM: it says goodbye to its peers).
    pub fn shutdown(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Stops the daemon (SIGKILL: a till loses power).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `EID@127.0.0.1:PORT` for other tills' `--peer`.
    pub fn peer_arg(&self) -> String {
        format!("{}@127.0.0.1:{}", self.endpoint_id(), self.listen)
    }

    /// The till's endpoint id.
    pub fn endpoint_id(&self) -> String {
        self.cli(&["status"])["endpoint_id"]
            .as_str()
            .expect("endpoint_id")
            .to_owned()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    /// GET on the daemon: (status, JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = Till::agent()
            .get(&format!("http://127.0.0.1:{}{path}", self.http))
            .call()
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// POST JSON to the daemon: (status, JSON).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut r = Till::agent()
            .post(&format!("http://127.0.0.1:{}{path}", self.http))
            .send_json(body)
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// Sells `lines` (`[(sku, qty)]`) through the daemon; returns (sale_id, total).
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

    /// Makes an invite on the running daemon and joins `other` (an empty till) with it.
    pub fn admit(&self, other: &Till) {
        let (status, v) = self.post("/v1/invites", &json!({}));
        assert_eq!(status, 201, "invite: {v}");
        other.cli(&["join", v["ticket"].as_str().expect("ticket")]);
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Till {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A multi-threaded runtime for sqlx and the relay library in synchronous tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The number of sales PostgreSQL holds.
pub fn pg_sales(rt: &tokio::runtime::Runtime, db: &str) -> i64 {
    rt.block_on(async {
        let Ok(pool) = sqlx::PgPool::connect(db).await else {
            return -1;
        };
        let n = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sales")
            .fetch_one(&pool)
            .await
            .unwrap_or(-1);
        pool.close().await;
        n
    })
}

/// What the tills' own view and PostgreSQL agree on.
#[derive(Debug)]
pub struct Totals {
    /// Sales.
    pub sales: i64,
    /// Σ total of all sales.
    pub sum_total: i64,
    /// Voided sales.
    pub voided: i64,
    /// Stock per SKU, in thousandths.
    pub stock: BTreeMap<String, i64>,
}

fn milli(v: &Value) -> i64 {
    (v.as_f64().expect("a number") * 1000.0).round() as i64
}

/// The totals as a till sees them (after LAN convergence it sees the whole store).
pub fn till_totals(till: &Till) -> Totals {
    let (_, sales) = till.get("/v1/sales");
    let sales = sales["sales"].as_array().expect("sales").clone();
    let (_, stock) = till.get("/v1/stock");
    Totals {
        sales: sales.len() as i64,
        sum_total: sales
            .iter()
            .map(|s| s["total"].as_i64().expect("total"))
            .sum(),
        voided: sales.iter().filter(|s| s["status"] == "voided").count() as i64,
        stock: stock["stock"]
            .as_array()
            .expect("stock")
            .iter()
            .map(|s| {
                (
                    s["sku"].as_str().expect("sku").to_owned(),
                    milli(&s["on_hand"]),
                )
            })
            .collect(),
    }
}

/// The totals PostgreSQL holds.
pub fn pg_totals(rt: &tokio::runtime::Runtime, db: &str) -> Totals {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let row = sqlx::query(
            "SELECT count(*) AS n, COALESCE(sum(total), 0)::int8 AS sum,
                    count(*) FILTER (WHERE status = 'voided') AS voided FROM sales",
        )
        .fetch_one(&pool)
        .await
        .expect("sales totals");
        let stock = sqlx::query("SELECT sku, (on_hand * 1000)::int8 AS milli FROM stock_levels")
            .fetch_all(&pool)
            .await
            .expect("stock levels");
        let lines: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sale_lines l LEFT JOIN sales s USING (sale_id) WHERE s.sale_id IS NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("orphan lines");
        assert_eq!(lines, 0, "sale lines without their sale");
        pool.close().await;
        Totals {
            sales: row.get("n"),
            sum_total: row.get("sum"),
            voided: row.get("voided"),
            stock: stock
                .iter()
                .map(|r| (r.get::<String, _>("sku"), r.get::<i64, _>("milli")))
                .collect(),
        }
    })
}

/// Asserts that PostgreSQL equals the till's view: count, Σ totals, voids, stock per SKU.
pub fn compare(rt: &tokio::runtime::Runtime, db: &str, till: &Till) -> Totals {
    let t = till_totals(till);
    let p = pg_totals(rt, db);
    assert_eq!(p.sales, t.sales, "sale count: PostgreSQL vs till");
    assert_eq!(p.sum_total, t.sum_total, "Σ totals: PostgreSQL vs till");
    assert_eq!(p.voided, t.voided, "voided sales: PostgreSQL vs till");
    let till_stock: BTreeMap<_, _> = t.stock.iter().filter(|(_, v)| **v != 0).collect();
    let pg_stock: BTreeMap<_, _> = p.stock.iter().filter(|(_, v)| **v != 0).collect();
    assert_eq!(pg_stock, till_stock, "stock per SKU: PostgreSQL vs till");
    p
}

/// Counts PostgreSQL expects on the topics: (sales + voids + refunds, stock movements).
pub fn pg_event_counts(rt: &tokio::runtime::Runtime, db: &str) -> (i64, i64) {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let sales: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM sales) + (SELECT count(*) FROM sale_adjustments)",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        let movements: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_movements")
            .fetch_one(&pool)
            .await
            .expect("count");
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(outbox, sales + movements, "one outbox row per event");
        pool.close().await;
        (sales, movements)
    })
}

/// Waits until the outbox is fully published.
pub fn wait_outbox_drained(rt: &tokio::runtime::Runtime, db: &str, secs: u64) {
    wait_for(secs, "the outbox to drain", || {
        let pending = rt.block_on(async {
            let pool = sqlx::PgPool::connect(db).await.ok()?;
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            pool.close().await;
            Some(n)
        });
        (pending == Some(0)).then_some(())
    });
}

/// Every message on `topic` from the beginning (assigned partitions, no group join):
/// (messages read, distinct `event_id`s). Reads until `expect` distinct ids were seen
/// and the topic has been quiet for a second, or `secs` pass.
pub fn kafka_event_ids(
    brokers: &str,
    topic: &str,
    expect: usize,
    secs: u64,
) -> (usize, HashSet<String>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("kasir-test-{}", free_port()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut read = 0;
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                read += 1;
                quiet_since = Instant::now();
                let v: Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("event JSON");
                let id = v["event_id"].as_str().expect("event_id").to_owned();
                let store = v["store_id"].as_str().expect("store_id");
                assert_eq!(m.key(), Some(store.as_bytes()), "key = store id");
                ids.insert(id);
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {
                if ids.len() >= expect && quiet_since.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
        }
    }
    (read, ids)
}
