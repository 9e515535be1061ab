//! Live state in the till app: a sale rung up on till B changes the stock on till A's
//! shelf and A's sales list without a reload (one server-sent event stream per page,
//! fed by every change the node commits, local or merged from a peer). Real daemons,
//! real iroh sync, real headless Chromium. How long it took is printed (a measurement,
//! not an assertion: timing belongs to benchmarks).

use std::path::PathBuf;
use std::time::Instant;

use kasir_testkit::browser::Browser;
use kasir_testkit::{Till, wait_for};
use serde_json::json;

#[test]
fn ui_browser_two_tills_a_sale_on_b_updates_a_without_a_reload() {
    let mut a = Till::with_owner("Toko Dua", "A1", "Bu Sri", "482916");
    a.add_user("Ani", "cashier", "1111");
    a.add_product("GULA", "Gulaku 1kg", "17500", "50", &[]);
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(30, "the catalog on B", || {
        let (_, p) = b.get("/v1/products?q=GULA");
        p["products"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
            .then_some(())
    });

    let base = a.running().base.clone();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots");
    let browser = Browser::start("two-tills", &shots);
    browser.goto(&base);
    browser.click("input[name=name][value='Ani']");
    browser.type_into("#pin", "1111");
    browser.click("#login-submit");
    browser.open_shift("0");
    let tile = "button.tile[data-sku=GULA] .stock";
    browser.wait_until("the shelf", |b| b.text(tile).contains("50"));

    let started = Instant::now();
    let (status, sold) = b.post("/v1/sales", &json!({"lines": [{"sku": "GULA", "qty": 2}]}));
    assert_eq!(status, 201, "{sold}");
    browser.wait_until("A's shelf to show B's sale", |b| {
        b.text(tile).contains("48")
    });
    eprintln!(
        "measured: till B's sale on till A's screen after {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(browser.path(), "/ui/kasir", "no reload, no navigation");
    browser.screenshots("after-b-sold");

    // The sales list follows too.
    browser.goto(&format!("{base}/ui/riwayat"));
    browser.find("tr.sale");
    let (status, _) = b.post("/v1/sales", &json!({"lines": [{"sku": "GULA", "qty": 1}]}));
    assert_eq!(status, 201);
    browser.wait_until("B's second sale in A's list", |b| b.count("tr.sale") == 2);
    assert_eq!(browser.js_errors(), Vec::<String>::new());
}
