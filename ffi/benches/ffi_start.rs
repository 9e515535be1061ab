//! Open → served: how long an app waits from `KasirNode.open` to its WebView having the
//! till app's first page, on a store with 500 products and 300 sales. Printed as one
//! JSON document with, from the same run, the baseline of opening the node alone
//! (`open` + `status`), and the ratio between the two.
//!
//! Run: `cargo bench --workspace --bench ffi_start` (env `KASIR_BENCH_FFI_ROUNDS`,
//! default 10).

use std::time::{Duration, Instant};

use kasir_ffi::{KasirNode, SaleItem};
use kasir_testkit::percentile;
use serde_json::json;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn summary(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    json!({
        "p50": percentile(&samples, 0.5),
        "p95": percentile(&samples, 0.95),
        "max": samples.last().copied().unwrap_or(0.0),
    })
}

/// What the WebView does first: the one-time URL (a page setting the grant), then the
/// till app's page.
fn first_page(agent: &ureq::Agent, url: &str) {
    let granted = agent.get(url).call().expect("one-time URL");
    assert_eq!(granted.status(), 200, "one-time URL");
    let cookie = granted
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("grant cookie")
        .to_owned();
    let base = url.split('?').next().expect("base");
    let mut page = agent
        .get(base)
        .header("Cookie", &cookie)
        .call()
        .expect("till app");
    assert_eq!(page.status(), 200);
    let body = page.body_mut().read_to_string().expect("page");
    assert!(body.contains("lang=\"id\""), "{body}");
}

fn main() {
    let rounds: usize = std::env::var("KASIR_BENCH_FFI_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("till").display().to_string();
    {
        let node = KasirNode::init(dir.clone(), "Toko Bench".into(), "B1".into()).expect("init");
        for i in 0..500 {
            node.add_product(
                format!("SKU{i:04}"),
                format!("Produk {i}"),
                1000 + i,
                1000.0,
            )
            .expect("product");
        }
        for i in 0..300 {
            let item = SaleItem {
                sku: format!("SKU{:04}", i % 500),
                qty: 1.0,
            };
            node.sell(vec![item], None).expect("sale");
        }
        node.stop().expect("stop");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let (mut opened, mut served) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let node = KasirNode::open(dir.clone()).expect("open");
        node.status().expect("status");
        opened.push(ms(t.elapsed()));
        node.stop().expect("stop");

        let t = Instant::now();
        let node = KasirNode::open(dir.clone()).expect("open");
        let url = node.start().expect("start");
        first_page(&agent, &url);
        served.push(ms(t.elapsed()));
        node.stop().expect("stop");
    }
    let ratio = {
        let (mut o, mut s) = (opened.clone(), served.clone());
        o.sort_by(f64::total_cmp);
        s.sort_by(f64::total_cmp);
        percentile(&s, 0.5) / percentile(&o, 0.5).max(0.001)
    };
    let report = json!({
        "bench": "ffi_start",
        "rounds": rounds,
        "store": {"products": 500, "sales": 300},
        "baseline_open_ms": summary(opened),
        "open_to_served_ms": summary(served),
        "ratio_p50": (ratio * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
