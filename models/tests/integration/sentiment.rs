//! News sentiment with the real MiniLM weights, and `news_sentiment` in the backtest engine on
//! real BTC bars.

use std::path::PathBuf;

use kairos_backtests::data;
use kairos_backtests::engine::{Backtest, BacktestConfig};
use kairos_models::sentiment::SentimentScorer;
use kairos_models::strategies::read_headlines;
use kairos_strategies::Side;

const BULLISH: &[&str] = &[
    "Bitcoin soars past $60,000 as institutional demand grows",
    "Ethereum gains 8% after a successful network upgrade",
    "Crypto stocks climb as trading volumes hit a record",
    "BlackRock files for a spot Ethereum ETF",
    "Solana rallies on surging developer activity",
    "Tesla says it will accept bitcoin payments again",
    "Bitcoin hits an all-time high",
    "Investors pile into crypto funds for a fifth straight week",
];

const BEARISH: &[&str] = &[
    "Bitcoin slumps below $30,000 as traders flee risk",
    "Crypto exchange collapses, customers cannot withdraw funds",
    "SEC sues a major exchange for securities violations",
    "Ether drops 12% after a large hack of a bridge",
    "Mining company defaults on its loans",
    "China bans all cryptocurrency transactions",
    "Bitcoin tumbles as a stablecoin loses its peg",
    "Crypto funds see record outflows as prices fall",
];

#[test]
#[cfg_attr(kairos_no_weights, ignore = "needs model weights: run scripts/models/fetch.sh")]
fn held_out_headlines_score_on_the_right_side() {
    let Some(dir) = crate::common::minilm() else { return };
    let enc = kairos_models::cache::global().text_encoder(&dir, "cpu").unwrap();
    let scorer = SentimentScorer::new(enc).unwrap();
    let up = scorer.score(BULLISH).unwrap();
    let down = scorer.score(BEARISH).unwrap();
    for (t, s) in BULLISH.iter().zip(&up).chain(BEARISH.iter().zip(&down)) {
        eprintln!("{s:+.3}  {t}");
    }
    let right = up.iter().filter(|&&s| s > 0.0).count() + down.iter().filter(|&&s| s < 0.0).count();
    assert!(right >= 14, "{right}/16 on the right side");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&up) > mean(&down) + 0.05, "{} vs {}", mean(&up), mean(&down));
}

#[test]
#[cfg_attr(
    any(kairos_no_shared_data, kairos_no_weights),
    ignore = "needs ../shared/data and model weights: run scripts/models/fetch.sh"
)]
fn news_strategy_acts_only_after_a_headline_is_out() {
    let Some(dir) = crate::common::minilm() else { return };
    let csv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bars/btc-perp-20211231-20220201_1m.csv");
    if !csv.is_file() {
        assert!(std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none());
        return;
    }
    let mut series = data::load(&csv).unwrap();
    series.bars.truncate(3_000);
    let t = |i: usize| series.bars[i].ts.0;
    let tmp = tempfile::tempdir().unwrap();
    let news = tmp.path().join("news.jsonl");
    // The first headline lands between bars 1000 and 1001 (30 s after bar 1000's label).
    let lines = [
        format!(
            "{{\"time\": {}, \"text\": \"Bitcoin soars to an all-time high on ETF approval\"}}",
            t(1000) + 30_000_000_000
        ),
        format!(
            "{{\"time\": \"{}\", \"text\": \"Major exchange hacked, withdrawals halted\"}}",
            chrono::DateTime::from_timestamp_nanos(t(2000)).to_rfc3339()
        ),
        "".into(),
    ];
    std::fs::write(&news, lines.join("\n")).unwrap();
    let h = read_headlines(&news).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].ts.0, t(2000));

    let reg = kairos_models::strategies::registry();
    let params =
        [("model", dir.to_str().unwrap()), ("news", news.to_str().unwrap()), ("hold", "300")];
    let mut s = reg.build("news_sentiment", &params).map_err(|e| e.to_string()).unwrap();
    let cfg = BacktestConfig { lot_size: Some(0.001), ..Default::default() };
    let r = Backtest::new(cfg).run(std::slice::from_ref(&series), &mut s).unwrap();
    // Orders are filled at the next bar's open: the first at bar 1002 (the headline came out
    // during bar 1000's successor's interval, so bar 1001 is the first to see it).
    assert!(!r.fills.is_empty());
    assert!(r.fills[0].ts.0 > t(1000) + 30_000_000_000, "filled before the news");
    assert_eq!(r.fills[0].ts.0, t(1002));
    assert_eq!(r.fills[0].side, Side::Buy, "bullish news should buy: {:?}", r.fills[0]);
    // The long is closed after 300 bars; the hack headline then opens a short at bar 2001.
    let short = r.fills.iter().find(|f| f.ts.0 >= t(2000)).unwrap();
    assert_eq!(short.ts.0, t(2001));
    assert_eq!(short.side, Side::Sell);
    // Nothing traded between the long's exit (bar 1301) and the second headline.
    assert!(r.fills.iter().all(|f| f.ts.0 <= t(1302) || f.ts.0 >= t(2001)), "{:?}", r.fills);
}

#[test]
fn bad_news_files_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("n.jsonl");
    for (body, want) in [
        ("{\"time\": \"yesterday\", \"text\": \"x\"}", "line 1"),
        ("{\"time\": 1640995200, \"text\": \"ok\"}\n{\"text\": \"no time\"}", "line 2"),
        ("{\"time\": 1640995200, \"text\": \"  \"}", "empty text"),
        ("{\"time\": 99999999999, \"text\": \"year 5138\"}", "out of range"),
    ] {
        std::fs::write(&p, body).unwrap();
        let e = read_headlines(&p).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("n.jsonl"), "{e}");
    }
}
