//! Stock transfers between two outlets of one tenant, with real tills, a real relay and
//! PostgreSQL: Depok sends 12 bags of sugar to Bogor (never more than it holds, never to
//! itself); head office sees the transfer in transit; Bogor receives it with the id on
//! the slip (once); head office sees it received. A store of another tenant naming the
//! same transfer never pairs with it, and that tenant sees none of it.

mod support;

use serde_json::Value;
use support::{RelayProc, Till, runtime, wait_for};

fn on_hand(till: &Till, sku: &str) -> f64 {
    till.ok(&["stock", "--sku", sku])["stock"][0]["on_hand"]
        .as_f64()
        .expect("on_hand")
}

fn transfers(relay: &RelayProc, token: &str, query: &str) -> Vec<Value> {
    let (status, v) = support::api(relay, token, "GET", &format!("/v1/transfers{query}"), None);
    assert_eq!(status, 200, "{v}");
    v["transfers"].as_array().cloned().unwrap_or_default()
}

#[test]
fn relay_transfers_pair_sent_and_received_halves_within_a_tenant() {
    let _rt = runtime();
    let db = support::fresh_database("transfers");
    let relay = RelayProc::start(&db, None);
    let tenant = relay.tenant("Toko Sumber Rejeki");
    let (depok_id, mut depok) = support::store_with_till(&relay, &tenant, "Outlet Depok");
    let (bogor_id, mut bogor) = support::store_with_till(&relay, &tenant, "Outlet Bogor");
    let stranger = relay.tenant("Toko Lain");
    let (_, mut lain) = support::store_with_till(&relay, &stranger, "Toko Lain");
    for (till, stock) in [(&depok, "50"), (&bogor, "5"), (&lain, "5")] {
        till.add_product("GULA", "Gulaku 1kg", "17.500", stock, &[]);
    }

    // Depok sends 12; not more than it has, not to itself.
    let why = depok.fails(&[
        "stock", "transfer", "--sku", "GULA", "--qty", "51", "--to", &bogor_id,
    ]);
    assert!(why.contains("on hand"), "{why}");
    let why = depok.fails(&[
        "stock", "transfer", "--sku", "GULA", "--qty", "1", "--to", &depok_id,
    ]);
    assert!(why.contains("another outlet"), "{why}");
    let sent = depok.ok(&[
        "stock", "transfer", "--sku", "GULA", "--qty", "12", "--to", &bogor_id,
    ]);
    let slip = sent["movement_id"]
        .as_str()
        .expect("transfer id")
        .to_owned();
    assert_eq!(on_hand(&depok, "GULA"), 38.0);
    depok.start(&[]);

    let owner = support::token(&relay, &tenant, "owner");
    let in_transit = wait_for(60, "the transfer in transit at head office", || {
        transfers(&relay, &owner, "?status=in_transit")
            .into_iter()
            .find(|t| t["transfer_id"] == slip.as_str())
    });
    assert_eq!(in_transit["from_store"], depok_id.as_str());
    assert_eq!(in_transit["to_store"], bogor_id.as_str());
    assert_eq!(
        (in_transit["sent"].as_f64(), in_transit["received"].as_f64()),
        (Some(12.0), Some(0.0))
    );

    // Bogor receives it with the slip's id, once. Another tenant's till names the same
    // id: it counts on that till, never at Depok's transfer.
    let receive = |qty: &'static str| {
        [
            "stock",
            "transfer",
            "--sku",
            "GULA",
            "--qty",
            qty,
            "--from",
            depok_id.as_str(),
            "--transfer",
            slip.as_str(),
        ]
    };
    bogor.ok(&receive("12"));
    assert_eq!(on_hand(&bogor, "GULA"), 17.0);
    let why = bogor.fails(&receive("12"));
    assert!(why.contains("already received"), "{why}");
    lain.ok(&receive("3"));
    bogor.start(&[]);
    lain.start(&[]);

    let done = wait_for(60, "the transfer received at head office", || {
        transfers(&relay, &owner, "")
            .into_iter()
            .find(|t| t["transfer_id"] == slip.as_str() && t["status"] == "received")
    });
    assert_eq!(done["received"], 12.0, "only Bogor's half counts: {done}");
    assert!(done["received_at"].is_string(), "{done}");
    assert!(transfers(&relay, &owner, "?status=in_transit").is_empty());
    let theirs = support::token(&relay, &stranger, "owner");
    assert!(
        transfers(&relay, &theirs, "").is_empty(),
        "another tenant sees no transfer of this one"
    );
    let (status, _) = support::api(&relay, &owner, "GET", "/v1/transfers?status=lost", None);
    assert_eq!(status, 400);
}
