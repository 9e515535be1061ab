//! A hostile *member* of a store, for the trust tests: a device admitted with a real
//! invite that speaks the real sync protocol over real iroh connections, but writes,
//! signs and sends whatever the test tells it to — the changes an honest replica must
//! refuse (`kasir_sync::trust`). It accepts everything it is sent, checks nothing, and
//! keeps every signature it sees, so it can hold and pass on what honest peers hold.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::Endpoint;
use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::store::{Role, StoreDoc};
use kasir_crdt::sync::PeerState;
use kasir_crdt::{ActorId, DeviceId, Doc, DocError, DocId, DocKind, StoreId};
use kasir_sync::driver::{self, SessionEnd, SessionHost};
use kasir_sync::join::{JoinRequest, JoinResponse, request_join};
use kasir_sync::membership::Ticket;
use kasir_sync::trust::ChangeSig;
use kasir_sync::wire::MAX_SYNC_CHANGE_BYTES;
use kasir_sync::{
    DocRef, DocRefWithHeads, Frame, Identity, Membership, Received, ReplicaError, SYNC_ALPN,
    Session, SessionError, SyncMetrics, SyncReplica,
};
use tokio::sync::broadcast;

/// What a hostile device holds — documents and the signatures of their changes — and
/// how it forges: a replica that accepts everything and checks nothing. The fuzz target
/// drives one in memory; [`HostileMember`] serves one over iroh.
#[derive(Debug)]
pub struct Forger {
    store: StoreId,
    actor: ActorId,
    docs: BTreeMap<DocId, (DocRef, Doc)>,
    sigs: HashMap<[u8; 32], ChangeSig>,
}

fn genesis(store: StoreId, r: &DocRef, actor: ActorId) -> Result<Doc, DocError> {
    Ok(match r.kind {
        DocKind::Store => StoreDoc::create(store, actor)?.into_doc(),
        DocKind::Catalog => CatalogDoc::create(store, actor)?.into_doc(),
        DocKind::Ledger => {
            let (Some(till), Some(date)) = (r.till, r.date.clone()) else {
                return Err(DocError::Corrupt(
                    "a ledger reference without till or date".into(),
                ));
            };
            LedgerDoc::create(LedgerMeta { store, till, date }, actor)?.into_doc()
        }
    })
}

impl Forger {
    /// An empty forger in `store`, writing as `device` by default.
    pub fn new(store: StoreId, device: DeviceId) -> Forger {
        Forger {
            store,
            actor: kasir_crdt::author::device_actor(device, rand::random()),
            docs: BTreeMap::new(),
            sigs: HashMap::new(),
        }
    }

    /// Writes into `r` (created at its genesis if not held) with an actor of `author`:
    /// `write` gets the document and returns it changed; each change it made is given the
    /// signature `sign` returns for its hash (none, a right one or a wrong one). Returns
    /// how many changes it made.
    pub fn forge_as(
        &mut self,
        r: &DocRef,
        author: DeviceId,
        sign: impl Fn(&kasir_crdt::doc::ChangeHash) -> Option<ChangeSig>,
        write: impl FnOnce(Doc) -> Result<Doc, DocError>,
    ) -> Result<usize, DocError> {
        let actor = kasir_crdt::author::device_actor(author, rand::random());
        let doc = self.doc(r)?;
        let mut work = Doc::load(r.id, r.kind, [doc.save().as_slice()], actor)?;
        let before = work.heads();
        let mut work = write(work)?;
        let added = work.changes_after(&before);
        doc.merge(&mut work)?;
        for c in &added {
            if let Some(sig) = sign(&c.hash) {
                self.sigs.insert(sig.hash, sig);
            }
        }
        Ok(added.len())
    }

    /// Writes honestly into `r` (created at its genesis if not held) as this forger's
    /// own actor, in place, and signs every change it made with `signer` — what an
    /// honest till does, without [`Forger::forge_as`]'s copy of the whole document per
    /// write (the fleet simulation writes days of sales this way). Returns how many
    /// changes it made; a failed write leaves the document out (the caller gives up).
    pub fn write_signed(
        &mut self,
        r: &DocRef,
        signer: &Identity,
        write: impl FnOnce(Doc) -> Result<Doc, DocError>,
    ) -> Result<usize, DocError> {
        self.doc(r)?;
        let Some((held_ref, mut doc)) = self.docs.remove(&r.id) else {
            return Err(DocError::Corrupt("vanished".into()));
        };
        let before = doc.heads();
        let mut doc = write(doc)?;
        let added = doc.changes_after(&before);
        for c in &added {
            let sig = ChangeSig::sign(signer, &c.hash);
            self.sigs.insert(sig.hash, sig);
        }
        self.docs.insert(r.id, (held_ref, doc));
        Ok(added.len())
    }

    /// The reference of a document held, by id.
    pub fn doc_ref(&self, id: DocId) -> Option<DocRef> {
        self.docs.get(&id).map(|(r, _)| r.clone())
    }

    /// Every document held, with its reference.
    pub fn docs_mut(&mut self) -> impl Iterator<Item = (&DocRef, &mut Doc)> {
        self.docs.values_mut().map(|(r, d)| (&*r, d))
    }

    fn doc(&mut self, r: &DocRef) -> Result<&mut Doc, DocError> {
        if !self.docs.contains_key(&r.id) {
            let doc = genesis(self.store, r, self.actor.clone())?;
            self.docs.insert(r.id, (r.clone(), doc));
        }
        self.docs
            .get_mut(&r.id)
            .map(|(_, d)| d)
            .ok_or_else(|| DocError::Corrupt("vanished".into()))
    }
}

impl SyncReplica for Forger {
    fn store_id(&self) -> StoreId {
        self.store
    }

    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, ReplicaError> {
        Ok(self
            .docs
            .values_mut()
            .map(|(r, d)| DocRefWithHeads {
                doc: r.clone(),
                heads: d.heads_hash(),
            })
            .collect())
    }

    fn peer_state(&mut self, _: DeviceId, _: DocId) -> Result<PeerState, ReplicaError> {
        Ok(PeerState::new())
    }

    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<kasir_sync::replica::Outgoing>, ReplicaError> {
        let doc = self.doc(r).map_err(ReplicaError::storage)?;
        let Some((msg, carried)) =
            doc.generate_sync_message_with_hashes(state, MAX_SYNC_CHANGE_BYTES)
        else {
            return Ok(None);
        };
        let sigs = carried
            .iter()
            .filter_map(|h| self.sigs.get(&h.0).cloned())
            .collect();
        Ok(Some((msg, sigs)))
    }

    fn sync_receive(
        &mut self,
        _: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
        sigs: &[ChangeSig],
    ) -> Result<Received, ReplicaError> {
        self.sigs.extend(sigs.iter().map(|s| (s.hash, s.clone())));
        let doc = self.doc(r).map_err(ReplicaError::storage)?;
        let before = doc.heads_hash();
        doc.receive_sync_message(state, msg)
            .map_err(ReplicaError::BadMessage)?;
        Ok(if doc.heads_hash() == before {
            Received::Unchanged
        } else {
            Received::Changed
        })
    }
}

/// The hostile device as a session host: everyone is welcome, nothing is checked.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) held: Arc<Mutex<Forger>>,
    pub(crate) store: StoreId,
    pub(crate) changes: broadcast::Sender<DocId>,
}

fn poisoned() -> SessionError {
    SessionError::Protocol("the hostile replica's lock is poisoned".into())
}

impl SessionHost for Host {
    type Error = SessionError;

    fn store_id(&self) -> StoreId {
        self.store
    }

    async fn membership(&self, _: DeviceId) -> Result<Membership, SessionError> {
        Ok(Membership::Member(Role::Owner))
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<DocId>, SessionError> {
        Ok(self.changes.subscribe())
    }

    async fn start(&self, session: &mut Session) -> Result<Vec<Frame>, SessionError> {
        session.start(&mut *self.held.lock().map_err(|_| poisoned())?)
    }

    async fn handle(
        &self,
        session: &mut Session,
        frame: Frame,
    ) -> Result<Vec<Frame>, SessionError> {
        session.handle(&mut *self.held.lock().map_err(|_| poisoned())?, frame)
    }

    async fn local_change(
        &self,
        session: &mut Session,
        doc: DocId,
    ) -> Result<Vec<Frame>, SessionError> {
        session.local_change(&mut *self.held.lock().map_err(|_| poisoned())?, doc)
    }
}

/// A saved state of a [`HostileMember`], to forge from the same starting point again.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    docs: Vec<(DocRef, Vec<u8>)>,
    sigs: HashMap<[u8; 32], ChangeSig>,
}

/// A member of a store that forges changes (see the module).
#[derive(Debug)]
pub struct HostileMember {
    identity: Identity,
    endpoint: Endpoint,
    host: Host,
    metrics: SyncMetrics,
}

impl HostileMember {
    /// Joins the store of `ticket` (from `kasir invite`) with a fresh key, through the
    /// first member in it that answers.
    pub async fn join(ticket: &str) -> Result<HostileMember, String> {
        let ticket = Ticket::decode(ticket).map_err(|e| e.to_string())?;
        let identity = Identity::generate();
        let endpoint = kasir_sync::transport::bind_endpoint(
            identity.secret_bytes(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &[SYNC_ALPN],
        )
        .await
        .map_err(|e| e.to_string())?;
        let store = ticket.store_id();
        let mut refusals = Vec::new();
        for (member, addrs) in &ticket.members {
            let addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
            let request = JoinRequest {
                secret: ticket.secret,
                till_code: None,
                addrs: Vec::new(),
            };
            match request_join(&endpoint, DeviceId(*member), &addrs, &request).await {
                Ok(JoinResponse::Ok { .. }) => {
                    let held = Forger::new(store, identity.device_id());
                    return Ok(HostileMember {
                        identity,
                        endpoint,
                        host: Host {
                            held: Arc::new(Mutex::new(held)),
                            store,
                            changes: broadcast::channel(64).0,
                        },
                        metrics: SyncMetrics::default(),
                    });
                }
                Ok(JoinResponse::Refused(why)) => refusals.push(why),
                Err(e) => refusals.push(e.to_string()),
            }
        }
        Err(format!(
            "no member admitted the hostile device: {refusals:?}"
        ))
    }

    /// Its key.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Its device id (endpoint id).
    pub fn device_id(&self) -> DeviceId {
        self.identity.device_id()
    }

    /// The store.
    pub fn store_id(&self) -> StoreId {
        self.host.store
    }

    /// One sync session with `peer` at `addr` until the exchange is over: what it ended
    /// with, or the error (a refusing peer closes it with its reason).
    pub async fn sync_with(&self, peer: DeviceId, addr: SocketAddr) -> Result<SessionEnd, String> {
        driver::sync_once(
            &self.host,
            &self.endpoint,
            peer,
            &[addr],
            Duration::from_secs(30),
            &self.metrics,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// The reference of a document held, by id.
    pub fn doc_ref(&self, id: DocId) -> Option<DocRef> {
        let held = self.host.held.lock().ok()?;
        held.docs.get(&id).map(|(r, _)| r.clone())
    }

    /// Reads a copy of a document held.
    pub fn read(&self, r: &DocRef) -> Option<Doc> {
        let held = self.host.held.lock().ok()?;
        held.docs.get(&r.id).map(|(_, d)| d.fork_for_check())
    }

    /// The ledgers held of `till`.
    pub fn ledgers_of(&self, till: DeviceId) -> Vec<DocRef> {
        let Ok(held) = self.host.held.lock() else {
            return Vec::new();
        };
        held.docs
            .values()
            .filter(|(r, _)| r.kind == DocKind::Ledger && r.till == Some(till))
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Writes into `r` (created at its genesis if not held) as this device's actor:
    /// `write` gets the document and returns it changed; every change it made is signed
    /// by `signer` (this device's key for a well-signed forgery, another for a bad one).
    pub fn forge(
        &self,
        r: &DocRef,
        signer: &Identity,
        write: impl FnOnce(Doc) -> Result<Doc, DocError>,
    ) -> Result<usize, DocError> {
        let mut held = self
            .host
            .held
            .lock()
            .map_err(|_| DocError::Corrupt("poisoned".into()))?;
        held.forge_as(
            r,
            self.identity.device_id(),
            |hash| Some(ChangeSig::sign(signer, hash)),
            write,
        )
    }

    /// Saves what it holds now.
    pub fn checkpoint(&self) -> Result<Checkpoint, DocError> {
        let mut held = self
            .host
            .held
            .lock()
            .map_err(|_| DocError::Corrupt("poisoned".into()))?;
        let sigs = held.sigs.clone();
        let docs = held
            .docs
            .values_mut()
            .map(|(r, d)| (r.clone(), d.save()))
            .collect();
        Ok(Checkpoint { docs, sigs })
    }

    /// Goes back to a checkpoint (forgets every forgery since).
    pub fn restore(&self, checkpoint: &Checkpoint) -> Result<(), DocError> {
        let mut held = self
            .host
            .held
            .lock()
            .map_err(|_| DocError::Corrupt("poisoned".into()))?;
        let mut docs = BTreeMap::new();
        for (r, bytes) in &checkpoint.docs {
            let doc = Doc::load(r.id, r.kind, [bytes.as_slice()], held.actor.clone())?;
            docs.insert(r.id, (r.clone(), doc));
        }
        held.docs = docs;
        held.sigs = checkpoint.sigs.clone();
        Ok(())
    }

    /// Closes its endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}
