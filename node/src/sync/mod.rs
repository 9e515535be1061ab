//! Peer-to-peer sync: the wire format, the per-peer session state machine, and (in
//! `net`) its iroh transport.

pub mod net;
pub mod session;
pub mod wire;

pub use session::{Session, SessionError};
pub use wire::{Frame, JOIN_ALPN, SYNC_ALPN};

/// Feeds arbitrary bytes to a session as a peer would: length-prefixed frames, decoded
/// and handled one by one until the input ends or the session refuses. The fuzz target
/// and the hostile-frame property test both drive this; it must never panic.
pub fn feed_untrusted(
    node: &mut crate::node::Node,
    peer: kasir_crdt::DeviceId,
    mut data: &[u8],
) -> usize {
    let mut session = Session::new(peer);
    let mut handled = 0;
    if session.start(node).is_err() {
        return 0;
    }
    while data.len() >= 4 {
        let n = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        data = &data[4..];
        if n > wire::MAX_FRAME || n > data.len() {
            break;
        }
        let (body, rest) = data.split_at(n);
        data = rest;
        let Ok(frame) = Frame::decode(body) else {
            break;
        };
        if session.handle(node, frame).is_err() {
            break;
        }
        handled += 1;
    }
    handled
}
