//! Benchmark: preprocessing (decode + orientation + crop + resize), inference and gallery
//! search against 10,000 references, on one core. Prints one JSON object.
//!
//! `taskset -c 0 cargo bench -p kasir-ml --bench recognize` (tract runs single-threaded;
//! `taskset` keeps other work off the measured core).
#![allow(missing_docs)]

use kasir_testkit::percentile;
use std::time::Instant;

use kasir_ml::augment::Augment;
use kasir_ml::{
    BUNDLED_MODEL_BLAKE3, DIM, Embedding, Gallery, Model, ModelHash, bundled_model_path, decode,
    to_input,
};

const REFERENCES: usize = 10_000;
const ITERATIONS: usize = 60;
const PHOTOS: [&str; 4] = ["coffee", "rocket", "flower", "grace_hopper"];

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "\"{name}\":{{\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 1.0)
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let model = Model::load(
        &bundled_model_path(),
        ModelHash::from_hex(BUNDLED_MODEL_BLAKE3),
    )?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let photos: Vec<Vec<u8>> = PHOTOS
        .iter()
        .map(|p| std::fs::read(dir.join(format!("{p}.jpg"))))
        .collect::<Result<_, _>>()?;

    // 10,000 references: real embeddings of the fixtures' augmented views, padded with
    // deterministic pseudo-random unit vectors (search cost does not depend on content).
    let mut gallery = Gallery::new(model.hash());
    for (i, bytes) in photos.iter().enumerate() {
        let image = decode(bytes)?;
        for s in 0..3 {
            let e = model.embed_image(&Augment::random(s).apply(&image))?;
            gallery.add(&format!("real-{i}-{s}"), PHOTOS[i], model.hash(), &e)?;
        }
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut raw = vec![0f32; DIM];
    while gallery.len() < REFERENCES {
        for x in raw.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *x = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        let e = Embedding::normalised(&raw)?;
        let n = gallery.len();
        gallery.add(
            &format!("synthetic-{n}"),
            &format!("SKU-{}", n % 2_500),
            model.hash(),
            &e,
        )?;
    }

    let (mut pre, mut infer, mut search, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut correct = 0;
    for i in 0..ITERATIONS {
        let k = i % photos.len();
        let t0 = Instant::now();
        let input = to_input(&decode(&photos[k])?)?;
        let t1 = Instant::now();
        let out = model.run(input)?;
        let t2 = Instant::now();
        let r = gallery.recognize(&out.embedding, 5);
        let t3 = Instant::now();
        if r.matches.first().is_some_and(|m| m.sku == PHOTOS[k]) {
            correct += 1;
        }
        pre.push((t1 - t0).as_secs_f64() * 1e3);
        infer.push((t2 - t1).as_secs_f64() * 1e3);
        search.push((t3 - t2).as_secs_f64() * 1e3);
        total.push((t3 - t0).as_secs_f64() * 1e3);
    }
    println!(
        "{{\"references\":{},\"iterations\":{ITERATIONS},\"model_load_ms\":{load_ms:.1},\"top1_correct\":{correct},{},{},{},{}}}",
        gallery.len(),
        summary("preprocess", pre),
        summary("inference", infer),
        summary("search", search),
        summary("total", total)
    );
    Ok(())
}
