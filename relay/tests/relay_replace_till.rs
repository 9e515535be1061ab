//! A replaced tablet restored from the relay: till T2 sells and syncs, then is lost.
//! Head office (an owner's token) replaces T2 — the old device is revoked and a one-time
//! ticket issued in one signed roster change — and a new, empty tablet runs
//! `kasir restore --from-relay TICKET --encrypt`: it is T2 again with the store's
//! documents, sells at once with a receipt number past the lost tablet's, and its sale
//! reaches PostgreSQL. The lost tablet, found and switched on, sells on its own: the
//! owner's till and the relay take none of it. An analyst may not replace, nor may the
//! owner's own till be replaced from head office.

mod support;

use std::time::Instant;

use serde_json::{Value, json};
use support::{RelayProc, Till, api, runtime, token, wait_for};

fn seq(receipt: &str) -> u32 {
    receipt
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("receipt {receipt:?}"))
}

fn sell(till: &Till) -> Value {
    let (status, v) = till.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 1}]}));
    assert_eq!(status, 201, "{v}");
    v
}

#[test]
fn relay_replace_till_restores_a_lost_tablet_as_the_same_till() {
    let rt = runtime();
    let db = support::fresh_database("replace_till");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("PT Ganti Tablet");
    let (store, mut a) = support::store_with_till(&relay, &tenant, "Warung Ganti");
    a.add_product("KOPI", "Kopi Kapal Api", "1500", "100", &[]);
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    let lost = b.endpoint_id();
    let sold: Vec<Value> = (0..3).map(|_| sell(&b)).collect();
    let in_pg = |sale: &str| {
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await.ok()?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sales WHERE sale_id = $1")
                .bind(sale)
                .fetch_one(&pool)
                .await
                .ok()?;
            pool.close().await;
            Some(n)
        })
    };
    let last = sold[2]["sale_id"].as_str().expect("id").to_owned();
    wait_for(60, "T2's sales in PostgreSQL", || {
        (in_pg(&last) == Some(1)).then_some(())
    });
    let highest = sold
        .iter()
        .map(|s| seq(s["receipt_no"].as_str().expect("receipt_no")))
        .max()
        .unwrap_or(0);
    b.stop(); // the tablet falls off the counter

    let owner = token(&relay, &tenant, "owner");
    let analyst = token(&relay, &tenant, "analyst");
    let replace = |code: &str| format!("/v1/stores/{store}/tills/{code}/replace");
    let (status, v) = api(&relay, &analyst, "POST", &replace("T2"), None);
    assert_eq!(status, 403, "an analyst replaces nothing: {v}");
    let owner_code = a.ok(&["status"])["till_code"]
        .as_str()
        .expect("till_code")
        .to_owned();
    let (status, v) = api(&relay, &owner, "POST", &replace(&owner_code), None);
    assert_eq!(status, 409, "the owner's till: {v}");
    let (status, v) = api(&relay, &owner, "POST", &replace("T9"), None);
    assert_eq!(status, 404, "{v}");
    let (status, v) = api(&relay, &owner, "POST", &replace("T2"), None);
    assert_eq!(status, 201, "{v}");
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();

    // The new tablet: T2 again, with the store, selling.
    let started = Instant::now();
    let mut c = Till::empty();
    let key = c.key_file();
    let restored = c.ok(&[
        "restore",
        "--from-relay",
        &ticket,
        "--encrypt",
        "--key-file",
        &key,
    ]);
    assert_eq!(restored["till_code"], "T2", "{restored}");
    assert_ne!(c.endpoint_id(), lost, "a new device key");
    // The store's documents came with it: the lost tablet's sales are there, as T2's.
    let held = c.ok(&["sales"]);
    for s in &sold {
        let held_as: Vec<&Value> = held["sales"]
            .as_array()
            .expect("sales")
            .iter()
            .filter(|h| h["sale_id"] == s["sale_id"])
            .collect();
        assert_eq!(held_as.len(), 1, "{} not restored: {held}", s["sale_id"]);
        assert_eq!(held_as[0]["receipt_no"], s["receipt_no"]);
    }
    c.start(&[]);
    let first = sell(&c);
    eprintln!(
        "the replacement sold {:.1} s after its restore began",
        started.elapsed().as_secs_f64()
    );
    let receipt = first["receipt_no"].as_str().expect("receipt_no");
    assert_eq!(seq(receipt), highest + 1, "{receipt} after T2's {highest}");
    let first_id = first["sale_id"].as_str().expect("id").to_owned();
    wait_for(60, "the replacement's sale in PostgreSQL", || {
        (in_pg(&first_id) == Some(1)).then_some(())
    });
    wait_for(60, "A to know the old T2 revoked", || {
        let (_, v) = a.get("/v1/devices");
        v["devices"]
            .as_array()?
            .iter()
            .any(|d| d["endpoint_id"] == lost.as_str() && d["revoked"] == true)
            .then_some(())
    });

    // The lost tablet, switched on again: its sales go nowhere.
    b.start(&[a.peer_arg()]);
    let stray = sell(&b);
    let stray_id = stray["sale_id"].as_str().expect("id").to_owned();
    let on_a = sell(&a);
    let on_a_id = on_a["sale_id"].as_str().expect("id").to_owned();
    wait_for(60, "A's own sale in PostgreSQL", || {
        (in_pg(&on_a_id) == Some(1)).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        in_pg(&stray_id),
        Some(0),
        "the relay took the lost tablet's sale"
    );
    let (_, on_a_sales) = a.get("/v1/sales");
    assert!(
        !on_a_sales.to_string().contains(&stray_id),
        "A took the lost tablet's sale"
    );
    drop((a, b, c));
}
