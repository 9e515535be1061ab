//! The till app's screens and the fragments htmx swaps into them: Masuk (PIN login),
//! Buka/Tutup Kasir, Kasir (scan, cart, totals), Bayar, Struk, Tagihan (parked bills)
//! and Riwayat (today's sales, void with a supervisor's PIN).

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kasir_crdt::Qty;
use kasir_crdt::pricing::PricedSale;
use kasir_crdt::records::{CashMoveKind, Payment};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Bar, Lang, Msg, Nav, UiUser, call, go, html_response, lang, page, rp, t, user};
use crate::NodeError;
use crate::drafts::Draft;
use crate::http::{ApiError, AppState};
use crate::node::Node;
use crate::people::{Action, Approval, Principal};
use crate::tables::{ProductRow, SaleStatus};

/// An error shown to the cashier in place (never a blank page).
fn problem(lang: Lang, e: &NodeError) -> String {
    match e {
        NodeError::BadPin => t(Msg::WrongPin, lang).to_owned(),
        NodeError::LockedOut { .. } => t(Msg::LockedOut, lang).to_owned(),
        NodeError::UnknownSku(code) => format!("{}: {code}", t(Msg::NotFound, lang)),
        other => other.to_string(),
    }
}

/// The bar's facts, read in one go.
fn bar(n: &Node, user: Option<&Principal>) -> Bar {
    let status = n.status().ok();
    let (peers, relay) = status.as_ref().map_or((0, false), |s| {
        let connected: Vec<_> = s.peers.iter().filter(|p| p.connected).collect();
        let relay = connected
            .iter()
            .any(|p| p.endpoint_id.parse().ok().is_some_and(|d| n.is_relay(d)));
        (connected.len(), relay)
    });
    Bar {
        store: n.profile().name.clone(),
        till: n.till_code().to_owned(),
        user: user.and_then(|u| u.user_name()).map(str::to_owned),
        sync: (peers, relay, status.map_or(0, |s| s.unsynced_docs)),
    }
}

fn fail(e: NodeError) -> Response {
    ApiError::from(e).into_response()
}

// ---- Masuk -------------------------------------------------------------------------

/// `GET /` and `/ui`: the login when nobody is logged in, else the shift or the sale.
pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(_) = user(&state, &headers).await else {
        return login_page(State(state), headers).await;
    };
    match call(&state, |n| n.open_shift_here()).await {
        Ok(Some(_)) => go(&headers, "/ui/kasir"),
        Ok(None) => go(&headers, "/ui/shift"),
        Err(e) => fail(e),
    }
}

/// `GET /ui/bahasa/{code}`: switches the language.
pub(crate) async fn language(Path(code): Path<String>) -> Response {
    let lang = Lang::from_code(&code);
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}={}; Path=/; SameSite=Strict; Max-Age=31536000",
        super::LANG_COOKIE,
        lang.code()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /ui/masuk`: pick your name, type your PIN.
pub(crate) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, |n| {
        let users: Vec<_> = n.users().into_iter().filter(|u| u.active).collect();
        Ok((bar(n, None), users))
    })
    .await;
    let (bar, users) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let body = html! {
        div.card.center {
            h1 { (t(Msg::WhoAreYou, lang)) }
            form id="login" hx-post="/ui/masuk" hx-target="#login-error" {
                @if users.is_empty() { p.error { (t(Msg::NoUsers, lang)) } }
                div.users role="radiogroup" {
                    @for u in &users {
                        label.btn {
                            input type="radio" name="name" value=(u.name) required style="width:auto;min-height:0;margin-right:8px";
                            (u.name)
                        }
                    }
                }
                label for="pin" { (t(Msg::Pin, lang)) }
                input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="12" required;
                div.pinpad {
                    @for k in ["1", "2", "3", "4", "5", "6", "7", "8", "9"] {
                        button type="button" data-pin-key=(k) { (k) }
                    }
                    button type="button" data-pin-key="del" { "⌫" }
                    button type="button" data-pin-key="0" { "0" }
                    button.primary type="submit" id="login-submit" { (t(Msg::Login, lang)) }
                }
                p.error id="login-error" {}
            }
        }
    };
    html_response(page(lang, t(Msg::Login, lang), &bar, Nav::None, body))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    name: Option<String>,
    pin: String,
}

/// `POST /ui/masuk`: a PIN login; the session goes into an `HttpOnly` cookie.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang(&headers);
    let Some(name) = form.name.filter(|n| !n.is_empty()) else {
        return html_response(html! { (t(Msg::PickUser, lang)) });
    };
    let pin = form.pin;
    match call(&state, move |n| n.login(Some(&name), None, &pin)).await {
        Ok(session) => {
            let mut r = go(&headers, "/");
            if let Some(v) = session_cookie(&session.token) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => html_response(html! { (problem(lang, &e)) }),
    }
}

/// The session cookie for `token`.
fn session_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        super::SESSION_COOKIE,
        crate::people::SESSION_TTL_MS / 1000
    ))
    .ok()
}

/// `GET /ui/masuk/{link}`: a one-time login link (`Node::login_link`) opens a session.
pub(crate) async fn login_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(link): Path<String>,
) -> Response {
    match call(&state, move |n| n.redeem_login_link(&link)).await {
        Ok(session) => {
            let mut r = go(&HeaderMap::new(), "/");
            if let Some(v) = session_cookie(&session.token) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(_) => go(&headers, "/ui/masuk"),
    }
}

/// `POST /ui/keluar`: ends the session.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = super::cookie(&headers, super::SESSION_COOKIE) {
        let _ = call(&state, move |n| n.logout(&token)).await;
    }
    let mut r = go(&headers, "/ui/masuk");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kasir_sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

// ---- Shift -------------------------------------------------------------------------

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
                    label for="counted_cash" { (t(Msg::CountedCash, lang)) }
                    input id="counted_cash" name="counted_cash" inputmode="numeric" required;
                    div.actions { button.danger id="close-shift" type="submit" { (t(Msg::CloseShift, lang)) } }
                }
                div id="close-result" {}
            }
            div.card.center {
                h2 { (t(Msg::ZReport, lang)) " " (z.date) }
                div.totals {
                    div { span { (t(Msg::Sales, lang)) } span { (z.store.sales) } }
                    div { span { (t(Msg::Voided, lang)) } span { (rp(z.store.voids)) } }
                    div { span { (t(Msg::Tax, lang)) } span { (rp(z.store.tax)) } }
                    @for (m, a) in &z.store.by_method { div { span { (m) } span { (rp(*a)) } } }
                    div.grand { span { (t(Msg::Net, lang)) } span { (rp(z.store.net)) } }
                }
            }
        },
    };
    html_response(page(lang, t(Msg::Shift, lang), &bar, Nav::Shift, body))
}

/// Rupiah typed by a person: `50000`, `50.000`, `Rp 50.000`.
fn amount(text: &str) -> Result<i64, NodeError> {
    crate::import::parse_rupiah(text).map_err(NodeError::Invalid)
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
    html_response(match closed {
        Ok(r) => html! {
            div.totals id="shift-report" {
                div { span { (t(Msg::OpeningCash, lang)) } span { (rp(r.opening_cash)) } }
                div { span { (t(Msg::CashIn, lang)) } span { (rp(r.cash_in)) } }
                div { span { (t(Msg::CashOut, lang)) } span { (rp(r.cash_out)) } }
                @for (m, a) in &r.by_method { div { span { (m) } span { (rp(*a)) } } }
                div { span { (t(Msg::ExpectedCash, lang)) } span { (rp(r.expected_cash)) } }
                div { span { (t(Msg::Counted, lang)) } span { (rp(r.counted_cash)) } }
                div.grand { span { (t(Msg::Difference, lang)) } span { (rp(r.difference)) } }
            }
        },
        Err(e) => html! { p.error { (problem(lang, &e)) } },
    })
}

// ---- Kasir -------------------------------------------------------------------------

/// What the sell screen shows of a draft: its lines with names and the priced totals.
struct CartView {
    draft: Draft,
    names: Vec<String>,
    priced: Option<PricedSale>,
    /// Said above the totals (an approval that was refused).
    message: Option<String>,
}

fn cart_view(n: &Node, draft: Draft) -> Result<CartView, NodeError> {
    let names = draft
        .lines
        .iter()
        .map(|l| {
            n.product_row(&l.sku)
                .map_or_else(|_| l.sku.clone(), |p| p.name)
        })
        .collect();
    let priced = if draft.lines.is_empty() {
        None
    } else {
        Some(n.price(&draft.sale_request(None))?)
    };
    Ok(CartView {
        draft,
        names,
        priced,
        message: None,
    })
}

fn cart(lang: Lang, view: &CartView) -> Markup {
    let d = &view.draft.draft_id;
    html! {
        div.cart.card id="cart" {
            @if view.draft.lines.is_empty() {
                p { (t(Msg::EmptyCart, lang)) }
            } @else {
                table {
                    @for (i, line) in view.draft.lines.iter().enumerate() {
                        @let total = view.priced.as_ref().and_then(|p| p.lines.get(i)).map_or(0, |l| l.line_total);
                        tr.line data-sku=(line.sku) {
                            td { (view.names[i]) }
                            td {
                                div.qty {
                                    button hx-post=(format!("/ui/d/{d}/line/{i}/kurang")) hx-target="#cart" hx-swap="outerHTML" aria-label="-" { "−" }
                                    span.n { (line.qty) }
                                    button hx-post=(format!("/ui/d/{d}/line/{i}/tambah")) hx-target="#cart" hx-swap="outerHTML" aria-label="+" { "+" }
                                }
                            }
                            td.num { (rp(total)) }
                            td { button hx-post=(format!("/ui/d/{d}/line/{i}/hapus")) hx-target="#cart" hx-swap="outerHTML" aria-label=(t(Msg::Delete, lang)) { "✕" } }
                        }
                        tr.edit {
                            td colspan="4" {
                                details {
                                    summary { (t(Msg::Discount, lang)) " / " (t(Msg::Price, lang))
                                        @if let Some(a) = &line.approved_by { " · " (t(Msg::ApprovedBy, lang)) " " (a) } }
                                    form.line-edit hx-post=(format!("/ui/d/{d}/baris/{i}")) hx-target="#cart" hx-swap="outerHTML" {
                                        label { (t(Msg::Discount, lang)) " (Rp)" input name="discount" inputmode="numeric" value=(line.discount); }
                                        label { (t(Msg::Price, lang)) " (Rp)" input name="price" inputmode="numeric" value=[line.price]; }
                                        label { (t(Msg::Approver, lang)) input name="approver"; }
                                        label { (t(Msg::ApproverPin, lang)) input name="approver_pin" type="password" inputmode="numeric" autocomplete="off"; }
                                        button type="submit" { (t(Msg::Save, lang)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(m) = &view.message { p.error id="cart-message" { (m) } }
            @if let Some(p) = &view.priced {
                @let discounts: i64 = p.lines.iter().map(|l| l.discount).sum();
                div.totals {
                    div { span { (t(Msg::Subtotal, lang)) } span { (rp(p.subtotal + discounts)) } }
                    @if discounts > 0 { div { span { (t(Msg::Discount, lang)) } span { "−" (rp(discounts)) } } }
                    @if p.tax.service_charge != 0 { div { span { (t(Msg::Service, lang)) } span { (rp(p.tax.service_charge)) } } }
                    @if p.tax.tax != 0 { div { span { (t(Msg::Tax, lang)) } span { (rp(p.tax.tax)) } } }
                    @if p.rounding != 0 { div { span { (t(Msg::Rounding, lang)) } span { (rp(p.rounding)) } } }
                    div.grand { span { (t(Msg::Total, lang)) } span id="total" { (rp(p.total)) } }
                }
            }
            div.actions {
                button hx-post=(format!("/ui/d/{d}/batal")) { (t(Msg::Cancel, lang)) }
                @if !view.draft.lines.is_empty() {
                    details {
                        summary.btn { (t(Msg::ParkBill, lang)) }
                        form hx-post=(format!("/ui/d/{d}/simpan")) {
                            input name="name" placeholder=(t(Msg::BillName, lang)) required;
                            button type="submit" id="park" { (t(Msg::Save, lang)) }
                        }
                    }
                    a.btn.primary id="pay" href=(format!("/ui/d/{d}/bayar")) { (t(Msg::Pay, lang)) " (F12)" }
                }
            }
        }
    }
}

/// A quantity as people write it: `47,25` in Indonesian, `47.25` in English.
fn quantity(lang: Lang, q: f64) -> String {
    let text = q.to_string();
    match lang {
        Lang::Id => text.replace('.', ","),
        Lang::En => text,
    }
}

fn tiles(
    lang: Lang,
    draft: &str,
    query: &str,
    products: &[ProductRow],
    stock: &dyn Fn(&str) -> Option<f64>,
    oob: bool,
) -> Markup {
    // The shelf follows stock changes from any till (`kasir:change`, see `ui::events`).
    let refresh = format!(
        "/ui/d/{draft}/rak?q={}",
        serde_urlencoded::to_string([("", query)])
            .unwrap_or_default()
            .trim_start_matches('=')
    );
    html! {
        div.grid id="results" hx-swap-oob=[oob.then_some("true")]
            hx-get=(refresh) hx-trigger="kasir:change from:body" hx-swap="outerHTML" {
            @for p in products {
                button.tile hx-post=(format!("/ui/d/{draft}/add/{}", p.sku)) hx-target="#cart" hx-swap="outerHTML" data-sku=(p.sku) {
                    span.name { (p.name) }
                    span.price { (rp(p.price)) }
                    @if let Some(s) = stock(&p.sku) {
                        span class=(if s <= 5.0 { "stock low" } else { "stock" }) { (t(Msg::Stock, lang)) " " (quantity(lang, s)) }
                    }
                }
            }
        }
    }
}

fn stock_of(n: &Node) -> impl Fn(&str) -> Option<f64> + use<> {
    let levels: std::collections::HashMap<String, f64> = n
        .stock(None)
        .map(|rows| rows.into_iter().map(|r| (r.sku, r.on_hand)).collect())
        .unwrap_or_default();
    move |sku: &str| levels.get(sku).copied()
}

#[derive(Deserialize)]
pub(crate) struct SellQuery {
    #[serde(default)]
    d: Option<String>,
}

/// `GET /ui/kasir[?d=DRAFT]`: the sell screen on a draft (this user's open one, or new).
pub(crate) async fn sell_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<SellQuery>,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        if n.open_shift_here()?.is_none() {
            return Ok(None);
        }
        let draft = match q.d.as_deref().map(|id| n.draft(id)) {
            Some(Ok(d)) => d,
            _ => match n.current_draft(who.user_id())? {
                Some(d) => d,
                None => n.new_draft(who.user_id())?,
            },
        };
        let products = n.search_products("", 24)?;
        let stock = stock_of(n);
        let view = cart_view(n, draft)?;
        let grid = tiles(lang, &view.draft.draft_id, "", &products, &stock, false);
        Ok(Some((bar(n, Some(&who)), view, grid)))
    })
    .await;
    let (bar, view, grid) = match facts {
        Ok(Some(f)) => f,
        Ok(None) => return go(&headers, "/ui/shift"),
        Err(e) => return fail(e),
    };
    let d = view.draft.draft_id.clone();
    let body = html! {
        div.sell {
            section {
                form id="scan-form" hx-post=(format!("/ui/d/{d}/scan")) hx-target="#cart" hx-swap="outerHTML" hx-sync="this:queue all" {
                    input id="scan" name="q" inputmode="none" autocomplete="off" autofocus placeholder=(t(Msg::ScanOrSearch, lang));
                }
                p.error id="scan-error" {}
                (grid)
            }
            section { (cart(lang, &view)) }
        }
    };
    html_response(page(lang, t(Msg::Sell, lang), &bar, Nav::Sell, body))
}

#[derive(Deserialize)]
pub(crate) struct ScanForm {
    q: String,
}

/// `3x KOPI`, `3*8998866200578`: a quantity and the rest.
fn quantity_prefix(q: &str) -> (Qty, &str) {
    if let Some((n, rest)) = q.split_once(['x', 'X', '*'])
        && let Ok(qty) = n.trim().parse::<Qty>()
        && qty.milli() > 0
        && !rest.trim().is_empty()
    {
        return (qty, rest.trim());
    }
    (Qty::units(1), q)
}

/// `POST /ui/d/{draft}/scan`: a barcode or SKU adds a line; anything else searches.
/// Answers the cart, with the search results and any message swapped in beside it.
pub(crate) async fn scan(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    Form(form): Form<ScanForm>,
) -> Response {
    let lang = lang(&headers);
    let text = form.q.trim().to_owned();
    let answer = call(&state, move |n| {
        let (qty, code) = quantity_prefix(&text);
        let stock = stock_of(n);
        match n.draft_add(&draft, code, qty) {
            Ok(d) => Ok((cart_view(n, d)?, None, None)),
            Err(NodeError::UnknownSku(_)) if !text.is_empty() => {
                let mut found = n.search_products(&text, 30)?;
                let mut query = text.clone();
                let d = n.draft(&draft)?;
                let message = found
                    .is_empty()
                    .then(|| format!("{}: {text}", t(Msg::NotFound, lang)));
                if found.is_empty() {
                    // Nothing matched: the cashier gets the whole shelf back to tap on.
                    found = n.search_products("", 24)?;
                    query.clear();
                }
                let grid = tiles(lang, &draft, &query, &found, &stock, true);
                Ok((cart_view(n, d)?, Some(grid), message))
            }
            Err(e) => Err(e),
        }
    })
    .await;
    match answer {
        Ok((view, grid, message)) => html_response(html! {
            (cart(lang, &view))
            @if let Some(g) = grid { (g) }
            p.error id="scan-error" hx-swap-oob="true" { (message.unwrap_or_default()) }
        }),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ShelfQuery {
    #[serde(default)]
    q: String,
}

/// `GET /ui/d/{draft}/rak[?q=]`: the shelf again (after another till sold, say).
pub(crate) async fn shelf(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ShelfQuery>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let found = n.search_products(&q.q, if q.q.is_empty() { 24 } else { 30 })?;
        let stock = stock_of(n);
        Ok(tiles(lang, &draft, &q.q, &found, &stock, false))
    })
    .await
    {
        Ok(grid) => html_response(grid),
        Err(e) => fail(e),
    }
}

/// `GET /ui/status`: the sync badge again.
pub(crate) async fn sync_badge(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| Ok(bar(n, Some(&who)).sync)).await {
        Ok(sync) => html_response(super::sync_badge(lang, sync, true)),
        Err(e) => fail(e),
    }
}

/// `POST /ui/d/{draft}/add/{sku}`: a tile was tapped.
pub(crate) async fn add(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path((draft, sku)): Path<(String, String)>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let d = n.draft_add(&draft, &sku, Qty::units(1))?;
        cart_view(n, d)
    })
    .await
    {
        Ok(view) => html_response(cart(lang, &view)),
        Err(e) => fail(e),
    }
}

/// `POST /ui/d/{draft}/line/{idx}/tambah|kurang|hapus`.
pub(crate) async fn line_op(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path((draft, idx, op)): Path<(String, usize, String)>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let mut d = n.draft(&draft)?;
        if idx < d.lines.len() {
            let one = Qty::units(1).milli();
            match op.as_str() {
                "tambah" => d.lines[idx].qty = Qty(d.lines[idx].qty.milli() + one),
                "kurang" if d.lines[idx].qty.milli() > one => {
                    d.lines[idx].qty = Qty(d.lines[idx].qty.milli() - one);
                    // A fixed discount on fewer units is a bigger one: approve it again.
                    if d.lines[idx].discount > 0 {
                        d.lines[idx].approved_by = None;
                    }
                }
                "kurang" | "hapus" => {
                    d.lines.remove(idx);
                }
                other => return Err(NodeError::Invalid(format!("unknown line action {other}"))),
            }
            n.save_draft(&d)?;
        }
        cart_view(n, d)
    })
    .await
    {
        Ok(view) => html_response(cart(lang, &view)),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct LineForm {
    #[serde(default)]
    discount: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    approver: String,
    #[serde(default)]
    approver_pin: String,
}

/// `POST /ui/d/{draft}/baris/{idx}`: a line's discount or price; what the cashier's role
/// may not give alone needs a supervisor's name and PIN, kept on the line for the sale.
pub(crate) async fn line_edit(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
    Path((draft, idx)): Path<(String, usize)>,
    Form(form): Form<LineForm>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let mut d = n.draft(&draft)?;
        let Some(line) = d.lines.get(idx).cloned() else {
            return cart_view(n, d);
        };
        let discount = match form.discount.trim() {
            "" => 0,
            text => amount(text)?,
        };
        let price = match form.price.trim() {
            "" => None,
            text => Some(amount(text)?),
        };
        let mut edited = line.clone();
        edited.discount = discount;
        edited.price = price;
        edited.approved_by = None;
        let one = Draft {
            lines: vec![edited.clone()],
            ..d.clone()
        };
        // Priced first: a discount above the line is refused before anyone approves it.
        n.price(&one.sale_request(None))?;
        let needs = n.sale_needs(&one.sale_request(None))?;
        let approval = Approval::named(&form.approver, &form.approver_pin);
        match n.authorize_all(&who, &needs, approval.as_ref()) {
            Ok(approved_by) => {
                edited.approved_by = approved_by;
                d.lines[idx] = edited;
                n.save_draft(&d)?;
                cart_view(n, d)
            }
            Err(e) => {
                let mut view = cart_view(n, d)?;
                view.message = Some(match e {
                    NodeError::ApprovalRequired(_) => format!("{}?", t(Msg::ApproverPin, lang)),
                    other => problem(lang, &other),
                });
                Ok(view)
            }
        }
    })
    .await
    {
        Ok(view) => html_response(cart(lang, &view)),
        Err(e) => html_response(html! { p.error { (problem(lang, &e)) } }),
    }
}

#[derive(Deserialize)]
pub(crate) struct ParkForm {
    name: String,
}

/// `POST /ui/d/{draft}/simpan`: parks the bill under a name and starts a new one.
pub(crate) async fn park(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    Form(form): Form<ParkForm>,
) -> Response {
    let parked = call(&state, move |n| {
        let mut d = n.draft(&draft)?;
        let name = form.name.trim().chars().take(60).collect::<String>();
        d.name = (!name.is_empty()).then_some(name);
        d.parked = true;
        n.save_draft(&d)
    })
    .await;
    match parked {
        Ok(()) => go(&headers, "/ui/kasir"),
        Err(e) => fail(e),
    }
}

/// `POST /ui/d/{draft}/lanjut`: takes a parked bill back to the sell screen.
pub(crate) async fn resume(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
) -> Response {
    let id = draft.clone();
    let resumed = call(&state, move |n| {
        let mut d = n.draft(&id)?;
        d.parked = false;
        n.save_draft(&d)
    })
    .await;
    match resumed {
        Ok(()) => go(&headers, &format!("/ui/kasir?d={draft}")),
        Err(e) => fail(e),
    }
}

/// `POST /ui/d/{draft}/batal`: drops the cart.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
) -> Response {
    match call(&state, move |n| n.drop_draft(&draft)).await {
        Ok(()) => go(&headers, "/ui/kasir"),
        Err(e) => fail(e),
    }
}

/// `GET /ui/tagihan`: parked bills.
pub(crate) async fn bills_page(
    State(state): State<AppState>,
    UiUser(who): UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    let facts = call(&state, move |n| {
        let bills = n
            .parked_drafts()?
            .into_iter()
            .map(|d| cart_view(n, d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((bar(n, Some(&who)), bills))
    })
    .await;
    let (bar, bills) = match facts {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let body = html! {
        div.card {
            h1 { (t(Msg::Bills, lang)) }
            @if bills.is_empty() { p { (t(Msg::NoBills, lang)) } }
            table.list {
                @for b in &bills {
                    tr.bill {
                        td { (b.draft.name.as_deref().unwrap_or("-")) }
                        td { (b.draft.lines.len()) }
                        td.num { (rp(b.priced.as_ref().map_or(0, |p| p.total))) }
                        td { button.primary hx-post=(format!("/ui/d/{}/lanjut", b.draft.draft_id)) { (t(Msg::Resume, lang)) } }
                    }
                }
            }
        }
    };
    html_response(page(lang, t(Msg::Bills, lang), &bar, Nav::Bills, body))
}

// ---- Bayar and struk ---------------------------------------------------------------

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

// ---- Riwayat -------------------------------------------------------------------------

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

fn history(lang: Lang, sales: &[crate::tables::SaleRow], message: Option<&str>) -> Markup {
    html! {
        div.card id="history" hx-get="/ui/riwayat/daftar" hx-trigger="kasir:change from:body" hx-swap="outerHTML" {
            h1 { (t(Msg::History, lang)) " · " (t(Msg::Today, lang)) }
            @if let Some(m) = message { p.error id="history-message" { (m) } }
            @if sales.is_empty() { p { (t(Msg::NoSales, lang)) } }
            table.list {
                tr {
                    th { (t(Msg::ReceiptNo, lang)) } th { (t(Msg::Till, lang)) }
                    th.num { (t(Msg::Total, lang)) } th { (t(Msg::Status, lang)) } th {}
                }
                @for s in sales.iter().rev() {
                    tr.sale data-sale=(s.sale_id) {
                        td { (s.receipt_no) }
                        td { (s.till_code) }
                        td.num { (rp(s.total)) }
                        td class=(format!("status-{}", s.status.as_str())) { (status_text(lang, s.status)) }
                        td {
                            @if s.status == SaleStatus::Completed {
                                details {
                                    summary.btn { (t(Msg::Void, lang)) }
                                    form.void hx-post=(format!("/ui/riwayat/{}/batal", s.sale_id)) hx-target="#history" hx-swap="outerHTML" {
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
        let today = n.today().to_string();
        Ok((bar(n, Some(&who)), n.sales(Some(&today))?))
    })
    .await;
    match facts {
        Ok((bar, sales)) => html_response(page(
            lang,
            t(Msg::History, lang),
            &bar,
            Nav::History,
            history(lang, &sales, None),
        )),
        Err(e) => fail(e),
    }
}

/// `GET /ui/riwayat/daftar`: today's sales again (another till sold or voided).
pub(crate) async fn history_list(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let today = n.today().to_string();
        n.sales(Some(&today))
    })
    .await
    {
        Ok(sales) => html_response(history(lang, &sales, None)),
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
        let today = n.today().to_string();
        Ok((n.sales(Some(&today))?, message))
    })
    .await;
    match answer {
        Ok((sales, message)) => html_response(history(lang, &sales, Some(&message))),
        Err(e) => fail(e),
    }
}
