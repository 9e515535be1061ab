//! Who may sync with a store: standing in the roster, invites and tickets, admission.
//!
//! An invite is a one-time secret whose blake3 hash is stored in the store document, so
//! any member that has synced it can admit the newcomer. A ticket carries the store id,
//! the secret and the addresses of members to contact. Admission is decided here, once,
//! by [`plan_admission`]: tills and the relay apply the same plan.

use kasir_crdt::store::{Device, Invite, Role, StoreDoc, StoreView};
use kasir_crdt::{DeviceId, DocError, StoreId};
use serde::{Deserialize, Serialize};

/// How long an invite stays valid.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A device's standing in the store's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// In the roster and not revoked.
    Member(Role),
    /// In the roster but revoked.
    Revoked,
    /// Not in the roster.
    Unknown,
}

impl Membership {
    /// The standing of `device` in a store document's roster.
    pub fn of(store: &StoreView<'_>, device: DeviceId) -> Membership {
        match store.device(device) {
            Ok(Some(Device { revoked: true, .. })) => Membership::Revoked,
            Ok(Some(d)) => Membership::Member(d.role),
            _ => Membership::Unknown,
        }
    }

    /// Whether the device may sync.
    pub fn is_member(&self) -> bool {
        matches!(self, Membership::Member(_))
    }
}

/// What a join ticket carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The store.
    pub store: [u8; 16],
    /// The one-time secret.
    pub secret: [u8; 32],
    /// Members to contact: endpoint id and `ip:port` addresses.
    pub members: Vec<([u8; 32], Vec<String>)>,
}

const TICKET_PREFIX: &str = "kasir1";

/// A string that is not a Kasir join ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a kasir join ticket")]
pub struct TicketError;

impl Ticket {
    /// The printable ticket: `kasir1` + lowercase base32.
    pub fn encode(&self) -> String {
        // A struct of byte arrays and strings always serialises.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        format!(
            "{TICKET_PREFIX}{}",
            data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
        )
    }

    /// Parses a printable ticket.
    pub fn decode(s: &str) -> Result<Ticket, TicketError> {
        let body = s.trim().strip_prefix(TICKET_PREFIX).ok_or(TicketError)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_uppercase().as_bytes())
            .map_err(|_| TicketError)?;
        postcard::from_bytes(&bytes).map_err(|_| TicketError)
    }

    /// The store id.
    pub fn store_id(&self) -> StoreId {
        StoreId(uuid::Uuid::from_bytes(self.store))
    }
}

/// blake3 of an invite or ticket secret, as stored.
pub fn secret_hash(secret: &[u8; 32]) -> String {
    blake3::hash(secret).to_hex().to_string()
}

/// The result of admitting a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The till code the device got.
    pub till_code: String,
    /// Its role.
    pub role: Role,
}

/// Why a device was not admitted, or a membership request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// No invite with this secret in the store document.
    #[error("unknown invite")]
    UnknownInvite,
    /// Another device used the invite.
    #[error("this invite was already used")]
    InviteUsed,
    /// Past its expiry.
    #[error("this invite has expired")]
    InviteExpired,
    /// The device was revoked.
    #[error("this device was revoked")]
    DeviceRevoked,
    /// Another active device holds the till code.
    #[error("till code {0} is already in use")]
    TillCodeTaken(String),
    /// The device that issued the invite is no longer an owner, manager or relay.
    #[error("this invite's issuer was revoked")]
    IssuerGone,
    /// A till code that is not 1 to 8 letters or digits.
    #[error("invalid till code {0:?}: use 1 to 8 letters or digits")]
    InvalidTillCode(String),
    /// A role name that is not `till` or `manager`.
    #[error("unknown role {0:?}: use till or manager")]
    UnknownRole(String),
    /// The store document could not be read or written.
    #[error(transparent)]
    Doc(#[from] DocError),
}

impl AdmissionError {
    /// Whether the request conflicts with the store's state (rather than being malformed).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            AdmissionError::InviteUsed
                | AdmissionError::DeviceRevoked
                | AdmissionError::IssuerGone
                | AdmissionError::TillCodeTaken(_)
        )
    }
}

/// Parses `till` / `manager` (default `till`).
pub fn parse_role(role: Option<&str>) -> Result<Role, AdmissionError> {
    match role.unwrap_or("till") {
        "till" => Ok(Role::Till),
        "manager" => Ok(Role::Manager),
        other => Err(AdmissionError::UnknownRole(other.to_owned())),
    }
}

/// A till code normalised (trimmed, upper case), or an error if it is not 1 to 8 letters
/// or digits.
pub fn validate_till_code(code: &str) -> Result<String, AdmissionError> {
    let code = code.trim().to_uppercase();
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(AdmissionError::InvalidTillCode(code));
    }
    Ok(code)
}

/// What admitting a device with an invite would do, decided against the store
/// document before anything is written. Shared by tills and the relay.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AdmissionPlan {
    /// The device already used this invite: the same answer again, nothing to write.
    Already(Admission),
    /// A new roster entry and the invite marked used.
    New {
        /// The device.
        device: DeviceId,
        /// Its roster entry (boxed: it carries the vouched history of a replaced till).
        entry: Box<Device>,
        /// blake3 of the invite secret.
        invite_hash: String,
        /// The invite, now used by the device.
        used: Invite,
    },
}

impl AdmissionPlan {
    /// Writes the plan into the store document; returns the admission.
    pub fn apply(&self, store: &mut StoreDoc, now: i64) -> Result<Admission, DocError> {
        match self {
            AdmissionPlan::Already(a) => Ok(a.clone()),
            AdmissionPlan::New {
                device,
                entry,
                invite_hash,
                used,
            } => {
                store.admit(*device, entry, invite_hash, used, now)?;
                Ok(Admission {
                    till_code: entry.till_code.clone(),
                    role: entry.role,
                })
            }
        }
    }
}

/// Decides the admission of `device` with the invite `secret` (see [`AdmissionPlan`]):
/// the invite must exist, be unused (or used by this device) and unexpired, the device
/// not revoked, and its till code valid and free. Without a code, the first `T<n>` no
/// device ever had is given, so receipt numbers of a revoked till are never reused.
pub fn plan_admission(
    store: &StoreDoc,
    secret: &[u8; 32],
    device: DeviceId,
    requested_code: Option<String>,
    addrs: Vec<String>,
    now: i64,
) -> Result<AdmissionPlan, AdmissionError> {
    let hash = secret_hash(secret);
    let invite = store.invite(&hash)?.ok_or(AdmissionError::UnknownInvite)?;
    if let Some(used) = &invite.used_by {
        if *used == device.to_string()
            && let Some(d) = store.device(device)?
        {
            return Ok(AdmissionPlan::Already(Admission {
                till_code: d.till_code,
                role: d.role,
            }));
        }
        return Err(AdmissionError::InviteUsed);
    }
    if invite.expires_at_ms < now {
        return Err(AdmissionError::InviteExpired);
    }
    // An invite dies with its issuer's standing: peers refuse an admission it authorises.
    let issuer_ok = invite
        .created_by
        .parse::<DeviceId>()
        .ok()
        .and_then(|issuer| store.device(issuer).ok().flatten())
        .is_some_and(|d| !d.revoked && matches!(d.role, Role::Owner | Role::Manager | Role::Relay));
    if !issuer_ok {
        return Err(AdmissionError::IssuerGone);
    }
    let devices = store.devices();
    if devices.iter().any(|(id, d)| *id == device && d.revoked) {
        return Err(AdmissionError::DeviceRevoked);
    }
    let till_code = match invite.till_code.clone().or(requested_code) {
        Some(code) => {
            let code = validate_till_code(&code)?;
            let taken = devices
                .iter()
                .any(|(id, d)| d.till_code == code && !d.revoked && *id != device);
            if taken {
                return Err(AdmissionError::TillCodeTaken(code));
            }
            code
        }
        None => {
            let used: Vec<&str> = devices.iter().map(|(_, d)| d.till_code.as_str()).collect();
            (1..)
                .map(|n| format!("T{n}"))
                .find(|c| !used.contains(&c.as_str()))
                .unwrap_or_else(|| "T0".into())
        }
    };
    Ok(AdmissionPlan::New {
        device,
        entry: Box::new(Device {
            till_code,
            role: invite.role,
            revoked: false,
            addrs,
            joined_at_ms: now,
            vouched: Default::default(),
        }),
        invite_hash: hash,
        used: Invite {
            used_by: Some(device.to_string()),
            ..invite
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_other_strings_are_refused() {
        let t = Ticket {
            store: [1; 16],
            secret: [2; 32],
            members: vec![([3; 32], vec!["127.0.0.1:7070".into()])],
        };
        assert_eq!(Ticket::decode(&t.encode()), Ok(t.clone()));
        assert_eq!(Ticket::decode(&format!("  {}\n", t.encode())), Ok(t));
        assert_eq!(Ticket::decode("kasir1!!"), Err(TicketError));
        assert_eq!(Ticket::decode("hello"), Err(TicketError));
    }

    #[test]
    fn till_codes_are_normalised_and_checked() {
        assert_eq!(validate_till_code(" t2 ").ok(), Some("T2".into()));
        assert!(validate_till_code("").is_err());
        assert!(validate_till_code("T-1").is_err());
        assert!(validate_till_code("ABCDEFGHI").is_err());
    }
}
