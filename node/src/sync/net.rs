//! The iroh transport of the sync protocol.
//!
//! Who owns what:
//! - [`Net`] owns the iroh `Endpoint` and a [`CancellationToken`] shared by every task.
//! - The **accept loop** task authenticates each incoming connection (iroh proves the
//!   remote endpoint id) and checks it against the store's roster *before any data
//!   flows*; strangers and revoked devices are refused and logged.
//! - The **dial manager** task keeps one dialer per known peer (`--peer` flags, roster
//!   addresses, addresses remembered locally, mDNS discoveries), reconnecting with
//!   exponential backoff.
//! - One **session** task per connection drives a [`Session`] in a `select!` loop over
//!   incoming frames, local-change notifications and cancellation. It holds the shared
//!   node's lock only while handling one frame.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::endpoint::{Connection, PortmapperConfig, RecvStream, SendStream, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey};
use kasir_crdt::DeviceId;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::membership::Admission;
use crate::node::Node;
use crate::replica::Membership;
use crate::sync::session::{Session, SessionError};
use crate::sync::wire::{Frame, JOIN_ALPN, MAX_FRAME, SYNC_ALPN};

/// Bytes of sync frames sent by this process (for `/metrics`).
pub static BYTES_SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Bytes of sync frames received by this process (for `/metrics`).
pub static BYTES_RECEIVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// When a sync frame last arrived from any peer (ms since the epoch; 0 = never).
pub static LAST_RECEIVE_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
/// Sessions refused at the connection (stranger or revoked).
pub static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The node shared between the HTTP API and the sync tasks.
pub type SharedNode = Arc<Mutex<Node>>;

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Binding or connecting failed.
    #[error("network: {0}")]
    Io(String),
    /// A frame that is too large or malformed.
    #[error(transparent)]
    Wire(#[from] crate::sync::wire::WireError),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The peer refused us.
    #[error("refused by peer: {0}")]
    Refused(String),
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

fn lock(node: &SharedNode) -> Result<std::sync::MutexGuard<'_, Node>, NodeError> {
    node.lock()
        .map_err(|_| NodeError::Invalid("node state poisoned".into()))
}

/// Binds an endpoint for this device: no relays, no port mapping, only our own socket.
pub async fn bind_endpoint(secret: [u8; 32], listen: SocketAddr) -> Result<Endpoint, NetError> {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr(listen)
        .map_err(|e| NetError::Io(e.to_string()))?
        .alpns(vec![SYNC_ALPN.to_vec(), JOIN_ALPN.to_vec()])
        .secret_key(SecretKey::from_bytes(&secret))
        .bind()
        .await
        .map_err(|e| NetError::Io(format!("cannot listen on {listen}: {e}")))
}

/// The device id of an iroh endpoint id.
pub fn device_of(id: iroh::EndpointId) -> DeviceId {
    DeviceId(*id.as_bytes())
}

fn endpoint_id(d: DeviceId) -> Result<iroh::EndpointId, NetError> {
    iroh::EndpointId::from_bytes(&d.0)
        .map_err(|e| NetError::Io(format!("invalid endpoint id {d}: {e}")))
}

/// Connects to `peer` at any of `addrs` (iroh tries them all) within ten seconds.
pub async fn connect(
    ep: &Endpoint,
    peer: DeviceId,
    addrs: &[SocketAddr],
    alpn: &[u8],
) -> Result<Connection, NetError> {
    let mut target = EndpointAddr::new(endpoint_id(peer)?);
    for a in addrs {
        target = target.with_ip_addr(*a);
    }
    tokio::time::timeout(Duration::from_secs(10), ep.connect(target, alpn))
        .await
        .map_err(|_| NetError::Io(format!("{peer} did not answer")))?
        .map_err(|e| NetError::Io(e.to_string()))
}

/// Reads one length-prefixed frame; `None` at the end of the stream.
pub async fn read_frame(recv: &mut RecvStream) -> Result<Option<Frame>, NetError> {
    read_frame_limited(recv, MAX_FRAME).await
}

/// Reads one frame of at most `max` bytes. A hub reads a stranger's first frame (its
/// `Hello`, a few dozen bytes) with a small limit, so no one allocates megabytes on it
/// before the roster check.
pub async fn read_frame_limited(
    recv: &mut RecvStream,
    max: usize,
) -> Result<Option<Frame>, NetError> {
    let mut len = [0u8; 4];
    match AsyncReadExt::read_exact(recv, &mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(NetError::Io(e.to_string())),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > max.min(MAX_FRAME) {
        return Err(crate::sync::wire::WireError::TooLarge(n).into());
    }
    let mut buf = vec![0u8; n];
    AsyncReadExt::read_exact(recv, &mut buf)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    BYTES_RECEIVED.fetch_add(4 + n as u64, std::sync::atomic::Ordering::Relaxed);
    LAST_RECEIVE_MS.store(crate::node::now_ms(), std::sync::atomic::Ordering::Relaxed);
    Ok(Some(Frame::decode(&buf)?))
}

/// Reads the peer's frames on a task of their own, so a session's `select!` loop can wait
/// on them beside its other events. The channel ends when the stream ends or breaks (a
/// lost or closed connection is an end, not an error); abort the handle when done.
pub fn spawn_frame_reader(
    mut recv: RecvStream,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::Receiver<Result<Frame, NetError>>,
) {
    let (ftx, frx) = tokio::sync::mpsc::channel::<Result<Frame, NetError>>(64);
    let reader = tokio::spawn(async move {
        loop {
            match read_frame(&mut recv).await {
                Ok(Some(f)) => {
                    if ftx.send(Ok(f)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(NetError::Io(e)) if e.contains("lost") || e.contains("closed") => break,
                Err(e) => {
                    let _ = ftx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    (reader, frx)
}

/// Writes frames, each with its length prefix.
pub async fn write_frames(send: &mut SendStream, frames: Vec<Frame>) -> Result<(), NetError> {
    for f in frames {
        let bytes = f.to_wire();
        send.write_all(&bytes)
            .await
            .map_err(|e| NetError::Io(e.to_string()))?;
        BYTES_SENT.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// Whether `doc` is the store document and it no longer lists `peer` as a member.
fn is_revoked_by(node: &SharedNode, doc: kasir_crdt::DocId, peer: DeviceId) -> bool {
    match lock(node) {
        Ok(n) => {
            doc == kasir_crdt::DocId::store(n.store_id())
                && !matches!(n.membership(peer), Membership::Member(_))
        }
        Err(_) => true,
    }
}

/// Runs one sync session over an open bi-stream until either side stops.
async fn drive(
    node: SharedNode,
    peer: DeviceId,
    mut send: SendStream,
    recv: RecvStream,
    cancel: CancellationToken,
) -> Result<(), NetError> {
    let (mut changes, start, mut session) = {
        let mut n = lock(&node)?;
        // Checked here, not only on accept, so a dialer never syncs with a device that
        // was revoked since it was chosen as a target.
        if !matches!(n.membership(peer), Membership::Member(_)) {
            return Err(NetError::Refused(format!(
                "{peer} is not a member of this store"
            )));
        }
        n.set_connected(peer, true);
        let mut session = Session::new(peer);
        let start = session.start(&mut *n)?;
        (n.subscribe(), start, session)
    };
    let result = async {
        write_frames(&mut send, start).await?;
        let (reader, mut frx) = spawn_frame_reader(recv);
        let outcome = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    let _ = write_frames(&mut send, vec![Frame::Bye { reason: "shutting down".into() }]).await;
                    break Ok(());
                }
                frame = frx.recv() => match frame {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(e),
                    Some(Ok(Frame::Bye { reason })) => {
                        tracing::debug!(%peer, %reason, "peer closed the session");
                        break Ok(());
                    }
                    Some(Ok(frame)) => {
                        let out = tokio::task::block_in_place(|| -> Result<Vec<Frame>, NetError> {
                            let mut n = lock(&node)?;
                            Ok(session.handle(&mut *n, frame)?)
                        });
                        match out {
                            Ok(frames) => write_frames(&mut send, frames).await?,
                            Err(e) => {
                                let _ = write_frames(&mut send, vec![Frame::Bye { reason: e.to_string() }]).await;
                                break Err(e);
                            }
                        }
                    }
                },
                changed = changes.recv() => match changed {
                    Ok(doc) if is_revoked_by(&node, doc, peer) => {
                        tracing::warn!(%peer, "closing the session of a device that was revoked");
                        let _ = write_frames(&mut send, vec![Frame::Bye { reason: "revoked".into() }]).await;
                        break Ok(());
                    }
                    Ok(doc) => {
                        let frames = tokio::task::block_in_place(|| -> Result<Vec<Frame>, NetError> {
                            let mut n = lock(&node)?;
                            Ok(session.local_change(&mut *n, doc)?)
                        })?;
                        write_frames(&mut send, frames).await?;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Missed notifications: a fresh manifest exchange covers them.
                        let frames = tokio::task::block_in_place(|| -> Result<Vec<Frame>, NetError> {
                            let mut n = lock(&node)?;
                            Ok(session.start(&mut *n)?)
                        })?;
                        write_frames(&mut send, frames).await?;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break Ok(()),
                },
            }
        };
        reader.abort();
        let _ = send.finish();
        outcome
    }
    .await;
    if let Ok(mut n) = lock(&node) {
        n.set_connected(peer, false);
    }
    result
}

/// A join request, the first frame on a `kasir/join/1` stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The invite secret.
    pub secret: [u8; 32],
    /// The till code the joiner asks for.
    pub till_code: Option<String>,
    /// Addresses the joiner listens on.
    pub addrs: Vec<String>,
}

/// The answer to a join request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinResponse {
    /// Admitted.
    Ok {
        /// Store id bytes.
        store: [u8; 16],
        /// What the device got.
        admission: Admission,
    },
    /// Refused, with the reason.
    Refused(String),
}

/// Reads one length-prefixed join message, at most 4 KiB (a join is a few hundred bytes).
pub async fn read_join_message(recv: &mut RecvStream, what: &str) -> Result<Vec<u8>, NetError> {
    let mut len = [0u8; 4];
    AsyncReadExt::read_exact(recv, &mut len)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 4096 {
        return Err(NetError::Refused(format!("{what} too large")));
    }
    let mut buf = vec![0u8; n];
    AsyncReadExt::read_exact(recv, &mut buf)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    Ok(buf)
}

async fn handle_join(node: SharedNode, conn: Connection) -> Result<(), NetError> {
    let joiner = device_of(conn.remote_id());
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let buf = read_join_message(&mut recv, "join request").await?;
    let response = match postcard::from_bytes::<JoinRequest>(&buf) {
        Err(_) => JoinResponse::Refused("malformed join request".into()),
        Ok(req) => {
            let admitted =
                tokio::task::block_in_place(|| -> Result<(Admission, [u8; 16]), NodeError> {
                    let mut n = lock(&node)?;
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
        }
    };
    answer_join(&conn, &mut send, &response).await
}

/// Sends the answer to a join request and waits (briefly) for the joiner to close, so
/// the answer is delivered before the connection is dropped. Tills and the relay use it.
pub async fn answer_join(
    conn: &Connection,
    send: &mut SendStream,
    response: &JoinResponse,
) -> Result<(), NetError> {
    let body = postcard::to_stdvec(response).unwrap_or_default();
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    send.write_all(&body)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    Ok(())
}

/// Asks a member to admit this device (the `kasir join` side).
pub async fn request_join(
    ep: &Endpoint,
    member: DeviceId,
    addrs: &[SocketAddr],
    req: &JoinRequest,
) -> Result<JoinResponse, NetError> {
    let conn = connect(ep, member, addrs, JOIN_ALPN).await?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let body = postcard::to_stdvec(req).unwrap_or_default();
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    send.write_all(&body)
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let _ = send.finish();
    let buf = read_join_message(&mut recv, "join response").await?;
    conn.close(0u32.into(), b"joined");
    postcard::from_bytes(&buf).map_err(|_| NetError::Refused("malformed join response".into()))
}

/// Syncs once with `peer` until the initial exchange is over (used by `kasir join`).
pub async fn sync_once(
    ep: &Endpoint,
    node: SharedNode,
    peer: DeviceId,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(), NetError> {
    let conn = connect(ep, peer, addrs, SYNC_ALPN).await?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    let mut session = Session::new(peer);
    let start = tokio::task::block_in_place(|| -> Result<Vec<Frame>, NetError> {
        Ok(session.start(&mut *lock(&node)?)?)
    })?;
    write_frames(&mut send, start).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    // Idle for a short while after the manifest exchange means both sides are done.
    loop {
        let quiet = if session.is_idle() {
            Duration::from_millis(300)
        } else if session.all_offered() {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        };
        let next = tokio::time::timeout(
            quiet.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            read_frame(&mut recv),
        )
        .await;
        match next {
            Err(_) if session.is_idle() || session.all_offered() => break,
            Err(_) => return Err(NetError::Io("initial sync timed out".into())),
            Ok(Ok(Some(frame))) => {
                let out = tokio::task::block_in_place(|| -> Result<Vec<Frame>, NetError> {
                    let mut n = lock(&node)?;
                    Ok(session.handle(&mut *n, frame)?)
                })?;
                write_frames(&mut send, out).await?;
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e),
        }
    }
    let _ = write_frames(
        &mut send,
        vec![Frame::Bye {
            reason: "joined".into(),
        }],
    )
    .await;
    let _ = send.finish();
    conn.close(0u32.into(), b"done");
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
            .map(ToString::to_string)
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

/// Binds the endpoint and starts the accept loop, the dial manager and mDNS.
pub async fn start(
    node: SharedNode,
    cfg: NetConfig,
    cancel: CancellationToken,
) -> Result<Net, NetError> {
    let secret = lock(&node)?.identity().secret_bytes();
    let endpoint = bind_endpoint(secret, cfg.listen).await?;
    let bound: Vec<String> = endpoint
        .bound_sockets()
        .iter()
        .filter(|a| !a.ip().is_unspecified())
        .map(ToString::to_string)
        .collect();
    if !bound.is_empty() {
        tokio::task::block_in_place(|| lock(&node)?.remember_own_addrs(bound))?;
    }
    tracing::info!(endpoint = %endpoint.id(), addrs = ?endpoint.bound_sockets(), "sync endpoint listening");
    let discovered: Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>> = Arc::default();
    if cfg.mdns {
        start_mdns(&endpoint, discovered.clone(), cancel.clone()).await;
    }
    tokio::spawn(accept_loop(endpoint.clone(), node.clone(), cancel.clone()));
    tokio::spawn(dial_manager(
        endpoint.clone(),
        node,
        cfg.peers,
        discovered,
        cancel.clone(),
    ));
    Ok(Net { endpoint, cancel })
}

async fn start_mdns(
    endpoint: &Endpoint,
    discovered: Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>>,
    cancel: CancellationToken,
) {
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
            tokio::select! {
                _ = cancel.cancelled() => break,
                ev = events.next() => match ev {
                    Some(iroh_mdns_address_lookup::DiscoveryEvent::Discovered { endpoint_info, .. }) => {
                        let id = device_of(endpoint_info.endpoint_id);
                        let addrs: BTreeSet<SocketAddr> = endpoint_info.data.ip_addrs().copied().collect();
                        tracing::debug!(peer = %id, ?addrs, "discovered by mDNS");
                        if let Ok(mut d) = discovered.lock() {
                            d.entry(id).or_default().extend(addrs);
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
    });
}

async fn accept_loop(endpoint: Endpoint, node: SharedNode, cancel: CancellationToken) {
    loop {
        let incoming = tokio::select! {
            _ = cancel.cancelled() => break,
            inc = endpoint.accept() => match inc {
                Some(inc) => inc,
                None => break,
            },
        };
        let node = node.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "incoming connection failed");
                    return;
                }
            };
            let peer = device_of(conn.remote_id());
            if conn.alpn() == JOIN_ALPN {
                if let Err(e) = handle_join(node, conn).await {
                    tracing::warn!(%peer, error = %e, "join failed");
                }
                return;
            }
            let standing = match lock(&node) {
                Ok(n) => n.membership(peer),
                Err(_) => return,
            };
            match standing {
                Membership::Member(_) => {}
                Membership::Revoked => {
                    REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%peer, "refused connection from a revoked device");
                    conn.close(403u32.into(), b"revoked");
                    return;
                }
                Membership::Unknown => {
                    REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%peer, "refused connection from a device outside the store's roster");
                    conn.close(403u32.into(), b"not a member of this store");
                    return;
                }
            }
            let (send, recv) = match conn.accept_bi().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "no stream");
                    return;
                }
            };
            match drive(node, peer, send, recv, cancel).await {
                Ok(()) => tracing::info!(%peer, "sync session ended"),
                Err(e) => tracing::warn!(%peer, error = %e, "sync session failed"),
            }
        });
    }
}

/// The addresses of every peer worth dialling, refreshed from flags, roster,
/// remembered addresses and mDNS.
fn targets(
    node: &SharedNode,
    flags: &[(DeviceId, SocketAddr)],
    discovered: &Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>,
) -> BTreeMap<DeviceId, BTreeSet<SocketAddr>> {
    let mut out: BTreeMap<DeviceId, BTreeSet<SocketAddr>> = BTreeMap::new();
    for (id, a) in flags {
        out.entry(*id).or_default().insert(*a);
    }
    if let Ok(n) = lock(node) {
        let me = n.device_id();
        if let Ok(known) = n.peer_addresses() {
            for (id, addrs) in known {
                let e = out.entry(id).or_default();
                e.extend(addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()));
            }
        }
        if let Ok(d) = discovered.lock() {
            for (id, addrs) in d.iter() {
                if matches!(n.membership(*id), Membership::Member(_)) {
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
    node: SharedNode,
    flags: Vec<(DeviceId, SocketAddr)>,
    discovered: Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>>,
    cancel: CancellationToken,
) {
    let mut dialers: BTreeMap<DeviceId, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let shared_targets: Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>> = Arc::default();
    loop {
        let now = targets(&node, &flags, &discovered);
        if let Ok(mut t) = shared_targets.lock() {
            *t = now.clone();
        }
        for id in now.keys() {
            if dialers.get(id).is_none_or(|h| h.is_finished()) {
                let task = dial_loop(
                    endpoint.clone(),
                    node.clone(),
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

async fn dial_loop(
    endpoint: Endpoint,
    node: SharedNode,
    peer: DeviceId,
    targets: Arc<Mutex<BTreeMap<DeviceId, BTreeSet<SocketAddr>>>>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let already = lock(&node).map(|n| n.is_connected(peer)).unwrap_or(true);
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
        if !already {
            match connect_and_drive(&endpoint, node.clone(), peer, &addrs, cancel.clone()).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "dial failed");
                    backoff = (backoff * 2).min(Duration::from_secs(15));
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(if already { Duration::from_secs(1) } else { backoff }) => {}
        }
    }
}

async fn connect_and_drive(
    endpoint: &Endpoint,
    node: SharedNode,
    peer: DeviceId,
    addrs: &[SocketAddr],
    cancel: CancellationToken,
) -> Result<(), NetError> {
    let conn = connect(endpoint, peer, addrs, SYNC_ALPN).await?;
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| NetError::Io(e.to_string()))?;
    if let Some(a) = addrs.first()
        && let Ok(n) = lock(&node)
    {
        let _ = n.remember_peer_addr(peer, &a.to_string());
    }
    let result = drive(node, peer, send, recv, cancel).await;
    if let Some(reason) = conn.close_reason() {
        tracing::info!(%peer, %reason, "connection closed");
    }
    result
}
