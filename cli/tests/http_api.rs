#![allow(missing_docs)]
//! The till HTTP API of `kasir run` honours ../shared/design/contract.md: every endpoint the router serves
//! answers with the contract's status codes and JSON shapes, errors are
//! `{"error":{"code","message"}}` with the right status (400 unknown_sku and bad input,
//! 422 insufficient_payment, 404 unknown endpoint), a refused sale writes nothing, a
//! repeated `client_id` returns the first result with 200, a 201 sale survives `kill -9`,
//! and CLI commands on a directory held by the daemon go through it.

use kasir_testkit::{Daemon, Till};
use serde_json::{Value, json};

/// A till with `INDOMIE` (3.500, barcode, 100 on hand) and `BERAS` (14.000/kg, 50 kg),
/// both added through the API, and its daemon.
fn stocked() -> (Till, Daemon) {
    let till = Till::init();
    let d = till.daemon();
    let (code, body) = d.post(
        "/v1/products",
        &json!({"sku": "INDOMIE", "name": "Indomie Goreng", "price": 3500, "barcode": "8998866200301", "cost": 2800, "stock": 100}),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["sku"], "INDOMIE");
    assert!(
        body["product_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let (code, body) = d.post(
        "/v1/products",
        &json!({"sku": "BERAS", "name": "Beras Pandan Wangi", "price": 14000, "stock": 50}),
    );
    assert_eq!(code, 201, "{body}");
    (till, d)
}

/// Asserts the contract's error shape and returns the code.
fn error_code(status: u16, body: &Value, want_status: u16) -> String {
    assert_eq!(status, want_status, "status of {body}");
    let err = &body["error"];
    let code = err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error.code must be a string: {body}"));
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "error.code must be snake_case: {code:?}"
    );
    let message = err["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error.message must be a string: {body}"));
    assert!(!message.is_empty(), "{body}");
    code.to_owned()
}

fn on_hand(d: &Daemon, sku: &str) -> f64 {
    let (code, body) = d.get(&format!("/v1/stock?sku={sku}"));
    assert_eq!(code, 200, "{body}");
    let rows = body["stock"].as_array().expect("stock array");
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["sku"], sku);
    rows[0]["on_hand"].as_f64().expect("on_hand number")
}

/// GET returning (status, content-type, body text).
fn get_text(d: &Daemon, path: &str) -> (u16, String, String) {
    let mut resp = d
        .agent
        .get(format!("{}{path}", d.base))
        .header("authorization", d.authorization())
        .call()
        .expect("GET");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        status,
        ctype,
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn health_status_products_and_stock() {
    let (till, d) = stocked();
    assert_eq!(d.get("/v1/health"), (200, json!({"ok": true})));

    let (code, status) = d.get("/v1/status");
    assert_eq!(code, 200);
    let cli_status = till_status_fields(&status);
    assert_eq!(cli_status.0.len(), 36, "{status}");
    assert_eq!(cli_status.1.len(), 64, "{status}");
    assert_eq!(status["till_code"], "T1");
    assert_eq!(status["peers"], json!([]));
    assert!(status["unsynced_docs"].is_u64(), "{status}");
    // The same document `kasir status --json` prints (the CLI goes through this daemon).
    assert_eq!(till.ok(&["status"]), status);

    // Search: by name, by barcode, with a limit; an empty query lists by name.
    let (code, found) = d.get("/v1/products?q=indomie&limit=5");
    assert_eq!(code, 200);
    let p = &found["products"][0];
    assert_eq!(p["sku"], "INDOMIE");
    assert_eq!(p["name"], "Indomie Goreng");
    assert_eq!(p["price"], 3500);
    assert_eq!(p["barcodes"], json!(["8998866200301"]));
    assert_eq!(
        found["products"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    let (_, by_barcode) = d.get("/v1/products?q=8998866200301");
    assert_eq!(by_barcode["products"][0]["sku"], "INDOMIE");
    let (_, all) = d.get("/v1/products");
    let names: Vec<&str> = all["products"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["Beras Pandan Wangi", "Indomie Goreng"]);
    let (_, one) = d.get("/v1/products?q=&limit=1");
    assert_eq!(one["products"].as_array().map(Vec::len), Some(1));

    // Updating a product answers with the same id.
    let (_, first) = d.get("/v1/products?q=BERAS");
    let (code, upd) = d.post(
        "/v1/products",
        &json!({"sku": "BERAS", "name": "Beras Pandan Wangi 5kg", "price": 15000}),
    );
    assert_eq!(code, 201);
    assert_eq!(upd["product_id"], first["products"][0]["product_id"]);

    // Stock: all, and one SKU.
    let (code, stock) = d.get("/v1/stock");
    assert_eq!(code, 200);
    assert_eq!(
        stock,
        json!({"stock": [
            {"sku": "BERAS", "on_hand": 50.0, "oversold": false},
            {"sku": "INDOMIE", "on_hand": 100.0, "oversold": false},
        ]})
    );
    assert_eq!(on_hand(&d, "BERAS"), 50.0);
    let (code, body) = d.get("/v1/stock?sku=NOPE");
    assert_eq!(error_code(code, &body, 400), "unknown_sku");
}

fn till_status_fields(v: &Value) -> (String, String) {
    (
        v["store_id"].as_str().expect("store_id").to_owned(),
        v["endpoint_id"].as_str().expect("endpoint_id").to_owned(),
    )
}

#[test]
fn stock_movements() {
    let (_till, d) = stocked();
    let (code, r) = d.post(
        "/v1/stock/movements",
        &json!({"kind": "receive", "sku": "INDOMIE", "qty": 24, "note": "dari agen"}),
    );
    assert_eq!(code, 201, "{r}");
    assert!(
        r["movement_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    assert_eq!(on_hand(&d, "INDOMIE"), 124.0);
    let (code, a) = d.post(
        "/v1/stock/movements",
        &json!({"kind": "adjust", "sku": "8998866200301", "qty": -4}),
    );
    assert_eq!(code, 201, "{a}");
    assert_ne!(a["movement_id"], r["movement_id"]);
    assert_eq!(on_hand(&d, "INDOMIE"), 120.0);
    let (code, o) = d.post(
        "/v1/stock/movements",
        &json!({"kind": "opname", "sku": "BERAS", "counted": 47.5}),
    );
    assert_eq!(code, 201, "{o}");
    assert!(o["movement_id"].is_string());
    assert_eq!(o["delta"], json!(-2.5));
    assert_eq!(on_hand(&d, "BERAS"), 47.5);

    let (_, before) = d.get("/v1/stock");
    for (body, want) in [
        (
            json!({"kind": "steal", "sku": "BERAS", "qty": 1}),
            "invalid_request",
        ),
        (
            json!({"kind": "receive", "sku": "BERAS"}),
            "invalid_request",
        ),
        (
            json!({"kind": "receive", "sku": "BERAS", "qty": "5"}),
            "invalid_request",
        ),
        (
            json!({"kind": "receive", "sku": "BERAS", "qty": 1.23456}),
            "invalid_request",
        ),
        (
            json!({"kind": "receive", "sku": "BERAS", "qty": -1}),
            "invalid_request",
        ),
        (
            json!({"kind": "adjust", "sku": "BERAS", "qty": 0}),
            "invalid_request",
        ),
        (
            json!({"kind": "opname", "sku": "BERAS", "counted": -1}),
            "invalid_request",
        ),
        (
            json!({"kind": "receive", "sku": "NOPE", "qty": 1}),
            "unknown_sku",
        ),
        (json!({"kind": "receive", "qty": 1}), "invalid_json"),
    ] {
        let (code, resp) = d.post("/v1/stock/movements", &body);
        assert_eq!(error_code(code, &resp, 400), want, "{body} → {resp}");
    }
    assert_eq!(
        d.get("/v1/stock").1,
        before,
        "refused movements moved stock"
    );
}

#[test]
fn sales_receipts_voids_and_metrics() {
    let (_till, d) = stocked();
    let (code, sale) = d.post(
        "/v1/sales",
        &json!({"client_id": "hp-1", "lines": [{"sku": "INDOMIE", "qty": 3}, {"sku": "BERAS", "qty": 0.25}],
                "payments": [{"method": "cash", "amount": 20000}]}),
    );
    assert_eq!(code, 201, "{sale}");
    assert_eq!(sale["total"], 3 * 3500 + 3500);
    assert_eq!(sale["change"], 20_000 - 14_000);
    let sale_id = sale["sale_id"].as_str().expect("sale_id").to_owned();
    let receipt_no = sale["receipt_no"].as_str().expect("receipt_no").to_owned();
    assert!(
        receipt_no.starts_with("T1-") && receipt_no.ends_with("-0001"),
        "{receipt_no}"
    );

    // The same client_id again: 200 with the first result, nothing sold twice.
    let (code, again) = d.post(
        "/v1/sales",
        &json!({"client_id": "hp-1", "lines": [{"sku": "INDOMIE", "qty": 3}]}),
    );
    assert_eq!(code, 200);
    assert_eq!(again, sale);
    assert_eq!(on_hand(&d, "INDOMIE"), 97.0);
    assert_eq!(on_hand(&d, "BERAS"), 49.75);

    // Without payments: exact cash.
    let (code, exact) = d.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "8998866200301", "qty": 2}]}),
    );
    assert_eq!(code, 201);
    assert_eq!(
        (exact["total"].as_i64(), exact["change"].as_i64()),
        (Some(7000), Some(0))
    );

    // List, as the CLI prints it.
    let (code, list) = d.get("/v1/sales");
    assert_eq!(code, 200);
    let sales = list["sales"].as_array().expect("sales");
    assert_eq!(sales.len(), 2);
    let s = &sales[0];
    assert_eq!(s["sale_id"], sale_id.as_str());
    assert_eq!(s["receipt_no"], receipt_no.as_str());
    assert_eq!(s["till_code"], "T1");
    assert_eq!(s["total"], 14_000);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["lines"][0]["sku"], "INDOMIE");
    assert_eq!(s["lines"][0]["qty"], json!(3.0));
    assert_eq!(s["lines"][0]["unit_price"], 3500);
    assert_eq!(s["lines"][1]["sku"], "BERAS");
    assert_eq!(s["lines"][1]["qty"], json!(0.25));
    assert_eq!(s["lines"][1]["unit_price"], 14_000);
    let date = s["business_date"].as_str().expect("business_date");
    assert_eq!(d.get(&format!("/v1/sales?date={date}")).1, list);
    assert_eq!(d.get("/v1/sales?date=2001-01-01").1, json!({"sales": []}));
    let (code, body) = d.get("/v1/sales?date=2026-13-45");
    assert_eq!(error_code(code, &body, 400), "invalid_request");

    // One sale in full.
    let (code, full) = d.get(&format!("/v1/sales/{sale_id}"));
    assert_eq!(code, 200, "{full}");
    assert_eq!(full["receipt_no"], receipt_no.as_str());
    assert_eq!(full["total"], 14_000);
    assert_eq!(full["status"], "completed");
    let (code, body) = d.get("/v1/sales/no-such-sale");
    assert_eq!(error_code(code, &body, 404), "not_found");

    // Receipt: plain text, fitting its width.
    for width in [32usize, 48] {
        let (code, ctype, text) =
            get_text(&d, &format!("/v1/sales/{sale_id}/receipt?width={width}"));
        assert_eq!(code, 200, "{text}");
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        assert!(text.contains(&receipt_no), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= width), "{text}");
        assert!(text.lines().any(|l| l.chars().count() == width), "{text}");
    }
    let (code, _, default_width) = get_text(&d, &format!("/v1/sales/{sale_id}/receipt"));
    assert_eq!(code, 200);
    assert!(default_width.lines().all(|l| l.chars().count() <= 32));
    let (code, body) = d.get(&format!("/v1/sales/{sale_id}/receipt?width=5"));
    assert_eq!(error_code(code, &body, 400), "invalid_request");
    let (code, body) = d.get("/v1/sales/no-such-sale/receipt");
    assert_eq!(error_code(code, &body, 404), "not_found");

    // Void: stock comes back, status changes, a second void conflicts.
    let (code, v) = d.post(
        &format!("/v1/sales/{sale_id}/void"),
        &json!({"reason": "batal"}),
    );
    assert_eq!(code, 201, "{v}");
    assert!(v["void_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(on_hand(&d, "INDOMIE"), 98.0);
    assert_eq!(on_hand(&d, "BERAS"), 50.0);
    assert_eq!(d.get(&format!("/v1/sales/{sale_id}")).1["status"], "voided");
    assert_eq!(d.get("/v1/sales").1["sales"][0]["status"], "voided");
    let (code, body) = d.post_raw(&format!("/v1/sales/{sale_id}/void"), b"");
    assert_eq!(error_code(code, &body, 409), "conflict");
    let (code, body) = d.post("/v1/sales/no-such-sale/void", &json!({}));
    assert_eq!(error_code(code, &body, 404), "not_found");
    let (code, _, voided) = get_text(&d, &format!("/v1/sales/{sale_id}/receipt"));
    assert_eq!(code, 200);
    assert!(voided.contains("DIBATALKAN"), "{voided}");

    // Metrics: Prometheus text.
    let (code, ctype, text) = get_text(&d, "/metrics");
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(text.contains("# TYPE kasir_sales gauge"), "{text}");
    assert!(text.lines().any(|l| l == "kasir_sales 2"), "{text}");
    assert!(text.lines().any(|l| l == "kasir_products 2"), "{text}");
    assert!(
        text.lines().any(|l| l == "kasir_sales_created_total 2"),
        "{text}"
    );
    kasir_testkit::promtool_check(&text);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').expect("`name value`");
        assert!(name.starts_with("kasir_"), "{line}");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
    }
}

#[test]
fn errors_have_the_contract_shape_and_refused_sales_write_nothing() {
    let (_till, d) = stocked();
    let (_, sales_before) = d.get("/v1/sales");
    let (_, stock_before) = d.get("/v1/stock");
    let (_, metrics_before) = d.get("/metrics");

    let (code, body) = d.post("/v1/sales", &json!({"lines": [{"sku": "NOPE", "qty": 1}]}));
    assert_eq!(error_code(code, &body, 400), "unknown_sku");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NOPE")),
        "{body}"
    );
    let (code, body) = d.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "INDOMIE", "qty": 2}], "payments": [{"method": "cash", "amount": 100}]}),
    );
    assert_eq!(error_code(code, &body, 422), "insufficient_payment");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("7000")),
        "{body}"
    );
    // A refused sale with a client id does not reserve it.
    let (code, body) = d.post(
        "/v1/sales",
        &json!({"client_id": "retry-me", "lines": [{"sku": "INDOMIE", "qty": 1}], "payments": [{"method": "cash", "amount": 1}]}),
    );
    assert_eq!(error_code(code, &body, 422), "insufficient_payment");

    let malformed: [&[u8]; 5] = [
        b"{\"lines\": [",
        b"",
        b"not json at all",
        b"[]",
        b"{\"lines\": [{\"sku\": \"INDOMIE\", \"qty\": 1}], \"payments\": [{\"method\": \"cash\", \"amount\": \"lots\"}]}",
    ];
    for raw in malformed {
        let (code, body) = d.post_raw("/v1/sales", raw);
        assert_eq!(
            error_code(code, &body, 400),
            "invalid_json",
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    for bad in [
        json!({"lines": [{"sku": "INDOMIE", "qty": "2"}]}),
        json!({"lines": [{"sku": "INDOMIE", "qty": 0}]}),
        json!({"lines": [{"sku": "INDOMIE", "qty": -1}]}),
        json!({"lines": [{"sku": "INDOMIE", "qty": 1.23456}]}),
        json!({"lines": []}),
        json!({"lines": [{"sku": "INDOMIE", "qty": 1}], "client_id": "has space"}),
        json!({"lines": [{"sku": "INDOMIE", "qty": 1}], "payments": [{"method": "cash", "amount": -5}]}),
    ] {
        let (code, body) = d.post("/v1/sales", &bad);
        assert_eq!(code, 400, "{bad} → {body}");
        error_code(code, &body, 400);
    }
    // Products: price as a float or a string, missing name, negative price.
    for bad in [
        json!({"sku": "X", "name": "X", "price": 3500.5}),
        json!({"sku": "X", "name": "X", "price": "3500"}),
        json!({"sku": "X", "price": 3500}),
        json!({"sku": "X", "name": "X", "price": -1}),
        json!({"sku": "X", "name": "X", "price": 1, "stock": "ten"}),
        json!({"sku": "X Y", "name": "X", "price": 1}),
    ] {
        let (code, body) = d.post("/v1/products", &bad);
        error_code(code, &body, 400);
    }
    let (code, body) = d.post_raw("/v1/products", b"{");
    assert_eq!(error_code(code, &body, 400), "invalid_json");

    // Unknown endpoints (`/` is the till app: `ui_browser_sell.rs`).
    for path in ["/v1/nope", "/v2/sales", "/ui/nope/nope/nope"] {
        let (code, body) = d.get(path);
        assert_eq!(error_code(code, &body, 404), "not_found", "{path}");
    }
    let (code, body) = d.post("/v1/unknown", &json!({}));
    assert_eq!(error_code(code, &body, 404), "not_found");

    // Nothing of that was written.
    assert_eq!(d.get("/v1/sales").1, sales_before);
    assert_eq!(d.get("/v1/stock").1, stock_before);
    let (_, products) = d.get("/v1/products?q=X");
    assert_eq!(
        products,
        json!({"products": []}),
        "a refused product was written"
    );
    assert_eq!(d.get("/metrics").1, metrics_before);
    // The client id of a refused sale is still free.
    let (code, ok) = d.post(
        "/v1/sales",
        &json!({"client_id": "retry-me", "lines": [{"sku": "INDOMIE", "qty": 1}], "payments": [{"method": "cash", "amount": 5000}]}),
    );
    assert_eq!(code, 201, "{ok}");
    assert!(
        ok["receipt_no"]
            .as_str()
            .is_some_and(|r| r.ends_with("-0001")),
        "{ok}"
    );
}

#[test]
fn query_parameters_of_the_wrong_type_get_the_error_shape() {
    let (_till, d) = stocked();
    let (code, sale) = d.post(
        "/v1/sales",
        &json!({"lines": [{"sku": "INDOMIE", "qty": 1}]}),
    );
    assert_eq!(code, 201);
    let sale_id = sale["sale_id"].as_str().expect("sale id");
    let (code, body) = d.get("/v1/products?q=a&limit=many");
    error_code(code, &body, 400);
    let (code, body) = d.get(&format!("/v1/sales/{sale_id}/receipt?width=wide"));
    error_code(code, &body, 400);
    // A wrong method on a known path is an error in the same shape.
    let resp = d
        .agent
        .delete(format!("{}/v1/sales", d.base))
        .header("authorization", d.authorization())
        .call()
        .expect("DELETE");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    error_code(status, &body, 405);
}

#[test]
fn cli_commands_go_through_the_running_daemon() {
    let (till, d) = stocked();
    // The daemon holds the directory, so these must be served by it.
    let sold = till.ok(&[
        "sell",
        "--item",
        "INDOMIEx2",
        "--item",
        "BERASx0.5",
        "--pay",
        "cash=20000",
        "--client-id",
        "cli-1",
    ]);
    assert_eq!(sold["total"], 7000 + 7000);
    assert_eq!(sold["change"], 6000);
    let again = till.ok(&["sell", "--item", "INDOMIEx2", "--client-id", "cli-1"]);
    assert_eq!(again, sold, "idempotent through the daemon too");
    let (code, list) = d.get("/v1/sales");
    assert_eq!(code, 200);
    let sales = list["sales"].as_array().expect("sales");
    assert_eq!(sales.len(), 1);
    assert_eq!(sales[0]["sale_id"], sold["sale_id"]);
    assert_eq!(sales[0]["lines"][1]["qty"], json!(0.5));

    let stock = till.ok(&["stock"]);
    assert_eq!(stock, d.get("/v1/stock").1);
    assert_eq!(
        stock["stock"][1],
        json!({"sku": "INDOMIE", "on_hand": 98.0, "oversold": false})
    );
    assert_eq!(
        till.ok(&["stock", "--sku", "BERAS"])["stock"][0]["on_hand"],
        json!(49.5)
    );
    assert_eq!(till.ok(&["sales"]), list);

    let added = till.ok(&[
        "product",
        "add",
        "--sku",
        "TEH",
        "--name",
        "Teh Botol",
        "--price",
        "4.000",
        "--barcode",
        "899",
        "--stock",
        "10",
    ]);
    assert_eq!(added["sku"], "TEH");
    assert_eq!(
        till.ok(&["product", "search", "teh botol"])["products"][0]["barcodes"],
        json!(["899"])
    );
    let mv = till.ok(&["stock", "receive", "--sku", "TEH", "--qty", "2"]);
    assert!(mv["movement_id"].is_string());
    let op = till.ok(&["stock", "opname", "--sku", "TEH", "--counted", "11"]);
    assert_eq!(op["delta"], json!(-1.0));
    assert_eq!(on_hand(&d, "TEH"), 11.0);

    let sale_id = sold["sale_id"].as_str().expect("sale id");
    let receipt = till.ok(&["receipt", sale_id, "--width", "48"]);
    let text = receipt["receipt"].as_str().expect("receipt text");
    assert!(
        text.contains(sold["receipt_no"].as_str().expect("receipt_no")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 48));
    assert!(till.ok(&["void", sale_id])["void_id"].is_string());
    assert_eq!(d.get(&format!("/v1/sales/{sale_id}")).1["status"], "voided");
    assert_eq!(till.ok(&["status"])["till_code"], "T1");

    // Refusals come back as one error line, and write nothing.
    let before = d.get("/v1/sales").1;
    let line = till.fails(&["sell", "--item", "NOPE"]);
    assert!(
        line.starts_with("error: ") && line.contains("NOPE"),
        "{line}"
    );
    let line = till.fails(&["sell", "--item", "INDOMIE", "--pay", "cash=100"]);
    assert!(line.contains("short"), "{line}");
    let line = till.fails(&["sales", "--date", "2026-13-45"]);
    assert!(line.contains("2026-13-45"), "{line}");
    assert_eq!(d.get("/v1/sales").1, before);
    // Shifts go through the daemon like the rest.
    let opened = till.ok(&["shift", "open", "--cashier", "Sari"]);
    assert!(opened["shift_id"].is_string(), "{opened}");
    // Commands that need the directory itself say so.
    let line = till.fails(&["rebuild"]);
    assert!(line.contains("in use"), "{line}");
    // A second daemon on the same directory is refused.
    let line = till.fails(&["run", "--http", "127.0.0.1:0"]);
    assert!(line.contains("in use"), "{line}");
}

#[test]
fn an_acknowledged_sale_survives_kill_9_and_concurrent_sales_get_distinct_receipts() {
    let (till, d) = stocked();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let base = d.base.clone();
            let agent = d.agent.clone();
            let authorization = d.authorization();
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| {
                        let body = json!({"client_id": format!("t{t}-{i}"), "lines": [{"sku": "INDOMIE", "qty": 1}]});
                        let mut resp = agent
                            .post(format!("{base}/v1/sales"))
                            .header("authorization", &authorization)
                            .header("content-type", "application/json")
                            .send(body.to_string().as_bytes())
                            .expect("POST");
                        assert_eq!(resp.status().as_u16(), 201);
                        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json");
                        v["receipt_no"].as_str().expect("receipt_no").to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut receipts: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    receipts.sort();
    receipts.dedup();
    assert_eq!(receipts.len(), 20, "receipt numbers are unique");
    d.kill9();
    // The directory is free again; every acknowledged sale is there.
    let sales = till.ok(&["sales"]);
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(20));
    assert_eq!(
        till.ok(&["stock", "--sku", "INDOMIE"])["stock"][0]["on_hand"],
        json!(80.0)
    );
    let sold = till.ok(&["sell", "--item", "INDOMIE"]);
    assert!(
        sold["receipt_no"]
            .as_str()
            .is_some_and(|r| r.ends_with("-0021")),
        "{sold}"
    );
}
