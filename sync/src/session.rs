//! One sync session with one peer, as a state machine with no IO.
//!
//! The transport ([`crate::driver`] over iroh, an in-memory network in the simulation)
//! feeds it frames and local-change notifications and sends whatever frames it returns. It owns
//! the per-document Automerge sync states for this peer; the replica persists them.
//!
//! Flow: both sides send `Hello` and `Manifest`. Documents whose heads differ (or that
//! one side lacks) are queued; at most [`MAX_ACTIVE`] are exchanged at a time. Each
//! received `Sync` is applied and answered until Automerge has nothing more to say for
//! that document. A local commit is offered to the peer at once.
//!
//! A document whose incoming changes come from a device this replica does not know yet
//! is set aside unapplied ([`Received::Deferred`]): a till that just joined may sell
//! before its admission reached us. When the store document next changes, every
//! document set aside is offered again, asking the peer to resend from scratch.

use std::collections::{HashMap, HashSet, VecDeque};

use kasir_crdt::sync::PeerState;
use kasir_crdt::{DeviceId, DocId};

use crate::doc_ref::DocRef;
use crate::replica::{Received, ReplicaError, SyncReplica};
use crate::trust::Refusal;
use crate::wire::{Frame, VERSION};

/// Documents exchanged at once per session (bounds memory and work per peer).
pub const MAX_ACTIVE: usize = 16;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer belongs to another store.
    #[error("peer is in another store")]
    WrongStore,
    /// The peer closed the session, with its reason.
    #[error("peer closed: {0}")]
    Closed(String),
    /// The replica refused what the peer sent, or failed itself.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl SessionError {
    /// Whether the peer caused it (rather than this replica's own failure).
    pub fn is_peer_fault(&self) -> bool {
        match self {
            SessionError::Replica(e) => e.is_peer_fault(),
            _ => true,
        }
    }
}

/// The state of one session.
#[derive(Debug)]
pub struct Session {
    peer: DeviceId,
    hello: bool,
    manifest: bool,
    states: HashMap<DocId, PeerState>,
    refs: HashMap<DocId, DocRef>,
    pending: VecDeque<DocId>,
    queued: HashSet<DocId>,
    active: HashSet<DocId>,
    /// Documents set aside until the roster changes.
    deferred: HashSet<DocId>,
    /// Documents held back for the rest of the session: the peer relayed a change of a
    /// revoked device in them (it may not know of the revocation yet).
    held_back: HashSet<DocId>,
    /// Refusals that did not end the session, for the host to log and count.
    refusals: Vec<Refusal>,
}

impl Session {
    /// A session with `peer` (already authenticated by the transport).
    pub fn new(peer: DeviceId) -> Session {
        Session {
            peer,
            hello: false,
            manifest: false,
            states: HashMap::new(),
            refs: HashMap::new(),
            pending: VecDeque::new(),
            queued: HashSet::new(),
            active: HashSet::new(),
            deferred: HashSet::new(),
            held_back: HashSet::new(),
            refusals: Vec::new(),
        }
    }

    /// The refusals since the last call that did not end the session (the peer relayed
    /// a revoked device's change; that document is held back from it).
    pub fn take_refusals(&mut self) -> Vec<Refusal> {
        std::mem::take(&mut self.refusals)
    }

    /// The peer.
    pub fn peer(&self) -> DeviceId {
        self.peer
    }

    /// Whether the initial exchange is over: manifests seen and nothing left to sync.
    pub fn is_idle(&self) -> bool {
        self.manifest && self.pending.is_empty() && self.active.is_empty()
    }

    /// Whether everything was offered: manifests seen and no document waits for its
    /// turn. Documents may still be active: Automerge does not always answer a message
    /// (a peer with nothing to add stays silent), so a quiet line then means done.
    pub fn all_offered(&self) -> bool {
        self.manifest && self.pending.is_empty()
    }

    /// The opening frames.
    pub fn start<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
    ) -> Result<Vec<Frame>, SessionError> {
        let docs = node
            .manifest()?
            .into_iter()
            .map(|e| (e.doc.to_wire(), e.heads))
            .collect();
        let out = vec![
            Frame::Hello {
                version: VERSION,
                store: *node.store_id().0.as_bytes(),
            },
            Frame::Manifest { docs },
        ];
        Ok(out)
    }

    fn state<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
        doc: DocId,
    ) -> Result<&mut PeerState, SessionError> {
        if !self.states.contains_key(&doc) {
            let st = node.peer_state(self.peer, doc)?;
            self.states.insert(doc, st);
        }
        self.states
            .get_mut(&doc)
            .ok_or_else(|| SessionError::Protocol("sync state vanished".into()))
    }

    fn generate<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
        r: &DocRef,
    ) -> Result<Option<Frame>, SessionError> {
        let mut st = std::mem::take(self.state(node, r.id)?);
        let msg = node.sync_generate(r, &mut st);
        self.states.insert(r.id, st);
        Ok(msg?.map(|(msg, sigs)| Frame::Sync {
            doc: r.to_wire(),
            msg,
            sigs,
        }))
    }

    fn fill<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
        out: &mut Vec<Frame>,
    ) -> Result<(), SessionError> {
        while self.active.len() < MAX_ACTIVE {
            let Some(id) = self.pending.pop_front() else {
                break;
            };
            self.queued.remove(&id);
            let Some(r) = self.refs.get(&id).cloned() else {
                continue;
            };
            if self.held_back.contains(&id) {
                continue;
            }
            if let Some(f) = self.generate(node, &r)? {
                self.active.insert(id);
                out.push(f);
            }
        }
        Ok(())
    }

    /// Handles one frame from the peer; returns the frames to send back.
    pub fn handle<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
        frame: Frame,
    ) -> Result<Vec<Frame>, SessionError> {
        let mut out = Vec::new();
        match frame {
            Frame::Hello { version, store } => {
                if version != VERSION {
                    return Err(SessionError::Protocol(format!(
                        "unsupported protocol version {version}"
                    )));
                }
                if store != *node.store_id().0.as_bytes() {
                    return Err(SessionError::WrongStore);
                }
                self.hello = true;
            }
            Frame::Manifest { docs } => {
                if !self.hello {
                    return Err(SessionError::Protocol("manifest before hello".into()));
                }
                let ours: HashMap<DocId, ([u8; 32], DocRef)> = node
                    .manifest()?
                    .into_iter()
                    .map(|e| (e.doc.id, (e.heads, e.doc)))
                    .collect();
                let mut theirs = HashSet::new();
                for (w, heads) in docs {
                    let r = DocRef::from_wire(&w).map_err(ReplicaError::from)?;
                    node.check_doc_ref(&r)?;
                    theirs.insert(r.id);
                    if ours.get(&r.id).map(|(h, _)| *h) != Some(heads) {
                        self.enqueue(r);
                    }
                }
                for (id, (_, r)) in ours {
                    if !theirs.contains(&id) {
                        self.enqueue(r);
                    }
                }
                self.manifest = true;
                self.fill(node, &mut out)?;
            }
            Frame::Sync { doc, msg, sigs } => {
                if !self.hello {
                    return Err(SessionError::Protocol("sync before hello".into()));
                }
                let r = DocRef::from_wire(&doc).map_err(ReplicaError::from)?;
                node.check_doc_ref(&r)?;
                if self.held_back.contains(&r.id) {
                    return Ok(out);
                }
                self.refs.insert(r.id, r.clone());
                let mut st = std::mem::take(self.state(node, r.id)?);
                let received = node.sync_receive(self.peer, &r, &mut st, &msg, &sigs);
                if matches!(received, Ok(Received::Deferred(_))) {
                    // Unapplied: the peer must send it again once we know its author.
                    st.request_resend();
                }
                self.states.insert(r.id, st);
                let received = match received {
                    Err(ReplicaError::Refused(refusal)) if refusal.is_relayed_by(self.peer) => {
                        tracing::warn!(peer = %self.peer, doc = %r.id, detail = %refusal.detail, "holding a document back: the peer relayed a revoked device's change");
                        self.refusals.push(refusal);
                        self.held_back.insert(r.id);
                        self.active.remove(&r.id);
                        self.fill(node, &mut out)?;
                        return Ok(out);
                    }
                    other => other?,
                };
                match received {
                    Received::Deferred(author) => {
                        tracing::debug!(doc = %r.id, %author, "set aside: a change by a device not in the roster yet");
                        self.active.remove(&r.id);
                        self.deferred.insert(r.id);
                        self.fill(node, &mut out)?;
                        return Ok(out);
                    }
                    Received::Changed if r.kind == kasir_crdt::DocKind::Store => {
                        // The roster may now name the authors set aside before.
                        for id in std::mem::take(&mut self.deferred) {
                            if let Some(d) = self.refs.get(&id).cloned() {
                                self.enqueue(d);
                            }
                        }
                    }
                    Received::Changed | Received::Unchanged => {}
                }
                match self.generate(node, &r)? {
                    Some(f) => {
                        self.active.insert(r.id);
                        out.push(f);
                    }
                    None => {
                        self.active.remove(&r.id);
                    }
                }
                self.fill(node, &mut out)?;
            }
            Frame::Bye { reason } => return Err(SessionError::Closed(reason)),
        }
        Ok(out)
    }

    fn enqueue(&mut self, r: DocRef) {
        if self.queued.insert(r.id) {
            self.pending.push_back(r.id);
        }
        self.refs.insert(r.id, r);
    }

    /// A document changed locally (or through another peer): offer it to this peer.
    pub fn local_change<R: SyncReplica + ?Sized>(
        &mut self,
        node: &mut R,
        doc: DocId,
    ) -> Result<Vec<Frame>, SessionError> {
        if !self.manifest {
            return Ok(Vec::new()); // the manifest exchange will cover it
        }
        let r = match self.refs.get(&doc) {
            Some(r) => r.clone(),
            None => match node.manifest()?.into_iter().find(|e| e.doc.id == doc) {
                Some(e) => {
                    self.refs.insert(doc, e.doc.clone());
                    e.doc
                }
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        if self.held_back.contains(&doc) {
            return Ok(out);
        }
        if let Some(f) = self.generate(node, &r)? {
            self.active.insert(doc);
            out.push(f);
        }
        Ok(out)
    }
}
