//! A change that arrives before its predecessor waits in the document (Automerge holds
//! it back) after the session that brought it ends. When a later session, with another
//! peer, brings the predecessor, the waiting change merges too: its signature came with
//! the first session and must still be known, or the whole merge is refused as unsigned
//! and the tills never converge (the simulation found this after link resets).
#![allow(missing_docs)]

use kasir_crdt::store::Role;
use kasir_crdt::{DeviceId, Qty};
use kasir_node::Node;
use kasir_node::api::{InitOptions, ProductInput, SaleItem, SaleRequest};
use kasir_relay::replica::StoreReplica;
use kasir_sync::{Frame, Identity, Session, SyncReplica, exchange};

/// `WireDoc::kind` of the store document.
const STORE: u8 = 0;
/// `WireDoc::kind` of a ledger.
const LEDGER: u8 = 2;

fn sell(node: &mut Node, client_id: &str) {
    node.sell(&SaleRequest {
        items: vec![SaleItem {
            code: "KOPI".into(),
            qty: Qty::units(1),
            discount: 0,
            discount_percent: None,
            price: None,
            unit: None,
        }],
        client_id: Some(client_id.into()),
        ..SaleRequest::default()
    })
    .expect("sale");
}

fn joined(owner: &mut Node) -> (tempfile::TempDir, Node, DeviceId) {
    let dir = tempfile::tempdir().expect("tmp");
    let identity = Identity::generate();
    identity.store(dir.path()).expect("key");
    let secret = owner.create_invite(Role::Till, None).expect("invite");
    let admission = owner
        .admit(&secret, identity.device_id(), None, vec![])
        .expect("admit");
    let node =
        Node::init_joined(dir.path(), owner.store_id(), &admission.till_code).expect("joined");
    (dir, node, identity.device_id())
}

fn synced<A: SyncReplica, B: SyncReplica>(a: &mut A, a_id: DeviceId, b: &mut B, b_id: DeviceId) {
    let done = exchange(a, a_id, b, b_id, 10_000, |_, _| {});
    assert!(done.ended.is_none(), "sync failed: {:?}", done.ended);
}

/// The heads hash of every document of `replica`.
fn heads(replica: &mut impl SyncReplica) -> Vec<(kasir_crdt::DocId, [u8; 32])> {
    let mut all: Vec<_> = replica
        .manifest()
        .expect("manifest")
        .into_iter()
        .map(|e| (e.doc.id, e.heads))
        .collect();
    all.sort();
    all
}

/// Till A changes one document twice (`first`, `second`); B (a till or the relay) gets
/// the second change's frame first, in a session that then drops, and the first change
/// later from till C, which never got the second: B must end up with both.
fn early_change_merges_later<B: SyncReplica>(
    b: &mut B,
    b_id: DeviceId,
    a: &mut Node,
    kind: u8,
    first: impl FnOnce(&mut Node),
    second: impl FnOnce(&mut Node),
) {
    let a_id = a.device_id();
    let (_c_dir, mut c, c_id) = joined(a);
    synced(a, a_id, b, b_id);
    synced(a, a_id, &mut c, c_id);
    synced(b, b_id, &mut c, c_id);

    // C gets A's first change; B does not.
    first(a);
    synced(a, a_id, &mut c, c_id);

    // A sends its second change to C (which has the first, so the frame carries only
    // the second); the frame is lost on the way and reaches B instead, which lacks the
    // first.
    second(a);
    let mut at_a = Session::new(c_id);
    let mut at_c = Session::new(a_id);
    let opening = at_a.start(a).expect("start a");
    let mut to_c: Vec<Frame> = opening.clone();
    let mut to_a: Vec<Frame> = at_c.start(&mut c).expect("start c");
    let mut second_sale = None;
    for _ in 0..1_000 {
        if to_c.is_empty() && to_a.is_empty() {
            break;
        }
        for frame in std::mem::take(&mut to_a) {
            to_c.extend(at_a.handle(a, frame).expect("a handles"));
        }
        for frame in std::mem::take(&mut to_c) {
            if let Frame::Sync { doc, sigs, .. } = &frame
                && doc.kind == kind
                && !sigs.is_empty()
                && second_sale.is_none()
            {
                // Lost on its way to C: only B gets it.
                second_sale = Some(frame);
                continue;
            }
            to_a.extend(at_c.handle(&mut c, frame).expect("c handles"));
        }
    }
    let second_sale = second_sale.expect("A sent its second change to C");
    {
        // B's session with A: A's opening, then only that frame; then the link drops.
        let mut at_b = Session::new(a_id);
        at_b.start(b).expect("start b");
        for frame in opening {
            at_b.handle(b, frame).expect("b opening");
        }
        at_b.handle(b, second_sale)
            .expect("b takes the early change");
    }
    assert_ne!(heads(b), heads(a), "B cannot merge the second change yet");

    // C, which has only the first change and its signature, brings it to B: the waiting
    // second change merges with the signature B kept from the earlier session.
    synced(&mut c, c_id, b, b_id);
    assert_eq!(heads(b), heads(a), "B holds both changes");
}

fn shop() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = Node::init(
        dir.path(),
        &InitOptions {
            store_name: "Antri".into(),
            till_code: "A".into(),
            encrypt: None,
        },
    )
    .expect("init");
    a.add_product(&ProductInput {
        sku: "KOPI".into(),
        name: "Kopi".into(),
        price: 2_500,
        stock: Some(Qty::units(10)),
        ..ProductInput::default()
    })
    .expect("product");
    (dir, a)
}

#[test]
fn sync_change_waiting_for_its_predecessor_merges_in_a_later_session_on_a_till() {
    let (_a_dir, mut a) = shop();
    let (_b_dir, mut b, b_id) = joined(&mut a);
    early_change_merges_later(&mut b, b_id, &mut a, LEDGER, two_sales().0, two_sales().1);
    assert_eq!(b.sales(None).expect("sales"), a.sales(None).expect("sales"));
    assert_eq!(b.sales(None).expect("sales").len(), 2);
}

#[test]
fn sync_change_waiting_for_its_predecessor_merges_in_a_later_session_on_the_relay() {
    let (_a_dir, mut a) = shop();
    let relay_key = Identity::generate();
    let relay_id = relay_key.device_id();
    let mut relay = StoreReplica::new(a.store_id(), uuid::Uuid::nil(), None, relay_key);
    early_change_merges_later(
        &mut relay,
        relay_id,
        &mut a,
        LEDGER,
        two_sales().0,
        two_sales().1,
    );
}

/// A's two sales.
fn two_sales() -> (impl FnOnce(&mut Node), impl FnOnce(&mut Node)) {
    (
        |a: &mut Node| sell(a, "first"),
        |a: &mut Node| sell(a, "second"),
    )
}

/// The owner makes an invite, then a device redeems it: the second change marks the
/// invite used. Checked one change at a time, the waiting redemption must not be taken
/// for an invite created already used ("in another's name"), which the relay refused
/// when two of its instances took one till's history at once.
#[test]
fn sync_store_change_waiting_for_its_predecessor_is_checked_on_its_own() {
    for on_relay in [false, true] {
        let (_a_dir, mut a) = shop();
        let secret = std::cell::RefCell::new(None);
        let first = |a: &mut Node| {
            *secret.borrow_mut() = Some(a.create_invite(Role::Till, None).expect("invite"));
        };
        let second = |a: &mut Node| {
            let secret = secret.borrow_mut().take().expect("the invite");
            a.admit(&secret, Identity::generate().device_id(), None, vec![])
                .expect("admit");
        };
        if on_relay {
            let relay_key = Identity::generate();
            let relay_id = relay_key.device_id();
            let mut relay = StoreReplica::new(a.store_id(), uuid::Uuid::nil(), None, relay_key);
            early_change_merges_later(&mut relay, relay_id, &mut a, STORE, first, second);
        } else {
            let (_b_dir, mut b, b_id) = joined(&mut a);
            early_change_merges_later(&mut b, b_id, &mut a, STORE, first, second);
        }
    }
}
