//! The relay's head-office HTTP API (axum): reports over the materialised tables.
//!
//! | method and path | response |
//! |---|---|
//! | `GET /v1/health` | `{"status":"ok"}`, or 503 when PostgreSQL does not answer |
//! | `GET /metrics` | Prometheus text (outbox lag, sales, stores; sync, publisher and recognition counters) |
//! | `GET /v1/stores[?date=]` | `{"tenant_id","date","stores":[{"store_id","name","created_at","last_sale_at","sales_today"}]}` |
//! | `GET /v1/reports/daily-sales?store=&from=&to=` | `{"store_id","from","to","days":[{"date","sales","voided","gross","refunded","net","tax"}]}` |
//! | `GET /v1/reports/top-products?store=&from=&to=&limit=` | `{"store_id","from","to","products":[{"sku","name","qty","revenue"}]}` |
//! | `GET /v1/stock?store=` | `{"store_id","stock":[{"sku","name","on_hand","oversold"}]}` |
//! | `GET /v1/alerts?store=&low=` | `{"store_id","low","alerts":[{"kind","sku","name","on_hand"}]}` |
//! | `PUT /v1/stores/{store}/products/{sku}` (owner) | `{"store_id","product_id","sku","name","price","cost","min_stock","barcodes","active"}` |
//! | `POST /v1/login` `{"email","password"}` | `{"token","tenant_id","role"}` and the dashboard's session cookie; 401 when wrong |
//! | `POST /v1/stores/{store}/devices/{device}/revoke` (owner) | `{"store_id","device_id","revoked":true}`: the relay revokes a lost till in the roster; 409 for an owner or relay |
//! | `PUT /v1/products/{sku}` (owner) | `{"sku","stores":[{"store_id","product_id"} or {"store_id","error"}]}`: every store of the tenant |
//!
//! A `PUT` body names what changes: `{"name"?,"price"?,"cost"?,"min_stock"?,"barcode"?,
//! "category"?,"active"?}` (a product not in the catalog yet needs `name` and `price`).
//! The relay writes it into the store's catalog document as a signed author and the
//! tills receive it by sync ([`crate::catalog`]). An analyst's token gets 403 `forbidden`;
//! a product unknown without a name and price is 404 `unknown_sku`; a store whose roster
//! does not hold the relay yet is 409 `conflict`.
//!
//! Everything but health and metrics needs `Authorization: Bearer <jwt>` ([`crate::auth`]);
//! a missing or refused token is 401. Errors have the till API's shape
//! `{"error":{"code","message"}}`: 400 `invalid_request` for a bad or missing parameter,
//! 401 `unauthorized`, 404 `store_not_found`, 500 `internal`, 503 `database_unavailable`.
//!
//! **Tenancy.** Every authenticated request runs in one read-only transaction that first
//! does `SET LOCAL ROLE kasir_api` and sets `kasir.tenant_id` to the token's tenant for
//! that transaction. Row-level security then hides every other tenant's rows; the queries
//! here carry no tenant predicate of their own, so isolation rests on the policy (and the
//! tests prove it through this API). A store of another tenant is therefore
//! indistinguishable from a store that does not exist: both are 404, never 403.
//!
//! Definitions: money is integer rupiah, quantities are JSON numbers. A day's `sales`
//! counts sales not voided, `voided` the voided ones; `gross` and `tax` sum `total` and
//! `tax` of sales not voided, `refunded` sums what was refunded of them, `net` is
//! `gross - refunded`. Top products rank SKUs by the `line_total` of lines of sales not
//! voided. `from`/`to` are inclusive business dates (`YYYY-MM-DD`); by default `to` is
//! today at UTC+9 (so today in every Indonesian zone is inside) and `from` 29 days
//! earlier; a range is at most 366 days. `sales_today` counts the sales not voided of
//! `date`, by default today in WIB (UTC+7).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::auth::{self, ApiRole, Claims};
use crate::catalog::{EditError, ProductEdit};
use crate::metrics::{DbSnapshot, RelayMetrics};
use crate::net::{HeadOfficeError, Relay};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Longest range of days a report covers.
const MAX_RANGE_DAYS: i64 = 366;
/// Default and largest `limit` of top products.
const DEFAULT_TOP: i64 = 10;
const MAX_TOP: i64 = 100;
/// Default `low` threshold of stock alerts.
const DEFAULT_LOW: f64 = 5.0;
/// How long a health check waits for PostgreSQL.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound of one API statement, so a slow report cannot hold a connection forever.
const STATEMENT_TIMEOUT: &str = "SET LOCAL statement_timeout = '15s'";

/// Shared state of the head-office API.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The relay's pool (its own role; requests switch to `kasir_api` per transaction).
    pub pool: PgPool,
    /// The HS256 secret of head-office tokens (`relay_identity.jwt_secret`).
    pub jwt_secret: Arc<Vec<u8>>,
    /// The process's metrics registry (sync, publisher, recognition counters).
    pub metrics: RelayMetrics,
    /// The stores' replicas, through which head office writes the catalog (`None`: the
    /// API only reads, and writes are 503).
    pub relay: Option<Relay>,
}

impl ApiState {
    /// State with a registry of its own.
    pub fn new(pool: PgPool, jwt_secret: Vec<u8>) -> ApiState {
        ApiState {
            pool,
            jwt_secret: Arc::new(jwt_secret),
            metrics: RelayMetrics::new(),
            relay: None,
        }
    }
}

/// The router with every endpoint.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/stores", get(stores))
        .route("/v1/reports/daily-sales", get(daily_sales))
        .route("/v1/reports/top-products", get(top_products))
        .route("/v1/stock", get(stock))
        .route("/v1/alerts", get(alerts))
        .route("/v1/transfers", get(transfers))
        .route(
            "/v1/stores/{store_id}/products/{sku}",
            put(put_store_product),
        )
        .route("/v1/products/{sku}", put(put_tenant_product))
        .route(
            "/v1/stores/{store_id}/devices/{device_id}/revoke",
            axum::routing::post(revoke_device),
        )
        .route(
            "/v1/stores/{store_id}/tills/{till_code}/replace",
            axum::routing::post(replace_till),
        )
        .route(
            "/v1/stores/{store_id}/invites",
            axum::routing::post(invite_till),
        )
        .route("/v1/login", axum::routing::post(login))
        .merge(crate::office::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        // Every request gets an `x-request-id` (the caller's, or a new UUID), answered
        // back and carried by the span everything the request logs is in.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

// Errors -------------------------------------------------------------------------------

/// An error response in the contract's shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(%message, "head-office request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn store_not_found(store: Uuid) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "store_not_found",
            format!("no store {store}"),
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        tracing::error!(error = %e, "head-office API query failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "database error",
        )
    }
}

impl From<HeadOfficeError> for ApiError {
    fn from(e: HeadOfficeError) -> ApiError {
        match &e {
            HeadOfficeError::StoreNotFound(store) => ApiError::store_not_found(store.0),
            HeadOfficeError::UnknownDevice(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            HeadOfficeError::Protected(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            HeadOfficeError::NotInRoster(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            HeadOfficeError::Edit(EditError::UnknownSku(_)) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_sku", e.to_string())
            }
            HeadOfficeError::Edit(_) | HeadOfficeError::Invalid(_) => {
                ApiError::bad_request(e.to_string())
            }
            HeadOfficeError::Relay(inner) => {
                tracing::error!(error = %inner, "head-office catalog write failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store could not be written now; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// `Query` whose rejection answers in the contract's error shape.
struct ApiQuery<T>(T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

// Authentication and the tenant's transaction -------------------------------------------

/// The verified claims of the request's bearer token.
struct Caller(Claims);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // The dashboard's login: the same token, in its cookie.
            let token = crate::office::cookie(&parts.headers, crate::office::SESSION_COOKIE)
                .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
            return auth::verify(&state.jwt_secret, &token)
                .map(Caller)
                .map_err(|e| ApiError::unauthorized(e.to_string()));
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(ApiError::unauthorized(
                    "expected Authorization: Bearer <token>",
                ));
            }
        };
        auth::verify(&state.jwt_secret, token)
            .map(Caller)
            .map_err(|e| ApiError::unauthorized(e.to_string()))
    }
}

/// Opens the request's transaction: read only, as `kasir_api`, scoped to `tenant`.
pub(crate) async fn tenant_tx(
    pool: &PgPool,
    tenant: Uuid,
) -> ApiResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin_with("BEGIN READ ONLY").await?;
    sqlx::query("SET LOCAL ROLE kasir_api")
        .execute(&mut *tx)
        .await?;
    sqlx::query(STATEMENT_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query("SELECT set_config('kasir.tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// 404 unless `store` is visible to the transaction's tenant (row-level security decides).
async fn require_store(tx: &mut Transaction<'static, Postgres>, store: Uuid) -> ApiResult<()> {
    let found: Option<Uuid> = sqlx::query_scalar("SELECT store_id FROM stores WHERE store_id = $1")
        .bind(store)
        .fetch_optional(&mut **tx)
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::store_not_found(store))
}

// Parameters ---------------------------------------------------------------------------

fn parse_store(store: Option<&str>) -> ApiResult<Uuid> {
    let store = store
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing parameter store (a store id)"))?;
    Uuid::parse_str(store)
        .map_err(|_| ApiError::bad_request(format!("store {store:?} is not a store id (UUID)")))
}

fn parse_date(name: &str, value: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("{name} {value:?} is not a date (YYYY-MM-DD)")))
}

/// Today's date at a fixed UTC offset (hours east).
pub(crate) fn today_at(offset_hours: i64) -> NaiveDate {
    (Utc::now() + TimeDelta::hours(offset_hours)).date_naive()
}

/// The inclusive range of a report: defaults, order and size checked.
fn parse_range(from: Option<&str>, to: Option<&str>) -> ApiResult<(NaiveDate, NaiveDate)> {
    let to = match to {
        Some(t) => parse_date("to", t)?,
        None => today_at(9),
    };
    let from = match from {
        Some(f) => parse_date("from", f)?,
        None => to
            .checked_sub_days(Days::new(29))
            .ok_or_else(|| ApiError::bad_request(format!("to {to} is too early")))?,
    };
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from {from} is after to {to}"
        )));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(ApiError::bad_request(format!(
            "range {from}..{to} is longer than {MAX_RANGE_DAYS} days"
        )));
    }
    Ok((from, to))
}

// Public endpoints ---------------------------------------------------------------------

async fn health(State(state): State<ApiState>) -> Response {
    let check = tokio::time::timeout(
        HEALTH_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    match check {
        Ok(Ok(_)) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response(),
        Ok(Err(e)) => {
            // The details (hosts, roles) go to the log, not to an unauthenticated caller.
            tracing::warn!(error = %e, "health check: the database failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable",
            )
            .into_response()
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "database did not answer in time",
        )
        .into_response(),
    }
}

async fn metrics(State(state): State<ApiState>, headers: axum::http::HeaderMap) -> Response {
    type Row = (i64, f64, i64, i64, i64, f64, f64);
    let row: Result<Row, sqlx::Error> = sqlx::query_as(
        "WITH recent AS (
           SELECT GREATEST(EXTRACT(EPOCH FROM materialised_at - created_at), 0)::float8 AS lag
             FROM sales WHERE materialised_at > clock_timestamp() - interval '5 minutes')
         SELECT
           (SELECT count(*) FROM outbox WHERE published_at IS NULL),
           (SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8
              FROM outbox WHERE published_at IS NULL),
           (SELECT count(*) FROM sales),
           (SELECT count(*) FROM stores),
           (SELECT count(*) FROM recent),
           (SELECT COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), 0)::float8 FROM recent),
           (SELECT COALESCE(max(lag), 0)::float8 FROM recent)",
    )
    .fetch_one(&state.pool)
    .await;
    let db = match row {
        Ok((outbox_pending, outbox_oldest_age_s, sales, stores, recent_sales, p50, max)) => {
            Some(DbSnapshot {
                outbox_pending,
                outbox_oldest_age_s,
                sales,
                stores,
                recent_sales,
                materialise_lag_p50_s: p50,
                materialise_lag_max_s: max,
                pool_size: i64::from(state.pool.size()),
                pool_idle: i64::try_from(state.pool.num_idle()).unwrap_or(i64::MAX),
                pool_max: i64::from(state.pool.options().get_max_connections()),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics query failed");
            None
        }
    };
    let text = state.metrics.render(db);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (ctype, body) = kasir_sync::metrics::negotiate(accept, text);
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

// Authenticated endpoints --------------------------------------------------------------

#[derive(Deserialize)]
struct StoresQuery {
    date: Option<String>,
}

#[derive(Serialize, sqlx::FromRow)]
struct StoreRow {
    store_id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_sale_at: Option<DateTime<Utc>>,
    sales_today: i64,
}

async fn stores(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<StoresQuery>,
) -> ApiResult<Response> {
    let date = match q.date.as_deref() {
        Some(d) => parse_date("date", d)?,
        None => today_at(7),
    };
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let stores: Vec<StoreRow> = sqlx::query_as(
        "SELECT s.store_id, s.name, s.created_at,
                (SELECT max(x.created_at) FROM sales x WHERE x.store_id = s.store_id)
                  AS last_sale_at,
                (SELECT count(*) FROM sales x
                  WHERE x.store_id = s.store_id AND x.business_date = $1
                    AND x.status <> 'voided') AS sales_today
           FROM stores s
          ORDER BY s.created_at, s.store_id",
    )
    .bind(date)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(
        axum::Json(json!({"tenant_id": claims.tenant, "date": date, "stores": stores}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct RangeQuery {
    store: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize, sqlx::FromRow)]
struct DayRow {
    date: NaiveDate,
    sales: i64,
    voided: i64,
    gross: i64,
    refunded: i64,
    net: i64,
    tax: i64,
}

async fn daily_sales(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    let store = parse_store(q.store.as_deref())?;
    let (from, to) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    require_store(&mut tx, store).await?;
    let days: Vec<DayRow> = sqlx::query_as(
        "SELECT date, sales, voided, gross, refunded, gross - refunded AS net, tax
           FROM (SELECT d.day AS date,
                        count(s.sale_id) FILTER (WHERE s.status <> 'voided') AS sales,
                        count(s.sale_id) FILTER (WHERE s.status = 'voided') AS voided,
                        COALESCE(sum(s.total) FILTER (WHERE s.status <> 'voided'), 0)::int8
                          AS gross,
                        COALESCE(sum(s.refunded) FILTER (WHERE s.status <> 'voided'), 0)::int8
                          AS refunded,
                        COALESCE(sum(s.tax) FILTER (WHERE s.status <> 'voided'), 0)::int8 AS tax
                   FROM (SELECT $2::date + i AS day
                           FROM generate_series(0, $3::date - $2::date) AS i) d
                   LEFT JOIN sales s ON s.store_id = $1 AND s.business_date = d.day
                                    -- The range again, so the index bounds the scan.
                                    AND s.business_date BETWEEN $2 AND $3
                  GROUP BY d.day) t
          ORDER BY date",
    )
    .bind(store)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(
        axum::Json(json!({"store_id": store, "from": from, "to": to, "days": days}))
            .into_response(),
    )
}

#[derive(Serialize, sqlx::FromRow)]
struct TopRow {
    sku: String,
    name: String,
    qty: f64,
    revenue: i64,
}

async fn top_products(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    let store = parse_store(q.store.as_deref())?;
    let (from, to) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_TOP,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {l:?} must be a whole number from 1 to {MAX_TOP}"
                )));
            }
        },
    };
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    require_store(&mut tx, store).await?;
    let products: Vec<TopRow> = sqlx::query_as(
        "SELECT l.sku,
                (array_agg(l.name ORDER BY s.created_at DESC, l.sale_id DESC))[1] AS name,
                sum(COALESCE(l.stock_qty, l.qty))::float8 AS qty,
                sum(l.line_total)::int8 AS revenue
           FROM sale_lines l
           JOIN sales s ON s.sale_id = l.sale_id
          WHERE l.store_id = $1 AND s.store_id = $1 AND s.status <> 'voided'
            AND s.business_date BETWEEN $2 AND $3
          GROUP BY l.sku
          ORDER BY revenue DESC, l.sku
          LIMIT $4",
    )
    .bind(store)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(
        axum::Json(json!({"store_id": store, "from": from, "to": to, "products": products}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct StockQuery {
    store: Option<String>,
    low: Option<String>,
}

/// Stock levels with the product's current name (the newest product row of the SKU);
/// `kind` says which alert a level would be.
const STOCK_SELECT: &str = "SELECT l.sku, p.name, l.on_hand::float8 AS on_hand,
            l.on_hand < 0 AS oversold,
            CASE WHEN l.on_hand < 0 THEN 'oversold' ELSE 'low_stock' END AS kind
       FROM stock_levels l
       LEFT JOIN LATERAL (SELECT name, active FROM products p
                           WHERE p.store_id = l.store_id AND p.sku = l.sku
                           ORDER BY p.updated_at_ms DESC LIMIT 1) p ON true
      WHERE l.store_id = $1";

#[derive(Serialize, sqlx::FromRow)]
struct StockRow {
    sku: String,
    name: Option<String>,
    on_hand: f64,
    oversold: bool,
}

async fn stock(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<StockQuery>,
) -> ApiResult<Response> {
    let store = parse_store(q.store.as_deref())?;
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    require_store(&mut tx, store).await?;
    let stock: Vec<StockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{STOCK_SELECT} ORDER BY l.sku"
    )))
    .bind(store)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(axum::Json(json!({"store_id": store, "stock": stock})).into_response())
}

#[derive(Serialize, sqlx::FromRow)]
struct AlertRow {
    kind: String,
    sku: String,
    name: Option<String>,
    on_hand: f64,
}

async fn alerts(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<StockQuery>,
) -> ApiResult<Response> {
    let store = parse_store(q.store.as_deref())?;
    let low = match q.low.as_deref() {
        None => DEFAULT_LOW,
        Some(l) => match l.parse::<f64>() {
            Ok(n) if n.is_finite() && (0.0..1e11).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "low {l:?} must be a number of at least 0"
                )));
            }
        },
    };
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    require_store(&mut tx, store).await?;
    // Oversold always; low stock only for products still on sale (or of no known product).
    let alerts: Vec<AlertRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{STOCK_SELECT} AND (l.on_hand < 0
             OR (l.on_hand <= $2::float8::numeric AND COALESCE(p.active, true)))
         ORDER BY l.on_hand, l.sku"
    )))
    .bind(store)
    .bind(low)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(axum::Json(json!({"store_id": store, "low": low, "alerts": alerts})).into_response())
}

/// One transfer between two outlets of the tenant, as head office sees it.
#[derive(Serialize, sqlx::FromRow)]
struct TransferRow {
    transfer_id: String,
    from_store: Uuid,
    to_store: String,
    sku: String,
    sent: f64,
    received: f64,
    /// `in_transit`, `received` or `mismatch`.
    status: String,
    sent_at: chrono::DateTime<Utc>,
    received_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferQuery {
    #[serde(default)]
    status: Option<String>,
}

/// `GET /v1/transfers[?status=in_transit|received|mismatch]`: the tenant's transfers
/// between outlets, newest first, each with what arrived.
async fn transfers(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    ApiQuery(q): ApiQuery<TransferQuery>,
) -> ApiResult<Response> {
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "in_transit" | "received" | "mismatch")
    {
        return Err(ApiError::bad_request(format!(
            "status {s:?} is one of in_transit, received, mismatch"
        )));
    }
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let rows: Vec<TransferRow> = sqlx::query_as(
        "SELECT transfer_id, from_store, to_store, sku, sent, received, status, sent_at, received_at
           FROM stock_transfers
          WHERE $1::text IS NULL OR status = $1
          ORDER BY sent_at DESC, transfer_id, sku
          LIMIT 1000",
    )
    .bind(q.status)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(axum::Json(json!({ "transfers": rows })).into_response())
}

// Logging in -------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

/// `POST /v1/login`: a head-office user's e-mail and password → their token, also set as
/// the dashboard's session cookie.
async fn login(State(state): State<ApiState>, body: Bytes) -> ApiResult<Response> {
    let req: LoginRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"email\",\"password\"}}: {e}")))?;
    match crate::users::log_in(&state.pool, &state.jwt_secret, &req.email, &req.password).await {
        Ok(l) => {
            let cookie = crate::office::session_cookie(&l.token);
            let body = json!({"token": l.token, "tenant_id": l.tenant, "role": l.role.as_str()});
            let mut response = axum::Json(body).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(crate::users::UserError::BadLogin) => {
            Err(ApiError::unauthorized("wrong e-mail or password"))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

// Head office writes ------------------------------------------------------------------

/// 403 unless the caller is the tenant's owner.
fn require_owner(claims: &Claims) -> ApiResult<()> {
    match claims.role {
        ApiRole::Owner => Ok(()),
        ApiRole::Analyst => Err(ApiError::forbidden(
            "an analyst reads; only an owner changes the catalog",
        )),
    }
}

/// The edit in a `PUT` body, refused when it names nothing or a field we do not know.
fn parse_edit(body: &[u8]) -> ApiResult<ProductEdit> {
    let edit: ProductEdit = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a product edit: {e}")))?;
    if edit.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one of name, price, cost, min_stock, barcode, category, active",
        ));
    }
    Ok(edit)
}

fn relay_of(state: &ApiState) -> ApiResult<&Relay> {
    state.relay.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "this API serves reads only",
        )
    })
}

/// What a written product looks like in a response.
fn product_json(store: Uuid, p: &kasir_crdt::records::Product) -> serde_json::Value {
    json!({
        "store_id": store,
        "product_id": p.id,
        "sku": p.sku,
        "name": p.name,
        "price": p.price,
        "cost": p.cost,
        "min_stock": p.min_stock.map(|q| q.as_f64()),
        "barcodes": p.barcodes,
        "active": p.active,
    })
}

async fn put_store_product(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    Path((store, sku)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    require_owner(&claims)?;
    let store = parse_store(Some(&store))?;
    let edit = parse_edit(&body)?;
    check_store_visible(&state, &claims, store).await?;
    let product = relay_of(&state)?
        .edit_product(claims.tenant, kasir_crdt::StoreId(store), &sku, &edit)
        .await?;
    Ok(axum::Json(product_json(store, &product)).into_response())
}

/// Refuses (404) a store the caller's tenant cannot see, before a head-office write:
/// row-level security decides visibility, as for every read.
async fn check_store_visible(state: &ApiState, claims: &Claims, store: Uuid) -> ApiResult<()> {
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    require_store(&mut tx, store).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /v1/stores/{store}/devices/{device}/revoke` (owner): a lost till stops syncing.
async fn revoke_device(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    Path((store, device)): Path<(String, String)>,
) -> ApiResult<Response> {
    require_owner(&claims)?;
    let store = parse_store(Some(&store))?;
    check_store_visible(&state, &claims, store).await?;
    relay_of(&state)?
        .revoke_device(claims.tenant, kasir_crdt::StoreId(store), &device)
        .await?;
    Ok(
        axum::Json(json!({"store_id": store, "device_id": device, "revoked": true}))
            .into_response(),
    )
}

/// `POST /v1/stores/{store}/tills/{till_code}/replace` (owner): head office replaces a
/// lost or broken till — its device is revoked and the answer ([`crate::net::TillReplaced`])
/// carries a one-time ticket for `kasir restore --from-relay` on the new tablet.
async fn replace_till(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    Path((store, till_code)): Path<(String, String)>,
) -> ApiResult<Response> {
    require_owner(&claims)?;
    let store = parse_store(Some(&store))?;
    check_store_visible(&state, &claims, store).await?;
    let replaced = relay_of(&state)?
        .replace_till(claims.tenant, kasir_crdt::StoreId(store), &till_code)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(replaced)).into_response())
}

/// What `POST /v1/stores/{store}/invites` takes: the new till's code and role (`till`
/// when absent, or `manager`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteTill {
    /// The till code the new device gets.
    pub till_code: String,
    /// `till` (the default) or `manager`.
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /v1/stores/{store}/invites` (owner): head office adds a till to a store — the
/// answer ([`crate::net::TillInvited`]) carries a one-time ticket for `kasir join`.
async fn invite_till(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    Path(store): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require_owner(&claims)?;
    let store = parse_store(Some(&store))?;
    let request: InviteTill =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invite: {e}")))?;
    let role = match request.role.as_deref() {
        None | Some("till") => kasir_crdt::store::Role::Till,
        Some("manager") => kasir_crdt::store::Role::Manager,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "role {other:?}: head office invites a till or a manager"
            )));
        }
    };
    check_store_visible(&state, &claims, store).await?;
    let invited = relay_of(&state)?
        .invite_till(
            claims.tenant,
            kasir_crdt::StoreId(store),
            &request.till_code,
            role,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(invited)).into_response())
}

async fn put_tenant_product(
    State(state): State<ApiState>,
    Caller(claims): Caller,
    Path(sku): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    require_owner(&claims)?;
    let edit = parse_edit(&body)?;
    let mut tx = tenant_tx(&state.pool, claims.tenant).await?;
    let stores: Vec<Uuid> =
        sqlx::query_scalar("SELECT store_id FROM stores ORDER BY name, store_id")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let relay = relay_of(&state)?;
    let mut results = Vec::with_capacity(stores.len());
    for store in stores {
        let written = relay
            .edit_product(claims.tenant, kasir_crdt::StoreId(store), &sku, &edit)
            .await;
        results.push(match written {
            Ok(p) => json!({"store_id": store, "product_id": p.id}),
            Err(e) => {
                let e = ApiError::from(e);
                json!({"store_id": store, "error": {"code": e.code, "message": e.message}})
            }
        });
    }
    Ok(axum::Json(json!({"sku": sku, "stores": results})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_defaults_and_checks() {
        let (from, to) = parse_range(None, None).unwrap();
        assert_eq!((to - from).num_days(), 29);
        let (from, to) = parse_range(Some("2026-01-01"), Some("2026-01-01")).unwrap();
        assert_eq!(from, to);
        assert!(parse_range(Some("2026-01-02"), Some("2026-01-01")).is_err());
        assert!(parse_range(Some("2025-01-01"), Some("2026-01-02")).is_err());
        assert!(parse_range(Some("2026-13-01"), None).is_err());
        assert!(parse_range(Some("01/02/2026"), None).is_err());
    }

    #[test]
    fn store_parameter() {
        assert!(parse_store(None).is_err());
        assert!(parse_store(Some("")).is_err());
        assert!(parse_store(Some("not-a-uuid")).is_err());
        let id = Uuid::now_v7();
        assert_eq!(parse_store(Some(&id.to_string())).unwrap(), id);
    }
}
