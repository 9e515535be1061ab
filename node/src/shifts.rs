//! Cash shifts per till (buka/tutup kasir) and cash put into or taken out of the drawer.
//!
//! A shift is this till's: one may be open per till at a time, whatever the other
//! tills do, and its close accounts only for money this till took or paid out while it
//! was open — every sale, void, refund and cash in/out is a row of `money_events` with
//! the code of the till that recorded it. Expected cash is the opening cash plus the
//! cash rows since the opening; the difference is what the cashier counted minus that.
//! The records (`ShiftOpen`, `CashMove`, `ShiftClose`) live in the till's ledger, so
//! they sync and every till and the relay can rebuild the same figures.

use std::collections::BTreeMap;

use kasir_crdt::records::{CashMove, CashMoveKind, ShiftClose, ShiftOpen};
use kasir_devices::receipt::ReportLine;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use crate::tables;
use kasir_sync::now_ms;

/// The open shift of a till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenShift {
    /// The shift's id.
    pub shift_id: String,
    /// Who opened it.
    pub cashier: String,
    /// Cash in the drawer at the start.
    pub opening_cash: i64,
    /// When (ms).
    pub opened_at_ms: i64,
}

/// A shift's money so far: what the close reports (laporan tutup kasir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftReport {
    /// The shift.
    pub shift_id: String,
    /// The till.
    pub till_code: String,
    /// Who opened it.
    pub cashier: String,
    /// Cash in the drawer at the start.
    pub opening_cash: i64,
    /// Cash the drawer should hold: opening + cash taken − cash paid back + cash in −
    /// cash out.
    pub expected_cash: i64,
    /// Cash counted at the close.
    pub counted_cash: i64,
    /// `counted_cash − expected_cash` (negative: cash is missing).
    pub difference: i64,
    /// Money taken by method (cash net of change; voids and refunds taken off).
    pub by_method: BTreeMap<String, i64>,
    /// Cash put into the drawer.
    pub cash_in: i64,
    /// Cash taken out of the drawer.
    pub cash_out: i64,
    /// Kasbon paid back in the shift (in `expected_cash` when paid in cash).
    #[serde(default)]
    pub kasbon_repaid: i64,
    /// Sales rung up in the shift.
    pub sales: i64,
    /// When it was opened (ms).
    pub opened_at_ms: i64,
    /// When it was closed (ms).
    pub closed_at_ms: i64,
}

impl Node {
    /// This till's open shift, if any.
    pub fn open_shift_here(&self) -> Result<Option<OpenShift>, NodeError> {
        Ok(self
            .db
            .query_row(
                "SELECT s.shift_id, s.cashier, s.opening_cash, s.opened_at_ms FROM till_shifts s
                 WHERE s.till_code = ?1
                   AND NOT EXISTS (SELECT 1 FROM till_shift_closes c WHERE c.shift_id = s.shift_id)
                 ORDER BY s.opened_at_ms DESC LIMIT 1",
                [&self.till_code],
                |r| {
                    Ok(OpenShift {
                        shift_id: r.get(0)?,
                        cashier: r.get(1)?,
                        opening_cash: r.get(2)?,
                        opened_at_ms: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn require_open_shift(&self) -> Result<OpenShift, NodeError> {
        self.open_shift_here()?.ok_or_else(|| {
            NodeError::Conflict(format!(
                "no open shift on till {}: open one first (buka kasir)",
                self.till_code
            ))
        })
    }

    /// Opens a cash shift on this till (buka kasir); refused while one is open here.
    pub fn open_shift(
        &mut self,
        cashier: &str,
        user_id: Option<&str>,
        opening_cash: i64,
    ) -> Result<String, NodeError> {
        let cashier = cashier.trim();
        if cashier.is_empty() || cashier.chars().count() > 60 {
            return Err(NodeError::Invalid(
                "a shift needs its cashier's name (at most 60 characters)".into(),
            ));
        }
        if opening_cash < 0 {
            return Err(NodeError::Invalid(
                "opening cash must not be negative".into(),
            ));
        }
        if let Some(open) = self.open_shift_here()? {
            return Err(NodeError::Conflict(format!(
                "shift {} of {} is still open on till {}: close it first",
                open.shift_id, open.cashier, self.till_code
            )));
        }
        let shift = ShiftOpen {
            id: uuid::Uuid::now_v7().to_string(),
            cashier: cashier.to_owned(),
            opening_cash,
            at_ms: now_ms(),
            till_code: Some(self.till_code.clone()),
            user_id: user_id.map(str::to_owned),
        };
        self.write_ledger(
            |l| l.record_shift_open(&shift).map(drop),
            |tx, place| tables::index_shift_open(tx, &shift, place),
        )?;
        Ok(shift.id)
    }

    /// Records cash put into (`In`) or taken out of (`Out`) the drawer during the open
    /// shift, with a reason.
    pub fn cash_move(
        &mut self,
        kind: CashMoveKind,
        amount: i64,
        note: &str,
        cashier: Option<String>,
    ) -> Result<String, NodeError> {
        if amount <= 0 {
            return Err(NodeError::Invalid("the amount must be positive".into()));
        }
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 200 {
            return Err(NodeError::Invalid(
                "say why the cash moves (a note of at most 200 characters)".into(),
            ));
        }
        let shift = self.require_open_shift()?;
        let cash = CashMove {
            id: uuid::Uuid::now_v7().to_string(),
            shift_id: shift.shift_id,
            kind,
            amount,
            note: note.to_owned(),
            cashier,
            at_ms: now_ms(),
            till_code: Some(self.till_code.clone()),
        };
        self.write_ledger(
            |l| l.record_cash_move(&cash).map(drop),
            |tx, place| tables::index_cash_move(tx, &cash, place),
        )?;
        Ok(cash.id)
    }

    /// The figures of this till's open shift up to now.
    fn shift_figures(
        &self,
        shift: &OpenShift,
        until_ms: i64,
        counted_cash: i64,
    ) -> Result<ShiftReport, NodeError> {
        let mut by_method = BTreeMap::new();
        let (mut cash, mut cash_in, mut cash_out, mut kasbon_repaid) = (0, 0, 0, 0);
        let mut stmt = self.db.prepare_cached(
            "SELECT kind, method, SUM(amount) FROM money_events
             WHERE till_code = ?1 AND at_ms >= ?2 AND at_ms <= ?3 GROUP BY kind, method",
        )?;
        let rows = stmt.query_map(params![self.till_code, shift.opened_at_ms, until_ms], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, method, amount) = row?;
            if method == "cash" {
                cash += amount;
            }
            match kind.as_str() {
                "cash_in" => cash_in += amount,
                "cash_out" => cash_out -= amount,
                "kasbon_payment" => kasbon_repaid += amount,
                _ => *by_method.entry(method).or_insert(0) += amount,
            }
        }
        let sales: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM sales WHERE till_code = ?1 AND created_at_ms >= ?2 AND created_at_ms <= ?3",
            params![self.till_code, shift.opened_at_ms, until_ms],
            |r| r.get(0),
        )?;
        let expected_cash = shift.opening_cash + cash;
        Ok(ShiftReport {
            shift_id: shift.shift_id.clone(),
            till_code: self.till_code.clone(),
            cashier: shift.cashier.clone(),
            opening_cash: shift.opening_cash,
            expected_cash,
            counted_cash,
            difference: counted_cash - expected_cash,
            by_method,
            cash_in,
            cash_out,
            kasbon_repaid,
            sales,
            opened_at_ms: shift.opened_at_ms,
            closed_at_ms: until_ms,
        })
    }

    /// Closes this till's open shift with the counted cash (tutup kasir).
    pub fn close_shift(
        &mut self,
        counted_cash: i64,
        cashier: Option<String>,
    ) -> Result<ShiftReport, NodeError> {
        if counted_cash < 0 {
            return Err(NodeError::Invalid(
                "counted cash must not be negative".into(),
            ));
        }
        let shift = self.require_open_shift()?;
        let now = now_ms().max(shift.opened_at_ms);
        let report = self.shift_figures(&shift, now, counted_cash)?;
        let close = ShiftClose {
            id: uuid::Uuid::now_v7().to_string(),
            shift_id: shift.shift_id.clone(),
            counted_cash,
            expected_cash: report.expected_cash,
            at_ms: now,
            by_method: report.by_method.clone(),
            cashier,
        };
        self.write_ledger(
            |l| l.record_shift_close(&close).map(drop),
            |tx, place| tables::index_shift_close(tx, &close, place),
        )?;
        Ok(report)
    }
}

impl ShiftReport {
    /// The close of the shift as printed (laporan tutup kasir).
    pub fn print_lines(&self) -> Vec<ReportLine> {
        use kasir_crdt::money::format_rupiah;
        let row = |label: &str, value: String| ReportLine::Row(label.to_owned(), value);
        let mut out = vec![
            row("Kasir", self.cashier.clone()),
            row("Transaksi", self.sales.to_string()),
            row("Modal awal", format_rupiah(self.opening_cash)),
            row("Kas masuk", format_rupiah(self.cash_in)),
            row("Kas keluar", format_rupiah(self.cash_out)),
            ReportLine::Heading("Per metode".to_owned()),
        ];
        out.extend(
            self.by_method
                .iter()
                .map(|(m, a)| row(&kasir_devices::receipt::payment_label(m), format_rupiah(*a))),
        );
        out.extend([
            ReportLine::Heading("Laci".to_owned()),
            row("Seharusnya", format_rupiah(self.expected_cash)),
            row("Dihitung", format_rupiah(self.counted_cash)),
            row("Selisih", format_rupiah(self.difference)),
        ]);
        out
    }
}
