//! What a sync session needs from the replica it serves: a till's SQLite node or the
//! relay's in-memory store replica over PostgreSQL.
//!
//! **API Boundary:** tills and the relay implement [`SyncReplica`]; changing it changes
//! both engines.

use kasir_crdt::sync::PeerState;
use kasir_crdt::{DeviceId, DocError, DocId, StoreId};

use crate::doc_ref::{DocRef, DocRefError, DocRefWithHeads, check_doc_ref};
use crate::trust::{ChangeSig, Refusal};

/// Why a replica could not serve a session's request. The variants say whose fault it
/// is: the peer's (the session ends as a protocol error) or the replica's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The peer named a document that is not part of the store.
    #[error(transparent)]
    Foreign(#[from] DocRefError),
    /// The peer's sync message does not decode or apply.
    #[error("the peer's message does not apply: {0}")]
    BadMessage(#[source] DocError),
    /// The trust rules refused what the peer's message would add.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The replica's own storage (SQLite, PostgreSQL, loaded documents) failed.
    #[error("replica storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ReplicaError {
    /// A storage failure of the replica itself.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> ReplicaError {
        ReplicaError::Storage(Box::new(e))
    }

    /// Whether the peer caused it (its session ends; the replica is intact).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            ReplicaError::Foreign(_) | ReplicaError::BadMessage(_) | ReplicaError::Refused(_)
        )
    }
}

/// What applying a peer's sync message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The document did not change (the message carried no new changes).
    Unchanged,
    /// New changes merged, durably.
    Changed,
    /// Set aside unapplied: a change is by a device this replica does not know yet (its
    /// admission may still be on its way in the store document).
    Deferred(kasir_crdt::DeviceId),
}

/// A sync message for a peer, with the signatures of the changes it carries.
pub type Outgoing = (Vec<u8>, Vec<ChangeSig>);

/// A replica of one store's documents that a [`crate::Session`] can sync.
pub trait SyncReplica {
    /// The store this replica belongs to.
    fn store_id(&self) -> StoreId;
    /// Every document with its heads hash.
    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, ReplicaError>;
    /// Checks that a peer's reference names a document of this store.
    fn check_doc_ref(&self, r: &DocRef) -> Result<(), ReplicaError> {
        Ok(check_doc_ref(self.store_id(), r)?)
    }
    /// The remembered sync state with `peer` for `doc` (fresh if none).
    fn peer_state(&mut self, peer: DeviceId, doc: DocId) -> Result<PeerState, ReplicaError>;
    /// The next message for the peer about `r` with the signatures of the changes it
    /// carries, or `None` when the peer is up to date.
    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<Outgoing>, ReplicaError>;
    /// Applies a peer's message, if the trust rules accept what it adds
    /// ([`crate::trust::check_merge`]), durably with the signatures it keeps.
    fn sync_receive(
        &mut self,
        peer: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
        sigs: &[ChangeSig],
    ) -> Result<Received, ReplicaError>;
}
