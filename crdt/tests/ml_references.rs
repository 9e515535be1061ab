//! Recognition references in the catalog and the active model in the store document:
//! the lazily created map merges across tills and old catalogs keep working.
#![allow(missing_docs)]

use kasir_crdt::catalog::{CatalogDoc, MlReference};
use kasir_crdt::ids::{DocKind, StoreId};
use kasir_crdt::store::StoreDoc;
use kasir_crdt::{ActorId, Doc, DocError};

fn store() -> StoreId {
    StoreId(uuid::Uuid::from_u128(0x4b41_5349_5200_00aa))
}

fn reference(sku: &str, fill: u8) -> MlReference {
    MlReference {
        sku: sku.to_owned(),
        model: "ab".repeat(32),
        embedding: vec![fill; 16],
        created_at_ms: 1_700_000_000_000,
    }
}

fn skus(catalog: &CatalogDoc) -> Result<Vec<String>, DocError> {
    catalog
        .ml_references()
        .into_iter()
        .map(|r| r.map(|(_, r)| r.sku))
        .collect()
}

#[test]
fn concurrent_first_references_on_two_tills_merge() -> Result<(), DocError> {
    let mut a = CatalogDoc::create(store(), ActorId::random())?;
    let mut b = CatalogDoc::create(store(), ActorId::random())?;
    // Both tills create the map independently (neither has seen the other).
    assert!(a.add_ml_reference("r-a", &reference("KOPI", 1))?);
    assert!(b.add_ml_reference("r-b", &reference("TEH", 2))?);
    let a_only = a.doc().save();
    a.doc().merge(b.doc())?;
    b.doc().merge_bytes(&a_only)?;
    let mut got_a = skus(&a)?;
    let mut got_b = skus(&b)?;
    got_a.sort();
    got_b.sort();
    assert_eq!(
        got_a,
        vec!["KOPI".to_owned(), "TEH".to_owned()],
        "no reference hidden by a map conflict"
    );
    assert_eq!(got_a, got_b);
    assert_eq!(a.doc().heads(), b.doc().heads());
    let (_, r) = a
        .ml_references()
        .into_iter()
        .find_map(|r| r.ok().filter(|(id, _)| id == "r-b"))
        .ok_or(DocError::Corrupt("missing r-b".into()))?;
    assert_eq!(r, reference("TEH", 2));
    Ok(())
}

#[test]
fn catalog_without_the_map_still_works() -> Result<(), DocError> {
    // A catalog saved before any reference existed (as every pre-ML catalog was).
    let mut old = CatalogDoc::create(store(), ActorId::random())?;
    let bytes = old.doc().save();
    let mut loaded = CatalogDoc::from_doc(Doc::load(
        old.doc_ref().id(),
        DocKind::Catalog,
        [bytes.as_slice()],
        ActorId::random(),
    )?)?;
    assert!(loaded.ml_references().is_empty());
    assert!(loaded.add_ml_reference("r1", &reference("GULA", 3))?);
    assert!(
        !loaded.add_ml_reference("r1", &reference("GULA", 4))?,
        "ids are immutable"
    );
    // Meanwhile the old replica (never saved/loaded) creates the map on its own too; the
    // loaded replica's lazy change was built from a snapshot, yet both are the same change.
    assert!(old.add_ml_reference("r2", &reference("KOPI", 5))?);
    let changes = loaded.doc().save_incremental();
    old.doc().merge_bytes(&changes)?;
    loaded.doc().merge(old.doc())?;
    assert_eq!(skus(&old)?, vec!["GULA".to_owned(), "KOPI".to_owned()]);
    assert_eq!(skus(&loaded)?, vec!["GULA".to_owned(), "KOPI".to_owned()]);
    Ok(())
}

#[test]
fn active_model_is_a_converging_register() -> Result<(), DocError> {
    let mut a = StoreDoc::create(store(), ActorId::random())?;
    let mut b = StoreDoc::create(store(), ActorId::random())?;
    assert_eq!(a.active_model(), None);
    assert!(a.set_active_model(&"11".repeat(32), 1_000)?);
    assert!(!a.set_active_model(&"11".repeat(32), 2_000)?);
    assert!(b.set_active_model(&"22".repeat(32), 1_500)?);
    a.doc().merge(b.doc())?;
    b.doc().merge(a.doc())?;
    assert!(a.active_model().is_some());
    assert_eq!(a.active_model(), b.active_model());
    Ok(())
}
