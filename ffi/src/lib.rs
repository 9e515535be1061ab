//! The Kasir node inside an app (Android, iOS, a Python script): a narrow API through
//! UniFFI, with iroh, Automerge and SQLite kept inside.
//!
//! **Who owns what:** a [`KasirNode`] owns the node (behind the same `SharedNode` mutex
//! the daemon uses), a tokio runtime, and — between [`KasirNode::start`] and
//! [`KasirNode::stop`] — the daemon task serving the till app and the sync endpoint on
//! that runtime, ended by a cancellation token. `stop` is idempotent; it ends the
//! daemon, drops the node and so releases the data directory's lock: another
//! [`KasirNode::open`] on the same directory then works in the same process. Every
//! call after `stop` is [`KasirError::Stopped`], never a crash of the host.
//!
//! **API Boundary:** the names follow `contract.md` ("Mobile embedding"); errors carry
//! the codes of the HTTP API and the `kasir` command ([`KasirError`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kasir_crdt::Qty;
use kasir_node::api::{InitOptions, ProductInput, SaleItem as NodeSaleItem, SaleRequest};
use kasir_node::daemon::{self, RunOptions};
use kasir_node::lan::NetConfig;
use kasir_node::{Node, NodeError, SharedNode};
use tokio_util::sync::CancellationToken;

uniffi::setup_scaffolding!();

/// Why a call failed: one variant per error code of the HTTP API (`unknown_sku` is
/// `UnknownSku`), each with the message a person can read.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum KasirError {
    /// `not_initialised`: no store in the data directory.
    #[error("{0}")]
    NotInitialised(String),
    /// `already_initialised`.
    #[error("{0}")]
    AlreadyInitialised(String),
    /// `locked`: another process holds the data directory (or a login is locked out).
    #[error("{0}")]
    Locked(String),
    /// `upgrade_required`.
    #[error("{0}")]
    UpgradeRequired(String),
    /// `unknown_sku`.
    #[error("{0}")]
    UnknownSku(String),
    /// `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// `insufficient_payment`.
    #[error("{0}")]
    InsufficientPayment(String),
    /// `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// `refund_exceeds_sale`.
    #[error("{0}")]
    RefundExceedsSale(String),
    /// `forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// `corrupt_data`.
    #[error("{0}")]
    CorruptData(String),
    /// `storage_error`.
    #[error("{0}")]
    StorageError(String),
    /// `io_error`.
    #[error("{0}")]
    IoError(String),
    /// `unauthenticated`.
    #[error("{0}")]
    Unauthenticated(String),
    /// `approval_required`.
    #[error("{0}")]
    ApprovalRequired(String),
    /// `bad_pin`.
    #[error("{0}")]
    BadPin(String),
    /// `internal`.
    #[error("{0}")]
    Internal(String),
    /// The node was stopped: open it again.
    #[error("the node was stopped")]
    Stopped,
}

impl From<NodeError> for KasirError {
    fn from(e: NodeError) -> KasirError {
        let message = e.to_string();
        match e.code() {
            "not_initialised" => KasirError::NotInitialised(message),
            "already_initialised" => KasirError::AlreadyInitialised(message),
            "locked" => KasirError::Locked(message),
            "upgrade_required" => KasirError::UpgradeRequired(message),
            "unknown_sku" => KasirError::UnknownSku(message),
            "not_found" => KasirError::NotFound(message),
            "insufficient_payment" => KasirError::InsufficientPayment(message),
            "conflict" => KasirError::Conflict(message),
            "refund_exceeds_sale" => KasirError::RefundExceedsSale(message),
            "forbidden" => KasirError::Forbidden(message),
            "invalid_request" => KasirError::InvalidRequest(message),
            "corrupt_data" => KasirError::CorruptData(message),
            "storage_error" => KasirError::StorageError(message),
            "io_error" => KasirError::IoError(message),
            "unauthenticated" => KasirError::Unauthenticated(message),
            "approval_required" => KasirError::ApprovalRequired(message),
            "bad_pin" => KasirError::BadPin(message),
            _ => KasirError::Internal(message),
        }
    }
}

/// One line to sell.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SaleItem {
    /// SKU or barcode.
    pub sku: String,
    /// Quantity (three decimals at most: `1.25` kg).
    pub qty: f64,
}

/// A recorded sale.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SaleResult {
    /// The sale's id.
    pub sale_id: String,
    /// Its receipt number.
    pub receipt_no: String,
    /// Total in rupiah.
    pub total: i64,
    /// Change in rupiah.
    pub change: i64,
}

/// Something that happened on the node, told to the app's [`NodeListener`].
#[derive(Debug, Clone, uniffi::Enum)]
#[non_exhaustive]
pub enum NodeEvent {
    /// A sale was recorded today, on this till or merged from another.
    SaleCommitted {
        /// The sale's id.
        sale_id: String,
        /// Its receipt number.
        receipt_no: String,
        /// The till that rang it up.
        till_code: String,
        /// Its total in rupiah.
        total: i64,
    },
    /// Something else changed (stock, the catalog, the store): screens refresh.
    Changed,
}

/// What the app implements to hear about the node; called on the node's own threads.
#[uniffi::export(with_foreign)]
pub trait NodeListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: NodeEvent);
}

/// Tells `listener` about every change `node` commits until `cancel` fires: a new sale
/// of today as [`NodeEvent::SaleCommitted`] (once each), anything else as
/// [`NodeEvent::Changed`].
async fn tell(node: SharedNode, listener: Arc<dyn NodeListener>, cancel: CancellationToken) {
    use tokio::sync::broadcast::error::RecvError;
    let todays = |node: &SharedNode| -> Vec<kasir_node::api::SaleRow> {
        node.lock()
            .ok()
            .and_then(|n| n.sales(Some(&n.today().to_string())).ok())
            .unwrap_or_default()
    };
    let Ok(mut rx) = node.lock().map(|mut n| n.subscribe()) else {
        return;
    };
    let mut seen: std::collections::HashSet<String> =
        todays(&node).into_iter().map(|s| s.sale_id).collect();
    loop {
        let changed = tokio::select! {
            _ = cancel.cancelled() => return,
            changed = rx.recv() => changed,
        };
        match changed {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        let reader = node.clone();
        let sales = tokio::task::spawn_blocking(move || todays(&reader))
            .await
            .unwrap_or_default();
        let mut told = false;
        for sale in sales {
            if seen.insert(sale.sale_id.clone()) {
                told = true;
                listener.on_event(NodeEvent::SaleCommitted {
                    sale_id: sale.sale_id,
                    receipt_no: sale.receipt_no,
                    till_code: sale.till_code,
                    total: sale.total,
                });
            }
        }
        if !told {
            listener.on_event(NodeEvent::Changed);
        }
    }
}

/// A quantity as the node keeps it (thousandths), refused when it is not one.
fn qty(value: f64) -> Result<Qty, KasirError> {
    let milli = (value * 1000.0).round();
    if !value.is_finite() || !(0.0..=1e12).contains(&milli) {
        return Err(KasirError::InvalidRequest(format!(
            "not a quantity: {value}"
        )));
    }
    // Bounded above: the cast is exact.
    Ok(Qty(milli as i64))
}

/// The daemon while it runs.
struct Serving {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daemon::DaemonError>>,
    url: String,
    /// The sync endpoint's addresses, put into invites.
    sync_addrs: Vec<String>,
}

/// What a node holds until it is stopped.
struct Live {
    node: SharedNode,
    runtime: tokio::runtime::Runtime,
    serving: Option<Serving>,
    /// The listener's task, ended by this token.
    listening: Option<CancellationToken>,
}

/// A store's node on this device.
#[derive(uniffi::Object)]
pub struct KasirNode {
    live: Mutex<Option<Live>>,
}

/// The runtime a node runs on: its sync, its till app, its listener.
fn runtime() -> Result<tokio::runtime::Runtime, KasirError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kasir-node")
        .enable_all()
        .build()
        .map_err(|e| KasirError::IoError(format!("starting the node's runtime: {e}")))
}

impl KasirNode {
    fn new(node: Node) -> Result<Arc<KasirNode>, KasirError> {
        KasirNode::on(node, runtime()?)
    }

    fn on(node: Node, runtime: tokio::runtime::Runtime) -> Result<Arc<KasirNode>, KasirError> {
        Ok(Arc::new(KasirNode {
            live: Mutex::new(Some(Live {
                node: SharedNode::new(node),
                runtime,
                serving: None,
                listening: None,
            })),
        }))
    }

    /// Runs `f` on the node, unless it was stopped.
    fn with_node<T>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, KasirError>,
    ) -> Result<T, KasirError> {
        let node = {
            let live = self.live.lock().map_err(|_| KasirError::Stopped)?;
            live.as_ref().ok_or(KasirError::Stopped)?.node.clone()
        };
        let mut guard = node.lock()?;
        f(&mut guard)
    }
}

#[uniffi::export]
impl KasirNode {
    /// Creates a store in `data_dir` with this device as its first till.
    #[uniffi::constructor]
    pub fn init(
        data_dir: String,
        store_name: String,
        till_code: String,
    ) -> Result<Arc<KasirNode>, KasirError> {
        let node = Node::init(
            Path::new(&data_dir),
            &InitOptions {
                store_name,
                till_code,
            },
        )?;
        KasirNode::new(node)
    }

    /// Opens the store in `data_dir`.
    #[uniffi::constructor]
    pub fn open(data_dir: String) -> Result<Arc<KasirNode>, KasirError> {
        KasirNode::new(Node::open(Path::new(&data_dir))?)
    }

    /// Joins an existing store with an invite from one of its tills (`invite` there, or
    /// Pengaturan's QR code), through any member the invite names, and syncs once.
    #[uniffi::constructor]
    pub fn join(
        data_dir: String,
        ticket: String,
        till_code: Option<String>,
    ) -> Result<Arc<KasirNode>, KasirError> {
        let ticket = kasir_sync::membership::Ticket::decode(ticket.trim())
            .map_err(|e| KasirError::InvalidRequest(e.to_string()))?;
        let runtime = runtime()?;
        let dir = std::path::PathBuf::from(data_dir);
        runtime
            .block_on(kasir_node::lan::join_store(
                &dir,
                &ticket,
                till_code,
                kasir_node::lan::FIRST_SYNC,
            ))
            .map_err(|e| match e {
                kasir_node::lan::JoinError::Node(e) => KasirError::from(e),
                other => KasirError::Conflict(other.to_string()),
            })?;
        KasirNode::on(Node::open(&dir)?, runtime)
    }

    /// A one-time invite for another device to join this store (`role`: `till` or
    /// `manager`), naming this node's sync addresses once it runs ([`KasirNode::start`]).
    pub fn invite(&self, role: String, till_code: Option<String>) -> Result<String, KasirError> {
        let addrs = {
            let live = self.live.lock().map_err(|_| KasirError::Stopped)?;
            let live = live.as_ref().ok_or(KasirError::Stopped)?;
            live.serving
                .as_ref()
                .map(|s| s.sync_addrs.clone())
                .unwrap_or_default()
        };
        let role = kasir_sync::membership::parse_role(Some(&role)).map_err(NodeError::from)?;
        self.with_node(|n| Ok(n.invite_ticket(role, till_code, addrs)?))
    }

    /// Adds a product (or changes the one with this SKU) with its opening stock.
    pub fn add_product(
        &self,
        sku: String,
        name: String,
        price: i64,
        stock: f64,
    ) -> Result<(), KasirError> {
        let stock = qty(stock)?;
        self.with_node(|n| {
            n.add_product(&ProductInput {
                sku,
                name,
                price,
                stock: Some(stock),
                ..ProductInput::default()
            })?;
            Ok(())
        })
    }

    /// Sells `items`, paid in exact cash; durable before it returns.
    pub fn sell(&self, items: Vec<SaleItem>) -> Result<SaleResult, KasirError> {
        let items = items
            .into_iter()
            .map(|i| {
                Ok(NodeSaleItem {
                    code: i.sku,
                    qty: qty(i.qty)?,
                    discount: 0,
                    price: None,
                })
            })
            .collect::<Result<Vec<_>, KasirError>>()?;
        let outcome = self.with_node(|n| {
            Ok(n.sell(&SaleRequest {
                items,
                ..SaleRequest::default()
            })?)
        })?;
        Ok(SaleResult {
            sale_id: outcome.sale_id,
            receipt_no: outcome.receipt_no,
            total: outcome.total,
            change: outcome.change,
        })
    }

    /// Stock on hand of a SKU (or barcode).
    pub fn stock(&self, sku: String) -> Result<f64, KasirError> {
        let rows = self.with_node(|n| Ok(n.stock(Some(&sku))?))?;
        Ok(rows.first().map_or(0.0, |r| r.on_hand))
    }

    /// The struk of a sale as plain text, `width` columns (32 for 58 mm paper).
    pub fn receipt_text(&self, sale_id: String, width: u32) -> Result<String, KasirError> {
        self.with_node(|n| Ok(n.receipt_text(&sale_id, width as usize)?))
    }

    /// Tells `listener` what happens on the node from now on (a new listener replaces
    /// the one before). It is called on the node's threads: hand work to the UI thread.
    pub fn set_listener(&self, listener: Arc<dyn NodeListener>) -> Result<(), KasirError> {
        let mut live = self.live.lock().map_err(|_| KasirError::Stopped)?;
        let live = live.as_mut().ok_or(KasirError::Stopped)?;
        if let Some(old) = live.listening.take() {
            old.cancel();
        }
        let cancel = CancellationToken::new();
        live.runtime
            .spawn(tell(live.node.clone(), listener, cancel.clone()));
        live.listening = Some(cancel);
        Ok(())
    }

    /// Starts the till app on `127.0.0.1` (a free port) and LAN sync; returns the app's
    /// URL. Starting a running node returns its URL again.
    pub fn start(&self) -> Result<String, KasirError> {
        let mut live = self.live.lock().map_err(|_| KasirError::Stopped)?;
        let live = live.as_mut().ok_or(KasirError::Stopped)?;
        if let Some(s) = &live.serving {
            return Ok(s.url.clone());
        }
        let listener = live
            .runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .map_err(|e| KasirError::IoError(format!("binding the till app's port: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| KasirError::IoError(e.to_string()))?;
        let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
        let opts = RunOptions {
            http: Some(addr),
            net: Some(NetConfig {
                listen: SocketAddr::from(([0, 0, 0, 0], 0)),
                peers: Vec::new(),
                mdns: true,
            }),
            host_names: Vec::new(),
            metrics_public: false,
            sync_addrs: Some(addrs_tx),
        };
        let cancel = CancellationToken::new();
        let task = live.runtime.spawn(daemon::run_shared(
            listener,
            live.node.clone(),
            opts,
            cancel.clone(),
        ));
        // The sync endpoint binds at once; a daemon that failed to start says so.
        let sync_addrs = match addrs_rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(addrs) => addrs,
            Err(_) => {
                cancel.cancel();
                let why = match live.runtime.block_on(task) {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the node's sync endpoint did not start".to_owned(),
                };
                return Err(KasirError::IoError(why));
            }
        };
        let url = format!("http://{addr}/");
        live.serving = Some(Serving {
            cancel,
            task,
            url: url.clone(),
            sync_addrs,
        });
        Ok(url)
    }

    /// Stops the till app and sync, and closes the node (its data directory is free
    /// again). Stopping twice is fine; other calls after it are [`KasirError::Stopped`].
    pub fn stop(&self) -> Result<(), KasirError> {
        let Some(live) = self.live.lock().map_err(|_| KasirError::Stopped)?.take() else {
            return Ok(());
        };
        let mut failed = None;
        if let Some(listening) = &live.listening {
            listening.cancel();
        }
        if let Some(serving) = live.serving {
            serving.cancel.cancel();
            match live.runtime.block_on(serving.task) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(e.to_string()),
                Err(e) => failed = Some(e.to_string()),
            }
        }
        drop(live.node);
        live.runtime
            .shutdown_timeout(std::time::Duration::from_secs(5));
        match failed {
            None => Ok(()),
            Some(message) => Err(KasirError::Internal(message)),
        }
    }
}
