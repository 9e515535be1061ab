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
        let mut state = peer.0.clone();
        let before = self.heads();
        // Every change the message carries is an ancestor of its heads: when this side
        // holds those heads (a second peer serving the same catch-up), there is nothing
        // to parse or apply.
        let held_already =
            !message.heads.is_empty() && message.heads.iter().all(|h| self.has_change(h));
        let bulk = match (message.changes.len(), message.changes.iter().next()) {
            _ if state.read_only => None,
            _ if held_already => Some(self.fork_for_check()),
            (1, Some(chunk)) => self.bulk_successor(chunk),
            _ => None,
        };
        let mut after = match bulk {
            Some(mut loaded) => {
                // The changes are in (or were): let Automerge take the rest of the message
                // (their heads, needs and Bloom filter) with applying switched off, after
                // advancing the shared heads as its own apply would have.
                let now = loaded.heads();
                state.shared_heads = advance_heads(&before, &now, &state.shared_heads);
                state.read_only = true;
                let received = receive(&mut loaded, &mut state, message);
                state.read_only = false;
                received?;
                loaded
            }
            None => {
                let mut after = self.fork_for_check();
                receive(&mut after, &mut state, message)?;
                after
            }
        };
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

/// Applies `message` to `doc` through Automerge, a panic or an error being a corrupt
/// message.
fn receive(doc: &mut Doc, state: &mut sync::State, message: sync::Message) -> Result<(), DocError> {
    let am = doc.automerge();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        am.sync().receive_sync_message(state, message)
    }))
    .map_err(|_| DocError::Corrupt("sync message rejected".into()))?
    .map_err(|e| DocError::Corrupt(e.to_string()))
}

/// The shared heads after a merge moved this side from `before` to `now` (Automerge's
/// own rule, which is private to it): the new heads, and the old shared heads that are
/// still heads.
fn advance_heads(
    before: &[ChangeHash],
    now: &[ChangeHash],
    shared: &[ChangeHash],
) -> Vec<ChangeHash> {
    let mut heads: Vec<ChangeHash> = now
        .iter()
        .filter(|h| !before.contains(h))
        .chain(shared.iter().filter(|h| now.contains(h)))
        .copied()
        .collect();
    heads.sort();
    heads.dedup();
    heads
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};

    use super::*;
    use crate::ActorId;
    use crate::ids::{DeviceId, StoreId};
    use crate::ledger::{LedgerDoc, LedgerMeta};

    /// A till's ledger as every replica starts it (the shared genesis).
    fn ledger(actor: ActorId) -> Doc {
        let meta = LedgerMeta {
            store: StoreId(uuid::Uuid::from_u128(7)),
            till: DeviceId([3; 32]),
            date: "2026-12-04".parse().expect("date"),
        };
        LedgerDoc::create(meta, actor).expect("ledger").into_doc()
    }

    /// `n` changes, each a record of a few nested fields under `sales`.
    fn write(doc: &mut Doc, from: usize, n: usize) {
        for i in from..from + n {
            let am = doc.automerge();
            let sales = match am.get(ROOT, "sales").expect("get") {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => am.put_object(ROOT, "sales", ObjType::Map).expect("sales"),
            };
            let sale = am
                .put_object(&sales, format!("s{i}"), ObjType::Map)
                .expect("sale");
            am.put(&sale, "total", i as i64).expect("total");
            let lines = am.put_object(&sale, "lines", ObjType::List).expect("lines");
            let line = am.insert_object(&lines, 0, ObjType::Map).expect("line");
            am.put(&line, "sku", "GULA").expect("sku");
            am.commit();
        }
    }

    /// How the receiving side of [`sync`] merges.
    #[derive(Clone, Copy, PartialEq)]
    enum Merging {
        /// Through the checked path (bulk when it can), every check accepting.
        Checked,
        /// Automerge's own merge, change by change.
        ChangeByChange,
    }

    /// Runs the protocol until both sides are quiet; returns how many changes `to`'s
    /// checks saw.
    fn sync(from: &mut Doc, to: &mut Doc, merging: Merging) -> usize {
        let (mut from_state, mut to_state) = (PeerState::new(), PeerState::new());
        let mut seen = 0;
        for _ in 0..32 {
            let out = from.generate_sync_message(&mut from_state);
            let back = to.generate_sync_message(&mut to_state);
            if out.is_none() && back.is_none() {
                return seen;
            }
            if let Some(m) = out {
                if merging == Merging::Checked {
                    let merged = to
                        .receive_sync_message_checked(&mut to_state, &m, |_, _, added| {
                            seen += added.len();
                            Ok::<(), ()>(())
                        })
                        .expect("a replica's message applies");
                    assert!(merged.is_ok());
                } else {
                    to.receive_sync_message(&mut to_state, &m)
                        .expect("a replica's message applies");
                }
            }
            if let Some(m) = back {
                from.receive_sync_message(&mut from_state, &m)
                    .expect("a replica's message applies");
            }
        }
        panic!("the protocol did not settle");
    }

    /// [`sync`] through the checked path.
    fn sync_checked(from: &mut Doc, to: &mut Doc) -> usize {
        sync(from, to, Merging::Checked)
    }

    #[test]
    fn bulk_a_new_replica_loads_the_senders_document_and_keeps_syncing() {
        let mut source = ledger(ActorId::random());
        write(&mut source, 0, 300);
        let mut fresh = ledger(ActorId::random());
        // What Automerge sends a replica that lacks most of the history: one saved
        // document, which the new replica takes whole.
        let whole = source.save();
        let mut loaded = fresh.bulk_successor(&whole).expect("the bulk path");
        assert_eq!(loaded.heads(), source.heads());

        assert_eq!(
            sync_checked(&mut source, &mut fresh),
            300,
            "every change checked"
        );
        assert_eq!(fresh.heads(), source.heads());
        // What it stores for the merge is the document it loaded, as received.
        let merged = fresh.save_incremental();
        assert_eq!(merged.get(8), Some(&0), "a whole-document chunk");
        // The same history merged change by change ends in the same document.
        let mut slow = ledger(ActorId::random());
        sync(&mut source, &mut slow, Merging::ChangeByChange);
        assert_eq!(slow.heads(), fresh.heads());
        assert_eq!(
            slow.automerge_ref().hydrate(ROOT, None).expect("hydrate"),
            fresh.automerge_ref().hydrate(ROOT, None).expect("hydrate")
        );
        // The sync state stayed true: later sales arrive as changes, and the new
        // replica's own write reaches the source.
        write(&mut source, 300, 3);
        write(&mut fresh, 1_000, 1);
        assert_eq!(sync_checked(&mut source, &mut fresh), 3);
        assert_eq!(fresh.heads(), source.heads());
        // What it saves next is what it merged since its last save, loadable on top.
        let genesis = ledger(ActorId::random()).save();
        let all = [genesis.as_slice(), &merged, &fresh.save_incremental()];
        let mut reloaded =
            Doc::load(fresh.id(), fresh.kind(), all, ActorId::random()).expect("load");
        assert_eq!(reloaded.heads(), fresh.heads());
    }

    #[test]
    fn bulk_a_replica_with_history_of_its_own_merges_change_by_change() {
        let mut source = ledger(ActorId::random());
        write(&mut source, 0, 300);
        let mut other = ledger(ActorId::random());
        write(&mut other, 5_000, 2);
        let whole = source.save();
        assert!(
            other.bulk_successor(&whole).is_none(),
            "a load would drop the replica's own changes"
        );
        let own = other.heads();
        assert_eq!(sync_checked(&mut source, &mut other), 300);
        assert!(source.heads().iter().all(|h| other.has_change(h)));
        assert!(
            own.iter().all(|h| other.has_change(h)),
            "its own changes kept"
        );
        assert_eq!(other.heads().len(), 2, "two branches, both held");
    }

    #[test]
    fn bulk_the_same_history_from_a_second_peer_is_not_applied_again() {
        let mut first = ledger(ActorId::random());
        write(&mut first, 0, 300);
        let mut second = Doc::load(
            first.id(),
            first.kind(),
            [first.save().as_slice()],
            ActorId::random(),
        )
        .expect("a copy");
        let mut fresh = ledger(ActorId::random());
        let (mut a, mut b) = (PeerState::new(), PeerState::new());
        // Both peers open at once: each sends the whole history before hearing back.
        let hello_a = first.generate_sync_message(&mut a).expect("hello");
        let hello_b = second.generate_sync_message(&mut b).expect("hello");
        let (mut fa, mut fb) = (PeerState::new(), PeerState::new());
        let apply = |doc: &mut Doc, st: &mut PeerState, m: &[u8]| {
            let mut n = 0;
            doc.receive_sync_message_checked(st, m, |_, _, added| {
                n = added.len();
                Ok::<(), ()>(())
            })
            .expect("applies")
            .expect("accepted");
            n
        };
        apply(&mut fresh, &mut fa, &hello_a);
        apply(&mut fresh, &mut fb, &hello_b);
        let to_a = fresh.generate_sync_message(&mut fa).expect("answer");
        let to_b = fresh.generate_sync_message(&mut fb).expect("answer");
        first.receive_sync_message(&mut a, &to_a).expect("apply");
        second.receive_sync_message(&mut b, &to_b).expect("apply");
        let from_a = first.generate_sync_message(&mut a).expect("the history");
        let from_b = second.generate_sync_message(&mut b).expect("the history");
        assert_eq!(apply(&mut fresh, &mut fa, &from_a), 300);
        assert_eq!(apply(&mut fresh, &mut fb, &from_b), 0, "held already");
        assert_eq!(fresh.heads(), first.heads());
        // Both sessions still settle.
        for (peer, mine, theirs) in [
            (&mut first, &mut fa, &mut a),
            (&mut second, &mut fb, &mut b),
        ] {
            for _ in 0..8 {
                let out = fresh.generate_sync_message(mine);
                let back = peer.generate_sync_message(theirs);
                if out.is_none() && back.is_none() {
                    break;
                }
                if let Some(m) = out {
                    peer.receive_sync_message(theirs, &m).expect("apply");
                }
                if let Some(m) = back {
                    assert_eq!(apply(&mut fresh, mine, &m), 0);
                }
            }
            assert!(fresh.generate_sync_message(mine).is_none(), "settled");
        }
    }

    #[test]
    fn bulk_path_takes_only_whole_documents() {
        let mut source = ledger(ActorId::random());
        write(&mut source, 0, 50);
        let mut fresh = ledger(ActorId::random());
        let whole = source.save();
        assert!(
            fresh.bulk_successor(&whole[..whole.len() - 9]).is_none(),
            "cut short"
        );
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(fresh.bulk_successor(&flipped).is_none(), "damaged");
        let mut again = ledger(ActorId::random());
        write(&mut again, 0, 1);
        let change = again.save_incremental();
        assert!(fresh.bulk_successor(&change).is_none(), "a change chunk");
        assert!(fresh.bulk_successor(&[]).is_none(), "nothing");
    }
}
