//! The materialiser: document changes into reporting rows and outbox events, durably.
//!
//! [`persist`] takes what one sync message (or a batch of them) brought into a store's
//! replica and writes, in ONE transaction: the new Automerge chunks, upserts of sales,
//! sale lines, voids/refunds, stock movements, stock levels and products, and one outbox
//! row per event. Every upsert is keyed by the record's id and every event by an id
//! derived from it, so materialising the same records twice (a retry, a second relay
//! instance, the same sale arriving through two tills) changes nothing.
//!
//! Rows go in set-wise (`UNNEST` of arrays), one statement per table per batch: a
//! catch-up of thousands of sales costs a handful of round trips.

use kasir_crdt::ledger::{
    LedgerRecords, StockEffect, movement_effect, refund_effects, sale_effects, void_effects,
};
use kasir_crdt::records::{KASBON, Product, StockMovement, kasbon_of};
use kasir_crdt::{Qty, StoreId};
use kasir_sync::DocRef;
use kasir_sync::trust::ChangeSig;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::db::{self, DbError};

/// Kafka topic of sales, voids and refunds.
pub const TOPIC_SALES: &str = "kasir.sales.v1";
/// Kafka topic of stock movements (sale lines included).
pub const TOPIC_STOCK: &str = "kasir.stock.v1";
/// Kafka topic of recognition feedback.
pub const TOPIC_ML: &str = "kasir.ml.v1";

/// What a merge brought into one document.
#[derive(Debug, Clone)]
pub struct DocWrite {
    /// The document.
    pub doc: DocRef,
    /// The new Automerge chunk (an incremental save).
    pub bytes: Vec<u8>,
    /// Ledger records added by the merge.
    pub records: LedgerRecords,
    /// Catalog products changed by the merge.
    pub products: Vec<Product>,
    /// Who wrote each product's current price and name (device ids), parallel to
    /// `products`; empty when unknown.
    pub authors: Vec<ProductAuthors>,
    /// The signatures of the chunk's changes.
    pub sigs: Vec<ChangeSig>,
}

/// Who holds a product's current price and name: after concurrent edits, who won.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductAuthors {
    /// The device whose write the price is.
    pub price_by: Option<String>,
    /// The device whose write the name is.
    pub name_by: Option<String>,
}

/// Counts of what one [`persist`] offered to the tables (before dedupe).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PersistStats {
    /// Chunks.
    pub chunks: usize,
    /// Sales.
    pub sales: usize,
    /// Stock movements (sale lines included).
    pub movements: usize,
    /// Outbox events.
    pub events: usize,
    /// Writes skipped because their chunk was already stored (and so materialised).
    pub replayed: usize,
    /// Records skipped because PostgreSQL cannot hold them (see `time_ok` and friends).
    pub refused: usize,
}

/// The event id of a record: the same on every replica and every relay instance, and
/// never the same for two stores.
pub fn event_id(store: StoreId, topic: &str, record: &str) -> Uuid {
    let h = blake3::hash(format!("{store}|{topic}|{record}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

fn qty_units(q: Qty) -> f64 {
    q.0 as f64 / 1000.0
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Column arrays for the set-wise inserts.
#[derive(Default)]
struct Batch {
    store: Option<StoreId>,
    tenant_text: String,
    store_text: String,
    sale_id: Vec<String>,
    receipt_no: Vec<String>,
    till_code: Vec<String>,
    cashier: Vec<Option<String>>,
    business_date: Vec<String>,
    subtotal: Vec<i64>,
    tax: Vec<i64>,
    dpp: Vec<i64>,
    dpp_other: Vec<i64>,
    tax_kind: Vec<String>,
    service_charge: Vec<i64>,
    rounding: Vec<i64>,
    total: Vec<i64>,
    payments: Vec<String>,
    created_ms: Vec<i64>,

    line_sale: Vec<String>,
    line_no: Vec<i32>,
    line_product: Vec<String>,
    line_sku: Vec<String>,
    line_name: Vec<String>,
    line_qty: Vec<i64>,
    line_price: Vec<i64>,
    line_unit: Vec<Option<String>>,
    line_stock_qty: Vec<Option<i64>>,
    line_discount: Vec<i64>,
    line_total: Vec<i64>,

    cust_id: Vec<String>,
    cust_name: Vec<String>,
    cust_phone: Vec<Option<String>>,
    cust_tier: Vec<Option<String>>,
    cust_active: Vec<bool>,
    cust_ms: Vec<i64>,

    debt_id: Vec<String>,
    debt_customer: Vec<Option<String>>,
    debt_sale: Vec<Option<String>>,
    debt_kind: Vec<String>,
    debt_amount: Vec<i64>,
    debt_due: Vec<Option<String>>,
    debt_ms: Vec<i64>,
    debt_till: Vec<Option<String>>,

    group_sale: Vec<String>,
    group_code: Vec<String>,
    group_kind: Vec<String>,
    group_rate: Vec<i64>,
    group_base: Vec<i64>,
    group_dpp: Vec<i64>,
    group_dpp_other: Vec<i64>,
    group_tax: Vec<i64>,

    adj_id: Vec<String>,
    adj_sale: Vec<String>,
    adj_kind: Vec<String>,
    adj_amount: Vec<i64>,
    adj_reason: Vec<String>,
    adj_ms: Vec<i64>,
    adj_cashier: Vec<Option<String>>,
    adj_approved_by: Vec<Option<String>>,
    adj_till: Vec<Option<String>>,

    mv_id: Vec<String>,
    mv_kind: Vec<String>,
    mv_sku: Vec<String>,
    mv_qty: Vec<i64>,
    mv_ms: Vec<i64>,
    mv_cost: Vec<Option<i64>>,
    mv_supplier: Vec<Option<String>>,
    mv_other_store: Vec<Option<String>>,
    mv_transfer: Vec<Option<String>>,

    ev_id: Vec<Uuid>,
    ev_topic: Vec<String>,
    ev_payload: Vec<String>,

    products: Vec<Product>,
    authors: Vec<ProductAuthors>,
    /// Records refused by [`Batch::add`]'s checks.
    refused: usize,
}

/// Bounds of what PostgreSQL stores: times between 2000 and 2100, quantities that fit
/// `NUMERIC(14, 3)`, text without NUL. A record outside them would fail the whole
/// transaction, and the till would resend it forever; it is skipped (and counted).
fn time_ok(ms: i64) -> bool {
    (946_684_800_000..4_102_444_800_000).contains(&ms)
}

fn qty_ok(q: Qty) -> bool {
    q.0.unsigned_abs() < 100_000_000_000_000
}

fn text_ok<'a>(texts: impl IntoIterator<Item = &'a str>) -> bool {
    texts.into_iter().all(|t| !t.contains('\0'))
}

fn sale_ok(s: &kasir_crdt::records::Sale) -> bool {
    time_ok(s.created_at_ms)
        && s.business_date.parse::<kasir_crdt::BusinessDate>().is_ok()
        && text_ok([s.id.as_str(), &s.receipt_no, &s.till_code])
        && text_ok(s.cashier.as_deref())
        && text_ok(s.payments.iter().map(|p| p.method.as_str()))
        && text_ok(s.payments.iter().filter_map(|p| p.reference.as_deref()))
        && text_ok(s.payments.iter().filter_map(|p| p.confirmed_by.as_deref()))
        && s.lines.iter().all(|l| {
            qty_ok(l.qty)
                && qty_ok(l.stock_qty())
                && text_ok([l.product_id.as_str(), &l.sku, &l.name])
                && text_ok(l.unit.as_ref().map(|u| u.name.as_str()))
        })
}

fn stock_lines_ok<'a>(lines: impl IntoIterator<Item = (&'a str, Qty)>) -> bool {
    lines
        .into_iter()
        .all(|(sku, qty)| qty_ok(qty) && text_ok([sku]))
}

fn product_ok(p: &Product) -> bool {
    text_ok([p.id.as_str(), &p.sku, &p.name, &p.unit]) && text_ok(p.category.as_deref())
}

impl Batch {
    fn new(tenant: Uuid, store: StoreId) -> Batch {
        Batch {
            store: Some(store),
            tenant_text: tenant.to_string(),
            store_text: store.to_string(),
            ..Batch::default()
        }
    }

    fn event(&mut self, topic: &str, record: &str, mut payload: Value) {
        let id = event_id(self.store.unwrap_or(StoreId(Uuid::nil())), topic, record);
        if let Value::Object(m) = &mut payload {
            m.insert("event_id".into(), json!(id.to_string()));
        }
        self.ev_id.push(id);
        self.ev_topic.push(topic.to_owned());
        self.ev_payload.push(payload.to_string());
    }

    /// A stock effect, with what its movement record says beyond it (none for the
    /// effects of sales, voids and refunds).
    fn movement(&mut self, e: StockEffect, record: Option<&StockMovement>) {
        // Three of a sale's four events are stock events: written straight from a typed
        // struct, not through a JSON map.
        #[derive(serde::Serialize)]
        struct StockEvent<'a> {
            event_id: Uuid,
            tenant_id: &'a str,
            store_id: &'a str,
            movement_id: &'a str,
            kind: &'a str,
            sku: &'a str,
            qty: f64,
            at: String,
        }
        let id = event_id(
            self.store.unwrap_or(StoreId(Uuid::nil())),
            TOPIC_STOCK,
            &e.movement_id,
        );
        let payload = serde_json::to_string(&StockEvent {
            event_id: id,
            tenant_id: &self.tenant_text,
            store_id: &self.store_text,
            movement_id: &e.movement_id,
            kind: e.kind.as_str(),
            sku: &e.sku,
            qty: qty_units(e.qty),
            at: rfc3339(e.at_ms),
        })
        .unwrap_or_default();
        self.ev_id.push(id);
        self.ev_topic.push(TOPIC_STOCK.to_owned());
        self.ev_payload.push(payload);
        self.mv_id.push(e.movement_id);
        self.mv_kind.push(e.kind.as_str().to_owned());
        self.mv_sku.push(e.sku);
        self.mv_qty.push(e.qty.0);
        self.mv_ms.push(e.at_ms);
        self.mv_cost.push(record.and_then(|m| m.cost));
        self.mv_supplier
            .push(record.and_then(|m| m.supplier.clone()));
        self.mv_other_store
            .push(record.and_then(|m| m.other_store.clone()));
        self.mv_transfer
            .push(record.and_then(|m| m.transfer_id.clone()));
    }

    /// One kasbon entry (see `debt_entries`).
    #[allow(clippy::too_many_arguments)]
    fn debt(
        &mut self,
        id: String,
        customer: Option<String>,
        sale: Option<String>,
        kind: &str,
        amount: i64,
        due: Option<String>,
        at_ms: i64,
        till: Option<String>,
    ) {
        self.debt_id.push(id);
        self.debt_customer.push(customer);
        self.debt_sale.push(sale);
        self.debt_kind.push(kind.to_owned());
        self.debt_amount.push(amount);
        self.debt_due.push(due);
        self.debt_ms.push(at_ms);
        self.debt_till.push(till);
    }

    fn add(&mut self, base: &Value, recs: &LedgerRecords) {
        for s in &recs.sales {
            if !sale_ok(s) {
                self.refused += 1;
                continue;
            }
            let lines: Vec<Value> = s
                .lines
                .iter()
                .map(|l| {
                    let mut line = json!({"product_id": l.product_id, "sku": l.sku,
                           "name": l.name, "qty": qty_units(l.qty), "unit_price": l.unit_price,
                           "discount": l.discount, "line_total": l.line_total});
                    if let (Some(u), Value::Object(m)) = (&l.unit, &mut line) {
                        m.insert("unit".into(), json!(u.name));
                        m.insert("stock_qty".into(), json!(qty_units(l.stock_qty())));
                    }
                    if let (Some(p), Value::Object(m)) = (&l.promo, &mut line) {
                        m.insert(
                            "promo".into(),
                            json!({"label": p.label, "discount": p.discount}),
                        );
                    }
                    line
                })
                .collect();
            let payments = payments_json(s);
            let mut payload = base.clone();
            if let Value::Object(m) = &mut payload {
                let fields = json!({
                    "type": "sale", "sale_id": s.id, "receipt_no": s.receipt_no,
                    "till_code": s.till_code, "cashier": s.cashier,
                    "business_date": s.business_date, "created_at": rfc3339(s.created_at_ms),
                    "subtotal": s.subtotal, "tax": s.tax, "service_charge": s.service_charge,
                    "rounding": s.rounding, "total": s.total, "change": s.change,
                    "payments": payments, "lines": lines,
                });
                if let Value::Object(f) = fields {
                    m.extend(f);
                }
            }
            self.event(TOPIC_SALES, &format!("sale:{}", s.id), payload);
            self.sale_id.push(s.id.clone());
            self.receipt_no.push(s.receipt_no.clone());
            self.till_code.push(s.till_code.clone());
            self.cashier.push(s.cashier.clone());
            self.business_date.push(s.business_date.clone());
            self.subtotal.push(s.subtotal);
            self.tax.push(s.tax);
            self.dpp.push(s.dpp);
            self.dpp_other.push(s.dpp_other);
            // A receipt taxed under several rules is 'mixed': its groups say what kind.
            self.tax_kind.push(if s.taxes.is_empty() {
                s.tax_rule.kind.as_str().to_owned()
            } else {
                "mixed".to_owned()
            });
            let kasbon = s.kasbon();
            if kasbon > 0 {
                self.debt(
                    format!("credit:{}", s.id),
                    s.customer_id.clone().filter(|c| text_ok([c.as_str()])),
                    Some(s.id.clone()),
                    "credit",
                    kasbon,
                    // A due date PostgreSQL cannot read is dropped, not the sale.
                    s.due_date
                        .clone()
                        .filter(|d| d.parse::<kasir_crdt::BusinessDate>().is_ok()),
                    s.created_at_ms,
                    Some(s.till_code.clone()),
                );
            }
            for g in &s.taxes {
                self.group_sale.push(s.id.clone());
                self.group_code.push(g.code.clone());
                self.group_kind
                    .push(g.rule.map_or("none", |r| r.kind.as_str()).to_owned());
                self.group_rate.push(g.rule.map_or(0, |r| r.rate_bp));
                self.group_base.push(g.base);
                self.group_dpp.push(g.dpp);
                self.group_dpp_other.push(g.dpp_other);
                self.group_tax.push(g.tax);
            }
            self.service_charge.push(s.service_charge);
            self.rounding.push(s.rounding);
            self.total.push(s.total);
            self.payments
                .push(Value::Array(payments_json(s)).to_string());
            self.created_ms.push(s.created_at_ms);
            for (i, l) in s.lines.iter().enumerate() {
                self.line_sale.push(s.id.clone());
                self.line_no.push(i32::try_from(i).unwrap_or(i32::MAX));
                self.line_product.push(l.product_id.clone());
                self.line_sku.push(l.sku.clone());
                self.line_name.push(l.name.clone());
                self.line_qty.push(l.qty.0);
                self.line_price.push(l.unit_price);
                self.line_unit.push(l.unit.as_ref().map(|u| u.name.clone()));
                self.line_stock_qty
                    .push(l.unit.as_ref().map(|_| l.stock_qty().0));
                self.line_discount.push(l.discount);
                self.line_total.push(l.line_total);
            }
            for e in sale_effects(s) {
                self.movement(e, None);
            }
        }
        for v in &recs.voids {
            if !(time_ok(v.at_ms)
                && text_ok([v.sale_id.as_str(), &v.reason])
                && text_ok(
                    v.cashier
                        .iter()
                        .chain(&v.approved_by)
                        .chain(&v.till_code)
                        .map(String::as_str),
                )
                && stock_lines_ok(v.lines.iter().map(|l| (l.sku.as_str(), l.qty))))
            {
                self.refused += 1;
                continue;
            }
            // Keyed by the sale: two tills voiding one sale while apart is one void.
            let id = format!("void:{}", v.sale_id);
            let mut payload = base.clone();
            if let Value::Object(m) = &mut payload {
                m.insert("type".into(), json!("void"));
                m.insert("sale_id".into(), json!(v.sale_id));
                m.insert("reason".into(), json!(v.reason));
                m.insert("cashier".into(), json!(v.cashier));
                m.insert("approved_by".into(), json!(v.approved_by));
                m.insert("at".into(), json!(rfc3339(v.at_ms)));
            }
            self.event(TOPIC_SALES, &id, payload);
            self.adj_id.push(id);
            self.adj_sale.push(v.sale_id.clone());
            self.adj_kind.push("void".into());
            self.adj_amount.push(0);
            self.adj_reason.push(v.reason.clone());
            self.adj_ms.push(v.at_ms);
            self.adj_cashier.push(v.cashier.clone());
            self.adj_approved_by.push(v.approved_by.clone());
            self.adj_till.push(v.till_code.clone());
            let kasbon = kasbon_of(&v.payments);
            if kasbon > 0 {
                self.debt(
                    format!("void:{}", v.sale_id),
                    None,
                    Some(v.sale_id.clone()),
                    "void",
                    -kasbon,
                    None,
                    v.at_ms,
                    v.till_code.clone(),
                );
            }
            for e in void_effects(v) {
                self.movement(e, None);
            }
        }
        for f in &recs.refunds {
            if !(time_ok(f.at_ms)
                && text_ok([f.id.as_str(), &f.sale_id, &f.reason])
                && text_ok([f.method.as_str()])
                && text_ok(
                    f.cashier
                        .iter()
                        .chain(&f.approved_by)
                        .chain(&f.till_code)
                        .map(String::as_str),
                )
                && stock_lines_ok(f.lines.iter().map(|l| (l.sku.as_str(), l.qty))))
            {
                self.refused += 1;
                continue;
            }
            let id = format!("refund:{}", f.id);
            let mut payload = base.clone();
            if let Value::Object(m) = &mut payload {
                m.insert("type".into(), json!("refund"));
                m.insert("refund_id".into(), json!(f.id));
                m.insert("sale_id".into(), json!(f.sale_id));
                m.insert("amount".into(), json!(f.amount));
                m.insert("method".into(), json!(f.method));
                m.insert("tax".into(), json!(f.tax));
                m.insert("cashier".into(), json!(f.cashier));
                m.insert("approved_by".into(), json!(f.approved_by));
                m.insert("reason".into(), json!(f.reason));
                m.insert("at".into(), json!(rfc3339(f.at_ms)));
            }
            self.event(TOPIC_SALES, &id, payload);
            self.adj_id.push(id);
            self.adj_sale.push(f.sale_id.clone());
            self.adj_kind.push("refund".into());
            self.adj_amount.push(f.amount);
            self.adj_reason.push(f.reason.clone());
            self.adj_ms.push(f.at_ms);
            self.adj_cashier.push(f.cashier.clone());
            self.adj_approved_by.push(f.approved_by.clone());
            self.adj_till.push(f.till_code.clone());
            if f.method == KASBON && f.amount > 0 {
                self.debt(
                    format!("refund:{}", f.id),
                    None,
                    Some(f.sale_id.clone()),
                    "refund",
                    -f.amount,
                    None,
                    f.at_ms,
                    f.till_code.clone(),
                );
            }
            for e in refund_effects(f) {
                self.movement(e, None);
            }
        }
        for c in &recs.customers {
            if !(time_ok(c.at_ms)
                && text_ok([c.id.as_str(), &c.name])
                && text_ok(c.phone.iter().chain(&c.tier).map(String::as_str)))
            {
                self.refused += 1;
                continue;
            }
            self.cust_id.push(c.id.clone());
            self.cust_name.push(c.name.clone());
            self.cust_phone.push(c.phone.clone());
            self.cust_tier.push(c.tier.clone());
            self.cust_active.push(c.active);
            self.cust_ms.push(c.at_ms);
        }
        for p in &recs.debt_payments {
            if !(time_ok(p.at_ms) && p.amount > 0 && text_ok([p.id.as_str(), &p.customer_id])) {
                self.refused += 1;
                continue;
            }
            self.debt(
                format!("payment:{}", p.id),
                Some(p.customer_id.clone()),
                None,
                "payment",
                -p.amount,
                None,
                p.at_ms,
                p.till_code.clone(),
            );
        }
        for m in &recs.movements {
            if !(time_ok(m.at_ms)
                && qty_ok(m.qty)
                && text_ok([m.id.as_str(), &m.sku])
                && text_ok(m.supplier.as_deref())
                && text_ok(m.other_store.as_deref())
                && text_ok(m.transfer_id.as_deref())
                && m.cost
                    .is_none_or(|c| (0..=kasir_crdt::pricing::MAX_AMOUNT).contains(&c)))
            {
                self.refused += 1;
                continue;
            }
            self.movement(movement_effect(m), Some(m));
        }
        for (id, value) in &recs.feedback {
            if !text_ok([id.as_str()]) {
                self.refused += 1;
                continue;
            }
            let mut payload = base.clone();
            if let Value::Object(m) = &mut payload {
                m.insert("feedback_id".into(), json!(id));
                m.insert("feedback".into(), value.clone());
            }
            self.event(TOPIC_ML, &format!("feedback:{id}"), payload);
        }
    }
}

/// The sale's payments as stored and published: `{method, amount[, reference][,
/// confirmed_by]}`.
fn payments_json(s: &kasir_crdt::records::Sale) -> Vec<Value> {
    s.payments
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect()
}

/// Writes `writes` of `store` (tenant `tenant`) in one transaction, retrying a deadlock
/// or serialisation failure with a concurrent instance a few times.
///
/// `trace` names what brought the writes (a sync session's [`kasir_sync::transport::TraceId`]):
/// the transaction runs under `application_name = 'kasir-relay <trace>'` (PostgreSQL's
/// logs and `pg_stat_activity` show it) and the sales it inserts keep it in
/// `sales.sync_trace`, so a sale can be followed from the till's log to its row.
pub async fn persist(
    pool: &PgPool,
    tenant: Uuid,
    store: StoreId,
    writes: &[DocWrite],
    trace: Option<&str>,
) -> Result<PersistStats, DbError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        match persist_in(&mut tx, tenant, store, writes, trace).await {
            Ok(stats) => match tx.commit().await {
                Ok(()) => return Ok(stats),
                Err(e) if attempt < 4 && retryable(&e) => continue,
                Err(e) => return Err(e.into()),
            },
            Err(DbError::Sql(e)) if attempt < 4 && retryable(&e) => {
                let _ = tx.rollback().await;
                tracing::debug!(error = %e, attempt, "retrying a materialisation");
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The tables [`rebuild`] empties for a store and writes again: every one the
/// materialiser fills from documents (the outbox keeps its rows: events keep their ids).
const MATERIALISED: &[&str] = &[
    "sale_taxes",
    "sale_lines",
    "sale_adjustments",
    "debt_entries",
    "stock_movements",
    "stock_levels",
    "sales",
    "customers",
    "products",
];

/// Re-materialises `store` from its documents (`kasir-relay rebuild --store`): in one
/// transaction, under the store's lock, its rows leave every materialised table and
/// `writes` ([`crate::replica::StoreReplica::all_records`]) write them again, so a lost,
/// truncated or hand-damaged table is what the documents say. Events go to the outbox
/// under their ids: those it still holds are not sent again.
pub async fn rebuild(
    pool: &PgPool,
    tenant: Uuid,
    store: StoreId,
    writes: &[DocWrite],
) -> Result<PersistStats, DbError> {
    let mut tx = pool.begin().await?;
    db::lock_store(&mut tx, store).await?;
    for table in MATERIALISED {
        // The table names are the constants above, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE store_id = $1"
        )))
        .bind(store.0)
        .execute(&mut *tx)
        .await?;
    }
    let stats = persist_in(&mut tx, tenant, store, writes, None).await?;
    tx.commit().await?;
    Ok(stats)
}

fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// The body of [`persist`], inside the caller's transaction.
pub async fn persist_in(
    tx: &mut Transaction<'_, Postgres>,
    tenant: Uuid,
    store: StoreId,
    writes: &[DocWrite],
    trace: Option<&str>,
) -> Result<PersistStats, DbError> {
    if let Some(trace) = trace {
        sqlx::query("SELECT set_config('application_name', $1, true)")
            .bind(format!("kasir-relay {trace}"))
            .execute(&mut **tx)
            .await?;
    }
    // One writer per store at a time, across instances: a sale and its void written by
    // two instances at once would each miss the other's row, and chunk sequence numbers
    // then follow commit order for the pollers.
    db::lock_store(tx, store).await?;
    let base = json!({"tenant_id": tenant.to_string(), "store_id": store.to_string()});
    let mut batch = Batch::new(tenant, store);
    let mut stats = PersistStats::default();
    for w in writes {
        db::store_sigs(tx, store, &w.sigs).await?;
        if !w.bytes.is_empty() {
            // A chunk already stored was materialised in the transaction that stored it:
            // its records are in the tables, skip them (a replay, another instance).
            if !db::append_chunk(tx, store, &w.doc, &w.bytes).await? {
                stats.replayed += 1;
                continue;
            }
            stats.chunks += 1;
        }
        batch.add(&base, &w.records);
        for (i, p) in w.products.iter().enumerate() {
            if product_ok(p) {
                batch.products.push(p.clone());
                batch
                    .authors
                    .push(w.authors.get(i).cloned().unwrap_or_default());
            } else {
                batch.refused += 1;
            }
        }
    }
    if batch.refused > 0 {
        tracing::warn!(%store, records = batch.refused, "skipped records PostgreSQL cannot hold");
    }
    stats.refused = batch.refused;
    stats.sales = batch.sale_id.len();
    stats.movements = batch.mv_id.len();
    stats.events = batch.ev_id.len();
    write_batch(tx, tenant, store, batch, trace).await?;
    Ok(stats)
}

async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    tenant: Uuid,
    store: StoreId,
    b: Batch,
    trace: Option<&str>,
) -> Result<(), DbError> {
    if !b.sale_id.is_empty() {
        sqlx::query(
            "INSERT INTO sales (sale_id, tenant_id, store_id, receipt_no, till_code, cashier,
                 business_date, subtotal, tax, service_charge, rounding, total, payments, created_at,
                 status, refunded, dpp, dpp_other, tax_kind, sync_trace)
             SELECT u.sale_id, $1, $2, u.receipt_no, u.till_code, u.cashier, u.business_date::date,
                 u.subtotal, u.tax, u.service_charge, u.rounding, u.total, u.payments::jsonb,
                 to_timestamp(u.created_ms / 1000.0),
                 CASE WHEN EXISTS (SELECT 1 FROM sale_adjustments a
                                   WHERE a.store_id = $2 AND a.sale_id = u.sale_id AND a.kind = 'void')
                      THEN 'voided'
                      WHEN EXISTS (SELECT 1 FROM sale_adjustments a
                                   WHERE a.store_id = $2 AND a.sale_id = u.sale_id AND a.kind = 'refund')
                      THEN 'refunded' ELSE 'completed' END,
                 COALESCE((SELECT sum(a.amount) FROM sale_adjustments a
                           WHERE a.store_id = $2 AND a.sale_id = u.sale_id AND a.kind = 'refund'), 0),
                 u.dpp, u.dpp_other, u.tax_kind, $18::text
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[],
                         $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::text[], $14::int8[],
                         $15::int8[], $16::int8[], $17::text[])
                  AS u(sale_id, receipt_no, till_code, cashier, business_date, subtotal, tax,
                       service_charge, rounding, total, payments, created_ms, dpp, dpp_other,
                       tax_kind)
             ON CONFLICT (sale_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.sale_id)
        .bind(&b.receipt_no)
        .bind(&b.till_code)
        .bind(&b.cashier)
        .bind(&b.business_date)
        .bind(&b.subtotal)
        .bind(&b.tax)
        .bind(&b.service_charge)
        .bind(&b.rounding)
        .bind(&b.total)
        .bind(&b.payments)
        .bind(&b.created_ms)
        .bind(&b.dpp)
        .bind(&b.dpp_other)
        .bind(&b.tax_kind)
        .bind(trace)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO sale_lines (sale_id, line_no, tenant_id, store_id, product_id, sku, name,
                 qty, unit_price, discount, line_total, unit, stock_qty)
             SELECT u.sale_id, u.line_no, $1, $2, u.product_id, u.sku, u.name,
                 u.qty::numeric / 1000, u.unit_price, u.discount, u.line_total, u.unit,
                 u.stock_qty::numeric / 1000
             FROM UNNEST($3::text[], $4::int4[], $5::text[], $6::text[], $7::text[], $8::int8[],
                         $9::int8[], $10::int8[], $11::int8[], $12::text[], $13::int8[])
                  AS u(sale_id, line_no, product_id, sku, name, qty, unit_price, discount, line_total,
                       unit, stock_qty)
             ON CONFLICT (sale_id, line_no) DO NOTHING",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.line_sale)
        .bind(&b.line_no)
        .bind(&b.line_product)
        .bind(&b.line_sku)
        .bind(&b.line_name)
        .bind(&b.line_qty)
        .bind(&b.line_price)
        .bind(&b.line_discount)
        .bind(&b.line_total)
        .bind(&b.line_unit)
        .bind(&b.line_stock_qty)
        .execute(&mut **tx)
        .await?;
    }
    if !b.cust_id.is_empty() {
        // The newest version of each customer wins, whatever order versions arrive in.
        sqlx::query(
            "INSERT INTO customers (tenant_id, store_id, customer_id, name, phone, tier, active,
                 updated_at_ms)
             SELECT DISTINCT ON (u.id) $1, $2, u.id, u.name, u.phone, u.tier, u.active, u.ms
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::int8[])
                  AS u(id, name, phone, tier, active, ms)
             ORDER BY u.id, u.ms DESC, u.name DESC
             ON CONFLICT (store_id, customer_id) DO UPDATE SET name = excluded.name,
                 phone = excluded.phone, tier = excluded.tier, active = excluded.active,
                 updated_at_ms = excluded.updated_at_ms
             WHERE excluded.updated_at_ms > customers.updated_at_ms
                OR (excluded.updated_at_ms = customers.updated_at_ms
                    AND excluded.name > customers.name)",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.cust_id)
        .bind(&b.cust_name)
        .bind(&b.cust_phone)
        .bind(&b.cust_tier)
        .bind(&b.cust_active)
        .bind(&b.cust_ms)
        .execute(&mut **tx)
        .await?;
    }
    if !b.debt_id.is_empty() {
        sqlx::query(
            "INSERT INTO debt_entries (tenant_id, store_id, entry_id, customer_id, sale_id, kind,
                 amount, due_date, at, till_code)
             SELECT $1, $2, u.id, u.customer, u.sale, u.kind, u.amount, u.due::date,
                 to_timestamp(u.ms / 1000.0), u.till
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[],
                         $9::int8[], $10::text[])
                  AS u(id, customer, sale, kind, amount, due, ms, till)
             ON CONFLICT (store_id, entry_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.debt_id)
        .bind(&b.debt_customer)
        .bind(&b.debt_sale)
        .bind(&b.debt_kind)
        .bind(&b.debt_amount)
        .bind(&b.debt_due)
        .bind(&b.debt_ms)
        .bind(&b.debt_till)
        .execute(&mut **tx)
        .await?;
    }
    if !b.group_sale.is_empty() {
        sqlx::query(
            "INSERT INTO sale_taxes (tenant_id, store_id, sale_id, code, tax_kind, rate_bp, base,
                 dpp, dpp_other, tax)
             SELECT $1, $2, u.sale_id, u.code, u.kind, u.rate, u.base, u.dpp, u.dpp_other, u.tax
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[],
                         $9::int8[], $10::int8[])
                  AS u(sale_id, code, kind, rate, base, dpp, dpp_other, tax)
             ON CONFLICT (sale_id, code) DO NOTHING",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.group_sale)
        .bind(&b.group_code)
        .bind(&b.group_kind)
        .bind(&b.group_rate)
        .bind(&b.group_base)
        .bind(&b.group_dpp)
        .bind(&b.group_dpp_other)
        .bind(&b.group_tax)
        .execute(&mut **tx)
        .await?;
    }
    if !b.adj_id.is_empty() {
        sqlx::query(
            "WITH ins AS (
                 INSERT INTO sale_adjustments (adjustment_id, tenant_id, store_id, sale_id, kind,
                     amount, reason, at, cashier, approved_by, till_code)
                 SELECT u.id, $1, $2, u.sale_id, u.kind, u.amount, u.reason,
                     to_timestamp(u.ms / 1000.0), u.cashier, u.approved_by, u.till_code
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::int8[],
                             $9::text[], $10::text[], $11::text[])
                      AS u(id, sale_id, kind, amount, reason, ms, cashier, approved_by, till_code)
                 ON CONFLICT (store_id, adjustment_id) DO NOTHING
                 RETURNING sale_id, kind, amount)
             UPDATE sales s SET
                 status = CASE WHEN s.status = 'voided' OR agg.voided THEN 'voided' ELSE 'refunded' END,
                 refunded = s.refunded + agg.refunded
             FROM (SELECT sale_id, bool_or(kind = 'void') AS voided,
                          COALESCE(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
                   FROM ins GROUP BY sale_id) agg
             WHERE s.sale_id = agg.sale_id AND s.store_id = $2",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.adj_id)
        .bind(&b.adj_sale)
        .bind(&b.adj_kind)
        .bind(&b.adj_amount)
        .bind(&b.adj_reason)
        .bind(&b.adj_ms)
        .bind(&b.adj_cashier)
        .bind(&b.adj_approved_by)
        .bind(&b.adj_till)
        .execute(&mut **tx)
        .await?;
    }
    if !b.mv_id.is_empty() {
        // Stock levels move only by movements inserted now, so a replayed movement never
        // counts twice; rows are locked in SKU order so concurrent instances don't deadlock.
        sqlx::query(
            "WITH ins AS (
                 INSERT INTO stock_movements (movement_id, tenant_id, store_id, kind, sku, qty, at,
                     cost, supplier, other_store, transfer_id)
                 SELECT u.id, $1, $2, u.kind, u.sku, u.qty::numeric / 1000, to_timestamp(u.ms / 1000.0),
                        u.cost, u.supplier, u.other_store, u.transfer_id
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[],
                             $9::text[], $10::text[], $11::text[])
                      AS u(id, kind, sku, qty, ms, cost, supplier, other_store, transfer_id)
                 ON CONFLICT (store_id, movement_id) DO NOTHING
                 RETURNING sku, qty)
             INSERT INTO stock_levels (tenant_id, store_id, sku, on_hand)
             SELECT $1, $2, sku, sum(qty) FROM ins GROUP BY sku ORDER BY sku
             ON CONFLICT (store_id, sku) DO UPDATE SET on_hand = stock_levels.on_hand + excluded.on_hand",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.mv_id)
        .bind(&b.mv_kind)
        .bind(&b.mv_sku)
        .bind(&b.mv_qty)
        .bind(&b.mv_ms)
        .bind(&b.mv_cost)
        .bind(&b.mv_supplier)
        .bind(&b.mv_other_store)
        .bind(&b.mv_transfer)
        .execute(&mut **tx)
        .await?;
    }
    if !b.products.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (products, authors): (Vec<&Product>, Vec<&ProductAuthors>) = b
            .products
            .iter()
            .zip(&b.authors)
            .rev()
            .filter(|(p, _)| seen.insert(p.id.clone()))
            .unzip();
        sqlx::query(
            "INSERT INTO products (tenant_id, store_id, product_id, sku, name, price, category, unit,
                 active, updated_at_ms, cost, min_stock, barcodes, price_by, name_by)
             SELECT $1, $2, u.id, u.sku, u.name, u.price, u.category, u.unit, u.active, u.updated,
                    u.cost, u.min_milli::numeric / 1000,
                    COALESCE(string_to_array(NULLIF(u.barcodes, ''), ' '), '{}'),
                    u.price_by, u.name_by
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[],
                         $9::bool[], $10::int8[], $11::int8[], $12::int8[], $13::text[],
                         $14::text[], $15::text[])
                  AS u(id, sku, name, price, category, unit, active, updated, cost, min_milli,
                       barcodes, price_by, name_by)
             ORDER BY u.id
             ON CONFLICT (store_id, product_id) DO UPDATE SET
                 sku = excluded.sku, name = excluded.name, price = excluded.price,
                 category = excluded.category, unit = excluded.unit, active = excluded.active,
                 updated_at_ms = excluded.updated_at_ms, cost = excluded.cost,
                 min_stock = excluded.min_stock, barcodes = excluded.barcodes,
                 price_by = excluded.price_by, name_by = excluded.name_by
             WHERE products.updated_at_ms <= excluded.updated_at_ms",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(products.iter().map(|p| p.id.clone()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.sku.clone()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.name.clone()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.price).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.category.clone()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.unit.clone()).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.active).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.updated_at_ms).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.cost).collect::<Vec<_>>())
        .bind(products.iter().map(|p| p.min_stock.map(|q| q.0)).collect::<Vec<_>>())
        // Barcodes hold no spaces (the till's search index splits on them too).
        .bind(products.iter().map(|p| p.barcodes.join(" ")).collect::<Vec<_>>())
        .bind(authors.iter().map(|a| a.price_by.clone()).collect::<Vec<_>>())
        .bind(authors.iter().map(|a| a.name_by.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !b.ev_id.is_empty() {
        sqlx::query(
            "INSERT INTO outbox (event_id, tenant_id, store_id, topic, payload)
             SELECT u.id, $1, $2, u.topic, u.payload::json
             FROM UNNEST($3::uuid[], $4::text[], $5::text[]) AS u(id, topic, payload)
             WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = u.id)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(store.0)
        .bind(&b.ev_id)
        .bind(&b.ev_topic)
        .bind(&b.ev_payload)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
