//! A throwaway PostgreSQL cluster started from the machine's own server binaries.
//!
//! `kasir demo` and the relay's tests need a PostgreSQL they can create databases in,
//! restart and throw away. [`Cluster::start`] finds `initdb`/`pg_ctl` (the newest
//! `/usr/lib/postgresql/<version>/bin`, else `PATH`), initialises a cluster into
//! `<dir>/data` with trust authentication, and starts it on a free TCP port of
//! 127.0.0.1 with durability switched off (`fsync`, `synchronous_commit` and
//! `full_page_writes` off): fast, and fine for data that is thrown away.
//!
//! `initdb` and `postgres` refuse to run as root. When this process is root, they run as
//! the `postgres` user through `runuser`, `<dir>` is handed to that user, and every
//! ancestor of `<dir>` that others cannot traverse gets the traverse (`o+x`) bit, so the
//! server can reach its files.
//!
//! The server programs run through `std::process::Command`; no database driver is
//! needed to start one.
//!
//! ```no_run
//! # fn main() -> Result<(), kasir_testkit::pg::ClusterError> {
//! let dir = std::path::Path::new("/tmp/kasir-pg");
//! let cluster = kasir_testkit::pg::Cluster::start(dir)?;
//! let url = cluster.create_database("kasir")?; // postgres://postgres@127.0.0.1:PORT/kasir
//! # let _ = url;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What can go wrong starting or driving a [`Cluster`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Neither `/usr/lib/postgresql/*/bin` nor `PATH` has `initdb` and `pg_ctl`.
    #[error(
        "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH); \
         install the `postgresql` package or set DATABASE_URL"
    )]
    BinariesNotFound,
    /// A file-system operation or spawning a program failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A PostgreSQL program (or `runuser`, `chown`) ran and failed.
    #[error("{what} failed ({status}):\n{output}")]
    Command {
        /// The command, as a person would type it.
        what: String,
        /// Its exit status.
        status: String,
        /// Its standard error and output, and the tail of the server log where useful.
        output: String,
    },
    /// No free TCP port on 127.0.0.1 could be found.
    #[error("no free TCP port on 127.0.0.1: {0}")]
    NoFreePort(io::Error),
    /// The cluster is stopped; start it again with [`Cluster::restart`].
    #[error("the PostgreSQL cluster in {0} is not running")]
    NotRunning(PathBuf),
}

/// How many times a start is tried, each on a new port, when the port was taken between
/// choosing it and the server binding it (or, on restart, on the same port).
const START_ATTEMPTS: u32 = 5;

/// A running (or stopped) throwaway PostgreSQL cluster; [`Drop`] stops it.
///
/// The superuser is `postgres` with trust authentication over TCP on 127.0.0.1 only.
#[derive(Debug)]
pub struct Cluster {
    /// The directory given to [`Cluster::start`] (absolute).
    dir: PathBuf,
    /// `<dir>/data`: the cluster's data directory.
    data: PathBuf,
    /// The directory of the server's Unix socket.
    socket_dir: PathBuf,
    /// Whether `socket_dir` is our own directory under the system temp dir (because
    /// `<dir>/sock` made the socket path too long) and so must be removed on drop.
    own_socket_dir: bool,
    /// `<dir>/pg.log`: the server log.
    log: PathBuf,
    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
    /// The TCP port the server listens on; kept across restarts.
    port: u16,
    /// Whether server programs run as the `postgres` user through `runuser`.
    as_postgres: bool,
    /// Whether the server is (believed to be) running.
    running: bool,
}

impl Cluster {
    /// Initialises (if `dir/data` is not a cluster yet) and starts a cluster in `dir`,
    /// creating `dir` if needed, on a free port of 127.0.0.1; returns once the server
    /// accepts connections. The server logs to `dir/pg.log`.
    ///
    /// A server left running in `dir/data` by an earlier process is stopped first.
    pub fn start(dir: &Path) -> Result<Cluster, ClusterError> {
        let bin = find_bin_dir()?;
        let dir = std::path::absolute(dir)
            .map_err(|e| io_err(format!("resolve {}", dir.display()), e))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_err(format!("create {}", dir.display()), e))?;
        let as_postgres = running_as_root();
        let data = dir.join("data");
        let (socket_dir, own_socket_dir) = socket_dir_for(&dir);
        std::fs::create_dir_all(&socket_dir)
            .map_err(|e| io_err(format!("create {}", socket_dir.display()), e))?;
        if as_postgres {
            make_traversable(&dir)?;
            make_traversable(&socket_dir)?;
            chown_to_postgres(&dir, false)?;
            chown_to_postgres(&socket_dir, false)?;
            if data.exists() {
                chown_to_postgres(&data, true)?;
            }
        }
        let mut cluster = Cluster {
            log: dir.join("pg.log"),
            dir,
            data,
            socket_dir,
            own_socket_dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
        };
        if cluster.data.join("PG_VERSION").exists() {
            cluster.stop_leftover_server();
        } else {
            cluster.initdb()?;
        }
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClusterError::NotRunning(cluster.data.clone())))
    }

    /// The URL of database `db` on this cluster: `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The TCP port the server listens on (the same across [`Cluster::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory given to [`Cluster::start`], made absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster's data directory, `dir/data`.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server log, `dir/pg.log`.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the server is running, as far as this handle knows.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The process id of the postmaster, read from `postmaster.pid`; `None` when stopped.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Creates database `name` (any name: it is quoted) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        self.psql("postgres", &sql)?;
        Ok(self.url(name))
    }

    /// Runs `sql` in database `db` through `psql` (unaligned, tuples only, stop on the
    /// first error) and returns what it printed, e.g. `"1\n"` for `SELECT 1`.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, ClusterError> {
        let mut cmd = self.psql_command(db)?;
        cmd.args(["-A", "-t", "-c", sql]);
        let what = format!("psql -p {} -d {db} -c {sql:?}", self.port);
        let out = run(&mut cmd, &what)?;
        if !out.status.success() {
            return Err(command_err(what, &out, None));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `psql` on database `db` of this cluster, quiet, stopping at the first error.
    fn psql_command(&self, db: &str) -> Result<Command, ClusterError> {
        if !self.running {
            return Err(ClusterError::NotRunning(self.data.clone()));
        }
        let mut cmd = Command::new(self.client_program("psql"));
        cmd.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .env("PGCONNECT_TIMEOUT", "10");
        Ok(cmd)
    }

    /// Runs the SQL script `file` (a `pg_dump` in plain format, say) in database `db`
    /// through `psql -f`, stopping at the first error.
    pub fn run_file(&self, db: &str, file: &Path) -> Result<(), ClusterError> {
        let mut cmd = self.psql_command(db)?;
        cmd.arg("-f").arg(file);
        let what = format!("psql -p {} -d {db} -f {}", self.port, file.display());
        let out = run(&mut cmd, &what)?;
        if !out.status.success() {
            return Err(command_err(what, &out, None));
        }
        Ok(())
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`); errors are logged, not returned.
    pub fn stop(&mut self) {
        if let Err(e) = self.pg_ctl_stop("fast") {
            tracing::warn!(error = %e, "stopping the PostgreSQL cluster");
        }
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`: no
    /// checkpoint; the next start runs crash recovery). Errors are logged, not returned.
    ///
    /// With `synchronous_commit=off`, transactions committed in the last second or so
    /// before the kill may be lost, as the server allows for that setting; use
    /// [`Cluster::restart`] when every acknowledged commit must survive.
    pub fn kill(&mut self) {
        if let Err(e) = self.pg_ctl_stop("immediate") {
            tracing::warn!(error = %e, "killing the PostgreSQL cluster");
        }
    }

    /// Stops the server (if running) and starts it again on the same port, so URLs handed
    /// out earlier stay valid. Clients see their connections dropped, as when the
    /// database server restarts in production.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        if self.running {
            self.pg_ctl_stop("fast")?;
        }
        let mut last = None;
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
            }
            match self.start_server() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClusterError::NotRunning(self.data.clone())))
    }

    /// Spawns a detached watchdog that, once process `pid` has exited, stops this
    /// cluster's server immediately (SIGQUIT to the postmaster named in `postmaster.pid`,
    /// so it also finds the server after [`Cluster::restart`]) and, if `remove_dir`,
    /// deletes [`Cluster::dir`]. For clusters kept in statics, whose `Drop` never runs.
    pub fn stop_when_process_exits(&self, pid: u32, remove_dir: bool) -> Result<(), ClusterError> {
        let mut script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             pm=$(head -n1 {pidfile} 2>/dev/null); \
             if [ -n \"$pm\" ]; then kill -QUIT \"$pm\" 2>/dev/null; \
             n=0; while kill -0 \"$pm\" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; fi",
            pidfile = sh_quote(&self.data.join("postmaster.pid")),
        );
        if remove_dir {
            script.push_str(&format!("; rm -rf {}", sh_quote(&self.dir)));
        }
        if self.own_socket_dir {
            script.push_str(&format!("; rm -rf {}", sh_quote(&self.socket_dir)));
        }
        spawn_detached(&script)
    }

    /// Runs `initdb` into `dir/data`.
    fn initdb(&self) -> Result<(), ClusterError> {
        let mut cmd = self.server_command("initdb");
        cmd.args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&self.data);
        let what = format!("initdb -D {}", self.data.display());
        let out = run(&mut cmd, &what)?;
        if !out.status.success() {
            return Err(command_err(what, &out, None));
        }
        Ok(())
    }

    /// `pg_ctl start -w` on `self.port`.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            sh_quote(&self.socket_dir),
        );
        let mut cmd = self.server_command("pg_ctl");
        cmd.args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(&opts);
        let what = format!(
            "pg_ctl start -D {} (port {})",
            self.data.display(),
            self.port
        );
        let out = run(&mut cmd, &what)?;
        if !out.status.success() {
            // A postmaster that came up despite pg_ctl's complaint must not linger.
            let _ = self.pg_ctl_stop_raw("immediate");
            return Err(command_err(what, &out, Some(&self.log)));
        }
        self.running = true;
        tracing::debug!(port = self.port, dir = %self.dir.display(), "PostgreSQL cluster started");
        Ok(())
    }

    /// `pg_ctl stop -m MODE`, marking the cluster stopped whatever happens.
    fn pg_ctl_stop(&mut self, mode: &str) -> Result<(), ClusterError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.pg_ctl_stop_raw(mode)
    }

    fn pg_ctl_stop_raw(&self, mode: &str) -> Result<(), ClusterError> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(&self.data);
        let what = format!("pg_ctl stop -m {mode} -D {}", self.data.display());
        let out = run(&mut cmd, &what)?;
        if !out.status.success() {
            return Err(command_err(what, &out, None));
        }
        Ok(())
    }

    /// Stops a server an earlier process left running on this data directory.
    fn stop_leftover_server(&self) {
        if !self.data.join("postmaster.pid").exists() {
            return;
        }
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("status").arg("-D").arg(&self.data);
        if let Ok(out) = run(&mut cmd, "pg_ctl status")
            && out.status.success()
        {
            tracing::info!(dir = %self.data.display(), "stopping a leftover PostgreSQL server");
            let _ = self.pg_ctl_stop_raw("immediate");
        }
    }

    /// A command for server program `name`, run as `postgres` when we are root.
    fn server_command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // A directory the postgres user can enter; messages in English.
        cmd.current_dir(&self.dir)
            .env("LC_ALL", "C")
            .env_remove("PGDATA");
        cmd
    }

    /// A client program (`psql`): from the server's bin dir, else `PATH`.
    fn client_program(&self, name: &str) -> PathBuf {
        let candidate = self.bin.join(name);
        if candidate.is_file() {
            candidate
        } else {
            PathBuf::from(name)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop("immediate");
        if self.own_socket_dir {
            let _ = std::fs::remove_dir_all(&self.socket_dir);
        }
    }
}

/// A port for a cluster: the test kit's ([`crate::free_port`]), never one this process
/// handed out already.
fn free_port() -> Result<u16, ClusterError> {
    Ok(crate::free_port())
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`, else the
/// directory of `initdb` on `PATH` (symlinks resolved, so `pg_ctl` and `postgres` sit
/// beside it).
fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versions: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(version) = name
                .split('.')
                .map(str::parse::<u32>)
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            if has_tools(&bin) {
                versions.push((version, bin));
            }
        }
    }
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let initdb = dir.join("initdb");
        if initdb.is_file() {
            let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
            if let Some(bin) = real.parent().filter(|d| has_tools(d)) {
                return Ok(bin.to_path_buf());
            }
            if has_tools(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(ClusterError::BinariesNotFound)
}

/// Whether this process runs as root.
fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `<dir>/sock`, unless the socket path inside it would pass the Unix limit (107
/// bytes); then a fresh directory under the system temp dir (`true`: ours to remove).
fn socket_dir_for(dir: &Path) -> (PathBuf, bool) {
    let local = dir.join("sock");
    // ".s.PGSQL.65535.lock" is the longest name the server puts there.
    if local.as_os_str().len() + "/.s.PGSQL.65535.lock".len() < 100 {
        return (local, false);
    }
    let unique = blake3::hash(dir.as_os_str().as_encoded_bytes()).to_hex();
    let short = std::env::temp_dir().join(format!("kasir-pg-{}", &unique.as_str()[..16]));
    (short, true)
}

/// Gives `o+x` to `dir` and each ancestor that lacks it, so the `postgres` user can reach
/// `dir`. Only the traverse bit: nothing becomes listable or readable.
fn make_traversable(dir: &Path) -> Result<(), ClusterError> {
    for ancestor in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mut perms = meta.permissions();
        if perms.mode() & 0o001 == 0 {
            perms.set_mode(perms.mode() | 0o001);
            std::fs::set_permissions(ancestor, perms)
                .map_err(|e| io_err(format!("chmod o+x {}", ancestor.display()), e))?;
        }
    }
    Ok(())
}

/// `chown [-R] postgres: path`.
fn chown_to_postgres(path: &Path, recursive: bool) -> Result<(), ClusterError> {
    let mut cmd = Command::new("chown");
    if recursive {
        cmd.arg("-R");
    }
    cmd.arg("postgres:").arg(path);
    let what = format!("chown postgres: {}", path.display());
    let out = run(&mut cmd, &what)?;
    if !out.status.success() {
        return Err(command_err(what, &out, None));
    }
    Ok(())
}

/// Runs `cmd` to completion with no standard input, capturing its output.
fn run(cmd: &mut Command, what: &str) -> Result<Output, ClusterError> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| io_err(format!("run {what}"), e))
}

fn spawn_detached(script: &str) -> Result<(), ClusterError> {
    crate::process::watchdog(script).map_err(|e| io_err("spawn watchdog".to_owned(), e))
}

use crate::process::sh_quote;

fn io_err(what: String, source: io::Error) -> ClusterError {
    ClusterError::Io { what, source }
}

/// A [`ClusterError::Command`] with the program's output and, if given, the log's tail.
fn command_err(what: String, out: &Output, log: Option<&Path>) -> ClusterError {
    let mut output = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        output.push('\n');
        output.push_str(stdout.trim_end());
    }
    if let Some(log) = log
        && let Ok(text) = std::fs::read_to_string(log)
    {
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        output.push_str(&format!(
            "\n--- last lines of {} ---\n{}",
            log.display(),
            tail.join("\n")
        ));
    }
    ClusterError::Command {
        what,
        status: out.status.to_string(),
        output,
    }
}

// Clusters for tests ------------------------------------------------------------------

/// The PostgreSQL cluster shared by this test binary, started on first use in
/// `$TMPDIR/kasir-test-pg-<pid>`, stopped and removed by a watchdog after the process
/// exits. Do not stop or restart it: other tests use it; see [`private_postgres`].
pub fn postgres() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kasir-test-pg-{}", std::process::id()));
        // A leftover of an earlier process that had the same pid.
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = Cluster::start(&dir).unwrap_or_else(|e| {
            panic!("cannot start the test PostgreSQL cluster (scripts/services install): {e}")
        });
        cluster
            .stop_when_process_exits(std::process::id(), true)
            .unwrap_or_else(|e| panic!("PostgreSQL watchdog: {e}"));
        cluster
    })
}

/// A new, empty database in the shared cluster, named `<prefix>_<n>` (prefix reduced
/// to `[a-z0-9_]`); returns its URL.
pub fn fresh_database(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = format!("{clean}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    postgres()
        .create_database(&name)
        .unwrap_or_else(|e| panic!("create database {name}: {e}"))
}

/// A PostgreSQL cluster of one test's own, in a temp dir removed with it; for tests that
/// stop, kill or restart the database server.
pub struct PrivatePostgres {
    /// The cluster (dropped, so stopped, before its directory is removed).
    pub cluster: Cluster,
    dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// The directory holding the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts a [`PrivatePostgres`]; panics naming `scripts/services install` on failure.
pub fn private_postgres() -> PrivatePostgres {
    let dir = tempfile::Builder::new()
        .prefix("kasir-test-pg-private-")
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start(dir.path()).unwrap_or_else(|e| {
        panic!("cannot start a PostgreSQL cluster (scripts/services install): {e}")
    });
    cluster
        .stop_when_process_exits(std::process::id(), true)
        .unwrap_or_else(|e| panic!("PostgreSQL watchdog: {e}"));
    PrivatePostgres { cluster, dir }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails (does not skip) when PostgreSQL is not installed: `scripts/services install`.
    #[test]
    fn starts_creates_answers_restarts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut cluster =
            Cluster::start(tmp.path()).unwrap_or_else(|e| panic!("start cluster: {e}"));
        let port = cluster.port();
        assert!(cluster.is_running());
        assert!(cluster.postmaster_pid().is_some());

        let url = cluster
            .create_database("kasir test \"db\"")
            .expect("create database");
        assert_eq!(
            url,
            format!("postgres://postgres@127.0.0.1:{port}/kasir test \"db\"")
        );
        assert_eq!(
            cluster
                .psql("kasir test \"db\"", "SELECT 1")
                .expect("select"),
            "1\n"
        );
        cluster
            .psql(
                "kasir test \"db\"",
                "CREATE TABLE t (x int); INSERT INTO t VALUES (42)",
            )
            .expect("write");

        let before = cluster.postmaster_pid();
        cluster.restart().expect("restart");
        assert_eq!(cluster.port(), port, "restart keeps the port");
        assert_ne!(cluster.postmaster_pid(), before, "a new postmaster");
        assert_eq!(
            cluster
                .psql("kasir test \"db\"", "SELECT x FROM t")
                .expect("select after restart"),
            "42\n"
        );

        // A crash-like stop, then a restart with recovery, still keeps committed data.
        cluster.kill();
        assert!(matches!(
            cluster.psql("postgres", "SELECT 1"),
            Err(ClusterError::NotRunning(_))
        ));
        cluster.restart().expect("restart after kill");
        assert_eq!(
            cluster
                .psql("kasir test \"db\"", "SELECT x FROM t")
                .expect("after recovery"),
            "42\n"
        );

        // A second start on the same directory reuses the initialised cluster.
        drop(cluster);
        let again = Cluster::start(tmp.path()).expect("start again");
        assert_eq!(
            again
                .psql("kasir test \"db\"", "SELECT count(*) FROM t")
                .expect("reuse"),
            "1\n"
        );
    }

    #[test]
    fn missing_binaries_message_names_the_fix() {
        let msg = ClusterError::BinariesNotFound.to_string();
        assert!(
            msg.contains("install the `postgresql` package or set DATABASE_URL"),
            "{msg}"
        );
    }
}
