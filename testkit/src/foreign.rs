//! Real foreign callers of the node's bindings (`kasir-ffi`): this build's library,
//! bindings written by `scripts/bindings`, and the tools that run them — CPython, and
//! Kotlin on the JVM with JNA (the same generated Kotlin Android uses). A missing tool
//! fails the test, naming what installs it (`scripts/services install`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root: the tree the test runs in (cargo starts a test in its package's
/// directory), else the one this crate was built from. Clones share one target
/// directory (`.cargo/config.toml`), and a build made in another clone that is gone
/// since would name that clone.
pub fn root() -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            cwd.ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// This build's `libkasir_ffi.so`: `cargo test` builds it next to the test binary
/// (`target/<profile>/deps/`); `cargo build` also copies it up a level.
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent().map(Path::to_path_buf).unwrap_or_default();
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

/// Writes the bindings for `lang` (`python`, `kotlin`, `swift`) and the library into
/// `out` with `scripts/bindings`, using the generator `bindgen` this build made.
pub fn bindings(lang: &str, out: &Path, bindgen: &str) {
    let made = run(Command::new(root().join("scripts/bindings"))
        .arg(lang)
        .arg(out)
        .env("KASIR_FFI_LIB", library())
        .env("KASIR_UNIFFI_BINDGEN", bindgen));
    assert!(
        made.status.success(),
        "scripts/bindings {lang}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Runs a command to its end, failing the test when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (scripts/services install)"))
}

/// The first of `candidates` that is a file, else `fallback` on PATH.
fn tool(env: &str, candidates: &[&str], fallback: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(fallback))
}

/// `kotlinc` ($KASIR_KOTLINC, else where `scripts/services install` puts it).
pub fn kotlinc() -> PathBuf {
    tool(
        "KASIR_KOTLINC",
        &["/var/tmp/kasir-tools/kotlin/node_modules/kotlin-compiler/bin/kotlinc"],
        "kotlinc",
    )
}

/// JNA's jar ($KASIR_JNA_JAR, else Debian's `libjna-java`).
pub fn jna_jar() -> PathBuf {
    let jar = tool("KASIR_JNA_JAR", &["/usr/share/java/jna.jar"], "jna.jar");
    assert!(
        jar.is_file(),
        "no JNA jar at {} (scripts/services install: Debian libjna-java)",
        jar.display()
    );
    jar
}
