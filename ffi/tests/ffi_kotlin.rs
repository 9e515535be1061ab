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

use std::path::Path;
use std::process::Command;

use kasir_testkit::foreign;

/// The Kotlin files of the Android shell.
fn shell_sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("mobile/android sources") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            shell_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "kt") {
            found.push(path);
        }
    }
}

/// Every binding name the Android shell uses — imports from `id.kasir.ffi`, and
/// `Type.Case` / `KasirNode.constructor` references — is in the generated Kotlin, so a
/// rename in `ffi/` cannot silently break the shell this machine cannot build.
fn shell_names_exist_in(generated: &str) {
    let mut sources = Vec::new();
    shell_sources(
        &foreign::root().join("mobile/android/app/src"),
        &mut sources,
    );
    assert!(sources.len() >= 3, "shell sources: {sources:?}");
    let types = [
        "KasirNode",
        "KasirException",
        "NodeEvent",
        "PrinterException",
    ];
    let mut checked = 0;
    for path in sources {
        let text = std::fs::read_to_string(&path).expect("read");
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("import id.kasir.ffi.") {
                let declared = [
                    format!("class {name}"),
                    format!("interface {name}"),
                    format!("object {name}"),
                    format!("fun `{name}`("),
                    format!("fun {name}("),
                ];
                assert!(
                    declared.iter().any(|d| generated.contains(d.as_str())),
                    "{}: id.kasir.ffi.{name} is not in the generated bindings",
                    path.display()
                );
                checked += 1;
            }
        }
        for ty in types {
            for (at, _) in text.match_indices(&format!("{ty}.")) {
                let member: String = text[at + ty.len() + 1..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric())
                    .collect();
                if member.is_empty() {
                    continue;
                }
                let declared = [
                    format!("class {member}"),
                    format!("object {member}"),
                    format!("fun `{member}`("),
                    format!("fun {member}("),
                ];
                assert!(
                    declared.iter().any(|d| generated.contains(d.as_str())),
                    "{}: {ty}.{member} is not in the generated bindings",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "only {checked} names checked");
}

#[test]
fn ffi_kotlin_sells_prints_and_stops_on_the_jvm() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bindings = tmp.path().join("bindings");
    foreign::bindings("kotlin", &bindings, env!("CARGO_BIN_EXE_uniffi-bindgen"));
    let generated = bindings.join("id/kasir/ffi/kasir_ffi.kt");
    assert!(generated.is_file(), "no {}", generated.display());
    shell_names_exist_in(&std::fs::read_to_string(&generated).expect("bindings"));
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
