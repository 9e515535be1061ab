//! Money and quantities: integer rupiah and fixed-point quantities.
//!
//! No floats anywhere near money. A [`Qty`] is thousandths of a unit so weighed goods
//! (0.25 kg of chillies) work with exact arithmetic.
//!
//! # Numbers as people type them
//!
//! One rule reads rupiah ([`parse_rupiah`]) and quantities ([`Qty`]'s `FromStr`) in
//! imports, on the CLI and in the till app, whichever of `.` and `,` a spreadsheet or a
//! cashier uses:
//!
//! - Both marks present (`1.250.000,50`, `1,250,000.50`): the last one is the decimal
//!   mark, the other groups thousands.
//! - One mark, more than once (`1.250.000`, `1,250,000`): thousands.
//! - One mark, once, with exactly three digits after it (`1.500`, `25,000`): thousands
//!   for rupiah, which has no sen. For a quantity it is ambiguous (1,5 or 1.500?) and
//!   refused, unless the whole part is 0 (`0.250` is a quarter): write `1,5` or `1500`.
//! - One mark, once, with one or two digits after it (`12,5`, `12.50`): the decimal mark.
//!   A quantity has at most three decimals; a rupiah amount's must be zero
//!   (`12.500,00`), since an amount in sen is a typo, not a price.
//! - Thousands groups are three digits after a first group of one to three; anything
//!   else (`1.50.000`) is refused rather than guessed.

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

/// A quantity string that is not a number with at most three decimals, or that reads
/// two ways (`1.500`: see the module's rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {input:?}: {}", if *.ambiguous {
    "one mark before three digits reads as 1,5 or as 1500; write 1,5 or 1500"
} else {
    "expected a number with at most 3 decimals"
})]
pub struct ParseQtyError {
    input: String,
    ambiguous: bool,
}

impl ParseQtyError {
    fn ambiguous(self) -> ParseQtyError {
        ParseQtyError {
            ambiguous: true,
            ..self
        }
    }
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
            ambiguous: false,
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

/// A rupiah amount or quantity that does not read under the module's rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} {why}")]
pub struct ParseNumberError {
    input: String,
    why: &'static str,
}

/// A number split by the module's rule: sign, whole digits, decimal digits, and whether
/// it was one mark once before exactly three digits (thousands or decimals?).
struct Scanned<'a> {
    negative: bool,
    whole: String,
    fraction: &'a str,
    three_after_one: bool,
}

fn scan(t: &str) -> Result<Scanned<'_>, &'static str> {
    const NOT_A_NUMBER: &str = "is not a number";
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t),
    };
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return Err(NOT_A_NUMBER);
    }
    let dots = body.matches('.').count();
    let commas = body.matches(',').count();
    let (group, decimal) = match (dots, commas) {
        (0, 0) => (None, None),
        (_, 0) if dots > 1 => (Some('.'), None),
        (0, _) if commas > 1 => (Some(','), None),
        (1, 0) => (None, Some('.')),
        (0, 1) => (None, Some(',')),
        _ => {
            // Both marks: the last is the decimal mark and appears once.
            let last = body.rfind(['.', ',']).map(|i| body.as_bytes()[i] as char);
            let (g, d) = if last == Some(',') {
                ('.', ',')
            } else {
                (',', '.')
            };
            if body.matches(d).count() != 1 {
                return Err("mixes . and , in a way that reads two ways");
            }
            (Some(g), Some(d))
        }
    };
    let (whole, fraction) = match decimal.and_then(|d| body.split_once(d)) {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if decimal.is_some() && fraction.is_empty() {
        return Err(NOT_A_NUMBER);
    }
    let three_after_one =
        group.is_none() && fraction.len() == 3 && !whole.trim_start_matches('0').is_empty();
    let whole = match group {
        Some(g) => {
            let mut groups = whole.split(g);
            let first = groups.next().unwrap_or_default();
            if first.is_empty() || first.len() > 3 || groups.any(|rest| rest.len() != 3) {
                return Err("has thousands groups that are not three digits");
            }
            whole.replace(g, "")
        }
        None => whole.to_owned(),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(NOT_A_NUMBER);
    }
    Ok(Scanned {
        negative,
        whole,
        fraction,
        three_after_one,
    })
}

/// Reads a rupiah amount as shops write it, by the module's rule: `12500`, `12.500`,
/// `Rp 12.500`, `12.500,00`, `25,000`, `Rp1,250,000.00`. Never negative; never sen.
///
/// ```
/// use kasir_crdt::money::parse_rupiah;
/// assert_eq!(parse_rupiah("Rp 12.500"), Ok(12_500));
/// assert_eq!(parse_rupiah("25,000"), Ok(25_000));
/// assert!(parse_rupiah("12.500,50").is_err());
/// ```
pub fn parse_rupiah(input: &str) -> Result<Rupiah, ParseNumberError> {
    let err = |why| ParseNumberError {
        input: input.to_owned(),
        why,
    };
    let t = input.trim();
    let t = ["Rp.", "Rp", "RP", "rp", "IDR"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t)
        .trim();
    let n = scan(t).map_err(|why| {
        err(if why == "is not a number" {
            "is not an amount in rupiah"
        } else {
            why
        })
    })?;
    if n.negative {
        return Err(err("is not an amount in rupiah: amounts are zero or more"));
    }
    let (whole, fraction) = if n.three_after_one {
        (format!("{}{}", n.whole, n.fraction), "")
    } else {
        (n.whole, n.fraction)
    };
    if !fraction.bytes().all(|b| b == b'0') {
        return Err(err("has sen: rupiah amounts are whole numbers"));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 13 {
        return Err(err("is too large for an amount in rupiah"));
    }
    if whole.is_empty() {
        return Ok(0);
    }
    whole.parse().map_err(|_| err("is not a number"))
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

    /// Reads a quantity by the module's rule: `2`, `0,25`, `1,5`, `0.250`, `1.500,5`;
    /// `1.500` is ambiguous and refused.
    fn from_str(s: &str) -> Result<Qty, ParseQtyError> {
        let err = || ParseQtyError {
            input: s.to_owned(),
            ambiguous: false,
        };
        let n = scan(s.trim()).map_err(|_| err())?;
        if n.three_after_one {
            return Err(err().ambiguous());
        }
        if n.fraction.len() > 3 || n.whole.len() > 12 {
            return Err(err());
        }
        let whole: i64 = if n.whole.is_empty() {
            0
        } else {
            n.whole.parse().map_err(|_| err())?
        };
        let mut frac: i64 = if n.fraction.is_empty() {
            0
        } else {
            n.fraction.parse().map_err(|_| err())?
        };
        for _ in n.fraction.len()..3 {
            frac *= 10;
        }
        let milli = whole * Self::SCALE + frac;
        Ok(Qty(if n.negative { -milli } else { milli }))
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
///
/// Permendag 35/2013 art. 6 lets a shop round a price only because a denomination is not
/// in circulation, and the rounding must be told to the customer (the struk prints it as
/// Pembulatan). So rounding goes down by default, in the customer's favour; "nearest"
/// rounds a half down too and is only honoured for units up to [`CashRounding::NEAREST_MAX`]
/// (Rp100, the smallest coin in use), so a customer never pays a coin more than owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashRounding {
    /// The unit to round to in rupiah; 0 or 1 means no rounding.
    pub unit: Rupiah,
    /// Round down (in the customer's favour) instead of to the nearest unit.
    #[serde(default = "round_down_default")]
    pub down: bool,
}

fn round_down_default() -> bool {
    true
}

impl Default for CashRounding {
    fn default() -> CashRounding {
        CashRounding {
            unit: 0,
            down: true,
        }
    }
}

impl CashRounding {
    /// The units a store may round cash to: the coins and small notes in circulation.
    pub const UNITS: [Rupiah; 6] = [0, 50, 100, 200, 500, 1_000];
    /// The largest unit "nearest" rounds to; above it, rounding goes down.
    pub const NEAREST_MAX: Rupiah = 100;

    /// Whether a store may choose this rounding: a unit of [`CashRounding::UNITS`], and
    /// "nearest" only up to [`CashRounding::NEAREST_MAX`].
    pub fn check(self) -> Result<(), String> {
        if !Self::UNITS.contains(&self.unit) && self.unit != 1 {
            return Err(format!(
                "cash rounding to Rp{} is not a coin in circulation: use 0, 50, 100, 200, 500 or 1.000",
                self.unit
            ));
        }
        if !self.down && self.unit > Self::NEAREST_MAX {
            return Err(format!(
                "rounding to the nearest Rp{} can charge a customer a coin more than owed \
                 (Permendag 35/2013 art. 6): round down, or to the nearest Rp100 at most",
                self.unit
            ));
        }
        Ok(())
    }

    /// The adjustment to add to `total` (negative or positive): down to the unit, or to
    /// the nearest unit with a half going down. A stored "nearest" above
    /// [`CashRounding::NEAREST_MAX`] (from before the rule) rounds down.
    pub fn adjustment(self, total: Rupiah) -> Rupiah {
        if self.unit <= 1 {
            return 0;
        }
        let rem = total.rem_euclid(self.unit);
        let down = self.down || self.unit > Self::NEAREST_MAX;
        if rem == 0 {
            0
        } else if down || rem * 2 <= self.unit {
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
        assert_eq!("0.250".parse::<Qty>(), Ok(Qty(250)));
        assert_eq!("1.500,5".parse::<Qty>(), Ok(Qty(1_500_500)));
        assert_eq!("1,500.5".parse::<Qty>(), Ok(Qty(1_500_500)));
        assert_eq!("1.500.000".parse::<Qty>(), Ok(Qty::units(1_500_000)));
        let ambiguous = "1.500".parse::<Qty>().expect_err("reads two ways");
        assert!(ambiguous.to_string().contains("1,5 or 1500"), "{ambiguous}");
        assert!("2,000".parse::<Qty>().is_err());
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
    fn rupiah_reads_by_one_rule() {
        for (text, amount) in [
            ("12500", 12_500),
            ("12.500", 12_500),
            ("Rp 1.250.000", 1_250_000),
            ("Rp1,250,000.00", 1_250_000),
            ("12.500,00", 12_500),
            ("25,000", 25_000),
            ("3,500", 3_500),
            ("12,00", 12),
            ("0", 0),
            ("IDR 5.000", 5_000),
        ] {
            assert_eq!(parse_rupiah(text), Ok(amount), "{text}");
        }
        for bad in [
            "12.500,50",
            "12,5",
            "-5",
            "abc",
            "",
            "1.50.000",
            "1.2.3,4,5",
            "Rp",
            "1 500",
        ] {
            assert!(parse_rupiah(bad).is_err(), "{bad}");
        }
        assert!(
            parse_rupiah("12,5")
                .expect_err("sen")
                .to_string()
                .contains("sen")
        );
    }

    #[test]
    fn cash_rounding() {
        let nearest = CashRounding {
            unit: 100,
            down: false,
        };
        assert_eq!(
            nearest.adjustment(12_450),
            -50,
            "a half goes to the customer"
        );
        assert_eq!(nearest.adjustment(12_451), 49);
        assert_eq!(nearest.adjustment(12_449), -49);
        let too_coarse = CashRounding {
            unit: 500,
            down: false,
        };
        assert!(too_coarse.check().is_err());
        assert_eq!(too_coarse.adjustment(27_280), -280, "rounds down instead");
        assert!(
            CashRounding {
                unit: 300,
                down: true
            }
            .check()
            .is_err()
        );
        assert!(
            CashRounding {
                unit: 500,
                down: true
            }
            .check()
            .is_ok()
        );
        assert!(CashRounding::default().down);
        let down = CashRounding {
            unit: 500,
            down: true,
        };
        assert_eq!(down.adjustment(12_900), -400);
        assert_eq!(CashRounding::default().adjustment(12_345), 0);
    }
}
