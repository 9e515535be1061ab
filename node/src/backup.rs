//! Backups of a till: an online snapshot of its data directory, sealed with a passphrase,
//! and the restore that makes a data directory of one on a new device.
//!
//! A backup is taken while the till sells (`kasir backup` beside a running `kasir run`,
//! or the daemon's own schedule): a second SQLite connection exports the database in one
//! read transaction (a consistent snapshot: every sale committed before it, none half),
//! straight into a file encrypted with a fresh random key — never in the clear on disk.
//! That key, and a manifest with the device key, are sealed with a key derived from the
//! owner's passphrase (argon2id), so the backup file can sit on a USB stick or an SD card.
//!
//! The file: [`MAGIC`], a length-prefixed JSON [`Header`] (the KDF's parameters and
//! salt, the sealed backup key), a length-prefixed sealed [`Manifest`], then the
//! SQLCipher database.
//!
//! A restore makes a new data directory of the same till (same device key, same till
//! code): its receipt numbers follow on from the last one in the backup, its new changes
//! are written under a new actor (so they never collide with what the lost device wrote
//! after the backup), and its sync states are cleared, so the first sync with each peer
//! starts from what each side really has.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use kasir_sync::Identity;
use kasir_sync::identity::KEY_FILE;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::storage::DB_FILE;
use crate::vault::{self, DbKey, Encrypt};

/// The first bytes of a backup file.
pub const MAGIC: &[u8; 8] = b"KASIRBK1";

/// The shortest passphrase a backup accepts.
pub const MIN_PASSPHRASE: usize = 8;

/// argon2id memory (KiB) and passes: OWASP's minimum, a second or less on a cheap tablet.
const KDF_MEMORY_KIB: u32 = 19 * 1024;
const KDF_PASSES: u32 = 2;

/// A header or manifest longer than this is not one of ours.
const MAX_SECTION: u32 = 1 << 20;

/// What a backup holds, as `kasir backup` reports it and the restore checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The backup file.
    pub path: PathBuf,
    /// The store.
    pub store_id: String,
    /// The till it was taken from.
    pub till_code: String,
    /// When it was taken (ms since the epoch).
    pub created_at_ms: i64,
    /// Sales in it (every till's this till knew of).
    pub sales: u64,
    /// The last receipt this till had issued, if any.
    pub last_receipt: Option<String>,
    /// Size of the file.
    pub bytes: u64,
}

/// The plain header: how to turn the passphrase into the key that opens the rest.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    kdf: String,
    memory_kib: u32,
    passes: u32,
    salt: String,
    /// The backup's database key, sealed with the passphrase's key.
    key: String,
}

/// What the backup key seals beside the database.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    store_id: String,
    till_code: String,
    created_at_ms: i64,
    sales: u64,
    last_receipt: Option<String>,
    /// This till's device key (hex).
    device_secret: String,
    /// blake3 of the database bytes that follow.
    db_hash: String,
    db_bytes: u64,
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The passphrase is too short to protect a backup.
    #[error("a backup passphrase needs at least {MIN_PASSPHRASE} characters")]
    WeakPassphrase,
    /// The passphrase does not open this backup.
    #[error("wrong passphrase for {0}")]
    WrongPassphrase(String),
    /// The file is not a Kasir backup, or it was cut short or changed.
    #[error("{path} is not a complete kasir backup: {why}")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The target directory already holds a store.
    #[error("{0} already holds a store: restore into a new, empty directory")]
    NotEmpty(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The till's database or data directory failed.
    #[error(transparent)]
    Node(Box<NodeError>),
}

impl From<NodeError> for BackupError {
    fn from(e: NodeError) -> BackupError {
        BackupError::Node(Box::new(e))
    }
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> BackupError {
        NodeError::Storage(e).into()
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

fn passphrase_key(passphrase: &str, salt: &[u8], memory_kib: u32, passes: u32) -> Option<DbKey> {
    let params = Params::new(memory_kib, passes, 1, Some(32)).ok()?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .ok()?;
    Some(DbKey::from_bytes(out))
}

/// Takes a backup of the data directory `dir` into the new file `out`, sealed with
/// `passphrase`, while the till may be selling (`given`: the key when the host holds it).
pub fn write_backup(
    dir: &Path,
    out: &Path,
    passphrase: &str,
    given: Option<&DbKey>,
) -> Result<BackupInfo, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(BackupError::WeakPassphrase);
    }
    let db_path = dir.join(DB_FILE);
    if !db_path.exists() {
        return Err(NodeError::NotInitialised(dir.display().to_string()).into());
    }
    let key = vault::key_for(dir, given)?;
    let identity = vault::load_identity(dir, key.as_ref())?;
    // A reader beside the daemon's connection: the snapshot never waits for the lock.
    let conn = Connection::open_with_flags(
        &db_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if let Some(key) = &key {
        conn.execute_batch(&format!("PRAGMA key = {};", key.sql_literal()))?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(30))?;

    let backup_key = DbKey::generate();
    let staged = sibling(out, ".db-partial");
    remove_if_present(&staged)?;
    let snapshot = (|| -> Result<(String, String, u64, Option<String>), BackupError> {
        vault::attach_export(&conn, &staged, Some(&backup_key))?;
        conn.execute_batch("BEGIN")?;
        let read = (|| -> Result<_, BackupError> {
            let meta = |k: &str| -> Result<String, BackupError> {
                Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))?)
            };
            let store_id = meta("store_id")?;
            let till_code = meta("till_code")?;
            let sales: i64 = conn.query_row("SELECT count(*) FROM sales", [], |r| r.get(0))?;
            let last_receipt: Option<String> = conn.query_row(
                "SELECT max(receipt_no) FROM sales WHERE till_code = ?1",
                [&till_code],
                |r| r.get(0),
            )?;
            conn.query_row("SELECT sqlcipher_export('export')", [], |_| Ok(()))?;
            Ok((store_id, till_code, sales as u64, last_receipt))
        })();
        conn.execute_batch("COMMIT")?;
        read
    })();
    let detached = conn.execute_batch("DETACH DATABASE export");
    let (store_id, till_code, sales, last_receipt) = match snapshot {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&staged);
            return Err(e);
        }
    };
    detached?;
    drop(conn);

    let result = seal_into(
        out,
        &staged,
        passphrase,
        &backup_key,
        Manifest {
            store_id,
            till_code,
            created_at_ms: now_ms(),
            sales,
            last_receipt,
            device_secret: hex::encode(identity.secret_bytes()),
            db_hash: String::new(),
            db_bytes: 0,
        },
    );
    let _ = fs::remove_file(&staged);
    result
}

/// Writes the backup file: header, sealed manifest, then the staged database; fsynced
/// and renamed into place, so `out` is whole or absent.
fn seal_into(
    out: &Path,
    staged: &Path,
    passphrase: &str,
    backup_key: &DbKey,
    mut manifest: Manifest,
) -> Result<BackupInfo, BackupError> {
    let db = fs::read(staged).map_err(io(format!("reading {}", staged.display())))?;
    manifest.db_hash = blake3::hash(&db).to_hex().to_string();
    manifest.db_bytes = db.len() as u64;
    let salt: [u8; 16] = rand::random();
    let wrap = passphrase_key(passphrase, &salt, KDF_MEMORY_KIB, KDF_PASSES).ok_or_else(|| {
        BackupError::Damaged {
            path: out.display().to_string(),
            why: "the key derivation failed".into(),
        }
    })?;
    let header = Header {
        version: 1,
        kdf: "argon2id".into(),
        memory_kib: KDF_MEMORY_KIB,
        passes: KDF_PASSES,
        salt: hex::encode(salt),
        key: hex::encode(wrap.seal(&backup_key.to_bytes())),
    };
    let header = serde_json::to_vec(&header).map_err(|e| BackupError::Damaged {
        path: out.display().to_string(),
        why: e.to_string(),
    })?;
    let sealed =
        backup_key.seal(
            &serde_json::to_vec(&manifest).map_err(|e| BackupError::Damaged {
                path: out.display().to_string(),
                why: e.to_string(),
            })?,
        );
    let partial = sibling(out, ".partial");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(format!("creating {}", partial.display())))?;
        let mut write = |bytes: &[u8]| f.write_all(bytes);
        write(MAGIC)
            .and_then(|()| write(&(header.len() as u32).to_le_bytes()))
            .and_then(|()| write(&header))
            .and_then(|()| write(&(sealed.len() as u32).to_le_bytes()))
            .and_then(|()| write(&sealed))
            .and_then(|()| write(&db))
            .and_then(|()| f.sync_all())
            .map_err(io(format!("writing {}", partial.display())))?;
    }
    fs::rename(&partial, out).map_err(io(format!("writing {}", out.display())))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("syncing {}", parent.display())))?;
    }
    let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or_default();
    Ok(BackupInfo {
        path: out.to_owned(),
        store_id: manifest.store_id,
        till_code: manifest.till_code,
        created_at_ms: manifest.created_at_ms,
        sales: manifest.sales,
        last_receipt: manifest.last_receipt,
        bytes,
    })
}

/// Restores the backup `file` into the new data directory `dir` (encrypted at rest as
/// `encrypt` says), as the same till; returns what the backup held.
pub fn restore(
    file: &Path,
    dir: &Path,
    passphrase: &str,
    encrypt: Option<&Encrypt>,
) -> Result<BackupInfo, BackupError> {
    if dir.join(DB_FILE).exists() {
        return Err(BackupError::NotEmpty(dir.display().to_string()));
    }
    let damaged = |why: &str| BackupError::Damaged {
        path: file.display().to_string(),
        why: why.to_owned(),
    };
    let mut f = fs::File::open(file).map_err(io(format!("opening {}", file.display())))?;
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).map_err(|_| damaged("too short"))?;
    if &magic != MAGIC {
        return Err(damaged("not a backup file"));
    }
    let mut section = || -> Result<Vec<u8>, BackupError> {
        let mut len = [0u8; 4];
        f.read_exact(&mut len).map_err(|_| damaged("cut short"))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_SECTION {
            return Err(damaged("a section is too long"));
        }
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(|_| damaged("cut short"))?;
        Ok(buf)
    };
    let header: Header =
        serde_json::from_slice(&section()?).map_err(|_| damaged("unreadable header"))?;
    let sealed_manifest = section()?;
    if header.version != 1 || header.kdf != "argon2id" {
        return Err(damaged("a newer backup format"));
    }
    let salt = hex::decode(&header.salt).map_err(|_| damaged("unreadable header"))?;
    let wrapped = hex::decode(&header.key).map_err(|_| damaged("unreadable header"))?;
    if header.memory_kib > 1 << 21 || header.passes > 16 {
        return Err(damaged("key derivation parameters out of range"));
    }
    let wrap = passphrase_key(passphrase, &salt, header.memory_kib, header.passes)
        .ok_or_else(|| damaged("key derivation parameters out of range"))?;
    let backup_key = wrap
        .unseal(&wrapped)
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .map(DbKey::from_bytes)
        .ok_or_else(|| BackupError::WrongPassphrase(file.display().to_string()))?;
    let manifest: Manifest = backup_key
        .unseal(&sealed_manifest)
        .and_then(|m| serde_json::from_slice(&m).ok())
        .ok_or_else(|| damaged("unreadable manifest"))?;
    let secret: [u8; 32] = hex::decode(&manifest.device_secret)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| damaged("unreadable device key"))?;

    vault::create_private_dir(dir)?;
    // What an interrupted restore into this directory left behind goes first.
    for leftover in [KEY_FILE, "restore.incoming", "restore.db"] {
        remove_if_present(&dir.join(leftover))?;
    }
    let incoming = dir.join("restore.incoming");
    {
        let mut db = Vec::with_capacity(manifest.db_bytes as usize);
        f.read_to_end(&mut db)
            .map_err(io(format!("reading {}", file.display())))?;
        if db.len() as u64 != manifest.db_bytes
            || blake3::hash(&db).to_hex().as_str() != manifest.db_hash
        {
            return Err(damaged("the database part was cut short or changed"));
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&incoming)
            .map_err(io(format!("creating {}", incoming.display())))?;
        out.write_all(&db)
            .and_then(|()| out.sync_all())
            .map_err(io(format!("writing {}", incoming.display())))?;
    }
    let key = match encrypt {
        Some(how) => Some(vault::prepare(dir, how)?),
        None => vault::key_for(dir, None)?,
    };
    let staged = dir.join("restore.db");
    {
        let conn = Connection::open(&incoming)?;
        conn.execute_batch(&format!("PRAGMA key = {};", backup_key.sql_literal()))?;
        vault::export_encrypted(&conn, &staged, key.as_ref())?;
    }
    {
        let conn = Connection::open(&staged)?;
        if let Some(key) = &key {
            conn.execute_batch(&format!("PRAGMA key = {};", key.sql_literal()))?;
        }
        // The peers' sync states described the lost device: the first sync with each
        // starts over from what the two sides really hold. Sessions (the old device
        // token, cashiers signed in) do not come back: the restored till signs in anew.
        conn.execute_batch("DELETE FROM sync_states; DELETE FROM sessions;")?;
    }
    let identity = Identity::from_secret_bytes(secret);
    vault::store_new_identity(dir, &identity, key.as_ref())?;
    // The commit point: the directory holds a store from here on.
    fs::rename(&staged, dir.join(DB_FILE))
        .map_err(io(format!("restoring into {}", dir.display())))?;
    remove_if_present(&incoming)?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))?;
    // Opening makes the device token and checks what was restored.
    let node = Node::open_with(dir, false, key.as_ref())?;
    drop(node);
    Ok(BackupInfo {
        path: file.to_owned(),
        store_id: manifest.store_id,
        till_code: manifest.till_code,
        created_at_ms: manifest.created_at_ms,
        sales: manifest.sales,
        last_receipt: manifest.last_receipt,
        bytes: fs::metadata(file).map(|m| m.len()).unwrap_or_default(),
    })
}

/// `path` with `suffix` added to its file name, in the same directory (so a rename of
/// it over `path` is atomic).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("removing {}", path.display()))(e)),
    }
}

/// The daemon's own backups (`kasir run --backup-dir`): one every `every` into `dir` (a
/// USB stick, an SD card), the newest `keep` kept.
#[derive(Clone)]
pub struct BackupSchedule {
    /// Where backups go.
    pub dir: PathBuf,
    /// How often.
    pub every: std::time::Duration,
    /// How many to keep (older ones are deleted, never the newest).
    pub keep: usize,
    /// The passphrase that seals them.
    pub passphrase: String,
}

impl std::fmt::Debug for BackupSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupSchedule")
            .field("dir", &self.dir)
            .field("every", &self.every)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// File names of scheduled backups: `kasir-<till>-<UTC time>.kasirbak`, so they sort by
/// age.
const SCHEDULED_SUFFIX: &str = ".kasirbak";

/// The daemon's backup task: owns nothing but its schedule; reads the till through its
/// own SQLite connection (the sale path never waits for it), until `cancel` fires. The
/// first backup is taken one period after start.
pub(crate) async fn run_schedule(
    node: crate::SharedNode,
    schedule: BackupSchedule,
    metrics: crate::metrics::BackupMetrics,
    cancel: tokio_util::sync::CancellationToken,
) {
    let (data_dir, till_code, key) = match node.lock() {
        Ok(n) => (
            n.dir().to_owned(),
            n.till_code().to_owned(),
            n.db_key().cloned(),
        ),
        Err(_) => return,
    };
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + schedule.every, schedule.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let (data_dir, till_code, key, job) =
                    (data_dir.clone(), till_code.clone(), key.clone(), schedule.clone());
                let done = tokio::task::spawn_blocking(move || {
                    take_scheduled(&data_dir, &till_code, key.as_ref(), &job)
                })
                .await;
                match done {
                    Ok(Ok(info)) => {
                        metrics.succeeded(info.created_at_ms, info.bytes);
                        tracing::info!(path = %info.path.display(), bytes = info.bytes, sales = info.sales, "backup taken");
                    }
                    Ok(Err(e)) => {
                        metrics.failed();
                        tracing::warn!(error = %e, dir = %schedule.dir.display(), "backup failed");
                    }
                    Err(e) => {
                        metrics.failed();
                        tracing::warn!(error = %e, "backup task failed");
                    }
                }
            }
        }
    }
}

/// Takes one scheduled backup into the schedule's directory and prunes the oldest.
pub fn take_scheduled(
    data_dir: &Path,
    till_code: &str,
    key: Option<&DbKey>,
    schedule: &BackupSchedule,
) -> Result<BackupInfo, BackupError> {
    fs::create_dir_all(&schedule.dir)
        .map_err(io(format!("creating {}", schedule.dir.display())))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
    let out = schedule
        .dir
        .join(format!("kasir-{till_code}-{stamp}{SCHEDULED_SUFFIX}"));
    let info = write_backup(data_dir, &out, &schedule.passphrase, key)?;
    let prefix = format!("kasir-{till_code}-");
    let mut ours: Vec<PathBuf> = fs::read_dir(&schedule.dir)
        .map_err(io(format!("listing {}", schedule.dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(SCHEDULED_SUFFIX))
        })
        .collect();
    ours.sort();
    let keep = schedule.keep.max(1);
    if ours.len() > keep {
        for old in &ours[..ours.len() - keep] {
            remove_if_present(old)?;
        }
    }
    Ok(info)
}
