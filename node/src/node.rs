//! The `Node`: the embedding API the CLI, the HTTP daemon and a mobile app all use.
//!
//! A `Node` owns one data directory: the SQLite database, the device key, and the
//! in-memory documents it has loaded (the store document, the catalog, and the ledgers
//! it touches — today's own ledger, not a year of history). It holds an exclusive lock
//! on the directory for its whole life, so two processes never write the same documents.
//!
//! Every write follows one pattern: change the document in memory, append the change's
//! bytes and the read-table rows it implies in **one** SQLite transaction, commit (fsync),
//! and only then report success. If anything fails before the commit, the in-memory
//! document is dropped and reloaded from disk, so memory never holds what disk does not.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ids::product_id;
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::pricing::{CartLine, PricedSale, PricingRules, price_cart};
use kasir_crdt::records::{
    LineUnit, MovementKind, Payment, PriceTier, Product, Reversal, Sale, SellUnit, StockLine,
    StockMovement, Void,
};
use kasir_crdt::stock::opname_delta;
use kasir_crdt::store::{Device, Role, StoreDoc, StoreProfile};
use kasir_crdt::tax::TaxCode;
use kasir_crdt::{ActorId, BusinessDate, DeviceId, DocId, DocKind, Qty, StoreId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use kasir_sync::Identity;

use crate::api::{
    InitOptions, MovementInput, MovementOutcome, NodeStatus, PeerStatus, ProductAdded,
    ProductInput, SaleItem, SaleOutcome, SaleRequest, TillIdentity,
};
use crate::error::NodeError;
use crate::storage::{self, COMPACT_AFTER_CHUNKS, Chunk, READ_TABLES_VERSION};
use crate::tables::{self, ProductRow, SaleRow, SaleStatus, StockRow};
use crate::vault;

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "kasir.lock";

/// A Kasir till engine over one data directory.
pub struct Node {
    pub(crate) dir: PathBuf,
    pub(crate) db: Connection,
    pub(crate) identity: Identity,
    pub(crate) actor: ActorId,
    pub(crate) till_code: String,
    pub(crate) store: StoreDoc,
    /// Loaded on first catalog write: reads go through the read tables.
    pub(crate) catalog: Option<CatalogDoc>,
    pub(crate) profile: StoreProfile,
    pub(crate) ledgers: HashMap<DocId, LedgerDoc>,
    /// Fired after every committed change (local or merged), for pushing to peers.
    pub(crate) changes: Option<tokio::sync::broadcast::Sender<DocId>>,
    /// Endpoint ids with an open sync connection, for `status`.
    pub(crate) connected: std::collections::BTreeMap<DeviceId, usize>,
    /// Signatures of peer changes Automerge holds back until their predecessors come.
    pub(crate) waiting_sigs: kasir_sync::trust::WaitingSigs,
    /// The database key when the directory is encrypted (for backups' own connection).
    db_key: Option<vault::DbKey>,
    _lock: File,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("dir", &self.dir)
            .field("store", &self.store.store_id())
            .field("till_code", &self.till_code)
            .finish()
    }
}

pub(crate) use kasir_sync::now_ms;

/// The till code of `device` in `store`'s roster (this device's own code for itself;
/// the id's first characters when the roster does not know the device yet). A free
/// function so it can be called while a transaction borrows the node's database.
pub(crate) fn till_code_in(
    store: &StoreDoc,
    me: &Identity,
    my_code: &str,
    device: DeviceId,
) -> String {
    if device == me.device_id() {
        return my_code.to_owned();
    }
    match store.device(device) {
        Ok(Some(d)) => d.till_code,
        _ => device.to_string().chars().take(8).collect(),
    }
}

/// The actor this device writes with until the node closes: its device id and a fresh
/// nonce (see `kasir_crdt::author`), so the author of every change is readable and two
/// openings never share a sequence.
fn fresh_actor(identity: &Identity) -> ActorId {
    kasir_crdt::author::device_actor(identity.device_id(), rand::random())
}

fn lock_dir(dir: &Path) -> Result<File, NodeError> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(NodeError::io(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(NodeError::io(format!("locking {}", path.display()))(e))
        }
    }
}

pub(crate) fn validate_till_code(code: &str) -> Result<String, NodeError> {
    Ok(kasir_sync::membership::validate_till_code(code)?)
}

fn validate_text(what: &str, value: &str, max: usize) -> Result<(), NodeError> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(NodeError::Invalid(format!(
            "invalid {what} {value:?}: 1 to {max} printable characters"
        )));
    }
    Ok(())
}

fn validate_code(what: &str, value: &str) -> Result<(), NodeError> {
    if value.is_empty()
        || value.len() > 64
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(NodeError::Invalid(format!(
            "invalid {what} {value:?}: 1 to 64 characters without spaces"
        )));
    }
    Ok(())
}

const MAX_PRICE: i64 = kasir_crdt::pricing::MAX_AMOUNT;

/// A sale request's line resolved against the catalog ([`Node::resolve_item`]).
pub(crate) struct ResolvedItem {
    pub(crate) product: ProductRow,
    pub(crate) qty: Qty,
    pub(crate) unit_price: i64,
    pub(crate) discount: i64,
    /// The unit sold when not the stock unit.
    pub(crate) unit: Option<LineUnit>,
    /// The catalog's price for this line (its unit's, or its grosir tier's): a request's
    /// own price other than it is an override.
    pub(crate) listed: i64,
}

impl Node {
    /// Creates a new store in `dir` with this device as its owner.
    pub fn init(dir: &Path, opts: &InitOptions) -> Result<Node, NodeError> {
        validate_text("store name", &opts.store_name, 120)?;
        let till_code = validate_till_code(&opts.till_code)?;
        vault::create_private_dir(dir)?;
        let lock = lock_dir(dir)?;
        // A database with a store id is a store; anything less is an interrupted `init`
        // (or `join`) that may be completed, keeping the device key if one was written.
        if dir.join(storage::DB_FILE).exists() && opts.encrypt.is_some() {
            // Refuse before touching the key: `init --encrypt` on an existing store.
            let key = vault::key_for(dir, None)?;
            let db = storage::open_db(dir, false, key.as_ref())?;
            if storage::meta_get(&db, "store_id")?.is_some() {
                return Err(NodeError::AlreadyInitialised(dir.display().to_string()));
            }
        }
        let key = match &opts.encrypt {
            Some(how) => Some(vault::prepare(dir, how)?),
            None => vault::key_for(dir, None)?,
        };
        let mut db = storage::open_db(dir, true, key.as_ref())?;
        if storage::meta_get(&db, "store_id")?.is_some() {
            return Err(NodeError::AlreadyInitialised(dir.display().to_string()));
        }
        let identity = vault::load_or_create_identity(dir, key.as_ref())?;
        let actor = fresh_actor(&identity);
        let store_id = StoreId(uuid::Uuid::now_v7());
        let now = now_ms();
        let mut store = StoreDoc::create(store_id, actor.clone())?;
        let profile = StoreProfile::named(opts.store_name.trim());
        store.set_profile(&profile, now)?;
        let device = Device {
            till_code: till_code.clone(),
            role: Role::Owner,
            revoked: false,
            addrs: Vec::new(),
            joined_at_ms: now,
            vouched: Default::default(),
        };
        store.put_device(identity.device_id(), &device, now)?;
        let mut catalog = CatalogDoc::create(store_id, actor.clone())?;
        let tx = db.transaction()?;
        storage::meta_set(&tx, "store_id", &store_id.to_string())?;
        storage::meta_set(&tx, "till_code", &till_code)?;
        storage::meta_set(&tx, "read_tables_version", &READ_TABLES_VERSION.to_string())?;
        storage::meta_set(&tx, storage::SIGNED_HISTORY, "1")?;
        for doc in [store.doc(), catalog.doc()] {
            storage::register_doc(&tx, doc.id(), doc.kind(), None, None)?;
            storage::append_chunk(&tx, doc.id(), &Chunk::local(doc, &identity))?;
        }
        tx.commit()?;
        let node = Node {
            dir: dir.to_owned(),
            db,
            identity,
            actor,
            till_code,
            store,
            catalog: Some(catalog),
            profile,
            ledgers: HashMap::new(),
            changes: None,
            connected: Default::default(),
            waiting_sigs: Default::default(),
            db_key: key,
            _lock: lock,
        };
        node.ensure_device_token()?;
        Ok(node)
    }

    /// Opens the store in `dir`.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        Node::open_with(dir, false, None)
    }

    /// Opens the encrypted store in `dir` whose key the host app holds (a phone's
    /// Keystore; see [`vault::KeyHolder::Host`]).
    pub fn open_keyed(dir: &Path, key: &vault::DbKey) -> Result<Node, NodeError> {
        Node::open_with(dir, false, Some(key))
    }

    /// Encrypts the plain data directory `dir` in place (`kasir encrypt`): the key goes
    /// where `how` says; returns who holds it. Refused while another process has the
    /// directory open.
    pub fn encrypt(dir: &Path, how: &vault::Encrypt) -> Result<vault::KeyHolder, NodeError> {
        if !dir.join(storage::DB_FILE).exists() {
            return Err(NodeError::NotInitialised(dir.display().to_string()));
        }
        let _lock = lock_dir(dir)?;
        vault::tighten(dir)?;
        vault::encrypt_existing(dir, how)
    }

    /// Opens a data directory written before changes were signed and adopts its
    /// history: every change not written by a device actor gets this device's adoption
    /// signature (peers accept those of an owner or manager, and a till's for its own
    /// ledgers), and the directory is marked upgraded. Returns the node and how many
    /// changes were adopted. Run once per till (`kasir upgrade`); a directory already
    /// upgraded adopts nothing.
    pub fn upgrade(dir: &Path) -> Result<(Node, usize), NodeError> {
        let mut node = Node::open_with(dir, true, None)?;
        let mut adopted = 0;
        let entries = storage::manifest(&node.db)?;
        let tx = node.db.transaction()?;
        for e in &entries {
            let Some(mut doc) = storage::load_doc(&tx, e.id, e.kind, node.actor.clone())? else {
                continue;
            };
            let mut sigs = Vec::new();
            for c in doc.changes_after(&[]) {
                if kasir_crdt::author::actor_device(&c.actor).is_some()
                    || storage::sig_of(&tx, &c.hash.0)?.is_some()
                {
                    continue;
                }
                sigs.push(kasir_sync::trust::ChangeSig::sign(&node.identity, &c.hash));
            }
            adopted += sigs.len();
            storage::store_sigs(&tx, &sigs)?;
        }
        storage::meta_set(&tx, storage::SIGNED_HISTORY, "1")?;
        tx.commit()?;
        Ok((node, adopted))
    }

    pub(crate) fn open_with(
        dir: &Path,
        upgrading: bool,
        given: Option<&vault::DbKey>,
    ) -> Result<Node, NodeError> {
        if !dir.join(storage::DB_FILE).exists() {
            return Err(NodeError::NotInitialised(dir.display().to_string()));
        }
        let lock = lock_dir(dir)?;
        vault::tighten(dir)?;
        let key = vault::key_for(dir, given)?;
        let identity = vault::load_identity(dir, key.as_ref())?;
        let db = storage::open_db(dir, false, key.as_ref())?;
        let store_id: StoreId = storage::meta_get(&db, "store_id")?
            .ok_or_else(|| NodeError::NotInitialised(dir.display().to_string()))?
            .parse()
            .map_err(|e| NodeError::Corrupt(format!("store id in meta: {e}")))?;
        let till_code = storage::meta_get(&db, "till_code")?
            .ok_or_else(|| NodeError::Corrupt("till code missing from meta".into()))?;
        if storage::meta_get(&db, storage::SIGNED_HISTORY)?.is_none() && !upgrading {
            return Err(NodeError::UpgradeRequired(dir.display().to_string()));
        }
        let actor = fresh_actor(&identity);
        let store =
            match storage::load_doc(&db, DocId::store(store_id), DocKind::Store, actor.clone())? {
                Some(doc) => StoreDoc::from_doc(doc)?,
                None => StoreDoc::create(store_id, actor.clone())?,
            };
        let profile = store
            .profile()?
            .unwrap_or_else(|| StoreProfile::named("Toko"));
        let mut node = Node {
            dir: dir.to_owned(),
            db,
            identity,
            actor,
            till_code,
            store,
            catalog: None,
            profile,
            ledgers: HashMap::new(),
            changes: None,
            connected: Default::default(),
            waiting_sigs: Default::default(),
            db_key: key,
            _lock: lock,
        };
        let version = storage::meta_get(&node.db, "read_tables_version")?;
        if version.as_deref() != Some(&READ_TABLES_VERSION.to_string()) {
            node.rebuild_read_tables()?;
        }
        node.ensure_device_token()?;
        Ok(node)
    }

    /// The database key, when the data directory is encrypted.
    pub(crate) fn db_key(&self) -> Option<&vault::DbKey> {
        self.db_key.as_ref()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store id.
    pub fn store_id(&self) -> StoreId {
        self.store.store_id()
    }

    /// This device's id (its iroh endpoint id).
    pub fn device_id(&self) -> DeviceId {
        self.identity.device_id()
    }

    /// This device's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The till code of a device in the roster (its id's first characters when the
    /// roster does not know it yet).
    pub(crate) fn till_code_of(&self, device: DeviceId) -> String {
        till_code_in(&self.store, &self.identity, &self.till_code, device)
    }

    /// This till's code.
    pub fn till_code(&self) -> &str {
        &self.till_code
    }

    /// Who this till is: store, endpoint id and till code.
    pub fn till_identity(&self) -> TillIdentity {
        TillIdentity {
            store_id: self.store_id().to_string(),
            endpoint_id: self.device_id().to_string(),
            till_code: self.till_code.clone(),
            role: None,
            relay: None,
            relay_code: None,
            adopted: None,
        }
    }

    /// The store profile.
    pub fn profile(&self) -> &StoreProfile {
        &self.profile
    }

    /// Replaces the store profile (tax rule, rounding, receipt texts...).
    pub fn set_profile(&mut self, profile: StoreProfile) -> Result<(), NodeError> {
        self.require_admin("change the store's profile")?;
        validate_text("store name", &profile.name, 120)?;
        if !profile.tax_rule.is_valid() {
            return Err(NodeError::Invalid("invalid tax rule".into()));
        }
        if profile.cash_rounding.unit < 0 {
            return Err(NodeError::Invalid(
                "cash rounding unit must not be negative".into(),
            ));
        }
        let result = (|| {
            self.store.set_profile(&profile, now_ms())?;
            let tx = self.db.transaction()?;
            let doc = self.store.doc();
            storage::append_chunk(&tx, doc.id(), &Chunk::local(doc, &self.identity))?;
            tx.commit()?;
            Ok(())
        })();
        self.after_write(DocKind::Store, result)?;
        self.profile = profile;
        self.maybe_compact(DocId::store(self.store_id()))
    }

    /// Identity, peers and counts.
    pub fn status(&self) -> Result<NodeStatus, NodeError> {
        let count = |sql: &str| -> Result<u64, NodeError> {
            Ok(self.db.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let mut behind = self.db.prepare_cached(
            "SELECT COUNT(*) FROM docs d WHERE NOT EXISTS
               (SELECT 1 FROM sync_states s
                 WHERE s.peer = ?1 AND s.doc_id = d.doc_id AND s.shared = d.heads)",
        )?;
        let mut peers = Vec::new();
        for (id, device) in self.store.devices() {
            if id == self.device_id() || device.revoked {
                continue;
            }
            let behind_docs: i64 = behind.query_row([id.to_string()], |r| r.get(0))?;
            peers.push(PeerStatus {
                endpoint_id: id.to_string(),
                connected: self.connected.contains_key(&id),
                till_code: device.till_code.clone(),
                behind_docs: behind_docs as u64,
            });
        }
        drop(behind);
        Ok(NodeStatus {
            store_id: self.store_id().to_string(),
            endpoint_id: self.device_id().to_string(),
            till_code: self.till_code.clone(),
            store_name: self.profile.name.clone(),
            peers,
            unsynced_docs: if self.store.devices().len() > 1 {
                self.unsynced_docs()?
            } else {
                0
            },
            docs: count("SELECT COUNT(*) FROM docs")?,
            products: count("SELECT COUNT(*) FROM products")?,
            sales: count("SELECT COUNT(*) FROM sales")?,
        })
    }

    /// Drops in-memory documents whose write failed, so they reload from disk.
    pub(crate) fn after_write<T>(
        &mut self,
        kind: DocKind,
        result: Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        if result.is_err() {
            let actor = self.actor.clone();
            match kind {
                DocKind::Store => {
                    if let Some(doc) =
                        storage::load_doc(&self.db, DocId::store(self.store_id()), kind, actor)?
                    {
                        self.store = StoreDoc::from_doc(doc)?;
                    }
                }
                DocKind::Catalog => self.catalog = None,
                DocKind::Ledger => self.ledgers.clear(),
            }
        }
        result
    }

    /// The catalog document, loaded on first use.
    pub(crate) fn catalog(&mut self) -> Result<&mut CatalogDoc, NodeError> {
        if self.catalog.is_none() {
            let store_id = self.store_id();
            let catalog = match storage::load_doc(
                &self.db,
                DocId::catalog(store_id),
                DocKind::Catalog,
                self.actor.clone(),
            )? {
                Some(doc) => CatalogDoc::from_doc(doc)?,
                None => CatalogDoc::create(store_id, self.actor.clone())?,
            };
            self.catalog = Some(catalog);
        }
        self.catalog
            .as_mut()
            .ok_or_else(|| NodeError::NotFound("catalog".into()))
    }

    /// The store's business day now, in its time zone.
    pub fn today(&self) -> BusinessDate {
        self.profile.business_date(now_ms())
    }

    /// The id of this till's ledger for `date`.
    pub(crate) fn own_ledger_id(&self, date: &BusinessDate) -> DocId {
        DocId::ledger(self.store_id(), self.device_id(), date)
    }

    /// This till's ledger for `date`, loaded or created.
    fn own_ledger(&mut self, date: &BusinessDate) -> Result<&mut LedgerDoc, NodeError> {
        let meta = LedgerMeta {
            store: self.store_id(),
            till: self.device_id(),
            date: date.clone(),
        };
        let id = LedgerDoc::id_for(&meta);
        if !self.ledgers.contains_key(&id) {
            if self.ledgers.len() >= 8 {
                self.ledgers.clear();
            }
            let ledger = match storage::load_doc(&self.db, id, DocKind::Ledger, self.actor.clone())?
            {
                Some(doc) => LedgerDoc::from_doc(doc)?,
                None => LedgerDoc::create(meta, self.actor.clone())?,
            };
            self.ledgers.insert(id, ledger);
        }
        self.ledgers
            .get_mut(&id)
            .ok_or_else(|| NodeError::NotFound(format!("ledger {id}")))
    }

    /// Any ledger this node holds, by id.
    fn ledger(&mut self, id: DocId) -> Result<&mut LedgerDoc, NodeError> {
        if !self.ledgers.contains_key(&id) {
            let doc = storage::load_doc(&self.db, id, DocKind::Ledger, self.actor.clone())?
                .ok_or_else(|| NodeError::NotFound(format!("ledger {id}")))?;
            if self.ledgers.len() >= 8 {
                self.ledgers.clear();
            }
            self.ledgers.insert(id, LedgerDoc::from_doc(doc)?);
        }
        self.ledgers
            .get_mut(&id)
            .ok_or_else(|| NodeError::NotFound(format!("ledger {id}")))
    }

    pub(crate) fn maybe_compact(&mut self, id: DocId) -> Result<(), NodeError> {
        // Every successful write ends here: tell the sync sessions.
        if let Some(tx) = &self.changes {
            let _ = tx.send(id);
        }
        if storage::chunk_count(&self.db, id)? <= COMPACT_AFTER_CHUNKS {
            return Ok(());
        }
        let store_id = self.store_id();
        let doc = if id == DocId::store(store_id) {
            self.store.doc()
        } else if id == DocId::catalog(store_id) {
            match self.catalog.as_mut() {
                Some(c) => c.doc(),
                None => return Ok(()),
            }
        } else {
            match self.ledgers.get_mut(&id) {
                Some(l) => l.doc(),
                None => return Ok(()),
            }
        };
        storage::compact(&mut self.db, doc)
    }

    /// Compacts every document this node holds into one snapshot each.
    pub fn compact_all(&mut self) -> Result<usize, NodeError> {
        self.compact_due(1)
    }

    /// Compacts the documents that have more than `threshold` chunks on disk. The
    /// daemon calls this when idle, so the sale path never pays for it.
    pub fn compact_due(&mut self, threshold: i64) -> Result<usize, NodeError> {
        let due: Vec<storage::DocEntry> = storage::manifest(&self.db)?
            .into_iter()
            .filter(|e| storage::chunk_count(&self.db, e.id).is_ok_and(|n| n > threshold))
            .collect();
        for e in &due {
            let Some(mut doc) = storage::load_doc(&self.db, e.id, e.kind, self.actor.clone())?
            else {
                continue;
            };
            storage::compact(&mut self.db, &mut doc)?;
        }
        Ok(due.len())
    }

    /// Rebuilds every read table from the documents.
    pub fn rebuild_read_tables(&mut self) -> Result<(), NodeError> {
        let ledgers = storage::docs_of_kind(&self.db, DocKind::Ledger)?;
        let tx = self.db.transaction()?;
        storage::recreate_read_tables(&tx)?;
        let catalog = match self.catalog.take() {
            Some(c) => c,
            None => match storage::load_doc(
                &tx,
                DocId::catalog(self.store.store_id()),
                DocKind::Catalog,
                self.actor.clone(),
            )? {
                Some(doc) => CatalogDoc::from_doc(doc)?,
                None => CatalogDoc::create(self.store.store_id(), self.actor.clone())?,
            },
        };
        tables::index_catalog(&tx, &catalog)?;
        for id in ledgers.into_iter().map(|e| e.id) {
            if let Some(doc) = storage::load_doc(&tx, id, DocKind::Ledger, self.actor.clone())? {
                let ledger = LedgerDoc::from_doc(doc)?;
                let till_code = till_code_in(
                    &self.store,
                    &self.identity,
                    &self.till_code,
                    ledger.meta().till,
                );
                tables::index_ledger(&tx, &ledger, &till_code)?;
            }
        }
        storage::meta_set(&tx, "read_tables_version", &READ_TABLES_VERSION.to_string())?;
        tx.commit()?;
        self.catalog = Some(catalog);
        self.bump_counters_from_sales()?;
        Ok(())
    }

    /// Makes sure the receipt counter of every day is past every receipt this till has
    /// issued (after a rebuild or a restore), so numbers are never reused.
    fn bump_counters_from_sales(&mut self) -> Result<(), NodeError> {
        let rows: Vec<(String, String)> = {
            let mut stmt = self
                .db
                .prepare("SELECT business_date, receipt_no FROM sales WHERE till_code = ?1")?;
            stmt.query_map([&self.till_code], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut max: HashMap<String, i64> = HashMap::new();
        for (date, receipt) in rows {
            if let Some(seq) = tables::receipt_seq(&receipt, &self.till_code) {
                let e = max.entry(date).or_insert(0);
                *e = (*e).max(seq);
            }
        }
        let tx = self.db.transaction()?;
        for (date, seq) in max {
            tx.execute(
                "INSERT INTO receipt_counters(date, seq) VALUES (?1, ?2)
                 ON CONFLICT(date) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                params![date, seq],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn product_row(&self, code: &str) -> Result<ProductRow, NodeError> {
        tables::product_by_code(&self.db, code)?
            .ok_or_else(|| NodeError::UnknownSku(code.to_owned()))
    }

    /// One line of a sale request against the catalog: its product (by SKU, barcode,
    /// or a scale's EAN-13 label, which also says the quantity: `qty` labels of it),
    /// the unit price (the catalog's or an override), and the discount in rupiah (given
    /// in rupiah, or in percent of the line and rounded half up).
    pub(crate) fn resolve_item(&self, item: &SaleItem) -> Result<ResolvedItem, NodeError> {
        let (product, scanned_unit, qty) = match tables::product_and_unit(&self.db, &item.code)? {
            Some((p, unit)) => (p, unit, item.qty),
            None => match self.scale_label(&item.code)? {
                Some((p, weighed)) => {
                    let milli = i128::from(weighed.milli()) * i128::from(item.qty.milli());
                    let qty = i64::try_from((milli + 500) / 1000)
                        .map_err(|_| NodeError::Invalid("quantity out of range".into()))?;
                    (p, None, Qty(qty))
                }
                None => return Err(NodeError::UnknownSku(item.code.clone())),
            },
        };
        let unit = match item.unit.as_deref().or(scanned_unit.as_deref()) {
            Some(name) => product.unit_named(name)?.map(|u| {
                (
                    u.price,
                    LineUnit {
                        name: u.name.clone(),
                        per: u.per,
                    },
                )
            }),
            None => None,
        };
        let listed = match &unit {
            Some((price, _)) => *price,
            // Grosir: a line of enough stock units costs the tier's price per unit.
            None => product.tier_price(qty).unwrap_or(product.price),
        };
        let unit = unit.map(|(_, u)| u);
        let unit_price = match item.price {
            Some(price) if price < 0 => {
                return Err(NodeError::Invalid(format!(
                    "the price of {} must not be negative",
                    product.sku
                )));
            }
            Some(price) => price,
            None => listed,
        };
        let discount = match item.discount_percent {
            None => item.discount,
            Some(_) if item.discount != 0 => {
                return Err(NodeError::Invalid(format!(
                    "give the discount on {} in rupiah or in percent, not both",
                    product.sku
                )));
            }
            Some(pct) if pct > 100 => {
                return Err(NodeError::Invalid(format!(
                    "a discount of {pct}% on {} is more than the line",
                    product.sku
                )));
            }
            Some(pct) => {
                let gross = i128::from(qty.times_price(unit_price));
                ((gross * i128::from(pct) + 50) / 100) as i64
            }
        };
        Ok(ResolvedItem {
            product,
            qty,
            unit_price,
            discount,
            unit,
            listed,
        })
    }

    fn validate_product(input: &ProductInput) -> Result<(), NodeError> {
        validate_code("SKU", &input.sku)?;
        validate_text("product name", &input.name, 200)?;
        if !(0..=MAX_PRICE).contains(&input.price) {
            return Err(NodeError::Invalid(format!(
                "invalid price {}: must be 0 or more rupiah",
                input.price
            )));
        }
        if let Some(cost) = input.cost
            && !(0..=MAX_PRICE).contains(&cost)
        {
            return Err(NodeError::Invalid(format!("invalid cost {cost}")));
        }
        for b in input.all_barcodes() {
            validate_code("barcode", b)?;
        }
        if let Some(unit) = &input.unit {
            validate_text("unit", unit, 16)?;
        }
        if let Some(stock) = input.stock
            && stock.milli() < 0
        {
            return Err(NodeError::Invalid(
                "initial stock must not be negative".into(),
            ));
        }
        let promos = input.promos.as_deref().unwrap_or_default();
        if promos.len() > 8 {
            return Err(NodeError::Invalid(
                "a product has at most 8 promotions".into(),
            ));
        }
        for p in promos {
            p.check().map_err(NodeError::Invalid)?;
        }
        let units = input.units.as_deref().unwrap_or_default();
        if units.len() > 8 {
            return Err(NodeError::Invalid(
                "a product has at most 8 other units".into(),
            ));
        }
        for (i, u) in units.iter().enumerate() {
            validate_text("unit name", u.name.trim(), 16)?;
            if u.name.trim().is_empty()
                || units[..i]
                    .iter()
                    .any(|o| o.name.trim().eq_ignore_ascii_case(u.name.trim()))
                || input
                    .unit
                    .as_deref()
                    .is_some_and(|b| b.eq_ignore_ascii_case(u.name.trim()))
            {
                return Err(NodeError::Invalid(format!(
                    "unit {:?} of {} is empty or named twice",
                    u.name, input.sku
                )));
            }
            if u.per.milli() <= 0 || u.per.milli() > 1_000_000_000 {
                return Err(NodeError::Invalid(format!(
                    "a {} of {} must hold a positive quantity",
                    u.name, input.sku
                )));
            }
            if !(0..=MAX_PRICE).contains(&u.price) {
                return Err(NodeError::Invalid(format!(
                    "invalid price {} of a {}",
                    u.price, u.name
                )));
            }
            for b in &u.barcodes {
                validate_code("barcode", b)?;
            }
        }
        let tiers = input.tiers.as_deref().unwrap_or_default();
        if tiers.len() > 8 {
            return Err(NodeError::Invalid(
                "a product has at most 8 grosir prices".into(),
            ));
        }
        for (i, t) in tiers.iter().enumerate() {
            if t.min_qty.milli() <= 0
                || !(0..=MAX_PRICE).contains(&t.price)
                || tiers[..i].iter().any(|o| o.min_qty == t.min_qty)
            {
                return Err(NodeError::Invalid(format!(
                    "a grosir price of {} needs a positive quantity (once) and a price of 0 or more",
                    input.sku
                )));
            }
        }
        Ok(())
    }

    fn merged_product(&mut self, input: &ProductInput, now: i64) -> Result<Product, NodeError> {
        let id = product_id(self.store_id(), &input.sku);
        let existing = self.catalog()?.product(&id)?;
        let mut barcodes = existing
            .as_ref()
            .map(|p| p.barcodes.clone())
            .unwrap_or_default();
        for b in input.all_barcodes() {
            if !barcodes.contains(b) {
                barcodes.push(b.clone());
            }
        }
        Ok(Product {
            id,
            sku: input.sku.clone(),
            name: input.name.trim().to_owned(),
            barcodes,
            price: input.price,
            cost: input.cost.or(existing.as_ref().and_then(|p| p.cost)),
            category: input
                .category
                .clone()
                .or(existing.as_ref().and_then(|p| p.category.clone())),
            unit: input
                .unit
                .clone()
                .or(existing.as_ref().map(|p| p.unit.clone()))
                .unwrap_or_else(|| "pcs".into()),
            tax_code: match input.tax_code.as_deref() {
                Some(code) => {
                    let code: TaxCode = code.parse().map_err(NodeError::Invalid)?;
                    (code != TaxCode::Standard).then(|| code.as_str().to_owned())
                }
                None => existing.as_ref().and_then(|p| p.tax_code.clone()),
            },
            active: true,
            min_stock: input
                .min_stock
                .or(existing.as_ref().and_then(|p| p.min_stock)),
            units: match &input.units {
                Some(units) => units.iter().map(SellUnit::from).collect(),
                None => existing
                    .as_ref()
                    .map(|p| p.units.clone())
                    .unwrap_or_default(),
            },
            tiers: match &input.tiers {
                Some(tiers) => {
                    let mut tiers: Vec<PriceTier> = tiers.iter().map(PriceTier::from).collect();
                    tiers.sort_by_key(|t| t.min_qty);
                    tiers
                }
                None => existing
                    .as_ref()
                    .map(|p| p.tiers.clone())
                    .unwrap_or_default(),
            },
            promos: match &input.promos {
                Some(promos) => promos.clone(),
                None => existing
                    .as_ref()
                    .map(|p| p.promos.clone())
                    .unwrap_or_default(),
            },
            updated_at_ms: now,
        })
    }

    /// Adds or updates a product (and sets its stock when `input.stock` is given).
    pub fn add_product(&mut self, input: &ProductInput) -> Result<ProductAdded, NodeError> {
        self.require_admin("change the catalog")?;
        Self::validate_product(input)?;
        let now = now_ms();
        let product = self.merged_product(input, now)?;
        let is_new = self.catalog()?.product(&product.id)?.is_none();
        let stock_move = match input.stock {
            Some(target) => {
                let current = tables::on_hand(&self.db, &product.sku)?;
                let delta = opname_delta(target, current);
                (delta.milli() != 0).then(|| StockMovement {
                    id: uuid::Uuid::now_v7().to_string(),
                    kind: if is_new && current.milli() == 0 {
                        MovementKind::Receive
                    } else {
                        MovementKind::Opname
                    },
                    sku: product.sku.clone(),
                    qty: delta,
                    counted: Some(target),
                    other_store: None,
                    note: Some("product add --stock".into()),
                    at_ms: now,
                    user: None,
                    approved_by: None,
                    cost: None,
                    supplier: None,
                    transfer_id: None,
                })
            }
            None => None,
        };
        let today = self.today();
        let signer = self.identity.clone();
        let result = (|| -> Result<(), NodeError> {
            let catalog = self.catalog()?;
            catalog.upsert_product(&product)?;
            let catalog_chunk = Chunk::local(catalog.doc(), &signer);
            let ledger_write = match &stock_move {
                Some(m) => {
                    let ledger = self.own_ledger(&today)?;
                    ledger.record_movement(m)?;
                    Some((ledger.doc().id(), Chunk::local(ledger.doc(), &signer)))
                }
                None => None,
            };
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let catalog_id = DocId::catalog(self.store.store_id());
            // A joined till creates its catalog on first use: register it, or it would
            // never appear in the manifest and never sync.
            storage::register_doc(&tx, catalog_id, DocKind::Catalog, None, None)?;
            storage::append_chunk(&tx, catalog_id, &catalog_chunk)?;
            tables::upsert_product(&tx, &product)?;
            if let (Some((id, chunk)), Some(m)) = (ledger_write, &stock_move) {
                storage::register_doc(
                    &tx,
                    id,
                    DocKind::Ledger,
                    Some(&self.identity.device_id().to_string()),
                    Some(today.as_str()),
                )?;
                storage::append_chunk(&tx, id, &chunk)?;
                let place = tables::Place {
                    till_code: &self.till_code,
                    date: today.as_str(),
                };
                tables::index_movement(&tx, m, place)?;
            }
            tx.commit()?;
            Ok(())
        })();
        if result.is_err() {
            self.ledgers.clear();
        }
        self.after_write(DocKind::Catalog, result)?;
        self.maybe_compact(DocId::catalog(self.store_id()))?;
        if stock_move.is_some() {
            self.maybe_compact(self.own_ledger_id(&today))?;
        }
        Ok(ProductAdded {
            product_id: product.id,
            sku: product.sku,
        })
    }

    /// Adds or updates many products in one catalog change (imports), with their stock
    /// levels when given, in one transaction. Every input must already be valid (see
    /// [`Node::validate_product_input`]).
    pub fn add_products(&mut self, inputs: &[ProductInput]) -> Result<usize, NodeError> {
        self.require_admin("change the catalog")?;
        for input in inputs {
            Self::validate_product(input)?;
        }
        let now = now_ms();
        let mut products = Vec::with_capacity(inputs.len());
        for input in inputs {
            products.push(self.merged_product(input, now)?);
        }
        let mut moves = Vec::new();
        for (input, product) in inputs.iter().zip(&products) {
            if let Some(target) = input.stock {
                let current = tables::on_hand(&self.db, &product.sku)?;
                let delta = opname_delta(target, current);
                if delta.milli() != 0 {
                    moves.push(StockMovement {
                        id: uuid::Uuid::now_v7().to_string(),
                        kind: MovementKind::Opname,
                        sku: product.sku.clone(),
                        qty: delta,
                        counted: Some(target),
                        other_store: None,
                        note: Some("import".into()),
                        at_ms: now,
                        user: None,
                        approved_by: None,
                        cost: None,
                        supplier: None,
                        transfer_id: None,
                    });
                }
            }
        }
        let today = self.today();
        let device = self.device_id().to_string();
        let signer = self.identity.clone();
        let result = (|| -> Result<usize, NodeError> {
            let catalog = self.catalog()?;
            let n = catalog.upsert_products(&products, now)?;
            let catalog_chunk = Chunk::local(catalog.doc(), &signer);
            let ledger_write = if moves.is_empty() {
                None
            } else {
                let ledger = self.own_ledger(&today)?;
                for m in &moves {
                    ledger.record_movement(m)?;
                }
                Some((ledger.doc().id(), Chunk::local(ledger.doc(), &signer)))
            };
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let catalog_id = DocId::catalog(self.store.store_id());
            storage::register_doc(&tx, catalog_id, DocKind::Catalog, None, None)?;
            storage::append_chunk(&tx, catalog_id, &catalog_chunk)?;
            for p in &products {
                tables::upsert_product(&tx, p)?;
            }
            if let Some((id, chunk)) = ledger_write {
                storage::register_doc(
                    &tx,
                    id,
                    DocKind::Ledger,
                    Some(&device),
                    Some(today.as_str()),
                )?;
                storage::append_chunk(&tx, id, &chunk)?;
                let place = tables::Place {
                    till_code: &self.till_code,
                    date: today.as_str(),
                };
                for m in &moves {
                    tables::index_movement(&tx, m, place)?;
                }
            }
            tx.commit()?;
            Ok(n)
        })();
        if result.is_err() {
            self.ledgers.clear();
        }
        let n = self.after_write(DocKind::Catalog, result)?;
        self.maybe_compact(DocId::catalog(self.store_id()))?;
        if !moves.is_empty() {
            self.maybe_compact(self.own_ledger_id(&today))?;
        }
        Ok(n)
    }

    /// Checks a product input without writing anything.
    pub fn validate_product_input(input: &ProductInput) -> Result<(), NodeError> {
        Self::validate_product(input)
    }

    /// Searches products by name, SKU or barcode.
    pub fn search_products(&self, query: &str, limit: usize) -> Result<Vec<ProductRow>, NodeError> {
        tables::search_products(&self.db, query, limit)
    }

    /// The categories of products for sale, by name.
    pub fn categories(&self) -> Result<Vec<String>, NodeError> {
        tables::categories(&self.db)
    }

    /// Up to `limit` products of `category`, by name.
    pub fn products_in_category(
        &self,
        category: &str,
        limit: usize,
    ) -> Result<Vec<ProductRow>, NodeError> {
        tables::products_in_category(&self.db, category, limit)
    }

    /// Stock levels (all SKUs, or one).
    pub fn stock(&self, sku: Option<&str>) -> Result<Vec<StockRow>, NodeError> {
        match sku {
            Some(code) => {
                let sku = self.product_row(code)?.sku;
                tables::stock_levels(&self.db, Some(&sku))
            }
            None => tables::stock_levels(&self.db, None),
        }
    }

    /// Goods received from and returned to suppliers, newest first: of one SKU (or
    /// barcode), one supplier, or all.
    pub fn purchases(
        &self,
        code: Option<&str>,
        supplier: Option<&str>,
        limit: usize,
    ) -> Result<Vec<tables::PurchaseRow>, NodeError> {
        let sku = code
            .map(|c| self.product_row(c))
            .transpose()?
            .map(|p| p.sku);
        tables::purchases(&self.db, sku.as_deref(), supplier, limit)
    }

    /// Records a stock movement: receive, adjust or opname, as the device.
    pub fn record_movement(&mut self, input: &MovementInput) -> Result<MovementOutcome, NodeError> {
        self.record_movement_by(input, None, None)
    }

    /// Records a stock movement naming who recorded it and who approved it (the API
    /// decides whether they may: an adjustment or stocktake needs a supervisor).
    pub fn record_movement_by(
        &mut self,
        input: &MovementInput,
        user: Option<String>,
        approved_by: Option<String>,
    ) -> Result<MovementOutcome, NodeError> {
        let product = self.product_row(&input.sku)?;
        let note = input.note.clone().filter(|n| !n.trim().is_empty());
        if let Some(n) = &note {
            validate_text("note", n, 500)?;
        }
        let supplier = input.supplier.clone().filter(|n| !n.trim().is_empty());
        if let Some(n) = &supplier {
            validate_text("supplier", n, 120)?;
        }
        let purchase = matches!(
            input.kind,
            MovementKind::Receive | MovementKind::SupplierReturn
        );
        let transfer = self.check_transfer(input, &product.sku)?;
        if !purchase && (input.cost.is_some() || supplier.is_some()) {
            return Err(NodeError::Invalid(
                "cost and supplier belong to a receipt or a return to the supplier".into(),
            ));
        }
        if let Some(c) = input.cost
            && !(0..=MAX_PRICE).contains(&c)
        {
            return Err(NodeError::Invalid(format!(
                "a cost must be between 0 and {MAX_PRICE}, got {c}"
            )));
        }
        let (qty, counted) = match input.kind {
            MovementKind::Receive => match input.qty {
                Some(q) if q.milli() > 0 => (q, None),
                _ => return Err(NodeError::Invalid("receive needs a positive qty".into())),
            },
            MovementKind::SupplierReturn => match input.qty {
                Some(q) if q.milli() > 0 => {
                    let known = tables::on_hand(&self.db, &product.sku)?;
                    if q.milli() > known.milli() {
                        return Err(NodeError::Conflict(format!(
                            "cannot return {} of {} to the supplier: {} on hand",
                            q, product.sku, known
                        )));
                    }
                    (q.neg(), None)
                }
                _ => {
                    return Err(NodeError::Invalid(
                        "a return to the supplier needs a positive qty".into(),
                    ));
                }
            },
            MovementKind::Adjust => match input.qty {
                Some(q) if q.milli() != 0 => (q, None),
                _ => return Err(NodeError::Invalid("adjust needs a non-zero qty".into())),
            },
            // Checked by `check_transfer`: a signed, non-zero quantity.
            MovementKind::Transfer => (input.qty.unwrap_or_default(), None),
            MovementKind::Opname => match input.counted {
                Some(c) if c.milli() >= 0 => {
                    let known = tables::on_hand(&self.db, &product.sku)?;
                    (opname_delta(c, known), Some(c))
                }
                _ => {
                    return Err(NodeError::Invalid(
                        "opname needs a counted quantity of 0 or more".into(),
                    ));
                }
            },
            other => {
                return Err(NodeError::Invalid(format!(
                    "movement kind {} cannot be recorded directly",
                    other.as_str()
                )));
            }
        };
        let id = uuid::Uuid::now_v7().to_string();
        let (other_store, transfer_id) = match transfer {
            Some((other, Some(sent))) => (Some(other), Some(sent)),
            // A sending half is the transfer: its own id is the slip's.
            Some((other, None)) => (Some(other), Some(id.clone())),
            None => (None, None),
        };
        let movement = StockMovement {
            id,
            kind: input.kind,
            sku: product.sku.clone(),
            qty,
            counted,
            other_store,
            note,
            at_ms: now_ms(),
            user,
            approved_by,
            cost: input.cost,
            supplier,
            transfer_id,
        };
        self.write_ledger(
            |l| l.record_movement(&movement).map(drop),
            |tx, place| tables::index_movement(tx, &movement, place).map(drop),
        )?;
        Ok(MovementOutcome {
            movement_id: movement.id,
            delta: qty.as_f64(),
        })
    }

    /// For a transfer between outlets, `(the other store, the sent transfer's id when
    /// receiving)`: sending takes no more than is on hand, receiving names the slip's
    /// id and takes each transfer in once; `None` for other movements (which must not
    /// name either).
    fn check_transfer(
        &self,
        input: &MovementInput,
        sku: &str,
    ) -> Result<Option<(String, Option<String>)>, NodeError> {
        if input.kind != MovementKind::Transfer {
            if input.other_store.is_some() || input.transfer_id.is_some() {
                return Err(NodeError::Invalid(
                    "other_store and transfer_id belong to a transfer".into(),
                ));
            }
            return Ok(None);
        }
        let other: StoreId = input
            .other_store
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                NodeError::Invalid("a transfer names the other outlet's store id".into())
            })?;
        if other == self.store_id() {
            return Err(NodeError::Invalid(
                "a transfer goes to another outlet, not this one".into(),
            ));
        }
        let qty = input.qty.unwrap_or_default();
        if qty.milli() < 0 {
            if input.transfer_id.is_some() {
                return Err(NodeError::Invalid(
                    "a sent transfer gets its id here; transfer_id is for receiving".into(),
                ));
            }
            let known = tables::on_hand(&self.db, sku)?;
            if qty.neg().milli() > known.milli() {
                return Err(NodeError::Conflict(format!(
                    "cannot send {} of {sku}: {known} on hand",
                    qty.neg()
                )));
            }
            return Ok(Some((other.to_string(), None)));
        }
        if qty.milli() == 0 {
            return Err(NodeError::Invalid(
                "a transfer needs a quantity: negative sends, positive receives".into(),
            ));
        }
        let sent = input.transfer_id.as_deref().map(str::trim).ok_or_else(|| {
            NodeError::Invalid("receiving a transfer needs the transfer_id on its slip".into())
        })?;
        validate_code("transfer id", sent)?;
        if tables::transfer_received(&self.db, sent, sku)? {
            return Err(NodeError::Conflict(format!(
                "transfer {sent} of {sku} was already received here"
            )));
        }
        Ok(Some((other.to_string(), Some(sent.to_owned()))))
    }

    /// Prices a sale request exactly as [`Node::sell`] would (catalog prices, overrides,
    /// discounts, the store's tax rule and cash rounding, the payments), writing nothing.
    pub fn price(&self, req: &SaleRequest) -> Result<PricedSale, NodeError> {
        if req.items.len() > 500 {
            return Err(NodeError::Invalid(
                "a sale may have at most 500 lines".into(),
            ));
        }
        let mut cart = Vec::with_capacity(req.items.len());
        // A member price is for a customer with a member tier, named on the sale.
        let member = match req.customer_id.as_deref() {
            Some(id) => self
                .customer(id)?
                .tier
                .is_some_and(|t| !t.trim().is_empty()),
            None => false,
        };
        let today = self.today();
        for item in &req.items {
            let ResolvedItem {
                product: p,
                qty,
                unit_price,
                discount,
                unit,
                ..
            } = self.resolve_item(item)?;
            if !p.active {
                return Err(NodeError::Invalid(format!(
                    "product {} is not for sale",
                    p.sku
                )));
            }
            // A line in another unit names it, on the screen and on every reprint.
            let name = match &unit {
                Some(u) => format!("{} ({})", p.name, u.name),
                None => p.name,
            };
            // Promotions are on the stock unit at the catalog's price (not on a price
            // typed over it), and with a typed discount never take the line below zero.
            let promo = (unit.is_none() && item.price.is_none())
                .then(|| kasir_crdt::promo::best(&p.promos, qty, unit_price, member, &today))
                .flatten()
                .map(|mut promo| {
                    let room = qty.times_price(unit_price).saturating_sub(discount).max(0);
                    promo.discount = promo.discount.min(room);
                    promo
                })
                .filter(|promo| promo.discount > 0);
            cart.push(CartLine {
                product_id: p.product_id,
                sku: p.sku,
                name,
                qty,
                unit_price,
                discount: discount + promo.as_ref().map_or(0, |p| p.discount),
                tax_code: TaxCode::of_product(p.tax_code.as_deref()),
                unit,
                promo,
            });
        }
        let cart_discount = self.cart_discount(req, &cart)?;
        kasir_crdt::pricing::spread_cart_discount(&mut cart, cart_discount)?;
        Ok(price_cart(
            cart,
            &self.pricing_rules(),
            req.payments.clone(),
        )?)
    }

    /// A request's discount on the whole cart in rupiah: as given, or its percent of
    /// what the lines come to after their own discounts (rounded half up).
    pub(crate) fn cart_discount(
        &self,
        req: &SaleRequest,
        cart: &[CartLine],
    ) -> Result<i64, NodeError> {
        match (req.cart_discount, req.cart_discount_percent) {
            (Some(_), Some(_)) => Err(NodeError::Invalid(
                "give the cart discount in rupiah or in percent, not both".into(),
            )),
            (Some(d), None) if d < 0 => Err(NodeError::Invalid(
                "a cart discount must not be negative".into(),
            )),
            (Some(d), None) => Ok(d),
            (None, Some(p)) if p > 100 => Err(NodeError::Invalid(format!(
                "a cart discount of {p}% is more than the cart"
            ))),
            (None, Some(p)) => {
                let net: i128 = cart
                    .iter()
                    .map(|c| i128::from(c.qty.times_price(c.unit_price) - c.discount))
                    .sum();
                Ok(((net * i128::from(p) + 50) / 100) as i64)
            }
            (None, None) => Ok(0),
        }
    }

    /// What this store prices by (its tax rule, PBJT rate for food lines, rounding).
    pub fn pricing_rules(&self) -> PricingRules {
        PricingRules {
            tax: self.profile.tax_rule,
            pbjt_bp: self.profile.pbjt_bp,
            rounding: self.profile.cash_rounding,
        }
    }

    /// The sale recorded with `client_id`, if any.
    pub(crate) fn sale_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<SaleOutcome>, NodeError> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT sale_id, receipt_no, total, change FROM sales WHERE client_id = ?1",
            )?
            .query_row([client_id], |r| {
                Ok(SaleOutcome {
                    sale_id: tables::sale_id_column(r, 0)?,
                    receipt_no: r.get(1)?,
                    total: r.get(2)?,
                    change: r.get(3)?,
                    created: false,
                })
            })
            .optional()?)
    }

    /// Records a sale. Returns only once the sale is durable on disk.
    ///
    /// The same `client_id` again returns the first sale's result (with `created: false`)
    /// instead of selling twice. Unknown SKUs and short payments are refused before
    /// anything is written.
    pub fn sell(&mut self, req: &SaleRequest) -> Result<SaleOutcome, NodeError> {
        self.sell_by(req, None, None)
    }

    /// Records a sale rung up by `user` (the logged-in cashier: their name and id go on
    /// the record instead of the request's free-text `cashier`), with the approval the
    /// API required for a big discount or a price override ([`Node::sale_needs`]).
    pub fn sell_by(
        &mut self,
        req: &SaleRequest,
        user: Option<(&str, &str)>,
        approved_by: Option<String>,
    ) -> Result<SaleOutcome, NodeError> {
        self.record_sale(req, user, approved_by, false)
    }

    /// [`Node::sell_by`], where `acquirer_paid` says the request's last payment is a
    /// dynamic QRIS the acquirer confirmed ([`crate::qris`]); every other non-cash
    /// payment is recorded as confirmed by the person ringing the sale up.
    pub(crate) fn record_sale(
        &mut self,
        req: &SaleRequest,
        user: Option<(&str, &str)>,
        approved_by: Option<String>,
        acquirer_paid: bool,
    ) -> Result<SaleOutcome, NodeError> {
        if let Some(cid) = &req.client_id {
            validate_code("client id", cid)?;
            if let Some(first) = self.sale_by_client_id(cid)? {
                return Ok(first);
            }
        }
        if let Some(c) = &req.cashier {
            validate_text("cashier", c, 60)?;
        }
        let mut priced = self.price(req)?;
        let confirmer = user
            .map(|(_, name)| name.to_owned())
            .or_else(|| req.cashier.clone())
            .unwrap_or_else(|| self.till_code.clone());
        let last = priced.payments.len().saturating_sub(1);
        for (i, p) in priced.payments.iter_mut().enumerate() {
            let by_acquirer = acquirer_paid && i == last;
            let needs_a_person =
                !(p.is_cash() || p.method == kasir_crdt::records::KASBON || by_acquirer);
            p.confirmed_by = needs_a_person.then(|| confirmer.clone());
        }
        let kasbon = kasir_crdt::records::kasbon_of(&priced.payments);
        self.check_sale_customer(req.customer_id.as_deref(), req.due_date.as_deref(), kasbon)?;
        let customer_name = match &req.customer_id {
            Some(id) => Some(self.customer(id)?.name),
            None => None,
        };
        let now = now_ms();
        let today = self.profile.business_date(now);
        let device = self.device_id().to_string();
        let till_code = self.till_code.clone();
        let result = (|| -> Result<(Sale, DocId), NodeError> {
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq: i64 = tx.query_row(
                "INSERT INTO receipt_counters(date, seq) VALUES (?1, 1)
                 ON CONFLICT(date) DO UPDATE SET seq = seq + 1 RETURNING seq",
                [today.as_str()],
                |r| r.get(0),
            )?;
            let sale = Sale {
                id: uuid::Uuid::now_v7().to_string(),
                client_id: req.client_id.clone(),
                receipt_no: format!("{till_code}-{}-{seq:04}", today.compact()),
                till: device.clone(),
                till_code: till_code.clone(),
                cashier: user
                    .map(|(_, name)| name.to_owned())
                    .or_else(|| req.cashier.clone()),
                user_id: user.map(|(id, _)| id.to_owned()),
                approved_by: approved_by.clone(),
                created_at_ms: now,
                business_date: today.to_string(),
                lines: priced.lines,
                subtotal: priced.subtotal,
                service_charge: priced.tax.service_charge,
                tax: priced.tax.tax,
                dpp: priced.tax.dpp,
                dpp_other: priced.tax.dpp_other,
                tax_rule: self.profile.tax_rule,
                taxes: priced.taxes,
                seller: Some(self.profile.seller()),
                customer_id: req.customer_id.clone(),
                due_date: req.due_date.clone(),
                customer_name,
                rounding: priced.rounding,
                total: priced.total,
                payments: priced.payments,
                change: priced.change,
            };
            // Inlined rather than `self.own_ledger()`: the transaction borrows `self.db`.
            let meta = LedgerMeta {
                store: self.store.store_id(),
                till: self.identity.device_id(),
                date: today.clone(),
            };
            let id = LedgerDoc::id_for(&meta);
            if !self.ledgers.contains_key(&id) {
                let l = match storage::load_doc(&tx, id, DocKind::Ledger, self.actor.clone())? {
                    Some(doc) => LedgerDoc::from_doc(doc)?,
                    None => LedgerDoc::create(meta, self.actor.clone())?,
                };
                if self.ledgers.len() >= 8 {
                    self.ledgers.clear();
                }
                self.ledgers.insert(id, l);
            }
            let ledger = self
                .ledgers
                .get_mut(&id)
                .ok_or_else(|| NodeError::NotFound(format!("ledger {id}")))?;
            ledger.record_sale(&sale)?;
            let id = ledger.doc().id();
            let chunk = Chunk::local(ledger.doc(), &self.identity);
            storage::register_doc(
                &tx,
                id,
                DocKind::Ledger,
                Some(&device),
                Some(today.as_str()),
            )?;
            storage::append_chunk(&tx, id, &chunk)?;
            tables::index_sale(&tx, &sale, id)?;
            tx.commit()?;
            Ok((sale, id))
        })();
        let (sale, doc_id) = self.after_write(DocKind::Ledger, result)?;
        self.maybe_compact(doc_id)?;
        Ok(SaleOutcome {
            sale_id: sale.id,
            receipt_no: sale.receipt_no,
            total: sale.total,
            change: sale.change,
            created: true,
        })
    }

    /// The full record of a sale (from its ledger, wherever it was written).
    pub fn sale(&mut self, sale_id: &str) -> Result<Sale, NodeError> {
        let doc: Option<Vec<u8>> = self
            .db
            .prepare_cached(
                "SELECT d.doc_id FROM sales s JOIN doc_numbers d ON d.n = s.doc WHERE s.sale_id = ?1",
            )?
            .query_row([tables::SaleKey::of(sale_id)], |r| r.get(0))
            .optional()?;
        let doc = doc.ok_or_else(|| NodeError::NotFound(format!("sale {sale_id}")))?;
        let id = DocId(
            doc.try_into()
                .map_err(|_| NodeError::Corrupt("sale index doc id".into()))?,
        );
        self.ledger(id)?
            .sale(sale_id)?
            .ok_or_else(|| NodeError::NotFound(format!("sale {sale_id}")))
    }

    /// The listed status of a sale.
    pub fn sale_status(&self, sale_id: &str) -> Result<SaleStatus, NodeError> {
        self.db
            .prepare_cached("SELECT status FROM sales WHERE sale_id = ?1")?
            .query_row([tables::SaleKey::of(sale_id)], |r| r.get(0))
            .optional()?
            .ok_or_else(|| NodeError::NotFound(format!("sale {sale_id}")))
    }

    /// Voids a whole sale; its stock comes back.
    pub fn void_sale(&mut self, sale_id: &str, reason: &str) -> Result<String, NodeError> {
        self.void_sale_by(sale_id, reason, None, None)
    }

    /// Voids a sale recording who did it and who approved it (the API decides whether
    /// they may: `Node::authorize`).
    pub fn void_sale_by(
        &mut self,
        sale_id: &str,
        reason: &str,
        cashier: Option<String>,
        approved_by: Option<String>,
    ) -> Result<String, NodeError> {
        let sale = self.sale(sale_id)?;
        match self.sale_status(sale_id)? {
            SaleStatus::Voided => {
                return Err(NodeError::Conflict(format!(
                    "sale {sale_id} is already voided"
                )));
            }
            SaleStatus::PartiallyRefunded | SaleStatus::Refunded => {
                return Err(NodeError::Conflict(format!(
                    "sale {sale_id} has refunds: refund the rest of it instead of voiding it"
                )));
            }
            _ => {}
        }
        let void = Void {
            id: uuid::Uuid::now_v7().to_string(),
            sale_id: sale.id.clone(),
            reason: reason.chars().take(200).collect(),
            cashier,
            approved_by,
            at_ms: now_ms(),
            lines: sale
                .lines
                .iter()
                .map(|l| StockLine {
                    sku: l.sku.clone(),
                    qty: l.stock_qty(),
                })
                .collect(),
            till_code: Some(self.till_code.clone()),
            payments: sale
                .money_by_method()
                .into_iter()
                .map(|(method, amount)| Payment {
                    method,
                    amount,
                    reference: None,
                    confirmed_by: None,
                })
                .collect(),
            reversed: Some(Reversal {
                total: sale.total,
                tax: sale.tax,
                rounding: sale.rounding,
            }),
        };
        self.write_ledger(
            |l| l.record_void(&void).map(drop),
            |tx, place| tables::index_void(tx, &void, place),
        )?;
        Ok(void.id)
    }

    /// Writes one change into this till's ledger of today and the read-table rows it
    /// implies (`rows`, given where the ledger is: this till, today), in one
    /// transaction.
    pub(crate) fn write_ledger(
        &mut self,
        change: impl FnOnce(&mut LedgerDoc) -> Result<(), kasir_crdt::DocError>,
        rows: impl FnOnce(&rusqlite::Transaction<'_>, tables::Place<'_>) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let today = self.today();
        let device = self.device_id().to_string();
        let signer = self.identity.clone();
        let till_code = self.till_code.clone();
        let result = (|| -> Result<DocId, NodeError> {
            let ledger = self.own_ledger(&today)?;
            change(ledger)?;
            let id = ledger.doc().id();
            let chunk = Chunk::local(ledger.doc(), &signer);
            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            storage::register_doc(
                &tx,
                id,
                DocKind::Ledger,
                Some(&device),
                Some(today.as_str()),
            )?;
            storage::append_chunk(&tx, id, &chunk)?;
            let place = tables::Place {
                till_code: &till_code,
                date: today.as_str(),
            };
            rows(&tx, place)?;
            tx.commit()?;
            Ok(id)
        })();
        let id = self.after_write(DocKind::Ledger, result)?;
        self.maybe_compact(id)
    }

    /// Sales of a business date (all when `None`).
    pub fn sales(&self, date: Option<&str>) -> Result<Vec<SaleRow>, NodeError> {
        self.find_sales(&crate::api::SalesQuery {
            date: date.map(str::to_owned),
            receipt: None,
        })
    }

    /// Sales of a date and/or whose receipt number contains a text (oldest first; a
    /// receipt search newest first, at most [`crate::api::MAX_FOUND_SALES`]).
    pub fn find_sales(&self, q: &crate::api::SalesQuery) -> Result<Vec<SaleRow>, NodeError> {
        if let Some(d) = &q.date {
            d.parse::<BusinessDate>()
                .map_err(|e| NodeError::Invalid(e.to_string()))?;
        }
        let receipt = q
            .receipt
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if let Some(r) = receipt
            && (r.len() > 64 || r.chars().any(char::is_control))
        {
            return Err(NodeError::Invalid(format!("not a receipt number: {r:?}")));
        }
        tables::sales(
            &self.db,
            q.date.as_deref(),
            receipt,
            crate::api::MAX_FOUND_SALES,
        )
    }

    /// The receipt of a sale as plain text at `width` columns.
    pub fn receipt_text(&mut self, sale_id: &str, width: usize) -> Result<String, NodeError> {
        let sale = self.sale(sale_id)?;
        let status = self.sale_status(sale_id)?;
        let opts = kasir_devices::receipt::ReceiptOptions {
            width,
            status: (status == SaleStatus::Voided).then(|| "DIBATALKAN".to_owned()),
            reprint: false,
            ..Default::default()
        };
        Ok(kasir_devices::receipt::render_text(
            &self.profile,
            &sale,
            &opts,
        )?)
    }
}

#[cfg(feature = "test-utils")]
impl Node {
    /// Benches and tests: stores a whole ledger built outside the node (a year of
    /// history in seconds) as one snapshot, with the read-table rows of its records, in
    /// one transaction; the changes written with this device's actor
    /// ([`Node::actor`]) are signed. Returns how many records did not decode.
    pub fn store_ledger(&mut self, ledger: &mut LedgerDoc) -> Result<usize, NodeError> {
        let meta = ledger.meta().clone();
        let id = ledger.doc().id();
        let sigs = kasir_sync::trust::ChangeSig::sign_own(
            &self.identity,
            &ledger.doc().changes_after(&[]),
        );
        let chunk = Chunk {
            bytes: ledger.doc().save(),
            heads: ledger.doc().heads_hash(),
            sigs,
        };
        let tx = self.db.transaction()?;
        storage::register_doc(
            &tx,
            id,
            DocKind::Ledger,
            Some(&meta.till.to_string()),
            Some(meta.date.as_str()),
        )?;
        storage::append_chunk(&tx, id, &chunk)?;
        let till_code = till_code_in(&self.store, &self.identity, &self.till_code, meta.till);
        let bad = tables::index_ledger(&tx, ledger, &till_code)?;
        tx.commit()?;
        Ok(bad)
    }
}
