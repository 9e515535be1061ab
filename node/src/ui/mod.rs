//! The till app: a cashier's screens in Bahasa Indonesia, rendered by the node itself.
//!
//! HTML is written with `maud` on the same axum router as the JSON API; `htmx` (vendored,
//! `node/ui/static/VENDOR.md`) swaps the fragments the server sends back. There is no
//! copy of the money maths in the browser: the cart's totals come from
//! [`Node::price`](crate::Node::price), the same code that records the sale and prints
//! the struk. Carts live in the till's SQLite (`drafts`), never in the page.
//!
//! **Who may call:** the [`guard`](crate::http) checks `Host` on these routes as on the
//! API. A page needs a logged-in user: the session token from a PIN login travels in the
//! `kasir_sid` cookie (`HttpOnly; SameSite=Strict`), never in the page. A write (`POST
//! /ui/...`) must carry `HX-Request: true` — which a cross-site form cannot send without a
//! preflight the till never answers — and must not come from another site
//! (`Sec-Fetch-Site`); the same approvals as the API apply (a void needs a supervisor's
//! PIN).

mod customers;
mod history;
mod i18n;
mod login;
mod pay;
mod sell;
mod settings;
pub mod setup;
mod shift;
mod stock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

pub use i18n::{Lang, Msg, t};

use crate::NodeError;
use crate::http::{ApiError, AppState, Routes};
use crate::node::Node;
use crate::people::Principal;

/// The session cookie (a login session's bearer token).
pub const SESSION_COOKIE: &str = "kasir_sid";
/// The language cookie (`id` or `en`).
pub const LANG_COOKIE: &str = "kasir_lang";

const HTMX: &[u8] = include_bytes!("../../ui/static/htmx.min.js");
const KASIR_JS: &[u8] = include_bytes!("../../ui/static/kasir.js");
const KASIR_CSS: &[u8] = include_bytes!("../../ui/static/kasir.css");

/// Adds the till app's routes.
pub(crate) fn routes(r: Routes) -> Routes {
    r.add("GET", "/", get(login::home))
        .add("GET", "/ui", get(login::home))
        .add("GET", "/ui/static/{file}", get(asset))
        .add("GET", "/ui/bahasa/{code}", get(login::language))
        .add("GET", "/ui/masuk", get(login::login_page))
        .add("POST", "/ui/masuk", post(login::login))
        .add("GET", "/ui/masuk/{link}", get(login::login_link))
        .add("POST", "/ui/keluar", post(login::logout))
        .add("GET", "/ui/shift", get(shift::shift_page))
        .add("POST", "/ui/shift/buka", post(shift::open_shift))
        .add("POST", "/ui/shift/kas", post(shift::cash_move))
        .add("POST", "/ui/shift/tutup", post(shift::close_shift))
        .add("POST", "/ui/shift/hitung", post(shift::count_notes))
        .add("POST", "/ui/shift/cetak-z", post(shift::print_z))
        .add("GET", "/ui/kasir", get(sell::sell_page))
        .add("POST", "/ui/d/{draft}/scan", post(sell::scan))
        .add("POST", "/ui/d/{draft}/add/{sku}", post(sell::add))
        .add("POST", "/ui/d/{draft}/line/{idx}/{op}", post(sell::line_op))
        .add("POST", "/ui/d/{draft}/baris/{idx}", post(sell::line_edit))
        .add("POST", "/ui/d/{draft}/simpan", post(sell::park))
        .add("POST", "/ui/d/{draft}/lanjut", post(sell::resume))
        .add("POST", "/ui/d/{draft}/batal", post(sell::cancel))
        .add("GET", "/ui/d/{draft}/bayar", get(pay::pay_page))
        .add("POST", "/ui/d/{draft}/bayar", post(pay::pay))
        .add(
            "POST",
            "/ui/d/{draft}/bayar/hapus/{idx}",
            post(pay::drop_payment),
        )
        .add("POST", "/ui/d/{draft}/qris", post(pay::qris_start))
        .add("GET", "/ui/qris/{charge}", get(pay::qris_poll))
        .add("POST", "/ui/qris/{charge}/cetak", post(pay::qris_print))
        .add("GET", "/ui/printer", get(pay::printer_state))
        .add("GET", "/ui/tagihan", get(sell::bills_page))
        .add("GET", "/ui/struk/{sale}", get(pay::receipt_page))
        .add("POST", "/ui/struk/{sale}/cetak", post(pay::print))
        .add("POST", "/ui/struk/{sale}/retur", post(history::refund))
        .add("GET", "/ui/riwayat", get(history::history_page))
        .add("POST", "/ui/riwayat/{sale}/batal", post(history::void))
        .add("GET", "/ui/riwayat/daftar", get(history::history_list))
        .add("GET", "/ui/d/{draft}/rak", get(sell::shelf))
        .add("GET", "/ui/status", get(sell::sync_badge))
        .add("GET", "/ui/stok", get(stock::stock_page))
        .add("GET", "/ui/stok/daftar", get(stock::stock_list))
        .add("POST", "/ui/stok/gerak", post(stock::record_move))
        .add("POST", "/ui/produk", post(stock::save_product))
        .add(
            "POST",
            "/ui/produk/impor",
            post(stock::import_products).layer(axum::extract::DefaultBodyLimit::max(
                stock::MAX_IMPORT_BYTES,
            )),
        )
        .add("GET", "/ui/pelanggan", get(customers::customers_page))
        .add("POST", "/ui/pelanggan", post(customers::add_customer))
        .add(
            "POST",
            "/ui/pelanggan/{customer}/bayar",
            post(customers::pay_debt),
        )
        .add("GET", "/ui/pengaturan", get(settings::settings_page))
        .add("POST", "/ui/pengaturan/toko", post(settings::save_profile))
        .add(
            "POST",
            "/ui/pengaturan/printer",
            post(settings::save_printer),
        )
        .add(
            "POST",
            "/ui/pengaturan/printer/tes",
            post(settings::test_print),
        )
        .add("POST", "/ui/pengaturan/pengguna", post(settings::add_user))
        .add(
            "POST",
            "/ui/pengaturan/pengguna/{user}/pin",
            post(settings::set_pin),
        )
        .add(
            "POST",
            "/ui/pengaturan/pengguna/{user}/nonaktif",
            post(settings::disable_user),
        )
        .add("POST", "/ui/pengaturan/undang", post(settings::invite))
        .add(
            "POST",
            "/ui/pengaturan/undang/batal",
            post(settings::cancel_invite),
        )
        .add(
            "POST",
            "/ui/pengaturan/perangkat/{endpoint}/cabut",
            post(settings::revoke),
        )
        .add("GET", "/ui/events", get(events))
}

/// Whether a write to the till app may go on: sent by htmx from this till's own pages.
pub(crate) fn write_allowed(headers: &HeaderMap) -> bool {
    let htmx = headers
        .get("hx-request")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true");
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    htmx && matches!(site, "same-origin" | "none")
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "kasir.js" => (KASIR_JS, "text/javascript; charset=utf-8"),
        "kasir.css" => (KASIR_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/events`: one server-sent event (`change`) whenever a document changed here,
/// by this till or merged from a peer. Pages refresh what they show of it (the shelf's
/// stock, the day's sales, the sync badge); `kasir.js` coalesces bursts.
async fn events(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    if user(&state, &headers).await.is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let rx = match call(&state, |n| Ok(n.subscribe())).await {
        Ok(rx) => rx,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let stream = n0_future::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => Some((
                // A browser drops an event without data: say which kind of change.
                Ok::<_, std::convert::Infallible>(Event::default().event("change").data("doc")),
                rx,
            )),
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The language of the request.
pub(crate) fn lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE).map_or(Lang::Id, |c| Lang::from_code(&c))
}

/// The logged-in user of a request, if its session cookie is valid.
pub(crate) async fn user(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match call(state, move |n| n.authenticate(&token)).await {
        Ok(p @ Principal::User { .. }) => Some(p),
        _ => None,
    }
}

/// Runs `f` on the node off the async threads (the node is one mutex; SQLite blocks).
pub(crate) async fn call<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    let node = state.node().clone();
    tokio::task::spawn_blocking(move || f(&mut *node.lock()?))
        .await
        .map_err(|_| NodeError::Poisoned)?
}

/// The logged-in user of a till-app request (its session cookie); without one the
/// request is sent to the PIN login instead of reaching the handler.
pub(crate) struct UiUser(pub(crate) Principal);

impl axum::extract::FromRequestParts<AppState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<UiUser, Response> {
        match user(state, &parts.headers).await {
            Some(p) => Ok(UiUser(p)),
            None => Err(go(&parts.headers, "/ui/masuk")),
        }
    }
}

/// Go to `to`: a redirect header htmx follows for htmx requests, a 303 otherwise.
pub(crate) fn go(headers: &HeaderMap, to: &str) -> Response {
    if headers.contains_key("hx-request") {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

/// Rupiah as a cashier reads it: `Rp12.500`.
pub(crate) fn rp(amount: i64) -> String {
    kasir_crdt::money::format_rupiah(amount)
}

/// Which screen a page belongs to, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Sell,
    Bills,
    History,
    Shift,
    Stock,
    Customers,
    Settings,
    None,
}

/// What the bar at the top shows.
pub(crate) struct Bar {
    pub(crate) store: String,
    pub(crate) till: String,
    pub(crate) user: Option<String>,
    /// Whether the user may open Pengaturan (a manager or the owner).
    pub(crate) admin: bool,
    /// `(connected peers, relay connected, unsynced documents)`.
    pub(crate) sync: (usize, bool, u64),
}

/// The badge Online (the relay is connected) / LAN (other tills) / Mandiri (alone), with
/// the documents not yet synced; refreshed on every change when someone is logged in.
pub(crate) fn sync_badge(
    lang: Lang,
    (peers, relay, unsynced): (usize, bool, u64),
    live: bool,
) -> Markup {
    let (state, class) = if relay {
        (t(Msg::Online, lang), "badge")
    } else if peers > 0 {
        (t(Msg::Lan, lang), "badge")
    } else {
        (t(Msg::Alone, lang), "badge warn")
    };
    html! {
        span id="sync" class=(class) title=(format!("{unsynced} {}", t(Msg::Unsynced, lang)))
            hx-get=[live.then_some("/ui/status")] hx-trigger=[live.then_some("kasir:change from:body")] hx-swap="outerHTML" {
            (state)
            @if unsynced > 0 { " · " (unsynced) }
        }
    }
}

/// A whole page: the bar, the navigation, `body`.
pub(crate) fn page(lang: Lang, title: &str, bar: &Bar, nav: Nav, body: Markup) -> Markup {
    let link = |to: &str, which: Nav, msg: Msg| {
        html! { a href=(to) class=[(nav == which).then_some("on")] { (t(msg, lang)) } }
    };
    let other = match lang {
        Lang::Id => "en",
        Lang::En => "id",
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No copy of the page in localStorage before each pushed URL (the struk
                // after Bayar): on a cheap tablet that copy cost more than the swap. Back
                // then loads the page from the till, which is on the LAN.
                meta name="htmx-config" content=r#"{"historyCacheSize":0,"refreshOnHistoryMiss":true}"#;
                title { (title) " · Kasir" }
                link rel="stylesheet" href="/ui/static/kasir.css";
                script src="/ui/static/kasir.js" {}
                script src="/ui/static/htmx.min.js" {}
            }
            body data-events=[bar.user.is_some().then_some("/ui/events")] {
                header.bar {
                    span.store { (bar.store) }
                    span.badge { (t(Msg::Till, lang)) " " (bar.till) }
                    (sync_badge(lang, bar.sync, bar.user.is_some()))
                    @if let Some(u) = &bar.user { span { (u) } }
                    nav {
                        @if bar.user.is_some() {
                            (link("/ui/kasir", Nav::Sell, Msg::Sell))
                            (link("/ui/tagihan", Nav::Bills, Msg::Bills))
                            (link("/ui/riwayat", Nav::History, Msg::History))
                            (link("/ui/shift", Nav::Shift, Msg::Shift))
                            (link("/ui/stok", Nav::Stock, Msg::StockTitle))
                            (link("/ui/pelanggan", Nav::Customers, Msg::Customers))
                        }
                        @if bar.admin {
                            (link("/ui/pengaturan", Nav::Settings, Msg::Settings))
                        }
                        a href=(format!("/ui/bahasa/{other}")) { (t(Msg::Language, lang)) }
                        @if bar.user.is_some() {
                            button hx-post="/ui/keluar" { (t(Msg::Logout, lang)) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response.
pub(crate) fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An error shown to the cashier in place (never a blank page).
pub(crate) fn problem(lang: Lang, e: &NodeError) -> String {
    match e {
        NodeError::BadPin => t(Msg::WrongPin, lang).to_owned(),
        NodeError::LockedOut { .. } => t(Msg::LockedOut, lang).to_owned(),
        NodeError::UnknownSku(code) => format!("{}: {code}", t(Msg::NotFound, lang)),
        other => other.to_string(),
    }
}

/// The bar's facts, read in one go.
pub(crate) fn bar(n: &Node, user: Option<&Principal>) -> Bar {
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
        admin: user.is_some_and(|u| u.role() >= kasir_crdt::store::UserRole::Manager),
        sync: (peers, relay, status.map_or(0, |s| s.unsynced_docs)),
    }
}

pub(crate) fn fail(e: NodeError) -> Response {
    ApiError::from(e).into_response()
}

/// Runs an API operation for the logged-in user: the till app does what the API and
/// the `kasir` command do through the same typed request and code.
pub(crate) fn run_op<O: crate::api::Operation>(
    n: &mut Node,
    who: &Principal,
    req: O::Request,
) -> Result<O::Response, NodeError> {
    let ctx = crate::api::OpContext {
        sync_addrs: Vec::new(),
        principal: Some(who.clone()),
    };
    O::run(n, &ctx, req)
}

/// `payload` as an inline SVG QR code of at least `size` pixels (an invite's text at
/// level L, a QRIS payload at M), without the XML declaration inline SVG takes none of.
pub(crate) fn qr_svg(payload: &str, size: u32, level: qrcode::EcLevel) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(payload, level).ok()?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(size, size)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// Rupiah typed by a person: `50000`, `50.000`, `Rp 50.000`.
pub(crate) fn amount(text: &str) -> Result<i64, NodeError> {
    crate::import::parse_rupiah(text).map_err(NodeError::Invalid)
}
