//! Identifiers: stores, devices and derived document ids.
//!
//! Document ids are derived, not random, wherever they can be: every replica computes
//! the same id for "the ledger of till T on day D of store S" without coordination.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Not 64 lowercase hex characters.
    #[error("invalid {what} {input:?}: expected 64 hex characters")]
    BadHex {
        /// Which kind of id.
        what: &'static str,
        /// The rejected input.
        input: String,
    },
    /// Not a UUID.
    #[error("invalid store id {0:?}")]
    BadStoreId(String),
    /// Not a `YYYY-MM-DD` date.
    #[error("invalid business date {0:?}: expected YYYY-MM-DD")]
    BadDate(String),
}

/// A store: one shop (outlet) with its tills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreId(pub uuid::Uuid);

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for StoreId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<StoreId, IdError> {
        uuid::Uuid::parse_str(s)
            .map(StoreId)
            .map_err(|_| IdError::BadStoreId(s.to_owned()))
    }
}

fn parse_hex32(what: &'static str, s: &str) -> Result<[u8; 32], IdError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdError::BadHex {
        what,
        input: s.chars().take(80).collect(),
    })?;
    Ok(out)
}

/// A device: its ed25519 public key, which is also its iroh endpoint id (lowercase hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 32]);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", &hex::encode(self.0)[..10])
    }
}

impl FromStr for DeviceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<DeviceId, IdError> {
        parse_hex32("endpoint id", s).map(DeviceId)
    }
}

/// The three kinds of document a store is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// Profile, device roster, users, invites: one per store.
    Store,
    /// Products: one per store.
    Catalog,
    /// One till's records for one business day.
    Ledger,
}

impl DocKind {
    /// The name used in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Store => "store",
            DocKind::Catalog => "catalog",
            DocKind::Ledger => "ledger",
        }
    }
}

impl FromStr for DocKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<DocKind, IdError> {
        match s {
            "store" => Ok(DocKind::Store),
            "catalog" => Ok(DocKind::Catalog),
            "ledger" => Ok(DocKind::Ledger),
            other => Err(IdError::BadHex {
                what: "document kind",
                input: other.to_owned(),
            }),
        }
    }
}

/// A business day, `YYYY-MM-DD` in the store's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessDate(String);

impl BusinessDate {
    /// The date as `YYYY-MM-DD`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The calendar date of the instant `at_ms` (ms since the Unix epoch) in a zone
    /// `offset_minutes` east of UTC: the business day a sale at that instant belongs to.
    /// Instants outside the years 0000–9999 are clamped to them.
    pub fn at(at_ms: i64, offset_minutes: i32) -> BusinessDate {
        let local_ms = at_ms.saturating_add(i64::from(offset_minutes) * 60_000);
        // Days since 1970-01-01, then the civil date (Howard Hinnant's days_from_civil,
        // inverted), valid for the proleptic Gregorian calendar.
        let days = local_ms.div_euclid(86_400_000).clamp(-719_468, 2_932_896);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        BusinessDate(format!("{year:04}-{month:02}-{day:02}"))
    }

    /// `yyMMdd`, as used in receipt numbers.
    pub fn compact(&self) -> String {
        let s = &self.0;
        format!("{}{}{}", &s[2..4], &s[5..7], &s[8..10])
    }
}

impl FromStr for BusinessDate {
    type Err = IdError;
    fn from_str(s: &str) -> Result<BusinessDate, IdError> {
        let b = s.as_bytes();
        let ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
            && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0));
        if ok {
            Ok(BusinessDate(s.to_owned()))
        } else {
            Err(IdError::BadDate(s.chars().take(40).collect()))
        }
    }
}

impl TryFrom<String> for BusinessDate {
    type Error = IdError;
    fn try_from(s: String) -> Result<BusinessDate, IdError> {
        s.parse()
    }
}

impl From<BusinessDate> for String {
    fn from(d: BusinessDate) -> String {
        d.0
    }
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document id: blake3 over the store id, the kind and (for ledgers) till and date.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub [u8; 32]);

impl DocId {
    fn derive(parts: &[&[u8]]) -> DocId {
        let mut h = blake3::Hasher::new_derive_key("kasir document id v1");
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        DocId(*h.finalize().as_bytes())
    }

    /// The store document of `store`.
    pub fn store(store: StoreId) -> DocId {
        DocId::derive(&[store.0.as_bytes(), b"store"])
    }

    /// The catalog document of `store`.
    pub fn catalog(store: StoreId) -> DocId {
        DocId::derive(&[store.0.as_bytes(), b"catalog"])
    }

    /// The ledger of `till` on `date`.
    pub fn ledger(store: StoreId, till: DeviceId, date: &BusinessDate) -> DocId {
        DocId::derive(&[store.0.as_bytes(), b"ledger", &till.0, date.0.as_bytes()])
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", &hex::encode(self.0)[..10])
    }
}

impl FromStr for DocId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<DocId, IdError> {
        parse_hex32("document id", s).map(DocId)
    }
}

/// The product id of a SKU in a store.
///
/// Derived, so two tills that add the same SKU while offline write to the same product
/// and its fields merge last-writer-wins instead of producing two products with one SKU.
pub fn product_id(store: StoreId, sku: &str) -> String {
    let mut h = blake3::Hasher::new_derive_key("kasir product id v1");
    h.update(store.0.as_bytes());
    h.update(sku.as_bytes());
    let bytes = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes.as_bytes()[..16]);
    uuid::Uuid::from_bytes(id).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_dates_follow_the_zone_and_the_calendar() {
        let day = |ms, offset| BusinessDate::at(ms, offset).to_string();
        assert_eq!(day(0, 0), "1970-01-01");
        // 2026-12-01 16:59:59.999 UTC is still the 1st in WIB (UTC+7) until 17:00.
        let t = 1_764_608_399_999;
        assert_eq!(day(t, 0), "2025-12-01");
        assert_eq!(day(1_796_144_399_999, 420), "2026-12-01");
        assert_eq!(day(1_796_144_400_000, 420), "2026-12-02");
        assert_eq!(day(951_782_400_000, 0), "2000-02-29");
        assert_eq!(day(-1, 0), "1969-12-31");
        assert_eq!(day(i64::MAX, 0), "9999-12-31");
        assert_eq!(day(i64::MIN, 0), "0000-03-01");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let store = StoreId(uuid::Uuid::from_u128(7));
        let till = DeviceId([1; 32]);
        let day: BusinessDate = "2026-11-23".parse().expect("valid date");
        assert_eq!(
            DocId::ledger(store, till, &day),
            DocId::ledger(store, till, &day)
        );
        assert_ne!(DocId::store(store), DocId::catalog(store));
        let other: BusinessDate = "2026-11-24".parse().expect("valid date");
        assert_ne!(
            DocId::ledger(store, till, &day),
            DocId::ledger(store, till, &other)
        );
        assert_eq!(product_id(store, "A1"), product_id(store, "A1"));
        assert_ne!(product_id(store, "A1"), product_id(store, "A2"));
    }

    #[test]
    fn bad_ids_are_errors() {
        assert!("zz".parse::<DocId>().is_err());
        assert!("2026-13-01".parse::<BusinessDate>().is_err());
        assert!("2026-1-01".parse::<BusinessDate>().is_err());
        assert!("not-a-uuid".parse::<StoreId>().is_err());
        assert_eq!(
            "2026-11-23".parse::<BusinessDate>().map(|d| d.compact()),
            Ok("261123".into())
        );
    }
}
