//! What the model tests read: the real BTC bars from `../shared/data` and the weights that
//! `scripts/models/fetch.sh` puts under `target/models`. Each helper returns `None` with a note
//! when its file is missing, and fails instead under `KAIROS_REQUIRE_INTEROP` (CI), where every
//! one of them must be there.

use std::path::PathBuf;

use kairos_backtests::data::{self, BarSeries};

/// `Some(path)` if `path` exists; otherwise a skip note, or a failure in CI.
fn required(path: PathBuf, exists: bool, what: &str) -> Option<PathBuf> {
    if exists {
        return Some(path);
    }
    assert!(
        std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
        "{what} missing at {}",
        path.display()
    );
    eprintln!("skipping: {what} not found at {}", path.display());
    None
}

/// The BTC perpetual minute bars (45,031 of them).
pub fn btc() -> Option<BarSeries> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    let exists = path.is_file();
    let path = required(path, exists, "the shared BTC bars (../shared/data)")?;
    Some(data::load(&path).unwrap())
}

/// The all-MiniLM-L6-v2 folder (`KAIROS_MINILM_DIR` overrides).
pub fn minilm() -> Option<PathBuf> {
    let dir = std::env::var_os("KAIROS_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/models/all-MiniLM-L6-v2")
    });
    let exists = dir.join("model.safetensors").is_file();
    required(dir, exists, "MiniLM weights (scripts/models/fetch.sh)")
}

/// The Gemma-3-270M Q4_K_M GGUF file (`KAIROS_GEMMA_GGUF` overrides).
pub fn gemma() -> Option<PathBuf> {
    let path = std::env::var_os("KAIROS_GEMMA_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/models/gemma-3-270m-q4_k_m.gguf")
    });
    let exists = path.is_file();
    required(path, exists, "the Gemma GGUF (scripts/models/fetch.sh)")
}
