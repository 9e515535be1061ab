//! Errors of the node's operations, each with a stable snake_case code for the HTTP API.

use kasir_crdt::DocError;
use kasir_crdt::pricing::PricingError;

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
    /// The operation conflicts with existing state (e.g. voiding a voided sale).
    #[error("{0}")]
    Conflict(String),
    /// Stored data that cannot be read: a damaged database, key file or document.
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
}

impl NodeError {
    /// The stable error code used in HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NotInitialised(_) => "not_initialised",
            NodeError::AlreadyInitialised(_) => "already_initialised",
            NodeError::Locked(_) => "locked",
            NodeError::UnknownSku(_) => "unknown_sku",
            NodeError::NotFound(_) => "not_found",
            NodeError::InsufficientPayment { .. } => "insufficient_payment",
            NodeError::Invalid(_) => "invalid_request",
            NodeError::Conflict(_) => "conflict",
            NodeError::Corrupt(_) => "corrupt_data",
            NodeError::Storage(_) => "storage_error",
            NodeError::Io { .. } => "io_error",
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            NodeError::UnknownSku(_) | NodeError::Invalid(_) => 400,
            NodeError::NotFound(_) | NodeError::NotInitialised(_) => 404,
            NodeError::Conflict(_) | NodeError::AlreadyInitialised(_) | NodeError::Locked(_) => 409,
            NodeError::InsufficientPayment { .. } => 422,
            NodeError::Corrupt(_) | NodeError::Storage(_) | NodeError::Io { .. } => 500,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
        let context = context.into();
        move |source| NodeError::Io { context, source }
    }
}

impl From<DocError> for NodeError {
    fn from(e: DocError) -> NodeError {
        match e {
            DocError::BadRecord { .. } => NodeError::Invalid(e.to_string()),
            other => NodeError::Corrupt(other.to_string()),
        }
    }
}

impl From<PricingError> for NodeError {
    fn from(e: PricingError) -> NodeError {
        match e {
            PricingError::InsufficientPayment { total, paid } => {
                NodeError::InsufficientPayment { total, paid }
            }
            other => NodeError::Invalid(other.to_string()),
        }
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
