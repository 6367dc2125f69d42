//! The backtest configuration file (`kairos backtest --config FILE`).
//!
//! Every key is documented in `examples/backtest.toml`. Keys given on the command line win
//! over the file; the file wins over defaults. Unknown keys are errors naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use kairos_backtests::engine::BacktestConfig;
use serde::Deserialize;

/// One data source or several.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DataList {
    /// `data = "file.csv"`
    One(String),
    /// `data = ["a.csv", "b.csv"]`
    Many(Vec<String>),
}

impl DataList {
    /// As a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            DataList::One(s) => vec![s],
            DataList::Many(v) => v,
        }
    }
}

/// `kairos backtest --config FILE`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BacktestFile {
    /// Data sources: paths (relative to the config file) or `sim:SEED[:BARS]`.
    pub data: Option<DataList>,
    /// Resample every source to this interval (`5m`, `1h`, `1d`, `1w`).
    pub resample: Option<String>,
    /// The timestamps' format where detection cannot tell (`dmy`, `mdy`, `ymd`, ...; see
    /// `kairos backtest --help`).
    pub time_format: Option<String>,
    /// Strategy name.
    pub strategy: Option<String>,
    /// Strategy parameters.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Output folder (relative to the config file).
    pub out: Option<PathBuf>,
    /// Engine settings.
    #[serde(default)]
    pub backtest: Option<BacktestConfig>,
    /// Monte Carlo resampling of the run (`[monte_carlo]`).
    pub monte_carlo: Option<MonteCarloFile>,
}

/// `[monte_carlo]` of a backtest file.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonteCarloFile {
    /// Simulations per method.
    pub runs: Option<usize>,
    /// The seed.
    pub seed: Option<u64>,
    /// Bars per block of the return bootstrap.
    pub block: Option<usize>,
}

impl BacktestFile {
    /// Reads and parses a config file; paths inside it are made relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let mut cfg: BacktestFile = read_toml(path)?;
        relative_to(path, &mut cfg.data, &mut cfg.out);
        Ok(cfg)
    }

    /// Parameters as `name=value` text, the form the registry validates.
    pub fn params_as_text(&self) -> Vec<(String, String)> {
        params_as_text(&self.params)
    }
}

/// Reads and parses the TOML file `path`, errors naming it.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

/// A config file's data sources and output folder made relative to the file's folder
/// (`sim:` sources and absolute paths stay as they are).
pub fn relative_to(path: &Path, data: &mut Option<DataList>, out: &mut Option<PathBuf>) {
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(d) = data.take() {
        let rel = |s: String| {
            if s.starts_with("sim:") || Path::new(&s).is_absolute() {
                s
            } else {
                base.join(s).display().to_string()
            }
        };
        *data = Some(DataList::Many(d.into_vec().into_iter().map(rel).collect()));
    }
    if let Some(o) = out.take() {
        *out = Some(if o.is_absolute() { o } else { base.join(o) });
    }
}

/// A config file's `[params]` table as `name=value` text, the form the registry validates.
pub fn params_as_text(params: &BTreeMap<String, toml::Value>) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// Applies one environment override `KAIROS__SECTION__KEY=value` to a parsed config file.
/// Each part of the name is a table key (matched without regard to case, lower case when
/// new) or, on an array of tables, an index from 0. The value is TOML when it parses as a
/// TOML value, a string otherwise.
pub fn apply_override(table: &mut toml::Table, name: &str, value: &str) -> Result<()> {
    let parts: Vec<&str> = name
        .strip_prefix("KAIROS__")
        .unwrap_or(name)
        .split("__")
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        anyhow::bail!("environment variable {name}: name a key (KAIROS__SECTION__KEY)");
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let key_in = |t: &toml::Table, part: &str| {
        t.keys()
            .find(|k| k.eq_ignore_ascii_case(part))
            .cloned()
            .unwrap_or(part.to_ascii_lowercase())
    };
    let mut at = table;
    for (n, part) in parts.iter().enumerate() {
        let key = key_in(at, part);
        let last = n + 1 == parts.len();
        if last {
            at.insert(key, parsed);
            return Ok(());
        }
        let entry = at.entry(key.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
        at = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => {
                let next = parts[n + 1];
                let Ok(i) = next.parse::<usize>() else {
                    anyhow::bail!(
                        "environment variable {name}: `{key}` is a list; give an index (KAIROS__{}__0__...)",
                        key.to_ascii_uppercase()
                    );
                };
                let len = a.len();
                let Some(toml::Value::Table(t)) = a.get_mut(i) else {
                    anyhow::bail!("environment variable {name}: `{key}` has {len} entries, no {i}");
                };
                if n + 2 == parts.len() {
                    anyhow::bail!("environment variable {name}: name a key inside `{key}` #{i}");
                }
                // The index is consumed here; the loop goes on with the key after it.
                return apply_override(t, &format!("KAIROS__{}", parts[n + 2..].join("__")), value)
                    .map_err(|e| anyhow::anyhow!("{e} (from {name})"));
            }
            _ => anyhow::bail!("environment variable {name}: `{key}` is not a section"),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_reach_sections_lists_and_symbols() {
        let mut t: toml::Table = toml::from_str(
            "cash = 1.0\n[risk]\nmax_daily_loss = 5\n[risk.max_position]\nBTCUSDT = 0.1\n[[binance]]\nmarket = \"spot\"\n",
        )
        .unwrap();
        apply_override(&mut t, "KAIROS__CASH", "5000").unwrap();
        apply_override(&mut t, "KAIROS__RISK__MAX_DAILY_LOSS", "250.5").unwrap();
        apply_override(&mut t, "KAIROS__RISK__MAX_POSITION__BTCUSDT", "0.02").unwrap();
        apply_override(&mut t, "KAIROS__BINANCE__0__WS_URL", "ws://127.0.0.1:9000").unwrap();
        apply_override(&mut t, "KAIROS__VENUE__KIND", "binance-spot").unwrap();
        apply_override(&mut t, "KAIROS__BINANCE__0__SYMBOLS", "[\"BTCUSDT\", \"ETHUSDT\"]")
            .unwrap();
        assert_eq!(t["cash"].as_integer(), Some(5000));
        assert_eq!(t["risk"]["max_daily_loss"].as_float(), Some(250.5));
        assert_eq!(t["risk"]["max_position"]["BTCUSDT"].as_float(), Some(0.02));
        assert_eq!(t["binance"][0]["ws_url"].as_str(), Some("ws://127.0.0.1:9000"));
        assert_eq!(t["binance"][0]["symbols"].as_array().unwrap().len(), 2);
        assert_eq!(t["venue"]["kind"].as_str(), Some("binance-spot"));
        let e = apply_override(&mut t, "KAIROS__BINANCE__3__WS_URL", "x").unwrap_err().to_string();
        assert!(e.contains("has 1 entries, no 3"), "{e}");
        let e = apply_override(&mut t, "KAIROS__BINANCE__WS_URL", "x").unwrap_err().to_string();
        assert!(e.contains("give an index"), "{e}");
        let e = apply_override(&mut t, "KAIROS__CASH__X", "1").unwrap_err().to_string();
        assert!(e.contains("`cash` is not a section"), "{e}");
    }

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let c: BacktestFile = toml::from_str(
            "data = \"x.csv\"\nstrategy = \"sma_cross\"\n[params]\nfast = 5\nmode = \"long_only\"\n[backtest]\ncash = 5000.0\nfill = \"close\"\n",
        )
        .unwrap();
        assert_eq!(
            c.params_as_text(),
            vec![("fast".into(), "5".into()), ("mode".into(), "long_only".into())]
        );
        assert_eq!(c.backtest.unwrap().cash, 5000.0);
        let e = toml::from_str::<BacktestFile>("strategy = \"a\"\ncapital = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capital"), "{e}");
        let e = toml::from_str::<BacktestFile>("[backtest]\ncomission = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("comission"), "{e}");
    }
}
