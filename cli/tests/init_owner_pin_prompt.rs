//! `kasir init` asks for the owner's PIN on a terminal (twice, not echoed) and never in
//! a script. The terminal is a real pseudo-terminal from util-linux `script`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kasir_testkit::Till;
use kasir_testkit::process::kasir_bin;

/// Runs `kasir --data DIR --json ARGS` on a pseudo-terminal and answers each prompt
/// in `answers` (`(prompt text, what to type)`) once it has appeared — typed ahead, the
/// terminal would echo it before the program turned echo off. Returns everything the
/// terminal showed.
fn on_a_terminal(t: &Till, args: &str, answers: &[(&str, &str)]) -> String {
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
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux script (apt: util-linux)");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let mut stdin = child.stdin.take().expect("stdin");
    for (prompt, answer) in answers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => shown.extend(chunk),
                Err(_) => panic!("no prompt {prompt:?}: {}", String::from_utf8_lossy(&shown)),
            }
        }
        // Each answer is waited for once: the next prompt is looked for after it.
        shown.clear();
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("type");
        stdin.flush().expect("flush");
    }
    drop(stdin);
    child.wait().expect("wait");
    reader.join().expect("reader");
    shown.extend(rx.try_iter().flatten());
    String::from_utf8_lossy(&shown).into_owned()
}

#[test]
fn init_owner_pin_prompt_on_a_terminal_creates_the_owner_without_echo() {
    let t = Till::empty();
    let shown = on_a_terminal(
        &t,
        "init --store-name 'Warung Tanya' --till-code T1 --owner-name 'Bu Ina'",
        &[("PIN untuk Bu Ina", "482916"), ("Ulangi PIN", "482916")],
    );
    assert!(!shown.contains("482916"), "the PIN is not echoed: {shown}");
    assert!(shown.contains("store_id"), "{shown}");
    let users = t.ok(&["user", "list"]);
    assert_eq!(users["users"][0]["name"], "Bu Ina", "{users}");
    assert_eq!(users["users"][0]["role"], "owner");

    // Two different PINs: nothing is created.
    let other = Till::empty();
    let shown = on_a_terminal(
        &other,
        "init --store-name X --till-code T1",
        &[("PIN untuk", "482916"), ("Ulangi PIN", "999999")],
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
