//! Simulated tills for the fleet simulation (`relay/benches/fleet.rs`): many per process,
//! each a real device — its own ed25519 key and iroh endpoint, admitted with a real
//! invite — that writes real Automerge ledgers, signs every change and syncs them to
//! the relay over real QUIC with the real protocol (`kasir_sync::driver`). What is
//! simulated is only what a till's SQLite, screens and cashier would add: the documents
//! live in memory ([`crate::hostile::Forger`], which keeps what it is sent unchecked —
//! the relay is the side under test), and sales are made up from a fixed catalogue.
//!
//! Who owns what: a [`SimTill`] owns its documents (behind a lock shared with its
//! session) and its endpoint; [`SimTill::stay_connected`] spawns the task that owns the
//! till's session with the relay and reconnects it, until its cancellation token fires.
//!
//! A fleet is set up with [`create_stores`] (head office creates each store and invites
//! its other tills) and [`join_all`]; [`written_per_store`] and [`pg_sales_per_store`]
//! are the two sides of the "nothing lost" comparison (Kafka's is the relay tests'
//! reader, which needs the relay's Kafka client).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::Endpoint;
use kasir_crdt::ids::product_id;
use kasir_crdt::ledger::LedgerDoc;
use kasir_crdt::money::Qty;
use kasir_crdt::records::{Payment, Sale, SaleLine};
use kasir_crdt::tax::TaxRule;
use kasir_crdt::{BusinessDate, DeviceId, StoreId};
use kasir_sync::driver::{self, SessionEnd};
use kasir_sync::join::{JoinRequest, JoinResponse, request_join};
use kasir_sync::membership::Ticket;
use kasir_sync::transport::{FrameReader, FrameWriter, TransportError, connect};
use kasir_sync::{DocRef, Identity, SYNC_ALPN, SyncMetrics};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::RelayProc;
use crate::hostile::{Forger, Host};

/// What the simulated tills sell: (sku, price).
const CATALOGUE: [(&str, i64); 6] = [
    ("KOPI", 1_500),
    ("TEH", 5_000),
    ("ROTI", 12_000),
    ("GULA", 16_500),
    ("MIE", 3_500),
    ("AIR", 4_000),
];

/// Minutes east of UTC of the simulated shops (WIB).
const WIB: i32 = 7 * 60;

/// A simulated till (see the module).
#[derive(Debug)]
pub struct SimTill {
    identity: Identity,
    endpoint: Endpoint,
    host: Host,
    till_code: String,
    relay: DeviceId,
    relay_addrs: Vec<SocketAddr>,
    metrics: SyncMetrics,
    sales: AtomicU64,
    total: AtomicI64,
}

/// Why a simulated till could not join or write.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The ticket does not decode or names no member.
    #[error("bad ticket: {0}")]
    Ticket(String),
    /// The relay refused or could not be reached.
    #[error("join: {0}")]
    Join(String),
    /// A sync session failed.
    #[error("sync: {0}")]
    Sync(String),
    /// A document write failed.
    #[error(transparent)]
    Doc(#[from] kasir_crdt::DocError),
}

impl SimTill {
    /// Joins the store of `ticket` through the relay it names (`addrs` replace the
    /// ticket's addresses when given: several instances of one relay), then syncs once to
    /// receive the store document.
    pub async fn join(ticket: &str, addrs: &[SocketAddr]) -> Result<SimTill, SimError> {
        let ticket = Ticket::decode(ticket).map_err(|e| SimError::Ticket(e.to_string()))?;
        let Some((relay, ticket_addrs)) = ticket.members.first() else {
            return Err(SimError::Ticket("no members".into()));
        };
        let relay = DeviceId(*relay);
        let relay_addrs: Vec<SocketAddr> = if addrs.is_empty() {
            ticket_addrs.iter().filter_map(|a| a.parse().ok()).collect()
        } else {
            addrs.to_vec()
        };
        let identity = Identity::generate();
        let endpoint = kasir_sync::transport::bind_endpoint(
            identity.secret_bytes(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &[SYNC_ALPN],
        )
        .await
        .map_err(|e| SimError::Join(e.to_string()))?;
        let request = JoinRequest {
            secret: ticket.secret,
            till_code: None,
            addrs: Vec::new(),
        };
        let admission = match request_join(&endpoint, relay, &relay_addrs, &request).await {
            Ok(JoinResponse::Ok { admission, .. }) => admission,
            Ok(JoinResponse::Refused(why)) => return Err(SimError::Join(why)),
            Err(e) => return Err(SimError::Join(e.to_string())),
        };
        let store = ticket.store_id();
        let till = SimTill {
            till_code: admission.till_code,
            host: Host {
                held: Arc::new(Mutex::new(Forger::new(store, identity.device_id()))),
                store,
                changes: broadcast::channel(1024).0,
            },
            identity,
            endpoint,
            relay,
            relay_addrs,
            metrics: SyncMetrics::default(),
            sales: AtomicU64::new(0),
            total: AtomicI64::new(0),
        };
        till.sync_once().await?;
        Ok(till)
    }

    /// The store.
    pub fn store_id(&self) -> StoreId {
        self.host.store
    }

    /// The device id.
    pub fn device_id(&self) -> DeviceId {
        self.identity.device_id()
    }

    /// The till code the relay gave it.
    pub fn till_code(&self) -> &str {
        &self.till_code
    }

    /// Sales written so far and their Σ total (rupiah).
    pub fn written(&self) -> (u64, i64) {
        (
            self.sales.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }

    /// Every document it holds (its own ledgers and what sessions brought) with its heads
    /// hash: equal hashes mean equal documents.
    pub fn manifest(&self) -> BTreeMap<kasir_crdt::DocId, [u8; 32]> {
        use kasir_sync::SyncReplica;
        let Ok(mut held) = self.host.held.lock() else {
            return BTreeMap::new();
        };
        held.manifest()
            .map(|m| m.into_iter().map(|d| (d.doc.id, d.heads)).collect())
            .unwrap_or_default()
    }

    /// One sync session with the relay until the initial exchange is over.
    pub async fn sync_once(&self) -> Result<SessionEnd, SimError> {
        driver::sync_once(
            &self.host,
            &self.endpoint,
            self.relay,
            &self.relay_addrs,
            Duration::from_secs(120),
            &self.metrics,
        )
        .await
        .map_err(|e| SimError::Sync(e.to_string()))
    }

    /// Writes a sale of 1–3 lines made at `at_ms` into that day's ledger (signed) and
    /// tells the session; returns its total.
    pub fn sell(&self, at_ms: i64, pick: u64) -> Result<i64, SimError> {
        let date = BusinessDate::at(at_ms, WIB);
        let store = self.store_id();
        let n = self.sales.load(Ordering::Relaxed) + 1;
        let lines: Vec<SaleLine> = (0..1 + pick % 3)
            .map(|i| {
                let (sku, price) = CATALOGUE[((pick / 3 + i) % CATALOGUE.len() as u64) as usize];
                let qty = Qty(((pick + i) % 4 + 1) as i64 * 1000);
                SaleLine {
                    product_id: product_id(store, sku),
                    sku: sku.to_owned(),
                    name: sku.to_owned(),
                    qty,
                    unit_price: price,
                    discount: 0,
                    tax: 0,
                    line_total: qty.times_price(price),
                    tax_code: None,
                    unit: None,
                    promo: None,
                }
            })
            .collect();
        let total: i64 = lines.iter().map(|l| l.line_total).sum();
        let sale = Sale {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: None,
            receipt_no: format!("{}-{}-{n}", self.till_code, date.compact()),
            till: self.device_id().to_string(),
            till_code: self.till_code.clone(),
            cashier: Some("Sari".into()),
            user_id: None,
            approved_by: None,
            created_at_ms: at_ms,
            business_date: date.to_string(),
            lines,
            subtotal: total,
            service_charge: 0,
            tax: 0,
            dpp: total,
            dpp_other: total,
            tax_rule: TaxRule::none(),
            taxes: Vec::new(),
            seller: None,
            customer_id: None,
            due_date: None,
            customer_name: None,
            rounding: 0,
            total,
            payments: vec![Payment {
                method: "cash".into(),
                amount: total,
                reference: None,
                confirmed_by: None,
            }],
            change: 0,
        };
        let r = DocRef::ledger(store, self.device_id(), date);
        self.write(&r, |doc| {
            let mut ledger = LedgerDoc::from_doc(doc)?;
            ledger.record_sale(&sale)?;
            Ok(ledger.into_doc())
        })?;
        self.sales.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(total, Ordering::Relaxed);
        Ok(total)
    }

    fn write(
        &self,
        r: &DocRef,
        write: impl FnOnce(kasir_crdt::Doc) -> Result<kasir_crdt::Doc, kasir_crdt::DocError>,
    ) -> Result<(), SimError> {
        let mut held = self
            .host
            .held
            .lock()
            .map_err(|_| SimError::Sync("poisoned".into()))?;
        held.write_signed(r, &self.identity, write)?;
        drop(held);
        // No session (offline, reconnecting) means no receiver: the next session's
        // start offers it.
        let _ = self.host.changes.send(r.id);
        Ok(())
    }

    /// Keeps a session with the relay open until `cancel` fires, reconnecting after a
    /// short random pause when it ends or cannot be opened (a relay instance killed: the
    /// dial reaches another of the relay's addresses).
    pub fn stay_connected(
        self: &Arc<Self>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<u64> {
        let till = Arc::clone(self);
        tokio::spawn(async move {
            let mut sessions = 0u64;
            while !cancel.is_cancelled() {
                sessions += 1;
                if let Err(e) = till.session(&cancel).await {
                    tracing::debug!(till = %till.device_id(), error = %e, "session ended");
                }
                let pause = Duration::from_millis(200 + rand::random::<u64>() % 800);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            sessions
        })
    }

    async fn session(&self, cancel: &CancellationToken) -> Result<SessionEnd, SimError> {
        let conn = connect(&self.endpoint, self.relay, &self.relay_addrs, SYNC_ALPN)
            .await
            .map_err(|e| SimError::Sync(e.to_string()))?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| SimError::Sync(TransportError::from(e).to_string()))?;
        let writer = FrameWriter::new(send, self.metrics.clone());
        let reader = FrameReader::new(recv, self.metrics.clone());
        let end = driver::drive(&self.host, self.relay, writer, reader, None, cancel)
            .await
            .map_err(|e| SimError::Sync(e.to_string()));
        conn.close(0u32.into(), b"bye");
        end
    }

    /// Closes its endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}

/// Creates `n` stores of `tenant` at head office, `parallel` at a time: each with
/// `kasir-relay store create` (the first till's ticket) and `tills - 1` more invites
/// (`POST /v1/stores/{store}/invites`, an owner's token). Every store's tickets, in order.
pub fn create_stores(
    relay: &RelayProc,
    tenant: &str,
    n: usize,
    tills: usize,
    parallel: usize,
) -> Result<Vec<Vec<String>>, SimError> {
    let owner = relay.cli(&["token", "--tenant", tenant, "--role", "owner"])["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SimError::Join("no owner token".into()))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = Mutex::new(vec![Vec::new(); n]);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    match create_store(relay, tenant, &owner, i, tills) {
                        Ok(tickets) => {
                            if let Ok(mut o) = out.lock() {
                                o[i] = tickets;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failures.lock() {
                                f.push(e.to_string());
                            }
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    if let Some(first) = failures.first() {
        return Err(SimError::Join(format!(
            "{} stores were not created: {first}",
            failures.len()
        )));
    }
    out.into_inner()
        .map_err(|_| SimError::Join("poisoned".into()))
}

fn create_store(
    relay: &RelayProc,
    tenant: &str,
    owner: &str,
    i: usize,
    tills: usize,
) -> Result<Vec<String>, SimError> {
    let created = relay.cli(&[
        "store",
        "create",
        "--tenant",
        tenant,
        "--name",
        &format!("Toko {i}"),
    ]);
    let missing = |what: &str| SimError::Join(format!("store create: no {what}: {created}"));
    let store = created["store_id"]
        .as_str()
        .ok_or_else(|| missing("store_id"))?;
    let mut tickets = vec![
        created["ticket"]
            .as_str()
            .ok_or_else(|| missing("ticket"))?
            .to_owned(),
    ];
    for k in 2..=tills {
        let invite = ureq::post(&format!("{}/v1/stores/{store}/invites", relay.http_url()))
            .header("Authorization", &format!("Bearer {owner}"))
            .send_json(serde_json::json!({"till_code": format!("T{k}")}))
            .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>())
            .map_err(|e| SimError::Join(format!("invite T{k}: {e}")))?;
        let ticket = invite["ticket"]
            .as_str()
            .ok_or_else(|| SimError::Join(format!("invite T{k}: {invite}")))?;
        tickets.push(ticket.to_owned());
    }
    Ok(tickets)
}

/// Joins every store's tills (the first store's tickets first), `parallel` stores at a
/// time, each reaching the relay at `addrs` (in a random order per store when there are
/// several instances).
pub async fn join_all(
    tickets: &[Vec<String>],
    addrs: &[SocketAddr],
    parallel: usize,
) -> Result<Vec<Arc<SimTill>>, SimError> {
    async fn join_store(
        tickets: Vec<String>,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SimTill>, SimError> {
        let mut out = Vec::new();
        for t in tickets {
            out.push(SimTill::join(&t, &addrs).await?);
        }
        Ok(out)
    }
    let order = || {
        let mut a = addrs.to_vec();
        if a.len() > 1 && rand::random::<bool>() {
            a.reverse();
        }
        a
    };
    let mut set = tokio::task::JoinSet::new();
    let mut pending = tickets.iter().cloned();
    for t in pending.by_ref().take(parallel.max(1)) {
        set.spawn(join_store(t, order()));
    }
    let mut joined = Vec::new();
    while let Some(done) = set.join_next().await {
        joined.extend(done.map_err(|e| SimError::Join(e.to_string()))??);
        if let Some(t) = pending.next() {
            set.spawn(join_store(t, order()));
        }
    }
    Ok(joined.into_iter().map(Arc::new).collect())
}

/// (sales, Σ totals) the tills wrote, per store id.
pub fn written_per_store(tills: &[Arc<SimTill>]) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for till in tills {
        let (count, total) = till.written();
        let e = out.entry(till.store_id().to_string()).or_default();
        e.0 += count as i64;
        e.1 += total;
    }
    out
}

/// (sales, Σ totals) in PostgreSQL's `sales`, per store id.
pub async fn pg_sales_per_store(db: &str) -> Result<BTreeMap<String, (i64, i64)>, sqlx::Error> {
    use sqlx::Row;
    let pool = sqlx::PgPool::connect(db).await?;
    let rows = sqlx::query(
        "SELECT store_id::text AS s, count(*) AS n, sum(total)::bigint AS t
           FROM sales GROUP BY store_id",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    rows.iter()
        .map(|r| Ok((r.try_get("s")?, (r.try_get("n")?, r.try_get("t")?))))
        .collect()
}
