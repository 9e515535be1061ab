#![allow(missing_docs)]
//! The `kasir` command line honours ../shared/design/contract.md: every command's `--json` document has the
//! fields the contract names (with the right JSON types and values), human output is
//! printed without `--json`, every refusal is a non-zero exit with exactly one
//! `error: ...` line and writes nothing, receipts fit their paper width, `--client-id`
//! makes a sale idempotent, and weighed goods sell by the decimal quantity.

use std::process::Command;

use kasir_testkit::Till;
use kasir_testkit::process::kasir_bin;
use serde_json::Value;

/// A store with two products: `INDOMIE` (3.500, barcode, 100 on hand) and `BERAS`
/// (14.000 per kg, 50 kg on hand).
fn stocked_till() -> Till {
    let till = Till::init();
    till.ok(&[
        "product",
        "add",
        "--sku",
        "INDOMIE",
        "--name",
        "Indomie Goreng",
        "--price",
        "3500",
        "--barcode",
        "8998866200301",
        "--cost",
        "2800",
        "--stock",
        "100",
    ]);
    till.ok(&[
        "product",
        "add",
        "--sku",
        "BERAS",
        "--name",
        "Beras Pandan Wangi",
        "--price",
        "Rp14.000",
        "--unit",
        "kg",
        "--stock",
        "50",
    ]);
    till
}

/// Runs without `--json`; expects success and returns stdout.
fn human(till: &Till, args: &[&str]) -> String {
    let out = Command::new(kasir_bin())
        .arg("--data")
        .arg(till.path())
        .args(args)
        .env("KASIR_LOG", "warn")
        .output()
        .expect("run kasir");
    assert!(
        out.status.success(),
        "kasir {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Expects a refusal whose single `error: ` line mentions `needle` (case-insensitive).
fn refused(till: &Till, args: &[&str], needle: &str) -> String {
    let line = till.fails(args);
    assert!(
        line.starts_with("error: "),
        "{args:?}: error line {line:?} must start with `error: `"
    );
    assert!(
        line.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: error line {line:?} should mention {needle:?}"
    );
    line
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} must be a string in {v}"))
}

fn int_field(v: &Value, key: &str) -> i64 {
    assert!(
        v[key].is_i64() || v[key].is_u64(),
        "{key:?} must be an integer in {v}"
    );
    v[key].as_i64().expect("integer")
}

fn num_field(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key:?} must be a number in {v}"))
}

fn arr_field<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key:?} must be an array in {v}"))
}

fn on_hand(till: &Till, sku: &str) -> f64 {
    let v = till.ok(&["stock", "--sku", sku]);
    let rows = arr_field(&v, "stock");
    assert_eq!(rows.len(), 1, "one stock row for {sku}: {v}");
    assert_eq!(str_field(&rows[0], "sku"), sku);
    num_field(&rows[0], "on_hand")
}

fn sales(till: &Till) -> Vec<Value> {
    arr_field(&till.ok(&["sales"]), "sales").clone()
}

#[test]
fn init_prints_the_new_identity_and_refuses_a_second_init() {
    let till = Till::empty();
    let v = till.ok(&["init", "--store-name", "Warung Bu Sri", "--till-code", "k1"]);
    let store_id = str_field(&v, "store_id");
    assert_eq!(store_id.len(), 36, "store id is a UUID: {store_id}");
    let endpoint = str_field(&v, "endpoint_id");
    assert_eq!(
        endpoint.len(),
        64,
        "endpoint id is 32 bytes of hex: {endpoint}"
    );
    assert!(endpoint.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        str_field(&v, "till_code"),
        "K1",
        "till codes are upper-cased"
    );

    let status = till.ok(&["status"]);
    assert_eq!(str_field(&status, "store_id"), store_id);
    assert_eq!(str_field(&status, "endpoint_id"), endpoint);
    assert_eq!(str_field(&status, "till_code"), "K1");
    assert_eq!(
        arr_field(&status, "peers").len(),
        0,
        "a new store has no peers"
    );
    assert_eq!(int_field(&status, "unsynced_docs"), 0);

    refused(
        &till,
        &["init", "--store-name", "Lagi", "--till-code", "T2"],
        "already holds a store",
    );
    // The first store is untouched.
    assert_eq!(str_field(&till.ok(&["status"]), "store_id"), store_id);

    // Invalid till code and store name are refused before anything is created.
    let bad = Till::empty();
    refused(
        &bad,
        &["init", "--store-name", "Toko", "--till-code", "T 1"],
        "till code",
    );
    refused(
        &bad,
        &["init", "--store-name", "  ", "--till-code", "T1"],
        "store name",
    );
    assert!(
        !bad.path().join("kasir.sqlite").exists(),
        "a refused init leaves no database"
    );
}

#[test]
fn commands_on_an_empty_directory_say_to_init_first() {
    let till = Till::empty();
    for args in [
        &["status"][..],
        &["sales"],
        &["stock"],
        &["stock", "receive", "--sku", "A", "--qty", "1"],
        &["sell", "--item", "A"],
        &["product", "search", "a"],
        &[
            "product", "add", "--sku", "A", "--name", "A", "--price", "1",
        ],
        &["receipt", "0190a0b0-0000-7000-8000-000000000000"],
        &["void", "0190a0b0-0000-7000-8000-000000000000"],
    ] {
        refused(&till, args, "kasir init");
    }
    // Nothing was created by any of them.
    assert!(!till.path().join("kasir.sqlite").exists());
    // A data directory that does not exist at all is refused the same way.
    let missing = Till::empty();
    let gone = missing.path().join("nope");
    let out = Command::new(kasir_bin())
        .arg("--data")
        .arg(&gone)
        .args(["--json", "sales"])
        .env("KASIR_LOG", "warn")
        .output()
        .expect("run kasir");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("kasir init"), "{err}");
}

#[test]
fn data_directory_comes_from_kasir_data_when_no_flag_is_given() {
    let till = Till::init();
    let out = Command::new(kasir_bin())
        .args(["--json", "status"])
        .env("KASIR_DATA", till.path())
        .env("KASIR_LOG", "warn")
        .output()
        .expect("run kasir");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(str_field(&v, "till_code"), "T1");
}

#[test]
fn json_documents_have_the_contract_fields() {
    let till = stocked_till();

    // product add → {"product_id","sku"}; adding again updates the same product.
    let added = till.ok(&[
        "product",
        "add",
        "--sku",
        "KOPI",
        "--name",
        "Kopi Kapal Api 65g",
        "--price",
        "2.500",
    ]);
    assert_eq!(str_field(&added, "sku"), "KOPI");
    let pid = str_field(&added, "product_id").to_owned();
    assert!(!pid.is_empty());
    let again = till.ok(&[
        "product",
        "add",
        "--sku",
        "KOPI",
        "--name",
        "Kopi Kapal Api Special",
        "--price",
        "2700",
    ]);
    assert_eq!(
        str_field(&again, "product_id"),
        pid,
        "same SKU, same product"
    );

    // product search → {"products":[{"sku","name","price","barcodes":[...]}]}
    let found = till.ok(&["product", "search", "indomie"]);
    let products = arr_field(&found, "products");
    assert_eq!(products.len(), 1, "{found}");
    let p = &products[0];
    assert_eq!(str_field(p, "sku"), "INDOMIE");
    assert_eq!(str_field(p, "name"), "Indomie Goreng");
    assert_eq!(int_field(p, "price"), 3500);
    assert_eq!(
        arr_field(p, "barcodes"),
        &vec![Value::from("8998866200301")]
    );
    // By barcode, by SKU, with a typo, and with a limit.
    let by_barcode = till.ok(&["product", "search", "8998866200301"]);
    assert_eq!(
        str_field(&arr_field(&by_barcode, "products")[0], "sku"),
        "INDOMIE"
    );
    let by_sku = till.ok(&["product", "search", "KOPI"]);
    let first = &arr_field(&by_sku, "products")[0];
    assert_eq!(str_field(first, "name"), "Kopi Kapal Api Special");
    assert_eq!(
        int_field(first, "price"),
        2700,
        "the update replaced the price"
    );
    let typo = till.ok(&["product", "search", "indomi gorng"]);
    assert_eq!(
        str_field(&arr_field(&typo, "products")[0], "sku"),
        "INDOMIE",
        "{typo}"
    );
    let limited = till.ok(&["product", "search", "", "--limit", "2"]);
    assert_eq!(arr_field(&limited, "products").len(), 2, "{limited}");
    let none = till.ok(&["product", "search", "zzzqqq"]);
    assert!(arr_field(&none, "products").is_empty(), "{none}");

    // stock → {"stock":[{"sku","on_hand","oversold"}]}, every catalog product listed.
    let stock = till.ok(&["stock"]);
    let rows = arr_field(&stock, "stock");
    let skus: Vec<&str> = rows.iter().map(|r| str_field(r, "sku")).collect();
    assert_eq!(skus, ["BERAS", "INDOMIE", "KOPI"]);
    for r in rows {
        assert!(r["oversold"].is_boolean(), "{r}");
        num_field(r, "on_hand");
    }
    assert_eq!(num_field(&rows[0], "on_hand"), 50.0);
    assert_eq!(num_field(&rows[1], "on_hand"), 100.0);
    assert_eq!(num_field(&rows[2], "on_hand"), 0.0);

    // stock receive|adjust → {"movement_id"}; opname → {"movement_id","delta"}.
    let recv = till.ok(&[
        "stock",
        "receive",
        "--sku",
        "INDOMIE",
        "--qty",
        "20",
        "--note",
        "dari agen",
    ]);
    assert!(!str_field(&recv, "movement_id").is_empty());
    assert_eq!(on_hand(&till, "INDOMIE"), 120.0);
    let adj = till.ok(&[
        "stock", "adjust", "--sku", "INDOMIE", "--qty", "-5", "--note", "rusak",
    ]);
    assert!(!str_field(&adj, "movement_id").is_empty());
    assert_ne!(
        str_field(&adj, "movement_id"),
        str_field(&recv, "movement_id")
    );
    assert_eq!(on_hand(&till, "INDOMIE"), 115.0);
    // A movement by barcode moves the product's stock.
    till.ok(&["stock", "receive", "--sku", "8998866200301", "--qty", "1"]);
    assert_eq!(on_hand(&till, "INDOMIE"), 116.0);
    let opname = till.ok(&["stock", "opname", "--sku", "INDOMIE", "--counted", "110"]);
    assert!(!str_field(&opname, "movement_id").is_empty());
    assert_eq!(num_field(&opname, "delta"), -6.0);
    assert_eq!(on_hand(&till, "INDOMIE"), 110.0);

    // sell → {"sale_id","receipt_no","total","change"}
    let sale = till.ok(&[
        "sell",
        "--item",
        "INDOMIEx3",
        "--item",
        "KOPI",
        "--pay",
        "cash=20.000",
    ]);
    let sale_id = str_field(&sale, "sale_id").to_owned();
    let receipt_no = str_field(&sale, "receipt_no").to_owned();
    assert!(
        receipt_no.starts_with("T1-") && receipt_no.ends_with("-0001"),
        "{receipt_no}"
    );
    assert_eq!(int_field(&sale, "total"), 3 * 3500 + 2700);
    assert_eq!(int_field(&sale, "change"), 20_000 - (3 * 3500 + 2700));
    assert_eq!(on_hand(&till, "INDOMIE"), 107.0);
    assert_eq!(on_hand(&till, "KOPI"), -1.0);
    let kopi = till.ok(&["stock", "--sku", "KOPI"]);
    assert_eq!(kopi["stock"][0]["oversold"], Value::Bool(true), "{kopi}");

    // Default payment is exact cash: no change. Split payment works.
    let exact = till.ok(&["sell", "--item", "BERAS"]);
    assert_eq!(int_field(&exact, "total"), 14_000);
    assert_eq!(int_field(&exact, "change"), 0);
    let split = till.ok(&[
        "sell",
        "--item",
        "BERASx2",
        "--pay",
        "qris=10000",
        "--pay",
        "cash=20000",
    ]);
    assert_eq!(int_field(&split, "total"), 28_000);
    assert_eq!(int_field(&split, "change"), 2_000);

    // sales → {"sales":[{"sale_id","receipt_no","till_code","total","status","lines":[{"sku","qty","unit_price"}]}]}
    let listed = till.ok(&["sales"]);
    let list = arr_field(&listed, "sales");
    assert_eq!(list.len(), 3);
    let s = &list[0];
    assert_eq!(str_field(s, "sale_id"), sale_id);
    assert_eq!(str_field(s, "receipt_no"), receipt_no);
    assert_eq!(str_field(s, "till_code"), "T1");
    assert_eq!(int_field(s, "total"), 13_200);
    assert_eq!(str_field(s, "status"), "completed");
    let lines = arr_field(s, "lines");
    assert_eq!(lines.len(), 2);
    assert_eq!(str_field(&lines[0], "sku"), "INDOMIE");
    assert_eq!(num_field(&lines[0], "qty"), 3.0);
    assert_eq!(int_field(&lines[0], "unit_price"), 3500);
    assert_eq!(str_field(&lines[1], "sku"), "KOPI");
    assert_eq!(num_field(&lines[1], "qty"), 1.0);
    assert_eq!(int_field(&lines[1], "unit_price"), 2700);
    let receipts: Vec<&str> = list.iter().map(|s| str_field(s, "receipt_no")).collect();
    assert!(
        receipts[1].ends_with("-0002") && receipts[2].ends_with("-0003"),
        "{receipts:?}"
    );

    // sales --date: today's date holds them, another date holds none.
    let date = str_field(s, "business_date").to_owned();
    assert_eq!(
        arr_field(&till.ok(&["sales", "--date", &date]), "sales").len(),
        3,
        "date {date}"
    );
    assert!(arr_field(&till.ok(&["sales", "--date", "2001-01-01"]), "sales").is_empty());

    // receipt --json wraps the text.
    let r = till.ok(&["receipt", &sale_id]);
    let text = str_field(&r, "receipt");
    assert!(text.contains(&receipt_no), "{text}");

    // status → {"store_id","endpoint_id","till_code","peers":[{"endpoint_id","connected"}],"unsynced_docs"}
    let status = till.ok(&["status"]);
    assert_eq!(str_field(&status, "store_id").len(), 36);
    assert_eq!(str_field(&status, "endpoint_id").len(), 64);
    assert_eq!(str_field(&status, "till_code"), "T1");
    assert!(status["peers"].is_array());
    int_field(&status, "unsynced_docs");
}

#[test]
fn human_output_is_printed_without_json() {
    let fresh = Till::empty();
    let init = human(
        &fresh,
        &["init", "--store-name", "Toko Human", "--till-code", "H1"],
    );
    assert!(init.contains("H1"), "{init}");

    let till = stocked_till();
    let checks: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "product",
                "add",
                "--sku",
                "TEH",
                "--name",
                "Teh Botol",
                "--price",
                "4000",
            ],
            "TEH",
        ),
        (vec!["product", "search", "teh"], "Teh Botol"),
        (vec!["stock"], "INDOMIE"),
        (vec!["stock", "--sku", "BERAS"], "BERAS"),
        (
            vec!["stock", "receive", "--sku", "TEH", "--qty", "24"],
            "24",
        ),
        (vec!["stock", "adjust", "--sku", "TEH", "--qty", "-1"], "-1"),
        (
            vec!["stock", "opname", "--sku", "TEH", "--counted", "20"],
            "-3",
        ),
        (vec!["status"], "Warung Test"),
        (
            vec!["shift", "open", "--cashier", "Sari", "--cash", "50000"],
            "dibuka",
        ),
    ];
    for (args, needle) in checks {
        let out = human(&till, &args);
        assert!(!out.trim().is_empty(), "{args:?} printed nothing");
        assert!(
            out.contains(needle),
            "{args:?} should mention {needle:?}: {out}"
        );
        assert!(
            !out.trim_start().starts_with('{') || args[0] == "shift",
            "{args:?} printed JSON: {out}"
        );
    }
    let sold = human(&till, &["sell", "--item", "TEHx2", "--pay", "cash=10000"]);
    assert!(
        sold.contains("T1-") && sold.contains("8.000") && sold.contains("2.000"),
        "{sold}"
    );
    let sale_id = sold
        .lines()
        .find_map(|l| l.strip_prefix("sale id "))
        .expect("sale id line")
        .trim()
        .to_owned();
    let listed = human(&till, &["sales"]);
    assert!(
        listed.contains(&sale_id) && listed.contains("completed"),
        "{listed}"
    );
    let receipt = human(&till, &["receipt", &sale_id]);
    assert!(
        receipt.contains("TEH") || receipt.contains("Teh"),
        "{receipt}"
    );
    let voided = human(&till, &["void", &sale_id, "--reason", "salah input"]);
    assert!(voided.contains(&sale_id), "{voided}");
    let closed = human(&till, &["shift", "close", "--counted", "50000"]);
    assert!(
        closed.contains("Rp50.000") && closed.contains("selisih"),
        "{closed}"
    );
}

#[test]
fn refusals_exit_nonzero_with_one_error_line_and_write_nothing() {
    let till = stocked_till();
    let first = till.ok(&["sell", "--item", "INDOMIE"]);
    assert!(str_field(&first, "receipt_no").ends_with("-0001"));
    let sales_before = till.ok(&["sales"]);
    let stock_before = till.ok(&["stock"]);

    refused(&till, &["sell", "--item", "NOPE"], "unknown SKU");
    refused(
        &till,
        &["sell", "--item", "INDOMIE", "--item", "NOPE"],
        "NOPE",
    );
    refused(
        &till,
        &["sell", "--item", "INDOMIEx2", "--pay", "cash=100"],
        "short of the total 7000",
    );
    refused(&till, &["sell", "--item", ""], "unknown SKU");
    refused(
        &till,
        &["sell", "--item", "INDOMIE", "--pay", "cash=abc"],
        "not an amount",
    );
    refused(
        &till,
        &["sell", "--item", "INDOMIE", "--pay", "cash"],
        "METHOD=AMOUNT",
    );
    refused(
        &till,
        &["sell", "--item", "INDOMIE", "--pay", "cash=-5"],
        "not an amount",
    );
    refused(&till, &["sell", "--item", "INDOMIEx0"], "positive");
    refused(
        &till,
        &["sell", "--item", "INDOMIE", "--client-id", "has space"],
        "client id",
    );
    refused(
        &till,
        &["stock", "receive", "--sku", "INDOMIE", "--qty", "1.23456"],
        "1.23456",
    );
    refused(
        &till,
        &["stock", "receive", "--sku", "INDOMIE", "--qty", "-3"],
        "positive",
    );
    refused(
        &till,
        &["stock", "adjust", "--sku", "INDOMIE", "--qty", "0"],
        "non-zero",
    );
    refused(
        &till,
        &["stock", "receive", "--sku", "NOPE", "--qty", "1"],
        "unknown SKU",
    );
    refused(
        &till,
        &["stock", "opname", "--sku", "INDOMIE", "--counted", "lots"],
        "lots",
    );
    refused(&till, &["stock", "--sku", "NOPE"], "unknown SKU");
    refused(&till, &["sales", "--date", "2026-13-45"], "2026-13-45");
    refused(&till, &["receipt", "not-a-sale"], "not found");
    refused(
        &till,
        &["receipt", str_field(&first, "sale_id"), "--width", "10"],
        "width",
    );
    refused(&till, &["void", "not-a-sale"], "not found");
    refused(
        &till,
        &[
            "product", "add", "--sku", "X Y", "--name", "X", "--price", "1",
        ],
        "SKU",
    );
    refused(
        &till,
        &[
            "product", "add", "--sku", "X", "--name", "X", "--price", "12,5",
        ],
        "sen",
    );
    refused(
        &till,
        &["shift", "close", "--counted", "0"],
        "no open shift",
    );

    assert_eq!(
        till.ok(&["sales"]),
        sales_before,
        "a refused command wrote a sale"
    );
    assert_eq!(
        till.ok(&["stock"]),
        stock_before,
        "a refused command moved stock"
    );
    // Refused sales did not consume receipt numbers either.
    let next = till.ok(&["sell", "--item", "INDOMIE"]);
    assert!(str_field(&next, "receipt_no").ends_with("-0002"), "{next}");
}

#[test]
fn receipts_fit_their_paper_width() {
    let till = stocked_till();
    till.ok(&[
        "product",
        "add",
        "--sku",
        "MINYAK2L",
        "--name",
        "Minyak Goreng Bimoli Klasik Pouch Isi Ulang 2 Liter Promo Spesial Lebaran",
        "--price",
        "38.900",
    ]);
    let sale = till.ok(&[
        "sell",
        "--item",
        "MINYAK2Lx12",
        "--item",
        "INDOMIEx40",
        "--item",
        "BERASx2.5",
        "--pay",
        "cash=1.000.000",
    ]);
    let sale_id = str_field(&sale, "sale_id");
    let total = int_field(&sale, "total");
    assert_eq!(total, 12 * 38_900 + 40 * 3500 + 35_000);
    for width in [32usize, 48] {
        let w = width.to_string();
        let text = human(&till, &["receipt", sale_id, "--width", &w]);
        let json = till.ok(&["receipt", sale_id, "--width", &w]);
        assert_eq!(
            str_field(&json, "receipt"),
            text,
            "--json wraps the same text"
        );
        assert!(text.lines().count() > 10, "{text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= width,
                "line longer than {width}: {line:?}\n{text}"
            );
        }
        assert!(
            text.lines().any(|l| l.chars().count() == width),
            "some line (a rule) uses the full {width} columns:\n{text}"
        );
        assert!(text.contains(str_field(&sale, "receipt_no")), "{text}");
        assert!(text.contains("Terima kasih"), "{text}");
        // Amounts are never split across lines.
        assert!(text.contains("466.800"), "{text}");
        assert!(text.contains(&kasir_fmt(total)), "{text}");
    }
}

fn kasir_fmt(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

#[test]
fn a_repeated_client_id_returns_the_first_sale() {
    let till = stocked_till();
    let first = till.ok(&[
        "sell",
        "--item",
        "INDOMIEx2",
        "--client-id",
        "pos-7f3a-0001",
    ]);
    let second = till.ok(&[
        "sell",
        "--item",
        "INDOMIEx2",
        "--client-id",
        "pos-7f3a-0001",
    ]);
    assert_eq!(first, second, "the same client id returns the first result");
    // Even a different cart under the same id does not sell again.
    let third = till.ok(&["sell", "--item", "BERAS", "--client-id", "pos-7f3a-0001"]);
    assert_eq!(str_field(&third, "sale_id"), str_field(&first, "sale_id"));
    let list = sales(&till);
    assert_eq!(list.len(), 1, "only one sale exists: {list:?}");
    assert_eq!(on_hand(&till, "INDOMIE"), 98.0, "stock moved once");
    assert_eq!(on_hand(&till, "BERAS"), 50.0);
    // Another id is another sale.
    let other = till.ok(&[
        "sell",
        "--item",
        "INDOMIEx2",
        "--client-id",
        "pos-7f3a-0002",
    ]);
    assert_ne!(str_field(&other, "sale_id"), str_field(&first, "sale_id"));
    assert_eq!(sales(&till).len(), 2);
}

#[test]
fn weighed_goods_sell_by_decimal_quantity() {
    let till = stocked_till();
    let sale = till.ok(&["sell", "--item", "BERASx0.25"]);
    assert_eq!(int_field(&sale, "total"), 3_500);
    let sale2 = till.ok(&["sell", "--item", "BERAS*1,5", "--item", "INDOMIE"]);
    assert_eq!(int_field(&sale2, "total"), 21_000 + 3_500);
    let list = sales(&till);
    let line = &arr_field(&list[0], "lines")[0];
    assert_eq!(str_field(line, "sku"), "BERAS");
    assert_eq!(num_field(line, "qty"), 0.25);
    assert_eq!(int_field(line, "unit_price"), 14_000);
    assert_eq!(int_field(&list[0], "total"), 3_500);
    assert_eq!(num_field(&arr_field(&list[1], "lines")[0], "qty"), 1.5);
    assert_eq!(on_hand(&till, "BERAS"), 48.25);
    // A weight with sub-gram precision is not a quantity: refused as one, not guessed.
    refused(
        &till,
        &["sell", "--item", "BERASx0.0001"],
        "invalid quantity",
    );
    assert_eq!(sales(&till).len(), 2);
}

#[test]
fn void_and_shifts_as_extras() {
    let till = stocked_till();
    let opened = till.ok(&["shift", "open", "--cashier", "Sari", "--cash", "100.000"]);
    assert!(!str_field(&opened, "shift_id").is_empty());
    let cash = till.ok(&["sell", "--item", "INDOMIEx2", "--pay", "cash=10000"]);
    assert_eq!(int_field(&cash, "change"), 3_000);
    till.ok(&["sell", "--item", "BERAS", "--pay", "qris=14000"]);
    let voided_sale = till.ok(&["sell", "--item", "INDOMIEx10"]);
    assert_eq!(on_hand(&till, "INDOMIE"), 88.0);

    let sale_id = str_field(&voided_sale, "sale_id");
    let v = till.ok(&["void", sale_id, "--reason", "pelanggan batal"]);
    assert!(!str_field(&v, "void_id").is_empty());
    assert_eq!(
        on_hand(&till, "INDOMIE"),
        98.0,
        "a void brings the stock back"
    );
    let list = sales(&till);
    let status: Vec<&str> = list.iter().map(|s| str_field(s, "status")).collect();
    assert_eq!(status, ["completed", "completed", "voided"]);
    refused(&till, &["void", sale_id], "already voided");
    let receipt = human(&till, &["receipt", sale_id]);
    assert!(receipt.contains("DIBATALKAN"), "{receipt}");

    // Expected cash: opening + cash sales (the QRIS one and the voided one are not in the drawer).
    let closed = till.ok(&["shift", "close", "--counted", "106.500"]);
    assert_eq!(int_field(&closed, "expected_cash"), 107_000, "{closed}");
    assert_eq!(int_field(&closed, "counted_cash"), 106_500);
    assert_eq!(int_field(&closed, "difference"), -500);
    refused(
        &till,
        &["shift", "close", "--counted", "0"],
        "no open shift",
    );
}
