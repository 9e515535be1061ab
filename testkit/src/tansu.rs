//! A Kafka-protocol broker for tests: tansu with memory storage, from
//! `scripts/services install`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::process::{Signal, sh_quote, signal, watchdog};

/// The tansu binary: `$KASIR_TANSU`, else `/var/tmp/kasir-tools/bin/tansu`, else `tansu`
/// on `PATH`; `None` when there is none.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KASIR_TANSU").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let tools = PathBuf::from("/var/tmp/kasir-tools/bin/tansu");
    if tools.is_file() {
        return Some(tools);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
}

/// [`find_tansu`], or a panic naming `scripts/services install`.
pub fn tansu_binary() -> PathBuf {
    find_tansu().unwrap_or_else(|| {
        panic!(
            "the tansu Kafka broker was not found (looked at $KASIR_TANSU, \
             /var/tmp/kasir-tools/bin/tansu and PATH); run scripts/services install"
        )
    })
}

/// A tansu broker with memory storage on a port of 127.0.0.1; [`Drop`] kills it.
///
/// Memory storage means a stopped broker forgets its topics and messages: a test that
/// wants "the broker is unreachable for a while" should [`Tansu::pause`] and
/// [`Tansu::resume`] it (SIGSTOP/SIGCONT), which keeps its data. [`Tansu::stop`] with
/// [`Tansu::start_again`] is a broker that lost everything.
pub struct Tansu {
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Set for [`Tansu::start_tls`]: the TLS terminator clients reach the broker through,
    /// and the port the broker advertises (the terminator's).
    tls: Option<crate::tls::TlsFront>,
}

impl Tansu {
    /// Starts a broker on a free port and waits until it accepts TCP connections.
    pub fn start() -> Tansu {
        Tansu::start_behind(None)
    }

    /// [`Tansu::start`], behind a TLS terminator with `certs` when given (the terminator
    /// first, so the broker advertises its port from the start).
    fn start_behind(certs: Option<&crate::tls::TestCerts>) -> Tansu {
        let bin = tansu_binary();
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "kasir-test-tansu-{}-{port}.log",
                std::process::id()
            ));
            let mut tansu = Tansu {
                bin: bin.clone(),
                port,
                log,
                child: None,
                paused: false,
                tls: certs.map(|c| crate::tls::TlsFront::start(c, port)),
            };
            match tansu.spawn() {
                Ok(()) => return tansu,
                // Most likely the port was taken between choosing and binding it.
                Err(e) => last_failure = e,
            }
        }
        panic!("tansu did not start: {last_failure}");
    }

    /// A broker reachable only over TLS: tansu (which has no TLS of its own) behind a
    /// [`TlsFront`](crate::tls::TlsFront) with `certs`' server certificate, advertising
    /// the terminator's `localhost:PORT` so every connection a client makes after
    /// bootstrap goes through TLS too. [`Tansu::brokers`] is that address.
    pub fn start_tls(certs: &crate::tls::TestCerts) -> Tansu {
        Tansu::start_behind(Some(certs))
    }

    /// `127.0.0.1:PORT` (or, behind TLS, `localhost:PORT` of the terminator), for
    /// `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        match &self.tls {
            Some(front) => format!("localhost:{}", front.port()),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the broker printed so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the broker and waits for it. Its topics and messages are gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Starts a fresh broker on the same port (empty: memory storage). Panics if it
    /// does not come up.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("tansu did not start again on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Freezes the broker (SIGSTOP): connections hang, data is kept.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, Signal::STOP).unwrap_or_else(|e| panic!("SIGSTOP tansu: {e}"));
            self.paused = true;
        }
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, Signal::CONT).unwrap_or_else(|e| panic!("SIGCONT tansu: {e}"));
            self.paused = false;
        }
    }

    /// Whether the broker is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Spawns the broker on `self.port` and waits for its port; `Err` with the log.
    fn spawn(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = match &self.tls {
            Some(front) => format!("tcp://localhost:{}", front.port()),
            None => url.clone(),
        };
        let log = std::fs::File::create(&self.log).map_err(|e| format!("create log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let mut child = Command::new(&self.bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(&url)
            .arg("--advertised-listener-url")
            .arg(&advertised)
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("tansu exited ({status}):\n{}", self.log()));
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("tansu did not listen within 15 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let script = format!(
            "while kill -0 {test} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill -KILL {pid} 2>/dev/null; rm -f {log}",
            test = std::process::id(),
            pid = child.id(),
            log = sh_quote(&self.log),
        );
        watchdog(&script).map_err(|e| format!("tansu watchdog: {e}"))?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}
