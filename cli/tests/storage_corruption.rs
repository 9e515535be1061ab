#![allow(missing_docs)]
//! Damaged data never makes `kasir` panic: a database overwritten with garbage or
//! truncated, a short identity key, or a garbage chunk in a document each give a non-zero
//! exit with one clear `error:` line (or, where the read tables are intact, read-only
//! commands keep working). And the read tables really are derived data: `kasir rebuild`
//! (even after they are wiped) and `kasir compact` leave `sales` and `stock` identical.

use std::fs;
use std::process::Output;

use kasir_testkit::Till;
use rusqlite::{Connection, params};
use serde_json::Value;

/// A till with two products and a day of trade: sales (one weighed, one split-paid, one
/// voided) and stock movements of every kind.
fn traded_till() -> Till {
    let till = Till::init();
    till.ok(&[
        "product",
        "add",
        "--sku",
        "INDOMIE",
        "--name",
        "Indomie Goreng",
        "--price",
        "3500",
        "--barcode",
        "8998866200301",
        "--stock",
        "200",
    ]);
    till.ok(&[
        "product",
        "add",
        "--sku",
        "BERAS",
        "--name",
        "Beras Pandan Wangi",
        "--price",
        "14000",
        "--unit",
        "kg",
        "--stock",
        "50",
    ]);
    till.ok(&[
        "product",
        "add",
        "--sku",
        "KOPI",
        "--name",
        "Kopi Kapal Api",
        "--price",
        "2500",
    ]);
    till.ok(&["stock", "receive", "--sku", "KOPI", "--qty", "30"]);
    till.ok(&[
        "stock", "adjust", "--sku", "KOPI", "--qty", "-2", "--note", "rusak",
    ]);
    till.ok(&["stock", "opname", "--sku", "BERAS", "--counted", "49.5"]);
    till.ok(&[
        "sell",
        "--item",
        "INDOMIEx3",
        "--item",
        "KOPI",
        "--client-id",
        "c-1",
    ]);
    till.ok(&["sell", "--item", "BERASx0.25"]);
    till.ok(&[
        "sell",
        "--item",
        "BERASx2",
        "--pay",
        "qris=10000",
        "--pay",
        "cash=20000",
    ]);
    let voided = till.ok(&["sell", "--item", "INDOMIEx10"]);
    till.ok(&[
        "void",
        voided["sale_id"].as_str().expect("sale id"),
        "--reason",
        "batal",
    ]);
    till.ok(&["sell", "--item", "KOPIx40"]); // oversold
    till
}

fn db_path(till: &Till) -> std::path::PathBuf {
    till.path().join("kasir.sqlite")
}

/// Runs `kasir --json ARGS`; asserts it neither panicked nor failed without one clear
/// `error: ` line. Returns the output.
fn run_clean(till: &Till, args: &[&str]) -> Output {
    let out = till.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "kasir {args:?} panicked: {err}");
    assert!(
        out.status.code().is_some(),
        "kasir {args:?} was killed by a signal: {err}"
    );
    if !out.status.success() {
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(
            lines.len(),
            1,
            "kasir {args:?}: one error line expected: {err}"
        );
        assert!(lines[0].starts_with("error: "), "{err}");
    }
    out
}

/// Asserts `args` fails with one error line containing every needle.
fn fails_mentioning(till: &Till, args: &[&str], needles: &[&str]) {
    let line = till.fails(args);
    assert!(line.starts_with("error: "), "{line}");
    for n in needles {
        assert!(
            line.to_lowercase().contains(&n.to_lowercase()),
            "kasir {args:?}: {line:?} should mention {n:?}"
        );
    }
}

fn snapshot(till: &Till) -> (Value, Value, Value) {
    (
        till.ok(&["sales"]),
        till.ok(&["stock"]),
        till.ok(&["product", "search", "", "--limit", "50"]),
    )
}

#[test]
fn garbage_database_file_is_reported_not_panicked() {
    let till = traded_till();
    let db = db_path(&till);
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&db, &garbage).expect("overwrite db");
    for args in [
        &["sales"][..],
        &["status"],
        &["stock"],
        &["sell", "--item", "INDOMIE"],
        &["product", "search", "indomie"],
        &["rebuild"],
    ] {
        fails_mentioning(
            &till,
            args,
            &["corrupt", "kasir.sqlite", "not a kasir database"],
        );
    }
    // Nothing tried to "repair" the file by writing over it.
    assert_eq!(fs::read(&db).expect("read db"), garbage);
}

#[test]
fn an_empty_database_file_is_reported() {
    let till = Till::init();
    // A zero-byte file is a valid, empty SQLite database, but it holds no store.
    fs::write(db_path(&till), b"").expect("empty db");
    for args in [&["sales"][..], &["status"], &["sell", "--item", "X"]] {
        fails_mentioning(&till, args, &["no store"]);
    }
}

#[test]
fn truncated_database_is_reported_not_panicked() {
    let till = traded_till();
    // Enough rows that the file spans many pages.
    let rows: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "SKU{i:04},Produk nomor {i} dengan nama panjang,{}",
                1000 + i
            )
        })
        .collect();
    let csv = till.path().join("many.csv");
    fs::write(&csv, format!("sku,name,price\n{}\n", rows.join("\n"))).expect("csv");
    assert_eq!(
        till.ok(&["product", "import", csv.to_str().expect("utf-8 path")])["imported"],
        400
    );
    for _ in 0..5 {
        till.ok(&["sell", "--item", "SKU0001x2", "--item", "SKU0399"]);
    }
    let db = db_path(&till);
    let wal = till.path().join("kasir.sqlite-wal");
    assert!(
        fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "a closed node leaves everything in the main file"
    );
    let len = fs::metadata(&db).expect("db metadata").len();
    assert!(len >= 64 * 1024, "database is {len} bytes");
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .expect("open db");
    file.set_len(len / 2).expect("truncate");
    drop(file);
    for args in [
        &["sales"][..],
        &["status"],
        &["sell", "--item", "SKU0001"],
        &["stock"],
    ] {
        fails_mentioning(&till, args, &["corrupt", "kasir.sqlite"]);
    }
}

#[test]
fn short_identity_key_is_reported() {
    let till = traded_till();
    let before = till.ok(&["sales"]);
    let key = till.path().join("identity.key");
    fs::write(&key, b"12345").expect("short key");
    for args in [
        &["sales"][..],
        &["status"],
        &["sell", "--item", "INDOMIE"],
        &["rebuild"],
    ] {
        fails_mentioning(
            &till,
            args,
            &["corrupt", "identity.key", "32 bytes", "found 5"],
        );
    }
    // A missing key is reported too, naming the file.
    fs::remove_file(&key).expect("remove key");
    fails_mentioning(&till, &["status"], &["identity.key"]);
    // The sales themselves were never touched: the database still holds them.
    let conn = till.db();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM sales", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        n as usize,
        before["sales"].as_array().map(Vec::len).unwrap_or(0)
    );
}

/// The ledger documents' ids (docs of kind `ledger`).
fn ledger_ids(conn: &Connection) -> Vec<Vec<u8>> {
    let mut stmt = conn
        .prepare("SELECT doc_id FROM docs WHERE kind = 'ledger'")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_garbage_ledger_chunk_is_reported_and_reads_keep_working() {
    let till = traded_till();
    let (sales, stock, products) = snapshot(&till);
    let sale_id = sales["sales"][0]["sale_id"]
        .as_str()
        .expect("sale id")
        .to_owned();
    {
        let conn = till.db();
        let ids = ledger_ids(&conn);
        assert_eq!(ids.len(), 1, "one till, one day, one ledger");
        conn.execute(
            "INSERT INTO chunks(doc_id, data) VALUES (?1, ?2)",
            params![
                ids[0],
                b"\x85\x6f\x4a\x83 this is not an automerge chunk".as_slice()
            ],
        )
        .expect("insert garbage chunk");
    }
    // Read-only commands are served by the read tables and keep working, unchanged.
    for (args, want) in [
        (&["sales"][..], &sales),
        (&["stock"], &stock),
        (&["product", "search", "", "--limit", "50"], &products),
    ] {
        let out = run_clean(&till, args);
        assert!(out.status.success(), "kasir {args:?} should keep working");
        let got: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(&got, want, "kasir {args:?}");
    }
    assert!(run_clean(&till, &["status"]).status.success());
    // Commands that need the damaged document either work or refuse with a message
    // naming the problem (today they refuse: the document cannot be loaded).
    let mut wrote = false;
    for args in [
        &["sell", "--item", "INDOMIE"][..],
        &["receipt", &sale_id],
        &["stock", "receive", "--sku", "INDOMIE", "--qty", "1"],
        &["rebuild"],
    ] {
        let out = run_clean(&till, args);
        if out.status.success() {
            wrote |= args[0] != "receipt";
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("error: corrupt data: ledger document"),
                "kasir {args:?}: {err}"
            );
        }
    }
    // What was refused wrote nothing; a refused rebuild left the tables as they were.
    if !wrote {
        assert_eq!(till.ok(&["sales"]), sales);
        assert_eq!(till.ok(&["stock"]), stock);
    }
}

#[test]
fn a_garbage_catalog_chunk_is_reported() {
    let till = traded_till();
    {
        let conn = till.db();
        let id: Vec<u8> = conn
            .query_row("SELECT doc_id FROM docs WHERE kind = 'catalog'", [], |r| {
                r.get(0)
            })
            .expect("catalog doc");
        conn.execute(
            "INSERT INTO chunks(doc_id, data) VALUES (?1, ?2)",
            params![id, vec![0xffu8; 300]],
        )
        .expect("insert garbage chunk");
    }
    // Reads and selling go through the read tables and the ledger: the till keeps working.
    let before = till.ok(&["sales"]);
    till.ok(&["status"]);
    till.ok(&["sell", "--item", "INDOMIE"]);
    let after = till.ok(&["sales"]);
    assert_eq!(
        after["sales"].as_array().map(Vec::len),
        before["sales"].as_array().map(|s| s.len() + 1)
    );
    // Writing the catalog needs the document: refused, clearly, with nothing written.
    let products = till.ok(&["product", "search", "Teh"]);
    for args in [
        &[
            "product",
            "add",
            "--sku",
            "TEH",
            "--name",
            "Teh Manis",
            "--price",
            "4000",
        ][..],
        &["rebuild"],
    ] {
        fails_mentioning(&till, args, &["corrupt data", "catalog"]);
    }
    assert_eq!(till.ok(&["product", "search", "Teh"]), products);
}

#[test]
fn rebuild_recreates_identical_read_tables() {
    let till = traded_till();
    let before = snapshot(&till);
    assert_eq!(before.0["sales"].as_array().map(Vec::len), Some(5));
    assert_eq!(before.0["sales"][3]["status"], "voided");
    assert_eq!(till.ok(&["rebuild"]), serde_json::json!({"ok": true}));
    assert_eq!(snapshot(&till), before, "rebuild changed the read tables");

    // Wipe the read tables behind the node's back: rebuild restores them from the documents.
    {
        let conn = till.db();
        conn.execute_batch(
            "DELETE FROM sales; DELETE FROM sale_lines; DELETE FROM sale_events;
             DELETE FROM stock_effects; DELETE FROM stock_levels; DELETE FROM products;
             DELETE FROM products_fts; DELETE FROM product_words; DELETE FROM product_barcodes;",
        )
        .expect("wipe");
    }
    assert_eq!(
        till.ok(&["sales"]),
        serde_json::json!({"sales": []}),
        "the wipe took"
    );
    till.ok(&["rebuild"]);
    assert_eq!(snapshot(&till), before, "rebuild from documents differs");

    // An outdated read-table version rebuilds them on open, by itself.
    {
        let conn = till.db();
        conn.execute_batch("DELETE FROM sales; DELETE FROM stock_levels; DELETE FROM stock_effects; UPDATE meta SET value = '0' WHERE key = 'read_tables_version';")
            .expect("outdate");
    }
    assert_eq!(
        snapshot(&till),
        before,
        "open did not rebuild outdated read tables"
    );

    // The receipt counter stays past every issued receipt: the next sale is the 6th.
    let next = till.ok(&["sell", "--item", "INDOMIE"]);
    assert!(
        next["receipt_no"]
            .as_str()
            .is_some_and(|r| r.ends_with("-0006")),
        "{next}"
    );
}

#[test]
fn compact_keeps_everything_and_leaves_one_chunk_per_document() {
    let till = traded_till();
    let before = snapshot(&till);
    let chunks = |till: &Till| -> (i64, i64) {
        let conn = till.db();
        conn.query_row(
            "SELECT COUNT(*), (SELECT COUNT(*) FROM docs) FROM chunks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count")
    };
    let (n_chunks, n_docs) = chunks(&till);
    assert!(
        n_chunks > n_docs,
        "{n_chunks} chunks for {n_docs} docs: nothing to compact"
    );
    let out = till.ok(&["compact"]);
    assert!(out["compacted"].as_u64().is_some_and(|n| n >= 2), "{out}");
    assert_eq!(chunks(&till), (n_docs, n_docs), "one snapshot per document");
    assert_eq!(
        snapshot(&till),
        before,
        "compact changed what the node shows"
    );
    // Compacting again has nothing to do; the snapshots alone rebuild the same tables.
    assert_eq!(till.ok(&["compact"])["compacted"], 0);
    till.ok(&["rebuild"]);
    assert_eq!(
        snapshot(&till),
        before,
        "rebuild from compacted documents differs"
    );
    // Receipts of the compacted sales still render, and selling goes on.
    let sale_id = before.0["sales"][0]["sale_id"].as_str().expect("sale id");
    let receipt = till.ok(&["receipt", sale_id])["receipt"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(
        receipt.contains(
            before.0["sales"][0]["receipt_no"]
                .as_str()
                .expect("receipt_no")
        ),
        "{receipt}"
    );
    let next = till.ok(&["sell", "--item", "KOPI"]);
    assert!(
        next["receipt_no"]
            .as_str()
            .is_some_and(|r| r.ends_with("-0006")),
        "{next}"
    );
    assert_eq!(
        till.ok(&["sales"])["sales"].as_array().map(Vec::len),
        Some(6)
    );
}
