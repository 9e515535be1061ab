//! Shared helpers for the model tests: the bundled model, loaded once per test binary.

use std::sync::OnceLock;

use kasir_ml::{Model, ModelHash, bundled_model_path};

/// The bundled model, checked against the hash this build expects.
pub(crate) fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let expected = ModelHash::from_hex(kasir_ml::BUNDLED_MODEL_BLAKE3);
        assert!(expected.is_some(), "BUNDLED_MODEL_BLAKE3 is 64 hex digits");
        match Model::load(&bundled_model_path(), expected) {
            Ok(m) => m,
            Err(e) => panic!("bundled model: {e}"),
        }
    })
}

/// A fixture photo's bytes.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.jpg"));
    match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}
