//! Certificates for TLS tests, made by the real `openssl` command: a test CA and a
//! server certificate for `127.0.0.1` and `localhost` signed by it; and [`TlsFront`], a
//! TLS terminator in front of a plain TCP service (a broker with no TLS of its own).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files [`certificates`] made.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA's certificate (what a client trusts).
    pub ca: PathBuf,
    /// Another CA's certificate, that signed nothing here (a client trusting only it
    /// must refuse the server).
    pub other_ca: PathBuf,
    /// The server's certificate, signed by `ca`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl (Debian: openssl) is needed: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn self_signed(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN=kasir test {name}"),
        ],
    );
}

/// Makes a test CA, another CA, and a server certificate signed by the first in `dir`.
pub fn certificates(dir: &Path) -> TestCerts {
    self_signed(dir, "ca");
    self_signed(dir, "other");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write san.ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "san.ext",
        ],
    );
    TestCerts {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other.pem"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// A TLS terminator on a port of 127.0.0.1 that forwards every connection, decrypted, to
/// a plain TCP port (what a TLS load balancer in front of Kafka does). It runs on a
/// thread of its own with its own runtime; [`Drop`] stops it.
pub struct TlsFront {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Terminates TLS with `certs.cert`/`certs.key` on a free port, forwarding to
    /// `127.0.0.1:backend`.
    pub fn start(certs: &TestCerts, backend: u16) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
            .and_then(|c| c.collect::<Result<_, _>>())
            .expect("server certificate");
        let key = PrivateKeyDer::from_pem_file(&certs.key).expect("server key");
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind TLS front");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("TLS front address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("TLS front runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("TLS front listener");
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // A client that fails the handshake (it does not trust us,
                            // or speaks plain TCP) is simply dropped, as a real
                            // terminator would.
                            let Ok(mut tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let Ok(mut plain) =
                                tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                            else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = serve => {}
                }
            });
        });
        TlsFront {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
