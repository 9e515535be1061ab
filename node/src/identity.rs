//! The device identity: an ed25519 key whose public half is the iroh endpoint id.
//!
//! Created at `init`/`join`, kept in `identity.key` (32 raw bytes, mode 0600).

use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use kasir_crdt::DeviceId;

use crate::error::NodeError;

/// File name of the secret key in the data directory.
pub const KEY_FILE: &str = "identity.key";

/// This device's key pair.
pub struct Identity {
    secret: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device", &self.device_id())
            .finish()
    }
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Identity {
        Identity {
            secret: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The identity of stored secret bytes (the relay keeps its key in PostgreSQL).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Identity {
        Identity {
            secret: SigningKey::from_bytes(&secret),
        }
    }

    /// The device id (= iroh endpoint id).
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.secret.verifying_key().to_bytes())
    }

    /// The 32 secret bytes (for building the iroh endpoint).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// Loads the key from `dir`.
    pub fn load(dir: &Path) -> Result<Identity, NodeError> {
        let path = dir.join(KEY_FILE);
        let bytes =
            fs::read(&path).map_err(NodeError::io(format!("reading {}", path.display())))?;
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            NodeError::Corrupt(format!(
                "{} must hold exactly 32 bytes, found {}",
                path.display(),
                bytes.len()
            ))
        })?;
        Ok(Identity {
            secret: SigningKey::from_bytes(&secret),
        })
    }

    /// Writes the key to `dir` with owner-only permissions, durably.
    pub fn store(&self, dir: &Path) -> Result<(), NodeError> {
        let path = dir.join(KEY_FILE);
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(&path)
            .map_err(NodeError::io(format!("creating {}", path.display())))?;
        file.write_all(&self.secret.to_bytes())
            .and_then(|()| file.sync_all())
            .map_err(NodeError::io(format!("writing {}", path.display())))
    }
}
