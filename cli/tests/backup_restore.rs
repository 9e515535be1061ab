#![allow(missing_docs)]
//! Backups taken while the till sells, restored on a new device as the same till:
//! every sale acknowledged before the backup began is in it exactly once, the restored
//! till's next receipt number follows on (and, once it has synced, on from what the lost
//! device issued after the backup), and with its peers it converges with no duplicate.
//! The daemon's scheduled backups keep the newest few; a wrong passphrase, a damaged
//! file or a directory that holds a store are refused with a clear error.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kasir_testkit::{Till, metric, wait_for};
use serde_json::{Value, json};

fn sale_ids(till: &Till) -> Vec<String> {
    let v = till.ok(&["sales"]);
    v["sales"]
        .as_array()
        .expect("sales")
        .iter()
        .map(|s| s["sale_id"].as_str().expect("sale_id").to_owned())
        .collect()
}

fn receipts(till: &Till) -> Vec<String> {
    let v = till.ok(&["sales"]);
    v["sales"]
        .as_array()
        .expect("sales")
        .iter()
        .map(|s| s["receipt_no"].as_str().expect("receipt_no").to_owned())
        .collect()
}

fn seq(receipt: &str) -> u32 {
    receipt
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("receipt number {receipt:?}"))
}

fn restored(file: &Path) -> (Till, Value) {
    let till = Till::empty();
    let key = till.key_file();
    let file = file.display().to_string();
    let info = till.ok(&["restore", &file, "--encrypt", "--key-file", &key]);
    (till, info)
}

#[test]
fn backup_while_selling_restores_every_acknowledged_sale_once_and_converges() {
    let mut t1 = Till::with_products(
        "Warung Cadangan",
        "T1",
        &[("TEH", "Teh Botol", 5000)],
        100_000,
    );
    let mut t2 = Till::empty();
    t1.start(&[]);
    t1.admit(&t2);
    t2.start(&[t1.peer_arg()]);
    let backups = tempfile::tempdir().expect("tempdir");
    let file = backups.path().join("t1.kasirbak");

    // T1 sells as fast as HTTP allows while `kasir backup` runs beside its daemon.
    let stop = AtomicBool::new(false);
    let (acked, started, info) = std::thread::scope(|s| {
        let seller = s.spawn(|| {
            let mut acked = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (id, _) = t1.sell(&[("TEH", 1)]);
                acked.push((id, Instant::now()));
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(800));
        let started = Instant::now();
        let info = t1.ok(&["backup", &file.display().to_string()]);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (seller.join().expect("seller"), started, info)
    });
    let before: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at < started)
        .map(|(id, _)| id)
        .collect();
    let after = acked.len() - before.len();
    assert!(
        before.len() >= 5 && after >= 3,
        "{} before, {after} after",
        before.len()
    );
    let in_backup = info["sales"].as_u64().expect("sales") as usize;
    assert!(
        in_backup >= before.len() && in_backup <= acked.len(),
        "{info}"
    );
    let last = info["last_receipt"]
        .as_str()
        .expect("last_receipt")
        .to_owned();

    // T2 holds every sale T1 made; then T1's tablet is lost.
    let all: BTreeSet<String> = acked.iter().map(|(id, _)| id.clone()).collect();
    wait_for(60, "T2 to hold all of T1's sales", || {
        (sale_ids(&t2).len() == all.len()).then_some(())
    });
    let lost_receipts = receipts(&t1);
    t1.stop();

    // A new tablet from the backup: the backup's sales exactly once, the acknowledged
    // ones among them, the device the same.
    let (mut r1, restore) = restored(&file);
    assert_eq!(restore["sales"], info["sales"], "{restore}");
    assert_eq!(restore["till_code"], "T1");
    let ids = sale_ids(&r1);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a sale twice after restore");
    assert_eq!(ids.len(), in_backup);
    for id in &before {
        assert!(
            unique.contains(id),
            "acknowledged sale {id} is missing from the backup"
        );
    }
    assert!(
        unique.iter().all(|id| all.contains(*id)),
        "a sale nobody acknowledged"
    );
    assert_eq!(
        r1.endpoint_id(),
        t1.endpoint_id(),
        "restored as the same device"
    );

    // On its own (no peers yet) its receipt numbers follow on from the backup's.
    let (r2, _) = restored(&file);
    let next = r2.ok(&["sell", "--item", "TEH"]);
    let next_no = next["receipt_no"].as_str().expect("receipt_no");
    assert_eq!(seq(next_no), seq(&last) + 1, "{next_no} after {last}");

    // With its peer it converges: every sale once, on both, and its next receipt is
    // past everything the lost tablet issued.
    r1.start(&[t2.peer_arg()]);
    wait_for(60, "the restored till and T2 to converge", || {
        let (a, b) = (sale_ids(&r1), sale_ids(&t2));
        (a.len() == all.len() && b.len() == all.len()).then_some(())
    });
    let ids = sale_ids(&r1);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), all);
    let (status, v) = r1.post("/v1/sales", &json!({"lines": [{"sku": "TEH", "qty": 1}]}));
    assert_eq!(status, 201, "{v}");
    let sale = v["sale_id"].as_str().expect("sale_id").to_owned();
    let mine = v["receipt_no"].as_str().expect("receipt_no").to_owned();
    assert!(!lost_receipts.contains(&mine), "{mine} issued twice");
    let highest = lost_receipts.iter().map(|r| seq(r)).max().unwrap_or(0);
    assert_eq!(
        seq(&mine),
        highest + 1,
        "{mine} after the lost tablet's {highest}"
    );
    wait_for(60, "T2 to get the restored till's sale", || {
        sale_ids(&t2).contains(&sale).then_some(())
    });
}

#[test]
fn backup_scheduled_by_the_daemon_keeps_the_newest() {
    let mut till = Till::with_products("Warung Jadwal", "T1", &[("KOPI", "Kopi", 3000)], 100);
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("usb");
    till.start_with(
        &[],
        &[
            "--backup-dir",
            &target.display().to_string(),
            "--backup-every",
            "1s",
            "--backup-keep",
            "2",
        ],
    );
    till.sell(&[("KOPI", 2)]);
    let text = wait_for(60, "three scheduled backups", || {
        let (_, _) = till.get("/v1/health");
        let text = ureq::get(&format!("{}/metrics", till.running().base))
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()?;
        (metric(&text, "kasir_backups_total") >= 3.0).then_some(text)
    });
    assert_eq!(metric(&text, "kasir_backup_failures_total"), 0.0, "{text}");
    assert!(metric(&text, "kasir_backup_last_bytes") > 0.0);
    let mut files: Vec<_> = std::fs::read_dir(&target)
        .expect("backup dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() <= 2 && !files.is_empty(),
        "the newest two are kept: {files:?}"
    );
    // The newest restores, with the sale.
    let (r, info) = restored(files.last().expect("a backup"));
    assert_eq!(info["sales"], 1, "{info}");
    assert_eq!(sale_ids(&r).len(), 1);
}

#[test]
fn backup_refuses_a_wrong_passphrase_a_damaged_file_and_a_store() {
    let till = Till::with_products("Warung Salah", "T1", &[("GULA", "Gula", 15000)], 10);
    till.ok(&["sell", "--item", "GULA"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("b.kasirbak");
    let path = file.display().to_string();
    // A short passphrase protects nothing.
    let out = till.run_env(&["backup", &path], &[("KASIR_BACKUP_PASSPHRASE", "1234")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    till.ok(&["backup", &path]);
    // Nothing of the store is readable in the file.
    let bytes = std::fs::read(&file).expect("backup");
    assert!(!bytes.windows(4).any(|w| w == b"Gula"));

    let fresh = Till::empty();
    let out = fresh.run_env(
        &["restore", &path],
        &[("KASIR_BACKUP_PASSPHRASE", "bukan sandinya")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert!(
        !fresh.path().join("kasir.sqlite").exists(),
        "nothing restored"
    );

    let cut = dir.path().join("cut.kasirbak");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    let err = fresh.fails(&["restore", &cut.display().to_string()]);
    assert!(err.contains("not a complete kasir backup"), "{err}");
    let err = fresh.fails(&["restore", &dir.path().join("nope").display().to_string()]);
    assert!(err.contains("nope"), "{err}");

    let err = till.fails(&["restore", &path]);
    assert!(err.contains("already holds a store"), "{err}");
    // A plain restore (no --encrypt) of an encrypted till works too.
    let plain = Till::empty();
    let info = plain.ok(&["restore", &path]);
    assert_eq!(info["sales"], 1);
    assert_eq!(sale_ids(&plain).len(), 1);
}
