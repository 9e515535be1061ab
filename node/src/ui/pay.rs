//! Bayar (cash with quick amounts, other methods) and the struk.

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kasir_crdt::records::Payment;
use maud::html;
use serde::Deserialize;

use super::sell::cart_view;
use super::{
    Msg, Nav, UiUser, amount, bar, call, fail, go, html_response, lang, page, problem, rp, t,
};
use crate::http::AppState;

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
        Ok((bar(n, Some(&who)), cart_view(n, d)?))
    })
    .await;
    let (bar, view) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let Some(priced) = &view.priced else {
        return go(&headers, "/ui/kasir");
    };
    let d = &view.draft.draft_id;
    let body = html! {
        div.card.center {
            h1 { (t(Msg::Pay, lang)) }
            div.big id="pay-total" { (rp(priced.total)) }
            form id="pay-form" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-error" hx-disabled-elt="find button" {
                input type="hidden" name="method" value="cash";
                div.quick {
                    @for (i, a) in quick_amounts(priced.total).into_iter().enumerate() {
                        button.primary[i == 0] type="submit" name="amount" value=(a) data-amount=(a) {
                            @if i == 0 { (t(Msg::ExactCash, lang)) } @else { (rp(a)) }
                        }
                    }
                }
            }
            form id="pay-other" hx-post=(format!("/ui/d/{d}/bayar")) hx-target="#pay-error" hx-disabled-elt="find button" {
                label for="method" { (t(Msg::Method, lang)) }
                select id="method" name="method" {
                    option value="cash" { (t(Msg::Cash, lang)) }
                    option value="qris" { (t(Msg::Qris, lang)) }
                    option value="card" { (t(Msg::Card, lang)) }
                    option value="transfer" { (t(Msg::Transfer, lang)) }
                    option value="ewallet" { (t(Msg::Ewallet, lang)) }
                }
                label for="amount" { (t(Msg::Amount, lang)) }
                input id="amount" name="amount" inputmode="numeric" value=(priced.total);
                div.actions {
                    a.btn id="back" href=(format!("/ui/kasir?d={d}")) { (t(Msg::Cancel, lang)) }
                    button.primary type="submit" id="pay-submit" { (t(Msg::Pay, lang)) }
                }
            }
            p.error id="pay-error" {}
        }
    };
    html_response(page(lang, t(Msg::Pay, lang), &bar, Nav::Sell, body))
}

#[derive(Deserialize)]
pub(crate) struct PayForm {
    method: String,
    amount: String,
}

/// `POST /ui/d/{draft}/bayar`: records the sale (durable before the answer) with the
/// draft's id as its client id, then shows the struk.
pub(crate) async fn pay(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let lang = lang(&headers);
    let sold = call(&state, move |n| {
        let d = n.draft(&draft)?;
        let mut req = d.sale_request(None);
        req.payments = vec![Payment {
            method: form.method.trim().to_lowercase(),
            amount: amount(&form.amount)?,
            reference: None,
        }];
        let approved_by = n.draft_approval(&d, &who)?;
        let sale = n.sell_by(&req, who.user_ref(), approved_by)?;
        n.drop_draft(&draft)?;
        Ok(sale)
    })
    .await;
    match sold {
        Ok(sale) => go(&headers, &format!("/ui/struk/{}", sale.sale_id)),
        Err(e) => html_response(html! { (problem(lang, &e)) }),
    }
}

/// `GET /ui/struk/{sale}`: the struk as it prints, the change, and what next.
pub(crate) async fn receipt_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(sale): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let id = sale.clone();
    let facts = call(&state, move |n| {
        let record = n.sale(&id)?;
        let text = n.receipt_text(&id, 32)?;
        Ok((bar(n, Some(&who)), record, text))
    })
    .await;
    let (bar, record, text) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let printer = state.printer().is_some();
    let body = html! {
        div.card.center {
            h1 { (t(Msg::Receipt, lang)) " " (record.receipt_no) }
            div.totals {
                div.grand { span { (t(Msg::Total, lang)) } span id="receipt-total" { (rp(record.total)) } }
                div.grand { span { (t(Msg::Change, lang)) } span id="receipt-change" { (rp(record.change)) } }
            }
            pre.struk id="struk" { (text) }
            div.actions {
                @if printer {
                    button hx-post=(format!("/ui/struk/{sale}/cetak")) hx-target="#print-result" { (t(Msg::Print, lang)) }
                }
                a.btn.primary id="new-sale" href="/ui/kasir" { (t(Msg::NewSale, lang)) }
            }
            p id="print-result" {
                @if !printer { (t(Msg::NoPrinter, lang)) }
            }
        }
    };
    html_response(page(lang, t(Msg::Receipt, lang), &bar, Nav::Sell, body))
}

/// `POST /ui/struk/{sale}/cetak`: the first print through the daemon's queue (a
/// printer that is off is a message, never a lost sale).
pub(crate) async fn print(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(sale): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let Some(queue) = state.printer() else {
        return html_response(html! { (t(Msg::NoPrinter, lang)) });
    };
    html_response(match queue.enqueue(&sale, false) {
        Ok(_) => html! { (t(Msg::Printing, lang)) },
        Err(e) => html! { span.error { (e.to_string()) } },
    })
}
