//! Changing the store profile from the CLI and the HTTP API: which fields a shop owner
//! sets, and the tax presets they choose from.

use kasir_crdt::money::CashRounding;
use kasir_crdt::store::StoreProfile;
use kasir_crdt::tax::TaxRule;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// A partial update of the profile: `None` keeps the current value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Shop name.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub name: Option<String>,
    /// Address.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub address: Option<String>,
    /// Phone.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub phone: Option<String>,
    /// 16-digit NPWP (or 22-digit NITKU), printed when tax is on.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub npwp: Option<String>,
    /// Regional taxpayer number (NPWPD), printed on PBJT receipts; empty clears it.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub npwpd: Option<String>,
    /// Whether the service charge is itself taxed (on by default for PBJT: Perda DKI
    /// 1/2024 art. 51 taxes what the customer pays).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub service_taxed: Option<bool>,
    /// PBJT in percent for ready food (tax code `pbjt`) in a store whose tax is not PBJT.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub pbjt_percent: Option<u8>,
    /// The hour (0–6) the business day starts, for shops open past midnight.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub day_cutoff_hour: Option<u8>,
    /// Time zone: WIB, WITA or WIT.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub zone: Option<String>,
    /// Tax: `none`, `ppn11`, `ppn12` (12% on an 11/12 DPP), `pbjt5`, `pbjt10`.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub tax: Option<String>,
    /// Prices exclude the tax (added at the till) instead of including it.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub tax_exclusive: Option<bool>,
    /// Service charge in percent (e.g. 5).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub service_percent: Option<u32>,
    /// Round cash totals to this many rupiah (0 = no rounding).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub cash_rounding: Option<i64>,
    /// Round cash totals down (in the customer's favour) instead of to the nearest.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub round_down: Option<bool>,
    /// Extra receipt header line.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub header: Option<String>,
    /// Receipt footer line.
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub footer: Option<String>,
    /// Product recognition: the score (0 to 1) from which a photo counts as recognised;
    /// 0 restores the default (0.50).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub ml_threshold: Option<f32>,
    /// A cashier's line discount above this percent needs a supervisor's approval
    /// (100: never).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub discount_approval_percent: Option<u8>,
    /// What the store's scale labels carry: `weight` (grams) or `price` (rupiah).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub scale_labels: Option<String>,
}

/// The taxes a store can choose, by the code `--tax` and the settings page use.
pub const TAX_CODES: &[&str] = &["none", "ppn11", "ppn12", "pbjt5", "pbjt10"];

/// The tax rule of a code of [`TAX_CODES`], prices including or excluding it.
pub fn tax_rule(code: &str, inclusive: bool) -> Option<TaxRule> {
    Some(match code {
        "none" => TaxRule::none(),
        "ppn11" => TaxRule::ppn_11(inclusive),
        "ppn12" => TaxRule::ppn_12_dpp_11_12(inclusive),
        "pbjt5" => TaxRule::pbjt(500, inclusive),
        "pbjt10" => TaxRule::pbjt(1000, inclusive),
        _ => return None,
    })
}

/// The code of [`TAX_CODES`] a store's rule was made from (service charge aside), or
/// `None` for a rule none of them makes.
pub fn tax_code(rule: &TaxRule) -> Option<&'static str> {
    TAX_CODES.iter().copied().find(|code| {
        tax_rule(code, rule.inclusive).is_some_and(|r| {
            (r.kind, r.rate_bp, r.base_num, r.base_den)
                == (rule.kind, rule.rate_bp, rule.base_num, rule.base_den)
        })
    })
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl ProfileUpdate {
    /// The profile with this update applied, validated.
    pub fn apply(self, mut p: StoreProfile) -> Result<StoreProfile, NodeError> {
        if let Some(name) = self.name {
            p.name = name.trim().to_owned();
        }
        if let Some(a) = self.address {
            p.address = non_empty(a);
        }
        if let Some(phone) = self.phone {
            p.phone = non_empty(phone);
        }
        if let Some(npwp) = self.npwp {
            let digits: String = npwp.chars().filter(char::is_ascii_digit).collect();
            if !npwp.trim().is_empty() && digits.len() != 16 && digits.len() != 22 {
                return Err(NodeError::Invalid(format!(
                    "NPWP must have 16 digits (or 22 for a NITKU), got {npwp:?}"
                )));
            }
            p.npwp = non_empty(digits);
        }
        if let Some(zone) = self.zone {
            p.utc_offset_minutes = match zone.to_uppercase().as_str() {
                "WIB" => 420,
                "WITA" => 480,
                "WIT" => 540,
                other => {
                    return Err(NodeError::Invalid(format!(
                        "unknown time zone {other:?}: use WIB, WITA or WIT"
                    )));
                }
            };
        }
        let inclusive = self
            .tax_exclusive
            .map(|e| !e)
            .unwrap_or(p.tax_rule.inclusive);
        if let Some(tax) = self.tax {
            // A new tax keeps the service charge; whether it is taxed comes with the
            // preset (PBJT: taxed) unless this update says.
            let keep_service = p.tax_rule.service_bp;
            p.tax_rule = tax_rule(&tax.to_lowercase(), inclusive).ok_or_else(|| {
                NodeError::Invalid(format!("unknown tax {tax:?}: use {}", TAX_CODES.join(", ")))
            })?;
            p.tax_rule.service_bp = keep_service;
        }
        if let Some(taxed) = self.service_taxed {
            p.tax_rule.service_taxed = taxed;
        }
        if let Some(npwpd) = self.npwpd {
            if npwpd.chars().count() > 40 || npwpd.chars().any(char::is_control) {
                return Err(NodeError::Invalid(format!("invalid NPWPD {npwpd:?}")));
            }
            p.npwpd = non_empty(npwpd);
        }
        if let Some(pct) = self.pbjt_percent {
            if pct > 10 {
                return Err(NodeError::Invalid(
                    "PBJT on food and drink is at most 10% (UU HKPD art. 58)".into(),
                ));
            }
            p.pbjt_bp = i64::from(pct) * 100;
        }
        if let Some(hour) = self.day_cutoff_hour {
            if hour > 6 {
                return Err(NodeError::Invalid(
                    "the business day starts between 00:00 and 06:00".into(),
                ));
            }
            p.day_cutoff_hour = hour;
        }
        p.tax_rule.inclusive = inclusive;
        if let Some(service) = self.service_percent {
            if service > 100 {
                return Err(NodeError::Invalid(
                    "service charge must be at most 100%".into(),
                ));
            }
            p.tax_rule.service_bp = i64::from(service) * 100;
        }
        if let Some(unit) = self.cash_rounding {
            p.cash_rounding = CashRounding {
                unit,
                down: p.cash_rounding.down,
            };
        }
        if let Some(down) = self.round_down {
            p.cash_rounding.down = down;
        }
        if self.cash_rounding.is_some() || self.round_down.is_some() {
            p.cash_rounding.check().map_err(NodeError::Invalid)?;
        }
        if let Some(h) = self.header {
            p.receipt_header = non_empty(h);
        }
        if let Some(f) = self.footer {
            p.receipt_footer = non_empty(f);
        }
        if let Some(labels) = self.scale_labels {
            p.scale_labels = labels.parse().map_err(NodeError::Invalid)?;
        }
        if let Some(pct) = self.discount_approval_percent {
            if pct > 100 {
                return Err(NodeError::Invalid(
                    "the discount approval threshold is a percent from 0 to 100".into(),
                ));
            }
            p.discount_approval_percent = pct;
        }
        if let Some(t) = self.ml_threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(NodeError::Invalid(format!(
                    "the recognition threshold must be between 0 and 1, got {t}"
                )));
            }
            p.ml_threshold = (t > 0.0).then_some(t);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tax_code_is_read_back_from_its_rule() {
        for inclusive in [true, false] {
            for code in TAX_CODES {
                let rule = tax_rule(code, inclusive).expect("a known code");
                assert_eq!(tax_code(&rule), Some(*code), "{code} inclusive={inclusive}");
            }
        }
        assert_eq!(tax_rule("vat20", true), None);
    }
}
