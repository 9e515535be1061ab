//! Head office revokes a lost till — an owner on the dashboard's Perangkat page (in a
//! real headless Chromium, through a confirmation page), or `POST
//! /v1/stores/{store}/devices/{device}/revoke` with an owner's token. The relay writes
//! the revocation into the store's roster as a signed member. The other till learns it
//! by sync and refuses the lost till's changes from then on, and so does the relay: a
//! sale rung up on the lost till afterwards reaches neither. An analyst may not revoke;
//! an owner's till and unknown devices cannot be revoked from head office.

mod support;

use std::path::PathBuf;

use kasir_testkit::browser::Browser;
use serde_json::{Value, json};
use support::{RelayProc, Till, api, runtime, token, wait_for};

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

/// Whether `till` holds `device` as revoked in its roster.
fn revoked_on(till: &Till, device: &str) -> bool {
    let (_, v) = till.get("/v1/devices");
    v["devices"].as_array().is_some_and(|d| {
        d.iter()
            .any(|e| e["endpoint_id"] == device && e["revoked"] == true)
    })
}

fn receipt_seen(till: &Till, sale: &str) -> bool {
    till.get(&format!("/v1/sales/{sale}/receipt")).0 == 200
}

fn api_post(relay: &RelayProc, token: &str, path: &str) -> (u16, Value) {
    api(relay, token, "POST", path, None)
}

#[test]
fn relay_head_office_revokes_a_lost_till_and_its_later_sales_go_nowhere() {
    let rt = runtime();
    let db = support::fresh_database("head_office_revoke");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("PT Maju Bersama");
    let (store, mut a) = support::store_with_till(&relay, &tenant, "Maju Cabang 2");
    a.add_product("KOPI", "Kopi Kapal Api", "1500", "100", &[]);
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    let lost = b.endpoint_id();
    let (before, _) = b.sell(&[("KOPI", 1)]);
    wait_for(60, "B's first sale on A", || {
        receipt_seen(&a, &before).then_some(())
    });

    let owner = token(&relay, &tenant, "owner");
    let analyst = token(&relay, &tenant, "analyst");
    let revoke = |device: &str| format!("/v1/stores/{store}/devices/{device}/revoke");
    let (status, v) = api_post(&relay, &analyst, &revoke(&lost));
    assert_eq!(status, 403, "an analyst revokes nothing: {v}");
    let (status, v) = api_post(&relay, &owner, &revoke(&a.endpoint_id()));
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("conflict")),
        "the owner's till: {v}"
    );
    let (status, v) = api_post(&relay, &owner, &revoke("bukan-perangkat"));
    assert_eq!(status, 404, "{v}");

    // The owner revokes from the dashboard's Perangkat page: a confirmation first.
    relay.cli(&[
        "user",
        "add",
        "--tenant",
        &tenant,
        "--email",
        "pemilik@maju.id",
        "--password",
        "rahasia-kantor-1",
        "--role",
        "owner",
    ]);
    let base = relay.http_url();
    let browser = Browser::start("head_office_revoke", &shots());
    browser.goto(&format!("{base}/"));
    browser.type_into("#email", "pemilik@maju.id");
    browser.type_into("#password", "rahasia-kantor-1");
    browser.click("button.primary");
    browser.wait_until("the overview", |b| b.count("#outlets") == 1);
    let row = format!("#devices tr[data-device='{lost}']");
    wait_for(60, "the lost till on Perangkat", || {
        browser.goto(&format!("{base}/perangkat"));
        (browser.count(&format!("{row} button.revoke")) == 1).then_some(())
    });
    let owner_row = format!("#devices tr[data-device='{}']", a.endpoint_id());
    assert_eq!(
        browser.count(&format!("{owner_row} button.revoke")),
        0,
        "the owner's till has no revoke button"
    );
    browser.click(&format!("{row} button.revoke"));
    browser.wait_until("the confirmation", |b| b.count("#revoke-confirm") == 1);
    assert!(
        browser
            .text("#revoke-confirm")
            .contains("tidak bisa dibatalkan"),
        "{}",
        browser.text("#revoke-confirm")
    );
    browser.screenshots("cabut-konfirmasi");
    browser.click("#revoke-yes");
    browser.wait_until("Perangkat with the till revoked", |b| {
        b.path() == "/perangkat" && b.text(&format!("{row} td.status")).contains("Dicabut")
    });
    assert_eq!(browser.count(&format!("{row} button.revoke")), 0);
    browser.screenshots("perangkat-dicabut");
    wait_for(60, "A to learn the revocation", || {
        revoked_on(&a, &lost).then_some(())
    });
    let (status, v) = api_post(&relay, &owner, &revoke(&lost));
    assert_eq!(
        (status, &v["revoked"]),
        (200, &json!(true)),
        "revoking twice is fine: {v}"
    );

    // The lost till still sells on its own; nobody takes those sales any more.
    let (after, _) = b.sell(&[("KOPI", 2)]);
    let (on_a, _) = a.sell(&[("KOPI", 1)]);
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
    wait_for(60, "A's own sale in PostgreSQL", || {
        (in_pg(&on_a) == Some(1)).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(!receipt_seen(&a, &after), "A took a revoked till's sale");
    assert_eq!(
        in_pg(&after),
        Some(0),
        "the relay took a revoked till's sale"
    );
    assert_eq!(in_pg(&before), Some(1), "what it sold before stays");
    drop((a, b));
}
