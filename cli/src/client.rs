//! Where a command goes: the data directory itself, or the daemon holding it.
//!
//! [`Backend::call`] runs one [`Operation`] of `kasir_node::api` either on a [`Node`] this
//! process opened, or as an HTTP request to the `kasir run` daemon that holds the
//! directory's lock (found through its `daemon.json`). Both sides use the same request
//! and response types, so no command builds its JSON by hand.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use kasir_node::api::{self, ErrorBody, Method, OpContext, Operation};
use kasir_node::{Node, NodeError, daemon};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The data directory opened here, or the daemon that holds it.
#[derive(Debug)]
pub(crate) enum Backend {
    /// This process holds the directory.
    Local(Box<Node>),
    /// `kasir run` holds it.
    Daemon(DaemonClient),
}

impl Backend {
    /// Opens `dir`, or finds the daemon holding it.
    pub(crate) fn open(dir: &Path) -> Result<Backend> {
        match Node::open(dir) {
            Ok(node) => Ok(Backend::Local(Box::new(node))),
            Err(NodeError::Locked(_)) => match daemon::daemon_info(dir) {
                Some(info) => Ok(Backend::Daemon(DaemonClient::new(
                    info.http,
                    kasir_node::people::read_device_token(dir),
                ))),
                None => bail!(
                    "data directory {} is in use by another kasir process",
                    dir.display()
                ),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Runs operation `O` here or through the daemon.
    pub(crate) fn call<O: Operation>(&mut self, req: O::Request) -> Result<O::Response> {
        match self {
            Backend::Local(node) => {
                // Whoever runs `kasir` on the data directory acts as the device.
                let ctx = OpContext {
                    principal: Some(node.device_principal()),
                    ..OpContext::default()
                };
                Ok(O::run(node, &ctx, req)?)
            }
            Backend::Daemon(d) => d.call::<O>(&req),
        }
    }
}

/// A typed HTTP client of the till daemon.
#[derive(Debug)]
pub(crate) struct DaemonClient {
    base: String,
    agent: ureq::Agent,
    /// `Bearer <device token>`, sent with every request.
    authorization: String,
}

/// Percent-encodes one path segment.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A JSON scalar as a query-string value (`None` for `null`, which is left out).
fn query_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl DaemonClient {
    /// A client of the daemon at `addr`.
    pub(crate) fn new(addr: std::net::SocketAddr, token: Option<String>) -> DaemonClient {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build();
        DaemonClient {
            base: format!("http://{addr}"),
            agent: config.into(),
            authorization: format!("Bearer {}", token.unwrap_or_default()),
        }
    }

    /// The URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends operation `O`: path parameters from the request's fields of the same name,
    /// the rest as the query string (GET) or the JSON body (POST).
    pub(crate) fn call<O: Operation>(&self, req: &O::Request) -> Result<O::Response> {
        let mut fields = match serde_json::to_value(req)? {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let mut path = O::PATH.to_owned();
        for name in api::path_params(O::PATH) {
            let value = fields
                .remove(name)
                .as_ref()
                .and_then(query_value)
                .ok_or_else(|| anyhow!("{name} is missing"))?;
            path = path.replace(&format!("{{{name}}}"), &segment(&value));
        }
        let resp = match O::METHOD {
            Method::Get => {
                let pairs: Vec<(String, String)> = fields
                    .iter()
                    .filter_map(|(k, v)| query_value(v).map(|v| (k.clone(), v)))
                    .collect();
                let query = serde_urlencoded::to_string(&pairs)?;
                let url = if query.is_empty() {
                    self.url(&path)
                } else {
                    format!("{}?{query}", self.url(&path))
                };
                self.agent
                    .get(url)
                    .header("authorization", &self.authorization)
                    .call()
            }
            Method::Post => self
                .agent
                .post(self.url(&path))
                .header("authorization", &self.authorization)
                .send_json(&fields),
        }
        .context("daemon unreachable")?;
        read_json(resp)
    }

    /// `GET path` returning the body's bytes (receipts, ESC/POS).
    pub(crate) fn get_bytes(&self, path_and_query: &str) -> Result<Vec<u8>> {
        let mut resp = self
            .agent
            .get(self.url(path_and_query))
            .header("authorization", &self.authorization)
            .call()
            .context("daemon unreachable")?;
        if resp.status().as_u16() >= 400 {
            return Err(error_of(resp));
        }
        Ok(resp.body_mut().read_to_vec()?)
    }

    /// `POST path` with a raw body, answered by JSON.
    pub(crate) fn post_bytes<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<T> {
        let resp = self
            .agent
            .post(self.url(path_and_query))
            .header("authorization", &self.authorization)
            .header("content-type", content_type)
            .send(body)
            .context("daemon unreachable")?;
        read_json(resp)
    }

    /// `POST path` with a JSON body, answered by JSON.
    pub(crate) fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let resp = self
            .agent
            .post(self.url(path))
            .header("authorization", &self.authorization)
            .send_json(body)
            .context("daemon unreachable")?;
        read_json(resp)
    }
}

fn error_of(mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Error {
    match resp.body_mut().read_json::<ErrorBody>() {
        Ok(body) => anyhow!("{}", body.error.message),
        Err(_) => anyhow!("the daemon answered {}", resp.status()),
    }
}

fn read_json<T: DeserializeOwned>(mut resp: ureq::http::Response<ureq::Body>) -> Result<T> {
    if resp.status().as_u16() >= 400 {
        return Err(error_of(resp));
    }
    resp.body_mut()
        .read_json()
        .context("the daemon's answer does not parse")
}
