//! The join protocol (`kasir/join/1`): a new device proves an invite's secret to any
//! member (a till or the relay), which admits it into the roster.
//!
//! One bi-stream: the joiner sends a [`JoinRequest`], the member answers a
//! [`JoinResponse`]; each is one length-prefixed postcard message of at most
//! [`MAX_JOIN_MESSAGE`] bytes.

use std::net::SocketAddr;
use std::time::Duration;

use iroh::Endpoint;
use iroh::endpoint::{Connection, SendStream};
use kasir_crdt::DeviceId;
use serde::{Deserialize, Serialize};

use crate::membership::Admission;
use crate::transport::{MessageReader, MessageWriter, TransportError, connect, device_of};
use crate::wire::JOIN_ALPN;

/// Largest join message (a join is a few hundred bytes).
pub const MAX_JOIN_MESSAGE: usize = 4096;

/// How long a member waits for the joiner's request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A join request, the first message on a `kasir/join/1` stream.
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

/// The member's side: reads the request of a joiner on `conn` (within
/// [`REQUEST_TIMEOUT`]), lets `admit` decide, and sends the answer. A malformed request
/// is answered with a refusal.
pub async fn serve_join<F, Fut>(conn: &Connection, admit: F) -> Result<(), TransportError>
where
    F: FnOnce(JoinRequest) -> Fut,
    Fut: Future<Output = JoinResponse>,
{
    let (send, recv) = conn.accept_bi().await?;
    let mut reader = MessageReader::new(recv, MAX_JOIN_MESSAGE);
    let request = tokio::time::timeout(REQUEST_TIMEOUT, reader.expect::<JoinRequest>())
        .await
        .map_err(|_| TransportError::Timeout(device_of(conn.remote_id())))?;
    let response = match request {
        Ok(req) => admit(req).await,
        Err(TransportError::Wire(_) | TransportError::TooLarge { .. }) => {
            JoinResponse::Refused("malformed join request".into())
        }
        Err(e) => return Err(e),
    };
    answer_join(conn, send, &response).await
}

/// Sends the answer to a join request and waits (briefly) for the joiner to close, so
/// the answer is delivered before the connection is dropped.
pub async fn answer_join(
    conn: &Connection,
    send: SendStream,
    response: &JoinResponse,
) -> Result<(), TransportError> {
    let mut writer = MessageWriter::new(send, MAX_JOIN_MESSAGE);
    writer.send(response).await?;
    writer.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
    Ok(())
}

/// Asks a member to admit this device (the `kasir join` side).
pub async fn request_join(
    ep: &Endpoint,
    member: DeviceId,
    addrs: &[SocketAddr],
    req: &JoinRequest,
) -> Result<JoinResponse, TransportError> {
    let conn = connect(ep, member, addrs, JOIN_ALPN).await?;
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send, MAX_JOIN_MESSAGE);
    writer.send(req).await?;
    writer.finish();
    let answer = MessageReader::new(recv, MAX_JOIN_MESSAGE)
        .expect::<JoinResponse>()
        .await;
    conn.close(0u32.into(), b"joined");
    answer
}
