//! The sync wire format, version 2: length-prefixed postcard frames. Version 2 carries
//! each change's signature beside it (see [`crate::trust`]); version 1 had none, and a
//! till of version 2 does not speak it.
//!
//! `[u32 big-endian length][postcard(Frame)]`, at most [`MAX_FRAME`] bytes. Every frame a
//! peer sends is decoded into this closed enum and validated before it touches a
//! document; anything else is a protocol error that closes the connection. The length
//! prefix is `tokio_util`'s [`LengthDelimitedCodec`] (see [`codec`]); every message of
//! every Kasir protocol (sync, join, recognition) is framed by it, each with its limit.

use serde::{Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

use crate::trust::ChangeSig;

/// ALPN of the sync protocol.
pub const SYNC_ALPN: &[u8] = b"kasir/sync/2";
/// ALPN of the join (invite) protocol.
pub const JOIN_ALPN: &[u8] = b"kasir/join/1";
/// Protocol version carried in `Hello`.
pub const VERSION: u16 = 2;
/// Largest frame accepted (a day's ledger of a busy till is well below this).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The most change bytes one `Sync` frame carries; a document lacking more is sent in
/// several (see `kasir_crdt::Doc::generate_sync_message_with_hashes`), leaving room
/// in [`MAX_FRAME`] for the signatures that travel with the changes.
pub const MAX_SYNC_CHANGE_BYTES: usize = 4 * 1024 * 1024;

/// The length-prefix codec of every Kasir protocol: a 4-byte big-endian length, then the
/// body; a peer announcing more than `max` bytes is an error before anything is
/// allocated.
pub fn codec(max: usize) -> FrameCodec {
    FrameCodec {
        inner: LengthDelimitedCodec::builder()
            .length_field_type::<u32>()
            .max_frame_length(max)
            .new_codec(),
        max,
    }
}

/// [`LengthDelimitedCodec`] that lets a frame's buffer grow as its bytes arrive: the
/// plain codec reserves the announced length as soon as it reads the header, so a peer
/// announcing the largest frame and sending nothing more would hold that much memory per
/// session. Here a frame is handed to the inner codec only once it is all buffered.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    max: usize,
}

impl FrameCodec {
    /// Changes the largest frame accepted from now on.
    pub fn set_max_frame_length(&mut self, max: usize) {
        self.inner.set_max_frame_length(max);
        self.max = max;
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = bytes::BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(head);
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max {
            // The inner codec reports it, in its words.
            return self.inner.decode(src);
        }
        if src.len() < 4 + len {
            return Ok(None);
        }
        self.inner.decode(src)
    }
}

impl tokio_util::codec::Encoder<bytes::Bytes> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: bytes::Bytes, dst: &mut bytes::BytesMut) -> Result<(), Self::Error> {
        self.inner.encode(item, dst)
    }
}

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
        /// The signatures of the changes the message carries.
        sigs: Vec<ChangeSig>,
    },
    /// The sender is closing, with a reason.
    Bye {
        /// Why the sender closes, for the peer's log.
        reason: String,
    },
}

impl Frame {
    /// A short name of the frame's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "hello",
            Frame::Manifest { .. } => "manifest",
            Frame::Sync { .. } => "sync",
            Frame::Bye { .. } => "bye",
        }
    }

    /// The size of the Automerge sync message a `Sync` frame carries (0 for the others),
    /// for logs.
    pub fn sync_bytes(&self) -> usize {
        match self {
            Frame::Sync { msg, .. } => msg.len(),
            _ => 0,
        }
    }
}

/// A message that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Longer than the protocol's limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid message of the protocol.
    #[error("malformed message: {0}")]
    Malformed(#[source] postcard::Error),
}

/// Encodes a message body (without the length prefix), refusing one above `max` bytes.
pub fn encode<T: Serialize>(message: &T, max: usize) -> Result<Vec<u8>, WireError> {
    let body = postcard::to_stdvec(message).map_err(WireError::Malformed)?;
    if body.len() > max {
        return Err(WireError::TooLarge {
            len: body.len(),
            max,
        });
    }
    Ok(body)
}

/// Decodes a message body of at most `max` bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], max: usize) -> Result<T, WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    postcard::from_bytes(bytes).map_err(WireError::Malformed)
}

impl Frame {
    /// Encodes the frame body (without the length prefix).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode(self, MAX_FRAME)
    }

    /// Decodes a frame body.
    pub fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        decode(bytes, MAX_FRAME)
    }

    /// Encodes with the length prefix, as [`codec`] writes it (tests and fuzzing build
    /// byte streams with this).
    pub fn to_wire(&self) -> Result<Vec<u8>, WireError> {
        let body = self.encode()?;
        let mut out = Vec::with_capacity(body.len() + 4);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    use super::*;

    fn sample() -> Frame {
        Frame::Sync {
            doc: WireDoc {
                id: [7; 32],
                kind: 2,
                till: Some([1; 32]),
                date: Some("2026-11-24".into()),
            },
            msg: vec![1, 2, 3],
            sigs: vec![ChangeSig {
                hash: [4; 32],
                signer: [5; 32],
                sig: vec![6; 64],
            }],
        }
    }

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let f = sample();
        let body = f.encode().expect("encode");
        assert_eq!(Frame::decode(&body).ok(), Some(f.clone()));
        assert!(Frame::decode(&[0xff, 0xff, 0xff]).is_err());
        for cut in 0..body.len() {
            assert!(
                Frame::decode(&body[..cut]).is_err(),
                "truncated at {cut} decoded"
            );
        }
    }

    #[test]
    fn a_frame_buffer_grows_only_as_its_bytes_arrive() {
        let mut buf = BytesMut::from(&(MAX_FRAME as u32 - 1).to_be_bytes()[..]);
        buf.extend_from_slice(&[0; 10]);
        assert!(codec(MAX_FRAME).decode(&mut buf).expect("decode").is_none());
        assert!(
            buf.capacity() < 1 << 20,
            "a 16 MiB frame header reserved {} bytes before its body arrived",
            buf.capacity()
        );
    }

    #[test]
    fn the_codec_reads_what_to_wire_writes_and_refuses_oversized_lengths() {
        let f = sample();
        let mut buf = BytesMut::from(&f.to_wire().expect("wire")[..]);
        let body = codec(MAX_FRAME)
            .decode(&mut buf)
            .expect("decode")
            .expect("one frame");
        assert_eq!(Frame::decode(&body).ok(), Some(f.clone()));
        let mut out = BytesMut::new();
        codec(MAX_FRAME)
            .encode(bytes::Bytes::from(f.encode().expect("encode")), &mut out)
            .expect("encode");
        assert_eq!(&out[..], &f.to_wire().expect("wire")[..]);
        let mut huge = BytesMut::from(&(1u32 << 20).to_be_bytes()[..]);
        assert!(codec(4096).decode(&mut huge).is_err());
    }
}
