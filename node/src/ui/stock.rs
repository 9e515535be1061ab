//! Stok and Produk: stock with oversold and low first, terima barang (with the price
//! paid and the supplier, so the HPP shown is the average paid), retur ke pemasok and
//! opname per product (an opname by a cashier needs a supervisor's PIN), and a product added or
//! its price changed (managers and owners). Every write goes through the API's own
//! operation (`RecordMovement`, `AddProduct`), so the rules and the audit trail are
//! the API's.

use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kasir_crdt::Qty;
use kasir_crdt::records::MovementKind;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, amount, bar, call, fail, html_response, lang, page, problem, rp,
    run_op, t,
};
use crate::NodeError;
use crate::api::{AddProduct, MovementInput, ProductInput, RecordMovement};
use crate::http::AppState;
use crate::node::Node;
use crate::people::{Approval, Principal};
use crate::tables::ProductRow;

/// Stock at or below this is shown as low for a product without a minimum of its own.
const LOW_STOCK: f64 = 5.0;

/// One product as the stock screen lists it.
struct Level {
    product: ProductRow,
    on_hand: f64,
    /// The average purchase cost (HPP), once goods came in with a cost.
    avg_cost: Option<i64>,
}

impl Level {
    /// At or below the product's minimum (or [`LOW_STOCK`]).
    fn low(&self) -> bool {
        self.on_hand <= self.product.min_stock.unwrap_or(LOW_STOCK)
    }
}

/// Every product with its stock: oversold first, then low, then by name.
fn levels(n: &Node) -> Result<Vec<Level>, NodeError> {
    let stock: std::collections::HashMap<String, (f64, Option<i64>)> = n
        .stock(None)?
        .into_iter()
        .map(|r| (r.sku, (r.on_hand, r.avg_cost)))
        .collect();
    let mut all: Vec<Level> = n
        .search_products("", 1_000)?
        .into_iter()
        .map(|p| {
            let (on_hand, avg_cost) = stock.get(&p.sku).copied().unwrap_or((0.0, None));
            Level {
                on_hand,
                avg_cost,
                product: p,
            }
        })
        .collect();
    let rank = |l: &Level| {
        if l.on_hand < 0.0 {
            0
        } else if l.low() {
            1
        } else {
            2
        }
    };
    all.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.product.name.cmp(&b.product.name))
    });
    Ok(all)
}

fn stock_table(lang: Lang, levels: &[Level], message: Option<&str>) -> Markup {
    html! {
        // Live: another till's sale refreshes the table, but never under a form in use.
        @if let Some(m) = message {
            p id="stock-message" hx-swap-oob="true" class=(if m.starts_with('✓') { "toast" } else { "toast error" }) { (m) }
        }
        div.card id="stock" hx-get="/ui/stok/daftar" hx-trigger="kasir:change[!document.querySelector('#stock details[open]')] from:body" hx-swap="outerHTML" {
            h1 { (t(Msg::StockTitle, lang)) }
            table.list {
                tr { th { (t(Msg::Product, lang)) } th.num { (t(Msg::Price, lang)) } th.num { (t(Msg::Stock, lang)) } th {} }
                @for l in levels {
                    @let class = if l.on_hand < 0.0 { "oversold" } else if l.low() { "low" } else { "" };
                    tr.product data-sku=(l.product.sku) class=(class) {
                        td { (l.product.name) br; small { (l.product.sku) } }
                        td.num { (rp(l.product.price))
                            @if let Some(c) = l.avg_cost.or(l.product.cost) { br; small.hpp { (t(Msg::CostShort, lang)) " " (rp(c)) } }
                        }
                        td.num.level {
                            (super::sell::quantity(lang, l.on_hand))
                            @if l.on_hand < 0.0 { br; small.error { (t(Msg::Oversold, lang)) } }
                            @else if l.low() { br; small { (t(Msg::LowStock, lang)) } }
                        }
                        td {
                            details {
                                summary.btn { (t(Msg::Move, lang)) }
                                form.move hx-post="/ui/stok/gerak" hx-target="#stock" hx-swap="outerHTML" {
                                    input type="hidden" name="sku" value=(l.product.sku);
                                    div.methods role="radiogroup" {
                                        label.chip { input type="radio" name="kind" value="receive" checked; (t(Msg::Receive, lang)) }
                                        label.chip { input type="radio" name="kind" value="opname"; (t(Msg::Opname, lang)) }
                                        label.chip { input type="radio" name="kind" value="supplier_return"; (t(Msg::SupplierReturn, lang)) }
                                    }
                                    label { (t(Msg::QtyOrCounted, lang)) input name="qty" inputmode="decimal" autocomplete="off" required; }
                                    label { (t(Msg::PurchaseCost, lang)) input name="cost" inputmode="numeric" autocomplete="off"; }
                                    label { (t(Msg::Supplier, lang)) input name="supplier" maxlength="120"; }
                                    label { (t(Msg::Note, lang)) input name="note"; }
                                    label { (t(Msg::Approver, lang)) input name="approver"; }
                                    label { (t(Msg::ApproverPin, lang)) input name="approver_pin" type="password" inputmode="numeric" autocomplete="off"; }
                                    button.primary type="submit" { (t(Msg::Save, lang)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn product_form(lang: Lang) -> Markup {
    html! {
        div.card id="product-card" {
            details {
                summary.btn { (t(Msg::ProductAddEdit, lang)) }
                form id="product-form" hx-post="/ui/produk" hx-target="#product-result" {
                    label { "SKU" input name="sku" required maxlength="64" autocomplete="off"; }
                    label { (t(Msg::Product, lang)) input name="name" required maxlength="120"; }
                    label { (t(Msg::Price, lang)) " (Rp)" input name="price" inputmode="numeric" required; }
                    label { "Barcode" input name="barcode" inputmode="numeric" autocomplete="off"; }
                    label { (t(Msg::Category, lang)) input name="category"; }
                    label { (t(Msg::MinStock, lang)) input name="min_stock" inputmode="decimal" autocomplete="off"; }
                    label { (t(Msg::TaxCodeLabel, lang))
                        select name="tax_code" {
                            option value="" { (t(Msg::TaxCodeKeep, lang)) }
                            option value="standard" { (t(Msg::TaxCodeStandard, lang)) }
                            option value="exempt" { (t(Msg::TaxCodeExempt, lang)) }
                            option value="pbjt" { (t(Msg::TaxCodePbjt, lang)) }
                            option value="ppn_full" { (t(Msg::TaxCodeLuxury, lang)) }
                        }
                    }
                    button.primary type="submit" id="product-save" { (t(Msg::Save, lang)) }
                    p id="product-result" {}
                }
            }
        }
    }
}

/// `GET /ui/stok`.
pub(crate) async fn stock_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| Ok((bar(n, Some(&who)), levels(n)?))).await {
        Ok((bar, levels)) => {
            let body = html! {
                p id="stock-message" {}
                (stock_table(lang, &levels, None))
                (product_form(lang))
                (import_form(lang))
            };
            html_response(page(lang, t(Msg::StockTitle, lang), &bar, Nav::Stock, body))
        }
        Err(e) => fail(e),
    }
}

/// `GET /ui/stok/daftar`: the table again (another till sold, say).
pub(crate) async fn stock_list(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match call(&state, |n| levels(n)).await {
        Ok(levels) => html_response(stock_table(lang, &levels, None)),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct MoveForm {
    sku: String,
    kind: String,
    qty: String,
    #[serde(default)]
    cost: String,
    #[serde(default)]
    supplier: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    approver_pin: String,
}

fn movement(who: &Principal, n: &mut Node, f: MoveForm) -> Result<String, NodeError> {
    let qty: Qty = f
        .qty
        .trim()
        .parse()
        .map_err(|e| NodeError::Invalid(format!("{}: {e}", f.sku)))?;
    let (kind, qty, counted) = match f.kind.as_str() {
        "opname" => (MovementKind::Opname, None, Some(qty)),
        "supplier_return" => (MovementKind::SupplierReturn, Some(qty), None),
        _ => (MovementKind::Receive, Some(qty), None),
    };
    let cost = match f.cost.trim() {
        "" => None,
        c => Some(amount(c)?),
    };
    let supplier = f.supplier.trim();
    let note = f.note.trim();
    let done = run_op::<RecordMovement>(
        n,
        who,
        MovementInput {
            kind,
            sku: f.sku.clone(),
            qty,
            counted,
            note: (!note.is_empty()).then(|| note.to_owned()),
            cost,
            supplier: (!supplier.is_empty()).then(|| supplier.to_owned()),
            approval: Approval::named(&f.approver, &f.approver_pin),
            other_store: None,
            transfer_id: None,
        },
    )?;
    Ok(format!("✓ {} {:+}", f.sku, done.delta))
}

/// `POST /ui/stok/gerak`: goods received, or a stocktake's count.
pub(crate) async fn record_move(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(form): Form<MoveForm>,
) -> Response {
    let lang = lang(&headers);
    let answer = call(&state, move |n| {
        let message = match movement(&who, n, form) {
            Ok(m) => m,
            Err(NodeError::ApprovalRequired(_)) => format!("{}?", t(Msg::ApproverPin, lang)),
            Err(e) => problem(lang, &e),
        };
        Ok((levels(n)?, message))
    })
    .await;
    match answer {
        Ok((levels, message)) => html_response(stock_table(lang, &levels, Some(&message))),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ProductForm {
    sku: String,
    name: String,
    price: String,
    #[serde(default)]
    barcode: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    min_stock: String,
    #[serde(default)]
    tax_code: String,
}

/// `POST /ui/produk`: adds a product or changes one (its price change is audited).
pub(crate) async fn save_product(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Form(f): Form<ProductForm>,
) -> Response {
    let lang = lang(&headers);
    let saved = call(&state, move |n| {
        let optional = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        run_op::<AddProduct>(
            n,
            &who,
            ProductInput {
                sku: f.sku.trim().to_owned(),
                name: f.name.trim().to_owned(),
                price: amount(&f.price)?,
                barcode: optional(&f.barcode),
                category: optional(&f.category),
                min_stock: optional(&f.min_stock)
                    .map(|q| {
                        q.parse::<kasir_crdt::Qty>()
                            .map_err(|e| NodeError::Invalid(e.to_string()))
                    })
                    .transpose()?,
                tax_code: optional(&f.tax_code),
                ..ProductInput::default()
            },
        )
    })
    .await;
    html_response(match saved {
        Ok(p) => html! { span id="product-saved" { "✓ " (p.sku) } },
        Err(e) => html! { span.error { (problem(lang, &e)) } },
    })
}

/// The largest product file the till takes (a minimarket's 20,000 products as XLSX are
/// about 2 MB).
pub(crate) const MAX_IMPORT_BYTES: usize = 20 * 1024 * 1024;

fn import_form(lang: Lang) -> Markup {
    html! {
        div.card id="import-card" {
            details {
                summary.btn { (t(Msg::ImportProducts, lang)) }
                p.hint { (t(Msg::ImportHint, lang)) }
                form id="import-form" hx-post="/ui/produk/impor" hx-encoding="multipart/form-data" hx-target="#import-result" hx-disabled-elt="find button" {
                    input id="import-file" type="file" name="file" accept=".csv,.xlsx,.xls,.ods,text/csv" required;
                    div.actions { button.primary type="submit" id="import-submit" { (t(Msg::Import, lang)) } }
                }
                div id="import-result" {}
            }
        }
    }
}

/// `POST /ui/produk/impor` (multipart, one `file`): the products of a CSV or XLSX file
/// through the importer `kasir product import` uses, the rows it refused listed with
/// their numbers (managers and owners).
pub(crate) async fn import_products(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    let lang = lang(&headers);
    // Refused before the upload is read (a cashier's 20 MB never reaches the parser).
    if who.role() < crate::people::required_role(crate::people::Action::EditCatalog) {
        let e = NodeError::Forbidden("only a manager or owner may import products".into());
        return html_response(html! { p.error { (problem(lang, &e)) } });
    }
    let mut upload = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                let name = field.file_name().unwrap_or("produk.csv").to_owned();
                match field.bytes().await {
                    Ok(bytes) => upload = Some((name, bytes)),
                    Err(e) => return html_response(html! { p.error { (e.body_text()) } }),
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return html_response(html! { p.error { (e.body_text()) } }),
        }
    }
    let Some((name, bytes)) = upload else {
        return html_response(html! { p.error { (t(Msg::ChooseFile, lang)) } });
    };
    // Parsed off the node's lock: a big spreadsheet never holds up a sale.
    let label = name.clone();
    let rows = match tokio::task::spawn_blocking(move || crate::import::read_bytes(&label, &bytes))
        .await
    {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return html_response(html! { p.error { (problem(lang, &e)) } }),
        Err(_) => return fail(NodeError::Poisoned),
    };
    let done = call(&state, move |n| {
        let report = (|| {
            n.authorize(&who, crate::people::Action::EditCatalog, None)?;
            let report = crate::import::import(n, rows, |_, _| {})?;
            let detail = format!(
                "{name}: {} imported, {} refused",
                report.imported,
                report.failed.len()
            );
            n.record_audit_detail("product_import", who.user_name(), None, None, Some(&detail))?;
            Ok(report)
        })();
        Ok(report)
    })
    .await;
    html_response(match done {
        Ok(Ok(r)) => html! {
            p.toast id="import-done" { "✓ " (r.imported) " " (t(Msg::ProductsImported, lang)) }
            @if !r.failed.is_empty() {
                p.error { (r.failed.len()) " " (t(Msg::RowsRefused, lang)) }
                table.list id="import-errors" {
                    tr { th { (t(Msg::Row, lang)) } th { (t(Msg::Reason, lang)) } }
                    @for f in &r.failed { tr { td { (f.row) } td { (f.error) } } }
                }
            }
        },
        Ok(Err(e)) | Err(e) => html! { p.error { (problem(lang, &e)) } },
    })
}
