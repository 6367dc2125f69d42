//! Replay throughput on the real recordings in `../shared/data/binance-ws/`: the decompressed
//! lines in memory, through the parser alone, and through the parser and the local book (the
//! replay path up to the strategy). Gunzip is measured on its own.

use std::hint::black_box;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kairos_engine::Engine;
use kairos_engine::paper::{PaperConfig, PaperVenue};
use kairos_feeds::binance::{self, DepthSync, Market, Message};
use kairos_feeds::normalise::{BinanceNormaliser, Drive};
use kairos_strategies::builtin::BookImbalance;
use kairos_strategies::{Context, Instrument, InstrumentId, Timestamp};

/// One file through parse, book, engine, `book_imbalance` and the paper venue; the fills.
fn full(lines: &[String], symbol: &str) -> u64 {
    let inst = Instrument::new(symbol, "binance").with_tick_size(0.01).with_lot_size(0.00001);
    let mut engine =
        Engine::historical(Context::new(vec![inst], 1e6), PaperVenue::new(PaperConfig::default()));
    engine.halt(InstrumentId(0), "not synchronised");
    let mut strategy = BookImbalance::new(5, 0.3, 0.001, 0.005, Timestamp(0));
    let mut norm = BinanceNormaliser::new(&[symbol.to_string()], None);
    engine.start(&mut strategy);
    for l in lines {
        if let Ok(m) = binance::parse(black_box(l)) {
            norm.on_message(&m, &mut Drive { engine: &mut engine, strategy: &mut strategy });
        }
    }
    engine.reports().fill_count
}

fn recordings() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance-ws");
    let mut out: Vec<PathBuf> =
        ["spot/btcusdt_20240808.gz", "spot/ethusdt_20240808.gz", "usdm/btcusdt_20240808.gz"]
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .collect();
    out.sort();
    out
}

fn lines(path: &Path) -> Vec<String> {
    let f = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    std::io::BufReader::new(f)
        .lines()
        .map(|l| l.unwrap().split_once(' ').map(|(_, j)| j.to_string()).unwrap_or_default())
        .collect()
}

fn replay(c: &mut Criterion) {
    let files = recordings();
    if files.is_empty() {
        eprintln!("skipping: no recordings under ../shared/data/binance-ws");
        return;
    }
    let all: Vec<Vec<String>> = files.iter().map(|p| lines(p)).collect();
    let n: usize = all.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for file in &all {
                for l in file {
                    ok += binance::parse(black_box(l)).is_ok() as usize;
                }
            }
            ok
        })
    });
    g.bench_function("parse_and_book", |b| {
        b.iter(|| {
            let mut synced = 0usize;
            for file in &all {
                let mut sync: Option<DepthSync> = None;
                for l in file {
                    match binance::parse(black_box(l)) {
                        Ok(Message::Depth(d)) => {
                            let market = if d.prev.is_some() { Market::UsdM } else { Market::Spot };
                            let s = sync.get_or_insert_with(|| DepthSync::new(market));
                            s.on_diff(&d);
                            synced += s.is_synced() as usize;
                        }
                        Ok(Message::Snapshot(snap)) => {
                            if let Some(s) = sync.as_mut() {
                                s.on_snapshot(&snap);
                            }
                        }
                        Ok(Message::Top(_, t)) => {
                            black_box(t);
                        }
                        _ => {}
                    }
                }
                black_box(sync.map(|s| s.book().best_bid()));
            }
            synced
        })
    });
    let symbols: Vec<&str> = files
        .iter()
        .map(|p| if p.to_string_lossy().contains("eth") { "ETHUSDT" } else { "BTCUSDT" })
        .collect();
    g.bench_function("parse_book_strategy_paper", |b| {
        b.iter(|| all.iter().zip(&symbols).map(|(f, s)| full(f, s)).sum::<u64>())
    });
    let raw: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    g.bench_function("gunzip", |b| {
        b.iter(|| {
            let mut total = 0usize;
            let mut buf = Vec::new();
            for r in &raw {
                buf.clear();
                flate2::read::MultiGzDecoder::new(&r[..]).read_to_end(&mut buf).unwrap();
                total += buf.len();
            }
            total
        })
    });
    g.finish();
    json(c, &all);
}

/// serde_json (what `binance::parse` falls back to) against sonic-rs and simd-json, each
/// deserializing into the same types through the same visitor, and Kairos's scanner for
/// Binance's exact shapes (`binance::parse`), on every stream message of the recordings; they
/// are first checked to give the same messages.
fn json(c: &mut Criterion, all: &[Vec<String>]) {
    let msgs: Vec<&str> = all
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|l| !l.starts_with("{\"lastUpdateId\""))
        .collect();
    let sonic = |l: &str| -> Option<Message> {
        let mut de = sonic_rs::Deserializer::from_str(l);
        let m = binance::parse_from(&mut de).ok()?.ok()?;
        de.end().ok()?;
        Some(m)
    };
    let simd = |l: &str, buf: &mut Vec<u8>| -> Option<Message> {
        buf.clear();
        buf.extend_from_slice(l.as_bytes());
        let mut de = simd_json::Deserializer::from_slice(buf).ok()?;
        binance::parse_from(&mut de).ok()?.ok()
    };
    let mut buf = Vec::new();
    for l in &msgs {
        let reference = binance::parse_serde(l).ok();
        assert_eq!(binance::parse(l).ok(), reference, "the scanner differs on {l}");
        assert_eq!(sonic(l), reference, "sonic-rs differs on {l}");
        assert_eq!(simd(l, &mut buf), reference, "simd-json differs on {l}");
    }
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("serde_json", |b| {
        b.iter(|| msgs.iter().filter(|l| binance::parse_serde(black_box(l)).is_ok()).count())
    });
    g.bench_function("scanner", |b| {
        b.iter(|| msgs.iter().filter(|l| binance::parse(black_box(l)).is_ok()).count())
    });
    g.bench_function("sonic_rs", |b| {
        b.iter(|| msgs.iter().filter(|l| sonic(black_box(l)).is_some()).count())
    });
    g.bench_function("simd_json", |b| {
        let mut buf = Vec::new();
        b.iter(|| msgs.iter().filter(|l| simd(black_box(l), &mut buf).is_some()).count())
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
