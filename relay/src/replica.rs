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

use std::collections::{BTreeMap, HashMap, HashSet};

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::records::Product;
use kasir_crdt::store::{Role, StoreDoc};
use kasir_crdt::sync::PeerState;
use kasir_crdt::{ActorId, DeviceId, Doc, DocError, DocId, DocKind, StoreId};
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

/// One store served by the relay.
#[derive(Debug)]
pub struct StoreReplica {
    store: StoreId,
    tenant: Uuid,
    adopted_by: Option<DeviceId>,
    signer: Identity,
    actor: ActorId,
    docs: BTreeMap<DocId, (DocRef, Held)>,
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
        r
    }

    /// Every record the replica's documents hold, as writes that store no chunk: what a
    /// rebuild of the store's tables materialises again ([`crate::materialise::rebuild`]).
    pub fn all_records(&mut self) -> Vec<DocWrite> {
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
    /// `kasir_sync::trust`).
    pub fn device_history(&mut self, device: DeviceId) -> BTreeMap<String, u64> {
        let mut history = BTreeMap::new();
        for (r, held) in self.docs.values_mut() {
            if r.kind == DocKind::Ledger && r.till != Some(device) {
                continue; // a ledger holds its own till's changes only
            }
            kasir_crdt::doc::merge_history(&mut history, held.doc().device_history(device));
        }
        history
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
    /// store. See `kasir_sync::trust` on adopted history.
    pub fn adopt_unsigned(&mut self) -> Vec<ChangeSig> {
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

    /// Documents held.
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
                self.docs.contains_key(&r.id)
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
            let Ok(held) = self.held(&c.doc) else {
                continue;
            };
            let doc = held.doc();
            let before = doc.heads();
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
            self.chunk_hashes.entry(c.doc.id).or_default().push(c.hash);
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

    /// Documents stored in more than `limit` chunks.
    pub fn compaction_candidates(&self, limit: usize) -> Vec<DocId> {
        self.chunk_hashes
            .iter()
            .filter(|(_, h)| h.len() > limit)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A snapshot of `doc` and the stored chunks it replaces.
    pub fn snapshot(&mut self, doc: DocId) -> Option<(DocRef, Vec<u8>, Vec<[u8; 32]>)> {
        let covered = self.chunk_hashes.get(&doc)?.clone();
        let (r, held) = self.docs.get_mut(&doc)?;
        Some((r.clone(), held.doc().save(), covered))
    }

    /// Records that `snapshot` replaced `covered` in storage.
    pub fn compacted(&mut self, doc: DocId, snapshot: [u8; 32], covered: &[[u8; 32]]) {
        self.seen_chunks.insert(snapshot);
        let hashes = self.chunk_hashes.entry(doc).or_default();
        hashes.retain(|h| !covered.contains(h));
        hashes.push(snapshot);
    }

    fn held(&mut self, r: &DocRef) -> Result<&mut Held, ReplicaError> {
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
        Ok(self
            .docs
            .values_mut()
            .map(|(r, h)| DocRefWithHeads {
                doc: r.clone(),
                heads: h.doc().heads_hash(),
            })
            .collect())
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
        if !self.docs.contains_key(&r.id) {
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
        let unborn = !self.docs.contains_key(&r.id);
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
