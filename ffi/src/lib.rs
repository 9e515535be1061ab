//! The Kasir node inside an app (Android, iOS, a Python script): a narrow API through
//! UniFFI, with iroh, Automerge and SQLite kept inside.
//!
//! **Who owns what:** a [`KasirNode`] owns the node (behind the same `SharedNode` mutex
//! the daemon uses), a tokio runtime, the host's listener ([`events`]) and printer
//! ([`printer`]), and — between [`KasirNode::start`] and [`KasirNode::stop`] — the
//! daemon task serving the till app and the sync endpoint on that runtime, ended by a
//! cancellation token. `stop` is idempotent; it ends the daemon and the event tasks,
//! drops the node and so releases the data directory's lock: another
//! [`KasirNode::open`] on the same directory then works in the same process. Every call
//! after `stop` is [`KasirError::Stopped`], never a crash of the host.
//!
//! **Architecture Invariant:** the host never sees a document, a key or a SQL row: only
//! the records below. Calls block the calling thread (the host calls from a worker, not
//! its UI thread); the host's callbacks run on the node's threads.
//!
//! **API Boundary:** the names follow `contract.md` ("Mobile embedding"); errors carry
//! the codes of the HTTP API and the `kasir` command ([`KasirError`]).

pub mod error;
pub mod events;
pub mod printer;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kasir_crdt::Qty;
use kasir_node::api::{InitOptions, ProductInput, SaleItem as NodeSaleItem, SaleRequest};
use kasir_node::daemon::{self, RunOptions, Started};
use kasir_node::lan::NetConfig;
use kasir_node::print::{AppPrinter, EscposRequest, PrinterConfig, printer_profile};
use kasir_node::vault::{DbKey, Encrypt};
use kasir_node::{Node, NodeError, SharedNode};
use tokio_util::sync::CancellationToken;

pub use error::KasirError;
pub use events::{NodeEvent, NodeListener};
pub use printer::{ForeignPrinter, PrinterError};

uniffi::setup_scaffolding!();

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
    /// `false` when an earlier call with the same client id made this sale (nothing
    /// was sold twice).
    pub created: bool,
}

/// A product as a native screen shows it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Product {
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Selling price in rupiah.
    pub price: i64,
    /// Barcodes.
    pub barcodes: Vec<String>,
    /// Unit (`pcs`, `kg`).
    pub unit: String,
    /// Stock on hand (negative: oversold).
    pub on_hand: f64,
}

/// One candidate of a photo's recognition.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Candidate {
    /// The product.
    pub sku: String,
    /// Cosine similarity to its best reference photo.
    pub score: f32,
}

/// What a photo looks like, best first.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Recognition {
    /// Best candidates first.
    pub candidates: Vec<Candidate>,
    /// Whether the best one reaches the store's threshold (else ask the cashier).
    pub known: bool,
}

/// How the node stands.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeInfo {
    /// The store's id.
    pub store_id: String,
    /// The store's name.
    pub store_name: String,
    /// This till's code.
    pub till_code: String,
    /// This device's id in the store's roster.
    pub device_id: String,
    /// The till app's address while the node serves (without a login code).
    pub url: Option<String>,
    /// Other devices of the store.
    pub peers: u32,
    /// Of those, connected now.
    pub connected_peers: u32,
    /// Documents with changes no peer has acknowledged yet.
    pub unsynced_docs: u64,
    /// Products in the catalog.
    pub products: u64,
    /// Sales held (every till's).
    pub sales: u64,
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
    /// `http://127.0.0.1:PORT/`.
    base: String,
    /// The daemon's state: print queue, gate codes, sync addresses.
    started: Started,
}

/// What a node holds until it is stopped.
struct Live {
    node: SharedNode,
    runtime: tokio::runtime::Runtime,
    serving: Option<Serving>,
    ears: Arc<events::Ears>,
    /// The watcher task, once a listener is set; ended by this token.
    watching: Option<CancellationToken>,
    /// The host's printer for `app://` printers.
    printer: AppPrinter,
}

/// A store's node on this device.
#[derive(uniffi::Object)]
pub struct KasirNode {
    live: Mutex<Option<Live>>,
}

/// The runtime a node runs on: its sync, its till app, its events.
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
                ears: Arc::default(),
                watching: None,
                printer: AppPrinter::default(),
            })),
        }))
    }

    /// Runs `f` on what the node holds, unless it was stopped.
    fn with_live<T>(
        &self,
        f: impl FnOnce(&mut Live) -> Result<T, KasirError>,
    ) -> Result<T, KasirError> {
        let mut live = self.live.lock().map_err(|_| KasirError::Stopped)?;
        f(live.as_mut().ok_or(KasirError::Stopped)?)
    }

    /// Keeps `printer` for `app://` printers and, while serving, restarts the print
    /// queue on `settings` with it.
    fn use_printer(
        &self,
        printer: Arc<dyn ForeignPrinter>,
        settings: Option<kasir_node::print::PrintSettings>,
    ) -> Result<(), KasirError> {
        self.with_live(|live| {
            live.printer = AppPrinter(Some(Arc::new(printer::HostPrinter(printer))));
            if let Some(serving) = &live.serving {
                let app = &serving.started.app;
                app.set_app_printer(live.printer.clone());
                // A queue runs on the node's runtime.
                let _enter = live.runtime.enter();
                app.replace_printer(settings);
            }
            Ok(())
        })
    }

    /// Runs `f` on the node, unless it was stopped.
    fn with_node<T>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, KasirError>,
    ) -> Result<T, KasirError> {
        let node = self.with_live(|live| Ok(live.node.clone()))?;
        let mut guard = node.lock()?;
        f(&mut guard)
    }
}

/// A new random database key for [`KasirNode::init_encrypted`]: 32 bytes the app keeps
/// (wrapped by the platform's key store) and hands back on every open.
#[uniffi::export]
pub fn new_database_key() -> Vec<u8> {
    DbKey::generate().to_bytes().to_vec()
}

fn database_key(key: Vec<u8>) -> Result<DbKey, KasirError> {
    <[u8; 32]>::try_from(key.as_slice())
        .map(DbKey::from_bytes)
        .map_err(|_| {
            KasirError::InvalidRequest(format!("a database key is 32 bytes, got {}", key.len()))
        })
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
                encrypt: None,
            },
        )?;
        KasirNode::new(node)
    }

    /// Opens the store in `data_dir`.
    #[uniffi::constructor]
    pub fn open(data_dir: String) -> Result<Arc<KasirNode>, KasirError> {
        KasirNode::new(Node::open(Path::new(&data_dir))?)
    }

    /// Creates a store in `data_dir` encrypted at rest with `key` (32 bytes from
    /// [`new_database_key`]), which the app keeps itself: wrapped by the Android
    /// Keystore, say. Nothing of the key is written to `data_dir`.
    #[uniffi::constructor]
    pub fn init_encrypted(
        data_dir: String,
        store_name: String,
        till_code: String,
        key: Vec<u8>,
    ) -> Result<Arc<KasirNode>, KasirError> {
        let node = Node::init(
            Path::new(&data_dir),
            &InitOptions {
                store_name,
                till_code,
                encrypt: Some(Encrypt::Host(database_key(key)?)),
            },
        )?;
        KasirNode::new(node)
    }

    /// Opens the encrypted store in `data_dir` with the `key` the app kept.
    #[uniffi::constructor]
    pub fn open_encrypted(data_dir: String, key: Vec<u8>) -> Result<Arc<KasirNode>, KasirError> {
        KasirNode::new(Node::open_keyed(Path::new(&data_dir), &database_key(key)?)?)
    }

    /// Joins an existing store with an invite from one of its tills (`invite` there, or
    /// Pengaturan's QR code), through any member the invite names, and syncs once.
    #[uniffi::constructor(default(till_code = None))]
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
                None,
            ))
            .map_err(|e| match e {
                kasir_node::lan::JoinError::Node(e) => KasirError::from(e),
                other => KasirError::Conflict(other.to_string()),
            })?;
        KasirNode::on(Node::open(&dir)?, runtime)
    }

    /// [`KasirNode::join`] into a data directory encrypted at rest with `key` (32 bytes
    /// from [`new_database_key`], kept by the app).
    #[uniffi::constructor(default(till_code = None))]
    pub fn join_encrypted(
        data_dir: String,
        ticket: String,
        key: Vec<u8>,
        till_code: Option<String>,
    ) -> Result<Arc<KasirNode>, KasirError> {
        let key = database_key(key)?;
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
                Some(&Encrypt::Host(key.clone())),
            ))
            .map_err(|e| match e {
                kasir_node::lan::JoinError::Node(e) => KasirError::from(e),
                other => KasirError::Conflict(other.to_string()),
            })?;
        KasirNode::on(Node::open_keyed(&dir, &key)?, runtime)
    }

    /// The store, this till, its peers and what waits to sync.
    pub fn status(&self) -> Result<NodeInfo, KasirError> {
        let url = self.with_live(|live| Ok(live.serving.as_ref().map(|s| s.base.clone())))?;
        let s = self.with_node(|n| Ok(n.status()?))?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(NodeInfo {
            store_id: s.store_id,
            store_name: s.store_name,
            till_code: s.till_code,
            device_id: s.endpoint_id,
            url,
            peers: count(s.peers.len()),
            connected_peers: count(s.peers.iter().filter(|p| p.connected).count()),
            unsynced_docs: s.unsynced_docs,
            products: s.products,
            sales: s.sales,
        })
    }

    /// A one-time invite for another device to join this store (`role`: `till` or
    /// `manager`), naming this node's sync addresses once it runs ([`KasirNode::start`]).
    #[uniffi::method(default(till_code = None))]
    pub fn invite(&self, role: String, till_code: Option<String>) -> Result<String, KasirError> {
        let addrs = self.with_live(|live| {
            Ok(live
                .serving
                .as_ref()
                .map(|s| s.started.sync_addrs.clone())
                .unwrap_or_default())
        })?;
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

    /// Products for sale whose name, SKU or barcode matches `query`, best first.
    #[uniffi::method(default(limit = 20))]
    pub fn search(&self, query: String, limit: u32) -> Result<Vec<Product>, KasirError> {
        self.with_node(|n| {
            let rows = n.search_products(&query, limit.clamp(1, 200) as usize)?;
            rows.into_iter()
                .map(|p| {
                    let on_hand = n.stock(Some(&p.sku))?.first().map_or(0.0, |r| r.on_hand);
                    Ok(Product {
                        sku: p.sku,
                        name: p.name,
                        price: p.price,
                        barcodes: p.barcodes,
                        unit: p.unit,
                        on_hand,
                    })
                })
                .collect()
        })
    }

    /// Sells `items`, paid in exact cash; durable before it returns. The same
    /// `client_id` again (a retry after a timeout, a double tap) returns the first sale
    /// and sells nothing.
    #[uniffi::method(default(client_id = None))]
    pub fn sell(
        &self,
        items: Vec<SaleItem>,
        client_id: Option<String>,
    ) -> Result<SaleResult, KasirError> {
        let items = items
            .into_iter()
            .map(|i| {
                Ok(NodeSaleItem {
                    code: i.sku,
                    qty: qty(i.qty)?,
                    discount: 0,
                    discount_percent: None,
                    price: None,
                    // A carton's barcode sells its unit by itself.
                    unit: None,
                })
            })
            .collect::<Result<Vec<_>, KasirError>>()?;
        let outcome = self.with_node(|n| {
            Ok(n.sell(&SaleRequest {
                client_id,
                items,
                ..SaleRequest::default()
            })?)
        })?;
        Ok(SaleResult {
            sale_id: outcome.sale_id,
            receipt_no: outcome.receipt_no,
            total: outcome.total,
            change: outcome.change,
            created: outcome.created,
        })
    }

    /// Stock on hand of a SKU (or barcode).
    pub fn stock(&self, sku: String) -> Result<f64, KasirError> {
        let rows = self.with_node(|n| Ok(n.stock(Some(&sku))?))?;
        Ok(rows.first().map_or(0.0, |r| r.on_hand))
    }

    /// The struk of a sale as plain text, `width` columns (32 for 58 mm paper).
    #[uniffi::method(default(width = 32))]
    pub fn receipt_text(&self, sale_id: String, width: u32) -> Result<String, KasirError> {
        self.with_node(|n| Ok(n.receipt_text(&sale_id, width as usize)?))
    }

    /// The struk of a sale as ESC/POS bytes for a printer `profile` (`58`, `58b`, `80`,
    /// `80b`, `80-512`), for a host that prints on its own.
    #[uniffi::method(default(profile = "58"))]
    pub fn receipt_escpos(&self, sale_id: String, profile: String) -> Result<Vec<u8>, KasirError> {
        let req = EscposRequest {
            profile: printer_profile(None, Some(&profile), false)?,
            qr: None,
            drawer: false,
            reprint: false,
        };
        self.with_node(|n| Ok(kasir_node::print::receipt_escpos(n, &sale_id, &req)?))
    }

    /// Recognises a product in a camera photo (JPEG or PNG) with this till's gallery.
    #[uniffi::method(default(top = 3))]
    pub fn recognize(&self, image: Vec<u8>, top: u32) -> Result<Recognition, KasirError> {
        // The model and gallery are taken under the lock; inference runs outside it.
        let matcher = self.with_node(|n| Ok(n.ml_matcher()?))?;
        let outcome = matcher.recognize(&image, top.clamp(1, 20) as usize)?;
        Ok(Recognition {
            candidates: outcome
                .matches
                .into_iter()
                .map(|m| Candidate {
                    sku: m.sku,
                    score: m.score,
                })
                .collect(),
            known: outcome.known,
        })
    }

    /// Tells `listener` what happens on the node from now on (a new listener replaces
    /// the one before). It is called on the node's threads: hand work to the UI thread.
    pub fn set_listener(&self, listener: Arc<dyn NodeListener>) -> Result<(), KasirError> {
        self.with_live(|live| {
            live.ears.set(listener);
            if live.watching.is_none() {
                let cancel = CancellationToken::new();
                live.runtime.spawn(events::watch(
                    live.node.clone(),
                    live.ears.clone(),
                    cancel.clone(),
                ));
                live.watching = Some(cancel);
            }
            Ok(())
        })
    }

    /// Makes `printer` move the bytes of this till's `app://` printers — the one set
    /// in the till app's Pengaturan (`app://NAME`) or by [`KasirNode::set_printer`].
    /// Nothing else changes: without an `app://` printer configured it is never called.
    pub fn set_printer_transport(
        &self,
        printer: Arc<dyn ForeignPrinter>,
    ) -> Result<(), KasirError> {
        let dir = self.with_node(|n| Ok(n.dir().to_owned()))?;
        // A broken printer.json leaves the till without a printer, as in `kasir run`.
        let settings = PrinterConfig::load(&dir).ok().flatten();
        self.use_printer(printer, settings)
    }

    /// Makes `printer` this till's receipt printer, under the app's `name` for it (a
    /// paired Bluetooth printer's name), with a paper `profile` (`58`, `80`, …): the
    /// node renders and queues receipts and retries, the app moves the bytes. Kept in
    /// the data directory as `app://NAME`; takes effect at once.
    #[uniffi::method(default(profile = "58"))]
    pub fn set_printer(
        &self,
        printer: Arc<dyn ForeignPrinter>,
        name: String,
        profile: String,
    ) -> Result<(), KasirError> {
        let dir = self.with_node(|n| Ok(n.dir().to_owned()))?;
        let config = PrinterConfig {
            uri: format!("app://{}", name.trim()),
            profile: Some(profile),
            ..PrinterConfig::default()
        };
        let settings = config.save(&dir)?;
        self.use_printer(printer, Some(settings))
    }

    /// Queues the original struk of `sale_id` on this till's printer; the job's id. A
    /// failure later arrives as [`NodeEvent::PrintFailed`] (a copy for the customer goes
    /// through the till app's Riwayat, where reprints need a supervisor).
    pub fn print_receipt(&self, sale_id: String) -> Result<u64, KasirError> {
        self.with_node(|n| {
            n.sale_status(&sale_id)
                .map(|_| ())
                .map_err(KasirError::from)
        })?;
        self.with_live(|live| {
            let serving = live
                .serving
                .as_ref()
                .ok_or_else(|| KasirError::Conflict("start the node before printing".into()))?;
            let queue = serving.started.app.printer().ok_or_else(|| {
                KasirError::Conflict("this till has no printer: set_printer first".into())
            })?;
            Ok(queue.enqueue(&sale_id, false)?)
        })
    }

    /// Starts the till app on `127.0.0.1` (a free port) and LAN sync; returns the app's
    /// URL for the app's WebView, with a one-time code: only whoever opens it first gets
    /// in (other apps on the phone reach loopback too). Each call returns a new URL.
    pub fn start(&self) -> Result<String, KasirError> {
        self.with_live(|live| {
            if live.serving.is_none() {
                live.serving = Some(serve(live)?);
            }
            let serving = live.serving.as_ref().ok_or(KasirError::Stopped)?;
            let code = serving
                .started
                .app
                .app_code()
                .ok_or_else(|| KasirError::Internal("the till app is not gated".into()))?;
            Ok(format!(
                "{}?{}={code}",
                serving.base,
                kasir_node::gate::CODE_PARAM
            ))
        })
    }

    /// Stops the till app and sync, and closes the node (its data directory is free
    /// again). Stopping twice is fine; other calls after it are [`KasirError::Stopped`].
    pub fn stop(&self) -> Result<(), KasirError> {
        let Some(live) = self.live.lock().map_err(|_| KasirError::Stopped)?.take() else {
            return Ok(());
        };
        let mut failed = None;
        if let Some(watching) = &live.watching {
            watching.cancel();
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

/// Starts the daemon for `live`: the till app on a free loopback port, gated for the
/// app, and LAN sync on all interfaces.
fn serve(live: &Live) -> Result<Serving, KasirError> {
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
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let opts = RunOptions {
        http: Some(addr),
        net: Some(NetConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            peers: Vec::new(),
            mdns: true,
        }),
        started: Some(started_tx),
        app_only: true,
        app_printer: live.printer.clone(),
        ..RunOptions::default()
    };
    let cancel = CancellationToken::new();
    let task = live.runtime.spawn(daemon::run_shared(
        listener,
        live.node.clone(),
        opts,
        cancel.clone(),
    ));
    // The sync endpoint binds at once; a daemon that failed to start says so.
    let Ok(started) = started_rx.recv_timeout(std::time::Duration::from_secs(10)) else {
        cancel.cancel();
        let why = match live.runtime.block_on(task) {
            Ok(Err(e)) => e.to_string(),
            _ => "the node's sync endpoint did not start".to_owned(),
        };
        return Err(KasirError::IoError(why));
    };
    live.runtime.spawn(events::forward_print_failures(
        started.app.print_failures(),
        live.ears.clone(),
        cancel.clone(),
    ));
    Ok(Serving {
        cancel,
        task,
        base: format!("http://{addr}/"),
        started,
    })
}
