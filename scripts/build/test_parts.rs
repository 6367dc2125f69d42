// Included by the build scripts of the crates whose tests need parts a bare clone lacks. Each
// missing part sets a `cfg` that marks those tests `#[ignore]` with the reason, so that
// `cargo test` reports them as ignored instead of passed:
//
// - `kairos_no_shared_data`: `../shared/data` (real bars and recorded feeds);
// - `kairos_no_anvil`: the pinned anvil node (`scripts/chain/setup.sh`);
// - `kairos_no_eth_python`: a Python with eth-account (`scripts/chain/setup.sh`);
// - `kairos_no_weights`: the model weights (`scripts/models/fetch.sh`).
//
// Under `KAIROS_REQUIRE_INTEROP` or `CI` no part is ever marked missing: the tests run, and
// fail on what is not there.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
fn test_parts() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let require = std::env::var_os("KAIROS_REQUIRE_INTEROP").is_some()
        || std::env::var_os("CI").is_some();
    println!("cargo::rerun-if-env-changed=KAIROS_REQUIRE_INTEROP");
    println!("cargo::rerun-if-env-changed=CI");
    let shared = root.join("../shared/data");
    let anvil = root.join("scripts/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let eth_python = root.join("target/eth-venv/bin/python");
    let weights = [
        root.join("target/models/all-MiniLM-L6-v2/model.safetensors"),
        root.join("target/models/gemma-3-270m-q4_k_m.gguf"),
    ];
    let parts = [
        ("kairos_no_shared_data", vec![shared]),
        ("kairos_no_anvil", vec![anvil]),
        ("kairos_no_eth_python", vec![eth_python]),
        ("kairos_no_weights", weights.to_vec()),
    ];
    for (cfg, paths) in parts {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        for p in &paths {
            // A missing path makes cargo run this again on the next build, so a part that
            // appears is noticed.
            println!("cargo::rerun-if-changed={}", p.display());
        }
        if !require && paths.iter().any(|p| !p.exists()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
