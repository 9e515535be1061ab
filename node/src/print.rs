//! Printing receipts from the node: the ESC/POS bytes of a stored sale, and the
//! daemon's print queue. The bytes and the transports come from `kasir-devices`; this
//! module only decides what to print, when, and how often to retry.
//!
//! Who owns what:
//! - The [`PrintQueue`] task owns the printer while the daemon runs: its URI, profile and
//!   transport, and the jobs waiting for it. Jobs run one at a time, in order.
//! - HTTP handlers (`crate::http`) hold a [`PrintQueue`] handle (a bounded channel
//!   sender): enqueueing never waits for the printer, and a full queue is refused at once.
//! - The [`Node`] stays behind its [`SharedNode`] mutex. The queue locks it only to
//!   render a job's bytes, on the blocking pool, and never while talking to the printer.
//! - The daemon's [`CancellationToken`] ends the queue at shutdown; jobs still waiting are
//!   dropped (the sale is in the ledger: reprint it from history).
//!
//! **Invariant:** printing never blocks or fails a sale. A job names a sale the node has
//! already returned, so printing starts only after the sale is durable; print errors
//! are logged and retried with backoff, never returned to whoever made the sale.
//!
//! The daemon's printer is configured in `printer.json` in the data directory
//! ([`PrinterConfig`]); without that file `POST /v1/sales/{id}/print` answers 409.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kasir_devices::encode::{PrinterProfile, encode};
use kasir_devices::receipt::{ReceiptOptions, ReportLine, layout, report, test_page};
use kasir_devices::transport::{self, AppLink, PrinterUri, TransportOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::Node;
use crate::shared::SharedNode;
use crate::tables::SaleStatus;

/// File in the data directory that configures the daemon's printer.
pub const PRINTER_FILE: &str = "printer.json";

/// Jobs that may wait for the printer before new ones are refused.
const QUEUE_DEPTH: usize = 64;

/// What goes on the paper besides the sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscposRequest {
    /// The printer's profile (columns, font, QR mode, cutter, drawer).
    pub profile: PrinterProfile,
    /// A QR code payload (static QRIS, e-receipt link).
    pub qr: Option<String>,
    /// Pulse the cash drawer (only for an original receipt of a sale paid in cash).
    pub drawer: bool,
    /// Mark the receipt `SALINAN` (a copy).
    pub reprint: bool,
}

/// The printer profile for command-line style options: a profile name (`58`, `58b`,
/// `80`, `80b`, `80-512`), or the usual profile of a column count, else 58 mm.
/// `raster_qr` marks a printer without native QR codes.
pub fn printer_profile(
    width: Option<usize>,
    profile: Option<&str>,
    raster_qr: bool,
) -> Result<PrinterProfile, NodeError> {
    let mut p = match (profile, width) {
        (Some(name), _) => PrinterProfile::by_name(name).ok_or_else(|| {
            NodeError::Invalid(format!(
                "unknown printer profile {name:?}: use 58, 58b, 80, 80b or 80-512"
            ))
        })?,
        (None, Some(w)) => PrinterProfile::for_columns(w).ok_or_else(|| {
            NodeError::Invalid(format!(
                "no printer profile has {w} columns: use 32, 42, 48 or 64, or --profile"
            ))
        })?,
        (None, None) => PrinterProfile::mm58(),
    };
    if let (Some(w), Some(name)) = (width, profile)
        && w != p.columns
    {
        return Err(NodeError::Invalid(format!(
            "printer profile {name} prints {} columns, not {w}",
            p.columns
        )));
    }
    if raster_qr {
        p.native_qr = false;
    }
    Ok(p)
}

/// The ESC/POS bytes of a stored sale's receipt (voided sales print `DIBATALKAN`).
pub fn receipt_escpos(
    node: &mut Node,
    sale_id: &str,
    req: &EscposRequest,
) -> Result<Vec<u8>, NodeError> {
    let sale = node.sale(sale_id)?;
    let voided = node.sale_status(sale_id)? == SaleStatus::Voided;
    let opts = ReceiptOptions {
        width: req.profile.columns,
        status: voided.then(|| "DIBATALKAN".to_owned()),
        reprint: req.reprint,
        qr: req.qr.clone(),
        open_drawer: req.drawer
            && !req.reprint
            && !voided
            && sale.payments.iter().any(|p| p.is_cash()),
    };
    let receipt = layout(node.profile(), &sale, &opts)?;
    Ok(encode(&receipt, &req.profile)?)
}

/// `printer.json`: the daemon's printer.
///
/// ```json
/// {"uri": "tcp://192.168.1.50:9100", "profile": "80", "native_qr": false,
///  "qr": "00020101021126...6304ABCD", "open_drawer": true}
/// ```
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    /// `tcp://HOST:9100`, `file:///dev/usb/lp0` or `ble://NAME`.
    pub uri: String,
    /// `58`, `58b`, `80`, `80b` or `80-512` (58 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Whether the printer draws QR codes itself (the profile's default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_qr: Option<bool>,
    /// A QR code printed on every receipt (static QRIS, e-receipt link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
    /// Pulse the cash drawer on the original receipt of a cash sale.
    #[serde(default)]
    pub open_drawer: bool,
    /// Attempts per job (5 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// First wait between attempts in ms, doubled each time up to 30 s (1000 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
}

/// A validated printer configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PrintSettings {
    /// Where the printer is.
    pub uri: PrinterUri,
    /// What the printer can do.
    pub profile: PrinterProfile,
    /// QR payload for every receipt.
    pub qr: Option<String>,
    /// Drawer pulse for cash sales.
    pub open_drawer: bool,
    /// Attempts per job.
    pub attempts: u32,
    /// First wait between attempts.
    pub backoff: Duration,
    /// Transport time limits.
    pub limits: TransportOptions,
}

impl PrinterConfig {
    /// Reads `printer.json` from a data directory; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<PrintSettings>, NodeError> {
        PrinterConfig::read(dir)?
            .map(|config| config.settings())
            .transpose()
    }

    /// Reads `printer.json` as written, without checking it; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<PrinterConfig>, NodeError> {
        let path = dir.join(PRINTER_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| NodeError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NodeError::Io {
                context: format!("reading {}", path.display()),
                source,
            }),
        }
    }

    /// Checks the configuration and writes it as `printer.json` (replacing the file in
    /// one step); the checked settings to start a queue with.
    pub fn save(&self, dir: &Path) -> Result<PrintSettings, NodeError> {
        let settings = self.settings()?;
        let path = dir.join(PRINTER_FILE);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| NodeError::Invalid(format!("printer settings: {e}")))?;
        crate::storage::write_file_atomic(&path, &bytes, false)
            .map_err(NodeError::io(format!("writing {}", path.display())))?;
        Ok(settings)
    }

    /// Removes `printer.json`: the till prints no more (absent already is fine).
    pub fn remove(dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(PRINTER_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodeError::Io {
                context: format!("removing {}", path.display()),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Checks the configuration.
    pub fn settings(&self) -> Result<PrintSettings, NodeError> {
        let uri: PrinterUri = self.uri.parse().map_err(NodeError::from)?;
        let mut profile = printer_profile(None, self.profile.as_deref(), false)?;
        if let Some(native) = self.native_qr {
            profile.native_qr = native;
        }
        Ok(PrintSettings {
            uri,
            profile,
            qr: self.qr.clone().filter(|q| !q.trim().is_empty()),
            open_drawer: self.open_drawer,
            attempts: self.attempts.unwrap_or(5).clamp(1, 20),
            backoff: Duration::from_millis(self.backoff_ms.unwrap_or(1_000).clamp(10, 30_000)),
            limits: TransportOptions::default(),
        })
    }
}

/// The app that moves the bytes of `app://` printers, when an app embeds the node.
#[derive(Clone, Default)]
pub struct AppPrinter(pub Option<Arc<dyn AppLink>>);

impl std::fmt::Debug for AppPrinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AppPrinter(app)"
        } else {
            "AppPrinter(none)"
        })
    }
}

/// A job the queue gave up on after all its attempts (the paper copy is missing: the
/// sale is in the ledger, reprint it from history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrintFailed {
    /// The job's id.
    pub job: u64,
    /// What it was: a sale id, `drawer`, `test page`, a report's title.
    pub what: String,
    /// The printer.
    pub printer: String,
    /// The last attempt's error.
    pub error: String,
}

/// What a queue gets besides its settings: the app for `app://` printers, and where
/// jobs given up are told ([`PrintFailed`]; nobody listening is fine).
#[derive(Debug, Clone)]
pub struct QueueHooks {
    /// Moves the bytes of `app://` printers.
    pub app: AppPrinter,
    /// Hears of jobs given up.
    pub failed: broadcast::Sender<PrintFailed>,
    /// Counts jobs given up (`kasir_print_failures_total`).
    pub failures: prometheus_client::metrics::counter::Counter,
}

impl Default for QueueHooks {
    fn default() -> QueueHooks {
        QueueHooks {
            app: AppPrinter::default(),
            failed: broadcast::channel(16).0,
            failures: Default::default(),
        }
    }
}

/// A print job: one receipt of one sale, or a drawer pulse on its own.
#[derive(Debug, Clone)]
struct Job {
    id: u64,
    what: JobKind,
}

#[derive(Debug, Clone)]
enum JobKind {
    Receipt {
        sale_id: String,
        reprint: bool,
    },
    /// Open the cash drawer without a sale (the caller checked the approval).
    Drawer,
    /// A test page (Pengaturan's "Cetak tes").
    TestPage,
    /// A dynamic QRIS on paper, while it is payable.
    Qris {
        charge_id: String,
    },
    /// A report (laporan tutup kasir, laporan Z).
    Report {
        title: String,
        subtitle: String,
        lines: Vec<ReportLine>,
    },
}

impl Job {
    fn label(&self) -> &str {
        match &self.what {
            JobKind::Receipt { sale_id, .. } => sale_id,
            JobKind::Drawer => "drawer",
            JobKind::TestPage => "test page",
            JobKind::Report { title, .. } => title,
            JobKind::Qris { charge_id } => charge_id,
        }
    }
}

/// A handle to the daemon's print queue (cheap to clone).
#[derive(Clone, Debug)]
pub struct PrintQueue {
    tx: mpsc::Sender<Job>,
    next_id: Arc<AtomicU64>,
    printer: String,
    health: Arc<std::sync::Mutex<PrinterHealth>>,
}

/// How the printer has been doing, for the till app's toast (written by the queue task).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrinterHealth {
    /// Jobs queued and not finished (printed or given up).
    pub pending: usize,
    /// The last job's failure, while no job has printed since (the printer is off, out
    /// of paper, out of reach).
    pub failing: Option<String>,
}

impl PrintQueue {
    /// Starts the queue task for `settings` on the current tokio runtime.
    pub fn start(
        node: SharedNode,
        settings: PrintSettings,
        hooks: QueueHooks,
        cancel: CancellationToken,
    ) -> PrintQueue {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let printer = settings.uri.to_string();
        let health = Arc::new(std::sync::Mutex::new(PrinterHealth::default()));
        tokio::spawn(run(rx, node, settings, hooks, health.clone(), cancel));
        PrintQueue {
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
            printer,
            health,
        }
    }

    /// The queue configured by `printer.json` in the node's data directory, if any. A
    /// broken `printer.json` is logged and leaves the daemon without a printer.
    pub fn from_data_dir(
        node: &SharedNode,
        hooks: QueueHooks,
        cancel: CancellationToken,
    ) -> Option<PrintQueue> {
        let dir = node.lock().ok()?.dir().to_owned();
        match PrinterConfig::load(&dir) {
            Ok(Some(settings)) => {
                tracing::info!(printer = %settings.uri, "print queue started");
                Some(PrintQueue::start(node.clone(), settings, hooks, cancel))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "printer not configured");
                None
            }
        }
    }

    /// The printer's URI.
    pub fn printer(&self) -> &str {
        &self.printer
    }

    /// Queues a receipt of `sale_id`; returns the job id. Never waits.
    pub fn enqueue(&self, sale_id: &str, reprint: bool) -> Result<u64, NodeError> {
        self.push(JobKind::Receipt {
            sale_id: sale_id.to_owned(),
            reprint,
        })
    }

    /// Queues a drawer pulse without a receipt; returns the job id. Never waits.
    pub fn open_drawer(&self) -> Result<u64, NodeError> {
        self.push(JobKind::Drawer)
    }

    /// Queues a test page; returns the job id. Never waits.
    pub fn test_page(&self) -> Result<u64, NodeError> {
        self.push(JobKind::TestPage)
    }

    /// Queues a dynamic QRIS slip for the customer; returns the job id. Never waits.
    pub fn qris(&self, charge_id: &str) -> Result<u64, NodeError> {
        self.push(JobKind::Qris {
            charge_id: charge_id.to_owned(),
        })
    }

    /// Queues a report (the lines of [`crate::api::ZReport::print_lines`], say) under
    /// the store's name; returns the job id. Never waits.
    pub fn report(
        &self,
        title: &str,
        subtitle: &str,
        lines: Vec<ReportLine>,
    ) -> Result<u64, NodeError> {
        self.push(JobKind::Report {
            title: title.to_owned(),
            subtitle: subtitle.to_owned(),
            lines,
        })
    }

    /// How the printer has been doing.
    pub fn health(&self) -> PrinterHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn push(&self, what: JobKind) -> Result<u64, NodeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Job { id, what };
        if let Ok(mut h) = self.health.lock() {
            h.pending += 1;
        }
        self.tx.try_send(job).map_err(|e| {
            if let Ok(mut h) = self.health.lock() {
                h.pending = h.pending.saturating_sub(1);
            }
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    NodeError::Conflict(format!("print queue for {} is full", self.printer))
                }
                mpsc::error::TrySendError::Closed(_) => {
                    NodeError::Conflict("the print queue has stopped".into())
                }
            }
        })?;
        Ok(id)
    }
}

/// The queue task: one job at a time until cancelled or every handle is gone.
async fn run(
    mut rx: mpsc::Receiver<Job>,
    node: SharedNode,
    settings: PrintSettings,
    hooks: QueueHooks,
    health: Arc<std::sync::Mutex<PrinterHealth>>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            job = rx.recv() => match job {
                Some(job) => {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        outcome = print_job(&node, &settings, &hooks.app, &job) => {
                            if let Err(error) = &outcome {
                                hooks.failures.inc();
                                // Nobody listening is fine.
                                let _ = hooks.failed.send(PrintFailed {
                                    job: job.id,
                                    what: job.label().to_owned(),
                                    printer: settings.uri.to_string(),
                                    error: error.clone(),
                                });
                            }
                            if let Ok(mut h) = health.lock() {
                                h.pending = h.pending.saturating_sub(1);
                                h.failing = outcome.err();
                            }
                        }
                    }
                }
                None => break,
            },
        }
    }
    tracing::debug!("print queue stopped");
}

/// Renders the job's bytes once, then sends them, retrying with doubling waits; the
/// last error when it did not print.
async fn print_job(
    node: &SharedNode,
    settings: &PrintSettings,
    app: &AppPrinter,
    job: &Job,
) -> Result<(), String> {
    let (sale_id, reprint) = match &job.what {
        JobKind::Receipt { sale_id, reprint } => (sale_id.clone(), *reprint),
        JobKind::Drawer => {
            return send(
                settings,
                app,
                job,
                Arc::new(kasir_devices::encode::DRAWER_PULSE.to_vec()),
            )
            .await;
        }
        JobKind::Qris { charge_id } => {
            let slip = node
                .lock()
                .and_then(|n| {
                    let c = n.qris_payable(charge_id)?;
                    kasir_devices::receipt::qris_slip(
                        n.profile(),
                        c.amount,
                        &c.qr_string,
                        c.expires_at_ms,
                        settings.profile.columns,
                    )
                    .map_err(|e| NodeError::Invalid(e.to_string()))
                })
                .map_err(|e| e.to_string())?;
            let bytes = encode(&slip, &settings.profile).map_err(|e| e.to_string())?;
            return send(settings, app, job, Arc::new(bytes)).await;
        }
        JobKind::TestPage | JobKind::Report { .. } => {
            let store = match node.lock() {
                Ok(n) => n.profile().name.clone(),
                Err(e) => return Err(e.to_string()),
            };
            let width = settings.profile.columns;
            let page = match &job.what {
                JobKind::Report {
                    title,
                    subtitle,
                    lines,
                } => report(&store, title, subtitle, lines, width),
                _ => test_page(&store, &settings.uri.to_string(), width),
            }
            .map_err(|e| e.to_string())?;
            let bytes = encode(&page, &settings.profile).map_err(|e| e.to_string())?;
            return send(settings, app, job, Arc::new(bytes)).await;
        }
    };
    let req = EscposRequest {
        profile: settings.profile.clone(),
        qr: settings.qr.clone(),
        drawer: settings.open_drawer,
        reprint,
    };
    let node = node.clone();
    let rendered =
        tokio::task::spawn_blocking(move || receipt_escpos(&mut *node.lock()?, &sale_id, &req))
            .await;
    let bytes = match rendered {
        Ok(Ok(bytes)) => Arc::new(bytes),
        Ok(Err(e)) => {
            tracing::warn!(job = job.id, sale = %job.label(), error = %e, "receipt not printed");
            return Err(e.to_string());
        }
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "receipt rendering failed");
            return Err(e.to_string());
        }
    };
    send(settings, app, job, bytes).await
}

/// Sends a job's bytes, retrying with doubling waits; the last error when all failed.
async fn send(
    settings: &PrintSettings,
    app: &AppPrinter,
    job: &Job,
    bytes: Arc<Vec<u8>>,
) -> Result<(), String> {
    let mut wait = settings.backoff;
    let mut last = String::new();
    for attempt in 1..=settings.attempts {
        let (uri, limits, data) = (settings.uri.clone(), settings.limits, bytes.clone());
        let link = app.0.clone();
        let sending = tokio::task::spawn_blocking(move || {
            transport::open_with(&uri, limits, link).send(&data)
        });
        // Our transports bound their own waits; an app's may not (see `AppLink`).
        let sent = match tokio::time::timeout(limits.total + Duration::from_secs(1), sending).await
        {
            Ok(sent) => sent,
            Err(_) => Ok(Err(transport::PrintError::Deadline {
                printer: settings.uri.to_string(),
                after: limits.total,
            })),
        };
        match sent {
            Ok(Ok(())) => {
                tracing::info!(job = job.id, sale = %job.label(), attempt, "receipt printed");
                return Ok(());
            }
            Ok(Err(e)) => {
                tracing::warn!(job = job.id, sale = %job.label(), attempt, error = %e, "print failed");
                last = e.to_string();
            }
            Err(e) => {
                tracing::warn!(job = job.id, attempt, error = %e, "print task failed");
                last = e.to_string();
            }
        }
        if attempt < settings.attempts {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
    tracing::error!(job = job.id, sale = %job.label(), "receipt not printed: giving up (reprint from history)");
    Err(last)
}

impl Node {
    /// Checks that `by` may reprint `sale_id` (a second struk for the same money: a
    /// supervisor's, or with one's approval) and records it in the audit trail.
    pub fn approve_reprint(
        &mut self,
        by: &crate::people::Principal,
        sale_id: &str,
        approval: Option<&crate::people::Approval>,
    ) -> Result<(), NodeError> {
        self.sale_status(sale_id)?;
        let approved_by = self.authorize(by, crate::people::Action::Reprint, approval)?;
        self.record_audit(
            "reprint",
            by.user_name(),
            Some(sale_id),
            approved_by.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_profiles_from_options() {
        assert_eq!(printer_profile(None, None, false).unwrap().columns, 32);
        assert_eq!(printer_profile(Some(48), None, false).unwrap().columns, 48);
        assert_eq!(
            printer_profile(None, Some("80-512"), false)
                .unwrap()
                .columns,
            42
        );
        assert!(!printer_profile(Some(32), None, true).unwrap().native_qr);
        assert!(printer_profile(Some(40), None, false).is_err());
        assert!(printer_profile(Some(32), Some("80"), false).is_err());
        assert!(printer_profile(None, Some("57mm"), false).is_err());
    }

    #[test]
    fn printer_config_is_validated() {
        let ok: PrinterConfig = serde_json::from_str(
            r#"{"uri": "tcp://10.0.0.7", "profile": "80", "native_qr": false, "attempts": 3}"#,
        )
        .unwrap();
        let s = ok.settings().unwrap();
        assert_eq!(s.uri.to_string(), "tcp://10.0.0.7:9100");
        assert_eq!(
            (s.profile.columns, s.profile.native_qr, s.attempts),
            (48, false, 3)
        );
        let bad: PrinterConfig = serde_json::from_str(r#"{"uri": "lp0"}"#).unwrap();
        assert!(bad.settings().is_err());
        assert!(
            serde_json::from_str::<PrinterConfig>(r#"{"uri": "tcp://x", "colour": 1}"#).is_err()
        );
    }
}
