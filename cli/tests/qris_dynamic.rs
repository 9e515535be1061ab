//! Dynamic QRIS against the simulated acquirer (`kasir_node::qris::sim`, on loopback:
//! a real acquirer cannot be reached from these machines) and a real till daemon: paid
//! and found by the till's poll; paid with the callback before any poll; the callback
//! again (a duplicate); expired; failed; a forged callback; a price changed while the
//! QR was on screen; a till without internet charging through its LAN peer. In every
//! case the payment and the sale agree: a sale exists only for a paid charge, once, for
//! exactly the charged amount, with the RRN as reference.

mod support;

use kasir_testkit::{Till, free_port, wait_for};
use serde_json::{Value, json};

use support::Sim;

fn sales(till: &Till) -> Vec<Value> {
    till.get("/v1/sales").1["sales"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn charge(till: &Till, client_id: &str, sku: &str, qty: u32) -> Value {
    let (status, v) = till.post(
        "/v1/qris/charges",
        &json!({"client_id": client_id, "lines": [{"sku": sku, "qty": qty}]}),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["status"], "pending", "{v}");
    assert!(
        v["qr_string"]
            .as_str()
            .is_some_and(|q| q.starts_with("000201010212")),
        "{v}"
    );
    v
}

fn poll(till: &Till, charge_id: &str) -> Value {
    let (status, v) = till.get(&format!("/v1/qris/charges/{charge_id}"));
    assert_eq!(status, 200, "{v}");
    v
}

/// The charge's sale says what the charge says: its amount, by QRIS, with the RRN.
fn agrees(till: &Till, charge: &Value) {
    let sale_id = charge["sale_id"]
        .as_str()
        .expect("a paid charge has its sale");
    let (_, sale) = till.get(&format!("/v1/sales/{sale_id}"));
    assert_eq!(sale["total"], charge["amount"], "{sale}");
    assert_eq!(sale["status"], "completed");
    let payments = sale["payments"].as_array().expect("payments");
    assert_eq!(payments.len(), 1, "{sale}");
    assert_eq!(payments[0]["method"], "qris");
    assert_eq!(payments[0]["amount"], charge["amount"]);
    assert_eq!(payments[0]["reference"], charge["rrn"]);
    assert!(
        payments[0]["confirmed_by"].is_null(),
        "the acquirer confirmed it, not a person: {sale}"
    );
}

#[test]
fn qris_dynamic_paid_expired_failed_duplicated_and_forged() {
    let sim = Sim::start();
    let mut till = Till::init_named("Kedai Senja", "T1");
    till.add_product("KOPI", "Es Kopi Susu", "18.000", "100", &[]);
    till.add_product("ROTI", "Roti Bakar", "14.000", "100", &[]);
    till.start(&[]);
    let base = till.running().base.clone();
    sim.configure(till.path(), &base);

    // Paid, found by the till's poll (no callback).
    let c = charge(&till, "bill-1", "KOPI", 2);
    assert_eq!(c["amount"], 36_000);
    let id = c["charge_id"].as_str().expect("id").to_owned();
    assert_eq!(poll(&till, &id)["status"], "pending");
    assert!(
        sales(&till).is_empty(),
        "no sale before the acquirer confirms"
    );
    // The same bill again while its QR is shown: the same charge, not a second QR.
    let (status, again) = till.post(
        "/v1/qris/charges",
        &json!({"client_id": "bill-1", "lines": [{"sku": "KOPI", "qty": 2}]}),
    );
    assert_eq!(
        (status, &again["charge_id"]),
        (200, &c["charge_id"]),
        "{again}"
    );
    sim.act(&id, "pay", false);
    let paid = poll(&till, &id);
    assert_eq!(paid["status"], "paid", "{paid}");
    agrees(&till, &paid);
    assert_eq!(
        poll(&till, &id)["sale_id"],
        paid["sale_id"],
        "a second poll sells nothing"
    );
    assert_eq!(sales(&till).len(), 1);

    // Paid, the callback before any poll; then the callback again.
    let c = charge(&till, "bill-2", "ROTI", 1);
    let id = c["charge_id"].as_str().expect("id").to_owned();
    let done = sim.act(&id, "pay", true);
    assert_eq!(done["callbacks_delivered"], 1, "{done}");
    assert_eq!(sales(&till).len(), 2, "the callback recorded the sale");
    let dup = sim.act(&id, "callback", true);
    assert_eq!(dup["callbacks_delivered"], 2, "{dup}");
    assert_eq!(sales(&till).len(), 2, "a duplicate callback sells nothing");
    let paid = poll(&till, &id);
    agrees(&till, &paid);

    // Expired, then failed: no sale, and a late poll changes nothing.
    let c = charge(&till, "bill-3", "KOPI", 1);
    let id = c["charge_id"].as_str().expect("id").to_owned();
    sim.act(&id, "expire", false);
    assert_eq!(poll(&till, &id)["status"], "expired");
    let c = charge(&till, "bill-4", "KOPI", 1);
    let failed_id = c["charge_id"].as_str().expect("id").to_owned();
    sim.act(&failed_id, "fail", true);
    let failed = poll(&till, &failed_id);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["sale_id"].is_null());
    assert_eq!(
        sales(&till).len(),
        2,
        "no sale for an expired or failed charge"
    );
    // A new QR for the expired bill is a new charge.
    let again = charge(&till, "bill-3", "KOPI", 1);
    assert_ne!(again["charge_id"], json!(id));

    // A forged callback (a wrong signature) is refused and changes nothing.
    let forged = json!({"charge_id": again["charge_id"], "status": "paid", "rrn": "999999999999"});
    let answer = ureq::post(&format!("{base}/v1/qris/callback"))
        .header("Content-Type", "application/json")
        .header("X-Qris-Signature", "sha256=00")
        .config()
        .http_status_as_error(false)
        .build()
        .send(forged.to_string())
        .expect("callback");
    assert_eq!(answer.status().as_u16(), 401);
    let again_id = again["charge_id"].as_str().expect("id").to_owned();
    assert_eq!(poll(&till, &again_id)["status"], "pending");

    // A price change while the QR is on screen: the sale is what was charged.
    till.ok(&[
        "product",
        "add",
        "--sku",
        "KOPI",
        "--name",
        "Es Kopi Susu",
        "--price",
        "20.000",
    ]);
    sim.act(&again_id, "pay", true);
    let paid = poll(&till, &again_id);
    assert_eq!(
        (paid["status"].as_str(), paid["amount"].as_i64()),
        (Some("paid"), Some(18_000))
    );
    agrees(&till, &paid);
    assert_eq!(sales(&till).len(), 3);
}

/// Till B has no internet (its acquirer URL is a loopback port nothing listens on: the
/// connection is refused as a dead uplink refuses it); till A, on the same LAN, has.
/// B's charge is made and polled through A over `kasir/qris/1`; the sale is B's, once,
/// and reaches A by sync. With A gone too, B makes no charge and a shown one stays
/// pending — never paid without the acquirer's word.
#[test]
fn qris_dynamic_a_till_without_internet_pays_through_its_lan_peer() {
    let sim = Sim::start();
    let mut a = Till::init_named("Kedai Senja", "T1");
    a.add_product("KOPI", "Es Kopi Susu", "18.000", "100", &[]);
    a.start(&[]);
    let a_base = a.running().base.clone();
    sim.configure(a.path(), &a_base);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    wait_for(30, "the catalog on B", || {
        (b.get("/v1/products").1["products"]
            .as_array()
            .is_some_and(|p| !p.is_empty()))
        .then_some(())
    });
    let b_base = b.running().base.clone();
    std::fs::write(
        b.path().join("qris.json"),
        json!({"url": format!("http://127.0.0.1:{}", free_port()), "key": support::KEY,
               "callback_secret": support::SECRET,
               "callback_url": format!("{b_base}/v1/qris/callback")})
        .to_string(),
    )
    .expect("qris.json");

    let c = charge(&b, "bill-lan-1", "KOPI", 2);
    assert_eq!(c["amount"], 36_000);
    assert_eq!(c["via"].as_str(), Some(a.endpoint_id().as_str()), "{c}");
    let id = c["charge_id"].as_str().expect("id").to_owned();
    assert!(
        sim.charges()
            .iter()
            .any(|s| s["charge_id"] == id.as_str() && s["reference"] == "bill-lan-1"),
        "the acquirer made B's charge"
    );
    assert_eq!(poll(&b, &id)["status"], "pending");
    assert!(sales(&b).is_empty(), "no sale before the acquirer confirms");
    sim.act(&id, "pay", false);
    let paid = poll(&b, &id);
    assert_eq!(paid["status"], "paid", "{paid}");
    agrees(&b, &paid);
    let sale_id = paid["sale_id"].as_str().expect("sale").to_owned();
    assert_eq!(sales(&b).len(), 1);
    wait_for(30, "B's QRIS sale on A", || {
        (a.get(&format!("/v1/sales/{sale_id}")).0 == 200).then_some(())
    });
    let (_, on_a) = a.get(&format!("/v1/sales/{sale_id}"));
    assert_eq!(on_a["payments"][0]["reference"], paid["rrn"], "{on_a}");
    assert_eq!(
        sales(&a).len(),
        1,
        "A recorded nothing of its own for B's charge"
    );

    // A pending charge while A goes away too: it stays pending, and no new one is made.
    let c = charge(&b, "bill-lan-2", "KOPI", 1);
    let id = c["charge_id"].as_str().expect("id").to_owned();
    a.shutdown();
    sim.act(&id, "pay", false);
    assert_eq!(
        poll(&b, &id)["status"],
        "pending",
        "unknown without the acquirer's word"
    );
    let (status, v) = b.post(
        "/v1/qris/charges",
        &json!({"client_id": "bill-lan-3", "lines": [{"sku": "KOPI", "qty": 1}]}),
    );
    assert_eq!(status, 502, "{v}");
    assert_eq!(sales(&b).len(), 1);
    // A is back: the paid charge is found and sold, once.
    a.start(&[]);
    let paid = wait_for(60, "the second charge paid through A", || {
        let v = poll(&b, &id);
        (v["status"] == "paid").then_some(v)
    });
    agrees(&b, &paid);
    assert_eq!(sales(&b).len(), 2);
}

/// A static QRIS (the printed sticker; no acquirer to ask) is confirmed by the cashier
/// who saw the money on the merchant's app: the sale records who, whatever the request
/// claims; a split with cash records it on the QRIS part only.
#[test]
fn qris_static_is_recorded_with_the_cashier_who_confirmed_it() {
    let mut till = Till::with_owner("Warung Bu Tini", "T1", "Tini", "1111");
    till.add_product("KOPI", "Kopi Tubruk", "5.000", "100", &[]);
    till.add_user("Budi", "cashier", "2222");
    till.start(&[]);
    let budi = till.login("Budi", "2222");
    let (status, sale) = till.post_as(
        "/v1/sales",
        &json!({"lines": [{"sku": "KOPI", "qty": 3}],
                "payments": [{"method": "qris", "amount": 10_000, "confirmed_by": "Tini"},
                             {"method": "tunai", "amount": 5_000}]}),
        &budi,
    );
    assert_eq!(status, 201, "{sale}");
    let id = sale["sale_id"].as_str().expect("id");
    let (_, sale) = till.get_as(&format!("/v1/sales/{id}"), &budi);
    let payments = sale["payments"].as_array().expect("payments");
    assert_eq!(payments[0]["method"], "qris");
    assert_eq!(payments[0]["confirmed_by"], "Budi", "{sale}");
    assert_eq!(payments[1]["method"], "cash");
    assert!(payments[1]["confirmed_by"].is_null(), "{sale}");
}
