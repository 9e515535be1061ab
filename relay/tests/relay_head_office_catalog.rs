//! Head office changes the catalog: `PUT /v1/stores/{store}/products/{sku}` with an
//! owner's token makes the relay write the product into the store's catalog document
//! as a signed author. A till syncing with the relay gets it at once and its next sale
//! uses the new price; a till that was offline gets it when it reconnects. A till's edit
//! made offline at the same time merges field by field (its name, head office's price);
//! both setting the same field end on one value everywhere, PostgreSQL included. An
//! analyst's token is 403, another tenant's store 404, a bad edit 400.

mod support;

use serde_json::{Value, json};
use support::{RelayProc, Till, api, runtime, token, wait_for};

/// A till's own view of `sku`: its name and price.
fn on_till(till: &Till, sku: &str) -> Option<(String, i64)> {
    let (status, v) = till.get(&format!("/v1/products?q={sku}"));
    if status != 200 {
        return None;
    }
    v["products"].as_array()?.iter().find_map(|p| {
        (p["sku"] == sku).then(|| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["price"].as_i64().unwrap_or(-1),
            )
        })
    })
}

/// PostgreSQL's row of `sku`: name, price, min_stock, barcodes.
fn in_postgres(
    rt: &tokio::runtime::Runtime,
    db: &str,
    sku: &str,
) -> Option<(String, i64, Option<f64>, Vec<String>)> {
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(db).await.ok()?;
        let row: Option<(String, i64, Option<f64>, Vec<String>)> = sqlx::query_as(
            "SELECT name, price, min_stock::float8, barcodes FROM products WHERE sku = $1",
        )
        .bind(sku)
        .fetch_optional(&pool)
        .await
        .ok()?;
        pool.close().await;
        row
    })
}

fn api_put(relay: &RelayProc, token: &str, path: &str, body: &Value) -> (u16, Value) {
    api(relay, token, "PUT", path, Some(body))
}

#[test]
fn relay_head_office_prices_reach_online_and_offline_tills_and_merge_with_till_edits() {
    let rt = runtime();
    let db = support::fresh_database("head_office_catalog");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("PT Maju Bersama");
    let stranger_tenant = relay.tenant("PT Lain");
    let (store, mut a) = support::store_with_till(&relay, &tenant, "Maju Cabang 1");

    // Two tills: A joined through the relay, B admitted by A on the LAN.
    a.add_product("KOPI", "Kopi Kapal Api", "1500", "100", &[]);
    a.add_product("TEH", "Teh Botol", "5000", "100", &[]);
    a.add_product("GULA", "Gulaku 1kg", "17500", "100", &[]);
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(60, "B to hold the catalog", || on_till(&b, "GULA"));
    wait_for(60, "PostgreSQL to hold the catalog", || {
        in_postgres(&rt, &db, "GULA")
    });

    let owner = token(&relay, &tenant, "owner");
    let analyst = token(&relay, &tenant, "analyst");
    let stranger = token(&relay, &stranger_tenant, "owner");
    let kopi = format!("/v1/stores/{store}/products/KOPI");
    let (status, v) = api_put(&relay, &analyst, &kopi, &json!({"price": 2000}));
    assert_eq!(
        (status, &v["error"]["code"]),
        (403, &json!("forbidden")),
        "{v}"
    );
    let (status, v) = api_put(&relay, &stranger, &kopi, &json!({"price": 2000}));
    assert_eq!(status, 404, "another tenant's store: {v}");
    let (status, v) = api_put(&relay, &owner, &kopi, &json!({"price": -5}));
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_request")),
        "{v}"
    );
    let (status, v) = api_put(&relay, &owner, &kopi, &json!({"harga": 2000}));
    assert_eq!(status, 400, "an unknown field: {v}");
    let (status, v) = api_put(
        &relay,
        &owner,
        &format!("/v1/stores/{store}/products/BARU"),
        &json!({"price": 900}),
    );
    assert_eq!(
        (status, &v["error"]["code"]),
        (404, &json!("unknown_sku")),
        "{v}"
    );

    // The relay records when each till synced (head office's Perangkat page).
    let seen_connected = || {
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await.ok()?;
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM till_seen WHERE connected AND till_code <> ''",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            pool.close().await;
            Some(n)
        })
    };
    wait_for(30, "both tills seen connected", || {
        (seen_connected() == Some(2)).then_some(())
    });

    // B goes offline; head office raises the price of KOPI.
    // (A till that loses power is noticed when its connection times out.)
    b.stop();
    let (status, v) = api_put(
        &relay,
        &owner,
        &kopi,
        &json!({"price": 2000, "min_stock": 10, "barcode": "8991002101234"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["sku"].as_str(), v["price"].as_i64()),
        (Some("KOPI"), Some(2000))
    );
    assert!(v["product_id"].is_string(), "{v}");
    wait_for(60, "A to get the new price", || {
        on_till(&a, "KOPI").filter(|(_, p)| *p == 2000)
    });
    assert_eq!(a.sell(&[("KOPI", 1)]).1, 2000, "A's next sale uses it");
    let (name, price, min, barcodes) = in_postgres(&rt, &db, "KOPI").expect("KOPI row");
    assert_eq!(
        (name.as_str(), price, min),
        ("Kopi Kapal Api", 2000, Some(10.0))
    );
    assert_eq!(barcodes, vec!["8991002101234".to_owned()]);

    // A goes offline too and edits TEH's name and GULA's price; head office meanwhile
    // sets TEH's price and GULA's price.
    a.stop();
    a.ok(&[
        "product",
        "add",
        "--sku",
        "TEH",
        "--name",
        "Teh Botol 350ml",
        "--price",
        "5000",
        "--min-stock",
        "6",
    ]);
    a.ok(&[
        "product",
        "add",
        "--sku",
        "GULA",
        "--name",
        "Gulaku 1kg",
        "--price",
        "16000",
    ]);
    for (sku, price) in [("TEH", 5500), ("GULA", 18000)] {
        let (status, v) = api_put(
            &relay,
            &owner,
            &format!("/v1/stores/{store}/products/{sku}"),
            &json!({ "price": price }),
        );
        assert_eq!(status, 200, "{sku}: {v}");
    }

    // B, offline when KOPI changed, reconnects and sells at the new price.
    b.start(&[]);
    wait_for(90, "B to get the new price on reconnecting", || {
        on_till(&b, "KOPI").filter(|(_, p)| *p == 2000)
    });
    assert_eq!(b.sell(&[("KOPI", 2)]).1, 4000, "B's next sale uses it");

    // A reconnects: different fields both survive; the same field ends on one value
    // on both tills and in PostgreSQL.
    a.start(&[b.peer_arg()]);
    let teh = wait_for(90, "TEH to merge on both tills", || {
        let on_a = on_till(&a, "TEH")?;
        (on_a == ("Teh Botol 350ml".to_owned(), 5500) && on_till(&b, "TEH")? == on_a)
            .then_some(on_a)
    });
    let gula = wait_for(90, "GULA to converge", || {
        let on_a = on_till(&a, "GULA")?;
        (on_till(&b, "GULA")? == on_a).then_some(on_a)
    });
    assert!([16000, 18000].contains(&gula.1), "GULA ended at {gula:?}");
    wait_for(60, "PostgreSQL to hold the merged products", || {
        let t = in_postgres(&rt, &db, "TEH")?;
        let g = in_postgres(&rt, &db, "GULA")?;
        ((t.0.as_str(), t.1, t.2) == (teh.0.as_str(), teh.1, Some(6.0)) && g.1 == gula.1)
            .then_some(())
    });
    // Which one won GULA's price, in PostgreSQL: head office (the relay) or A.
    let price_by: Option<String> = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await.expect("pg");
        let v = sqlx::query_scalar("SELECT price_by FROM products WHERE sku = 'GULA'")
            .fetch_one(&pool)
            .await
            .expect("GULA");
        pool.close().await;
        v
    });
    let winner = if gula.1 == 18000 {
        relay.endpoint_id.clone()
    } else {
        a.endpoint_id()
    };
    assert_eq!(
        price_by.as_deref(),
        Some(winner.as_str()),
        "GULA's price is {}",
        gula.1
    );
    drop((a, b));
}
