//! A till stops syncing with a peer that was revoked while the session's change
//! notifications were lagging (the revocation's own notification was dropped).
//!
//! Two in-process tills on real iroh sockets. Till A holds its node while it makes one
//! change (the session takes that notification and waits for the node), revokes B, and
//! then makes more changes than a session's notification queue holds, so the queue drops
//! the revocation's notification. The session must still notice the revocation: after a
//! lag it re-checks its peer's standing before it goes on.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use kasir_crdt::store::Role;
use kasir_node::api::{InitOptions, ProductInput};
use kasir_node::lan::{self, NetConfig};
use kasir_node::{Node, SharedNode};
use kasir_sync::Identity;
use tokio_util::sync::CancellationToken;

/// More changes than a session's notification queue (1,024) holds.
const FLOOD: usize = 1_100;

fn product(i: usize) -> ProductInput {
    ProductInput {
        sku: format!("P{i}"),
        name: format!("Produk {i}"),
        price: 1_000,
        ..ProductInput::default()
    }
}

async fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_revoked_while_notifications_lag_is_disconnected() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut a = Node::init(
        &base.path().join("a"),
        &InitOptions {
            store_name: "Warung Lag".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init A");
    let b_dir = base.path().join("b");
    std::fs::create_dir_all(&b_dir).expect("dir B");
    let b_identity = Identity::generate();
    b_identity.store(&b_dir).expect("key B");
    let secret = a.create_invite(Role::Till, None).expect("invite");
    let admission = a
        .admit(&secret, b_identity.device_id(), None, vec![])
        .expect("admit B");
    let b = Node::init_joined(&b_dir, a.store_id(), &admission.till_code).expect("init B");
    let (a_id, b_id) = (a.device_id(), b.device_id());
    let a = SharedNode::new(a);
    let b = SharedNode::new(b);

    let cancel = CancellationToken::new();
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let net_a = lan::start(
        a.clone(),
        NetConfig {
            listen: loopback,
            peers: vec![],
            mdns: false,
        },
        cancel.clone(),
    )
    .await
    .expect("A's endpoint");
    let a_addr = net_a.endpoint().bound_sockets()[0];
    // As `kasir join` does: B first syncs once with A, so it holds the roster.
    let ep = lan::bind(&b, loopback).await.expect("B's endpoint");
    lan::sync_once(&b, &ep, a_id, &[a_addr], Duration::from_secs(30))
        .await
        .expect("B's first sync");
    ep.close().await;
    let _net_b = lan::start(
        b.clone(),
        NetConfig {
            listen: loopback,
            peers: vec![(a_id, a_addr)],
            mdns: false,
        },
        cancel.clone(),
    )
    .await
    .expect("B's endpoint");
    let connected = |n: &SharedNode, peer| n.lock().expect("node").is_connected(peer);
    wait_until(30, "A and B to connect", || {
        connected(&a, b_id) && connected(&b, a_id)
    })
    .await;

    let writer = a.clone();
    tokio::task::spawn_blocking(move || {
        let mut n = writer.lock().expect("A");
        // The session takes this notification and then waits for the node we hold.
        n.add_product(&product(0)).expect("first change");
        n.revoke(b_id).expect("revoke B");
        // The revocation's notification is pushed out of the session's queue.
        for i in 1..=FLOOD {
            n.add_product(&product(i)).expect("change");
        }
    })
    .await
    .expect("writer");

    wait_until(60, "A to end its session with the revoked B", || {
        !connected(&a, b_id) && !connected(&b, a_id)
    })
    .await;
    cancel.cancel();
}
