//! Laws of pricing for random carts, line and cart discounts, tax rules, tax codes, cash rounding and
//! payments: tax shares sum to the receipt's tax (per group and in all), the total is
//! the lines plus service plus the tax not already inside the prices plus rounding,
//! change is never negative and never more than the cash tendered, the cash part is
//! always payable in coins, and every amount is whole rupiah (`i64`, by type).

use kasir_crdt::money::{CashRounding, Qty, Rupiah};
use kasir_crdt::pricing::{CartLine, PricingRules, price_cart, spread_cart_discount};
use kasir_crdt::records::{Payment, SaleTax};
use kasir_crdt::tax::{TaxCode, TaxKind, TaxRule};
use proptest::prelude::*;

fn rule(pick: u8, inclusive: bool, service_bp: i64, service_taxed: bool) -> TaxRule {
    let mut r = match pick % 6 {
        0 => TaxRule::none(),
        1 => TaxRule::ppn_11(inclusive),
        2 => TaxRule::ppn_12_dpp_11_12(inclusive),
        3 => TaxRule::ppn_12_full(inclusive),
        4 => TaxRule::pbjt(500, inclusive),
        _ => TaxRule::pbjt(1000, inclusive),
    };
    r.service_bp = service_bp;
    r.service_taxed = service_taxed;
    r
}

/// `num / den` rounded half up, as the rules round.
fn round(num: i128, den: i128) -> i128 {
    (num + den / 2) / den
}

fn line() -> impl Strategy<Value = (i64, i64, u8, u8)> {
    // Quantity in thousandths, unit price, discount percent, tax code.
    (1i64..50_000, 0i64..2_000_000, 0u8..=100, 0u8..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn money_pricing_laws_hold_for_random_carts(
        lines in prop::collection::vec(line(), 1..8),
        pick in 0u8..6,
        inclusive in any::<bool>(),
        service_bp in prop::sample::select(vec![0i64, 500, 1000, 250]),
        service_taxed in any::<bool>(),
        pbjt_bp in prop::sample::select(vec![0i64, 500, 1000]),
        unit in prop::sample::select(CashRounding::UNITS.to_vec()),
        down in any::<bool>(),
        non_cash_share in 0u8..=100,
        cash_extra in 0i64..100_000,
        with_cash in any::<bool>(),
        cart_pct in 0i64..=100,
    ) {
        let mut cart: Vec<CartLine> = lines
            .iter()
            .enumerate()
            .map(|(i, &(milli, price, pct, code))| {
                let gross = Qty(milli).times_price(price);
                CartLine {
                    product_id: format!("p{i}"),
                    sku: format!("SKU{i}"),
                    name: format!("Barang {i}"),
                    qty: Qty(milli),
                    unit_price: price,
                    discount: gross * i64::from(pct) / 100,
                    tax_code: TaxCode::ALL[usize::from(code)], unit: None, promo: None
                }
            })
            .collect();
        // A discount on the whole cart spreads over the lines exactly.
        let before: Rupiah = cart.iter().map(|c| c.discount).sum();
        let net: Rupiah = cart.iter().map(|c| c.qty.times_price(c.unit_price) - c.discount).sum();
        let cart_discount = net * cart_pct / 100;
        spread_cart_discount(&mut cart, cart_discount).expect("at most the cart");
        prop_assert_eq!(cart.iter().map(|c| c.discount).sum::<Rupiah>(), before + cart_discount);
        prop_assert!(spread_cart_discount(&mut cart.clone(), net + 1).is_err(), "never more than the cart");
        let rules = PricingRules {
            tax: rule(pick, inclusive, service_bp, service_taxed),
            pbjt_bp,
            rounding: CashRounding { unit, down },
        };
        // First price with exact cash to learn the total, then pay a random split.
        let exact = price_cart(cart.clone(), &rules, vec![]).expect("a valid cart prices");
        let non_cash = exact.tax.gross * i64::from(non_cash_share) / 100;
        let mut payments = Vec::new();
        if non_cash > 0 {
            payments.push(Payment { method: "qris".into(), amount: non_cash, reference: None, confirmed_by: None });
        }
        if with_cash || non_cash < exact.tax.gross {
            payments.push(Payment {
                method: "tunai".into(),
                amount: exact.tax.gross - non_cash + cash_extra + 1,
                reference: None, confirmed_by: None
            });
        }
        let sale = price_cart(cart, &rules, payments.clone()).expect("enough was paid");

        // Tax shares sum to the receipt's tax, group by group and in all.
        let shares: Rupiah = sale.lines.iter().map(|l| l.tax).sum();
        prop_assert_eq!(shares, sale.tax.tax);
        prop_assert!(sale.lines.iter().all(|l| l.tax >= 0));
        let groups: Vec<SaleTax> = if sale.taxes.is_empty() {
            vec![SaleTax {
                code: "standard".into(),
                rule: Some(rules.tax),
                base: sale.subtotal,
                service_charge: sale.tax.service_charge,
                dpp: sale.tax.dpp,
                dpp_other: sale.tax.dpp_other,
                tax: sale.tax.tax,
            }]
        } else {
            sale.taxes.clone()
        };
        prop_assert_eq!(groups.iter().map(|g| g.tax).sum::<Rupiah>(), sale.tax.tax);
        prop_assert_eq!(groups.iter().map(|g| g.base).sum::<Rupiah>(), sale.subtotal);
        for l in &sale.lines {
            if l.tax_code.as_deref() == Some("exempt") {
                prop_assert_eq!(l.tax, 0, "an exempt line bears no tax");
            }
        }

        // The total: lines + service + the tax not inside the prices + rounding.
        let lines_total: Rupiah = sale.lines.iter().map(|l| l.line_total).sum();
        prop_assert_eq!(lines_total, sale.subtotal);
        let mut expected = lines_total + sale.tax.service_charge + sale.rounding;
        for g in &groups {
            let Some(r) = g.rule.filter(|r| r.kind != TaxKind::None && r.rate_bp > 0) else {
                continue;
            };
            let (num, den) = (
                i128::from(r.rate_bp) * i128::from(r.base_num),
                10_000 * i128::from(r.base_den),
            );
            if !r.inclusive {
                expected += g.tax;
                // The regulation's chain on exclusive prices.
                prop_assert_eq!(
                    i128::from(g.tax),
                    round(i128::from(g.dpp_other) * i128::from(r.rate_bp), 10_000)
                );
            } else if r.service_taxed {
                // Inside the prices: the goods' tax; added: the tax on the service.
                let goods_tax = round(i128::from(g.base) * num, den + num) as Rupiah;
                let on_service = g.tax - goods_tax;
                let exact = round(i128::from(g.service_charge) * num, den) as Rupiah;
                prop_assert!((on_service - exact).abs() <= 1, "{on_service} vs {exact}");
                expected += on_service;
                prop_assert_eq!(g.dpp + g.tax, g.base + g.service_charge + on_service);
            } else {
                prop_assert_eq!(g.dpp + g.tax, g.base, "the price holds DPP and tax");
            }
        }
        prop_assert_eq!(sale.total, expected);

        // Change: never negative, never more than the cash tendered, none without cash.
        let cash: Rupiah = sale.payments.iter().filter(|p| p.is_cash()).map(|p| p.amount).sum();
        prop_assert!(sale.change >= 0);
        prop_assert!(sale.change <= cash, "change {} > cash {}", sale.change, cash);
        let paid: Rupiah = sale.payments.iter().map(|p| p.amount).sum();
        prop_assert_eq!(paid - sale.total, sale.change);

        // Rounding: only of a cash part, by less than a unit, never against the customer
        // by a coin, and it leaves the cash due payable in that unit.
        let non_cash_paid = paid - cash;
        if cash == 0 || unit <= 1 {
            prop_assert_eq!(sale.rounding, 0);
        } else {
            prop_assert!(sale.rounding.abs() < unit);
            prop_assert!(2 * sale.rounding <= unit.min(CashRounding::NEAREST_MAX));
            if down || unit > CashRounding::NEAREST_MAX {
                prop_assert!(sale.rounding <= 0);
            }
            let cash_due = sale.total - non_cash_paid;
            if cash_due > 0 {
                prop_assert_eq!(cash_due % unit, 0, "the cash due is payable in coins");
            }
        }
    }
}

fn offer() -> impl Strategy<Value = kasir_crdt::promo::Offer> {
    use kasir_crdt::promo::Offer;
    prop_oneof![
        (0i64..100_000).prop_map(|price| Offer::MemberPrice { price }),
        (1u32..10, 1u32..10).prop_map(|(buy, free)| Offer::BuyGet { buy, free }),
        (2u32..10, 0i64..200_000).prop_map(|(qty, price)| Offer::Bundle { qty, price }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// A promotion is never a surcharge and never more than its line; the best of
    /// several is the largest of them; a member's price is only for members.
    #[test]
    fn money_promotions_stay_within_the_line(
        offers in proptest::collection::vec(offer(), 1..5),
        milli in 1i64..100_000,
        price in 0i64..200_000,
        member in any::<bool>(),
    ) {
        use kasir_crdt::promo::{Offer, Promo, best};
        let day: kasir_crdt::BusinessDate = "2026-12-02".parse().expect("date");
        let promos: Vec<Promo> = offers
            .iter()
            .map(|&offer| Promo { offer, from: None, until: None })
            .collect();
        let qty = Qty(milli);
        let gross = qty.times_price(price);
        let mut most = 0;
        for p in &promos {
            let off = p.discount(qty, price, member);
            prop_assert!((0..=gross).contains(&off), "{p:?} took {off} of {gross}");
            if !member && matches!(p.offer, Offer::MemberPrice { .. }) {
                prop_assert_eq!(off, 0);
            }
            most = most.max(off);
        }
        match best(&promos, qty, price, member, &day) {
            Some(got) => prop_assert_eq!(got.discount, most),
            None => prop_assert_eq!(most, 0),
        }
    }
}
