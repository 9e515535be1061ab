//! The till's HTTP API (axum): the endpoints of `../shared/design/contract.md` over one [`SharedNode`].
//!
//! Every JSON endpoint is an [`Operation`] of [`crate::api`], routed by one generic
//! handler: it reads the request (query string, or JSON body merged with the path's
//! parameters), runs the operation on the blocking pool under the node's lock, and
//! answers in the contract's shape. Photos, receipts, printing, the relay adoption and
//! `/metrics` have handlers of their own below.
//!
//! Every request passes [`guard`] first: a `Host` that is not an address or a name of
//! this till is refused (DNS rebinding), a write must be JSON (a cross-site form cannot
//! send that without the browser asking first), and every `/v1/*` route but
//! `GET /v1/health` and `POST /v1/sessions` needs a bearer token (`crate::people`);
//! `/metrics` answers loopback callers only. The routes are listed once
//! ([`route_table`]), so a test can walk them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, RawPathParams, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, delete, get, on, post};
use kasir_sync::membership::Ticket;
use kasir_sync::recognition::{self as fallback, FallbackClient, FallbackError};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{self, Done, ErrorBody, ErrorDetail, Method, OpContext, Operation};
use crate::error::NodeError;
use crate::gate::{self, AppGate, Verdict};
use crate::lan::{self, JoinError};
use crate::metrics::TillMetrics;
use crate::node::Node;
use crate::people::{Action, Principal};
use crate::print::{
    AppPrinter, EscposRequest, PRINTER_FILE, PrintFailed, PrintQueue, QueueHooks, printer_profile,
    receipt_escpos,
};
use crate::qris;
use crate::shared::SharedNode;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Shared state of the HTTP server.
#[derive(Clone, Debug)]
pub struct AppState {
    node: SharedNode,
    metrics: Arc<TillMetrics>,
    /// What operations need from the daemon (the sync endpoint's addresses).
    ctx: Arc<Mutex<OpContext>>,
    /// Asks the relay when a photo is unknown here (set once the sync endpoint runs).
    ml_client: Arc<Mutex<Option<Arc<FallbackClient>>>>,
    /// The daemon's printer, when `printer.json` configures one.
    printer: Arc<Mutex<Option<PrintQueue>>>,
    /// Host names answered besides addresses and `localhost`; whether `/metrics` is
    /// public (see [`guard`]).
    hosts: Arc<Mutex<(Vec<String>, bool)>>,
    /// The daemon's shutdown, which ends a print queue started later (Pengaturan).
    shutdown: CancellationToken,
    /// What print queues get: the app for `app://` printers, who hears of failures.
    print_hooks: Arc<Mutex<QueueHooks>>,
    /// Set when only the app embedding the node may use it (see [`crate::gate`]).
    gate: Arc<Mutex<Option<AppGate>>>,
}

impl AppState {
    /// Serves `node`.
    pub fn new(node: SharedNode) -> AppState {
        let metrics = Arc::new(TillMetrics::new(node.sync_metrics().clone()));
        let print_hooks = QueueHooks {
            failures: metrics.print_failures(),
            ..QueueHooks::default()
        };
        AppState {
            node,
            metrics,
            ctx: Arc::default(),
            ml_client: Arc::default(),
            printer: Arc::default(),
            hosts: Arc::default(),
            shutdown: CancellationToken::new(),
            print_hooks: Arc::new(Mutex::new(print_hooks)),
            gate: Arc::default(),
        }
    }

    /// Lets only the app embedding the node in: every request but `GET /v1/health`
    /// needs a grant from a one-time code ([`AppState::app_code`]).
    pub fn gate_for_app(&self) {
        if let Ok(mut g) = self.gate.lock() {
            g.get_or_insert_with(AppGate::default);
        }
    }

    /// A one-time code that opens the gate (the app opens `/?kunci=CODE`); `None` when
    /// the till is not gated.
    pub fn app_code(&self) -> Option<String> {
        self.gate.lock().ok()?.as_mut().map(AppGate::new_code)
    }

    /// Judges a request at the gate (always [`Verdict::Pass`] when there is none).
    fn judge_app(&self, path: &str, query: Option<&str>, headers: &HeaderMap) -> Verdict {
        let Ok(mut gate) = self.gate.lock() else {
            return Verdict::Refuse;
        };
        match gate.as_mut() {
            None => Verdict::Pass,
            Some(_) if path == "/v1/health" => Verdict::Pass,
            Some(g) => g.judge(
                gate::query_param(query, gate::CODE_PARAM),
                crate::ui::cookie(headers, gate::APP_COOKIE).as_deref(),
            ),
        }
    }

    /// Gives `app://` printers to the app embedding the node; the queue running now
    /// keeps the app it started with (start a new one: [`AppState::replace_printer`]).
    pub fn set_app_printer(&self, app: AppPrinter) {
        if let Ok(mut h) = self.print_hooks.lock() {
            h.app = app;
        }
    }

    /// Hears of print jobs given up from now on.
    pub fn print_failures(&self) -> tokio::sync::broadcast::Receiver<PrintFailed> {
        self.print_hooks().failed.subscribe()
    }

    fn print_hooks(&self) -> QueueHooks {
        self.print_hooks
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Starts the print queue `printer.json` configures, if any.
    /// The scheduled backups' series on this daemon's `/metrics`.
    pub(crate) fn backup_metrics(&self) -> crate::metrics::BackupMetrics {
        self.metrics.backups()
    }

    pub(crate) fn start_configured_printer(&self) {
        self.set_printer(PrintQueue::from_data_dir(
            &self.node,
            self.print_hooks(),
            self.shutdown.child_token(),
        ));
    }

    /// Ties what the state starts later (a new print queue) to the daemon's shutdown.
    pub fn with_shutdown(mut self, cancel: CancellationToken) -> AppState {
        self.shutdown = cancel;
        self
    }

    /// Sets the host names answered to and whether `/metrics` is public.
    pub fn set_host_policy(&self, names: Vec<String>, metrics_public: bool) {
        if let Ok(mut h) = self.hosts.lock() {
            *h = (names, metrics_public);
        }
    }

    fn host_names(&self) -> Vec<String> {
        self.hosts.lock().map(|h| h.0.clone()).unwrap_or_default()
    }

    fn metrics_public(&self) -> bool {
        self.hosts.lock().map(|h| h.1).unwrap_or(false)
    }

    /// The sync endpoint, through which recognition asks the relay and a QRIS charge
    /// reaches the acquirer through a peer (both know this till by the endpoint's id).
    pub fn set_lan_endpoint(&self, endpoint: iroh::Endpoint) {
        if let Ok(mut c) = self.ml_client.lock() {
            *c = Some(Arc::new(FallbackClient::new(endpoint)));
        }
    }

    fn ml_client(&self) -> Option<Arc<FallbackClient>> {
        self.ml_client.lock().ok().and_then(|c| c.clone())
    }

    /// The sync endpoint, once it runs.
    pub(crate) fn lan_endpoint(&self) -> Option<iroh::Endpoint> {
        self.ml_client().map(|c| c.endpoint().clone())
    }

    /// Records the sync endpoint's addresses (put into invite tickets).
    pub fn set_sync_addrs(&self, addrs: Vec<String>) {
        if let Ok(mut c) = self.ctx.lock() {
            c.sync_addrs = addrs;
        }
    }

    /// Gives the daemon a printer.
    pub fn set_printer(&self, queue: Option<PrintQueue>) {
        if let Ok(mut p) = self.printer.lock() {
            *p = queue;
        }
    }

    /// The shared node (the sync engine uses the same one).
    pub fn node(&self) -> &SharedNode {
        &self.node
    }

    /// Starts a print queue for `settings` in place of the current one (whose jobs
    /// already queued still print: its task ends when its last handle is gone).
    pub fn replace_printer(&self, settings: Option<crate::print::PrintSettings>) {
        let queue = settings.map(|s| {
            PrintQueue::start(
                self.node.clone(),
                s,
                self.print_hooks(),
                self.shutdown.child_token(),
            )
        });
        self.set_printer(queue);
    }

    /// The daemon's print queue, when a printer is configured.
    pub fn printer(&self) -> Option<PrintQueue> {
        self.printer.lock().ok().and_then(|p| p.clone())
    }

    pub(crate) fn ctx(&self) -> OpContext {
        self.ctx.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// An error response in the contract's shape.
#[derive(Debug)]
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

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Runs `f` under the node's lock on the blocking pool.
async fn with_node<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    let node = state.node.clone();
    tokio::task::spawn_blocking(move || f(&mut *node.lock()?))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// Runs `f` on the blocking pool without the node (inference).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("malformed JSON body: {e}")))
}

/// The request of operation `O` from a JSON body and the path's parameters. A body that
/// does not fit the request is `invalid_json`, except for an invalid value of one of
/// `O::VALUE_FIELDS` (`invalid_request`), as the contract tells them apart.
fn json_request<O: Operation>(
    body: &Bytes,
    params: &RawPathParams,
) -> Result<O::Request, ApiError> {
    let mut v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(body)?
    };
    if let Value::Object(map) = &mut v {
        for (key, value) in params {
            map.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field: String = {
            // `lines[0].qty` → `lines[].qty`
            let mut out = String::with_capacity(path.len());
            let mut in_index = false;
            for c in path.chars() {
                match c {
                    '[' => {
                        in_index = true;
                        out.push('[');
                    }
                    ']' => {
                        in_index = false;
                        out.push(']');
                    }
                    _ if in_index => {}
                    c => out.push(c),
                }
            }
            out
        };
        let code = if O::VALUE_FIELDS.contains(&field.as_str()) {
            "invalid_request"
        } else {
            "invalid_json"
        };
        ApiError::bad_request(code, format!("{path}: {}", e.inner()))
    })
}

/// The request of operation `O` from the query string and the path's parameters.
fn query_request<O: Operation>(
    query: Option<&str>,
    params: &RawPathParams,
) -> Result<O::Request, ApiError> {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_request", format!("malformed query: {e}")))?;
    pairs.extend(params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    let encoded =
        serde_urlencoded::to_string(&pairs).map_err(|e| ApiError::internal(e.to_string()))?;
    serde_urlencoded::from_str(&encoded)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("invalid query: {e}")))
}

/// The one handler of every [`Operation`].
async fn operation<O: Operation>(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    params: RawPathParams,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    let req = match O::METHOD {
        Method::Get => query_request::<O>(query.as_deref(), &params)?,
        Method::Post => json_request::<O>(&body, &params)?,
    };
    let mut ctx = state.ctx();
    ctx.principal = Some(principal);
    let started = Instant::now();
    let response = with_node(&state, move |n| O::run(n, &ctx, req)).await?;
    let status = if O::created(&response) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if O::is_new_sale(&response) {
        state.metrics.sale_committed(started.elapsed());
    }
    Ok((status, axum::Json(response)).into_response())
}

/// The router under construction, and the table of every route it serves.
pub(crate) struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    pub(crate) fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Routes {
        self.table.push((method, path));
        self.router = self.router.route(path, handler);
        self
    }

    fn op<O: Operation>(self) -> Routes {
        let (filter, method) = match O::METHOD {
            Method::Get => (MethodFilter::GET, "GET"),
            Method::Post => (MethodFilter::POST, "POST"),
        };
        self.add(method, O::PATH, on(filter, operation::<O>))
    }
}

fn routes() -> Routes {
    let r = Routes {
        router: Router::new(),
        table: Vec::new(),
    };
    let r = r
        .add("GET", "/v1/health", get(health))
        .add("POST", "/v1/qris/charges", post(qris_create))
        .add("GET", "/v1/qris/charges/{charge_id}", get(qris_status))
        .add("POST", "/v1/qris/callback", post(qris_callback))
        .add(
            "POST",
            "/v1/qris/charges/{charge_id}/print",
            post(qris_print),
        )
        .add("POST", "/v1/sessions", post(login))
        .add("DELETE", "/v1/sessions/current", delete(logout))
        .add("GET", "/v1/sales/{sale_id}/receipt", get(receipt))
        .add("POST", "/v1/sales/{sale_id}/print", post(enqueue_print))
        .add("GET", "/v1/sales/{sale_id}/print", get(escpos))
        .add("POST", "/v1/drawer/open", post(open_drawer))
        .add("POST", "/v1/relay/adopt", post(adopt_relay))
        .add(
            "POST",
            "/v1/ml/recognize",
            post(ml_recognize).layer(axum::extract::DefaultBodyLimit::max(
                crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .add(
            "POST",
            "/v1/ml/enroll",
            post(ml_enroll).layer(axum::extract::DefaultBodyLimit::max(
                4 * crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .add(
            "POST",
            "/v1/ml/feedback",
            post(ml_feedback).layer(axum::extract::DefaultBodyLimit::max(
                2 * crate::ml::MAX_IMAGE_BYTES,
            )),
        )
        .add("GET", "/metrics", get(metrics))
        .op::<api::Status>()
        .op::<api::AddProduct>()
        .op::<api::SearchProducts>()
        .op::<api::Stock>()
        .op::<api::Purchases>()
        .op::<api::RecordMovement>()
        .op::<api::Sell>()
        .op::<api::ListSales>()
        .op::<api::GetSale>()
        .op::<api::VoidSale>()
        .op::<api::Invite>()
        .op::<api::CancelInvite>()
        .op::<api::Revoke>()
        .op::<api::Devices>()
        .op::<api::GetProfile>()
        .op::<api::SetProfile>()
        .op::<api::ListUsers>()
        .op::<api::AddUser>()
        .op::<api::DisableUser>()
        .op::<api::SetPin>()
        .op::<api::RefundSale>()
        .op::<api::OpenShiftOp>()
        .op::<api::ShiftCash>()
        .op::<api::CloseShift>()
        .op::<api::GetCurrentShift>()
        .op::<api::GetZReport>()
        .op::<api::GetAudit>()
        .op::<api::SaveCustomer>()
        .op::<api::ListCustomers>()
        .op::<api::PayKasbon>();
    crate::ui::routes(r)
}

/// Every route the till serves, as `(method, path pattern)`: what the router is built
/// from, so a test can walk them all (no route can be left out of the guard's care).
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().table
}

/// Routes anyone may call: the health check and the login itself.
fn is_open(method: &axum::http::Method, path: &str) -> bool {
    (method == axum::http::Method::GET && path == "/v1/health")
        || (method == axum::http::Method::POST && path == "/v1/sessions")
        // The acquirer's callback proves itself by its signature (`qris::verify`).
        || (method == axum::http::Method::POST && path == "/v1/qris/callback")
}

/// Whether `Host` names this till: an IP address (the till is reached by address on the
/// shop LAN), `localhost`, or a name configured for it. A DNS-rebinding page sends its
/// own domain name here, which is refused.
pub(crate) fn host_allowed(headers: &HeaderMap, names: &[String]) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host.as_str()
            }
        })
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// What a write may carry: JSON, or an image for the recognition routes. A cross-site
/// form can send only `text/plain`, `application/x-www-form-urlencoded` or
/// `multipart/form-data` without a preflight the till never answers.
fn content_type_allowed(headers: &HeaderMap, path: &str) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct == "application/json"
        || (path.starts_with("/v1/ml/")
            && (ct.starts_with("image/") || ct == "application/octet-stream"))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The guard in front of every route (see the module).
async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let names = state.host_names();
    if !host_allowed(req.headers(), &names) {
        return ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden_host",
            message: "this till answers only to its own address or name".into(),
        }
        .into_response();
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match state.judge_app(&path, req.uri().query(), req.headers()) {
        Verdict::Pass => {}
        Verdict::Grant(grant) => {
            // The code is spent. A page (not a redirect, which a client without a cookie
            // jar would follow without the grant) that sets it and moves on to the same
            // address without the code.
            let cookie = format!(
                "{}={grant}; Path=/; HttpOnly; SameSite=Strict",
                gate::APP_COOKIE
            );
            let store = with_node(&state, |n| Ok(n.profile().name.clone()))
                .await
                .unwrap_or_default();
            let page = maud::html! {
                (maud::DOCTYPE)
                html lang="id" {
                    head {
                        meta charset="utf-8";
                        meta name="viewport" content="width=device-width, initial-scale=1";
                        meta http-equiv="refresh" content={"0; url=" (path)};
                        title { "Kasir · " (store) }
                    }
                    body { p { "Membuka kasir " b { (store) } "… " a href=(path) { "Lanjut" } } }
                }
            };
            return (
                StatusCode::OK,
                [
                    (header::SET_COOKIE, cookie),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                page,
            )
                .into_response();
        }
        Verdict::Refuse => {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                code: "app_only",
                message: "this till app opens from the app that runs it".into(),
            }
            .into_response();
        }
    }
    if path == "/metrics" {
        if peer.ip().is_loopback() || state.metrics_public() {
            return next.run(req).await;
        }
        return ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "/metrics answers this machine only".into(),
        }
        .into_response();
    }
    let writes = matches!(
        method,
        axum::http::Method::POST | axum::http::Method::PUT | axum::http::Method::PATCH
    );
    if writes && path.starts_with("/ui/") {
        // The till app's forms: sent by htmx from this till's pages (see `ui`).
        if !crate::ui::write_allowed(req.headers()) {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: "the till app's forms are sent by its own pages".into(),
            }
            .into_response();
        }
        return next.run(req).await;
    }
    if writes && !content_type_allowed(req.headers(), &path) {
        return ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "send the request as Content-Type: application/json".into(),
        }
        .into_response();
    }
    if !path.starts_with("/v1/") || is_open(&method, &path) {
        return next.run(req).await;
    }
    let Some(token) = bearer(req.headers()) else {
        return ApiError::from(NodeError::Unauthenticated(
            "log in (POST /v1/sessions) and send Authorization: Bearer TOKEN".into(),
        ))
        .into_response();
    };
    match with_node(&state, move |n| n.authenticate(&token)).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/sessions`: log in with a PIN.
async fn login(State(state): State<AppState>, body: Bytes) -> ApiResult {
    let req: api::LoginRequest = parse_body(&body)?;
    let session = with_node(&state, move |n| {
        n.login(req.name.as_deref(), req.user_id.as_deref(), &req.pin)
    })
    .await?;
    ok_json(StatusCode::CREATED, session)
}

/// `DELETE /v1/sessions/current`: log out.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    if let Some(token) = bearer(&headers) {
        with_node(&state, move |n| n.logout(&token)).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The router with every endpoint, behind the [`guard`].
pub fn router(state: AppState) -> Router {
    routes()
        .router
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
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

/// `Query` whose rejection (e.g. `?top=many`) answers in the contract's error shape.
struct ApiQuery<T>(T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
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

/// `POST /v1/qris/charges`: a dynamic QRIS for a sale request's rest (`qris`): 201
/// with a new charge, 200 with the one its client id already has.
async fn qris_create(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let req: api::SaleRequest = parse_body(&body)?;
    let (charge, made) =
        qris::create_charge(&state.node, state.lan_endpoint().as_ref(), principal, req).await?;
    ok_json(
        if made {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        charge,
    )
}

/// `GET /v1/qris/charges/{charge_id}`: the charge, refreshed from the acquirer.
async fn qris_status(State(state): State<AppState>, Path(charge_id): Path<String>) -> ApiResult {
    ok_json(
        StatusCode::OK,
        qris::refresh_charge(&state.node, state.lan_endpoint().as_ref(), charge_id).await?,
    )
}

/// `POST /v1/qris/callback`: the acquirer says what became of a charge, signed with the
/// shared secret (`X-Qris-Signature`); a duplicate changes nothing.
async fn qris_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let signature = headers
        .get("x-qris-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ok_json(
        StatusCode::OK,
        qris::callback(&state.node, body.to_vec(), signature).await?,
    )
}

async fn health() -> ApiResult {
    ok_json(StatusCode::OK, Done::OK)
}

async fn receipt(
    State(state): State<AppState>,
    Path(sale_id): Path<String>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> ApiResult {
    let width = match q.get("width") {
        Some(w) => Some(w.parse::<usize>().map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                format!("width must be a number, not {w:?}"),
            )
        })?),
        None => None,
    };
    let text = with_node(&state, move |n| {
        n.receipt_text(&sale_id, width.unwrap_or(32))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let status = with_node(&state, |n| n.status()).await?;
    let printer = state.printer().map(|q| q.health());
    let text = state.metrics.render(&status, printer.as_ref());
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (ctype, body) = kasir_sync::metrics::negotiate(accept, text);
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}

/// `kasir join` of a relay's adoption ticket while the daemon runs: links the relay into
/// the roster and proves the ticket to it; the dial manager then hands it the documents.
async fn adopt_relay(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    // Linking a relay hands it the store: a manager's or owner's decision.
    if principal.role() < kasir_crdt::store::UserRole::Manager {
        return Err(NodeError::Forbidden("only a manager or owner may link a relay".into()).into());
    }
    let b: api::AdoptRequest = parse_body(&body)?;
    let ticket = Ticket::decode(&b.ticket).map_err(NodeError::from)?;
    let node = state.node.clone();
    let ep = lan::bind(&node, ([0, 0, 0, 0], 0).into())
        .await
        .map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "relay_unreachable",
            message: e.to_string(),
        })?;
    let adopted = lan::adopt_relay(&node, &ep, &ticket, None).await;
    ep.close().await;
    let adopted = adopted.map_err(|e| match e {
        JoinError::Node(e) => ApiError::from(e),
        JoinError::Refused(reason) => ApiError {
            status: StatusCode::CONFLICT,
            code: "ticket_refused",
            message: format!("the relay refused: {reason}"),
        },
        other => ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "relay_unreachable",
            message: other.to_string(),
        },
    })?;
    let identity = with_node(&state, |n| Ok(n.till_identity())).await?;
    ok_json(
        StatusCode::CREATED,
        api::TillIdentity {
            relay: Some(adopted.relay.to_string()),
            relay_code: Some(adopted.relay_code),
            adopted: Some(true),
            ..identity
        },
    )
}

fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, NodeError> {
    match q.get(key).map(String::as_str) {
        None | Some("0" | "false" | "") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(NodeError::Invalid(format!(
            "{key} must be true or false, not {other:?}"
        ))),
    }
}

/// `GET /v1/sales/{sale_id}/print?width=&profile=&qr=&raster_qr=&drawer=&reprint=`: the
/// receipt's ESC/POS bytes (what `kasir receipt --escpos/--printer` sends).
async fn escpos(
    State(state): State<AppState>,
    Path(sale_id): Path<String>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> ApiResult {
    let width = match q.get("width") {
        Some(w) => Some(w.parse::<usize>().map_err(|_| {
            ApiError::from(NodeError::Invalid(format!(
                "width must be a number, not {w:?}"
            )))
        })?),
        None => None,
    };
    let req = EscposRequest {
        profile: printer_profile(
            width,
            q.get("profile").map(String::as_str),
            flag(&q, "raster_qr")?,
        )?,
        qr: q.get("qr").cloned().filter(|s| !s.is_empty()),
        drawer: flag(&q, "drawer")?,
        reprint: flag(&q, "reprint")?,
    };
    let bytes = with_node(&state, move |n| receipt_escpos(n, &sale_id, &req)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Options of `POST /v1/sales/{sale_id}/print`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PrintBody {
    #[serde(default)]
    reprint: bool,
    /// A supervisor's PIN, for a reprint by a cashier.
    #[serde(default)]
    approval: Option<crate::people::Approval>,
}

/// `POST /v1/sales/{sale_id}/print` (body optional: `{"reprint": true}`): queues the
/// receipt on the daemon's printer → 202 `{"job_id","sale_id","printer"}`. 404 for an
/// unknown sale, 409 when no printer is configured or the queue is full.
async fn enqueue_print(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(sale_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let b: PrintBody = if body.iter().all(u8::is_ascii_whitespace) {
        PrintBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| NodeError::Invalid(format!("malformed JSON body: {e}")))?
    };
    let queue = state.printer.lock().ok().and_then(|p| p.clone());
    let Some(queue) = queue else {
        return Err(NodeError::Conflict(format!(
            "no printer configured: put {PRINTER_FILE} in the data directory and restart kasir run"
        ))
        .into());
    };
    let id = sale_id.clone();
    let reprint = b.reprint;
    with_node(&state, move |n| {
        if reprint {
            n.approve_reprint(&principal, &id, b.approval.as_ref())
        } else {
            n.sale_status(&id).map(drop)
        }
    })
    .await?;
    let job_id = queue.enqueue(&sale_id, b.reprint)?;
    let v = json!({ "job_id": job_id, "sale_id": sale_id, "printer": queue.printer() });
    Ok((StatusCode::ACCEPTED, axum::Json(v)).into_response())
}

/// `POST /v1/qris/charges/{charge_id}/print`: the pending QR on paper, for a customer
/// who cannot see the screen: 202 with the job.
async fn qris_print(State(state): State<AppState>, Path(charge_id): Path<String>) -> ApiResult {
    let queue = state.printer.lock().ok().and_then(|p| p.clone());
    let Some(queue) = queue else {
        return Err(NodeError::Conflict(format!(
            "no printer configured: put {PRINTER_FILE} in the data directory and restart kasir run"
        ))
        .into());
    };
    let id = charge_id.clone();
    with_node(&state, move |n| n.qris_payable(&id)).await?;
    let job_id = queue.qris(&charge_id)?;
    let v = json!({ "job_id": job_id, "charge_id": charge_id, "printer": queue.printer() });
    Ok((StatusCode::ACCEPTED, axum::Json(v)).into_response())
}

/// `POST /v1/drawer/open` `{"reason","approval"?}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DrawerBody {
    reason: String,
    #[serde(default)]
    approval: Option<crate::people::Approval>,
}

/// `POST /v1/drawer/open`: opens the cash drawer without a sale (change for a note,
/// a count) → 202 `{"job_id","printer"}`. A supervisor's, audited with the reason; 409
/// when no printer (and so no drawer) is configured.
async fn open_drawer(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> ApiResult {
    let b: DrawerBody = serde_json::from_slice(&body)
        .map_err(|e| NodeError::Invalid(format!("malformed JSON body: {e}")))?;
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(NodeError::Invalid(
            "say why the drawer opens (a reason of at most 200 characters)".into(),
        )
        .into());
    }
    let queue = state.printer.lock().ok().and_then(|p| p.clone());
    let Some(queue) = queue else {
        return Err(NodeError::Conflict(format!(
            "no printer configured (the drawer hangs on it): put {PRINTER_FILE} in the data directory"
        ))
        .into());
    };
    with_node(&state, move |n| {
        let approved_by = n.authorize(&principal, Action::OpenDrawer, b.approval.as_ref())?;
        n.record_audit_detail(
            "drawer_open",
            principal.user_name(),
            None,
            approved_by.as_deref(),
            Some(&reason),
        )
    })
    .await?;
    let job_id = queue.open_drawer()?;
    let v = json!({ "job_id": job_id, "printer": queue.printer() });
    Ok((StatusCode::ACCEPTED, axum::Json(v)).into_response())
}

/// `POST /v1/ml/recognize` (body: the photo's bytes). The node's lock is held only to
/// fetch the model and gallery and to check the relay's SKUs; inference and the
/// question to the relay run outside it. The relay is asked only when the local answer
/// is unknown, and never for longer than the fallback deadline.
async fn ml_recognize(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<api::RecognizeQuery>,
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

#[derive(serde::Deserialize)]
struct SkuQuery {
    sku: Option<String>,
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
        let b: api::EnrollRequest = parse_body(&body)?;
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
    ok_json(StatusCode::CREATED, api::EnrollOutcome { sku, references })
}

/// `POST /v1/ml/feedback`: JSON `{"sku","image":base64}`, or the photo's bytes with
/// `?sku=`. Answers `{"ok":true}` once the correction is in the ledger and the gallery.
async fn ml_feedback(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SkuQuery>,
    body: Bytes,
) -> ApiResult {
    let (sku, photo) = if is_json(&body) {
        let b: api::FeedbackRequest = parse_body(&body)?;
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
    ok_json(StatusCode::CREATED, Done::OK)
}
