//! One sync session with one peer, as a state machine with no IO.
//!
//! The transport (iroh in `net`, an in-memory network in the simulation) feeds it
//! frames and local-change notifications and sends whatever frames it returns. It owns
//! the per-document Automerge sync states for this peer; the node persists them.
//!
//! Flow: both sides send `Hello` and `Manifest`. Documents whose heads differ (or that
//! one side lacks) are queued; at most [`MAX_ACTIVE`] are exchanged at a time. Each
//! received `Sync` is applied and answered until Automerge has nothing more to say for
//! that document. A local commit is offered to the peer at once.

use std::collections::{HashMap, HashSet, VecDeque};

use kasir_crdt::sync::PeerState;
use kasir_crdt::{BusinessDate, DeviceId, DocId, DocKind, StoreId};

use crate::error::NodeError;
use crate::node::Node;
use crate::replica::{DocRef, DocRefWithHeads};
use crate::sync::wire::{Frame, VERSION, WireDoc};

/// What a session needs from the replica it serves: a till's [`Node`] (SQLite) or the
/// relay's in-memory store replica (PostgreSQL).
///
/// **API Boundary:** the relay implements this; changing it changes both engines.
pub trait SyncReplica {
    /// The store this replica belongs to.
    fn store_id(&self) -> StoreId;
    /// Every document with its heads hash.
    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, NodeError>;
    /// Checks that a peer's reference names a document of this store.
    fn check_doc_ref(&self, r: &DocRef) -> Result<(), NodeError>;
    /// The remembered sync state with `peer` for `doc` (fresh if none).
    fn peer_state(&mut self, peer: DeviceId, doc: DocId) -> Result<PeerState, NodeError>;
    /// The next message for the peer about `r`, or `None` when it is up to date.
    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<Vec<u8>>, NodeError>;
    /// Applies a peer's message. Returns whether the document changed.
    fn sync_receive(
        &mut self,
        peer: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
    ) -> Result<bool, NodeError>;
}

impl SyncReplica for Node {
    fn store_id(&self) -> StoreId {
        Node::store_id(self)
    }
    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, NodeError> {
        Node::manifest(self)
    }
    fn check_doc_ref(&self, r: &DocRef) -> Result<(), NodeError> {
        Node::check_doc_ref(self, r)
    }
    fn peer_state(&mut self, peer: DeviceId, doc: DocId) -> Result<PeerState, NodeError> {
        Node::peer_state(self, peer, doc)
    }
    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        Node::sync_generate(self, r, state)
    }
    fn sync_receive(
        &mut self,
        peer: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
    ) -> Result<bool, NodeError> {
        Node::sync_receive(self, peer, r, state, msg)
    }
}

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
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

fn kind_to_wire(k: DocKind) -> u8 {
    match k {
        DocKind::Store => 0,
        DocKind::Catalog => 1,
        DocKind::Ledger => 2,
    }
}

/// Converts a node reference to its wire form.
pub fn to_wire(r: &DocRef) -> WireDoc {
    WireDoc {
        id: r.id.0,
        kind: kind_to_wire(r.kind),
        till: r.till.map(|t| t.0),
        date: r.date.as_ref().map(ToString::to_string),
    }
}

/// Converts a wire reference, rejecting malformed ones.
pub fn from_wire(w: &WireDoc) -> Result<DocRef, SessionError> {
    let kind = match w.kind {
        0 => DocKind::Store,
        1 => DocKind::Catalog,
        2 => DocKind::Ledger,
        k => return Err(SessionError::Protocol(format!("unknown document kind {k}"))),
    };
    let date = match &w.date {
        Some(d) => Some(
            d.parse::<BusinessDate>()
                .map_err(|e| SessionError::Protocol(e.to_string()))?,
        ),
        None => None,
    };
    Ok(DocRef {
        id: DocId(w.id),
        kind,
        till: w.till.map(DeviceId),
        date,
    })
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
        }
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
            .map(|e| (to_wire(&e.doc), e.heads))
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
        Ok(msg?.map(|msg| Frame::Sync {
            doc: to_wire(r),
            msg,
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
                    let r = from_wire(&w)?;
                    node.check_doc_ref(&r)
                        .map_err(|e| SessionError::Protocol(e.to_string()))?;
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
            Frame::Sync { doc, msg } => {
                if !self.hello {
                    return Err(SessionError::Protocol("sync before hello".into()));
                }
                let r = from_wire(&doc)?;
                node.check_doc_ref(&r)
                    .map_err(|e| SessionError::Protocol(e.to_string()))?;
                self.refs.insert(r.id, r.clone());
                let mut st = std::mem::take(self.state(node, r.id)?);
                let received = node.sync_receive(self.peer, &r, &mut st, &msg);
                self.states.insert(r.id, st);
                received.map_err(|e| match e {
                    NodeError::Corrupt(m) | NodeError::Invalid(m) => SessionError::Protocol(m),
                    other => SessionError::Node(other),
                })?;
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
            Frame::Bye { reason } => {
                return Err(SessionError::Protocol(format!("peer closed: {reason}")));
            }
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
        if let Some(f) = self.generate(node, &r)? {
            self.active.insert(doc);
            out.push(f);
        }
        Ok(out)
    }
}
