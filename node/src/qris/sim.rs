//! A simulated QRIS acquirer: the HTTP shape of [`super::HttpAcquirer`] on a local
//! socket, for tests and `kasir demo` — a real acquirer (a PJP's sandbox) cannot be
//! reached from the machines this is built on. Charges live in memory; control routes
//! play the customer's bank:
//!
//! - `POST /sim/charges/{id}/pay`, `/fail`, `/expire` with `?callback=true|false`: the
//!   charge changes, and with a callback the till is told (signed) before the control
//!   call answers, so a test knows the callback came first;
//! - `POST /sim/charges/{id}/callback`: the same callback again (a duplicate);
//! - `GET /sim/charges`: every charge, for a test to find one by its reference.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Callback, NewCharge, sign};
use crate::node::now_ms;

/// One simulated charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCharge {
    /// Id.
    pub charge_id: String,
    /// The merchant's reference (the sale's client id).
    pub reference: String,
    /// Amount.
    pub amount: i64,
    /// `pending`, `paid`, `expired`, `failed`.
    pub status: String,
    /// The RRN once paid.
    pub rrn: Option<String>,
    /// Where callbacks go.
    pub callback_url: Option<String>,
    /// Callbacks delivered (a 2xx from the till).
    pub callbacks_delivered: u32,
}

#[derive(Default)]
struct SimState {
    charges: BTreeMap<String, SimCharge>,
    next: u64,
}

#[derive(Clone)]
struct Sim {
    key: Arc<str>,
    secret: Arc<str>,
    state: Arc<Mutex<SimState>>,
}

/// A running simulator; stops when dropped.
pub struct Simulator {
    url: String,
    stop: CancellationToken,
}

impl Simulator {
    /// The base URL (`http://127.0.0.1:PORT`), for `qris.json`'s `url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves a simulator on `listener`, with the merchant's API `key` and the callback
/// `secret`, on the current tokio runtime.
pub fn start(
    listener: tokio::net::TcpListener,
    key: &str,
    secret: &str,
) -> std::io::Result<Simulator> {
    let url = format!("http://{}", listener.local_addr()?);
    let sim = Sim {
        key: key.into(),
        secret: secret.into(),
        state: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/charges", post(create))
        .route("/v1/charges/{id}", get(status))
        .route("/sim/charges", get(list))
        .route("/sim/charges/{id}/{action}", post(control))
        .with_state(sim);
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(until.cancelled_owned())
            .await;
    });
    Ok(Simulator { url, stop })
}

fn authorized(sim: &Sim, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| k == &*sim.key)
}

#[derive(Deserialize)]
struct CreateBody {
    reference: String,
    amount: i64,
    #[serde(default)]
    expiry_seconds: Option<u64>,
    #[serde(default)]
    callback_url: Option<String>,
}

async fn create(
    State(sim): State<Sim>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<CreateBody>,
) -> Response {
    if !authorized(&sim, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if body.amount <= 0 || body.reference.is_empty() || body.reference.len() > 64 {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(mut state) = sim.state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    state.next += 1;
    let charge_id = format!("SIM-{:06}", state.next);
    let expiry = i64::try_from(body.expiry_seconds.unwrap_or(300)).unwrap_or(300);
    state.charges.insert(
        charge_id.clone(),
        SimCharge {
            charge_id: charge_id.clone(),
            reference: body.reference.clone(),
            amount: body.amount,
            status: "pending".into(),
            rrn: None,
            callback_url: body.callback_url,
            callbacks_delivered: 0,
        },
    );
    let charge = NewCharge {
        qr_string: qris_payload("KASIR DEMO", "JAKARTA", body.amount, &body.reference),
        charge_id,
        amount: body.amount,
        expires_at_ms: now_ms() + expiry * 1000,
    };
    (StatusCode::CREATED, axum::Json(charge)).into_response()
}

async fn status(State(sim): State<Sim>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !authorized(&sim, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let charge = sim
        .state
        .lock()
        .ok()
        .and_then(|s| s.charges.get(&id).cloned());
    match charge {
        Some(c) => axum::Json(callback_of(&c)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn list(State(sim): State<Sim>) -> Response {
    let charges: Vec<SimCharge> = sim
        .state
        .lock()
        .map(|s| s.charges.values().cloned().collect())
        .unwrap_or_default();
    axum::Json(charges).into_response()
}

#[derive(Deserialize)]
struct ControlQuery {
    #[serde(default)]
    callback: Option<bool>,
}

fn callback_of(c: &SimCharge) -> Callback {
    Callback {
        charge_id: c.charge_id.clone(),
        status: c.status.clone(),
        rrn: c.rrn.clone(),
        reason: (c.status == "failed").then(|| "declined by the issuer".to_owned()),
    }
}

async fn control(
    State(sim): State<Sim>,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<ControlQuery>,
) -> Response {
    let charge = {
        let Ok(mut state) = sim.state.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let n = state.next;
        let Some(c) = state.charges.get_mut(&id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        match action.as_str() {
            "pay" => {
                c.status = "paid".into();
                c.rrn
                    .get_or_insert_with(|| format!("{:012}", 400_000_000_000 + n));
            }
            "fail" => c.status = "failed".into(),
            "expire" => c.status = "expired".into(),
            "callback" => {}
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
        c.clone()
    };
    let send = action == "callback" || q.callback.unwrap_or(false);
    if send && let Some(url) = charge.callback_url.clone() {
        let body = serde_json::to_vec(&callback_of(&charge)).unwrap_or_default();
        let signature = sign(&sim.secret, &body);
        let delivered = tokio::task::spawn_blocking(move || {
            ureq::post(&url)
                .header("Content-Type", "application/json")
                .header("X-Qris-Signature", &signature)
                .send(&body[..])
                .is_ok_and(|r| r.status().is_success())
        })
        .await
        .unwrap_or(false);
        if delivered
            && let Ok(mut state) = sim.state.lock()
            && let Some(c) = state.charges.get_mut(&id)
        {
            c.callbacks_delivered += 1;
        }
    }
    let charge = sim
        .state
        .lock()
        .ok()
        .and_then(|s| s.charges.get(&id).cloned());
    axum::Json(charge).into_response()
}

/// A dynamic QRIS payload (EMVCo merchant-presented, point of initiation 12) for
/// `amount` with `reference` as the bill number, ending in its CRC-16/CCITT-FALSE.
pub fn qris_payload(merchant: &str, city: &str, amount: i64, reference: &str) -> String {
    fn tlv(tag: &str, value: &str) -> String {
        format!("{tag}{:02}{value}", value.len())
    }
    let reference: String = reference
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(25)
        .collect();
    let merchant_info = tlv("00", "ID.CO.QRIS.WWW") + &tlv("01", "936000000000000001");
    let mut s = String::new();
    s += &tlv("00", "01");
    s += &tlv("01", "12");
    s += &tlv("26", &merchant_info);
    s += &tlv("52", "5411");
    s += &tlv("53", "360");
    s += &tlv("54", &amount.to_string());
    s += &tlv("58", "ID");
    s += &tlv("59", merchant);
    s += &tlv("60", city);
    s += &tlv("62", &tlv("01", &reference));
    s += "6304";
    let crc = crc16_ccitt(s.as_bytes());
    format!("{s}{crc:04X}")
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as QRIS checks it.
fn crc16_ccitt(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for b in bytes {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc16_ccitt(b"123456789"), 0x29B1);
        let p = qris_payload("WARUNG", "DEPOK", 27_030, "0197-abc");
        assert!(p.starts_with("000201010212"));
        assert!(p.contains("540527030"));
        let (body, crc) = p.split_at(p.len() - 4);
        assert_eq!(format!("{:04X}", crc16_ccitt(body.as_bytes())), crc);
    }
}
