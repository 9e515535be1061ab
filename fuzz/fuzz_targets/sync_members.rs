//! Structure-aware fuzzing of the trust rules (see `kasir_tests::member_fuzz`): forged
//! changes from members, strangers and revoked devices, as well-formed sync frames, into a
//! real till and the relay's replica.
//!
//! Run: `cargo +nightly fuzz run sync_members -O -a -s none` (from the repository root).
//! Keep new corpus entries and crashers in `fuzz/corpus/sync_members`:
//! `tests/tests/sync_fuzz_corpus.rs` replays them on every test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: kasir_tests::member_fuzz::Input| {
    kasir_tests::member_fuzz::run(&input);
});
