//! The node shared between the HTTP API, the sync tasks and the print queue.
//!
//! One mutex serialises every use of the node, which is also what the single-writer
//! ledger wants. A thread that panics while holding it poisons it; from then on every
//! caller gets [`NodeError::Poisoned`] (a server error), never a half-changed node.

use std::sync::{Arc, Mutex, MutexGuard};

use kasir_sync::SyncMetrics;

use crate::error::NodeError;
use crate::node::Node;

/// A [`Node`] behind one mutex, with the sync counters its sessions keep.
#[derive(Debug, Clone)]
pub struct SharedNode {
    node: Arc<Mutex<Node>>,
    sync_metrics: SyncMetrics,
}

impl SharedNode {
    /// Shares `node`.
    pub fn new(node: Node) -> SharedNode {
        SharedNode {
            node: Arc::new(Mutex::new(node)),
            sync_metrics: SyncMetrics::default(),
        }
    }

    /// Locks the node for one operation.
    pub fn lock(&self) -> Result<MutexGuard<'_, Node>, NodeError> {
        Ok(self.node.lock()?)
    }

    /// The counters of this node's sync sessions.
    pub fn sync_metrics(&self) -> &SyncMetrics {
        &self.sync_metrics
    }
}
