//! `kasir demo`: a warung on embedded defaults — three tills on one (loopback) LAN and
//! the cloud relay, syncing over real iroh connections while the tills sell simulated
//! traffic, with a live summary.
//!
//! The relay is the `kasir-relay` binary run as a child process, as head office runs it
//! (the till binary does not carry the cloud's PostgreSQL and Kafka clients), found next
//! to this executable, else on `PATH`. Its PostgreSQL is `DATABASE_URL` when set,
//! otherwise a throwaway cluster the demo starts from the machine's PostgreSQL binaries
//! (`kasir_testkit::pg`) and removes at the end; it publishes to Kafka only when
//! `KAFKA_BROKERS` is set. The relay adopts the demo store from till 1 (as `kasir join`
//! does with a `kasir-relay store adopt` ticket), so every till syncs to it. Without the
//! binary or a PostgreSQL the demo says why on stderr and runs LAN-only. [`RelayProcs`]
//! stops the children on every exit path (return, error, panic, Ctrl-C).
//!
//! After the check the three tills keep running with their till apps served on
//! loopback ports; the demo prints each one's URL with a one-time login link for its
//! cashier (`--exit` ends after the check instead, as the tests do).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kasir_crdt::Qty;
use kasir_crdt::money::format_rupiah;
use kasir_crdt::records::Payment;
use kasir_crdt::store::{Role, UserRole};
use kasir_node::api::{InitOptions, MovementInput, ProductInput, SaleItem, SaleRequest};
use kasir_node::lan::{self as net, NetConfig};
use kasir_node::{Node, SharedNode};
use kasir_sync::Identity;
use kasir_sync::membership::Ticket;
use kasir_testkit::pg::{Cluster, ClusterError};
use kasir_testkit::process::{Signal, signal};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

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
    Ok(n.lock()?)
}

/// Builds the store: till 1 creates it and the catalog, tills 2 and 3 are admitted.
fn build_store(base: &std::path::Path) -> Result<Vec<Node>> {
    let mut owner = Node::init(
        &base.join("till-1"),
        &InitOptions {
            store_name: "Warung Demo Bu Sri".into(),
            till_code: "T1".into(),
            encrypt: None,
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
            barcode: None,
            cost: Some(price * 85 / 100),
            tax_code: None,
            category: None,
            unit: Some(if sku.ends_with("-KG") {
                "kg".into()
            } else {
                "pcs".into()
            }),
            stock: Some(Qty::units(*stock)),
            // Low below ten: head office's alerts and the Stok screen both use it.
            min_stock: Some(Qty::units(10)),
            units: None,
            tiers: None,
            promos: None,
        })
        .collect();
    let mut inputs = inputs;
    for input in &mut inputs {
        match input.sku.as_str() {
            // Indomie by the piece, the pak of 5 and the dus of 40, cheaper by ten.
            "IDM-GRG" => {
                input.units = Some(vec![
                    kasir_node::api::UnitPrice {
                        name: "pak".into(),
                        per: Qty::units(5),
                        price: 17_000,
                        barcodes: vec![],
                    },
                    kasir_node::api::UnitPrice {
                        name: "dus".into(),
                        per: Qty::units(40),
                        price: 128_000,
                        barcodes: vec!["18998866200575".into()],
                    },
                ]);
                input.tiers = Some(vec![kasir_node::api::TierPrice {
                    min_qty: Qty::units(10),
                    price: 3_300,
                }]);
            }
            // Teh Botol: buy 2, get 1 free.
            "TEH-BTL" => {
                input.promos = Some(vec![kasir_crdt::promo::Promo {
                    offer: kasir_crdt::promo::Offer::BuyGet { buy: 2, free: 1 },
                    from: None,
                    until: None,
                }]);
            }
            _ => {}
        }
    }
    owner.add_products(&inputs)?;
    let by = owner.device_principal();
    owner.add_user(&by, "Bu Sri", UserRole::Owner, OWNER_PIN)?;
    for (name, pin) in CASHIERS {
        owner.add_user(&by, name, UserRole::Cashier, pin)?;
    }
    let store = owner.store_id();
    let mut nodes = vec![];
    let mut joined = vec![];
    for i in 2..=TILLS {
        let dir = base.join(format!("till-{i}"));
        std::fs::create_dir_all(&dir)?;
        // Owner-only from the start, as `kasir join` makes it (else the node tightens it
        // on open and says so).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
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

/// The owner's PIN in the demo store.
const OWNER_PIN: &str = "1234";
/// The demo's head-office login (the relay's dashboard).
const HEAD_OFFICE_EMAIL: &str = "pemilik@demo.kasir.id";
const HEAD_OFFICE_PASSWORD: &str = "kantor-pusat-demo";
/// The demo's cashiers, one per till, and their PINs.
const CASHIERS: [(&str, &str); TILLS] = [("Ani", "1111"), ("Budi", "2222"), ("Citra", "3333")];

/// Keeps the three tills' apps open in a browser until Ctrl-C: each till serves its
/// API and app on a loopback port; each cashier gets a one-time login link and an open
/// shift, so the link lands on the sell screen.
/// Moments a shop has every day, after the rush: Bu Tini takes rice on kasbon at till 1
/// and pays part back at till 2 (both tills agree on what she owes once they sync); a
/// customer pays by dynamic QRIS at till 1 through the simulated acquirer
/// (`kasir_node::qris::sim`; a real acquirer needs a merchant account), which stays up
/// for the apps when the demo serves them; goods come in with their cost, and a
/// customer buys a dus by its carton barcode and Teh Botol on buy 2 get 1.
fn money_moments(
    rt: &tokio::runtime::Runtime,
    nodes: &[SharedNode],
) -> Result<(Value, Value, Value, kasir_node::qris::sim::Simulator)> {
    use kasir_node::kasbon::{CustomerInput, KasbonPaymentInput};
    use kasir_node::people::Principal;
    use kasir_node::qris;

    let (sku, _, _, _, _) = CATALOG[0];
    let tini = lock(&nodes[0])?.save_customer(&CustomerInput {
        name: "Bu Tini".into(),
        phone: Some("0812-1111-2222".into()),
        ..CustomerInput::default()
    })?;
    let mut credit_sale = SaleRequest {
        items: vec![SaleItem {
            code: sku.into(),
            qty: Qty::units(10),
            discount: 0,
            discount_percent: None,
            price: None,
            unit: None,
        }],
        customer_id: Some(tini.customer_id.clone()),
        cashier: Some("Ani".into()),
        ..SaleRequest::default()
    };
    // Ten at once is the grosir price: the till says what it comes to.
    let credit = lock(&nodes[0])?.price(&credit_sale)?.total;
    credit_sale.payments = vec![Payment {
        method: "kasbon".into(),
        amount: credit,
        reference: None,
        confirmed_by: None,
    }];
    lock(&nodes[0])?.sell(&credit_sale)?;
    wait_until(Duration::from_secs(30), || {
        Ok(lock(&nodes[1])?
            .customer(&tini.customer_id)
            .is_ok_and(|c| c.balance == credit))
    })?;
    lock(&nodes[1])?.pay_kasbon(
        &KasbonPaymentInput {
            customer_id: tini.customer_id.clone(),
            amount: credit / 2,
            method: Some("tunai".into()),
            reference: None,
        },
        Some("Budi".into()),
    )?;
    let left = credit - credit / 2;
    wait_until(Duration::from_secs(30), || {
        Ok(lock(&nodes[0])?
            .customer(&tini.customer_id)
            .is_ok_and(|c| c.balance == left))
    })?;
    let kasbon = json!({
        "customer": tini.name,
        "balance_t1": lock(&nodes[0])?.customer(&tini.customer_id)?.balance,
        "balance_t2": lock(&nodes[1])?.customer(&tini.customer_id)?.balance,
    });

    let (key, secret) = ("sk-demo", "whsec-demo");
    let acquirer = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        qris::sim::start(listener, key, secret)
    })?;
    let till1 = lock(&nodes[0])?.dir().to_owned();
    std::fs::write(
        till1.join(qris::QRIS_FILE),
        json!({"url": acquirer.url(), "key": key, "callback_secret": secret}).to_string(),
    )?;
    let request = SaleRequest {
        client_id: Some(format!("demo-qris-{}", std::process::id())),
        items: vec![SaleItem {
            code: CATALOG[1].0.into(),
            qty: Qty::units(3),
            discount: 0,
            discount_percent: None,
            price: None,
            unit: None,
        }],
        cashier: Some("Ani".into()),
        ..SaleRequest::default()
    };
    let owner = Principal::Device {
        role: UserRole::Owner,
    };
    let (charge, _) = rt.block_on(qris::create_charge(&nodes[0], None, owner, request))?;
    // The customer's bank: pays the QR (the till's poll finds it).
    let mut paid = ureq::post(&format!(
        "{}/sim/charges/{}/pay?callback=false",
        acquirer.url(),
        charge.charge_id
    ))
    .send_empty()?;
    let _: Value = paid.body_mut().read_json()?;
    let settled = rt.block_on(qris::refresh_charge(
        &nodes[0],
        None,
        charge.charge_id.clone(),
    ))?;
    let qris = json!({
        "acquirer": acquirer.url(),
        "amount": settled.amount,
        "status": settled.status,
        "rrn": settled.rrn,
        "receipt_no": settled.receipt_no,
    });
    // A warung's week: a carton of Indomie comes in from the wholesaler at its cost;
    // at till 2 a customer buys a dus by its barcode and three Teh Botol (buy 2 get 1).
    lock(&nodes[0])?.record_movement(&MovementInput {
        kind: kasir_crdt::records::MovementKind::Receive,
        sku: "IDM-GRG".into(),
        qty: Some(Qty::units(40)),
        counted: None,
        note: None,
        cost: Some(2_950),
        supplier: Some("CV Sumber Rejeki".into()),
        other_store: None,
        transfer_id: None,
        approval: None,
    })?;
    let item = |code: &str, qty: i64| SaleItem {
        code: code.into(),
        qty: Qty::units(qty),
        discount: 0,
        discount_percent: None,
        price: None,
        unit: None,
    };
    let sold = lock(&nodes[1])?.sell(&SaleRequest {
        items: vec![item("18998866200575", 1), item("TEH-BTL", 3)],
        cashier: Some("Budi".into()),
        ..SaleRequest::default()
    })?;
    let sale = lock(&nodes[1])?.sale(&sold.sale_id)?;
    let avg_cost = lock(&nodes[0])?.stock(Some("IDM-GRG"))?[0].avg_cost;
    let warung = json!({
        "receipt_no": sold.receipt_no,
        "total": sold.total,
        "lines": sale.lines.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        "promo": sale.lines.iter().find_map(|l| l.promo.as_ref().map(|p| p.label.clone())),
        "indomie_avg_cost": avg_cost,
    });
    Ok((kasbon, qris, warung, acquirer))
}

fn serve_apps(
    rt: &tokio::runtime::Runtime,
    nodes: &[SharedNode],
    head_office: Option<&str>,
) -> Result<()> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let _guard = rt.enter();
    kasir_node::daemon::cancel_on_signals(cancel.clone());
    let mut servers = Vec::new();
    println!();
    println!("Aplikasi kasir (buka di browser; Ctrl-C untuk berhenti):");
    for (i, node) in nodes.iter().enumerate() {
        let (name, pin) = CASHIERS[i];
        let (code, link) = {
            let mut n = lock(node)?;
            let user = n
                .users()
                .into_iter()
                .find(|u| u.name == name)
                .ok_or_else(|| anyhow!("demo user {name} is missing"))?;
            if n.open_shift_here()?.is_none() {
                n.open_shift(name, Some(&user.user_id), 200_000)?;
            }
            (n.till_code().to_owned(), n.login_link(&user.user_id)?)
        };
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let state = kasir_node::http::AppState::new(node.clone());
        servers.push(rt.spawn(kasir_node::daemon::serve(listener, state, cancel.clone())));
        println!("  {code}: http://{addr}/ui/masuk/{link}   ({name}, PIN {pin})");
    }
    println!("  Pemilik: Bu Sri, PIN {OWNER_PIN}; supervisor untuk batal/retur = pemilik");
    if let Some(http) = head_office {
        println!(
            "Kantor pusat: http://{http}/   (e-mail {HEAD_OFFICE_EMAIL}, kata sandi {HEAD_OFFICE_PASSWORD})"
        );
    }
    rt.block_on(async {
        cancel.cancelled().await;
        for s in servers {
            let _ = s.await;
        }
    });
    Ok(())
}

/// Runs the demo: `n_sales` sales spread over three syncing tills and the relay, then
/// (with `serve`) keeps the tills' apps running until Ctrl-C.
pub(crate) fn run(n_sales: usize, json_mode: bool, serve: bool) -> Result<()> {
    let base = std::env::temp_dir().join(format!("kasir-demo-{}", std::process::id()));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    std::fs::create_dir_all(&base)?;
    let rt = tokio::runtime::Runtime::new()?;
    // Started first, so the PostgreSQL cluster comes up while the store is being built.
    let procs = RelayProcs::default();
    let mut relay_note = None;
    let database = match find_relay_bin() {
        None => {
            relay_note = Some(
                "kasir-relay not found next to kasir; the demo runs without the cloud relay"
                    .to_owned(),
            );
            None
        }
        Some(bin) => {
            procs.stop_on_ctrl_c(&rt);
            match std::env::var("DATABASE_URL") {
                Ok(url) if !url.is_empty() => Some((bin, Database::Given(url))),
                _ => {
                    let dir = base.join("pg");
                    let dev = std::thread::spawn(move || dev_postgres(&dir));
                    Some((bin, Database::Dev(dev)))
                }
            }
        }
    };
    let nodes: Vec<SharedNode> = build_store(&base)?
        .into_iter()
        .map(SharedNode::new)
        .collect();
    // The relay adopts the store from till 1 before the tills start, so the others learn
    // it from the roster in their first sync and dial it like any member.
    let relay = match database {
        None => None,
        Some((bin, db)) => match start_relay(&procs, bin, db, &base, &rt, &nodes[0]) {
            Ok(r) => Some(r),
            Err(e) => {
                procs.stop();
                relay_note = Some(format!(
                    "the cloud relay did not start: {e:#}; the demo runs without it"
                ));
                None
            }
        },
    };
    if let Some(note) = &relay_note {
        eprintln!("{note}");
    }
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
                let ep = net::bind(n, "127.0.0.1:0".parse()?).await?;
                net::sync_once(n, &ep, owner_id, &owner_addr, Duration::from_secs(30)).await?;
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

    // The relay's side of the live summary, refreshed in the background.
    let watch = relay.as_ref().map(RelayWatch::start);
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
                    discount_percent: None,
                    price: None,
                    unit: None,
                }
            })
            .collect();
        let payments = if rng.gen_bool(0.3) {
            vec![]
        } else {
            vec![Payment {
                method: "cash".into(),
                amount: 100_000,
                reference: None,
                confirmed_by: None,
            }]
        };
        let req = SaleRequest {
            client_id: None,
            items,
            payments,
            cashier: Some(["Ani", "Budi", "Citra"][till].into()),
            approval: None,
            customer_id: None,
            due_date: None,
            cart_discount: None,
            cart_discount_percent: None,
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
        let relay_part = match &watch {
            None => String::new(),
            Some(w) => match w.latest() {
                Some(c) => format!(
                    "  relay: {} di PostgreSQL, outbox {}",
                    c.sales, c.outbox_pending
                ),
                None => "  relay: …".into(),
            },
        };
        bar.set_message(format!(
            "omzet {}  terlihat di T1/T2/T3: {}{relay_part}",
            format_rupiah(omzet),
            counts.join("/")
        ));
        std::thread::sleep(Duration::from_millis(5));
    }
    bar.finish_and_clear();
    let sold_s = started.elapsed().as_secs_f64();
    let (kasbon, qris, warung, _acquirer) = money_moments(&rt, &nodes)?;
    let t_sync = Instant::now();
    wait_until(Duration::from_secs(60), || converged(&nodes))?;
    let settle_ms = t_sync.elapsed().as_millis() as u64;
    if let Some(w) = watch {
        w.stop();
    }
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
    // PostgreSQL catches up after the tills: give it up to RELAY_SETTLE.
    let relay_end = relay
        .as_ref()
        .map(|r| r.settle(per_till[0], t_sync, RELAY_SETTLE));
    let relay_json = match (&relay, &relay_end) {
        (Some(r), Some(end)) => json!({
            "enabled": true,
            "endpoint_id": r.endpoint_id,
            "database": r.database,
            "kafka": r.kafka,
            "sales_in_postgres": end.counts.map(|c| c.sales),
            "matches_tills": end.matches,
            "caught_up_after_last_sale_ms": end.matches.then_some(end.waited_ms),
            "outbox_pending": end.counts.map(|c| c.outbox_pending),
            "error": end.error,
            "log": r.log.display().to_string(),
        }),
        _ => json!({"enabled": false, "note": relay_note}),
    };
    let summary = json!({
        "data_dir": base.display().to_string(),
        "tills": TILLS,
        "sales": n_sales,
        "sales_seen_by_each_till": per_till,
        "revenue": omzet,
        "selling_seconds": (sold_s * 10.0).round() / 10.0,
        "converged_after_last_sale_ms": settle_ms,
        "oversold": oversold,
        "kasbon": kasbon,
        "qris": qris,
        "warung": warung,
        "relay": relay_json,
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
            "Semua kasir sama: {} penjualan masing-masing, dengan kasbon dan QRIS (sinkron {settle_ms} ms setelah penjualan terakhir)",
            per_till[0]
        );
        match (&relay, &relay_end) {
            (Some(r), Some(end)) => println!("{}", r.summary_line(end, per_till[0])),
            _ => println!(
                "Relay: tidak ikut ({})",
                relay_note.as_deref().unwrap_or("-")
            ),
        }
        println!(
            "Kasbon: {} berutang {} di T1 dan di T2 (utang di T1, cicilan di T2)",
            kasbon["customer"].as_str().unwrap_or_default(),
            format_rupiah(kasbon["balance_t1"].as_i64().unwrap_or_default())
        );
        println!(
            "QRIS dinamis (acquirer simulasi {}): {}, RRN {}, struk {}",
            qris["acquirer"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("http://"),
            qris["status"].as_str().unwrap_or_default(),
            qris["rrn"].as_str().unwrap_or("-"),
            qris["receipt_no"].as_str().unwrap_or("-")
        );
        println!(
            "Grosir & promo di T2: {} = {} (struk {}); Indomie masuk dari pemasok, HPP rata-rata {}",
            warung["lines"]
                .as_array()
                .map(|ls| ls
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" + "))
                .unwrap_or_default(),
            format_rupiah(warung["total"].as_i64().unwrap_or_default()),
            warung["receipt_no"].as_str().unwrap_or("-"),
            warung["indomie_avg_cost"]
                .as_i64()
                .map_or("-".to_owned(), format_rupiah)
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
    if serve {
        serve_apps(&rt, &nodes, relay.as_ref().map(|r| r.http.as_str()))?;
    }
    rt.block_on(async {
        for n in &nets {
            n.shutdown().await;
        }
    });
    drop(procs);
    // The relay processes are gone: now its PostgreSQL may stop.
    if let Some(cluster) = relay.and_then(|r| r.cluster) {
        drop(cluster);
        let _ = std::fs::remove_dir_all(base.join("pg"));
    }
    Ok(())
}

/// A throwaway PostgreSQL cluster in `dir` for the demo's relay, removed by a watchdog
/// if the demo is killed before it stops the cluster itself.
fn dev_postgres(dir: &Path) -> Result<Cluster, ClusterError> {
    let cluster = Cluster::start(dir)?;
    cluster.stop_when_process_exits(std::process::id(), true)?;
    Ok(cluster)
}

/// How long PostgreSQL may take to hold every sale after the last one was sold.
const RELAY_SETTLE: Duration = Duration::from_secs(20);

/// Where the relay's PostgreSQL comes from.
enum Database {
    /// `DATABASE_URL`, used as it is (the migrations are idempotent).
    Given(String),
    /// A throwaway cluster from the machine's PostgreSQL binaries, starting on a thread
    /// of its own while the store is built.
    Dev(std::thread::JoinHandle<Result<Cluster, ClusterError>>),
}

/// The running relay, as the demo drives it.
struct Relay {
    bin: PathBuf,
    url: String,
    /// The demo store's id (as `kasir-relay status` prints it).
    store: String,
    endpoint_id: String,
    /// The head-office dashboard and API (`host:port`).
    http: String,
    /// `"DATABASE_URL"` or `"dev-postgres"`.
    database: &'static str,
    /// Whether `KAFKA_BROKERS` is set, so the outbox is published.
    kafka: bool,
    /// The daemon's log (its stderr).
    log: PathBuf,
    /// The throwaway PostgreSQL, when the demo started one.
    cluster: Option<Cluster>,
}

/// The relay's counts for the demo store.
#[derive(Debug, Clone, Copy)]
struct RelayCounts {
    /// Sales materialised in PostgreSQL.
    sales: u64,
    /// Outbox events not yet published to Kafka (all stores).
    outbox_pending: u64,
}

/// How the relay ended: its last counts and whether they match the tills'.
struct RelayEnd {
    counts: Option<RelayCounts>,
    matches: bool,
    waited_ms: u64,
    error: Option<String>,
}

/// Starts the relay daemon and has it adopt the store from `till` (an owner till).
fn start_relay(
    procs: &RelayProcs,
    bin: PathBuf,
    db: Database,
    base: &Path,
    rt: &tokio::runtime::Runtime,
    till: &SharedNode,
) -> Result<Relay> {
    let (url, database, cluster) = match db {
        Database::Given(url) => (url, "DATABASE_URL", None),
        Database::Dev(dev) => {
            let cluster = dev
                .join()
                .map_err(|_| anyhow!("starting PostgreSQL failed"))?
                .context("cannot start a throwaway PostgreSQL (install the postgresql package or set DATABASE_URL)")?;
            (cluster.url("postgres"), "dev-postgres", Some(cluster))
        }
    };
    relay_cmd(&bin, &url, &["migrate"])?;
    let tenant = relay_cmd(&bin, &url, &["tenant", "create", "--name", "Demo"])?;
    let tenant = tenant["tenant_id"]
        .as_str()
        .ok_or_else(|| anyhow!("kasir-relay tenant create printed {tenant}"))?
        .to_owned();
    relay_cmd(
        &bin,
        &url,
        &[
            "user",
            "add",
            "--tenant",
            &tenant,
            "--email",
            HEAD_OFFICE_EMAIL,
            "--password",
            HEAD_OFFICE_PASSWORD,
            "--role",
            "owner",
        ],
    )?;
    let log = base.join("relay.log");
    let daemon = procs.spawn(
        &bin,
        &["run", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        Some(&url),
        &log,
    )?;
    let line = daemon.first_line("kasir-relay run", Duration::from_secs(60))?;
    let running: Value =
        serde_json::from_str(&line).with_context(|| format!("kasir-relay run printed {line:?}"))?;
    let sync_addr = running["sync_addrs"][0]
        .as_str()
        .ok_or_else(|| anyhow!("kasir-relay run printed no sync address: {line}"))?
        .to_owned();
    let endpoint_id = running["endpoint_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let http = running["http"].as_str().unwrap_or_default().to_owned();
    let (store, store_name) = {
        let n = lock(till)?;
        (n.store_id().to_string(), n.profile().name.clone())
    };
    let adopted = relay_cmd(
        &bin,
        &url,
        &[
            "store",
            "adopt",
            "--tenant",
            &tenant,
            "--store-id",
            &store,
            "--name",
            &store_name,
            "--addr",
            &sync_addr,
        ],
    )?;
    let ticket = adopted["ticket"]
        .as_str()
        .ok_or_else(|| anyhow!("kasir-relay store adopt printed {adopted}"))?;
    let ticket = Ticket::decode(ticket)?;
    rt.block_on(async {
        let ep = net::bind(till, "127.0.0.1:0".parse()?).await?;
        let result = net::adopt_relay(till, &ep, &ticket, Some(Duration::from_secs(60))).await;
        ep.close().await;
        anyhow::Ok(result?)
    })
    .context("adopting the store")?;
    Ok(Relay {
        bin,
        url,
        store,
        endpoint_id,
        http,
        database,
        kafka: std::env::var("KAFKA_BROKERS").is_ok_and(|b| !b.is_empty()),
        log,
        cluster,
    })
}

impl Relay {
    /// `kasir-relay status` for the demo store.
    fn counts(&self) -> Result<RelayCounts> {
        relay_counts(&self.bin, &self.url, &self.store)
    }

    /// Waits (up to `limit` after `since`) until PostgreSQL holds `expected` sales.
    fn settle(&self, expected: u64, since: Instant, limit: Duration) -> RelayEnd {
        let mut end = RelayEnd {
            counts: None,
            matches: false,
            waited_ms: 0,
            error: None,
        };
        loop {
            match self.counts() {
                Ok(c) => {
                    end.counts = Some(c);
                    end.error = None;
                    end.matches = c.sales == expected;
                }
                Err(e) => end.error = Some(format!("{e:#}")),
            }
            end.waited_ms = since.elapsed().as_millis() as u64;
            if end.matches || since.elapsed() > limit {
                return end;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The human summary line.
    fn summary_line(&self, end: &RelayEnd, expected: u64) -> String {
        let outbox = match end.counts {
            Some(c) if self.kafka => format!(
                "; outbox: {} event belum terkirim ke Kafka",
                c.outbox_pending
            ),
            Some(c) => format!(
                "; outbox: {} event menunggu (KAFKA_BROKERS tidak diset)",
                c.outbox_pending
            ),
            None => String::new(),
        };
        match (end.counts, &end.error) {
            _ if end.matches => format!(
                "Relay ({}): {expected} penjualan di PostgreSQL, sama dengan kasir ({} ms setelah penjualan terakhir){outbox}",
                self.database, end.waited_ms
            ),
            (Some(c), _) => format!(
                "Relay ({}): hanya {} dari {expected} penjualan di PostgreSQL setelah {} s (belum tersusul; log: {}){outbox}",
                self.database,
                c.sales,
                end.waited_ms / 1000,
                self.log.display()
            ),
            (None, e) => format!(
                "Relay ({}): status tidak terbaca: {}",
                self.database,
                e.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// `kasir-relay status` on `url`: the sales of `store` materialised in PostgreSQL and the
/// outbox's pending events.
fn relay_counts(bin: &Path, url: &str, store: &str) -> Result<RelayCounts> {
    let status = relay_cmd(bin, url, &["status"])?;
    let sales = status["stores"]
        .as_array()
        .and_then(|stores| stores.iter().find(|s| s["store_id"] == store))
        .and_then(|s| s["sales"].as_u64())
        .unwrap_or(0);
    Ok(RelayCounts {
        sales,
        outbox_pending: status["outbox_pending"].as_u64().unwrap_or(0),
    })
}

/// Polls `kasir-relay status` in the background for the live summary.
struct RelayWatch {
    latest: Arc<Mutex<Option<RelayCounts>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RelayWatch {
    /// Starts polling (about once a second).
    fn start(relay: &Relay) -> RelayWatch {
        let latest: Arc<Mutex<Option<RelayCounts>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (bin, url, store) = (relay.bin.clone(), relay.url.clone(), relay.store.clone());
        let thread = {
            let (latest, stop) = (latest.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(c) = relay_counts(&bin, &url, &store)
                        && let Ok(mut l) = latest.lock()
                    {
                        *l = Some(c);
                    }
                    for _ in 0..10 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        };
        RelayWatch {
            latest,
            stop,
            thread,
        }
    }

    /// The last counts read, if any yet.
    fn latest(&self) -> Option<RelayCounts> {
        self.latest.lock().ok().and_then(|l| *l)
    }

    /// Stops polling.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The `kasir-relay` binary: next to this executable (the same target or install
/// directory), else on `PATH`.
fn find_relay_bin() -> Option<PathBuf> {
    let name = format!("kasir-relay{}", std::env::consts::EXE_SUFFIX);
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        && sibling.is_file()
    {
        return Some(sibling);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// Runs a one-shot `kasir-relay ARGS --json` on `url` and returns its JSON.
fn relay_cmd(bin: &Path, url: &str, args: &[&str]) -> Result<Value> {
    let what = format!("kasir-relay {}", args[..args.len().min(2)].join(" "));
    let out = Command::new(bin)
        .args(args)
        .arg("--json")
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what}: {}", last_line(&stderr).unwrap_or("failed"));
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{what} printed {:?}",
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })
}

/// The last non-empty line of `text`, without the `error: ` prefix.
fn last_line(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
}

/// What a long-running child prints: its stdout lines and its stderr log.
struct ChildOutput {
    lines: Receiver<String>,
    log: PathBuf,
}

impl ChildOutput {
    /// Waits for the child's first stdout line; if it exits or stays silent, the error is
    /// the last line of its stderr.
    fn first_line(&self, what: &str, limit: Duration) -> Result<String> {
        let e = match self.lines.recv_timeout(limit) {
            Ok(line) => return Ok(line),
            Err(e) => e,
        };
        let tail = std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|t| last_line(&t).map(str::to_owned));
        match (e, tail) {
            (_, Some(tail)) => bail!("{what}: {tail}"),
            (RecvTimeoutError::Timeout, None) => {
                bail!("{what} printed nothing within {} s", limit.as_secs())
            }
            (RecvTimeoutError::Disconnected, None) => bail!("{what} exited"),
        }
    }
}

/// One long-running `kasir-relay` child (SIGTERM makes it exit cleanly).
struct Proc {
    child: Child,
}

/// The relay's long-running children; dropping this stops them (newest first), and so
/// does Ctrl-C once [`RelayProcs::stop_on_ctrl_c`] is armed.
#[derive(Default)]
struct RelayProcs {
    procs: Arc<Mutex<Vec<Proc>>>,
}

impl RelayProcs {
    /// Spawns `kasir-relay ARGS` (on `url` when given) with stderr to `log`; returns what
    /// it prints.
    fn spawn(
        &self,
        bin: &Path,
        args: &[&str],
        url: Option<&str>,
        log: &Path,
    ) -> Result<ChildOutput> {
        let stderr = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(url) = url {
            cmd.env("DATABASE_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
        }
        self.lock().push(Proc { child });
        Ok(ChildOutput {
            lines: rx,
            log: log.to_owned(),
        })
    }

    /// Stops the children on Ctrl-C, then exits (130).
    fn stop_on_ctrl_c(&self, rt: &tokio::runtime::Runtime) {
        let procs = self.procs.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop_all(&procs);
                std::process::exit(130);
            }
        });
    }

    /// Stops every child, newest first.
    fn stop(&self) {
        stop_all(&self.procs);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Proc>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for RelayProcs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Signals each child to exit cleanly (the relay closes its endpoint), kills it if it
/// has not within 10 s, and reaps it.
fn stop_all(procs: &Mutex<Vec<Proc>>) {
    let taken = std::mem::take(&mut *procs.lock().unwrap_or_else(|p| p.into_inner()));
    for mut p in taken.into_iter().rev() {
        if matches!(p.child.try_wait(), Ok(Some(_))) {
            continue;
        }
        let signalled = signal(p.child.id(), Signal::TERM).is_ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while signalled && Instant::now() < deadline {
            if matches!(p.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(p.child.try_wait(), Ok(Some(_))) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
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
