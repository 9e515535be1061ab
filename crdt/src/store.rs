//! The store document: profile, device roster, users and invites.

use std::collections::BTreeMap;

use automerge::{ActorId, ObjType, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::doc::{Doc, DocError, GenesisValue, map_fields};
use crate::ids::{DeviceId, DocId, DocKind, StoreId};
use crate::money::CashRounding;
use crate::tax::TaxRule;

const PROFILE: &str = "profile";
const DEVICES: &str = "devices";
const INVITES: &str = "invites";
const USERS: &str = "users";
/// Root register naming the active recognition model (blake3 hex), last writer wins.
const ML_MODEL: &str = "ml_model";

/// What a device may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created the store; everything.
    Owner,
    /// Catalog, prices, stock, voids, enrolment of tills.
    Manager,
    /// Sells.
    Till,
    /// The cloud relay (hub).
    Relay,
}

impl Role {
    /// The name used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Till => "till",
            Role::Relay => "relay",
        }
    }
}

/// What a person at the till may do, lowest first (a role may do everything the roles
/// below it may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Sells and opens a shift.
    Cashier,
    /// Approves voids, refunds, large discounts, reprints, stock adjustments.
    Supervisor,
    /// Runs the store: users, products, prices, devices.
    Manager,
    /// Owns it: everything.
    Owner,
}

impl UserRole {
    /// The name used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Cashier => "cashier",
            UserRole::Supervisor => "supervisor",
            UserRole::Manager => "manager",
            UserRole::Owner => "owner",
        }
    }
}

impl std::str::FromStr for UserRole {
    type Err = String;

    fn from_str(s: &str) -> Result<UserRole, String> {
        match s {
            "cashier" => Ok(UserRole::Cashier),
            "supervisor" => Ok(UserRole::Supervisor),
            "manager" => Ok(UserRole::Manager),
            "owner" => Ok(UserRole::Owner),
            other => Err(format!(
                "unknown role {other:?} (cashier, supervisor, manager or owner)"
            )),
        }
    }
}

/// A person who works at the store's tills. Synced to every till so anyone can log in
/// anywhere; only owner and manager devices may write users (`kasir_sync::trust`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Display name, unique among active users (login by name).
    pub name: String,
    /// What the user may do.
    pub role: UserRole,
    /// The PIN's argon2id hash in PHC format (with its own salt); never the PIN.
    pub pin_hash: String,
    /// A disabled user cannot log in, and their sessions stop working.
    #[serde(default = "yes")]
    pub active: bool,
    /// When the user was added (ms).
    #[serde(default)]
    pub created_at_ms: i64,
    /// Who added the user (a user id, or the device for the first owner).
    #[serde(default)]
    pub created_by: String,
}

fn yes() -> bool {
    true
}

/// The store's profile, printed on receipts and used for tax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreProfile {
    /// Shop name.
    pub name: String,
    /// Address lines.
    #[serde(default)]
    pub address: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// 16-digit NPWP, or the 22-digit NITKU of a branch, printed when the store is PKP
    /// (labelled by its length: [`StoreProfile::tax_id`]).
    #[serde(default)]
    pub npwp: Option<String>,
    /// The regional taxpayer number (NPWPD), printed when the store levies PBJT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npwpd: Option<String>,
    /// The PBJT rate in basis points for ready food and drink (products with tax code
    /// `pbjt`) sold by a store whose own rule is not PBJT, e.g. a minimarket's hot
    /// snacks. 0: such lines bear no PBJT.
    #[serde(default = "pbjt_default")]
    pub pbjt_bp: i64,
    /// The hour (local, 0–6) the business day starts: a café open until 02:00 with a
    /// cut-off of 4 books its night on the day it opened.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub day_cutoff_hour: u8,
    /// Offset of the store's time zone from UTC in minutes (WIB 420, WITA 480, WIT 540).
    #[serde(default = "wib")]
    pub utc_offset_minutes: i32,
    /// The tax rule.
    #[serde(default)]
    pub tax_rule: TaxRule,
    /// Cash rounding.
    #[serde(default)]
    pub cash_rounding: CashRounding,
    /// Extra receipt header line.
    #[serde(default)]
    pub receipt_header: Option<String>,
    /// Receipt footer line.
    #[serde(default)]
    pub receipt_footer: Option<String>,
    /// Product recognition: the cosine score (0 to 1) from which a photo counts as
    /// recognised; `None` is the model's default (0.50). Look-alike products may need more.
    #[serde(default)]
    pub ml_threshold: Option<f32>,
    /// A cashier's line discount above this percent of the line needs a supervisor's
    /// approval (Pawoon and Olsera gate discounts the same way).
    #[serde(default = "discount_approval_default")]
    pub discount_approval_percent: u8,
    /// What the store's scales print in their in-store EAN-13 labels (prefixes 20–29).
    #[serde(default)]
    pub scale_labels: ScaleLabels,
}

/// What the value digits of a store's scale labels are (`2X PPPPP VVVVV C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleLabels {
    /// The weight in grams: the line's quantity.
    #[default]
    Weight,
    /// The price in rupiah: the quantity is the price over the product's unit price.
    Price,
}

impl ScaleLabels {
    /// `weight` or `price`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleLabels::Weight => "weight",
            ScaleLabels::Price => "price",
        }
    }
}

impl std::str::FromStr for ScaleLabels {
    type Err = String;

    fn from_str(s: &str) -> Result<ScaleLabels, String> {
        match s.trim().to_lowercase().as_str() {
            "weight" => Ok(ScaleLabels::Weight),
            "price" => Ok(ScaleLabels::Price),
            other => Err(format!(
                "unknown scale labels {other:?}: use weight or price"
            )),
        }
    }
}

fn wib() -> i32 {
    420
}

fn pbjt_default() -> i64 {
    1000
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn discount_approval_default() -> u8 {
    10
}

impl StoreProfile {
    /// A profile with a name and defaults for everything else (WIB, no tax).
    pub fn named(name: &str) -> StoreProfile {
        StoreProfile {
            name: name.to_owned(),
            address: None,
            phone: None,
            npwp: None,
            npwpd: None,
            pbjt_bp: pbjt_default(),
            day_cutoff_hour: 0,
            utc_offset_minutes: wib(),
            tax_rule: TaxRule::none(),
            cash_rounding: CashRounding::default(),
            receipt_header: None,
            receipt_footer: Some("Terima kasih".to_owned()),
            ml_threshold: None,
            discount_approval_percent: discount_approval_default(),
            scale_labels: ScaleLabels::default(),
        }
    }

    /// The business day an instant belongs to: the local date, less the cut-off hour
    /// (a sale at 01:30 with a cut-off of 4 belongs to the day before).
    pub fn business_date(&self, at_ms: i64) -> crate::ids::BusinessDate {
        let cutoff_ms = i64::from(self.day_cutoff_hour.min(12)) * 3_600_000;
        crate::ids::BusinessDate::at(at_ms.saturating_sub(cutoff_ms), self.utc_offset_minutes)
    }

    /// The seller identity a sale made now carries (and its reprints print).
    pub fn seller(&self) -> crate::records::Seller {
        crate::records::Seller {
            name: self.name.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            npwp: self.npwp.clone(),
            npwpd: self.npwpd.clone(),
        }
    }

    /// `WIB`, `WITA`, `WIT` or `UTC+h`.
    pub fn zone_name(&self) -> String {
        match self.utc_offset_minutes {
            420 => "WIB".into(),
            480 => "WITA".into(),
            540 => "WIT".into(),
            m => format!("UTC{:+}", m / 60),
        }
    }
}

/// A device in the store's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Short code printed on receipts, e.g. `T1`.
    pub till_code: String,
    /// What it may do.
    pub role: Role,
    /// Revoked devices are refused at the connection.
    #[serde(default)]
    pub revoked: bool,
    /// Addresses it was last reached at (`ip:port`), for reconnecting without discovery.
    #[serde(default)]
    pub addrs: Vec<String>,
    /// When it joined (ms).
    #[serde(default)]
    pub joined_at_ms: i64,
    /// For a revoked device: the history its revoker vouched for when revoking it — per
    /// actor of the device (hex), the last sequence number of that actor's changes the
    /// revoker held ([`crate::Doc::device_history`]). Its changes up to these stay
    /// welcome, so a till that joins later (a replacement tablet) still receives its
    /// sales; any later change, whoever holds the device key, is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vouched: BTreeMap<String, u64>,
}

impl Device {
    /// Whether this (revoked) device's change by `actor` with sequence number `seq` is
    /// history its revoker vouched for.
    pub fn vouches_for(&self, actor: &automerge::ActorId, seq: u64) -> bool {
        self.vouched
            .get(&actor.to_hex_string())
            .is_some_and(|&last| seq <= last)
    }
}

/// A one-time invitation to join the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The role the new device gets.
    pub role: Role,
    /// The till code it gets, if fixed by the inviter.
    #[serde(default)]
    pub till_code: Option<String>,
    /// Who made it.
    pub created_by: String,
    /// When (ms).
    pub created_at_ms: i64,
    /// After this (ms) it is refused.
    pub expires_at_ms: i64,
    /// The device that used it, once used.
    #[serde(default)]
    pub used_by: Option<String>,
}

/// The store document.
#[derive(Debug)]
pub struct StoreDoc {
    doc: Doc,
    store: StoreId,
}

impl StoreDoc {
    /// The store document at its deterministic genesis.
    pub fn create(store: StoreId, actor: ActorId) -> Result<StoreDoc, DocError> {
        let fields = [
            ("store_id", GenesisValue::Str(store.to_string())),
            (PROFILE, GenesisValue::Map),
            (DEVICES, GenesisValue::Map),
            (INVITES, GenesisValue::Map),
            (USERS, GenesisValue::Map),
        ];
        let doc = Doc::genesis(DocId::store(store), DocKind::Store, &fields, actor)?;
        Ok(StoreDoc { doc, store })
    }

    /// Wraps a loaded document.
    pub fn from_doc(doc: Doc) -> Result<StoreDoc, DocError> {
        let store = doc
            .root_str("store_id")
            .and_then(|s| s.parse::<StoreId>().ok());
        match store {
            Some(store) if doc.kind() == DocKind::Store && DocId::store(store) == doc.id() => {
                Ok(StoreDoc { doc, store })
            }
            _ => Err(DocError::WrongShape {
                doc: doc.id(),
                expected: "store",
            }),
        }
    }

    /// The store id.
    pub fn store_id(&self) -> StoreId {
        self.store
    }

    /// The underlying document.
    pub fn doc(&mut self) -> &mut Doc {
        &mut self.doc
    }

    /// The underlying document, unwrapped.
    pub fn into_doc(self) -> Doc {
        self.doc
    }

    /// Read-only access to the underlying document.
    pub fn doc_ref(&self) -> &Doc {
        &self.doc
    }

    fn put(
        &mut self,
        map: &'static str,
        key: &str,
        value: impl Serialize,
        at_ms: i64,
    ) -> Result<bool, DocError> {
        match self.put_uncommitted(map, key, value) {
            Ok(changed) => {
                self.doc.commit(at_ms);
                Ok(changed)
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    /// Writes the fields of `value` under `key` in `map`, to be committed by the caller.
    fn put_uncommitted(
        &mut self,
        map: &'static str,
        key: &str,
        value: impl Serialize,
    ) -> Result<bool, DocError> {
        let parent = self.doc.root_map(map)?;
        let fields = match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(DocError::BadRecord {
                    key: key.to_owned(),
                    reason: "not an object".into(),
                });
            }
        };
        self.doc.put_fields(&parent, key, &fields)
    }

    /// Admits a device with an invite in **one** change: its roster entry and the invite
    /// marked used (the trust rules accept an admission only as that pair).
    pub fn admit(
        &mut self,
        id: DeviceId,
        device: &Device,
        invite_hash: &str,
        used: &Invite,
        at_ms: i64,
    ) -> Result<(), DocError> {
        let written = self
            .put_uncommitted(DEVICES, &id.to_string(), device)
            .and_then(|_| self.put_uncommitted(INVITES, invite_hash, used));
        match written {
            Ok(_) => {
                self.doc.commit(at_ms);
                Ok(())
            }
            Err(e) => {
                self.doc.rollback();
                Err(e)
            }
        }
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        map: &'static str,
        key: &str,
    ) -> Result<Option<T>, DocError> {
        self.view().get(map, key)
    }

    /// A read-only view of the document.
    pub fn view(&self) -> StoreView<'_> {
        StoreView { doc: &self.doc }
    }

    /// Sets the profile (fields merge LWW).
    pub fn set_profile(&mut self, profile: &StoreProfile, at_ms: i64) -> Result<bool, DocError> {
        self.put(PROFILE, "main", profile, at_ms)
    }

    /// The profile, if set.
    pub fn profile(&self) -> Result<Option<StoreProfile>, DocError> {
        self.get(PROFILE, "main")
    }

    /// Adds or updates a device in the roster.
    pub fn put_device(
        &mut self,
        id: DeviceId,
        device: &Device,
        at_ms: i64,
    ) -> Result<bool, DocError> {
        self.put(DEVICES, &id.to_string(), device, at_ms)
    }

    /// A device by id.
    pub fn device(&self, id: DeviceId) -> Result<Option<Device>, DocError> {
        self.get(DEVICES, &id.to_string())
    }

    /// The whole roster; entries that do not decode are skipped.
    pub fn devices(&self) -> Vec<(DeviceId, Device)> {
        self.view().devices()
    }

    /// Adds or updates a user, by user id.
    pub fn put_user(&mut self, user_id: &str, user: &User, at_ms: i64) -> Result<bool, DocError> {
        self.put(USERS, user_id, user, at_ms)
    }

    /// A user by id.
    pub fn user(&self, user_id: &str) -> Result<Option<User>, DocError> {
        self.get(USERS, user_id)
    }

    /// Every user (active or not) with their id; entries that do not decode are skipped.
    pub fn users(&self) -> Vec<(String, User)> {
        let Ok(parent) = self.doc.root_map(USERS) else {
            return Vec::new();
        };
        self.doc
            .keys(&parent)
            .filter_map(|k| {
                let user = self.get(USERS, &k).ok()??;
                Some((k, user))
            })
            .collect()
    }

    /// Stores an invite under the hash of its secret.
    pub fn put_invite(
        &mut self,
        secret_hash: &str,
        invite: &Invite,
        at_ms: i64,
    ) -> Result<bool, DocError> {
        self.put(INVITES, secret_hash, invite, at_ms)
    }

    /// An invite by the hash of its secret.
    pub fn invite(&self, secret_hash: &str) -> Result<Option<Invite>, DocError> {
        self.get(INVITES, secret_hash)
    }

    /// Names the store's active recognition model by its blake3 hex hash (a root
    /// register: concurrent writes resolve to one value on every replica). Returns
    /// whether it changed.
    pub fn set_active_model(&mut self, blake3_hex: &str, at_ms: i64) -> Result<bool, DocError> {
        if self.active_model().as_deref() == Some(blake3_hex) {
            return Ok(false);
        }
        let am = self.doc.automerge();
        if let Err(e) =
            automerge::transaction::Transactable::put(am, automerge::ROOT, ML_MODEL, blake3_hex)
        {
            self.doc.rollback();
            return Err(e.into());
        }
        self.doc.commit(at_ms);
        Ok(true)
    }

    /// The active recognition model's blake3 hex hash, if one was named.
    pub fn active_model(&self) -> Option<String> {
        self.doc.root_str(ML_MODEL)
    }
}

/// A read-only view of any store document (the replica's own, or a copy the trust rules
/// replay a merge on).
#[derive(Debug, Clone, Copy)]
pub struct StoreView<'a> {
    doc: &'a Doc,
}

/// What the trust rules compare before and after a change of the store document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSnapshot {
    /// The roster by device id; an entry that does not decode is an `Err` with its text.
    pub devices: BTreeMap<String, Result<Device, String>>,
    /// Invites by the hash of their secret, likewise.
    pub invites: std::collections::BTreeMap<String, Result<Invite, String>>,
    /// Everything else at the root (identity, profile, users, recognition model), as JSON.
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl<'a> StoreView<'a> {
    /// A view of `doc`, which must be a store document.
    pub fn of(doc: &'a Doc) -> StoreView<'a> {
        StoreView { doc }
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        map: &'static str,
        key: &str,
    ) -> Result<Option<T>, DocError> {
        let parent = self.doc.root_map(map)?;
        let am = self.doc.automerge_ref();
        let Some((automerge::Value::Object(ObjType::Map), obj)) = am.get(&parent, key)? else {
            return Ok(None);
        };
        let mut fields = map_fields(am, &obj)?;
        // Nested values are stored as JSON text in LWW fields.
        for value in fields.values_mut() {
            if let serde_json::Value::String(s) = value
                && (s.starts_with('{') || s.starts_with('['))
                && let Ok(parsed) = serde_json::from_str(s)
            {
                *value = parsed;
            }
        }
        serde_json::from_value(serde_json::Value::Object(fields))
            .map(Some)
            .map_err(|e| DocError::BadRecord {
                key: key.to_owned(),
                reason: e.to_string(),
            })
    }

    /// A device by id.
    pub fn device(&self, id: DeviceId) -> Result<Option<Device>, DocError> {
        self.get(DEVICES, &id.to_string())
    }

    /// The whole roster; entries that do not decode are skipped.
    pub fn devices(&self) -> Vec<(DeviceId, Device)> {
        let Ok(parent) = self.doc.root_map(DEVICES) else {
            return Vec::new();
        };
        self.doc
            .keys(&parent)
            .filter_map(|k| {
                let id = k.parse().ok()?;
                let device = self.get(DEVICES, &k).ok()??;
                Some((id, device))
            })
            .collect()
    }

    /// An invite by the hash of its secret.
    pub fn invite(&self, secret_hash: &str) -> Result<Option<Invite>, DocError> {
        self.get(INVITES, secret_hash)
    }

    /// Everything the trust rules compare (see [`StoreSnapshot`]).
    pub fn snapshot(&self) -> Result<StoreSnapshot, DocError> {
        let entries = |map: &'static str| -> Result<Vec<String>, DocError> {
            Ok(self.doc.keys(&self.doc.root_map(map)?).collect())
        };
        let mut devices = std::collections::BTreeMap::new();
        for key in entries(DEVICES)? {
            let device = self
                .get::<Device>(DEVICES, &key)
                .and_then(|d| {
                    d.ok_or_else(|| DocError::BadRecord {
                        key: key.clone(),
                        reason: "not a map".into(),
                    })
                })
                .map_err(|e| e.to_string());
            devices.insert(key, device);
        }
        let mut invites = std::collections::BTreeMap::new();
        for key in entries(INVITES)? {
            let invite = self
                .get::<Invite>(INVITES, &key)
                .and_then(|i| {
                    i.ok_or_else(|| DocError::BadRecord {
                        key: key.clone(),
                        reason: "not a map".into(),
                    })
                })
                .map_err(|e| e.to_string());
            invites.insert(key, invite);
        }
        let mut rest = match self.doc.to_json()? {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        rest.remove(DEVICES);
        rest.remove(INVITES);
        Ok(StoreSnapshot {
            devices,
            invites,
            rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_business_day_starts_at_the_cut_off_hour() {
        // 2026-12-02 01:30 WIB is 2026-12-01 18:30 UTC.
        let at = 1_796_149_800_000;
        let mut p = StoreProfile::named("Warkop Malam");
        assert_eq!(p.business_date(at).as_str(), "2026-12-02");
        p.day_cutoff_hour = 4;
        assert_eq!(
            p.business_date(at).as_str(),
            "2026-12-01",
            "still last night"
        );
        assert_eq!(
            p.business_date(at + 3 * 3_600_000).as_str(),
            "2026-12-02",
            "04:30"
        );
    }
}
