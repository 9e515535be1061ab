//! Turning a cart into a priced sale: line totals, tax, cash rounding, payments, change.
//!
//! Pure arithmetic on integer rupiah. The node looks up prices; this module decides what
//! the customer owes and whether what they tendered is enough.

use crate::money::{CashRounding, Qty, Rupiah};
use crate::records::{Payment, SaleLine};
use crate::tax::{TaxBreakdown, TaxRule};

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
    /// Tax breakdown.
    pub tax: TaxBreakdown,
    /// Cash rounding applied.
    pub rounding: Rupiah,
    /// What the customer pays.
    pub total: Rupiah,
    /// Payments (exact cash when none were given).
    pub payments: Vec<Payment>,
    /// Change in cash.
    pub change: Rupiah,
}

const MAX_AMOUNT: Rupiah = 1_000_000_000_000; // Rp1 trillion: far beyond any till.

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

/// Prices a cart under `rule`, applies cash rounding when everything is paid in cash, and
/// checks the payments. With no payments the sale is paid in exact cash.
///
/// ```
/// use kasir_crdt::money::{CashRounding, Qty};
/// use kasir_crdt::pricing::{price_cart, CartLine};
/// use kasir_crdt::records::Payment;
/// use kasir_crdt::tax::TaxRule;
/// let line = CartLine {
///     product_id: "p".into(), sku: "INDOMIE".into(), name: "Indomie Goreng".into(),
///     qty: Qty::units(3), unit_price: 3_500, discount: 0,
/// };
/// let pay = vec![Payment { method: "cash".into(), amount: 20_000, reference: None }];
/// let sale = price_cart(vec![line], &TaxRule::none(), CashRounding::default(), pay).unwrap();
/// assert_eq!((sale.total, sale.change), (10_500, 9_500));
/// ```
pub fn price_cart(
    cart: Vec<CartLine>,
    rule: &TaxRule,
    rounding: CashRounding,
    payments: Vec<Payment>,
) -> Result<PricedSale, PricingError> {
    if cart.is_empty() {
        return Err(PricingError::Empty);
    }
    let mut lines = Vec::with_capacity(cart.len());
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
        lines.push(SaleLine {
            product_id: c.product_id,
            sku: c.sku,
            name: c.name,
            qty: c.qty,
            unit_price: c.unit_price,
            discount: c.discount,
            tax: 0,
            line_total,
        });
    }
    if subtotal > MAX_AMOUNT {
        return Err(PricingError::Overflow);
    }
    let tax = rule.apply(subtotal);
    allocate_tax(&mut lines, tax.tax);

    for p in &payments {
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
    let all_cash = payments.iter().all(Payment::is_cash);
    let rounding_adj = if all_cash {
        rounding.adjustment(tax.gross)
    } else {
        0
    };
    let total = tax.gross + rounding_adj;
    let payments = if payments.is_empty() {
        vec![Payment {
            method: "cash".into(),
            amount: total,
            reference: None,
        }]
    } else {
        payments
    };
    let paid: Rupiah = payments.iter().map(|p| p.amount).sum();
    let non_cash: Rupiah = payments
        .iter()
        .filter(|p| !p.is_cash())
        .map(|p| p.amount)
        .sum();
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
        rounding: rounding_adj,
        total,
        payments,
        change: paid - total,
    })
}

/// Splits `tax` over the lines in proportion to their totals (largest remainder), so the
/// line shares add up to exactly the sale's tax.
fn allocate_tax(lines: &mut [SaleLine], tax: Rupiah) {
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
        }
    }

    fn cash(amount: Rupiah) -> Payment {
        Payment {
            method: "cash".into(),
            amount,
            reference: None,
        }
    }

    #[test]
    fn exact_cash_by_default() {
        let s = price_cart(
            vec![line("A", 2, 4_000)],
            &TaxRule::none(),
            CashRounding::default(),
            vec![],
        )
        .expect("priced");
        assert_eq!((s.total, s.change, s.payments.len()), (8_000, 0, 1));
    }

    #[test]
    fn short_payment_is_refused() {
        let e = price_cart(
            vec![line("A", 2, 4_000)],
            &TaxRule::none(),
            CashRounding::default(),
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
            },
            cash(5_000),
        ];
        let s = price_cart(
            vec![line("A", 2, 4_000)],
            &TaxRule::none(),
            CashRounding::default(),
            pays,
        )
        .expect("priced");
        assert_eq!(s.change, 2_000);
        let over = vec![Payment {
            method: "card".into(),
            amount: 9_000,
            reference: None,
        }];
        assert!(matches!(
            price_cart(
                vec![line("A", 2, 4_000)],
                &TaxRule::none(),
                CashRounding::default(),
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
            &TaxRule::ppn_12_dpp_11_12(true),
            CashRounding::default(),
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
        let s =
            price_cart(vec![line("A", 1, 12_345)], &TaxRule::none(), r, vec![]).expect("priced");
        assert_eq!((s.total, s.rounding), (12_300, -45));
        let qris = vec![Payment {
            method: "qris".into(),
            amount: 12_345,
            reference: None,
        }];
        let s = price_cart(vec![line("A", 1, 12_345)], &TaxRule::none(), r, qris).expect("priced");
        assert_eq!((s.total, s.rounding), (12_345, 0));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            price_cart(vec![], &TaxRule::none(), CashRounding::default(), vec![]),
            Err(PricingError::Empty)
        );
        assert!(matches!(
            price_cart(
                vec![line("A", 0, 1)],
                &TaxRule::none(),
                CashRounding::default(),
                vec![]
            ),
            Err(PricingError::BadQty { .. })
        ));
        assert!(matches!(
            price_cart(
                vec![line("A", 1, 1)],
                &TaxRule::none(),
                CashRounding::default(),
                vec![cash(-1)]
            ),
            Err(PricingError::BadPayment { .. })
        ));
    }
}
