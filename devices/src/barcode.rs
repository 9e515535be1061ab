//! Barcodes: GTIN check digits, in-store weighed/priced codes, and telling a scanner's
//! keystrokes from a person's.
//!
//! - [`validate`]: EAN-13, EAN-8 and UPC-A with their mod-10 check digit.
//! - [`WeighedLayout`] / [`decode_weighed`]: the EAN-13 codes a shop's scale prints,
//!   prefixes 20–29 (GS1 "restricted circulation"), e.g. `2` `1` + 5-digit PLU + 5-digit
//!   weight in grams or price + check digit. The layout differs per store and scale
//!   brand, so it is data, not code.
//! - [`WedgeDetector`] / [`detect_scans`]: a USB scanner in keyboard-wedge mode "types"
//!   a code a few milliseconds per character and presses Enter; a person types tens of
//!   milliseconds or more apart. Pure functions over `(char, time)` events for the web UI.

use kasir_crdt::money::{Qty, Rupiah};
use serde::{Deserialize, Serialize};

/// A retail barcode symbology with a GTIN check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Symbology {
    /// 13 digits.
    Ean13,
    /// 8 digits.
    Ean8,
    /// 12 digits.
    UpcA,
}

/// Why a barcode is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarcodeError {
    /// Not 8, 12 or 13 digits.
    #[error("barcode {0:?} is not an EAN-13, EAN-8 or UPC-A code")]
    NotGtin(String),
    /// The last digit does not match the others.
    #[error("barcode {code:?} has check digit {found}, expected {expected}")]
    CheckDigit {
        /// The code.
        code: String,
        /// The code's last digit.
        found: u8,
        /// What the other digits call for.
        expected: u8,
    },
    /// A weighed-code layout whose parts do not add up to 13 digits.
    #[error("weighed barcode layout is invalid: {0}")]
    BadLayout(String),
}

/// The GTIN check digit of `digits` (all the code's digits but the last): weights 3 and
/// 1 alternating from the right, mod 10.
pub fn check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Checks an EAN-13, EAN-8 or UPC-A code (surrounding whitespace ignored) and says which.
pub fn validate(code: &str) -> Result<Symbology, BarcodeError> {
    let code = code.trim();
    let symbology = match code.len() {
        13 => Symbology::Ean13,
        12 => Symbology::UpcA,
        8 => Symbology::Ean8,
        _ => return Err(BarcodeError::NotGtin(code.to_owned())),
    };
    let digits = digits(code).ok_or_else(|| BarcodeError::NotGtin(code.to_owned()))?;
    let (body, last) = digits.split_at(digits.len() - 1);
    let expected = check_digit(body);
    if last[0] != expected {
        return Err(BarcodeError::CheckDigit {
            code: code.to_owned(),
            found: last[0],
            expected,
        });
    }
    Ok(symbology)
}

fn digits(code: &str) -> Option<Vec<u8>> {
    code.bytes()
        .map(|b| b.is_ascii_digit().then_some(b - b'0'))
        .collect()
}

/// What the value digits of a weighed code mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum WeighedValue {
    /// Weight in grams: the line's quantity in kilograms (thousandths).
    Grams,
    /// The line's price in rupiah, times `multiplier` (scales with 5 digits print
    /// hundreds of rupiah: multiplier 100).
    Price {
        /// Rupiah per unit of the printed value.
        multiplier: Rupiah,
    },
}

/// Where the PLU and the value sit in a store's in-store EAN-13 codes:
/// `PP` prefix, `plu_digits` of PLU, `skip_digits` ignored (some scales put a price
/// check digit there), `value_digits` of value, and the EAN check digit — 13 in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeighedLayout {
    /// The two-digit prefixes (20–29) the store's scales use.
    pub prefixes: Vec<u8>,
    /// PLU digits after the prefix.
    pub plu_digits: usize,
    /// Digits ignored between PLU and value.
    pub skip_digits: usize,
    /// Value digits before the check digit.
    pub value_digits: usize,
    /// What the value means.
    pub value: WeighedValue,
}

impl Default for WeighedLayout {
    /// Prefixes 20–29, 5-digit PLU, 5-digit weight in grams: `2X PPPPP WWWWW C`.
    fn default() -> WeighedLayout {
        WeighedLayout {
            prefixes: (20..=29).collect(),
            plu_digits: 5,
            skip_digits: 0,
            value_digits: 5,
            value: WeighedValue::Grams,
        }
    }
}

impl WeighedLayout {
    /// `2X PPPPP VVVVV C` with the value in rupiah.
    pub fn priced() -> WeighedLayout {
        WeighedLayout {
            value: WeighedValue::Price { multiplier: 1 },
            ..WeighedLayout::default()
        }
    }

    /// Checks that the parts make 13 digits and the prefixes are restricted-circulation.
    pub fn check(&self) -> Result<(), BarcodeError> {
        let digits = 2 + self.plu_digits + self.skip_digits + self.value_digits + 1;
        if digits != 13 {
            return Err(BarcodeError::BadLayout(format!(
                "2 + {} + {} + {} + 1 = {digits} digits, EAN-13 has 13",
                self.plu_digits, self.skip_digits, self.value_digits
            )));
        }
        if self.plu_digits == 0 || self.value_digits == 0 {
            return Err(BarcodeError::BadLayout(
                "PLU and value need at least one digit each".into(),
            ));
        }
        if self.prefixes.is_empty() || self.prefixes.iter().any(|p| !(20..=29).contains(p)) {
            return Err(BarcodeError::BadLayout(
                "prefixes must be among 20 to 29".into(),
            ));
        }
        if let WeighedValue::Price { multiplier } = self.value
            && multiplier <= 0
        {
            return Err(BarcodeError::BadLayout(
                "the price multiplier must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// A decoded weighed or priced code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighed {
    /// The PLU as printed, leading zeros kept (`"00123"`).
    pub plu: String,
    /// The weight or the price.
    pub amount: WeighedAmount,
}

/// What a weighed code carries besides the PLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeighedAmount {
    /// A quantity (kilograms in thousandths: grams).
    Qty(Qty),
    /// A price in rupiah.
    Price(Rupiah),
}

/// Decodes `code` as an in-store code of `layout`.
///
/// `Ok(None)` when the code is not one (other prefix or length): the caller looks it up
/// as an ordinary barcode. `Err` when it is one but is damaged (check digit) or the
/// layout is invalid.
pub fn decode_weighed(code: &str, layout: &WeighedLayout) -> Result<Option<Weighed>, BarcodeError> {
    layout.check()?;
    let code = code.trim();
    let Some(d) = digits(code).filter(|d| d.len() == 13) else {
        return Ok(None);
    };
    let prefix = d[0] * 10 + d[1];
    if !layout.prefixes.contains(&prefix) {
        return Ok(None);
    }
    validate(code)?;
    let plu_start = 2;
    let value_start = plu_start + layout.plu_digits + layout.skip_digits;
    let plu = code[plu_start..plu_start + layout.plu_digits].to_owned();
    let value = d[value_start..value_start + layout.value_digits]
        .iter()
        .fold(0i64, |n, digit| n * 10 + i64::from(*digit));
    let amount = match layout.value {
        WeighedValue::Grams => WeighedAmount::Qty(Qty(value)),
        WeighedValue::Price { multiplier } => {
            WeighedAmount::Price(value.saturating_mul(multiplier))
        }
    };
    Ok(Some(Weighed { plu, amount }))
}

/// When keystrokes count as a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WedgeConfig {
    /// Fewest characters before Enter (shorter bursts are typing).
    pub min_len: usize,
    /// Longest gap between two characters of a scan, and before the Enter, in ms.
    pub max_gap_ms: u64,
}

impl Default for WedgeConfig {
    /// 6 characters, at most 30 ms apart. Scanners type every 1–10 ms; the fastest
    /// typists manage 60–80 ms between keys.
    fn default() -> WedgeConfig {
        WedgeConfig {
            min_len: 6,
            max_gap_ms: 30,
        }
    }
}

/// A scan found in a keystroke stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The scanned code (without the Enter).
    pub code: String,
    /// Index of the scan's first event.
    pub first: usize,
    /// Index of its Enter.
    pub enter: usize,
}

/// Incremental wedge detection: feed keystrokes as they come.
#[derive(Debug, Clone, Default)]
pub struct WedgeDetector {
    config: WedgeConfig,
    burst: String,
    first: usize,
    last_ms: Option<u64>,
    seen: usize,
}

impl WedgeDetector {
    /// A detector with `config`.
    pub fn new(config: WedgeConfig) -> WedgeDetector {
        WedgeDetector {
            config,
            ..WedgeDetector::default()
        }
    }

    /// One keystroke at `at_ms` (any monotonic milliseconds). Returns the scan when this
    /// is the Enter (`'\n'` or `'\r'`) that ends a fast enough, long enough burst.
    pub fn push(&mut self, key: char, at_ms: u64) -> Option<Scan> {
        let index = self.seen;
        self.seen += 1;
        let quick = self
            .last_ms
            .is_some_and(|last| at_ms.saturating_sub(last) <= self.config.max_gap_ms);
        self.last_ms = Some(at_ms);
        if key == '\n' || key == '\r' {
            let scan = (quick && self.burst.chars().count() >= self.config.min_len).then(|| Scan {
                code: std::mem::take(&mut self.burst),
                first: self.first,
                enter: index,
            });
            self.burst.clear();
            return scan;
        }
        if key.is_control() {
            self.burst.clear();
            return None;
        }
        if !quick {
            self.burst.clear();
        }
        if self.burst.is_empty() {
            self.first = index;
        }
        self.burst.push(key);
        None
    }
}

/// Every scan in a recorded keystroke stream (see [`WedgeDetector::push`]).
pub fn detect_scans(events: &[(char, u64)], config: WedgeConfig) -> Vec<Scan> {
    let mut detector = WedgeDetector::new(config);
    events
        .iter()
        .filter_map(|&(key, at)| detector.push(key, at))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_parts_must_make_thirteen_digits() {
        assert!(WeighedLayout::default().check().is_ok());
        let bad = WeighedLayout {
            plu_digits: 6,
            ..WeighedLayout::default()
        };
        assert!(matches!(bad.check(), Err(BarcodeError::BadLayout(_))));
        let foreign = WeighedLayout {
            prefixes: vec![89],
            ..WeighedLayout::default()
        };
        assert!(matches!(foreign.check(), Err(BarcodeError::BadLayout(_))));
        assert!(matches!(
            decode_weighed("2112345012344", &bad),
            Err(BarcodeError::BadLayout(_))
        ));
    }
}
