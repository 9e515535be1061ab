//! Pengaturan in a real headless Chromium against real daemons: a cashier is refused
//! (page and API); the owner sets the tax and service charge, sets up a network printer
//! (a TCP listener standing in for an Ethernet ESC/POS printer), prints a test page and
//! the Z-report there and sees the shift's close print on its own;
//! adds a cashier, changes their PIN (a typo between the two fields is caught) and
//! disables them; invites a second till, whose first-run page joins the store with the
//! invite's text (what a 2D scanner types from the QR code) and then takes the owner's
//! PIN; the owner revokes it.

use std::path::PathBuf;
use std::time::Duration;

use kasir_testkit::browser::Browser;
use kasir_testkit::process::FirstRun;
use kasir_testkit::{Till, free_port, printed, tcp_printer};
use serde_json::{Value, json};

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-shots")
}

/// Whether `name` may log in with `pin` on the till's API.
fn logs_in(till: &Till, name: &str, pin: &str) -> bool {
    let (status, _) = till.post("/v1/sessions", &json!({"name": name, "pin": pin}));
    status == 201 || status == 200
}

#[test]
fn ui_browser_settings_profile_printer_users_and_a_till_invited_by_qr() {
    let mut till = Till::with_owner("Warung Bu Sri", "T1", "Bu Sri", "482916");
    till.add_user("Ani", "cashier", "1111");
    till.start(&[]);
    let base = till.running().base.clone();
    let b = Browser::start("settings", &shots());

    // A cashier sees no Pengaturan and is refused at its address and on the API.
    b.log_in(&base, "Ani", "1111");
    b.find("#opening_cash");
    assert_eq!(b.count("header.bar a[href='/ui/pengaturan']"), 0);
    b.goto(&format!("{base}/ui/pengaturan"));
    assert!(
        b.text("main").contains("Hanya manajer"),
        "{}",
        b.text("main")
    );
    let ani = till.login("Ani", "1111");
    let (status, body) = till.post_as("/v1/invites", &json!({"role": "till"}), &ani);
    assert_eq!(status, 403, "a cashier may not invite devices: {body}");

    // The owner: tax PPN 11% added at the till, 5% service.
    b.log_in(&base, "Bu Sri", "482916");
    b.find("#opening_cash");
    b.click("header.bar a[href='/ui/pengaturan']");
    b.find("#profile-form");
    b.screenshots("pengaturan");
    b.execute("document.getElementById('tax').value = 'ppn11'; return 1");
    b.click("#profile-form input[name=tax_exclusive]");
    b.execute(
        "document.querySelector('#profile-form input[name=service_percent]').value = ''; return 1",
    );
    b.type_into("#profile-form input[name=service_percent]", "5");
    b.click("#profile-save");
    b.wait_until("saved", |b| b.text("#profile-result").contains("Tersimpan"));
    let (_, store) = till.get("/v1/store");
    assert_eq!(store["tax_rule"]["rate_bp"], 1100, "{store}");
    assert_eq!(store["tax_rule"]["inclusive"], false, "{store}");
    assert_eq!(store["tax_rule"]["service_bp"], 500, "{store}");

    // A page may not point the printer at a file (receipt bytes over the database).
    let target = till.path().join("bukan-printer.txt");
    b.type_into(
        "#printer-form input[name=uri]",
        &format!("file://{}", target.display()),
    );
    b.click("#printer-save");
    b.wait_until("the file refused", |b| {
        b.text("#printer-result").contains("not a printer device")
    });
    assert!(!till.path().join("printer.json").exists() && !target.exists());

    // A printer on the network, then its test page.
    let (port, jobs) = tcp_printer(3);
    b.execute("document.querySelector('#printer-form input[name=uri]').value = ''; return 1");
    b.type_into(
        "#printer-form input[name=uri]",
        &format!("tcp://127.0.0.1:{port}"),
    );
    b.click("#printer-save");
    b.wait_until("the printer saved", |b| {
        b.text("#printer-result").contains("Tersimpan")
    });
    assert!(till.path().join("printer.json").is_file());
    b.click("#test-print");
    let page = jobs
        .recv_timeout(Duration::from_secs(20))
        .expect("the test page printed");
    assert!(printed(&page, "TES CETAK") && printed(&page, "WARUNG BU SRI"));

    // Reports print there too: the Z-report on request, the shift's close on its own.
    b.goto(&format!("{base}/ui/shift"));
    b.click("#print-z");
    let z = jobs
        .recv_timeout(Duration::from_secs(20))
        .expect("the Z-report printed");
    assert!(printed(&z, "LAPORAN Z") && printed(&z, "Bersih"));
    b.open_shift("100000");
    b.goto(&format!("{base}/ui/shift"));
    b.type_into("#counted_cash", "95000");
    b.click("#close-shift");
    b.find("#shift-report");
    let close = jobs
        .recv_timeout(Duration::from_secs(20))
        .expect("the close printed");
    assert!(
        printed(&close, "LAPORAN TUTUP KASIR") && printed(&close, "-Rp5.000"),
        "{}",
        String::from_utf8_lossy(&close)
    );
    b.screenshots("tutup-kasir-cetak");
    b.goto(&format!("{base}/ui/pengaturan"));
    b.find("#users-card");

    // A new cashier; a PIN typo is caught; a new PIN; then disabled.
    b.click("#users-card details.add-user summary");
    b.type_into("#user-form input[name=name]", "Dodi");
    b.type_into("#user-form input[name=pin]", "5555");
    b.type_into("#user-form input[name=pin2]", "5555");
    b.click("#user-save");
    b.wait_until("Dodi added", |b| {
        b.count("#users tr.user[data-name=Dodi]") == 1
    });
    assert!(logs_in(&till, "Dodi", "5555"));
    let dodi = "#users tr.user[data-name=Dodi]";
    b.click(&format!("{dodi} details summary"));
    b.type_into(&format!("{dodi} input[name=pin]"), "6666");
    b.type_into(&format!("{dodi} input[name=pin2]"), "6667");
    b.click(&format!("{dodi} form button"));
    b.wait_until("the typo", |b| {
        b.text("#users-result").contains("tidak sama")
    });
    b.click(&format!("{dodi} details summary"));
    b.type_into(&format!("{dodi} input[name=pin]"), "6666");
    b.type_into(&format!("{dodi} input[name=pin2]"), "6666");
    b.click(&format!("{dodi} form button"));
    b.wait_until("the PIN changed", |b| {
        b.text("#users-result").contains("PIN diganti")
    });
    assert!(!logs_in(&till, "Dodi", "5555") && logs_in(&till, "Dodi", "6666"));
    b.click(&format!("{dodi} details:nth-of-type(2) summary"));
    b.click(&format!("{dodi} button.danger"));
    b.wait_until("Dodi disabled", |b| {
        b.count(&format!("{dodi}.inactive")) == 1
    });
    assert!(!logs_in(&till, "Dodi", "6666"));

    // Invite T2: a QR code and its text.
    b.click("#devices-card details.add-device summary");
    b.type_into("#invite-form input[name=till_code]", "T2");
    b.click("#invite-make");
    b.find("#invite .qr svg");
    let ticket = b
        .execute("return document.getElementById('invite-ticket').value")
        .as_str()
        .expect("ticket")
        .to_owned();
    assert!(ticket.starts_with("kasir1"), "{ticket}");
    b.screenshots("pengaturan-undangan");
    assert_eq!(b.js_errors(), Vec::<String>::new());

    // The second till's first run joins with it (split over lines, as a paste may be).
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("t2");
    let t2 = FirstRun::start(&data, free_port());
    b.goto(&t2.url);
    b.find("#ticket");
    let (head, tail) = ticket.split_at(ticket.len() / 2);
    b.type_into("#ticket", &format!("{head}\n{tail}"));
    b.type_into("#join_till_code", "T2");
    b.screenshots("gabung-toko");
    b.click("#join-store");
    b.wait_until("the login page of T2", |b| b.path() == "/ui/masuk");
    b.log_in(&t2.base, "Bu Sri", "482916");
    b.find("#opening_cash");
    assert!(
        b.text("header.bar").contains("T2"),
        "{}",
        b.text("header.bar")
    );
    assert_eq!(b.js_errors(), Vec::<String>::new());

    // Back on T1: T2 is in the roster; the owner revokes it.
    b.log_in(&base, "Bu Sri", "482916");
    b.goto(&format!("{base}/ui/pengaturan"));
    let t2_row = "#devices tr.device[data-till=T2]";
    b.find(t2_row);
    b.click(&format!("{t2_row} details summary"));
    b.click(&format!("{t2_row} button.danger"));
    b.wait_until("T2 revoked", |b| {
        b.count(&format!("{t2_row}.inactive")) == 1
    });
    let (_, devices) = till.get("/v1/devices");
    let revoked = devices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .any(|d| d["till_code"] == "T2" && d["revoked"] == Value::Bool(true));
    assert!(revoked, "{devices}");
    assert_eq!(b.js_errors(), Vec::<String>::new());
}
