//! Turning a cart into a priced sale: line totals, tax, cash rounding, payments, change.
//!
//! Pure arithmetic on integer rupiah. The node looks up prices; this module decides what
//! the customer owes and whether what they tendered is enough.

use crate::money::{CashRounding, Qty, Rupiah};
use crate::records::{LineUnit, Payment, SaleLine, SaleTax, canonical_method};
use crate::tax::{TaxBreakdown, TaxCode, TaxKind, TaxRule};

/// What a store prices by: its tax rule, the PBJT rate for food lines of a store whose
/// rule is not PBJT, and its cash rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PricingRules {
    /// The store's tax rule (lines without a tax code).
    pub tax: TaxRule,
    /// PBJT in basis points for lines coded `pbjt` when `tax` is not PBJT.
    pub pbjt_bp: i64,
    /// Cash rounding.
    pub rounding: CashRounding,
}

impl PricingRules {
    /// A store's rules with no per-product PBJT.
    pub fn new(tax: TaxRule, rounding: CashRounding) -> PricingRules {
        PricingRules {
            tax,
            pbjt_bp: 0,
            rounding,
        }
    }
}

/// A cart line with its catalog price resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    /// Product id.
    pub product_id: String,
    /// SKU.
    pub sku: String,
    /// Name at the time of sale.
    pub name: String,
    /// Quantity (> 0).
    pub qty: Qty,
    /// Catalog price per unit.
    pub unit_price: Rupiah,
    /// Discount on the line in rupiah (≥ 0, at most the line amount).
    pub discount: Rupiah,
    /// The product's tax code.
    pub tax_code: TaxCode,
    /// The unit sold when not the stock unit (`unit_price` is its price).
    pub unit: Option<LineUnit>,
    /// The promotion the line got (its discount is part of `discount`).
    pub promo: Option<crate::promo::LinePromo>,
}

/// Why a cart cannot become a sale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// No lines.
    #[error("a sale needs at least one line")]
    Empty,
    /// A quantity of zero or less.
    #[error("quantity of {sku} must be positive")]
    BadQty {
        /// The SKU.
        sku: String,
    },
    /// A negative price or a discount larger than the line.
    #[error("invalid price or discount on {sku}")]
    BadAmount {
        /// The SKU.
        sku: String,
    },
    /// A payment of zero or less, an unknown method name, or a reference that is empty,
    /// longer than 40 characters or holds control characters.
    #[error("invalid payment {method}={amount}")]
    BadPayment {
        /// Method.
        method: String,
        /// Amount.
        amount: Rupiah,
    },
    /// Tendered less than the total.
    #[error("payment of {paid} is short of the total {total}")]
    InsufficientPayment {
        /// What is owed.
        total: Rupiah,
        /// What was tendered.
        paid: Rupiah,
    },
    /// Non-cash payments exceed the total: no change can be given for them.
    #[error("non-cash payments of {non_cash} exceed the total {total}")]
    NonCashOverpayment {
        /// What is owed.
        total: Rupiah,
        /// Non-cash tendered.
        non_cash: Rupiah,
    },
    /// Amounts beyond what a till can sensibly handle.
    #[error("amount out of range")]
    Overflow,
}

/// A priced sale, ready to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedSale {
    /// Lines with totals and tax shares.
    pub lines: Vec<SaleLine>,
    /// Σ line totals.
    pub subtotal: Rupiah,
    /// Tax breakdown: the sums over the groups (DPP and DPP nilai lain over the taxed
    /// ones only, when some are taxed).
    pub tax: TaxBreakdown,
    /// The tax per group when not every line is under the store's rule; empty otherwise.
    pub taxes: Vec<SaleTax>,
    /// Cash rounding applied.
    pub rounding: Rupiah,
    /// What the customer pays.
    pub total: Rupiah,
    /// Payments (exact cash when none were given).
    pub payments: Vec<Payment>,
    /// Change in cash.
    pub change: Rupiah,
}

/// The largest amount a price, a cost or a sale may reach: Rp1 trillion, far beyond
/// any till.
pub const MAX_AMOUNT: Rupiah = 1_000_000_000_000;

/// Whether `method` is an acceptable payment method name (`cash`, `qris`, `e_wallet`...).
pub fn valid_method(method: &str) -> bool {
    !method.is_empty()
        && method.len() <= 24
        && method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `reference` can stand as a payment's reference (a QRIS RRN, an EDC approval
/// code): 1–40 printable characters.
pub fn valid_reference(reference: &str) -> bool {
    let n = reference.chars().count();
    (1..=40).contains(&n) && !reference.chars().any(char::is_control)
}

/// Prices a cart under the store's `rules`, and checks the payments. With no payments
/// the sale is paid in exact cash.
///
/// - Each line is taxed under its product's tax code ([`TaxRule::for_code`]); lines of
///   one rule form a group taxed once on the group's amount ([`TaxRule::apply`]), and a
///   group's tax is spread over its lines by largest remainder.
/// - Cash rounding applies to what is paid in cash: the total less the non-cash
///   payments, whenever cash is tendered (a split QRIS + cash sale included), so the
///   change is always an amount coins can pay.
/// - Payment methods are read by [`canonical_method`] (`tunai` is cash).
///
/// ```
/// use kasir_crdt::money::{CashRounding, Qty};
/// use kasir_crdt::pricing::{price_cart, CartLine, PricingRules};
/// use kasir_crdt::records::Payment;
/// use kasir_crdt::tax::{TaxCode, TaxRule};
/// let line = CartLine {
///     product_id: "p".into(), sku: "INDOMIE".into(), name: "Indomie Goreng".into(),
///     qty: Qty::units(3), unit_price: 3_500, discount: 0, tax_code: TaxCode::Standard,
///     unit: None, promo: None,
/// };
/// let pay = vec![Payment { method: "tunai".into(), amount: 20_000, reference: None, confirmed_by: None }];
/// let rules = PricingRules::new(TaxRule::none(), CashRounding::default());
/// let sale = price_cart(vec![line], &rules, pay).unwrap();
/// assert_eq!((sale.total, sale.change, sale.payments[0].method.as_str()), (10_500, 9_500, "cash"));
/// ```
pub fn price_cart(
    cart: Vec<CartLine>,
    rules: &PricingRules,
    payments: Vec<Payment>,
) -> Result<PricedSale, PricingError> {
    if cart.is_empty() {
        return Err(PricingError::Empty);
    }
    let mut lines = Vec::with_capacity(cart.len());
    let mut codes = Vec::with_capacity(cart.len());
    let mut subtotal: Rupiah = 0;
    for c in cart {
        if c.qty.milli() <= 0 || c.qty.milli() > 1_000_000_000 {
            return Err(PricingError::BadQty { sku: c.sku });
        }
        if c.unit_price < 0 || c.unit_price > MAX_AMOUNT || c.discount < 0 {
            return Err(PricingError::BadAmount { sku: c.sku });
        }
        let gross = c.qty.times_price(c.unit_price);
        if c.discount > gross {
            return Err(PricingError::BadAmount { sku: c.sku });
        }
        let line_total = gross - c.discount;
        subtotal = subtotal
            .checked_add(line_total)
            .ok_or(PricingError::Overflow)?;
        codes.push(c.tax_code);
        lines.push(SaleLine {
            product_id: c.product_id,
            sku: c.sku,
            name: c.name,
            qty: c.qty,
            unit_price: c.unit_price,
            discount: c.discount,
            tax: 0,
            line_total,
            tax_code: (c.tax_code != TaxCode::Standard).then(|| c.tax_code.as_str().to_owned()),
            unit: c.unit,
            promo: c.promo,
        });
    }
    if subtotal > MAX_AMOUNT {
        return Err(PricingError::Overflow);
    }
    let (tax, taxes) = tax_groups(&mut lines, &codes, rules);

    let mut payments = payments;
    for p in &mut payments {
        p.method = canonical_method(&p.method);
        if !valid_method(&p.method)
            || p.amount <= 0
            || p.amount > MAX_AMOUNT
            || p.reference.as_deref().is_some_and(|r| !valid_reference(r))
        {
            return Err(PricingError::BadPayment {
                method: p.method.chars().take(24).collect(),
                amount: p.amount,
            });
        }
    }
    let non_cash: Rupiah = payments
        .iter()
        .filter(|p| !p.is_cash())
        .map(|p| p.amount)
        .sum();
    let cash_tendered = payments.is_empty() || payments.iter().any(Payment::is_cash);
    let cash_due = tax.gross - non_cash;
    let rounding_adj = if cash_tendered && cash_due > 0 {
        rules.rounding.adjustment(cash_due)
    } else {
        0
    };
    let total = tax.gross + rounding_adj;
    let payments = if payments.is_empty() {
        vec![Payment {
            method: "cash".into(),
            amount: total,
            reference: None,
            confirmed_by: None,
        }]
    } else {
        payments
    };
    let paid: Rupiah = payments.iter().map(|p| p.amount).sum();
    if paid < total {
        return Err(PricingError::InsufficientPayment { total, paid });
    }
    if non_cash > total {
        return Err(PricingError::NonCashOverpayment { total, non_cash });
    }
    Ok(PricedSale {
        lines,
        subtotal,
        tax,
        taxes,
        rounding: rounding_adj,
        total,
        payments,
        change: paid - total,
    })
}

/// Spreads a discount on the whole cart over its lines in proportion to what each line
/// comes to after its own discount (largest remainder, so the shares sum exactly to
/// `discount`), adding each share to the line's discount: tax is then computed on what
/// the customer actually pays for each line.
///
/// ```
/// use kasir_crdt::money::Qty;
/// use kasir_crdt::pricing::{spread_cart_discount, CartLine};
/// use kasir_crdt::tax::TaxCode;
/// let line = |sku: &str, price| CartLine {
///     product_id: sku.into(), sku: sku.into(), name: sku.into(), qty: Qty::units(1),
///     unit_price: price, discount: 0, tax_code: TaxCode::Standard,
///     unit: None, promo: None,
/// };
/// let mut cart = vec![line("A", 10_000), line("B", 20_000)];
/// spread_cart_discount(&mut cart, 3_000).unwrap();
/// assert_eq!((cart[0].discount, cart[1].discount), (1_000, 2_000));
/// ```
pub fn spread_cart_discount(cart: &mut [CartLine], discount: Rupiah) -> Result<(), PricingError> {
    if discount == 0 {
        return Ok(());
    }
    let nets: Vec<i128> = cart
        .iter()
        .map(|c| i128::from(c.qty.times_price(c.unit_price) - c.discount).max(0))
        .collect();
    let base: i128 = nets.iter().sum();
    if discount < 0 || i128::from(discount) > base {
        return Err(PricingError::BadAmount {
            sku: "(cart discount)".into(),
        });
    }
    let mut remainders = Vec::with_capacity(cart.len());
    let mut given: Rupiah = 0;
    for (i, (line, net)) in cart.iter_mut().zip(&nets).enumerate() {
        let exact = i128::from(discount) * net;
        let share = (exact / base) as Rupiah;
        line.discount += share;
        given += share;
        remainders.push((exact % base, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take((discount - given) as usize) {
        cart[i].discount += 1;
    }
    Ok(())
}

/// Taxes the lines group by group (one group per rule their codes lead to), spreads
/// each group's tax over its lines, and sums the groups. The groups are listed only
/// when some line is not under the store's own rule.
fn tax_groups(
    lines: &mut [SaleLine],
    codes: &[TaxCode],
    rules: &PricingRules,
) -> (TaxBreakdown, Vec<SaleTax>) {
    let store = rules.tax;
    let untaxed = TaxRule {
        kind: TaxKind::None,
        rate_bp: 0,
        ..store
    };
    // Group by the effective rule (two codes leading to one rule share a group).
    let mut groups: Vec<(TaxCode, Option<TaxRule>, Vec<usize>)> = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let rule = store.for_code(*code, rules.pbjt_bp);
        let store_taxed = store.kind != TaxKind::None && store.rate_bp != 0;
        let key_code = if rule == Some(store)
            || (rule.is_none() && (*code == TaxCode::Standard || !store_taxed))
        {
            TaxCode::Standard
        } else {
            *code
        };
        match groups
            .iter_mut()
            .find(|(c, r, _)| *r == rule && *c == key_code)
        {
            Some((_, _, members)) => members.push(i),
            None => groups.push((key_code, rule, vec![i])),
        }
    }
    let mut sum = TaxBreakdown::default();
    let mut taxes = Vec::with_capacity(groups.len());
    let any_taxed = groups.iter().any(|(_, r, _)| r.is_some());
    for (code, rule, members) in &groups {
        let base: Rupiah = members.iter().map(|&i| lines[i].line_total).sum();
        let b = rule.unwrap_or(untaxed).apply(base);
        let mut group: Vec<&mut SaleLine> = lines
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .map(|(_, l)| l)
            .collect();
        allocate_tax(&mut group, b.tax);
        sum.service_charge += b.service_charge;
        sum.tax += b.tax;
        sum.gross += b.gross;
        if rule.is_some() || !any_taxed {
            sum.dpp += b.dpp;
            sum.dpp_other += b.dpp_other;
        }
        taxes.push(SaleTax {
            code: code.as_str().to_owned(),
            rule: *rule,
            base,
            service_charge: b.service_charge,
            dpp: b.dpp,
            dpp_other: b.dpp_other,
            tax: b.tax,
        });
    }
    if groups.len() == 1 && groups[0].0 == TaxCode::Standard {
        taxes.clear();
    }
    (sum, taxes)
}

/// Splits `tax` over the lines in proportion to their totals (largest remainder), so the
/// line shares add up to exactly the sale's tax.
fn allocate_tax(lines: &mut [&mut SaleLine], tax: Rupiah) {
    let base: i128 = lines.iter().map(|l| i128::from(l.line_total)).sum();
    if tax == 0 || base == 0 {
        return;
    }
    let mut remainders = Vec::with_capacity(lines.len());
    let mut allocated: Rupiah = 0;
    for (i, line) in lines.iter_mut().enumerate() {
        let exact = i128::from(tax) * i128::from(line.line_total);
        line.tax = (exact / base) as Rupiah;
        allocated += line.tax;
        remainders.push((exact % base, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take((tax - allocated) as usize) {
        lines[i].tax += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, qty: i64, price: Rupiah) -> CartLine {
        CartLine {
            product_id: sku.into(),
            sku: sku.into(),
            name: sku.into(),
            qty: Qty::units(qty),
            unit_price: price,
            discount: 0,
            tax_code: TaxCode::Standard,
            unit: None,
            promo: None,
        }
    }

    fn rules(tax: TaxRule, rounding: CashRounding) -> PricingRules {
        PricingRules::new(tax, rounding)
    }

    fn cash(amount: Rupiah) -> Payment {
        Payment {
            method: "cash".into(),
            amount,
            reference: None,
            confirmed_by: None,
        }
    }

    #[test]
    fn exact_cash_by_default() {
        let s = price_cart(
            vec![line("A", 2, 4_000)],
            &rules(TaxRule::none(), CashRounding::default()),
            vec![],
        )
        .expect("priced");
        assert_eq!((s.total, s.change, s.payments.len()), (8_000, 0, 1));
    }

    #[test]
    fn short_payment_is_refused() {
        let e = price_cart(
            vec![line("A", 2, 4_000)],
            &rules(TaxRule::none(), CashRounding::default()),
            vec![cash(5_000)],
        );
        assert_eq!(
            e,
            Err(PricingError::InsufficientPayment {
                total: 8_000,
                paid: 5_000
            })
        );
    }

    #[test]
    fn split_payment_gives_change_in_cash_only() {
        let pays = vec![
            Payment {
                method: "qris".into(),
                amount: 5_000,
                reference: None,
                confirmed_by: None,
            },
            cash(5_000),
        ];
        let s = price_cart(
            vec![line("A", 2, 4_000)],
            &rules(TaxRule::none(), CashRounding::default()),
            pays,
        )
        .expect("priced");
        assert_eq!(s.change, 2_000);
        let over = vec![Payment {
            method: "card".into(),
            amount: 9_000,
            reference: None,
            confirmed_by: None,
        }];
        assert!(matches!(
            price_cart(
                vec![line("A", 2, 4_000)],
                &rules(TaxRule::none(), CashRounding::default()),
                over
            ),
            Err(PricingError::NonCashOverpayment { .. })
        ));
    }

    #[test]
    fn tax_shares_sum_to_the_tax() {
        let lines = vec![line("A", 3, 3_500), line("B", 2, 4_000), line("C", 1, 1)];
        let s = price_cart(
            lines,
            &rules(TaxRule::ppn_12_dpp_11_12(true), CashRounding::default()),
            vec![],
        )
        .expect("priced");
        assert_eq!(s.total, 18_501);
        assert_eq!(s.lines.iter().map(|l| l.tax).sum::<Rupiah>(), s.tax.tax);
    }

    #[test]
    fn cash_rounding_only_when_all_cash() {
        let r = CashRounding {
            unit: 100,
            down: true,
        };
        let s = price_cart(
            vec![line("A", 1, 12_345)],
            &rules(TaxRule::none(), r),
            vec![],
        )
        .expect("priced");
        assert_eq!((s.total, s.rounding), (12_300, -45));
        let qris = vec![Payment {
            method: "qris".into(),
            amount: 12_345,
            reference: None,
            confirmed_by: None,
        }];
        let s = price_cart(vec![line("A", 1, 12_345)], &rules(TaxRule::none(), r), qris)
            .expect("priced");
        assert_eq!((s.total, s.rounding), (12_345, 0));
    }

    #[test]
    fn split_payment_rounds_the_cash_part() {
        // Rp27.030: QRIS 20.000 + cash 10.000 → the cash due 7.030 rounds down to 7.000.
        let r = CashRounding {
            unit: 100,
            down: true,
        };
        let pays = vec![
            Payment {
                method: "qris".into(),
                amount: 20_000,
                reference: Some("RRN123".into()),
                confirmed_by: None,
            },
            Payment {
                method: "Tunai".into(),
                amount: 10_000,
                reference: None,
                confirmed_by: None,
            },
        ];
        let s = price_cart(vec![line("A", 1, 27_030)], &rules(TaxRule::none(), r), pays)
            .expect("priced");
        assert_eq!((s.total, s.rounding, s.change), (27_000, -30, 3_000));
        assert_eq!(s.payments[1].method, "cash");
    }

    #[test]
    fn exempt_lines_bear_no_tax_beside_taxed_ones() {
        let mut beras = line("BERAS", 1, 70_000);
        beras.tax_code = TaxCode::Exempt;
        let s = price_cart(
            vec![beras, line("SABUN", 1, 11_100)],
            &rules(TaxRule::ppn_12_dpp_11_12(true), CashRounding::default()),
            vec![],
        )
        .expect("priced");
        assert_eq!((s.lines[0].tax, s.lines[1].tax), (0, 1_100));
        assert_eq!((s.tax.tax, s.tax.dpp, s.total), (1_100, 10_000, 81_100));
        assert_eq!(s.taxes.len(), 2);
        assert_eq!(s.lines[0].tax_code.as_deref(), Some("exempt"));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            price_cart(
                vec![],
                &rules(TaxRule::none(), CashRounding::default()),
                vec![]
            ),
            Err(PricingError::Empty)
        );
        assert!(matches!(
            price_cart(
                vec![line("A", 0, 1)],
                &rules(TaxRule::none(), CashRounding::default()),
                vec![]
            ),
            Err(PricingError::BadQty { .. })
        ));
        assert!(matches!(
            price_cart(
                vec![line("A", 1, 1)],
                &rules(TaxRule::none(), CashRounding::default()),
                vec![cash(-1)]
            ),
            Err(PricingError::BadPayment { .. })
        ));
    }
}
