//! First run: `kasir run` on a data directory without a store serves this one page,
//! which creates the store, this till (its owner device) and the owner with a PIN; the
//! daemon then becomes the till on the same address, and the browser lands logged in.
//!
//! **Who may create the store:** whoever holds the setup code `kasir run` prints on its
//! terminal (a one-time code, in the link it prints). Another device on the shop Wi-Fi
//! sees the page but cannot claim the store first; ten wrong codes close the page until
//! `kasir run` is started again. The same `Host` rule and write rule as the till app
//! apply.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Bar, Lang, Msg, Nav, go, html_response, lang, page, t};
use crate::NodeError;
use crate::api::InitOptions;
use crate::node::Node;

/// Wrong setup codes before the page stops taking any.
const MAX_WRONG_CODES: u32 = 10;

/// The first-run server's state (cheap to clone).
#[derive(Clone)]
pub struct Setup(Arc<SetupInner>);

struct SetupInner {
    dir: PathBuf,
    code: String,
    host_names: Vec<String>,
    wrong: Mutex<u32>,
    created: Mutex<Option<Node>>,
    done: CancellationToken,
}

impl Setup {
    /// First run in `dir` with a fresh setup code.
    pub fn new(dir: PathBuf, host_names: Vec<String>) -> Setup {
        let code = format!("{:08}", rand::random::<u32>() % 100_000_000);
        Setup(Arc::new(SetupInner {
            dir,
            code,
            host_names,
            wrong: Mutex::new(0),
            created: Mutex::new(None),
            done: CancellationToken::new(),
        }))
    }

    /// The one-time code the page asks for.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// Fires once the store exists.
    pub fn done(&self) -> CancellationToken {
        self.0.done.clone()
    }

    /// The node the page created, once.
    pub fn take_node(&self) -> Option<Node> {
        self.0.created.lock().ok()?.take()
    }

    /// The first-run routes: the page, its form, the static files and a health answer
    /// that says the till is not ready yet.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/ui/mulai", post(create))
            .route("/ui/gabung", post(join))
            .route("/ui/static/{file}", get(super::asset))
            .route("/ui/bahasa/{code}", get(super::login::language))
            .route("/v1/health", get(health))
            .fallback(get(setup_page))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                host_guard,
            ))
            .with_state(self.clone())
    }
}

async fn host_guard(
    State(setup): State<Setup>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if crate::http::host_allowed(req.headers(), &setup.0.host_names) {
        next.run(req).await
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

/// What `/v1/health` answers while the store is not created.
#[derive(Serialize)]
struct SetupHealth {
    status: &'static str,
}

async fn health() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(SetupHealth { status: "setup" }),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CodeQuery {
    #[serde(default)]
    kode: Option<String>,
}

fn form(lang: Lang, code: Option<&str>) -> Markup {
    html! {
        div.card.center {
            h1 { (t(Msg::NewStore, lang)) }
            p { (t(Msg::NewStoreHint, lang)) }
            form id="setup" hx-post="/ui/mulai" hx-target="#setup-error" hx-disabled-elt="find button" {
                @match code {
                    Some(c) => input type="hidden" name="kode" value=(c);,
                    None => {
                        label for="kode" { (t(Msg::SetupCode, lang)) }
                        input id="kode" name="kode" inputmode="numeric" autocomplete="off" required;
                    }
                }
                label for="store_name" { (t(Msg::StoreName, lang)) }
                input id="store_name" name="store_name" maxlength="120" required placeholder="Warung Bu Sri";
                label for="till_code" { (t(Msg::TillCode, lang)) }
                input id="till_code" name="till_code" value="T1" maxlength="16" required;
                label for="owner_name" { (t(Msg::OwnerName, lang)) }
                input id="owner_name" name="owner_name" maxlength="60" required;
                label for="pin" { (t(Msg::Pin, lang)) " (4–12 " (t(Msg::Digits, lang)) ")" }
                input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="new-password" minlength="4" maxlength="12" required;
                label for="pin2" { (t(Msg::PinAgain, lang)) }
                input id="pin2" name="pin2" type="password" inputmode="numeric" autocomplete="new-password" minlength="4" maxlength="12" required;
                div.actions { button.primary type="submit" id="create-store" { (t(Msg::CreateStore, lang)) } }
                p.error id="setup-error" {}
            }
        }
        div.card.center {
            h2 { (t(Msg::JoinStore, lang)) }
            p.hint { (t(Msg::JoinHint, lang)) }
            form id="join" hx-post="/ui/gabung" hx-target="#join-error" hx-disabled-elt="find button" {
                @match code {
                    Some(c) => input type="hidden" name="kode" value=(c);,
                    None => {
                        label for="join_kode" { (t(Msg::SetupCode, lang)) }
                        input id="join_kode" name="kode" inputmode="numeric" autocomplete="off" required;
                    }
                }
                label for="ticket" { (t(Msg::Invite, lang)) }
                // A 2D scanner types the QR code's text here, as a keyboard does.
                textarea id="ticket" name="ticket" rows="3" required autocomplete="off" spellcheck="false" {}
                label for="join_till_code" { (t(Msg::TillCode, lang)) }
                input id="join_till_code" name="till_code" maxlength="16" placeholder="T2";
                div.actions { button.primary type="submit" id="join-store" { (t(Msg::JoinStore, lang)) } }
                p.hint.htmx-indicator { (t(Msg::Joining, lang)) }
                p.error id="join-error" {}
            }
        }
    }
}

/// Any page: the form that creates the store.
async fn setup_page(headers: HeaderMap, Query(q): Query<CodeQuery>) -> Response {
    let lang = lang(&headers);
    let bar = Bar {
        store: "Kasir".into(),
        till: "—".into(),
        user: None,
        admin: false,
        sync: (0, false, 0),
    };
    let body = form(lang, q.kode.as_deref().filter(|c| !c.is_empty()));
    html_response(page(lang, t(Msg::NewStore, lang), &bar, Nav::None, body))
}

#[derive(Deserialize)]
struct CreateForm {
    kode: String,
    store_name: String,
    till_code: String,
    owner_name: String,
    pin: String,
    pin2: String,
}

/// Why the form was refused, said in place.
fn refused(text: impl Into<String>) -> Response {
    html_response(html! { (text.into()) })
}

impl Setup {
    /// The answer refusing `given` when it is not the setup code (after
    /// [`MAX_WRONG_CODES`] wrong ones no code is); `None` lets the form go on.
    fn refuse_code(&self, lang: Lang, given: &str) -> Option<Response> {
        let Ok(mut wrong) = self.0.wrong.lock() else {
            return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        if *wrong >= MAX_WRONG_CODES {
            return Some(refused(t(Msg::SetupClosed, lang)));
        }
        if blake3::hash(given.trim().as_bytes()) != blake3::hash(self.0.code.as_bytes()) {
            *wrong += 1;
            return Some(refused(t(Msg::WrongSetupCode, lang)));
        }
        None
    }

    /// Hands the node made here to the daemon.
    fn finish(&self, node: Node) {
        if let Ok(mut slot) = self.0.created.lock() {
            *slot = Some(node);
        }
        self.0.done.cancel();
    }
}

#[derive(Deserialize)]
struct JoinForm {
    kode: String,
    ticket: String,
    #[serde(default)]
    till_code: String,
}

/// `POST /ui/gabung`: this till joins an existing store with an invite (what `kasir join`
/// does), then becomes that store's till; its people log in with the PINs they have.
async fn join(State(setup): State<Setup>, headers: HeaderMap, Form(f): Form<JoinForm>) -> Response {
    let lang = lang(&headers);
    if !super::write_allowed(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(r) = setup.refuse_code(lang, &f.kode) {
        return r;
    }
    // Scanners and paste add spaces and line breaks; a ticket has none.
    let text: String = f.ticket.split_whitespace().collect();
    let ticket = match kasir_sync::membership::Ticket::decode(&text) {
        Ok(t) => t,
        Err(e) => return refused(format!("{}: {e}", t(Msg::BadInvite, lang))),
    };
    let till_code = Some(f.till_code.trim().to_owned()).filter(|c| !c.is_empty());
    let dir = setup.0.dir.clone();
    let joined =
        crate::lan::join_store(&dir, &ticket, till_code, crate::lan::FIRST_SYNC, None).await;
    // Admitted but the first sync cut short (the Wi-Fi dropped): the store is here and
    // the till syncs on once it runs; the invite is used, so asking again would fail.
    match tokio::task::spawn_blocking(move || Node::open(&dir)).await {
        Ok(Err(_)) if joined.is_err() => {
            refused(joined.err().map(|e| e.to_string()).unwrap_or_default())
        }
        Ok(Ok(node)) => {
            setup.finish(node);
            let mut r = go(&headers, "/ui/masuk");
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => refused(super::problem(lang, &e)),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `POST /ui/mulai`: creates the store and its owner, then hands the node to the daemon
/// and sends the browser to a one-time login link.
async fn create(
    State(setup): State<Setup>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Response {
    let lang = lang(&headers);
    if !super::write_allowed(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(r) = setup.refuse_code(lang, &f.kode) {
        return r;
    }
    if f.pin != f.pin2 {
        return refused(t(Msg::PinsDiffer, lang));
    }
    let inner = setup.clone();
    let created = tokio::task::spawn_blocking(move || {
        let (mut node, owner) = Node::create_store(
            &inner.0.dir,
            &InitOptions {
                store_name: f.store_name.trim().to_owned(),
                till_code: f.till_code.trim().to_owned(),
                encrypt: None,
            },
            Some((&f.owner_name, &f.pin)),
        )?;
        let link = match owner {
            Some(o) => Some(node.login_link(&o.user_id)?),
            None => None,
        };
        Ok::<_, NodeError>((node, link))
    })
    .await;
    match created {
        Ok(Ok((node, link))) => {
            setup.finish(node);
            let to = link.map_or_else(|| "/".to_owned(), |l| format!("/ui/masuk/{l}"));
            let mut r = go(&headers, &to);
            // The till takes over the address a moment later; the browser waits for it.
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => refused(super::problem(lang, &e)),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
