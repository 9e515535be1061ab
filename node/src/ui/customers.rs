//! Pelanggan: customers and their kasbon — who owes what, overdue first, a payment
//! taken at this till, a new customer added. Every write goes through the same
//! operations as the HTTP API (`SaveCustomer`, `PayKasbon`).

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, amount, bar, call, fail, html_response, lang, page, problem, rp,
    run_op, t,
};
use crate::NodeError;
use crate::api::{ListCustomers, PayKasbon, SaveCustomer};
use crate::http::AppState;
use crate::kasbon::{CustomerBalance, CustomerInput, KasbonPaymentInput};

/// The customers card: the total owed, each customer's balance and due date (overdue
/// marked, first), and a payment form per customer who owes.
fn customers_card(
    lang: Lang,
    customers: &[CustomerBalance],
    message: Option<&Result<String, NodeError>>,
) -> Markup {
    let owed: i64 = customers.iter().map(|c| c.balance.max(0)).sum();
    html! {
        div.card id="customers-card" {
            div.row {
                h2 { (t(Msg::Kasbon, lang)) }
                span.big id="total-owed" { (rp(owed)) }
            }
            @match message {
                Some(Ok(done)) => p.toast id="customers-result" { "✓ " (done) },
                Some(Err(e)) => p.toast.error id="customers-result" role="alert" { (problem(lang, e)) },
                None => p id="customers-result" {},
            }
            @if customers.is_empty() {
                p.muted { (t(Msg::NoCustomers, lang)) }
            } @else {
                table.list id="customers" {
                    thead { tr {
                        th { (t(Msg::CustomerName, lang)) }
                        th.num { (t(Msg::Owes, lang)) }
                        th { (t(Msg::DueDate, lang)) }
                        th {}
                    } }
                    tbody {
                        @for c in customers {
                            tr data-customer=(c.customer_id) class=[c.overdue.then_some("overdue")] {
                                td { (c.name) @if let Some(p) = &c.phone { br; small.muted { (p) } } }
                                td.num.balance { (rp(c.balance)) }
                                td.due {
                                    @if let Some(d) = &c.due_date { (day_month_year(d)) }
                                    @if c.overdue { " " span.badge.warn { (t(Msg::Overdue, lang)) } }
                                }
                                td {
                                    @if c.balance > 0 {
                                        form.inline.pay-debt hx-post=(format!("/ui/pelanggan/{}/bayar", c.customer_id)) hx-target="#customers-card" hx-swap="outerHTML" hx-disabled-elt="find button" {
                                            input name="amount" inputmode="numeric" autocomplete="off" required placeholder=(rp(c.balance)) aria-label=(t(Msg::Amount, lang)) style="max-width:120px";
                                            select name="method" aria-label=(t(Msg::PayMethod, lang)) {
                                                option value="cash" { (t(Msg::Cash, lang)) }
                                                option value="qris" { (t(Msg::Qris, lang)) }
                                                option value="transfer" { (t(Msg::Transfer, lang)) }
                                            }
                                            button type="submit" { (t(Msg::Take, lang)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `2099-01-31` as a shop reads it: `31/01/2099`.
fn day_month_year(date: &str) -> String {
    let mut parts = date.splitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => date.to_owned(),
    }
}

fn add_form(lang: Lang) -> Markup {
    html! {
        div.card id="customer-add" {
            h2 { (t(Msg::AddCustomer, lang)) }
            form id="customer-form" hx-post="/ui/pelanggan" hx-target="#customers-card" hx-swap="outerHTML" {
                label { (t(Msg::CustomerName, lang)) input name="name" required maxlength="80" autocomplete="off"; }
                label { (t(Msg::Phone, lang)) input name="phone" inputmode="tel" maxlength="20" autocomplete="off"; }
                button.primary type="submit" id="customer-save" { (t(Msg::Save, lang)) }
            }
        }
    }
}

/// `GET /ui/pelanggan`.
pub(crate) async fn customers_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let list = run_op::<ListCustomers>(n, &who, Default::default())?;
        Ok((bar(n, Some(&who)), list.customers))
    })
    .await
    {
        Ok((bar, customers)) => {
            let body = html! {
                (customers_card(lang, &customers, None))
                (add_form(lang))
            };
            html_response(page(
                lang,
                t(Msg::Customers, lang),
                &bar,
                Nav::Customers,
                body,
            ))
        }
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct CustomerForm {
    name: String,
    #[serde(default)]
    phone: String,
}

/// `POST /ui/pelanggan`: a new customer.
pub(crate) async fn add_customer(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<CustomerForm>,
) -> Response {
    let lang = lang(&headers);
    let answer = call(&state, move |n| {
        let phone = form.phone.trim();
        let saved = run_op::<SaveCustomer>(
            n,
            &who,
            CustomerInput {
                name: form.name,
                phone: (!phone.is_empty()).then(|| phone.to_owned()),
                ..CustomerInput::default()
            },
        )
        .map(|c| c.name);
        let list = run_op::<ListCustomers>(n, &who, Default::default())?;
        Ok((list.customers, saved))
    })
    .await;
    match answer {
        Ok((customers, saved)) => html_response(customers_card(lang, &customers, Some(&saved))),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DebtPaymentForm {
    amount: String,
    #[serde(default)]
    method: String,
}

/// `POST /ui/pelanggan/{customer}/bayar`: a payment against kasbon, into this drawer.
pub(crate) async fn pay_debt(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(customer): Path<String>,
    Form(form): Form<DebtPaymentForm>,
) -> Response {
    let lang = lang(&headers);
    let answer = call(&state, move |n| {
        let paid = amount(&form.amount).and_then(|amount| {
            run_op::<PayKasbon>(
                n,
                &who,
                KasbonPaymentInput {
                    customer_id: customer,
                    amount,
                    method: Some(form.method).filter(|m| !m.trim().is_empty()),
                    reference: None,
                },
            )
        });
        let done = paid.map(|p| format!("{} {}", t(Msg::Remaining, lang), rp(p.balance)));
        let list = run_op::<ListCustomers>(n, &who, Default::default())?;
        Ok((list.customers, done))
    })
    .await;
    match answer {
        Ok((customers, done)) => html_response(customers_card(lang, &customers, Some(&done))),
        Err(e) => fail(e),
    }
}
