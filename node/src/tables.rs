//! The read tables: products (with full-text search), stock levels and sales.
//!
//! Derived from the documents, updated incrementally in the same transaction as the
//! change that implies them, and idempotent: every insert is keyed by a record id, so
//! applying a record twice (a local commit and later the same change from a peer, or a
//! full rebuild) leaves the same rows.

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ledger::{
    LedgerDoc, LedgerRecords, StockEffect, movement_effect, refund_effects, sale_effects,
    void_effects,
};
use kasir_crdt::records::{
    AuditEvent, CashMove, CashMoveKind, Customer, DebtPayment, KASBON, MovementKind, Product,
    Refund, Sale, ShiftClose, ShiftOpen, StockMovement, Void, kasbon_of,
};
use kasir_crdt::{DocId, Qty};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// A sale id as the read tables store it: the 16 bytes of its UUID (36 characters of
/// text would cost ~20 bytes more in the sale row, its index and every line). An id that
/// is not a canonical UUID (a record written by another implementation) is kept as its
/// UTF-8 bytes behind a 0xFF marker, so decoding is never ambiguous.
pub(crate) struct SaleKey(Vec<u8>);

impl SaleKey {
    /// The stored form of `id`.
    pub(crate) fn of(id: &str) -> SaleKey {
        match uuid::Uuid::parse_str(id) {
            Ok(u) if u.hyphenated().to_string() == id => SaleKey(u.as_bytes().to_vec()),
            _ => {
                let mut v = vec![0xff];
                v.extend_from_slice(id.as_bytes());
                SaleKey(v)
            }
        }
    }

    /// The id back from its stored form.
    pub(crate) fn decode(bytes: &[u8]) -> String {
        match uuid::Uuid::from_slice(bytes) {
            Ok(u) if bytes.len() == 16 => u.hyphenated().to_string(),
            _ => String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned(),
        }
    }
}

impl rusqlite::ToSql for SaleKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Blob(&self.0),
        ))
    }
}

/// Reads a stored sale id column as text.
pub(crate) fn sale_id_column(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<String> {
    Ok(SaleKey::decode(&r.get::<_, Vec<u8>>(idx)?))
}

/// A product as the read table holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    /// Product id.
    pub product_id: String,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Selling price.
    pub price: i64,
    /// Barcodes.
    pub barcodes: Vec<String>,
    /// Cost, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
    /// Unit.
    pub unit: String,
    /// Whether it can be sold.
    pub active: bool,
    /// Stock below which it is low, when set (on a till or at head office).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_stock: Option<f64>,
    /// Its tax code when not the store's rule (`exempt`, `pbjt`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    /// Other units it is sold in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<crate::api::UnitPrice>,
    /// Grosir prices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<crate::api::TierPrice>,
    /// Promotions, with the days they run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promos: Vec<kasir_crdt::promo::Promo>,
}

impl ProductRow {
    /// The other unit called `name` (case does not matter); `None` for the stock unit
    /// itself, an error for a unit the product is not sold in.
    pub fn unit_named(&self, name: &str) -> Result<Option<&crate::api::UnitPrice>, NodeError> {
        if name.eq_ignore_ascii_case(&self.unit) {
            return Ok(None);
        }
        self.units
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .map(Some)
            .ok_or_else(|| NodeError::Invalid(format!("{} is not sold by the {name}", self.sku)))
    }

    /// The grosir price for `qty` stock units on one line, if a tier reaches it.
    pub fn tier_price(&self, qty: Qty) -> Option<i64> {
        kasir_crdt::records::tier_price(self.tiers.iter().map(|t| (t.min_qty, t.price)), qty)
    }
}

/// Upserts a product and its search entries.
pub(crate) fn upsert_product(tx: &Transaction<'_>, p: &Product) -> Result<(), NodeError> {
    let barcodes = p.barcodes.join(" ");
    let json = |empty: bool, v: serde_json::Result<String>| (!empty).then(|| v.ok()).flatten();
    let units = json(p.units.is_empty(), serde_json::to_string(&p.units));
    let tiers = json(p.tiers.is_empty(), serde_json::to_string(&p.tiers));
    let promos = json(p.promos.is_empty(), serde_json::to_string(&p.promos));
    let rowid: i64 = tx.query_row(
        "INSERT INTO products(product_id, sku, name, barcodes, price, cost, category, unit, active,
                              updated_at_ms, min_stock, tax_code, units, tiers, promos)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(product_id) DO UPDATE SET sku = excluded.sku, name = excluded.name,
           barcodes = excluded.barcodes, price = excluded.price, cost = excluded.cost,
           category = excluded.category, unit = excluded.unit, active = excluded.active,
           updated_at_ms = excluded.updated_at_ms, min_stock = excluded.min_stock,
           tax_code = excluded.tax_code, units = excluded.units, tiers = excluded.tiers,
           promos = excluded.promos
         RETURNING rowid",
        params![
            p.id,
            p.sku,
            p.name,
            barcodes,
            p.price,
            p.cost,
            p.category,
            p.unit,
            p.active,
            p.updated_at_ms,
            p.min_stock.map(|q| q.0),
            p.tax_code,
            units,
            tiers,
            promos
        ],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM products_fts WHERE rowid = ?1", [rowid])?;
    tx.execute(
        "INSERT INTO products_fts(rowid, name, sku, barcodes) VALUES (?1, ?2, ?3, ?4)",
        params![rowid, p.name, p.sku, barcodes],
    )?;
    for word in words(&p.name) {
        tx.prepare_cached("INSERT OR IGNORE INTO product_words(word) VALUES (?1)")?
            .execute([word])?;
    }
    tx.execute(
        "DELETE FROM product_barcodes WHERE product_id = ?1",
        [&p.id],
    )?;
    for b in &p.barcodes {
        tx.execute(
            "INSERT OR IGNORE INTO product_barcodes(barcode, product_id) VALUES (?1, ?2)",
            params![b, p.id],
        )?;
    }
    for u in &p.units {
        for b in &u.barcodes {
            tx.execute(
                "INSERT OR IGNORE INTO product_barcodes(barcode, product_id, unit) VALUES (?1, ?2, ?3)",
                params![b, p.id, u.name],
            )?;
        }
    }
    Ok(())
}

/// Applies one stock effect; `false` if it was already applied.
pub(crate) fn apply_effect(tx: &Transaction<'_>, e: &StockEffect) -> Result<bool, NodeError> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO stock_effects(movement_id, kind, sku, qty, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.movement_id, e.kind.as_str(), e.sku, e.qty.milli(), e.at_ms],
    )?;
    if inserted == 1 {
        tx.execute(
            "INSERT INTO stock_levels(sku, on_hand) VALUES (?1, ?2)
             ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
            params![e.sku, e.qty.milli()],
        )?;
    }
    Ok(inserted == 1)
}

/// Where a ledger's records were written: its till's code and its business day (a
/// void or refund counts on the day and till that recorded it, not the sale's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The writing till's code.
    pub(crate) till_code: &'a str,
    /// The ledger's business date.
    pub(crate) date: &'a str,
}

/// A row of `money_events`: money into (+) or out of (−) a till, by method.
struct MoneyEvent<'a> {
    event_id: &'a str,
    kind: &'a str,
    record_id: &'a str,
    at_ms: i64,
    method: &'a str,
    amount: i64,
}

fn money_event(tx: &Transaction<'_>, place: Place<'_>, e: MoneyEvent<'_>) -> Result<(), NodeError> {
    // On a second record for one event (two tills voiding one sale while apart) the
    // smaller record id wins, so every replica keeps the same row.
    tx.prepare_cached(
        "INSERT INTO money_events(event_id, kind, record_id, till_code, business_date, at_ms, method, amount)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(event_id) DO UPDATE SET record_id = excluded.record_id,
           till_code = excluded.till_code, business_date = excluded.business_date,
           at_ms = excluded.at_ms, amount = excluded.amount
         WHERE excluded.record_id < money_events.record_id",
    )?
    .execute(params![
        e.event_id,
        e.kind,
        e.record_id,
        place.till_code,
        place.date,
        e.at_ms,
        e.method,
        e.amount
    ])?;
    Ok(())
}

/// An entry of the audit trail that is not a sale, void or refund.
pub(crate) struct AuditRow<'a> {
    pub(crate) entry_id: &'a str,
    pub(crate) at_ms: i64,
    pub(crate) user: Option<&'a str>,
    pub(crate) action: &'a str,
    pub(crate) record_id: Option<&'a str>,
    pub(crate) approved_by: Option<&'a str>,
    pub(crate) detail: Option<&'a str>,
}

pub(crate) fn audit(
    tx: &Transaction<'_>,
    place: Place<'_>,
    row: &AuditRow<'_>,
) -> Result<(), NodeError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO audit_log(entry_id, at_ms, business_date, till_code, user, action, record_id, approved_by, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        row.entry_id,
        row.at_ms,
        place.date,
        place.till_code,
        row.user,
        row.action,
        row.record_id,
        row.approved_by,
        row.detail
    ])?;
    Ok(())
}

/// Indexes a sale and its stock effects.
pub(crate) fn index_sale(tx: &Transaction<'_>, sale: &Sale, doc: DocId) -> Result<bool, NodeError> {
    tx.prepare_cached("INSERT OR IGNORE INTO doc_numbers(doc_id) VALUES (?1)")?
        .execute([doc.0.as_slice()])?;
    let doc_number: i64 = tx
        .prepare_cached("SELECT n FROM doc_numbers WHERE doc_id = ?1")?
        .query_row([doc.0.as_slice()], |r| r.get(0))?;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO sales(sale_id, client_id, receipt_no, till_code, business_date,
               created_at_ms, total, change, status, doc, gross, discounts, tax, rounding, cashier, approved_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            SaleKey::of(&sale.id),
            sale.client_id,
            sale.receipt_no,
            sale.till_code,
            sale.business_date,
            sale.created_at_ms,
            sale.total,
            sale.change,
            "completed",
            doc_number,
            sale.gross(),
            sale.discounts(),
            sale.tax,
            sale.rounding,
            sale.cashier,
            sale.approved_by
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    for (i, l) in sale.lines.iter().enumerate() {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO sale_lines(sale_id, idx, sku, qty, unit_price, line_total)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            SaleKey::of(&sale.id),
            i as i64,
            l.sku,
            l.qty.milli(),
            l.unit_price,
            l.line_total
        ])?;
    }
    // A sale's stock effects are keyed by (sale, line) like `sale_lines`, and the sale
    // row above is inserted at most once, so they need no row of their own in
    // `stock_effects` (which would cost ~80 bytes per line).
    for e in sale_effects(sale) {
        tx.prepare_cached(
            "INSERT INTO stock_levels(sku, on_hand) VALUES (?1, ?2)
             ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
        )?
        .execute(params![e.sku, e.qty.milli()])?;
    }
    let place = Place {
        till_code: &sale.till_code,
        date: &sale.business_date,
    };
    for (method, amount) in sale.money_by_method() {
        let event = format!("sale:{}:{method}", sale.id);
        money_event(
            tx,
            place,
            MoneyEvent {
                event_id: &event,
                kind: "sale",
                record_id: &sale.id,
                at_ms: sale.created_at_ms,
                method: &method,
                amount,
            },
        )?;
    }
    let kasbon = sale.kasbon();
    if kasbon > 0 {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO debt_entries(entry_id, customer_id, sale_id, kind, amount,
               due_date, at_ms, till_code) VALUES (?1, ?2, ?3, 'credit', ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            format!("credit:{}", sale.id),
            sale.customer_id,
            sale.id,
            kasbon,
            sale.due_date,
            sale.created_at_ms,
            sale.till_code
        ])?;
    }
    refresh_status(tx, &sale.id)?;
    Ok(true)
}

/// A kasbon taken back by a void or a refund (its customer is the credit's, found by
/// the sale when read: the void may arrive before the sale).
fn debt_reversal(
    tx: &Transaction<'_>,
    entry_id: &str,
    kind: &str,
    sale_id: &str,
    amount: i64,
    at_ms: i64,
    till_code: &str,
) -> Result<(), NodeError> {
    if amount <= 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO debt_entries(entry_id, customer_id, sale_id, kind, amount,
           due_date, at_ms, till_code) VALUES (?1, NULL, ?2, ?3, ?4, NULL, ?5, ?6)",
    )?
    .execute(params![entry_id, sale_id, kind, -amount, at_ms, till_code])?;
    Ok(())
}

/// Indexes a customer version: the newest per customer wins (the record key breaks a
/// tie the same way on every replica).
pub(crate) fn index_customer(tx: &Transaction<'_>, c: &Customer) -> Result<(), NodeError> {
    tx.prepare_cached(
        "INSERT INTO customers(customer_id, name, phone, tier, active, updated_at_ms, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT(customer_id) DO UPDATE SET
           name = CASE WHEN excluded.updated_at_ms > customers.updated_at_ms
                         OR (excluded.updated_at_ms = customers.updated_at_ms AND excluded.name > customers.name)
                       THEN excluded.name ELSE customers.name END,
           phone = CASE WHEN excluded.updated_at_ms > customers.updated_at_ms THEN excluded.phone ELSE customers.phone END,
           tier = CASE WHEN excluded.updated_at_ms > customers.updated_at_ms THEN excluded.tier ELSE customers.tier END,
           active = CASE WHEN excluded.updated_at_ms > customers.updated_at_ms THEN excluded.active ELSE customers.active END,
           updated_at_ms = max(customers.updated_at_ms, excluded.updated_at_ms),
           created_at_ms = min(customers.created_at_ms, excluded.created_at_ms)",
    )?
    .execute(params![c.id, c.name, c.phone, c.tier, c.active, c.at_ms])?;
    Ok(())
}

/// Indexes a payment against kasbon: off the customer's debt, into the till's money.
pub(crate) fn index_debt_payment(
    tx: &Transaction<'_>,
    p: &DebtPayment,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: p.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO debt_entries(entry_id, customer_id, sale_id, kind, amount,
           due_date, at_ms, till_code) VALUES (?1, ?2, NULL, 'payment', ?3, NULL, ?4, ?5)",
    )?
    .execute(params![
        format!("payment:{}", p.id),
        p.customer_id,
        -p.amount,
        p.at_ms,
        place.till_code
    ])?;
    let event = format!("kasbon:{}", p.id);
    money_event(
        tx,
        place,
        MoneyEvent {
            event_id: &event,
            kind: "kasbon_payment",
            record_id: &p.id,
            at_ms: p.at_ms,
            method: &p.method,
            amount: p.amount,
        },
    )?;
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &p.id,
            at_ms: p.at_ms,
            user: p.cashier.as_deref(),
            action: "kasbon_payment",
            record_id: Some(&p.customer_id),
            approved_by: None,
            detail: None,
        },
    )
}

/// Indexes a void.
pub(crate) fn index_void(
    tx: &Transaction<'_>,
    void: &Void,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: void.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    let reversed = void.reversed.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO sale_events(event_id, sale_id, kind, amount, at_ms, record_id, till_code,
           business_date, tax, rounding, cashier, approved_by)
         VALUES (?1, ?2, 'void', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(event_id) DO UPDATE SET amount = excluded.amount, at_ms = excluded.at_ms,
           record_id = excluded.record_id, till_code = excluded.till_code,
           business_date = excluded.business_date, tax = excluded.tax,
           rounding = excluded.rounding, cashier = excluded.cashier,
           approved_by = excluded.approved_by
         WHERE excluded.record_id < sale_events.record_id",
        params![
            format!("void:{}", void.sale_id),
            SaleKey::of(&void.sale_id),
            reversed.total,
            void.at_ms,
            void.id,
            place.till_code,
            place.date,
            reversed.tax,
            reversed.rounding,
            void.cashier,
            void.approved_by
        ],
    )?;
    let kasbon = kasbon_of(&void.payments);
    debt_reversal(
        tx,
        &format!("void:{}", void.sale_id),
        "void",
        &void.sale_id,
        kasbon,
        void.at_ms,
        place.till_code,
    )?;
    for p in &void.payments {
        let event = format!("void:{}:{}", void.sale_id, p.method);
        money_event(
            tx,
            place,
            MoneyEvent {
                event_id: &event,
                kind: "void",
                record_id: &void.id,
                at_ms: void.at_ms,
                method: &p.method,
                amount: -p.amount,
            },
        )?;
    }
    for e in void_effects(void) {
        apply_effect(tx, &e)?;
    }
    refresh_status(tx, &void.sale_id)
}

/// Indexes a refund.
pub(crate) fn index_refund(
    tx: &Transaction<'_>,
    refund: &Refund,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: refund.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    tx.execute(
        "INSERT OR IGNORE INTO sale_events(event_id, sale_id, kind, amount, at_ms, record_id,
           till_code, business_date, tax, rounding, cashier, approved_by)
         VALUES (?1, ?2, 'refund', ?3, ?4, ?1, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            refund.id,
            SaleKey::of(&refund.sale_id),
            refund.amount,
            refund.at_ms,
            place.till_code,
            place.date,
            refund.tax,
            refund.rounding,
            refund.cashier,
            refund.approved_by
        ],
    )?;
    for l in &refund.lines {
        tx.execute(
            "INSERT OR IGNORE INTO refund_lines(refund_id, sale_id, line, qty, amount, tax)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                refund.id,
                SaleKey::of(&refund.sale_id),
                l.line,
                l.qty.milli(),
                l.amount,
                l.tax
            ],
        )?;
    }
    if refund.method == KASBON {
        debt_reversal(
            tx,
            &format!("refund:{}", refund.id),
            "refund",
            &refund.sale_id,
            refund.amount,
            refund.at_ms,
            place.till_code,
        )?;
    }
    let event = format!("refund:{}", refund.id);
    money_event(
        tx,
        place,
        MoneyEvent {
            event_id: &event,
            kind: "refund",
            record_id: &refund.id,
            at_ms: refund.at_ms,
            method: &refund.method,
            amount: -refund.amount,
        },
    )?;
    for e in refund_effects(refund) {
        apply_effect(tx, &e)?;
    }
    refresh_status(tx, &refund.sale_id)
}

fn refresh_status(tx: &Transaction<'_>, sale_id: &str) -> Result<(), NodeError> {
    tx.prepare_cached(
        "UPDATE sales SET status = CASE
            WHEN EXISTS (SELECT 1 FROM sale_events WHERE sale_id = ?1 AND kind = 'void') THEN 'voided'
            WHEN (SELECT COALESCE(SUM(amount), 0) FROM sale_events WHERE sale_id = ?1 AND kind = 'refund') >= total
              AND EXISTS (SELECT 1 FROM sale_events WHERE sale_id = ?1 AND kind = 'refund') THEN 'refunded'
            WHEN EXISTS (SELECT 1 FROM sale_events WHERE sale_id = ?1 AND kind = 'refund') THEN 'partially_refunded'
            ELSE 'completed' END
         WHERE sale_id = ?1",
    )?
    .execute([SaleKey::of(sale_id)])?;
    Ok(())
}

/// Indexes a stock movement record.
pub(crate) fn index_movement(
    tx: &Transaction<'_>,
    m: &StockMovement,
    place: Place<'_>,
) -> Result<bool, NodeError> {
    let action = format!("stock_{}", m.kind.as_str());
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &m.id,
            at_ms: m.at_ms,
            user: m.user.as_deref(),
            action: &action,
            record_id: Some(&m.sku),
            approved_by: m.approved_by.as_deref(),
            detail: None,
        },
    )?;
    if matches!(m.kind, MovementKind::Receive | MovementKind::SupplierReturn) {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO purchases(movement_id, kind, sku, qty, cost, supplier, at_ms,
               till_code, user) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            m.id,
            m.kind.as_str(),
            m.sku,
            m.qty.milli(),
            m.cost,
            m.supplier,
            m.at_ms,
            place.till_code,
            m.user
        ])?;
    }
    if let (MovementKind::Transfer, Some(transfer), Some(other)) =
        (m.kind, &m.transfer_id, &m.other_store)
    {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO transfers(movement_id, transfer_id, other_store, sku, qty, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![m.id, transfer, other, m.sku, m.qty.milli(), m.at_ms])?;
    }
    apply_effect(tx, &movement_effect(m))
}

/// Whether a transfer's `sku` was already received here (by any till of this outlet
/// this one has synced with).
pub(crate) fn transfer_received(
    db: &Connection,
    transfer_id: &str,
    sku: &str,
) -> Result<bool, NodeError> {
    Ok(db
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM transfers WHERE transfer_id = ?1 AND sku = ?2 AND qty > 0)",
        )?
        .query_row(params![transfer_id, sku], |r| r.get(0))?)
}

/// Indexes a shift opening.
pub(crate) fn index_shift_open(
    tx: &Transaction<'_>,
    open: &ShiftOpen,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: open.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    tx.execute(
        "INSERT OR IGNORE INTO till_shifts(shift_id, till_code, cashier, opening_cash, opened_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![open.id, place.till_code, open.cashier, open.opening_cash, open.at_ms],
    )?;
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &open.id,
            at_ms: open.at_ms,
            user: Some(&open.cashier),
            action: "shift_open",
            record_id: Some(&open.id),
            approved_by: None,
            detail: None,
        },
    )
}

/// Indexes a shift closing.
pub(crate) fn index_shift_close(
    tx: &Transaction<'_>,
    close: &ShiftClose,
    place: Place<'_>,
) -> Result<(), NodeError> {
    // Its own table, not columns of the opening's row: the close may be in a later
    // day's ledger, which can arrive (or be rebuilt) before the opening's.
    tx.execute(
        "INSERT OR IGNORE INTO till_shift_closes(shift_id, counted_cash, expected_cash, closed_at_ms, closed_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![close.shift_id, close.counted_cash, close.expected_cash, close.at_ms, close.cashier],
    )?;
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &close.id,
            at_ms: close.at_ms,
            user: close.cashier.as_deref(),
            action: "shift_close",
            record_id: Some(&close.shift_id),
            approved_by: None,
            detail: None,
        },
    )
}

/// Indexes cash put into or taken out of a drawer.
pub(crate) fn index_cash_move(
    tx: &Transaction<'_>,
    cash: &CashMove,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: cash.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    let (kind, amount) = match cash.kind {
        CashMoveKind::In => ("cash_in", cash.amount),
        CashMoveKind::Out => ("cash_out", -cash.amount),
    };
    let event = format!("cash:{}", cash.id);
    money_event(
        tx,
        place,
        MoneyEvent {
            event_id: &event,
            kind,
            record_id: &cash.id,
            at_ms: cash.at_ms,
            method: "cash",
            amount,
        },
    )?;
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &cash.id,
            at_ms: cash.at_ms,
            user: cash.cashier.as_deref(),
            action: kind,
            record_id: Some(&cash.shift_id),
            approved_by: None,
            detail: None,
        },
    )
}

/// Indexes an audit event.
pub(crate) fn index_audit_event(
    tx: &Transaction<'_>,
    e: &AuditEvent,
    place: Place<'_>,
) -> Result<(), NodeError> {
    let place = Place {
        till_code: e.till_code.as_deref().unwrap_or(place.till_code),
        ..place
    };
    audit(
        tx,
        place,
        &AuditRow {
            entry_id: &e.id,
            at_ms: e.at_ms,
            user: e.user.as_deref(),
            action: &e.action,
            record_id: e.record_id.as_deref(),
            approved_by: e.approved_by.as_deref(),
            detail: e.detail.as_deref(),
        },
    )
}

/// The sequence number of `receipt` if this till (`till_code`) issued it:
/// `T1-20261202-0042` → 42.
pub(crate) fn receipt_seq(receipt: &str, till_code: &str) -> Option<i64> {
    receipt
        .strip_prefix(till_code)?
        .strip_prefix('-')?
        .rsplit('-')
        .next()?
        .parse()
        .ok()
}

/// Moves this till's receipt counters past `sales` it issued (its own ledger coming
/// back from a peer after a restore), so no receipt number is issued twice.
pub(crate) fn bump_receipt_counters(
    tx: &Transaction<'_>,
    sales: &[Sale],
    till_code: &str,
) -> Result<(), NodeError> {
    for sale in sales {
        if let Some(seq) = receipt_seq(&sale.receipt_no, till_code) {
            tx.prepare_cached(
                "INSERT INTO receipt_counters(date, seq) VALUES (?1, ?2)
                 ON CONFLICT(date) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            )?
            .execute(params![sale.business_date, seq])?;
        }
    }
    Ok(())
}

/// Indexes records of one ledger (all of them on a rebuild, or those a merge brought).
pub(crate) fn index_records(
    tx: &Transaction<'_>,
    recs: &LedgerRecords,
    doc: DocId,
    place: Place<'_>,
) -> Result<(), NodeError> {
    for s in &recs.sales {
        index_sale(tx, s, doc)?;
    }
    for v in &recs.voids {
        index_void(tx, v, place)?;
    }
    for f in &recs.refunds {
        index_refund(tx, f, place)?;
    }
    for m in &recs.movements {
        index_movement(tx, m, place)?;
    }
    for o in &recs.shift_opens {
        index_shift_open(tx, o, place)?;
    }
    for c in &recs.shift_closes {
        index_shift_close(tx, c, place)?;
    }
    for c in &recs.cash_moves {
        index_cash_move(tx, c, place)?;
    }
    for e in &recs.audit {
        index_audit_event(tx, e, place)?;
    }
    for c in &recs.customers {
        index_customer(tx, c)?;
    }
    for p in &recs.debt_payments {
        index_debt_payment(tx, p, place)?;
    }
    Ok(())
}

/// Indexes every record of a ledger (idempotent). Returns the number of records that did
/// not decode (reported, never fatal: one bad record must not hide the rest of a day).
pub(crate) fn index_ledger(
    tx: &Transaction<'_>,
    ledger: &LedgerDoc,
    till_code: &str,
) -> Result<usize, NodeError> {
    let doc = ledger.doc_ref().id();
    let date = ledger.meta().date.to_string();
    let place = Place {
        till_code,
        date: &date,
    };
    let (recs, bad) = ledger.all_records();
    index_records(tx, &recs, doc, place)?;
    Ok(bad)
}

/// Indexes every product of the catalog; returns the number that did not decode.
pub(crate) fn index_catalog(
    tx: &Transaction<'_>,
    catalog: &CatalogDoc,
) -> Result<usize, NodeError> {
    let mut bad = 0;
    for p in catalog.products() {
        match p {
            Ok(p) => upsert_product(tx, &p)?,
            Err(_) => bad += 1,
        }
    }
    Ok(bad)
}

fn row_to_product(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProductRow> {
    let barcodes: String = r.get(4)?;
    Ok(ProductRow {
        product_id: r.get(0)?,
        sku: r.get(1)?,
        name: r.get(2)?,
        price: r.get(3)?,
        barcodes: barcodes.split_whitespace().map(str::to_owned).collect(),
        cost: r.get(5)?,
        unit: r.get(6)?,
        active: r.get(7)?,
        min_stock: r.get::<_, Option<i64>>(8)?.map(|q| Qty(q).as_f64()),
        tax_code: r.get(9)?,
        // Written by `upsert_product` from the catalog's own records: unreadable only if
        // the file was tampered with, and then the product sells in its stock unit.
        units: r
            .get::<_, Option<String>>(10)?
            .and_then(|j| serde_json::from_str::<Vec<kasir_crdt::records::SellUnit>>(&j).ok())
            .map(|us| us.iter().map(Into::into).collect())
            .unwrap_or_default(),
        tiers: r
            .get::<_, Option<String>>(11)?
            .and_then(|j| serde_json::from_str::<Vec<kasir_crdt::records::PriceTier>>(&j).ok())
            .map(|ts| ts.iter().map(Into::into).collect())
            .unwrap_or_default(),
        promos: r
            .get::<_, Option<String>>(12)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    })
}

const PRODUCT_COLS: &str = "p.product_id, p.sku, p.name, p.price, p.barcodes, p.cost, p.unit, p.active, p.min_stock, \
     p.tax_code, p.units, p.tiers, p.promos";

/// A product by exact SKU or barcode, and the unit that barcode sells (a carton's
/// barcode sells a `dus`), `None` for the stock unit.
pub(crate) fn product_and_unit(
    conn: &Connection,
    code: &str,
) -> Result<Option<(ProductRow, Option<String>)>, NodeError> {
    let by_sku = conn
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLS}, NULL FROM products p WHERE p.sku = ?1 LIMIT 1"
        ))?
        .query_row([code], |r| Ok((row_to_product(r)?, r.get(13)?)))
        .optional()?;
    if by_sku.is_some() {
        return Ok(by_sku);
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PRODUCT_COLS}, b.unit FROM product_barcodes b
               JOIN products p ON p.product_id = b.product_id
             WHERE b.barcode = ?1 LIMIT 1"
        ))?
        .query_row([code], |r| Ok((row_to_product(r)?, r.get(13)?)))
        .optional()?)
}

/// A product by exact SKU, or else by barcode.
pub(crate) fn product_by_code(
    conn: &Connection,
    code: &str,
) -> Result<Option<ProductRow>, NodeError> {
    Ok(product_and_unit(conn, code)?.map(|(p, _)| p))
}

/// The lowercase alphanumeric words of a text (as FTS5's unicode61 tokenizer sees them).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// Word-prefix tokens, AND-ed and quoted for FTS5.
fn fts_prefix_query(tokens: &[String]) -> Option<String> {
    (!tokens.is_empty()).then(|| {
        tokens
            .iter()
            .map(|t| format!("\"{t}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// Optimal-string-alignment edit distance (a transposition counts as one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// A query token that prefixes no known word is replaced by the closest known word
/// (edit distance ≤ 1, or 2 for tokens of 6+ letters) sharing its first letter, or of
/// the same length when the first letter itself is the typo.
fn correct_token(conn: &Connection, token: &str) -> Result<Option<String>, NodeError> {
    let known: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM product_words WHERE word >= ?1 AND word < ?1 || char(1114111) LIMIT 1",
        )?
        .query_row([token], |r| r.get(0))
        .optional()?;
    if known.is_some() || token.chars().all(|c| c.is_ascii_digit()) {
        return Ok(Some(token.to_owned()));
    }
    let len = token.chars().count() as i64;
    let max = if len >= 6 { 2 } else { 1 };
    let first: String = token.chars().take(1).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT word FROM product_words
         WHERE ((word >= ?1 AND word < ?1 || char(1114111)) OR length(word) = ?2)
           AND length(word) BETWEEN ?2 - 2 AND ?2 + 2 LIMIT 5000",
    )?;
    let mut best: Option<(usize, String)> = None;
    for w in stmt.query_map(params![first, len], |r| r.get::<_, String>(0))? {
        let w = w?;
        // Compare against the word cut to the token's length too: the token may be a
        // mistyped prefix ("indomei" for "indomie goreng").
        let cut: String = w.chars().take(token.chars().count()).collect();
        let d = edit_distance(token, &w).min(edit_distance(token, &cut));
        if d <= max
            && best
                .as_ref()
                .is_none_or(|(bd, bw)| d < *bd || (d == *bd && w.len() < bw.len()))
        {
            best = Some((d, w));
        }
    }
    Ok(best.map(|(_, w)| w))
}

/// Matches of an FTS5 query, unranked and bounded: ranking every match of a short prefix
/// over a large catalog is what makes search slow, so candidates are scored in Rust.
fn fts_candidates(
    conn: &Connection,
    query: &str,
    cap: usize,
) -> Result<Vec<ProductRow>, NodeError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLS} FROM products_fts f JOIN products p ON p.rowid = f.rowid
         WHERE products_fts MATCH ?1 LIMIT ?2"
    ))?;
    Ok(stmt
        .query_map(params![query, cap as i64], row_to_product)?
        .collect::<Result<_, _>>()?)
}

/// Orders candidates: more query tokens at the start of a name word first, then the
/// name that starts with the first token, then shorter names.
fn rank(tokens: &[String], rows: &mut [ProductRow]) {
    let score = |p: &ProductRow| {
        let name_words: Vec<String> = words(&p.name).collect();
        let hits = tokens
            .iter()
            .filter(|t| name_words.iter().any(|w| w.starts_with(t.as_str())))
            .count();
        let leading = tokens.first().is_some_and(|t| {
            name_words
                .first()
                .is_some_and(|w| w.starts_with(t.as_str()))
        });
        (
            std::cmp::Reverse(hits),
            std::cmp::Reverse(leading),
            p.name.len(),
        )
    };
    rows.sort_by_cached_key(|p| (score(p), p.name.clone()));
}

/// Search by name, SKU or barcode: an exact code first, then word prefixes, then the
/// same with typos corrected against the catalog's words (`indomei gorng` finds
/// "Indomie Goreng").
/// The categories of products for sale, by name (the till app's chips).
pub(crate) fn categories(conn: &Connection) -> Result<Vec<String>, NodeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT category FROM products
         WHERE active AND category IS NOT NULL AND category <> '' ORDER BY category",
    )?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Products for sale of one category, by name.
pub(crate) fn products_in_category(
    conn: &Connection,
    category: &str,
    limit: usize,
) -> Result<Vec<ProductRow>, NodeError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRODUCT_COLS} FROM products p WHERE p.category = ?1 AND p.active
         ORDER BY p.name LIMIT ?2"
    ))?;
    Ok(stmt
        .query_map(
            params![category, limit.clamp(1, 500) as i64],
            row_to_product,
        )?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn search_products(
    conn: &Connection,
    q: &str,
    limit: usize,
) -> Result<Vec<ProductRow>, NodeError> {
    const CANDIDATES: usize = 200;
    let limit = limit.clamp(1, 500);
    let q = q.trim();
    if q.is_empty() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PRODUCT_COLS} FROM products p ORDER BY p.name LIMIT ?1"
        ))?;
        return Ok(stmt
            .query_map([limit as i64], row_to_product)?
            .collect::<Result<_, _>>()?);
    }
    let mut out: Vec<ProductRow> = Vec::new();
    if let Some(p) = product_by_code(conn, q)? {
        out.push(p);
    }
    let tokens: Vec<String> = words(q).take(8).collect();
    let mut found = match fts_prefix_query(&tokens) {
        Some(fq) => fts_candidates(conn, &fq, CANDIDATES)?,
        None => Vec::new(),
    };
    let mut used = tokens.clone();
    if found.len() < limit && !tokens.is_empty() {
        let mut corrected = Vec::with_capacity(tokens.len());
        for t in &tokens {
            if let Some(c) = correct_token(conn, t)? {
                corrected.push(c);
            }
        }
        if corrected != tokens
            && let Some(fq) = fts_prefix_query(&corrected)
        {
            found.extend(fts_candidates(conn, &fq, CANDIDATES)?);
            used = corrected;
        }
    }
    rank(&used, &mut found);
    for r in found {
        if out.len() >= limit {
            break;
        }
        if !out.iter().any(|o| o.product_id == r.product_id) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Stock level of one SKU.
pub(crate) fn on_hand(conn: &Connection, sku: &str) -> Result<Qty, NodeError> {
    Ok(Qty(conn
        .prepare_cached("SELECT on_hand FROM stock_levels WHERE sku = ?1")?
        .query_row([sku], |r| r.get(0))
        .optional()?
        .unwrap_or(0)))
}

/// A stock level row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRow {
    /// SKU.
    pub sku: String,
    /// On hand (may be negative: oversold).
    pub on_hand: f64,
    /// On hand < 0.
    pub oversold: bool,
    /// The average purchase cost per stock unit (HPP rata-rata: Σ qty × cost ÷ Σ qty over
    /// the costed receipts), once goods were received with a cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_cost: Option<i64>,
}

/// Stock levels of every catalog product (and any SKU with movements), or of one SKU.
pub(crate) fn stock_levels(
    conn: &Connection,
    sku: Option<&str>,
) -> Result<Vec<StockRow>, NodeError> {
    // The cost average in floating point: Σ qty × cost of years of receipts may pass i64.
    let sql = "SELECT l.sku, l.q, c.avg FROM (
                 SELECT sku, SUM(q) AS q FROM (
                   SELECT sku, on_hand AS q FROM stock_levels
                   UNION ALL SELECT sku, 0 FROM products)
                 WHERE ?1 IS NULL OR sku = ?1 GROUP BY sku) l
               LEFT JOIN (
                 SELECT sku, CAST(ROUND(TOTAL(qty * CAST(cost AS REAL)) / TOTAL(qty)) AS INTEGER) AS avg
                   FROM purchases WHERE kind = 'receive' AND cost IS NOT NULL AND qty > 0
                  GROUP BY sku) c ON c.sku = l.sku
               ORDER BY l.sku";
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([sku], |r| {
            let q: i64 = r.get(1)?;
            Ok(StockRow {
                sku: r.get(0)?,
                on_hand: Qty(q).as_f64(),
                oversold: q < 0,
                avg_cost: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A receipt from or a return to a supplier, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurchaseRow {
    /// The movement.
    pub movement_id: String,
    /// `receive` or `supplier_return`.
    pub kind: String,
    /// SKU.
    pub sku: String,
    /// Stock units in (+) or back to the supplier (−).
    pub qty: f64,
    /// Rupiah per stock unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
    /// The supplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// The till that recorded it.
    pub till_code: String,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Receipts and returns, newest first: of one SKU, one supplier, or all.
pub(crate) fn purchases(
    conn: &Connection,
    sku: Option<&str>,
    supplier: Option<&str>,
    limit: usize,
) -> Result<Vec<PurchaseRow>, NodeError> {
    let mut stmt = conn.prepare_cached(
        "SELECT movement_id, kind, sku, qty, cost, supplier, at_ms, till_code, user FROM purchases
          WHERE (?1 IS NULL OR sku = ?1) AND (?2 IS NULL OR supplier = ?2)
          ORDER BY at_ms DESC, movement_id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![sku, supplier, limit as i64], |r| {
            Ok(PurchaseRow {
                movement_id: r.get(0)?,
                kind: r.get(1)?,
                sku: r.get(2)?,
                qty: Qty(r.get(3)?).as_f64(),
                cost: r.get(4)?,
                supplier: r.get(5)?,
                at_ms: r.get(6)?,
                till_code: r.get(7)?,
                user: r.get(8)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A sale line as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleLineRow {
    /// SKU.
    pub sku: String,
    /// Quantity.
    pub qty: f64,
    /// Unit price.
    pub unit_price: i64,
    /// Line total.
    pub line_total: i64,
}

/// Where a sale stands, as the read tables derive it from its voids and refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    /// Sold, nothing taken back.
    Completed,
    /// Voided whole.
    Voided,
    /// Refunded in full.
    Refunded,
    /// Partly refunded.
    PartiallyRefunded,
}

impl SaleStatus {
    /// The name stored in the read tables and used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            SaleStatus::Completed => "completed",
            SaleStatus::Voided => "voided",
            SaleStatus::Refunded => "refunded",
            SaleStatus::PartiallyRefunded => "partially_refunded",
        }
    }
}

impl std::str::FromStr for SaleStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<SaleStatus, ()> {
        [
            SaleStatus::Completed,
            SaleStatus::Voided,
            SaleStatus::Refunded,
            SaleStatus::PartiallyRefunded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or(())
    }
}

impl rusqlite::types::FromSql for SaleStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|()| rusqlite::types::FromSqlError::InvalidType)
    }
}

/// A sale as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleRow {
    /// Sale id.
    pub sale_id: String,
    /// Receipt number.
    pub receipt_no: String,
    /// Till code.
    pub till_code: String,
    /// Total.
    pub total: i64,
    /// Completed, voided, refunded or partially refunded.
    pub status: SaleStatus,
    /// Business date.
    pub business_date: String,
    /// When (ms).
    pub created_at_ms: i64,
    /// Lines.
    pub lines: Vec<SaleLineRow>,
}

/// Sales of a business date (all dates when `None`), oldest first.
pub(crate) fn sales(
    conn: &Connection,
    date: Option<&str>,
    receipt: Option<&str>,
    max_found: usize,
) -> Result<Vec<SaleRow>, NodeError> {
    // A receipt search: the text taken literally (`%` and `_` escaped), newest first.
    let pattern = receipt.map(|r| {
        let escaped = r
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let mut stmt = conn.prepare_cached(
        "SELECT sale_id, receipt_no, till_code, total, status, business_date, created_at_ms
         FROM sales WHERE (?1 IS NULL OR business_date = ?1)
           AND (?2 IS NULL OR receipt_no LIKE ?2 ESCAPE '\\')
         ORDER BY CASE WHEN ?2 IS NULL THEN created_at_ms ELSE -created_at_ms END, sale_id
         LIMIT CASE WHEN ?2 IS NULL THEN -1 ELSE ?3 END",
    )?;
    let limit = i64::try_from(max_found).unwrap_or(i64::MAX);
    let mut rows: Vec<SaleRow> = stmt
        .query_map(params![date, pattern, limit], |r| {
            Ok(SaleRow {
                sale_id: sale_id_column(r, 0)?,
                receipt_no: r.get(1)?,
                till_code: r.get(2)?,
                total: r.get(3)?,
                status: r.get(4)?,
                business_date: r.get(5)?,
                created_at_ms: r.get(6)?,
                lines: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut lines = conn.prepare_cached(
        "SELECT sku, qty, unit_price, line_total FROM sale_lines WHERE sale_id = ?1 ORDER BY idx",
    )?;
    for row in &mut rows {
        row.lines = lines
            .query_map([SaleKey::of(&row.sale_id)], |r| {
                Ok(SaleLineRow {
                    sku: r.get(0)?,
                    qty: Qty(r.get(1)?).as_f64(),
                    unit_price: r.get(2)?,
                    line_total: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Option<String> {
        fts_prefix_query(&words(q).collect::<Vec<_>>())
    }

    #[test]
    fn fts_queries_are_sanitised() {
        assert_eq!(
            query("Indomie gor").as_deref(),
            Some("\"indomie\"* AND \"gor\"*")
        );
        assert_eq!(query("\"*) OR"), Some("\"or\"*".into()));
        assert_eq!(query("  "), None);
    }

    #[test]
    fn sale_keys_round_trip() {
        let uuid = "01a20ae0-392f-7048-bc48-e66465230d63";
        assert_eq!(SaleKey::of(uuid).0.len(), 16);
        for id in [
            uuid,
            "not-a-uuid",
            "0123456789abcdef",
            "01A20AE0-392F-7048-BC48-E66465230D63",
            "",
        ] {
            assert_eq!(SaleKey::decode(&SaleKey::of(id).0), id);
        }
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("indomie", "indomei"), 1);
        assert_eq!(edit_distance("gorng", "goreng"), 1);
        assert_eq!(edit_distance("kopi", "kopi"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
