//! Three `kasir run` processes on loopback, syncing over real iroh sockets (`--no-mdns`,
//! `--peer`): concurrent sales on all three converge; two tills sell the last unit of a
//! SKU while partitioned and, after healing, every till shows it at −1 and oversold; a
//! device outside the roster is refused with a log line; a revoked till is cut off.
#![allow(missing_docs)]

use std::collections::BTreeSet;

use kasir_testkit::{Daemon, Till, free_port, wait_for};
use serde_json::{Value, json};

struct Member {
    till: Till,
    port: u16,
    eid: String,
    log: std::path::PathBuf,
}

impl Member {
    fn run(&self, peers: &[&Member]) -> Daemon {
        let listen = format!("127.0.0.1:{}", self.port);
        let peer_args: Vec<String> = peers
            .iter()
            .map(|p| format!("{}@127.0.0.1:{}", p.eid, p.port))
            .collect();
        let mut args = vec!["--no-mdns", "--listen", listen.as_str()];
        for p in &peer_args {
            args.push("--peer");
            args.push(p);
        }
        Daemon::start_with(self.till.path(), &args, Some(&self.log))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn member(till: Till) -> Member {
    let status = till.ok(&["status"]);
    let log = till.path().join("daemon.log");
    Member {
        till,
        port: free_port(),
        eid: status["endpoint_id"].as_str().expect("eid").to_owned(),
        log,
    }
}

fn sales(d: &Daemon) -> Vec<Value> {
    let (status, v) = d.get("/v1/sales");
    assert_eq!(status, 200);
    v["sales"].as_array().expect("sales").clone()
}

fn stock(d: &Daemon) -> Value {
    d.get("/v1/stock").1
}

fn sell(d: &Daemon, sku: &str, qty: u32) -> String {
    let (status, v) = d.post("/v1/sales", &json!({"lines": [{"sku": sku, "qty": qty}]}));
    assert_eq!(status, 201, "{v}");
    v["sale_id"].as_str().expect("id").to_owned()
}

fn converged(ds: &[&Daemon]) -> Option<Vec<Value>> {
    let first = sales(ds[0]);
    let first_stock = stock(ds[0]);
    ds[1..]
        .iter()
        .all(|d| sales(d) == first && stock(d) == first_stock)
        .then_some(first)
}

#[test]
fn three_tills_converge_after_concurrent_sales_and_a_partition() {
    // Till A creates the store; B and C join through A's daemon.
    let a = member(Till::init());
    for (sku, stock) in [("KOPI", "1000"), ("TEH", "1000"), ("LAST", "1")] {
        a.till.ok(&[
            "product", "add", "--sku", sku, "--name", sku, "--price", "2500", "--stock", stock,
        ]);
    }
    let da = a.run(&[]);
    let join = |code: &str| {
        let (status, v) = da.post("/v1/invites", &json!({"till_code": code}));
        assert_eq!(status, 201, "{v}");
        let till = Till::empty();
        let joined = till.ok(&["join", v["ticket"].as_str().expect("ticket")]);
        assert_eq!(joined["till_code"], code);
        member(till)
    };
    let b = join("B1");
    let c = join("C1");
    assert_eq!(
        b.till.ok(&["stock", "--sku", "LAST"])["stock"][0]["on_hand"],
        1.0,
        "join syncs the stock"
    );
    let db = b.run(&[&a]);
    let dc = c.run(&[&a]);
    wait_for(20, "all tills connected", || {
        let s = da.get("/v1/status").1;
        let peers = s["peers"].as_array()?;
        (peers.iter().filter(|p| p["connected"] == true).count() == 2).then_some(())
    });

    // Concurrent sales on all three.
    let mut expected = BTreeSet::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = [&da, &db, &dc]
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                s.spawn(move || {
                    (0..15)
                        .map(|n| sell(d, if (n + i) % 2 == 0 { "KOPI" } else { "TEH" }, 1))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            expected.extend(h.join().expect("seller"));
        }
    });
    let all = wait_for(30, "convergence after concurrent sales", || {
        converged(&[&da, &db, &dc])
    });
    let ids: BTreeSet<String> = all
        .iter()
        .map(|s| s["sale_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, expected, "every sale on every till, exactly once");
    assert_eq!(stock(&da)["stock"].as_array().map(Vec::len), Some(3));

    // Partition: B and C go offline and each sells the last unit.
    db.kill9();
    dc.kill9();
    let sold_b = b.till.ok(&["sell", "--item", "LAST"]);
    let sold_c = c.till.ok(&["sell", "--item", "LAST"]);
    assert_ne!(sold_b["sale_id"], sold_c["sale_id"]);
    // Heal.
    let db = b.run(&[&a]);
    let dc = c.run(&[&a]);
    let all = wait_for(30, "convergence after healing", || {
        converged(&[&da, &db, &dc])
    });
    assert_eq!(all.len(), expected.len() + 2);
    for d in [&da, &db, &dc] {
        let (_, last) = d.get("/v1/stock?sku=LAST");
        assert_eq!(last["stock"][0]["on_hand"], -1.0);
        assert_eq!(last["stock"][0]["oversold"], true);
    }

    // A device of another store that knows A's address gets nothing and is refused.
    let stranger = member(Till::init());
    let stranger_daemon = stranger.run(&[&a]);
    wait_for(20, "the refusal in A's log", || {
        a.log()
            .lines()
            .any(|l| l.contains("outside the store's roster") && l.contains(&stranger.eid))
            .then_some(())
    });
    assert!(sales(&stranger_daemon).is_empty());
    drop(stranger_daemon);

    // Revoke C: its session is cut, it is refused from then on, and it misses new sales.
    let (status, _) = da.post(&format!("/v1/devices/{}/revoke", c.eid), &json!({}));
    assert_eq!(status, 200);
    wait_for(20, "C refused as revoked", || {
        let logs = a.log() + &b.log();
        logs.lines()
            .any(|l| l.contains("revoked") && l.contains(&c.eid))
            .then_some(())
    });
    let after = sell(&da, "KOPI", 1);
    wait_for(20, "B sees the new sale", || {
        sales(&db)
            .iter()
            .any(|s| s["sale_id"] == after.as_str())
            .then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        !sales(&dc).iter().any(|s| s["sale_id"] == after.as_str()),
        "a revoked till still receives sales\nA: {}\nB: {}\nC: {}",
        a.log(),
        b.log(),
        c.log()
    );
}
