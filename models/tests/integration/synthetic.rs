//! The made-up-weight models that GPU timing and parity runs use where the real weights cannot
//! be fetched: same shapes and formats as the real files, the same numbers on every device.

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use kairos_models::embed::Bert;
use kairos_models::llm::{Gemma, GenerateOptions};
use kairos_models::synthetic;

fn read_gguf(path: &std::path::Path) -> gguf_file::Content {
    gguf_file::Content::read(&mut std::fs::File::open(path).unwrap()).unwrap()
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn the_synthetic_gemma_file_has_the_real_file_s_tensors_and_generates_repeatably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gemma.gguf");
    synthetic::write_gemma3_270m(&path, 7).unwrap();
    let ours = read_gguf(&path);
    // Tensor for tensor, the layout of the real Q4_K_M file: names, shapes, formats.
    if let Some(real) = crate::common::gemma() {
        let real = read_gguf(&real);
        assert_eq!(ours.tensor_infos.len(), real.tensor_infos.len());
        for (name, want) in &real.tensor_infos {
            let got = ours.tensor_infos.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(got.shape, want.shape, "{name}");
            assert_eq!(got.ggml_dtype, want.ggml_dtype, "{name}");
        }
        let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len() as f64;
        let ratio = size(&path) / size(&crate::common::gemma().unwrap());
        assert!((0.95..1.05).contains(&ratio), "file size ratio {ratio}");
    }
    let mut model = Gemma::load(&path, &Device::Cpu).unwrap();
    assert_eq!(model.tokenizer().len(), 262_144);
    let opts = GenerateOptions { max_tokens: 6, ..GenerateOptions::default() };
    let a = model.generate("hello world", &opts, |_| {}).unwrap();
    assert_eq!(a.tokens, 6, "{a:?}");
    let logits = model.logits(&model.prompt_tokens("hello", false)).unwrap();
    assert!(logits.iter().all(|x| x.is_finite()));
    let err = model.logits(&[2, 262_144]).unwrap_err().to_string();
    assert!(err.contains("token id 262144 is outside the vocabulary of 262144"), "{err}");
    assert_eq!(model.generate("hello world", &opts, |_| {}).unwrap().text, a.text);
    // The same seed writes the same file, byte for byte.
    let path2 = dir.path().join("again.gguf");
    synthetic::write_gemma3_270m(&path2, 7).unwrap();
    assert!(std::fs::read(&path).unwrap() == std::fs::read(&path2).unwrap());
}

#[test]
fn a_synthetic_minilm_is_finite_padding_proof_and_seeded() {
    let cpu = Device::Cpu;
    let config = synthetic::minilm_config();
    let bert = Bert::synthetic(&config, 3, &cpu, DType::F32).unwrap();
    assert_eq!(bert.dim(), 384);
    let ids =
        Tensor::new(&[[101u32, 2000, 3000, 4000, 102], [101, 2500, 102, 0, 0]], &cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &cpu).unwrap();
    let types = ids.zeros_like().unwrap();
    let e = bert.forward(&ids, &types, &mask).unwrap().to_vec2::<f32>().unwrap();
    assert!(e.iter().flatten().all(|x| x.is_finite()));
    // The short row alone, unpadded: the same embedding.
    let alone = bert
        .forward(
            &Tensor::new(&[[101u32, 2500, 102]], &cpu).unwrap(),
            &Tensor::new(&[[0u32, 0, 0]], &cpu).unwrap(),
            &Tensor::new(&[[1u32, 1, 1]], &cpu).unwrap(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let d = alone[0].iter().zip(&e[1]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(d < 1e-5, "padding moved the embedding by {d}");
    let same = Bert::synthetic(&config, 3, &cpu, DType::F32).unwrap();
    assert_eq!(same.forward(&ids, &types, &mask).unwrap().to_vec2::<f32>().unwrap(), e);
    let other = Bert::synthetic(&config, 4, &cpu, DType::F32).unwrap();
    assert_ne!(other.forward(&ids, &types, &mask).unwrap().to_vec2::<f32>().unwrap(), e);
    // Half precision runs and stays close.
    let half = Bert::synthetic(&config, 3, &cpu, DType::F16).unwrap();
    let h = half.forward(&ids, &types, &mask).unwrap().to_vec2::<f32>().unwrap();
    for (x, y) in e.iter().zip(&h) {
        let c = kairos_models::embed::cosine(x, y);
        assert!(c > 0.999, "f16 cosine {c}");
    }
    // A shape the model cannot take is an error, not a panic.
    let long = Tensor::zeros((1, 600), DType::U32, &cpu).unwrap();
    let err = bert.forward(&long, &long, &long).unwrap_err().to_string();
    assert!(err.contains("600 tokens"), "{err}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_an_error() {
    let cpu = Device::Cpu;
    let bert = Bert::synthetic(&synthetic::minilm_config(), 3, &cpu, DType::F32).unwrap();
    let ids = Tensor::new(&[[101u32, 40_000, 102]], &cpu).unwrap();
    let ones = ids.ones_like().unwrap();
    let err = bert.forward(&ids, &ids.zeros_like().unwrap(), &ones).unwrap_err().to_string();
    assert!(err.contains("token id 40000 is outside the model's 30522"), "{err}");
    let types = Tensor::new(&[[0u32, 5, 0]], &cpu).unwrap();
    let ids = Tensor::new(&[[101u32, 7, 102]], &cpu).unwrap();
    let err = bert.forward(&ids, &types, &ones).unwrap_err().to_string();
    assert!(err.contains("token type 5 is outside the model's 2"), "{err}");
}
