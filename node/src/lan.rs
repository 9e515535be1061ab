//! The till's peer network: the shop LAN (and the relay) over iroh, driven by the one
//! session driver of `kasir_sync`.
//!
//! Who owns what:
//! - [`Net`] owns the iroh `Endpoint` and a [`CancellationToken`] shared by every task.
//! - The **accept loop** task authenticates each incoming connection (iroh proves the
//!   remote endpoint id) and checks it against the store's roster *before any data
//!   flows*; strangers and revoked devices are refused and logged. Join connections are
//!   answered by [`kasir_sync::join::serve_join`] with this node's admission.
//! - The **dial manager** task keeps one dialer per known peer (`--peer` flags, roster
//!   addresses, addresses remembered locally, mDNS discoveries), reconnecting with
//!   exponential backoff.
//! - One **session** task per connection hands the streams to
//!   [`kasir_sync::driver::drive`] with a [`TillHost`], which holds the shared node's lock
//!   only while it handles one frame; every merge is durable before it is answered.
//!
//! Joining and adopting (the `kasir join` side) are here too: [`join_store`] makes a new
//! till of an existing store, [`adopt_relay`] links a relay into the roster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::Endpoint;
use iroh::endpoint::Connection;
use kasir_crdt::{DeviceId, DocId, StoreId};
use kasir_sync::acquirer::QRIS_ALPN;
use kasir_sync::driver::{self, DriveError, SessionEnd, SessionHost};
use kasir_sync::join::{self, JoinRequest, JoinResponse};
use kasir_sync::membership::{Membership, Ticket};
use kasir_sync::recognition::ML_ALPN;
use kasir_sync::transport::{self, FrameReader, FrameWriter, TraceId, TransportError, device_of};
use kasir_sync::{Frame, JOIN_ALPN, SYNC_ALPN, Session, SessionError};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::TillIdentity;
use crate::error::NodeError;
use crate::node::Node;
use crate::shared::SharedNode;

/// Errors of the till's side of a sync session (boxed: they travel through every
/// session's `Result`, which should stay small).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LanError {
    /// The node failed.
    #[error(transparent)]
    Node(Box<NodeError>),
    /// The session refused what the peer sent.
    #[error(transparent)]
    Session(Box<SessionError>),
    /// The network failed.
    #[error(transparent)]
    Transport(Box<TransportError>),
}

impl From<NodeError> for LanError {
    fn from(e: NodeError) -> LanError {
        LanError::Node(Box::new(e))
    }
}

impl From<SessionError> for LanError {
    fn from(e: SessionError) -> LanError {
        LanError::Session(Box::new(e))
    }
}

impl From<TransportError> for LanError {
    fn from(e: TransportError) -> LanError {
        LanError::Transport(Box::new(e))
    }
}

/// How the transport runs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Socket to listen on.
    pub listen: SocketAddr,
    /// Explicit peers (`--peer EID@HOST:PORT`).
    pub peers: Vec<(DeviceId, SocketAddr)>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
}

/// A till as the host of sync sessions: the shared node, locked per frame.
#[derive(Debug, Clone)]
pub struct TillHost {
    node: SharedNode,
    store: StoreId,
    /// The one accepted session of each peer: its number and cancellation.
    accepted: Arc<Mutex<BTreeMap<DeviceId, (u64, CancellationToken)>>>,
}

/// A peer's accepted session in [`TillHost::accepted`], forgotten when it ends.
struct AcceptedSlot {
    map: Arc<Mutex<BTreeMap<DeviceId, (u64, CancellationToken)>>>,
    peer: DeviceId,
    number: u64,
    cancel: CancellationToken,
}

impl AcceptedSlot {
    /// Registers a new accepted session of `peer`, ending the one it replaces: a peer
    /// reconnecting after a drop (or a hostile one opening many) has one at a time.
    fn take(
        map: &Arc<Mutex<BTreeMap<DeviceId, (u64, CancellationToken)>>>,
        peer: DeviceId,
        parent: &CancellationToken,
    ) -> AcceptedSlot {
        static NUMBERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let number = NUMBERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cancel = parent.child_token();
        if let Ok(mut m) = map.lock()
            && let Some((_, old)) = m.insert(peer, (number, cancel.clone()))
        {
            tracing::info!(%peer, "a new connection replaces the peer's open session");
            old.cancel();
        }
        AcceptedSlot {
            map: map.clone(),
            peer,
            number,
            cancel,
        }
    }
}

impl Drop for AcceptedSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && m.get(&self.peer).is_some_and(|(n, _)| *n == self.number)
        {
            m.remove(&self.peer);
        }
    }
}

impl TillHost {
    /// Hosts sessions of `node`'s store.
    pub fn new(node: SharedNode) -> Result<TillHost, NodeError> {
        let store = node.lock()?.store_id();
        Ok(TillHost {
            node,
            store,
            accepted: Arc::default(),
        })
    }

    fn with_node<T>(
        &self,
        f: impl FnOnce(&mut Node) -> Result<T, LanError>,
    ) -> Result<T, LanError> {
        // SQLite work (and its fsync) must not stall the runtime's other tasks.
        tokio::task::block_in_place(|| f(&mut *self.node.lock()?))
    }
}

impl SessionHost for TillHost {
    type Error = LanError;

    fn store_id(&self) -> StoreId {
        self.store
    }

    async fn membership(&self, peer: DeviceId) -> Result<Membership, LanError> {
        Ok(self.node.lock()?.membership(peer))
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<DocId>, LanError> {
        Ok(self.node.lock()?.subscribe())
    }

    async fn start(&self, session: &mut Session) -> Result<Vec<Frame>, LanError> {
        self.with_node(|n| Ok(session.start(n)?))
    }

    async fn handle(&self, session: &mut Session, frame: Frame) -> Result<Vec<Frame>, LanError> {
        let metrics = self.node.sync_metrics();
        let handled = self.with_node(|n| Ok(session.handle(n, frame)));
        for refusal in session.take_refusals() {
            metrics.record_refusal(&refusal);
        }
        match handled? {
            Ok(out) => Ok(out),
            Err(e) => {
                metrics.record_session_error(&e);
                Err(e.into())
            }
        }
    }

    async fn local_change(
        &self,
        session: &mut Session,
        doc: DocId,
    ) -> Result<Vec<Frame>, LanError> {
        self.with_node(|n| Ok(session.local_change(n, doc)?))
    }
}

/// Binds an endpoint with the node's key for every Kasir protocol.
pub async fn bind(node: &SharedNode, listen: SocketAddr) -> Result<Endpoint, LanError> {
    let secret = node.lock()?.identity().secret_bytes();
    Ok(transport::bind_endpoint(secret, listen, &[SYNC_ALPN, JOIN_ALPN, QRIS_ALPN]).await?)
}

/// Runs one session over an accepted or dialled connection, marking the peer connected
/// for `status` while it lasts.
async fn run_session(
    host: &TillHost,
    peer: DeviceId,
    conn: &Connection,
    accepted: bool,
    cancel: &CancellationToken,
) -> Result<SessionEnd, DriveError<LanError>> {
    let (send, recv) = if accepted {
        conn.accept_bi().await
    } else {
        conn.open_bi().await
    }
    .map_err(TransportError::from)?;
    let metrics = host.node.sync_metrics().clone();
    let writer = FrameWriter::new(send, metrics.clone());
    let reader = FrameReader::new(recv, metrics.clone());
    set_connected(&host.node, peer, true);
    metrics.sessions.inc();
    // How it ends is logged by the caller, which knows what an error means there.
    let (_, span) = TraceId::session_span(conn, peer);
    let result = driver::drive(host, peer, writer, reader, None, cancel)
        .instrument(span)
        .await;
    metrics.sessions.dec();
    set_connected(&host.node, peer, false);
    result
}

fn set_connected(node: &SharedNode, peer: DeviceId, connected: bool) {
    if let Ok(mut n) = node.lock() {
        n.set_connected(peer, connected);
    }
}

/// Syncs once with `peer` until the initial exchange is over (`kasir join`, tests).
pub async fn sync_once(
    node: &SharedNode,
    ep: &Endpoint,
    peer: DeviceId,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(), DriveError<LanError>> {
    let host = TillHost::new(node.clone()).map_err(|e| DriveError::Host(e.into()))?;
    let metrics = node.sync_metrics().clone();
    driver::sync_once(&host, ep, peer, addrs, timeout, &metrics).await?;
    Ok(())
}

/// The running transport.
#[derive(Debug, Clone)]
pub struct Net {
    endpoint: Endpoint,
    cancel: CancellationToken,
}

impl Net {
    /// The endpoint's bound sockets as `ip:port` strings.
    pub fn addrs(&self) -> Vec<String> {
        self.endpoint
            .bound_sockets()
            .iter()
            .map(|a| reachable(*a).to_string())
            .collect()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops every task and closes the endpoint.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.endpoint.close().await;
    }
}

/// An address another device can dial for a socket bound to all interfaces
/// (`0.0.0.0:7070`): this machine's address on the route out (the shop LAN's, found
/// without sending anything), else loopback; a concrete address as it is. Invites name
/// these, so a till listening on every interface still hands out an address.
fn reachable(bound: SocketAddr) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let (any, probe): (SocketAddr, SocketAddr) = if bound.is_ipv4() {
        (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into())
    } else {
        (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            (
                "2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap_or(std::net::Ipv6Addr::LOCALHOST),
                9,
            )
                .into(),
        )
    };
    // A UDP "connect" only picks the route: no packet leaves the machine.
    let routed = std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified());
    let ip = routed.unwrap_or(if bound.is_ipv4() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        std::net::Ipv6Addr::LOCALHOST.into()
    });
    SocketAddr::new(ip, bound.port())
}

/// Binds the endpoint and starts the accept loop, the dial manager and mDNS.
pub async fn start(
    node: SharedNode,
    cfg: NetConfig,
    cancel: CancellationToken,
) -> Result<Net, LanError> {
    let endpoint = bind(&node, cfg.listen).await?;
    let bound: Vec<String> = endpoint
        .bound_sockets()
        .iter()
        .filter(|a| !a.ip().is_unspecified())
        .map(ToString::to_string)
        .collect();
    if !bound.is_empty() {
        tokio::task::block_in_place(|| node.lock()?.remember_own_addrs(bound))?;
    }
    tracing::info!(endpoint = %endpoint.id(), addrs = ?endpoint.bound_sockets(), "sync endpoint listening");
    let host = TillHost::new(node.clone())?;
    let discovered: Discovered = Arc::default();
    if cfg.mdns {
        start_mdns(&endpoint, discovered.clone(), cancel.clone()).await;
    }
    let (accept_host, accept_cancel) = (host.clone(), cancel.clone());
    tokio::spawn(transport::accept_each(
        endpoint.clone(),
        cancel.clone(),
        move |conn| accepted(accept_host.clone(), conn, accept_cancel.clone()),
    ));
    tokio::spawn(dial_manager(
        endpoint.clone(),
        host,
        cfg.peers,
        discovered,
        cancel.clone(),
    ));
    Ok(Net { endpoint, cancel })
}

/// Peers found by mDNS, with the addresses they announced.
type Discovered = Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>>;

async fn start_mdns(endpoint: &Endpoint, discovered: Discovered, cancel: CancellationToken) {
    use n0_future::StreamExt;
    let mdns = match iroh_mdns_address_lookup::MdnsAddressLookup::builder()
        .service_name("kasir")
        .build(endpoint.id())
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "mDNS unavailable; using --peer and remembered addresses only");
            return;
        }
    };
    match endpoint.address_lookup() {
        Ok(lookup) => lookup.add(mdns.clone()),
        Err(e) => tracing::warn!(error = %e, "cannot register mDNS lookup"),
    }
    let mut events = mdns.subscribe().await;
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => break,
                ev = events.next() => ev,
            };
            match event {
                Some(iroh_mdns_address_lookup::DiscoveryEvent::Discovered {
                    endpoint_info,
                    ..
                }) => {
                    let id = device_of(endpoint_info.endpoint_id);
                    let addrs: BTreeSet<SocketAddr> =
                        endpoint_info.data.ip_addrs().copied().collect();
                    tracing::debug!(peer = %id, ?addrs, "discovered by mDNS");
                    if let Ok(mut d) = discovered.lock() {
                        d.entry(id).or_default().extend(addrs);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    });
}

/// Handles one accepted connection: a join, or a member's sync session or question for
/// the QRIS acquirer.
async fn accepted(host: TillHost, conn: Connection, cancel: CancellationToken) {
    let peer = device_of(conn.remote_id());
    if conn.alpn() == JOIN_ALPN {
        if let Err(e) = answer_join(&host.node, &conn).await {
            tracing::warn!(%peer, error = %e, "join failed");
        }
        return;
    }
    let standing = match host.node.lock() {
        Ok(n) => n.membership(peer),
        Err(_) => return,
    };
    match standing {
        Membership::Member(_) => {}
        Membership::Revoked => {
            host.node.sync_metrics().refused.inc();
            tracing::warn!(%peer, "refused connection from a revoked device");
            conn.close(403u32.into(), b"revoked");
            return;
        }
        Membership::Unknown => {
            host.node.sync_metrics().refused.inc();
            tracing::warn!(%peer, "refused connection from a device outside the store's roster");
            conn.close(403u32.into(), b"not a member of this store");
            return;
        }
    }
    if conn.alpn() == QRIS_ALPN {
        let node = host.node.clone();
        let served = kasir_sync::acquirer::serve(&conn, |req| async move {
            crate::qris::answer_peer(&node, peer, req).await
        })
        .await;
        if let Err(e) = served {
            tracing::warn!(%peer, error = %e, "answering a peer's QRIS question failed");
        }
        return;
    }
    // One accepted session per peer (a newer connection replaces the older); the dial
    // loop adds at most one of its own, and only while no session is open.
    let slot = AcceptedSlot::take(&host.accepted, peer, &cancel);
    match run_session(&host, peer, &conn, true, &slot.cancel).await {
        Ok(end) => tracing::info!(%peer, ?end, "sync session ended"),
        Err(DriveError::Transport(e)) if e.is_closed() => {
            tracing::info!(%peer, "sync session ended: the connection closed");
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "sync session failed");
            // Let the `Bye` with the reason reach the peer before the connection drops.
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        }
    }
}

/// Answers a join request with this node's admission decision.
async fn answer_join(node: &SharedNode, conn: &Connection) -> Result<(), TransportError> {
    let joiner = device_of(conn.remote_id());
    join::serve_join(conn, |req: JoinRequest| async move {
        let admitted = tokio::task::block_in_place(|| -> Result<_, NodeError> {
            let mut n = node.lock()?;
            let a = n.admit(&req.secret, joiner, req.till_code, req.addrs)?;
            Ok((a, *n.store_id().0.as_bytes()))
        });
        match admitted {
            Ok((admission, store)) => JoinResponse::Ok { store, admission },
            Err(e) => {
                tracing::warn!(%joiner, error = %e, "refused a join request");
                JoinResponse::Refused(e.to_string())
            }
        }
    })
    .await
}

/// The addresses of every peer worth dialling, refreshed from flags, roster,
/// remembered addresses and mDNS.
fn targets(
    node: &SharedNode,
    flags: &[(DeviceId, SocketAddr)],
    discovered: &Discovered,
) -> BTreeMap<DeviceId, BTreeSet<SocketAddr>> {
    let mut out: BTreeMap<DeviceId, BTreeSet<SocketAddr>> = BTreeMap::new();
    for (id, a) in flags {
        out.entry(*id).or_default().insert(*a);
    }
    if let Ok(n) = node.lock() {
        let me = n.device_id();
        if let Ok(known) = n.peer_addresses() {
            for (id, addrs) in known {
                let e = out.entry(id).or_default();
                e.extend(addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()));
            }
        }
        if let Ok(d) = discovered.lock() {
            for (id, addrs) in d.iter() {
                if n.membership(*id).is_member() {
                    out.entry(*id).or_default().extend(addrs.iter().copied());
                }
            }
        }
        out.remove(&me);
        out.retain(|id, _| !matches!(n.membership(*id), Membership::Revoked));
    }
    out.retain(|_, addrs| !addrs.is_empty());
    out
}

async fn dial_manager(
    endpoint: Endpoint,
    host: TillHost,
    flags: Vec<(DeviceId, SocketAddr)>,
    discovered: Discovered,
    cancel: CancellationToken,
) {
    let mut dialers: BTreeMap<DeviceId, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let shared_targets: Discovered = Arc::default();
    loop {
        let now = targets(&host.node, &flags, &discovered);
        if let Ok(mut t) = shared_targets.lock() {
            *t = now.clone();
        }
        for id in now.keys() {
            if dialers.get(id).is_none_or(|h| h.is_finished()) {
                let task = dial_loop(
                    endpoint.clone(),
                    host.clone(),
                    *id,
                    shared_targets.clone(),
                    cancel.clone(),
                );
                dialers.insert(*id, tokio::spawn(task));
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Redials `peer` while it is a target, backing off (with jitter, so tills do not redial
/// a restarted relay in lockstep) while it cannot be reached.
async fn dial_loop(
    endpoint: Endpoint,
    host: TillHost,
    peer: DeviceId,
    targets: Discovered,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let already = host
            .node
            .lock()
            .map(|n| n.is_connected(peer))
            .unwrap_or(true);
        let addrs: Vec<SocketAddr> = targets
            .lock()
            .map(|t| {
                t.get(&peer)
                    .map(|a| a.iter().copied().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        if addrs.is_empty() {
            return; // no longer a target (revoked, forgotten): the manager respawns if needed
        }
        let wait = if already {
            Duration::from_secs(1)
        } else {
            match dial(&endpoint, &host, peer, &addrs, &cancel).await {
                Ok(end) => {
                    tracing::debug!(%peer, ?end, "session ended");
                    backoff.reset();
                    backoff.next_wait()
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "dial failed");
                    backoff.next_wait()
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn dial(
    endpoint: &Endpoint,
    host: &TillHost,
    peer: DeviceId,
    addrs: &[SocketAddr],
    cancel: &CancellationToken,
) -> Result<SessionEnd, DriveError<LanError>> {
    let conn = transport::connect(endpoint, peer, addrs, SYNC_ALPN).await?;
    if let Some(a) = addrs.first()
        && let Ok(n) = host.node.lock()
    {
        let _ = n.remember_peer_addr(peer, &a.to_string());
    }
    let result = run_session(host, peer, &conn, false, cancel).await;
    if let Some(reason) = conn.close_reason() {
        tracing::info!(%peer, %reason, "connection closed");
    }
    result
}

/// Exponential backoff with full jitter: each wait is drawn from `[0, cap)`, where the
/// cap doubles from `base` up to `max` with every failure.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `base`, never waits `max` or longer.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            cap: base,
        }
    }

    /// The next wait; the one after may be up to twice as long.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.cap.mul_f64(rand::random::<f64>()).max(self.base / 4);
        self.cap = (self.cap * 2).min(self.max);
        wait
    }

    /// After a success: start small again.
    pub fn reset(&mut self) {
        self.cap = self.base;
    }
}

/// Why joining a store or adopting a relay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The ticket does not name a member to ask.
    #[error("the ticket names no members")]
    NoMembers,
    /// A member (or the relay) refused, with its reason.
    #[error("join refused: {0}")]
    Refused(String),
    /// A member answered for another store than the ticket's.
    #[error("{0} answered for another store")]
    WrongStore(DeviceId),
    /// The data directory holds another store already.
    #[error("{0} already holds another store")]
    OtherStore(String),
    /// No member could be reached; the last failure.
    #[error("member {member}: {source}")]
    Unreachable {
        /// The last member tried.
        member: DeviceId,
        /// Why it failed.
        source: TransportError,
    },
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The first sync after admission failed.
    #[error("first sync: {0}")]
    Sync(#[from] DriveError<LanError>),
    /// The network failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// What adopting a store to a relay gave.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// The relay's device id.
    pub relay: DeviceId,
    /// Its till code in the roster (`RELAY`, `RELAY2`...).
    pub relay_code: String,
}

/// Links the relay an adoption ticket names into the roster (`kasir-relay store adopt`):
/// checks this till may, proves the ticket's secret to the relay from `ep` (an endpoint
/// with the node's key), and only once the relay accepted it, writes the roster. With
/// `first_sync`, also hands the documents over in one sync within that time (a running
/// daemon's dial manager does it instead).
pub async fn adopt_relay(
    node: &SharedNode,
    ep: &Endpoint,
    ticket: &Ticket,
    first_sync: Option<Duration>,
) -> Result<Adopted, JoinError> {
    let (relay, addrs) = ticket.members.first().ok_or(JoinError::NoMembers)?;
    let relay = DeviceId(*relay);
    let socket_addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    {
        let n = node.lock()?;
        if n.store_id() != ticket.store_id() {
            return Err(NodeError::Invalid(format!(
                "the ticket is for store {}, this till is in {}",
                ticket.store_id(),
                n.store_id()
            ))
            .into());
        }
        n.check_may_link_relay(relay)?;
    }
    let req = JoinRequest {
        secret: ticket.secret,
        till_code: None,
        addrs: vec![],
    };
    match join::request_join(ep, relay, &socket_addrs, &req).await? {
        JoinResponse::Ok { store, .. } if store == ticket.store => {}
        JoinResponse::Ok { .. } => return Err(JoinError::WrongStore(relay)),
        JoinResponse::Refused(reason) => return Err(JoinError::Refused(reason)),
    }
    // Linked only once the relay accepted the ticket: a refusal leaves the roster as it was.
    let relay_code = tokio::task::block_in_place(|| node.lock()?.link_relay(relay, addrs.clone()))?;
    if let Some(timeout) = first_sync {
        sync_once(node, ep, relay, &socket_addrs, timeout).await?;
    }
    Ok(Adopted { relay, relay_code })
}

/// How long the first sync after joining may take (a store with a year of history).
pub const FIRST_SYNC: Duration = Duration::from_secs(120);

/// `kasir join TICKET` on a new data directory (encrypted at rest as `encrypt` says):
/// creates the device key, asks the members named in the ticket (in order) to admit it,
/// creates the data directory, and syncs once with the member that admitted it, so the
/// till has the store, the catalog and the stock before it sells.
pub async fn join_store(
    dir: &Path,
    ticket: &Ticket,
    till_code: Option<String>,
    first_sync: Duration,
    encrypt: Option<&crate::vault::Encrypt>,
) -> Result<TillIdentity, JoinError> {
    crate::vault::create_private_dir(dir)?;
    let key = match encrypt {
        Some(how) => Some(crate::vault::prepare(dir, how)?),
        None => crate::vault::key_for(dir, None)?,
    };
    let identity = crate::vault::load_or_create_identity(dir, key.as_ref())?;
    // A host-held key must reach `init_joined`; a key file is found there by itself.
    let given = match encrypt {
        Some(crate::vault::Encrypt::Host(k)) => Some(k.clone()),
        _ => None,
    };
    let ep = transport::bind_endpoint(
        identity.secret_bytes(),
        SocketAddr::from(([0, 0, 0, 0], 0)),
        &[SYNC_ALPN, JOIN_ALPN],
    )
    .await?;
    let result =
        join_through_members(dir, &ep, ticket, till_code, first_sync, given.as_ref()).await;
    ep.close().await;
    result
}

async fn join_through_members(
    dir: &Path,
    ep: &Endpoint,
    ticket: &Ticket,
    till_code: Option<String>,
    first_sync: Duration,
    key: Option<&crate::vault::DbKey>,
) -> Result<TillIdentity, JoinError> {
    let mut last = JoinError::NoMembers;
    for (member, addrs) in &ticket.members {
        let member = DeviceId(*member);
        let addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let req = JoinRequest {
            secret: ticket.secret,
            till_code: till_code.clone(),
            addrs: vec![],
        };
        match join::request_join(ep, member, &addrs, &req).await {
            Ok(JoinResponse::Ok { store, admission }) => {
                if store != ticket.store {
                    last = JoinError::WrongStore(member);
                    continue;
                }
                let node = tokio::task::block_in_place(|| {
                    Node::init_joined_keyed(dir, ticket.store_id(), &admission.till_code, key)
                })?;
                let shared = SharedNode::new(node);
                sync_once(&shared, ep, member, &addrs, first_sync).await?;
                let n = shared.lock()?;
                return Ok(TillIdentity {
                    role: Some(admission.role.as_str().to_owned()),
                    ..n.till_identity()
                });
            }
            Ok(JoinResponse::Refused(reason)) => return Err(JoinError::Refused(reason)),
            Err(source) => last = JoinError::Unreachable { member, source },
        }
    }
    Err(last)
}

/// Asks the relay about a photo through a short-lived endpoint with the node's key (a
/// CLI command without the daemon): see [`kasir_sync::recognition`].
pub(crate) async fn ask_relay_once(
    secret: [u8; 32],
    relays: &[(DeviceId, Vec<SocketAddr>)],
    request: &kasir_sync::recognition::MlRequest,
    deadline: Duration,
) -> Result<Vec<kasir_sync::recognition::RemoteMatch>, kasir_sync::recognition::FallbackError> {
    use kasir_sync::recognition::{FallbackClient, FallbackError};
    let started = std::time::Instant::now();
    let asked = tokio::time::timeout(deadline, async {
        let ep = transport::bind_endpoint(secret, SocketAddr::from(([0, 0, 0, 0], 0)), &[ML_ALPN])
            .await
            .map_err(|e| FallbackError::Unreachable(e.to_string()))?;
        let client = FallbackClient::new(ep.clone());
        let left = deadline.saturating_sub(started.elapsed());
        let result = client.ask(relays, request, left).await;
        Ok::<_, FallbackError>((ep, result))
    })
    .await;
    match asked {
        Ok(Ok((ep, result))) => {
            // The answer is in; closing is courtesy, bounded.
            let _ = tokio::time::timeout(Duration::from_millis(200), ep.close()).await;
            result
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(FallbackError::Timeout(deadline)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_on_all_interfaces_is_handed_out_as_a_dialable_address() {
        let concrete: SocketAddr = "192.168.1.10:7070".parse().expect("addr");
        assert_eq!(reachable(concrete), concrete);
        for any in ["0.0.0.0:7070", "[::]:7070"] {
            let any: SocketAddr = any.parse().expect("addr");
            let out = reachable(any);
            assert!(!out.ip().is_unspecified(), "{any} -> {out}");
            assert_eq!((out.port(), out.is_ipv4()), (7070, any.is_ipv4()));
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..10).map(|_| b.next_wait()).collect();
        assert!(waits.iter().all(|w| *w < Duration::from_secs(2)));
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(25)));
        assert!(b.cap == Duration::from_secs(2));
        b.reset();
        assert!(b.next_wait() < Duration::from_millis(100));
    }
}
