//! Two tills find each other by mDNS alone: no `--peer`, and the only address in the
//! roster is stale (the first till restarted on a new port). On a developer's machine
//! with no multicast-capable network interface it says so and checks nothing; under
//! `CI=true` (every CI machine has one) that is a failure.
#![allow(missing_docs)]

use kasir_testkit::{Daemon, Till, free_port, wait_for};
use serde_json::json;

/// A non-loopback interface that is up and has IFF_MULTICAST (0x1000).
fn multicast_interface() -> Option<String> {
    let entries = std::fs::read_dir("/sys/class/net").ok()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name == "lo" {
            continue;
        }
        let flags = std::fs::read_to_string(e.path().join("flags")).ok()?;
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
        let up =
            std::fs::read_to_string(e.path().join("operstate")).is_ok_and(|s| s.trim() != "down");
        if flags & 0x1000 != 0 && flags & 0x1 != 0 && up {
            return Some(name);
        }
    }
    None
}

#[test]
fn tills_find_each_other_by_mdns() {
    let Some(iface) = multicast_interface() else {
        assert!(
            !kasir_testkit::in_ci(),
            "no multicast-capable interface is up: mDNS discovery cannot be tested here"
        );
        eprintln!("not run: no multicast-capable interface is up (a failure under CI=true)");
        return;
    };
    eprintln!("multicast interface: {iface}");
    let a = Till::init();
    a.ok(&[
        "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "2500", "--stock", "10",
    ]);
    let first_port = free_port();
    let ticket = {
        let da = Daemon::start_with(
            a.path(),
            &["--no-mdns", "--listen", &format!("127.0.0.1:{first_port}")],
            None,
        );
        let (_, v) = da.post("/v1/invites", &json!({}));
        let ticket = v["ticket"].as_str().expect("ticket").to_owned();
        let b = Till::empty();
        b.ok(&["join", &ticket]);
        drop(da);
        b
    };
    let b = ticket;
    // Both on wildcard addresses (never recorded in the roster), mDNS on.
    let da = Daemon::start_with(a.path(), &["--listen", "0.0.0.0:0"], None);
    let db = Daemon::start_with(b.path(), &["--listen", "0.0.0.0:0"], None);
    let (status, sold) = da.post("/v1/sales", &json!({"lines": [{"sku": "KOPI", "qty": 1}]}));
    assert_eq!(status, 201);
    wait_for(
        30,
        "B to receive A's sale through an mDNS-discovered connection",
        || {
            db.get("/v1/sales").1["sales"]
                .as_array()?
                .iter()
                .any(|s| s["sale_id"] == sold["sale_id"])
                .then_some(())
        },
    );
}
