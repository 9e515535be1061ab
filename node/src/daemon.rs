//! `kasir run`: the daemon, and the client other commands use to reach it.
//!
//! - The daemon owns the [`Node`] (and with it the data directory's lock) and serves the
//!   HTTP API. It writes `daemon.json` with its address into the data directory, so a
//!   `kasir sell` on the same directory finds it and goes through it instead of failing on
//!   the lock.
//! - Shutdown: a [`CancellationToken`] fired by Ctrl-C or SIGTERM; axum drains in-flight
//!   requests, so an acknowledged sale was committed before the process exits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::http::{AppState, router};
use crate::lan::{self, LanError, NetConfig};
use crate::node::Node;
use crate::print::AppPrinter;
use crate::shared::SharedNode;
use crate::ui::setup::Setup;

/// File in the data directory that tells CLI commands where the daemon listens.
pub const DAEMON_FILE: &str = "daemon.json";

/// What `daemon.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The HTTP API address.
    pub http: SocketAddr,
    /// The daemon's process id.
    pub pid: u32,
}

/// Options of `kasir run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// HTTP API address; a loopback port is chosen when `None`.
    pub http: Option<SocketAddr>,
    /// Peer sync; `None` runs the HTTP API only.
    pub net: Option<NetConfig>,
    /// Host names the HTTP API answers to besides its addresses and `localhost`
    /// (`kasir.local`, say); any other `Host` is refused.
    pub host_names: Vec<String>,
    /// Whether `/metrics` answers callers on other machines too (a Prometheus on the
    /// LAN); by default only this machine.
    pub metrics_public: bool,
    /// For an app embedding the node: told what runs once it serves ([`Started`]).
    pub started: Option<std::sync::mpsc::Sender<Started>>,
    /// For an app embedding the node: only that app's WebView may use the till app
    /// (see [`crate::gate`]); its first URL's code is in [`Started::app_code`].
    pub app_only: bool,
    /// For an app embedding the node: moves the bytes of `app://` printers.
    pub app_printer: AppPrinter,
    /// Backups the daemon takes on its own (`--backup-dir`).
    pub backups: Option<crate::backup::BackupSchedule>,
}

/// What an app embedding the node learns once the daemon serves.
#[derive(Debug, Clone)]
pub struct Started {
    /// The sync endpoint's addresses (put into invites); empty without sync.
    pub sync_addrs: Vec<String>,
    /// The daemon's state: its print queue, the gate's codes, print failures.
    pub app: AppState,
    /// A one-time code for the till app's first URL, when it is gated.
    pub app_code: Option<String>,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// `daemon.json` could not be written.
    #[error("writing {}: {source}", path.display())]
    InfoFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The sync endpoint could not start.
    #[error(transparent)]
    Sync(#[from] LanError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Serve(#[source] std::io::Error),
    /// The data directory could not be opened.
    #[error(transparent)]
    Open(#[from] crate::NodeError),
}

/// Reads `daemon.json` from a data directory.
pub fn daemon_info(dir: &Path) -> Option<DaemonInfo> {
    let bytes = std::fs::read(dir.join(DAEMON_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

struct DaemonFileGuard(PathBuf);

impl Drop for DaemonFileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the daemon for the data directory `dir` until `cancel` fires: the till when the
/// directory holds a store; else first the page that creates one ([`Setup`]), whose
/// link with its one-time code goes to stdout, then the till on the same address.
pub async fn run_dir(
    dir: &Path,
    opts: RunOptions,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    match Node::open(dir) {
        Ok(node) => return run(node, opts, cancel).await,
        Err(crate::NodeError::NotInitialised(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let (listener, local) = bind(opts.http).await?;
    // Two handles on one socket: the first-run server closes its own, and connections
    // that come meanwhile wait in the backlog for the till.
    let std_listener = listener.into_std().map_err(DaemonError::Serve)?;
    let till_listener = std_listener.try_clone().map_err(DaemonError::Serve)?;
    let setup_listener =
        tokio::net::TcpListener::from_std(std_listener).map_err(DaemonError::Serve)?;
    let setup = Setup::new(dir.to_owned(), opts.host_names.clone());
    let url = format!("http://{local}/?kode={}", setup.code());
    tracing::info!(http = %local, "no store yet: serving the first-run page");
    println!("Toko belum dibuat. Buka {url} untuk membuat toko dan pemiliknya.");
    let done = setup.done();
    let stop = cancel.clone();
    axum::serve(setup_listener, setup.router())
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = done.cancelled() => {}
                _ = stop.cancelled() => {}
            }
        })
        .await
        .map_err(DaemonError::Serve)?;
    let Some(node) = setup.take_node() else {
        return Ok(()); // stopped before the store was made
    };
    let listener = tokio::net::TcpListener::from_std(till_listener).map_err(DaemonError::Serve)?;
    run_on(listener, node, opts, cancel).await
}

/// Binds the HTTP address (a loopback port when none is given).
async fn bind(
    http: Option<SocketAddr>,
) -> Result<(tokio::net::TcpListener, SocketAddr), DaemonError> {
    let addr = http.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listen_error = |source| DaemonError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    Ok((listener, local))
}

/// Runs the daemon until `cancel` fires.
pub async fn run(
    node: Node,
    opts: RunOptions,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let (listener, _) = bind(opts.http).await?;
    run_on(listener, node, opts, cancel).await
}

/// Runs the daemon on a bound `listener` until `cancel` fires.
async fn run_on(
    listener: tokio::net::TcpListener,
    node: Node,
    opts: RunOptions,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    run_shared(listener, SharedNode::new(node), opts, cancel).await
}

/// Runs the daemon for a node its caller shares (an app embedding the node keeps
/// calling it while the daemon serves) on a bound `listener` until `cancel` fires.
pub async fn run_shared(
    listener: tokio::net::TcpListener,
    node: SharedNode,
    opts: RunOptions,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let dir = node.lock()?.dir().to_owned();
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    let info = DaemonInfo {
        http: local,
        pid: std::process::id(),
    };
    let path = dir.join(DAEMON_FILE);
    // Serialising two plain fields cannot fail.
    let bytes = serde_json::to_vec(&info).unwrap_or_default();
    // Owner-only like everything in the data directory (an open would tighten it).
    crate::storage::write_file_atomic(&path, &bytes, true).map_err(|source| {
        DaemonError::InfoFile {
            path: path.clone(),
            source,
        }
    })?;
    let _guard = DaemonFileGuard(path);
    tracing::info!(http = %local, "kasir daemon listening");
    let state = AppState::new(node.clone()).with_shutdown(cancel.clone());
    state.set_host_policy(opts.host_names.clone(), opts.metrics_public);
    if opts.app_only {
        state.gate_for_app();
    }
    let net = match opts.net {
        Some(cfg) => {
            let net = lan::start(node.clone(), cfg, cancel.clone()).await?;
            state.set_sync_addrs(net.addrs());
            state.set_lan_endpoint(net.endpoint().clone());
            Some(net)
        }
        None => None,
    };
    tokio::spawn(maintenance(node.clone(), cancel.clone()));
    if let Some(schedule) = opts.backups {
        tokio::spawn(crate::backup::run_schedule(
            node.clone(),
            schedule,
            state.backup_metrics(),
            cancel.clone(),
        ));
    }
    state.set_app_printer(opts.app_printer);
    state.start_configured_printer();
    if let Some(tx) = &opts.started {
        // Whoever asked may have gone: nothing to tell then.
        let _ = tx.send(Started {
            sync_addrs: net.as_ref().map(|n| n.addrs()).unwrap_or_default(),
            app: state.clone(),
            app_code: state.app_code(),
        });
    }
    serve(listener, state, cancel.clone()).await?;
    if let Some(net) = net {
        net.shutdown().await;
    }
    Ok(())
}

/// Serves the API and the till app of `state` on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
    .map_err(DaemonError::Serve)
}

/// Compacts documents with many chunks every half minute, off the request path.
async fn maintenance(node: SharedNode, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let node = node.clone();
                let done = tokio::task::spawn_blocking(move || {
                    node.lock().ok().map(|mut n| n.compact_due(crate::storage::COMPACT_WHEN_IDLE))
                })
                .await;
                if let Ok(Some(Err(e))) = done {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
        }
    }
}

/// Fires the token on Ctrl-C or SIGTERM.
pub fn cancel_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        cancel.cancel();
    });
}
