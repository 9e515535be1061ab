//! The till app on a cheap tablet: the cashier's three waits measured in a real headless
//! Chromium whose CPU is throttled 4× (Chrome DevTools' `Emulation.setCPUThrottlingRate`),
//! against the same run unthrottled as the baseline:
//!
//! - first paint of the sell page (`first-contentful-paint`, from the page's own clock),
//! - scan → line visible (the scan's request sent → the cart swapped in, page clock),
//! - Bayar → struk (tap on the cash amount → the struk's change on screen, wall clock
//!   through WebDriver, so it includes a few ms of driver round trips).
//!
//! Prints one JSON document. `KASIR_BENCH_ROUNDS` sets the sales per setting (12).
//! Run: `cargo bench --workspace --bench ui_throttled`.

use std::time::Instant;

use kasir_testkit::Till;
use kasir_testkit::browser::Browser;
use serde_json::{Value, json};

const BARCODES: [(&str, &str, &str, &str); 3] = [
    ("IDM", "Indomie Goreng", "3500", "8998866200578"),
    ("KOPI", "Kopi Kapal Api", "1500", "8991002101234"),
    ("TEH", "Teh Botol Sosro", "5000", "8886008101053"),
];

/// Records, in the page, how long each scan took from its request to the cart on screen.
const SCAN_TIMER: &str = r#"
window.__scanTimes = window.__scanTimes || [];
if (!window.__scanTimer) {
  window.__scanTimer = true;
  var started = null;
  document.addEventListener('htmx:configRequest', function (e) {
    if (e.detail.elt && e.detail.elt.id === 'scan-form') started = performance.now();
  });
  document.addEventListener('htmx:afterSettle', function (e) {
    if (started !== null && e.detail.elt && e.detail.elt.id === 'cart') {
      window.__scanTimes.push(performance.now() - started);
      started = null;
    }
  });
}
return 1;
"#;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    kasir_testkit::percentile(v, p)
}

fn stats(mut v: Vec<f64>) -> Value {
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "n": v.len(),
        "p50_ms": round(percentile(&mut v, 0.5)),
        "p95_ms": round(percentile(&mut v, 0.95)),
    })
}

/// One setting: `rounds` sales of three scans and a cash payment.
fn measure(b: &Browser, base: &str, rounds: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut paint, mut scan, mut pay) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.goto(&format!("{base}/ui/kasir"));
        b.find("#scan");
        let fcp = b.execute(
            "var p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
        );
        if let Some(ms) = fcp.as_f64() {
            paint.push(ms);
        }
        b.execute(SCAN_TIMER);
        for (n, (_, _, _, barcode)) in BARCODES.iter().enumerate() {
            b.type_into("#scan", &format!("{barcode}\n"));
            b.wait_until("the line", |b| b.count("#cart tr.line") == n + 1);
        }
        b.wait_until("three timings", |b| {
            b.execute("return window.__scanTimes.length").as_u64() == Some(3)
        });
        if let Value::Array(times) = b.execute("return window.__scanTimes") {
            scan.extend(times.iter().filter_map(Value::as_f64));
        }
        b.click("#pay");
        b.find("#pay-form button");
        let started = Instant::now();
        b.click("#pay-form button");
        b.find("#receipt-change");
        pay.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    (paint, scan, pay)
}

fn main() {
    let rounds: usize = std::env::var("KASIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut till = Till::with_owner("Warung Bench", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    for (sku, name, price, barcode) in BARCODES {
        till.add_product(sku, name, price, "10000", &["--barcode", barcode]);
    }
    till.start(&[]);
    let base = till.running().base.clone();
    let shots = std::env::temp_dir().join("kasir-bench-shots");
    let b = Browser::start("bench", &shots);
    b.goto(&base);
    b.click("input[name=name][value='Ani']");
    b.type_into("#pin", "1111");
    b.click("#login-submit");
    b.open_shift("0");

    let (paint, scan, pay) = measure(&b, &base, rounds);
    b.throttle_cpu(4.0);
    let (tpaint, tscan, tpay) = measure(&b, &base, rounds);
    let ratio = |slow: &[f64], fast: &[f64]| {
        let (mut s, mut f) = (slow.to_vec(), fast.to_vec());
        let (s, f) = (percentile(&mut s, 0.5), percentile(&mut f, 0.5));
        if f > 0.0 {
            (s / f * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    let out = json!({
        "rounds": rounds,
        "baseline": {"first_paint": stats(paint.clone()), "scan_to_line": stats(scan.clone()), "pay_to_struk": stats(pay.clone())},
        "cpu_throttled_4x": {"first_paint": stats(tpaint.clone()), "scan_to_line": stats(tscan.clone()), "pay_to_struk": stats(tpay.clone())},
        "throttled_over_baseline_p50": {
            "first_paint": ratio(&tpaint, &paint),
            "scan_to_line": ratio(&tscan, &scan),
            "pay_to_struk": ratio(&tpay, &pay),
        },
        "aims_ms": {"scan_to_line": 100, "pay_to_struk": 300, "first_paint": 1000},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    assert_eq!(b.js_errors(), Vec::<String>::new());
}
