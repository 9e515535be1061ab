//! How a document is named between replicas, and the check that a name belongs to a store.
//!
//! Document ids are derived (`kasir_crdt::ids`), so a reference carries what its id is
//! derived from — kind, and for ledgers the writing till and the business date — and any
//! replica can check that a peer's reference really names a document of its own store.

use kasir_crdt::{BusinessDate, DeviceId, DocId, DocKind, StoreId};

use crate::wire::WireDoc;

/// Which document a sync message is about, as a peer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRef {
    /// The id.
    pub id: DocId,
    /// The kind.
    pub kind: DocKind,
    /// The writing till, for ledgers.
    pub till: Option<DeviceId>,
    /// The business date, for ledgers.
    pub date: Option<BusinessDate>,
}

/// A document reference with its heads hash, as listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRefWithHeads {
    /// The document.
    pub doc: DocRef,
    /// blake3 of its sorted heads.
    pub heads: [u8; 32],
}

/// A reference that does not name a document of the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocRefError {
    /// The kind and its fields do not go together (a ledger without till or date, a
    /// catalog with a till), or the kind is unknown.
    #[error("malformed reference to document {0}")]
    Malformed(String),
    /// The id is not the one derived from this store.
    #[error("document {doc} is not part of store {store}")]
    ForeignStore {
        /// The document named.
        doc: DocId,
        /// The store it was checked against.
        store: StoreId,
    },
}

impl DocRef {
    /// The store document of `store`.
    pub fn store(store: StoreId) -> DocRef {
        DocRef {
            id: DocId::store(store),
            kind: DocKind::Store,
            till: None,
            date: None,
        }
    }

    /// The catalog of `store`.
    pub fn catalog(store: StoreId) -> DocRef {
        DocRef {
            id: DocId::catalog(store),
            kind: DocKind::Catalog,
            till: None,
            date: None,
        }
    }

    /// The ledger of `till` on `date` in `store`.
    pub fn ledger(store: StoreId, till: DeviceId, date: BusinessDate) -> DocRef {
        DocRef {
            id: DocId::ledger(store, till, &date),
            kind: DocKind::Ledger,
            till: Some(till),
            date: Some(date),
        }
    }

    /// The wire form.
    pub fn to_wire(&self) -> WireDoc {
        WireDoc {
            id: self.id.0,
            kind: match self.kind {
                DocKind::Store => 0,
                DocKind::Catalog => 1,
                DocKind::Ledger => 2,
            },
            till: self.till.map(|t| t.0),
            date: self.date.as_ref().map(ToString::to_string),
        }
    }

    /// Reads a wire reference, refusing unknown kinds and dates that do not parse (the
    /// store check is [`check_doc_ref`]'s).
    pub fn from_wire(w: &WireDoc) -> Result<DocRef, DocRefError> {
        let id = DocId(w.id);
        let kind = match w.kind {
            0 => DocKind::Store,
            1 => DocKind::Catalog,
            2 => DocKind::Ledger,
            k => return Err(DocRefError::Malformed(format!("{id} (unknown kind {k})"))),
        };
        let date = w
            .date
            .as_deref()
            .map(str::parse::<BusinessDate>)
            .transpose()
            .map_err(|e| DocRefError::Malformed(format!("{id} ({e})")))?;
        Ok(DocRef {
            id,
            kind,
            till: w.till.map(DeviceId),
            date,
        })
    }
}

/// Checks that a reference names a document of `store`: its id must be the one derived
/// from the store, its kind and (for ledgers) till and date.
pub fn check_doc_ref(store: StoreId, r: &DocRef) -> Result<(), DocRefError> {
    let expected = match (r.kind, r.till, &r.date) {
        (DocKind::Store, None, None) => DocId::store(store),
        (DocKind::Catalog, None, None) => DocId::catalog(store),
        (DocKind::Ledger, Some(till), Some(date)) => DocId::ledger(store, till, date),
        _ => return Err(DocRefError::Malformed(r.id.to_string())),
    };
    if expected != r.id {
        return Err(DocRefError::ForeignStore { doc: r.id, store });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_the_wire_and_only_this_stores_documents_pass() {
        let store = StoreId(uuid::Uuid::from_u128(7));
        let other = StoreId(uuid::Uuid::from_u128(8));
        let date: BusinessDate = "2026-12-01".parse().expect("date");
        for r in [
            DocRef::store(store),
            DocRef::catalog(store),
            DocRef::ledger(store, DeviceId([3; 32]), date.clone()),
        ] {
            assert_eq!(DocRef::from_wire(&r.to_wire()).as_ref(), Ok(&r));
            assert_eq!(check_doc_ref(store, &r), Ok(()));
            assert!(matches!(
                check_doc_ref(other, &r),
                Err(DocRefError::ForeignStore { .. })
            ));
        }
        let mut ledger_without_date = DocRef::ledger(store, DeviceId([3; 32]), date).to_wire();
        ledger_without_date.date = None;
        let r = DocRef::from_wire(&ledger_without_date).expect("decodes");
        assert!(matches!(
            check_doc_ref(store, &r),
            Err(DocRefError::Malformed(_))
        ));
        let mut unknown = DocRef::store(store).to_wire();
        unknown.kind = 9;
        assert!(DocRef::from_wire(&unknown).is_err());
    }
}
