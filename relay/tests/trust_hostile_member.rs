//! A hostile *member* — a device admitted with a real invite, speaking the real protocol
//! over real iroh connections — sends well-formed, correctly framed, signed Automerge
//! changes the trust rules forbid. Each is refused by two honest till processes and by
//! the relay, visible in their logs and `kasir_sync_refused_changes_total`; the honest
//! tills, PostgreSQL and Kafka are unchanged; and the honest tills still converge.

mod support;

use std::net::SocketAddr;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT};
use kasir_crdt::ledger::LedgerDoc;
use kasir_crdt::records::{Sale, Void};
use kasir_crdt::store::{Invite, Role, StoreDoc};
use kasir_crdt::{BusinessDate, DeviceId, Doc, DocError, StoreId};
use kasir_sync::{DocRef, Identity};
use kasir_testkit::hostile::HostileMember;
use kasir_testkit::metric;
use serde_json::{Value, json};
use support::{RelayProc, Tansu, Till, kafka_event_ids, pg_sales, runtime, wait_for};

const SKUS: [(&str, &str, u32); 2] = [
    ("KOPI", "Kopi Kapal Api", 1_500),
    ("TEH", "Teh Botol", 5_000),
];

fn parse_peer(peer: &str) -> (DeviceId, SocketAddr) {
    let (id, addr) = peer.split_once('@').expect("EID@ADDR");
    (
        id.parse().expect("endpoint id"),
        addr.parse().expect("address"),
    )
}

fn refused(text: &str, reason: &str) -> f64 {
    metric(
        text,
        &format!("kasir_sync_refused_changes_total{{reason=\"{reason}\"}}"),
    )
}

fn till_metrics(t: &Till) -> String {
    t.get("/metrics").1.as_str().unwrap_or_default().to_owned()
}

/// What an honest till shows: its sales, stock, roster and profile.
fn till_state(t: &Till) -> Value {
    json!({
        "sales": t.get("/v1/sales?limit=1000").1,
        "stock": t.get("/v1/stock").1,
        "devices": t.get("/v1/devices").1,
        "store": t.get("/v1/store").1,
    })
}

fn has_sale(t: &Till, id: &str) -> bool {
    let (_, s) = t.get("/v1/sales?limit=1000");
    s["sales"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v["sale_id"] == id))
}

/// What PostgreSQL holds: row counts and content digests.
fn pg_state(rt: &tokio::runtime::Runtime, db: &str) -> Vec<String> {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("connect");
        let mut out = Vec::new();
        for q in [
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(sale_id::text || total::text, ',' ORDER BY sale_id)), '') FROM sales",
            "SELECT count(*)::text FROM sale_adjustments",
            "SELECT count(*)::text FROM stock_movements",
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(sku || name, ',' ORDER BY sku)), '') FROM products",
            "SELECT count(*)::text FROM doc_chunks",
            "SELECT count(*)::text FROM outbox",
        ] {
            out.push(
                sqlx::query_scalar::<_, String>(q)
                    .fetch_one(&pool)
                    .await
                    .expect(q),
            );
        }
        out
    })
}

/// Distinct events on the sales and stock topics.
fn kafka_events(brokers: &str) -> usize {
    ["kasir.sales.v1", "kasir.stock.v1"]
        .iter()
        .map(|t| kafka_event_ids(brokers, t, 0, 5).1.len())
        .sum()
}

fn today() -> BusinessDate {
    BusinessDate::at(kasir_sync::now_ms(), 7 * 60)
}

fn corrupt(e: impl std::fmt::Display) -> DocError {
    DocError::Corrupt(e.to_string())
}

/// A copy of `template` as a new sale of `till`.
fn sale_like(template: &Sale, till: DeviceId, n: u8) -> Sale {
    let mut sale = template.clone();
    sale.id = format!("0190aaaa-0000-7000-8000-0000000000{n:02}");
    sale.receipt_no = format!("FORGED-{n}");
    sale.till = till.to_string();
    sale
}

type Write<'a> = Box<dyn Fn(Doc) -> Result<Doc, DocError> + 'a>;

/// A sync target: its name, device id and address, and readers of its metrics and log.
type Target<'a> = (
    &'a str,
    DeviceId,
    SocketAddr,
    &'a dyn Fn() -> String,
    &'a dyn Fn() -> String,
);

#[test]
fn a_hostile_member_is_refused_by_honest_tills_and_the_relay() {
    let rt = runtime();
    let db = support::fresh_database("hostile_member");
    let tansu = Tansu::start();
    let mut relay = RelayProc::start(&db, Some(&tansu.brokers()));
    let tenant = relay.tenant("Toko Jujur");

    // An honest owner till O, adopted by the relay, and an honest till B.
    let mut o = Till::with_products("Warung Jujur", "O1", &SKUS, 100);
    let store = StoreId(o.store_id().parse().expect("store id"));
    let adopted = o.ok(&["join", &relay.adopt_ticket(&tenant, &store.to_string())]);
    assert_eq!(adopted["adopted"], true, "{adopted}");
    o.start(&[]);
    let mut b = Till::empty();
    o.admit(&b);
    b.start(&[o.peer_arg()]);
    let (o_id, o_addr) = parse_peer(&o.peer_arg());
    let (b_id, b_addr) = parse_peer(&b.peer_arg());
    let relay_id: DeviceId = relay.endpoint_id.parse().expect("relay id");
    let relay_addr: SocketAddr = relay.sync_addr().parse().expect("relay addr");

    // Two hostile members join with real invites: M attacks, X is revoked later.
    let invite = |o: &Till| {
        let (status, v) = o.post("/v1/invites", &json!({}));
        assert_eq!(status, 201, "{v}");
        v["ticket"].as_str().expect("ticket").to_owned()
    };
    let m = rt
        .block_on(HostileMember::join(&invite(&o)))
        .expect("M joins");
    let x = rt
        .block_on(HostileMember::join(&invite(&o)))
        .expect("X joins");
    let (me, x_id) = (m.device_id(), x.device_id());

    // Honest business; then everyone knows everyone.
    let (sale_b, _) = b.sell(&[("KOPI", 2)]);
    o.sell(&[("TEH", 1)]);
    wait_for(30, "B to know every member", || {
        let (_, d) = b.get("/v1/devices");
        (d["devices"].as_array().map(Vec::len) == Some(5)).then_some(()) // O, B, M, X, relay
    });
    wait_for(30, "B's sale on O", || has_sale(&o, &sale_b).then_some(()));
    for h in [&m, &x] {
        rt.block_on(h.sync_with(o_id, o_addr)).expect("pull from O");
        wait_for(30, "the relay to let the member sync", || {
            rt.block_on(h.sync_with(relay_id, relay_addr)).ok()
        });
    }
    wait_for(60, "PostgreSQL to hold both sales", || {
        (pg_sales(&rt, &db) == 2).then_some(())
    });

    // 1. A valid change by a device revoked since, relayed by an honest peer that had not
    // heard of the revocation. B is alone (O and the relay are down) when X sells and
    // syncs with it; then O revokes X; back online, B offers X's sale to O and the relay.
    let x_ledger = DocRef::ledger(store, x_id, today());
    let b_ledger = m.ledgers_of(b_id).into_iter().next().expect("B's ledger");
    let template: Sale = LedgerDoc::from_doc(m.read(&b_ledger).expect("B's ledger"))
        .expect("ledger")
        .sale(&sale_b)
        .expect("decodes")
        .expect("B's sale");
    let x_sale = sale_like(&template, x_id, 90);
    o.shutdown();
    relay.kill9();
    x.forge(&x_ledger, x.identity(), |d| {
        let mut l = LedgerDoc::from_doc(d)?;
        l.record_sale(&x_sale)?;
        Ok(l.into_doc())
    })
    .expect("X sells");
    rt.block_on(x.sync_with(b_id, b_addr))
        .expect("B takes X's sale");
    assert!(has_sale(&b, &x_sale.id), "B holds X's sale");
    b.shutdown();
    o.start(&[]);
    relay.restart();
    o.ok(&["revoke", &x_id.to_string()]);
    // (Not by letting X try: while the relay has not heard, X is a member to it, and its
    // sale would reach the relay directly, as it rightly may.)
    wait_for(30, "the revocation to reach the relay", || {
        (o.get("/v1/status").1["unsynced_docs"] == 0).then_some(())
    });
    b.start(&[o.peer_arg()]);
    wait_for(60, "O and the relay to refuse the relayed sale", || {
        (refused(&till_metrics(&o), "revoked") > 0.0 && refused(&relay.metrics(), "revoked") > 0.0)
            .then_some(())
    });
    // B still syncs everything else with both.
    let (after_b, _) = b.sell(&[("TEH", 1)]);
    let (after_o, _) = o.sell(&[("KOPI", 1)]);
    wait_for(30, "O and B to exchange new sales", || {
        (has_sale(&o, &after_b) && has_sale(&b, &after_o)).then_some(())
    });
    wait_for(60, "PostgreSQL to hold the honest sales only", || {
        (pg_sales(&rt, &db) == 4).then_some(())
    });
    assert!(
        !has_sale(&o, &x_sale.id),
        "O took the revoked device's sale"
    );
    assert!(
        o.log().contains("revoked") && relay.log().contains("revoked"),
        "the refusals are logged"
    );
    rt.block_on(m.sync_with(o_id, o_addr))
        .expect("M pulls the revocation");

    // Settle, then record what honest eyes see.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let o_before = till_state(&o);
    let b_before = till_state(&b);
    let pg_before = pg_state(&rt, &db);
    let kafka_before = kafka_events(&tansu.brokers());
    assert!(kafka_before > 0, "the honest sales reached Kafka");

    // 2. Forgeries by M, each from M's honest state, sent to O, B and the relay.
    let honest = m.checkpoint().expect("checkpoint");
    let store_ref = DocRef::store(store);
    let own_ledger = DocRef::ledger(store, me, today());
    let stranger = Identity::generate();
    let forged_sale = sale_like(&template, b_id, 91);
    let own_sale = sale_like(&template, me, 92);
    let attacks: Vec<(&str, &str, &DocRef, bool, Write<'_>)> = vec![
        (
            "a sale in another till's ledger",
            "wrong_author",
            &b_ledger,
            true,
            Box::new(|d| {
                let mut l = LedgerDoc::from_doc(d)?;
                l.record_sale(&forged_sale)?;
                Ok(l.into_doc())
            }),
        ),
        (
            "a void in another till's ledger",
            "wrong_author",
            &b_ledger,
            true,
            Box::new(|d| {
                let mut l = LedgerDoc::from_doc(d)?;
                l.record_void(&Void {
                    id: "0190aaaa-0000-7000-8000-000000000093".into(),
                    sale_id: sale_b.clone(),
                    reason: "forged".into(),
                    cashier: None,
                    approved_by: None,
                    at_ms: kasir_sync::now_ms(),
                    lines: Vec::new(),
                    till_code: None,
                    payments: Vec::new(),
                    reversed: None,
                })?;
                Ok(l.into_doc())
            }),
        ),
        (
            "a self-promotion to owner",
            "forbidden",
            &store_ref,
            true,
            Box::new(|d| {
                let mut s = StoreDoc::from_doc(d)?;
                let mut entry = s.device(me)?.ok_or_else(|| corrupt("M not in roster"))?;
                entry.role = Role::Owner;
                s.put_device(me, &entry, kasir_sync::now_ms())?;
                Ok(s.into_doc())
            }),
        ),
        (
            "an un-revocation",
            "forbidden",
            &store_ref,
            true,
            Box::new(|d| {
                let mut s = StoreDoc::from_doc(d)?;
                let mut entry = s.device(x_id)?.ok_or_else(|| corrupt("X not in roster"))?;
                entry.revoked = false;
                s.put_device(x_id, &entry, kasir_sync::now_ms())?;
                Ok(s.into_doc())
            }),
        ),
        (
            "an invite",
            "forbidden",
            &store_ref,
            true,
            Box::new(|d| {
                let mut s = StoreDoc::from_doc(d)?;
                let now = kasir_sync::now_ms();
                let invite = Invite {
                    role: Role::Manager,
                    till_code: None,
                    created_by: me.to_string(),
                    created_at_ms: now,
                    expires_at_ms: now + 3_600_000,
                    used_by: None,
                };
                s.put_invite("forged-invite", &invite, now)?;
                Ok(s.into_doc())
            }),
        ),
        (
            "a root-field overwrite",
            "identity",
            &store_ref,
            true,
            Box::new(|mut d| {
                d.automerge()
                    .put(ROOT, "store_id", "00000000-0000-0000-0000-000000000000")
                    .map_err(corrupt)?;
                Ok(d)
            }),
        ),
        (
            "a 10,000-deep record in its own ledger",
            "too_deep",
            &own_ledger,
            true,
            Box::new(|mut d| {
                let am = d.automerge();
                let mut obj = am.put_object(ROOT, "deep", ObjType::Map).map_err(corrupt)?;
                for _ in 0..10_000 {
                    obj = am.put_object(&obj, "x", ObjType::Map).map_err(corrupt)?;
                }
                Ok(d)
            }),
        ),
        (
            "a sale in its own ledger signed with another key",
            "bad_signature",
            &own_ledger,
            false,
            Box::new(|d| {
                let mut l = LedgerDoc::from_doc(d)?;
                l.record_sale(&own_sale)?;
                Ok(l.into_doc())
            }),
        ),
    ];

    for (what, reason, doc, own_key, write) in &attacks {
        m.restore(&honest).expect("restore");
        let signer = if *own_key { m.identity() } else { &stranger };
        let forged = m.forge(doc, signer, write).expect(what);
        assert!(forged > 0, "{what}: the forgery wrote nothing");
        let targets: [Target<'_>; 3] = [
            ("till O", o_id, o_addr, &|| till_metrics(&o), &|| o.log()),
            ("till B", b_id, b_addr, &|| till_metrics(&b), &|| b.log()),
            ("relay", relay_id, relay_addr, &|| relay.metrics(), &|| {
                relay.log()
            }),
        ];
        for (name, id, addr, metrics, log) in targets {
            let before = refused(&metrics(), reason);
            let outcome = rt.block_on(m.sync_with(id, addr));
            assert!(
                outcome.is_err(),
                "{what}: {name} let the session finish: {outcome:?}\n{}",
                log().lines().rev().take(30).collect::<Vec<_>>().join("\n")
            );
            wait_for(10, "the refusal counted", || {
                (refused(&metrics(), reason) > before).then_some(())
            });
            let logged = format!("reason=\"{reason}\"");
            let log = log();
            assert!(
                log.lines()
                    .any(|l| l.contains("refused") && l.contains(&logged)),
                "{what}: {name} logged no refusal for {reason}"
            );
        }
    }

    // Nothing of it stuck anywhere.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(till_state(&o), o_before, "till O changed");
    assert_eq!(till_state(&b), b_before, "till B changed");
    assert_eq!(pg_state(&rt, &db), pg_before, "PostgreSQL changed");
    assert_eq!(
        kafka_events(&tansu.brokers()),
        kafka_before,
        "Kafka changed"
    );

    // And the honest tills still converge.
    let (last_b, _) = b.sell(&[("KOPI", 1)]);
    let (last_o, _) = o.sell(&[("TEH", 2)]);
    wait_for(30, "O and B to converge", || {
        (has_sale(&o, &last_b) && has_sale(&b, &last_o)).then_some(())
    });
    wait_for(60, "PostgreSQL to catch up", || {
        (pg_sales(&rt, &db) == 6).then_some(())
    });
    rt.block_on(async {
        m.close().await;
        x.close().await;
    });
}
