//! Buka Kasir (opening cash), cash in/out, Tutup Kasir with its report, the Z-report.

use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kasir_crdt::records::CashMoveKind;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, amount, bar, call, fail, go, html_response, lang, page, problem, rp, t,
};
use crate::http::AppState;
use crate::people::Action;

/// `GET /ui/shift`: Buka Kasir when no shift is open here; else cash in/out, Tutup
/// Kasir and today's Z-report.
pub(crate) async fn shift_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        Ok((bar(n, Some(&who)), n.open_shift_here()?, n.z_report(None)?))
    })
    .await;
    let (bar, shift, z) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let body = match shift {
        None => html! {
            div.card.center {
                h1 { (t(Msg::OpenShift, lang)) }
                form hx-post="/ui/shift/buka" hx-target="#shift-error" {
                    label for="opening_cash" { (t(Msg::OpeningCash, lang)) }
                    input id="opening_cash" name="opening_cash" inputmode="numeric" value="0" required;
                    div.actions { button.primary id="open-shift" type="submit" { (t(Msg::OpenShift, lang)) } }
                    p.error id="shift-error" {}
                }
            }
        },
        Some(s) => html! {
            div.card.center {
                h1 { (t(Msg::Shift, lang)) }
                p { (t(Msg::ShiftOpenSince, lang)) " " (t(Msg::By, lang)) " " (s.cashier) " · " (rp(s.opening_cash)) }
                form hx-post="/ui/shift/kas" hx-target="#cash-result" {
                    label for="kind" { (t(Msg::Method, lang)) }
                    select id="kind" name="kind" {
                        option value="in" { (t(Msg::CashIn, lang)) }
                        option value="out" { (t(Msg::CashOut, lang)) }
                    }
                    label for="amount" { (t(Msg::Amount, lang)) }
                    input id="amount" name="amount" inputmode="numeric" required;
                    label for="note" { (t(Msg::Note, lang)) }
                    input id="note" name="note" required;
                    div.actions { button type="submit" { (t(Msg::Save, lang)) } }
                    p id="cash-result" {}
                }
            }
            div.card.center {
                h2 { (t(Msg::CloseShift, lang)) }
                form hx-post="/ui/shift/tutup" hx-target="#close-result" {
                    details.denominations {
                        summary.btn { (t(Msg::CountByNote, lang)) }
                        fieldset hx-post="/ui/shift/hitung" hx-trigger="input delay:150ms" hx-target="#counted-field" hx-swap="outerHTML" {
                            @for d in DENOMINATIONS {
                                label.denom { span { (rp(d)) } " ×" input name=(format!("n_{d}")) inputmode="numeric" autocomplete="off" placeholder="0"; }
                            }
                        }
                    }
                    (counted_field(lang, None))
                    div.actions { button.danger id="close-shift" type="submit" { (t(Msg::CloseShift, lang)) } }
                }
                div id="close-result" {}
            }
        },
    };
    let printing = state.printer().is_some();
    let body = html! {
        (body)
        div.card.center.report id="z-report" {
            h2 { (t(Msg::ZReport, lang)) " " (z.date) }
            div.totals {
                div { span { (t(Msg::Sales, lang)) } span { (z.store.sales) } }
                div { span { (t(Msg::Voided, lang)) } span { (rp(z.store.voids)) } }
                div { span { (t(Msg::Tax, lang)) } span { (rp(z.store.tax)) } }
                @for (m, a) in &z.store.by_method { div { span { (m) } span { (rp(*a)) } } }
                div.grand { span { (t(Msg::Net, lang)) } span { (rp(z.store.net)) } }
            }
            @for till in &z.tills {
                h2 { (t(Msg::Till, lang)) " " (till.till_code) }
                div.totals {
                    div { span { (t(Msg::Sales, lang)) } span { (till.figures.sales) } }
                    @for (m, a) in &till.figures.by_method { div { span { (m) } span { (rp(*a)) } } }
                    div.grand { span { (t(Msg::Net, lang)) } span { (rp(till.figures.net)) } }
                }
            }
            (print_buttons(lang, printing.then_some(("print-z", "/ui/shift/cetak-z"))))
        }
    };
    html_response(page(lang, t(Msg::Shift, lang), &bar, Nav::Shift, body))
}

/// Print on the receipt printer (when there is one: the button's `(id, url)`) or on
/// paper from the browser (the page's print style shows the report alone).
fn print_buttons(lang: Lang, on_printer: Option<(&str, &str)>) -> Markup {
    html! {
        div.actions.no-print {
            @if let Some((id, url)) = on_printer {
                button type="button" id=(id) hx-post=(url) hx-target="next .printer-note" hx-swap="innerHTML" {
                    (t(Msg::PrintOnPrinter, lang))
                }
            }
            button type="button" data-print="" { (t(Msg::PrintOnPaper, lang)) }
        }
        p.printer-note.no-print {}
    }
}

/// `POST /ui/shift/cetak-z`: today's Z-report on the receipt printer.
pub(crate) async fn print_z(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    let Some(queue) = state.printer() else {
        return html_response(html! { span.error { (t(Msg::NoPrinter, lang)) } });
    };
    match call(&state, |n| n.z_report(None)).await {
        Ok(z) => html_response(queued(
            lang,
            queue.report("LAPORAN Z", &z.date, z.print_lines()),
        )),
        Err(e) => fail(e),
    }
}

/// What the printer said to a report job.
fn queued(lang: Lang, job: Result<u64, crate::NodeError>) -> Markup {
    match job {
        Ok(_) => html! { "✓ " (t(Msg::ReportSent, lang)) },
        Err(e) => html! { span.error { (problem(lang, &e)) } },
    }
}

/// Rupiah notes and coins in circulation, largest first (Bank Indonesia).
const DENOMINATIONS: [i64; 11] = [
    100_000, 50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500, 200, 100, 50,
];

/// The counted cash field, filled from the denomination counter when it was used.
fn counted_field(lang: Lang, counted: Option<i64>) -> Markup {
    html! {
        div id="counted-field" {
            label for="counted_cash" { (t(Msg::CountedCash, lang)) }
            input id="counted_cash" name="counted_cash" inputmode="numeric" required value=[counted];
            @if let Some(c) = counted { p.hint id="counted-sum" { "= " (rp(c)) } }
        }
    }
}

/// `POST /ui/shift/hitung`: the denomination counter's sum, as the counted cash field.
pub(crate) async fn count_notes(
    _: UiUser,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = lang(&headers);
    let mut total: i64 = 0;
    for (name, value) in &fields {
        let Some(note) = name.strip_prefix("n_").and_then(|d| d.parse::<i64>().ok()) else {
            continue;
        };
        if !DENOMINATIONS.contains(&note) {
            continue;
        }
        let count: i64 = value.trim().parse().unwrap_or(0).clamp(0, 1_000_000);
        total = total.saturating_add(note.saturating_mul(count));
    }
    html_response(counted_field(lang, Some(total)))
}

#[derive(Deserialize)]
pub(crate) struct OpenForm {
    opening_cash: String,
}

/// `POST /ui/shift/buka`.
pub(crate) async fn open_shift(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<OpenForm>,
) -> Response {
    let lang = lang(&headers);
    let opened = call(&state, move |n| {
        n.authorize(&who, Action::OpenShift, None)?;
        let name = who.user_name().unwrap_or_default().to_owned();
        n.open_shift(&name, who.user_id(), amount(&form.opening_cash)?)
    })
    .await;
    match opened {
        Ok(_) => go(&headers, "/ui/kasir"),
        Err(e) => html_response(html! { (problem(lang, &e)) }),
    }
}

#[derive(Deserialize)]
pub(crate) struct CashForm {
    kind: String,
    amount: String,
    note: String,
}

/// `POST /ui/shift/kas`.
pub(crate) async fn cash_move(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<CashForm>,
) -> Response {
    let lang = lang(&headers);
    let kind = if form.kind == "out" {
        CashMoveKind::Out
    } else {
        CashMoveKind::In
    };
    let done = call(&state, move |n| {
        n.authorize(&who, Action::OpenShift, None)?;
        n.cash_move(
            kind,
            amount(&form.amount)?,
            &form.note,
            who.user_name().map(str::to_owned),
        )
    })
    .await;
    html_response(match done {
        Ok(_) => html! { "✓ " (t(Msg::Save, lang)) },
        Err(e) => html! { span.error { (problem(lang, &e)) } },
    })
}

#[derive(Deserialize)]
pub(crate) struct CloseForm {
    counted_cash: String,
}

/// `POST /ui/shift/tutup`: the close's report (laporan tutup kasir).
pub(crate) async fn close_shift(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<CloseForm>,
) -> Response {
    let lang = lang(&headers);
    let closed = call(&state, move |n| {
        n.authorize(&who, Action::OpenShift, None)?;
        n.close_shift(
            amount(&form.counted_cash)?,
            who.user_name().map(str::to_owned),
        )
    })
    .await;
    // The close's report prints on its own when the till has a printer.
    let printed = match (&closed, state.printer()) {
        (Ok(r), Some(q)) => {
            let subtitle = format!("{} · {}", r.till_code, r.cashier);
            Some(queued(
                lang,
                q.report("LAPORAN TUTUP KASIR", &subtitle, r.print_lines()),
            ))
        }
        _ => None,
    };
    html_response(match closed {
        Ok(r) => html! {
            @if let Some(p) = printed { p.toast id="report-printed" { (p) } }
            div.totals.report id="shift-report" {
                div { span { (t(Msg::OpeningCash, lang)) } span { (rp(r.opening_cash)) } }
                div { span { (t(Msg::CashIn, lang)) } span { (rp(r.cash_in)) } }
                div { span { (t(Msg::CashOut, lang)) } span { (rp(r.cash_out)) } }
                @for (m, a) in &r.by_method { div { span { (m) } span { (rp(*a)) } } }
                div { span { (t(Msg::ExpectedCash, lang)) } span { (rp(r.expected_cash)) } }
                div { span { (t(Msg::Counted, lang)) } span { (rp(r.counted_cash)) } }
                div.grand { span { (t(Msg::Difference, lang)) } span { (rp(r.difference)) } }
            }
            (print_buttons(lang, None))
        },
        Err(e) => html! { p.error { (problem(lang, &e)) } },
    })
}
