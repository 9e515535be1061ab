//! `kasir demo` (the README's main command) runs on embedded defaults: three tills sell
//! and end with the same sales, every sale seen by every till.
#![allow(missing_docs)]

mod support;

#[test]
fn demo_sells_on_three_tills_that_converge() {
    let out = std::process::Command::new(support::kasir_bin())
        .args(["--json", "demo", "--sales", "40"])
        .env("KASIR_LOG", "warn")
        .output()
        .expect("run demo");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(v["tills"], 3);
    assert_eq!(v["sales"], 40);
    assert_eq!(
        v["sales_seen_by_each_till"],
        serde_json::json!([40, 40, 40])
    );
    assert!(v["revenue"].as_i64().is_some_and(|r| r > 0));
    let dir = v["data_dir"].as_str().expect("dir");
    let _ = std::fs::remove_dir_all(dir);
}
