//! `kasir join TICKET`: become a till of an existing store through any online member, or
//! (a ticket for the store this till already holds) hand the store to a relay.
//!
//! The protocol is the engine's (`kasir_node::lan::join_store`, `adopt_relay`); this
//! module decides which of the three cases applies: a new data directory, the directory
//! opened here, or the directory a running daemon holds.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use kasir_node::api::{AdoptRequest, TillIdentity};
use kasir_node::lan;
use kasir_node::vault::Encrypt;
use kasir_node::{DB_FILE, Node, NodeError, SharedNode, daemon};
use kasir_sync::membership::Ticket;

use crate::client::DaemonClient;

/// How long handing a store to a relay may take.
const ADOPT_SYNC: Duration = Duration::from_secs(300);

/// Joins and returns who this till now is.
pub(crate) fn run(
    dir: &Path,
    ticket: &str,
    till_code: Option<String>,
    encrypt: Option<Encrypt>,
) -> Result<TillIdentity> {
    let ticket = Ticket::decode(ticket)?;
    let rt = tokio::runtime::Runtime::new()?;
    if dir.join(DB_FILE).exists() {
        match Node::open(dir) {
            Ok(node) if node.store_id() == ticket.store_id() => {
                return rt.block_on(adopt(node, &ticket));
            }
            Ok(_) => bail!("{} already holds another store", dir.display()),
            Err(NodeError::Locked(_)) => return adopt_through_daemon(dir, &ticket),
            Err(_) => {} // not initialised yet (a failed earlier join): start over
        }
    }
    Ok(rt.block_on(lan::join_store(
        dir,
        &ticket,
        till_code,
        lan::FIRST_SYNC,
        encrypt.as_ref(),
    ))?)
}

/// A ticket for the store this till already holds: a relay adopting it (`kasir-relay store
/// adopt`). Adds the relay to the roster, proves the ticket's secret to it, and hands it
/// the store's documents.
async fn adopt(node: Node, ticket: &Ticket) -> Result<TillIdentity> {
    let shared = SharedNode::new(node);
    let ep = lan::bind(&shared, ([0, 0, 0, 0], 0).into()).await?;
    let adopted = lan::adopt_relay(&shared, &ep, ticket, Some(ADOPT_SYNC)).await;
    ep.close().await;
    let adopted = adopted?;
    Ok(TillIdentity {
        relay: Some(adopted.relay.to_string()),
        relay_code: Some(adopted.relay_code),
        adopted: Some(true),
        ..shared.lock()?.till_identity()
    })
}

/// Adoption while `kasir run` holds the directory: the daemon links the relay and its
/// dial manager hands the documents over.
fn adopt_through_daemon(dir: &Path, ticket: &Ticket) -> Result<TillIdentity> {
    let Some(info) = daemon::daemon_info(dir) else {
        bail!("{} is in use by another kasir process", dir.display());
    };
    DaemonClient::new(info.http, kasir_node::people::read_device_token(dir)).post_json(
        "/v1/relay/adopt",
        &AdoptRequest {
            ticket: ticket.encode(),
        },
    )
}
