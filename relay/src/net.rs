//! The relay's iroh endpoint: sync sessions of every store it serves, and joins.
//!
//! Who owns what:
//! - [`Relay`] owns the PostgreSQL pool, the endpoint and the registry of loaded store
//!   replicas, and a [`CancellationToken`] shared by every task it starts.
//! - The **accept loop** task takes each connection. A sync connection names its store in
//!   its first frame (`Hello`); the relay loads that store's replica (from PostgreSQL
//!   chunks) and checks the peer against the store's roster *before* anything else flows.
//!   A join connection carries a ticket secret the relay issued (`store create` / `store
//!   adopt`).
//! - One **session** task per connection runs a [`Session`] in a `select!` loop over the
//!   peer's frames, the store's change notifications and cancellation. Handling a frame
//!   locks the store's replica, applies it, persists what it brought (chunks,
//!   materialised rows, outbox rows: one transaction), and only then answers.
//! - The **poller** task merges chunks other relay instances stored, so tills connected
//!   here see changes that arrived there. On the same tick it unloads idle stores and
//!   parks closed days nobody touched for a while ([`crate::replica`]'s module note):
//!   memory follows activity, not history.
//! - A recognition connection (`kasir/ml/1`) is handed to [`crate::ml::serve`].
//!
//! A persist failure (PostgreSQL down or restarted) unloads the store's replica and ends
//! its sessions; the tills reconnect with backoff and resend, and the replica reloads
//! from what PostgreSQL holds.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::Endpoint;
use iroh::endpoint::Connection;
use kasir_crdt::records::Product;
use kasir_crdt::store::{Device, Invite, Role, StoreProfile};
use kasir_crdt::{BusinessDate, DeviceId, DocId, StoreId};
use kasir_sync::driver::{self, DriveError, SessionHost};
use kasir_sync::join::{JoinRequest, JoinResponse, serve_join};
use kasir_sync::membership::{
    Admission, AdmissionError, Membership, Ticket, plan_admission, secret_hash,
};
use kasir_sync::now_ms;
use kasir_sync::recognition::ML_ALPN;
use kasir_sync::transport::{
    FrameReader, FrameWriter, TraceId, TransportError, accept_each, bind_endpoint, device_of,
};
use kasir_sync::wire::MAX_FRAME;
use kasir_sync::{Frame, Identity, JOIN_ALPN, ReplicaError, SYNC_ALPN, Session, SessionError};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::db::{self, DbError, TicketKind};
use crate::materialise;
use crate::metrics::RelayMetrics;
use crate::replica::{DocSource, StoreReplica};

/// Why a relay operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// PostgreSQL.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The transport.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The sync protocol.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The store's documents.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The membership rules refused an admission.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// A sync session failed.
    #[error(transparent)]
    Drive(Box<DriveError<RelayError>>),
    /// The peer may not do this.
    #[error("refused: {0}")]
    Refused(String),
}

/// Why head office's write (a product, a revocation) was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadOfficeError {
    /// No such store for this tenant.
    #[error("no store {0}")]
    StoreNotFound(StoreId),
    /// No such device in the store's roster.
    #[error("no device {0} in the store's roster")]
    UnknownDevice(String),
    /// Head office may not revoke an owner or the relay (the owner's till does that).
    #[error("{0}")]
    Protected(String),
    /// The relay is not in the store's roster (a store that has not linked it yet).
    #[error("the relay is not in the roster of store {0}: link it first (kasir join)")]
    NotInRoster(StoreId),
    /// The request itself is not acceptable (a role or till code head office may not
    /// give).
    #[error("{0}")]
    Invalid(String),
    /// The edit itself.
    #[error(transparent)]
    Edit(#[from] crate::catalog::EditError),
    /// Loading, writing or persisting the store.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl From<ReplicaError> for HeadOfficeError {
    fn from(e: ReplicaError) -> HeadOfficeError {
        HeadOfficeError::Relay(e.into())
    }
}

impl From<DriveError<RelayError>> for RelayError {
    fn from(e: DriveError<RelayError>) -> RelayError {
        RelayError::Drive(Box::new(e))
    }
}

/// A document stored in more chunks than this is compacted into one snapshot.
pub const COMPACT_AFTER_CHUNKS: usize = 64;

/// A store no till has synced with for this long leaves memory.
pub const IDLE_UNLOAD: Duration = Duration::from_secs(600);

/// How long a ledger of a closed business day stays in memory after its last use.
pub const PARK_AFTER: Duration = Duration::from_secs(300);

/// Documents parked per store per poll tick (parking compacts first: bounded work).
const PARK_PER_TICK: usize = 32;

/// How long tickets stay valid.
pub const TICKET_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A loaded store: its replica and a token that ends its sessions when it is unloaded.
#[derive(Debug)]
struct Loaded {
    store: StoreId,
    replica: tokio::sync::Mutex<StoreReplica>,
    cancel: CancellationToken,
    /// Sync sessions of the store open now.
    sessions: AtomicI64,
    /// When the last of them ended (ms since the epoch).
    idle_since_ms: AtomicI64,
}

impl Loaded {
    /// Locks the replica unless a failed persist poisoned it (its holders then end).
    async fn live(&self) -> Result<tokio::sync::MutexGuard<'_, StoreReplica>, RelayError> {
        let r = self.replica.lock().await;
        if r.is_poisoned() {
            return Err(RelayError::Refused("the store is reloading".into()));
        }
        Ok(r)
    }
}

/// The relay: registry of loaded stores over one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    idle_unload: Duration,
    /// `None`: nothing is parked.
    park_after: Option<Duration>,
    loaded: Mutex<HashMap<StoreId, Arc<Loaded>>>,
    cancel: CancellationToken,
    galleries: crate::ml::Galleries,
    metrics: RelayMetrics,
    /// The relay's key: every change a store replica writes is signed with it.
    identity: Identity,
    /// The one open session of each (store, till), by session number.
    peer_sessions: Mutex<HashMap<(StoreId, DeviceId), (u64, CancellationToken)>>,
    session_numbers: std::sync::atomic::AtomicU64,
}

impl Relay {
    /// A relay over `pool` (nothing runs until [`Relay::serve`]) that unloads a store no
    /// till has synced with for [`IDLE_UNLOAD`].
    pub fn new(pool: PgPool, identity: Identity, metrics: RelayMetrics) -> Relay {
        Relay::with_idle_unload(pool, identity, metrics, IDLE_UNLOAD)
    }

    /// A relay that unloads stores idle for `idle_unload` (and parks closed days idle
    /// for [`PARK_AFTER`]).
    pub fn with_idle_unload(
        pool: PgPool,
        identity: Identity,
        metrics: RelayMetrics,
        idle_unload: Duration,
    ) -> Relay {
        Relay::with_memory(pool, identity, metrics, idle_unload, Some(PARK_AFTER))
    }

    /// A relay that unloads stores idle for `idle_unload` and takes ledgers of closed
    /// business days untouched for `park_after` out of memory (`None`: never).
    pub fn with_memory(
        pool: PgPool,
        identity: Identity,
        metrics: RelayMetrics,
        idle_unload: Duration,
        park_after: Option<Duration>,
    ) -> Relay {
        Relay {
            inner: Arc::new(Inner {
                pool,
                idle_unload,
                park_after,
                loaded: Mutex::new(HashMap::new()),
                cancel: CancellationToken::new(),
                galleries: crate::ml::Galleries::new(),
                metrics,
                identity,
                peer_sessions: Mutex::new(HashMap::new()),
                session_numbers: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// The relay's own device id (its endpoint): the author of head office's writes.
    pub fn device_id(&self) -> DeviceId {
        self.inner.identity.device_id()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &RelayMetrics {
        &self.inner.metrics
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Stops every task and session.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// The recognition galleries cached for questions from tills.
    pub fn ml_galleries(&self) -> &crate::ml::Galleries {
        &self.inner.galleries
    }

    /// The standing of `device` in `store`'s roster and the store's tenant, loading the
    /// store's replica if needed (as a sync session would). An unknown store is refused.
    pub async fn standing(
        &self,
        store: StoreId,
        device: DeviceId,
    ) -> Result<(Membership, Uuid), RelayError> {
        let loaded = self
            .inner
            .loaded
            .lock()
            .ok()
            .and_then(|l| l.get(&store).cloned());
        if let Some(loaded) = loaded {
            let r = loaded.live().await?;
            return Ok((r.membership(device), r.tenant()));
        }
        // Not loaded: read the roster alone, so a stranger never makes the relay load a
        // store's whole history.
        let row = db::store(&self.inner.pool, store)
            .await?
            .ok_or_else(|| RelayError::Refused(format!("store {store} is not served here")))?;
        let chunks = db::roster_chunks(&self.inner.pool, store).await?;
        let roster = tokio::task::block_in_place(|| {
            StoreReplica::load(
                store,
                row.tenant,
                row.adopted_by,
                self.inner.identity.clone(),
                chunks,
                Vec::new(),
            )
        });
        Ok((roster.membership(device), row.tenant))
    }

    /// Ends the session `peer` has open with `store` on this instance, if any, and
    /// registers a new one, returning its number and cancellation token: a till
    /// reconnecting after a network drop replaces its half-dead session instead of adding
    /// a second.
    fn register_session(
        &self,
        store: StoreId,
        peer: DeviceId,
        parent: &CancellationToken,
    ) -> (u64, CancellationToken) {
        let token = parent.child_token();
        let number = self.inner.session_numbers.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.inner.peer_sessions.lock()
            && let Some((_, old)) = open.insert((store, peer), (number, token.clone()))
        {
            tracing::info!(%peer, %store, "a newer session replaces the open one");
            old.cancel();
        }
        (number, token)
    }

    /// Forgets session `number` if it is still `peer`'s registered one.
    fn end_session(&self, store: StoreId, peer: DeviceId, number: u64) {
        if let Ok(mut open) = self.inner.peer_sessions.lock()
            && open.get(&(store, peer)).is_some_and(|(n, _)| *n == number)
        {
            open.remove(&(store, peer));
        }
    }

    /// Head office sets `edit` on the product `sku` of `store` (see [`crate::catalog`]):
    /// written into the catalog as the relay, signed, persisted with its materialised
    /// row, then offered to every till syncing with the store now; the others get it
    /// when they next connect. `tenant` must own the store (else it is not found).
    pub async fn edit_product(
        &self,
        tenant: Uuid,
        store: StoreId,
        sku: &str,
        edit: &crate::catalog::ProductEdit,
    ) -> Result<Product, HeadOfficeError> {
        let loaded = self.replica(store).await?;
        let mut r = loaded.live().await?;
        self.may_write_for(&r, tenant, store)?;
        let existing = r.product(sku)?;
        let product = edit.apply(store, sku, existing, now_ms())?;
        tokio::task::block_in_place(|| r.write_product(&product))?;
        self.commit_own_writes(r).await?;
        tracing::info!(%store, sku, "head office changed a product");
        Ok(product)
    }

    /// Persists what the relay itself wrote into `r` (head office's edits) and tells the
    /// store's sessions; a failed persist poisons and unloads the replica, as a frame's
    /// does.
    async fn commit_own_writes(
        &self,
        mut r: tokio::sync::MutexGuard<'_, StoreReplica>,
    ) -> Result<(), RelayError> {
        let writes = r.take_pending();
        if writes.is_empty() {
            return Ok(());
        }
        if let Err(e) =
            materialise::persist(&self.inner.pool, r.tenant(), r.store(), &writes, None).await
        {
            self.inner.metrics.persist_errors.inc();
            r.poison();
            let store = r.store();
            drop(r);
            self.unload(store);
            return Err(e.into());
        }
        self.inner.metrics.persists.inc();
        r.mark_written(&writes);
        r.notify(writes.iter().map(|w| w.doc.id));
        Ok(())
    }

    /// Head office revokes `device` of `store` (a lost or stolen till): written into the
    /// roster as the relay, signed, persisted, then carried by sync — the store's tills
    /// refuse the device's changes from then on, and so does the relay. An owner or a
    /// relay cannot be revoked this way; revoking twice is fine.
    pub async fn revoke_device(
        &self,
        tenant: Uuid,
        store: StoreId,
        device: &str,
    ) -> Result<(), HeadOfficeError> {
        let id: DeviceId = device
            .parse()
            .map_err(|_| HeadOfficeError::UnknownDevice(device.to_owned()))?;
        let loaded = self.replica(store).await?;
        let mut r = loaded.live().await?;
        self.may_write_for(&r, tenant, store)?;
        let entry = r
            .roster_entry(id)
            .ok_or_else(|| HeadOfficeError::UnknownDevice(device.to_owned()))?;
        if matches!(entry.role, Role::Owner | Role::Relay) {
            return Err(HeadOfficeError::Protected(format!(
                "{device} is the store's {}: revoke it from an owner's till",
                entry.role.as_str()
            )));
        }
        if entry.revoked {
            return Ok(());
        }
        let revoked = Device {
            revoked: true,
            vouched: tokio::task::block_in_place(|| r.device_history(id))?,
            ..entry
        };
        let now = now_ms();
        tokio::task::block_in_place(|| {
            r.store_doc()?
                .put_device(id, &revoked, now)
                .map_err(ReplicaError::storage)?;
            r.queue_store_write()
        })?;
        self.commit_own_writes(r).await?;
        if let Err(e) = db::till_revoked(&self.inner.pool, store, id).await {
            tracing::warn!(error = %e, "marking a revoked till on the Perangkat page failed");
        }
        // Its open session ends now; its next connection is refused at the roster check.
        if let Ok(open) = self.inner.peer_sessions.lock()
            && let Some((_, cancel)) = open.get(&(store, id))
        {
            cancel.cancel();
        }
        tracing::info!(%store, %device, "head office revoked a device");
        Ok(())
    }

    /// Head office replaces the lost or broken till `till_code` of `store` (`kasir restore
    /// --from-relay` on the new tablet): in one signed change of the roster the old
    /// device is revoked and a one-time invite for the same till code and role is
    /// issued; returns the ticket. The new tablet joins with it, syncs the store's
    /// documents from the relay (and its peers), and numbers its receipts on past the old
    /// device's. An owner's or the relay's device cannot be replaced from head office.
    pub async fn replace_till(
        &self,
        tenant: Uuid,
        store: StoreId,
        till_code: &str,
    ) -> Result<TillReplaced, HeadOfficeError> {
        let loaded = self.replica(store).await?;
        let mut r = loaded.live().await?;
        self.may_write_for(&r, tenant, store)?;
        let (old, entry) = r
            .store_doc()?
            .devices()
            .into_iter()
            .find(|(_, d)| d.till_code == till_code && !d.revoked)
            .ok_or_else(|| HeadOfficeError::UnknownDevice(till_code.to_owned()))?;
        if matches!(entry.role, Role::Owner | Role::Relay) {
            return Err(HeadOfficeError::Protected(format!(
                "till {till_code} is the store's {}: replace it from an owner's till",
                entry.role.as_str()
            )));
        }
        let (hash, ticket) = self.record_join_ticket(store).await?;
        let relay = self.inner.identity.device_id();
        let now = now_ms();
        let vouched = tokio::task::block_in_place(|| r.device_history(old))?;
        tokio::task::block_in_place(|| {
            let doc = r.store_doc()?;
            doc.put_device(
                old,
                &Device {
                    revoked: true,
                    vouched,
                    ..entry.clone()
                },
                now,
            )
            .map_err(ReplicaError::storage)?;
            doc.put_invite(
                &hash,
                &Invite {
                    role: entry.role,
                    till_code: Some(till_code.to_owned()),
                    created_by: relay.to_string(),
                    created_at_ms: now,
                    expires_at_ms: now + TICKET_TTL.as_millis() as i64,
                    used_by: None,
                },
                now,
            )
            .map_err(ReplicaError::storage)?;
            r.queue_store_write()
        })?;
        self.commit_own_writes(r).await?;
        if let Err(e) = db::till_revoked(&self.inner.pool, store, old).await {
            tracing::warn!(error = %e, "marking a revoked till on the Perangkat page failed");
        }
        if let Ok(open) = self.inner.peer_sessions.lock()
            && let Some((_, cancel)) = open.get(&(store, old))
        {
            cancel.cancel();
        }
        tracing::info!(%store, till_code, old = %old, "head office replaced a till");
        Ok(TillReplaced {
            store_id: store.0,
            till_code: till_code.to_owned(),
            revoked_device: old.to_string(),
            ticket,
        })
    }

    /// Head office adds a till to `store` — a new tablet for an outlet: a one-time
    /// invite for `till_code` with `role` (till or manager) written by the relay into the
    /// store's roster (a signed change, as an owner's till would write it), and the
    /// ticket `kasir join` takes. A till code in use by a device that is not revoked is
    /// refused; an owner is made on an owner's till, never from head office.
    pub async fn invite_till(
        &self,
        tenant: Uuid,
        store: StoreId,
        till_code: &str,
        role: Role,
    ) -> Result<TillInvited, HeadOfficeError> {
        if !matches!(role, Role::Till | Role::Manager) {
            return Err(HeadOfficeError::Invalid(format!(
                "head office invites tills and managers, not a {}",
                role.as_str()
            )));
        }
        let code_ok = !till_code.is_empty()
            && till_code.len() <= 16
            && till_code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !code_ok {
            return Err(HeadOfficeError::Invalid(format!(
                "till code {till_code:?}: 1-16 letters, digits or '-'"
            )));
        }
        let loaded = self.replica(store).await?;
        let mut r = loaded.live().await?;
        self.may_write_for(&r, tenant, store)?;
        if r.store_doc()?
            .devices()
            .iter()
            .any(|(_, d)| d.till_code == till_code && !d.revoked)
        {
            return Err(HeadOfficeError::Protected(format!(
                "till code {till_code} is in use: replace that till instead"
            )));
        }
        let (hash, ticket) = self.record_join_ticket(store).await?;
        let relay = self.inner.identity.device_id();
        let now = now_ms();
        tokio::task::block_in_place(|| {
            r.store_doc()?
                .put_invite(
                    &hash,
                    &Invite {
                        role,
                        till_code: Some(till_code.to_owned()),
                        created_by: relay.to_string(),
                        created_at_ms: now,
                        expires_at_ms: now + TICKET_TTL.as_millis() as i64,
                        used_by: None,
                    },
                    now,
                )
                .map_err(ReplicaError::storage)?;
            r.queue_store_write()
        })?;
        self.commit_own_writes(r).await?;
        tracing::info!(%store, till_code, "head office invited a till");
        Ok(TillInvited {
            store_id: store.0,
            till_code: till_code.to_owned(),
            role: role.as_str().to_owned(),
            ticket,
        })
    }

    /// A one-time join ticket for `store`, recorded in PostgreSQL (so any instance
    /// admits it) and naming the relay's recent instance addresses: (the secret's hash,
    /// the printable ticket). The caller writes the matching invite into the roster.
    async fn record_join_ticket(&self, store: StoreId) -> Result<(String, String), RelayError> {
        let secret: [u8; 32] = rand::random();
        let hash = secret_hash(&secret);
        let relay = self.inner.identity.device_id();
        let addrs =
            db::instance_addrs(&self.inner.pool, Duration::from_secs(7 * 24 * 3600)).await?;
        let mut tx = self.inner.pool.begin().await.map_err(DbError::from)?;
        db::record_ticket(&mut tx, &hash, store, TicketKind::Join, TICKET_TTL).await?;
        tx.commit().await.map_err(DbError::from)?;
        let ticket = Ticket {
            store: *store.0.as_bytes(),
            secret,
            members: vec![(relay.0, addrs)],
        }
        .encode();
        Ok((hash, ticket))
    }

    /// Whether head office of `tenant` may write into `r`: the tenant owns the store
    /// (else it is not found) and the relay is a member of its roster.
    #[allow(clippy::result_large_err)] // the error of the head-office calls it serves
    fn may_write_for(
        &self,
        r: &StoreReplica,
        tenant: Uuid,
        store: StoreId,
    ) -> Result<(), HeadOfficeError> {
        if r.tenant() != tenant {
            return Err(HeadOfficeError::StoreNotFound(store));
        }
        if !matches!(
            r.membership(self.inner.identity.device_id()),
            Membership::Member(Role::Relay)
        ) {
            return Err(HeadOfficeError::NotInRoster(store));
        }
        Ok(())
    }

    /// Stores loaded in memory now.
    pub fn loaded_stores(&self) -> usize {
        self.inner.loaded.lock().map(|l| l.len()).unwrap_or(0)
    }

    async fn replica(&self, store: StoreId) -> Result<Arc<Loaded>, RelayError> {
        if let Some(l) = self
            .inner
            .loaded
            .lock()
            .ok()
            .and_then(|l| l.get(&store).cloned())
        {
            // In use again: not idle, whatever happens before its session counts.
            l.idle_since_ms.store(now_ms(), Ordering::Relaxed);
            return Ok(l);
        }
        let row = db::store(&self.inner.pool, store)
            .await?
            .ok_or_else(|| RelayError::Refused(format!("store {store} is not served here")))?;
        // Documents parked by an earlier load stay out of memory; signatures are read for
        // what is loaded only.
        let parked = db::parked_docs(&self.inner.pool, store).await?;
        let parked_ids: Vec<DocId> = parked.iter().map(|(p, _)| p.doc.id).collect();
        let chunks = db::unparked_chunks(&self.inner.pool, store, &parked_ids).await?;
        let sigs = if parked.is_empty() {
            db::sigs(&self.inner.pool, store, None).await?
        } else {
            Vec::new()
        };
        let signer = self.inner.identity.clone();
        let source: Arc<dyn DocSource> = Arc::new(PgDocSource {
            pool: self.inner.pool.clone(),
            runtime: tokio::runtime::Handle::current(),
            unparked: self.inner.metrics.docs_unparked.clone(),
        });
        let mut replica = tokio::task::block_in_place(|| {
            StoreReplica::load(store, row.tenant, row.adopted_by, signer, chunks, sigs)
        });
        if !parked.is_empty() {
            let hashes = tokio::task::block_in_place(|| replica.unsigned_changes());
            let sigs = db::sigs(&self.inner.pool, store, Some(&hashes)).await?;
            replica.add_sigs(sigs);
            replica.add_parked(parked);
        }
        // Always able to read back (a store parked under another setting loads parked).
        replica = replica.with_source(source);
        tracing::info!(%store, docs = replica.doc_count(), parked = replica.parked_count(), "loaded a store");
        let loaded = Arc::new(Loaded {
            store,
            replica: tokio::sync::Mutex::new(replica),
            cancel: self.inner.cancel.child_token(),
            sessions: AtomicI64::new(0),
            idle_since_ms: AtomicI64::new(now_ms()),
        });
        let mut map = self
            .inner
            .loaded
            .lock()
            .map_err(|_| RelayError::Refused("registry poisoned".into()))?;
        let loaded = map.entry(store).or_insert(loaded).clone();
        self.inner.metrics.loaded_stores.set(map.len() as i64);
        Ok(loaded)
    }

    /// Unloads a store (after a failed persist): its sessions end, and the next session
    /// reloads it from PostgreSQL.
    fn unload(&self, store: StoreId) {
        if let Ok(mut map) = self.inner.loaded.lock()
            && let Some(l) = map.remove(&store)
        {
            l.cancel.cancel();
            self.inner.metrics.loaded_stores.set(map.len() as i64);
        }
    }

    /// Drops stores no till has synced with for `idle`: a relay serving many stores keeps
    /// only the busy ones in memory (the next session reloads a store from PostgreSQL).
    fn unload_idle(&self, idle: Duration) {
        let cutoff = now_ms() - idle.as_millis() as i64;
        if let Ok(mut map) = self.inner.loaded.lock() {
            map.retain(|store, l| {
                let keep = l.sessions.load(Ordering::Relaxed) > 0
                    || l.idle_since_ms.load(Ordering::Relaxed) > cutoff;
                if !keep {
                    tracing::info!(%store, "unloaded an idle store");
                }
                keep
            });
            self.inner.metrics.loaded_stores.set(map.len() as i64);
        }
    }

    /// Binds the endpoint and runs the accept loop and the poller until shutdown.
    pub async fn serve(
        &self,
        secret_key: [u8; 32],
        listen: SocketAddr,
    ) -> Result<Endpoint, RelayError> {
        // Tills also ask the relay about photos they do not recognise.
        let endpoint = bind_endpoint(secret_key, listen, &[SYNC_ALPN, JOIN_ALPN, ML_ALPN]).await?;
        let relay = self.clone();
        tokio::spawn(accept_each(
            endpoint.clone(),
            self.inner.cancel.clone(),
            move |conn| relay.clone().accepted(conn),
        ));
        let relay = self.clone();
        tokio::spawn(async move { relay.poll_loop().await });
        Ok(endpoint)
    }

    /// Handles one accepted connection: a join, a recognition question, or a sync
    /// session.
    async fn accepted(self, conn: Connection) {
        let peer = device_of(conn.remote_id());
        let result = if conn.alpn() == JOIN_ALPN {
            self.handle_join(conn).await
        } else if conn.alpn() == ML_ALPN {
            crate::ml::serve(self.clone(), conn)
                .await
                .map_err(|e| RelayError::Refused(e.to_string()))
        } else {
            // Everything the session does, down to the PostgreSQL transactions it
            // commits, carries the trace id its till logs too.
            let (trace, span) = TraceId::session_span(&conn, peer);
            self.handle_sync(conn, trace).instrument(span).await
        };
        match result {
            Ok(()) => tracing::info!(%peer, "session ended"),
            Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
        }
    }

    async fn poll_loop(&self) {
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = self.poll_once().await {
                tracing::debug!(error = %e, "polling chunks failed");
            }
            self.unload_idle(self.inner.idle_unload);
            self.park_idle().await;
        }
    }

    /// Parks closed days nobody touched for `park_after` in every loaded store whose
    /// replica is free now (a busy one is skipped until a later tick), compacting each to
    /// one chunk first so it reads back in one row.
    async fn park_idle(&self) {
        let Some(after) = self.inner.park_after else {
            return;
        };
        // A day closed in every time zone: 12 h before now, in UTC.
        let closed_before = BusinessDate::at(now_ms() - 12 * 3_600_000, 0);
        let loaded: Vec<Arc<Loaded>> = match self.inner.loaded.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => return,
        };
        for l in loaded {
            let Ok(mut r) = l.replica.try_lock() else {
                continue;
            };
            if r.is_poisoned() {
                continue;
            }
            let candidates = r.park_candidates(&closed_before, after);
            for doc in candidates.into_iter().take(PARK_PER_TICK) {
                if r.chunk_count(doc) > 1 && !self.compact_doc(&mut r, doc).await {
                    continue;
                }
                let Some(parked) = tokio::task::block_in_place(|| r.park(doc)) else {
                    continue;
                };
                self.inner.metrics.docs_parked.inc();
                // Only the next load's shortcut: the parked entry in memory is right
                // whether or not this is recorded.
                if let Err(e) = db::record_parked(&self.inner.pool, r.store(), &parked).await {
                    tracing::debug!(%doc, error = %e, "recording a parked document failed");
                }
            }
        }
    }

    /// Merges the chunks other instances stored for every loaded store: one query for the
    /// new hashes of all of them, then the bytes of the unseen ones only.
    async fn poll_once(&self) -> Result<(), RelayError> {
        let loaded: Vec<(StoreId, Arc<Loaded>)> = match self.inner.loaded.lock() {
            Ok(m) => m.iter().map(|(k, v)| (*k, v.clone())).collect(),
            Err(_) => return Ok(()),
        };
        let mut cursors = Vec::with_capacity(loaded.len());
        for (store, l) in &loaded {
            if let Ok(r) = l.live().await {
                cursors.push((*store, r.last_seq()));
            }
        }
        if cursors.is_empty() {
            return Ok(());
        }
        let mut new: HashMap<StoreId, Vec<([u8; 32], i64)>> = HashMap::new();
        for (store, hash, seq) in db::chunk_hashes_after(&self.inner.pool, &cursors).await? {
            new.entry(store).or_default().push((hash, seq));
        }
        for (store, l) in loaded {
            let Some(hashes) = new.remove(&store) else {
                continue;
            };
            if let Err(e) = self.merge_polled(store, &l, hashes).await {
                tracing::debug!(%store, error = %e, "merging polled chunks failed");
            }
        }
        Ok(())
    }

    async fn merge_polled(
        &self,
        store: StoreId,
        l: &Loaded,
        hashes: Vec<([u8; 32], i64)>,
    ) -> Result<(), RelayError> {
        let (unseen, max_seq) = {
            let r = l.live().await?;
            let unseen: Vec<[u8; 32]> = hashes
                .iter()
                .filter(|(h, _)| !r.has_seen(h))
                .map(|(h, _)| *h)
                .collect();
            (unseen, hashes.iter().map(|(_, s)| *s).max())
        };
        let chunks = if unseen.is_empty() {
            Vec::new()
        } else {
            db::chunks_by_hash(&self.inner.pool, store, &unseen).await?
        };
        let mut r = l.live().await?;
        if let Some(seq) = max_seq {
            r.advance_seq(seq);
        }
        if !chunks.is_empty() {
            let (changed, unsigned) = tokio::task::block_in_place(|| r.merge_chunks(chunks));
            drop(r);
            // The instance that stored the chunks stored their signatures with them.
            if !unsigned.is_empty() {
                let sigs = db::sigs(&self.inner.pool, store, Some(&unsigned)).await?;
                l.live().await?.add_sigs(sigs);
            }
            self.inner
                .metrics
                .chunks_polled
                .inc_by(changed.len() as u64);
            l.live().await?.notify(changed);
        }
        Ok(())
    }

    /// Replaces the stored chunks of documents that have many by one snapshot each, so a
    /// store loads from a few rows. Failure only postpones it.
    async fn compact(&self, r: &mut StoreReplica) {
        for doc in r.compaction_candidates(COMPACT_AFTER_CHUNKS) {
            self.compact_doc(r, doc).await;
        }
    }

    /// Replaces the stored chunks of one document by a snapshot; whether it did.
    async fn compact_doc(&self, r: &mut StoreReplica, doc: DocId) -> bool {
        let Some((doc_ref, bytes, covered)) = tokio::task::block_in_place(|| r.snapshot(doc))
        else {
            return false;
        };
        match db::replace_chunks(&self.inner.pool, r.store(), &doc_ref, &bytes, &covered).await {
            Ok(hash) => {
                tracing::debug!(%doc, chunks = covered.len(), bytes = bytes.len(), "compacted a document");
                r.compacted(doc, hash, &covered);
                true
            }
            Err(e) => {
                tracing::debug!(%doc, error = %e, "compaction failed");
                false
            }
        }
    }

    async fn handle_sync(
        &self,
        conn: Connection,
        trace: Option<TraceId>,
    ) -> Result<(), RelayError> {
        let peer = device_of(conn.remote_id());
        let metrics = &self.inner.metrics;
        let (send, recv) = conn.accept_bi().await.map_err(TransportError::from)?;
        let mut writer = FrameWriter::new(send, metrics.sync.clone());
        let mut reader = FrameReader::new(recv, metrics.sync.clone());
        // A stranger's first frame (its `Hello`, a few dozen bytes) is read with a small
        // limit: no one allocates megabytes on the relay before the roster check.
        reader.set_max(4096);
        let first = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .map_err(|_| RelayError::Refused("no hello within 10 s".into()))??;
        reader.set_max(MAX_FRAME);
        let Some(Frame::Hello { store, .. }) = first.clone() else {
            metrics.sync.refused.inc();
            return Err(RelayError::Refused("the first frame was not hello".into()));
        };
        let store = StoreId(Uuid::from_bytes(store));
        // The roster first (alone if the store is not loaded): a stranger never makes the
        // relay load a store's history.
        match self.standing(store, peer).await {
            Ok((standing, _)) if standing.is_member() => {}
            Ok(_) => {
                metrics.sync.refused.inc();
                tracing::warn!(%peer, %store, "refused a device outside the store's roster");
                conn.close(403u32.into(), b"not a member of this store");
                return Err(RelayError::Refused(format!(
                    "{peer} is not a member of {store}"
                )));
            }
            Err(e) => {
                metrics.sync.refused.inc();
                writer.bye(&e.to_string()).await;
                writer.finish();
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                return Err(e);
            }
        }
        let loaded = match self.replica(store).await {
            Ok(l) => l,
            Err(e) => {
                metrics.sync.refused.inc();
                writer.bye(&e.to_string()).await;
                writer.finish();
                // Let the reason reach the peer before the connection is dropped.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                return Err(e);
            }
        };
        let standing = loaded.live().await?.membership(peer);
        if !standing.is_member() {
            metrics.sync.refused.inc();
            tracing::warn!(%peer, %store, "refused a device outside the store's roster");
            conn.close(403u32.into(), b"not a member of this store");
            return Err(RelayError::Refused(format!(
                "{peer} is not a member of {store}"
            )));
        }
        let (tenant, entry) = {
            let r = loaded.live().await?;
            (r.tenant(), r.roster_entry(peer))
        };
        let seen = |connected: bool| {
            let entry = entry.clone();
            let pool = self.inner.pool.clone();
            async move {
                let (till_code, role) =
                    entry.map_or((String::new(), "till"), |d| (d.till_code, d.role.as_str()));
                if let Err(e) =
                    db::till_seen(&pool, tenant, store, peer, &till_code, role, connected).await
                {
                    // Head office's view of it only: never a reason to refuse a till.
                    tracing::debug!(error = %e, "recording when a till was seen failed");
                }
            }
        };
        seen(true).await;
        metrics.sync.sessions.inc();
        loaded.sessions.fetch_add(1, Ordering::Relaxed);
        let host = RelayHost {
            relay: self.clone(),
            loaded: loaded.clone(),
            trace,
        };
        let (number, cancel) = self.register_session(store, peer, &loaded.cancel);
        let result = driver::drive(&host, peer, writer, reader, first, &cancel).await;
        self.end_session(store, peer, number);
        seen(false).await;
        loaded.sessions.fetch_sub(1, Ordering::Relaxed);
        loaded.idle_since_ms.store(now_ms(), Ordering::Relaxed);
        metrics.sync.sessions.dec();
        match result {
            Ok(end) => {
                tracing::debug!(%peer, %store, ?end, "sync session ended");
                Ok(())
            }
            Err(DriveError::Transport(e)) if e.is_closed() => Ok(()),
            Err(e) => {
                // Let the `Bye` with the reason reach the peer before the connection drops.
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                Err(e.into())
            }
        }
    }

    /// Handles one frame: apply, persist what it brought, then return the answer.
    async fn process(
        &self,
        loaded: &Loaded,
        session: &mut Session,
        frame: Frame,
        trace: Option<TraceId>,
    ) -> Result<Vec<Frame>, RelayError> {
        let kind = frame.kind();
        let msg_bytes = frame.sync_bytes(); // for the debug line: the frame moves below
        let mut r = loaded.live().await?;
        let out = tokio::task::block_in_place(|| session.handle(&mut *r, frame));
        for refusal in session.take_refusals() {
            self.inner.metrics.sync.record_refusal(&refusal);
        }
        let writes = r.take_pending();
        tracing::debug!(
            peer = %session.peer(),
            kind,
            msg_bytes,
            writes = writes.len(),
            answers = out.as_ref().map(Vec::len).unwrap_or(0),
            answer_bytes = out.as_ref().map(|o| o.iter().map(Frame::sync_bytes).sum::<usize>()).unwrap_or(0),
            "handled a frame"
        );
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                self.inner.metrics.sync.record_session_error(&e);
                if !writes.is_empty() {
                    r.poison();
                    let store = r.store();
                    drop(r);
                    self.unload(store);
                }
                return Err(e.into());
            }
        };
        if !writes.is_empty() {
            let metrics = &self.inner.metrics;
            let origin = trace.map(|t| t.to_string());
            match materialise::persist(
                &self.inner.pool,
                r.tenant(),
                r.store(),
                &writes,
                origin.as_deref(),
            )
            .await
            {
                Ok(stats) => {
                    tracing::debug!(sales = stats.sales, docs = writes.len(), "persisted");
                    metrics.persists.inc();
                    metrics.sales_offered.inc_by(stats.sales as u64);
                    r.mark_written(&writes);
                    r.notify(writes.iter().map(|w| w.doc.id));
                    self.compact(&mut r).await;
                }
                Err(e) => {
                    metrics.persist_errors.inc();
                    // Poisoned before the lock is released: no waiting session may answer,
                    // persist or compact from a replica ahead of PostgreSQL.
                    r.poison();
                    let store = r.store();
                    drop(r);
                    // The replica holds changes PostgreSQL doesn't: drop it, never answer.
                    self.unload(store);
                    return Err(e.into());
                }
            }
        }
        Ok(out)
    }

    async fn handle_join(&self, conn: Connection) -> Result<(), RelayError> {
        let joiner = device_of(conn.remote_id());
        serve_join(&conn, |req: JoinRequest| async move {
            match self.admit(joiner, req).await {
                Ok((store, admission)) => JoinResponse::Ok {
                    store: *store.0.as_bytes(),
                    admission,
                },
                Err(e) => {
                    tracing::warn!(%joiner, error = %e, "refused a join request");
                    JoinResponse::Refused(e.to_string())
                }
            }
        })
        .await?;
        Ok(())
    }

    async fn admit(
        &self,
        joiner: DeviceId,
        req: JoinRequest,
    ) -> Result<(StoreId, Admission), RelayError> {
        let hash = secret_hash(&req.secret);
        let ticket = db::ticket(&self.inner.pool, &hash)
            .await?
            .ok_or_else(|| RelayError::Refused("unknown ticket".into()))?;
        if ticket.expired {
            return Err(RelayError::Refused("this ticket has expired".into()));
        }
        match ticket.kind {
            TicketKind::Adopt => {
                let store = db::use_adopt_ticket(&self.inner.pool, &hash, joiner).await?;
                // A loaded replica must learn who may hand the store over.
                self.unload(store);
                tracing::info!(%store, till = %joiner, "a till hands its store to the relay");
                Ok((
                    store,
                    Admission {
                        till_code: String::new(),
                        role: Role::Relay,
                    },
                ))
            }
            TicketKind::Join => {
                let loaded = self.replica(ticket.store).await?;
                let mut r = loaded.live().await?;
                let admission =
                    admit_in_roster(&mut r, &req.secret, joiner, req.till_code, req.addrs)?;
                r.queue_store_write()?;
                let writes = r.take_pending();
                if !writes.is_empty() {
                    if let Err(e) =
                        materialise::persist(&self.inner.pool, r.tenant(), r.store(), &writes, None)
                            .await
                    {
                        r.poison();
                        drop(r);
                        self.unload(ticket.store);
                        return Err(e.into());
                    }
                    r.mark_written(&writes);
                    r.notify(writes.iter().map(|w| w.doc.id));
                }
                Ok((ticket.store, admission))
            }
        }
    }
}

/// One store of the relay as the host of a till's sync session: every frame is applied
/// to the store's replica and what it brought is persisted before the answer goes out.
/// Reads parked documents back from PostgreSQL for a store replica, blocking in place:
/// the replica's methods are synchronous and run on the relay's multi-threaded runtime.
#[derive(Debug)]
struct PgDocSource {
    pool: PgPool,
    runtime: tokio::runtime::Handle,
    unparked: prometheus_client::metrics::counter::Counter,
}

impl PgDocSource {
    fn block_on<T>(&self, f: impl Future<Output = Result<T, DbError>>) -> Result<T, ReplicaError> {
        tokio::task::block_in_place(|| self.runtime.block_on(f)).map_err(ReplicaError::storage)
    }
}

impl DocSource for PgDocSource {
    fn chunks(&self, store: StoreId, doc: DocId) -> Result<Vec<db::Chunk>, ReplicaError> {
        self.unparked.inc();
        self.block_on(db::doc_chunks(&self.pool, store, doc))
    }

    fn sigs(
        &self,
        store: StoreId,
        hashes: &[[u8; 32]],
    ) -> Result<Vec<kasir_sync::trust::ChangeSig>, ReplicaError> {
        self.block_on(db::sigs(&self.pool, store, Some(hashes)))
    }
}

#[derive(Debug)]
struct RelayHost {
    relay: Relay,
    loaded: Arc<Loaded>,
    /// The session's trace id, stamped on what it persists.
    trace: Option<TraceId>,
}

impl SessionHost for RelayHost {
    type Error = RelayError;

    fn store_id(&self) -> StoreId {
        self.loaded.store
    }

    async fn membership(&self, peer: DeviceId) -> Result<Membership, RelayError> {
        Ok(self.loaded.live().await?.membership(peer))
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<DocId>, RelayError> {
        Ok(self.loaded.live().await?.subscribe())
    }

    async fn start(&self, session: &mut Session) -> Result<Vec<Frame>, RelayError> {
        let mut r = self.loaded.live().await?;
        Ok(tokio::task::block_in_place(|| session.start(&mut *r))?)
    }

    async fn handle(&self, session: &mut Session, frame: Frame) -> Result<Vec<Frame>, RelayError> {
        self.relay
            .process(&self.loaded, session, frame, self.trace)
            .await
    }

    async fn local_change(
        &self,
        session: &mut Session,
        doc: DocId,
    ) -> Result<Vec<Frame>, RelayError> {
        let mut r = self.loaded.live().await?;
        Ok(tokio::task::block_in_place(|| {
            session.local_change(&mut *r, doc)
        })?)
    }
}

/// Admits `device` into the replica's roster with the invite `secret` (the relay side of
/// `kasir join`), by the same rules as a till (`membership::plan_admission`).
fn admit_in_roster(
    r: &mut StoreReplica,
    secret: &[u8; 32],
    device: DeviceId,
    requested_code: Option<String>,
    addrs: Vec<String>,
) -> Result<Admission, RelayError> {
    let now = now_ms();
    let store = r.store_doc()?;
    let plan = plan_admission(store, secret, device, requested_code, addrs, now)?;
    let admission = plan.apply(store, now).map_err(AdmissionError::from)?;
    tracing::info!(%device, till_code = %admission.till_code, "admitted a till");
    Ok(admission)
}

/// Signs, as the relay, an adoption of every stored change written before signatures,
/// once per database: `kasir-relay migrate` and `kasir-relay run` call it after the
/// schema migration; once done it is recorded (`relay_upgrades`) and later calls return
/// at once. Returns how many changes it adopted.
pub async fn adopt_legacy_history(pool: &PgPool, identity: &Identity) -> Result<u64, RelayError> {
    if db::upgrade_done(pool, db::SIGNED_HISTORY).await? {
        return Ok(0);
    }
    let mut adopted = 0u64;
    for row in db::stores(pool).await? {
        let chunks = db::chunks_after(pool, row.store, 0).await?;
        if chunks.is_empty() {
            continue;
        }
        let sigs = db::sigs(pool, row.store, None).await?;
        let mut replica = StoreReplica::load(
            row.store,
            row.tenant,
            row.adopted_by,
            identity.clone(),
            chunks,
            sigs,
        );
        let new = replica.adopt_unsigned();
        if new.is_empty() {
            continue;
        }
        let mut tx = pool.begin().await.map_err(DbError::from)?;
        db::store_sigs(&mut tx, row.store, &new).await?;
        tx.commit().await.map_err(DbError::from)?;
        tracing::info!(store = %row.store, changes = new.len(), "adopted history from before signatures");
        adopted += new.len() as u64;
    }
    db::record_upgrade(pool, db::SIGNED_HISTORY).await?;
    Ok(adopted)
}

/// Creates a store on the relay (`kasir-relay store create`): its roster with the relay
/// in it, its profile, and a one-time owner invite; returns the store id and the ticket.
pub async fn create_store(
    pool: &PgPool,
    identity: &Identity,
    relay_addrs: Vec<String>,
    tenant: Uuid,
    name: &str,
) -> Result<(StoreId, String), RelayError> {
    let relay = identity.device_id();
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 200 {
        return Err(RelayError::Refused(
            "a store name is 1 to 200 printable characters".into(),
        ));
    }
    let store = StoreId(Uuid::now_v7());
    let mut replica = StoreReplica::new(store, tenant, None, identity.clone());
    let secret: [u8; 32] = rand::random();
    let hash = secret_hash(&secret);
    let now = now_ms();
    {
        // The founding history: written while the roster is empty, it needs no one's
        // authority (`kasir_sync::trust`); the relay's own entry comes last, since once
        // it is in the roster its role may not set the profile.
        let doc = replica.store_doc()?;
        let bad = |e: kasir_crdt::DocError| RelayError::Replica(ReplicaError::storage(e));
        doc.set_profile(&StoreProfile::named(name), now)
            .map_err(bad)?;
        doc.put_invite(
            &hash,
            &Invite {
                role: Role::Owner,
                till_code: None,
                created_by: relay.to_string(),
                created_at_ms: now,
                expires_at_ms: now + TICKET_TTL.as_millis() as i64,
                used_by: None,
            },
            now,
        )
        .map_err(bad)?;
        doc.put_device(
            relay,
            &Device {
                till_code: "RELAY".into(),
                role: Role::Relay,
                revoked: false,
                addrs: relay_addrs.clone(),
                joined_at_ms: now,
                vouched: Default::default(),
            },
            now,
        )
        .map_err(bad)?;
    }
    replica.queue_store_write()?;
    let writes = replica.take_pending();
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    db::create_store(&mut tx, tenant, store, name).await?;
    db::record_ticket(&mut tx, &hash, store, TicketKind::Join, TICKET_TTL).await?;
    materialise::persist_in(&mut tx, tenant, store, &writes, None).await?;
    tx.commit().await.map_err(DbError::from)?;
    let ticket = Ticket {
        store: *store.0.as_bytes(),
        secret,
        members: vec![(relay.0, relay_addrs)],
    };
    Ok((store, ticket.encode()))
}

/// Registers a store that began on a till (`kasir-relay store adopt`) and returns the
/// ticket its owner gives `kasir join` on that till.
pub async fn adopt_store(
    pool: &PgPool,
    relay: DeviceId,
    relay_addrs: Vec<String>,
    tenant: Uuid,
    store: StoreId,
    name: Option<&str>,
) -> Result<String, RelayError> {
    let secret: [u8; 32] = rand::random();
    let hash = secret_hash(&secret);
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let name = name.map_or_else(|| format!("store {store}"), str::to_owned);
    db::create_store(&mut tx, tenant, store, &name).await?;
    db::record_ticket(&mut tx, &hash, store, TicketKind::Adopt, TICKET_TTL).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Ticket {
        store: *store.0.as_bytes(),
        secret,
        members: vec![(relay.0, relay_addrs)],
    }
    .encode())
}

/// What head office gets back when it adds a till (`POST /v1/stores/{store}/invites`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TillInvited {
    /// The store.
    pub store_id: Uuid,
    /// The till code the new device gets.
    pub till_code: String,
    /// Its role (`till` or `manager`).
    pub role: String,
    /// The one-time ticket for `kasir join` on the new device.
    pub ticket: String,
}

/// What head office gets back when it replaces a till
/// (`POST /v1/stores/{store}/tills/{till_code}/replace`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TillReplaced {
    /// The store.
    pub store_id: Uuid,
    /// The till code the new tablet takes over.
    pub till_code: String,
    /// The lost device, revoked.
    pub revoked_device: String,
    /// The one-time ticket for `kasir restore --from-relay` on the new tablet.
    pub ticket: String,
}
