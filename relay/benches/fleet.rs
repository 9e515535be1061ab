//! Fleet simulation: one relay process on this machine serving many stores of three
//! tills each through the real protocol over real QUIC; prints one JSON document.
//!
//! The tills are [`kasir_testkit::fleet::SimTill`]s, many in this process: each a real
//! device (own key and iroh endpoint, admitted by the real invite head office
//! is given) writing real signed Automerge ledgers. A store is created at head office
//! (`kasir-relay store create`), which also invites its other tills
//! (`POST /v1/stores/{store}/invites`); each till joins with its ticket. The backlog mix, chosen per till from a fixed seed: most tills are current,
//! some were offline for a day, a few for a week, and each of those brings its missed
//! days' ledgers (`KASIR_FLEET_DAY_SALES` sales a day) when the live phase starts. In the
//! live phase every till keeps a session with the relay and sells one sale every
//! `KASIR_FLEET_SALE_EVERY_S` seconds on average (a busy minimarket's peak: 30 s).
//!
//! Reported per scale (`KASIR_FLEET_STORES`, e.g. `100,300,1000`): sales/s materialised,
//! relay RSS and CPU, PostgreSQL bytes per sale and per busy store-day, lag from a till's
//! commit to its row in PostgreSQL (`materialised_at - created_at`) and to the broker's
//! acknowledgement of its event (`outbox.published_at - created_at`), the time the
//! backlog took, and the CPU of each process to show where the first bottleneck is.
//! At the end every till's sales are compared with PostgreSQL's and with the events read
//! back from Kafka, per store (count and Σ totals); a difference fails the run.
//!
//! Each scale runs once per value of `KASIR_FLEET_PARK_AFTER_S` (default `0,15`): the
//! relay's `KASIR_RELAY_PARK_AFTER_S`, how long a closed day's ledger stays in memory
//! after its last use (0: for ever, the baseline). After the drain the tills stay
//! connected and idle for the longest of those plus 5 s, and the relay's RSS is taken
//! again (`rss_mb_settled`) with the documents it parked and read back.
//!
//! With `KASIR_FLEET_KILL=1` the largest scale runs two relay instances on one database
//! (one identity; every till knows both addresses, in its own random order, as a DNS name
//! with two records would give them) and instance one is killed -9 halfway through the
//! live phase: its tills reconnect to the other, and nothing may be lost.
//!
//! `cargo build --release --workspace && cargo bench --workspace --bench fleet`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[path = "../tests/support/mod.rs"]
mod support;

use kasir_relay::materialise::TOPIC_SALES;
use kasir_testkit::RelayProc;
use kasir_testkit::fleet::{self, SimTill};
use kasir_testkit::pg::fresh_database;
use kasir_testkit::tansu::Tansu;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// How far behind a till starts the live phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backlog {
    Current,
    OneDay,
    OneWeek,
}

impl Backlog {
    fn days(self) -> i64 {
        match self {
            Backlog::Current => 0,
            Backlog::OneDay => 1,
            Backlog::OneWeek => 7,
        }
    }
}

/// CPU seconds (user + system) of a process, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process in MB, from `/proc`.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds of every process whose command name is `name`.
fn cpu_of_all(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .map(cpu_seconds)
        .sum()
}

fn this_cpu() -> f64 {
    cpu_seconds(std::process::id())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility
    }
    match run() {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Err(e) => {
            eprintln!("fleet bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<Value> {
    let scales: Vec<usize> = std::env::var("KASIR_FLEET_STORES")
        .unwrap_or_else(|_| "100,300,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let kill = std::env::var("KASIR_FLEET_KILL").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let parks: Vec<u64> = std::env::var("KASIR_FLEET_PARK_AFTER_S")
        .unwrap_or_else(|_| "0,15".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let settle_s = parks.iter().copied().max().unwrap_or(0) + 5;
    let largest = scales.iter().copied().max().unwrap_or(0);
    let mut runs = Vec::new();
    for &n in &scales {
        for &park in &parks {
            eprintln!("fleet: {n} stores, parking after {park} s (0: never)...");
            let killed = kill && n == largest;
            runs.push(run_scale(&rt, n, killed, park, settle_s)?);
        }
    }
    Ok(json!({
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        },
        "postgres_settings": "throwaway cluster (kasir_testkit::pg): fsync=off, synchronous_commit=off",
        "runs": runs,
    }))
}

struct Scale {
    tills_per_store: usize,
    live_s: f64,
    sale_every_s: f64,
    day_sales: usize,
    setup_parallel: usize,
}

fn run_scale(
    rt: &tokio::runtime::Runtime,
    n: usize,
    kill: bool,
    park_after_s: u64,
    settle_s: u64,
) -> Result<Value> {
    let cfg = Scale {
        tills_per_store: env_num("KASIR_FLEET_TILLS", 3),
        live_s: env_num("KASIR_FLEET_LIVE_S", 60.0),
        sale_every_s: env_num("KASIR_FLEET_SALE_EVERY_S", 30.0),
        day_sales: env_num("KASIR_FLEET_DAY_SALES", 200),
        setup_parallel: env_num("KASIR_FLEET_SETUP_PARALLEL", 24),
    };
    let db = fresh_database(&format!("fleet{n}p{park_after_s}"));
    let tansu = Tansu::start();
    let park = park_after_s.to_string();
    let quiet = [
        ("KASIR_LOG", "warn"),
        ("KASIR_RELAY_PARK_AFTER_S", park.as_str()),
    ];
    let mut relay1 = RelayProc::start_with(&db, Some(&tansu.brokers()), &quiet);
    let relay2 = kill.then(|| RelayProc::start_with(&db, Some(&tansu.brokers()), &quiet));
    let addrs: Vec<SocketAddr> = std::iter::once(&relay1)
        .chain(relay2.as_ref())
        .map(|r| r.sync_addr().parse())
        .collect::<Result<_, _>>()?;
    let tenant = relay1.tenant("Fleet");

    // Stores at head office: one `kasir-relay store create` each, a few at a time.
    let t = Instant::now();
    let tickets = fleet::create_stores(
        &relay1,
        &tenant,
        n,
        cfg.tills_per_store,
        cfg.setup_parallel.min(4),
    )?;
    let create_s = t.elapsed().as_secs_f64();

    // Tills: each joins with its ticket.
    let t = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let tills = backlogs(
        rt.block_on(fleet::join_all(&tickets, &addrs, cfg.setup_parallel))?,
        &mut rng,
    );
    let join_s = t.elapsed().as_secs_f64();
    eprintln!(
        "fleet: {} tills joined in {join_s:.1} s (stores created in {create_s:.1} s)",
        tills.len()
    );

    // Backlogs: missed days' ledgers, written before the live phase.
    let t = Instant::now();
    let now = kasir_sync::now_ms();
    let mut backlog_sales = 0u64;
    let mut mix = BTreeMap::<&str, usize>::new();
    for (till, backlog) in &tills {
        *mix.entry(match backlog {
            Backlog::Current => "current",
            Backlog::OneDay => "offline_one_day",
            Backlog::OneWeek => "offline_one_week",
        })
        .or_default() += 1;
        for day in 1..=backlog.days() {
            let start = now - day * 86_400_000 - 4 * 3_600_000;
            for i in 0..cfg.day_sales {
                let at = start + (i as i64) * (12 * 3_600_000 / cfg.day_sales.max(1) as i64);
                till.sell(at, rng.r#gen())?;
                backlog_sales += 1;
            }
        }
    }
    let backlog_write_s = t.elapsed().as_secs_f64();

    let pid1 = relay1.pid().context("relay pid")?;
    let pid2 = relay2.as_ref().and_then(RelayProc::pid);
    let relay_pids = || std::iter::once(pid1).chain(pid2);
    let rss_before = relay_pids().map(rss_mb).sum::<f64>();
    // One small pool for the bench's own queries, for the whole scale.
    let bench_pool = rt.block_on(pool(&db))?;
    let pg_bytes_before = rt.block_on(db_size(&bench_pool))?;

    // Live phase: sessions open, the backlog flows, every till sells.
    let cancel = CancellationToken::new();
    let live_start_ms = kasir_sync::now_ms();
    let cpu0 = (
        relay_pids().map(cpu_seconds).sum::<f64>(),
        cpu_of_all("postgres"),
        cpu_of_all("tansu"),
        this_cpu(),
    );
    let _guard = rt.enter();
    let sessions: Vec<_> = tills
        .iter()
        .map(|(t, _)| t.stay_connected(cancel.clone()))
        .collect();
    let t_live = Instant::now();
    let total_tills = tills.len();
    let mut rss_peak = rss_before;
    let mut killed_at_s = None;
    let mut relay1_cpu_at_kill = 0.0;
    let mut backlog_done_s = None;
    let mut next_sample = Instant::now();
    let rate_per_s = total_tills as f64 / cfg.sale_every_s;
    let mut live_sales = 0u64;
    let mut owed = 0.0f64;
    let mut last = Instant::now();
    while t_live.elapsed().as_secs_f64() < cfg.live_s {
        std::thread::sleep(Duration::from_millis(50));
        owed += last.elapsed().as_secs_f64() * rate_per_s;
        last = Instant::now();
        while owed >= 1.0 {
            owed -= 1.0;
            let (till, _) = &tills[rng.gen_range(0..total_tills)];
            till.sell(kasir_sync::now_ms(), rng.r#gen())?;
            live_sales += 1;
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(2);
            let rss = relay_pids().map(rss_mb).sum::<f64>();
            rss_peak = rss_peak.max(rss);
            if backlog_done_s.is_none() {
                let old = rt.block_on(count_sales_before(&bench_pool, live_start_ms))?;
                if old >= backlog_sales as i64 {
                    backlog_done_s = Some(t_live.elapsed().as_secs_f64());
                }
            }
        }
        if kill && killed_at_s.is_none() && t_live.elapsed().as_secs_f64() >= cfg.live_s / 2.0 {
            relay1_cpu_at_kill = cpu_seconds(pid1);
            relay1.kill9();
            killed_at_s = Some(t_live.elapsed().as_secs_f64());
            eprintln!("fleet: relay instance 1 killed -9");
        }
    }
    let live_s = t_live.elapsed().as_secs_f64();
    let written: u64 = backlog_sales + live_sales;

    // Drain: every sale in PostgreSQL and its event acknowledged by the broker.
    let drain = Instant::now();
    let mut in_pg = 0i64;
    while drain.elapsed() < Duration::from_secs(600) {
        in_pg = rt.block_on(count_sales(&bench_pool))?;
        let pending = rt.block_on(pending_events(&bench_pool))?;
        let rss = relay_pids()
            .filter(|p| killed_at_s.is_none() || *p != pid1)
            .map(rss_mb)
            .sum::<f64>();
        rss_peak = rss_peak.max(rss);
        if in_pg >= written as i64 && pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let drain_s = drain.elapsed().as_secs_f64();
    if backlog_done_s.is_none()
        && rt.block_on(count_sales_before(&bench_pool, live_start_ms))? >= backlog_sales as i64
    {
        backlog_done_s = Some(live_s + drain_s);
    }
    let busy_s = live_s + drain_s;
    let relay_cpu = relay_pids()
        .map(|p| {
            if killed_at_s.is_some() && p == pid1 {
                relay1_cpu_at_kill
            } else {
                cpu_seconds(p)
            }
        })
        .sum::<f64>()
        - cpu0.0;
    let pg_cpu = cpu_of_all("postgres") - cpu0.1;
    let tansu_cpu = cpu_of_all("tansu") - cpu0.2;
    let sim_cpu = this_cpu() - cpu0.3;
    let rss_end = relay_pids()
        .filter(|p| killed_at_s.is_none() || *p != pid1)
        .map(rss_mb)
        .sum::<f64>();
    // Settle: every till still connected, nobody selling, closed days idle long enough
    // to be parked (when parking is on).
    std::thread::sleep(Duration::from_secs(settle_s));
    let rss_settled = relay_pids()
        .filter(|p| killed_at_s.is_none() || *p != pid1)
        .map(rss_mb)
        .sum::<f64>();
    let surviving: Vec<&RelayProc> = std::iter::once(&relay1)
        .filter(|_| killed_at_s.is_none())
        .chain(relay2.as_ref())
        .collect();
    let relay_counter = |name: &str| -> f64 {
        surviving
            .iter()
            .map(|r| kasir_testkit::metric(&r.metrics(), &format!("kasir_relay_{name}_total")))
            .sum()
    };
    let (docs_parked, docs_unparked) =
        (relay_counter("docs_parked"), relay_counter("docs_unparked"));
    cancel.cancel();
    let mut reconnects = 0u64;
    for s in sessions {
        reconnects += rt.block_on(s).unwrap_or(0).saturating_sub(1);
    }

    // Nothing lost: tills = PostgreSQL = Kafka, per store.
    let all: Vec<Arc<SimTill>> = tills.iter().map(|(t, _)| Arc::clone(t)).collect();
    let tills_per_store = fleet::written_per_store(&all);
    let pg = rt.block_on(fleet::pg_sales_per_store(&db))?;
    let kafka = support::kafka_sales_per_store(&tansu.brokers(), written as usize, 300);
    let mut mismatched = Vec::new();
    for (store, till_side) in &tills_per_store {
        let p = pg.get(store).copied().unwrap_or_default();
        let k = kafka.get(store).copied().unwrap_or_default();
        if p != *till_side || k != *till_side {
            mismatched.push(json!({"store": store, "tills": till_side, "postgres": p, "kafka": k}));
        }
    }
    let lag = rt.block_on(lags(&bench_pool, live_start_ms))?;
    // The same once the backlog was in: what a current till sees in steady state.
    let steady_lag = match backlog_done_s {
        Some(s) if s < live_s => {
            rt.block_on(lags(&bench_pool, live_start_ms + (s * 1000.0) as i64))?
        }
        _ => Value::Null,
    };
    let tables = rt.block_on(table_sizes(&bench_pool))?;
    let pg_bytes = rt.block_on(db_size(&bench_pool))?;
    let pg_total_sales = in_pg.max(1) as f64;
    let bytes_per_sale = (pg_bytes - pg_bytes_before).max(0) as f64 / pg_total_sales;
    let busy_day_sales = cfg.tills_per_store as f64 * 12.0 * 3600.0 / cfg.sale_every_s;
    for (t, _) in &tills {
        rt.block_on(t.close());
    }
    rt.block_on(bench_pool.close());
    drop(relay2);
    drop(relay1);
    let result = json!({
        "stores": n,
        "tills": total_tills,
        "backlog_mix": mix,
        "relay_instances": if kill { 2 } else { 1 },
        "killed_instance_at_s": killed_at_s.map(|s| round(s, 1)),
        "setup": {
            "stores_created_s": round(create_s, 1),
            "tills_joined_s": round(join_s, 1),
            "backlog_written_s": round(backlog_write_s, 1),
        },
        "sales": {
            "backlog": backlog_sales,
            "live": live_sales,
            "live_rate_per_s": round(live_sales as f64 / live_s, 1),
            "in_postgres": in_pg,
            "materialised_per_s_over_live_and_drain": round(in_pg as f64 / busy_s, 1),
        },
        "seconds": {
            "live": round(live_s, 1),
            "drain_after_live": round(drain_s, 1),
            "backlog_in_postgres_after": backlog_done_s.map(|s| round(s, 1)),
        },
        "relay": {
            "rss_mb_before_live": round(rss_before, 1),
            "rss_mb_peak": round(rss_peak, 1),
            "rss_mb_end": round(rss_end, 1),
            "park_after_s": park_after_s,
            "rss_mb_settled": round(rss_settled, 1),
            "rss_kb_per_store_settled": round(rss_settled * 1024.0 / n as f64, 1),
            "docs_parked": docs_parked,
            "docs_unparked": docs_unparked,
            "rss_kb_per_store_peak": round(rss_peak * 1024.0 / n as f64, 1),
            "cpu_cores_busy": round(relay_cpu / busy_s, 2),
            "sessions_reconnected": reconnects,
        },
        "cpu_cores_busy_by_process": {
            "relay": round(relay_cpu / busy_s, 2),
            "postgres": round(pg_cpu / busy_s, 2),
            "tansu": round(tansu_cpu / busy_s, 2),
            "simulated_tills": round(sim_cpu / busy_s, 2),
        },
        "postgres": {
            "bytes_per_sale": bytes_per_sale.round(),
            "bytes_per_busy_store_day": (bytes_per_sale * busy_day_sales).round(),
            "busy_store_day_sales": busy_day_sales,
            "database_mb": round(pg_bytes as f64 / 1048576.0, 1),
        },
        "lag_ms_live_sales": lag,
        "lag_ms_live_sales_after_backlog": steady_lag,
        "postgres_bytes_per_sale_by_table": tables.iter().map(|(t, b)| (t.clone(), json!((*b as f64 / pg_total_sales).round()))).collect::<serde_json::Map<_, _>>(),
        "nothing_lost": {
            "stores_checked": tills_per_store.len(),
            "stores_mismatched": mismatched.len(),
            "tills_written": written,
            "postgres_sales": in_pg,
            "kafka_sale_events": kafka.values().map(|v| v.0).sum::<i64>(),
        },
    });
    if !mismatched.is_empty() {
        bail!(
            "sales lost or duplicated in {} stores: {}\n{result}",
            mismatched.len(),
            serde_json::to_string(&mismatched[..mismatched.len().min(5)]).unwrap_or_default()
        );
    }
    eprintln!("{result}");
    Ok(result)
}

/// Which tills start behind, from `rng`: 2 % a week, 8 % a day, the rest current.
fn backlogs(
    tills: Vec<Arc<SimTill>>,
    rng: &mut rand::rngs::StdRng,
) -> Vec<(Arc<SimTill>, Backlog)> {
    tills
        .into_iter()
        .map(|t| {
            let roll: f64 = rng.r#gen();
            let backlog = if roll < 0.02 {
                Backlog::OneWeek
            } else if roll < 0.10 {
                Backlog::OneDay
            } else {
                Backlog::Current
            };
            (t, backlog)
        })
        .collect()
}

async fn pool(db: &str) -> Result<sqlx::PgPool> {
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(db)
        .await?)
}

async fn count_sales(p: &sqlx::PgPool) -> Result<i64> {
    let n = sqlx::query_scalar("SELECT count(*) FROM sales")
        .fetch_one(p)
        .await?;
    Ok(n)
}

async fn count_sales_before(p: &sqlx::PgPool, ms: i64) -> Result<i64> {
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM sales WHERE created_at < to_timestamp($1::float8 / 1000)",
    )
    .bind(ms as f64)
    .fetch_one(p)
    .await?;
    Ok(n)
}

async fn pending_events(p: &sqlx::PgPool) -> Result<i64> {
    let n = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(p)
        .await?;
    Ok(n)
}

async fn db_size(p: &sqlx::PgPool) -> Result<i64> {
    let n = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(p)
        .await?;
    Ok(n)
}

/// The largest tables with their indexes and TOAST, in bytes.
async fn table_sizes(p: &sqlx::PgPool) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS t, pg_total_relation_size(c.oid) AS b
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname = 'public'
          ORDER BY b DESC LIMIT 8",
    )
    .fetch_all(p)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("t")?, r.try_get("b")?)))
        .collect()
}

/// Lag percentiles over the sales made in the live phase.
async fn lags(p: &sqlx::PgPool, live_start_ms: i64) -> Result<Value> {
    let pg = sqlx::query(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99,
                max(l) AS max, count(*) AS n
           FROM (SELECT extract(epoch FROM materialised_at - created_at) * 1000 AS l
                   FROM sales WHERE created_at >= to_timestamp($1::float8 / 1000)) x",
    )
    .bind(live_start_ms as f64)
    .fetch_one(p)
    .await?;
    let kafka = sqlx::query(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99,
                max(l) AS max, count(*) AS n
           FROM (SELECT extract(epoch FROM o.published_at - s.created_at) * 1000 AS l
                   FROM outbox o JOIN sales s ON s.sale_id = o.payload->>'sale_id'
                  WHERE o.topic = $2 AND o.payload->>'type' = 'sale'
                    AND s.created_at >= to_timestamp($1::float8 / 1000)) x",
    )
    .bind(live_start_ms as f64)
    .bind(TOPIC_SALES)
    .fetch_one(p)
    .await?;
    let row = |r: &sqlx::postgres::PgRow| -> Result<Value> {
        let get = |c: &str| -> Result<f64> { Ok(r.try_get::<Option<f64>, _>(c)?.unwrap_or(0.0)) };
        Ok(json!({
            "p50": round(get("p50")?, 1),
            "p99": round(get("p99")?, 1),
            "sales": r.try_get::<i64, _>("n")?,
        }))
    };
    Ok(json!({
        "commit_to_postgres_row": row(&pg)?,
        "commit_to_kafka_ack": row(&kafka)?,
    }))
}
