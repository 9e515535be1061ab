//! The cloud fallback of product recognition, with real till daemons, a real relay and
//! PostgreSQL: two outlets of one tenant and one store of another tenant.
//!
//! - A product enrolled at outlet 1 is recognised at outlet 2, whose own gallery lacks
//!   it: the answer comes from the relay (`"source": "relay"`), naming outlet 1.
//! - A store of another tenant that sells a product with the same SKU never gets tenant
//!   1's references: the relay searches only the asking store's tenant.
//! - A device outside the store's roster is refused.
//! - Without its daemon, the CLI asks the relay itself (an endpoint of its own).
//! - With the relay killed, the till answers from its own gallery within the deadline,
//!   and does not ask again for a few seconds.

mod support;

use kasir_testkit::fixture_photo as photo;
use std::time::{Duration, Instant};

use kasir_sync::recognition::{FallbackClient, FallbackError, MlRequest};
use kasir_sync::transport::bind_endpoint;
use serde_json::Value;
use support::{RelayProc, Till, runtime, wait_for};

/// A store created at head office with its first till joined; returns (store id, till).
fn outlet(relay: &RelayProc, tenant: &str, name: &str) -> (String, Till) {
    let created = relay.cli(&["store", "create", "--tenant", tenant, "--name", name]);
    let till = Till::empty();
    till.ok(&["join", created["ticket"].as_str().expect("ticket")]);
    (
        created["store_id"].as_str().expect("store_id").to_owned(),
        till,
    )
}

fn recognize(till: &Till, name: &str, fallback_ms: Option<u64>) -> Value {
    let path = photo(name);
    let mut args = vec!["ml", "recognize", path.as_str()];
    let ms = fallback_ms.map(|m| m.to_string());
    if let Some(ms) = &ms {
        args.extend(["--fallback-ms", ms.as_str()]);
    }
    till.ok(&args)
}

fn skus(v: &Value) -> Vec<&str> {
    v["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["sku"].as_str().expect("sku"))
        .collect()
}

#[test]
fn an_outlet_recognises_what_another_outlet_enrolled_through_the_relay() {
    let db = support::fresh_database("ml_fallback");
    let mut relay = RelayProc::start(&db, None);
    let kopi_nusantara = relay.tenant("PT Kopi Nusantara");
    let lain = relay.tenant("PT Lain");
    let (depok_id, mut depok) = outlet(&relay, &kopi_nusantara, "Kopi Nusantara Depok");
    let (bogor_id, mut bogor) = outlet(&relay, &kopi_nusantara, "Kopi Nusantara Bogor");
    let (_, mut stranger) = outlet(&relay, &lain, "Toko Lain");
    for till in [&depok, &bogor, &stranger] {
        for sku in ["KOPI", "ROKET"] {
            till.ok(&[
                "product", "add", "--sku", sku, "--name", sku, "--price", "18000",
            ]);
        }
    }
    // Depok enrols the coffee; Bogor and the other tenant only the rocket.
    depok.ok(&["ml", "enroll", "--sku", "KOPI", &photo("coffee")]);
    bogor.ok(&["ml", "enroll", "--sku", "ROKET", &photo("rocket")]);
    stranger.ok(&["ml", "enroll", "--sku", "ROKET", &photo("rocket")]);
    for till in [&mut depok, &mut bogor, &mut stranger] {
        till.start(&[]);
    }

    // Bogor's own gallery does not know the coffee; once Depok's enrolment reached the
    // relay, the relay does.
    let mut first = true;
    let v = wait_for(90, "the relay to answer from Depok's gallery", || {
        let v = recognize(&bogor, "coffee", Some(3000));
        if std::mem::take(&mut first) {
            eprintln!("first question (cold connection): {}", v["fallback"]);
        }
        (v["source"] == "relay").then_some(v)
    });
    assert_eq!(v["known"], true, "{v}");
    assert_eq!(v["matches"][0]["sku"], "KOPI", "{v}");
    assert_eq!(v["matches"][0]["store"], depok_id.as_str(), "{v}");
    assert!(
        v["matches"][0]["score"].as_f64().is_some_and(|s| s > 0.9),
        "{v}"
    );
    assert_eq!(v["fallback"]["outcome"], "answered", "{v}");
    let v = recognize(&bogor, "coffee", Some(0));
    assert_eq!(v["known"], false, "Bogor's own gallery still lacks it: {v}");
    assert_eq!(v["source"], "local");
    assert!(
        v.get("fallback").is_none(),
        "a zero deadline never asks: {v}"
    );
    // A photo Bogor knows is answered locally, without asking.
    let v = recognize(&bogor, "rocket", None);
    assert_eq!(
        (v["source"].as_str(), v["known"].as_bool()),
        (Some("local"), Some(true))
    );
    assert!(v.get("fallback").is_none(), "{v}");

    // Warm: the relay's round trip on loopback (a generous deadline, so a loaded test
    // machine measures instead of failing).
    let mut round_trips: Vec<f64> = (0..10)
        .map(|_| {
            let v = recognize(&bogor, "coffee", Some(2000));
            assert_eq!(v["source"], "relay", "{v}");
            v["fallback"]["elapsed_ms"].as_f64().expect("fallback time")
        })
        .collect();
    round_trips.sort_by(f64::total_cmp);
    eprintln!(
        "fallback round trip on loopback (ms): median {:.1}, max {:.1}",
        round_trips[round_trips.len() / 2],
        round_trips[round_trips.len() - 1]
    );

    // Another tenant's store sells a "KOPI" too, but tenant 1's gallery is not its own.
    let v = recognize(&stranger, "coffee", Some(3000));
    assert_eq!(v["known"], false, "{v}");
    assert_eq!(v["source"], "local", "{v}");
    assert_eq!(
        v["fallback"]["outcome"], "unknown",
        "the relay answered from its own tenant only: {v}"
    );
    assert!(!skus(&v).contains(&"KOPI"), "{v}");
    assert!(
        relay.log().contains("answered a recognition question"),
        "the relay was asked"
    );

    // A device outside Bogor's roster asking about Bogor is refused.
    let refused = runtime().block_on(stranger_asks(&relay, &bogor_id));
    match refused {
        Err(FallbackError::Refused(reason)) => assert!(reason.contains("not a member"), "{reason}"),
        other => panic!("a stranger got {other:?}"),
    }

    // Without the daemon, the CLI itself asks the relay, under the till's identity.
    bogor.stop();
    let v = recognize(&bogor, "coffee", Some(3000));
    assert_eq!(v["source"], "relay", "{v}");
    assert_eq!(v["matches"][0]["sku"], "KOPI", "{v}");
    eprintln!(
        "CLI without daemon: fallback {:.1} ms (bind, connect, answer)",
        v["fallback"]["elapsed_ms"].as_f64().unwrap_or(-1.0)
    );
    bogor.start(&[]);

    // The relay dies: the local answer, within the deadline, and no asking for a while.
    relay.kill9();
    let started = Instant::now();
    let v = recognize(&bogor, "coffee", None);
    let waited = started.elapsed();
    assert_eq!(
        (v["source"].as_str(), v["known"].as_bool()),
        (Some("local"), Some(false)),
        "{v}"
    );
    let outcome = v["fallback"]["outcome"].as_str().expect("outcome");
    assert!(["timeout", "unreachable"].contains(&outcome), "{v}");
    let asked = v["fallback"]["elapsed_ms"].as_f64().expect("fallback time");
    // The default deadline is 300 ms; the rest is the scheduler's slack.
    assert!(asked < 600.0, "waited {asked} ms for a dead relay: {v}");
    assert!(
        waited < Duration::from_secs(10),
        "the command took {waited:?}"
    );
    eprintln!(
        "relay killed: {outcome} after {asked:.0} ms (command {:.0} ms)",
        waited.as_secs_f64() * 1e3
    );
    let v = recognize(&bogor, "coffee", None);
    assert_eq!(v["fallback"]["outcome"], "skipped", "{v}");
    assert_eq!(v["known"], false);
}

/// Asks the relay about `store`'s photos as a device of no store.
async fn stranger_asks(
    relay: &RelayProc,
    store: &str,
) -> Result<Vec<kasir_sync::recognition::RemoteMatch>, FallbackError> {
    let ep = bind_endpoint(rand::random(), "127.0.0.1:0".parse().expect("addr"), &[])
        .await
        .expect("endpoint");
    let relay_id: kasir_crdt::DeviceId = relay.endpoint_id.parse().expect("relay id");
    let addr: std::net::SocketAddr = relay.sync_addr().parse().expect("addr");
    let mut embedding = vec![0u8; 4 * kasir_ml::DIM];
    embedding[..4].copy_from_slice(&1f32.to_le_bytes());
    let req = MlRequest {
        store: *uuid::Uuid::parse_str(store).expect("uuid").as_bytes(),
        model: kasir_ml::ModelHash::from_hex(kasir_ml::BUNDLED_MODEL_BLAKE3)
            .expect("hash")
            .0,
        embedding,
        k: 3,
    };
    let answer = FallbackClient::new(ep.clone())
        .ask(&[(relay_id, vec![addr])], &req, Duration::from_secs(5))
        .await;
    ep.close().await;
    answer
}
