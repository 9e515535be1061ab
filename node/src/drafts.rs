//! Carts and parked bills (open tickets) of this till, kept in its SQLite (`drafts`).
//!
//! A draft is what a cashier is ringing up: its lines are saved on every change, so a
//! crash, a reload or a killed WebView loses nothing, and a named draft can be parked
//! (Simpan) and resumed later. Drafts are local to the till and never synced. When a
//! draft is paid its id becomes the sale's `client_id`: a second tap on Bayar, or a
//! retry after a lost answer, returns the first sale instead of selling twice.

use kasir_crdt::Qty;
use kasir_crdt::money::qty_units;
use kasir_crdt::records::Payment;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::api::{SaleItem, SaleRequest};
use crate::error::NodeError;
use crate::node::Node;
use crate::tables::ProductRow;
use kasir_sync::now_ms;

/// One line of a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftLine {
    /// The SKU.
    pub sku: String,
    /// Quantity.
    #[serde(with = "qty_units")]
    pub qty: Qty,
    /// Discount in rupiah on the line.
    #[serde(default)]
    pub discount: i64,
    /// A price override.
    #[serde(default)]
    pub price: Option<i64>,
    /// Who approved this line's discount or price (reset when either changes).
    #[serde(default)]
    pub approved_by: Option<String>,
    /// The unit sold (`dus`) when not the stock unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A cart being rung up, or a parked bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// UUIDv7; the sale's client id once paid.
    pub draft_id: String,
    /// A name for a parked bill ("Meja 4", "Pak Budi").
    pub name: Option<String>,
    /// What is in it.
    pub lines: Vec<DraftLine>,
    /// What the customer paid so far, when the bill is paid in parts (QRIS, then
    /// the rest in cash): the sale records these with the last payment.
    pub payments: Vec<Payment>,
    /// Whether it waits in the list of open bills.
    pub parked: bool,
    /// Last change (ms).
    pub updated_at_ms: i64,
}

impl Draft {
    /// The sale request for this draft (its id as the client id), without payments
    /// (the cart is priced as if paid in exact cash; Bayar adds them).
    pub fn sale_request(&self, cashier: Option<String>) -> SaleRequest {
        SaleRequest {
            client_id: Some(self.draft_id.clone()),
            items: self
                .lines
                .iter()
                .map(|l| SaleItem {
                    code: l.sku.clone(),
                    qty: l.qty,
                    discount: l.discount,
                    discount_percent: None,
                    price: l.price,
                    unit: l.unit.clone(),
                })
                .collect(),
            payments: Vec::new(),
            cashier,
            approval: None,
            customer_id: None,
            due_date: None,
            cart_discount: None,
            cart_discount_percent: None,
        }
    }
}

const MAX_LINES: usize = 500;

fn to_json<T: Serialize>(value: &T) -> Result<String, NodeError> {
    serde_json::to_string(value).map_err(|e| NodeError::Invalid(format!("bill: {e}")))
}

impl Node {
    /// A new, empty draft.
    pub fn new_draft(&mut self, user_id: Option<&str>) -> Result<Draft, NodeError> {
        let draft = Draft {
            draft_id: uuid::Uuid::now_v7().to_string(),
            name: None,
            lines: Vec::new(),
            payments: Vec::new(),
            parked: false,
            updated_at_ms: now_ms(),
        };
        self.db.execute(
            "INSERT INTO drafts(draft_id, name, lines, user_id, parked, updated_at_ms)
             VALUES (?1, NULL, '[]', ?2, 0, ?3)",
            params![draft.draft_id, user_id, draft.updated_at_ms],
        )?;
        Ok(draft)
    }

    /// A draft by id.
    pub fn draft(&self, draft_id: &str) -> Result<Draft, NodeError> {
        let row: Option<(Option<String>, String, String, bool, i64)> = self
            .db
            .query_row(
                "SELECT name, lines, payments, parked, updated_at_ms FROM drafts
                 WHERE draft_id = ?1",
                [draft_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let (name, lines, payments, parked, updated_at_ms) =
            row.ok_or_else(|| NodeError::NotFound(format!("bill {draft_id}")))?;
        let corrupt = |e: serde_json::Error| NodeError::Corrupt(format!("bill {draft_id}: {e}"));
        Ok(Draft {
            draft_id: draft_id.to_owned(),
            name,
            lines: serde_json::from_str(&lines).map_err(corrupt)?,
            payments: serde_json::from_str(&payments).map_err(corrupt)?,
            parked,
            updated_at_ms,
        })
    }

    /// Saves a draft's lines (at most 500).
    pub fn save_draft(&mut self, draft: &Draft) -> Result<(), NodeError> {
        if draft.lines.len() > MAX_LINES {
            return Err(NodeError::Invalid(
                "a bill may have at most 500 lines".into(),
            ));
        }
        let changed = self.db.execute(
            "UPDATE drafts SET name = ?2, lines = ?3, payments = ?4, parked = ?5,
             updated_at_ms = ?6 WHERE draft_id = ?1",
            params![
                draft.draft_id,
                draft.name,
                to_json(&draft.lines)?,
                to_json(&draft.payments)?,
                draft.parked,
                now_ms()
            ],
        )?;
        if changed == 0 {
            return Err(NodeError::NotFound(format!("bill {}", draft.draft_id)));
        }
        Ok(())
    }

    /// Adds `qty` of `code` (SKU or barcode) to a draft: onto the product's plain line
    /// when there is one, else as a new line. Unknown codes are refused.
    pub fn draft_add(&mut self, draft_id: &str, code: &str, qty: Qty) -> Result<Draft, NodeError> {
        self.draft_add_unit(draft_id, code, None, qty)
    }

    /// [`Node::draft_add`] in one of the product's other units (`dus`), or the one its
    /// barcode sells when `unit` is `None`.
    pub fn draft_add_unit(
        &mut self,
        draft_id: &str,
        code: &str,
        unit: Option<&str>,
        qty: Qty,
    ) -> Result<Draft, NodeError> {
        if qty.milli() <= 0 {
            return Err(NodeError::Invalid("a quantity must be positive".into()));
        }
        let (product, unit, qty) = match crate::tables::product_and_unit(&self.db, code)? {
            Some((p, scanned)) => (p, unit.map(str::to_owned).or(scanned), qty),
            None => match self.scale_label(code)? {
                Some((p, q)) => (p, None, q),
                None => return Err(NodeError::UnknownSku(code.to_owned())),
            },
        };
        if !product.active {
            return Err(NodeError::Invalid(format!(
                "product {} is not for sale",
                product.sku
            )));
        }
        let unit = match unit {
            Some(name) => product.unit_named(&name)?.map(|u| u.name.clone()),
            None => None,
        };
        let mut draft = self.draft(draft_id)?;
        match draft.lines.iter_mut().find(|l| {
            l.sku == product.sku && l.unit == unit && l.discount == 0 && l.price.is_none()
        }) {
            Some(line) => line.qty = Qty(line.qty.milli() + qty.milli()),
            None => draft.lines.push(DraftLine {
                sku: product.sku,
                qty,
                discount: 0,
                price: None,
                approved_by: None,
                unit,
            }),
        }
        self.save_draft(&draft)?;
        Ok(draft)
    }

    /// A label from the store's scale (EAN-13 with prefix 20–29, `2X PPPPP VVVVV C`):
    /// its product, found by the PLU as SKU or barcode, and the quantity it weighs, or
    /// that its printed price buys at the product's price (thousandths, rounded).
    /// `None` when `code` is no such label or names no product; an error when it is one
    /// but damaged (its check digit), so the cashier scans it again.
    pub(crate) fn scale_label(&self, code: &str) -> Result<Option<(ProductRow, Qty)>, NodeError> {
        use kasir_crdt::store::ScaleLabels;
        use kasir_devices::barcode::{WeighedAmount, WeighedLayout, decode_weighed};
        let layout = match self.profile().scale_labels {
            ScaleLabels::Weight => WeighedLayout::default(),
            ScaleLabels::Price => WeighedLayout::priced(),
        };
        let Some(label) =
            decode_weighed(code, &layout).map_err(|e| NodeError::Invalid(e.to_string()))?
        else {
            return Ok(None);
        };
        let mut product = None;
        for plu in [label.plu.as_str(), label.plu.trim_start_matches('0')] {
            if let Some(p) = crate::tables::product_by_code(&self.db, plu)? {
                product = Some(p);
                break;
            }
        }
        let Some(product) = product else {
            return Ok(None);
        };
        let qty = match label.amount {
            WeighedAmount::Qty(q) => q,
            WeighedAmount::Price(_) if product.price <= 0 => {
                return Err(NodeError::Invalid(format!(
                    "{} has no price to weigh a priced label by",
                    product.sku
                )));
            }
            WeighedAmount::Price(price) => {
                let milli = (i128::from(price) * 1000 + i128::from(product.price) / 2)
                    / i128::from(product.price);
                Qty(i64::try_from(milli).unwrap_or(i64::MAX))
            }
        };
        if qty.milli() <= 0 {
            return Err(NodeError::Invalid(format!(
                "the scale label {code} weighs nothing"
            )));
        }
        Ok(Some((product, qty)))
    }

    /// The newest draft `user_id` was ringing up and did not park, if any.
    pub fn current_draft(&self, user_id: Option<&str>) -> Result<Option<Draft>, NodeError> {
        let id: Option<String> = self
            .db
            .query_row(
                "SELECT draft_id FROM drafts WHERE parked = 0 AND user_id IS ?1
                 ORDER BY updated_at_ms DESC LIMIT 1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| self.draft(&id)).transpose()
    }

    /// Parked bills, newest first.
    pub fn parked_drafts(&self) -> Result<Vec<Draft>, NodeError> {
        let ids: Vec<String> = self
            .db
            .prepare("SELECT draft_id FROM drafts WHERE parked = 1 ORDER BY updated_at_ms DESC")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| self.draft(id)).collect()
    }

    /// The approver a draft's sale records: every line that needs an approval (a big
    /// discount, a price override: [`Node::sale_needs`]) must carry one, unless `by` may
    /// do it alone. `Ok(None)` when nothing needed approving.
    pub fn draft_approval(
        &self,
        draft: &Draft,
        by: &crate::people::Principal,
    ) -> Result<Option<String>, NodeError> {
        let mut approver = None;
        for line in &draft.lines {
            let one = Draft {
                lines: vec![line.clone()],
                ..draft.clone()
            };
            let needs = self.sale_needs(&one.sale_request(None))?;
            let Some(needed) = needs.iter().map(|a| crate::people::required_role(*a)).max() else {
                continue;
            };
            if by.role() >= needed {
                continue;
            }
            match &line.approved_by {
                Some(name) => approver = approver.or(Some(name.clone())),
                None => {
                    return Err(NodeError::ApprovalRequired(format!(
                        "{}: this discount or price needs a {}'s approval",
                        line.sku,
                        needed.as_str()
                    )));
                }
            }
        }
        Ok(approver)
    }

    /// Forgets a draft (paid, or dropped).
    pub fn drop_draft(&mut self, draft_id: &str) -> Result<(), NodeError> {
        self.db
            .execute("DELETE FROM drafts WHERE draft_id = ?1", [draft_id])?;
        Ok(())
    }
}
