//! Money and quantities: integer rupiah and fixed-point quantities.
//!
//! No floats anywhere near money. A [`Qty`] is thousandths of a unit so weighed goods
//! (0.25 kg of chillies) work with exact arithmetic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in whole rupiah. Rupiah has no minor unit in practice.
pub type Rupiah = i64;

/// A quantity in thousandths of a unit (`1500` is 1.5).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Qty(pub i64);

/// A quantity string that is not a number with at most three decimals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: expected a number with at most 3 decimals")]
pub struct ParseQtyError {
    input: String,
}

impl Qty {
    /// Thousandths in one unit.
    pub const SCALE: i64 = 1000;
    /// Zero.
    pub const ZERO: Qty = Qty(0);

    /// A whole number of units.
    pub const fn units(n: i64) -> Qty {
        Qty(n * Self::SCALE)
    }

    /// The raw thousandths.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// This quantity as a float, for JSON output only (never for arithmetic).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// From a JSON number: at most three decimals, finite, within range.
    pub fn from_f64(value: f64) -> Result<Qty, ParseQtyError> {
        let err = || ParseQtyError {
            input: value.to_string(),
        };
        if !value.is_finite() || value.abs() > 1e12 {
            return Err(err());
        }
        let milli = (value * Self::SCALE as f64).round();
        if ((milli / Self::SCALE as f64) - value).abs() > 1e-9 {
            return Err(err());
        }
        Ok(Qty(milli as i64))
    }

    /// `price × qty`, rounded half away from zero to whole rupiah.
    pub fn times_price(self, unit_price: Rupiah) -> Rupiah {
        let product = i128::from(unit_price) * i128::from(self.0);
        round_div(product, i128::from(Self::SCALE)) as Rupiah
    }

    /// The negated quantity.
    pub const fn neg(self) -> Qty {
        Qty(-self.0)
    }
}

/// Serde for a [`Qty`] as a JSON number of units (`1.5`), as the HTTP API and the CLI's
/// JSON speak it: `#[serde(with = "kasir_crdt::money::qty_units")]`. Documents store
/// thousandths instead (the derived `Serialize`).
pub mod qty_units {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Qty;

    /// Writes the quantity in units.
    pub fn serialize<S: Serializer>(q: &Qty, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(q.as_f64())
    }

    /// Reads a number of units with at most three decimals.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Qty, D::Error> {
        let n = f64::deserialize(d)?;
        Qty::from_f64(n).map_err(serde::de::Error::custom)
    }

    /// The same for an optional quantity (`null` or absent is `None`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::Qty;

        /// Writes the quantity in units, or `null`.
        pub fn serialize<S: Serializer>(q: &Option<Qty>, s: S) -> Result<S::Ok, S::Error> {
            match q {
                Some(q) => s.serialize_some(&q.as_f64()),
                None => s.serialize_none(),
            }
        }

        /// Reads an optional number of units.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Qty>, D::Error> {
            Option::<f64>::deserialize(d)?
                .map(Qty::from_f64)
                .transpose()
                .map_err(serde::de::Error::custom)
        }
    }
}

/// `num / den` rounded half away from zero; `den` must be positive.
pub(crate) fn round_div(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    if num >= 0 {
        (num + den / 2) / den
    } else {
        -((-num + den / 2) / den)
    }
}

impl FromStr for Qty {
    type Err = ParseQtyError;

    fn from_str(s: &str) -> Result<Qty, ParseQtyError> {
        let err = || ParseQtyError {
            input: s.to_owned(),
        };
        let t = s.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (int_part, frac_part) = match digits.split_once(['.', ',']) {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty()
            || frac_part.len() > 3
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || int_part.len() > 12
        {
            return Err(err());
        }
        let whole: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut frac: i64 = if frac_part.is_empty() {
            0
        } else {
            frac_part.parse().map_err(|_| err())?
        };
        for _ in frac_part.len()..3 {
            frac *= 10;
        }
        let milli = whole * Self::SCALE + frac;
        Ok(Qty(if neg { -milli } else { milli }))
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{sign}{whole},{}", frac.trim_end_matches('0'))
        }
    }
}

/// Formats rupiah the Indonesian way: `Rp12.500`, `-Rp1.000`.
///
/// ```
/// assert_eq!(kasir_crdt::money::format_rupiah(12_500), "Rp12.500");
/// assert_eq!(kasir_crdt::money::format_rupiah(-1_000), "-Rp1.000");
/// ```
pub fn format_rupiah(amount: Rupiah) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}Rp{}", group_thousands(amount.unsigned_abs()))
}

/// Groups digits with `.` as the thousands separator: `1.234.567`. Negative numbers keep a `-`.
pub fn format_number(amount: Rupiah) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    format!("{sign}{}", group_thousands(amount.unsigned_abs()))
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

/// How a cash total is rounded to the smallest coin in circulation (pembulatan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CashRounding {
    /// The unit to round to in rupiah; 0 or 1 means no rounding.
    pub unit: Rupiah,
    /// Round down (in the customer's favour) instead of to the nearest unit.
    pub down: bool,
}

impl CashRounding {
    /// The adjustment to add to `total` (negative or positive).
    pub fn adjustment(self, total: Rupiah) -> Rupiah {
        if self.unit <= 1 {
            return 0;
        }
        let rem = total.rem_euclid(self.unit);
        if rem == 0 {
            0
        } else if self.down || rem * 2 < self.unit {
            -rem
        } else {
            self.unit - rem
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qty_parses_and_prints() {
        assert_eq!("2".parse::<Qty>(), Ok(Qty(2000)));
        assert_eq!("0.25".parse::<Qty>(), Ok(Qty(250)));
        assert_eq!("1,5".parse::<Qty>(), Ok(Qty(1500)));
        assert_eq!("-3".parse::<Qty>(), Ok(Qty(-3000)));
        assert!("1.2345".parse::<Qty>().is_err());
        assert!("abc".parse::<Qty>().is_err());
        assert!("".parse::<Qty>().is_err());
        assert!("1e3".parse::<Qty>().is_err());
        assert_eq!(Qty(1500).to_string(), "1,5");
        assert_eq!(Qty(-2000).to_string(), "-2");
        assert_eq!(Qty::from_f64(0.25), Ok(Qty(250)));
        assert!(Qty::from_f64(0.0001).is_err());
        assert!(Qty::from_f64(f64::NAN).is_err());
    }

    #[test]
    fn price_times_weighed_qty_rounds_half_up() {
        assert_eq!(Qty(250).times_price(30_000), 7_500);
        assert_eq!(Qty(333).times_price(1_000), 333);
        assert_eq!(Qty(1500).times_price(3), 5); // 4.5 rounds up
    }

    #[test]
    fn rupiah_formatting() {
        assert_eq!(format_rupiah(0), "Rp0");
        assert_eq!(format_rupiah(1_234_567), "Rp1.234.567");
        assert_eq!(format_number(-15_000), "-15.000");
    }

    #[test]
    fn cash_rounding() {
        let nearest = CashRounding {
            unit: 100,
            down: false,
        };
        assert_eq!(nearest.adjustment(12_450), 50);
        assert_eq!(nearest.adjustment(12_449), -49);
        let down = CashRounding {
            unit: 500,
            down: true,
        };
        assert_eq!(down.adjustment(12_900), -400);
        assert_eq!(CashRounding::default().adjustment(12_345), 0);
    }
}
