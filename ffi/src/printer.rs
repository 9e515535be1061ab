//! The host's printer: [`ForeignPrinter`] is what an app implements to move receipt
//! bytes where Rust cannot reach (Android's Bluetooth SPP socket). The node keeps the
//! queue, the retries and the ESC/POS bytes ([`kasir_node::print`]); the host's
//! `send` runs on the queue's blocking thread, one job at a time.

use std::sync::Arc;

use kasir_devices::transport::AppLink;

/// Why the host could not send a job (the queue retries, then tells the listener).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum PrinterError {
    /// The printer is off, out of reach, or its socket failed.
    #[error("{reason}")]
    Failed {
        /// What went wrong, for the person at the till (not `message`: Kotlin's
        /// exceptions have one of their own).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PrinterError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> PrinterError {
        PrinterError::Failed { reason: e.reason }
    }
}

/// A printer the app reaches itself. `send` gets every byte of one job and returns
/// once they are written, or fails; bound its waits (a socket timeout): the queue stops
/// waiting after a minute but cannot interrupt the call.
#[uniffi::export(with_foreign)]
pub trait ForeignPrinter: Send + Sync {
    /// Writes one job's bytes to the printer the app calls `printer`.
    fn send(&self, printer: String, bytes: Vec<u8>) -> Result<(), PrinterError>;
}

/// The host's printer as the node's print queue sees it.
pub(crate) struct HostPrinter(pub(crate) Arc<dyn ForeignPrinter>);

impl AppLink for HostPrinter {
    fn send(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        self.0
            .send(name.to_owned(), bytes.to_vec())
            .map_err(|e| e.to_string())
    }
}
