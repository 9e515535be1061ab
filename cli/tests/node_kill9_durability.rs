//! A sale acknowledged to the cashier survives `kill -9`.
//!
//! A client sells through the daemon's HTTP API as fast as it can while the daemon is
//! killed with SIGKILL at random moments, 20 times. After every restart: every
//! acknowledged sale is present exactly once, a retry of any sale (acknowledged or cut
//! off mid-flight) never duplicates it, receipt numbers are never reused, and stock equals
//! the initial stock minus every sale line.
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kasir_testkit::{Daemon, Till};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const SKUS: [&str; 3] = ["KOPI", "TEH", "GULA"];
const INITIAL: i64 = 100_000;

/// (client_id → (sale_id, receipt_no)) of acknowledged sales, and client ids attempted.
#[derive(Default)]
struct Ledger {
    acked: HashMap<String, (String, String)>,
    attempted: Vec<(String, Value)>,
}

fn sale_body(client_id: &str, n: u64) -> Value {
    let lines: Vec<Value> = (0..=(n % 3))
        .map(|i| json!({"sku": SKUS[((n + i) % 3) as usize], "qty": 1 + (n + i) % 2}))
        .collect();
    json!({"client_id": client_id, "lines": lines})
}

fn sell_until_dead(daemon: &Daemon, round: u64, ledger: &Mutex<Ledger>, stop: &AtomicBool) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let client_id = format!("r{round}-{n}");
        let body = sale_body(&client_id, n);
        ledger
            .lock()
            .expect("lock")
            .attempted
            .push((client_id.clone(), body.clone()));
        let resp = daemon
            .agent
            .post(format!("{}/v1/sales", daemon.base))
            .header("authorization", daemon.authorization())
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes());
        match resp {
            Ok(mut r) if r.status() == 201 => {
                let v: Value = r.body_mut().read_json().expect("json");
                let ids = (
                    v["sale_id"].as_str().expect("id").to_owned(),
                    v["receipt_no"].as_str().expect("no").to_owned(),
                );
                ledger.lock().expect("lock").acked.insert(client_id, ids);
            }
            Ok(r) => panic!("unexpected status {}", r.status()),
            Err(_) => return, // the daemon died mid-request: this sale is unacknowledged
        }
        n += 1;
    }
}

fn check_invariants(daemon: &Daemon, ledger: &Ledger) {
    let (status, sales) = daemon.get("/v1/sales");
    assert_eq!(status, 200);
    let sales = sales["sales"].as_array().expect("sales").clone();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut receipts = HashSet::new();
    for s in &sales {
        *by_id.entry(s["sale_id"].as_str().expect("id")).or_default() += 1;
        assert!(
            receipts.insert(s["receipt_no"].as_str().expect("no").to_owned()),
            "receipt number reused: {s}"
        );
    }
    for (client_id, (sale_id, _)) in &ledger.acked {
        assert_eq!(
            by_id.get(sale_id.as_str()),
            Some(&1),
            "acknowledged sale {client_id} lost or duplicated"
        );
    }
    let mut sold: BTreeMap<String, i64> = BTreeMap::new();
    for s in &sales {
        for l in s["lines"].as_array().expect("lines") {
            *sold
                .entry(l["sku"].as_str().expect("sku").to_owned())
                .or_default() += l["qty"].as_f64().expect("qty") as i64;
        }
    }
    let (_, stock) = daemon.get("/v1/stock");
    for row in stock["stock"].as_array().expect("stock") {
        let sku = row["sku"].as_str().expect("sku");
        let expected = INITIAL - sold.get(sku).copied().unwrap_or(0);
        assert_eq!(
            row["on_hand"].as_f64(),
            Some(expected as f64),
            "stock of {sku} != initial - sales"
        );
    }
}

#[test]
fn acknowledged_sales_survive_kill_dash_nine() {
    let till = Till::init();
    for sku in SKUS {
        till.ok(&[
            "product",
            "add",
            "--sku",
            sku,
            "--name",
            sku,
            "--price",
            "1000",
            "--stock",
            &INITIAL.to_string(),
        ]);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for round in 0..20u64 {
        let daemon = Arc::new(Daemon::start(till.path()));
        check_invariants(&daemon, &ledger.lock().expect("lock"));

        // Retry every earlier attempt: acknowledged ones must return their first result,
        // cut-off ones are created at most once.
        if round % 5 == 4 {
            let attempted = ledger.lock().expect("lock").attempted.clone();
            for (client_id, body) in attempted.iter().rev().take(50) {
                let (status, v) = daemon.post("/v1/sales", body);
                assert!(
                    status == 200 || status == 201,
                    "retry of {client_id}: {status} {v}"
                );
                if let Some((sale_id, _)) = ledger.lock().expect("lock").acked.get(client_id) {
                    assert_eq!(status, 200, "acknowledged sale re-created on retry");
                    assert_eq!(v["sale_id"].as_str(), Some(sale_id.as_str()));
                }
                let ids = (
                    v["sale_id"].as_str().expect("id").to_owned(),
                    v["receipt_no"].as_str().expect("no").to_owned(),
                );
                ledger
                    .lock()
                    .expect("lock")
                    .acked
                    .insert(client_id.clone(), ids);
            }
            check_invariants(&daemon, &ledger.lock().expect("lock"));
        }

        let stop = Arc::new(AtomicBool::new(false));
        let seller = {
            let (daemon, ledger, stop) = (daemon.clone(), ledger.clone(), stop.clone());
            std::thread::spawn(move || sell_until_dead(&daemon, round, &ledger, &stop))
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..250)));
        // SIGKILL while the seller is mid-flight.
        let pid = daemon.child.id() as i32;
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        stop.store(true, Ordering::Relaxed);
        seller.join().expect("seller thread");
        drop(daemon);
    }
    let daemon = Daemon::start(till.path());
    let ledger = ledger.lock().expect("lock");
    assert!(
        ledger.acked.len() > 40,
        "too few sales to prove anything: {}",
        ledger.acked.len()
    );
    check_invariants(&daemon, &ledger);
}
