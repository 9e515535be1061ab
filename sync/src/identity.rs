//! The device identity: an ed25519 key whose public half is the iroh endpoint id.
//!
//! A till creates it at `init`/`join` and keeps it in `identity.key` (32 raw bytes, mode
//! 0600); the relay keeps its key in PostgreSQL.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use kasir_crdt::DeviceId;

/// File name of the secret key in a till's data directory.
pub const KEY_FILE: &str = "identity.key";

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// `reading`, `creating` or `writing`.
        action: &'static str,
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold a key.
    #[error("{} is corrupt: a key file holds exactly 32 bytes, found {len}", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// This device's key pair.
#[derive(Clone)]
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

    /// Signs `message` with the device key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.secret.sign(message).to_bytes()
    }

    /// Whether `dir` holds a key file.
    pub fn exists_in(dir: &Path) -> bool {
        dir.join(KEY_FILE).exists()
    }

    /// Loads the key from `dir`.
    pub fn load(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join(KEY_FILE);
        let bytes = fs::read(&path).map_err(|source| IdentityError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let secret: [u8; 32] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::Malformed {
                    path: path.clone(),
                    len: bytes.len(),
                })?;
        Ok(Identity::from_secret_bytes(secret))
    }

    /// Loads the key from `dir`, or creates and stores a new one if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        if Identity::exists_in(dir) {
            return Identity::load(dir);
        }
        let identity = Identity::generate();
        identity.store(dir)?;
        Ok(identity)
    }

    /// Writes the key to `dir` with owner-only permissions, durably. Never overwrites.
    pub fn store(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |action, source| IdentityError::Io {
            action,
            path: path.clone(),
            source,
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path).map_err(|e| io("creating", e))?;
        file.write_all(&self.secret.to_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("writing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_loads_as_the_same_device_and_a_short_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Identity::load_or_create(dir.path()).expect("create");
        assert_eq!(
            Identity::load(dir.path()).expect("load").device_id(),
            id.device_id()
        );
        assert!(id.store(dir.path()).is_err(), "a key is never overwritten");
        fs::write(dir.path().join(KEY_FILE), [1, 2, 3]).expect("write");
        assert!(matches!(
            Identity::load(dir.path()),
            Err(IdentityError::Malformed { len: 3, .. })
        ));
    }
}
