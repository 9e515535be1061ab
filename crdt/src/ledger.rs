//! The ledger: one till's records for one business day.
//!
//! Single writer (the till), append-only, records keyed by id in maps (not lists, which
//! slow down as they grow), so merging two replicas is a union and a closed day never
//! changes again.

use automerge::ActorId;

use crate::doc::{Doc, DocError, GenesisValue};
use crate::ids::{BusinessDate, DeviceId, DocId, DocKind, StoreId};
use crate::money::Qty;
use crate::records::{
    AuditEvent, CashMove, Customer, DebtPayment, MovementKind, Refund, Sale, ShiftClose, ShiftOpen,
    StockMovement, Void,
};

const SALES: &str = "sales";
const VOIDS: &str = "voids";
const REFUNDS: &str = "refunds";
const MOVEMENTS: &str = "movements";
const SHIFTS_OPEN: &str = "shifts_open";
const SHIFTS_CLOSE: &str = "shifts_close";
const FEEDBACK: &str = "feedback";
/// Added after the first ledgers: created by the till with its first record.
const CASH_MOVES: &str = "cash_moves";
/// Added after the first ledgers: created by the till with its first record.
const AUDIT: &str = "audit";
/// Added after the first ledgers: customers added or edited, by `{id}@{at_ms}`.
const CUSTOMERS: &str = "customers";
/// Added after the first ledgers: payments against kasbon.
const DEBT_PAYMENTS: &str = "debt_payments";

/// Who wrote a ledger and for which day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMeta {
    /// The store.
    pub store: StoreId,
    /// The till that writes it.
    pub till: DeviceId,
    /// The business day.
    pub date: BusinessDate,
}

/// One effect on stock, keyed by a movement id that is the same on every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockEffect {
    /// Unique per effect; a void of the same sale on two tills yields the same ids.
    pub movement_id: String,
    /// Why.
    pub kind: MovementKind,
    /// Which SKU.
    pub sku: String,
    /// Signed change.
    pub qty: Qty,
    /// When (ms).
    pub at_ms: i64,
}

/// Records of a ledger, as returned by [`LedgerDoc::records_since`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LedgerRecords {
    /// Sales.
    pub sales: Vec<Sale>,
    /// Voids.
    pub voids: Vec<Void>,
    /// Refunds.
    pub refunds: Vec<Refund>,
    /// Stock movements.
    pub movements: Vec<StockMovement>,
    /// Shift openings.
    pub shift_opens: Vec<ShiftOpen>,
    /// Shift closings.
    pub shift_closes: Vec<ShiftClose>,
    /// Cash put into or taken out of the drawer.
    pub cash_moves: Vec<CashMove>,
    /// Audit events.
    pub audit: Vec<AuditEvent>,
    /// Customers added or edited.
    pub customers: Vec<Customer>,
    /// Payments against kasbon.
    pub debt_payments: Vec<DebtPayment>,
    /// Feedback records (e.g. ML corrections), with their ids.
    pub feedback: Vec<(String, serde_json::Value)>,
    /// Records that did not decode (reported, skipped).
    pub undecodable: usize,
}

impl LedgerRecords {
    /// Adds `other`'s records after this one's.
    pub fn append(&mut self, other: LedgerRecords) {
        let LedgerRecords {
            sales,
            voids,
            refunds,
            movements,
            shift_opens,
            shift_closes,
            cash_moves,
            audit,
            customers,
            debt_payments,
            feedback,
            undecodable,
        } = other;
        self.sales.extend(sales);
        self.voids.extend(voids);
        self.refunds.extend(refunds);
        self.movements.extend(movements);
        self.shift_opens.extend(shift_opens);
        self.shift_closes.extend(shift_closes);
        self.cash_moves.extend(cash_moves);
        self.audit.extend(audit);
        self.customers.extend(customers);
        self.debt_payments.extend(debt_payments);
        self.feedback.extend(feedback);
        self.undecodable += undecodable;
    }
}

/// A till's ledger for one day.
#[derive(Debug)]
pub struct LedgerDoc {
    doc: Doc,
    meta: LedgerMeta,
}

impl LedgerDoc {
    /// The id of the ledger described by `meta`.
    pub fn id_for(meta: &LedgerMeta) -> DocId {
        DocId::ledger(meta.store, meta.till, &meta.date)
    }

    /// A new (or the deterministic start of an existing) ledger.
    pub fn create(meta: LedgerMeta, actor: ActorId) -> Result<LedgerDoc, DocError> {
        let id = Self::id_for(&meta);
        let mut fields = vec![
            ("store_id", GenesisValue::Str(meta.store.to_string())),
            ("till", GenesisValue::Str(meta.till.to_string())),
            ("date", GenesisValue::Str(meta.date.to_string())),
        ];
        for key in [
            SALES,
            VOIDS,
            REFUNDS,
            MOVEMENTS,
            SHIFTS_OPEN,
            SHIFTS_CLOSE,
            FEEDBACK,
        ] {
            fields.push((key, GenesisValue::Map));
        }
        let doc = Doc::genesis(id, DocKind::Ledger, &fields, actor)?;
        Ok(LedgerDoc { doc, meta })
    }

    /// Wraps a loaded document, reading its meta. Fails if it is not a ledger.
    pub fn from_doc(doc: Doc) -> Result<LedgerDoc, DocError> {
        let shape = || DocError::WrongShape {
            doc: doc.id(),
            expected: "ledger",
        };
        if doc.kind() != DocKind::Ledger {
            return Err(shape());
        }
        let store = doc.root_str("store_id").and_then(|s| s.parse().ok());
        let till = doc.root_str("till").and_then(|s| s.parse().ok());
        let date = doc.root_str("date").and_then(|s| s.parse().ok());
        let (Some(store), Some(till), Some(date)) = (store, till, date) else {
            return Err(shape());
        };
        let meta = LedgerMeta { store, till, date };
        if Self::id_for(&meta) != doc.id() {
            return Err(shape());
        }
        Ok(LedgerDoc { doc, meta })
    }

    /// Who wrote it, which day.
    pub fn meta(&self) -> &LedgerMeta {
        &self.meta
    }

    /// The underlying document.
    pub fn doc(&mut self) -> &mut Doc {
        &mut self.doc
    }

    /// The underlying document, unwrapped.
    pub fn into_doc(self) -> Doc {
        self.doc
    }

    /// Read-only access to the underlying document.
    pub fn doc_ref(&self) -> &Doc {
        &self.doc
    }

    fn append<T: serde::Serialize>(
        &mut self,
        map: &'static str,
        id: &str,
        record: &T,
        at_ms: i64,
    ) -> Result<bool, DocError> {
        let obj = match map {
            CASH_MOVES | AUDIT | CUSTOMERS | DEBT_PAYMENTS => self.doc.own_root_map(map)?,
            _ => self.doc.root_map(map)?,
        };
        if self.doc.has_key(&obj, id) {
            return Ok(false);
        }
        if let Err(e) = self.doc.put_record(&obj, id, record) {
            self.doc.rollback();
            return Err(e);
        }
        self.doc.commit(at_ms);
        Ok(true)
    }

    /// Records a sale; `false` if a sale with this id is already there.
    pub fn record_sale(&mut self, sale: &Sale) -> Result<bool, DocError> {
        self.append(SALES, &sale.id, sale, sale.created_at_ms)
    }

    /// Records a void.
    pub fn record_void(&mut self, void: &Void) -> Result<bool, DocError> {
        self.append(VOIDS, &void.id, void, void.at_ms)
    }

    /// Records a refund.
    pub fn record_refund(&mut self, refund: &Refund) -> Result<bool, DocError> {
        self.append(REFUNDS, &refund.id, refund, refund.at_ms)
    }

    /// Records a stock movement (receive, adjust, opname, transfer).
    pub fn record_movement(&mut self, movement: &StockMovement) -> Result<bool, DocError> {
        self.append(MOVEMENTS, &movement.id, movement, movement.at_ms)
    }

    /// Records a shift opening.
    pub fn record_shift_open(&mut self, shift: &ShiftOpen) -> Result<bool, DocError> {
        self.append(SHIFTS_OPEN, &shift.id, shift, shift.at_ms)
    }

    /// Records a shift closing.
    pub fn record_shift_close(&mut self, close: &ShiftClose) -> Result<bool, DocError> {
        self.append(SHIFTS_CLOSE, &close.id, close, close.at_ms)
    }

    /// Records cash put into or taken out of the drawer.
    pub fn record_cash_move(&mut self, cash: &CashMove) -> Result<bool, DocError> {
        self.append(CASH_MOVES, &cash.id, cash, cash.at_ms)
    }

    /// Records an audit event.
    pub fn record_audit(&mut self, event: &AuditEvent) -> Result<bool, DocError> {
        self.append(AUDIT, &event.id, event, event.at_ms)
    }

    /// Records a customer (a new one or a new version of one).
    pub fn record_customer(&mut self, customer: &Customer) -> Result<bool, DocError> {
        let key = format!("{}@{}", customer.id, customer.at_ms);
        self.append(CUSTOMERS, &key, customer, customer.at_ms)
    }

    /// Records a payment against a customer's kasbon.
    pub fn record_debt_payment(&mut self, payment: &DebtPayment) -> Result<bool, DocError> {
        self.append(DEBT_PAYMENTS, &payment.id, payment, payment.at_ms)
    }

    /// Records free-form feedback (e.g. an ML correction) as JSON under `id`.
    pub fn record_feedback(
        &mut self,
        id: &str,
        feedback: &serde_json::Value,
        at_ms: i64,
    ) -> Result<bool, DocError> {
        self.append(FEEDBACK, id, feedback, at_ms)
    }

    /// One sale by id.
    pub fn sale(&self, id: &str) -> Result<Option<Sale>, DocError> {
        let obj = self.doc.root_map(SALES)?;
        self.doc.get_record(&obj, id)
    }

    /// Number of sales.
    pub fn sale_count(&self) -> usize {
        self.doc
            .root_map(SALES)
            .map(|obj| self.doc.len(&obj))
            .unwrap_or(0)
    }

    /// All sales, in id order (UUIDv7: time order).
    pub fn sales(&self) -> Vec<Result<Sale, DocError>> {
        self.all(SALES)
    }

    /// All voids.
    pub fn voids(&self) -> Vec<Result<Void, DocError>> {
        self.all(VOIDS)
    }

    /// All refunds.
    pub fn refunds(&self) -> Vec<Result<Refund, DocError>> {
        self.all(REFUNDS)
    }

    /// All stock movements.
    pub fn movements(&self) -> Vec<Result<StockMovement, DocError>> {
        self.all(MOVEMENTS)
    }

    /// All shift openings.
    pub fn shift_opens(&self) -> Vec<Result<ShiftOpen, DocError>> {
        self.all(SHIFTS_OPEN)
    }

    /// All shift closings.
    pub fn shift_closes(&self) -> Vec<Result<ShiftClose, DocError>> {
        self.all(SHIFTS_CLOSE)
    }

    /// All cash moves.
    pub fn cash_moves(&self) -> Vec<Result<CashMove, DocError>> {
        self.all_late(CASH_MOVES)
    }

    /// All audit events.
    pub fn audit_events(&self) -> Vec<Result<AuditEvent, DocError>> {
        self.all_late(AUDIT)
    }

    /// Every customer version.
    pub fn customers(&self) -> Vec<Result<Customer, DocError>> {
        self.all_late(CUSTOMERS)
    }

    /// Every kasbon payment.
    pub fn debt_payments(&self) -> Vec<Result<DebtPayment, DocError>> {
        self.all_late(DEBT_PAYMENTS)
    }

    /// All feedback records.
    pub fn feedback(&self) -> Vec<Result<serde_json::Value, DocError>> {
        self.all(FEEDBACK)
    }

    /// The ids of all sales.
    pub fn sale_ids(&self) -> Vec<String> {
        match self.doc.root_map(SALES) {
            Ok(obj) => self.doc.keys(&obj).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn all<T: serde::de::DeserializeOwned>(&self, map: &'static str) -> Vec<Result<T, DocError>> {
        match self.doc.root_map(map) {
            Ok(obj) => self.doc.records(&obj).collect(),
            Err(e) => vec![Err(e)],
        }
    }

    /// The records of a map added after genesis (none when the till never wrote one).
    fn all_late<T: serde::de::DeserializeOwned>(
        &self,
        map: &'static str,
    ) -> Vec<Result<T, DocError>> {
        match self.doc.existing_root_map(map) {
            Some(obj) => self.doc.records(&obj).collect(),
            None => Vec::new(),
        }
    }

    /// Every record of the ledger, and how many did not decode.
    pub fn all_records(&self) -> (LedgerRecords, usize) {
        fn keep<T>(bad: &mut usize, all: Vec<Result<T, DocError>>) -> Vec<T> {
            let n = all.len();
            let ok: Vec<T> = all.into_iter().flatten().collect();
            *bad += n - ok.len();
            ok
        }
        let mut bad = 0;
        let feedback = match self.doc.root_map(FEEDBACK) {
            Ok(obj) => self
                .doc
                .keys(&obj)
                .filter_map(|k| match self.doc.get_record(&obj, &k) {
                    Ok(Some(v)) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let recs = LedgerRecords {
            sales: keep(&mut bad, self.sales()),
            voids: keep(&mut bad, self.voids()),
            refunds: keep(&mut bad, self.refunds()),
            movements: keep(&mut bad, self.movements()),
            shift_opens: keep(&mut bad, self.shift_opens()),
            shift_closes: keep(&mut bad, self.shift_closes()),
            cash_moves: keep(&mut bad, self.cash_moves()),
            audit: keep(&mut bad, self.audit_events()),
            customers: keep(&mut bad, self.customers()),
            debt_payments: keep(&mut bad, self.debt_payments()),
            feedback,
            undecodable: 0,
        };
        (
            LedgerRecords {
                undecodable: bad,
                ..recs
            },
            bad,
        )
    }

    /// The records added by changes after `before` (what a merge brought in), in
    /// `(map, key)` order. A day's catch-up brings thousands: they are decoded on every
    /// core, in slices of at least [`RECORDS_PER_THREAD`].
    pub fn records_since(&mut self, before: &[automerge::ChangeHash]) -> LedgerRecords {
        let keys: Vec<(String, String)> = self.doc.changed_records(before).into_iter().collect();
        let doc = &self.doc;
        let mut out = LedgerRecords::default();
        for (range, part) in
            crate::parallel::slices(&keys, RECORDS_PER_THREAD, |part| decode_records(doc, part))
        {
            match part {
                Ok(records) => out.append(records),
                // A decoder that panicked decoded nothing of its slice.
                Err(_) => out.undecodable += range.len(),
            }
        }
        out
    }

    /// Every stock effect in this ledger; undecodable records are skipped and counted.
    pub fn stock_effects(&self) -> (Vec<StockEffect>, usize) {
        let mut effects = Vec::new();
        let mut bad = 0;
        for sale in self.sales() {
            match sale {
                Ok(sale) => effects.extend(sale_effects(&sale)),
                Err(_) => bad += 1,
            }
        }
        for void in self.voids() {
            match void {
                Ok(void) => effects.extend(void_effects(&void)),
                Err(_) => bad += 1,
            }
        }
        for refund in self.refunds() {
            match refund {
                Ok(refund) => effects.extend(refund_effects(&refund)),
                Err(_) => bad += 1,
            }
        }
        for movement in self.movements() {
            match movement {
                Ok(m) => effects.push(movement_effect(&m)),
                Err(_) => bad += 1,
            }
        }
        (effects, bad)
    }
}

/// The stock effects of a sale: one negative movement per line.
pub fn sale_effects(sale: &Sale) -> impl Iterator<Item = StockEffect> + '_ {
    sale.lines
        .iter()
        .enumerate()
        .map(move |(i, line)| StockEffect {
            movement_id: format!("sale:{}:{i}", sale.id),
            kind: MovementKind::Sale,
            sku: line.sku.clone(),
            qty: line.stock_qty().neg(),
            at_ms: sale.created_at_ms,
        })
}

/// The stock effects of a void. Keyed by the *sale*, so two tills voiding the same sale
/// while partitioned return its stock once, not twice.
pub fn void_effects(void: &Void) -> impl Iterator<Item = StockEffect> + '_ {
    void.lines
        .iter()
        .enumerate()
        .map(move |(i, line)| StockEffect {
            movement_id: format!("void:{}:{i}", void.sale_id),
            kind: MovementKind::Void,
            sku: line.sku.clone(),
            qty: line.qty,
            at_ms: void.at_ms,
        })
}

/// The stock effects of a refund: goods come back.
pub fn refund_effects(refund: &Refund) -> impl Iterator<Item = StockEffect> + '_ {
    refund
        .lines
        .iter()
        .enumerate()
        .map(move |(i, line)| StockEffect {
            movement_id: format!("refund:{}:{i}", refund.id),
            kind: MovementKind::Refund,
            sku: line.sku.clone(),
            qty: line.stock_qty(),
            at_ms: refund.at_ms,
        })
}

/// The stock effect of a movement record.
pub fn movement_effect(m: &StockMovement) -> StockEffect {
    StockEffect {
        movement_id: m.id.clone(),
        kind: m.kind,
        sku: m.sku.clone(),
        qty: m.qty,
        at_ms: m.at_ms,
    }
}

/// Records a merge added to one ledger below which a decoding thread costs more than it
/// saves.
const RECORDS_PER_THREAD: usize = 256;

/// Decodes the records at `keys` (`(map, key)` pairs) of a ledger's document.
fn decode_records(doc: &Doc, keys: &[(String, String)]) -> LedgerRecords {
    let mut out = LedgerRecords::default();
    for (map, key) in keys {
        let obj = match map.as_str() {
            SALES | VOIDS | REFUNDS | MOVEMENTS | SHIFTS_OPEN | SHIFTS_CLOSE | FEEDBACK
            | CASH_MOVES | AUDIT | CUSTOMERS | DEBT_PAYMENTS => doc.existing_root_map(map),
            _ => None,
        };
        let Some(obj) = obj else {
            continue;
        };
        let bad = |out: &mut LedgerRecords| out.undecodable += 1;
        match map.as_str() {
            SALES => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.sales.push(r),
                _ => bad(&mut out),
            },
            VOIDS => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.voids.push(r),
                _ => bad(&mut out),
            },
            REFUNDS => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.refunds.push(r),
                _ => bad(&mut out),
            },
            MOVEMENTS => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.movements.push(r),
                _ => bad(&mut out),
            },
            SHIFTS_OPEN => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.shift_opens.push(r),
                _ => bad(&mut out),
            },
            FEEDBACK => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.feedback.push((key.clone(), r)),
                _ => bad(&mut out),
            },
            CASH_MOVES => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.cash_moves.push(r),
                _ => bad(&mut out),
            },
            AUDIT => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.audit.push(r),
                _ => bad(&mut out),
            },
            CUSTOMERS => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.customers.push(r),
                _ => bad(&mut out),
            },
            DEBT_PAYMENTS => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.debt_payments.push(r),
                _ => bad(&mut out),
            },
            _ => match doc.get_record(&obj, key) {
                Ok(Some(r)) => out.shift_closes.push(r),
                _ => bad(&mut out),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_since_decodes_a_days_catch_up_on_every_core_in_key_order() {
        let meta = LedgerMeta {
            store: StoreId(uuid::Uuid::from_u128(9)),
            till: crate::DeviceId([4; 32]),
            date: "2026-12-03".parse().expect("date"),
        };
        let mut source = LedgerDoc::create(meta.clone(), ActorId::random()).expect("ledger");
        let genesis = source.doc().heads();
        let sales: Vec<Sale> = (0..3 * RECORDS_PER_THREAD)
            .map(|i| {
                let mut s = crate::record_de::tests::sale(1 + i % 3, 1_000 + i as i64);
                s.id = format!("sale-{i:05}");
                s
            })
            .collect();
        for s in &sales {
            assert!(source.record_sale(s).expect("record"));
        }
        let mut fresh = LedgerDoc::create(meta, ActorId::random()).expect("ledger");
        fresh.doc().merge(source.doc()).expect("merge");
        let recs = fresh.records_since(&genesis);
        assert_eq!(recs.undecodable, 0);
        assert_eq!(recs.sales, sales, "every sale, whole, in key order");
        let now = fresh.doc().heads();
        assert!(fresh.records_since(&now).sales.is_empty());
    }
}
