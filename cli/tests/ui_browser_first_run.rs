//! First run in a real headless Chromium: `kasir run` on an empty data directory prints
//! a link with a one-time setup code; the page refuses a wrong code, then creates the
//! store and its owner, and the browser lands logged in on Buka Kasir of the new till,
//! on the same address. The owner's PIN works for the API too.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kasir_testkit::browser::Browser;
use kasir_testkit::free_port;
use kasir_testkit::process::FirstRun;
use serde_json::json;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

#[test]
fn ui_browser_first_run_creates_the_store_and_its_owner() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("till");
    let port = free_port();
    let run = FirstRun::start(&data, port);
    let (url, base) = (run.url.clone(), run.base.clone());
    assert!(url.starts_with(&format!("{base}/?kode=")), "{url}");

    // Not a till yet: health says so, and the API is not there.
    let agent = ureq::Agent::new_with_defaults();
    let health = agent.get(format!("{base}/v1/health")).call();
    assert!(
        matches!(health, Err(ureq::Error::StatusCode(503))),
        "{health:?}"
    );

    let b = Browser::start("first-run", &shots());
    // Without the code the page asks for it; a wrong one is refused.
    b.goto(&base);
    b.type_into("#kode", "00000000");
    b.type_into("#store_name", "Warung Pak Joko");
    b.type_into("#owner_name", "Pak Joko");
    b.type_into("#pin", "2580");
    b.type_into("#pin2", "2580");
    b.click("#create-store");
    b.wait_until("the wrong-code message", |b| {
        b.text("#setup-error").contains("salah")
    });
    assert!(!data.join("kasir.db").exists(), "nothing created");

    // From the printed link the code is filled in.
    b.goto(&url);
    b.find("#store_name");
    assert_eq!(b.count("#kode"), 0, "the code came with the link");
    b.screenshots("toko-baru");
    b.type_into("#store_name", "Warung Pak Joko");
    b.type_into("#owner_name", "Pak Joko");
    b.type_into("#pin", "2580");
    b.type_into("#pin2", "2581");
    b.click("#create-store");
    b.wait_until("the PIN mismatch", |b| {
        b.text("#setup-error").contains("tidak sama")
    });
    b.execute("document.getElementById('pin2').value = ''; return 1");
    b.type_into("#pin2", "2580");
    b.click("#create-store");

    // The till took over the address, and the owner is logged in.
    b.find("#opening_cash");
    assert!(
        b.text("header.bar").contains("Warung Pak Joko")
            && b.text("header.bar").contains("Pak Joko"),
        "{}",
        b.text("header.bar")
    );
    assert_eq!(b.js_errors(), Vec::<String>::new());
    b.screenshots("toko-baru-buka-kasir");

    let deadline = Instant::now() + Duration::from_secs(10);
    let session = loop {
        let resp = agent
            .post(format!("{base}/v1/sessions"))
            .header("content-type", "application/json")
            .send(json!({"name": "Pak Joko", "pin": "2580"}).to_string());
        match resp {
            Ok(mut r) => break r.body_mut().read_json::<serde_json::Value>().expect("json"),
            Err(e) if Instant::now() > deadline => panic!("login: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(session["user"]["role"], "owner", "{session}");
}
