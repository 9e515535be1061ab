//! Errors of the node's operations, each with a stable snake_case code for the HTTP API.
//!
//! Failures of a layer below keep their typed source (`DocError`, `PricingError`,
//! `AdmissionError`, SQLite, io); only the engine's own validation speaks in sentences.

use kasir_crdt::DocError;
use kasir_crdt::pricing::PricingError;
use kasir_sync::identity::IdentityError;
use kasir_sync::membership::{AdmissionError, TicketError};

/// Everything that can go wrong in a node operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory has no store yet.
    #[error("no store in {0}: run `kasir init` or `kasir join` first")]
    NotInitialised(String),
    /// `init` on a directory that already holds a store.
    #[error("{0} already holds a store")]
    AlreadyInitialised(String),
    /// A data directory from before signed changes, not upgraded yet.
    #[error("{0} holds history from before signed changes: run `kasir upgrade` once on it")]
    UpgradeRequired(String),
    /// Another process (usually `kasir run`) holds the data directory.
    #[error("data directory {0} is in use by another kasir process")]
    Locked(String),
    /// A SKU that is not in the catalog.
    #[error("unknown SKU {0:?}")]
    UnknownSku(String),
    /// A sale id, receipt or document that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Tendered less than the total.
    #[error("payment of {paid} is short of the total {total}")]
    InsufficientPayment {
        /// What is owed.
        total: i64,
        /// What was tendered.
        paid: i64,
    },
    /// A request that is malformed or violates a rule.
    #[error("{0}")]
    Invalid(String),
    /// This device's role may not do this (peers would refuse the change).
    #[error("{0}")]
    Forbidden(String),
    /// The operation conflicts with existing state (e.g. voiding a voided sale).
    #[error("{0}")]
    Conflict(String),
    /// A cart that cannot be priced (a discount above the line, a bad payment).
    #[error(transparent)]
    Pricing(PricingError),
    /// An invite, admission or role request refused by the membership rules.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// A receipt that cannot be laid out (a width the layout does not support).
    #[error(transparent)]
    Receipt(#[from] kasir_devices::receipt::ReceiptError),
    /// A receipt that cannot be encoded for the printer's profile.
    #[error(transparent)]
    Encode(#[from] kasir_devices::encode::EncodeError),
    /// A printer address that is not one Kasir can print to.
    #[error(transparent)]
    PrinterUri(#[from] kasir_devices::transport::UriError),
    /// A string that is not a join ticket.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// A record that cannot be stored as asked (a field out of range).
    #[error(transparent)]
    BadRecord(DocError),
    /// A document could not be read or written.
    #[error("corrupt data: {0}")]
    Doc(DocError),
    /// The device key could not be read or written.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// An encrypted data directory's key is missing, exposed or wrong.
    #[error(transparent)]
    Key(#[from] crate::vault::KeyError),
    /// Stored data that cannot be read: a damaged database or document.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// SQLite failed.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// File system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The action needs a higher role: a supervisor's (or above) PIN as `approval`.
    #[error("{0}")]
    ApprovalRequired(String),
    /// No valid credentials: no token, an unknown or expired one, a disabled user.
    #[error("{0}")]
    Unauthenticated(String),
    /// A PIN that does not match (or a user that does not exist: a login tells neither).
    #[error("wrong name or PIN")]
    BadPin,
    /// Too many wrong PINs: the user is locked out on this till until `until_ms`.
    #[error("too many wrong PINs: locked until {until_ms} (ms since the epoch)")]
    LockedOut {
        /// When the lockout ends.
        until_ms: i64,
    },
    /// A refund the sale does not allow (more than is left, a SKU not sold).
    #[error(transparent)]
    Refund(#[from] kasir_crdt::refund::RefundError),
    /// A thread panicked while it held the node (a bug): the node is not used again.
    #[error("the node failed while another request held it; restart kasir")]
    Poisoned,
    /// A service beyond the till (the QRIS acquirer) failed or could not be reached.
    #[error("{0}")]
    Upstream(String),
}

impl NodeError {
    /// The stable error code used in HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NotInitialised(_) => "not_initialised",
            NodeError::AlreadyInitialised(_) => "already_initialised",
            NodeError::Locked(_) => "locked",
            NodeError::UpgradeRequired(_) => "upgrade_required",
            NodeError::UnknownSku(_) => "unknown_sku",
            NodeError::NotFound(_) => "not_found",
            NodeError::InsufficientPayment { .. } => "insufficient_payment",
            NodeError::Admission(e) if e.is_conflict() => "conflict",
            NodeError::Conflict(_) => "conflict",
            NodeError::Refund(kasir_crdt::refund::RefundError::Exceeds { .. }) => {
                "refund_exceeds_sale"
            }
            NodeError::Refund(_) => "invalid_request",
            NodeError::Forbidden(_) => "forbidden",
            NodeError::Invalid(_)
            | NodeError::Pricing(_)
            | NodeError::Admission(_)
            | NodeError::Ticket(_)
            | NodeError::Receipt(_)
            | NodeError::Encode(_)
            | NodeError::PrinterUri(_)
            | NodeError::BadRecord(_) => "invalid_request",
            NodeError::Corrupt(_)
            | NodeError::Doc(_)
            | NodeError::Identity(IdentityError::Malformed { .. }) => "corrupt_data",
            NodeError::Storage(_) => "storage_error",
            NodeError::Key(crate::vault::KeyError::AlreadyEncrypted(_)) => "conflict",
            NodeError::Key(_) => "key_unavailable",
            NodeError::Io { .. } | NodeError::Identity(_) => "io_error",
            NodeError::Poisoned => "internal",
            NodeError::Upstream(_) => "upstream_unavailable",
            NodeError::Unauthenticated(_) => "unauthenticated",
            NodeError::ApprovalRequired(_) => "approval_required",
            NodeError::BadPin => "bad_pin",
            // The contract's word for a locked-out login (423, see `http_status`).
            NodeError::LockedOut { .. } => "locked",
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        if matches!(self, NodeError::LockedOut { .. }) {
            return 423;
        }
        match self.code() {
            "unknown_sku" | "invalid_request" => 400,
            "forbidden" | "approval_required" => 403,
            "unauthenticated" | "bad_pin" => 401,

            "not_found" | "not_initialised" => 404,
            "conflict"
            | "already_initialised"
            | "locked"
            | "upgrade_required"
            | "refund_exceeds_sale" => 409,
            "insufficient_payment" => 422,
            "upstream_unavailable" => 502,
            _ => 500,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
        let context = context.into();
        move |source| NodeError::Io { context, source }
    }
}

impl From<PricingError> for NodeError {
    fn from(e: PricingError) -> NodeError {
        match e {
            PricingError::InsufficientPayment { total, paid } => {
                NodeError::InsufficientPayment { total, paid }
            }
            other => NodeError::Pricing(other),
        }
    }
}

impl From<DocError> for NodeError {
    fn from(e: DocError) -> NodeError {
        match e {
            DocError::BadRecord { .. } => NodeError::BadRecord(e),
            other => NodeError::Doc(other),
        }
    }
}

impl<T> From<std::sync::PoisonError<T>> for NodeError {
    fn from(_: std::sync::PoisonError<T>) -> NodeError {
        NodeError::Poisoned
    }
}

/// Turns SQLite's "not a database" and "malformed" errors into a clear `Corrupt`.
pub(crate) fn classify_sqlite(e: rusqlite::Error, path: &std::path::Path) -> NodeError {
    use rusqlite::ffi::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    {
        return NodeError::Corrupt(format!(
            "{} is damaged or not a kasir database ({e})",
            path.display()
        ));
    }
    NodeError::Storage(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_a_server_error_not_a_bad_request() {
        let e = NodeError::from(std::sync::PoisonError::new(()));
        assert_eq!((e.code(), e.http_status()), ("internal", 500));
        let e = NodeError::from(AdmissionError::InviteUsed);
        assert_eq!((e.code(), e.http_status()), ("conflict", 409));
        let e = NodeError::from(AdmissionError::UnknownInvite);
        assert_eq!((e.code(), e.http_status()), ("invalid_request", 400));
    }
}
