//! Automerge's sync protocol over one document, as a pure state machine.
//!
//! The transport (iroh, an in-memory simulation) lives in `node`; this module only turns
//! bytes into document changes and back, and never panics on what a peer sends.

use automerge::sync::{self, SyncDoc};

use crate::doc::{Doc, DocError};

/// What one side knows about one peer's copy of one document.
#[derive(Debug, Default)]
pub struct PeerState(sync::State);

impl PeerState {
    /// A fresh state (costs a Bloom filter over the whole history on first sync).
    pub fn new() -> PeerState {
        PeerState::default()
    }

    /// Serialises the persistent part, so a reconnect does not start from scratch.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// A hash of the heads both sides are known to share (zeros before any exchange).
    pub fn shared_heads_hash(&self) -> [u8; 32] {
        let mut heads = self.0.shared_heads.clone();
        heads.sort();
        let mut h = blake3::Hasher::new();
        for head in &heads {
            h.update(&head.0);
        }
        *h.finalize().as_bytes()
    }

    /// Restores a state saved by [`PeerState::encode`].
    pub fn decode(bytes: &[u8]) -> Result<PeerState, DocError> {
        sync::State::decode(bytes)
            .map(PeerState)
            .map_err(|e| DocError::Corrupt(e.to_string()))
    }
}

impl Doc {
    /// The next message to send to the peer, or `None` when it is up to date.
    pub fn generate_sync_message(&mut self, peer: &mut PeerState) -> Option<Vec<u8>> {
        self.automerge()
            .sync()
            .generate_sync_message(&mut peer.0)
            .map(sync::Message::encode)
    }

    /// Applies a message from the peer.
    pub fn receive_sync_message(
        &mut self,
        peer: &mut PeerState,
        bytes: &[u8],
    ) -> Result<(), DocError> {
        let message = sync::Message::decode(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        let am = self.automerge();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            am.sync().receive_sync_message(&mut peer.0, message)
        }))
        .map_err(|_| DocError::Corrupt("sync message rejected".into()))?
        .map_err(|e| DocError::Corrupt(e.to_string()))
    }
}
