//! Kasir's sync protocol, shared by tills and the relay: one place where every change a
//! peer sends is framed, checked and handed to a replica.
//!
//! - [`identity`]: the device key, whose public half is the iroh endpoint id.
//! - [`membership`]: roster standing, invites and tickets, admission planning.
//! - [`doc_ref`]: how documents are named between replicas, checked against the store.
//! - [`replica`]: the [`SyncReplica`] trait a till's node and the relay's store replica
//!   implement, with its own error.
//! - [`wire`]: the versioned frames of `kasir/sync/2` and the one length-prefix codec of
//!   every Kasir protocol.
//! - [`session`]: one session with one peer as a state machine with no IO.
//! - [`transport`]: iroh endpoints and framed streams; [`driver`]: the one async session
//!   driver (revocation, lag and error classification), hosted by a till or the relay.
//! - [`join`]: the invite protocol; [`recognition`]: the wire and client of product
//!   recognition questions to the relay; [`acquirer`]: asking a peer to reach the QRIS
//!   acquirer for a till without internet.
//! - [`trust`]: change signatures and the write rules every merge is checked against.
//! - [`metrics`]: the sync series of a process's registry.
//!
//! **Architecture Invariant:** nothing a peer sends is trusted: messages are
//! size-bounded before anything is allocated, decoded into closed enums, document
//! references must derive from the store's id, and a frame that fails a check ends the
//! session; the replica stays intact.
//!
//! **API Boundary:** the wire protocols (`kasir/sync/2`, `kasir/join/1`, `kasir/ml/1`,
//! `kasir/qris/1`);
//! change one only with a new ALPN.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod acquirer;
pub mod doc_ref;
pub mod driver;
pub mod identity;
pub mod join;
pub mod membership;
pub mod metrics;
pub mod recognition;
pub mod replica;
pub mod session;
pub mod transport;
pub mod trust;
pub mod wire;

pub use doc_ref::{DocRef, DocRefWithHeads, check_doc_ref};
pub use driver::{DriveError, SessionEnd, SessionHost};
pub use identity::Identity;
pub use membership::Membership;
pub use metrics::SyncMetrics;
pub use replica::{Received, ReplicaError, SyncReplica};
pub use session::{Session, SessionError};
pub use transport::TransportError;
pub use wire::{Frame, JOIN_ALPN, SYNC_ALPN};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Feeds arbitrary bytes to a session as a peer would: length-prefixed frames, decoded
/// and handled one by one until the input ends or the session refuses. Returns how many
/// frames were handled. The fuzz target and the hostile-frame property test drive this;
/// it must never panic.
#[cfg(feature = "test-utils")]
pub fn feed_untrusted<R: SyncReplica + ?Sized>(
    replica: &mut R,
    peer: kasir_crdt::DeviceId,
    data: &[u8],
) -> usize {
    use tokio_util::codec::Decoder;
    let mut session = Session::new(peer);
    if session.start(replica).is_err() {
        return 0;
    }
    let mut codec = wire::codec(wire::MAX_FRAME);
    let mut buf = bytes::BytesMut::from(data);
    let mut handled = 0;
    while let Ok(Some(body)) = codec.decode(&mut buf) {
        let Ok(frame) = Frame::decode(&body) else {
            break;
        };
        if session.handle(replica, frame).is_err() {
            break;
        }
        handled += 1;
    }
    handled
}

/// How an in-memory [`exchange`] ended.
#[cfg(feature = "test-utils")]
#[derive(Debug)]
pub struct Exchange {
    /// Frames that crossed, both ways.
    pub frames: usize,
    /// The error that ended a session, and whether it was the second replica's (`b`).
    pub ended: Option<(bool, SessionError)>,
}

/// Runs one sync session between two replicas in memory, as two peers would over a
/// stream: every frame is encoded, length-prefixed by [`wire::codec`] and decoded by the
/// receiver's codec. Frames from `a` to `b` pass through `tamper` as bytes first (a
/// fuzzer flips them; an honest test leaves them). Ends when both sides are quiet, when
/// a session fails (reported in [`Exchange::ended`]) or after `max_frames`.
#[cfg(feature = "test-utils")]
pub fn exchange<A: SyncReplica + ?Sized, B: SyncReplica + ?Sized>(
    a: &mut A,
    a_id: kasir_crdt::DeviceId,
    b: &mut B,
    b_id: kasir_crdt::DeviceId,
    max_frames: usize,
    mut tamper: impl FnMut(usize, &mut bytes::BytesMut),
) -> Exchange {
    use std::collections::VecDeque;
    use tokio_util::codec::{Decoder, Encoder};

    let mut at_a = Session::new(b_id);
    let mut at_b = Session::new(a_id);
    let mut done = Exchange {
        frames: 0,
        ended: None,
    };
    let (mut to_b, mut to_a): (VecDeque<Frame>, VecDeque<Frame>) =
        match (at_a.start(a), at_b.start(b)) {
            (Ok(x), Ok(y)) => (x.into(), y.into()),
            (Err(e), _) => {
                done.ended = Some((false, e));
                return done;
            }
            (_, Err(e)) => {
                done.ended = Some((true, e));
                return done;
            }
        };
    let protocol = |e: String| SessionError::Protocol(e);
    while done.frames < max_frames {
        if let Some(frame) = to_b.pop_front() {
            done.frames += 1;
            let mut codec = wire::codec(wire::MAX_FRAME);
            let mut buf = bytes::BytesMut::new();
            let encoded = wire::encode(&frame, wire::MAX_FRAME)
                .map_err(|e| protocol(e.to_string()))
                .and_then(|body| {
                    codec
                        .encode(bytes::Bytes::from(body), &mut buf)
                        .map_err(|e| protocol(e.to_string()))
                });
            if let Err(e) = encoded {
                done.ended = Some((false, e));
                return done;
            }
            tamper(done.frames, &mut buf);
            loop {
                let frame = match codec.decode(&mut buf) {
                    Ok(Some(body)) => match Frame::decode(&body) {
                        Ok(frame) => frame,
                        Err(e) => {
                            done.ended = Some((true, protocol(e.to_string())));
                            return done;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        done.ended = Some((true, protocol(e.to_string())));
                        return done;
                    }
                };
                match at_b.handle(b, frame) {
                    Ok(out) => to_a.extend(out),
                    Err(e) => {
                        done.ended = Some((true, e));
                        return done;
                    }
                }
            }
        } else if let Some(frame) = to_a.pop_front() {
            done.frames += 1;
            match at_a.handle(a, frame) {
                Ok(out) => to_b.extend(out),
                Err(e) => {
                    done.ended = Some((false, e));
                    return done;
                }
            }
        } else {
            break;
        }
    }
    done
}
