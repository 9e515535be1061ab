//! Two relay instances on one PostgreSQL database serve the same store at the same time.
//!
//! The tills run in-process here so each sync can be pointed at one instance exactly:
//! till A syncs with both instances at once (the same records materialised concurrently
//! by two writers), then till B with the second only, then till C — which sold nothing —
//! with the first only: C ends with B's sales, which only the second instance received,
//! so the first merged them from the chunks the second stored in PostgreSQL.

#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use kasir_crdt::{DeviceId, Qty};
use kasir_node::api::{SaleItem, SaleRequest};
use kasir_node::lan;
use kasir_node::{Node, SharedNode};
use kasir_testkit::pg::fresh_database;
use kasir_testkit::totals::pg_totals;
use kasir_testkit::{RelayProc, Till, runtime, wait_for};

const SKUS: [(&str, &str, u32); 3] = [
    ("KOPI", "Kopi", 1_500),
    ("TEH", "Teh", 5_000),
    ("ROTI", "Roti", 12_000),
];
const STOCK: i64 = 1_000;

async fn sync_with(node: SharedNode, relay: DeviceId, addr: SocketAddr) {
    // A fresh endpoint per sync, so the connection goes to exactly this address.
    let ep = lan::bind(&node, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("endpoint");
    lan::sync_once(&node, &ep, relay, &[addr], Duration::from_secs(120))
        .await
        .expect("sync with the relay");
    ep.close().await;
}

fn sell(node: &SharedNode, n: usize, offset: usize, sold: &mut [i64; 3]) -> i64 {
    let mut total = 0;
    let mut node = node.lock().expect("node");
    for i in 0..n {
        let k = (i + offset) % SKUS.len();
        let qty = 1 + (i % 3) as i64;
        let outcome = node
            .sell(&SaleRequest {
                items: vec![SaleItem {
                    code: SKUS[k].0.into(),
                    qty: Qty(qty * 1000),
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    unit: None,
                }],
                ..SaleRequest::default()
            })
            .expect("sale");
        total += outcome.total;
        sold[k] += qty;
    }
    total
}

#[test]
fn two_relay_instances_serving_one_store_concurrently_end_with_the_same_rows() {
    let rt = runtime();
    let db = fresh_database("two_instances");
    let relay1 = RelayProc::start(&db, None);
    let relay2 = RelayProc::start(&db, None);
    assert_eq!(
        relay1.endpoint_id, relay2.endpoint_id,
        "instances share one identity"
    );
    let tenant = relay1.tenant("Toko Dua");

    let mut a = Till::with_products("Toko Dua Pintu", "A1", &SKUS, STOCK as u32);
    let store = a.store_id();
    let ticket = relay1.adopt_ticket(&tenant, &store);
    a.ok(&["join", &ticket]);
    a.start(&[]);
    let b = Till::empty();
    let c = Till::empty();
    a.admit(&b);
    a.admit(&c);
    a.stop();

    let node_a = SharedNode::new(Node::open(a.path()).expect("open A"));
    let node_b = SharedNode::new(Node::open(b.path()).expect("open B"));
    let node_c = SharedNode::new(Node::open(c.path()).expect("open C"));
    let mut sold = [0i64; 3];
    let expected_total = sell(&node_a, 150, 0, &mut sold) + sell(&node_b, 150, 1, &mut sold);

    let relay_id: DeviceId = relay1.endpoint_id.parse().expect("relay id");
    let addr1: SocketAddr = relay1.sync_addr().parse().expect("addr");
    let addr2: SocketAddr = relay2.sync_addr().parse().expect("addr");
    rt.block_on(async {
        // A's ledger reaches both instances at once: two writers, same records.
        tokio::join!(
            sync_with(node_a.clone(), relay_id, addr1),
            sync_with(node_a.clone(), relay_id, addr2),
        );
        // B's ledger reaches the second instance only.
        sync_with(node_b.clone(), relay_id, addr2).await;
    });

    wait_for(60, "PostgreSQL to hold both tills' sales", || {
        (pg_totals(&rt, &db).sales == 300).then_some(())
    });
    let totals = pg_totals(&rt, &db);
    for (k, (sku, _, _)) in SKUS.iter().enumerate() {
        assert_eq!(
            totals.stock.get(*sku).copied(),
            Some((STOCK - sold[k]) * 1000),
            "stock of {sku}: each movement counted once despite two writers"
        );
    }
    assert_eq!(totals.sum_total, expected_total);

    // C hears about B's sales from the first instance only: it merged them from PostgreSQL.
    wait_for(
        60,
        "till C to get every sale through the first instance",
        || {
            rt.block_on(sync_with(node_c.clone(), relay_id, addr1));
            let n = node_c.lock().expect("C").sales(None).expect("sales").len();
            (n == 300).then_some(())
        },
    );
}
