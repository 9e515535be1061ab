//! Refund arithmetic: how much of a sale's money a returned quantity takes back.
//!
//! Pure and exact. Each sale line is worth its share of what the customer paid before
//! cash rounding (`total − rounding`, shared by line totals with the largest-remainder
//! method, so service charge and exclusive tax are refunded with the goods), and its
//! own share of the tax (`SaleLine::tax`, which already sums to the sale's tax).
//! Refunding `k` of `n` units returns `⌊value·(r+k)/n⌋ − ⌊value·r/n⌋` after `r` were
//! refunded before: however a line is refunded in pieces, on however many tills, the
//! pieces sum to exactly its value. The refund that takes back the last unit of the
//! sale returns the rest of the total, so a sale refunded in full gives back exactly
//! what was paid, its rounding included.

use std::collections::BTreeMap;

use crate::money::{CashRounding, Qty, Rupiah};
use crate::records::{RefundLine, Sale};

/// Why a refund cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefundError {
    /// The sale has no line with this SKU.
    #[error("sale has no line with SKU {0}")]
    NotSold(String),
    /// More would be refunded than was sold.
    #[error("{sku}: {wanted} asked, but only {left} of {sold} sold are left to refund")]
    Exceeds {
        /// The SKU.
        sku: String,
        /// Quantity sold.
        sold: Qty,
        /// Quantity not yet refunded.
        left: Qty,
        /// Quantity asked for.
        wanted: Qty,
    },
    /// A quantity of zero or less.
    #[error("{0}: a refunded quantity must be positive")]
    NotPositive(String),
}

/// What each line of a sale is worth before cash rounding: `total − rounding` shared by
/// line totals (largest remainder; sums exactly).
pub fn line_values(sale: &Sale) -> Vec<Rupiah> {
    let base = i128::from(sale.total - sale.rounding);
    let weights: Vec<i128> = sale
        .lines
        .iter()
        .map(|l| i128::from(l.line_total.max(0)))
        .collect();
    let total_weight: i128 = weights.iter().sum();
    if total_weight == 0 {
        return vec![0; sale.lines.len()];
    }
    let mut values: Vec<i128> = weights
        .iter()
        .map(|w| (base * w).div_euclid(total_weight))
        .collect();
    let mut rest = base - values.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest fractional part first; ties to the earlier line.
    order.sort_by_key(|&i| std::cmp::Reverse((base * weights[i]).rem_euclid(total_weight)));
    for i in order {
        if rest <= 0 {
            break;
        }
        values[i] += 1;
        rest -= 1;
    }
    values.into_iter().map(|v| v as Rupiah).collect()
}

/// `⌊value · part / whole⌋`, exact for any `Rupiah` and `Qty`.
fn share(value: Rupiah, part: Qty, whole: Qty) -> Rupiah {
    if whole.milli() == 0 {
        return 0;
    }
    (i128::from(value) * i128::from(part.milli())).div_euclid(i128::from(whole.milli())) as Rupiah
}

/// The lines and money of a refund of `wanted` (SKU, quantity) from `sale`, given the
/// quantities per line index already refunded (on any till). A SKU sold on several
/// lines is taken from the first line with some left.
pub fn refund_lines(
    sale: &Sale,
    refunded_before: &BTreeMap<u32, Qty>,
    wanted: &[(String, Qty)],
) -> Result<Vec<RefundLine>, RefundError> {
    let values = line_values(sale);
    let mut taken: BTreeMap<u32, Qty> = BTreeMap::new();
    let mut wanted_by_sku: Vec<(String, Qty)> = Vec::new();
    for (sku, qty) in wanted {
        if qty.milli() <= 0 {
            return Err(RefundError::NotPositive(sku.clone()));
        }
        match wanted_by_sku.iter_mut().find(|(s, _)| s == sku) {
            Some((_, q)) => *q = Qty(q.milli() + qty.milli()),
            None => wanted_by_sku.push((sku.clone(), *qty)),
        }
    }
    for (sku, qty) in &wanted_by_sku {
        let lines: Vec<(u32, Qty, Qty)> = sale
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.sku == *sku)
            .map(|(i, l)| {
                let i = i as u32;
                let before = refunded_before.get(&i).map_or(0, |q| q.milli());
                (i, l.qty, Qty((l.qty.milli() - before).max(0)))
            })
            .collect();
        if lines.is_empty() {
            return Err(RefundError::NotSold(sku.clone()));
        }
        let left: i64 = lines.iter().map(|(_, _, left)| left.milli()).sum();
        if qty.milli() > left {
            return Err(RefundError::Exceeds {
                sku: sku.clone(),
                sold: Qty(lines.iter().map(|(_, sold, _)| sold.milli()).sum()),
                left: Qty(left),
                wanted: *qty,
            });
        }
        let mut need = qty.milli();
        for (i, _, left) in lines {
            if need == 0 {
                break;
            }
            let take = need.min(left.milli());
            if take > 0 {
                taken.insert(i, Qty(take));
                need -= take;
            }
        }
    }
    Ok(taken
        .into_iter()
        .map(|(i, qty)| {
            let line = &sale.lines[i as usize];
            let before = refunded_before.get(&i).copied().unwrap_or(Qty(0));
            let after = Qty(before.milli() + qty.milli());
            let value = values[i as usize];
            RefundLine {
                line: i,
                sku: line.sku.clone(),
                qty,
                amount: share(value, after, line.qty) - share(value, before, line.qty),
                tax: share(line.tax, after, line.qty) - share(line.tax, before, line.qty),
                unit: line.unit.clone(),
            }
        })
        .collect())
}

/// The money a refund returns and its cash rounding: the rest of the sale's total when
/// it takes back the last unit (`completes`), else its lines' amounts — rounded *down*
/// to the coin when paid back in cash (the last refund settles the difference, so the
/// customer gets exactly what they paid in the end), and never more than is left of
/// the total.
pub fn settle(
    sale: &Sale,
    lines: &[RefundLine],
    refunded_amount_before: Rupiah,
    completes: bool,
    cash: Option<CashRounding>,
) -> (Rupiah, Rupiah) {
    let raw: Rupiah = lines.iter().map(|l| l.amount).sum();
    let left = (sale.total - refunded_amount_before).max(0);
    let amount = if completes {
        left
    } else {
        let rounded = match cash {
            Some(rounding) => {
                let down = CashRounding {
                    down: true,
                    ..rounding
                };
                raw + down.adjustment(raw)
            }
            None => raw,
        };
        rounded.clamp(0, left)
    };
    (amount, amount - raw)
}

/// Whether refunding `lines` after `refunded_before` takes back every unit sold.
pub fn completes_sale(
    sale: &Sale,
    refunded_before: &BTreeMap<u32, Qty>,
    lines: &[RefundLine],
) -> bool {
    sale.lines.iter().enumerate().all(|(i, l)| {
        let i = i as u32;
        let before = refunded_before.get(&i).map_or(0, |q| q.milli());
        let now: i64 = lines
            .iter()
            .filter(|r| r.line == i)
            .map(|r| r.qty.milli())
            .sum();
        before + now >= l.qty.milli()
    })
}
