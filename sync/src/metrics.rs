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
        // Every reason is exported from the start, at zero: an alert on `rate()` sees the
        // first refusal, and a dashboard finds the series before anything was refused.
        for reason in crate::trust::RefusalReason::ALL {
            self.refused_changes
                .get_or_create(&RefusalLabels {
                    reason: reason.as_str(),
                })
                .inc_by(0);
        }
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

/// The content type of OpenMetrics text (what `prometheus_client` writes).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A `/metrics` body in the format its scraper asked for: OpenMetrics when the `Accept`
/// header names it (Prometheus does), else the Prometheus text format 0.0.4 (older
/// scrapers, `promtool check metrics`, curl). Returns the content type and the body.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (OPENMETRICS, openmetrics)
    } else {
        (PROMETHEUS_TEXT, openmetrics_to_text(&openmetrics))
    }
}

/// OpenMetrics text as the Prometheus text format 0.0.4. `prometheus_client` writes
/// OpenMetrics only; for the series Kasir exports the two differ in three things: a
/// counter's `# HELP` and `# TYPE` name its `_total` series, and there is no `# UNIT` and
/// no `# EOF` line.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn a_counter_is_named_by_its_total_series_and_eof_goes() {
        let om = "# HELP a_x Things.\n# TYPE a_x counter\na_x_total 3\n\
                  # HELP b Level.\n# TYPE b gauge\n# UNIT b seconds\nb 1.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP a_x_total Things.\n# TYPE a_x_total counter\na_x_total 3\n\
             # HELP b Level.\n# TYPE b gauge\nb 1.5\n"
        );
        let (ctype, body) = negotiate(
            Some("application/openmetrics-text;version=1.0.0"),
            om.into(),
        );
        assert_eq!((ctype, body.as_str()), (OPENMETRICS, om));
        assert_eq!(negotiate(None, om.into()).0, PROMETHEUS_TEXT);
    }
}
