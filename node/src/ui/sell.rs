//! Kasir: the scan field, the shelf, the cart with its totals; Tagihan (parked bills).

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kasir_crdt::Qty;
use kasir_crdt::pricing::PricedSale;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Lang, Msg, Nav, UiUser, amount, bar, call, fail, go, html_response, lang, page, problem, rp, t,
};
use crate::NodeError;
use crate::drafts::Draft;
use crate::http::AppState;
use crate::node::Node;
use crate::people::Approval;
use crate::tables::ProductRow;

/// What the sell screen shows of a draft: its lines with names and the priced totals.
pub(super) struct CartView {
    pub(super) draft: Draft,
    pub(super) names: Vec<String>,
    /// Per line: sold at a grosir price (the catalog's tier for its quantity).
    pub(super) grosir: Vec<bool>,
    pub(super) priced: Option<PricedSale>,
    /// Said above the totals (an approval that was refused).
    pub(super) message: Option<String>,
    /// The store's cash rounding (the cash part of a split payment is rounded too).
    pub(super) rounding: kasir_crdt::money::CashRounding,
    /// Whether this till has a QRIS acquirer (`qris.json`): Bayar offers a dynamic QR.
    pub(super) qris: bool,
}

pub(super) fn cart_view(n: &Node, draft: Draft) -> Result<CartView, NodeError> {
    let priced = if draft.lines.is_empty() {
        None
    } else {
        Some(n.price(&draft.sale_request(None))?)
    };
    // As the sale will name them (a dus line says so).
    let names = match &priced {
        Some(p) => p.lines.iter().map(|l| l.name.clone()).collect(),
        None => Vec::new(),
    };
    let grosir = match &priced {
        Some(p) => draft
            .lines
            .iter()
            .zip(&p.lines)
            .map(|(d, l)| {
                d.unit.is_none()
                    && d.price.is_none()
                    && n.product_row(&d.sku).is_ok_and(|p| p.price != l.unit_price)
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(CartView {
        draft,
        names,
        grosir,
        priced,
        message: None,
        rounding: n.pricing_rules().rounding,
        qris: crate::qris::QrisConfig::load(n.dir()).is_ok_and(|c| c.is_some()),
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
                        @let priced = view.priced.as_ref().and_then(|p| p.lines.get(i));
                        @let total = priced.map_or(0, |l| l.line_total);
                        tr.line data-sku=(line.sku) {
                            td { (view.names[i])
                                @if let Some(l) = priced.filter(|l| l.qty.milli() != 1000 || view.grosir[i]) {
                                    br; small.each { "@ " (rp(l.unit_price)) @if view.grosir[i] { " · " (t(Msg::Grosir, lang)) } }
                                }
                                @if let Some(p) = priced.and_then(|l| l.promo.as_ref()) {
                                    br; small.promo { (p.label) " −" (rp(p.discount)) }
                                }
                            }
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
pub(super) fn quantity(lang: Lang, q: f64) -> String {
    let text = q.to_string();
    match lang {
        Lang::Id => text.replace('.', ","),
        Lang::En => text,
    }
}

/// What the shelf shows: a search's matches, one category, or the first products.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub(crate) struct Shelf {
    /// The search typed (an unknown code or a name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    /// The category chip chosen.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    c: String,
}

impl Shelf {
    /// The products of this shelf.
    fn products(&self, n: &Node) -> Result<Vec<ProductRow>, NodeError> {
        if !self.q.is_empty() {
            n.search_products(&self.q, 30)
        } else if !self.c.is_empty() {
            n.products_in_category(&self.c, 60)
        } else {
            n.search_products("", 24)
        }
    }

    /// The shelf rendered: category chips (when nothing is searched) and the tiles.
    fn render(&self, n: &Node, lang: Lang, draft: &str, oob: bool) -> Result<Markup, NodeError> {
        let products = self.products(n)?;
        let categories = n.categories()?;
        Ok(tiles(
            lang,
            draft,
            self,
            &categories,
            &products,
            &stock_of(n),
            oob,
        ))
    }
}

fn tiles(
    lang: Lang,
    draft: &str,
    shelf: &Shelf,
    categories: &[String],
    products: &[ProductRow],
    stock: &dyn Fn(&str) -> Option<f64>,
    oob: bool,
) -> Markup {
    // The shelf follows stock changes from any till (`kasir:change`, see `ui::events`).
    let refresh = format!(
        "/ui/d/{draft}/rak?{}",
        serde_urlencoded::to_string(shelf).unwrap_or_default()
    );
    let chip = |label: &str, category: &str| {
        let url = format!(
            "/ui/d/{draft}/rak?{}",
            serde_urlencoded::to_string([("c", category)]).unwrap_or_default()
        );
        html! {
            button.chip type="button" aria-pressed=(if shelf.c == category { "true" } else { "false" })
                hx-get=(url) hx-target="#results" hx-swap="outerHTML" data-category=(category) { (label) }
        }
    };
    html! {
        div id="results" hx-swap-oob=[oob.then_some("true")]
            hx-get=(refresh) hx-trigger="kasir:change from:body" hx-swap="outerHTML" {
            @if shelf.q.is_empty() && !categories.is_empty() {
                div.chips role="toolbar" {
                    (chip(t(Msg::All, lang), ""))
                    @for c in categories { (chip(c, c)) }
                }
            }
            div.grid {
                @for p in products {
                    @let tile = html! {
                        button.tile hx-post=(format!("/ui/d/{draft}/add/{}", p.sku)) hx-target="#cart" hx-swap="outerHTML" data-sku=(p.sku) {
                            span.name { (p.name) }
                            span.price { (rp(p.price)) " / " (p.unit) }
                            @if let Some(s) = stock(&p.sku) {
                                span class=(if s <= 5.0 { "stock low" } else { "stock" }) { (t(Msg::Stock, lang)) " " (quantity(lang, s)) }
                            }
                        }
                    };
                    @if p.units.is_empty() {
                        (tile)
                    } @else {
                        // Other units (pak, dus) as their own buttons under the tile.
                        div.tile-group data-sku=(p.sku) {
                            (tile)
                            div.units {
                                @for u in &p.units {
                                    button.unit hx-post=(format!("/ui/d/{draft}/add/{}?{}", p.sku, serde_urlencoded::to_string([("u", u.name.as_str())]).unwrap_or_default()))
                                        hx-target="#cart" hx-swap="outerHTML" data-unit=(u.name) {
                                        "+ " (u.name) " " small { (rp(u.price)) }
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
        let view = cart_view(n, draft)?;
        let grid = Shelf::default().render(n, lang, &view.draft.draft_id, false)?;
        Ok(Some((bar(n, Some(&who)), view, grid)))
    })
    .await;
    let (bar, view, grid) = match facts {
        Ok(Some(f)) => f,
        Ok(None) => return go(&headers, "/ui/shift"),
        Err(e) => return fail(e),
    };
    let d = view.draft.draft_id.clone();
    // What tells a scanner from a person, for kasir.js (the same thresholds as the
    // devices crate's detector).
    let wedge = kasir_devices::barcode::WedgeConfig::default();
    let body = html! {
        div.sell {
            section {
                form id="scan-form" hx-post=(format!("/ui/d/{d}/scan")) hx-target="#cart" hx-swap="outerHTML" hx-sync="this:queue all"
                    data-wedge-min=(wedge.min_len) data-wedge-gap=(wedge.max_gap_ms) {
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
        match n.draft_add(&draft, code, qty) {
            Ok(d) => Ok((cart_view(n, d)?, None, None)),
            Err(NodeError::UnknownSku(_)) if !text.is_empty() => {
                let mut shelf = Shelf {
                    q: text.clone(),
                    c: String::new(),
                };
                let d = n.draft(&draft)?;
                let message = shelf
                    .products(n)?
                    .is_empty()
                    .then(|| format!("{}: {text}", t(Msg::NotFound, lang)));
                if message.is_some() {
                    // Nothing matched: the cashier gets the whole shelf back to tap on.
                    shelf.q.clear();
                }
                let grid = shelf.render(n, lang, &draft, true)?;
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

/// `GET /ui/d/{draft}/rak[?q=|?c=]`: the shelf again (another till sold, say), a
/// search's matches, or one category's products (a chip was tapped).
pub(crate) async fn shelf(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path(draft): Path<String>,
    axum::extract::Query(shelf): axum::extract::Query<Shelf>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| shelf.render(n, lang, &draft, false)).await {
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

/// Which unit a tapped tile adds (`?u=dus`); the stock unit when absent.
#[derive(Deserialize)]
pub(crate) struct AddUnit {
    #[serde(default)]
    u: Option<String>,
}

/// `POST /ui/d/{draft}/add/{sku}[?u=dus]`: a tile (or one of its units) was tapped.
pub(crate) async fn add(
    State(state): State<AppState>,
    _: UiUser,
    headers: HeaderMap,
    Path((draft, sku)): Path<(String, String)>,
    Query(unit): Query<AddUnit>,
) -> Response {
    let lang = lang(&headers);
    match call(&state, move |n| {
        let d = n.draft_add_unit(&draft, &sku, unit.u.as_deref(), Qty::units(1))?;
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
