//! The one session driver, for tills and the relay alike.
//!
//! Who owns what: the caller (a till's accept loop or dialer, the relay's accept loop)
//! owns the connection and hands its stream halves to [`drive`], which owns them until
//! the session ends. [`drive`] runs a [`Session`] in one `select!` loop over three
//! sources — cancellation, the peer's frames (read on a task of their own), and the
//! host's change notifications — and returns how the session ended. The host (a
//! [`SessionHost`]) owns the replica: the driver never touches it except through the
//! host, which locks it, applies a frame and (on the relay) persists what it brought
//! before it returns the answer.
//!
//! Revocation is checked here, once for both sides: before the session starts, whenever
//! the store document changes, and after the notification queue lagged (a lag may have
//! swallowed the store document's notification, so the standing is read again).

use std::net::SocketAddr;
use std::time::Duration;

use iroh::Endpoint;
use iroh::endpoint::Connection;
use kasir_crdt::{DeviceId, DocId, StoreId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::membership::Membership;
use crate::metrics::SyncMetrics;
use crate::session::{Session, SessionError};
use crate::transport::{FrameReader, FrameWriter, TraceId, TransportError, connect};
use crate::wire::{Frame, SYNC_ALPN};

/// What the driver needs from the side it runs on: a till's SQLite node or one store
/// of the relay.
///
/// **API Boundary:** tills and the relay implement this; changing it changes both.
pub trait SessionHost: Send + Sync {
    /// The host's failures, and the session's that surface while the host handles frames.
    type Error: std::error::Error + Send + Sync + 'static + From<SessionError>;

    /// The store the session serves.
    fn store_id(&self) -> StoreId;

    /// The peer's standing in the store's roster now.
    fn membership(
        &self,
        peer: DeviceId,
    ) -> impl Future<Output = Result<Membership, Self::Error>> + Send;

    /// Subscribes to documents that changed here (local writes and other peers' merges).
    fn subscribe(
        &self,
    ) -> impl Future<Output = Result<broadcast::Receiver<DocId>, Self::Error>> + Send;

    /// The opening frames of `session` (sent again after a lag: a fresh manifest
    /// exchange covers every missed notification).
    fn start(
        &self,
        session: &mut Session,
    ) -> impl Future<Output = Result<Vec<Frame>, Self::Error>> + Send;

    /// Handles one frame of the peer: applies what it brings — durably, before this
    /// returns — and returns the answer.
    fn handle(
        &self,
        session: &mut Session,
        frame: Frame,
    ) -> impl Future<Output = Result<Vec<Frame>, Self::Error>> + Send;

    /// Offers a document that changed here to the peer.
    fn local_change(
        &self,
        session: &mut Session,
        doc: DocId,
    ) -> impl Future<Output = Result<Vec<Frame>, Self::Error>> + Send;
}

/// How a session ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The peer said goodbye, with its reason.
    PeerClosed(String),
    /// The stream or connection ended.
    StreamEnded,
    /// The peer was revoked (or left the roster) during the session.
    Revoked,
    /// The host cancelled the session (shutdown, the store unloading).
    Cancelled,
    /// [`sync_once`]: the initial exchange is over.
    Synced,
}

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError<E: std::error::Error + 'static> {
    /// The peer is not a member of the store (a stranger, or revoked).
    #[error("{0} is not a member of this store")]
    NotMember(DeviceId),
    /// The network failed, or the peer sent a frame that does not decode.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The host (or the session, while the host handled a frame) failed.
    #[error(transparent)]
    Host(E),
}

/// Runs one sync session with `peer` (already authenticated by iroh) until either side
/// stops. `first` is a frame the caller already read (the relay reads the `Hello` to
/// learn the store). The peer's standing is checked before anything is sent.
pub async fn drive<H: SessionHost>(
    host: &H,
    peer: DeviceId,
    mut writer: FrameWriter,
    reader: FrameReader,
    first: Option<Frame>,
    cancel: &CancellationToken,
) -> Result<SessionEnd, DriveError<H::Error>> {
    // Checked here, not only where the connection was accepted, so a dialer never syncs
    // with a device that was revoked since it was chosen as a target.
    if !host
        .membership(peer)
        .await
        .map_err(DriveError::Host)?
        .is_member()
    {
        return Err(DriveError::NotMember(peer));
    }
    let store_doc = DocId::store(host.store_id());
    let mut session = Session::new(peer);
    let mut changes = host.subscribe().await.map_err(DriveError::Host)?;
    let start = host.start(&mut session).await.map_err(DriveError::Host)?;
    writer.send(start).await?;
    if let Some(first) = first {
        answer(host, &mut session, &mut writer, first).await?;
    }
    let (reader_task, mut frames) = reader.spawn();
    let outcome = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                writer.bye("closing").await;
                break Ok(SessionEnd::Cancelled);
            }
            frame = frames.recv() => match frame {
                None => break Ok(SessionEnd::StreamEnded),
                Some(Err(e)) => break Err(e.into()),
                Some(Ok(Frame::Bye { reason })) => {
                    tracing::debug!(%peer, %reason, "peer closed the session");
                    break Ok(SessionEnd::PeerClosed(reason));
                }
                Some(Ok(frame)) => {
                    if let Err(e) = answer(host, &mut session, &mut writer, frame).await {
                        break Err(e);
                    }
                }
            },
            changed = changes.recv() => {
                let frames = match changed {
                    Ok(doc) if doc == store_doc => match still_member(host, peer).await {
                        Ok(true) => host.local_change(&mut session, doc).await,
                        Ok(false) => break revoked(&mut writer, peer).await,
                        Err(e) => break Err(e),
                    },
                    Ok(doc) => host.local_change(&mut session, doc).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(%peer, missed, "change notifications lagged");
                        match still_member(host, peer).await {
                            Ok(true) => host.start(&mut session).await,
                            Ok(false) => break revoked(&mut writer, peer).await,
                            Err(e) => break Err(e),
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break Ok(SessionEnd::StreamEnded),
                };
                match frames {
                    Ok(frames) => {
                        if let Err(e) = writer.send(frames).await {
                            break Err(e.into());
                        }
                    }
                    Err(e) => break Err(DriveError::Host(e)),
                }
            }
        }
    };
    reader_task.abort();
    writer.finish();
    outcome
}

async fn still_member<H: SessionHost>(
    host: &H,
    peer: DeviceId,
) -> Result<bool, DriveError<H::Error>> {
    Ok(host
        .membership(peer)
        .await
        .map_err(DriveError::Host)?
        .is_member())
}

async fn revoked<E: std::error::Error + 'static>(
    writer: &mut FrameWriter,
    peer: DeviceId,
) -> Result<SessionEnd, DriveError<E>> {
    tracing::warn!(%peer, "closing the session of a device that was revoked");
    writer.bye("revoked").await;
    Ok(SessionEnd::Revoked)
}

/// Handles one frame and sends the answer; a failure is told to the peer in a `Bye`.
async fn answer<H: SessionHost>(
    host: &H,
    session: &mut Session,
    writer: &mut FrameWriter,
    frame: Frame,
) -> Result<(), DriveError<H::Error>> {
    match host.handle(session, frame).await {
        Ok(frames) => Ok(writer.send(frames).await?),
        Err(e) => {
            writer.bye(&e.to_string()).await;
            Err(DriveError::Host(e))
        }
    }
}

/// Syncs once with `peer` until the initial exchange is over (`kasir join`, tests): both
/// sides have offered everything and the line has been quiet for a moment.
pub async fn sync_once<H: SessionHost>(
    host: &H,
    ep: &Endpoint,
    peer: DeviceId,
    addrs: &[SocketAddr],
    timeout: Duration,
    metrics: &SyncMetrics,
) -> Result<SessionEnd, DriveError<H::Error>> {
    let conn = connect(ep, peer, addrs, SYNC_ALPN).await?;
    let (_, span) = TraceId::session_span(&conn, peer);
    sync_once_on(host, &conn, peer, timeout, metrics)
        .instrument(span)
        .await
}

async fn sync_once_on<H: SessionHost>(
    host: &H,
    conn: &Connection,
    peer: DeviceId,
    timeout: Duration,
    metrics: &SyncMetrics,
) -> Result<SessionEnd, DriveError<H::Error>> {
    let (send, recv) = conn.open_bi().await.map_err(TransportError::from)?;
    let mut writer = FrameWriter::new(send, metrics.clone());
    let mut reader = FrameReader::new(recv, metrics.clone());
    let mut session = Session::new(peer);
    let start = host.start(&mut session).await.map_err(DriveError::Host)?;
    writer.send(start).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Automerge does not always answer (a peer with nothing to add stays silent), so
        // once everything was offered a quiet line means done.
        let quiet = if session.is_idle() {
            Duration::from_millis(300)
        } else if session.all_offered() {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(quiet.min(left), reader.next()).await {
            Err(_) if session.is_idle() || session.all_offered() => break,
            Err(_) => return Err(TransportError::Timeout(peer).into()),
            Ok(Ok(Some(Frame::Bye { reason }))) => {
                // Closed before the exchange was over: the peer refused (or is leaving).
                return Err(DriveError::Host(SessionError::Closed(reason).into()));
            }
            Ok(Ok(Some(frame))) => {
                let out = host
                    .handle(&mut session, frame)
                    .await
                    .map_err(DriveError::Host)?;
                writer.send(out).await?;
            }
            Ok(Ok(None)) => return Ok(SessionEnd::StreamEnded),
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    writer.bye("done").await;
    writer.finish();
    conn.close(0u32.into(), b"done");
    Ok(SessionEnd::Synced)
}
