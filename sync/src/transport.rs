//! iroh for every Kasir protocol: endpoints, connections and framed streams.
//!
//! Endpoints run with relays disabled and no port mapping: a till is reached on the LAN
//! at addresses it was told, the relay at its advertised address. Streams carry messages
//! framed by [`crate::wire::codec`]; the reader classifies what can go wrong by the
//! error's kind, never by its text: a connection that is lost, closed or reset is the
//! end of the stream, a frame over the limit or one that does not decode is the peer's
//! fault.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iroh::endpoint::{Connection, PortmapperConfig, RecvStream, SendStream, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey};
use kasir_crdt::DeviceId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodecError};

use crate::metrics::SyncMetrics;
use crate::wire::{self, Frame, MAX_FRAME, WireError};

/// A sync session's trace id: 8 bytes both ends derive from the connection's TLS
/// secrets (an RFC 5705 exporter), so the till's log, the relay's log and the
/// PostgreSQL rows the session wrote name the same session without a byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 8]);

impl TraceId {
    /// The trace id of `conn`, the same on both ends; `None` before its handshake ends.
    pub fn of(conn: &Connection) -> Option<TraceId> {
        let mut id = [0u8; 8];
        conn.export_keying_material(&mut id, b"kasir trace id", b"")
            .ok()?;
        Some(TraceId(id))
    }

    /// The trace id of `conn` and a span for everything the session with `peer` does,
    /// named `sync` with both; the session's start is logged in it, so the id and the
    /// peer appear together once however quiet the session stays.
    pub fn session_span(conn: &Connection, peer: DeviceId) -> (Option<TraceId>, tracing::Span) {
        let trace = TraceId::of(conn);
        let span = match trace {
            Some(t) => tracing::info_span!("sync", trace = %t, %peer),
            None => tracing::info_span!("sync", %peer),
        };
        span.in_scope(|| tracing::info!("sync session started"));
        (trace, span)
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// How long [`connect`] waits for a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong on the network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The listen address is not one iroh can bind.
    #[error("cannot listen on {addr}: {source}")]
    ListenAddr {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: iroh::endpoint::InvalidSocketAddr,
    },
    /// The endpoint could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: iroh::endpoint::BindError,
    },
    /// A peer id that is not an ed25519 public key.
    #[error("invalid endpoint id {0}")]
    InvalidPeer(DeviceId),
    /// The peer did not answer in time.
    #[error("{0} did not answer in time")]
    Timeout(DeviceId),
    /// Connecting failed.
    #[error("cannot connect to {peer}: {source}")]
    Connect {
        /// The peer.
        peer: DeviceId,
        /// The cause.
        source: iroh::endpoint::ConnectError,
    },
    /// The connection failed or was closed while opening a stream.
    #[error(transparent)]
    Connection(#[from] iroh::endpoint::ConnectionError),
    /// Reading or writing a stream failed (other than the connection ending).
    #[error("stream: {0}")]
    Stream(#[source] io::Error),
    /// The connection ended before the exchange was over.
    #[error("the connection ended")]
    Closed,
    /// The peer announced a message longer than the limit (nothing was allocated for it).
    #[error("a message the peer announced exceeds the limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A message that does not decode (or one of ours over the limit).
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl TransportError {
    /// Classifies a stream error: the end of the connection, an oversized frame, or
    /// another failure.
    fn from_io(e: io::Error, max: usize) -> TransportError {
        if is_connection_end(&e) {
            return TransportError::Closed;
        }
        if e.get_ref()
            .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
        {
            return TransportError::TooLarge { max };
        }
        TransportError::Stream(e)
    }

    /// Whether this is just the connection ending (not worth a warning).
    pub fn is_closed(&self) -> bool {
        matches!(self, TransportError::Closed)
            || matches!(
                self,
                TransportError::Connection(
                    iroh::endpoint::ConnectionError::ApplicationClosed(_)
                        | iroh::endpoint::ConnectionError::LocallyClosed
                        | iroh::endpoint::ConnectionError::ConnectionClosed(_)
                )
            )
    }
}

/// Whether an io error of a QUIC stream means the connection or stream ended: quinn maps
/// a lost connection or a closed stream to `NotConnected` and a reset to
/// `ConnectionReset`; a stream cut inside a frame ends with `UnexpectedEof`.
fn is_connection_end(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        NotConnected | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

/// Binds an endpoint for this device: no relays, no port mapping, only our own socket.
pub async fn bind_endpoint(
    secret: [u8; 32],
    listen: SocketAddr,
    alpns: &[&[u8]],
) -> Result<Endpoint, TransportError> {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr(listen)
        .map_err(|source| TransportError::ListenAddr {
            addr: listen,
            source,
        })?
        .alpns(alpns.iter().map(|a| a.to_vec()).collect())
        .secret_key(SecretKey::from_bytes(&secret))
        .bind()
        .await
        .map_err(|source| TransportError::Bind {
            addr: listen,
            source,
        })
}

/// Accepts connections until `cancel` fires or the endpoint closes. Each handshake and
/// its `handle` run on a task of their own, so a slow peer holds up no one.
pub async fn accept_each<F, Fut>(
    endpoint: Endpoint,
    cancel: tokio_util::sync::CancellationToken,
    handle: F,
) where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handle = std::sync::Arc::new(handle);
    loop {
        let incoming = tokio::select! {
            _ = cancel.cancelled() => break,
            inc = endpoint.accept() => match inc {
                Some(inc) => inc,
                None => break,
            },
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) => handle(conn).await,
                Err(e) => tracing::debug!(error = %e, "incoming connection failed"),
            }
        });
    }
}

/// The device id of an iroh endpoint id.
pub fn device_of(id: iroh::EndpointId) -> DeviceId {
    DeviceId(*id.as_bytes())
}

fn endpoint_id(d: DeviceId) -> Result<iroh::EndpointId, TransportError> {
    iroh::EndpointId::from_bytes(&d.0).map_err(|_| TransportError::InvalidPeer(d))
}

/// Connects to `peer` at any of `addrs` (iroh tries them all) within [`CONNECT_TIMEOUT`].
pub async fn connect(
    ep: &Endpoint,
    peer: DeviceId,
    addrs: &[SocketAddr],
    alpn: &[u8],
) -> Result<Connection, TransportError> {
    let mut target = EndpointAddr::new(endpoint_id(peer)?);
    for a in addrs {
        target = target.with_ip_addr(*a);
    }
    tokio::time::timeout(CONNECT_TIMEOUT, ep.connect(target, alpn))
        .await
        .map_err(|_| TransportError::Timeout(peer))?
        .map_err(|source| TransportError::Connect { peer, source })
}

/// The receiving half of a stream of length-prefixed messages of at most `max` bytes.
#[derive(Debug)]
pub struct MessageReader {
    inner: FramedRead<RecvStream, wire::FrameCodec>,
    max: usize,
}

impl MessageReader {
    /// Reads messages of at most `max` bytes from `recv`.
    pub fn new(recv: RecvStream, max: usize) -> MessageReader {
        MessageReader {
            inner: FramedRead::new(recv, wire::codec(max)),
            max,
        }
    }

    /// Lowers the limit for the messages that follow (a hub reads a stranger's first
    /// frame with a small one) or raises it back.
    pub fn set_max(&mut self, max: usize) {
        self.inner.decoder_mut().set_max_frame_length(max);
        self.max = max;
    }

    /// The next message's bytes; `None` when the stream or connection ended.
    pub async fn next_bytes(&mut self) -> Result<Option<Bytes>, TransportError> {
        match self.inner.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b.freeze())),
            Some(Err(e)) => match TransportError::from_io(e, self.max) {
                TransportError::Closed => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The next message, decoded; `None` when the stream ended.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        match self.next_bytes().await? {
            None => Ok(None),
            Some(b) => Ok(Some(wire::decode(&b, self.max)?)),
        }
    }

    /// The one message the peer must send: its absence is [`TransportError::Closed`].
    pub async fn expect<T: DeserializeOwned>(&mut self) -> Result<T, TransportError> {
        self.next().await?.ok_or(TransportError::Closed)
    }
}

/// The sending half of a stream of length-prefixed messages of at most `max` bytes.
#[derive(Debug)]
pub struct MessageWriter {
    inner: FramedWrite<SendStream, wire::FrameCodec>,
    max: usize,
}

impl MessageWriter {
    /// Writes messages of at most `max` bytes to `send`.
    pub fn new(send: SendStream, max: usize) -> MessageWriter {
        MessageWriter {
            inner: FramedWrite::new(send, wire::codec(max)),
            max,
        }
    }

    /// Writes one message; returns the bytes put on the wire.
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<usize, TransportError> {
        let body = wire::encode(message, self.max)?;
        let n = body.len() + 4;
        self.inner
            .send(Bytes::from(body))
            .await
            .map_err(|e| TransportError::from_io(e, self.max))?;
        Ok(n)
    }

    /// Finishes the stream: the peer reads its end after the last message.
    pub fn finish(&mut self) {
        // A stream already finished or reset has nothing left to finish.
        let _ = self.inner.get_mut().finish();
    }
}

/// A sync stream's sending half: frames, counted in the sync metrics.
#[derive(Debug)]
pub struct FrameWriter {
    inner: MessageWriter,
    metrics: SyncMetrics,
}

impl FrameWriter {
    /// Writes sync frames to `send`.
    pub fn new(send: SendStream, metrics: SyncMetrics) -> FrameWriter {
        FrameWriter {
            inner: MessageWriter::new(send, MAX_FRAME),
            metrics,
        }
    }

    /// Writes frames in order.
    pub async fn send(&mut self, frames: Vec<Frame>) -> Result<(), TransportError> {
        for f in frames {
            let n = self.inner.send(&f).await?;
            self.metrics.bytes_sent.inc_by(n as u64);
        }
        Ok(())
    }

    /// Says goodbye with a reason, ignoring a peer that is already gone.
    pub async fn bye(&mut self, reason: &str) {
        let _ = self
            .send(vec![Frame::Bye {
                reason: reason.to_owned(),
            }])
            .await;
    }

    /// Finishes the stream.
    pub fn finish(&mut self) {
        self.inner.finish();
    }
}

/// A sync stream's receiving half: frames, counted in the sync metrics.
#[derive(Debug)]
pub struct FrameReader {
    inner: MessageReader,
    metrics: SyncMetrics,
}

impl FrameReader {
    /// Reads sync frames from `recv`.
    pub fn new(recv: RecvStream, metrics: SyncMetrics) -> FrameReader {
        FrameReader {
            inner: MessageReader::new(recv, MAX_FRAME),
            metrics,
        }
    }

    /// Lowers the frame limit (see [`MessageReader::set_max`]).
    pub fn set_max(&mut self, max: usize) {
        self.inner.set_max(max.min(MAX_FRAME));
    }

    /// The next frame; `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<Frame>, TransportError> {
        let Some(bytes) = self.inner.next_bytes().await? else {
            return Ok(None);
        };
        self.metrics.received(bytes.len() + 4, crate::now_ms());
        Ok(Some(Frame::decode(&bytes)?))
    }

    /// Reads frames on a task of its own, so a session's `select!` loop can wait on them
    /// beside its other events. The channel ends when the stream ends; abort the handle
    /// when done.
    pub fn spawn(
        mut self,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::mpsc::Receiver<Result<Frame, TransportError>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let next = self.next().await;
                let end = !matches!(next, Ok(Some(_)));
                match next.transpose() {
                    Some(item) => {
                        if tx.send(item).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                }
                if end {
                    break;
                }
            }
        });
        (task, rx)
    }
}
