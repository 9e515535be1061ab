//! Replays the kept corpus of the structure-aware trust fuzzer (`fuzz/corpus/sync_members`,
//! minimised with `cargo fuzz cmin`) through the same harness libFuzzer drives: every
//! crasher (`crash-*`, kept once fixed) and every 16th case in name order, so each test run
//! checks forged changes from members, strangers and revoked devices against a real till
//! and the relay's replica in well under a minute. `KASIR_FUZZ_CORPUS=all` replays all
//! of it (about six minutes in a debug build).
#![allow(missing_docs)]

use arbitrary::{Arbitrary, Unstructured};
use kasir_tests::member_fuzz::{Input, run};

#[test]
fn sync_fuzz_corpus_replays_without_a_broken_rule() {
    let dir = kasir_testkit::foreign::root().join("fuzz/corpus/sync_members");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the kept corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus holds {} cases", files.len());
    let all = std::env::var("KASIR_FUZZ_CORPUS").is_ok_and(|v| v == "all");
    let crashers = files
        .iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("crash-"))
        })
        .count();
    assert!(crashers >= 2, "the fixed crashers are kept");
    let chosen: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            all || i % 16 == 0
                || f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("crash-"))
        })
        .map(|(_, f)| f)
        .collect();
    let mut forged = 0;
    for file in chosen {
        let bytes = std::fs::read(file).expect("read case");
        // libFuzzer builds typed inputs with `arbitrary_take_rest`; so does the replay.
        let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        forged += input.edits.len();
        run(&input);
    }
    assert!(forged > 0, "no case in the corpus forged anything");
}
