//! Receipts computed by hand, one row per rule: a cart as a person types it (prices and
//! quantities as text, read by the one parsing rule), the store's rules and the payments
//! go in; DPP, DPP nilai lain, tax, service, rounding, total and change come out. Each
//! case names the regulation or the decision it checks, so a failing row says which
//! rule the engine broke.

use kasir_crdt::money::{CashRounding, Qty, Rupiah, parse_rupiah};
use kasir_crdt::pricing::{CartLine, PricingRules, price_cart};
use kasir_crdt::records::Payment;
use kasir_crdt::tax::{TaxCode, TaxRule};

/// What a receipt must say.
#[derive(Debug, PartialEq, Eq)]
struct Receipt {
    dpp: Rupiah,
    dpp_other: Rupiah,
    tax: Rupiah,
    service: Rupiah,
    rounding: Rupiah,
    total: Rupiah,
    change: Rupiah,
}

struct Case {
    /// What the row checks, and the rule it comes from.
    rule: &'static str,
    rules: PricingRules,
    /// (SKU, quantity as typed, unit price as typed, line discount as typed, tax code).
    cart: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        TaxCode,
    )],
    /// (method as typed, amount as typed).
    pay: &'static [(&'static str, &'static str)],
    expect: Receipt,
}

const fn with_service(mut rule: TaxRule, service_bp: i64, taxed: bool) -> TaxRule {
    rule.service_bp = service_bp;
    rule.service_taxed = taxed;
    rule
}

const fn rules(tax: TaxRule, unit: Rupiah, down: bool) -> PricingRules {
    PricingRules {
        tax,
        pbjt_bp: 1000,
        rounding: CashRounding { unit, down },
    }
}

const STD: TaxCode = TaxCode::Standard;

fn cases() -> Vec<Case> {
    vec![
        Case {
            rule: "PBJT on service: Perda DKI 1/2024 art. 51(1)(a), Bapenda DKI's example \
                   (Rp100.000 − 20% = 80.000, service 5% = 4.000, PBJT 10% × 84.000 = 8.400)",
            rules: rules(with_service(TaxRule::pbjt(1000, false), 500, true), 0, true),
            cart: &[("NASI", "1", "100.000", "20.000", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 84_000,
                dpp_other: 84_000,
                tax: 8_400,
                service: 4_000,
                rounding: 0,
                total: 92_400,
                change: 0,
            },
        },
        Case {
            rule: "PBJT presets tax the service charge unless the store says its region \
                   does not (TaxRule::pbjt)",
            rules: rules(
                with_service(
                    TaxRule::pbjt(1000, false),
                    500,
                    TaxRule::pbjt(1000, false).service_taxed,
                ),
                0,
                true,
            ),
            cart: &[("NASI", "1", "80.000", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 84_000,
                dpp_other: 84_000,
                tax: 8_400,
                service: 4_000,
                rounding: 0,
                total: 92_400,
                change: 0,
            },
        },
        Case {
            rule: "a region that does not tax service: PBJT on the food alone",
            rules: rules(
                with_service(TaxRule::pbjt(1000, false), 500, false),
                0,
                true,
            ),
            cart: &[("NASI", "1", "80.000", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 80_000,
                dpp_other: 80_000,
                tax: 8_000,
                service: 4_000,
                rounding: 0,
                total: 92_000,
                change: 0,
            },
        },
        Case {
            rule: "inclusive prices: service is a share of the price without its tax \
                   (Rp110.000 incl. PBJT 10% → 100.000 + 10.000; service 5% of 100.000)",
            rules: rules(with_service(TaxRule::pbjt(1000, true), 500, false), 0, true),
            cart: &[("SET", "1", "110.000", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 100_000,
                dpp_other: 100_000,
                tax: 10_000,
                service: 5_000,
                rounding: 0,
                total: 115_000,
                change: 0,
            },
        },
        Case {
            rule: "inclusive prices, service taxed: PBJT 10% of DPP 105.000 (goods 100.000 \
                   + service 5.000)",
            rules: rules(with_service(TaxRule::pbjt(1000, true), 500, true), 0, true),
            cart: &[("SET", "1", "110.000", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 105_000,
                dpp_other: 105_000,
                tax: 10_500,
                service: 5_000,
                rounding: 0,
                total: 115_500,
                change: 0,
            },
        },
        Case {
            rule: "split QRIS + cash: the cash part is rounded down to a coin in \
                   circulation (Permendag 35/2013 art. 6), change Rp3.000 not Rp2.970",
            rules: rules(TaxRule::none(), 100, true),
            cart: &[("BELANJA", "1", "27.030", "0", STD)],
            pay: &[("qris", "20.000"), ("tunai", "10.000")],
            expect: Receipt {
                dpp: 27_030,
                dpp_other: 27_030,
                tax: 0,
                service: 0,
                rounding: -30,
                total: 27_000,
                change: 3_000,
            },
        },
        Case {
            rule: "all non-cash: nothing to round, the acquirer takes the exact amount",
            rules: rules(TaxRule::none(), 100, true),
            cart: &[("BELANJA", "1", "27.030", "0", STD)],
            pay: &[("qris", "27.030")],
            expect: Receipt {
                dpp: 27_030,
                dpp_other: 27_030,
                tax: 0,
                service: 0,
                rounding: 0,
                total: 27_030,
                change: 0,
            },
        },
        Case {
            rule: "parsing: `25,000` from an en-US export is Rp25.000, `1,5` is one and a \
                   half (module money's rule), `Tunai` is cash",
            rules: rules(TaxRule::none(), 0, true),
            cart: &[("CABE", "1,5", "25,000", "0", STD)],
            pay: &[("Tunai", "Rp50.000")],
            expect: Receipt {
                dpp: 37_500,
                dpp_other: 37_500,
                tax: 0,
                service: 0,
                rounding: 0,
                total: 37_500,
                change: 12_500,
            },
        },
        Case {
            rule: "PPN 12% × 11/12 on exclusive prices follows the chain: DPP nilai lain \
                   round(11/12 × 10.150) = 9.304, PPN round(12% × 9.304) = 1.116 \
                   (PMK 131/2024 art. 3; half up per PER-11/PJ/2025 art. 129)",
            rules: rules(TaxRule::ppn_12_dpp_11_12(false), 0, true),
            cart: &[("SABUN", "1", "10.150", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 10_150,
                dpp_other: 9_304,
                tax: 1_116,
                service: 0,
                rounding: 0,
                total: 11_266,
                change: 0,
            },
        },
        Case {
            rule: "PPN 12% × 11/12 on inclusive prices: PPN = round(5.000 × 11/111) = 495, \
                   DPP = 4.505, DPP nilai lain 4.130 printed for information (the written \
                   convention: no whole-rupiah triple satisfies every relation)",
            rules: rules(TaxRule::ppn_12_dpp_11_12(true), 0, true),
            cart: &[("SABUN", "1", "5.000", "0", STD)],
            pay: &[],
            expect: Receipt {
                dpp: 4_505,
                dpp_other: 4_130,
                tax: 495,
                service: 0,
                rounding: 0,
                total: 5_000,
                change: 0,
            },
        },
        Case {
            rule: "exempt sembako beside PPN goods: beras bears no PPN (UU PPN art. 4A and \
                   16B, PP 49/2022); PPN on the sabun alone (11.100 incl. → 1.100)",
            rules: rules(TaxRule::ppn_12_dpp_11_12(true), 0, true),
            cart: &[
                ("BERAS5", "1", "70.000", "0", TaxCode::Exempt),
                ("SABUN", "1", "11.100", "0", STD),
            ],
            pay: &[],
            expect: Receipt {
                dpp: 10_000,
                dpp_other: 9_167,
                tax: 1_100,
                service: 0,
                rounding: 0,
                total: 81_100,
                change: 0,
            },
        },
        Case {
            rule: "a minimarket's ready food under PBJT beside PPN goods: each group taxed \
                   under its own rule on one receipt (UU HKPD art. 58: PBJT ≤ 10%)",
            rules: rules(TaxRule::ppn_12_dpp_11_12(true), 0, true),
            cart: &[
                ("SABUN", "1", "11.100", "0", STD),
                ("GORENG", "2", "5.500", "0", TaxCode::Pbjt),
            ],
            pay: &[],
            expect: Receipt {
                dpp: 20_000,
                dpp_other: 19_167,
                tax: 2_100,
                service: 0,
                rounding: 0,
                total: 22_100,
                change: 0,
            },
        },
        Case {
            rule: "PPN goods in a store that is not PKP: no PPN (only a PKP may charge it)",
            rules: rules(TaxRule::none(), 0, true),
            cart: &[("SABUN", "1", "11.100", "0", TaxCode::Ppn)],
            pay: &[],
            expect: Receipt {
                dpp: 11_100,
                dpp_other: 11_100,
                tax: 0,
                service: 0,
                rounding: 0,
                total: 11_100,
                change: 0,
            },
        },
        Case {
            rule: "rounding to the nearest Rp100: a half goes to the customer \
                   (Permendag 35/2013 art. 6)",
            rules: rules(TaxRule::none(), 100, false),
            cart: &[("BELANJA", "1", "12.450", "0", STD)],
            pay: &[("cash", "20.000")],
            expect: Receipt {
                dpp: 12_450,
                dpp_other: 12_450,
                tax: 0,
                service: 0,
                rounding: -50,
                total: 12_400,
                change: 7_600,
            },
        },
        Case {
            rule: "a stored \"nearest Rp500\" rounds down: it would charge Rp220 more \
                   while Rp100 and Rp200 coins circulate (YLKI; Permendag 35/2013)",
            rules: rules(TaxRule::none(), 500, false),
            cart: &[("BELANJA", "1", "27.280", "0", STD)],
            pay: &[("cash", "30.000")],
            expect: Receipt {
                dpp: 27_280,
                dpp_other: 27_280,
                tax: 0,
                service: 0,
                rounding: -280,
                total: 27_000,
                change: 3_000,
            },
        },
        Case {
            rule: "an EDC payment with its approval code pays exactly; no change, no \
                   rounding",
            rules: rules(TaxRule::ppn_12_dpp_11_12(true), 100, true),
            cart: &[("SABUN", "3", "3.700", "0", STD)],
            pay: &[("kartu", "11.100")],
            expect: Receipt {
                dpp: 10_000,
                dpp_other: 9_167,
                tax: 1_100,
                service: 0,
                rounding: 0,
                total: 11_100,
                change: 0,
            },
        },
    ]
}

#[test]
fn money_receipts_computed_by_hand_match_the_engine() {
    let mut failures = Vec::new();
    for case in cases() {
        let cart = case
            .cart
            .iter()
            .map(|(sku, qty, price, discount, tax_code)| CartLine {
                product_id: (*sku).into(),
                sku: (*sku).into(),
                name: (*sku).into(),
                qty: qty.parse::<Qty>().expect("a quantity"),
                unit_price: parse_rupiah(price).expect("a price"),
                discount: parse_rupiah(discount).expect("a discount"),
                tax_code: *tax_code,
                unit: None,
                promo: None,
            })
            .collect();
        let payments = case
            .pay
            .iter()
            .map(|(method, amount)| Payment {
                method: (*method).into(),
                amount: parse_rupiah(amount).expect("an amount"),
                reference: (!method.contains("tunai") && *method != "cash")
                    .then(|| "APPR-0001".to_owned()),
                confirmed_by: None,
            })
            .collect();
        let sale = price_cart(cart, &case.rules, payments).expect(case.rule);
        let got = Receipt {
            dpp: sale.tax.dpp,
            dpp_other: sale.tax.dpp_other,
            tax: sale.tax.tax,
            service: sale.tax.service_charge,
            rounding: sale.rounding,
            total: sale.total,
            change: sale.change,
        };
        assert!(
            sale.payments
                .iter()
                .all(|p| p.method != "tunai" && p.method != "kartu"),
            "methods are read by their aliases"
        );
        if got != case.expect {
            failures.push(format!(
                "{}\n  want {:?}\n  got  {:?}",
                case.rule, case.expect, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn money_typed_amounts_that_read_two_ways_are_errors_not_guesses() {
    let qty = "1.500".parse::<Qty>().expect_err("1,5 or 1500?");
    assert!(qty.to_string().contains("1,5 or 1500"), "{qty}");
    assert!(
        parse_rupiah("12.500,50")
            .expect_err("sen")
            .to_string()
            .contains("sen")
    );
    assert!(parse_rupiah("1.50.000").is_err(), "groups of three only");
    assert_eq!(
        "0.250".parse::<Qty>(),
        Ok(Qty(250)),
        "a leading 0 is a decimal"
    );
}
