//! The node through its generated Python bindings: `scripts/bindings python` writes
//! them and the library, and CPython runs `tests/python/node_flow.py` — init, products,
//! a sale (once per client id), search, stock, the struk, a Python listener hearing the
//! sale and the stock from the node's threads, errors as exceptions named after the
//! API's codes, the till app served to whoever opens the one-time URL and to nobody
//! else, a print job the Python printer refuses told as `PrintFailed`, a second node
//! joining over an invite and holding the sale, stop (idempotent, later calls refused),
//! and the data directory opened again in the same process.

use std::process::Command;

use kasir_testkit::foreign;

#[test]
fn ffi_python_sells_serves_and_stops() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bindings = tmp.path().join("bindings");
    foreign::bindings("python", &bindings, env!("CARGO_BIN_EXE_uniffi-bindgen"));
    assert!(bindings.join("kasir_ffi.py").is_file());
    let run = foreign::run(
        Command::new("python3")
            .arg(foreign::root().join("ffi/tests/python/node_flow.py"))
            .arg(tmp.path().join("till"))
            .env("PYTHONPATH", &bindings)
            .env("KASIR_LOG", "warn"),
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "python failed:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok "), "{stdout}");
}
