#![allow(missing_docs)]
//! `kasir ml enroll` and `kasir ml feedback` while `kasir run` holds the data directory:
//! the CLI goes through the daemon (`POST /v1/ml/enroll`, `POST /v1/ml/feedback`, JSON
//! with base64 photos or a photo body with `?sku=`), what it writes is durable (still
//! there after the daemon is killed), and bad requests get the contract's error shape.

use kasir_testkit::fixture_photo as photo;

use kasir_testkit::Till;
use serde_json::json;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(photo(name)).expect("fixture")
}

#[test]
fn enroll_and_feedback_go_through_the_running_daemon() {
    let till = Till::init();
    for sku in ["KOPI", "ROKET", "KUCING"] {
        till.ok(&[
            "product", "add", "--sku", sku, "--name", sku, "--price", "1000",
        ]);
    }
    let daemon = till.daemon();

    // The CLI enrols through the daemon.
    let v = till.ok(&[
        "ml",
        "enroll",
        "--sku",
        "KOPI",
        &photo("coffee"),
        &photo("coffee"),
    ]);
    assert_eq!(v, json!({ "sku": "KOPI", "references": 2 }));

    // HTTP: JSON with base64 photos, or one photo's bytes with ?sku=.
    let b64 = data_encoding::BASE64.encode(&bytes("rocket"));
    let (status, v) = daemon.post("/v1/ml/enroll", &json!({ "sku": "ROKET", "images": [b64] }));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["references"], 1);
    let (status, v) = daemon.post_raw("/v1/ml/enroll?sku=ROKET", &bytes("rocket"));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["references"], 2);
    let v = till.ok(&["ml", "recognize", &photo("rocket")]);
    assert_eq!(v["matches"][0]["sku"], "ROKET", "{v}");
    assert_eq!(v["known"], true);

    // A correction through the CLI teaches the gallery; so does one over HTTP.
    let v = till.ok(&["ml", "recognize", &photo("chelsea")]);
    assert_eq!(v["known"], false, "{v}");
    let v = till.ok(&[
        "ml",
        "feedback",
        "--image",
        &photo("chelsea"),
        "--sku",
        "KUCING",
    ]);
    assert_eq!(v, json!({ "ok": true }));
    let v = till.ok(&["ml", "recognize", &photo("chelsea")]);
    assert_eq!(v["matches"][0]["sku"], "KUCING", "{v}");
    assert_eq!(v["known"], true);
    let (status, v) = daemon.post_raw("/v1/ml/feedback?sku=KOPI", &bytes("retina"));
    assert_eq!(status, 201, "{v}");
    let b64 = data_encoding::BASE64.encode(&bytes("astronaut"));
    let (status, v) = daemon.post("/v1/ml/feedback", &json!({ "sku": "ROKET", "image": b64 }));
    assert_eq!(status, 201, "{v}");
    let (_, v) = daemon.post_raw("/v1/ml/recognize", &bytes("retina"));
    assert_eq!(v["matches"][0]["sku"], "KOPI", "{v}");

    // Refusals, in the contract's error shape.
    let e = till.fails(&["ml", "enroll", "--sku", "NOPE", &photo("coffee")]);
    assert!(e.contains("NOPE"), "{e}");
    let e = till.fails(&[
        "ml",
        "feedback",
        "--image",
        &photo("coffee"),
        "--sku",
        "NOPE",
    ]);
    assert!(e.contains("NOPE"), "{e}");
    for (path, body, code) in [
        (
            "/v1/ml/enroll",
            json!({ "sku": "NOPE", "images": [data_encoding::BASE64.encode(&bytes("coffee"))] }),
            "unknown_sku",
        ),
        (
            "/v1/ml/enroll",
            json!({ "sku": "KOPI", "images": ["not base64!"] }),
            "invalid_request",
        ),
        (
            "/v1/ml/enroll",
            json!({ "sku": "KOPI", "images": [] }),
            "invalid_request",
        ),
        (
            "/v1/ml/enroll",
            json!({ "sku": "KOPI", "photos": [] }),
            "invalid_json",
        ),
        (
            "/v1/ml/feedback",
            json!({ "sku": "KOPI", "image": data_encoding::BASE64.encode(b"not a photo") }),
            "invalid_request",
        ),
    ] {
        let (status, v) = daemon.post(path, &body);
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], code, "{path} {body}: {v}");
    }
    let (status, v) = daemon.post_raw("/v1/ml/enroll", &bytes("coffee"));
    assert_eq!(status, 400, "a photo without ?sku=: {v}");

    // Acknowledged means durable: after kill -9 the data directory has it all.
    daemon.kill9();
    let v = till.ok(&["ml", "recognize", &photo("chelsea")]);
    assert_eq!(v["matches"][0]["sku"], "KUCING", "{v}");
    let v = till.ok(&["ml", "recognize", &photo("astronaut")]);
    assert_eq!(v["matches"][0]["sku"], "ROKET", "{v}");
    assert_eq!(
        till.ok(&["ml", "enroll", "--sku", "ROKET", &photo("rocket")])["references"],
        4,
        "two enrolled over HTTP, one correction, one now"
    );
}
