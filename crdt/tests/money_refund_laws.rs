//! Money laws of refunds (`kasir_crdt::refund`), over sales priced by the real pricing
//! code under every tax rule and cash rounding: however a sale is refunded — in pieces,
//! line by line or mixed, on any number of refunds — the pieces give back exactly what
//! was paid (rounding included), exactly its tax, never a negative amount, and never
//! more than was sold.

use std::collections::BTreeMap;

use kasir_crdt::money::{CashRounding, Qty};
use kasir_crdt::pricing::{CartLine, PricingRules, price_cart};
use kasir_crdt::records::Sale;
use kasir_crdt::refund::{RefundError, completes_sale, line_values, refund_lines, settle};
use kasir_crdt::tax::{TaxCode, TaxRule};
use proptest::prelude::*;

fn rule(pick: u8) -> TaxRule {
    match pick % 5 {
        0 => TaxRule::none(),
        1 => TaxRule::ppn_11(true),
        2 => TaxRule::ppn_11(false),
        3 => TaxRule::ppn_12_dpp_11_12(false),
        _ => {
            let mut r = TaxRule::pbjt(1000, true);
            r.service_bp = 500;
            r
        }
    }
}

fn sale(lines: &[(i64, i64, u8)], tax: u8, rounding_unit: i64) -> Option<Sale> {
    let cart = lines
        .iter()
        .enumerate()
        .map(|(i, (milli, price, discount_pct))| {
            let gross = Qty(*milli).times_price(*price);
            CartLine {
                product_id: format!("p{i}"),
                // Two lines may share a SKU (the same goods at two discounts).
                sku: format!("SKU{}", i % 3),
                name: format!("Barang {i}"),
                qty: Qty(*milli),
                unit_price: *price,
                discount: gross * i64::from(*discount_pct) / 100,
                tax_code: TaxCode::Standard,
                unit: None,
                promo: None,
            }
        })
        .collect();
    let rounding = CashRounding {
        unit: rounding_unit,
        ..CashRounding::default()
    };
    let priced = price_cart(cart, &PricingRules::new(rule(tax), rounding), Vec::new()).ok()?;
    Some(Sale {
        id: "s".into(),
        client_id: None,
        receipt_no: "T1-261202-0001".into(),
        till: "t".into(),
        till_code: "T1".into(),
        cashier: None,
        user_id: None,
        approved_by: None,
        created_at_ms: 0,
        business_date: "2026-12-02".into(),
        lines: priced.lines,
        subtotal: priced.subtotal,
        service_charge: priced.tax.service_charge,
        tax: priced.tax.tax,
        dpp: priced.tax.dpp,
        dpp_other: priced.tax.dpp_other,
        tax_rule: rule(tax),
        taxes: Vec::new(),
        seller: None,
        customer_id: None,
        due_date: None,
        customer_name: None,
        rounding: priced.rounding,
        total: priced.total,
        payments: priced.payments,
        change: priced.change,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn money_refund_laws_pieces_give_back_exactly_what_was_paid(
        lines in prop::collection::vec((1i64..20_000, 100i64..250_000, 0u8..40), 1..6),
        tax in 0u8..5,
        unit in prop::sample::select(vec![0i64, 100, 500]),
        cuts in prop::collection::vec((0usize..6, 1i64..20_000), 0..12),
    ) {
        let sale = sale(&lines, tax, unit);
        // Carts the pricing refuses are rejected, not passed: too many fail the test.
        prop_assume!(sale.is_some());
        let Some(sale) = sale else { return Ok(()) };
        let values = line_values(&sale);
        prop_assert_eq!(values.iter().sum::<i64>(), sale.total - sale.rounding);
        prop_assert!(values.iter().all(|v| *v >= 0));

        // Refund in pieces (each cut takes part of what is left of a SKU), then the rest.
        let mut before: BTreeMap<u32, Qty> = BTreeMap::new();
        let mut left: BTreeMap<String, i64> = BTreeMap::new();
        for l in &sale.lines {
            *left.entry(l.sku.clone()).or_insert(0) += l.qty.milli();
        }
        let (mut paid_back, mut tax_back, mut refunds) = (0i64, 0i64, 0);
        let mut per_line_amount: BTreeMap<u32, i64> = BTreeMap::new();
        let mut per_line_tax: BTreeMap<u32, i64> = BTreeMap::new();
        let mut wanted_rest: Vec<(String, Qty)> = Vec::new();
        let mut steps: Vec<Vec<(String, Qty)>> = Vec::new();
        let skus: Vec<String> = left.keys().cloned().collect();
        let mut remaining = left.clone();
        for (pick, milli) in cuts {
            let sku = &skus[pick % skus.len()];
            let have = remaining[sku];
            let take = milli.min(have);
            if take > 0 {
                steps.push(vec![(sku.clone(), Qty(take))]);
                *remaining.get_mut(sku).expect("sku") -= take;
            }
        }
        for (sku, have) in &remaining {
            if *have > 0 {
                wanted_rest.push((sku.clone(), Qty(*have)));
            }
        }
        if !wanted_rest.is_empty() {
            steps.push(wanted_rest);
        }
        for wanted in steps {
            let got = refund_lines(&sale, &before, &wanted).expect("within what was sold");
            let completes = completes_sale(&sale, &before, &got);
            let cash = (unit > 1).then_some(CashRounding { unit, ..CashRounding::default() });
            let (amount, _rounding) = settle(&sale, &got, paid_back, completes, cash);
            prop_assert!(amount >= 0, "a refund pays out: {amount}");
            for l in &got {
                prop_assert!(l.amount >= 0 && l.tax >= 0);
                *per_line_amount.entry(l.line).or_insert(0) += l.amount;
                *per_line_tax.entry(l.line).or_insert(0) += l.tax;
                let q = before.entry(l.line).or_insert(Qty(0));
                *q = Qty(q.milli() + l.qty.milli());
            }
            paid_back += amount;
            tax_back += got.iter().map(|l| l.tax).sum::<i64>();
            refunds += 1;
        }
        prop_assert!(refunds >= 1);
        prop_assert_eq!(paid_back, sale.total, "everything paid comes back");
        prop_assert_eq!(tax_back, sale.tax, "and exactly its tax");
        for (i, l) in sale.lines.iter().enumerate() {
            let i = i as u32;
            prop_assert_eq!(per_line_amount.get(&i).copied().unwrap_or(0), values[i as usize]);
            prop_assert_eq!(per_line_tax.get(&i).copied().unwrap_or(0), l.tax);
            prop_assert_eq!(before.get(&i).copied().unwrap_or(Qty(0)), l.qty);
        }
        // Nothing is left: any further refund is refused.
        let more = refund_lines(&sale, &before, &[(sale.lines[0].sku.clone(), Qty(1))]);
        let is_exceeds = matches!(more, Err(RefundError::Exceeds { .. }));
        prop_assert!(is_exceeds, "{more:?}");
    }
}
