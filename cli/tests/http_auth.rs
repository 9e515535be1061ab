//! The till's HTTP API answers only whom it should (contract, "People and permissions"),
//! over real HTTP against a real daemon:
//!
//! - every route the router serves (walked from `kasir_node::http::route_table`, so a new
//!   route cannot be forgotten) refuses a request without a token, but the health check
//!   and the login;
//! - a `Host` that is not the till's (DNS rebinding) is refused, and so is a write that
//!   is not JSON (a cross-site form);
//! - PIN logins, logout, a lockout after five wrong PINs, role checks on users;
//! - a disabled user's session stops working on another till once it has synced;
//! - a PIN is never stored or logged, only its argon2id hash.

use std::io::{Read, Write};
use std::net::TcpStream;

use kasir_testkit::{Till, wait_for};
use serde_json::{Value, json};

const OWNER_PIN: &str = "918273645546";

fn owner_till(store: &str, code: &str) -> Till {
    Till::with_owner(store, code, "Bu Sri", OWNER_PIN)
}

/// One raw HTTP/1.1 request (the client sets every header, `Host` included); returns
/// the status and the body.
fn raw(base: &str, request: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn login(t: &Till, name: &str, pin: &str) -> (u16, Value) {
    t.running().post_as(
        "/v1/sessions",
        json!({ "name": name, "pin": pin }).to_string().as_bytes(),
        "",
    )
}

#[test]
fn http_auth_every_route_needs_a_token_but_health_and_login() {
    let mut t = owner_till("Warung Kunci", "K1");
    t.start(&[]);
    let d = t.running();
    let routes = kasir_node::http::route_table();
    assert!(routes.len() > 20, "{routes:?}");
    for (method, pattern) in routes {
        // Path parameters get a placeholder: the guard answers before any handler.
        let path: String = pattern
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = match method {
            "GET" => d.get_as(&path, ""),
            "POST" => d.post_as(&path, b"{}", ""),
            "DELETE" => {
                let resp = d
                    .agent
                    .delete(format!("{}{path}", d.base))
                    .call()
                    .expect("DELETE");
                let status = resp.status().as_u16();
                let text = resp.into_body().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            other => panic!("a route with method {other}"),
        };
        match (method, pattern) {
            // The till app: its pages send a stranger to the PIN login; its forms need
            // htmx's header from the till's own page (a cross-site form has neither).
            ("GET", p) if p == "/" || p == "/ui" || p == "/ui/masuk" => {
                assert_eq!(status, 200, "{method} {pattern} is the login")
            }
            ("GET", "/ui/static/{file}") => assert_eq!(status, 404, "no asset named x"),
            ("GET", "/ui/events") => assert_eq!(status, 401, "no live events for a stranger"),
            ("GET", "/ui/bahasa/{code}") => assert_eq!(status, 200, "a language, then the login"),
            ("GET", p) if p.starts_with("/ui/") => {
                assert_eq!(
                    status, 200,
                    "{method} {pattern}: the login page after a redirect"
                )
            }
            ("POST", p) if p.starts_with("/ui/") => {
                assert_eq!(status, 403, "{method} {pattern} without htmx: {body}");
            }
            ("GET", "/v1/health") => assert_eq!(status, 200, "{body}"),
            ("POST", "/v1/sessions") => assert_eq!(status, 400, "a login needs a PIN: {body}"),
            ("GET", "/metrics") => assert_eq!(status, 200, "/metrics on loopback"),
            _ => {
                assert_eq!(status, 401, "{method} {pattern} without a token: {body}");
                assert_eq!(code(&body), "unauthenticated", "{method} {pattern}");
            }
        }
    }
    // A made-up token is no better.
    let (status, body) = d.get_as("/v1/status", "Bearer kt_made_up");
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    // The device token works (what `kasir` and scripts use).
    assert_eq!(d.get("/v1/status").0, 200);
    let printed = t.ok(&["token"]);
    assert_eq!(
        format!("Bearer {}", printed["token"].as_str().expect("token")),
        d.authorization()
    );
}

#[test]
fn http_auth_refuses_a_foreign_host_and_a_write_that_is_not_json() {
    let mut t = owner_till("Warung Host", "H1");
    t.start(&[]);
    let d = t.running();
    let auth = d.authorization();
    let port = d.base.rsplit(':').next().expect("port").to_owned();
    for (host, allowed) in [
        (format!("127.0.0.1:{port}"), true),
        (format!("localhost:{port}"), true),
        ("192.168.1.20:8080".to_owned(), true),
        ("attacker.example".to_owned(), false),
        (format!("rebind.attacker.example:{port}"), false),
    ] {
        let (status, body) = raw(
            &d.base,
            &format!(
                "GET /v1/status HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
            ),
        );
        if allowed {
            assert_eq!(status, 200, "Host {host}: {body}");
        } else {
            assert_eq!(status, 403, "Host {host}: {body}");
            assert!(body.contains("forbidden_host"), "{body}");
        }
    }
    // A cross-site form posts text/plain: refused before it reaches a handler, token or not.
    let form = "{\"lines\":[{\"sku\":\"X\",\"qty\":1}]}";
    for authorization in ["", auth.as_str()] {
        let header = if authorization.is_empty() {
            String::new()
        } else {
            format!("Authorization: {authorization}\r\n")
        };
        let (status, body) = raw(
            &d.base,
            &format!(
                "POST /v1/sales HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
                form.len()
            ),
        );
        assert_eq!(status, 415, "{body}");
    }
    let (sales, _) = d.get("/v1/sales");
    assert_eq!(sales, 200);
    assert_eq!(
        d.get("/v1/sales").1["sales"].as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn http_auth_pin_logins_lockout_and_roles() {
    let mut t = owner_till("Warung PIN", "P1");
    let cashier = t.add_user("Ani", "cashier", "135790");
    assert!(cashier["user_id"].is_string(), "{cashier}");
    assert_eq!(cashier["role"], "cashier");
    t.ok(&[
        "product", "add", "--sku", "KOPI", "--name", "Kopi", "--price", "5000", "--stock", "10",
    ]);
    t.start(&[]);
    let d = t.running();

    // The owner logs in and acts with the token.
    let (status, session) = login(&t, "bu sri", OWNER_PIN);
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["user"]["role"], "owner");
    let owner = format!("Bearer {}", session["token"].as_str().expect("token"));
    assert_eq!(d.get_as("/v1/status", &owner).0, 200);
    let (_, users) = d.get_as("/v1/users", &owner);
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2), "{users}");
    assert!(
        !users.to_string().contains("argon2"),
        "no PIN hash leaves the till: {users}"
    );

    // The cashier may sell but not manage users.
    let (status, session) = login(&t, "Ani", "135790");
    assert_eq!(status, 201, "{session}");
    let cashier_auth = format!("Bearer {}", session["token"].as_str().expect("token"));
    let (status, body) = d.post_as(
        "/v1/users",
        json!({"name": "Budi", "role": "manager", "pin": "2222"})
            .to_string()
            .as_bytes(),
        &cashier_auth,
    );
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    // A manager added by the owner may not add an owner.
    let (status, _) = d.post_as(
        "/v1/users",
        json!({"name": "Budi", "role": "manager", "pin": "2222"})
            .to_string()
            .as_bytes(),
        &owner,
    );
    assert_eq!(status, 201);
    let (_, session) = login(&t, "Budi", "2222");
    let manager = format!("Bearer {}", session["token"].as_str().expect("token"));
    let (status, body) = d.post_as(
        "/v1/users",
        json!({"name": "Cici", "role": "owner", "pin": "3333"})
            .to_string()
            .as_bytes(),
        &manager,
    );
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    // A cashier's void needs a supervisor's (or above) PIN, and names the approver.
    let sell = json!({"lines": [{"sku": "KOPI", "qty": 1}]}).to_string();
    let (status, sale) = d.post_as("/v1/sales", sell.as_bytes(), &cashier_auth);
    assert_eq!(status, 201, "a cashier sells: {sale}");
    let void_path = format!("/v1/sales/{}/void", sale["sale_id"].as_str().expect("id"));
    let (status, body) = d.post_as(&void_path, b"{\"reason\":\"salah\"}", &cashier_auth);
    assert_eq!((status, code(&body)), (403, "approval_required"), "{body}");
    let by_cashier = json!({"reason": "salah", "approval": {"name": "Ani", "pin": "135790"}});
    let (status, body) = d.post_as(&void_path, by_cashier.to_string().as_bytes(), &cashier_auth);
    assert_eq!(
        (status, code(&body)),
        (403, "forbidden"),
        "a cashier approves nothing: {body}"
    );
    let wrong = json!({"reason": "salah", "approval": {"name": "Budi", "pin": "9999"}});
    let (status, body) = d.post_as(&void_path, wrong.to_string().as_bytes(), &cashier_auth);
    assert_eq!((status, code(&body)), (401, "bad_pin"), "{body}");
    let approved = json!({"reason": "salah", "approval": {"name": "Budi", "pin": "2222"}});
    let (status, body) = d.post_as(&void_path, approved.to_string().as_bytes(), &cashier_auth);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approved_by"], "Budi");
    let (_, detail) = d.get(&format!(
        "/v1/sales/{}",
        sale["sale_id"].as_str().expect("id")
    ));
    assert_eq!(detail["status"], "voided", "{detail}");

    // Logging out ends the session.
    let resp = d
        .agent
        .delete(format!("{}/v1/sessions/current", d.base))
        .header("authorization", &cashier_auth)
        .call()
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(d.get_as("/v1/status", &cashier_auth).0, 401);

    // Five wrong PINs lock Ani out, even with the right PIN afterwards.
    for attempt in 1..=5 {
        let (status, body) = login(&t, "Ani", "000000");
        let expected = if attempt < 5 {
            (401, "bad_pin")
        } else {
            (423, "locked")
        };
        assert_eq!((status, code(&body)), expected, "attempt {attempt}: {body}");
    }
    let (status, body) = login(&t, "Ani", "135790");
    assert_eq!((status, code(&body)), (423, "locked"), "{body}");
    // Somebody unknown gets the same answer as a wrong PIN.
    let (status, body) = login(&t, "Nobody", "135790");
    assert_eq!((status, code(&body)), (401, "bad_pin"), "{body}");
}

#[test]
fn http_auth_a_disabled_user_session_ends_on_another_till_after_sync() {
    let mut a = owner_till("Warung Dua", "A1");
    let added = a.add_user("Dedi", "cashier", "246810");
    let dedi = added["user_id"].as_str().expect("id").to_owned();
    a.start(&[]);
    let mut b = Till::empty();
    a.admit(&b);
    b.start(&[a.peer_arg()]);
    // Dedi works on till B.
    let session = wait_for(30, "Dedi to be known on B", || {
        let (status, session) = login(&b, "Dedi", "246810");
        (status == 201).then_some(session)
    });
    let on_b = format!("Bearer {}", session["token"].as_str().expect("token"));
    assert_eq!(b.running().get_as("/v1/status", &on_b).0, 200);
    // The owner disables Dedi on till A: B stops honouring the session once synced.
    a.ok(&["user", "disable", &dedi]);
    wait_for(30, "B to refuse Dedi's session", || {
        (b.running().get_as("/v1/status", &on_b).0 == 401).then_some(())
    });
    let (status, body) = login(&b, "Dedi", "246810");
    assert_eq!((status, code(&body)), (401, "bad_pin"), "{body}");
}

#[test]
fn http_auth_a_pin_is_never_stored_or_logged() {
    let mut t = owner_till("Warung Rahasia", "R1");
    t.add_user("Eka", "supervisor", "777111333555");
    t.start(&[]);
    let (status, _) = login(&t, "Eka", "777111333555");
    assert_eq!(status, 201);
    let (status, _) = login(&t, "Eka", "123412341234");
    assert_eq!(status, 401);
    t.shutdown();
    for entry in std::fs::read_dir(t.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for pin in [OWNER_PIN, "777111333555", "123412341234"] {
            assert!(!text.contains(pin), "PIN {pin} found in {}", path.display());
        }
    }
    // The data directory is encrypted: what it holds is read through its key, the
    // documents' changes included.
    let chunks = t.chunk_bytes();
    let text = String::from_utf8_lossy(&chunks);
    for pin in [OWNER_PIN, "777111333555", "123412341234"] {
        assert!(!text.contains(pin), "PIN {pin} found in the documents");
    }
    let hashes = text.matches("$argon2id$").count();
    assert!(hashes >= 2, "the PINs are kept as argon2id hashes");
}
