//! `kasir init` asks for the owner's PIN on a terminal (twice, not echoed) and never in
//! a script. The terminal is a real pseudo-terminal from util-linux `script`.

use std::io::Write;
use std::process::{Command, Stdio};

use kasir_testkit::Till;
use kasir_testkit::process::kasir_bin;

/// Runs `kasir --data DIR --json ARGS` on a pseudo-terminal fed `input`; returns what
/// the terminal showed.
fn on_a_terminal(t: &Till, args: &str, input: &str) -> String {
    let command = format!(
        "{} --data {} --json {args}",
        kasir_bin().display(),
        t.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("KASIR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script (apt: util-linux)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("type");
    let out = child.wait_with_output().expect("wait");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn init_owner_pin_prompt_on_a_terminal_creates_the_owner_without_echo() {
    let t = Till::empty();
    let shown = on_a_terminal(
        &t,
        "init --store-name 'Warung Tanya' --till-code T1 --owner-name 'Bu Ina'",
        "482916\n482916\n",
    );
    assert!(shown.contains("PIN untuk Bu Ina"), "{shown}");
    assert!(!shown.contains("482916"), "the PIN is not echoed: {shown}");
    let users = t.ok(&["user", "list"]);
    assert_eq!(users["users"][0]["name"], "Bu Ina", "{users}");
    assert_eq!(users["users"][0]["role"], "owner");

    // Two different PINs: nothing is created.
    let other = Till::empty();
    let shown = on_a_terminal(
        &other,
        "init --store-name X --till-code T1",
        "482916\n999999\n",
    );
    assert!(shown.contains("differ"), "{shown}");
    assert!(other.fails(&["status"]).contains("kasir init"));
}

#[test]
fn init_owner_pin_prompt_never_waits_in_a_script() {
    // Standard input is a pipe with nothing in it: no prompt, no user, no hang.
    let t = Till::empty();
    let out = Command::new(kasir_bin())
        .args(["--data"])
        .arg(t.path())
        .args([
            "--json",
            "init",
            "--store-name",
            "Warung Skrip",
            "--till-code",
            "T1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("PIN"));
    assert_eq!(t.ok(&["user", "list"])["users"], serde_json::json!([]));
}
