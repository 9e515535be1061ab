//! The node through its generated Python bindings: `scripts/bindings python` writes
//! them and the library, and CPython runs `tests/python/node_flow.py` — init, products,
//! a sale, stock, the struk, a Python listener hearing the sale from the node's threads,
//! errors as exceptions named after the API's codes, the till app served and fetched over
//! HTTP, a second node joining over an invite and holding the sale, stop (idempotent,
//! later calls refused), and the data directory opened again in the same process.

use std::path::PathBuf;
use std::process::Command;

/// This build's library: `cargo test` builds it next to the test binary
/// (`target/<profile>/deps/libkasir_ffi.so`); `cargo build` also copies it up a level.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let deps = exe.parent().expect("target/<profile>/deps");
    let candidates = [
        deps.join("libkasir_ffi.so"),
        deps.parent()
            .map_or_else(PathBuf::new, |p| p.join("libkasir_ffi.so")),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no libkasir_ffi.so in {candidates:?}: cargo build --workspace"))
}

#[test]
fn ffi_python_sells_serves_and_stops() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().expect("tmp");
    let bindings = tmp.path().join("bindings");
    let generated = Command::new(root.join("scripts/bindings"))
        .args(["python"])
        .arg(&bindings)
        .env("KASIR_FFI_LIB", library())
        .env("KASIR_UNIFFI_BINDGEN", env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .output()
        .expect("scripts/bindings");
    assert!(
        generated.status.success(),
        "bindings: {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(bindings.join("kasir_ffi.py").is_file());
    let run = Command::new("python3")
        .arg(root.join("ffi/tests/python/node_flow.py"))
        .arg(tmp.path().join("till"))
        .env("PYTHONPATH", &bindings)
        .env("KASIR_LOG", "warn")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "python failed:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok "), "{stdout}");
}
