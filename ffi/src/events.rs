//! Events for the host: what the node commits, how its stock and sync stand, and
//! print jobs given up, told to the [`NodeListener`] the host sets.
//!
//! Who owns what: [`Ears`] holds the listener (replaceable). The watcher task
//! ([`watch`]) owns the node's change subscription and the last state it told (today's
//! sales, stock, sync); it runs on the node's runtime from the first `set_listener` until
//! its token fires at `stop`. The print-failure forwarder ([`forward_print_failures`])
//! runs while the node serves, ended by the daemon's token. Listeners are called on
//! these tasks' threads, never under the node's lock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kasir_node::SharedNode;
use kasir_node::print::PrintFailed;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

/// Something that happened on the node, told to the app's [`NodeListener`].
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
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
    /// A product's stock on hand changed (a sale, a count, a sync).
    StockChanged {
        /// The product.
        sku: String,
        /// Its stock now (negative: oversold).
        on_hand: f64,
    },
    /// The other tills this node is connected to, or its unsent work, changed.
    SyncState {
        /// Tills and relays connected now.
        connected_peers: u32,
        /// Documents with changes no peer has acknowledged yet.
        unsynced_docs: u64,
    },
    /// A print job was given up after its retries (the sale is safe: reprint it).
    PrintFailed {
        /// What it was: a sale id, `drawer`, `test page`, a report's title.
        what: String,
        /// The printer.
        printer: String,
        /// Why the last attempt failed.
        error: String,
    },
    /// Something else changed (the catalog, the store, people): screens refresh.
    Changed,
}

/// What the app implements to hear about the node; called on the node's own threads
/// (hand work to the UI thread).
#[uniffi::export(with_foreign)]
pub trait NodeListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: NodeEvent);
}

/// The listener, if the host set one.
#[derive(Default)]
pub(crate) struct Ears(Mutex<Option<Arc<dyn NodeListener>>>);

impl Ears {
    pub(crate) fn set(&self, listener: Arc<dyn NodeListener>) {
        if let Ok(mut l) = self.0.lock() {
            *l = Some(listener);
        }
    }

    fn tell(&self, event: NodeEvent) {
        // Cloned out first: the host's code never runs under our mutex.
        let listener = self.0.lock().ok().and_then(|l| l.clone());
        if let Some(listener) = listener {
            listener.on_event(event);
        }
    }
}

/// How often the sync state is looked at (connections come and go without a commit).
const SYNC_POLL: Duration = Duration::from_secs(2);

/// What was last told, to tell only differences.
#[derive(Default)]
struct Told {
    sales: HashSet<String>,
    stock: HashMap<String, f64>,
    sync: Option<(u32, u64)>,
}

/// Today's sales, all stock and the sync state, read under the node's lock.
struct Snapshot {
    sales: Vec<kasir_node::api::SaleRow>,
    stock: HashMap<String, f64>,
    sync: Option<(u32, u64)>,
}

fn snapshot(node: &SharedNode) -> Option<Snapshot> {
    let n = node.lock().ok()?;
    let sales = n.sales(Some(&n.today().to_string())).unwrap_or_default();
    let stock = n
        .stock(None)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.sku, r.on_hand))
        .collect();
    let sync = n.status().ok().map(|s| {
        let connected = s.peers.iter().filter(|p| p.connected).count();
        (
            u32::try_from(connected).unwrap_or(u32::MAX),
            s.unsynced_docs,
        )
    });
    Some(Snapshot { sales, stock, sync })
}

async fn read(node: &SharedNode) -> Option<Snapshot> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || snapshot(&node))
        .await
        .ok()
        .flatten()
}

/// Tells `ears` what changes on `node` until `cancel` fires: a new sale of today as
/// [`NodeEvent::SaleCommitted`] (once each), each stock level that moved, the sync state
/// when it moves; a commit that changed none of these as [`NodeEvent::Changed`].
pub(crate) async fn watch(node: SharedNode, ears: Arc<Ears>, cancel: CancellationToken) {
    let Ok(mut changes) = node.lock().map(|mut n| n.subscribe()) else {
        return;
    };
    let mut told = Told::default();
    if let Some(now) = read(&node).await {
        told.sales = now.sales.into_iter().map(|s| s.sale_id).collect();
        told.stock = now.stock;
        told.sync = now.sync;
    }
    let mut poll = tokio::time::interval(SYNC_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let committed = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = poll.tick() => false,
            changed = changes.recv() => match changed {
                Ok(_) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
        };
        let Some(now) = read(&node).await else {
            continue;
        };
        let mut events = Vec::new();
        if committed {
            for sale in now.sales {
                if told.sales.insert(sale.sale_id.clone()) {
                    events.push(NodeEvent::SaleCommitted {
                        sale_id: sale.sale_id,
                        receipt_no: sale.receipt_no,
                        till_code: sale.till_code,
                        total: sale.total,
                    });
                }
            }
            let mut moved: Vec<(&String, f64)> = now
                .stock
                .iter()
                .filter(|(sku, on_hand)| told.stock.get(*sku) != Some(on_hand))
                .map(|(sku, on_hand)| (sku, *on_hand))
                .collect();
            moved.sort_by(|a, b| a.0.cmp(b.0));
            events.extend(
                moved
                    .into_iter()
                    .map(|(sku, on_hand)| NodeEvent::StockChanged {
                        sku: sku.clone(),
                        on_hand,
                    }),
            );
            told.stock = now.stock;
        }
        if now.sync.is_some() && now.sync != told.sync {
            told.sync = now.sync;
            if let Some((connected_peers, unsynced_docs)) = now.sync {
                events.push(NodeEvent::SyncState {
                    connected_peers,
                    unsynced_docs,
                });
            }
        }
        if committed && events.is_empty() {
            events.push(NodeEvent::Changed);
        }
        for event in events {
            ears.tell(event);
        }
    }
}

/// Tells `ears` of each print job the daemon gives up, until `cancel` fires.
pub(crate) async fn forward_print_failures(
    mut failures: broadcast::Receiver<PrintFailed>,
    ears: Arc<Ears>,
    cancel: CancellationToken,
) {
    loop {
        let failed = tokio::select! {
            _ = cancel.cancelled() => return,
            failed = failures.recv() => failed,
        };
        match failed {
            Ok(f) => ears.tell(NodeEvent::PrintFailed {
                what: f.what,
                printer: f.printer,
                error: f.error,
            }),
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
