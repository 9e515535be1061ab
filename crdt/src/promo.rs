//! Promotions on a product: a member price, buy X get Y free, a bundle price, each
//! valid between two business dates. A promotion is a discount on its line, labelled
//! for the struk; of the promotions that apply to a line the one worth most to the
//! customer is taken (they never stack), and it never exceeds what the line costs.

use serde::{Deserialize, Serialize};

use crate::ids::BusinessDate;
use crate::money::{Qty, Rupiah};

/// A promotion and the days it runs.
// No `deny_unknown_fields`: serde does not support it beside `flatten`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promo {
    /// What it gives.
    #[serde(flatten)]
    pub offer: Offer,
    /// The first business day it applies, if it starts later than now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<BusinessDate>,
    /// The last business day it applies, if it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<BusinessDate>,
}

/// What a promotion gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Offer {
    /// A customer with a member tier pays `price` per stock unit.
    MemberPrice {
        /// The member's price.
        price: Rupiah,
    },
    /// Of every `buy + free` whole units on a line, `free` cost nothing (beli 2 gratis 1).
    BuyGet {
        /// Units paid.
        buy: u32,
        /// Units free.
        free: u32,
    },
    /// Every `qty` whole units on a line cost `price` together (3 seharga Rp10.000).
    Bundle {
        /// Units in the bundle.
        qty: u32,
        /// The bundle's price.
        price: Rupiah,
    },
}

/// The promotion a sale line got: its label and its part of the line's discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePromo {
    /// For the struk (`Beli 2 gratis 1`).
    pub label: String,
    /// Rupiah off the line (inside the line's `discount`).
    pub discount: Rupiah,
}

impl Promo {
    /// Whether it runs on `day`.
    pub fn runs_on(&self, day: &BusinessDate) -> bool {
        self.from.as_ref().is_none_or(|f| f <= day) && self.until.as_ref().is_none_or(|u| day <= u)
    }

    /// Why it cannot be stored, if it cannot (prices from 0 to
    /// [`crate::pricing::MAX_AMOUNT`]).
    pub fn check(&self) -> Result<(), String> {
        let price_ok = |p: Rupiah| (0..=crate::pricing::MAX_AMOUNT).contains(&p);
        let ok = match self.offer {
            Offer::MemberPrice { price } => price_ok(price),
            Offer::BuyGet { buy, free } => buy >= 1 && free >= 1 && buy + free <= 1000,
            Offer::Bundle { qty, price } => (2..=1000).contains(&qty) && price_ok(price),
        };
        if !ok {
            return Err(format!(
                "the promotion {:?} gives nothing sensible",
                self.offer
            ));
        }
        match (&self.from, &self.until) {
            (Some(f), Some(u)) if u < f => {
                Err(format!("the promotion ends ({u}) before it starts ({f})"))
            }
            _ => Ok(()),
        }
    }

    /// What it takes off `qty` stock units at `unit_price` each, for a member or not.
    pub fn discount(&self, qty: Qty, unit_price: Rupiah, member: bool) -> Rupiah {
        let whole = i128::from(qty.milli().max(0) / Qty::SCALE);
        let price = i128::from(unit_price.max(0));
        let gross = i128::from(qty.times_price(unit_price)).max(0);
        let off = match self.offer {
            Offer::MemberPrice {
                price: member_price,
            } if member => {
                let member_gross = i128::from(qty.times_price(member_price)).max(0);
                gross - member_gross
            }
            Offer::MemberPrice { .. } => 0,
            Offer::BuyGet { buy, free } => {
                let sets = whole / i128::from(buy + free);
                sets * i128::from(free) * price
            }
            Offer::Bundle {
                qty: size,
                price: bundle,
            } => {
                let sets = whole / i128::from(size);
                sets * (i128::from(size) * price - i128::from(bundle))
            }
        };
        // Never a surcharge, never more than the line.
        off.clamp(0, gross) as Rupiah
    }

    /// The struk's words for it.
    pub fn label(&self) -> String {
        match self.offer {
            Offer::MemberPrice { .. } => "Harga member".to_owned(),
            Offer::BuyGet { buy, free } => format!("Beli {buy} gratis {free}"),
            Offer::Bundle { qty, price } => {
                format!("{qty} seharga {}", crate::money::format_rupiah(price))
            }
        }
    }
}

/// The promotion worth most on a line of `qty` stock units at `unit_price` on `day`,
/// for a member or not; `None` when none runs or none gives anything.
pub fn best(
    promos: &[Promo],
    qty: Qty,
    unit_price: Rupiah,
    member: bool,
    day: &BusinessDate,
) -> Option<LinePromo> {
    promos
        .iter()
        .filter(|p| p.runs_on(day))
        .map(|p| (p.discount(qty, unit_price, member), p))
        .filter(|(off, _)| *off > 0)
        .max_by_key(|(off, _)| *off)
        .map(|(discount, p)| LinePromo {
            label: p.label(),
            discount,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> BusinessDate {
        d.parse().expect("date")
    }

    #[test]
    fn each_offer_by_hand() {
        let buy2get1 = Promo {
            offer: Offer::BuyGet { buy: 2, free: 1 },
            from: None,
            until: None,
        };
        // 7 units at 5.000: two sets of three, two free.
        assert_eq!(buy2get1.discount(Qty::units(7), 5_000, false), 10_000);
        assert_eq!(buy2get1.discount(Qty::units(2), 5_000, false), 0);
        let bundle = Promo {
            offer: Offer::Bundle {
                qty: 3,
                price: 10_000,
            },
            from: None,
            until: None,
        };
        // 4 at 3.500: one bundle (10.500 → 10.000) and one at the shelf price.
        assert_eq!(bundle.discount(Qty::units(4), 3_500, false), 500);
        // A "bundle" dearer than the shelf takes nothing.
        assert_eq!(bundle.discount(Qty::units(3), 3_000, false), 0);
        let member = Promo {
            offer: Offer::MemberPrice { price: 3_000 },
            from: Some(day("2026-12-01")),
            until: Some(day("2026-12-31")),
        };
        assert_eq!(member.discount(Qty(1_500), 3_500, true), 750);
        assert_eq!(member.discount(Qty(1_500), 3_500, false), 0);
        assert!(member.runs_on(&day("2026-12-31")));
        assert!(!member.runs_on(&day("2027-01-01")));
        assert!(!member.runs_on(&day("2026-11-30")));
        let all = [buy2get1, bundle, member];
        let got = best(&all, Qty::units(3), 3_500, true, &day("2026-12-02")).expect("one");
        assert_eq!(
            (got.label.as_str(), got.discount),
            ("Beli 2 gratis 1", 3_500)
        );
        assert_eq!(
            best(&all, Qty::units(1), 3_500, false, &day("2026-12-02")),
            None
        );
    }

    #[test]
    fn a_promotion_reads_back_as_written() {
        let p = Promo {
            offer: Offer::Bundle {
                qty: 3,
                price: 10_000,
            },
            from: Some(day("2026-12-01")),
            until: None,
        };
        let text = serde_json::to_string(std::slice::from_ref(&p)).expect("json");
        assert_eq!(
            text,
            r#"[{"type":"bundle","qty":3,"price":10000,"from":"2026-12-01"}]"#
        );
        assert_eq!(
            serde_json::from_str::<Vec<Promo>>(&text).expect("read"),
            vec![p]
        );
        assert!(serde_json::from_str::<Promo>(r#"{"type":"bogus"}"#).is_err());
    }

    #[test]
    fn nonsense_is_refused() {
        for offer in [
            Offer::BuyGet { buy: 0, free: 1 },
            Offer::BuyGet { buy: 2, free: 0 },
            Offer::Bundle { qty: 1, price: 5 },
            Offer::MemberPrice { price: -1 },
            Offer::Bundle {
                qty: 3,
                price: crate::pricing::MAX_AMOUNT + 1,
            },
        ] {
            let p = Promo {
                offer,
                from: None,
                until: None,
            };
            assert!(p.check().is_err(), "{offer:?}");
        }
        let backwards = Promo {
            offer: Offer::MemberPrice { price: 1 },
            from: Some(day("2026-12-10")),
            until: Some(day("2026-12-01")),
        };
        assert!(backwards.check().is_err());
    }
}
