//! Peer-to-peer sync: the wire format, the per-peer session state machine, and (in
//! `net`) its iroh transport.

pub mod net;
pub mod session;
pub mod wire;

pub use session::{Session, SessionError};
pub use wire::{Frame, JOIN_ALPN, SYNC_ALPN};
