//! Render + encode time per receipt: `cargo bench -p kasir-devices --bench receipt`.
//!
//! Prints one JSON document: for each case, the mean and the 50th/99th percentile of
//! the time to lay a sale out and produce its text or ESC/POS bytes, in microseconds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kasir_crdt::records::Sale;
use kasir_crdt::tax::TaxRule;
use kasir_devices::encode::{PrinterProfile, encode};
use kasir_devices::receipt::{ReceiptOptions, layout, render_text};

#[path = "../tests/support/mod.rs"]
mod support;

const RUNS: usize = 2_000;

/// Name, sale, width, QR payload, printer (`None`: text).
type Case<'a> = (
    &'static str,
    &'a Sale,
    usize,
    Option<String>,
    Option<PrinterProfile>,
);

fn measure(mut f: impl FnMut() -> usize) -> (f64, f64, f64, usize) {
    let bytes = f();
    for _ in 0..50 {
        black_box(f());
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(f());
            started.elapsed()
        })
        .collect();
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|d| us(*d)).sum::<f64>() / RUNS as f64;
    (mean, us(times[RUNS / 2]), us(times[RUNS * 99 / 100]), bytes)
}

fn main() {
    let small = support::small_sale();
    let many = support::sale(
        support::many_lines(40),
        TaxRule::ppn_12_dpp_11_12(true),
        vec![support::pay("cash", 5_000_000)],
    );
    let store = support::minimarket();
    let qr = Some(support::QRIS.to_owned());
    let raster_80 = PrinterProfile {
        native_qr: false,
        ..PrinterProfile::mm80()
    };
    let cases: Vec<Case> = vec![
        ("text_58mm_2_lines", &small, 32, None, None),
        (
            "escpos_58mm_2_lines",
            &small,
            32,
            None,
            Some(PrinterProfile::mm58()),
        ),
        (
            "escpos_58mm_2_lines_native_qr",
            &small,
            32,
            qr.clone(),
            Some(PrinterProfile::mm58()),
        ),
        (
            "escpos_80mm_40_lines_tax",
            &many,
            48,
            None,
            Some(PrinterProfile::mm80()),
        ),
        (
            "escpos_80mm_40_lines_tax_raster_qr",
            &many,
            48,
            qr.clone(),
            Some(raster_80),
        ),
    ];
    let mut out = Vec::new();
    for (name, sale, width, qr, printer) in cases {
        let opts = ReceiptOptions {
            width,
            qr,
            ..ReceiptOptions::default()
        };
        let (mean, p50, p99, bytes) = match &printer {
            None => measure(|| {
                render_text(&store, sale, &opts)
                    .map(|t| t.len())
                    .unwrap_or(0)
            }),
            Some(p) => measure(|| {
                layout(&store, sale, &opts)
                    .ok()
                    .and_then(|r| encode(&r, p).ok())
                    .map(|b| b.len())
                    .unwrap_or(0)
            }),
        };
        out.push(format!(
            "    {{\"case\": \"{name}\", \"bytes\": {bytes}, \"mean_us\": {mean:.1}, \"p50_us\": {p50:.1}, \"p99_us\": {p99:.1}}}"
        ));
    }
    println!(
        "{{\n  \"runs\": {RUNS},\n  \"render_encode\": [\n{}\n  ]\n}}",
        out.join(",\n")
    );
}
