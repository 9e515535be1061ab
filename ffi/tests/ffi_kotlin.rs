//! The node through its generated Kotlin bindings on a JVM, with JNA — the same
//! Kotlin Android compiles (`mobile/android/` uses these bindings unchanged). `kotlinc`
//! compiles `tests/kotlin/NodeFlow.kt` with the bindings, and `java` runs it: init,
//! products, a sale (once per client id), search, stock, the struk as text and ESC/POS,
//! events through a Kotlin listener, a **Kotlin printer transport** receiving a
//! receipt's ESC/POS bytes from the node's print queue, the till app served behind its
//! one-time URL, a second node joining over an invite, stop and reopen.
//!
//! What cannot run here: an Android device, its Bluetooth SPP socket and WebView. The
//! printer transport is the interface the Android shell implements over
//! `BluetoothSocket`; this test implements it over a byte buffer.

use std::process::Command;

use kasir_testkit::foreign;

#[test]
fn ffi_kotlin_sells_prints_and_stops_on_the_jvm() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bindings = tmp.path().join("bindings");
    foreign::bindings("kotlin", &bindings, env!("CARGO_BIN_EXE_uniffi-bindgen"));
    let generated = bindings.join("id/kasir/ffi/kasir_ffi.kt");
    assert!(generated.is_file(), "no {}", generated.display());
    let jna = foreign::jna_jar();
    let jar = tmp.path().join("flow.jar");
    let compiled = foreign::run(
        Command::new(foreign::kotlinc())
            .arg(foreign::root().join("ffi/tests/kotlin/NodeFlow.kt"))
            .arg(&generated)
            .arg("-cp")
            .arg(&jna)
            .args(["-include-runtime", "-nowarn", "-d"])
            .arg(&jar),
    );
    assert!(
        compiled.status.success(),
        "kotlinc failed:\n{}\n{}",
        String::from_utf8_lossy(&compiled.stdout),
        String::from_utf8_lossy(&compiled.stderr)
    );
    let classpath = format!("{}:{}", jar.display(), jna.display());
    let run = foreign::run(
        Command::new("java")
            .arg(format!("-Djna.library.path={}", bindings.display()))
            .arg("-cp")
            .arg(classpath)
            .arg("NodeFlowKt")
            .arg(tmp.path().join("till"))
            .env("KASIR_LOG", "warn"),
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "kotlin failed:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("ok "), "{stdout}");
}
