//! The till app's back office in a real headless Chromium against a real daemon: a sale
//! found in Riwayat by part of its receipt number; a refund from its struk needs a
//! supervisor's PIN; Stok lists low and oversold first, takes goods received and a
//! stocktake (that one a supervisor's); a cashier cannot change a price, the owner can
//! (audited) and imports a product file with its refused rows listed; Tutup Kasir counts
//! the drawer note by note, the sum made by the server.

use std::path::PathBuf;

use kasir_testkit::Till;
use kasir_testkit::browser::Browser;
use serde_json::Value;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

/// Opens the stock move form of `sku` (again, should a live refresh have closed it),
/// once no live refresh of the table is in flight (its answer would close the form).
fn open_move(b: &Browser, sku: &str) {
    let row = format!("#stock tr.product[data-sku={sku}]");
    b.wait_until("the move form open", |b| {
        b.execute(&format!(
            "if (document.querySelector('#stock.htmx-request')) return false; \
             var d = document.querySelector('{row} details'); d.open = true; \
             return d.querySelector('input[name=qty]').offsetParent !== null"
        )) == Value::Bool(true)
    });
}

fn stock_of(till: &Till, sku: &str) -> f64 {
    let (_, stock) = till.get(&format!("/v1/stock?sku={sku}"));
    stock["stock"][0]["on_hand"].as_f64().expect("on_hand")
}

#[test]
fn ui_browser_back_office_refund_stock_prices_and_the_drawer_count() {
    let mut till = Till::with_owner("Warung Bu Sri", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.add_user("Sari", "supervisor", "3333");
    for (sku, name, price, stock) in [
        ("IDM", "Indomie Goreng", "3500", "50"),
        ("TEH", "Teh Botol Sosro", "5000", "30"),
        ("GULA", "Gulaku 1kg", "17500", "2"),
    ] {
        till.add_product(sku, name, price, stock, &[]);
    }
    till.start(&[]);
    let base = till.running().base.clone();
    let b = Browser::start("back-office", &shots());

    b.log_in(&base, "Ani", "1111");
    b.open_shift("20000");
    b.type_into("#scan", "3xIDM\n");
    b.wait_until("the cart", |b| b.text("#total") == "Rp10.500");
    b.click("#pay");
    b.click("button[data-amount='20000']");
    b.find("#receipt-change");

    // Riwayat: found by part of its receipt number (typed literally: `%` finds nothing).
    let (_, sales) = till.get("/v1/sales");
    let receipt_no = sales["sales"][0]["receipt_no"]
        .as_str()
        .expect("receipt_no")
        .to_owned();
    let tail = &receipt_no[receipt_no.len() - 4..];
    let (_, found) = till.get(&format!("/v1/sales?receipt={tail}"));
    assert_eq!(found["sales"].as_array().map(Vec::len), Some(1), "{found}");
    let (_, none) = till.get("/v1/sales?receipt=%25");
    assert_eq!(none["sales"].as_array().map(Vec::len), Some(0), "{none}");
    b.goto(&format!("{base}/ui/riwayat"));
    b.type_into("#receipt-search", "ZZZ");
    b.wait_until("nothing found", |b| b.count("#history tr.sale") == 0);
    b.execute("document.getElementById('receipt-search').value = ''; return 1");
    b.type_into("#receipt-search", tail);
    b.wait_until("the sale found", |b| {
        b.count("#history tr.sale") == 1 && b.text("#history h1").contains(tail)
    });
    b.screenshots("riwayat-cari");

    // Its struk → Retur one noodle: a supervisor's PIN is asked for.
    b.click("tr.sale td a");
    b.find("#refund");
    b.click("#refund summary");
    b.type_into("input[name=qty_0]", "1");
    b.type_into("#refund input[name=reason]", "kemasan rusak");
    b.click("#refund-submit");
    b.wait_until("the approval question", |b| {
        b.text("#refund-result").contains("PIN supervisor")
    });
    b.type_into("#refund input[name=approver]", "Sari");
    b.type_into("#refund input[name=approver_pin]", "3333");
    b.click("#refund-submit");
    b.wait_until("the refund", |b| b.count("#refund-done") == 1);
    assert!(
        b.text("#refund-done").contains("Rp3.500"),
        "{}",
        b.text("#refund-done")
    );
    b.screenshots("retur");
    let (_, sales) = till.get("/v1/sales");
    assert_eq!(sales["sales"][0]["status"], "partially_refunded", "{sales}");
    assert_eq!(stock_of(&till, "IDM"), 48.0);

    // Stok: the low product first; goods received by the cashier; a count needs Sari.
    b.goto(&format!("{base}/ui/stok"));
    b.find("#stock");
    assert_eq!(
        b.execute("return document.querySelector('#stock tr.product').dataset.sku"),
        Value::from("GULA"),
        "low stock first"
    );
    let row = "#stock tr.product[data-sku=IDM]";
    open_move(&b, "IDM");
    b.type_into(&format!("{row} input[name=qty]"), "12");
    b.type_into(&format!("{row} input[name=cost]"), "2.750");
    b.type_into(&format!("{row} input[name=supplier]"), "CV Sumber Rejeki");
    b.click(&format!("{row} form.move button"));
    b.wait_until("received", |b| b.text("#stock-message").contains("+12"));
    assert_eq!(stock_of(&till, "IDM"), 60.0);
    open_move(&b, "IDM");
    b.click(&format!("{row} label.chip:nth-child(2)"));
    b.type_into(&format!("{row} input[name=qty]"), "57");
    b.click(&format!("{row} form.move button"));
    b.wait_until("the approval question", |b| {
        b.text("#stock-message").contains("PIN supervisor")
    });
    assert_eq!(stock_of(&till, "IDM"), 60.0, "no count without approval");
    open_move(&b, "IDM");
    b.click(&format!("{row} label.chip:nth-child(2)"));
    b.type_into(&format!("{row} input[name=qty]"), "57");
    b.type_into(&format!("{row} input[name=approver]"), "Sari");
    b.type_into(&format!("{row} input[name=approver_pin]"), "3333");
    b.click(&format!("{row} form.move button"));
    b.wait_until("counted", |b| b.text("#stock-message").contains("-3"));
    assert_eq!(stock_of(&till, "IDM"), 57.0);
    b.wait_until("the average cost shown", |b| {
        b.text(&format!("{row} .hpp")).contains("2.750")
    });
    let (_, bought) = till.get("/v1/purchases?sku=IDM");
    assert_eq!(
        bought["purchases"][0]["supplier"], "CV Sumber Rejeki",
        "{bought}"
    );
    assert_eq!(bought["purchases"][0]["cost"], 2_750, "{bought}");
    b.screenshots("stok");

    // A cashier cannot change a price.
    b.click("#product-card summary");
    b.type_into("#product-form input[name=sku]", "TEH");
    b.type_into("#product-form input[name=name]", "Teh Botol Sosro");
    b.type_into("#product-form input[name=price]", "6000");
    b.click("#product-save");
    b.wait_until("refused", |b| b.text("#product-result").contains("manager"));
    let (_, teh) = till.get("/v1/products?q=TEH");
    assert_eq!(teh["products"][0]["price"], 5000);
    assert_eq!(b.js_errors(), Vec::<String>::new());

    // Tutup Kasir: 2 × Rp10.000 + 1 × Rp2.000 + 1 × Rp500, summed by the till.
    b.goto(&format!("{base}/ui/shift"));
    b.click("details.denominations summary");
    b.type_into("input[name=n_10000]", "2");
    b.type_into("input[name=n_2000]", "1");
    b.type_into("input[name=n_500]", "1");
    b.wait_until("the sum", |b| {
        b.count("#counted-sum") == 1 && b.text("#counted-sum") == "= Rp22.500"
    });
    assert_eq!(
        b.execute("return document.getElementById('counted_cash').value"),
        Value::from("22500")
    );
    b.screenshots("tutup-kasir");
    b.click("#close-shift");
    b.find("#shift-report");
    // 20.000 opening + 10.500 sold − 3.500 refunded = 27.000 expected; 22.500 counted.
    assert!(
        b.text("#shift-report").contains("-Rp4.500"),
        "{}",
        b.text("#shift-report")
    );

    // The owner changes the price; the change is audited.
    b.log_in(&base, "Bu Sri", "482916");
    b.find("#opening_cash"); // logged in: the shift is closed
    b.goto(&format!("{base}/ui/stok"));
    b.click("#product-card summary");
    b.type_into("#product-form input[name=sku]", "TEH");
    b.type_into("#product-form input[name=name]", "Teh Botol Sosro");
    b.type_into("#product-form input[name=price]", "6000");
    b.click("#product-save");
    b.find("#product-saved");
    let (_, teh) = till.get("/v1/products?q=TEH");
    assert_eq!(teh["products"][0]["price"], 6000);
    let (_, audit) = till.get("/v1/audit");
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "price_change" && e["user"] == "Bu Sri"),
        "{audit}"
    );

    // A product list from the supplier, as Excel exports it (semicolons): two rows go
    // in, the one with a broken price is listed with its row number.
    let dir = tempfile::tempdir().expect("tmp");
    let csv = dir.path().join("produk.csv");
    std::fs::write(
        &csv,
        "Kode;Nama Barang;Harga Jual;Stok\nKOPI;Kopi Kapal Api;Rp1.500;40\nSUSU;Susu Bendera;abc;5\nROTI;Roti Tawar;12.000;8\n",
    )
    .expect("csv");
    b.click("#import-card summary");
    b.type_into("#import-file", csv.to_str().expect("utf-8 path"));
    b.click("#import-submit");
    b.find("#import-done");
    assert!(
        b.text("#import-done").contains('2'),
        "{}",
        b.text("#import-done")
    );
    assert!(
        b.text("#import-errors").contains('3'),
        "{}",
        b.text("#import-errors")
    );
    b.screenshots("impor");
    let (_, roti) = till.get("/v1/products?q=ROTI");
    assert_eq!(roti["products"][0]["price"], 12_000, "{roti}");
    assert_eq!(stock_of(&till, "KOPI"), 40.0);
    assert_eq!(b.js_errors(), Vec::<String>::new());
}
