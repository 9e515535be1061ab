//! `kasir demo`: a warung on embedded defaults — three tills on one (loopback) LAN,
//! syncing peer-to-peer over real iroh connections while they sell simulated traffic,
//! with a live summary. (The cloud relay joins the demo with the relay milestone.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use kasir_crdt::Qty;
use kasir_crdt::money::format_rupiah;
use kasir_crdt::records::Payment;
use kasir_crdt::store::Role;
use kasir_node::identity::Identity;
use kasir_node::node::{InitOptions, Node, ProductInput, SaleItem, SaleRequest};
use kasir_node::sync::net::{self, NetConfig, SharedNode};
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

const TILLS: usize = 3;

fn lock(n: &SharedNode) -> Result<std::sync::MutexGuard<'_, Node>> {
    n.lock().map_err(|_| anyhow!("node state poisoned"))
}

/// Builds the store: till 1 creates it and the catalog, tills 2 and 3 are admitted.
fn build_store(base: &std::path::Path) -> Result<Vec<Node>> {
    let mut owner = Node::init(
        &base.join("till-1"),
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
    owner.add_products(&inputs)?;
    let store = owner.store_id();
    let mut nodes = vec![];
    let mut joined = vec![];
    for i in 2..=TILLS {
        let dir = base.join(format!("till-{i}"));
        std::fs::create_dir_all(&dir)?;
        let identity = Identity::generate();
        identity.store(&dir)?;
        let secret = owner.create_invite(Role::Till, Some(format!("T{i}")))?;
        let admission = owner.admit(&secret, identity.device_id(), None, vec![])?;
        joined.push(Node::init_joined(&dir, store, &admission.till_code)?);
    }
    nodes.push(owner);
    nodes.extend(joined);
    Ok(nodes)
}

/// Runs the demo: `n_sales` sales spread over three syncing tills.
pub(crate) fn run(n_sales: usize, json_mode: bool) -> Result<()> {
    let base = std::env::temp_dir().join(format!("kasir-demo-{}", std::process::id()));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    let nodes: Vec<SharedNode> = build_store(&base)?
        .into_iter()
        .map(|n| Arc::new(Mutex::new(n)))
        .collect();
    let rt = tokio::runtime::Runtime::new()?;
    let cancel = tokio_util::sync::CancellationToken::new();
    // Every till listens on loopback; each knows the others' addresses, as the roster
    // would tell it after its first sync.
    let nets = rt.block_on(async {
        let mut nets = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let cfg = NetConfig {
                listen: "127.0.0.1:0".parse()?,
                peers: vec![],
                mdns: false,
            };
            if i > 0 {
                // As `kasir join` does: a new till syncs once with the member that admitted
                // it, so it has the roster, the catalog and the stock before it sells.
                let owner_net: &net::Net = &nets[0];
                let owner_id = lock(&nodes[0])?.device_id();
                let owner_addr = owner_net.endpoint().bound_sockets();
                let secret = lock(n)?.identity().secret_bytes();
                let ep = net::bind_endpoint(secret, "127.0.0.1:0".parse()?).await?;
                net::sync_once(
                    &ep,
                    n.clone(),
                    owner_id,
                    &owner_addr,
                    Duration::from_secs(30),
                )
                .await?;
                ep.close().await;
            }
            nets.push(net::start(n.clone(), cfg, cancel.clone()).await?);
        }
        anyhow::Ok(nets)
    })?;
    let ids: Vec<_> = nodes
        .iter()
        .map(|n| lock(n).map(|n| n.device_id()))
        .collect::<Result<_>>()?;
    let addrs: Vec<std::net::SocketAddr> = nets
        .iter()
        .map(|n| n.endpoint().bound_sockets()[0])
        .collect();
    let _ = rt.block_on(async {
        for (i, n) in nodes.iter().enumerate() {
            for j in 0..TILLS {
                if i != j {
                    lock(n)?.remember_peer_addr(ids[j], &addrs[j].to_string())?;
                }
            }
        }
        anyhow::Ok(())
    });
    let _guard = rt.enter();
    wait_until(Duration::from_secs(20), || converged(&nodes))?;

    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_123);
    let bar = indicatif::ProgressBar::new(n_sales as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} penjualan  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut omzet, mut last) = (0i64, None);
    let started = Instant::now();
    for _ in 0..n_sales {
        let till = rng.gen_range(0..TILLS);
        let items = (0..rng.gen_range(1..=4))
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
            cashier: Some(["Ani", "Budi", "Citra"][till].into()),
        };
        let out = {
            let mut node = lock(&nodes[till])?;
            match node.sell(&req) {
                Ok(out) => out,
                // A basket above Rp100.000 paid with one note: the cashier asks for exact cash.
                Err(kasir_node::NodeError::InsufficientPayment { .. }) => {
                    node.sell(&SaleRequest {
                        payments: vec![],
                        ..req
                    })?
                }
                Err(e) => return Err(e.into()),
            }
        };
        omzet += out.total;
        last = Some((till, out.sale_id));
        bar.inc(1);
        let counts: Vec<String> = nodes
            .iter()
            .map(|n| {
                lock(n)
                    .and_then(|n| Ok(n.status()?.sales))
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            })
            .collect();
        bar.set_message(format!(
            "omzet {}  terlihat di T1/T2/T3: {}",
            format_rupiah(omzet),
            counts.join("/")
        ));
        std::thread::sleep(Duration::from_millis(5));
    }
    bar.finish_and_clear();
    let sold_s = started.elapsed().as_secs_f64();
    let t_sync = Instant::now();
    wait_until(Duration::from_secs(60), || converged(&nodes))?;
    let settle_ms = t_sync.elapsed().as_millis() as u64;
    let stock = lock(&nodes[0])?.stock(None)?;
    let oversold: Vec<String> = stock
        .iter()
        .filter(|s| s.oversold)
        .map(|s| s.sku.clone())
        .collect();
    let per_till: Vec<u64> = nodes
        .iter()
        .map(|n| lock(n).and_then(|n| Ok(n.status()?.sales)))
        .collect::<Result<_>>()?;
    let summary = json!({
        "data_dir": base.display().to_string(),
        "tills": TILLS,
        "sales": n_sales,
        "sales_seen_by_each_till": per_till,
        "revenue": omzet,
        "selling_seconds": (sold_s * 10.0).round() / 10.0,
        "converged_after_last_sale_ms": settle_ms,
        "oversold": oversold,
    });
    if json_mode {
        println!("{summary}");
    } else {
        if let Some((till, id)) = &last {
            print!("{}", lock(&nodes[*till])?.receipt_text(id, 32)?);
        }
        println!();
        println!(
            "{n_sales} penjualan di {TILLS} kasir dalam {sold_s:.1} s, omzet {}",
            format_rupiah(omzet)
        );
        println!(
            "Semua kasir sama: {} penjualan masing-masing (sinkron {settle_ms} ms setelah penjualan terakhir)",
            per_till[0]
        );
        println!(
            "Stok minus (oversold): {}",
            if oversold.is_empty() {
                "-".into()
            } else {
                oversold.join(", ")
            }
        );
        println!(
            "Data: {}  (coba: kasir --data {}/till-2 sales)",
            base.display(),
            base.display()
        );
    }
    rt.block_on(async {
        for n in &nets {
            n.shutdown().await;
        }
    });
    Ok(())
}

/// Every till holds the same sales and stock.
fn converged(nodes: &[SharedNode]) -> Result<bool> {
    let first = lock(&nodes[0])?;
    let (sales, stock) = (first.sales(None)?, first.stock(None)?);
    drop(first);
    for n in &nodes[1..] {
        let n = lock(n)?;
        if n.sales(None)? != sales || n.stock(None)? != stock {
            return Ok(false);
        }
    }
    Ok(true)
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let t0 = Instant::now();
    while !f()? {
        if t0.elapsed() > limit {
            return Err(anyhow!(
                "the tills did not converge within {} s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
