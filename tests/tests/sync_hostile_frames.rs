//! Property test of what a peer can send: arbitrary bytes, and well-formed frames with
//! arbitrary contents, fed to a real node's sync session. Nothing panics, nothing the
//! node already had is lost, and the node still sells afterwards. (`fuzz/` runs the same
//! entry point under libFuzzer with nightly.)
#![allow(missing_docs)]

use kasir_crdt::{DeviceId, Qty};
use kasir_node::node::{InitOptions, Node, ProductInput, SaleItem, SaleRequest};
use kasir_node::sync::feed_untrusted;
use kasir_node::sync::wire::{Frame, WireDoc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = Node::init(
        dir.path(),
        &InitOptions {
            store_name: "Fuzz".into(),
            till_code: "F1".into(),
        },
    )
    .expect("init");
    node.add_product(&ProductInput {
        sku: "KOPI".into(),
        name: "Kopi".into(),
        price: 2_500,
        stock: Some(Qty::units(10)),
        ..ProductInput::default()
    })
    .expect("product");
    node.sell(&SaleRequest {
        items: vec![SaleItem {
            code: "KOPI".into(),
            qty: Qty::units(1),
            discount: 0,
        }],
        ..SaleRequest::default()
    })
    .expect("sale");
    (dir, node)
}

fn arb_wire_doc(store_docs: Vec<[u8; 32]>) -> impl Strategy<Value = WireDoc> {
    (
        prop_oneof![Just(None), (0..store_docs.len()).prop_map(Some)],
        any::<[u8; 32]>(),
        0u8..4,
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of("[0-9-]{0,12}"),
    )
        .prop_map(move |(pick, id, kind, till, date)| WireDoc {
            id: pick.map(|i| store_docs[i]).unwrap_or(id),
            kind,
            till,
            date,
        })
}

fn arb_frame(store: [u8; 16], docs: Vec<[u8; 32]>) -> impl Strategy<Value = Frame> {
    prop_oneof![
        (0u16..3).prop_map(move |v| Frame::Hello { version: v, store }),
        any::<[u8; 16]>().prop_map(|s| Frame::Hello {
            version: 1,
            store: s
        }),
        proptest::collection::vec((arb_wire_doc(docs.clone()), any::<[u8; 32]>()), 0..4)
            .prop_map(|docs| Frame::Manifest { docs }),
        (
            arb_wire_doc(docs),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(doc, msg)| Frame::Sync { doc, msg }),
        ".{0,20}".prop_map(|reason| Frame::Bye { reason }),
    ]
}

fn still_healthy(node: &mut Node) {
    assert_eq!(
        node.sales(None).expect("sales").len(),
        1,
        "the existing sale survived"
    );
    node.sell(&SaleRequest {
        items: vec![SaleItem {
            code: "KOPI".into(),
            qty: Qty::units(1),
            discount: 0,
        }],
        ..SaleRequest::default()
    })
    .expect("still sells");
    node.rebuild_read_tables().expect("documents intact");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_without_harm(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (_dir, mut node) = node();
        feed_untrusted(&mut node, DeviceId([9; 32]), &data);
        still_healthy(&mut node);
    }

    #[test]
    fn arbitrary_frames_are_refused_without_harm(seed in any::<u64>()) {
        let (_dir, mut node) = node();
        let store = *node.store_id().0.as_bytes();
        let docs: Vec<[u8; 32]> = node.manifest().expect("manifest").iter().map(|e| e.doc.id.0).collect();
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            ProptestConfig::default(),
            proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &{
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&seed.to_le_bytes());
                s
            }),
        );
        let strategy = proptest::collection::vec(arb_frame(store, docs), 1..8);
        let frames = strategy.new_tree(&mut runner).expect("frames").current();
        let mut data = Frame::Hello { version: 1, store }.to_wire();
        for f in &frames {
            data.extend(f.to_wire());
        }
        feed_untrusted(&mut node, DeviceId([9; 32]), &data);
        still_healthy(&mut node);
    }
}
