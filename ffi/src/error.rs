//! [`KasirError`]: one variant per error code of the HTTP API and the `kasir` command,
//! so a host handles `unknown_sku` the same way whichever door it came through.

use kasir_node::NodeError;

/// Why a call failed: one variant per error code of the HTTP API (`unknown_sku` is
/// `UnknownSku`), each with the message a person can read.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum KasirError {
    /// `not_initialised`: no store in the data directory.
    #[error("{0}")]
    NotInitialised(String),
    /// `already_initialised`.
    #[error("{0}")]
    AlreadyInitialised(String),
    /// `locked`: another process holds the data directory (or a login is locked out).
    #[error("{0}")]
    Locked(String),
    /// `upgrade_required`.
    #[error("{0}")]
    UpgradeRequired(String),
    /// `key_unavailable`: an encrypted data directory opened without its key, or with
    /// another one.
    #[error("{0}")]
    KeyUnavailable(String),
    /// `unknown_sku`.
    #[error("{0}")]
    UnknownSku(String),
    /// `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// `insufficient_payment`.
    #[error("{0}")]
    InsufficientPayment(String),
    /// `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// `refund_exceeds_sale`.
    #[error("{0}")]
    RefundExceedsSale(String),
    /// `forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// `corrupt_data`.
    #[error("{0}")]
    CorruptData(String),
    /// `storage_error`.
    #[error("{0}")]
    StorageError(String),
    /// `io_error`.
    #[error("{0}")]
    IoError(String),
    /// `unauthenticated`.
    #[error("{0}")]
    Unauthenticated(String),
    /// `approval_required`.
    #[error("{0}")]
    ApprovalRequired(String),
    /// `bad_pin`.
    #[error("{0}")]
    BadPin(String),
    /// `internal`.
    #[error("{0}")]
    Internal(String),
    /// The node was stopped: open it again.
    #[error("the node was stopped")]
    Stopped,
}

impl From<NodeError> for KasirError {
    fn from(e: NodeError) -> KasirError {
        let message = e.to_string();
        match e.code() {
            "not_initialised" => KasirError::NotInitialised(message),
            "already_initialised" => KasirError::AlreadyInitialised(message),
            "locked" => KasirError::Locked(message),
            "upgrade_required" => KasirError::UpgradeRequired(message),
            "key_unavailable" => KasirError::KeyUnavailable(message),
            "unknown_sku" => KasirError::UnknownSku(message),
            "not_found" => KasirError::NotFound(message),
            "insufficient_payment" => KasirError::InsufficientPayment(message),
            "conflict" => KasirError::Conflict(message),
            "refund_exceeds_sale" => KasirError::RefundExceedsSale(message),
            "forbidden" => KasirError::Forbidden(message),
            "invalid_request" => KasirError::InvalidRequest(message),
            "corrupt_data" => KasirError::CorruptData(message),
            "storage_error" => KasirError::StorageError(message),
            "io_error" => KasirError::IoError(message),
            "unauthenticated" => KasirError::Unauthenticated(message),
            "approval_required" => KasirError::ApprovalRequired(message),
            "bad_pin" => KasirError::BadPin(message),
            _ => KasirError::Internal(message),
        }
    }
}
