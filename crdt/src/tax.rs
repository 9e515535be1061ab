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

    /// Regional PBJT on food and drink at `rate_bp` (at most 10%). The base is what the
    /// customer pays, service charge included (Perda DKI 1/2024 art. 51(1)(a)), so the
    /// service charge is taxed unless the store says its region does otherwise.
    pub const fn pbjt(rate_bp: i64, inclusive: bool) -> TaxRule {
        TaxRule {
            kind: TaxKind::Pbjt,
            rate_bp,
            base_num: 1,
            base_den: 1,
            inclusive,
            service_bp: 0,
            service_taxed: true,
        }
    }

    /// PPN 12% on the full price: luxury goods (PPnBM goods, PMK 131/2024 art. 2).
    pub const fn ppn_12_full(inclusive: bool) -> TaxRule {
        TaxRule {
            kind: TaxKind::Ppn,
            rate_bp: 1200,
            base_num: 1,
            base_den: 1,
            inclusive,
            service_bp: 0,
            service_taxed: false,
        }
    }

    /// The rule a line of tax code `code` is taxed under in a store whose own rule is
    /// this one, or `None` when the line bears no tax (exempt goods, or PPN goods in a
    /// store that is not PKP: only a PKP may charge PPN). `pbjt_bp` is the PBJT rate
    /// for food and drink sold by a store whose own rule is not PBJT. Every rule keeps
    /// this one's inclusiveness and service charge.
    pub fn for_code(&self, code: TaxCode, pbjt_bp: i64) -> Option<TaxRule> {
        let with_store = |r: TaxRule| TaxRule {
            inclusive: self.inclusive,
            service_bp: self.service_bp,
            service_taxed: self.service_taxed,
            ..r
        };
        let pkp = self.kind == TaxKind::Ppn;
        match code {
            TaxCode::Standard if self.kind == TaxKind::None || self.rate_bp == 0 => None,
            TaxCode::Standard => Some(*self),
            TaxCode::Exempt => None,
            TaxCode::Ppn if pkp => Some(with_store(TaxRule::ppn_12_dpp_11_12(true))),
            TaxCode::PpnFull if pkp => Some(with_store(TaxRule::ppn_12_full(true))),
            TaxCode::Ppn | TaxCode::PpnFull => None,
            TaxCode::Pbjt if self.kind == TaxKind::Pbjt => Some(*self),
            TaxCode::Pbjt if pbjt_bp > 0 => Some(TaxRule {
                service_taxed: true,
                ..with_store(TaxRule::pbjt(pbjt_bp, true))
            }),
            TaxCode::Pbjt => None,
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

    /// Applies the rule to `base`, the lines' amount after discounts (as priced: with
    /// the tax inside when the rule is inclusive).
    ///
    /// - The service charge is a share of the price *without* tax: of `base` when
    ///   prices exclude the tax, of the DPP of the goods when they include it.
    /// - When the service charge is taxed, the tax is the rate of the whole DPP (goods
    ///   plus service), so the printed tax is the rate of the printed DPP.
    /// - Exclusive prices under a base factor (PPN 12% × 11/12) follow the
    ///   regulation's chain: DPP nilai lain = round(11/12 × DPP), then PPN = round(12%
    ///   × DPP nilai lain) (PMK 131/2024 art. 3, rounded half up per PER-11/PJ/2025 art.
    ///   129), so PPN is exactly 12% of the printed DPP nilai lain.
    /// - Inclusive prices: tax = round(price × e / (1 + e)) with e the effective rate
    ///   (11/111 under 12% × 11/12), DPP = price − tax, and DPP nilai lain = round(11/12
    ///   × DPP) is printed for information. No whole-rupiah triple satisfies DPP + PPN
    ///   = price, PPN = 12% × DPP nilai lain and DPP nilai lain = 11/12 × DPP at once;
    ///   the price is what the shelf says, so the first and the effective rate win and
    ///   PPN may differ from 12% × DPP nilai lain by Rp1.
    ///
    /// ```
    /// use kasir_crdt::tax::TaxRule;
    /// // Rp17.500 tax-inclusive under PPN 12% × 11/12: PPN = 17.500 × 11/111.
    /// let b = TaxRule::ppn_12_dpp_11_12(true).apply(17_500);
    /// assert_eq!((b.dpp, b.dpp_other, b.tax, b.gross), (15_766, 14_452, 1_734, 17_500));
    /// // Bapenda DKI's example: Rp80.000 after discount, service 5%, PBJT 10% of 84.000.
    /// let mut pbjt = TaxRule::pbjt(1000, false);
    /// pbjt.service_bp = 500;
    /// let b = pbjt.apply(80_000);
    /// assert_eq!((b.service_charge, b.tax, b.gross), (4_000, 8_400, 92_400));
    /// ```
    pub fn apply(&self, base: Rupiah) -> TaxBreakdown {
        let service_of =
            |amount: i128| round_div(amount * i128::from(self.service_bp), 10_000) as Rupiah;
        if self.kind == TaxKind::None || self.rate_bp == 0 {
            let service_charge = service_of(i128::from(base));
            return TaxBreakdown {
                service_charge,
                tax: 0,
                dpp: base,
                dpp_other: base,
                gross: base + service_charge,
            };
        }
        // Effective rate as a fraction: rate_bp/10000 × base_num/base_den.
        let eff_num = i128::from(self.rate_bp) * i128::from(self.base_num);
        let eff_den = 10_000 * i128::from(self.base_den);
        let other_of =
            |dpp: i128| round_div(dpp * i128::from(self.base_num), i128::from(self.base_den));
        let base = i128::from(base);
        let (service_charge, dpp, dpp_other, tax, gross);
        if self.inclusive {
            let goods_tax = round_div(base * eff_num, eff_den + eff_num);
            let goods_dpp = base - goods_tax;
            service_charge = service_of(goods_dpp);
            if self.service_taxed {
                dpp = goods_dpp + i128::from(service_charge);
                tax = round_div(dpp * eff_num, eff_den);
                gross = dpp + tax;
            } else {
                dpp = goods_dpp;
                tax = goods_tax;
                gross = base + i128::from(service_charge);
            }
            dpp_other = other_of(dpp);
        } else {
            service_charge = service_of(base);
            dpp = if self.service_taxed {
                base + i128::from(service_charge)
            } else {
                base
            };
            if self.base_num == self.base_den {
                dpp_other = dpp;
                tax = round_div(dpp * i128::from(self.rate_bp), 10_000);
            } else {
                dpp_other = other_of(dpp);
                tax = round_div(dpp_other * i128::from(self.rate_bp), 10_000);
            }
            gross = base + i128::from(service_charge) + tax;
        }
        TaxBreakdown {
            service_charge,
            tax: tax as Rupiah,
            dpp: dpp as Rupiah,
            dpp_other: dpp_other as Rupiah,
            gross: gross as Rupiah,
        }
    }
}

/// A product's tax code: which rule its lines are taxed under (`Product.tax_code`).
///
/// One receipt may mix them: a PKP minimarket sells beras (exempt) beside sabun (PPN),
/// and ready food under the regional PBJT.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TaxCode {
    /// The store's own rule (no code on the product).
    #[default]
    Standard,
    /// Goods whose PPN is exempted (sembako: beras, telur, daging, sayur, buah, susu
    /// segar, garam konsumsi… UU PPN art. 4A and 16B, PP 49/2022). Marked on the struk.
    Exempt,
    /// PPN 12% on a DPP of 11/12 (non-luxury goods), in a PKP store.
    Ppn,
    /// PPN 12% on the full price (luxury goods), in a PKP store.
    PpnFull,
    /// Regional PBJT on ready food and drink.
    Pbjt,
}

impl TaxCode {
    /// Every code, in the order the settings list them.
    pub const ALL: [TaxCode; 5] = [
        TaxCode::Standard,
        TaxCode::Exempt,
        TaxCode::Ppn,
        TaxCode::PpnFull,
        TaxCode::Pbjt,
    ];

    /// The name stored on products and used in APIs (`standard`, `exempt`, `ppn`,
    /// `ppn_full`, `pbjt`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaxCode::Standard => "standard",
            TaxCode::Exempt => "exempt",
            TaxCode::Ppn => "ppn",
            TaxCode::PpnFull => "ppn_full",
            TaxCode::Pbjt => "pbjt",
        }
    }

    /// A product's code: absent or empty is the store's rule; an unknown one (written
    /// by a newer till) is taxed as the store's rule too, never left untaxed.
    pub fn of_product(code: Option<&str>) -> TaxCode {
        code.and_then(|c| c.parse().ok()).unwrap_or_default()
    }
}

impl std::str::FromStr for TaxCode {
    type Err = String;

    fn from_str(s: &str) -> Result<TaxCode, String> {
        Ok(match s.trim().to_lowercase().as_str() {
            "" | "standard" | "standar" | "default" => TaxCode::Standard,
            "exempt" | "bebas" | "bebas_ppn" => TaxCode::Exempt,
            "ppn" => TaxCode::Ppn,
            "ppn_full" | "ppn_mewah" => TaxCode::PpnFull,
            "pbjt" => TaxCode::Pbjt,
            other => {
                return Err(format!(
                    "unknown tax code {other:?}: use standard, exempt, ppn, ppn_full or pbjt"
                ));
            }
        })
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
    fn ppn_12_exclusive_follows_the_chain() {
        // Rp10.150: DPP nilai lain 9.304 (9.304,17), PPN 12% × 9.304 = 1.116,48 → 1.116.
        let b = TaxRule::ppn_12_dpp_11_12(false).apply(10_150);
        assert_eq!((b.dpp_other, b.tax, b.gross), (9_304, 1_116, 11_266));
    }

    #[test]
    fn inclusive_service_is_on_the_price_without_tax() {
        let mut rule = TaxRule::pbjt(1000, true);
        rule.service_bp = 500;
        rule.service_taxed = false;
        let b = rule.apply(110_000);
        assert_eq!(
            (b.dpp, b.tax, b.service_charge, b.gross),
            (100_000, 10_000, 5_000, 115_000)
        );
        rule.service_taxed = true;
        let b = rule.apply(110_000);
        assert_eq!(
            (b.dpp, b.tax, b.service_charge, b.gross),
            (105_000, 10_500, 5_000, 115_500)
        );
    }

    #[test]
    fn tax_codes_pick_the_line_rule() {
        let ppn = TaxRule::ppn_12_dpp_11_12(true);
        assert_eq!(ppn.for_code(TaxCode::Standard, 1000), Some(ppn));
        assert_eq!(ppn.for_code(TaxCode::Exempt, 1000), None);
        let food = ppn.for_code(TaxCode::Pbjt, 1000).expect("PBJT");
        assert_eq!(
            (food.kind, food.rate_bp, food.inclusive),
            (TaxKind::Pbjt, 1000, true)
        );
        assert_eq!(
            TaxRule::none().for_code(TaxCode::Ppn, 1000),
            None,
            "not PKP"
        );
        assert_eq!(TaxCode::of_product(Some("bebas")), TaxCode::Exempt);
        assert_eq!(TaxCode::of_product(Some("zzz")), TaxCode::Standard);
        for code in TaxCode::ALL {
            assert_eq!(code.as_str().parse::<TaxCode>(), Ok(code));
        }
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
