//! The till's HTTP API (axum): the endpoints of `contract.md` over one shared [`Node`].
//!
//! The node is synchronous (SQLite); every handler runs it on the blocking pool behind
//! one mutex, which also serialises writers exactly as the single-writer ledger wants.
//! Bodies are parsed by hand so malformed JSON gets the contract's error shape.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kasir_crdt::Qty;
use kasir_crdt::records::{MovementKind, Payment};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::NodeError;
use crate::ml::fallback::{self, FallbackClient, FallbackError};
use crate::node::{MovementInput, Node, ProductInput, SaleItem, SaleRequest};

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct AppState {
    node: Arc<Mutex<Node>>,
    metrics: Arc<Metrics>,
    /// Where peers reach this node's sync endpoint, for invite tickets.
    sync_addrs: Arc<Mutex<Vec<String>>>,
    /// Asks the relay when a photo is unknown here (set once the sync endpoint runs).
    ml_client: Arc<Mutex<Option<Arc<FallbackClient>>>>,
}

#[derive(Default)]
struct Metrics {
    sales_created: std::sync::atomic::AtomicU64,
    sale_commit_micros: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Wraps a node for serving.
    pub fn new(node: Node) -> AppState {
        AppState {
            node: Arc::new(Mutex::new(node)),
            metrics: Arc::new(Metrics::default()),
            sync_addrs: Arc::default(),
            ml_client: Arc::default(),
        }
    }

    /// The sync endpoint, through which recognition asks the relay (the relay knows
    /// this till by the endpoint's id).
    pub fn set_ml_endpoint(&self, endpoint: iroh::Endpoint) {
        if let Ok(mut c) = self.ml_client.lock() {
            *c = Some(Arc::new(FallbackClient::new(endpoint)));
        }
    }

    fn ml_client(&self) -> Option<Arc<FallbackClient>> {
        self.ml_client.lock().ok().and_then(|c| c.clone())
    }

    /// Records the sync endpoint's addresses (put into invite tickets).
    pub fn set_sync_addrs(&self, addrs: Vec<String>) {
        if let Ok(mut a) = self.sync_addrs.lock() {
            *a = addrs;
        }
    }

    /// The shared node (the sync engine uses the same one).
    pub fn node(&self) -> Arc<Mutex<Node>> {
        self.node.clone()
    }
}

/// An error response in the contract's shape.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(e.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

async fn with_node<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    let node = state.node.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = node
            .lock()
            .map_err(|_| NodeError::Invalid("node state poisoned".into()))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: e.to_string(),
    })?
    .map_err(ApiError::from)
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("malformed JSON body: {e}")))
}

fn qty_from_json(v: &Value, what: &str) -> Result<Qty, ApiError> {
    let n = v.as_f64().ok_or_else(|| {
        ApiError::bad_request("invalid_request", format!("{what} must be a number"))
    })?;
    Qty::from_f64(n).map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))
}

/// `Query` whose rejection (e.g. `?limit=many`) answers in the contract's error shape.
struct ApiQuery<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))
    }
}

fn ok_json(status: StatusCode, v: impl serde::Serialize) -> ApiResult {
    Ok((status, axum::Json(v)).into_response())
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/products", post(add_product).get(search_products))
        .route("/v1/stock", get(stock))
        .route("/v1/stock/movements", post(movement))
        .route("/v1/sales", post(sell).get(list_sales))
        .route("/v1/sales/{sale_id}", get(get_sale))
        .route("/v1/sales/{sale_id}/void", post(void_sale))
        .route("/v1/sales/{sale_id}/receipt", get(receipt))
        .route(
            "/v1/sales/{sale_id}/print",
            post(crate::print::http_enqueue).get(crate::print::http_escpos),
        )
        .route("/v1/invites", post(invite))
        .route("/v1/relay/adopt", post(adopt_relay))
        .route("/v1/store", get(get_store).post(set_store))
        .route("/v1/devices/{endpoint_id}/revoke", post(revoke))
        .route(
            "/v1/ml/recognize",
            post(ml_recognize).layer(axum::extract::DefaultBodyLimit::max(
                crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .route(
            "/v1/ml/enroll",
            post(ml_enroll).layer(axum::extract::DefaultBodyLimit::max(
                4 * crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .route(
            "/v1/ml/feedback",
            post(ml_feedback).layer(axum::extract::DefaultBodyLimit::max(
                2 * crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: "no such endpoint".into(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this endpoint does not take that method".into(),
            }
        })
        .with_state(state)
}

#[derive(Deserialize)]
struct RecognizeQuery {
    top: Option<usize>,
    /// How long to wait for the relay (ms; 0 never asks). Default: `KASIR_ML_FALLBACK_MS`
    /// or 300 ms.
    fallback_ms: Option<u64>,
}

/// Runs `f` on the blocking pool (inference), not holding the node.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: e.to_string(),
        })?
        .map_err(ApiError::from)
}

/// `POST /v1/ml/recognize` (body: the photo's bytes). The node's lock is held only to
/// fetch the model and gallery and to check the relay's SKUs; inference and the
/// question to the relay run outside it. The relay is asked only when the local answer
/// is unknown, and never for longer than the fallback deadline.
async fn ml_recognize(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RecognizeQuery>,
    body: Bytes,
) -> ApiResult {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the body must be a JPEG or PNG photo",
        ));
    }
    let matcher = with_node(&state, |n| n.ml_matcher()).await?;
    let top = q.top.unwrap_or(3);
    let (local, query) = blocking(move || matcher.recognize_local(&body, top)).await?;
    let deadline = q
        .fallback_ms
        .map_or_else(fallback::deadline_from_env, |ms| {
            Duration::from_millis(ms).min(fallback::MAX_DEADLINE)
        });
    let Some(query) = query.filter(|_| !deadline.is_zero()) else {
        return ok_json(StatusCode::OK, local);
    };
    let answer = match state.ml_client() {
        Some(client) => query.ask(&client, deadline).await,
        None => query.answer(
            Err(FallbackError::Unreachable(
                "this daemon runs no sync endpoint".into(),
            )),
            Duration::ZERO,
        ),
    };
    let outcome = with_node(&state, move |n| n.ml_settle(local, answer)).await?;
    ok_json(StatusCode::OK, outcome)
}

#[derive(Deserialize)]
struct SkuQuery {
    sku: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    sku: String,
    /// Base64 photos.
    images: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    sku: String,
    /// A base64 photo.
    image: String,
}

/// A JSON body (a photo never starts with `{`).
fn is_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn decode_photo(b64: &str) -> Result<Vec<u8>, ApiError> {
    data_encoding::BASE64
        .decode(b64.trim().as_bytes())
        .map_err(|e| ApiError::bad_request("invalid_request", format!("photo is not base64: {e}")))
}

/// The SKU of a raw-photo body, from `?sku=`.
fn sku_of_raw(q: SkuQuery, body: &Bytes) -> Result<String, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the body must be a JPEG or PNG photo, or JSON",
        ));
    }
    q.sku.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "a photo body needs ?sku=; or send JSON with sku and base64 photos",
        )
    })
}

/// `POST /v1/ml/enroll`: JSON `{"sku","images":[base64...]}`, or one photo's bytes with
/// `?sku=`. Answers `{"sku","references"}`. Photos are embedded outside the node's lock.
async fn ml_enroll(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SkuQuery>,
    body: Bytes,
) -> ApiResult {
    let (sku, photos) = if is_json(&body) {
        let b: EnrollBody = parse_body(&body)?;
        let photos = b
            .images
            .iter()
            .map(|p| decode_photo(p))
            .collect::<Result<Vec<_>, _>>()?;
        (b.sku, photos)
    } else {
        (sku_of_raw(q, &body)?, vec![body.to_vec()])
    };
    if photos.is_empty() {
        return Err(ApiError::bad_request("invalid_request", "no photos given"));
    }
    let check = sku.clone();
    let model = with_node(&state, move |n| {
        n.ensure_product(&check)?;
        n.ml_model()
    })
    .await?;
    let (model, embeddings) = blocking(move || {
        let embeddings = photos
            .iter()
            .map(|p| crate::ml::embed(&model, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((model, embeddings))
    })
    .await?;
    let enrolled = sku.clone();
    let references = with_node(&state, move |n| {
        n.ml_enroll_embeddings(&enrolled, &model, &embeddings)
    })
    .await?;
    ok_json(
        StatusCode::CREATED,
        json!({ "sku": sku, "references": references }),
    )
}

/// `POST /v1/ml/feedback`: JSON `{"sku","image":base64}`, or the photo's bytes with
/// `?sku=`. Answers `{"ok":true}` once the correction is in the ledger and the gallery.
async fn ml_feedback(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SkuQuery>,
    body: Bytes,
) -> ApiResult {
    let (sku, photo) = if is_json(&body) {
        let b: FeedbackBody = parse_body(&body)?;
        let photo = decode_photo(&b.image)?;
        (b.sku, photo)
    } else {
        (sku_of_raw(q, &body)?, body.to_vec())
    };
    let check = sku.clone();
    let matcher = with_node(&state, move |n| {
        n.ensure_product(&check)?;
        n.ml_matcher()
    })
    .await?;
    let (matcher, embedding) = blocking(move || {
        let e = matcher.embed(&photo)?;
        Ok((matcher, e))
    })
    .await?;
    with_node(&state, move |n| {
        n.ml_feedback_embedding(&matcher, &embedding, &sku)
    })
    .await?;
    ok_json(StatusCode::CREATED, json!({ "ok": true }))
}

async fn health() -> ApiResult {
    ok_json(StatusCode::OK, json!({"ok": true}))
}

async fn status(State(state): State<AppState>) -> ApiResult {
    let s = with_node(&state, |n| n.status()).await?;
    ok_json(StatusCode::OK, s)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    sku: String,
    name: String,
    price: i64,
    #[serde(default)]
    barcode: Option<String>,
    #[serde(default)]
    barcodes: Vec<String>,
    #[serde(default)]
    cost: Option<i64>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    stock: Option<Value>,
}

async fn add_product(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let b: ProductBody = parse_body(&body)?;
    let stock = b
        .stock
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| qty_from_json(v, "stock"))
        .transpose()?;
    let mut barcodes = b.barcodes;
    barcodes.extend(b.barcode);
    let input = ProductInput {
        sku: b.sku,
        name: b.name,
        price: b.price,
        barcodes,
        cost: b.cost,
        category: b.category,
        unit: b.unit,
        stock,
    };
    let added = with_node(&state, move |n| n.add_product(&input)).await?;
    ok_json(StatusCode::CREATED, added)
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    limit: Option<usize>,
}

async fn search_products(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult {
    let products = with_node(&state, move |n| {
        n.search_products(&q.q, q.limit.unwrap_or(20))
    })
    .await?;
    ok_json(StatusCode::OK, json!({ "products": products }))
}

#[derive(Deserialize)]
struct StockQuery {
    #[serde(default)]
    sku: Option<String>,
}

async fn stock(State(state): State<AppState>, ApiQuery(q): ApiQuery<StockQuery>) -> ApiResult {
    let rows = with_node(&state, move |n| n.stock(q.sku.as_deref())).await?;
    ok_json(StatusCode::OK, json!({ "stock": rows }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MovementBody {
    kind: String,
    sku: String,
    #[serde(default)]
    qty: Option<Value>,
    #[serde(default)]
    counted: Option<Value>,
    #[serde(default)]
    note: Option<String>,
}

async fn movement(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let b: MovementBody = parse_body(&body)?;
    let kind = match b.kind.as_str() {
        "receive" => MovementKind::Receive,
        "adjust" => MovementKind::Adjust,
        "opname" => MovementKind::Opname,
        other => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("unknown movement kind {other:?}: use receive, adjust or opname"),
            ));
        }
    };
    let input = MovementInput {
        kind,
        sku: b.sku,
        qty: b
            .qty
            .as_ref()
            .map(|v| qty_from_json(v, "qty"))
            .transpose()?,
        counted: b
            .counted
            .as_ref()
            .map(|v| qty_from_json(v, "counted"))
            .transpose()?,
        note: b.note,
    };
    let out = with_node(&state, move |n| n.record_movement(&input)).await?;
    ok_json(StatusCode::CREATED, out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaleBody {
    #[serde(default)]
    client_id: Option<String>,
    lines: Vec<SaleLineBody>,
    #[serde(default)]
    payments: Vec<Payment>,
    #[serde(default)]
    cashier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaleLineBody {
    sku: String,
    qty: Value,
    #[serde(default)]
    discount: i64,
}

async fn sell(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let b: SaleBody = parse_body(&body)?;
    let mut items = Vec::with_capacity(b.lines.len());
    for l in b.lines {
        items.push(SaleItem {
            qty: qty_from_json(&l.qty, "qty")?,
            code: l.sku,
            discount: l.discount,
        });
    }
    let req = SaleRequest {
        client_id: b.client_id,
        items,
        payments: b.payments,
        cashier: b.cashier,
    };
    let started = Instant::now();
    let out = with_node(&state, move |n| n.sell(&req)).await?;
    let m = &state.metrics;
    if out.created {
        m.sales_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        m.sale_commit_micros.fetch_add(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    ok_json(status, out)
}

#[derive(Deserialize)]
struct SalesQuery {
    #[serde(default)]
    date: Option<String>,
}

async fn list_sales(State(state): State<AppState>, ApiQuery(q): ApiQuery<SalesQuery>) -> ApiResult {
    let rows = with_node(&state, move |n| n.sales(q.date.as_deref())).await?;
    ok_json(StatusCode::OK, json!({ "sales": rows }))
}

async fn get_sale(State(state): State<AppState>, Path(sale_id): Path<String>) -> ApiResult {
    let (sale, status) = with_node(&state, move |n| {
        let sale = n.sale(&sale_id)?;
        let status = n.sale_status(&sale_id)?;
        Ok((sale, status))
    })
    .await?;
    let mut v = serde_json::to_value(sale).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("status".into(), Value::String(status));
    }
    ok_json(StatusCode::OK, v)
}

#[derive(Deserialize, Default)]
struct VoidBody {
    #[serde(default)]
    reason: String,
}

async fn void_sale(
    State(state): State<AppState>,
    Path(sale_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let b: VoidBody = if body.is_empty() {
        VoidBody::default()
    } else {
        parse_body(&body)?
    };
    let void_id = with_node(&state, move |n| n.void_sale(&sale_id, &b.reason)).await?;
    ok_json(StatusCode::CREATED, json!({ "void_id": void_id }))
}

#[derive(Deserialize)]
struct ReceiptQuery {
    #[serde(default)]
    width: Option<usize>,
}

async fn receipt(
    State(state): State<AppState>,
    Path(sale_id): Path<String>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> ApiResult {
    let text = with_node(&state, move |n| {
        n.receipt_text(&sale_id, q.width.unwrap_or(32))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn metrics(State(state): State<AppState>) -> ApiResult {
    let status = with_node(&state, |n| n.status()).await?;
    let m = &state.metrics;
    let created = m.sales_created.load(std::sync::atomic::Ordering::Relaxed);
    let micros = m
        .sale_commit_micros
        .load(std::sync::atomic::Ordering::Relaxed);
    let connected = status.peers.iter().filter(|p| p.connected).count();
    let text = format!(
        "# HELP kasir_sales Sales held by this node (all tills).\n# TYPE kasir_sales gauge\nkasir_sales {}\n\
         # HELP kasir_products Products in the catalog.\n# TYPE kasir_products gauge\nkasir_products {}\n\
         # HELP kasir_docs Documents held.\n# TYPE kasir_docs gauge\nkasir_docs {}\n\
         # HELP kasir_unsynced_docs Documents with changes no peer has acknowledged.\n# TYPE kasir_unsynced_docs gauge\nkasir_unsynced_docs {}\n\
         # HELP kasir_peers Known peers.\n# TYPE kasir_peers gauge\nkasir_peers {}\n\
         # HELP kasir_peers_connected Peers connected now.\n# TYPE kasir_peers_connected gauge\nkasir_peers_connected {}\n\
         # HELP kasir_sales_created_total Sales created through this API since start.\n# TYPE kasir_sales_created_total counter\nkasir_sales_created_total {}\n\
         # HELP kasir_sale_commit_seconds_total Time spent committing those sales.\n# TYPE kasir_sale_commit_seconds_total counter\nkasir_sale_commit_seconds_total {}\n\
         # HELP kasir_sync_bytes_sent_total Sync frame bytes sent to peers.\n# TYPE kasir_sync_bytes_sent_total counter\nkasir_sync_bytes_sent_total {}\n\
         # HELP kasir_sync_bytes_received_total Sync frame bytes received from peers.\n# TYPE kasir_sync_bytes_received_total counter\nkasir_sync_bytes_received_total {}\n\
         # HELP kasir_sync_refused_total Connections refused (not in the roster, or revoked).\n# TYPE kasir_sync_refused_total counter\nkasir_sync_refused_total {}\n\
         # HELP kasir_sync_last_receive_age_seconds Seconds since a peer last sent a sync frame (-1: never).\n# TYPE kasir_sync_last_receive_age_seconds gauge\nkasir_sync_last_receive_age_seconds {}\n",
        status.sales,
        status.products,
        status.docs,
        status.unsynced_docs,
        status.peers.len(),
        connected,
        created,
        micros as f64 / 1e6,
        crate::sync::net::BYTES_SENT.load(std::sync::atomic::Ordering::Relaxed),
        crate::sync::net::BYTES_RECEIVED.load(std::sync::atomic::Ordering::Relaxed),
        crate::sync::net::REFUSED.load(std::sync::atomic::Ordering::Relaxed),
        match crate::sync::net::LAST_RECEIVE_MS.load(std::sync::atomic::Ordering::Relaxed) {
            0 => -1.0,
            t => (crate::node::now_ms() - t) as f64 / 1e3,
        },
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    #[serde(default)]
    till_code: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn invite(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let b: InviteBody = if body.is_empty() {
        InviteBody::default()
    } else {
        parse_body(&body)?
    };
    let role = crate::membership::parse_role(b.role.as_deref())
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let addrs = state
        .sync_addrs
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    let ticket = with_node(&state, move |n| n.invite_ticket(role, b.till_code, addrs)).await?;
    ok_json(StatusCode::CREATED, json!({ "ticket": ticket }))
}

#[derive(Deserialize)]
struct AdoptBody {
    ticket: String,
}

/// `kasir join` of a relay's adoption ticket while the daemon runs: links the relay into
/// the roster and proves the ticket to it; the dial manager then hands it the documents.
async fn adopt_relay(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let b: AdoptBody = parse_body(&body)?;
    let ticket = crate::membership::Ticket::decode(&b.ticket)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let Some((relay, addrs)) = ticket.members.first().cloned() else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the ticket names no relay",
        ));
    };
    let relay = kasir_crdt::DeviceId(relay);
    let store = ticket.store_id();
    let (secret, own) = with_node(&state, move |n| {
        if n.store_id() != store {
            return Err(NodeError::Invalid(format!(
                "the ticket is for store {store}, this till is in {}",
                n.store_id()
            )));
        }
        n.check_may_link_relay(relay)?;
        Ok((
            n.identity.secret_bytes(),
            (n.store_id(), n.device_id(), n.till_code().to_owned()),
        ))
    })
    .await?;
    let socket_addrs: Vec<std::net::SocketAddr> = ticket
        .members
        .first()
        .map(|(_, a)| a.iter().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    let unavailable = |message: String| ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: "relay_unreachable",
        message,
    };
    let ep = crate::sync::net::bind_endpoint(secret, ([0, 0, 0, 0], 0).into())
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let req = crate::sync::net::JoinRequest {
        secret: ticket.secret,
        till_code: None,
        addrs: vec![],
    };
    let answer = crate::sync::net::request_join(&ep, relay, &socket_addrs, &req).await;
    ep.close().await;
    match answer.map_err(|e| unavailable(e.to_string()))? {
        crate::sync::net::JoinResponse::Ok { store: s, .. } if s == ticket.store => {}
        crate::sync::net::JoinResponse::Ok { .. } => {
            return Err(unavailable("the relay answered for another store".into()));
        }
        crate::sync::net::JoinResponse::Refused(reason) => {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                code: "ticket_refused",
                message: format!("the relay refused: {reason}"),
            });
        }
    }
    // Linked only once the relay accepted the ticket: a refusal leaves the roster as it was.
    let relay_code = with_node(&state, move |n| n.link_relay(relay, addrs)).await?;
    let (store_id, endpoint_id, till_code) = own;
    ok_json(
        StatusCode::CREATED,
        json!({
            "store_id": store_id.to_string(),
            "endpoint_id": endpoint_id.to_string(),
            "till_code": till_code,
            "relay": relay.to_string(),
            "relay_code": relay_code,
            "adopted": true,
        }),
    )
}

async fn revoke(State(state): State<AppState>, Path(endpoint_id): Path<String>) -> ApiResult {
    let device: kasir_crdt::DeviceId =
        endpoint_id.parse().map_err(|e: kasir_crdt::ids::IdError| {
            ApiError::bad_request("invalid_request", e.to_string())
        })?;
    with_node(&state, move |n| n.revoke(device)).await?;
    ok_json(StatusCode::OK, json!({ "ok": true }))
}

async fn get_store(State(state): State<AppState>) -> ApiResult {
    let profile = with_node(&state, |n| Ok(n.profile().clone())).await?;
    ok_json(StatusCode::OK, profile)
}

async fn set_store(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let update: crate::profile::ProfileUpdate = parse_body(&body)?;
    let profile = with_node(&state, move |n| {
        let profile = update.apply(n.profile().clone())?;
        n.set_profile(profile)?;
        Ok(n.profile().clone())
    })
    .await?;
    ok_json(StatusCode::OK, profile)
}
