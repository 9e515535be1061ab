//! `kasir demo`: a warung on embedded defaults, selling simulated traffic.
//!
//! Today this is one till in a throwaway data directory; the LAN and relay issues grow
//! it into several tills and a relay.

use anyhow::Result;
use kasir_crdt::Qty;
use kasir_crdt::money::format_rupiah;
use kasir_crdt::records::Payment;
use kasir_node::node::{InitOptions, Node, ProductInput, SaleItem, SaleRequest};
use rand::{Rng, SeedableRng};
use serde_json::json;

const CATALOG: &[(&str, &str, i64, &str, i64)] = &[
    ("IDM-GRG", "Indomie Goreng", 3_500, "8998866200578", 120),
    ("IDM-SOTO", "Indomie Soto Mie", 3_300, "8998866200301", 80),
    ("AQUA-600", "Aqua 600ml", 4_000, "8886008101053", 96),
    (
        "TEH-BTL",
        "Teh Botol Sosro 450ml",
        5_500,
        "8992761111014",
        48,
    ),
    (
        "KOPI-KPL",
        "Kopi Kapal Api Special Mix",
        1_700,
        "8991002101630",
        200,
    ),
    (
        "GULA-1KG",
        "Gula Pasir Gulaku 1kg",
        17_500,
        "8993093665011",
        30,
    ),
    ("BERAS-KG", "Beras Pandan Wangi (kg)", 15_000, "", 50),
    ("TELUR-KG", "Telur Ayam Negeri (kg)", 29_000, "", 25),
    (
        "MINYAK-1L",
        "Minyak Goreng Bimoli 1L",
        21_000,
        "8992826111014",
        24,
    ),
    (
        "KECAP-BNG",
        "Kecap Manis Bango Refill Pouch 550ml",
        23_500,
        "8999999036454",
        18,
    ),
    (
        "ROKOK-SAM",
        "Sampoerna Mild 16",
        32_000,
        "8999909096004",
        40,
    ),
    (
        "SUSU-UHT",
        "Ultra Milk Coklat 250ml",
        6_500,
        "8998009010231",
        36,
    ),
    (
        "ROTI-TWR",
        "Roti Tawar Sari Roti",
        17_000,
        "8996001600146",
        12,
    ),
    (
        "SABUN-LFB",
        "Sabun Lifebuoy 75g",
        4_500,
        "8999999059835",
        30,
    ),
    ("GAS-3KG", "Isi Ulang Gas LPG 3kg", 22_000, "", 6),
];

/// Runs the demo: `n_sales` sales on one till, a live summary, and the last receipt.
pub(crate) fn run(n_sales: usize, json_mode: bool) -> Result<()> {
    let dir = tempfile_dir()?;
    let mut node = Node::init(
        &dir,
        &InitOptions {
            store_name: "Warung Demo Bu Sri".into(),
            till_code: "T1".into(),
        },
    )?;
    let inputs: Vec<ProductInput> = CATALOG
        .iter()
        .map(|(sku, name, price, barcode, stock)| ProductInput {
            sku: (*sku).into(),
            name: (*name).into(),
            price: *price,
            barcodes: if barcode.is_empty() {
                vec![]
            } else {
                vec![(*barcode).into()]
            },
            cost: Some(price * 85 / 100),
            category: None,
            unit: Some(if sku.ends_with("-KG") {
                "kg".into()
            } else {
                "pcs".into()
            }),
            stock: Some(Qty::units(*stock)),
        })
        .collect();
    node.add_products(&inputs)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_123);
    let bar = indicatif::ProgressBar::new(n_sales as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} penjualan  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut omzet, mut last) = (0i64, None);
    let started = std::time::Instant::now();
    for _ in 0..n_sales {
        let n_lines = rng.gen_range(1..=4);
        let items = (0..n_lines)
            .map(|_| {
                let (sku, ..) = CATALOG[rng.gen_range(0..CATALOG.len())];
                let qty = if sku.ends_with("-KG") {
                    Qty(rng.gen_range(1..=8) * 250)
                } else {
                    Qty::units(rng.gen_range(1..=3))
                };
                SaleItem {
                    code: sku.into(),
                    qty,
                    discount: 0,
                }
            })
            .collect();
        let payments = if rng.gen_bool(0.3) {
            vec![]
        } else {
            vec![Payment {
                method: "cash".into(),
                amount: 100_000,
            }]
        };
        let req = SaleRequest {
            client_id: None,
            items,
            payments,
            cashier: Some("Ani".into()),
        };
        match node.sell(&req) {
            Ok(out) => {
                omzet += out.total;
                last = Some(out.sale_id);
            }
            // A basket above Rp100.000 paid with one note: the cashier asks for exact cash.
            Err(kasir_node::NodeError::InsufficientPayment { .. }) => {
                let out = node.sell(&SaleRequest {
                    payments: vec![],
                    ..req
                })?;
                omzet += out.total;
                last = Some(out.sale_id);
            }
            Err(e) => return Err(e.into()),
        }
        bar.inc(1);
        bar.set_message(format!("omzet {}", format_rupiah(omzet)));
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let stock = node.stock(None)?;
    let oversold: Vec<&str> = stock
        .iter()
        .filter(|s| s.oversold)
        .map(|s| s.sku.as_str())
        .collect();
    let summary = json!({
        "data_dir": dir.display().to_string(),
        "sales": n_sales,
        "revenue": omzet,
        "elapsed_ms": elapsed.as_millis() as u64,
        "oversold": oversold,
    });
    if json_mode {
        println!("{summary}");
    } else {
        if let Some(id) = &last {
            print!("{}", node.receipt_text(id, 32)?);
        }
        println!();
        println!(
            "{n_sales} penjualan dalam {:.1} s, omzet {}",
            elapsed.as_secs_f64(),
            format_rupiah(omzet)
        );
        println!(
            "Stok habis/minus: {}",
            if oversold.is_empty() {
                "-".into()
            } else {
                oversold.join(", ")
            }
        );
        println!(
            "Data: {} (coba: kasir --data {} sales)",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir().join(format!("kasir-demo-{}", std::process::id()));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    Ok(base)
}
