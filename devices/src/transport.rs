//! Getting ESC/POS bytes to a printer: printer URIs and the transports behind one trait.
//!
//! | URI | transport |
//! |---|---|
//! | `tcp://HOST[:PORT]` (port 9100 by default) | raw TCP ("JetDirect"), LAN/Wi-Fi printers |
//! | `file:///dev/usb/lp0` (any absolute path) | the USB printer class device, or a file |
//! | `ble://NAME` (or `ble://AA:BB:CC:DD:EE:FF`) | Bluetooth LE GATT, see [`crate::ble`] |
//! | `app://NAME` | the app embedding the node moves the bytes ([`AppLink`]: Android's Bluetooth SPP) |
//!
//! `serial://` is recognised and refused with a hint: a serial printer is a `file://`
//! device once its line is set up (`stty -F /dev/ttyUSB0 9600 raw`).
//!
//! **Every wait is bounded** ([`TransportOptions`]): connecting, each write (a printer that
//! accepts and then stops reading — paper out, jammed — ends in [`PrintError::Stalled`]),
//! and the whole job. A blocking device write runs on a helper thread so even a USB
//! printer that never completes a write cannot hang the caller. Nothing here waits on a
//! printer's status: [`Transport::status`] is separate, short and answers "unknown"
//! (`Ok(None)`) for printers that do not reply to `DLE EOT`.
//!
//! What TCP cannot tell: a receipt of a few KiB fits in the socket buffers of both ends,
//! so a printer that accepts the connection and never reads still "takes" it; the
//! stall shows only once its buffers are full (a long job) — until then the bytes wait
//! in the printer, which prints them when it recovers.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::encode::{PrinterStatus, StatusRequest};

/// Where a printer is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrinterUri {
    /// Raw TCP, usually port 9100.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A device or file path written as is (`/dev/usb/lp0`).
    File {
        /// Absolute path.
        path: PathBuf,
    },
    /// A Bluetooth LE printer found by its advertised name or its address.
    Ble {
        /// Name (case-insensitive) or `AA:BB:CC:DD:EE:FF`.
        name: String,
    },
    /// A printer the app embedding the node reaches itself ([`AppLink`]).
    App {
        /// The app's name for it (a paired Bluetooth device's name).
        name: String,
    },
}

/// A printer only the app embedding the node can reach — Android's Bluetooth Classic
/// (SPP) printers, which no crate here can open. The queue, the retries and the bytes
/// stay in Rust; the app only moves the bytes, on the queue's blocking thread.
pub trait AppLink: Send + Sync {
    /// Sends every byte of one job to the printer the app calls `name`, or says why not.
    /// The app bounds its own waits (a socket timeout): the queue stops waiting after
    /// the job's deadline, but cannot stop a call that never returns.
    fn send(&self, name: &str, bytes: &[u8]) -> Result<(), String>;
}

/// The default raw-printing port.
pub const DEFAULT_TCP_PORT: u16 = 9100;

/// Why a printer URI is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme://`.
    #[error(
        "printer {0:?} has no scheme: use tcp://HOST:9100, file:///dev/usb/lp0, ble://NAME or app://NAME"
    )]
    NoScheme(String),
    /// A scheme other than tcp, file, ble and app.
    #[error("unknown printer scheme {0:?}: use tcp://, file://, ble:// or app://")]
    UnknownScheme(String),
    /// `serial://` (use a `file://` device instead).
    #[error(
        "serial printers are not supported directly: set the line up (stty -F DEV 9600 raw) and use file://DEV"
    )]
    Serial,
    /// `tcp://` without a host.
    #[error("printer {0:?} has no host")]
    NoHost(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid printer port {0:?}")]
    BadPort(String),
    /// `file://` with a relative or empty path.
    #[error("printer path {0:?} must be absolute, e.g. file:///dev/usb/lp0")]
    NotAbsolute(String),
    /// `ble://` or `app://` without a name.
    #[error("printer name is empty: use ble://NAME or app://NAME")]
    NoName,
    /// A `%` escape that is not two hex digits or not UTF-8.
    #[error("bad %-escape in printer {0:?}")]
    BadEscape(String),
}

impl FromStr for PrinterUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<PrinterUri, UriError> {
        let s = s.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| UriError::NoScheme(s.to_owned()))?;
        match scheme.to_ascii_lowercase().as_str() {
            "tcp" => {
                let authority = rest.trim_end_matches('/');
                let (host, port) = split_host_port(authority)?;
                if host.is_empty() {
                    return Err(UriError::NoHost(s.to_owned()));
                }
                let port = match port {
                    None => DEFAULT_TCP_PORT,
                    Some(p) => p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| UriError::BadPort(p.to_owned()))?,
                };
                Ok(PrinterUri::Tcp {
                    host: host.to_owned(),
                    port,
                })
            }
            "file" => {
                let path = percent_decode(rest)?;
                if !path.starts_with('/') {
                    return Err(UriError::NotAbsolute(rest.to_owned()));
                }
                Ok(PrinterUri::File {
                    path: PathBuf::from(path),
                })
            }
            "ble" | "app" => {
                let name = percent_decode(rest.trim_end_matches('/'))?;
                let name = name.trim().to_owned();
                if name.is_empty() {
                    return Err(UriError::NoName);
                }
                Ok(if scheme.eq_ignore_ascii_case("ble") {
                    PrinterUri::Ble { name }
                } else {
                    PrinterUri::App { name }
                })
            }
            "serial" => Err(UriError::Serial),
            other => Err(UriError::UnknownScheme(other.to_owned())),
        }
    }
}

impl fmt::Display for PrinterUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrinterUri::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            PrinterUri::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            PrinterUri::File { path } => write!(f, "file://{}", path.display()),
            PrinterUri::Ble { name } => write!(f, "ble://{name}"),
            PrinterUri::App { name } => write!(f, "app://{name}"),
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UriError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| UriError::NoHost(authority.to_owned()))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(UriError::BadPort(after.to_owned())),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn percent_decode(s: &str) -> Result<String, UriError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::BadEscape(s.to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::BadEscape(s.to_owned()))
}

/// Why printing failed. The sale is never affected: callers only lose the paper copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrintError {
    /// The printer refused or reset the connection, or its name does not resolve.
    #[error("cannot connect to printer {printer}: {source}")]
    Connect {
        /// The printer.
        printer: String,
        /// Why.
        source: io::Error,
    },
    /// No connection within the connect timeout.
    #[error("printer {printer} did not answer within {after:?}")]
    ConnectTimeout {
        /// The printer.
        printer: String,
        /// The timeout.
        after: Duration,
    },
    /// The printer stopped taking data (paper out, jammed, hung).
    #[error("printer {printer} stopped taking data: nothing written for {after:?}")]
    Stalled {
        /// The printer.
        printer: String,
        /// How long nothing was written.
        after: Duration,
    },
    /// The whole job took longer than allowed.
    #[error("printing to {printer} took longer than {after:?}")]
    Deadline {
        /// The printer.
        printer: String,
        /// The job deadline.
        after: Duration,
    },
    /// Opening or writing the device failed.
    #[error("printer {printer}: {source}")]
    Io {
        /// The printer.
        printer: String,
        /// Why.
        source: io::Error,
    },
    /// No Bluetooth on this machine (no adapter, no BlueZ, no system D-Bus).
    #[error("Bluetooth unavailable: {0}")]
    BluetoothUnavailable(String),
    /// No Bluetooth LE device with that name showed up while scanning.
    #[error("no Bluetooth printer {name:?} found within {after:?}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The scan time.
        after: Duration,
    },
    /// The Bluetooth LE device has no characteristic a receipt can be written to.
    #[error("Bluetooth device {0:?} has no writable printer characteristic")]
    NotAPrinter(String),
    /// A Bluetooth LE operation failed.
    #[error("Bluetooth printer {printer}: {message}")]
    Bluetooth {
        /// The printer.
        printer: String,
        /// What failed.
        message: String,
    },
    /// An `app://` printer, but no app is moving bytes (the node runs as `kasir run`).
    #[error("printer {0} is reached through the app, and no app is running this node")]
    NoApp(String),
    /// The app could not send the job.
    #[error("printer {printer}: {message}")]
    App {
        /// The printer.
        printer: String,
        /// What the app said.
        message: String,
    },
}

/// Time limits of a print job. The defaults end any hang within seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// Resolving and connecting (TCP) or opening (device).
    pub connect: Duration,
    /// Longest time without any byte written before the printer counts as stalled.
    pub stall: Duration,
    /// The whole job.
    pub total: Duration,
    /// Bluetooth LE scan time for a printer by name.
    pub scan: Duration,
    /// Pause between Bluetooth LE writes, so the printer's small buffer keeps up.
    pub ble_pace: Duration,
}

impl Default for TransportOptions {
    /// Connect 3 s, stall 5 s, whole job 60 s, BLE scan 8 s, BLE pace 8 ms.
    fn default() -> TransportOptions {
        TransportOptions {
            connect: Duration::from_secs(3),
            stall: Duration::from_secs(5),
            total: Duration::from_secs(60),
            scan: Duration::from_secs(8),
            ble_pace: Duration::from_millis(8),
        }
    }
}

/// A way of sending bytes to one printer.
pub trait Transport: Send {
    /// The printer, for messages (`tcp://10.0.0.7:9100`).
    fn describe(&self) -> String;

    /// Sends every byte of a job, or fails within the transport's time limits.
    fn send(&mut self, bytes: &[u8]) -> Result<(), PrintError>;

    /// Asks the printer for its real-time status (`DLE EOT`), waiting at most `wait` for
    /// each answer. `Ok(None)` when the printer does not answer or the transport cannot
    /// read (many printers never answer): callers must not treat that as an error.
    fn status(&mut self, wait: Duration) -> Result<Option<PrinterStatus>, PrintError> {
        let _ = wait;
        Ok(None)
    }
}

/// The transport of `uri`. Opening does no IO: [`Transport::send`] connects. An
/// `app://` printer fails to send: see [`open_with`].
pub fn open(uri: &PrinterUri, opts: TransportOptions) -> Box<dyn Transport> {
    open_with(uri, opts, None)
}

/// The transport of `uri`, with the app that moves the bytes of `app://` printers.
pub fn open_with(
    uri: &PrinterUri,
    opts: TransportOptions,
    app: Option<Arc<dyn AppLink>>,
) -> Box<dyn Transport> {
    match uri {
        PrinterUri::Tcp { host, port } => Box::new(TcpTransport {
            host: host.clone(),
            port: *port,
            opts,
        }),
        PrinterUri::File { path } => Box::new(FileTransport {
            path: path.clone(),
            opts,
        }),
        PrinterUri::Ble { name } => Box::new(crate::ble::BleTransport::new(name.clone(), opts)),
        PrinterUri::App { name } => Box::new(AppTransport {
            name: name.clone(),
            app,
        }),
    }
}

/// Bytes handed to the app embedding the node ([`AppLink`]).
struct AppTransport {
    name: String,
    app: Option<Arc<dyn AppLink>>,
}

impl Transport for AppTransport {
    fn describe(&self) -> String {
        format!("app://{}", self.name)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PrintError> {
        let app = self
            .app
            .as_ref()
            .ok_or_else(|| PrintError::NoApp(self.describe()))?;
        app.send(&self.name, bytes)
            .map_err(|message| PrintError::App {
                printer: self.describe(),
                message,
            })
    }
}

/// Sends `bytes` to the printer at `uri` (see [`open`]).
pub fn print(uri: &PrinterUri, bytes: &[u8], opts: TransportOptions) -> Result<(), PrintError> {
    open(uri, opts).send(bytes)
}

/// Raw TCP printing: one connection per job, closed after the job.
#[derive(Debug, Clone)]
pub struct TcpTransport {
    host: String,
    port: u16,
    opts: TransportOptions,
}

impl TcpTransport {
    /// A transport to `host:port` with these limits.
    pub fn new(host: &str, port: u16, opts: TransportOptions) -> TcpTransport {
        TcpTransport {
            host: host.to_owned(),
            port,
            opts,
        }
    }

    fn connect(&self) -> Result<TcpStream, PrintError> {
        let printer = self.describe();
        let started = Instant::now();
        let addrs = resolve(&self.host, self.port, self.opts.connect).map_err(|e| match e {
            None => PrintError::ConnectTimeout {
                printer: printer.clone(),
                after: self.opts.connect,
            },
            Some(source) => PrintError::Connect {
                printer: printer.clone(),
                source,
            },
        })?;
        let mut last = None;
        for addr in addrs {
            let left = self.opts.connect.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() != io::ErrorKind::TimedOut => {
                PrintError::Connect { printer, source: e }
            }
            _ => PrintError::ConnectTimeout {
                printer,
                after: self.opts.connect,
            },
        })
    }
}

/// Resolves `host:port` within `limit`: IP literals at once, names on a helper thread
/// (the system resolver has no timeout of its own). `Err(None)` on timeout.
fn resolve(host: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, Option<io::Error>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let target = (host.to_owned(), port);
    std::thread::spawn(move || {
        let _ = tx.send(target.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(Some(io::Error::new(
            io::ErrorKind::NotFound,
            "name has no addresses",
        ))),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

impl Transport for TcpTransport {
    fn describe(&self) -> String {
        PrinterUri::Tcp {
            host: self.host.clone(),
            port: self.port,
        }
        .to_string()
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PrintError> {
        let printer = self.describe();
        let deadline = Instant::now() + self.opts.total;
        let mut stream = self.connect()?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PrintError::Deadline {
                    printer,
                    after: self.opts.total,
                });
            }
            let limit = self.opts.stall.min(left);
            stream
                .set_write_timeout(Some(limit))
                .map_err(|source| PrintError::Io {
                    printer: printer.clone(),
                    source,
                })?;
            match stream.write(rest) {
                Ok(0) => {
                    return Err(PrintError::Io {
                        printer,
                        source: io::ErrorKind::WriteZero.into(),
                    });
                }
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(if limit < self.opts.stall {
                        PrintError::Deadline {
                            printer,
                            after: self.opts.total,
                        }
                    } else {
                        PrintError::Stalled {
                            printer,
                            after: limit,
                        }
                    });
                }
                Err(source) => return Err(PrintError::Io { printer, source }),
            }
        }
        // End of job: half-close, then drain briefly so closing with unread status bytes
        // does not reset the connection (a reset may make the printer drop its buffer).
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
        let mut sink = [0u8; 256];
        let drain_until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < drain_until {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Ok(())
    }

    fn status(&mut self, wait: Duration) -> Result<Option<PrinterStatus>, PrintError> {
        let printer = self.describe();
        let mut stream = self.connect()?;
        let io_err = |source| PrintError::Io {
            printer: printer.clone(),
            source,
        };
        stream
            .set_write_timeout(Some(self.opts.stall))
            .map_err(io_err)?;
        stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(io_err)?;
        let mut status = PrinterStatus::default();
        for request in [
            StatusRequest::Printer,
            StatusRequest::OfflineCause,
            StatusRequest::Paper,
        ] {
            stream.write_all(&request.bytes()).map_err(io_err)?;
            let mut byte = [0u8; 1];
            match stream.read(&mut byte) {
                Ok(1) if status.apply(request, byte[0]) => {}
                // Silence, a closed connection or a byte that is no status: unknown.
                _ => return Ok(None),
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        Ok(Some(status))
    }
}

/// A device node or file, written in one go on a helper thread bounded by the job limit.
#[derive(Debug, Clone)]
pub struct FileTransport {
    path: PathBuf,
    opts: TransportOptions,
}

impl FileTransport {
    /// A transport writing to `path` with these limits.
    pub fn new(path: PathBuf, opts: TransportOptions) -> FileTransport {
        FileTransport { path, opts }
    }
}

impl Transport for FileTransport {
    fn describe(&self) -> String {
        PrinterUri::File {
            path: self.path.clone(),
        }
        .to_string()
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PrintError> {
        let printer = self.describe();
        let path = self.path.clone();
        let data = bytes.to_vec();
        let (tx, rx) = mpsc::channel::<io::Result<bool>>();
        // A kernel write to a hung USB printer may never return: the thread is left
        // behind rather than the caller. It reports after each chunk, so a printer that
        // is slow but moving is not taken for a stalled one.
        std::thread::spawn(move || {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path);
            let mut file = match opened {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            for chunk in data.chunks(FILE_CHUNK) {
                if let Err(e) = file.write_all(chunk) {
                    let _ = tx.send(Err(e));
                    return;
                }
                if tx.send(Ok(false)).is_err() {
                    return;
                }
            }
            let _ = tx.send(file.flush().map(|()| true));
        });
        let deadline = Instant::now() + self.opts.total;
        let mut limit = self.opts.connect.max(self.opts.stall);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(limit.min(left)) {
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => limit = self.opts.stall,
                Ok(Err(source)) => return Err(PrintError::Io { printer, source }),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PrintError::Io {
                        printer,
                        source: io::Error::other("device writer ended unexpectedly"),
                    });
                }
                Err(_) if left <= limit => {
                    return Err(PrintError::Deadline {
                        printer,
                        after: self.opts.total,
                    });
                }
                Err(_) => {
                    return Err(PrintError::Stalled {
                        printer,
                        after: limit,
                    });
                }
            }
        }
    }
}

/// Bytes per device write: progress is seen at least this often.
const FILE_CHUNK: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Result<PrinterUri, UriError> {
        s.parse()
    }

    #[test]
    fn printer_uris_parse_into_their_transport() {
        assert_eq!(
            uri("tcp://192.168.1.50:9100").unwrap(),
            PrinterUri::Tcp {
                host: "192.168.1.50".into(),
                port: 9100
            }
        );
        assert_eq!(
            uri("tcp://printer.local").unwrap(),
            PrinterUri::Tcp {
                host: "printer.local".into(),
                port: 9100
            }
        );
        assert_eq!(
            uri("TCP://[::1]:9101/").unwrap(),
            PrinterUri::Tcp {
                host: "::1".into(),
                port: 9101
            }
        );
        assert_eq!(
            uri("file:///dev/usb/lp0").unwrap(),
            PrinterUri::File {
                path: "/dev/usb/lp0".into()
            }
        );
        assert_eq!(
            uri("ble://POS58%20Printer").unwrap(),
            PrinterUri::Ble {
                name: "POS58 Printer".into()
            }
        );
        assert_eq!(uri("ble://RPP02N").unwrap().to_string(), "ble://RPP02N");
        assert_eq!(
            uri("app://RPP02N%20SPP").unwrap(),
            PrinterUri::App {
                name: "RPP02N SPP".into()
            }
        );
        assert_eq!(uri("APP://spp").unwrap().to_string(), "app://spp");
        assert_eq!(uri("tcp://[::1]").unwrap().to_string(), "tcp://[::1]:9100");
    }

    /// Remembers what the app was handed.
    struct Recording(std::sync::Mutex<Vec<(String, Vec<u8>)>>);

    impl AppLink for Recording {
        fn send(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
            if name == "mati" {
                return Err("socket closed".into());
            }
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .push((name.to_owned(), bytes.to_vec()));
            Ok(())
        }
    }

    #[test]
    fn app_printers_send_through_the_app_or_say_there_is_none() {
        let app = Arc::new(Recording(std::sync::Mutex::default()));
        let opts = TransportOptions::default();
        let spp = uri("app://RPP02N").unwrap();
        open_with(&spp, opts, Some(app.clone()))
            .send(b"\x1b@struk")
            .unwrap();
        assert_eq!(
            *app.0.lock().unwrap(),
            vec![("RPP02N".to_owned(), b"\x1b@struk".to_vec())]
        );
        let failed = open_with(&uri("app://mati").unwrap(), opts, Some(app.clone()))
            .send(b"x")
            .unwrap_err();
        assert!(
            matches!(&failed, PrintError::App { printer, message } if printer == "app://mati" && message == "socket closed"),
            "{failed:?}"
        );
        let none = open(&spp, opts).send(b"x").unwrap_err();
        assert!(matches!(none, PrintError::NoApp(_)), "{none:?}");
    }

    #[test]
    fn bad_printer_uris_get_clear_errors() {
        assert_eq!(
            uri("192.168.1.50"),
            Err(UriError::NoScheme("192.168.1.50".into()))
        );
        assert_eq!(uri("usb://x"), Err(UriError::UnknownScheme("usb".into())));
        assert_eq!(uri("serial:///dev/ttyUSB0"), Err(UriError::Serial));
        assert_eq!(
            uri("tcp://:9100"),
            Err(UriError::NoHost("tcp://:9100".into()))
        );
        assert_eq!(
            uri("tcp://host:99999"),
            Err(UriError::BadPort("99999".into()))
        );
        assert_eq!(uri("tcp://host:0"), Err(UriError::BadPort("0".into())));
        assert_eq!(uri("tcp://host:lp"), Err(UriError::BadPort("lp".into())));
        assert_eq!(
            uri("file://dev/usb/lp0"),
            Err(UriError::NotAbsolute("dev/usb/lp0".into()))
        );
        assert_eq!(uri("ble://"), Err(UriError::NoName));
        assert_eq!(uri("app:// "), Err(UriError::NoName));
        assert_eq!(uri("ble://%zz"), Err(UriError::BadEscape("%zz".into())));
        assert!(
            UriError::UnknownScheme("usb".into())
                .to_string()
                .contains("tcp://")
        );
    }
}
