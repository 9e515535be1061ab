//! The sync wire format, version 1: length-prefixed postcard frames.
//!
//! `[u32 big-endian length][postcard(Frame)]`, at most [`MAX_FRAME`] bytes. Every frame a
//! peer sends is decoded into this closed enum and validated before it touches a
//! document; anything else is a protocol error that closes the connection.

use serde::{Deserialize, Serialize};

/// ALPN of the sync protocol.
pub const SYNC_ALPN: &[u8] = b"kasir/sync/1";
/// ALPN of the join (invite) protocol.
pub const JOIN_ALPN: &[u8] = b"kasir/join/1";
/// Protocol version carried in `Hello`.
pub const VERSION: u16 = 1;
/// Largest frame accepted (a day's ledger of a busy till is well below this).
pub const MAX_FRAME: usize = 32 * 1024 * 1024;

/// A document as named on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDoc {
    /// Document id.
    pub id: [u8; 32],
    /// 0 store, 1 catalog, 2 ledger.
    pub kind: u8,
    /// Writing till (ledgers).
    pub till: Option<[u8; 32]>,
    /// Business date `YYYY-MM-DD` (ledgers).
    pub date: Option<String>,
}

/// One frame of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// First frame each way: protocol version and store.
    Hello {
        /// Protocol version.
        version: u16,
        /// Store id (UUID bytes).
        store: [u8; 16],
    },
    /// Every document the sender holds, with its heads hash.
    Manifest {
        /// (document, heads hash).
        docs: Vec<(WireDoc, [u8; 32])>,
    },
    /// An Automerge sync message for one document.
    Sync {
        /// The document.
        doc: WireDoc,
        /// Automerge's encoded sync message.
        msg: Vec<u8>,
    },
    /// The sender is closing, with a reason.
    Bye {
        /// Why.
        reason: String,
    },
}

/// A frame that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl Frame {
    /// Encodes the frame body (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes a frame body.
    pub fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        if bytes.len() > MAX_FRAME {
            return Err(WireError::TooLarge(bytes.len()));
        }
        postcard::from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))
    }

    /// Encodes with the length prefix.
    pub fn to_wire(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let f = Frame::Sync {
            doc: WireDoc {
                id: [7; 32],
                kind: 2,
                till: Some([1; 32]),
                date: Some("2026-11-24".into()),
            },
            msg: vec![1, 2, 3],
        };
        assert_eq!(Frame::decode(&f.encode()).ok(), Some(f.clone()));
        assert!(Frame::decode(&[0xff, 0xff, 0xff]).is_err());
        let body = f.encode();
        for cut in 0..body.len() {
            assert!(
                Frame::decode(&body[..cut]).is_err(),
                "truncated at {cut} decoded"
            );
        }
    }
}
