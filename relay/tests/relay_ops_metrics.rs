//! Operations: a till's and the relay's `/metrics` pass Prometheus's own linter
//! (`promtool check metrics`), carry what an operator watches (sync lag per peer, the
//! materialisation lag, the PostgreSQL pool, the outbox), and every series the committed
//! Grafana dashboard (`docs/grafana/kasir.json`) draws is one they export. With
//! `KASIR_LOG_FORMAT=json` the relay logs one JSON object per line.

mod support;

use std::collections::BTreeSet;

use kasir_testkit::{metric, promtool_check};
use serde_json::{Value, json};
use support::{RelayProc, Tansu, Till, pg_sales, runtime, wait_for, wait_outbox_drained};

/// Every family and series name in a text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if !l.starts_with('#') => l.split(['{', ' ']).next(),
            None => None,
        })
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `kasir_*` names in every query of the dashboard.
fn dashboard_series() -> BTreeSet<String> {
    let path = kasir_testkit::foreign::root().join("docs/grafana/kasir.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("json");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("kasir_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn relay_ops_metrics_pass_promtool_and_feed_the_dashboard() {
    let rt = runtime();
    let db = support::fresh_database("ops_metrics");
    let tansu = Tansu::start();
    let relay = RelayProc::start_with(&db, Some(&tansu.brokers()), &[("KASIR_LOG_FORMAT", "json")]);
    let tenant = relay.tenant("Warung Pantau");
    let mut till = Till::with_owner("Warung Pantau", "T1", "Bu Ami", "24681357");
    till.ok(&[
        "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "5000", "--stock", "20",
    ]);
    let ticket = relay.adopt_ticket(&tenant, &till.store_id());
    assert_eq!(till.ok(&["join", &ticket])["adopted"], true);
    till.start(&[]);
    let (status, v) = till.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 2}]}));
    assert_eq!(status, 201, "{v}");
    wait_for(120, "the sale in PostgreSQL", || {
        (pg_sales(&rt, &db) == 1).then_some(())
    });
    wait_outbox_drained(&rt, &db, 60);

    // The till: lag per peer (the relay is its one peer, in step once synced).
    let till_text = wait_for(60, "the till in step with the relay", || {
        let (_, v) = till.get("/metrics");
        let text = v.as_str()?.to_owned();
        (metric(&text, "kasir_sync_peer_connected{peer=\"RELAY\"}") == 1.0
            && text.contains("kasir_sync_peer_behind_docs{peer=\"RELAY\"} 0"))
        .then_some(text)
    });
    promtool_check(&till_text);

    // The relay: the sale's lag from the till's commit, the pool, the outbox.
    let relay_text = relay.metrics();
    promtool_check(&relay_text);
    assert_eq!(
        metric(&relay_text, "kasir_relay_db_up"),
        1.0,
        "{relay_text}"
    );
    assert_eq!(metric(&relay_text, "kasir_relay_db_recent_sales"), 1.0);
    let lag = metric(&relay_text, "kasir_relay_materialise_lag_max_seconds");
    assert!((0.0..120.0).contains(&lag), "lag {lag}");
    assert!(metric(&relay_text, "kasir_relay_db_pool_max") >= 1.0);
    assert!(
        metric(&relay_text, "kasir_relay_db_pool_connections")
            >= metric(&relay_text, "kasir_relay_db_pool_idle")
    );
    assert_eq!(metric(&relay_text, "kasir_relay_outbox_pending"), 0.0);

    // Every series the dashboard draws is exported by one or the other.
    let mut names = exported(&till_text);
    names.extend(exported(&relay_text));
    let wanted = dashboard_series();
    assert!(wanted.len() >= 25, "{wanted:?}");
    let missing: Vec<&String> = wanted.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard draws series nobody exports: {missing:?}"
    );

    // The relay's log is one JSON object per line, for a log collector.
    let log = relay.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
}
