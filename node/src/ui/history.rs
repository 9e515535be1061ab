//! Riwayat: today's sales of every till, void with a supervisor's PIN.

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, bar, call, fail, html_response, lang, page, problem, rp, run_op, t,
};
use crate::NodeError;
use crate::http::AppState;
use crate::people::{Action, Approval};
use crate::tables::SaleStatus;

fn status_text(lang: Lang, s: SaleStatus) -> &'static str {
    t(
        match s {
            SaleStatus::Completed => Msg::Completed,
            SaleStatus::Voided => Msg::Voided,
            SaleStatus::Refunded => Msg::Refunded,
            SaleStatus::PartiallyRefunded => Msg::PartlyRefunded,
        },
        lang,
    )
}

/// The sales shown: today's, or those a receipt-number search found (any day).
#[derive(Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
}

impl Search {
    fn query(&self) -> Option<&str> {
        Some(self.q.trim()).filter(|q| !q.is_empty())
    }

    /// Today's sales oldest first, or the search's newest first.
    fn run(&self, n: &crate::node::Node) -> Result<Vec<crate::tables::SaleRow>, NodeError> {
        match self.query() {
            None => {
                let today = n.today().to_string();
                let mut sales = n.sales(Some(&today))?;
                sales.reverse();
                Ok(sales)
            }
            Some(q) => n.find_sales(&crate::api::SalesQuery {
                date: None,
                receipt: Some(q.to_owned()),
            }),
        }
    }
}

/// The search field: outside the list, so a live refresh never takes its focus.
fn search_field(lang: Lang) -> Markup {
    html! {
        div.card.search {
            label for="receipt-search" { (t(Msg::FindReceipt, lang)) }
            input id="receipt-search" name="q" type="search" inputmode="search" autocomplete="off"
                placeholder="T1-0042" hx-get="/ui/riwayat/daftar" hx-trigger="input changed delay:250ms, search"
                hx-target="#history" hx-swap="outerHTML";
        }
    }
}

fn history(
    lang: Lang,
    search: &Search,
    sales: &[crate::tables::SaleRow],
    message: Option<&str>,
) -> Markup {
    html! {
        div.card id="history" hx-get="/ui/riwayat/daftar" hx-include="#receipt-search" hx-trigger="kasir:change from:body" hx-swap="outerHTML" {
            @match search.query() {
                None => h1 { (t(Msg::History, lang)) " · " (t(Msg::Today, lang)) },
                Some(q) => h1 { (t(Msg::History, lang)) " · " (t(Msg::Found, lang)) " “" (q) "”" },
            }
            @if let Some(m) = message { p.error id="history-message" { (m) } }
            @if sales.is_empty() { p { (t(Msg::NoSales, lang)) } }
            table.list {
                tr {
                    th { (t(Msg::ReceiptNo, lang)) } th { (t(Msg::Till, lang)) }
                    th.num { (t(Msg::Total, lang)) } th { (t(Msg::Status, lang)) } th {}
                }
                @for s in sales {
                    tr.sale data-sale=(s.sale_id) {
                        td {
                            a href=(format!("/ui/struk/{}", s.sale_id)) { (s.receipt_no) }
                            @if search.query().is_some() { br; small { (s.business_date) } }
                        }
                        td { (s.till_code) }
                        td.num { (rp(s.total)) }
                        td class=(format!("status-{}", s.status.as_str())) { (status_text(lang, s.status)) }
                        td {
                            @if s.status == SaleStatus::Completed {
                                details {
                                    summary.btn { (t(Msg::Void, lang)) }
                                    form.void hx-post=(format!("/ui/riwayat/{}/batal", s.sale_id)) hx-include="#receipt-search" hx-target="#history" hx-swap="outerHTML" {
                                        label { (t(Msg::Reason, lang)) input name="reason" required; }
                                        label { (t(Msg::Approver, lang)) input name="approver"; }
                                        label { (t(Msg::ApproverPin, lang)) input name="approver_pin" type="password" inputmode="numeric" autocomplete="off"; }
                                        button.danger type="submit" { (t(Msg::Void, lang)) }
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

/// `GET /ui/riwayat`: today's sales of every till this one knows.
pub(crate) async fn history_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        Ok((bar(n, Some(&who)), Search::default().run(n)?))
    })
    .await;
    match facts {
        Ok((bar, sales)) => {
            let body = html! {
                (search_field(lang))
                (history(lang, &Search::default(), &sales, None))
            };
            html_response(page(lang, t(Msg::History, lang), &bar, Nav::History, body))
        }
        Err(e) => fail(e),
    }
}

/// `GET /ui/riwayat/daftar`: today's sales again (another till sold or voided).
pub(crate) async fn history_list(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    axum::extract::Query(search): axum::extract::Query<Search>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| Ok((search.run(n), search))).await {
        Ok((Ok(sales), search)) => html_response(history(lang, &search, &sales, None)),
        Ok((Err(e), search)) => {
            html_response(history(lang, &search, &[], Some(&problem(lang, &e))))
        }
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct VoidForm {
    reason: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    approver_pin: String,
    /// The receipt search the list was showing.
    #[serde(default)]
    q: String,
}

/// `POST /ui/riwayat/{sale}/batal`: a void, with a supervisor's PIN when a cashier asks.
pub(crate) async fn void(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(sale): Path<String>,
    Form(form): Form<VoidForm>,
) -> Response {
    let lang = lang(&headers);
    let answer = call(&state, move |n| {
        let approval = Approval::named(&form.approver, &form.approver_pin);
        let outcome = n
            .authorize(&who, Action::Void, approval.as_ref())
            .and_then(|approved_by| {
                n.void_sale_by(
                    &sale,
                    &form.reason,
                    who.user_name().map(str::to_owned),
                    approved_by,
                )
            });
        let message = match &outcome {
            Ok(_) => format!("✓ {}", t(Msg::Voided, lang)),
            Err(NodeError::ApprovalRequired(_)) => t(Msg::ApproverPin, lang).to_owned() + "?",
            Err(e) => problem(lang, e),
        };
        let search = Search { q: form.q };
        Ok((search.run(n)?, search, message))
    })
    .await;
    match answer {
        Ok((sales, search, message)) => {
            html_response(history(lang, &search, &sales, Some(&message)))
        }
        Err(e) => fail(e),
    }
}

/// The Retur form under a sale's struk: how much of each line comes back, why, and a
/// supervisor's name and PIN when a cashier asks. The money and tax come back by the
/// same exact law as `POST /v1/sales/{id}/refund`.
pub(crate) fn refund_form(lang: Lang, sale: &kasir_crdt::records::Sale) -> Markup {
    html! {
        div.card.center id="refund" {
            details {
                summary.btn { (t(Msg::Refund, lang)) }
                form hx-post=(format!("/ui/struk/{}/retur", sale.id)) hx-target="#refund-result" hx-disabled-elt="find button" {
                    table.list {
                        @for (i, l) in sale.lines.iter().enumerate() {
                            tr {
                                td { (l.name) br; small { (super::sell::quantity(lang, l.qty.milli() as f64 / 1000.0)) " × " (rp(l.unit_price)) } }
                                td { input name=(format!("qty_{i}")) inputmode="decimal" autocomplete="off" placeholder="0" aria-label=(l.name) style="max-width:90px"; }
                            }
                        }
                    }
                    label { (t(Msg::Reason, lang)) input name="reason" required; }
                    label { (t(Msg::Approver, lang)) input name="approver"; }
                    label { (t(Msg::ApproverPin, lang)) input name="approver_pin" type="password" inputmode="numeric" autocomplete="off"; }
                    div.actions { button.danger type="submit" id="refund-submit" { (t(Msg::Refund, lang)) } }
                }
                p id="refund-result" {}
            }
        }
    }
}

/// `POST /ui/struk/{sale}/retur`: a refund of the quantities typed, through the API's
/// own operation (`RefundSale`).
pub(crate) async fn refund(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path(sale_id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = lang(&headers);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (reason, approver, pin) = (field("reason"), field("approver"), field("approver_pin"));
    let typed: Vec<(usize, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("qty_")?.parse().ok()?, v.trim().to_owned())))
        .filter(|(_, v)| !v.is_empty() && v != "0")
        .collect();
    let done = call(&state, move |n| {
        let sale = n.sale(&sale_id)?;
        let mut lines = Vec::new();
        for (i, text) in typed {
            let Some(line) = sale.lines.get(i) else {
                continue;
            };
            let qty = text
                .parse::<kasir_crdt::Qty>()
                .map_err(|_| NodeError::Invalid(format!("{}: {text}", line.name)))?;
            lines.push(crate::api::RefundItem {
                sku: line.sku.clone(),
                qty,
            });
        }
        if lines.is_empty() {
            return Err(NodeError::Invalid(t(Msg::NothingToRefund, lang).to_owned()));
        }
        run_op::<crate::api::RefundSale>(
            n,
            &who,
            crate::api::RefundRequest {
                sale_id,
                lines,
                reason,
                approval: Approval::named(&approver, &pin),
            },
        )
    })
    .await;
    html_response(match done {
        Ok(r) => html! {
            span id="refund-done" { "✓ " (t(Msg::Refunded, lang)) " " (rp(r.amount)) " (" (r.method) ")"
                @if let Some(a) = &r.approved_by { " · " (t(Msg::ApprovedBy, lang)) " " (a) } }
        },
        Err(NodeError::ApprovalRequired(_)) => {
            html! { span.error { (t(Msg::ApproverPin, lang)) "?" } }
        }
        Err(e) => html! { span.error { (problem(lang, &e)) } },
    })
}
