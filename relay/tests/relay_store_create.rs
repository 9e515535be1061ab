//! A store created at head office: `kasir-relay store create` prints a ticket, the first
//! till joins with it through the relay, sells, and head office sees it through the
//! API with a `kasir-relay token`. Strangers and spent or unknown tickets are refused.

mod support;

use kasir_sync::transport::{FrameReader, FrameWriter, bind_endpoint, connect};
use kasir_sync::{Frame, SYNC_ALPN, SyncMetrics};
use serde_json::Value;
use sqlx::Row;
use support::{RelayProc, Till, api, kasir_bin, pg_totals, runtime, wait_for};

fn api_get(relay: &RelayProc, token: &str, path: &str) -> (u16, Value) {
    api(relay, token, "GET", path, None)
}

#[test]
fn a_store_created_on_the_relay_gets_its_first_till_and_reports_to_head_office() {
    let rt = runtime();
    let db = support::fresh_database("store_create");
    // Stores idle for 2 s leave the relay's memory (the default is ten minutes).
    let relay = RelayProc::start_with(&db, None, &[("KASIR_RELAY_IDLE_UNLOAD_S", "2")]);
    let tenant = relay.tenant("PT Kopi Nusantara");
    let created = relay.cli(&[
        "store",
        "create",
        "--tenant",
        &tenant,
        "--name",
        "Kopi Nusantara Depok",
    ]);
    let store = created["store_id"].as_str().expect("store_id").to_owned();
    let ticket = created["ticket"].as_str().expect("ticket").to_owned();
    assert!(ticket.starts_with("kasir1"), "{ticket}");

    // The first till joins through the relay and becomes the store's owner.
    let mut a = Till::empty();
    let joined = a.ok(&["join", &ticket]);
    assert_eq!(joined["store_id"], store.as_str());
    assert_eq!(joined["role"], "owner");
    assert_eq!(joined["till_code"], "T1");
    // The store's name came from head office.
    assert_eq!(a.ok(&["store", "show"])["name"], "Kopi Nusantara Depok");

    // A ticket is used once.
    let other = Till::empty();
    let out = std::process::Command::new(kasir_bin())
        .arg("--data")
        .arg(other.path())
        .args(["join", &ticket])
        .output()
        .expect("kasir join");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already used"), "{err}");

    // A joined till's catalog and sales reach PostgreSQL.
    a.ok(&[
        "product",
        "add",
        "--sku",
        "KOPISUSU",
        "--name",
        "Es Kopi Susu",
        "--price",
        "18000",
        "--stock",
        "40",
    ]);
    a.start(&[]);
    let (_, total) = a.sell(&[("KOPISUSU", 2)]);
    assert_eq!(total, 36_000);
    wait_for(60, "the sale and the product in PostgreSQL", || {
        let t = pg_totals(&rt, &db);
        let products: i64 = rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await.expect("connect");
            sqlx::query_scalar(
                "SELECT count(*) FROM products WHERE sku = 'KOPISUSU' AND price = 18000",
            )
            .fetch_one(&pool)
            .await
            .expect("products")
        });
        (t.sales == 1 && products == 1 && t.stock.get("KOPISUSU") == Some(&38_000)).then_some(())
    });

    // Selling live writes a chunk per sale; the relay folds them into snapshots, and
    // what PostgreSQL keeps still loads as the whole ledger.
    for _ in 0..90 {
        a.sell(&[("KOPISUSU", 1)]);
    }
    wait_for(60, "91 sales in PostgreSQL", || {
        (pg_totals(&rt, &db).sales == 91).then_some(())
    });
    let (max_chunks, ledger_sales) = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("connect");
        let rows = sqlx::query(
            "SELECT d.doc_id, c.bytes FROM doc_chunks c JOIN docs d USING (store_id, doc_id)
             WHERE d.kind = 2 ORDER BY c.seq",
        )
        .fetch_all(&pool)
        .await
        .expect("chunks");
        // Every ledger (two if the run crossed midnight), loaded from what is stored.
        let mut by_doc: std::collections::BTreeMap<Vec<u8>, Vec<Vec<u8>>> = Default::default();
        for r in &rows {
            by_doc
                .entry(r.get("doc_id"))
                .or_default()
                .push(r.get("bytes"));
        }
        let mut sales = 0;
        for (id, chunks) in &by_doc {
            let doc = kasir_crdt::Doc::load(
                kasir_crdt::DocId(id.clone().try_into().expect("32 bytes")),
                kasir_crdt::DocKind::Ledger,
                chunks.iter().map(Vec::as_slice),
                kasir_crdt::ActorId::random(),
            )
            .expect("the stored chunks load");
            sales += kasir_crdt::ledger::LedgerDoc::from_doc(doc)
                .expect("a ledger")
                .sale_count();
        }
        let max_chunks = by_doc.values().map(Vec::len).max().unwrap_or(0);
        (max_chunks, sales)
    });
    let persists = metric(&relay, "kasir_relay_persists_total");
    assert!(
        persists > 70.0,
        "only {persists} persists: too few chunks to need compaction"
    );
    assert!(
        max_chunks <= 65,
        "{max_chunks} chunks: the ledger was never compacted"
    );
    assert_eq!(ledger_sales, 91, "compaction kept every sale");

    // Head office: a token of the tenant sees the store and its numbers.
    let token = relay.cli(&["token", "--tenant", &tenant, "--role", "analyst"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, stores) = api_get(&relay, &token, "/v1/stores");
    assert_eq!(status, 200, "{stores}");
    let listed: Vec<&str> = stores["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .map(|s| s["store_id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, vec![store.as_str()]);
    let (status, stock) = api_get(&relay, &token, &format!("/v1/stock?store={store}"));
    assert_eq!(status, 200, "{stock}");
    assert_eq!(stock["stock"][0]["sku"], "KOPISUSU");
    assert_eq!(stock["stock"][0]["on_hand"].as_f64(), Some(-52.0));
    // Another tenant's token: the store does not exist for it.
    let stranger = relay.tenant("Lain");
    let token_b = relay.cli(&["token", "--tenant", &stranger, "--role", "owner"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, _) = api_get(&relay, &token_b, &format!("/v1/stock?store={store}"));
    assert_eq!(status, 404);

    // Status names the relay and counts the store's sales.
    let status = relay.cli(&["status"]);
    assert_eq!(status["endpoint_id"], relay.endpoint_id.as_str());
    assert_eq!(status["stores"][0]["sales"], 91);
    assert!(
        status["lag"]["outbox_pending"].as_i64().is_some(),
        "{status}"
    );

    // A device outside the roster is refused before anything flows, whether it names
    // a store the relay doesn't serve or this store.
    let relay_id: kasir_crdt::DeviceId = relay.endpoint_id.parse().expect("relay id");
    let addr: std::net::SocketAddr = relay.sync_addr().parse().expect("addr");
    let store_bytes = *uuid::Uuid::parse_str(&store).expect("uuid").as_bytes();
    for (named, expect) in [([7u8; 16], "not served here"), (store_bytes, "")] {
        let answer = rt.block_on(stranger_hello(relay_id, addr, named));
        match answer {
            Some(Frame::Bye { reason }) => assert!(reason.contains(expect), "{reason}"),
            Some(other) => panic!("a stranger got {other:?}"),
            None => assert!(expect.is_empty(), "closed without a reason"),
        }
    }
    // A stranger announcing a 16 MiB first frame is cut off at the length prefix.
    rt.block_on(async {
        let ep = bind_endpoint(rand_key(), "127.0.0.1:0".parse().expect("addr"), &[])
            .await
            .expect("endpoint");
        let conn = connect(&ep, relay_id, &[addr], SYNC_ALPN)
            .await
            .expect("connect");
        let (mut send, recv) = conn.open_bi().await.expect("stream");
        send.write_all(&(16u32 << 20).to_be_bytes())
            .await
            .expect("prefix");
        let _ = send.write_all(&[0u8; 1024]).await;
        let mut reader = FrameReader::new(recv, SyncMetrics::default());
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), reader.next()).await;
        assert!(
            !matches!(answer, Ok(Ok(Some(Frame::Manifest { .. })))),
            "the relay answered a stranger's oversized hello"
        );
        ep.close().await;
    });
    wait_for(10, "the oversized hello in the relay's log", || {
        relay.log().contains("exceeds the limit").then_some(())
    });
    assert_eq!(pg_totals(&rt, &db).sales, 91);

    // The till goes home: its store leaves the relay's memory, and comes back on demand.
    assert_eq!(metric(&relay, "kasir_relay_loaded_stores"), 1.0);
    let text = ureq::get(&format!("{}/metrics", relay.http_url()))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    kasir_testkit::promtool_check(&text);
    a.shutdown();
    wait_for(30, "the idle store to be unloaded", || {
        (metric(&relay, "kasir_relay_loaded_stores") == 0.0).then_some(())
    });
    a.start(&[]);
    a.sell(&[("KOPISUSU", 1)]);
    wait_for(60, "the sale after the reload", || {
        (pg_totals(&rt, &db).sales == 92).then_some(())
    });
    drop(a);
}

/// Connects as a random device and says hello for `store`; returns the relay's first
/// frame after its own hello, or `None` when it closed the connection.
async fn stranger_hello(
    relay: kasir_crdt::DeviceId,
    addr: std::net::SocketAddr,
    store: [u8; 16],
) -> Option<Frame> {
    let ep = bind_endpoint(rand_key(), "127.0.0.1:0".parse().expect("addr"), &[])
        .await
        .expect("endpoint");
    let conn = connect(&ep, relay, &[addr], SYNC_ALPN)
        .await
        .expect("connect");
    let (send, recv) = conn.open_bi().await.expect("stream");
    let mut writer = FrameWriter::new(send, SyncMetrics::default());
    let mut reader = FrameReader::new(recv, SyncMetrics::default());
    writer
        .send(vec![Frame::Hello {
            version: kasir_sync::wire::VERSION,
            store,
        }])
        .await
        .expect("hello");
    let mut answer = None;
    while let Ok(Ok(Some(frame))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), reader.next()).await
    {
        if let Frame::Bye { .. } = frame {
            answer = Some(frame);
            break;
        }
        if let Frame::Manifest { .. } | Frame::Sync { .. } = frame {
            answer = Some(frame);
            break;
        }
    }
    ep.close().await;
    answer
}

/// A value of the relay's `/metrics`.
fn metric(relay: &RelayProc, name: &str) -> f64 {
    let text = ureq::get(&format!("{}/metrics", relay.http_url()))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = (std::process::id() as u8)
            .wrapping_add(i as u8)
            .wrapping_mul(31);
    }
    k
}
