//! Automerge's sync protocol over one document, as a pure state machine.
//!
//! The transport (iroh, an in-memory simulation) lives in `node`; this module only turns
//! bytes into document changes and back, and never panics on what a peer sends.

use automerge::sync::{self, SyncDoc};

use crate::doc::{ChangeHash, Doc, DocError, IncomingChange};

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

    /// Asks the peer, with the next message, to clear what it believes it already sent
    /// and send again what this side lacks (after a message was set aside unapplied).
    pub fn request_resend(&mut self) {
        self.0.needs_reset = true;
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

    /// The next message to send, with the hashes of the changes it carries (to send
    /// their signatures along), or `None` when the peer is up to date.
    ///
    /// A message whose changes would exceed `max_bytes` carries only a causally ordered
    /// prefix of them; the rest are left unsent in the state and go in the messages that
    /// follow the peer's answer. So a document of any size syncs through frames of a
    /// bounded size (a single change larger than `max_bytes` still goes alone).
    pub fn generate_sync_message_with_hashes(
        &mut self,
        peer: &mut PeerState,
        max_bytes: usize,
    ) -> Option<(Vec<u8>, Vec<ChangeHash>)> {
        let sent_before = peer.0.sent_hashes.clone();
        let mut message = self.automerge().sync().generate_sync_message(&mut peer.0)?;
        let carried: std::collections::BTreeSet<ChangeHash> = peer
            .0
            .sent_hashes
            .difference(&sent_before)
            .copied()
            .collect();
        let encoded = message.clone().encode();
        if encoded.len() <= max_bytes || carried.is_empty() {
            return Some((encoded, carried.into_iter().collect()));
        }
        // Too big: send what the peer lacks, oldest first, up to the budget.
        let am = self.automerge();
        let theirs: Vec<ChangeHash> = peer
            .0
            .their_heads
            .iter()
            .flatten()
            .filter(|h| am.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        let mut prefix = Vec::new();
        let mut chunks = Vec::new();
        let mut size = 0usize;
        for change in am.get_changes(&theirs) {
            let hash = change.hash();
            if !carried.contains(&hash) {
                continue;
            }
            let bytes = change.raw_bytes();
            if !prefix.is_empty() && size + bytes.len() > max_bytes {
                break;
            }
            size += bytes.len();
            chunks.push(bytes.to_vec());
            prefix.push(hash);
        }
        peer.0.sent_hashes = sent_before;
        peer.0.sent_hashes.extend(prefix.iter().copied());
        message.changes = chunks.into();
        Some((message.encode(), prefix))
    }

    /// Applies a peer's message only if `check` accepts what it would add.
    ///
    /// The message is applied to a copy of the document; `check` sees the document as
    /// it is, the copy with the message applied, and the changes that were added (in
    /// causal order); only when it accepts is the copy kept. Returns whether the document
    /// changed, or `check`'s refusal with nothing applied (the sync state unchanged too).
    /// A message that does not decode, or a merge that would change the document's
    /// identity, is an error.
    pub fn receive_sync_message_checked<E>(
        &mut self,
        peer: &mut PeerState,
        bytes: &[u8],
        check: impl FnOnce(&mut Doc, &mut Doc, &[IncomingChange]) -> Result<(), E>,
    ) -> Result<Result<bool, E>, DocError> {
        let message = sync::Message::decode(bytes).map_err(|e| DocError::Corrupt(e.to_string()))?;
        if message.changes.is_empty() {
            // Heads, needs and Bloom filters only: nothing to check, no copy to make.
            let am = self.automerge();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                am.sync().receive_sync_message(&mut peer.0, message)
            }))
            .map_err(|_| DocError::Corrupt("sync message rejected".into()))?
            .map_err(|e| DocError::Corrupt(e.to_string()))?;
            return Ok(Ok(false));
        }
        let mut after = self.fork_for_check();
        let mut state = peer.0.clone();
        let before = self.heads();
        let am = after.automerge();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            am.sync().receive_sync_message(&mut state, message)
        }))
        .map_err(|_| DocError::Corrupt("sync message rejected".into()))?
        .map_err(|e| DocError::Corrupt(e.to_string()))?;
        let added = after.changes_after(&before);
        if !added.is_empty() {
            after.check_identity()?;
            if let Err(refused) = check(self, &mut after, &added) {
                return Ok(Err(refused));
            }
        }
        if after.has_waiting_changes() {
            // Changes wait for predecessors the peer believes it sent (a message lost
            // with a session, or a document set aside): Automerge never resends what
            // is in its sent list, even when asked for it, so both sides would trade
            // heads for ever. Ask the peer to forget what it sent and start again.
            state.needs_reset = true;
        }
        self.replace_with(after);
        peer.0 = state;
        Ok(Ok(!added.is_empty()))
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
