//! The node as a replica: what the sync protocol needs from it.
//!
//! - a manifest of every document with its heads hash, so peers sync only what differs;
//! - membership checks against the store's roster;
//! - per-document Automerge sync: generate a message for a peer, receive one and apply
//!   it durably — the merged changes, the read-table rows they imply and the peer's sync
//!   state in one transaction — then notify the other sessions so changes travel on.

use std::collections::HashMap;
use std::str::FromStr;

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::doc::ChangeHash;
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::store::StoreView;
use kasir_crdt::store::{Device, StoreDoc};
use kasir_crdt::sync::PeerState;
use kasir_crdt::{BusinessDate, DeviceId, Doc, DocId, DocKind, StoreId};
use kasir_sync::trust::{ChangeSig, Merge, MergeContext, RefusalReason, receive_checked};
use kasir_sync::{DocRef, DocRefWithHeads, Membership, Received, ReplicaError, SyncReplica};
use rusqlite::{OptionalExtension, params};

use crate::error::NodeError;
use crate::node::Node;
use crate::storage::{self, Chunk, DocEntry};
use crate::tables;

/// A manifest entry of this node's own storage as a reference.
pub(crate) fn doc_ref_of(e: &DocEntry) -> Result<DocRef, NodeError> {
    let till = e
        .till
        .as_deref()
        .map(DeviceId::from_str)
        .transpose()
        .map_err(|err| NodeError::Corrupt(err.to_string()))?;
    let date = e
        .date
        .as_deref()
        .map(BusinessDate::from_str)
        .transpose()
        .map_err(|err| NodeError::Corrupt(err.to_string()))?;
    Ok(DocRef {
        id: e.id,
        kind: e.kind,
        till,
        date,
    })
}

/// A node failure as the sync layer sees it: what a peer sent that does not apply is
/// the peer's fault (its session ends), anything else is this till's storage.
fn replica_error(e: NodeError) -> ReplicaError {
    match e {
        NodeError::BadRecord(d) => ReplicaError::BadMessage(d),
        other => ReplicaError::storage(other),
    }
}

impl SyncReplica for Node {
    fn store_id(&self) -> StoreId {
        Node::store_id(self)
    }
    fn manifest(&mut self) -> Result<Vec<DocRefWithHeads>, ReplicaError> {
        Node::manifest(self).map_err(replica_error)
    }
    fn peer_state(&mut self, peer: DeviceId, doc: DocId) -> Result<PeerState, ReplicaError> {
        Node::peer_state(self, peer, doc).map_err(replica_error)
    }
    fn sync_generate(
        &mut self,
        r: &DocRef,
        state: &mut PeerState,
    ) -> Result<Option<kasir_sync::replica::Outgoing>, ReplicaError> {
        self.check_doc_ref(r)?;
        let doc = self.replica_doc(r).map_err(replica_error)?;
        let Some((msg, carried)) =
            doc.generate_sync_message_with_hashes(state, kasir_sync::wire::MAX_SYNC_CHANGE_BYTES)
        else {
            return Ok(None);
        };
        let mut sigs = Vec::with_capacity(carried.len());
        for hash in carried {
            // Changes every replica makes alike carry no signature.
            if let Some(sig) = storage::sig_of(&self.db, &hash.0).map_err(replica_error)? {
                sigs.push(sig);
            }
        }
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
        self.check_doc_ref(r)?;
        self.merge_sync_message(peer, r, state, msg, sigs)
    }
}

impl Node {
    /// Subscribes to committed changes (local writes and merged peer changes).
    pub fn subscribe(&mut self) -> tokio::sync::broadcast::Receiver<DocId> {
        match &self.changes {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = tokio::sync::broadcast::channel(1024);
                self.changes = Some(tx);
                rx
            }
        }
    }

    /// Records a session with `peer` starting (`true`) or ending (shown by `status` and
    /// `/metrics`); sessions are counted, as one may end after its replacement began.
    pub fn set_connected(&mut self, peer: DeviceId, connected: bool) {
        let n = self.connected.entry(peer).or_insert(0);
        if connected {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.connected.remove(&peer);
            }
        }
    }

    /// Whether a sync connection with `peer` is open.
    pub fn is_connected(&self, peer: DeviceId) -> bool {
        self.connected.contains_key(&peer)
    }

    /// Every document with its heads hash.
    pub fn manifest(&self) -> Result<Vec<DocRefWithHeads>, NodeError> {
        storage::manifest(&self.db)?
            .iter()
            .map(|e| {
                Ok(DocRefWithHeads {
                    doc: doc_ref_of(e)?,
                    heads: e.heads,
                })
            })
            .collect()
    }

    /// Whether `device` is one of the store's relays.
    pub fn is_relay(&self, device: DeviceId) -> bool {
        matches!(
            self.membership(device),
            Membership::Member(kasir_crdt::store::Role::Relay)
        )
    }

    /// The device's standing in the roster.
    pub fn membership(&self, device: DeviceId) -> Membership {
        Membership::of(&self.store.view(), device)
    }

    /// The roster: every device with its till code, role and remembered addresses.
    pub fn roster(&self) -> Vec<(DeviceId, Device)> {
        self.store.devices()
    }

    /// The persisted sync state with `peer` for `doc` (fresh if none).
    pub fn peer_state(&self, peer: DeviceId, doc: DocId) -> Result<PeerState, NodeError> {
        let bytes: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT state FROM sync_states WHERE peer = ?1 AND doc_id = ?2")?
            .query_row(params![peer.to_string(), doc.0.as_slice()], |r| r.get(0))
            .optional()?;
        // A state that does not decode only costs a full (bloom filter) exchange.
        Ok(bytes
            .and_then(|b| PeerState::decode(&b).ok())
            .unwrap_or_default())
    }

    /// The in-memory document for a reference, loaded or created at its genesis.
    fn replica_doc(&mut self, r: &DocRef) -> Result<&mut Doc, NodeError> {
        match r.kind {
            DocKind::Store => Ok(self.store.doc()),
            DocKind::Catalog => Ok(self.catalog()?.doc()),
            DocKind::Ledger => {
                if !self.ledgers.contains_key(&r.id) {
                    let ledger = match storage::load_doc(
                        &self.db,
                        r.id,
                        DocKind::Ledger,
                        self.actor.clone(),
                    )? {
                        Some(doc) => LedgerDoc::from_doc(doc)?,
                        None => {
                            // Checked references of ledgers always name both.
                            let (Some(till), Some(date)) = (r.till, r.date.clone()) else {
                                return Err(NodeError::Invalid(
                                    "ledger reference without till and date".into(),
                                ));
                            };
                            LedgerDoc::create(
                                LedgerMeta {
                                    store: self.store_id(),
                                    till,
                                    date,
                                },
                                self.actor.clone(),
                            )?
                        }
                    };
                    if self.ledgers.len() >= 64 {
                        let own_today =
                            self.own_ledger_id(&self.profile.business_date(crate::node::now_ms()));
                        self.ledgers.retain(|id, _| *id == own_today);
                    }
                    self.ledgers.insert(r.id, ledger);
                }
                self.ledgers
                    .get_mut(&r.id)
                    .map(LedgerDoc::doc)
                    .ok_or_else(|| NodeError::NotFound(format!("ledger {}", r.id)))
            }
        }
    }

    /// Applies a peer's sync message durably if the trust rules accept what it adds (the
    /// reference is already checked): the merged changes, their signatures, the read-table
    /// rows they imply and the peer's sync state, in one transaction.
    fn merge_sync_message(
        &mut self,
        peer: DeviceId,
        r: &DocRef,
        state: &mut PeerState,
        msg: &[u8],
        sigs: &[ChangeSig],
    ) -> Result<Received, ReplicaError> {
        let started = std::time::Instant::now();
        let shared_before = state.shared_heads_hash();
        let mut known: HashMap<[u8; 32], ChangeSig> =
            sigs.iter().map(|s| (s.hash, s.clone())).collect();
        // A change whose signature came with an earlier message waits in
        // `waiting_sigs` (held back for its predecessors) or is stored (merged): look
        // those up and judge the message again.
        let waiting = std::mem::take(&mut self.waiting_sigs);
        let mut looked_up = false;
        let merged = (|| -> Result<_, ReplicaError> {
            loop {
                let missing = std::cell::RefCell::new(Vec::new());
                let roster = match r.kind {
                    DocKind::Store => None,
                    _ => Some(self.store.doc_ref().fork_for_check()),
                };
                let lookup = |hash: &ChangeHash| {
                    let found = known.get(&hash.0).cloned().or_else(|| waiting.get(hash));
                    if found.is_none() {
                        missing.borrow_mut().push(hash.0);
                    }
                    found
                };
                let ctx = MergeContext {
                    kind: r.kind,
                    till: r.till,
                    roster: roster.as_ref().map(StoreView::of),
                    date: r.date.as_ref(),
                    now_ms: kasir_sync::now_ms(),
                    sig: &lookup,
                };
                let doc = self.replica_doc(r).map_err(replica_error)?;
                let before = doc.heads();
                let received = receive_checked(doc, state, msg, &ctx);
                let missing = missing.into_inner();
                match received {
                    Ok(Merge::Refused(refusal))
                        if refusal.reason == RefusalReason::Unsigned
                            && !looked_up
                            && !missing.is_empty() =>
                    {
                        looked_up = true;
                        for hash in missing {
                            if let Some(s) =
                                storage::sig_of(&self.db, &hash).map_err(replica_error)?
                            {
                                known.insert(hash, s);
                            }
                        }
                    }
                    other => break Ok((other, before)),
                }
            }
        })();
        self.waiting_sigs = waiting;
        let (outcome, before) = merged?;
        let applied_at = started.elapsed();
        let (changed, accepted) = match outcome {
            Ok(Merge::Applied {
                changed,
                sigs: accepted,
            }) => {
                let mut waiting = std::mem::take(&mut self.waiting_sigs);
                let doc = self.replica_doc(r);
                if let Ok(doc) = doc {
                    waiting.after_merge(doc, sigs, &accepted);
                }
                self.waiting_sigs = waiting;
                (changed, accepted)
            }
            Ok(Merge::Deferred(author)) => return Ok(Received::Deferred(author)),
            Ok(Merge::Refused(refusal)) => {
                tracing::warn!(%peer, doc = %r.id, reason = refusal.reason.as_str(), detail = %refusal.detail, "refused a peer's changes");
                return Err(ReplicaError::Refused(refusal));
            }
            Err(e) => {
                // Nothing was applied (the merge ran on a copy), but be safe: reload
                // from disk on next use.
                self.forget(r);
                return Err(ReplicaError::BadMessage(e));
            }
        };
        if !changed && state.shared_heads_hash() == shared_before {
            return Ok(Received::Unchanged);
        }
        let result = self.persist_merge(peer, r, state, &before, changed, accepted);
        if result.is_err() {
            self.forget(r);
        }
        result.map_err(replica_error)?;
        tracing::debug!(
            doc = %r.id, bytes = msg.len(), apply_ms = applied_at.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64, "merged a sync message"
        );
        if !changed {
            return Ok(Received::Unchanged);
        }
        if r.kind == DocKind::Store
            && let Ok(Some(profile)) = self.store.profile()
        {
            self.profile = profile;
        }
        self.maybe_compact(r.id).map_err(replica_error)?;
        Ok(Received::Changed)
    }

    fn forget(&mut self, r: &DocRef) {
        match r.kind {
            DocKind::Ledger => {
                self.ledgers.remove(&r.id);
            }
            DocKind::Catalog => self.catalog = None,
            DocKind::Store => {
                if let Ok(Some(doc)) =
                    storage::load_doc(&self.db, r.id, DocKind::Store, self.actor.clone())
                    && let Ok(store) = StoreDoc::from_doc(doc)
                {
                    self.store = store;
                }
            }
        }
    }

    fn persist_merge(
        &mut self,
        peer: DeviceId,
        r: &DocRef,
        state: &PeerState,
        before: &[ChangeHash],
        changed: bool,
        sigs: Vec<ChangeSig>,
    ) -> Result<(), NodeError> {
        // Gather what to write before the transaction borrows the database.
        let mut ledger_records = None;
        let mut products = Vec::new();
        let chunk = Chunk::merged(self.replica_doc(r)?, sigs);
        if changed {
            match r.kind {
                DocKind::Ledger => {
                    if let Some(l) = self.ledgers.get_mut(&r.id) {
                        ledger_records = Some(l.records_since(before));
                    }
                }
                DocKind::Catalog => {
                    let catalog: &mut CatalogDoc = self.catalog()?;
                    products = catalog.products_since(before);
                }
                DocKind::Store => {}
            }
        }
        let till = r.till.map(|t| t.to_string());
        let date = r.date.as_ref().map(|d| d.to_string());
        let ledger_till_code = r.till.map(|t| self.till_code_of(t)).unwrap_or_default();
        // A ledger of this till code: this device's own coming back after a restore from
        // a backup, or the replaced device's when this one took over its till code.
        let own_ledger = r.till.is_some() && ledger_till_code == self.till_code;
        let own_code = self.till_code.clone();
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        storage::register_doc(&tx, r.id, r.kind, till.as_deref(), date.as_deref())?;
        storage::append_chunk(&tx, r.id, &chunk)?;
        if let Some(recs) = ledger_records {
            let place = tables::Place {
                till_code: &ledger_till_code,
                date: date.as_deref().unwrap_or_default(),
            };
            tables::index_records(&tx, &recs, r.id, place)?;
            if own_ledger {
                tables::bump_receipt_counters(&tx, &recs.sales, &own_code)?;
            }
            if recs.undecodable > 0 {
                tracing::warn!(doc = %r.id, n = recs.undecodable, "skipped ledger records that do not decode");
            }
        }
        for p in products.into_iter().flatten() {
            tables::upsert_product(&tx, &p)?;
        }
        tx.execute(
            "INSERT INTO sync_states(peer, doc_id, state, shared) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(peer, doc_id) DO UPDATE SET state = excluded.state, shared = excluded.shared",
            params![peer.to_string(), r.id.0.as_slice(), state.encode(), state.shared_heads_hash().as_slice()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Documents whose latest changes no peer is known to hold.
    pub fn unsynced_docs(&self) -> Result<u64, NodeError> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM docs d WHERE NOT EXISTS
               (SELECT 1 FROM sync_states s WHERE s.doc_id = d.doc_id AND s.shared = d.heads)",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}
