#![allow(missing_docs)]
//! `kasir ml enroll | recognize | feedback` and `POST /v1/ml/recognize` against the real
//! bundled model: enrolled products are recognised, a never-enrolled photo is unknown, a
//! correction is recorded and teaches the gallery, bad input is one error line; the
//! store's own threshold (`kasir store set --ml-threshold`, `/v1/store`) decides what
//! counts as known.

use kasir_testkit::fixture_photo as photo;

use kasir_testkit::Till;

fn add(till: &Till, sku: &str) {
    till.ok(&[
        "product", "add", "--sku", sku, "--name", sku, "--price", "1000",
    ]);
}

#[test]
fn enroll_recognize_feedback_over_cli_and_http() {
    let till = Till::init();
    for sku in ["KOPI", "ROKET", "KUCING"] {
        add(&till, sku);
    }
    let v = till.ok(&["ml", "enroll", "--sku", "KOPI", &photo("coffee")]);
    assert_eq!(v["sku"], "KOPI");
    assert_eq!(v["references"], 1);
    let v = till.ok(&[
        "ml",
        "enroll",
        "--sku",
        "ROKET",
        &photo("rocket"),
        &photo("rocket"),
    ]);
    assert_eq!(v["references"], 2);

    let v = till.ok(&["ml", "recognize", &photo("coffee"), "--top", "2"]);
    assert_eq!(v["matches"][0]["sku"], "KOPI", "{v}");
    assert_eq!(v["known"], true);
    assert!(v["matches"][0]["score"].as_f64().is_some_and(|s| s > 0.9));
    assert_eq!(v["matches"].as_array().map(Vec::len), Some(2));
    assert!(v["elapsed_ms"].is_number());
    assert_eq!(v["source"], "local");
    assert!(
        v.get("fallback").is_none(),
        "a store without a relay asks none: {v}"
    );

    let v = till.ok(&["ml", "recognize", &photo("retina")]);
    assert_eq!(v["known"], false, "never-enrolled photo: {v}");

    // A correction is recorded and the photo becomes a reference.
    assert_eq!(
        till.ok(&["ml", "recognize", &photo("chelsea")])["known"],
        false
    );
    let v = till.ok(&[
        "ml",
        "feedback",
        "--image",
        &photo("chelsea"),
        "--sku",
        "KUCING",
    ]);
    assert_eq!(v["ok"], true);
    let v = till.ok(&["ml", "recognize", &photo("chelsea")]);
    assert_eq!(v["matches"][0]["sku"], "KUCING");
    assert_eq!(v["known"], true);

    // Refusals: unknown SKU, not an image.
    let e = till.fails(&["ml", "enroll", "--sku", "NOPE", &photo("coffee")]);
    assert!(e.contains("NOPE"), "{e}");
    let not_a_photo = kasir_testkit::foreign::root().join("ml/tests/fixtures/LICENSES.md");
    let e = till.fails(&["ml", "recognize", &not_a_photo.to_string_lossy()]);
    assert!(e.starts_with("error"), "{e}");

    // The daemon answers the same over HTTP.
    let daemon = till.daemon();
    let bytes = std::fs::read(photo("rocket")).expect("fixture");
    let (status, v) = daemon.post_raw("/v1/ml/recognize?top=1", &bytes);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["matches"][0]["sku"], "ROKET");
    assert_eq!(v["known"], true);
    let (status, v) = daemon.post_raw("/v1/ml/recognize", b"not a photo");
    assert_eq!(status, 400, "{v}");
    // The CLI goes through the daemon while it holds the data directory.
    let v = till.ok(&["ml", "recognize", &photo("coffee")]);
    assert_eq!(v["matches"][0]["sku"], "KOPI");
    // So does enrolment (ml_daemon.rs covers enrolment and feedback through it).
    let v = till.ok(&["ml", "enroll", "--sku", "KOPI", &photo("coffee")]);
    assert_eq!(v["references"], 2);
}

#[test]
fn the_store_threshold_decides_what_is_known() {
    let till = Till::init();
    add(&till, "KOPI");
    till.ok(&["ml", "enroll", "--sku", "KOPI", &photo("coffee")]);
    let v = till.ok(&["ml", "recognize", &photo("retina")]);
    assert_eq!(v["known"], false, "{v}");
    let score = v["matches"][0]["score"].as_f64().expect("a score");
    assert!(score > 0.02 && score < 0.5, "{v}");
    assert!(till.ok(&["store", "show"])["ml_threshold"].is_null());

    // A store of very distinct goods lowers its threshold: the same photo is now known.
    let low = format!("{:.3}", score * 0.9);
    let p = till.ok(&["store", "set", "--ml-threshold", &low]);
    let stored = p["ml_threshold"].as_f64().expect("threshold");
    assert!((stored - score * 0.9).abs() < 1e-3, "{p}");
    let v = till.ok(&["ml", "recognize", &photo("retina")]);
    assert_eq!(v["known"], true, "{v}");
    assert_eq!(v["matches"][0]["sku"], "KOPI");

    // Out of range is refused; 0 restores the default.
    let e = till.fails(&["store", "set", "--ml-threshold", "1.5"]);
    assert!(e.contains("between 0 and 1"), "{e}");
    let p = till.ok(&["store", "set", "--ml-threshold", "0"]);
    assert!(p["ml_threshold"].is_null(), "{p}");
    assert_eq!(
        till.ok(&["ml", "recognize", &photo("retina")])["known"],
        false
    );

    // The same through the daemon's API.
    let daemon = till.daemon();
    let (status, p) = daemon.post(
        "/v1/store",
        &serde_json::json!({ "ml_threshold": low.parse::<f64>().expect("number") }),
    );
    assert_eq!(status, 200, "{p}");
    let (_, p) = daemon.get("/v1/store");
    assert!(p["ml_threshold"].is_number(), "{p}");
    let bytes = std::fs::read(photo("retina")).expect("fixture");
    let (status, v) = daemon.post_raw("/v1/ml/recognize", &bytes);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["known"], true, "{v}");
    let (status, e) = daemon.post("/v1/store", &serde_json::json!({ "ml_threshold": -0.1 }));
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["code"], "invalid_request");
}
