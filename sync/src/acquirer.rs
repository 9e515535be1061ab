//! Reaching the QRIS acquirer through a peer (`kasir/qris/1`): a till whose internet is
//! down asks another till of the store on the shop LAN (one that has internet) to make
//! the charge or ask its status for it; the peer calls the acquirer with its own copy of
//! the store's merchant configuration and answers what the acquirer said.
//!
//! - **Wire:** one QUIC connection per question, one bi-stream: the asking till sends a
//!   [`ProxyRequest`], the peer answers a [`ProxyAnswer`], each one length-prefixed
//!   postcard message of at most [`MAX_MESSAGE`] bytes ([`crate::wire::codec`]).
//! - **Who may ask:** iroh proves the asking endpoint's id; the answering till serves
//!   members of its store's roster only (checked before the connection is handed here)
//!   and requests naming its own store only.
//! - **What is never proxied:** the sale. The peer relays the acquirer's words (a charge,
//!   a status); the asking till records the sale itself once the acquirer says paid, so
//!   the payment and its sale stay on one till.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::Endpoint;
use iroh::endpoint::Connection;
use kasir_crdt::DeviceId;
use serde::{Deserialize, Serialize};

use crate::transport::{MessageReader, MessageWriter, TransportError, connect, device_of};

/// The ALPN of acquirer questions to a peer.
pub const QRIS_ALPN: &[u8] = b"kasir/qris/1";

/// Largest request or answer (a QRIS payload is a few hundred bytes).
pub const MAX_MESSAGE: usize = 8 * 1024;

/// How long the answering till waits for the question.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an asking till waits for a peer's answer (the peer's own acquirer timeout
/// is shorter, so a peer that also lost the internet answers within it).
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(12);

/// A question for the acquirer, asked through a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRequest {
    /// The asking till's store (uuid bytes); the peer answers for its own store only.
    pub store: [u8; 16],
    /// What to ask.
    pub call: AcquirerCall,
}

/// The acquirer calls a peer makes on another till's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcquirerCall {
    /// A dynamic QR for `amount`.
    Create {
        /// The sale's client id (the merchant reference).
        reference: String,
        /// Rupiah.
        amount: i64,
        /// Where the acquirer sends the callback (the asking till's).
        callback_url: Option<String>,
    },
    /// What became of a charge.
    Status {
        /// The acquirer's id.
        charge_id: String,
    },
}

/// The peer's answer: the acquirer's words, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProxyAnswer {
    /// The charge the acquirer made.
    Created {
        /// The acquirer's id.
        charge_id: String,
        /// The QRIS payload.
        qr_string: String,
        /// Rupiah.
        amount: i64,
        /// When it stops being payable (ms).
        expires_at_ms: i64,
    },
    /// A charge's status as the acquirer said it (`pending`, `paid`, `expired`,
    /// `failed`), read by the asking till with the same rules as the acquirer's own.
    Status {
        /// The status word.
        status: String,
        /// The RRN when paid.
        rrn: Option<String>,
        /// Why, when failed.
        reason: Option<String>,
    },
    /// The peer could not reach the acquirer either.
    Unreachable(String),
    /// The peer will not ask (no acquirer configured, another store, a bad question).
    Refused(String),
}

/// Why a peer gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No answer within the deadline.
    #[error("the peer did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// Connecting or talking failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Asks `peer` (at any of `addrs`) to put `request` to the acquirer, within
/// [`ANSWER_DEADLINE`].
pub async fn ask_peer(
    endpoint: &Endpoint,
    peer: DeviceId,
    addrs: &[SocketAddr],
    request: &ProxyRequest,
) -> Result<ProxyAnswer, ProxyError> {
    let asked = async {
        let conn = connect(endpoint, peer, addrs, QRIS_ALPN).await?;
        let (send, recv) = conn.open_bi().await?;
        let mut writer = MessageWriter::new(send, MAX_MESSAGE);
        writer.send(request).await?;
        writer.finish();
        let answer = MessageReader::new(recv, MAX_MESSAGE)
            .expect::<ProxyAnswer>()
            .await;
        conn.close(0u32.into(), b"answered");
        answer
    };
    tokio::time::timeout(ANSWER_DEADLINE, asked)
        .await
        .map_err(|_| ProxyError::Timeout(ANSWER_DEADLINE))?
        .map_err(ProxyError::from)
}

/// The answering side: reads one question on `conn` (within [`REQUEST_TIMEOUT`]), lets
/// `answer` put it to the acquirer, and sends the answer. A malformed question is
/// answered with a refusal.
pub async fn serve<F, Fut>(conn: &Connection, answer: F) -> Result<(), TransportError>
where
    F: FnOnce(ProxyRequest) -> Fut,
    Fut: Future<Output = ProxyAnswer>,
{
    let (send, recv) = conn.accept_bi().await?;
    let mut reader = MessageReader::new(recv, MAX_MESSAGE);
    let request = tokio::time::timeout(REQUEST_TIMEOUT, reader.expect::<ProxyRequest>())
        .await
        .map_err(|_| TransportError::Timeout(device_of(conn.remote_id())))?;
    let response = match request {
        Ok(req) => answer(req).await,
        Err(TransportError::Wire(_) | TransportError::TooLarge { .. }) => {
            ProxyAnswer::Refused("malformed acquirer question".into())
        }
        Err(e) => return Err(e),
    };
    let mut writer = MessageWriter::new(send, MAX_MESSAGE);
    writer.send(&response).await?;
    writer.finish();
    // Let the answer reach the asker before the connection is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answers_round_trip_and_garbage_is_refused() {
        let req = ProxyRequest {
            store: [7; 16],
            call: AcquirerCall::Create {
                reference: "0192-abc".into(),
                amount: 25_000,
                callback_url: None,
            },
        };
        let bytes = postcard::to_stdvec(&req).expect("encode");
        assert!(bytes.len() < MAX_MESSAGE);
        assert_eq!(postcard::from_bytes::<ProxyRequest>(&bytes).ok(), Some(req));
        let answer = ProxyAnswer::Status {
            status: "paid".into(),
            rrn: Some("123456789012".into()),
            reason: None,
        };
        let bytes = postcard::to_stdvec(&answer).expect("encode");
        assert_eq!(
            postcard::from_bytes::<ProxyAnswer>(&bytes).ok(),
            Some(answer)
        );
        assert!(postcard::from_bytes::<ProxyAnswer>(&[9, 9, 9]).is_err());
    }
}
