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
}

impl BacktestFile {
    /// Reads and parses a config file; paths inside it are made relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut cfg: BacktestFile =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(d) = cfg.data.take() {
            cfg.data = Some(DataList::Many(
                d.into_vec()
                    .into_iter()
                    .map(|s| {
                        if s.starts_with("sim:") || Path::new(&s).is_absolute() {
                            s
                        } else {
                            base.join(s).display().to_string()
                        }
                    })
                    .collect(),
            ));
        }
        if let Some(o) = cfg.out.take() {
            cfg.out = Some(if o.is_absolute() { o } else { base.join(o) });
        }
        Ok(cfg)
    }

    /// Parameters as `name=value` text, the form the registry validates.
    pub fn params_as_text(&self) -> Vec<(String, String)> {
        params_as_text(&self.params)
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

#[cfg(test)]
mod tests {
    use super::*;

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
