//! One id follows a sale from the till to PostgreSQL: the sync session that carries
//! it has a trace id both ends derive from the connection (nothing extra on the wire),
//! the till logs it, the relay logs it on everything the session does down to the
//! transaction that persisted the sale, and the sale's row keeps it in
//! `sales.sync_trace`. Over HTTP, the till's and the relay's APIs answer every request
//! with an `x-request-id` (the caller's, or a new one) that their logs carry.

mod support;

use support::{RelayProc, Till, pg_sales, runtime, wait_for};

const SKUS: [(&str, &str, u32); 1] = [("KOPI", "Kopi Kapal Api 25g", 1_500)];

#[test]
fn relay_trace_id_joins_the_tills_log_the_relays_log_and_the_sales_row() {
    let rt = runtime();
    let db = support::fresh_database("trace_ids");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("Toko Jejak");
    let mut till = Till::with_products("Warung Jejak", "A1", &SKUS, 20);
    let store = till.store_id();
    till.ok(&["join", &relay.adopt_ticket(&tenant, &store)]);
    till.start(&[]);
    let (sale, _) = till.sell(&[("KOPI", 3)]);
    wait_for(60, "the sale in PostgreSQL", || {
        (pg_sales(&rt, &db) == 1).then_some(())
    });
    let trace =
        sync_trace(&rt, &db, &sale).expect("the sale's row names the session that brought it");
    assert_eq!(trace.len(), 16, "8 bytes in hex: {trace}");
    assert!(trace.bytes().all(|b| b.is_ascii_hexdigit()), "{trace}");

    // The relay's log: the session under that id, and the persist of the sale in it.
    let relay_log = relay.log();
    let field = format!("trace={trace}");
    assert!(
        relay_log
            .lines()
            .any(|l| l.contains(&field) && l.contains("persisted") && l.contains("sales=1")),
        "the relay logs persisting the sale under {field}:\n{relay_log}"
    );
    // The till's log: the same id on its side of the session.
    wait_for(10, "the till to log the session", || {
        till.log()
            .lines()
            .any(|l| l.contains(&field) && l.contains("sync session started"))
            .then_some(())
    });
    // HTTP: the caller's request id comes back; without one, each request gets its own.
    for base in [till.running().base.clone(), relay.http_url()] {
        let echoed = request_id(&format!("{base}/v1/health"), Some("kasir-uji-42"));
        assert_eq!(
            echoed, "kasir-uji-42",
            "{base} echoes the caller's request id"
        );
        let a = request_id(&format!("{base}/v1/health"), None);
        let b = request_id(&format!("{base}/v1/health"), None);
        assert_eq!(a.len(), 36, "a UUID: {a}");
        assert_ne!(a, b, "{base}: a new id per request");
    }

    // Another session gets another id.
    till.shutdown();
    till.start(&[]);
    let (second, _) = till.sell(&[("KOPI", 1)]);
    wait_for(60, "the second sale in PostgreSQL", || {
        (pg_sales(&rt, &db) == 2).then_some(())
    });
    let other = sync_trace(&rt, &db, &second).expect("the second sale's session");
    assert_ne!(other, trace, "a new session, a new trace id");
    assert!(
        till.log().contains(&format!("trace={other}")),
        "the till logs the new session's id"
    );
    till.shutdown();
}

/// `sales.sync_trace` of `sale`.
fn sync_trace(rt: &tokio::runtime::Runtime, db: &str, sale: &str) -> Option<String> {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.expect("pg");
        let trace = sqlx::query_scalar("SELECT sync_trace FROM sales WHERE sale_id = $1")
            .bind(sale)
            .fetch_one(&pool)
            .await
            .expect("the sale's row");
        pool.close().await;
        trace
    })
}

/// The `x-request-id` a GET of `url` is answered with, sending `given` if any.
fn request_id(url: &str, given: Option<&str>) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(id) = given {
        req = req.header("x-request-id", id);
    }
    let resp = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{url} answered without x-request-id"))
        .to_owned()
}
