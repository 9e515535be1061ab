//! The till's `/metrics`: one `prometheus_client` registry per daemon, holding the
//! engine's series and its sync sessions' ([`kasir_sync::SyncMetrics`]).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;

use crate::api::NodeStatus;
use crate::node::now_ms;
use crate::print::PrinterHealth;
use kasir_sync::SyncMetrics;

/// The content type of [`TillMetrics::render`]'s OpenMetrics text, for scrapers that ask
/// for it (Prometheus does).
pub use kasir_sync::metrics::OPENMETRICS;

/// The registry and the series the daemon updates.
#[derive(Debug)]
pub struct TillMetrics {
    registry: Registry,
    sales: Gauge,
    products: Gauge,
    docs: Gauge,
    unsynced_docs: Gauge,
    peers: Gauge,
    peers_connected: Gauge,
    last_receive_age: Gauge<f64, AtomicU64>,
    sales_created: Counter,
    sale_commit_seconds: Counter<f64, AtomicU64>,
    backups: BackupMetrics,
    print_failures: Counter,
    print_pending: Gauge,
    print_failing: Gauge,
    peer_behind: Family<PeerLabels, Gauge>,
    peer_connected: Family<PeerLabels, Gauge>,
    sync: SyncMetrics,
}

/// The label of a per-peer series: the peer's till code (`RELAY` for the relay).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

/// The daemon's scheduled backups ([`crate::backup::BackupSchedule`]): what an operator
/// alerts on (no successful backup for a day, failures).
#[derive(Debug, Clone, Default)]
pub struct BackupMetrics {
    succeeded: Counter,
    failed: Counter,
    last_success: Gauge<f64, AtomicU64>,
    last_bytes: Gauge,
}

impl BackupMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "kasir_backups",
            "Scheduled backups written since start",
            self.succeeded.clone(),
        );
        r.register(
            "kasir_backup_failures",
            "Scheduled backups that failed since start",
            self.failed.clone(),
        );
        r.register(
            "kasir_backup_last_success_timestamp_seconds",
            "When the last scheduled backup was written (0: none since start)",
            self.last_success.clone(),
        );
        r.register(
            "kasir_backup_last_bytes",
            "Size of the last scheduled backup",
            self.last_bytes.clone(),
        );
    }

    /// Counts a backup written at `at_ms` of `bytes`.
    pub fn succeeded(&self, at_ms: i64, bytes: u64) {
        self.succeeded.inc();
        self.last_success.set(at_ms as f64 / 1e3);
        self.last_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts a backup that failed.
    pub fn failed(&self) {
        self.failed.inc();
    }
}

impl TillMetrics {
    /// A registry with every series of a till, the sync layer's included.
    pub fn new(sync: SyncMetrics) -> TillMetrics {
        let mut m = TillMetrics {
            registry: Registry::default(),
            sales: Gauge::default(),
            products: Gauge::default(),
            docs: Gauge::default(),
            unsynced_docs: Gauge::default(),
            peers: Gauge::default(),
            peers_connected: Gauge::default(),
            last_receive_age: Gauge::default(),
            sales_created: Counter::default(),
            sale_commit_seconds: Counter::default(),
            backups: BackupMetrics::default(),
            print_failures: Counter::default(),
            print_pending: Gauge::default(),
            print_failing: Gauge::default(),
            peer_behind: Family::default(),
            peer_connected: Family::default(),
            sync,
        };
        let r = &mut m.registry;
        r.register(
            "kasir_sales",
            "Sales held by this node (all tills)",
            m.sales.clone(),
        );
        r.register(
            "kasir_products",
            "Products in the catalog",
            m.products.clone(),
        );
        r.register("kasir_docs", "Documents held", m.docs.clone());
        r.register(
            "kasir_unsynced_docs",
            "Documents with changes no peer has acknowledged",
            m.unsynced_docs.clone(),
        );
        r.register("kasir_peers", "Known peers", m.peers.clone());
        r.register(
            "kasir_peers_connected",
            "Peers connected now",
            m.peers_connected.clone(),
        );
        r.register(
            "kasir_sales_created",
            "Sales created through this API since start",
            m.sales_created.clone(),
        );
        r.register(
            "kasir_sale_commit_seconds",
            "Time spent committing those sales",
            m.sale_commit_seconds.clone(),
        );
        r.register(
            "kasir_sync_last_receive_age_seconds",
            "Seconds since a peer last sent a sync frame (-1: never)",
            m.last_receive_age.clone(),
        );
        r.register(
            "kasir_print_failures",
            "Print jobs given up after their retries",
            m.print_failures.clone(),
        );
        r.register(
            "kasir_print_jobs_pending",
            "Print jobs queued and not finished",
            m.print_pending.clone(),
        );
        r.register(
            "kasir_print_failing",
            "Whether the printer's last job failed (1) with none printed since",
            m.print_failing.clone(),
        );
        r.register(
            "kasir_sync_peer_behind_docs",
            "Documents whose latest changes a peer has not acknowledged (sync lag)",
            m.peer_behind.clone(),
        );
        r.register(
            "kasir_sync_peer_connected",
            "Whether a peer is connected now",
            m.peer_connected.clone(),
        );
        m.backups.register(r);
        m.sync.register(r);
        m
    }

    /// The print queue's counter of jobs given up.
    pub fn print_failures(&self) -> Counter {
        self.print_failures.clone()
    }

    /// The scheduled backups' series, for the backup task.
    pub fn backups(&self) -> BackupMetrics {
        self.backups.clone()
    }

    /// Counts a sale this daemon created, and the time its commit took.
    pub fn sale_committed(&self, took: Duration) {
        self.sales_created.inc();
        self.sale_commit_seconds.inc_by(took.as_secs_f64());
    }

    /// The text exposition, with the node's counts as of `status` and the print
    /// queue's state.
    pub fn render(&self, status: &NodeStatus, printer: Option<&PrinterHealth>) -> String {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.sales.set(count(status.sales));
        self.products.set(count(status.products));
        self.docs.set(count(status.docs));
        self.unsynced_docs.set(count(status.unsynced_docs));
        self.peers.set(count(status.peers.len() as u64));
        self.peers_connected.set(count(
            status.peers.iter().filter(|p| p.connected).count() as u64
        ));
        self.print_pending
            .set(count(printer.map_or(0, |p| p.pending as u64)));
        self.print_failing
            .set(i64::from(printer.is_some_and(|p| p.failing.is_some())));
        // Revoked or renamed peers leave the series, not a stale last value.
        self.peer_behind.clear();
        self.peer_connected.clear();
        for p in &status.peers {
            let label = PeerLabels {
                peer: p.till_code.clone(),
            };
            self.peer_behind
                .get_or_create(&label)
                .set(count(p.behind_docs));
            self.peer_connected
                .get_or_create(&label)
                .set(i64::from(p.connected));
        }
        self.last_receive_age
            .set(match self.sync.last_receive_ms() {
                None => -1.0,
                Some(t) => (now_ms() - t) as f64 / 1e3,
            });
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
