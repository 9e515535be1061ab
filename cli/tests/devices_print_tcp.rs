#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
//! Receipts reach network printers: `kasir receipt SALE --printer tcp://...` delivers
//! exactly the bytes `--escpos FILE` writes (directly and through a running daemon); a
//! printer that refuses or stalls ends the command within seconds with one error line
//! and leaves the sale as it was; the daemon's print queue prints after the sale,
//! retries a printer that is down, and never holds up selling.
//!
//! Printers are emulated with std TCP listeners in threads on loopback.

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kasir_testkit::{Till, free_port};
use serde_json::{Value, json};

/// A till with one product and one cash sale; returns the sale id.
fn till_with_sale() -> (Till, String) {
    let till = Till::init();
    till.ok(&[
        "product",
        "add",
        "--sku",
        "KOPI",
        "--name",
        "Kopi Susu Gula Aren",
        "--price",
        "18000",
        "--stock",
        "10",
    ]);
    let sale = till.ok(&["sell", "--item", "KOPIx2", "--pay", "cash=50000"]);
    let id = sale["sale_id"].as_str().unwrap().to_owned();
    (till, id)
}

/// A printer on `listener` that records one connection's bytes until the client closes.
fn record_one(listener: TcpListener) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        let _ = tx.send(got);
    });
    rx
}

fn recording_printer() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, record_one(listener))
}

/// `kasir receipt SALE --escpos FILE ARGS...` → the file's bytes.
fn escpos_file(till: &Till, sale: &str, args: &[&str]) -> Vec<u8> {
    let file = till.path().join("struk.bin");
    let file_arg = file.to_str().unwrap();
    let mut all = vec!["receipt", sale, "--escpos", file_arg];
    all.extend_from_slice(args);
    let v = till.ok(&all);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(v["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(v["escpos"].as_str(), Some(file_arg));
    std::fs::remove_file(&file).unwrap();
    bytes
}

/// The sale as `kasir sales` lists it.
fn listed(till: &Till) -> Value {
    till.ok(&["sales"])
}

#[test]
fn receipt_on_a_tcp_printer_is_exactly_the_escpos_file() {
    let (till, sale) = till_with_sale();
    for args in [
        &[][..],
        &[
            "--width",
            "48",
            "--qr",
            "https://struk.kasir.id/x",
            "--drawer",
        ][..],
        &[
            "--profile",
            "58b",
            "--qr",
            "00020101021126",
            "--raster-qr",
            "--reprint",
        ][..],
    ] {
        let file = escpos_file(&till, &sale, args);
        assert!(file.starts_with(b"\x1b@"), "ESC/POS starts with ESC @");
        let (port, got) = recording_printer();
        let uri = format!("tcp://127.0.0.1:{port}");
        let mut all = vec!["receipt", &sale, "--printer", &uri];
        all.extend_from_slice(args);
        let v = till.ok(&all);
        assert_eq!(v["printer"].as_str(), Some(uri.as_str()));
        let printed = got.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            printed == file,
            "printer got exactly the --escpos bytes for {args:?}"
        );
    }
    // The text receipt is unchanged by all this.
    let text = till.ok(&["receipt", &sale]);
    assert!(
        text["receipt"]
            .as_str()
            .unwrap()
            .contains("Kopi Susu Gula Aren")
    );
}

#[test]
fn unreachable_or_stalled_printer_fails_fast_and_keeps_the_sale() {
    let (till, sale) = till_with_sale();
    let before = listed(&till);

    // Refused: nothing listens on the port.
    let port = free_port();
    let uri = format!("tcp://127.0.0.1:{port}");
    let started = Instant::now();
    let line = till.fails(&["receipt", &sale, "--printer", &uri]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        line.contains("receipt not printed (the sale is kept)"),
        "{line}"
    );
    assert!(line.contains(&uri), "{line}");

    // Accepts and never reads: a receipt fits the socket buffers, so this may count as
    // sent (the bytes wait in the printer) — but it never hangs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = hold_rx.recv();
        drop(stream);
    });
    let started = Instant::now();
    let out = till.run(&["receipt", &sale, "--printer", &stalled]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stalled printer never hangs the till"
    );
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{err}"
        );
    }
    drop(hold_tx);

    // Bad URIs and profiles are refused before anything is read.
    assert!(
        till.fails(&["receipt", &sale, "--printer", "lp0"])
            .contains("no scheme")
    );
    assert!(
        till.fails(&["receipt", &sale, "--printer", "usb://x"])
            .contains("unknown printer scheme")
    );
    assert!(
        till.fails(&["receipt", &sale, "--escpos", "x.bin", "--width", "40"])
            .contains("no printer profile")
    );
    assert!(
        till.fails(&["receipt", "no-such-sale", "--escpos", "x.bin"])
            .contains("not found")
    );

    // The sale is exactly as it was, and the till still sells.
    assert_eq!(listed(&till), before);
    till.ok(&["sell", "--item", "KOPI"]);
    assert_eq!(listed(&till)["sales"].as_array().unwrap().len(), 2);
}

#[test]
fn daemon_prints_through_its_queue_and_retries_a_printer_that_is_down() {
    let (till, sale) = till_with_sale();
    let expected = escpos_file(&till, &sale, &[]);

    // No printer configured: the queue endpoint says so; the bytes endpoint still works.
    {
        let d = till.daemon();
        let (status, body) = d.post(&format!("/v1/sales/{sale}/print"), &json!({}));
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        // Through the daemon, --escpos gives the same bytes as directly.
        assert_eq!(escpos_file(&till, &sale, &[]), expected);
    }

    // A printer that is down when the job comes, and up a moment later.
    let port = free_port();
    std::fs::write(
        till.path().join("printer.json"),
        json!({"uri": format!("tcp://127.0.0.1:{port}"), "profile": "58", "attempts": 10, "backoff_ms": 200})
            .to_string(),
    )
    .unwrap();
    let d = till.daemon();
    let (status, body) = d.post("/v1/sales/no-such-sale/print", &json!({}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = d.post_raw(&format!("/v1/sales/{sale}/print"), b"");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["sale_id"].as_str(), Some(sale.as_str()));
    assert!(body["job_id"].as_u64().is_some());

    // Selling goes on while the printer is down.
    let started = Instant::now();
    let (status, sold) = d.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 1}]}));
    assert_eq!(status, 201, "{sold}");
    assert!(started.elapsed() < Duration::from_secs(10));

    thread::sleep(Duration::from_millis(600));
    let got = record_one(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let printed = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(
        printed == expected,
        "the queue printed the same bytes as --escpos"
    );

    // Both sales are there, untouched by the printing.
    let (_, sales) = d.get("/v1/sales");
    assert_eq!(sales["sales"].as_array().unwrap().len(), 2);

    // The drawer opens without a sale: the printer gets the pulse alone (ESC p 0 25 250).
    let got = record_one(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let (status, body) = d.post("/v1/drawer/open", &json!({"reason": "tukar receh"}));
    assert_eq!(status, 202, "{body}");
    let pulse = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(pulse, vec![0x1b, b'p', 0, 25, 250]);
}
