//! A scale's label scanned into a bill: the PLU finds the product, the weight (or the
//! price the label prints) becomes the line's quantity; a damaged label is refused, an
//! unknown PLU is an unknown code, and an ordinary barcode still works.
#![allow(missing_docs)]

use kasir_crdt::Qty;
use kasir_crdt::store::ScaleLabels;
use kasir_devices::barcode::check_digit;
use kasir_node::api::{InitOptions, ProductInput};
use kasir_node::{Node, NodeError};

/// `2` `prefix` `plu` `value` and the check digit.
fn label(prefix: u8, plu: &str, value: &str) -> String {
    let body = format!("2{prefix}{plu}{value}");
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", check_digit(&digits))
}

fn shop() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::init(
        &dir.path().join("till"),
        &InitOptions {
            store_name: "Pasar Segar".into(),
            till_code: "T1".into(),
            encrypt: None,
        },
    )
    .expect("init");
    for (sku, name, price, barcodes) in [
        ("123", "Tomat", 20_000, vec![]),
        ("DAGING", "Daging sapi", 140_000, vec!["00456".to_owned()]),
        ("IDM", "Indomie", 3_500, vec!["8998866200578".to_owned()]),
    ] {
        node.add_product(&ProductInput {
            sku: sku.into(),
            name: name.into(),
            price,
            barcodes,
            unit: Some("kg".into()),
            ..ProductInput::default()
        })
        .expect("product");
    }
    (dir, node)
}

#[test]
fn drafts_scale_labels_weigh_price_and_refuse_damage() {
    let (_dir, mut node) = shop();
    let bill = node.new_draft(None).expect("draft").draft_id;

    // 1,250 g of tomatoes (PLU 00123 is SKU 123); 0,735 kg of beef (PLU as barcode).
    let d = node
        .draft_add(&bill, &label(1, "00123", "01250"), Qty(1000))
        .expect("tomatoes");
    assert_eq!(
        (d.lines[0].sku.as_str(), d.lines[0].qty),
        ("123", Qty(1250))
    );
    let d = node
        .draft_add(&bill, &label(2, "00456", "00735"), Qty(1000))
        .expect("beef");
    assert_eq!(
        (d.lines[1].sku.as_str(), d.lines[1].qty),
        ("DAGING", Qty(735))
    );

    // A damaged label is said so; an unknown PLU is an unknown code.
    let mut damaged = label(1, "00123", "01250");
    let last = damaged.pop().expect("digit");
    damaged.push(if last == '9' { '0' } else { '9' });
    assert!(
        matches!(node.draft_add(&bill, &damaged, Qty(1000)), Err(NodeError::Invalid(m)) if m.contains("check digit"))
    );
    let unknown = label(1, "09999", "01000");
    assert!(matches!(
        node.draft_add(&bill, &unknown, Qty(1000)),
        Err(NodeError::UnknownSku(c)) if c == unknown
    ));
    // An ordinary EAN-13 is not a scale label.
    let d = node
        .draft_add(&bill, "8998866200578", Qty(2000))
        .expect("noodles");
    assert_eq!(d.lines[2].qty, Qty(2000));

    // A store whose scales print the price: Rp25.000 of tomatoes at Rp20.000/kg.
    let mut profile = node.profile().clone();
    profile.scale_labels = ScaleLabels::Price;
    node.set_profile(profile).expect("profile");
    let priced = node.new_draft(None).expect("draft").draft_id;
    let d = node
        .draft_add(&priced, &label(0, "00123", "25000"), Qty(1000))
        .expect("priced tomatoes");
    assert_eq!(d.lines[0].qty, Qty(1250));
    let totals = node.price(&d.sale_request(None)).expect("price");
    assert_eq!(totals.total, 25_000, "the bill charges what the label says");
}
