//! The sync layer's metrics, one set per process (or per in-process node), registered in
//! the process's `prometheus_client` registry by whoever serves `/metrics`.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::replica::ReplicaError;
use crate::session::SessionError;
use crate::trust::Refusal;

/// The label of a refused merge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `unsigned`, `bad_signature`, `wrong_author`, `not_a_member`, `revoked`,
    /// `forbidden`, `identity`, `too_deep`, `malformed`.
    pub reason: &'static str,
}

/// Counters of the sync transport and sessions.
#[derive(Debug, Clone, Default)]
pub struct SyncMetrics {
    /// Bytes of sync frames sent to peers.
    pub bytes_sent: Counter,
    /// Bytes of sync frames received from peers.
    pub bytes_received: Counter,
    /// Connections and sessions refused: not in the roster, or revoked.
    pub refused: Counter,
    /// Sync sessions open now.
    pub sessions: Gauge,
    /// Merges the trust rules refused, by reason.
    pub refused_changes: Family<RefusalLabels, Counter>,
    /// When a peer last sent a sync frame (ms since the epoch; 0: never).
    last_receive_ms: Gauge<i64, AtomicI64>,
}

impl SyncMetrics {
    /// Registers every series under `kasir_sync_*`.
    pub fn register(&self, registry: &mut Registry) {
        let sync = registry.sub_registry_with_prefix("kasir_sync");
        sync.register(
            "bytes_sent",
            "Sync frame bytes sent to peers",
            self.bytes_sent.clone(),
        );
        sync.register(
            "bytes_received",
            "Sync frame bytes received from peers",
            self.bytes_received.clone(),
        );
        sync.register(
            "refused",
            "Sync connections refused (not in the roster, or revoked)",
            self.refused.clone(),
        );
        sync.register("sessions", "Sync sessions open now", self.sessions.clone());
        sync.register(
            "refused_changes",
            "Merges refused by the trust rules, by reason",
            self.refused_changes.clone(),
        );
    }

    /// Counts a session that ended because the trust rules refused what the peer sent.
    pub fn record_session_error(&self, e: &SessionError) {
        if let SessionError::Replica(ReplicaError::Refused(r)) = e {
            self.record_refusal(r);
        }
    }

    /// Counts one refused merge.
    pub fn record_refusal(&self, r: &Refusal) {
        self.refused_changes
            .get_or_create(&RefusalLabels {
                reason: r.reason.as_str(),
            })
            .inc();
    }

    /// Records a frame of `bytes` received at `now_ms`.
    pub fn received(&self, bytes: usize, now_ms: i64) {
        self.bytes_received.inc_by(bytes as u64);
        self.last_receive_ms.set(now_ms);
    }

    /// When a peer last sent a frame (ms since the epoch), if ever.
    pub fn last_receive_ms(&self) -> Option<i64> {
        match self.last_receive_ms.get() {
            0 => None,
            t => Some(t),
        }
    }
}
