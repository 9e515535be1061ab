//! Certificates for TLS tests, made by the real `openssl` command: a test CA and a
//! server certificate for `127.0.0.1` and `localhost` signed by it.

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
