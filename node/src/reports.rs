//! The day's reports: the Z-report (per till and for the store) and the audit trail.
//!
//! Both read only the read tables, which hold every till's records this one has
//! received; a report run on any till after sync therefore gives the same answer. A
//! void or refund counts on the day and till that recorded it, so each till's Z-report
//! adds up to the money in its drawer and equals the sum of its shifts.

use std::collections::BTreeMap;

use kasir_crdt::BusinessDate;
use kasir_crdt::money::format_rupiah;
use kasir_crdt::records::AuditEvent;
use kasir_devices::receipt::ReportLine;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use crate::tables;
use kasir_sync::now_ms;

/// The figures of one till, or of the store, for one business day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZFigures {
    /// Sales rung up (voided ones included; their money is in `voids`).
    pub sales: i64,
    /// Σ unit price × qty before discounts.
    pub gross: i64,
    /// Line discounts.
    pub discounts: i64,
    /// Money of sales voided this day.
    pub voids: i64,
    /// Sales voided this day.
    pub void_count: i64,
    /// Money refunded this day.
    pub refunds: i64,
    /// Refunds made this day.
    pub refund_count: i64,
    /// Tax of the sales less the tax voided and refunded.
    pub tax: i64,
    /// Cash rounding of the sales less the rounding voided and refunded.
    pub rounding: i64,
    /// Σ sale totals − voids − refunds: what the day took.
    pub net: i64,
    /// `net` by payment method (cash net of change).
    pub by_method: BTreeMap<String, i64>,
    /// Cash put into drawers (not sales).
    pub cash_in: i64,
    /// Cash taken out of drawers (not refunds).
    pub cash_out: i64,
    /// Opening cash of the shifts opened this day.
    pub opening_cash: i64,
    /// What the drawers should hold: opening cash + cash taken − paid out.
    pub cash_expected: i64,
    /// Kasbon paid back this day (not sales: in `cash_expected` when paid in cash).
    #[serde(default)]
    pub kasbon_repaid: i64,
}

impl ZFigures {
    fn add(&mut self, o: &ZFigures) {
        self.sales += o.sales;
        self.gross += o.gross;
        self.discounts += o.discounts;
        self.voids += o.voids;
        self.void_count += o.void_count;
        self.refunds += o.refunds;
        self.refund_count += o.refund_count;
        self.tax += o.tax;
        self.rounding += o.rounding;
        self.net += o.net;
        for (m, a) in &o.by_method {
            *self.by_method.entry(m.clone()).or_insert(0) += a;
        }
        self.cash_in += o.cash_in;
        self.cash_out += o.cash_out;
        self.opening_cash += o.opening_cash;
        self.cash_expected += o.cash_expected;
        self.kasbon_repaid += o.kasbon_repaid;
    }
}

/// One till's part of a Z-report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZTill {
    /// The till.
    pub till_code: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: ZFigures,
}

/// `GET /v1/reports/z`: the day's closing report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReport {
    /// The business day.
    pub date: String,
    /// The store's figures (Σ of the tills').
    pub store: ZFigures,
    /// Each till's figures, by till code.
    pub tills: Vec<ZTill>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// On which till.
    pub till_code: String,
    /// Who (a user's name; none for the device itself).
    pub user: Option<String>,
    /// What: `sale`, `void`, `refund`, `stock_adjust`, `shift_open`, `cash_out`,
    /// `login`, `login_failed`, `reprint`, `price_change`...
    pub action: String,
    /// Which record (a sale, a shift, a SKU, a user).
    pub record_id: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Why, when the person said (opening the drawer without a sale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTrail {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
    /// The store's offset from UTC, to show the times in its zone.
    pub utc_offset_minutes: i32,
}

impl Node {
    fn report_date(&self, date: Option<&str>) -> Result<String, NodeError> {
        match date {
            Some(d) => Ok(d
                .parse::<BusinessDate>()
                .map_err(|e| NodeError::Invalid(e.to_string()))?
                .to_string()),
            None => Ok(self.today().to_string()),
        }
    }

    /// The Z-report of a business day (today when `None`).
    pub fn z_report(&self, date: Option<&str>) -> Result<ZReport, NodeError> {
        let date = self.report_date(date)?;
        let mut tills: BTreeMap<String, ZFigures> = BTreeMap::new();
        let mut stmt = self.db.prepare_cached(
            "SELECT till_code, COUNT(*), SUM(gross), SUM(discounts), SUM(tax), SUM(rounding), SUM(total)
             FROM sales WHERE business_date = ?1 GROUP BY till_code",
        )?;
        let rows = stmt.query_map([&date], |r| {
            Ok((
                r.get::<_, String>(0)?,
                [
                    r.get::<_, i64>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ],
            ))
        })?;
        for row in rows {
            let (till, [count, gross, discounts, tax, rounding, total]) = row?;
            let f = tills.entry(till).or_default();
            f.sales += count;
            f.gross += gross;
            f.discounts += discounts;
            f.tax += tax;
            f.rounding += rounding;
            f.net += total;
        }
        let mut stmt = self.db.prepare_cached(
            "SELECT till_code, kind, COUNT(*), SUM(amount), SUM(tax), SUM(rounding)
             FROM sale_events WHERE business_date = ?1 GROUP BY till_code, kind",
        )?;
        let rows = stmt.query_map([&date], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                [r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            ))
        })?;
        for row in rows {
            let (till, kind, [count, amount, tax, rounding]) = row?;
            let f = tills.entry(till).or_default();
            match kind.as_str() {
                "void" => {
                    f.voids += amount;
                    f.void_count += count;
                }
                _ => {
                    f.refunds += amount;
                    f.refund_count += count;
                }
            }
            f.tax -= tax;
            f.rounding -= rounding;
            f.net -= amount;
        }
        let mut stmt = self.db.prepare_cached(
            "SELECT till_code, kind, method, SUM(amount) FROM money_events
             WHERE business_date = ?1 GROUP BY till_code, kind, method",
        )?;
        let rows = stmt.query_map([&date], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (till, kind, method, amount) = row?;
            let f = tills.entry(till).or_default();
            if method == "cash" {
                f.cash_expected += amount;
            }
            match kind.as_str() {
                "cash_in" => f.cash_in += amount,
                "cash_out" => f.cash_out -= amount,
                "kasbon_payment" => f.kasbon_repaid += amount,
                _ => *f.by_method.entry(method).or_insert(0) += amount,
            }
        }
        let mut stmt = self.db.prepare_cached(
            "SELECT till_code, SUM(opening_cash) FROM till_shifts
             WHERE opened_at_ms >= ?1 AND opened_at_ms < ?2 GROUP BY till_code",
        )?;
        let (from, to) = self.day_bounds(&date)?;
        let rows = stmt.query_map(params![from, to], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (till, opening) = row?;
            let f = tills.entry(till).or_default();
            f.opening_cash += opening;
            f.cash_expected += opening;
        }
        let mut store = ZFigures::default();
        for f in tills.values() {
            store.add(f);
        }
        Ok(ZReport {
            date,
            store,
            tills: tills
                .into_iter()
                .map(|(till_code, figures)| ZTill { till_code, figures })
                .collect(),
        })
    }

    /// The first and past-the-last millisecond of a business day in the store's zone.
    fn day_bounds(&self, date: &str) -> Result<(i64, i64), NodeError> {
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|e| NodeError::Invalid(format!("date {date:?}: {e}")))?;
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(|| NodeError::Invalid(format!("date {date:?}")))?;
        // The business day starts at the store's cut-off hour (a café open past midnight).
        let from = midnight - i64::from(self.profile.utc_offset_minutes) * 60_000
            + i64::from(self.profile.day_cutoff_hour.min(12)) * 3_600_000;
        Ok((from, from + 86_400_000))
    }

    /// The audit trail of a business day (today when `None`), oldest first.
    pub fn audit(&self, date: Option<&str>) -> Result<AuditTrail, NodeError> {
        let date = self.report_date(date)?;
        let mut entries = Vec::new();
        let mut stmt = self.db.prepare_cached(
            "SELECT created_at_ms, till_code, cashier, sale_id, approved_by FROM sales
             WHERE business_date = ?1",
        )?;
        let rows = stmt.query_map([&date], |r| {
            Ok(AuditEntry {
                at_ms: r.get(0)?,
                till_code: r.get(1)?,
                user: r.get(2)?,
                action: "sale".into(),
                record_id: Some(tables::sale_id_column(r, 3)?),
                approved_by: r.get(4)?,
                detail: None,
            })
        })?;
        for row in rows {
            entries.push(row?);
        }
        // Voids and refunds, then everything else people did: one shape, one query.
        let mut stmt = self.db.prepare_cached(
            "SELECT at_ms, till_code, cashier, kind, record_id, approved_by, NULL FROM sale_events
             WHERE business_date = ?1
             UNION ALL
             SELECT at_ms, till_code, user, action, record_id, approved_by, detail FROM audit_log
             WHERE business_date = ?1",
        )?;
        let rows = stmt.query_map([&date], |r| {
            Ok(AuditEntry {
                at_ms: r.get(0)?,
                till_code: r.get(1)?,
                user: r.get(2)?,
                action: r.get(3)?,
                record_id: r.get(4)?,
                approved_by: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        for row in rows {
            entries.push(row?);
        }
        entries.sort_by(|a, b| {
            (a.at_ms, &a.till_code, &a.action).cmp(&(b.at_ms, &b.till_code, &b.action))
        });
        Ok(AuditTrail {
            entries,
            utc_offset_minutes: self.profile.utc_offset_minutes,
        })
    }

    /// Records something a person did that is no other record (a login, a reprint, a
    /// price change) in this till's ledger, so the audit trail syncs.
    pub(crate) fn record_audit(
        &mut self,
        action: &str,
        user: Option<&str>,
        record_id: Option<&str>,
        approved_by: Option<&str>,
    ) -> Result<(), NodeError> {
        self.record_audit_detail(action, user, record_id, approved_by, None)
    }

    /// [`Node::record_audit`] with the person's reason.
    pub(crate) fn record_audit_detail(
        &mut self,
        action: &str,
        user: Option<&str>,
        record_id: Option<&str>,
        approved_by: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), NodeError> {
        let event = AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            action: action.to_owned(),
            user: user.map(str::to_owned),
            approved_by: approved_by.map(str::to_owned),
            record_id: record_id.map(str::to_owned),
            at_ms: now_ms(),
            till_code: Some(self.till_code.clone()),
            detail: detail.map(str::to_owned),
        };
        self.write_ledger(
            |l| l.record_audit(&event).map(drop),
            |tx, place| tables::index_audit_event(tx, &event, place),
        )
    }
}

/// `(label, rupiah)` rows of a report, by payment method (`TUNAI`, `QRIS`).
fn method_rows(by: &BTreeMap<String, i64>) -> Vec<ReportLine> {
    by.iter()
        .map(|(m, a)| ReportLine::Row(kasir_devices::receipt::payment_label(m), format_rupiah(*a)))
        .collect()
}

impl ZFigures {
    /// The figures as printed rows.
    fn print_lines(&self) -> Vec<ReportLine> {
        let row = |label: &str, value: String| ReportLine::Row(label.to_owned(), value);
        let mut out = vec![
            row("Transaksi", self.sales.to_string()),
            row("Penjualan kotor", format_rupiah(self.gross)),
            row("Diskon", format_rupiah(self.discounts)),
            row(
                "Batal",
                format!("{} ({})", format_rupiah(self.voids), self.void_count),
            ),
            row(
                "Retur",
                format!("{} ({})", format_rupiah(self.refunds), self.refund_count),
            ),
            row("Pajak", format_rupiah(self.tax)),
            row("Pembulatan", format_rupiah(self.rounding)),
            row("Bersih", format_rupiah(self.net)),
            row("Kas seharusnya", format_rupiah(self.cash_expected)),
        ];
        if self.kasbon_repaid != 0 {
            out.push(row("Kasbon dibayar", format_rupiah(self.kasbon_repaid)));
        }
        out.extend(method_rows(&self.by_method));
        out
    }
}

impl ZReport {
    /// The Z-report as printed: the store's figures, then each till's.
    pub fn print_lines(&self) -> Vec<ReportLine> {
        let mut out = self.store.print_lines();
        for till in &self.tills {
            out.push(ReportLine::Heading(format!("Kasir {}", till.till_code)));
            out.extend(till.figures.print_lines());
        }
        out
    }
}
