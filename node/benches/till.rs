//! Till benchmarks, printed as one JSON document (release build):
//!
//! - `sale_commit`: `Node::sell` latency against a raw rusqlite insert of the same sale
//!   rows at the same durability (WAL, `synchronous=FULL`), side by side in one run;
//!   and signed against unsigned (`UNSIGNED_BASELINE`, the commit before signed
//!   changes), sales alternating between the two in the same node;
//! - `signatures`: the cost of signing and of verifying one change signature;
//! - `catch_up`: a new till catching up a day of 10,000 sales from another over the sync
//!   protocol (in memory, both on SQLite), and the same sync messages merged into a bare
//!   document checked by the trust rules against unchecked (`KASIR_BENCH_ONLY=catch_up`
//!   runs only this);
//! - `records`: reading a day's sales out of its ledger with the typed record decoder
//!   against the old detour (hydrate → `serde_json::Value` → `Sale`), alternating in one
//!   run (`KASIR_BENCH_ONLY=records` runs only this; `KASIR_BENCH_ONLY=commit` runs
//!   only `sale_commit`);
//! - `search`: product search over 50,000 products (prefix, typo, barcode);
//! - `encryption`: sale commit and search on a plain and an encrypted (SQLCipher) node,
//!   alternating in one run (`KASIR_BENCH_ONLY=encryption` runs only this);
//! - `open`: time and peak RSS to open a node holding `DAYS` × `SALES_PER_DAY` sales, in
//!   a fresh child process so setup memory does not count;
//! - `disk`: bytes on disk per sale, CRDT history included.
//!
//! Run: `cargo bench -p kasir-node --bench till` (env `KASIR_BENCH_DAYS`, default 365).

use kasir_testkit::percentile;
use std::path::Path;
use std::time::Instant;

use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::records::{Payment, Sale, SaleLine};
use kasir_crdt::{BusinessDate, Qty};
use kasir_node::api::{InitOptions, ProductInput, SaleItem, SaleRequest};
use kasir_node::{DB_FILE, Node, UNSIGNED_BASELINE};
use kasir_sync::trust::{ChangeSig, Merge, MergeContext, receive_checked};
use kasir_sync::{DocRef, Identity, SyncReplica};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

fn summary_us(mut samples: Vec<f64>) -> Value {
    samples.sort_by(|a, b| a.total_cmp(b));
    json!({
        "n": samples.len(),
        "p50_us": (percentile(&samples, 0.50) * 10.0).round() / 10.0,
        "p99_us": (percentile(&samples, 0.99) * 10.0).round() / 10.0,
        "max_us": (percentile(&samples, 1.0) * 10.0).round() / 10.0,
    })
}

fn catalog(n: usize) -> Vec<ProductInput> {
    const WORDS: &[&str] = &[
        "indomie",
        "goreng",
        "soto",
        "aqua",
        "teh",
        "botol",
        "kopi",
        "kapal",
        "api",
        "gula",
        "pasir",
        "beras",
        "pandan",
        "wangi",
        "minyak",
        "bimoli",
        "kecap",
        "manis",
        "bango",
        "sabun",
        "lifebuoy",
        "susu",
        "ultra",
        "coklat",
        "roti",
        "tawar",
        "telur",
        "ayam",
        "sambal",
        "abc",
        "sardines",
        "mie",
        "sedaap",
        "biskuit",
        "roma",
        "kelapa",
        "permen",
        "kopiko",
        "rokok",
        "sampoerna",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..n)
        .map(|i| {
            let name = (0..3)
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ");
            ProductInput {
                sku: format!("SKU{i:06}"),
                name: format!("{name} {}g", rng.gen_range(1..20) * 50),
                price: rng.gen_range(10..2_000) * 100,
                barcodes: vec![format!("899{i:010}")],
                ..ProductInput::default()
            }
        })
        .collect()
}

/// `Node::price` of the same 4-line carts over a catalog of plain products and over the
/// same catalog where every product also sells by the pak and the dus, has two grosir
/// tiers and three promotions (member price, buy 2 get 1, a bundle): what units, tiers
/// and promotions cost a cart, as a ratio in one run.
fn bench_pricing(dir: &Path, n: usize) -> Value {
    use kasir_crdt::promo::{Offer, Promo};
    use kasir_node::api::{TierPrice, UnitPrice};
    let plain = catalog(100);
    let rich: Vec<ProductInput> = plain
        .iter()
        .map(|p| ProductInput {
            units: Some(vec![
                UnitPrice {
                    name: "pak".into(),
                    per: Qty::units(5),
                    price: p.price * 5 - 500,
                    barcodes: vec![format!("{}5", p.barcodes[0])],
                },
                UnitPrice {
                    name: "dus".into(),
                    per: Qty::units(40),
                    price: p.price * 38,
                    barcodes: vec![format!("{}4", p.barcodes[0])],
                },
            ]),
            tiers: Some(vec![
                TierPrice {
                    min_qty: Qty::units(10),
                    price: p.price - 100,
                },
                TierPrice {
                    min_qty: Qty::units(20),
                    price: p.price - 200,
                },
            ]),
            promos: Some(vec![
                Promo {
                    offer: Offer::MemberPrice {
                        price: p.price - 50,
                    },
                    from: None,
                    until: None,
                },
                Promo {
                    offer: Offer::BuyGet { buy: 2, free: 1 },
                    from: None,
                    until: None,
                },
                Promo {
                    offer: Offer::Bundle {
                        qty: 3,
                        price: p.price * 3 - 300,
                    },
                    from: None,
                    until: None,
                },
            ]),
            ..p.clone()
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let carts: Vec<SaleRequest> = (0..n)
        .map(|_| SaleRequest {
            items: (0..4)
                .map(|_| SaleItem {
                    code: format!("SKU{:06}", rng.gen_range(0..100)),
                    qty: Qty::units(rng.gen_range(1..=12)),
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    unit: None,
                })
                .collect(),
            ..SaleRequest::default()
        })
        .collect();
    let timed = |name: &str, products: &[ProductInput]| {
        let mut node = Node::init(
            &dir.join(name),
            &InitOptions {
                store_name: "Bench".into(),
                till_code: "T1".into(),
                encrypt: None,
            },
        )
        .expect("init");
        node.add_products(products).expect("products");
        let mut us = Vec::with_capacity(n);
        let mut total = 0i64;
        for cart in &carts {
            let t = Instant::now();
            total += node.price(cart).expect("price").total;
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        (summary_us(us), total)
    };
    let (plain_us, plain_total) = timed("pricing-plain", &plain);
    let (rich_us, rich_total) = timed("pricing-rich", &rich);
    let ratio = |k: &str| {
        let (a, b) = (
            rich_us[k].as_f64().unwrap_or(0.0),
            plain_us[k].as_f64().unwrap_or(1.0),
        );
        (a / b * 100.0).round() / 100.0
    };
    json!({
        "carts": n,
        "plain": plain_us,
        "units_tiers_promos": rich_us,
        "ratio_p50": ratio("p50_us"),
        "ratio_p99": ratio("p99_us"),
        "promotions_took": plain_total - rich_total,
    })
}

fn bench_sale_commit(dir: &Path, n: usize) -> Value {
    let mut node = Node::init(
        &dir.join("till"),
        &InitOptions {
            store_name: "Bench".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    node.add_products(&catalog(100)).expect("products");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let requests: Vec<SaleRequest> = (0..n)
        .map(|_| SaleRequest {
            items: (0..rng.gen_range(1..=4))
                .map(|_| SaleItem {
                    code: format!("SKU{:06}", rng.gen_range(0..100)),
                    qty: Qty::units(rng.gen_range(1..=3)),
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    unit: None,
                })
                .collect(),
            payments: vec![Payment {
                method: "cash".into(),
                amount: 100_000_000,
                reference: None,
                confirmed_by: None,
            }],
            ..SaleRequest::default()
        })
        .collect();
    let mut node_us = Vec::with_capacity(n);
    let mut unsigned_us = Vec::with_capacity(n / 2);
    let mut sale_ids = Vec::with_capacity(n);
    for (i, req) in requests.iter().enumerate() {
        // Every other sale is committed the way it was before signed changes.
        let unsigned = i % 2 == 1;
        UNSIGNED_BASELINE.store(unsigned, Ordering::Relaxed);
        let t = Instant::now();
        let out = node.sell(req).expect("sell");
        let us = t.elapsed().as_secs_f64() * 1e6;
        UNSIGNED_BASELINE.store(false, Ordering::Relaxed);
        if unsigned {
            unsigned_us.push(us);
        } else {
            node_us.push(us);
        }
        sale_ids.push(out.sale_id);
    }
    // Baseline: the same rows (sale + lines) inserted raw, one durable transaction each.
    let rows = node.sales(None).expect("sales");
    drop(node);
    let mut raw = rusqlite::Connection::open(dir.join("raw.sqlite")).expect("raw db");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.pragma_update(None, "synchronous", "FULL")
        .expect("sync");
    raw.execute_batch(
        "CREATE TABLE sales (sale_id TEXT PRIMARY KEY, receipt_no TEXT, till_code TEXT, business_date TEXT,
           created_at_ms INTEGER, total INTEGER, status TEXT) WITHOUT ROWID;
         CREATE TABLE sale_lines (sale_id TEXT, idx INTEGER, sku TEXT, qty INTEGER, unit_price INTEGER,
           line_total INTEGER, PRIMARY KEY (sale_id, idx)) WITHOUT ROWID;",
    )
    .expect("schema");
    let mut raw_us = Vec::with_capacity(n);
    for s in &rows {
        let t = Instant::now();
        let tx = raw.transaction().expect("tx");
        tx.execute(
            "INSERT INTO sales VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                s.sale_id,
                s.receipt_no,
                s.till_code,
                s.business_date,
                s.created_at_ms,
                s.total,
                s.status.as_str()
            ],
        )
        .expect("insert");
        for (i, l) in s.lines.iter().enumerate() {
            tx.execute(
                "INSERT INTO sale_lines VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    s.sale_id,
                    i as i64,
                    l.sku,
                    (l.qty * 1000.0) as i64,
                    l.unit_price,
                    l.line_total
                ],
            )
            .expect("insert line");
        }
        tx.commit().expect("commit");
        raw_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let node_s = summary_us(node_us);
    let unsigned_s = summary_us(unsigned_us);
    let raw_s = summary_us(raw_us);
    let ratio = |over: &Value, k: &str| {
        (node_s[k].as_f64().unwrap_or(0.0) / over[k].as_f64().unwrap_or(1.0).max(0.1) * 100.0)
            .round()
            / 100.0
    };
    json!({
        "node_sell": node_s,
        "node_sell_unsigned": unsigned_s,
        "raw_sqlite_insert": raw_s,
        "ratio_p50": ratio(&raw_s, "p50_us"),
        "ratio_p99": ratio(&raw_s, "p99_us"),
        "signed_over_unsigned_p50": ratio(&unsigned_s, "p50_us"),
        "signed_over_unsigned_p99": ratio(&unsigned_s, "p99_us"),
    })
}

/// Encryption at rest: the same sales committed, and the same searches run, on a plain
/// and an encrypted (SQLCipher) node, alternating between the two in one run. A node made
/// second searches faster than its twin made first (seen with two plain nodes: 0.63x), so
/// the pair is made twice, in both orders, and each kind's samples are pooled.
fn bench_encryption(dir: &Path, n: usize, products: usize) -> Value {
    let mut plain = (Vec::new(), Vec::new());
    let mut sealed = (Vec::new(), Vec::new());
    for encrypted_first in [false, true] {
        let (first, second) = encryption_pair(dir, encrypted_first, n / 2, products);
        let (p, e) = if encrypted_first {
            (second, first)
        } else {
            (first, second)
        };
        plain.0.extend(p.0);
        plain.1.extend(p.1);
        sealed.0.extend(e.0);
        sealed.1.extend(e.1);
    }
    let ratio = |a: &Value, b: &Value, k: &str| {
        (a[k].as_f64().unwrap_or(0.0) / b[k].as_f64().unwrap_or(1.0).max(0.1) * 100.0).round()
            / 100.0
    };
    let (ps, ss) = (summary_us(plain.0), summary_us(sealed.0));
    let (pq, sq) = (summary_us(plain.1), summary_us(sealed.1));
    json!({
        "products": products,
        "sell_plain": ps,
        "sell_encrypted": ss,
        "sell_encrypted_over_plain_p50": ratio(&ss, &ps, "p50_us"),
        "sell_encrypted_over_plain_p99": ratio(&ss, &ps, "p99_us"),
        "search_plain": pq,
        "search_encrypted": sq,
        "search_encrypted_over_plain_p50": ratio(&sq, &pq, "p50_us"),
        "search_encrypted_over_plain_p99": ratio(&sq, &pq, "p99_us"),
    })
}

/// Sale and search latencies (µs) of two nodes made one after the other, one of them
/// encrypted: `n` sales each, alternating, then the same searches, alternating.
type Samples = (Vec<f64>, Vec<f64>);
fn encryption_pair(
    dir: &Path,
    encrypted_first: bool,
    n: usize,
    products: usize,
) -> (Samples, Samples) {
    let open = |name: String, encrypt: bool| {
        let mut node = Node::init(
            &dir.join(&name),
            &InitOptions {
                store_name: "Bench".into(),
                till_code: "T1".into(),
                encrypt: encrypt
                    .then(|| kasir_node::vault::Encrypt::KeyFile(dir.join(format!("{name}.key")))),
            },
        )
        .expect("init");
        for chunk in catalog(products).chunks(5_000) {
            node.add_products(chunk).expect("products");
        }
        node
    };
    let mut nodes = [
        open(format!("enc-pair-{encrypted_first}-a"), encrypted_first),
        open(format!("enc-pair-{encrypted_first}-b"), !encrypted_first),
    ];
    let mut sells = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..n * 2 {
        let req = SaleRequest {
            items: (0..rng.gen_range(1..=4))
                .map(|_| SaleItem {
                    code: format!("SKU{:06}", rng.gen_range(0..100)),
                    qty: Qty::units(rng.gen_range(1..=3)),
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    unit: None,
                })
                .collect(),
            ..SaleRequest::default()
        };
        let t = Instant::now();
        nodes[i % 2].sell(&req).expect("sell");
        sells[i % 2].push(t.elapsed().as_secs_f64() * 1e6);
    }
    let queries = [
        "indo",
        "kopi kap",
        "indomei gorng",
        "8990000012345",
        "sabun life",
    ];
    let mut searches = [Vec::new(), Vec::new()];
    for round in 0..100 {
        for q in queries {
            // Which node goes first alternates: the second of a pair finds the query's
            // code warm.
            for k in [round % 2, 1 - round % 2] {
                let t = Instant::now();
                nodes[k].search_products(q, 20).expect("search");
                searches[k].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let [s0, s1] = sells;
    let [q0, q1] = searches;
    ((s0, q0), (s1, q1))
}

fn bench_search(dir: &Path) -> Value {
    let mut node = Node::init(
        &dir.join("search"),
        &InitOptions {
            store_name: "Bench".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    let products = catalog(50_000);
    let t = Instant::now();
    for chunk in products.chunks(5_000) {
        node.add_products(chunk).expect("import");
    }
    let import_s = t.elapsed().as_secs_f64();
    let queries = [
        "indo",
        "kopi kap",
        "gula pasir",
        "indomei gorng",
        "kecap mnis",
        "8990000012345",
        "SKU004242",
        "sabun life",
        "roti",
        "sambal abc",
    ];
    let mut us = Vec::new();
    let mut hits = 0;
    for _ in 0..50 {
        for q in queries {
            let t = Instant::now();
            let found = node.search_products(q, 20).expect("search");
            us.push(t.elapsed().as_secs_f64() * 1e6);
            hits += usize::from(!found.is_empty());
        }
    }
    json!({ "products": products.len(), "import_seconds": (import_s * 100.0).round() / 100.0,
            "queries_with_results": hits, "latency": summary_us(us) })
}

/// Builds `days` ledgers of `per_day` sales straight through the crdt and storage APIs
/// (what a year of selling leaves behind), compacted as the node keeps them.
fn build_history(dir: &Path, days: usize, per_day: usize) -> (usize, f64) {
    let mut node = Node::init(
        dir,
        &InitOptions {
            store_name: "Bench".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    node.add_products(&catalog(1_000)).expect("products");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let start_ms: i64 = 1_735_689_600_000; // 2025-01-01
    let t = Instant::now();
    for day in 0..days {
        let at = start_ms + day as i64 * 86_400_000;
        let mut ledger = day_of_sales(&node, at, per_day, &mut rng);
        assert_eq!(node.store_ledger(&mut ledger).expect("store ledger"), 0);
    }
    drop(node);
    rusqlite::Connection::open(dir.join(DB_FILE))
        .and_then(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);"))
        .expect("checkpoint");
    (days * per_day, t.elapsed().as_secs_f64())
}

/// A ledger of `per_day` sales of the node's till on the business day of `at`, written
/// with the till's own actor (`Node::store_ledger` signs it, so it syncs like a day the
/// till sold itself).
fn day_of_sales(node: &Node, at: i64, per_day: usize, rng: &mut rand::rngs::StdRng) -> LedgerDoc {
    let store = node.store_id();
    let till = node.device_id();
    let date: BusinessDate = BusinessDate::at(at, 420);
    let mut ledger = LedgerDoc::create(
        LedgerMeta {
            store,
            till,
            date: date.clone(),
        },
        kasir_crdt::author::device_actor(till, rand::random()),
    )
    .expect("ledger");
    for i in 0..per_day {
        let lines: Vec<SaleLine> = (0..rng.gen_range(1..=3))
            .map(|_| {
                let sku = format!("SKU{:06}", rng.gen_range(0..1_000));
                let price = rng.gen_range(10..200) * 100;
                SaleLine {
                    product_id: sku.clone(),
                    name: sku.clone(),
                    sku,
                    qty: Qty::units(1),
                    unit_price: price,
                    discount: 0,
                    tax: 0,
                    line_total: price,
                    tax_code: None,
                    unit: None,
                    promo: None,
                }
            })
            .collect();
        let total: i64 = lines.iter().map(|l| l.line_total).sum();
        let sale = Sale {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: None,
            receipt_no: format!("T1-{}-{:04}", date.compact(), i + 1),
            till: till.to_string(),
            till_code: "T1".into(),
            cashier: None,
            user_id: None,
            approved_by: None,
            created_at_ms: at + i as i64 * 1_000,
            business_date: date.to_string(),
            lines,
            subtotal: total,
            service_charge: 0,
            tax: 0,
            dpp: total,
            dpp_other: total,
            tax_rule: Default::default(),
            taxes: Vec::new(),
            seller: None,
            customer_id: None,
            due_date: None,
            customer_name: None,
            rounding: 0,
            total,
            payments: vec![Payment {
                method: "cash".into(),
                amount: total,
                reference: None,
                confirmed_by: None,
            }],
            change: 0,
        };
        ledger.record_sale(&sale).expect("record");
    }
    ledger
}

/// Signing and verifying one change signature, per operation.
fn bench_signatures(n: usize) -> Value {
    let id = Identity::generate();
    let hashes: Vec<kasir_crdt::doc::ChangeHash> = (0..n)
        .map(|i| kasir_crdt::doc::ChangeHash(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect();
    let t = Instant::now();
    let sigs: Vec<ChangeSig> = hashes.iter().map(|h| ChangeSig::sign(&id, h)).collect();
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    let valid = sigs.iter().filter(|s| s.is_valid()).count();
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    assert_eq!(valid, n);
    json!({ "n": n, "sign_us": (sign_us * 100.0).round() / 100.0, "verify_us": (verify_us * 100.0).round() / 100.0 })
}

/// Pulls one document from `node` into a bare document over the sync protocol, keeping
/// every message the node sent (with the signatures it carried).
fn pull(node: &mut Node, r: &DocRef, into: &mut kasir_crdt::Doc) -> Vec<(Vec<u8>, Vec<ChangeSig>)> {
    use kasir_crdt::sync::PeerState;
    let peer = Identity::generate().device_id();
    let (mut at_node, mut at_doc) = (PeerState::new(), PeerState::new());
    let mut sent = Vec::new();
    loop {
        let mut moved = false;
        if let Some((msg, sigs)) = node.sync_generate(r, &mut at_node).expect("generate") {
            into.receive_sync_message(&mut at_doc, &msg)
                .expect("receive");
            sent.push((msg, sigs));
            moved = true;
        }
        if let Some((reply, _)) = into.generate_sync_message_with_hashes(&mut at_doc, 4 << 20) {
            node.sync_receive(peer, r, &mut at_node, &reply, &[])
                .expect("reply");
            moved = true;
        }
        if !moved {
            return sent;
        }
    }
}

/// A new till catching up a day of `n` sales, and the trust rules' share of the merge.
fn bench_catch_up(dir: &Path, n: usize) -> Value {
    let mut source = Node::init(
        &dir.join("source"),
        &InitOptions {
            store_name: "Bench".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    let store = source.store_id();
    let till = source.device_id();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let now = kasir_sync::now_ms();
    let mut ledger = day_of_sales(&source, now, n, &mut rng);
    source.store_ledger(&mut ledger).expect("store");
    let date = ledger.meta().date.clone();
    let ledger_ref = DocRef::ledger(store, till, date.clone());

    // The whole path: a joined till's node, SQLite and all, catching up by sync.
    let joined = dir.join("joined");
    std::fs::create_dir_all(&joined).expect("dir");
    let joiner = Identity::generate();
    joiner.store(&joined).expect("key");
    let mut fresh = Node::init_joined(&joined, store, "T2").expect("joined");
    let t = Instant::now();
    let done = kasir_sync::exchange(
        &mut source,
        till,
        &mut fresh,
        joiner.device_id(),
        100_000,
        |_, _| {},
    );
    let node_s = t.elapsed().as_secs_f64();
    assert!(done.ended.is_none(), "catch-up failed: {:?}", done.ended);
    assert_eq!(
        fresh.status().expect("status").sales,
        n as u64,
        "the new till holds every sale"
    );

    // The merge alone, with and without the rules, from the same messages.
    let mut roster = kasir_crdt::store::StoreDoc::create(store, kasir_crdt::ActorId::random())
        .expect("store")
        .into_doc();
    pull(&mut source, &DocRef::store(store), &mut roster);
    let genesis = || {
        LedgerDoc::create(
            LedgerMeta {
                store,
                till,
                date: date.clone(),
            },
            kasir_crdt::ActorId::random(),
        )
        .expect("ledger")
        .into_doc()
    };
    let mut bare = genesis();
    let messages = pull(&mut source, &ledger_ref, &mut bare);
    let sigs: HashMap<[u8; 32], ChangeSig> = messages
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| (s.hash, s.clone())))
        .collect();
    let lookup = |h: &kasir_crdt::doc::ChangeHash| sigs.get(&h.0).cloned();
    let view = kasir_crdt::store::StoreView::of(&roster);
    let ctx = MergeContext {
        kind: kasir_crdt::DocKind::Ledger,
        till: Some(till),
        roster: Some(view),
        date: Some(&date),
        now_ms: kasir_sync::now_ms(),
        sig: &lookup,
    };
    let (mut checked, mut unchecked) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let mut doc = genesis();
        let mut st = kasir_crdt::sync::PeerState::new();
        let t = Instant::now();
        for (m, _) in &messages {
            doc.receive_sync_message(&mut st, m).expect("merge");
        }
        unchecked.push(t.elapsed().as_secs_f64());
        let mut doc = genesis();
        let mut st = kasir_crdt::sync::PeerState::new();
        let t = Instant::now();
        for (m, _) in &messages {
            match receive_checked(&mut doc, &mut st, m, &ctx).expect("merge") {
                Merge::Applied { .. } => {}
                other => panic!("the rules refused an honest day: {other:?}"),
            }
        }
        checked.push(t.elapsed().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (c, u) = (median(checked), median(unchecked));
    json!({
        "sales": n,
        "node_catch_up_seconds": (node_s * 1000.0).round() / 1000.0,
        "merge_checked_seconds": (c * 1000.0).round() / 1000.0,
        "merge_unchecked_seconds": (u * 1000.0).round() / 1000.0,
        "checked_over_unchecked": (c / u * 100.0).round() / 100.0,
    })
}

/// A day's `n` sales read out of their ledger: the typed decoder (`LedgerDoc::sales`)
/// against the detour it replaced — the same hydrated records turned into
/// `serde_json::Value` and deserialized from that — five rounds each, alternating.
fn bench_record_decode(dir: &Path, n: usize) -> Value {
    let node = Node::init(
        &dir.join("records"),
        &InitOptions {
            store_name: "Bench".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut ledger = day_of_sales(&node, kasir_sync::now_ms(), n, &mut rng);
    let (mut typed, mut detour) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let sales: Vec<Sale> = ledger
            .sales()
            .into_iter()
            .map(|s| s.expect("sale"))
            .collect();
        typed.push(t.elapsed().as_secs_f64());
        assert_eq!(sales.len(), n);
        let t = Instant::now();
        let json = ledger.doc().to_json().expect("json");
        let old: Vec<Sale> = json["sales"]
            .as_object()
            .expect("sales")
            .values()
            .map(|v| serde_json::from_value(v.clone()).expect("sale"))
            .collect();
        detour.push(t.elapsed().as_secs_f64());
        assert_eq!(old.len(), n);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t, d) = (median(typed), median(detour));
    json!({
        "sales": n,
        "typed_ms": (t * 1e4).round() / 10.0,
        "json_detour_ms": (d * 1e4).round() / 10.0,
        "typed_over_detour": (t / d * 100.0).round() / 100.0,
    })
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: open a node, touch it like a till does at start, report time and RSS.
    if let Some(pos) = args.iter().position(|a| a == "--open-only") {
        let dir = Path::new(&args[pos + 1]);
        let t = Instant::now();
        let node = Node::open(dir).expect("open");
        let status = node.status().expect("status");
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{}",
            json!({ "open_ms": (elapsed * 10.0).round() / 10.0, "peak_rss_mb": peak_rss_kb() / 1024, "sales": status.sales })
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility
    }
    let days: usize = std::env::var("KASIR_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(365);
    let per_day: usize = std::env::var("KASIR_BENCH_SALES_PER_DAY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let tmp = tempfile::tempdir().expect("tmp");
    eprintln!("pricing with units, tiers and promotions...");
    let pricing = bench_pricing(tmp.path(), 5_000);
    if std::env::var("KASIR_BENCH_ONLY").is_ok_and(|v| v == "pricing") {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "pricing": pricing })).unwrap_or_default()
        );
        return;
    }
    if std::env::var("KASIR_BENCH_ONLY").is_ok_and(|v| v == "catch_up") {
        eprintln!("catch-up of 10,000 sales...");
        let catch_up = bench_catch_up(tmp.path(), 10_000);
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "catch_up": catch_up })).unwrap_or_default()
        );
        return;
    }
    if std::env::var("KASIR_BENCH_ONLY").is_ok_and(|v| v == "commit") {
        eprintln!("sale commit...");
        let sale_commit = bench_sale_commit(tmp.path(), 2_000);
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "sale_commit": sale_commit }))
                .unwrap_or_default()
        );
        return;
    }
    eprintln!("record decoding: typed against the JSON detour...");
    let records = bench_record_decode(tmp.path(), 10_000);
    if std::env::var("KASIR_BENCH_ONLY").is_ok_and(|v| v == "records") {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "records": records })).unwrap_or_default()
        );
        return;
    }
    eprintln!("encryption at rest: plain against encrypted...");
    let encryption = bench_encryption(tmp.path(), 1_000, 20_000);
    if std::env::var("KASIR_BENCH_ONLY").is_ok_and(|v| v == "encryption") {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "encryption": encryption })).unwrap_or_default()
        );
        return;
    }
    eprintln!("sale commit...");
    let sale_commit = bench_sale_commit(tmp.path(), 2_000);
    let sell_dir = tmp.path().join("till");
    let sell_disk = dir_bytes(&sell_dir) as f64 / 2_000.0;
    eprintln!("signatures...");
    let signatures = bench_signatures(10_000);
    eprintln!("catch-up of 10,000 sales...");
    let catch_up = bench_catch_up(tmp.path(), 10_000);
    eprintln!("search over 50k products...");
    let search = bench_search(tmp.path());
    eprintln!("building {days} days x {per_day} sales...");
    let hist = tmp.path().join("history");
    let (n_sales, build_s) = build_history(&hist, days, per_day);
    let out = std::process::Command::new(&args[0])
        .args(["--open-only", &hist.display().to_string()])
        .output()
        .expect("child");
    let open: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let bytes = dir_bytes(&hist);
    let result = json!({
        "pricing": pricing,
        "encryption": encryption,
        "records": records,
        "sale_commit": sale_commit,
        "signatures": signatures,
        "catch_up": catch_up,
        "search_50k": search,
        "open": { "days": days, "sales": n_sales, "build_seconds": (build_s * 10.0).round() / 10.0, "child": open },
        "disk": {
            "history_bytes_per_sale": (bytes as f64 / n_sales as f64).round(),
            "live_selling_bytes_per_sale": sell_disk.round(),
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
}
