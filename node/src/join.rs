//! `kasir join TICKET`: become a till of an existing store through any online member.
//!
//! Creates the device key, asks the members named in the ticket (in order) to admit it,
//! creates the data directory, and syncs once with the member that admitted it so the
//! till has the store, the catalog and the stock before it sells.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use iroh::Endpoint;
use kasir_crdt::DeviceId;
use kasir_node::identity::{Identity, KEY_FILE};
use kasir_node::membership::Ticket;
use kasir_node::node::Node;
use kasir_node::sync::net::{self, JoinRequest, JoinResponse, SharedNode};
use serde_json::{Value, json};

/// Joins and returns the contract's JSON.
pub(crate) fn run(dir: &Path, ticket: &str, till_code: Option<String>) -> Result<Value> {
    let ticket = Ticket::decode(ticket)?;
    std::fs::create_dir_all(dir)?;
    if dir.join(kasir_node::storage::DB_FILE).exists() {
        match Node::open(dir) {
            Ok(node) if node.store_id() == ticket.store_id() => return adopt(dir, node, &ticket),
            Ok(_) => bail!("{} already holds another store", dir.display()),
            Err(kasir_node::NodeError::Locked(_)) => return adopt_through_daemon(dir, &ticket),
            Err(_) => {} // not initialised yet (a failed earlier join): start over
        }
    }
    let identity = if dir.join(KEY_FILE).exists() {
        Identity::load(dir)?
    } else {
        let id = Identity::generate();
        id.store(dir)?;
        id
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let ep = net::bind_endpoint(identity.secret_bytes(), "0.0.0.0:0".parse()?).await?;
        let mut last_err = anyhow!("the ticket names no members");
        for (member, addrs) in &ticket.members {
            let member = DeviceId(*member);
            let addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
            let req = JoinRequest {
                secret: ticket.secret,
                till_code: till_code.clone(),
                addrs: vec![],
            };
            match net::request_join(&ep, member, &addrs, &req).await {
                Ok(JoinResponse::Ok { store, admission }) => {
                    if store != ticket.store {
                        last_err = anyhow!("member {member} answered for another store");
                        continue;
                    }
                    let node = Node::init_joined(dir, ticket.store_id(), &admission.till_code)?;
                    let shared = Arc::new(Mutex::new(node));
                    net::sync_once(
                        &ep,
                        shared.clone(),
                        member,
                        &addrs,
                        Duration::from_secs(120),
                    )
                    .await?;
                    ep.close().await;
                    let node = shared.lock().map_err(|_| anyhow!("node state poisoned"))?;
                    return Ok(json!({
                        "store_id": node.store_id().to_string(),
                        "endpoint_id": node.device_id().to_string(),
                        "till_code": node.till_code(),
                        "role": admission.role.as_str(),
                    }));
                }
                Ok(JoinResponse::Refused(reason)) => bail!("join refused: {reason}"),
                Err(e) => last_err = anyhow!("member {member}: {e}"),
            }
        }
        ep.close().await;
        Err(last_err)
    })
}

/// A ticket for the store this till already holds: a relay adopting it (`kasir-relay store
/// adopt`). Adds the relay to the roster, proves the ticket's secret to it, and hands it
/// the store's documents.
fn adopt(dir: &Path, node: Node, ticket: &Ticket) -> Result<Value> {
    let identity = Identity::load(dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let shared = Arc::new(Mutex::new(node));
    let (relay, relay_code) = rt.block_on(async {
        let ep = net::bind_endpoint(identity.secret_bytes(), "0.0.0.0:0".parse()?).await?;
        let result = adopt_with(&ep, shared.clone(), ticket, Duration::from_secs(300)).await;
        ep.close().await;
        result
    })?;
    let node = shared.lock().map_err(|_| anyhow!("node state poisoned"))?;
    Ok(json!({
        "store_id": node.store_id().to_string(),
        "endpoint_id": node.device_id().to_string(),
        "till_code": node.till_code(),
        "relay": relay.to_string(),
        "relay_code": relay_code,
        "adopted": true,
    }))
}

/// The adoption itself, on an open node (also `kasir demo`'s, whose till keeps running):
/// links the relay the ticket names into the roster, proves the ticket's secret to it
/// from `ep` (an endpoint with the node's key) and syncs once with it, within `timeout`.
/// Returns the relay's device id and its till code.
pub(crate) async fn adopt_with(
    ep: &Endpoint,
    shared: SharedNode,
    ticket: &Ticket,
    timeout: Duration,
) -> Result<(DeviceId, String)> {
    let Some((relay, addrs)) = ticket.members.first() else {
        bail!("the ticket names no relay");
    };
    let relay = DeviceId(*relay);
    let socket_addrs: Vec<SocketAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    shared
        .lock()
        .map_err(|_| anyhow!("node state poisoned"))?
        .check_may_link_relay(relay)?;
    let req = JoinRequest {
        secret: ticket.secret,
        till_code: None,
        addrs: vec![],
    };
    match net::request_join(ep, relay, &socket_addrs, &req).await? {
        JoinResponse::Ok { store, .. } if store == ticket.store => {}
        JoinResponse::Ok { .. } => bail!("relay {relay} answered for another store"),
        JoinResponse::Refused(reason) => bail!("the relay refused: {reason}"),
    }
    // Linked only once the relay accepted the ticket: a refusal leaves the roster as it was.
    let relay_code = shared
        .lock()
        .map_err(|_| anyhow!("node state poisoned"))?
        .link_relay(relay, addrs.clone())?;
    net::sync_once(ep, shared, relay, &socket_addrs, timeout).await?;
    Ok((relay, relay_code))
}

/// Adoption while `kasir run` holds the directory: the daemon links the relay and its
/// dial manager hands the documents over.
fn adopt_through_daemon(dir: &Path, ticket: &Ticket) -> Result<Value> {
    let Some(info) = kasir_node::daemon::daemon_info(dir) else {
        bail!("{} is in use by another kasir process", dir.display());
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut resp = agent
        .post(format!("http://{}/v1/relay/adopt", info.http))
        .send_json(json!({ "ticket": ticket.encode() }))
        .map_err(|e| anyhow!("daemon unreachable: {e}"))?;
    let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    if resp.status().as_u16() >= 400 {
        bail!(
            "{}",
            body["error"]["message"]
                .as_str()
                .unwrap_or("the daemon refused")
        );
    }
    Ok(body)
}
