//! Property test of what a peer can send: arbitrary bytes, and well-formed frames with
//! arbitrary contents, fed to a real node's sync session. Nothing panics, nothing the
//! node already had is lost, and the node still sells afterwards. (`fuzz/` runs the same
//! entry point under libFuzzer with nightly.)
#![allow(missing_docs)]

use kasir_crdt::{DeviceId, Qty};
use kasir_node::Node;
use kasir_node::api::{InitOptions, ProductInput, SaleItem, SaleRequest};
use kasir_sync::feed_untrusted;
use kasir_sync::wire::{Frame, WireDoc};
use proptest::prelude::*;

fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut node = Node::init(
        dir.path(),
        &InitOptions {
            store_name: "Fuzz".into(),
            till_code: "F1".into(),
            encrypt: None,
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
            discount_percent: None,
            price: None,
            unit: None,
        }],
        ..SaleRequest::default()
    })
    .expect("sale");
    (dir, node)
}

/// A document reference a peer might send: one of the node's own documents (by index)
/// or any id, with any kind, till and date.
#[derive(Debug, Clone)]
struct DocTemplate {
    ours: Option<usize>,
    id: [u8; 32],
    kind: u8,
    till: Option<[u8; 32]>,
    date: Option<String>,
}

impl DocTemplate {
    fn resolve(&self, docs: &[[u8; 32]]) -> WireDoc {
        WireDoc {
            id: self
                .ours
                .and_then(|i| docs.get(i % docs.len().max(1)).copied())
                .unwrap_or(self.id),
            kind: self.kind,
            till: self.till,
            date: self.date.clone(),
        }
    }
}

/// A frame with arbitrary contents; the node's store id and documents are filled in
/// when it is sent, so proptest can shrink a failing sequence.
#[derive(Debug, Clone)]
enum FrameTemplate {
    HelloOurs(u16),
    HelloOther([u8; 16]),
    Manifest(Vec<(DocTemplate, [u8; 32])>),
    Sync(DocTemplate, Vec<u8>),
    Bye(String),
}

impl FrameTemplate {
    fn resolve(&self, store: [u8; 16], docs: &[[u8; 32]]) -> Frame {
        match self {
            FrameTemplate::HelloOurs(version) => Frame::Hello {
                version: *version,
                store,
            },
            FrameTemplate::HelloOther(other) => Frame::Hello {
                version: kasir_sync::wire::VERSION,
                store: *other,
            },
            FrameTemplate::Manifest(entries) => Frame::Manifest {
                docs: entries.iter().map(|(d, h)| (d.resolve(docs), *h)).collect(),
            },
            FrameTemplate::Sync(doc, msg) => Frame::Sync {
                doc: doc.resolve(docs),
                msg: msg.clone(),
                sigs: Vec::new(),
            },
            FrameTemplate::Bye(reason) => Frame::Bye {
                reason: reason.clone(),
            },
        }
    }
}

fn arb_doc() -> impl Strategy<Value = DocTemplate> {
    (
        proptest::option::of(0usize..8),
        any::<[u8; 32]>(),
        0u8..4,
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of("[0-9-]{0,12}"),
    )
        .prop_map(|(ours, id, kind, till, date)| DocTemplate {
            ours,
            id,
            kind,
            till,
            date,
        })
}

fn arb_frame() -> impl Strategy<Value = FrameTemplate> {
    prop_oneof![
        (0u16..3).prop_map(FrameTemplate::HelloOurs),
        any::<[u8; 16]>().prop_map(FrameTemplate::HelloOther),
        proptest::collection::vec((arb_doc(), any::<[u8; 32]>()), 0..4)
            .prop_map(FrameTemplate::Manifest),
        (arb_doc(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(doc, msg)| FrameTemplate::Sync(doc, msg)),
        ".{0,20}".prop_map(FrameTemplate::Bye),
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
            discount_percent: None,
            price: None,
            unit: None,
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
    fn arbitrary_frames_are_refused_without_harm(frames in proptest::collection::vec(arb_frame(), 1..8)) {
        let (_dir, mut node) = node();
        let store = *node.store_id().0.as_bytes();
        let docs: Vec<[u8; 32]> = node.manifest().expect("manifest").iter().map(|e| e.doc.id.0).collect();
        let mut data = Frame::Hello { version: kasir_sync::wire::VERSION, store }.to_wire().expect("hello");
        for f in &frames {
            data.extend(f.resolve(store, &docs).to_wire().expect("frame"));
        }
        let handled = feed_untrusted(&mut node, DeviceId([9; 32]), &data);
        // The opening hello is well-formed: a session that refuses everything is a bug,
        // not a defence.
        prop_assert!(handled >= 1, "the opening hello was refused");
        still_healthy(&mut node);
    }
}
