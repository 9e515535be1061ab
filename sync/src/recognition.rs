//! The cloud fallback of product recognition: when the till's own gallery does not know
//! a photo, it asks the relay, which searches the galleries of every store of the tenant.
//!
//! - **Wire** (`kasir/ml/1`, an iroh ALPN of its own, so iroh authenticates the till's
//!   endpoint id; tills hold no head-office token): one QUIC connection per till and
//!   relay, one bi-stream per question, a length-prefixed postcard [`MlRequest`]
//!   answered by an [`MlResponse`], each at most [`MAX_MESSAGE`] bytes
//!   ([`crate::wire::codec`]). The request carries the photo's *embedding* (5 KiB),
//!   never the photo.
//! - **Who owns what:** a [`FallbackClient`] owns one endpoint (the daemon's sync endpoint,
//!   or one bound for a single CLI command) and caches the connection to the relay, so a
//!   question after the first costs one round trip.
//! - **Failure:** a relay that is slow, unreachable, refuses or answers nonsense is only
//!   the local answer. After a timeout or an unreachable relay the client does not ask
//!   again for [`QUIET_AFTER_FAILURE`], so an offline till pays the deadline once, not
//!   per photo.
//!
//! **Architecture Invariant:** recognition never waits on the network longer than the
//! fallback deadline ([`DEFAULT_DEADLINE`], `KASIR_ML_FALLBACK_MS`).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use iroh::Endpoint;
use iroh::endpoint::Connection;
use kasir_crdt::DeviceId;
use serde::{Deserialize, Serialize};

use crate::transport::{MessageReader, MessageWriter, TransportError, connect};

/// The ALPN of recognition questions to the relay.
pub const ML_ALPN: &[u8] = b"kasir/ml/1";

/// Largest request or response (bytes): an embedding is 5 KiB, fifty matches far less.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Most matches a request may ask for.
pub const MAX_K: usize = 50;

/// How long a till waits for the relay (connect and answer) by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(300);

/// The longest deadline accepted from configuration or a request.
pub const MAX_DEADLINE: Duration = Duration::from_secs(10);

/// Environment variable overriding [`DEFAULT_DEADLINE`] (milliseconds; `0` never asks).
pub const DEADLINE_ENV: &str = "KASIR_ML_FALLBACK_MS";

/// After a timeout or an unreachable relay, questions are not sent for this long.
pub const QUIET_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The deadline from [`DEADLINE_ENV`], else [`DEFAULT_DEADLINE`]; at most [`MAX_DEADLINE`].
pub fn deadline_from_env() -> Duration {
    std::env::var(DEADLINE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_DEADLINE, |ms| {
            Duration::from_millis(ms).min(MAX_DEADLINE)
        })
}

/// A question to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlRequest {
    /// The asking till's store (uuid bytes); the till must be in its roster.
    pub store: [u8; 16],
    /// blake3 of the model that computed the embedding; only its references are searched.
    pub model: [u8; 32],
    /// The photo's L2-normalised embedding, f32 little-endian (as `MlReference` stores it).
    pub embedding: Vec<u8>,
    /// How many SKUs to return (1 to [`MAX_K`]).
    pub k: u16,
}

/// One SKU the relay found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteMatch {
    /// The product.
    pub sku: String,
    /// Best cosine similarity among its references in the tenant's stores.
    pub score: f32,
    /// The store whose reference scored best (uuid bytes).
    pub store: [u8; 16],
}

/// The relay's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MlResponse {
    /// Best SKUs first, one entry per SKU (possibly none).
    Matches(Vec<RemoteMatch>),
    /// The question was refused, with the reason.
    Refused(String),
}

/// Why the relay gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FallbackError {
    /// Nothing within the deadline.
    #[error("the relay did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connecting or talking failed.
    #[error("relay unreachable: {0}")]
    Unreachable(String),
    /// The relay refused the question.
    #[error("the relay refused: {0}")]
    Refused(String),
    /// A message too large or not decodable.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Not asked: the relay failed moments ago.
    #[error("not asked: the relay failed less than {} s ago", QUIET_AFTER_FAILURE.as_secs())]
    Skipped,
}

impl FallbackError {
    /// A short name for reports: `timeout`, `unreachable`, `refused`, `malformed`, `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            FallbackError::Timeout(_) => "timeout",
            FallbackError::Unreachable(_) => "unreachable",
            FallbackError::Refused(_) => "refused",
            FallbackError::Malformed(_) => "malformed",
            FallbackError::Skipped => "skipped",
        }
    }
}

impl From<TransportError> for FallbackError {
    fn from(e: TransportError) -> FallbackError {
        match e {
            TransportError::Wire(_) | TransportError::TooLarge { .. } => {
                FallbackError::Malformed(e.to_string())
            }
            other => FallbackError::Unreachable(other.to_string()),
        }
    }
}

/// Asks the relay, keeping one connection open between questions.
#[derive(Debug)]
pub struct FallbackClient {
    endpoint: Endpoint,
    conn: tokio::sync::Mutex<Option<(DeviceId, Connection)>>,
    failed_at: Mutex<Option<Instant>>,
}

impl FallbackClient {
    /// A client asking through `endpoint` (which carries the till's identity).
    pub fn new(endpoint: Endpoint) -> FallbackClient {
        FallbackClient {
            endpoint,
            conn: tokio::sync::Mutex::new(None),
            failed_at: Mutex::new(None),
        }
    }

    /// The endpoint questions go through.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Asks the first of `relays` (id and addresses) within `deadline`. Never takes
    /// longer than the deadline; every failure is an error the caller treats as "no
    /// remote answer".
    pub async fn ask(
        &self,
        relays: &[(DeviceId, Vec<SocketAddr>)],
        req: &MlRequest,
        deadline: Duration,
    ) -> Result<Vec<RemoteMatch>, FallbackError> {
        let recent_failure = self
            .failed_at
            .lock()
            .ok()
            .and_then(|f| *f)
            .is_some_and(|at| at.elapsed() < QUIET_AFTER_FAILURE);
        if recent_failure {
            return Err(FallbackError::Skipped);
        }
        let result = tokio::time::timeout(deadline, self.ask_now(relays, req))
            .await
            .unwrap_or(Err(FallbackError::Timeout(deadline)));
        let failed = matches!(
            result,
            Err(FallbackError::Timeout(_) | FallbackError::Unreachable(_))
        );
        if let Ok(mut f) = self.failed_at.lock() {
            *f = failed.then(Instant::now);
        }
        if failed && let Ok(mut c) = self.conn.try_lock() {
            // The connection may be dead without knowing it yet: dial afresh next time.
            *c = None;
        }
        result
    }

    async fn ask_now(
        &self,
        relays: &[(DeviceId, Vec<SocketAddr>)],
        req: &MlRequest,
    ) -> Result<Vec<RemoteMatch>, FallbackError> {
        let conn = self.connection(relays).await?;
        let (send, recv) = conn.open_bi().await.map_err(TransportError::from)?;
        let mut writer = MessageWriter::new(send, MAX_MESSAGE);
        writer.send(req).await?;
        writer.finish();
        match MessageReader::new(recv, MAX_MESSAGE).expect().await? {
            MlResponse::Matches(m) => Ok(m),
            MlResponse::Refused(reason) => Err(FallbackError::Refused(reason)),
        }
    }

    async fn connection(
        &self,
        relays: &[(DeviceId, Vec<SocketAddr>)],
    ) -> Result<Connection, FallbackError> {
        let mut cached = self.conn.lock().await;
        if let Some((id, c)) = cached.as_ref()
            && c.close_reason().is_none()
            && relays.iter().any(|(r, _)| r == id)
        {
            return Ok(c.clone());
        }
        let (relay, addrs) = relays
            .first()
            .ok_or_else(|| FallbackError::Unreachable("the store has no relay".into()))?;
        let conn = connect(&self.endpoint, *relay, addrs, ML_ALPN).await?;
        *cached = Some((*relay, conn.clone()));
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_an_embedding_fits() {
        let req = MlRequest {
            store: [1; 16],
            model: [2; 32],
            embedding: vec![0; 4 * 1280],
            k: 5,
        };
        let bytes = postcard::to_stdvec(&req).expect("encode");
        assert!(bytes.len() < MAX_MESSAGE);
        assert_eq!(postcard::from_bytes::<MlRequest>(&bytes).ok(), Some(req));
        let resp = MlResponse::Matches(vec![RemoteMatch {
            sku: "KOPI".into(),
            score: 0.9,
            store: [3; 16],
        }]);
        let bytes = postcard::to_stdvec(&resp).expect("encode");
        assert_eq!(postcard::from_bytes::<MlResponse>(&bytes).ok(), Some(resp));
        assert!(postcard::from_bytes::<MlResponse>(&[9, 9, 9]).is_err());
    }
}
