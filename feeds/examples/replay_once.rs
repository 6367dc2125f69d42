//! Replays the recordings once through the parser and the book and prints what the books hold:
//! a fixed workload for instruction counts (`valgrind --tool=callgrind`), which the VM's noisy
//! clock does not disturb.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance-ws");
    for f in ["spot/btcusdt_20240808.gz", "spot/ethusdt_20240808.gz", "usdm/btcusdt_20240808.gz"] {
        match kairos_feeds::recording::verify_book(&dir.join(f)) {
            Ok(c) => println!("{f}: {}", c.line()),
            Err(e) => eprintln!("{f}: {e}"),
        }
    }
}
