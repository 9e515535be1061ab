//! Dynamic QRIS: a QR for the exact amount from an acquirer (PJP), and a sale recorded
//! only once the acquirer confirms the payment — by the till's poll or its callback,
//! whichever comes first, and exactly once however often either comes.
//!
//! Who owns what: the acquirer owns a charge's truth (pending, paid with its RRN,
//! expired, failed); this till owns `qris_charges` (its own SQLite, not synced: a charge
//! belongs to the till that showed the QR), where each charge keeps the sale request it
//! pays for, priced when the QR was made (unit prices and discounts fixed, so a price
//! changed meanwhile cannot make the sale differ from the money). Settling a charge as
//! paid records that sale with the charge's client id, so a duplicate callback, a poll
//! after the callback, or a retry finds the first sale. A charge is never marked
//! expired on the till's own clock: only the acquirer says so, since a customer may pay
//! at the last second.
//!
//! [`Acquirer`] is the interface; [`HttpAcquirer`] speaks the HTTP shape below, and
//! [`sim`] serves it with controls for tests and the demo (a real acquirer cannot be
//! reached from these machines):
//!
//! - `POST {url}/v1/charges` (`Authorization: Bearer KEY`) `{"reference","amount",
//!   "expiry_seconds","callback_url"?}` → `{"charge_id","qr_string","amount",
//!   "expires_at_ms","status"}`;
//! - `GET {url}/v1/charges/{id}` → `{"charge_id","status","rrn"?,"reason"?}`;
//! - the callback: `POST callback_url` `{"charge_id","status","rrn"?}` with
//!   `X-Qris-Signature: sha256=HEX` (HMAC-SHA256 of the body with the shared secret).

pub mod sim;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use iroh::Endpoint;
use kasir_crdt::DeviceId;
use kasir_crdt::records::Payment;
use kasir_crdt::store::Role;
use kasir_sync::Membership;
use kasir_sync::acquirer::{self, AcquirerCall, ProxyAnswer, ProxyRequest};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::{SaleItem, SaleRequest};
use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::people::Principal;
use crate::shared::SharedNode;

/// The file in the data directory that configures the acquirer.
pub const QRIS_FILE: &str = "qris.json";

/// How long a QR stays payable.
pub const EXPIRY: Duration = Duration::from_secs(300);

/// The acquirer this till uses (`qris.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrisConfig {
    /// The acquirer's API base URL.
    pub url: String,
    /// The merchant's API key.
    pub key: String,
    /// The secret the acquirer signs callbacks with.
    pub callback_secret: String,
    /// Where the acquirer sends callbacks (this till's, or the relay's that forwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl QrisConfig {
    /// The configuration in `dir`, if any.
    pub fn load(dir: &Path) -> Result<Option<QrisConfig>, NodeError> {
        let path = dir.join(QRIS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                NodeError::Invalid(format!(
                    "{} is not a QRIS configuration: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NodeError::io(format!("reading {}", path.display()))(e)),
        }
    }
}

/// What the acquirer says of a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChargeState {
    /// Shown, not paid yet.
    Pending,
    /// Paid: the acquirer's retrieval reference number.
    Paid {
        /// The RRN, printed on the struk as the payment's reference.
        rrn: String,
    },
    /// Not paid in time.
    Expired,
    /// Refused (the customer's bank declined, say).
    Failed {
        /// Why, as the acquirer says it.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A charge as the acquirer made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCharge {
    /// The acquirer's id.
    pub charge_id: String,
    /// The QRIS payload to show (EMVCo TLV).
    pub qr_string: String,
    /// The amount.
    pub amount: i64,
    /// When it stops being payable (ms).
    pub expires_at_ms: i64,
}

/// Why the acquirer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquirerError {
    /// Unreachable, or it answered with an error.
    #[error("the QRIS acquirer failed: {0}")]
    Http(String),
    /// It answered something this till cannot read.
    #[error("the QRIS acquirer answered something unreadable: {0}")]
    Answer(String),
}

impl From<AcquirerError> for NodeError {
    fn from(e: AcquirerError) -> NodeError {
        NodeError::Upstream(e.to_string())
    }
}

/// An acquirer (PJP) that makes dynamic QRIS charges.
pub trait Acquirer: Send + Sync {
    /// A QR for `amount`, for the sale `reference` (its client id).
    fn create(
        &self,
        reference: &str,
        amount: i64,
        callback_url: Option<&str>,
    ) -> Result<NewCharge, AcquirerError>;
    /// What became of a charge.
    fn status(&self, charge_id: &str) -> Result<ChargeState, AcquirerError>;
}

/// An acquirer over HTTP (the shape in the module docs), with short timeouts: a till
/// without internet learns it in seconds, not minutes.
pub struct HttpAcquirer {
    config: QrisConfig,
    agent: ureq::Agent,
}

impl HttpAcquirer {
    /// An acquirer at `config.url`.
    pub fn new(config: QrisConfig) -> HttpAcquirer {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpAcquirer { config, agent }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.url.trim_end_matches('/'))
    }
}

#[derive(Deserialize)]
struct StatusAnswer {
    status: String,
    #[serde(default)]
    rrn: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

impl StatusAnswer {
    fn state(self) -> Result<ChargeState, AcquirerError> {
        Ok(match self.status.as_str() {
            "pending" => ChargeState::Pending,
            "paid" => ChargeState::Paid {
                rrn: self
                    .rrn
                    .filter(|r| kasir_crdt::pricing::valid_reference(r))
                    .ok_or_else(|| AcquirerError::Answer("paid without a valid RRN".into()))?,
            },
            "expired" => ChargeState::Expired,
            "failed" => ChargeState::Failed {
                reason: self.reason,
            },
            other => return Err(AcquirerError::Answer(format!("unknown status {other:?}"))),
        })
    }
}

impl Acquirer for HttpAcquirer {
    fn create(
        &self,
        reference: &str,
        amount: i64,
        callback_url: Option<&str>,
    ) -> Result<NewCharge, AcquirerError> {
        let body = serde_json::json!({
            "reference": reference,
            "amount": amount,
            "expiry_seconds": EXPIRY.as_secs(),
            "callback_url": callback_url,
        });
        let mut answer = self
            .agent
            .post(&self.url("/v1/charges"))
            .header("Authorization", &format!("Bearer {}", self.config.key))
            .send_json(&body)
            .map_err(|e| AcquirerError::Http(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(AcquirerError::Http(format!("HTTP {}", answer.status())));
        }
        let charge: NewCharge = answer
            .body_mut()
            .read_json()
            .map_err(|e| AcquirerError::Answer(e.to_string()))?;
        if charge.amount != amount || charge.charge_id.is_empty() || charge.charge_id.len() > 64 {
            return Err(AcquirerError::Answer(format!(
                "a charge of {} for {amount}",
                charge.amount
            )));
        }
        Ok(charge)
    }

    fn status(&self, charge_id: &str) -> Result<ChargeState, AcquirerError> {
        let mut answer = self
            .agent
            .get(&self.url(&format!("/v1/charges/{charge_id}")))
            .header("Authorization", &format!("Bearer {}", self.config.key))
            .call()
            .map_err(|e| AcquirerError::Http(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(AcquirerError::Http(format!("HTTP {}", answer.status())));
        }
        answer
            .body_mut()
            .read_json::<StatusAnswer>()
            .map_err(|e| AcquirerError::Answer(e.to_string()))?
            .state()
    }
}

/// The signature header of a callback: `sha256=` and the HMAC-SHA256 of `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    )
}

/// Whether `signature` is the callback `body`'s (compared in constant time).
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A callback's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Callback {
    /// The charge.
    pub charge_id: String,
    /// `paid`, `expired`, `failed`.
    pub status: String,
    /// The RRN when paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    /// Why, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Callback {
    /// What the callback says of the charge.
    pub fn state(self) -> Result<ChargeState, AcquirerError> {
        StatusAnswer {
            status: self.status,
            rrn: self.rrn,
            reason: self.reason,
        }
        .state()
    }
}

/// Runs `f` on the node on the blocking pool (the acquirer is asked between such steps,
/// never while the node is held).
async fn on_node<T: Send + 'static>(
    node: &SharedNode,
    f: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || f(&mut *node.lock()?))
        .await
        .map_err(|_| NodeError::Poisoned)?
}

async fn off_node<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| NodeError::Poisoned)?
}

/// Makes the charge for `req` rung up by `principal` (its approvals checked as a sale's),
/// or finds the one its client id already has (a second tap, a retry): `(charge, made
/// now)`. The acquirer is asked with the node free; when it cannot be reached from here
/// and `lan` is the till's peer endpoint, through a peer ([`reach`]).
pub async fn create_charge(
    node: &SharedNode,
    lan: Option<&Endpoint>,
    principal: Principal,
    req: SaleRequest,
) -> Result<(QrisCharge, bool), NodeError> {
    let (config, prepared) = on_node(node, move |n| {
        let config = QrisConfig::load(n.dir())?.ok_or_else(|| {
            NodeError::Conflict(format!(
                "no QRIS acquirer configured: put {QRIS_FILE} in the data directory"
            ))
        })?;
        if let Some(existing) = req
            .client_id
            .as_deref()
            .map(|c| n.qris_by_client(c))
            .transpose()?
            .flatten()
            .filter(|c| !matches!(c.status.as_str(), "expired" | "failed"))
        {
            return Ok((config, Err(existing)));
        }
        let needs = n.sale_needs(&req)?;
        let approved_by = n.authorize_all(&principal, &needs, req.approval.as_ref())?;
        let user = principal
            .user_ref()
            .map(|(id, name)| (id.to_owned(), name.to_owned()));
        Ok((config, Ok(n.qris_prepare(&req, user, approved_by)?)))
    })
    .await?;
    let prepared = match prepared {
        Ok(p) => p,
        Err(existing) => return Ok((existing, false)),
    };
    let call = AcquirerCall::Create {
        reference: prepared.request.client_id.clone().unwrap_or_default(),
        amount: prepared.amount,
        callback_url: config.callback_url.clone(),
    };
    let (answer, via) = reach(node, lan, config, call, None).await?;
    let charge = answer.into_charge(prepared.amount)?;
    let kept = on_node(node, move |n| n.qris_keep(&prepared, &charge, via)).await?;
    Ok((kept, true))
}

/// The charge, after asking the acquirer when it is still pending (a paid one records
/// its sale here if no callback did). An acquirer out of reach, from here and through
/// every peer, leaves it pending.
pub async fn refresh_charge(
    node: &SharedNode,
    lan: Option<&Endpoint>,
    charge_id: String,
) -> Result<QrisCharge, NodeError> {
    let id = charge_id.clone();
    let (charge, config) = on_node(node, move |n| {
        Ok((n.qris_charge(&id)?, QrisConfig::load(n.dir())?))
    })
    .await?;
    let Some(config) = config.filter(|_| charge.status == "pending") else {
        return Ok(charge);
    };
    let call = AcquirerCall::Status {
        charge_id: charge_id.clone(),
    };
    let first = charge
        .via
        .as_deref()
        .and_then(|v| v.parse::<DeviceId>().ok());
    let now = match reach(node, lan, config, call, first).await {
        Ok((answer, _)) => answer.into_state().map_err(NodeError::from),
        Err(e) => Err(e),
    };
    match now {
        Ok(now) => on_node(node, move |n| n.qris_settle(&charge_id, now)).await,
        Err(e) => {
            tracing::info!(charge_id, error = %e, "QRIS status not known yet");
            Ok(charge)
        }
    }
}

/// Puts `call` to the acquirer of `config` from this machine (blocking), answered in the
/// words of [`kasir_sync::acquirer`]: a till asking for itself and a till asking for a
/// peer read one shape.
pub fn call_acquirer(config: QrisConfig, call: AcquirerCall) -> ProxyAnswer {
    let acquirer = HttpAcquirer::new(config);
    let refused = |e: AcquirerError| match e {
        AcquirerError::Http(e) => ProxyAnswer::Unreachable(e),
        other => ProxyAnswer::Refused(other.to_string()),
    };
    match call {
        AcquirerCall::Create {
            reference,
            amount,
            callback_url,
        } => match acquirer.create(&reference, amount, callback_url.as_deref()) {
            Ok(c) => ProxyAnswer::Created {
                charge_id: c.charge_id,
                qr_string: c.qr_string,
                amount: c.amount,
                expires_at_ms: c.expires_at_ms,
            },
            Err(e) => refused(e),
        },
        AcquirerCall::Status { charge_id } => match acquirer.status(&charge_id) {
            Ok(state) => state.into_answer(),
            Err(e) => refused(e),
        },
    }
}

/// Asks the acquirer from here; when it cannot be reached (no internet), asks the
/// store's other tills on the LAN in turn (`first`, the peer a charge was made through,
/// before the others), until one reaches it. `(answer, the peer it came through)`.
async fn reach(
    node: &SharedNode,
    lan: Option<&Endpoint>,
    config: QrisConfig,
    call: AcquirerCall,
    first: Option<DeviceId>,
) -> Result<(ProxyAnswer, Option<DeviceId>), NodeError> {
    let direct = {
        let call = call.clone();
        off_node(move || Ok(call_acquirer(config, call))).await?
    };
    let mut last = match direct {
        ProxyAnswer::Unreachable(e) => e,
        answer => return Ok((answer, None)),
    };
    let Some(endpoint) = lan else {
        return Err(AcquirerError::Http(last).into());
    };
    let (store, peers) = on_node(node, move |n| {
        Ok((*n.store_id().0.as_bytes(), n.qris_peers(first)))
    })
    .await?;
    let request = ProxyRequest { store, call };
    for (peer, addrs) in peers {
        match acquirer::ask_peer(endpoint, peer, &addrs, &request).await {
            Ok(ProxyAnswer::Unreachable(e) | ProxyAnswer::Refused(e)) => {
                last = format!("through {peer}: {e}");
            }
            Ok(answer) => {
                tracing::info!(%peer, "reached the QRIS acquirer through a peer");
                return Ok((answer, Some(peer)));
            }
            Err(e) => last = format!("through {peer}: {e}"),
        }
    }
    Err(AcquirerError::Http(format!(
        "no internet on this till and no till on the LAN reached the acquirer ({last})"
    ))
    .into())
}

/// Answers a peer's question for the acquirer (`kasir/qris/1`; the peer's membership is
/// checked before): with this till's own configuration, for this till's store only.
pub async fn answer_peer(node: &SharedNode, peer: DeviceId, req: ProxyRequest) -> ProxyAnswer {
    let config = on_node(node, move |n| {
        if req.store != *n.store_id().0.as_bytes() {
            return Err(NodeError::Invalid("a question for another store".into()));
        }
        QrisConfig::load(n.dir())?
            .ok_or_else(|| NodeError::Conflict("this till has no QRIS acquirer configured".into()))
    })
    .await;
    let config = match config {
        Ok(c) => c,
        Err(e) => return ProxyAnswer::Refused(e.to_string()),
    };
    tracing::info!(%peer, "asking the QRIS acquirer for a peer");
    off_node(move || Ok(call_acquirer(config, req.call)))
        .await
        .unwrap_or_else(|e| ProxyAnswer::Unreachable(e.to_string()))
}

/// Reading what the acquirer said, wherever it came from.
trait AcquirerAnswer {
    fn into_charge(self, amount: i64) -> Result<NewCharge, AcquirerError>;
    fn into_state(self) -> Result<ChargeState, AcquirerError>;
}

impl AcquirerAnswer for ProxyAnswer {
    /// The charge made for `amount`, checked as [`HttpAcquirer::create`] checks it.
    fn into_charge(self, amount: i64) -> Result<NewCharge, AcquirerError> {
        match self {
            ProxyAnswer::Created {
                charge_id,
                qr_string,
                amount: made,
                expires_at_ms,
            } if made == amount && !charge_id.is_empty() && charge_id.len() <= 64 => {
                Ok(NewCharge {
                    charge_id,
                    qr_string,
                    amount,
                    expires_at_ms,
                })
            }
            ProxyAnswer::Unreachable(e) => Err(AcquirerError::Http(e)),
            other => Err(AcquirerError::Answer(format!(
                "not a charge of {amount}: {other:?}"
            ))),
        }
    }

    /// The charge's state, checked as the acquirer's own answer is (a paid one has a
    /// valid RRN).
    fn into_state(self) -> Result<ChargeState, AcquirerError> {
        match self {
            ProxyAnswer::Status {
                status,
                rrn,
                reason,
            } => StatusAnswer {
                status,
                rrn,
                reason,
            }
            .state(),
            ProxyAnswer::Unreachable(e) => Err(AcquirerError::Http(e)),
            other => Err(AcquirerError::Answer(format!("not a status: {other:?}"))),
        }
    }
}

impl ChargeState {
    fn into_answer(self) -> ProxyAnswer {
        let (status, rrn, reason) = match self {
            ChargeState::Pending => ("pending", None, None),
            ChargeState::Paid { rrn } => ("paid", Some(rrn), None),
            ChargeState::Expired => ("expired", None, None),
            ChargeState::Failed { reason } => ("failed", None, reason),
        };
        ProxyAnswer::Status {
            status: status.to_owned(),
            rrn,
            reason,
        }
    }
}

/// A callback from the acquirer: applied when its signature is the shared secret's.
pub async fn callback(
    node: &SharedNode,
    body: Vec<u8>,
    signature: String,
) -> Result<QrisCharge, NodeError> {
    let config = on_node(node, |n| QrisConfig::load(n.dir())).await?;
    if !config.is_some_and(|c| verify(&c.callback_secret, &body, &signature)) {
        return Err(NodeError::Unauthenticated(
            "a QRIS callback without a valid signature".into(),
        ));
    }
    let callback: Callback = serde_json::from_slice(&body)
        .map_err(|e| NodeError::Invalid(format!("malformed QRIS callback: {e}")))?;
    let charge_id = callback.charge_id.clone();
    let now = callback.state()?;
    on_node(node, move |n| n.qris_settle(&charge_id, now)).await
}

/// A charge as this till keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrisCharge {
    /// The acquirer's id.
    pub charge_id: String,
    /// The sale's client id.
    pub client_id: String,
    /// The amount.
    pub amount: i64,
    /// The QRIS payload to show.
    pub qr_string: String,
    /// `pending`, `paid`, `expired`, `failed`, or `paid_unrecorded` (paid, but the sale
    /// could not be recorded: see `error`; for the supervisor, never silently dropped).
    pub status: String,
    /// The RRN once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrn: Option<String>,
    /// The sale once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    /// The receipt number once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_no: Option<String>,
    /// Why it failed, or why its sale could not be recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it stops being payable (ms).
    pub expires_at_ms: i64,
    /// The till on the LAN the acquirer was reached through, when this one had no
    /// internet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// A sale request made ready for a QRIS charge: its lines at fixed prices, and what the
/// QR must collect (the total less what was already paid).
#[derive(Debug, Clone)]
pub struct PreparedCharge {
    /// The request (client id set).
    pub request: SaleRequest,
    /// The amount.
    pub amount: i64,
    /// Who rings it up.
    pub user: Option<(String, String)>,
    /// Who approved what it needed.
    pub approved_by: Option<String>,
}

impl Node {
    /// The store's other tills (not relays, not revoked) with their known addresses, to
    /// ask for the acquirer: `first` ahead, then those with an open session (on the LAN
    /// now), then the rest, each group in id order.
    pub fn qris_peers(&self, first: Option<DeviceId>) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let me = self.device_id();
        let Ok(known) = self.peer_addresses() else {
            return Vec::new();
        };
        let mut peers: Vec<(DeviceId, Vec<SocketAddr>)> = known
            .into_iter()
            .filter(|(id, _)| *id != me)
            .filter(|(id, _)| {
                matches!(self.membership(*id), Membership::Member(role) if role != Role::Relay)
            })
            .map(|(id, addrs)| (id, addrs.iter().filter_map(|a| a.parse().ok()).collect()))
            .filter(|(_, addrs): &(DeviceId, Vec<SocketAddr>)| !addrs.is_empty())
            .collect();
        peers.sort_by_key(|(id, _)| (Some(*id) != first, !self.is_connected(*id), *id));
        peers
    }

    /// Prices `req` for a QRIS charge: fixes each line's unit price and discount, and
    /// the amount the QR collects (the exact rest: a non-cash payment is never rounded).
    pub fn qris_prepare(
        &self,
        req: &SaleRequest,
        user: Option<(String, String)>,
        approved_by: Option<String>,
    ) -> Result<PreparedCharge, NodeError> {
        let priced = self.price(req)?;
        let paid: i64 = req.payments.iter().map(|p| p.amount).sum();
        let amount = priced.tax.gross - paid;
        if amount <= 0 {
            return Err(NodeError::Invalid("nothing is left to pay by QRIS".into()));
        }
        let mut request = req.clone();
        // The lines below carry the cart discount already.
        request.cart_discount = None;
        request.cart_discount_percent = None;
        request.client_id = Some(
            req.client_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        );
        request.items = priced
            .lines
            .iter()
            .map(|l| SaleItem {
                code: l.sku.clone(),
                qty: l.qty,
                discount: l.discount,
                discount_percent: None,
                price: Some(l.unit_price),
                unit: l.unit.as_ref().map(|u| u.name.clone()),
            })
            .collect();
        Ok(PreparedCharge {
            request,
            amount,
            user,
            approved_by,
        })
    }

    /// Keeps a charge the acquirer made for `prepared`.
    pub fn qris_keep(
        &mut self,
        prepared: &PreparedCharge,
        charge: &NewCharge,
        via: Option<DeviceId>,
    ) -> Result<QrisCharge, NodeError> {
        let client_id = prepared.request.client_id.clone().unwrap_or_default();
        let request = serde_json::to_string(&prepared.request)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let now = now_ms();
        self.db.execute(
            "INSERT INTO qris_charges(charge_id, client_id, amount, qr, status, request, user_id,
               user_name, approved_by, created_at_ms, expires_at_ms, updated_at_ms, via)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11)
             ON CONFLICT(client_id) DO UPDATE SET charge_id = excluded.charge_id,
               status = 'pending', rrn = NULL, error = NULL, sale_id = NULL, via = excluded.via,
               amount = excluded.amount, qr = excluded.qr, request = excluded.request,
               expires_at_ms = excluded.expires_at_ms, updated_at_ms = excluded.updated_at_ms
             WHERE qris_charges.status IN ('expired', 'failed')",
            params![
                charge.charge_id,
                client_id,
                prepared.amount,
                charge.qr_string,
                request,
                prepared.user.as_ref().map(|u| u.0.as_str()),
                prepared.user.as_ref().map(|u| u.1.as_str()),
                prepared.approved_by,
                now,
                charge.expires_at_ms,
                via.map(|v| v.to_string())
            ],
        )?;
        self.qris_charge(&charge.charge_id)
    }

    /// A charge the customer can still pay (to print its QR): a conflict once it is
    /// paid, expired or failed.
    pub fn qris_payable(&self, charge_id: &str) -> Result<QrisCharge, NodeError> {
        let charge = self.qris_charge(charge_id)?;
        if charge.status != "pending" {
            return Err(NodeError::Conflict(format!(
                "QRIS {charge_id} is {}: nothing to pay",
                charge.status
            )));
        }
        Ok(charge)
    }

    /// The charge of a sale's client id, if one was made.
    pub fn qris_by_client(&self, client_id: &str) -> Result<Option<QrisCharge>, NodeError> {
        let id: Option<String> = self
            .db
            .query_row(
                "SELECT charge_id FROM qris_charges WHERE client_id = ?1",
                [client_id],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| self.qris_charge(&id)).transpose()
    }

    /// A charge this till made.
    pub fn qris_charge(&self, charge_id: &str) -> Result<QrisCharge, NodeError> {
        self.db
            .query_row(
                "SELECT q.charge_id, q.client_id, q.amount, q.qr, q.status, q.rrn, q.sale_id,
                        q.error, q.expires_at_ms, s.receipt_no, q.via
                   FROM qris_charges q LEFT JOIN sales s ON s.client_id = q.client_id
                  WHERE q.charge_id = ?1",
                [charge_id],
                |r| {
                    Ok(QrisCharge {
                        charge_id: r.get(0)?,
                        client_id: r.get(1)?,
                        amount: r.get(2)?,
                        qr_string: r.get(3)?,
                        status: r.get(4)?,
                        rrn: r.get(5)?,
                        sale_id: r.get(6)?,
                        error: r.get(7)?,
                        expires_at_ms: r.get(8)?,
                        receipt_no: r.get(9)?,
                        via: r.get(10)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| NodeError::NotFound(format!("QRIS charge {charge_id}")))
    }

    /// Applies what the acquirer says of a charge (by poll or callback). Paid: the sale
    /// is recorded once, with the RRN as its QRIS payment's reference; a paid charge
    /// stays paid whatever comes after. Expired or failed: only a pending charge moves.
    pub fn qris_settle(
        &mut self,
        charge_id: &str,
        state: ChargeState,
    ) -> Result<QrisCharge, NodeError> {
        let charge = self.qris_charge(charge_id)?;
        let now = now_ms();
        match state {
            ChargeState::Pending => {}
            ChargeState::Expired | ChargeState::Failed { .. } if charge.status == "pending" => {
                let (status, error) = match state {
                    ChargeState::Failed { reason } => ("failed", reason),
                    _ => ("expired", None),
                };
                self.db.execute(
                    "UPDATE qris_charges SET status = ?2, error = ?3, updated_at_ms = ?4
                      WHERE charge_id = ?1 AND status = 'pending'",
                    params![charge_id, status, error, now],
                )?;
            }
            ChargeState::Expired | ChargeState::Failed { .. } => {}
            ChargeState::Paid { .. } if charge.status == "paid" => {}
            ChargeState::Paid { rrn } => {
                let (request, user_id, user_name, approved_by): (
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ) = self.db.query_row(
                    "SELECT request, user_id, user_name, approved_by FROM qris_charges
                      WHERE charge_id = ?1",
                    [charge_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                let mut req: SaleRequest = serde_json::from_str(&request)
                    .map_err(|e| NodeError::Invalid(format!("a stored QRIS sale: {e}")))?;
                req.payments.push(Payment {
                    method: "qris".into(),
                    amount: charge.amount,
                    reference: Some(rrn.clone()),
                    confirmed_by: None,
                });
                let user = user_id.as_deref().zip(user_name.as_deref());
                match self.record_sale(&req, user, approved_by, true) {
                    Ok(sale) => {
                        self.db.execute(
                            "UPDATE qris_charges SET status = 'paid', rrn = ?2, sale_id = ?3,
                               error = NULL, updated_at_ms = ?4 WHERE charge_id = ?1",
                            params![charge_id, rrn, sale.sale_id, now],
                        )?;
                    }
                    Err(e) => {
                        // The money is taken: never dropped, shown until someone acts.
                        self.db.execute(
                            "UPDATE qris_charges SET status = 'paid_unrecorded', rrn = ?2,
                               error = ?3, updated_at_ms = ?4 WHERE charge_id = ?1",
                            params![charge_id, rrn, e.to_string(), now],
                        )?;
                        tracing::error!(charge_id, error = %e, "a paid QRIS charge's sale was refused");
                    }
                }
            }
        }
        self.qris_charge(charge_id)
    }
}
