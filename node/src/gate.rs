//! The app gate: when an app embeds the node (`kasir-ffi`), its till app on
//! `127.0.0.1` must answer that app's WebView only. On a phone every other app can
//! connect to a loopback port too, and a cashier's PIN is four to six digits.
//!
//! The app asks for a **one-time code** and opens the till app at `/?kunci=CODE`; the
//! first request carrying the code spends it and gets a cookie (`kasir_app`, `HttpOnly;
//! SameSite=Strict`) that every later request must carry, on a small page that moves on
//! to the same address without the code (a redirect would lose the cookie in clients
//! without a cookie jar). A code works once and for a
//! few minutes; the cookie for as long as the node runs. `GET /v1/health` stays open (a
//! liveness probe learns nothing). Nothing is written to disk: a restarted node hands
//! out new codes.
//!
//! Who owns what: the daemon's `AppState` holds the one [`AppGate`] (behind a mutex);
//! `http::guard` asks it about every request.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The query parameter that carries a one-time code.
pub const CODE_PARAM: &str = "kunci";

/// The cookie that carries the app's grant.
pub const APP_COOKIE: &str = "kasir_app";

/// How long a code may wait before it is spent.
const CODE_LIFETIME: Duration = Duration::from_secs(300);

/// Codes waiting at most; older ones are forgotten first.
const MAX_CODES: usize = 16;

/// Codes handed out and grants given.
#[derive(Debug, Default)]
pub struct AppGate {
    codes: HashMap<String, Instant>,
    grants: HashSet<String>,
}

/// What the gate decides about one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The request carries a grant.
    Pass,
    /// The request spent a code: answer with this grant as the cookie.
    Grant(String),
    /// Neither.
    Refuse,
}

fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("{prefix}{}", data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

impl AppGate {
    /// A new one-time code.
    pub fn new_code(&mut self) -> String {
        let now = Instant::now();
        self.codes
            .retain(|_, made| now.duration_since(*made) < CODE_LIFETIME);
        while self.codes.len() >= MAX_CODES {
            let oldest = self
                .codes
                .iter()
                .min_by_key(|(_, made)| **made)
                .map(|(code, _)| code.clone());
            match oldest {
                Some(code) => self.codes.remove(&code),
                None => break,
            };
        }
        let code = secret("kc_");
        self.codes.insert(code.clone(), now);
        code
    }

    /// Judges a request by the code in its query and the grant in its cookie.
    pub fn judge(&mut self, code: Option<&str>, grant: Option<&str>) -> Verdict {
        if grant.is_some_and(|g| self.grants.contains(g)) {
            return Verdict::Pass;
        }
        let Some(made) = code.and_then(|c| self.codes.remove(c)) else {
            return Verdict::Refuse;
        };
        if made.elapsed() >= CODE_LIFETIME {
            return Verdict::Refuse;
        }
        let grant = secret("kg_");
        self.grants.insert(grant.clone());
        Verdict::Grant(grant)
    }
}

/// The value of `name` in a query string (codes are URL-safe: no decoding needed).
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_opens_the_gate_once_and_its_grant_keeps_it_open() {
        let mut gate = AppGate::default();
        assert_eq!(gate.judge(None, None), Verdict::Refuse);
        let code = gate.new_code();
        let Verdict::Grant(grant) = gate.judge(Some(&code), None) else {
            panic!("the code was refused");
        };
        assert_eq!(gate.judge(Some(&code), None), Verdict::Refuse, "spent");
        assert_eq!(gate.judge(None, Some(&grant)), Verdict::Pass);
        assert_eq!(gate.judge(None, Some("kg_guess")), Verdict::Refuse);
        assert_eq!(gate.judge(Some("kc_guess"), None), Verdict::Refuse);
    }

    #[test]
    fn waiting_codes_are_bounded() {
        let mut gate = AppGate::default();
        let first = gate.new_code();
        for _ in 0..MAX_CODES {
            gate.new_code();
        }
        assert_eq!(gate.codes.len(), MAX_CODES);
        assert_eq!(gate.judge(Some(&first), None), Verdict::Refuse);
    }

    #[test]
    fn query_params_are_found_by_name() {
        assert_eq!(
            query_param(Some("a=1&kunci=kc_x"), CODE_PARAM),
            Some("kc_x")
        );
        assert_eq!(query_param(Some("kunci"), CODE_PARAM), None);
        assert_eq!(query_param(None, CODE_PARAM), None);
    }
}
