//! Encryption at rest: a data directory's database key, who holds it, and the
//! owner-only permissions of everything in the directory.
//!
//! An encrypted data directory's `kasir.sqlite` is a SQLCipher database (every page
//! AES-256 with its own HMAC, so a page changed on disk is refused, not read), and its
//! `identity.key` is sealed (XChaCha20-Poly1305) with the same key. The key itself is
//! never in the data directory: [`ENCRYPTION_FILE`] there names who holds it — a key file
//! elsewhere (a desktop or mini-PC: owner-only, in the user's configuration directory by
//! default) or the host app (a phone keeps it wrapped by the Android Keystore and hands
//! it over when it opens the node) — and a check value, so a wrong key is refused by name
//! before SQLCipher would say "file is not a database".
//!
//! Turning encryption on for an existing directory ([`encrypt_existing`]) exports the
//! plain database into a new encrypted file and swaps it in; the encryption file is the
//! commit point, and an interrupted swap is finished (or undone) on the next open.
//!
//! **Architecture Invariant:** with a key in use, nothing of the store is written to the
//! data directory in the clear (the database, its WAL and the device key); the device
//! token (a bearer for this till's own API, not a store secret) stays owner-only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use kasir_sync::Identity;
use kasir_sync::identity::KEY_FILE;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::storage::{self, DB_FILE};

/// The file in an encrypted data directory that says who holds its key (never the key).
pub const ENCRYPTION_FILE: &str = "encryption.json";

/// The encrypted copy of a plain database while [`encrypt_existing`] swaps it in.
const ENCRYPTING_FILE: &str = "kasir.sqlite.encrypting";

/// Prefix of a sealed secret: a version, then a nonce and the ciphertext.
const SEALED_MAGIC: &[u8; 6] = b"KSEAL1";

/// Domain of the check value in [`ENCRYPTION_FILE`].
const CHECK_CONTEXT: &str = "kasir 2026-12 database key check";

/// A database key: 32 random bytes, used raw by SQLCipher (no passphrase stretching on
/// every open: the key is as strong as its randomness).
#[derive(Clone, PartialEq, Eq)]
pub struct DbKey([u8; 32]);

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(..)")
    }
}

impl DbKey {
    /// A fresh random key.
    pub fn generate() -> DbKey {
        DbKey(rand::random())
    }

    /// A key the host app kept (the Android Keystore unwraps it for the app).
    pub fn from_bytes(bytes: [u8; 32]) -> DbKey {
        DbKey(bytes)
    }

    /// The key's bytes, for a host that stores it.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The value [`ENCRYPTION_FILE`] keeps to tell this key from another: a keyed hash
    /// that reveals nothing of the key.
    fn check(&self) -> String {
        hex::encode(&blake3::derive_key(CHECK_CONTEXT, &self.0)[..8])
    }

    /// SQLCipher's raw-key literal, `x'…'`.
    pub(crate) fn sql_literal(&self) -> String {
        format!("\"x'{}'\"", hex::encode(self.0))
    }

    /// Seals `plain` (a nonce, then the ciphertext with its tag).
    pub(crate) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; 24] = rand::random();
        let mut out = SEALED_MAGIC.to_vec();
        out.extend_from_slice(&nonce);
        // Encryption of a short buffer in memory cannot fail.
        out.extend(
            cipher
                .encrypt(XNonce::from_slice(&nonce), plain)
                .unwrap_or_default(),
        );
        out
    }

    /// Opens what [`DbKey::seal`] sealed; `None` when the key or the bytes are wrong.
    pub(crate) fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let rest = sealed.strip_prefix(SEALED_MAGIC)?;
        if rest.len() < 24 {
            return None;
        }
        let (nonce, body) = rest.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), body)
            .ok()
    }
}

/// Who holds an encrypted data directory's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "holder", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyHolder {
    /// A key file outside the data directory, owner-only.
    File {
        /// The key file.
        path: PathBuf,
    },
    /// The host app (a phone's Keystore): the key is passed to [`crate::Node::open_keyed`].
    Host,
}

/// How a new data directory is encrypted (`kasir init --encrypt`, `kasir join --encrypt`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Encrypt {
    /// A new key in a new key file at this path ([`default_key_file`] when the user
    /// named none).
    KeyFile(PathBuf),
    /// A key the host app created and keeps.
    Host(DbKey),
}

/// What [`ENCRYPTION_FILE`] holds.
#[derive(Debug, Serialize, Deserialize)]
struct EncryptionFile {
    /// Layout version of this file.
    version: u32,
    #[serde(flatten)]
    holder: KeyHolder,
    /// [`DbKey::check`] of the key.
    check: String,
}

/// Why a data directory's key could not be found, trusted or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file named by the data directory cannot be read.
    #[error("the database key file {} cannot be read ({source}); without it the data cannot be opened", path.display())]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is readable by other users.
    #[error("the database key file {} is readable by other users (mode {mode:o}): run `chmod 600 {}`", path.display(), path.display())]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold a key.
    #[error("{} is not a kasir database key (32 bytes)", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// A key other than this directory's.
    #[error("{what} is not the key of this data directory")]
    Wrong {
        /// Where the key came from.
        what: String,
    },
    /// The host app holds the key and did not pass it.
    #[error("this data directory's key is held by the app: open it with its key")]
    HeldByHost,
    /// The data directory is encrypted already.
    #[error("{0} is encrypted already")]
    AlreadyEncrypted(String),
    /// The encryption file cannot be read.
    #[error("{}: {source}", path.display())]
    EncryptionFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Where a new key file goes when the user names none: `$KASIR_KEY_DIR`, else
/// `$XDG_CONFIG_HOME/kasir/keys`, else `~/.config/kasir/keys`; one file per key, named
/// after a random id.
pub fn default_key_file() -> PathBuf {
    let dir = std::env::var_os("KASIR_KEY_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("kasir/keys"))
        })
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".config/kasir/keys")))
        .unwrap_or_else(|| PathBuf::from("/etc/kasir/keys"));
    dir.join(format!("{}.key", hex::encode(rand::random::<[u8; 8]>())))
}

/// Whether `dir` is encrypted, and who holds its key.
pub fn holder(dir: &Path) -> Result<Option<KeyHolder>, NodeError> {
    Ok(read_encryption_file(dir)?.map(|f| f.holder))
}

fn read_encryption_file(dir: &Path) -> Result<Option<EncryptionFile>, NodeError> {
    let path = dir.join(ENCRYPTION_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NodeError::io(format!("reading {}", path.display()))(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| KeyError::EncryptionFile { path, source }.into())
}

/// The key of `dir`: `None` for a plain directory; for an encrypted one the key its
/// holder keeps (`given` when the host holds it), checked against the directory. Also
/// finishes or undoes an interrupted [`encrypt_existing`].
pub(crate) fn key_for(dir: &Path, given: Option<&DbKey>) -> Result<Option<DbKey>, NodeError> {
    let Some(file) = read_encryption_file(dir)? else {
        remove_if_present(&dir.join(ENCRYPTING_FILE))?;
        return Ok(None);
    };
    let key = match (&file.holder, given) {
        (_, Some(key)) => key.clone(),
        (KeyHolder::File { path }, None) => read_key_file(path)?,
        (KeyHolder::Host, None) => return Err(KeyError::HeldByHost.into()),
    };
    if key.check() != file.check {
        let what = match (&file.holder, given) {
            (KeyHolder::File { path }, None) => path.display().to_string(),
            _ => "the key given".to_owned(),
        };
        return Err(KeyError::Wrong { what }.into());
    }
    finish_swap(dir)?;
    Ok(Some(key))
}

fn read_key_file(path: &Path) -> Result<DbKey, NodeError> {
    let unreadable = |source| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(unreadable)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode,
        }
        .into());
    }
    let bytes = fs::read(path).map_err(unreadable)?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed {
            path: path.to_owned(),
        })?;
    Ok(DbKey(key))
}

/// Writes a new key to a new file at `path` (never over an existing one), owner-only,
/// durably, in a directory only its owner can list.
fn create_key_file(path: &Path) -> Result<DbKey, NodeError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .and_then(|()| fs::set_permissions(parent, fs::Permissions::from_mode(0o700)))
            .map_err(NodeError::io(format!("creating {}", parent.display())))?;
    }
    let key = DbKey::generate();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(NodeError::io(format!("creating {}", path.display())))?;
    file.write_all(&key.0)
        .and_then(|()| file.sync_all())
        .map_err(NodeError::io(format!("writing {}", path.display())))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(NodeError::io(format!("syncing {}", parent.display())))?;
    }
    Ok(key)
}

/// Makes `dir` an encrypted data directory before anything is written to it (a new
/// store, a join): the key file (for [`Encrypt::KeyFile`]) and the encryption file. A
/// directory already prepared with the same holder (an interrupted `init`) keeps its key.
pub(crate) fn prepare(dir: &Path, how: &Encrypt) -> Result<DbKey, NodeError> {
    if let Some(existing) = read_encryption_file(dir)? {
        let given = match how {
            Encrypt::Host(key) => Some(key),
            Encrypt::KeyFile(_) => None,
        };
        if let Some(key) = key_for(dir, given)? {
            return Ok(key);
        }
        return Err(KeyError::AlreadyEncrypted(format!("{:?}", existing.holder)).into());
    }
    let (key, holder) = new_key(how)?;
    write_encryption_file(dir, &key, holder)?;
    Ok(key)
}

/// The key `how` asks for (a new key file, or the host's key) and who holds it.
fn new_key(how: &Encrypt) -> Result<(DbKey, KeyHolder), NodeError> {
    Ok(match how {
        Encrypt::KeyFile(path) => (
            create_key_file(path)?,
            KeyHolder::File {
                path: absolute(path),
            },
        ),
        Encrypt::Host(key) => (key.clone(), KeyHolder::Host),
    })
}

fn write_encryption_file(dir: &Path, key: &DbKey, holder: KeyHolder) -> Result<(), NodeError> {
    let file = EncryptionFile {
        version: 1,
        holder,
        check: key.check(),
    };
    let path = dir.join(ENCRYPTION_FILE);
    let json = serde_json::to_vec_pretty(&file).map_err(|source| KeyError::EncryptionFile {
        path: path.clone(),
        source,
    })?;
    storage::write_file_atomic(&path, &json, true)
        .map_err(NodeError::io(format!("writing {}", path.display())))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Loads this device's key from `dir`: sealed with `key` in an encrypted directory (a
/// plain key file found there, left by an interrupted [`encrypt_existing`], is sealed
/// now), raw in a plain one.
pub(crate) fn load_identity(dir: &Path, key: Option<&DbKey>) -> Result<Identity, NodeError> {
    let path = dir.join(KEY_FILE);
    let bytes = fs::read(&path).map_err(NodeError::io(format!("reading {}", path.display())))?;
    let sealed = bytes.starts_with(SEALED_MAGIC);
    match (key, sealed) {
        (None, false) => Ok(Identity::load(dir)?),
        (None, true) => Err(KeyError::HeldByHost.into()),
        (Some(key), true) => {
            let secret = key
                .unseal(&bytes)
                .and_then(|plain| <[u8; 32]>::try_from(plain.as_slice()).ok())
                .ok_or_else(|| {
                    NodeError::Corrupt(format!(
                        "{} cannot be opened with this directory's key",
                        path.display()
                    ))
                })?;
            Ok(Identity::from_secret_bytes(secret))
        }
        (Some(key), false) => {
            let identity = Identity::load(dir)?;
            store_identity(dir, &identity, key, true)?;
            Ok(identity)
        }
    }
}

/// Loads this device's key from `dir`, or creates one (sealed with `key` when given).
pub(crate) fn load_or_create_identity(
    dir: &Path,
    key: Option<&DbKey>,
) -> Result<Identity, NodeError> {
    if Identity::exists_in(dir) {
        return load_identity(dir, key);
    }
    let identity = Identity::generate();
    match key {
        None => identity.store(dir)?,
        Some(key) => store_identity(dir, &identity, key, false)?,
    }
    Ok(identity)
}

/// Writes `identity` as this directory's device key (a restore): sealed with `key` when
/// the directory is encrypted, raw otherwise.
pub(crate) fn store_new_identity(
    dir: &Path,
    identity: &Identity,
    key: Option<&DbKey>,
) -> Result<(), NodeError> {
    match key {
        Some(key) => store_identity(dir, identity, key, false),
        None => Ok(identity.store(dir)?),
    }
}

fn store_identity(
    dir: &Path,
    identity: &Identity,
    key: &DbKey,
    replace: bool,
) -> Result<(), NodeError> {
    let path = dir.join(KEY_FILE);
    if !replace && path.exists() {
        return Err(NodeError::Conflict(format!("{} exists", path.display())));
    }
    storage::write_file_atomic(&path, &key.seal(&identity.secret_bytes()), true)
        .map_err(NodeError::io(format!("writing {}", path.display())))
}

/// Creates `dir` (and its parents) if missing, owner-only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
        .map_err(NodeError::io(format!("creating {}", dir.display())))
}

/// Makes `dir` and the files in it owner-only where they are not (a directory made by an
/// older version, or copied with a permissive umask); returns nothing to the caller
/// but logs what it changed.
pub(crate) fn tighten(dir: &Path) -> Result<(), NodeError> {
    let set = |path: &Path, mode: u32| -> Result<(), NodeError> {
        let meta = fs::symlink_metadata(path)
            .map_err(NodeError::io(format!("reading {}", path.display())))?;
        let current = meta.permissions().mode() & 0o777;
        if current & 0o077 != 0 && !meta.file_type().is_symlink() {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(NodeError::io(format!("restricting {}", path.display())))?;
            tracing::warn!(path = %path.display(), was = format!("{current:o}"), "made owner-only");
        }
        Ok(())
    };
    set(dir, 0o700)?;
    let entries = fs::read_dir(dir).map_err(NodeError::io(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(NodeError::io(format!("listing {}", dir.display())))?;
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        set(&path, if is_dir { 0o700 } else { 0o600 })?;
    }
    Ok(())
}

/// Encrypts the plain data directory `dir` (`kasir encrypt`): the database is exported
/// into a new encrypted file, the key is written where `how` says, and the encrypted
/// file replaces the plain one; the device key is sealed. The caller holds the
/// directory's lock. Returns the key holder.
pub(crate) fn encrypt_existing(dir: &Path, how: &Encrypt) -> Result<KeyHolder, NodeError> {
    if let Some(existing) = read_encryption_file(dir)? {
        return Err(KeyError::AlreadyEncrypted(format!(
            "{} ({:?})",
            dir.display(),
            existing.holder
        ))
        .into());
    }
    let target = dir.join(ENCRYPTING_FILE);
    remove_if_present(&target)?;
    let conn = storage::open_db(dir, false, None)?;
    let (key, holder) = new_key(how)?;
    export_encrypted(&conn, &target, Some(&key))?;
    drop(conn);
    // The commit point: from here on the directory is encrypted, and an open finishes
    // the swap if this process does not.
    write_encryption_file(dir, &key, holder.clone())?;
    finish_swap(dir)?;
    load_identity(dir, Some(&key))?;
    Ok(holder)
}

/// Writes the whole database behind `conn` into a new file at `target`, encrypted with
/// `key` (plain without; SQLCipher's export: a consistent snapshot, read in one transaction), fsynced.
pub(crate) fn export_encrypted(
    conn: &rusqlite::Connection,
    target: &Path,
    key: Option<&DbKey>,
) -> Result<(), NodeError> {
    attach_export(conn, target, key)?;
    let exported = conn
        .query_row("SELECT sqlcipher_export('export')", [], |_| Ok(()))
        .map_err(NodeError::from);
    conn.execute_batch("DETACH DATABASE export")?;
    exported?;
    fs::File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(NodeError::io(format!("syncing {}", target.display())))
}

/// Attaches a new, empty database file at `target` as `export`, encrypted with `key`
/// (plain without), for `SELECT sqlcipher_export('export')`. The file is created
/// owner-only before SQLite opens it (SQLite would make it 0644).
pub(crate) fn attach_export(
    conn: &rusqlite::Connection,
    target: &Path,
    key: Option<&DbKey>,
) -> Result<(), NodeError> {
    let path = target
        .to_str()
        .ok_or_else(|| NodeError::Invalid(format!("{} is not a UTF-8 path", target.display())))?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(NodeError::io(format!("creating {}", target.display())))?;
    let key = key
        .map(|k| format!("x'{}'", hex::encode(k.0)))
        .unwrap_or_default();
    conn.execute("ATTACH DATABASE ?1 AS export KEY ?2", [path, key.as_str()])?;
    Ok(())
}

/// Puts an exported encrypted database in place of the plain one, if one is waiting.
fn finish_swap(dir: &Path) -> Result<(), NodeError> {
    let target = dir.join(ENCRYPTING_FILE);
    if !target.exists() {
        return Ok(());
    }
    // The plain database was checkpointed by the export's close; its WAL and index go
    // first, so they never sit beside the encrypted file.
    for suffix in ["-wal", "-shm"] {
        remove_if_present(&dir.join(format!("{DB_FILE}{suffix}")))?;
    }
    fs::rename(&target, dir.join(DB_FILE))
        .and_then(|()| fs::File::open(dir)?.sync_all())
        .map_err(NodeError::io(format!(
            "replacing {}",
            dir.join(DB_FILE).display()
        )))
}

fn remove_if_present(path: &Path) -> Result<(), NodeError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NodeError::io(format!("removing {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let key = DbKey::generate();
        let sealed = key.seal(b"rahasia toko");
        assert_eq!(key.unseal(&sealed).as_deref(), Some(&b"rahasia toko"[..]));
        assert!(DbKey::generate().unseal(&sealed).is_none());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(key.unseal(&flipped).is_none(), "a changed byte is refused");
        assert!(key.unseal(b"KSEAL1short").is_none());
        assert_ne!(key.check(), DbKey::generate().check());
    }
}
