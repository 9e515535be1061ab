//! One store's documents in the relay's memory, serving the till sync protocol.
//!
//! Who owns what: a [`StoreReplica`] is owned by the relay's registry behind an async
//! mutex; every session of the store locks it to handle one frame. It holds the documents
//! (loaded from PostgreSQL chunks), and the writes a frame produced
//! ([`StoreReplica::take_pending`]) until the session has persisted them with
//! [`crate::materialise::persist`] — only then are the answering frames sent, so a till
//! never believes the relay holds changes that are not in PostgreSQL.
//!
//! Each replica writes with its own Automerge actor: the relay's device id with a nonce of
//! its own (`kasir_crdt::author`), so instances share the relay's endpoint id but never
//! an actor, and every change it writes is signed with the relay's key. What tills send
//! is checked by the trust rules (`kasir_sync::trust`) before it merges; the signatures
//! of every change held are kept in memory (to send them along) and in PostgreSQL.
//!
//! Memory follows activity, not history: a ledger of a closed business day that no
//! session touched for a while is *parked* ([`StoreReplica::park`]): the document and its
//! signatures leave memory, its heads and stored chunk hashes stay, so manifests still
//! list it and a till that is current costs nothing. The first session, poll or head-office
//! write that needs it again reads it back through the replica's [`DocSource`] (the
//! relay's PostgreSQL) before going on, so callers never see the difference.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::doc::ChangeHash;
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::records::Product;
use kasir_crdt::store::{Role, StoreDoc};
use kasir_crdt::sync::PeerState;
use kasir_crdt::{ActorId, BusinessDate, DeviceId, Doc, DocError, DocId, DocKind, StoreId};
use kasir_sync::doc_ref::DocRefError;
use kasir_sync::trust::{ChangeSig, Merge, MergeContext, WaitingSigs, receive_checked};
use kasir_sync::{
    DocRef, DocRefWithHeads, Identity, Membership, Received, ReplicaError, SyncReplica,
    check_doc_ref,
};
use uuid::Uuid;

use crate::db::Chunk;
use crate::materialise::DocWrite;

/// A document of the store, with the wrapper that reads its records.
#[derive(Debug)]
enum Held {
    Store(StoreDoc),
    Catalog(CatalogDoc),
    Ledger(LedgerDoc),
}

impl Held {
    fn doc(&mut self) -> &mut Doc {
        match self {
            Held::Store(s) => s.doc(),
            Held::Catalog(c) => c.doc(),
            Held::Ledger(l) => l.doc(),
        }
    }
}

/// A document as stored: its reference, chunk bytes and chunk hashes.
type StoredDoc = (DocRef, Vec<Vec<u8>>, Vec<[u8; 32]>);

/// A document kept out of memory: enough to list it in a manifest and to read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The document.
    pub doc: DocRef,
    /// Its heads when it left memory: its stored chunks hold exactly these changes.
    pub heads: Vec<ChangeHash>,
    /// The stored chunks that hold it.
    pub chunks: Vec<[u8; 32]>,
    /// Set when a chunk another instance stored for it could not be read back: its heads
    /// are no longer known, so manifests list it as differing from every peer's (a peer
    /// then asks for it, and it is read back then).
    pub stale: bool,
}

/// Where a replica reads a parked document back from (the relay: PostgreSQL). Called
/// from the replica's synchronous methods, so an implementation over async IO blocks in
/// place.
pub trait DocSource: Send + Sync + std::fmt::Debug {
    /// Every stored chunk of `doc`.
    fn chunks(&self, store: StoreId, doc: DocId) -> Result<Vec<Chunk>, ReplicaError>;
    /// The stored signatures of these changes.
    fn sigs(&self, store: StoreId, hashes: &[[u8; 32]]) -> Result<Vec<ChangeSig>, ReplicaError>;
}

/// One store served by the relay.
#[derive(Debug)]
pub struct StoreReplica {
    store: StoreId,
    tenant: Uuid,
    adopted_by: Option<DeviceId>,
    signer: Identity,
    actor: ActorId,
    docs: BTreeMap<DocId, (DocRef, Held)>,
    /// Documents out of memory (see the module note); never also in `docs`.
    parked: BTreeMap<DocId, Parked>,
    /// When each document in `docs` was last read or written.
    touched: HashMap<DocId, Instant>,
    /// Reads parked documents back; without one nothing is parked.
    source: Option<Arc<dyn DocSource>>,
    /// Documents read back since the replica was made.
    unparked: u64,
    /// The signature of every change held, by change hash.
    sigs: HashMap<[u8; 32], ChangeSig>,
    /// Signatures of changes Automerge holds back until their predecessors come.
    waiting_sigs: WaitingSigs,
    pending: Vec<DocWrite>,
    seen_chunks: HashSet<[u8; 32]>,
    /// The stored chunks each document holds (what a snapshot of it would replace).
    chunk_hashes: HashMap<DocId, Vec<[u8; 32]>>,
    last_seq: i64,
    changes: tokio::sync::broadcast::Sender<DocId>,
    /// Set when a persist failed: this replica may hold changes PostgreSQL doesn't, so
    /// nothing may be answered, persisted or compacted from it again.
    poisoned: bool,
}

fn storage(e: DocError) -> ReplicaError {
    ReplicaError::storage(e)
}

impl StoreReplica {
    /// An empty replica of `store` (documents arrive from chunks or from tills) that
    /// writes as `signer` (the relay).
    pub fn new(
        store: StoreId,
        tenant: Uuid,
        adopted_by: Option<DeviceId>,
        signer: Identity,
    ) -> StoreReplica {
        StoreReplica {
            store,
            tenant,
            adopted_by,
            actor: kasir_crdt::author::device_actor(signer.device_id(), rand::random()),
            signer,
            docs: BTreeMap::new(),
            parked: BTreeMap::new(),
            touched: HashMap::new(),
            source: None,
            unparked: 0,
            sigs: HashMap::new(),
            waiting_sigs: WaitingSigs::default(),
            pending: Vec::new(),
            seen_chunks: HashSet::new(),
            chunk_hashes: HashMap::new(),
            last_seq: 0,
            changes: tokio::sync::broadcast::channel(1024).0,
            poisoned: false,
        }
    }

    /// Builds the replica from every stored chunk. A document whose chunks do not load
    /// is skipped with a warning: the tills hold the truth and will send it again.
    pub fn load(
        store: StoreId,
        tenant: Uuid,
        adopted_by: Option<DeviceId>,
        signer: Identity,
        chunks: Vec<Chunk>,
        sigs: Vec<ChangeSig>,
    ) -> StoreReplica {
        let mut r = StoreReplica::new(store, tenant, adopted_by, signer);
        r.add_sigs(sigs);
        let mut by_doc: BTreeMap<DocId, StoredDoc> = BTreeMap::new();
        for c in chunks {
            r.last_seq = r.last_seq.max(c.seq);
            r.seen_chunks.insert(c.hash);
            let entry = by_doc
                .entry(c.doc.id)
                .or_insert_with(|| (c.doc.clone(), Vec::new(), Vec::new()));
            entry.1.push(c.bytes);
            entry.2.push(c.hash);
        }
        for (id, (doc_ref, chunks, hashes)) in by_doc {
            if check_doc_ref(store, &doc_ref).is_err() {
                tracing::warn!(%store, doc = %id, "skipping a stored document of another store");
                continue;
            }
            let loaded = Doc::load(
                id,
                doc_ref.kind,
                chunks.iter().map(Vec::as_slice),
                r.actor.clone(),
            )
            .map_err(storage)
            .and_then(|doc| wrap(&doc_ref, doc));
            match loaded {
                Ok(held) => {
                    r.docs.insert(id, (doc_ref, held));
                    // Only chunks of a loaded document may ever be replaced by its snapshot.
                    r.chunk_hashes.insert(id, hashes);
                }
                Err(e) => {
                    tracing::warn!(%store, doc = %id, error = %e, "skipping a stored document that does not load");
                }
            }
        }
        let now = Instant::now();
        r.touched = r.docs.keys().map(|id| (*id, now)).collect();
        r
    }

    /// Reads parked documents back from `source`; a replica without one parks nothing.
    pub fn with_source(mut self, source: Arc<dyn DocSource>) -> StoreReplica {
        self.source = Some(source);
        self
    }

    /// Lists documents that are stored but kept out of memory (parked by an earlier
    /// load of the store, with the highest sequence number of their chunks), so they
    /// are served without being loaded.
    pub fn add_parked(&mut self, parked: impl IntoIterator<Item = (Parked, i64)>) {
        for (p, seq) in parked {
            if check_doc_ref(self.store, &p.doc).is_err() || self.docs.contains_key(&p.doc.id) {
                continue;
            }
            self.last_seq = self.last_seq.max(seq);
            self.seen_chunks.extend(p.chunks.iter().copied());
            self.chunk_hashes.insert(p.doc.id, p.chunks.clone());
            self.parked.insert(p.doc.id, p);
        }
    }

    /// Ledgers of days before `today` that nothing touched for `idle`, oldest first: what
    /// [`StoreReplica::park`] may take out of memory. None without a [`DocSource`].
    pub fn park_candidates(&mut self, today: &BusinessDate, idle: Duration) -> Vec<DocId> {
        if self.source.is_none() {
            return Vec::new();
        }
        let now = Instant::now();
        let mut out: Vec<(Instant, DocId)> = self
            .docs
            .iter()
            .filter(|(_, (r, _))| {
                r.kind == DocKind::Ledger && r.date.as_ref().is_some_and(|d| d < today)
            })
            .filter_map(|(id, _)| {
                let at = self.touched.get(id).copied().unwrap_or(now);
                (now.duration_since(at) >= idle).then_some((at, *id))
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, id)| id).collect()
    }

    /// Takes a ledger out of memory with its signatures, keeping what lists it in a
    /// manifest. `None` (nothing done) for a document that is not a loaded ledger, that
    /// holds changes waiting for a predecessor, that has no stored chunks, or when the
    /// replica has no [`DocSource`] to read it back from.
    pub fn park(&mut self, id: DocId) -> Option<Parked> {
        self.source.as_ref()?;
        let chunks = self
            .chunk_hashes
            .get(&id)
            .filter(|c| !c.is_empty())?
            .clone();
        let (r, held) = self.docs.get_mut(&id)?;
        if r.kind != DocKind::Ledger {
            return None;
        }
        let doc = held.doc();
        if doc.has_waiting_changes() {
            return None;
        }
        let heads = doc.heads();
        for change in doc.changes_after(&[]) {
            self.sigs.remove(&change.hash.0);
        }
        let (r, _) = self.docs.remove(&id)?;
        self.touched.remove(&id);
        let parked = Parked {
            doc: r,
            heads,
            chunks,
            stale: false,
        };
        self.parked.insert(id, parked.clone());
        Some(parked)
    }

    /// Reads a parked document back into memory with its signatures (a no-op for one in
    /// memory). On failure it stays parked.
    pub fn unpark(&mut self, id: DocId) -> Result<(), ReplicaError> {
        let Some(p) = self.parked.get(&id) else {
            return Ok(());
        };
        let Some(source) = self.source.clone() else {
            return Err(ReplicaError::storage(UnparkError::NoSource(id)));
        };
        let chunks = source.chunks(self.store, id)?;
        if chunks.is_empty() {
            return Err(ReplicaError::storage(UnparkError::NoChunks(id)));
        }
        let doc = Doc::load(
            id,
            p.doc.kind,
            chunks.iter().map(|c| c.bytes.as_slice()),
            self.actor.clone(),
        )
        .map_err(storage)?;
        let mut held = wrap(&p.doc, doc)?;
        let hashes: Vec<[u8; 32]> = held
            .doc()
            .changes_after(&[])
            .into_iter()
            .map(|c| c.hash.0)
            .collect();
        let sigs = source.sigs(self.store, &hashes)?;
        let Some(p) = self.parked.remove(&id) else {
            return Ok(());
        };
        self.add_sigs(sigs);
        for c in &chunks {
            self.seen_chunks.insert(c.hash);
            self.last_seq = self.last_seq.max(c.seq);
        }
        self.chunk_hashes
            .insert(id, chunks.iter().map(|c| c.hash).collect());
        self.docs.insert(id, (p.doc, held));
        self.touched.insert(id, Instant::now());
        self.unparked += 1;
        Ok(())
    }

    /// The hashes of the changes in memory whose signatures the replica lacks (after a
    /// load that read signatures only for what it loaded).
    pub fn unsigned_changes(&mut self) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for (_, held) in self.docs.values_mut() {
            out.extend(
                held.doc()
                    .changes_after(&[])
                    .into_iter()
                    .map(|c| c.hash.0)
                    .filter(|h| !self.sigs.contains_key(h)),
            );
        }
        out
    }

    /// How many stored chunks hold `doc`, as far as this replica knows.
    pub fn chunk_count(&self, doc: DocId) -> usize {
        self.chunk_hashes.get(&doc).map_or(0, Vec::len)
    }

    /// Documents out of memory now.
    pub fn parked_count(&self) -> usize {
        self.parked.len()
    }

    /// Documents read back from storage since the replica was made.
    pub fn unparked_count(&self) -> u64 {
        self.unparked
    }

    /// Every record the replica's documents hold, as writes that store no chunk: what a
    /// rebuild of the store's tables materialises again ([`crate::materialise::rebuild`]).
    /// For a replica loaded whole ([`StoreReplica::load`], nothing parked).
    pub fn all_records(&mut self) -> Vec<DocWrite> {
        debug_assert!(
            self.parked.is_empty(),
            "all_records of a replica with parked documents"
        );
        self.docs
            .values_mut()
            .filter_map(|(r, held)| {
                let (records, products, authors) = match held {
                    Held::Ledger(l) => (l.records_since(&[]), Vec::new(), Vec::new()),
                    Held::Catalog(c) => {
                        let products: Vec<Product> =
                            c.products_since(&[]).into_iter().flatten().collect();
                        let authors = products.iter().map(|p| authors_of(c, &p.id)).collect();
                        (Default::default(), products, authors)
                    }
                    Held::Store(_) => return None,
                };
                Some(DocWrite {
                    doc: r.clone(),
                    bytes: Vec::new(),
                    records,
                    products,
                    authors,
                    sigs: Vec::new(),
                })
            })
            .collect()
    }

    /// What `device` wrote into the store's documents (per actor, the last sequence
    /// number held): the history a revocation by the relay vouches for (see
    /// `kasir_sync::trust`). Parked ledgers of the device are read back first.
    pub fn device_history(
        &mut self,
        device: DeviceId,
    ) -> Result<BTreeMap<String, u64>, ReplicaError> {
        let theirs: Vec<DocId> = self
            .parked
            .values()
            .filter(|p| p.doc.kind != DocKind::Ledger || p.doc.till == Some(device))
            .map(|p| p.doc.id)
            .collect();
        for id in theirs {
            self.unpark(id)?;
        }
        let mut history = BTreeMap::new();
        for (r, held) in self.docs.values_mut() {
            if r.kind == DocKind::Ledger && r.till != Some(device) {
                continue; // a ledger holds its own till's changes only
            }
            kasir_crdt::doc::merge_history(&mut history, held.doc().device_history(device));
        }
        Ok(history)
    }

    /// Keeps signatures of changes (stored, or of changes other instances merged).
    pub fn add_sigs(&mut self, sigs: impl IntoIterator<Item = ChangeSig>) {
        self.sigs.extend(sigs.into_iter().map(|s| (s.hash, s)));
    }

    /// The hashes of the changes after `before` in `doc` (to fetch the signatures of
    /// what another instance merged).
    pub fn changes_after(
        &mut self,
        doc: DocId,
        before: &[kasir_crdt::doc::ChangeHash],
    ) -> Vec<[u8; 32]> {
        match self.docs.get_mut(&doc) {
            Some((_, held)) => held
                .doc()
                .changes_after(before)
                .into_iter()
                .map(|c| c.hash.0)
                .filter(|h| !self.sigs.contains_key(h))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Adoption signatures by the relay for every held change written before signatures
    /// (an actor not bound to a device) that has none yet; kept here and returned to
    /// store. See `kasir_sync::trust` on adopted history. For a replica loaded whole.
    pub fn adopt_unsigned(&mut self) -> Vec<ChangeSig> {
        debug_assert!(
            self.parked.is_empty(),
            "adopt_unsigned of a replica with parked documents"
        );
        let mut adopted = Vec::new();
        for (_, held) in self.docs.values_mut() {
            for change in held.doc().changes_after(&[]) {
                if kasir_crdt::author::actor_device(&change.actor).is_none()
                    && !self.sigs.contains_key(&change.hash.0)
                {
                    adopted.push(ChangeSig::sign(&self.signer, &change.hash));
                }
            }
        }
        self.add_sigs(adopted.iter().cloned());
        adopted
    }

    /// Marks the replica unusable (see the field).
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Whether a persist failed on it.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The store.
    pub fn store(&self) -> StoreId {
        self.store
    }

    /// Its tenant.
    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// The highest chunk sequence number merged so far.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Documents in memory (parked ones not counted: [`StoreReplica::parked_count`]).
    pub fn doc_count(&self) -> usize {
        self.docs.len()
    }

    /// Subscribes to documents that changed (merged from a till or another instance).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<DocId> {
        self.changes.subscribe()
    }

    /// Tells every session of the store that `docs` changed.
    pub fn notify(&self, docs: impl IntoIterator<Item = DocId>) {
        for d in docs {
            let _ = self.changes.send(d);
        }
    }

    /// The device's standing. Before the relay holds the roster of an adopted store, the
    /// till that presented the adoption ticket is let in to hand it over.
    pub fn membership(&self, device: DeviceId) -> Membership {
        let roster = self
            .docs
            .get(&DocId::store(self.store))
            .and_then(|(_, h)| match h {
                Held::Store(s) => Some(s),
                _ => None,
            });
        match roster.map(|s| s.device(device)) {
            Some(Ok(Some(d))) if d.revoked => Membership::Revoked,
            Some(Ok(Some(d))) => Membership::Member(d.role),
            _ if self.adopted_by == Some(device) && self.roster_is_empty() => {
                Membership::Member(Role::Owner)
            }
            _ => Membership::Unknown,
        }
    }

    /// The roster entry of `device`, if the relay holds one.
    pub fn roster_entry(&self, device: DeviceId) -> Option<kasir_crdt::store::Device> {
        match self.docs.get(&DocId::store(self.store)) {
            Some((_, Held::Store(s))) => s.device(device).ok().flatten(),
            _ => None,
        }
    }

    /// Whether the relay holds no roster yet (an adopted store before its handover).
    fn roster_is_empty(&self) -> bool {
        match self.docs.get(&DocId::store(self.store)) {
            Some((_, Held::Store(s))) => s.devices().is_empty(),
            _ => true,
        }
    }

    /// Whether the relay would start a document for `r` on its own initiative: not for a
    /// ledger of a device outside the roster (a member listing made-up tills must not make
    /// the relay keep, and pass on, empty ledgers). Before an adoption's handover every
    /// ledger is welcome. A peer that *sends* changes of a ledger is always heard.
    fn would_start(&self, r: &DocRef) -> bool {
        match (r.kind, r.till) {
            (DocKind::Ledger, Some(till)) => {
                self.holds(r.id)
                    || self.roster_is_empty()
                    || !matches!(self.membership(till), Membership::Unknown)
            }
            _ => true,
        }
    }

    /// The store document, created at its genesis if the relay has none yet.
    pub fn store_doc(&mut self) -> Result<&mut StoreDoc, ReplicaError> {
        let id = DocId::store(self.store);
        if !self.docs.contains_key(&id) {
            let doc = StoreDoc::create(self.store, self.actor.clone()).map_err(storage)?;
            self.docs
                .insert(id, (DocRef::store(self.store), Held::Store(doc)));
        }
        match self.docs.get_mut(&id) {
            Some((_, Held::Store(s))) => Ok(s),
            _ => Err(ReplicaError::Foreign(DocRefError::Malformed(
                id.to_string(),
            ))),
        }
    }

    /// Queues the store document's unsaved changes (after a local write such as an
    /// admission) for persisting.
    pub fn queue_store_write(&mut self) -> Result<(), ReplicaError> {
        let signer = self.signer.clone();
        let store = self.store_doc()?;
        let sigs = ChangeSig::sign_own(&signer, &store.doc().unsaved_changes());
        let bytes = store.doc().save_incremental();
        if !bytes.is_empty() {
            self.add_sigs(sigs.clone());
            self.pending.push(DocWrite {
                doc: DocRef::store(self.store),
                bytes,
                records: Default::default(),
                products: Vec::new(),
                authors: Vec::new(),
                sigs,
            });
        }
        Ok(())
    }

    /// The catalog's product with `sku`, if the relay holds one.
    pub fn product(&self, sku: &str) -> Result<Option<Product>, ReplicaError> {
        let id = kasir_crdt::ids::product_id(self.store, sku);
        match self.docs.get(&DocId::catalog(self.store)) {
            Some((_, Held::Catalog(c))) => c.product(&id).map_err(storage),
            _ => Ok(None),
        }
    }

    /// Writes the fields of `product` that differ into the catalog as the relay (head
    /// office), signs the change and queues it for persisting. Whether anything changed.
    pub fn write_product(&mut self, product: &Product) -> Result<bool, ReplicaError> {
        let signer = self.signer.clone();
        let r = DocRef::catalog(self.store);
        let Held::Catalog(catalog) = self.held(&r)? else {
            return Err(DocRefError::Malformed(r.id.to_string()).into());
        };
        if !catalog.upsert_product(product).map_err(storage)? {
            return Ok(false);
        }
        // Materialised as the document now holds it (merged with what tills wrote).
        let held = catalog
            .product(&product.id)
            .map_err(storage)?
            .unwrap_or_else(|| product.clone());
        let authors = vec![authors_of(catalog, &held.id)];
        let sigs = ChangeSig::sign_own(&signer, &catalog.doc().unsaved_changes());
        let bytes = catalog.doc().save_incremental();
        self.add_sigs(sigs.clone());
        self.pending.push(DocWrite {
            doc: r,
            bytes,
            records: Default::default(),
            authors,
            products: vec![held],
            sigs,
        });
        Ok(true)
    }

    /// The writes produced since the last call, to persist before answering.
    pub fn take_pending(&mut self) -> Vec<DocWrite> {
        std::mem::take(&mut self.pending)
    }

    /// Merges chunks another instance stored (skipping ones already seen). Returns the
    /// documents that changed and the hashes of the merged changes whose signatures this
    /// replica does not hold yet (the instance that stored them stored those too).
    pub fn merge_chunks(&mut self, chunks: Vec<Chunk>) -> (Vec<DocId>, Vec<[u8; 32]>) {
        let mut changed = Vec::new();
        let mut unsigned = Vec::new();
        for c in chunks {
            self.last_seq = self.last_seq.max(c.seq);
            if !self.seen_chunks.insert(c.hash) || check_doc_ref(self.store, &c.doc).is_err() {
                continue;
            }
            // A parked document is read back (its stored chunks include this one): its
            // heads before are the parked ones.
            let parked_heads = self.parked.get(&c.doc.id).map(|p| p.heads.clone());
            let held = match self.held(&c.doc) {
                Ok(held) => held,
                Err(e) => {
                    if let Some(p) = self.parked.get_mut(&c.doc.id) {
                        tracing::warn!(doc = %c.doc.id, error = %e, "reading back a parked document failed");
                        p.stale = true;
                        p.chunks.push(c.hash);
                    }
                    continue;
                }
            };
            let doc = held.doc();
            let before = parked_heads.unwrap_or_else(|| doc.heads());
            if let Err(e) = doc.merge_bytes(&c.bytes) {
                tracing::warn!(doc = %c.doc.id, error = %e, "skipping a stored chunk that does not merge");
                continue;
            }
            // Already in PostgreSQL: don't save these changes again as our own chunk.
            let _ = doc.save_incremental();
            if doc.heads() != before {
                changed.push(c.doc.id);
                unsigned.extend(
                    doc.changes_after(&before)
                        .into_iter()
                        .map(|c| c.hash.0)
                        .filter(|h| !self.sigs.contains_key(h)),
                );
            }
            // A document read back above already lists this chunk.
            let hashes = self.chunk_hashes.entry(c.doc.id).or_default();
            if !hashes.contains(&c.hash) {
                hashes.push(c.hash);
            }
        }
        (changed, unsigned)
    }

    /// Records chunk hashes this instance wrote, so polling does not merge them again.
    pub fn mark_written(&mut self, writes: &[DocWrite]) {
        for w in writes {
            let hash = *blake3::hash(&w.bytes).as_bytes();
            self.seen_chunks.insert(hash);
            self.chunk_hashes.entry(w.doc.id).or_default().push(hash);
        }
    }

    /// Whether a stored chunk was merged (or written) here already.
    pub fn has_seen(&self, hash: &[u8; 32]) -> bool {
        self.seen_chunks.contains(hash)
    }

    /// Moves the polling cursor forward.
    pub fn advance_seq(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// Documents in memory stored in more than `limit` chunks.
    pub fn compaction_candidates(&self, limit: usize) -> Vec<DocId> {
        self.chunk_hashes
            .iter()
            .filter(|(id, h)| h.len() > limit && self.docs.contains_key(id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// A snapshot of `doc` and the stored chunks it replaces; `None` while the document
    /// holds changes back for a missing predecessor: a save leaves them out, so the
    /// chunks that carry them must stay.
    pub fn snapshot(&mut self, doc: DocId) -> Option<(DocRef, Vec<u8>, Vec<[u8; 32]>)> {
        let covered = self.chunk_hashes.get(&doc)?.clone();
        let (r, held) = self.docs.get_mut(&doc)?;
        if held.doc().has_waiting_changes() {
            return None;
        }
        Some((r.clone(), held.doc().save(), covered))
    }

    /// Records that `snapshot` replaced `covered` in storage.
    pub fn compacted(&mut self, doc: DocId, snapshot: [u8; 32], covered: &[[u8; 32]]) {
        self.seen_chunks.insert(snapshot);
        let hashes = self.chunk_hashes.entry(doc).or_default();
        hashes.retain(|h| !covered.contains(h));
        hashes.push(snapshot);
    }

    /// Whether the replica holds `id`, in memory or parked.
    fn holds(&self, id: DocId) -> bool {
        self.docs.contains_key(&id) || self.parked.contains_key(&id)
    }

    /// The document `r` names, read back if parked, at its genesis if new.
    fn held(&mut self, r: &DocRef) -> Result<&mut Held, ReplicaError> {
        self.unpark(r.id)?;
        self.touched.insert(r.id, Instant::now());
        if !self.docs.contains_key(&r.id) {
            let held = new_held(self.store, &self.actor, r)?;
            self.docs.insert(r.id, (r.clone(), held));
        }
        self.docs
            .get_mut(&r.id)
            .map(|(_, h)| h)
            .ok_or_else(|| DocRefError::Malformed(r.id.to_string()).into())
    }
}

/// Who wrote the current price and name of product `id` (after concurrent edits: who
/// won), as device ids.
fn authors_of(catalog: &CatalogDoc, id: &str) -> crate::materialise::ProductAuthors {
    let by = |field| catalog.field_author(id, field).map(|d| d.to_string());
    crate::materialise::ProductAuthors {
        price_by: by("price"),
        name_by: by("name"),
    }
}

/// A document of `store` at its genesis, for a reference a peer named.
fn new_held(store: StoreId, actor: &ActorId, r: &DocRef) -> Result<Held, ReplicaError> {
    Ok(match r.kind {
        DocKind::Store => Held::Store(StoreDoc::create(store, actor.clone()).map_err(storage)?),
        DocKind::Catalog => {
            Held::Catalog(CatalogDoc::create(store, actor.clone()).map_err(storage)?)
        }
        DocKind::Ledger => {
            let (Some(till), Some(date)) = (r.till, r.date.clone()) else {
                return Err(DocRefError::Malformed(r.id.to_string()).into());
            };
            Held::Ledger(
                LedgerDoc::create(LedgerMeta { store, till, date }, actor.clone())
                    .map_err(storage)?,
            )
        }
    })
}

/// Why a parked document could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnparkError {
    /// The replica has no [`DocSource`] (a replica never parks without one).
    #[error("document {0} is parked and the replica has no source to read it from")]
    NoSource(DocId),
    /// Storage holds no chunk of a document listed as parked.
    #[error("no stored chunk of parked document {0}")]
    NoChunks(DocId),
}

fn wrap(r: &DocRef, doc: Doc) -> Result<Held, ReplicaError> {
    Ok(match r.kind {
        DocKind::Store => Held::Store(StoreDoc::from_doc(doc).map_err(storage)?),
        DocKind::Catalog => Held::Catalog(CatalogDoc::from_doc(doc).map_err(storage)?),
        DocKind::Ledger => Held::Ledger(LedgerDoc::from_doc(doc).map_err(storage)?),
    })
}

impl SyncReplica for StoreReplica {
    fn store_id(&self) -> StoreId {
        self.store
    }

    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, ReplicaError> {
        let parked = self.parked.values().map(|p| DocRefWithHeads {
            doc: p.doc.clone(),
            // Stale heads differ from every peer's: a peer that holds the document asks.
            heads: if p.stale {
                [0xff; 32]
            } else {
                kasir_crdt::doc::heads_hash_of(&p.heads)
            },
        });
        let mut out: Vec<DocRefWithHeads> = self
            .docs
            .values_mut()
            .map(|(r, h)| DocRefWithHeads {
                doc: r.clone(),
                heads: h.doc().heads_hash(),
            })
            .collect();
        out.extend(parked);
        Ok(out)
    }

    fn peer_state(&mut self, _peer: DeviceId, _doc: DocId) -> Result<PeerState, ReplicaError> {
        // Sessions keep their states for their lifetime; a reconnect costs one Bloom
        // filter exchange per document that differs (the manifest skips equal ones).
        Ok(PeerState::new())
    }

    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<kasir_sync::replica::Outgoing>, ReplicaError> {
        check_doc_ref(self.store, r)?;
        if !self.would_start(r) {
            return Ok(None);
        }
        if !self.holds(r.id) {
            // A document the peer named that this replica lacks: ask for it from a
            // genesis that is not kept; the document exists here only once changes of
            // it merge (`sync_receive`), so naming documents creates none.
            let mut genesis = new_held(self.store, &self.actor, r)?;
            return Ok(genesis
                .doc()
                .generate_sync_message_with_hashes(state, kasir_sync::wire::MAX_SYNC_CHANGE_BYTES)
                .map(|(msg, _)| (msg, Vec::new())));
        }
        let Some((msg, carried)) = self
            .held(r)?
            .doc()
            .generate_sync_message_with_hashes(state, kasir_sync::wire::MAX_SYNC_CHANGE_BYTES)
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
        peer: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
        sigs: &[ChangeSig],
    ) -> Result<Received, ReplicaError> {
        check_doc_ref(self.store, r)?;
        // Whether this message would create the document; a parked one is read back.
        let unborn = !self.holds(r.id);
        self.unpark(r.id)?;
        self.touched.insert(r.id, Instant::now());
        // The roster the rules check against (a copy: the merge borrows the document).
        let roster = match r.kind {
            DocKind::Store => None,
            _ => Some(match self.docs.get(&DocId::store(self.store)) {
                Some((_, Held::Store(s))) => s.doc_ref().fork_for_check(),
                _ => StoreDoc::create(self.store, self.actor.clone())
                    .map_err(storage)?
                    .doc()
                    .fork_for_check(),
            }),
        };
        let frame: HashMap<[u8; 32], &ChangeSig> = sigs.iter().map(|s| (s.hash, s)).collect();
        let held_sigs = &self.sigs;
        let waiting = &self.waiting_sigs;
        let lookup = |hash: &kasir_crdt::doc::ChangeHash| {
            frame
                .get(&hash.0)
                .map(|s| (*s).clone())
                .or_else(|| held_sigs.get(&hash.0).cloned())
                .or_else(|| waiting.get(hash))
        };
        let ctx = MergeContext {
            kind: r.kind,
            till: r.till,
            roster: roster.as_ref().map(kasir_crdt::store::StoreView::of),
            date: r.date.as_ref(),
            now_ms: kasir_sync::now_ms(),
            sig: &lookup,
        };
        let store = self.store;
        // A document this message would create exists only if its changes merge: a
        // refused (or set-aside) first message leaves no empty document behind to
        // offer to tills
        let held = match self.docs.get_mut(&r.id) {
            Some((_, h)) => h,
            None => {
                let h = new_held(store, &self.actor, r)?;
                self.docs.insert(r.id, (r.clone(), h));
                match self.docs.get_mut(&r.id) {
                    Some((_, h)) => h,
                    None => return Err(DocRefError::Malformed(r.id.to_string()).into()),
                }
            }
        };
        let doc = held.doc();
        let before = doc.heads();
        let received = receive_checked(doc, state, msg, &ctx);
        if let Ok(Merge::Applied { sigs: merged, .. }) = &received {
            self.waiting_sigs.after_merge(doc, sigs, merged);
        }
        // Changes held back for a predecessor keep a new document: dropping them would
        // drop the request for that predecessor too, and a Bloom filter that wrongly
        // claims it (the same filter every round) would keep it from ever being sent.
        let waiting = matches!(received, Ok(Merge::Applied { .. })) && doc.has_waiting_changes();
        let accepted = match received {
            Ok(Merge::Applied {
                changed: true,
                sigs,
            }) => sigs,
            other => {
                if unborn && !waiting {
                    self.docs.remove(&r.id);
                    self.touched.remove(&r.id);
                }
                return match other {
                    Ok(Merge::Deferred(author)) => Ok(Received::Deferred(author)),
                    Ok(Merge::Refused(refusal)) => {
                        tracing::warn!(%peer, doc = %r.id, reason = refusal.reason.as_str(), detail = %refusal.detail, "refused a till's changes");
                        Err(ReplicaError::Refused(refusal))
                    }
                    Ok(Merge::Applied { .. }) => Ok(Received::Unchanged),
                    Err(e) => Err(ReplicaError::BadMessage(e)),
                };
            }
        };
        let bytes = doc.save_incremental();
        let (records, products, authors) = match held {
            Held::Ledger(l) => (l.records_since(&before), Vec::new(), Vec::new()),
            Held::Catalog(c) => {
                let products: Vec<Product> =
                    c.products_since(&before).into_iter().flatten().collect();
                let authors = products.iter().map(|p| authors_of(c, &p.id)).collect();
                (Default::default(), products, authors)
            }
            Held::Store(_) => (Default::default(), Vec::new(), Vec::new()),
        };
        self.add_sigs(accepted.iter().cloned());
        self.pending.push(DocWrite {
            doc: r.clone(),
            bytes,
            records,
            products,
            authors,
            sigs: accepted,
        });
        Ok(Received::Changed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};

    use super::*;

    /// Chunks kept in memory: what PostgreSQL is to the relay.
    #[derive(Debug, Default)]
    struct Stored {
        chunks: Mutex<Vec<Chunk>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl DocSource for Stored {
        fn chunks(&self, _: StoreId, doc: DocId) -> Result<Vec<Chunk>, ReplicaError> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let chunks = self.chunks.lock().expect("lock");
            Ok(chunks.iter().filter(|c| c.doc.id == doc).cloned().collect())
        }

        fn sigs(&self, _: StoreId, _: &[[u8; 32]]) -> Result<Vec<ChangeSig>, ReplicaError> {
            Ok(Vec::new())
        }
    }

    fn chunk(doc: &DocRef, bytes: Vec<u8>, seq: i64) -> Chunk {
        Chunk {
            doc: doc.clone(),
            hash: *blake3::hash(&bytes).as_bytes(),
            seq,
            bytes,
        }
    }

    fn ledger(store: StoreId, till: DeviceId, date: &str) -> (DocRef, LedgerDoc) {
        let date: BusinessDate = date.parse().expect("date");
        let meta = LedgerMeta {
            store,
            till,
            date: date.clone(),
        };
        let actor = kasir_crdt::author::device_actor(till, rand::random());
        (
            DocRef::ledger(store, till, date),
            LedgerDoc::create(meta, actor).expect("ledger"),
        )
    }

    /// A replica of `store` loaded from `stored`, with no signatures.
    fn loaded(store: StoreId, stored: Vec<Chunk>) -> StoreReplica {
        StoreReplica::load(
            store,
            Uuid::new_v4(),
            None,
            Identity::generate(),
            stored,
            Vec::new(),
        )
    }

    #[test]
    fn replica_parks_a_closed_day_and_reads_it_back_unchanged() {
        let store = StoreId(Uuid::new_v4());
        let till = DeviceId([7; 32]);
        let (old_ref, mut old) = ledger(store, till, "2026-11-20");
        let (today_ref, mut today) = ledger(store, till, "2026-12-03");
        let source = Arc::new(Stored::default());
        let stored = vec![
            chunk(&old_ref, old.doc().save(), 1),
            chunk(&today_ref, today.doc().save(), 2),
        ];
        source.chunks.lock().expect("lock").extend(stored.clone());
        let mut r = loaded(store, stored).with_source(source.clone());
        let manifest = |r: &mut StoreReplica| -> BTreeMap<DocId, [u8; 32]> {
            r.manifest()
                .expect("manifest")
                .into_iter()
                .map(|m| (m.doc.id, m.heads))
                .collect()
        };
        let before = manifest(&mut r);

        // Only the closed day is a candidate, and only once idle.
        let closed_before: BusinessDate = "2026-12-02".parse().expect("date");
        assert!(
            r.park_candidates(&closed_before, Duration::from_secs(3600))
                .is_empty()
        );
        assert_eq!(
            r.park_candidates(&closed_before, Duration::ZERO),
            vec![old_ref.id]
        );
        let parked = r.park(old_ref.id).expect("parked");
        assert_eq!(parked.doc, old_ref);
        assert_eq!((r.doc_count(), r.parked_count()), (1, 1));
        assert_eq!(manifest(&mut r), before, "listed as before, out of memory");
        assert!(
            r.park(old_ref.id).is_none(),
            "parking is for documents in memory"
        );

        // Another instance's chunk for the parked day: read back, merged, announced.
        old.record_audit(&kasir_crdt::records::AuditEvent {
            id: "late".into(),
            action: "drawer_opened".into(),
            user: None,
            approved_by: None,
            record_id: None,
            at_ms: 1,
            till_code: None,
            detail: None,
        })
        .expect("a late record");
        let more = chunk(&old_ref, old.doc().save_incremental(), 3);
        source.chunks.lock().expect("lock").push(more.clone());
        let (changed, _) = r.merge_chunks(vec![more]);
        assert_eq!(changed, vec![old_ref.id], "the parked day changed");
        assert_eq!(r.parked_count(), 0);
        assert_eq!(r.unparked_count(), 1);
        let after = manifest(&mut r);
        assert_ne!(after[&old_ref.id], before[&old_ref.id]);
        assert_eq!(after[&today_ref.id], before[&today_ref.id]);

        // Parked again and read back by a session's need: the same document.
        r.park(old_ref.id).expect("parked again");
        assert_eq!(manifest(&mut r), after);
        r.unpark(old_ref.id).expect("read back");
        assert_eq!(manifest(&mut r), after);
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn replica_without_a_source_parks_nothing() {
        let store = StoreId(Uuid::new_v4());
        let (r_ref, mut l) = ledger(store, DeviceId([1; 32]), "2026-11-20");
        let stored = vec![chunk(&r_ref, l.doc().save(), 1)];
        let mut r = loaded(store, stored);
        let today: BusinessDate = "2026-12-03".parse().expect("date");
        assert!(r.park_candidates(&today, Duration::ZERO).is_empty());
        assert!(r.park(r_ref.id).is_none());
        assert_eq!(r.doc_count(), 1);
    }
}
