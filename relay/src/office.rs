//! The head-office dashboard, served by `kasir-relay run` at `/` on its HTTP address:
//! server-rendered HTML (maud), no script, in Bahasa Indonesia (English one link away).
//!
//! | page | what |
//! |---|---|
//! | `GET /` | the login form, or **Ringkasan**: today against yesterday and the same day last week, per outlet |
//! | `GET /toko/{store}` | one outlet: sales by hour, 30 days, payment methods, tills, cashiers |
//! | `GET /ringkasan.csv` | the Ringkasan table as CSV |
//! | `POST /masuk`, `POST /keluar` | log in (e-mail and password, [`crate::users`]) and out |
//!
//! **Who may see what:** a login is the API's own token, kept in the `kasir_ho` cookie
//! (`HttpOnly; SameSite=Strict`); every page reads through the same tenant transaction
//! as the API ([`crate::api`]), so row-level security keeps tenants apart here exactly
//! as there: another tenant's outlet is a 404 page. Money is integer rupiah; a day's
//! sales are the totals less refunds of sales not voided, by business date; "today" is
//! today in WIB.

use std::fmt::Write as _;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, Days, NaiveDate};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{ApiError, ApiState, tenant_tx, today_at};
use crate::auth::{self, ApiRole, Claims};

/// The cookie holding a dashboard login (the API token).
pub const SESSION_COOKIE: &str = "kasir_ho";
/// The language cookie (`id` or `en`).
pub const LANG_COOKIE: &str = "kasir_ho_lang";

const CSS: &str = include_str!("../ui/kantor.css");

/// The dashboard's routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(home))
        .route("/masuk", post(log_in))
        .route("/keluar", post(log_out))
        .route("/toko/{store}", get(outlet))
        .route("/peringatan", get(alerts_page))
        .route("/pajak", get(tax_page))
        .route("/perangkat", get(devices_page))
        .route("/batal-retur", get(audit_page))
        .route("/batal-retur.csv", get(audit_csv))
        .route("/perangkat/cabut", get(revoke_confirm).post(revoke))
        .route("/pajak.csv", get(tax_csv))
        .route("/ringkasan.csv", get(summary_csv))
        .route("/toko/{store}/{export}", get(outlet_csv).post(set_price))
        .route("/bahasa/{code}", get(language))
        .route("/kantor.css", get(css))
}

// Language -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Id,
    En,
}

impl Lang {
    fn of(headers: &HeaderMap) -> Lang {
        match cookie(headers, LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    /// The Indonesian or the English text.
    fn t(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }
}

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

/// The logged-in caller, if the session cookie holds a valid token.
fn session(state: &ApiState, headers: &HeaderMap) -> Option<Claims> {
    let token = cookie(headers, SESSION_COOKIE)?;
    auth::verify(&state.jwt_secret, &token).ok()
}

// Formatting -----------------------------------------------------------------------------

/// `Rp1.234.567` (negative with a leading minus).
fn rupiah(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 6);
    if amount < 0 {
        out.push('-');
    }
    out.push_str("Rp");
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// `+12%` / `−8%` against `before`, or nothing when there is no base.
fn change(now: i64, before: i64) -> Option<(String, bool)> {
    if before == 0 {
        return None;
    }
    let pct = ((now - before) as f64 / before as f64 * 100.0).round() as i64;
    Some((
        if pct >= 0 {
            format!("+{pct}%")
        } else {
            format!("−{}%", pct.abs())
        },
        pct >= 0,
    ))
}

/// `text` safe inside HTML or SVG.
fn escape(text: &str) -> String {
    html! { (text) }.into_string()
}

/// A bar chart of `(label, value)` as inline SVG (no script, prints as it shows).
fn bars(points: &[(String, i64)], lang: Lang) -> Markup {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let n = points.len().max(1);
    let (w, h, base) = (600.0_f64, 180.0_f64, 160.0_f64);
    let slot = w / n as f64;
    let mut svg = String::new();
    for (i, (label, value)) in points.iter().enumerate() {
        let bar = (*value as f64 / max as f64) * (base - 10.0);
        let x = i as f64 * slot + slot * 0.15;
        // Writing to a String cannot fail.
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}"><title>{} {}</title></rect>"#,
            base - bar,
            slot * 0.7,
            escape(label),
            rupiah(*value)
        );
        if n <= 12 || (n - 1 - i).is_multiple_of(3) {
            // The edge labels lean inwards, so none is cut by the chart's border.
            let anchor = if i == 0 {
                "start"
            } else if i + 1 == n {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="176" text-anchor="{anchor}">{}</text>"#,
                x + slot * 0.35,
                escape(label)
            );
        }
    }
    html! {
        svg.bars viewBox={"0 0 " (w) " " (h)} preserveAspectRatio="none" role="img"
            aria-label=(lang.t("Grafik penjualan", "Sales chart")) {
            (PreEscaped(svg))
        }
    }
}

// Pages ----------------------------------------------------------------------------------

fn page(lang: Lang, title: &str, who: Option<(&str, ApiRole)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kasir Kantor Pusat" }
                link rel="stylesheet" href="/kantor.css";
            }
            body {
                header.bar {
                    span.tenant { (who.map_or("Kasir Kantor Pusat", |w| w.0)) }
                    nav {
                        @if who.is_some() {
                            a href="/" { (lang.t("Ringkasan", "Overview")) }
                            a href="/peringatan" { (lang.t("Peringatan", "Alerts")) }
                            a href="/batal-retur" { (lang.t("Batal & retur", "Voids & refunds")) }
                            a href="/pajak" { (lang.t("Pajak", "Tax")) }
                            a href="/perangkat" { (lang.t("Perangkat", "Devices")) }
                        }
                        @match lang {
                            Lang::Id => a href="/bahasa/en" { "English" },
                            Lang::En => a href="/bahasa/id" { "Bahasa Indonesia" },
                        }
                        @if let Some((_, role)) = who {
                            span.muted { (match role { ApiRole::Owner => lang.t("Pemilik", "Owner"), ApiRole::Analyst => lang.t("Analis", "Analyst") }) }
                            form method="post" action="/keluar" style="display:inline" {
                                button type="submit" { (lang.t("Keluar", "Log out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn login_page(lang: Lang, error: Option<&str>) -> Markup {
    page(
        lang,
        lang.t("Masuk", "Log in"),
        None,
        html! {
            div.center.card {
                h1 { (lang.t("Masuk ke kantor pusat", "Log in to head office")) }
                form method="post" action="/masuk" {
                    label for="email" { "E-mail" }
                    input #email name="email" type="email" autocomplete="username" required autofocus;
                    label for="password" { (lang.t("Kata sandi", "Password")) }
                    input #password name="password" type="password" autocomplete="current-password" required;
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    p { button.primary type="submit" { (lang.t("Masuk", "Log in")) } }
                }
            }
        },
    )
}

#[derive(Debug, sqlx::FromRow)]
struct OutletDays {
    store_id: Uuid,
    name: String,
    tx_today: i64,
    net_today: i64,
    tx_yesterday: i64,
    net_yesterday: i64,
    tx_week: i64,
    net_week: i64,
}

/// The tenant's name, read in its own transaction (row-level security shows no other).
async fn tenant_name(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant: Uuid,
) -> Result<Option<String>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT name FROM tenants WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Today, yesterday and the same day last week in WIB.
fn days() -> (NaiveDate, NaiveDate, NaiveDate) {
    let today = today_at(7);
    let back = |n| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    (today, back(1), back(7))
}

async fn summary(state: &ApiState, tenant: Uuid) -> Result<(String, Vec<OutletDays>), ApiError> {
    let (today, yesterday, week) = days();
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let name = tenant_name(&mut tx, tenant).await?;
    let rows: Vec<OutletDays> = sqlx::query_as(
        "SELECT st.store_id, st.name,
                count(s.sale_id) FILTER (WHERE s.business_date = $1)::int8 AS tx_today,
                COALESCE(sum(s.total - s.refunded) FILTER (WHERE s.business_date = $1), 0)::int8 AS net_today,
                count(s.sale_id) FILTER (WHERE s.business_date = $2)::int8 AS tx_yesterday,
                COALESCE(sum(s.total - s.refunded) FILTER (WHERE s.business_date = $2), 0)::int8 AS net_yesterday,
                count(s.sale_id) FILTER (WHERE s.business_date = $3)::int8 AS tx_week,
                COALESCE(sum(s.total - s.refunded) FILTER (WHERE s.business_date = $3), 0)::int8 AS net_week
           FROM stores st
           LEFT JOIN sales s ON s.store_id = st.store_id AND s.status <> 'voided'
                            AND s.business_date IN ($1, $2, $3)
          GROUP BY st.store_id, st.name
          ORDER BY st.name, st.store_id",
    )
    .bind(today)
    .bind(yesterday)
    .bind(week)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((name.unwrap_or_default(), rows))
}

/// Today's gross margin over the lines whose product has a cost (the average paid for
/// it on receipts, else the catalog's cost), and those lines' sales.
async fn margin_today(state: &ApiState, tenant: Uuid) -> Result<(i64, i64), ApiError> {
    let (today, _, _) = days();
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(l.line_total - COALESCE(l.stock_qty, l.qty) * COALESCE(c.avg_cost, p.cost)), 0)::int8,
                COALESCE(sum(l.line_total), 0)::int8
           FROM sales s
           JOIN sale_lines l ON l.sale_id = s.sale_id
           JOIN products p ON p.store_id = l.store_id AND p.product_id = l.product_id
           LEFT JOIN product_costs c ON c.store_id = l.store_id AND c.sku = p.sku
          WHERE s.business_date = $1 AND s.status <> 'voided'
            AND COALESCE(c.avg_cost, p.cost) IS NOT NULL",
    )
    .bind(today)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

fn card(label: &str, value: String, cmp: &[(&str, Option<(String, bool)>)]) -> Markup {
    html! {
        div.card {
            div.label { (label) }
            div.value { (value) }
            @for (what, c) in cmp {
                @if let Some((text, up)) = c {
                    div.cmp { span class=(if *up { "up" } else { "down" }) { (text) } " " (what) }
                }
            }
        }
    }
}

async fn home(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let (tenant_name, rows) = summary(&state, claims.tenant).await?;
    let (margin, costed) = margin_today(&state, claims.tenant).await?;
    let sum = |f: fn(&OutletDays) -> i64| rows.iter().map(f).sum::<i64>();
    let (net, tx) = (sum(|r| r.net_today), sum(|r| r.tx_today));
    let (net_y, tx_y) = (sum(|r| r.net_yesterday), sum(|r| r.tx_yesterday));
    let (net_w, tx_w) = (sum(|r| r.net_week), sum(|r| r.tx_week));
    let basket = |n: i64, t: i64| if t == 0 { 0 } else { n / t };
    let vs_y = lang.t("dari kemarin", "vs yesterday");
    let vs_w = lang.t("dari minggu lalu", "vs last week");
    let (today, _, _) = days();
    let body = html! {
        h1 { (lang.t("Ringkasan hari ini", "Today at a glance")) " · " (today) }
        div.cards {
            (card(lang.t("Penjualan", "Sales"), rupiah(net), &[(vs_y, change(net, net_y)), (vs_w, change(net, net_w))]))
            (card(lang.t("Transaksi", "Transactions"), tx.to_string(), &[(vs_y, change(tx, tx_y)), (vs_w, change(tx, tx_w))]))
            (card(lang.t("Rata-rata belanja", "Average basket"), rupiah(basket(net, tx)),
                &[(vs_y, change(basket(net, tx), basket(net_y, tx_y)))]))
            @if costed > 0 {
                div.card #margin {
                    div.label { (lang.t("Margin kotor", "Gross margin")) }
                    div.value { (rupiah(margin)) }
                    div.cmp { ((margin as f64 / costed as f64 * 100.0).round()) "% "
                        (lang.t("dari penjualan produk ber-HPP", "of sales of products with a cost")) }
                }
            }
            (card(lang.t("Outlet", "Outlets"), rows.len().to_string(), &[]))
        }
        div.tools {
            h2 { (lang.t("Per outlet", "By outlet")) }
            a.btn #csv href="/ringkasan.csv" download { (lang.t("Unduh CSV", "Download CSV")) }
        }
        div.scroll {
            table.list #outlets {
                thead { tr {
                    th { "Outlet" }
                    th.num { (lang.t("Penjualan hari ini", "Sales today")) }
                    th.num { (lang.t("Transaksi", "Transactions")) }
                    th.num { (lang.t("Rata-rata", "Average")) }
                    th.num { (lang.t("Kemarin", "Yesterday")) }
                    th.num { (lang.t("Minggu lalu", "Last week")) }
                } }
                tbody {
                    @for r in &rows {
                        tr data-store=(r.store_id) {
                            td { a href={"/toko/" (r.store_id)} { (r.name) } }
                            td.num.net { (rupiah(r.net_today)) }
                            td.num.tx { (r.tx_today) }
                            td.num { (rupiah(basket(r.net_today, r.tx_today))) }
                            td.num { (rupiah(r.net_yesterday)) }
                            td.num { (rupiah(r.net_week)) }
                        }
                    }
                }
                tfoot { tr {
                    td { (lang.t("Semua outlet", "All outlets")) }
                    td.num #total-net { (rupiah(net)) }
                    td.num #total-tx { (tx) }
                    td.num { (rupiah(basket(net, tx))) }
                    td.num { (rupiah(net_y)) }
                    td.num { (rupiah(net_w)) }
                } }
            }
        }
    };
    Ok(page(
        lang,
        lang.t("Ringkasan", "Overview"),
        Some((&tenant_name, claims.role)),
        body,
    )
    .into_response())
}

/// `rows` under `header` as a CSV download named `file` (numbers plain, for a
/// spreadsheet).
fn csv_download<const N: usize>(
    file: &str,
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Result<Response, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = || -> Result<(), csv::Error> {
        out.write_record(header)?;
        for row in rows {
            out.write_record(row)?;
        }
        out.flush()?;
        Ok(())
    };
    write().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        out.get_ref().clone(),
    )
        .into_response())
}

/// The Ringkasan table as CSV.
async fn summary_csv(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let (_, rows) = summary(&state, claims.tenant).await?;
    csv_download(
        "ringkasan.csv",
        [
            "store_id",
            "store",
            "transactions_today",
            "sales_today",
            "transactions_yesterday",
            "sales_yesterday",
            "transactions_last_week",
            "sales_last_week",
        ],
        rows.iter().map(|r| {
            [
                r.store_id.to_string(),
                r.name.clone(),
                r.tx_today.to_string(),
                r.net_today.to_string(),
                r.tx_yesterday.to_string(),
                r.net_yesterday.to_string(),
                r.tx_week.to_string(),
                r.net_week.to_string(),
            ]
        }),
    )
}

/// Low stock when no minimum is set for a product.
const DEFAULT_MIN_STOCK: f64 = 5.0;

#[derive(Debug, sqlx::FromRow)]
struct TopProduct {
    sku: String,
    name: String,
    qty: f64,
    revenue: i64,
    /// Revenue less quantity × today's cost, when the cost is known.
    margin: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
struct StockLine {
    sku: String,
    name: Option<String>,
    on_hand: f64,
    min_stock: Option<f64>,
    price: Option<i64>,
    /// The device whose write the price is (after concurrent edits: the one that won).
    price_by: Option<String>,
    /// That device's till code, when it is one of the outlet's tills.
    price_till: Option<String>,
}

impl StockLine {
    fn oversold(&self) -> bool {
        self.on_hand < 0.0
    }

    fn low(&self) -> bool {
        self.on_hand <= self.min_stock.unwrap_or(DEFAULT_MIN_STOCK)
    }
}

/// An outlet of the caller's tenant, by its id in the URL (`None`: not theirs, or none).
async fn outlet_of(
    state: &ApiState,
    tenant: Uuid,
    store: &str,
) -> Result<Option<(Uuid, String, String)>, ApiError> {
    let Ok(store) = Uuid::parse_str(store) else {
        return Ok(None);
    };
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT st.name, t.name FROM stores st JOIN tenants t ON t.tenant_id = st.tenant_id
          WHERE st.store_id = $1",
    )
    .bind(store)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found.map(|(name, tenant_name)| (store, name, tenant_name)))
}

/// The 404 page for an outlet (or a till of it) that is not this tenant's, or not at all.
fn not_found(lang: Lang) -> Response {
    let body = html! { h1 { (lang.t("Outlet tidak ditemukan", "Outlet not found")) } p { a href="/" { (lang.t("Kembali", "Back")) } } };
    (
        StatusCode::NOT_FOUND,
        page(lang, lang.t("Tidak ditemukan", "Not found"), None, body),
    )
        .into_response()
}

/// The best sellers of the last 30 days, by revenue.
async fn top_products(
    state: &ApiState,
    tenant: Uuid,
    store: Uuid,
    limit: i64,
) -> Result<Vec<TopProduct>, ApiError> {
    let (today, _, _) = days();
    let from = today.checked_sub_days(Days::new(29)).unwrap_or(today);
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let rows = sqlx::query_as(
        "SELECT l.sku, (array_agg(l.name ORDER BY s.created_at DESC))[1] AS name,
                sum(COALESCE(l.stock_qty, l.qty))::float8 AS qty, sum(l.line_total)::int8 AS revenue,
                (sum(l.line_total) - sum(COALESCE(l.stock_qty, l.qty))
                    * max(COALESCE(c.avg_cost, p.cost)))::int8 AS margin
           FROM sale_lines l
           JOIN sales s ON s.sale_id = l.sale_id AND s.store_id = $1
           LEFT JOIN products p ON p.store_id = $1 AND p.product_id = l.product_id
           LEFT JOIN product_costs c ON c.store_id = $1 AND c.sku = l.sku
          WHERE l.store_id = $1 AND s.status <> 'voided' AND s.business_date BETWEEN $2 AND $3
          GROUP BY l.sku ORDER BY revenue DESC, l.sku LIMIT $4",
    )
    .bind(store)
    .bind(from)
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Stock of an outlet: oversold first, then low (at or under the product's minimum),
/// then the rest, each by SKU.
async fn stock_lines(
    state: &ApiState,
    tenant: Uuid,
    store: Uuid,
) -> Result<Vec<StockLine>, ApiError> {
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let rows = sqlx::query_as(
        "SELECT l.sku, p.name, l.on_hand::float8 AS on_hand, p.min_stock::float8 AS min_stock,
                p.price, p.price_by, ts.till_code AS price_till
           FROM stock_levels l
           LEFT JOIN LATERAL (SELECT name, min_stock, price, price_by FROM products p
                               WHERE p.store_id = l.store_id AND p.sku = l.sku
                               ORDER BY p.updated_at_ms DESC LIMIT 1) p ON true
           LEFT JOIN till_seen ts ON ts.store_id = l.store_id AND ts.device_id = p.price_by
          WHERE l.store_id = $1
          ORDER BY (l.on_hand < 0) DESC,
                   (l.on_hand <= COALESCE(p.min_stock, $2::float8::numeric)) DESC, l.sku",
    )
    .bind(store)
    .bind(DEFAULT_MIN_STOCK)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

async fn outlet_csv(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((store, what)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let Some((store, _, _)) = outlet_of(&state, claims.tenant, &store).await? else {
        return Err(ApiError::not_found("no such outlet"));
    };
    match what.as_str() {
        "terlaris.csv" => {
            let rows = top_products(&state, claims.tenant, store, 1000).await?;
            csv_download(
                "terlaris.csv",
                ["sku", "name", "qty", "revenue", "margin"],
                rows.into_iter().map(|r| {
                    [
                        r.sku,
                        r.name,
                        r.qty.to_string(),
                        r.revenue.to_string(),
                        r.margin.map(|m| m.to_string()).unwrap_or_default(),
                    ]
                }),
            )
        }
        "stok.csv" => {
            let rows = stock_lines(&state, claims.tenant, store).await?;
            csv_download(
                "stok.csv",
                ["sku", "name", "on_hand", "min_stock", "status"],
                rows.into_iter().map(|r| {
                    let status = if r.oversold() {
                        "oversold"
                    } else if r.low() {
                        "low"
                    } else {
                        "ok"
                    };
                    [
                        r.sku,
                        r.name.unwrap_or_default(),
                        r.on_hand.to_string(),
                        r.min_stock.map(|m| m.to_string()).unwrap_or_default(),
                        status.to_owned(),
                    ]
                }),
            )
        }
        "hari.csv" => {
            let day = outlet_day(&state, claims.tenant, store).await?;
            let sections = [
                ("hour", day.by_hour),
                ("day", day.by_day),
                ("till", day.by_till),
                ("cashier", day.by_cashier),
                ("method", day.by_method),
            ];
            csv_download(
                "hari.csv",
                ["section", "key", "transactions", "sales"],
                sections.into_iter().flat_map(|(section, rows)| {
                    rows.into_iter().map(move |b| {
                        [
                            section.to_owned(),
                            b.key,
                            b.tx.to_string(),
                            b.net.to_string(),
                        ]
                    })
                }),
            )
        }
        _ => Err(ApiError::not_found("no such export")),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Bucket {
    key: String,
    tx: i64,
    net: i64,
}

/// An outlet's day: today by hour, the last 30 days, and today by till, cashier and
/// payment method (sales not voided, net of refunds).
struct OutletDay {
    by_hour: Vec<Bucket>,
    by_day: Vec<Bucket>,
    by_till: Vec<Bucket>,
    by_cashier: Vec<Bucket>,
    by_method: Vec<Bucket>,
}

async fn outlet_day(state: &ApiState, tenant: Uuid, store: Uuid) -> Result<OutletDay, ApiError> {
    let (today, _, _) = days();
    let month_ago = today.checked_sub_days(Days::new(29)).unwrap_or(today);
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let by_hour: Vec<Bucket> = sqlx::query_as(
        "SELECT lpad(extract(hour FROM created_at AT TIME ZONE 'Asia/Jakarta')::int::text, 2, '0') AS key,
                count(*)::int8 AS tx, sum(total - refunded)::int8 AS net
           FROM sales WHERE store_id = $1 AND business_date = $2 AND status <> 'voided'
          GROUP BY 1 ORDER BY 1",
    )
    .bind(store)
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    let by_day: Vec<Bucket> = sqlx::query_as(
        "SELECT to_char(d, 'MM-DD') AS key, count(s.sale_id)::int8 AS tx,
                COALESCE(sum(s.total - s.refunded), 0)::int8 AS net
           FROM generate_series($3::date, $2::date, interval '1 day') AS d
           LEFT JOIN sales s ON s.store_id = $1 AND s.business_date = d::date AND s.status <> 'voided'
                            -- The range again, so the index bounds the scan.
                            AND s.business_date BETWEEN $3 AND $2
          GROUP BY d ORDER BY d",
    )
    .bind(store)
    .bind(today)
    .bind(month_ago)
    .fetch_all(&mut *tx)
    .await?;
    let by_till: Vec<Bucket> = sqlx::query_as(
        "SELECT till_code AS key, count(*)::int8 AS tx, sum(total - refunded)::int8 AS net
           FROM sales WHERE store_id = $1 AND business_date = $2 AND status <> 'voided'
          GROUP BY 1 ORDER BY net DESC, key",
    )
    .bind(store)
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    let by_cashier: Vec<Bucket> = sqlx::query_as(
        "SELECT COALESCE(NULLIF(cashier, ''), '—') AS key, count(*)::int8 AS tx,
                sum(total - refunded)::int8 AS net
           FROM sales WHERE store_id = $1 AND business_date = $2 AND status <> 'voided'
          GROUP BY 1 ORDER BY net DESC, key",
    )
    .bind(store)
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    // Non-cash payments count at their amount; cash is what remains of the total (the
    // cash tendered includes the change given back).
    let by_method: Vec<Bucket> = sqlx::query_as(
        "SELECT COALESCE(e->>'method', 'cash') AS key, count(DISTINCT s.sale_id)::int8 AS tx,
                COALESCE(sum(CASE WHEN COALESCE(e->>'method', 'cash') = 'cash'
                    THEN s.total - s.refunded - COALESCE((SELECT sum((x->>'amount')::int8)
                           FROM jsonb_array_elements(s.payments) x WHERE x->>'method' <> 'cash'), 0)
                    ELSE (e->>'amount')::int8 END), 0)::int8 AS net
           FROM sales s LEFT JOIN LATERAL jsonb_array_elements(s.payments) e ON true
          WHERE s.store_id = $1 AND s.business_date = $2 AND s.status <> 'voided'
          GROUP BY 1 ORDER BY net DESC, key",
    )
    .bind(store)
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(OutletDay {
        by_hour,
        by_day,
        by_till,
        by_cashier,
        by_method,
    })
}

async fn outlet(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(store): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    // What a price change just did (`?harga=SKU:PRICE:N`: N outlets written).
    let lang_now = Lang::of(&headers);
    let notice = query.as_deref().and_then(|q| {
        if let Some(why) = q.strip_prefix("galat=") {
            return Some(match why {
                "sku" => lang_now
                    .t(
                        "SKU itu tidak ada di katalog outlet ini",
                        "That SKU is not in this outlet's catalog",
                    )
                    .to_owned(),
                "harga" => lang_now
                    .t("Harga harus angka rupiah", "A price is a number of rupiah")
                    .to_owned(),
                _ => lang_now
                    .t("Harga belum tersimpan; coba lagi", "Not saved; try again")
                    .to_owned(),
            });
        }
        let v = q.strip_prefix("harga=")?;
        let mut parts = v.splitn(3, ':');
        let (sku, price, n) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("✓ {sku}: Rp{price} → {n} outlet"))
    });
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let Some((store, name, tenant_name)) = outlet_of(&state, claims.tenant, &store).await? else {
        return Ok(not_found(lang));
    };
    let top = top_products(&state, claims.tenant, store, 10).await?;
    let relay_id = state.relay.as_ref().map(|r| r.device_id().to_string());
    let stock = stock_lines(&state, claims.tenant, store).await?;
    let (today, _, _) = days();
    let OutletDay {
        by_hour,
        by_day,
        by_till,
        by_cashier,
        by_method,
    } = outlet_day(&state, claims.tenant, store).await?;
    let by_method: Vec<Bucket> = by_method
        .into_iter()
        .map(|b| Bucket {
            key: method_label(&b.key, lang),
            ..b
        })
        .collect();
    let net: i64 = by_till.iter().map(|b| b.net).sum();
    let count: i64 = by_till.iter().map(|b| b.tx).sum();
    let table = |title: &str, first: &str, rows: &[Bucket]| {
        html! {
            div.card {
                h2 { (title) }
                table.list {
                    thead { tr { th { (first) } th.num { (lang.t("Transaksi", "Transactions")) } th.num { (lang.t("Penjualan", "Sales")) } } }
                    tbody {
                        @for b in rows { tr { td { (b.key) } td.num { (b.tx) } td.num { (rupiah(b.net)) } } }
                        @if rows.is_empty() { tr { td.muted colspan="3" { (lang.t("Belum ada penjualan hari ini", "No sales today yet")) } } }
                    }
                }
            }
        }
    };
    let hours: Vec<(String, i64)> = (6..24)
        .map(|h| {
            let key = format!("{h:02}");
            let net = by_hour.iter().find(|b| b.key == key).map_or(0, |b| b.net);
            (key, net)
        })
        .collect();
    let days_points: Vec<(String, i64)> = by_day.iter().map(|b| (b.key.clone(), b.net)).collect();
    let body = html! {
        p { a href="/" { "← " (lang.t("Ringkasan", "Overview")) } }
        div.tools {
            h1 #outlet-name { (name) " · " (today) }
            a.btn href={"/toko/" (store) "/hari.csv"} download { (lang.t("Unduh CSV hari ini", "Download today's CSV")) }
        }
        div.cards {
            (card(lang.t("Penjualan hari ini", "Sales today"), rupiah(net), &[]))
            (card(lang.t("Transaksi", "Transactions"), count.to_string(), &[]))
        }
        @if claims.role == ApiRole::Owner {
            div.card #price-card {
                h2 { (lang.t("Ubah harga", "Change a price")) }
                form #price-form method="post" action={"/toko/" (store) "/harga"} {
                    div.inline {
                        label { "SKU" input name="sku" required maxlength="64" autocomplete="off"; }
                        label { (lang.t("Harga baru (Rp)", "New price (Rp)")) input name="price" inputmode="numeric" required; }
                        label.check { input type="checkbox" name="all" value="1"; " " (lang.t("semua outlet", "every outlet")) }
                        button.primary type="submit" { (lang.t("Simpan", "Save")) }
                    }
                    @if let Some(m) = &notice { p #price-result { (m) } }
                }
                p.muted { small { (lang.t(
                    "Kasir menerima harga baru saat sinkron berikutnya; kasir yang offline saat tersambung lagi.",
                    "Tills get the new price when they next sync; offline tills when they reconnect.")) } }
            }
        }
        div.panels {
            div.card { h2 { (lang.t("Penjualan per jam", "Sales by hour")) } (bars(&hours, lang)) }
            div.card { h2 { (lang.t("30 hari terakhir", "Last 30 days")) } (bars(&days_points, lang)) }
            (table(lang.t("Metode pembayaran", "Payment methods"), lang.t("Metode", "Method"), &by_method))
            (table(lang.t("Per mesin kasir", "By till"), lang.t("Mesin", "Till"), &by_till))
            (table(lang.t("Per kasir", "By cashier"), lang.t("Kasir", "Cashier"), &by_cashier))
            div.card {
                div.tools {
                    h2 { (lang.t("Produk terlaris · 30 hari", "Best sellers · 30 days")) }
                    a.btn href={"/toko/" (store) "/terlaris.csv"} download { "CSV" }
                }
                div.scroll { table.list #top {
                    thead { tr { th { (lang.t("Produk", "Product")) } th.num { (lang.t("Terjual", "Sold")) } th.num { (lang.t("Penjualan", "Sales")) } th.num { (lang.t("Margin", "Margin")) } } }
                    tbody {
                        @for p in &top { tr data-sku=(p.sku) {
                            td { (p.name) br; small.muted { (p.sku) } }
                            td.num { (p.qty) }
                            td.num { (rupiah(p.revenue)) }
                            td.num { @match p.margin { Some(m) => (rupiah(m)), None => span.muted { "—" } } }
                        } }
                        @if top.is_empty() { tr { td.muted colspan="4" { (lang.t("Belum ada penjualan", "No sales yet")) } } }
                    }
                } }
                p.muted { small { (lang.t("Margin dihitung dengan harga beli rata-rata (atau harga pokok di katalog).", "Margin uses the average purchase cost (or the catalog's cost).")) } }
            }
            div.card {
                div.tools {
                    h2 { (lang.t("Stok", "Stock")) }
                    a.btn href={"/toko/" (store) "/stok.csv"} download { "CSV" }
                }
                div.scroll { table.list #stock {
                    thead { tr { th { (lang.t("Produk", "Product")) } th.num { (lang.t("Harga", "Price")) } th.num { (lang.t("Stok", "On hand")) } th.num { (lang.t("Minimum", "Minimum")) } th { } } }
                    tbody {
                        @for l in &stock { tr data-sku=(l.sku) {
                            td { (l.name.as_deref().unwrap_or("—")) br; small.muted { (l.sku) } }
                            td.num.price {
                                @if let Some(p) = l.price { (rupiah(p)) }
                                @if let Some(by) = &l.price_by {
                                    br; small.muted.price-by {
                                        (lang.t("oleh ", "by "))
                                        @if relay_id.as_deref() == Some(by.as_str()) { (lang.t("kantor pusat", "head office")) }
                                        @else if let Some(t) = &l.price_till { (t) }
                                        @else { (by.get(..8).unwrap_or(by)) "…" }
                                    }
                                }
                            }
                            td.num { (l.on_hand) }
                            td.num { @match l.min_stock { Some(m) => (m), None => span.muted { (DEFAULT_MIN_STOCK) } } }
                            td { @if l.oversold() { span.badge.warn { (lang.t("Minus", "Oversold")) } }
                                 @else if l.low() { span.badge.low { (lang.t("Menipis", "Low")) } } }
                        } }
                    }
                } }
            }
        }
    };
    Ok(page(lang, &name, Some((&tenant_name, claims.role)), body).into_response())
}

/// A payment method as a shop owner names it.
fn method_label(method: &str, lang: Lang) -> String {
    match method {
        "cash" | "tunai" => lang.t("Tunai", "Cash").to_owned(),
        "qris" => "QRIS".to_owned(),
        "card" => lang.t("Kartu", "Card").to_owned(),
        "transfer" => "Transfer".to_owned(),
        "ewallet" => "E-wallet".to_owned(),
        other => other.to_owned(),
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AlertRow {
    raised_at: chrono::DateTime<chrono::Utc>,
    kind: String,
    store: String,
    message: String,
}

fn alert_kind(kind: &str, lang: Lang) -> &'static str {
    match kind {
        "oversold" => lang.t("Stok minus", "Oversold"),
        "low_stock" => lang.t("Stok menipis", "Low stock"),
        "void_rate" => lang.t("Banyak pembatalan", "Many voids"),
        "outbox_backlog" => lang.t("Antrean Kafka", "Kafka backlog"),
        "till_silent" => lang.t("Kasir tidak sinkron", "Till not syncing"),
        _ => lang.t("Lainnya", "Other"),
    }
}

/// The tenant's latest alerts (what webhooks and Kafka received too).
async fn alerts_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let tenant_name = tenant_name(&mut tx, claims.tenant).await?;
    let rows: Vec<AlertRow> = sqlx::query_as(
        "SELECT a.raised_at, a.kind, COALESCE(st.name, a.store_id::text) AS store, a.message
           FROM alerts a LEFT JOIN stores st ON st.store_id = a.store_id
          ORDER BY a.raised_at DESC LIMIT 200",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let body = html! {
        h1 { (lang.t("Peringatan", "Alerts")) }
        div.scroll { table.list #alerts {
            thead { tr { th { (lang.t("Waktu (WIB)", "Time (WIB)")) } th { "Outlet" } th { (lang.t("Jenis", "Kind")) } th { (lang.t("Keterangan", "Detail")) } } }
            tbody {
                @for a in &rows { tr data-kind=(a.kind) {
                    td { ((a.raised_at + chrono::TimeDelta::hours(7)).format("%d-%m %H:%M")) }
                    td { (a.store) }
                    td { (alert_kind(&a.kind, lang)) }
                    td { (a.message) }
                } }
                @if rows.is_empty() { tr { td.muted colspan="4" { (lang.t("Belum ada peringatan", "No alerts yet")) } } }
            }
        } }
    };
    Ok(page(
        lang,
        lang.t("Peringatan", "Alerts"),
        Some((tenant_name.as_deref().unwrap_or_default(), claims.role)),
        body,
    )
    .into_response())
}

/// One month of one outlet's taxed sales.
#[derive(Debug, sqlx::FromRow)]
struct TaxMonth {
    month: String,
    store_id: Uuid,
    store: String,
    tax_kind: String,
    sales: i64,
    dpp: i64,
    dpp_other: i64,
    tax: i64,
    refunded: i64,
}

/// The month a tax page shows: `?bulan=YYYY-MM`, else the current month (WIB).
fn tax_month(query: Option<&str>) -> NaiveDate {
    query
        .and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "bulan")
                .map(|(_, v)| v.to_owned())
        })
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .unwrap_or_else(|| {
            let (today, _, _) = days();
            today.with_day(1).unwrap_or(today)
        })
}

/// One month's taxed sales per outlet and tax (sales not voided, by business date;
/// `refunded` is what was paid back of them, tax included).
async fn tax_months(
    state: &ApiState,
    tenant: Uuid,
    month: NaiveDate,
) -> Result<(String, Vec<TaxMonth>), ApiError> {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let name = tenant_name(&mut tx, tenant).await?;
    let rows = sqlx::query_as(
        "SELECT $3 AS month, a.store_id, st.name AS store, a.tax_kind, a.sales, a.dpp,
                a.dpp_other, a.tax, a.refunded
           FROM (SELECT store_id, tax_kind, sum(n)::int8 AS sales,
                        sum(dpp)::int8 AS dpp, sum(dpp_other)::int8 AS dpp_other,
                        sum(tax)::int8 AS tax, sum(refunded)::int8 AS refunded
                   FROM (SELECT store_id, tax_kind, 1 AS n, dpp, dpp_other, tax, refunded
                           FROM sales
                          WHERE status <> 'voided' AND tax_kind NOT IN ('none', 'mixed')
                            AND business_date >= $1 AND business_date < $2
                         UNION ALL
                         -- Receipts taxed under several rules, a group at a time; exempt
                         -- goods as their own row; a refund goes with the largest group.
                         SELECT t.store_id,
                                CASE WHEN t.code = 'exempt' THEN 'exempt' ELSE t.tax_kind END,
                                -- A sale counts once per kind (two PPN groups: once).
                                CASE WHEN row_number() OVER (
                                         PARTITION BY t.sale_id,
                                             CASE WHEN t.code = 'exempt' THEN 'exempt'
                                                  ELSE t.tax_kind END
                                         ORDER BY t.code) = 1
                                     THEN 1 ELSE 0 END,
                                CASE WHEN t.code = 'exempt' THEN t.base ELSE t.dpp END,
                                CASE WHEN t.code = 'exempt' THEN t.base ELSE t.dpp_other END,
                                t.tax,
                                CASE WHEN row_number() OVER (PARTITION BY t.sale_id
                                                             ORDER BY t.base DESC, t.code) = 1
                                     THEN s.refunded ELSE 0 END
                           FROM sale_taxes t JOIN sales s ON s.sale_id = t.sale_id
                          WHERE s.status <> 'voided' AND s.tax_kind = 'mixed'
                            AND s.business_date >= $1 AND s.business_date < $2
                            AND (t.tax_kind <> 'none' OR t.code = 'exempt')) u
                  GROUP BY store_id, tax_kind) a
           JOIN stores st ON st.store_id = a.store_id
          ORDER BY st.name, a.tax_kind",
    )
    .bind(month)
    .bind(next)
    .bind(month.format("%Y-%m").to_string())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((name.unwrap_or_default(), rows))
}

/// A tax report row's kind as the page names it.
fn tax_kind_label(lang: Lang, kind: &str) -> String {
    match kind {
        "exempt" => lang.t("Dibebaskan PPN", "PPN-exempt").to_owned(),
        other => other.to_uppercase(),
    }
}

/// The monthly tax report (PPN: DPP, DPP nilai lain, PPN; PBJT: its base and tax;
/// PPN-exempt goods of PKP outlets: their amount).
async fn tax_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let month = tax_month(query.as_deref());
    let (tenant_name, rows) = tax_months(&state, claims.tenant, month).await?;
    let shown = month.format("%Y-%m").to_string();
    let step = |m: Option<NaiveDate>| m.map(|m| m.format("%Y-%m").to_string());
    let (prev, next) = (
        step(month.checked_sub_months(chrono::Months::new(1))),
        step(month.checked_add_months(chrono::Months::new(1))),
    );
    let body = html! {
        div.tools {
            h1 { (lang.t("Laporan pajak bulanan", "Monthly tax report")) " · " (shown) }
            span {
                @if let Some(p) = &prev { a.btn href={"/pajak?bulan=" (p)} { "← " (p) } " " }
                @if let Some(n) = &next { a.btn href={"/pajak?bulan=" (n)} { (n) " →" } " " }
                a.btn href={"/pajak.csv?bulan=" (shown)} download { (lang.t("Unduh CSV", "Download CSV")) }
            }
        }
        div.scroll { table.list #tax {
            thead { tr {
                th { (lang.t("Bulan", "Month")) } th { "Outlet" } th { (lang.t("Pajak", "Tax")) }
                th.num { (lang.t("Transaksi", "Sales")) } th.num { "DPP" } th.num { (lang.t("DPP nilai lain", "DPP (other value)")) }
                th.num { (lang.t("Pajak terutang", "Tax")) } th.num { (lang.t("Diretur", "Refunded")) }
            } }
            tbody {
                @for r in &rows { tr data-month=(r.month) data-store=(r.store_id) data-kind=(r.tax_kind) {
                    td { (r.month) } td { (r.store) } td.kind { (tax_kind_label(lang, &r.tax_kind)) }
                    td.num { (r.sales) } td.num.dpp { (rupiah(r.dpp)) } td.num { (rupiah(r.dpp_other)) }
                    td.num.tax { (rupiah(r.tax)) } td.num { (rupiah(r.refunded)) }
                } }
                @if rows.is_empty() { tr { td.muted colspan="8" { (lang.t("Belum ada penjualan kena pajak", "No taxed sales yet")) } } }
            }
        } }
        p.muted { small { (lang.t(
            "Penjualan yang dibatalkan tidak dihitung; retur ditampilkan terpisah (termasuk pajaknya).",
            "Voided sales are left out; refunds are shown apart (tax included).")) } }
    };
    Ok(page(
        lang,
        lang.t("Pajak", "Tax"),
        Some((&tenant_name, claims.role)),
        body,
    )
    .into_response())
}

async fn tax_csv(
    State(state): State<ApiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let month = tax_month(query.as_deref());
    let (_, rows) = tax_months(&state, claims.tenant, month).await?;
    csv_download(
        "pajak.csv",
        [
            "month",
            "store_id",
            "store",
            "tax",
            "sales",
            "dpp",
            "dpp_other",
            "tax_amount",
            "refunded",
        ],
        rows.into_iter().map(|r| {
            [
                r.month,
                r.store_id.to_string(),
                r.store,
                r.tax_kind,
                r.sales.to_string(),
                r.dpp.to_string(),
                r.dpp_other.to_string(),
                r.tax.to_string(),
                r.refunded.to_string(),
            ]
        }),
    )
}

#[derive(Debug, sqlx::FromRow)]
struct SeenTill {
    store_id: Uuid,
    store: String,
    device_id: String,
    till_code: String,
    role: String,
    last_seen: chrono::DateTime<chrono::Utc>,
    connected: bool,
    revoked: bool,
    sales_today: i64,
    /// Seconds between the newest sale of today leaving the till and reaching here.
    lag_s: Option<f64>,
}

/// Each outlet's tills: connected now or when they last synced, today's sales, and how
/// long today's newest sale took to arrive.
async fn devices_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let (today, _, _) = days();
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let tenant_name = tenant_name(&mut tx, claims.tenant).await?;
    let rows: Vec<SeenTill> = sqlx::query_as(
        "SELECT t.store_id, st.name AS store, t.device_id, t.till_code, t.role, t.last_seen,
                t.connected, t.revoked, COALESCE(s.sales, 0)::int8 AS sales_today, s.lag_s
           FROM till_seen t JOIN stores st ON st.store_id = t.store_id
           LEFT JOIN LATERAL (
                SELECT count(*) AS sales,
                       (array_agg(extract(epoch FROM materialised_at - created_at)::float8
                                  ORDER BY created_at DESC))[1] AS lag_s
                  FROM sales WHERE store_id = t.store_id AND till_code = t.till_code
                   AND business_date = $1) s ON true
          ORDER BY st.name, t.till_code",
    )
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let now = chrono::Utc::now();
    let body = html! {
        h1 { (lang.t("Perangkat", "Devices")) }
        div.scroll { table.list #devices {
            thead { tr {
                th { "Outlet" } th { (lang.t("Kasir", "Till")) } th { (lang.t("Status", "Status")) }
                th.num { (lang.t("Transaksi hari ini", "Sales today")) } th.num { (lang.t("Jeda sinkron", "Sync lag")) }
                th {}
            } }
            tbody {
                @for r in &rows { tr data-device=(r.device_id) data-store=(r.store_id) {
                    td { (r.store) }
                    td { (if r.till_code.is_empty() { r.role.as_str() } else { r.till_code.as_str() }) br; small.muted { (r.device_id.get(..12).unwrap_or(&r.device_id)) "…" } }
                    td.status {
                        @if r.revoked { span.badge.warn { (lang.t("Dicabut", "Revoked")) } }
                        @else if r.connected { span.badge.ok { (lang.t("Tersambung", "Connected")) } }
                        @else {
                            @let hours = (now - r.last_seen).num_minutes() as f64 / 60.0;
                            span class=(if hours >= 6.0 { "badge warn" } else { "badge low" }) {
                                (lang.t("Terakhir", "Last seen")) " "
                                ((r.last_seen + chrono::TimeDelta::hours(7)).format("%d-%m %H:%M")) " WIB"
                            }
                        }
                    }
                    td.num { (r.sales_today) }
                    td.num { @match r.lag_s { Some(s) => (format!("{s:.1} s")), None => span.muted { "—" } } }
                    td {
                        @if claims.role == ApiRole::Owner && !r.revoked && !matches!(r.role.as_str(), "owner" | "relay") {
                            // A GET to a confirmation page first: revoking cannot be undone.
                            form method="get" action="/perangkat/cabut" {
                                input type="hidden" name="store_id" value=(r.store_id);
                                input type="hidden" name="device_id" value=(r.device_id);
                                button.btn.revoke type="submit" { (lang.t("Cabut (hilang)", "Revoke (lost)")) }
                            }
                        }
                    }
                } }
                @if rows.is_empty() { tr { td.muted colspan="6" { (lang.t("Belum ada kasir yang sinkron", "No till has synced yet")) } } }
            }
        } }
    };
    Ok(page(
        lang,
        lang.t("Perangkat", "Devices"),
        Some((tenant_name.as_deref().unwrap_or_default(), claims.role)),
        body,
    )
    .into_response())
}

/// One void or refund, with who did it and who approved it.
#[derive(Debug, sqlx::FromRow)]
struct Adjustment {
    at: chrono::DateTime<chrono::Utc>,
    store: String,
    receipt_no: Option<String>,
    kind: String,
    amount: i64,
    reason: String,
    cashier: Option<String>,
    approved_by: Option<String>,
    till_code: Option<String>,
}

/// The last 30 days' voids and refunds of every outlet, newest first.
async fn adjustments(
    state: &ApiState,
    tenant: Uuid,
) -> Result<(String, Vec<Adjustment>), ApiError> {
    let mut tx = tenant_tx(&state.pool, tenant).await?;
    let name = tenant_name(&mut tx, tenant).await?;
    let rows = sqlx::query_as(
        "SELECT a.at, st.name AS store, s.receipt_no, a.kind,
                CASE WHEN a.kind = 'void' THEN COALESCE(s.total, 0) ELSE a.amount END AS amount,
                a.reason, a.cashier, a.approved_by, a.till_code
           FROM sale_adjustments a
           JOIN stores st ON st.store_id = a.store_id
           LEFT JOIN sales s ON s.sale_id = a.sale_id
          WHERE a.at > clock_timestamp() - interval '30 days'
          ORDER BY a.at DESC LIMIT 1000",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((name.unwrap_or_default(), rows))
}

fn wib(at: chrono::DateTime<chrono::Utc>) -> String {
    (at + chrono::TimeDelta::hours(7))
        .format("%d-%m %H:%M")
        .to_string()
}

async fn audit_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    let (tenant_name, rows) = adjustments(&state, claims.tenant).await?;
    let body = html! {
        div.tools {
            h1 { (lang.t("Batal & retur · 30 hari", "Voids & refunds · 30 days")) }
            a.btn href="/batal-retur.csv" download { (lang.t("Unduh CSV", "Download CSV")) }
        }
        div.scroll { table.list #audit {
            thead { tr {
                th { (lang.t("Waktu (WIB)", "Time (WIB)")) } th { "Outlet" } th { (lang.t("Struk", "Receipt")) }
                th { (lang.t("Jenis", "Kind")) } th.num { (lang.t("Nilai", "Amount")) } th { (lang.t("Alasan", "Reason")) }
                th { (lang.t("Kasir", "Cashier")) } th { (lang.t("Disetujui", "Approved by")) }
            } }
            tbody {
                @for a in &rows { tr data-kind=(a.kind) {
                    td { (wib(a.at)) }
                    td { (a.store) @if let Some(t) = &a.till_code { br; small.muted { (t) } } }
                    td { (a.receipt_no.as_deref().unwrap_or("—")) }
                    td { @if a.kind == "void" { (lang.t("Batal", "Void")) } @else { (lang.t("Retur", "Refund")) } }
                    td.num { (rupiah(a.amount)) }
                    td { (a.reason) }
                    td { (a.cashier.as_deref().unwrap_or("—")) }
                    td.approver { @match &a.approved_by { Some(p) => (p), None => span.muted { "—" } } }
                } }
                @if rows.is_empty() { tr { td.muted colspan="8" { (lang.t("Tidak ada pembatalan atau retur", "No voids or refunds")) } } }
            }
        } }
    };
    Ok(page(
        lang,
        lang.t("Batal & retur", "Voids & refunds"),
        Some((&tenant_name, claims.role)),
        body,
    )
    .into_response())
}

async fn audit_csv(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let (_, rows) = adjustments(&state, claims.tenant).await?;
    csv_download(
        "batal-retur.csv",
        [
            "at",
            "store",
            "till",
            "receipt_no",
            "kind",
            "amount",
            "reason",
            "cashier",
            "approved_by",
        ],
        rows.into_iter().map(|a| {
            [
                a.at.to_rfc3339(),
                a.store,
                a.till_code.unwrap_or_default(),
                a.receipt_no.unwrap_or_default(),
                a.kind,
                a.amount.to_string(),
                a.reason,
                a.cashier.unwrap_or_default(),
                a.approved_by.unwrap_or_default(),
            ]
        }),
    )
}

#[derive(Deserialize)]
struct PriceForm {
    sku: String,
    price: String,
    #[serde(default)]
    all: Option<String>,
}

/// `POST /toko/{store}/harga` (owner): a new price for one outlet or every outlet of the
/// tenant, written by the relay into each catalog ([`crate::net::Relay::edit_product`]).
async fn set_price(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((store, what)): Path<(String, String)>,
    Form(form): Form<PriceForm>,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    if what != "harga" {
        return Err(ApiError::not_found("no such form"));
    }
    if site != "same-origin" || claims.role != ApiRole::Owner {
        return Err(ApiError::forbidden("only an owner, from this dashboard"));
    }
    let Some((store, _, _)) = outlet_of(&state, claims.tenant, &store).await? else {
        return Err(ApiError::not_found("no such outlet"));
    };
    let failed = |why: &str| -> Result<Response, ApiError> {
        let back = format!("/toko/{store}?galat={why}");
        Ok((StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response())
    };
    // `12.500` and `Rp12.500` are twelve thousand five hundred.
    let digits: String = form.price.chars().filter(char::is_ascii_digit).collect();
    let Ok(price) = digits.parse::<i64>() else {
        return failed("harga");
    };
    let edit = crate::catalog::ProductEdit {
        price: Some(price),
        ..crate::catalog::ProductEdit::default()
    };
    let stores = if form.all.is_some() {
        let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
        let all: Vec<Uuid> = sqlx::query_scalar("SELECT store_id FROM stores")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        all
    } else {
        vec![store]
    };
    let relay = state
        .relay
        .as_ref()
        .ok_or_else(|| ApiError::internal("this dashboard cannot write"))?;
    let sku = form.sku.trim().to_owned();
    let mut written = 0;
    for s in stores {
        match relay
            .edit_product(claims.tenant, kasir_crdt::StoreId(s), &sku, &edit)
            .await
        {
            Ok(_) => written += 1,
            // Another outlet without this SKU is not an error of this one.
            Err(crate::net::HeadOfficeError::Edit(crate::catalog::EditError::UnknownSku(_)))
                if s != store => {}
            Err(crate::net::HeadOfficeError::Edit(crate::catalog::EditError::UnknownSku(_))) => {
                return failed("sku");
            }
            Err(crate::net::HeadOfficeError::Edit(_)) => return failed("harga"),
            Err(e) => {
                tracing::warn!(error = %e, "a price from the dashboard was not written");
                return failed("simpan");
            }
        }
    }
    let back = format!("/toko/{store}?harga={sku}:{price}:{written}");
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response())
}

#[derive(Deserialize)]
struct RevokeForm {
    store_id: Uuid,
    device_id: String,
}

/// `GET /perangkat/cabut` (owner): asks once more before revoking, saying what it does
/// and that it cannot be undone.
async fn revoke_confirm(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(form): Query<RevokeForm>,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let Some(claims) = session(&state, &headers) else {
        return Ok(login_page(lang, None).into_response());
    };
    if claims.role != ApiRole::Owner {
        return Err(ApiError::forbidden("only an owner revokes a till"));
    }
    let Some((store, outlet, tenant_name)) =
        outlet_of(&state, claims.tenant, &form.store_id.to_string()).await?
    else {
        return Ok(not_found(lang));
    };
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let till: Option<(String, String)> = sqlx::query_as(
        "SELECT till_code, role FROM till_seen WHERE store_id = $1 AND device_id = $2",
    )
    .bind(store)
    .bind(&form.device_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some((till_code, role)) = till else {
        return Ok(not_found(lang));
    };
    let till = if till_code.is_empty() {
        role
    } else {
        till_code
    };
    let body = html! {
        h1 { (lang.t("Cabut kasir", "Revoke till")) " " (till) " — " (outlet) }
        div.card #revoke-confirm {
            p { (lang.t(
                "Kasir ini tidak akan bisa sinkron lagi: penjualan yang dibuat di perangkat ini setelah dicabut tidak diterima oleh kasir lain maupun kantor pusat. Penjualan sebelumnya tetap tersimpan. Tindakan ini tidak bisa dibatalkan; perangkat harus diundang ulang.",
                "This till will not sync again: sales rung up on it after the revocation are taken neither by the other tills nor by head office. Its earlier sales stay. This cannot be undone; the device must be invited again.",
            )) }
            p.muted { (lang.t("Perangkat", "Device")) " " code { (form.device_id) } }
            form method="post" action="/perangkat/cabut" {
                input type="hidden" name="store_id" value=(store);
                input type="hidden" name="device_id" value=(form.device_id);
                button.btn.danger #revoke-yes type="submit" { (lang.t("Ya, cabut kasir ini", "Yes, revoke this till")) }
                " "
                a.btn href="/perangkat" { (lang.t("Batal", "Cancel")) }
            }
        }
    };
    Ok(page(
        lang,
        lang.t("Cabut kasir", "Revoke till"),
        Some((&tenant_name, claims.role)),
        body,
    )
    .into_response())
}

/// `POST /perangkat/cabut` (owner): revokes a lost till, then back to Perangkat. Only
/// this dashboard's own page may send it (the browser says so in `Sec-Fetch-Site`;
/// the session cookie is `SameSite=Strict` besides).
async fn revoke(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ApiError> {
    let Some(claims) = session(&state, &headers) else {
        return Err(ApiError::unauthorized("log in first"));
    };
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    if site != "same-origin" || claims.role != ApiRole::Owner {
        return Err(ApiError::forbidden("only an owner, from this dashboard"));
    }
    let Some((store, _, _)) = outlet_of(&state, claims.tenant, &form.store_id.to_string()).await?
    else {
        return Err(ApiError::not_found("no such outlet"));
    };
    let relay = state
        .relay
        .as_ref()
        .ok_or_else(|| ApiError::internal("this dashboard cannot write"))?;
    relay
        .revoke_device(claims.tenant, kasir_crdt::StoreId(store), &form.device_id)
        .await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/perangkat")]).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// The `Set-Cookie` of a login (empty `token`: logged out).
pub(crate) fn session_cookie(token: &str) -> String {
    let age = if token.is_empty() {
        0
    } else {
        crate::users::SESSION.as_secs()
    };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}")
}

async fn log_in(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    match crate::users::log_in(&state.pool, &state.jwt_secret, &form.email, &form.password).await {
        Ok(login) => Ok((
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
                (header::SET_COOKIE, session_cookie(&login.token)),
            ],
        )
            .into_response()),
        Err(crate::users::UserError::BadLogin) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(
                lang,
                Some(lang.t("E-mail atau kata sandi salah", "Wrong e-mail or password")),
            ),
        )
            .into_response()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn log_out() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            (header::SET_COOKIE, session_cookie("")),
        ],
    )
        .into_response()
}

async fn language(Path(code): Path<String>) -> Response {
    let code = if code == "en" { "en" } else { "id" };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            (
                header::SET_COOKIE,
                format!("{LANG_COOKIE}={code}; Path=/; SameSite=Lax; Max-Age=31536000"),
            ),
        ],
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupiah_is_grouped_by_thousands() {
        assert_eq!(rupiah(0), "Rp0");
        assert_eq!(rupiah(1500), "Rp1.500");
        assert_eq!(rupiah(1_234_567), "Rp1.234.567");
        assert_eq!(rupiah(-20_000), "-Rp20.000");
    }

    #[test]
    fn changes_are_percentages_of_the_base() {
        assert_eq!(change(110, 100), Some(("+10%".into(), true)));
        assert_eq!(change(92, 100), Some(("−8%".into(), false)));
        assert_eq!(change(5, 0), None);
    }
}
