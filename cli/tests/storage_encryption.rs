#![allow(missing_docs)]
//! Encryption at rest: an encrypted till's files reveal nothing without the key (its
//! product names, receipt numbers and device key are not in any file of the data
//! directory), the key is refused when missing, exposed or another store's, `kasir
//! encrypt` turns a plain directory into an encrypted one with every sale kept, and the
//! directory and its files are owner-only (made so again on open when they are not).
//!
//! The other tests run on encrypted directories too: the test kit's tills are made
//! with `init --encrypt`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kasir_testkit::Till;
use serde_json::Value;

const NAME: &str = "Kopi Susu Gula Aren";

/// Every byte of every file in the data directory (the database, its WAL, the device
/// key, the token, the lock).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("list dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            out.extend(fs::read(&path).expect("read file"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A till with a product and two sales; returns the second sale.
fn trade(till: &Till) -> Value {
    till.ok(&[
        "product", "add", "--sku", "KSGA", "--name", NAME, "--price", "18000", "--stock", "40",
    ]);
    till.ok(&["sell", "--item", "KSGA"]);
    till.ok(&["sell", "--item", "KSGAx2", "--pay", "cash=50000"])
}

#[test]
fn storage_an_encrypted_till_reveals_nothing_without_its_key() {
    let till = Till::init();
    let sale = trade(&till);
    let receipt_no = sale["receipt_no"].as_str().expect("receipt_no").to_owned();
    let bytes = all_bytes(till.path());
    for needle in [NAME, "KSGA", receipt_no.as_str(), "Warung Test"] {
        assert!(!contains(&bytes, needle), "{needle:?} is readable on disk");
    }
    // The device key is sealed, not the 32 raw bytes of a plain directory.
    let sealed = fs::read(till.path().join("identity.key")).expect("identity.key");
    assert!(sealed.starts_with(b"KSEAL1") && sealed.len() > 32);
    // Through the engine, with the key, everything is there.
    let sales = till.ok(&["sales"]);
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(2), "{sales}");
    let n: i64 = till
        .db()
        .query_row(
            "SELECT count(*) FROM products WHERE name = ?1",
            [NAME],
            |r| r.get(0),
        )
        .expect("keyed read");
    assert_eq!(n, 1);
    // Without the key SQLite sees no database at all.
    let bare = rusqlite::Connection::open(till.path().join("kasir.sqlite")).expect("open");
    let err = bare
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect_err("unkeyed read");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn storage_a_missing_exposed_or_foreign_key_is_refused_by_name() {
    let till = Till::init();
    trade(&till);
    let key = till.key_file();
    let kept = fs::read(&key).expect("key");

    // Readable by others: refused, with the fix in the message.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = till.fails(&["sales"]);
    assert!(
        err.contains("readable by other users") && err.contains("chmod 600"),
        "{err}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");

    // Gone (a lost USB key, a wiped config directory): named, not a panic.
    fs::remove_file(&key).expect("remove key");
    let err = till.fails(&["status"]);
    assert!(
        err.contains(&key) && err.contains("cannot be read"),
        "{err}"
    );

    // Another store's key in its place: refused before SQLite is asked.
    let other = Till::init();
    fs::copy(other.key_file(), &key).expect("copy foreign key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = till.fails(&["sell", "--item", "KSGA"]);
    assert!(err.contains("not the key of this data directory"), "{err}");

    // Its own key back: the till trades on, nothing lost.
    fs::write(&key, kept).expect("restore key");
    let sales = till.ok(&["sales"]);
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(2), "{sales}");
    till.ok(&["sell", "--item", "KSGA"]);
}

#[test]
fn storage_encrypt_turns_a_plain_directory_into_an_encrypted_one() {
    let till = Till::empty();
    till.ok(&["init", "--store-name", "Warung Lama", "--till-code", "T1"]);
    let before_sale = trade(&till);
    // The control: a plain directory does show its names, so the search can find them.
    let plain = all_bytes(till.path());
    assert!(contains(&plain, NAME) && contains(&plain, "Warung Lama"));
    let sales_before = till.ok(&["sales"]);
    let stock_before = till.ok(&["stock"]);

    let key = till.key_file();
    let holder = till.ok(&["encrypt", "--key-file", &key]);
    assert_eq!(holder["holder"], "file", "{holder}");
    assert_eq!(holder["path"].as_str(), Some(key.as_str()), "{holder}");
    let bytes = all_bytes(till.path());
    for needle in [
        NAME,
        "Warung Lama",
        before_sale["receipt_no"].as_str().expect("no"),
    ] {
        assert!(
            !contains(&bytes, needle),
            "{needle:?} still readable after encrypt"
        );
    }
    assert_eq!(till.ok(&["sales"]), sales_before);
    assert_eq!(till.ok(&["stock"]), stock_before);
    // The same device (its key sealed now, not replaced) sells on; the receipt numbers
    // follow on from the plain days.
    let after = till.ok(&["sell", "--item", "KSGA"]);
    let seq = |v: &Value| -> u32 {
        let no = v["receipt_no"].as_str().expect("receipt_no");
        no.rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("seq")
    };
    assert_eq!(seq(&after), seq(&before_sale) + 1, "{after}");

    // Twice is refused, before a second key is made.
    let err = till.fails(&["encrypt", "--key-file", &format!("{key}.2")]);
    assert!(err.contains("encrypted already"), "{err}");
    assert!(
        !Path::new(&format!("{key}.2")).exists(),
        "no second key was made"
    );
}

#[test]
fn storage_the_data_directory_is_owner_only_and_made_so_on_open() {
    let till = Till::init();
    trade(&till);
    let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(till.path()), 0o700);
    for entry in fs::read_dir(till.path()).expect("list") {
        let path = entry.expect("entry").path();
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is {:o}",
            path.display(),
            mode(&path)
        );
    }
    assert_eq!(mode(Path::new(&till.key_file())), 0o600);

    // Loosened by hand (copied with a permissive umask): tightened on the next open.
    fs::set_permissions(till.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = till.path().join("kasir.sqlite");
    fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).expect("chmod");
    till.ok(&["status"]);
    assert_eq!(mode(till.path()), 0o700);
    assert_eq!(mode(&db), 0o600);
}
