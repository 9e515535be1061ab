//! The converted model is right: ImageNet top-1 on known photos, embedding invariants,
//! and a model file with the wrong hash is refused.
#![allow(missing_docs)]

mod common;

use common::{fixture, model};
use kasir_ml::augment::Augment;
use kasir_ml::{LoadError, Model, ModelHash, bundled_model_path, decode};

/// ImageNet class indices (0-based, the standard 1000-class order).
const ESPRESSO: usize = 967;
const TRIPOD: usize = 872;
const MILITARY_UNIFORM: usize = 652;
const EGYPTIAN_CAT: usize = 285;
const TIGER_CAT: usize = 282;
const TABBY: usize = 281;

#[test]
fn imagenet_top1_on_known_photos() -> Result<(), Box<dyn std::error::Error>> {
    let m = model();
    // scikit-image's coffee.png (a cup of espresso), camera.png (a photographer at a
    // tripod), matplotlib's grace_hopper.jpg (Grace Hopper in US Navy uniform).
    assert_eq!(m.run_bytes(&fixture("coffee"))?.top1(), ESPRESSO);
    assert_eq!(m.run_bytes(&fixture("camera"))?.top1(), TRIPOD);
    assert_eq!(
        m.run_bytes(&fixture("grace_hopper"))?.top1(),
        MILITARY_UNIFORM
    );
    let cat = m.run_bytes(&fixture("chelsea"))?.top1();
    assert!(
        [EGYPTIAN_CAT, TIGER_CAT, TABBY].contains(&cat),
        "chelsea is a cat, got class {cat}"
    );
    Ok(())
}

#[test]
fn augmented_copy_is_closer_than_unrelated_photos() -> Result<(), Box<dyn std::error::Error>> {
    let m = model();
    let hopper = decode(&fixture("grace_hopper"))?;
    let base = m.embed_image(&hopper)?;
    let augmented = m.embed_image(
        &Augment {
            crop: 0.85,
            crop_at: (0.3, 0.6),
            rotate_deg: 10.0,
            mirror: true,
            brightness: 0.8,
            blur: 1.0,
        }
        .apply(&hopper),
    )?;
    let same = base.cosine(&augmented);
    for other in ["coffee", "rocket", "brick", "flower"] {
        let unrelated = base.cosine(&m.embed(&fixture(other))?);
        assert!(
            same > unrelated + 0.2,
            "augmented {same:.3} vs {other} {unrelated:.3}"
        );
    }
    assert!(same > 0.7, "augmented copy cosine {same:.3}");
    Ok(())
}

#[test]
fn a_model_file_with_another_hash_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let wrong = ModelHash([7; 32]);
    match Model::load(&bundled_model_path(), Some(wrong)) {
        Err(LoadError::HashMismatch { expected, got }) => {
            assert_eq!(expected, wrong);
            assert_eq!(got, model().hash());
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    // A corrupt file is an error, not a panic.
    let err = Model::from_bytes(b"definitely not onnx", None);
    assert!(matches!(err, Err(LoadError::Tract(_))), "{err:?}");
    Ok(())
}
