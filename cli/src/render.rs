//! How the `kasir` command shows reports to people (without `--json`): the shift
//! close (laporan tutup kasir), the Z-report and the audit trail, in Bahasa Indonesia.

use kasir_crdt::money::format_rupiah;
use kasir_node::api::{AuditTrail, ShiftReport, ZFigures, ZReport};

fn methods(by: &std::collections::BTreeMap<String, i64>) -> String {
    by.iter()
        .map(|(m, a)| format!("  {m:<12} {:>16}", format_rupiah(*a)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The close of a shift.
pub(crate) fn shift_report(r: &ShiftReport) -> String {
    format!(
        "Tutup kasir {} ({}, {})\n  {:<12} {:>16}\n  {:<12} {:>16}\n  {:<12} {:>16}\n  {:<12} {:>16}\n  {:<12} {:>16}\n  {:<12} {:>16}\nPer metode:\n{}",
        r.till_code,
        r.cashier,
        r.shift_id,
        "modal awal",
        format_rupiah(r.opening_cash),
        "kas masuk",
        format_rupiah(r.cash_in),
        "kas keluar",
        format_rupiah(r.cash_out),
        "seharusnya",
        format_rupiah(r.expected_cash),
        "dihitung",
        format_rupiah(r.counted_cash),
        "selisih",
        format_rupiah(r.difference),
        methods(&r.by_method)
    )
}

fn figures(f: &ZFigures) -> String {
    let rows = [
        ("transaksi", f.sales.to_string()),
        ("penjualan kotor", format_rupiah(f.gross)),
        ("diskon", format_rupiah(f.discounts)),
        (
            "batal",
            format!("{} ({})", format_rupiah(f.voids), f.void_count),
        ),
        (
            "retur",
            format!("{} ({})", format_rupiah(f.refunds), f.refund_count),
        ),
        ("pajak", format_rupiah(f.tax)),
        ("pembulatan", format_rupiah(f.rounding)),
        ("bersih", format_rupiah(f.net)),
        ("kas seharusnya", format_rupiah(f.cash_expected)),
    ];
    let mut out: Vec<String> = rows
        .iter()
        .map(|(k, v)| format!("  {k:<16} {v:>16}"))
        .collect();
    out.push(methods(&f.by_method));
    out.join("\n")
}

/// The Z-report.
pub(crate) fn z_report(z: &ZReport) -> String {
    let mut out = vec![format!("Laporan Z {}", z.date), figures(&z.store)];
    for t in &z.tills {
        out.push(format!("Kasir {}", t.till_code));
        out.push(figures(&t.figures));
    }
    out.join("\n")
}

/// The audit trail.
pub(crate) fn audit(trail: &AuditTrail) -> String {
    if trail.entries.is_empty() {
        return "Tidak ada catatan".to_owned();
    }
    trail
        .entries
        .iter()
        .map(|e| {
            let local = e.at_ms + i64::from(trail.utc_offset_minutes) * 60_000;
            let at = chrono::DateTime::from_timestamp_millis(local)
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            let approved = e
                .approved_by
                .as_deref()
                .map(|a| format!("  disetujui {a}"))
                .unwrap_or_default();
            format!(
                "{at} {:<4} {:<12} {:<14} {}{approved}",
                e.till_code,
                e.user.as_deref().unwrap_or("-"),
                e.action,
                e.record_id.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
