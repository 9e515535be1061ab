//! Fuzzes frame decoding and the sync session handler with one real node.
//! Run: `cargo +nightly fuzz run sync_frames` (from the repository root).
#![no_main]

use std::sync::Mutex;
use std::sync::OnceLock;

use kasir_node::Node;
use kasir_node::api::InitOptions;

static NODE: OnceLock<(tempfile::TempDir, Mutex<Node>)> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, node) = NODE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Node::init(dir.path(), &InitOptions { store_name: "Fuzz".into(), till_code: "F1".into(), encrypt: None })
            .expect("init");
        (dir, Mutex::new(node))
    });
    let mut node = node.lock().expect("lock");
    let peer = kasir_crdt::DeviceId([7; 32]);
    kasir_sync::feed_untrusted(&mut *node, peer, data);
});
