//! Tax as a rule, not a percentage.
//!
//! Indonesian retail tax has a rate, a base factor (PPN 12% on a DPP of 11/12 of the price
//! since 2025 for non-luxury goods, an effective 11%), inclusive or exclusive prices, PPN
//! versus the regional PBJT for food and drink, and a service charge that may or may not be
//! taxed. Most UMKM are not PKP, so the default rule charges no tax at all.

use serde::{Deserialize, Serialize};

use crate::money::{Rupiah, round_div};

/// Which tax a rule levies; decides the label on the struk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaxKind {
    /// No tax (the store is not PKP).
    #[default]
    None,
    /// Pajak Pertambahan Nilai (VAT).
    Ppn,
    /// Pajak Barang dan Jasa Tertentu for food and drink (formerly PB1), regional.
    Pbjt,
}

impl TaxKind {
    /// The name used in APIs (`none`, `ppn`, `pbjt`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaxKind::None => "none",
            TaxKind::Ppn => "ppn",
            TaxKind::Pbjt => "pbjt",
        }
    }
}

/// A store's tax rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRule {
    /// The tax levied.
    pub kind: TaxKind,
    /// Nominal rate in basis points (1200 = 12%).
    pub rate_bp: i64,
    /// Numerator of the base factor (DPP nilai lain): 11 for 11/12.
    pub base_num: i64,
    /// Denominator of the base factor: 12 for 11/12.
    pub base_den: i64,
    /// Shelf prices include the tax (the usual retail case).
    pub inclusive: bool,
    /// Service charge in basis points on the subtotal (0 = none).
    pub service_bp: i64,
    /// Whether the service charge is itself taxed.
    pub service_taxed: bool,
}

impl Default for TaxRule {
    fn default() -> TaxRule {
        TaxRule::none()
    }
}

/// The tax-relevant amounts of one sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaxBreakdown {
    /// Service charge added to the subtotal.
    pub service_charge: Rupiah,
    /// Tax amount. Included in `gross` when the rule is inclusive, added otherwise.
    pub tax: Rupiah,
    /// DPP (harga jual): the taxable amount without tax.
    pub dpp: Rupiah,
    /// DPP nilai lain: `dpp × base_num / base_den`.
    pub dpp_other: Rupiah,
    /// What the customer owes before cash rounding.
    pub gross: Rupiah,
}

impl TaxRule {
    /// No tax, no service charge.
    pub const fn none() -> TaxRule {
        TaxRule {
            kind: TaxKind::None,
            rate_bp: 0,
            base_num: 1,
            base_den: 1,
            inclusive: true,
            service_bp: 0,
            service_taxed: false,
        }
    }

    /// PPN 11% on the full price (April 2022 – December 2024).
    pub const fn ppn_11(inclusive: bool) -> TaxRule {
        TaxRule {
            kind: TaxKind::Ppn,
            rate_bp: 1100,
            base_num: 1,
            base_den: 1,
            inclusive,
            service_bp: 0,
            service_taxed: false,
        }
    }

    /// PPN 12% on a DPP of 11/12 (PMK 131/2024, non-luxury goods from 2025).
    pub const fn ppn_12_dpp_11_12(inclusive: bool) -> TaxRule {
        TaxRule {
            kind: TaxKind::Ppn,
            rate_bp: 1200,
            base_num: 11,
            base_den: 12,
            inclusive,
            service_bp: 0,
            service_taxed: false,
        }
    }

    /// Regional PBJT on food and drink at `rate_bp` (at most 10%).
    pub const fn pbjt(rate_bp: i64, inclusive: bool) -> TaxRule {
        TaxRule {
            kind: TaxKind::Pbjt,
            rate_bp,
            base_num: 1,
            base_den: 1,
            inclusive,
            service_bp: 0,
            service_taxed: false,
        }
    }

    /// Whether the rule is well formed (no negative rates, no zero denominators).
    pub fn is_valid(&self) -> bool {
        self.rate_bp >= 0
            && self.rate_bp <= 10_000
            && self.base_num >= 0
            && self.base_den > 0
            && self.service_bp >= 0
            && self.service_bp <= 10_000
    }

    /// The label printed on receipts: `PPN 12%`, `PBJT 10%`.
    pub fn label(&self) -> Option<String> {
        let name = match self.kind {
            TaxKind::None => return None,
            TaxKind::Ppn => "PPN",
            TaxKind::Pbjt => "PBJT",
        };
        let whole = self.rate_bp / 100;
        let frac = self.rate_bp % 100;
        Some(if frac == 0 {
            format!("{name} {whole}%")
        } else {
            format!("{name} {whole},{frac:02}%")
        })
    }

    /// Applies the rule to a subtotal (after discounts).
    ///
    /// ```
    /// use kasir_crdt::tax::TaxRule;
    /// // Rp17.500 tax-inclusive under PPN 12% × 11/12: PPN = 17.500 × 11/111.
    /// let b = TaxRule::ppn_12_dpp_11_12(true).apply(17_500);
    /// assert_eq!((b.dpp, b.dpp_other, b.tax, b.gross), (15_766, 14_452, 1_734, 17_500));
    /// ```
    pub fn apply(&self, subtotal: Rupiah) -> TaxBreakdown {
        let service_charge =
            round_div(i128::from(subtotal) * i128::from(self.service_bp), 10_000) as Rupiah;
        if self.kind == TaxKind::None || self.rate_bp == 0 {
            return TaxBreakdown {
                service_charge,
                tax: 0,
                dpp: subtotal,
                dpp_other: subtotal,
                gross: subtotal + service_charge,
            };
        }
        let taxable = if self.service_taxed {
            subtotal + service_charge
        } else {
            subtotal
        };
        // Effective rate as a fraction: rate_bp/10000 × base_num/base_den.
        let eff_num = i128::from(self.rate_bp) * i128::from(self.base_num);
        let eff_den = 10_000 * i128::from(self.base_den);
        let taxable = i128::from(taxable);
        let (dpp, tax) = if self.inclusive {
            let tax = round_div(taxable * eff_num, eff_den + eff_num);
            (taxable - tax, tax)
        } else {
            (taxable, round_div(taxable * eff_num, eff_den))
        };
        let dpp_other = round_div(dpp * i128::from(self.base_num), i128::from(self.base_den));
        let gross = if self.inclusive {
            subtotal + service_charge
        } else {
            subtotal + service_charge + tax as Rupiah
        };
        TaxBreakdown {
            service_charge,
            tax: tax as Rupiah,
            dpp: dpp as Rupiah,
            dpp_other: dpp_other as Rupiah,
            gross,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tax_by_default() {
        let b = TaxRule::default().apply(10_000);
        assert_eq!((b.tax, b.gross), (0, 10_000));
        assert_eq!(TaxRule::default().label(), None);
    }

    #[test]
    fn ppn_11_exclusive_and_inclusive() {
        let ex = TaxRule::ppn_11(false).apply(100_000);
        assert_eq!((ex.tax, ex.gross, ex.dpp), (11_000, 111_000, 100_000));
        let inc = TaxRule::ppn_11(true).apply(111_000);
        assert_eq!((inc.tax, inc.gross, inc.dpp), (11_000, 111_000, 100_000));
    }

    #[test]
    fn ppn_12_on_11_12_base_is_effectively_11_percent() {
        let ex = TaxRule::ppn_12_dpp_11_12(false).apply(50_000_000);
        assert_eq!(ex.dpp_other, 45_833_333);
        assert_eq!(ex.tax, 5_500_000);
        assert_eq!(
            TaxRule::ppn_12_dpp_11_12(true).label().as_deref(),
            Some("PPN 12%")
        );
    }

    #[test]
    fn pbjt_with_taxed_service_charge() {
        let mut rule = TaxRule::pbjt(1000, false);
        rule.service_bp = 500;
        rule.service_taxed = true;
        let b = rule.apply(100_000);
        assert_eq!(b.service_charge, 5_000);
        assert_eq!(b.tax, 10_500);
        assert_eq!(b.gross, 115_500);
        assert_eq!(rule.label().as_deref(), Some("PBJT 10%"));
    }
}
