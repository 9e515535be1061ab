//! Bayar and the struk. A bill may be paid in parts (QRIS for some, the rest in cash):
//! each part is kept on the draft in SQLite until the payments cover the total, then
//! the sale is recorded at once with all of them. The struk is swapped into the page
//! (no second page load), printed through the daemon's queue when a printer is set up,
//! and the printer's state is a toast that never holds up the next sale.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use kasir_crdt::records::{Payment, Sale};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::sell::{CartView, cart_view};
use super::{
    Lang, Msg, Nav, UiUser, amount, bar, call, fail, go, html_response, lang, page, problem, rp, t,
};
use crate::NodeError;
use crate::http::AppState;
use crate::kasbon::CustomerBalance;
use crate::people::Approval;
use crate::print::PrintQueue;
use crate::qris::{self, QrisCharge};

/// Amounts a customer is likely to hand over for `total`: exact, then the next round
/// notes above it.
fn quick_amounts(total: i64) -> Vec<i64> {
    let mut out = vec![total];
    for step in [5_000, 10_000, 20_000, 50_000, 100_000] {
        let next = (total + step - 1) / step * step;
        if next > total && !out.contains(&next) {
            out.push(next);
        }
    }
    out.truncate(5);
    out
}

/// What a bill comes to at Bayar, given what was paid so far.
struct Due {
    /// The total when the rest is paid in cash: rounded (pembulatan) while every
    /// payment is cash, exact once any is not.
    total: i64,
    /// The exact total, for a non-cash payment (never rounded).
    exact: i64,
    /// Paid so far.
    paid: i64,
}

impl Due {
    fn of(view: &CartView) -> Option<Due> {
        let priced = view.priced.as_ref()?;
        let payments = &view.draft.payments;
        let gross = priced.tax.gross;
        let non_cash: i64 = payments
            .iter()
            .filter(|p| !p.is_cash())
            .map(|p| p.amount)
            .sum();
        // The rest paid in cash is rounded as the engine rounds it (pricing::price_cart).
        let cash_part = gross - non_cash;
        let rounded = if cash_part > 0 {
            cash_part + view.rounding.adjustment(cash_part)
        } else {
            cash_part
        };
        Some(Due {
            total: non_cash + rounded,
            exact: gross,
            paid: payments.iter().map(|p| p.amount).sum(),
        })
    }

    fn cash_rest(&self) -> i64 {
        (self.total - self.paid).max(0)
    }

    fn other_rest(&self) -> i64 {
        (self.exact - self.paid).max(0)
    }
}

fn method_name(lang: Lang, method: &str) -> String {
    match method {
        "cash" => t(Msg::Cash, lang).to_owned(),
        "qris" => t(Msg::Qris, lang).to_owned(),
        "card" => t(Msg::Card, lang).to_owned(),
        "transfer" => t(Msg::Transfer, lang).to_owned(),
        "ewallet" => t(Msg::Ewallet, lang).to_owned(),
        "kasbon" => "Kasbon".to_owned(),
        other => other.to_owned(),
    }
}

/// The Bayar panel: the total, what was paid so far, cash with quick amounts, and the
/// other methods with a reference; every form swaps the panel (or the struk) back.
fn pay_panel(
    lang: Lang,
    view: &CartView,
    due: &Due,
    message: Option<&str>,
    customers: &[CustomerBalance],
) -> Markup {
    let d = &view.draft.draft_id;
    html! {
        div.card.center id="pay-panel" {
            h1 { (t(Msg::Pay, lang)) }
            div.big id="pay-total" { (rp(due.total)) }
            @if !view.draft.payments.is_empty() {
                table.list id="paid" {
                    @for (i, p) in view.draft.payments.iter().enumerate() {
                        tr.paid {
                            td { (method_name(lang, &p.method)) @if let Some(r) = &p.reference { " · " (r) } }
                            td.num { (rp(p.amount)) }
                            td { button hx-post=(format!("/ui/d/{d}/bayar/hapus/{i}")) hx-target="#pay-panel" hx-swap="outerHTML" aria-label=(t(Msg::Delete, lang)) { "✕" } }
                        }
                    }
                    tr.grand { td { (t(Msg::Remaining, lang)) } td.num id="pay-remaining" { (rp(due.cash_rest())) } td {} }
                }
            }
            @if let Some(m) = message { p.error id="pay-error" { (m) } } @else { p.error id="pay-error" {} }
            h2 { (t(Msg::Cash, lang)) }
            form id="pay-form" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-panel" hx-swap="outerHTML" hx-disabled-elt="find button" {
                input type="hidden" name="method" value="cash";
                div.quick {
                    @for (i, a) in quick_amounts(due.cash_rest()).into_iter().enumerate() {
                        button.primary[i == 0] type="submit" name="amount" value=(a) data-amount=(a) {
                            @if i == 0 { (t(Msg::ExactCash, lang)) br; small { (rp(a)) } } @else { (rp(a)) }
                        }
                    }
                }
            }
            form.inline id="pay-cash" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-panel" hx-swap="outerHTML" hx-disabled-elt="find button" {
                input type="hidden" name="method" value="cash";
                label for="cash-amount" { (t(Msg::OtherAmount, lang)) }
                div.row {
                    input id="cash-amount" name="amount" inputmode="numeric" autocomplete="off" required;
                    button type="submit" { (t(Msg::Take, lang)) }
                }
            }
            h2 { (t(Msg::NonCash, lang)) }
            form id="pay-other" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-panel" hx-swap="outerHTML" hx-disabled-elt="find button" {
                div.methods role="radiogroup" {
                    @for (i, (m, msg)) in [("qris", Msg::Qris), ("card", Msg::Card), ("transfer", Msg::Transfer), ("ewallet", Msg::Ewallet)].into_iter().enumerate() {
                        label.chip {
                            input type="radio" name="method" value=(m) checked[i == 0];
                            (t(msg, lang))
                        }
                    }
                }
                label for="other-amount" { (t(Msg::Amount, lang)) }
                input id="other-amount" name="amount" inputmode="numeric" autocomplete="off" value=(due.other_rest());
                label for="reference" { (t(Msg::Reference, lang)) }
                input id="reference" name="reference" autocomplete="off" maxlength="40";
                div.actions {
                    a.btn id="back" href=(format!("/ui/kasir?d={d}")) { (t(Msg::Cancel, lang)) }
                    button.primary type="submit" id="pay-submit" { (t(Msg::Take, lang)) }
                }
            }
            // A dynamic QR for the exact rest; the sale is recorded once the acquirer
            // confirms (crate::qris).
            @if view.qris && due.other_rest() > 0 {
                form id="pay-qris" hx-post=(format!("/ui/d/{d}/qris")) hx-target="#pay-panel" hx-swap="outerHTML" hx-disabled-elt="find button" {
                    button.primary type="submit" id="qris-dynamic" { (t(Msg::QrisDynamic, lang)) " " (rp(due.other_rest())) }
                }
            }
            // The rest on credit for a customer (kasbon): it completes the sale.
            @if !customers.is_empty() && due.other_rest() > 0 {
                h2 { (t(Msg::KasbonPay, lang)) }
                form id="pay-kasbon" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-panel" hx-swap="outerHTML" hx-disabled-elt="find button" {
                    input type="hidden" name="method" value="kasbon";
                    input type="hidden" name="amount" value=(due.other_rest());
                    label for="kasbon-customer" { (t(Msg::KasbonFor, lang)) " " strong { (rp(due.other_rest())) } }
                    select id="kasbon-customer" name="customer" required {
                        option value="" { (t(Msg::NoCustomerChosen, lang)) }
                        @for c in customers.iter().filter(|c| c.active) {
                            option value=(c.customer_id) {
                                (c.name)
                                @if c.balance > 0 { " · " (t(Msg::Owes, lang)) " " (rp(c.balance)) }
                            }
                        }
                    }
                    label for="kasbon-due" { (t(Msg::DueDate, lang)) }
                    input id="kasbon-due" name="due" type="date";
                    div.actions { button.primary type="submit" id="kasbon-submit" { (t(Msg::KasbonPay, lang)) } }
                }
            }
        }
    }
}

/// `GET /ui/d/{draft}/bayar`: the total, quick cash amounts and the other methods.
pub(crate) async fn pay_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        let d = n.draft(&draft)?;
        Ok((bar(n, Some(&who)), cart_view(n, d)?, n.customers(None)?))
    })
    .await;
    let (bar, view, customers) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let Some(due) = Due::of(&view) else {
        return go(&headers, "/ui/kasir");
    };
    let body = pay_panel(lang, &view, &due, None, &customers);
    html_response(page(lang, t(Msg::Pay, lang), &bar, Nav::Sell, body))
}

#[derive(Deserialize)]
pub(crate) struct PayForm {
    method: String,
    amount: String,
    #[serde(default)]
    reference: String,
    /// The customer of a kasbon payment.
    #[serde(default)]
    customer: String,
    /// A kasbon's due date (`YYYY-MM-DD`).
    #[serde(default)]
    due: String,
}

/// What a payment did.
enum Paid {
    /// The payments cover the bill: the sale, its struk, and whether this request
    /// recorded it (a second tap or a retry finds it recorded and prints nothing).
    Sold(Box<Sale>, String, bool),
    /// A part of the bill, kept on the draft; or a payment refused, with why.
    Panel(Box<CartView>, Option<String>, Vec<CustomerBalance>),
}

/// `POST /ui/d/{draft}/bayar`: one payment. When the payments cover the total the sale
/// is recorded (durable before the answer) with the draft's id as its client id, so a
/// second tap or a retry finds the first sale; the struk replaces the panel and the
/// printer gets it. Short of the total, the payment waits on the draft.
pub(crate) async fn pay(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let lang = lang(&headers);
    let printer = state.printer();
    let paid = call(&state, move |n| {
        let d = match n.draft(&draft) {
            Ok(d) => d,
            // Paid already (a second tap, a retry after a lost answer): that sale.
            Err(NodeError::NotFound(_)) => match n.sale_by_client_id(&draft)? {
                Some(first) => {
                    let id = first.sale_id;
                    let text = n.receipt_text(&id, 32)?;
                    return Ok(Paid::Sold(Box::new(n.sale(&id)?), text, false));
                }
                None => return Err(NodeError::NotFound(format!("bill {draft}"))),
            },
            Err(e) => return Err(e),
        };
        let method = form.method.trim().to_lowercase();
        let reference = form.reference.trim();
        let payment = Payment {
            reference: (method != "cash" && !reference.is_empty()).then(|| reference.to_owned()),
            method,
            amount: amount(&form.amount)?,
            confirmed_by: None,
        };
        let mut req = d.sale_request(None);
        req.payments = d.payments.clone();
        if payment.method == kasir_crdt::records::KASBON {
            let customer = form.customer.trim();
            if customer.is_empty() {
                let message = t(Msg::NoCustomerChosen, lang).to_owned();
                let customers = n.customers(None)?;
                return Ok(Paid::Panel(
                    Box::new(cart_view(n, d)?),
                    Some(message),
                    customers,
                ));
            }
            req.customer_id = Some(customer.to_owned());
            req.due_date = Some(form.due.trim().to_owned()).filter(|due| !due.is_empty());
        }
        req.payments.push(payment);
        match n.price(&req) {
            Ok(_) => {
                let approved_by = n.draft_approval(&d, &who)?;
                let sale = n.sell_by(&req, who.user_ref(), approved_by)?;
                n.drop_draft(&draft)?;
                let text = n.receipt_text(&sale.sale_id, 32)?;
                Ok(Paid::Sold(
                    Box::new(n.sale(&sale.sale_id)?),
                    text,
                    sale.created,
                ))
            }
            Err(NodeError::InsufficientPayment { .. }) => {
                let mut d = d;
                d.payments = req.payments;
                n.save_draft(&d)?;
                let customers = n.customers(None)?;
                Ok(Paid::Panel(Box::new(cart_view(n, d)?), None, customers))
            }
            Err(e) => {
                let message = problem(lang, &e);
                let customers = n.customers(None)?;
                Ok(Paid::Panel(
                    Box::new(cart_view(n, d)?),
                    Some(message),
                    customers,
                ))
            }
        }
    })
    .await;
    match paid {
        Ok(Paid::Sold(sale, text, recorded)) => {
            sold(lang, &sale, &text, printer.as_ref(), recorded)
        }
        Ok(Paid::Panel(view, message, customers)) => match Due::of(&view) {
            Some(due) => {
                html_response(pay_panel(lang, &view, &due, message.as_deref(), &customers))
            }
            None => go(&headers, "/ui/kasir"),
        },
        Err(e) => html_response(html! { p.error id="pay-error" { (problem(lang, &e)) } }),
    }
}

/// The struk in place of the panel (and in the address bar). Only the request that
/// recorded the sale prints it: a second original would be a reprint without approval.
fn sold(
    lang: Lang,
    sale: &Sale,
    text: &str,
    printer: Option<&PrintQueue>,
    recorded: bool,
) -> Response {
    let printing = printer
        .filter(|_| recorded)
        .map(|q| q.enqueue(&sale.id, false));
    let mut r = html_response(receipt_body(lang, sale, text, printer, printing));
    for (name, value) in [
        ("hx-retarget", "main".to_owned()),
        ("hx-reswap", "innerHTML".to_owned()),
        ("hx-push-url", format!("/ui/struk/{}", sale.id)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// The dynamic QR on screen: the amount, the QR, and what became of it; polls itself
/// every two seconds while pending.
fn qris_panel(lang: Lang, draft: &str, charge: &QrisCharge, printer: bool) -> Markup {
    let pending = charge.status == "pending";
    let poll = format!("/ui/qris/{}?d={draft}", charge.charge_id);
    html! {
        div.card.center id="pay-panel" data-charge=(charge.charge_id) data-status=(charge.status)
            hx-get=[pending.then_some(poll.as_str())] hx-trigger=[pending.then_some("every 2s")] hx-swap="outerHTML" {
            h1 { (t(Msg::QrisDynamic, lang)) }
            div.big id="qris-amount" { (rp(charge.amount)) }
            @if pending {
                @if let Some(svg) = super::qr_svg(&charge.qr_string, 260, qrcode::EcLevel::M) { div.qr id="qris-code" { (PreEscaped(svg)) } }
                p id="qris-status" { (t(Msg::QrisWaiting, lang)) }
                @if charge.via.is_some() { p.muted id="qris-via" { (t(Msg::QrisViaPeer, lang)) } }
                // Paper for a customer who cannot see the screen (the struk follows).
                @if printer {
                    button type="button" id="qris-print" hx-post=(format!("/ui/qris/{}/cetak", charge.charge_id))
                        hx-target="#qris-printed" hx-swap="outerHTML" { (t(Msg::QrisPrint, lang)) }
                    p id="qris-printed" {}
                }
            } @else if charge.status == "expired" {
                p.error id="qris-status" { (t(Msg::QrisExpired, lang)) }
            } @else if charge.status == "failed" {
                p.error id="qris-status" { (t(Msg::QrisFailed, lang)) @if let Some(why) = &charge.error { ": " (why) } }
            } @else if charge.status == "paid_unrecorded" {
                p.error id="qris-status" role="alert" { (t(Msg::QrisUnrecorded, lang)) @if let Some(why) = &charge.error { ": " (why) } }
            }
            div.actions { a.btn id="qris-back" href=(format!("/ui/d/{draft}/bayar")) { (t(Msg::BackToPay, lang)) } }
        }
    }
}

/// `POST /ui/d/{draft}/qris`: a dynamic QR for the bill's rest.
pub(crate) async fn qris_start(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let id = draft.clone();
    let req = call(&state, move |n| {
        let d = n.draft(&id)?;
        let mut req = d.sale_request(None);
        req.payments = d.payments.clone();
        Ok(req)
    })
    .await;
    let made = match req {
        Ok(req) => qris::create_charge(state.node(), state.lan_endpoint().as_ref(), who, req).await,
        Err(e) => Err(e),
    };
    match made {
        Ok((charge, _)) => {
            html_response(qris_panel(lang, &draft, &charge, state.printer().is_some()))
        }
        Err(e) => html_response(html! { div.card.center id="pay-panel" {
            p.error id="pay-error" { (problem(lang, &e)) }
            a.btn href=(format!("/ui/d/{draft}/bayar")) { (t(Msg::BackToPay, lang)) }
        } }),
    }
}

#[derive(Deserialize)]
pub(crate) struct QrisPoll {
    d: String,
}

/// `POST /ui/qris/{charge}/cetak`: the pending QR on the receipt printer.
pub(crate) async fn qris_print(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(charge_id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let id = charge_id.clone();
    let queued = match (
        state.printer(),
        call(&state, move |n| n.qris_payable(&id)).await,
    ) {
        (None, _) => Err(NodeError::Conflict(t(Msg::NoPrinter, lang).to_owned())),
        (_, Err(e)) => Err(e),
        (Some(queue), Ok(_)) => queue.qris(&charge_id),
    };
    html_response(match queued {
        Ok(_) => html! { p.toast id="qris-printed" role="status" { (t(Msg::QrisPrinted, lang)) } },
        Err(e) => html! { p.toast.error id="qris-printed" role="alert" { (problem(lang, &e)) } },
    })
}

/// `GET /ui/qris/{charge}?d={draft}`: the QR's state; once paid, the struk (printed by
/// the poll that finds the bill still open, so once).
pub(crate) async fn qris_poll(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(charge_id): Path<String>,
    Query(q): Query<QrisPoll>,
) -> Response {
    let lang = lang(&headers);
    let printer = state.printer();
    let charge = match qris::refresh_charge(state.node(), state.lan_endpoint().as_ref(), charge_id)
        .await
    {
        Ok(c) => c,
        Err(e) => return html_response(html! { p.error id="pay-error" { (problem(lang, &e)) } }),
    };
    let Some(sale_id) = charge.sale_id.clone().filter(|_| charge.status == "paid") else {
        return html_response(qris_panel(lang, &q.d, &charge, printer.is_some()));
    };
    let draft = q.d.clone();
    let done = call(&state, move |n| {
        let first = n.draft(&draft).is_ok();
        if first {
            n.drop_draft(&draft)?;
        }
        let text = n.receipt_text(&sale_id, 32)?;
        Ok((n.sale(&sale_id)?, text, first))
    })
    .await;
    match done {
        Ok((sale, text, first)) => sold(lang, &sale, &text, printer.as_ref(), first),
        Err(e) => fail(e),
    }
}

/// `POST /ui/d/{draft}/bayar/hapus/{idx}`: takes back a part payment.
pub(crate) async fn drop_payment(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path((draft, idx)): Path<(String, usize)>,
) -> Response {
    let lang = lang(&headers);
    let view = call(&state, move |n| {
        let mut d = n.draft(&draft)?;
        if idx < d.payments.len() {
            d.payments.remove(idx);
            n.save_draft(&d)?;
        }
        Ok((cart_view(n, d)?, n.customers(None)?))
    })
    .await;
    match view.map(|(v, c)| (Due::of(&v), v, c)) {
        Ok((Some(due), view, customers)) => {
            html_response(pay_panel(lang, &view, &due, None, &customers))
        }
        Ok((None, _, _)) => go(&headers, "/ui/kasir"),
        Err(e) => fail(e),
    }
}

/// The struk screen's body: totals, change, the struk as it prints, the printer's state
/// and what next. `printing` is the print job just queued for this sale, if any.
fn receipt_body(
    lang: Lang,
    sale: &Sale,
    text: &str,
    printer: Option<&PrintQueue>,
    printing: Option<Result<u64, NodeError>>,
) -> Markup {
    let id = &sale.id;
    html! {
        div.card.center id="receipt" {
            h1 { (t(Msg::Receipt, lang)) " " (sale.receipt_no) }
            div.totals {
                div.grand { span { (t(Msg::Total, lang)) } span id="receipt-total" { (rp(sale.total)) } }
                @for p in &sale.payments {
                    div { span { (method_name(lang, &p.method)) @if let Some(r) = &p.reference { " · " (r) } } span { (rp(p.amount)) } }
                }
                div.grand { span { (t(Msg::Change, lang)) } span id="receipt-change" { (rp(sale.change)) } }
            }
            @match printer {
                None => p.toast id="printer" { (t(Msg::NoPrinter, lang)) },
                Some(q) => @match printing {
                    Some(Err(e)) => p.toast.error id="printer" { (e.to_string()) },
                    Some(Ok(_)) => (printer_toast(lang, q, Toast::Queued)),
                    None => (printer_toast(lang, q, Toast::Idle)),
                },
            }
            div.actions {
                a.btn.primary id="new-sale" href="/ui/kasir" { (t(Msg::NewSale, lang)) " (Enter)" }
            }
            @if printer.is_some() {
                details.reprint {
                    summary.btn { (t(Msg::Reprint, lang)) }
                    form hx-post=(format!("/ui/struk/{id}/cetak")) hx-target="#printer" hx-swap="outerHTML" {
                        label { (t(Msg::Approver, lang)) input name="approver"; }
                        label { (t(Msg::ApproverPin, lang)) input name="approver_pin" type="password" inputmode="numeric" autocomplete="off"; }
                        button type="submit" id="reprint" { (t(Msg::Reprint, lang)) " (" (t(Msg::Copy, lang)) ")" }
                    }
                }
            }
            pre.struk id="struk" { (text) }
        }
    }
}

/// When the printer's toast is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Toast {
    /// A job was just queued.
    Queued,
    /// Asked again while a job was under way.
    AfterJob,
    /// Nothing was sent from this screen.
    Idle,
}

/// The printer's state as a toast; while a job is under way it asks again shortly.
pub(crate) fn printer_toast(lang: Lang, queue: &PrintQueue, when: Toast) -> Markup {
    let health = queue.health();
    let busy = when == Toast::Queued || health.pending > 0;
    html! {
        @if let Some(error) = health.failing.filter(|_| !busy) {
            p.toast.error id="printer" role="alert" { (t(Msg::PrinterFailed, lang)) ": " (error) }
        } @else if busy {
            p.toast id="printer" hx-get="/ui/printer" hx-trigger="load delay:1s" hx-swap="outerHTML" { (t(Msg::Printing, lang)) }
        } @else if when == Toast::AfterJob {
            p.toast.ok id="printer" { "✓ " (t(Msg::Printed, lang)) }
        } @else {
            p.toast.ok id="printer" { (t(Msg::PrinterReady, lang)) " · " (queue.printer()) }
        }
    }
}

/// `GET /ui/printer`: the printer's toast again.
pub(crate) async fn printer_state(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match state.printer() {
        Some(q) => html_response(printer_toast(lang, &q, Toast::AfterJob)),
        None => html_response(html! { p.toast id="printer" { (t(Msg::NoPrinter, lang)) } }),
    }
}

/// `GET /ui/struk/{sale}`: the struk as it prints, the change, and what next (a
/// reload of the struk screen, or a sale opened from Riwayat).
pub(crate) async fn receipt_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(sale): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        let record = n.sale(&sale)?;
        let text = n.receipt_text(&sale, 32)?;
        Ok((bar(n, Some(&who)), record, text))
    })
    .await;
    let (bar, record, text) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let printer = state.printer();
    let body = html! {
        (receipt_body(lang, &record, &text, printer.as_ref(), None))
        (super::history::refund_form(lang, &record))
    };
    html_response(page(lang, t(Msg::Receipt, lang), &bar, Nav::History, body))
}

#[derive(Deserialize)]
pub(crate) struct ReprintForm {
    #[serde(default)]
    approver: String,
    #[serde(default)]
    approver_pin: String,
}

/// `POST /ui/struk/{sale}/cetak`: a reprint (SALINAN) through the daemon's queue; a
/// supervisor's, or with one's name and PIN, and audited. A printer that is off is a
/// toast, never a lost sale.
pub(crate) async fn print(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(sale): Path<String>,
    Form(form): Form<ReprintForm>,
) -> Response {
    let lang = lang(&headers);
    let Some(queue) = state.printer() else {
        return html_response(html! { p.toast id="printer" { (t(Msg::NoPrinter, lang)) } });
    };
    let id = sale.clone();
    let approved = call(&state, move |n| {
        let approval = Approval::named(&form.approver, &form.approver_pin);
        n.approve_reprint(&who, &id, approval.as_ref())
    })
    .await;
    let queued = approved.and_then(|()| queue.enqueue(&sale, true));
    html_response(match queued {
        Ok(_) => printer_toast(lang, &queue, Toast::Queued),
        Err(NodeError::ApprovalRequired(_)) => {
            html! { p.toast.error id="printer" { (t(Msg::ApproverPin, lang)) "?" } }
        }
        Err(e) => html! { p.toast.error id="printer" { (problem(lang, &e)) } },
    })
}
