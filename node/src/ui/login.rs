//! Masuk: the PIN login, one-time login links, logout and the language switch.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{Lang, Msg, Nav, bar, call, fail, go, html_response, lang, page, problem, t, user};
use crate::http::AppState;

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
