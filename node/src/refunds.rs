//! Refunds of part of a sale: per line and quantity, on any till that holds the sale.
//!
//! The arithmetic is `kasir_crdt::refund` (exact, property-tested); this module finds
//! what was refunded before — `refund_lines`, filled from every till's refunds as they
//! sync — refuses a refund of more than is left, and writes the `Refund` record into
//! this till's ledger: stock comes back, the money leaves this till's drawer (or goes
//! back the way the sale was paid), tax and rounding are taken off this day's figures.
//!
//! Two tills offline refunding the same goods cannot see each other: each refuses what
//! exceeds what *it* knows, and once they sync, a further refund is refused everywhere.

use std::collections::BTreeMap;

use kasir_crdt::Qty;
use kasir_crdt::records::Refund;
use kasir_crdt::refund::{completes_sale, refund_lines, settle};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use crate::tables::{self, SaleKey, SaleStatus};
use kasir_sync::now_ms;

/// A recorded refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundOutcome {
    /// The refund's id.
    pub refund_id: String,
    /// Money returned to the customer.
    pub amount: i64,
    /// How (`cash`, or the sale's own method).
    pub method: String,
    /// Tax taken back.
    pub tax: i64,
    /// Who approved it, when approval was needed.
    #[serde(default)]
    pub approved_by: Option<String>,
}

impl Node {
    /// Refunds `items` (SKU or barcode, quantity) of a sale, recording who did it and
    /// who approved it (the API decides whether they may: `Node::authorize`).
    pub fn refund(
        &mut self,
        sale_id: &str,
        items: &[(String, Qty)],
        reason: &str,
        cashier: Option<String>,
        approved_by: Option<String>,
    ) -> Result<RefundOutcome, NodeError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(NodeError::Invalid(
                "a refund needs a reason (at most 200 characters)".into(),
            ));
        }
        if items.is_empty() || items.len() > 500 {
            return Err(NodeError::Invalid("a refund returns 1 to 500 lines".into()));
        }
        let sale = self.sale(sale_id)?;
        if self.sale_status(sale_id)? == SaleStatus::Voided {
            return Err(NodeError::Conflict(format!(
                "sale {sale_id} is voided: nothing is left to refund"
            )));
        }
        // A barcode or a SKU in another case names the sale's SKU.
        let mut wanted = Vec::with_capacity(items.len());
        for (code, qty) in items {
            let sku = if sale.lines.iter().any(|l| l.sku == *code) {
                code.clone()
            } else {
                self.product_row(code)
                    .map(|p| p.sku)
                    .unwrap_or(code.clone())
            };
            wanted.push((sku, *qty));
        }
        let before = self.refunded_lines(sale_id)?;
        let lines = refund_lines(&sale, &before, &wanted)?;
        let refunded_amount: i64 = self.db.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM sale_events WHERE sale_id = ?1 AND kind = 'refund'",
            [SaleKey::of(sale_id)],
            |r| r.get(0),
        )?;
        let completes = completes_sale(&sale, &before, &lines);
        let paid_cash = sale.payments.is_empty() || sale.payments.iter().any(|p| p.is_cash());
        let method = if paid_cash {
            "cash".to_owned()
        } else {
            sale.payments
                .iter()
                .max_by_key(|p| p.amount)
                .map_or_else(|| "cash".to_owned(), |p| p.method.clone())
        };
        let rounding = (method == "cash").then_some(self.profile.cash_rounding);
        let (amount, rounding) = settle(&sale, &lines, refunded_amount, completes, rounding);
        let tax = lines.iter().map(|l| l.tax).sum();
        let refund = Refund {
            id: uuid::Uuid::now_v7().to_string(),
            sale_id: sale.id.clone(),
            lines,
            amount,
            reason: reason.to_owned(),
            at_ms: now_ms(),
            method: method.clone(),
            tax,
            rounding,
            till_code: Some(self.till_code.clone()),
            cashier,
            approved_by: approved_by.clone(),
        };
        self.write_ledger(
            |l| l.record_refund(&refund).map(drop),
            |tx, place| tables::index_refund(tx, &refund, place),
        )?;
        Ok(RefundOutcome {
            refund_id: refund.id,
            amount,
            method,
            tax,
            approved_by,
        })
    }

    /// Quantities already refunded per line of a sale, on every till this one knows.
    fn refunded_lines(&self, sale_id: &str) -> Result<BTreeMap<u32, Qty>, NodeError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT line, SUM(qty) FROM refund_lines WHERE sale_id = ?1 GROUP BY line",
        )?;
        let rows = stmt.query_map(params![SaleKey::of(sale_id)], |r| {
            Ok((r.get::<_, u32>(0)?, Qty(r.get(1)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
