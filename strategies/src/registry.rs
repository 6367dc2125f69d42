//! The strategy registry: strategies found by name, with typed, validated parameters.
//!
//! `--strategy sma_cross --param fast=10` on the command line and `strategy = "sma_cross"` with
//! a `[params]` table in a config file both resolve here, for built-in and user strategies
//! alike. A user crate registers its own with [`Registry::register`].

use std::collections::BTreeMap;
use std::fmt;

use crate::{Error, Result, Strategy};

/// The type and range of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// A whole number in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A number in `min..=max`.
    Float {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// Free text, such as a model folder or a file of events; `required` ones have no default
    /// and must be given.
    Text {
        /// Whether the parameter must be given.
        required: bool,
    },
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Whole number.
    Int(i64),
    /// Number.
    Float(f64),
    /// Word (for [`ParamKind::Choice`]).
    Str(String),
    /// Flag.
    Bool(bool),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Str(v) => f.write_str(v),
            ParamValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name, as written in `name=value`.
    pub name: &'static str,
    /// Type and range.
    pub kind: ParamKind,
    /// Value when not given.
    pub default: ParamValue,
    /// One line of help.
    pub help: &'static str,
}

impl ParamSpec {
    /// An integer parameter.
    pub const fn int(
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
        help: &'static str,
    ) -> Self {
        Self { name, kind: ParamKind::Int { min, max }, default: ParamValue::Int(default), help }
    }

    /// A float parameter.
    pub const fn float(
        name: &'static str,
        default: f64,
        min: f64,
        max: f64,
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: ParamKind::Float { min, max },
            default: ParamValue::Float(default),
            help,
        }
    }

    /// A text parameter (a path, a symbol); with `required`, it has no default and leaving it
    /// out is an error naming it.
    pub fn text(
        name: &'static str,
        default: &'static str,
        required: bool,
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: ParamKind::Text { required },
            default: ParamValue::Str(default.into()),
            help,
        }
    }

    /// A flag.
    pub const fn bool(name: &'static str, default: bool, help: &'static str) -> Self {
        Self { name, kind: ParamKind::Bool, default: ParamValue::Bool(default), help }
    }

    /// A choice parameter; `default` must be one of `choices`.
    pub fn choice(
        name: &'static str,
        default: &'static str,
        choices: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            name,
            kind: ParamKind::Choice(choices),
            default: ParamValue::Str(default.into()),
            help,
        }
    }

    fn describe(&self) -> String {
        let ty = match &self.kind {
            ParamKind::Int { min, max } => format!("integer {min}..={max}"),
            ParamKind::Float { min, max } => format!("number {min}..={max}"),
            ParamKind::Choice(c) => c.join("|"),
            ParamKind::Bool => "true|false".into(),
            ParamKind::Text { required: true } => return format!("{} (text, required)", self.name),
            ParamKind::Text { required: false } => "text".into(),
        };
        format!("{} ({ty}, default {})", self.name, self.default)
    }

    fn parse(&self, strategy: &str, raw: &str) -> Result<ParamValue> {
        let err = |reason: String| Error::InvalidParam {
            strategy: strategy.into(),
            param: self.name.into(),
            reason,
        };
        let raw = raw.trim();
        match &self.kind {
            ParamKind::Int { min, max } => {
                let v: i64 = raw.parse().map_err(|_| err(format!("`{raw}` is not an integer")))?;
                if v < *min || v > *max {
                    return Err(err(format!("{v} is outside {min}..={max}")));
                }
                Ok(ParamValue::Int(v))
            }
            ParamKind::Float { min, max } => {
                let v: f64 = raw.parse().map_err(|_| err(format!("`{raw}` is not a number")))?;
                if !v.is_finite() || v < *min || v > *max {
                    return Err(err(format!("{v} is outside {min}..={max}")));
                }
                Ok(ParamValue::Float(v))
            }
            ParamKind::Choice(choices) => {
                if choices.contains(&raw) {
                    Ok(ParamValue::Str(raw.into()))
                } else {
                    Err(err(format!("`{raw}` is not one of {}", choices.join(", "))))
                }
            }
            ParamKind::Text { .. } => {
                if raw.is_empty() {
                    Err(err("is empty".into()))
                } else {
                    Ok(ParamValue::Str(raw.into()))
                }
            }
            ParamKind::Bool => match raw {
                "true" | "1" | "yes" => Ok(ParamValue::Bool(true)),
                "false" | "0" | "no" => Ok(ParamValue::Bool(false)),
                _ => Err(err(format!("`{raw}` is not true or false"))),
            },
        }
    }
}

/// Validated parameter values for one strategy, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    strategy: String,
    values: BTreeMap<&'static str, ParamValue>,
}

impl Params {
    /// The strategy these belong to.
    pub fn strategy(&self) -> &str {
        &self.strategy
    }

    /// All values by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ParamValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    fn get(&self, name: &str) -> Result<&ParamValue> {
        self.values.get(name).ok_or_else(|| Error::UnknownParam {
            strategy: self.strategy.clone(),
            param: name.into(),
            available: self.values.keys().copied().collect::<Vec<_>>().join(", "),
        })
    }

    fn wrong_type(&self, name: &str, want: &str) -> Error {
        Error::InvalidParam {
            strategy: self.strategy.clone(),
            param: name.into(),
            reason: format!("is not declared as {want}"),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<i64> {
        match self.get(name)? {
            ParamValue::Int(v) => Ok(*v),
            _ => Err(self.wrong_type(name, "an integer")),
        }
    }

    /// A non-negative integer parameter as `usize`.
    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self.int(name)?;
        usize::try_from(v).map_err(|_| self.wrong_type(name, "a non-negative integer"))
    }

    /// A float parameter (integers are accepted too).
    pub fn float(&self, name: &str) -> Result<f64> {
        match self.get(name)? {
            ParamValue::Float(v) => Ok(*v),
            ParamValue::Int(v) => Ok(*v as f64),
            _ => Err(self.wrong_type(name, "a number")),
        }
    }

    /// A choice parameter.
    pub fn choice(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            ParamValue::Str(v) => Ok(v),
            _ => Err(self.wrong_type(name, "a choice")),
        }
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            ParamValue::Str(v) => Ok(v),
            _ => Err(self.wrong_type(name, "text")),
        }
    }

    /// A flag.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            ParamValue::Bool(v) => Ok(*v),
            _ => Err(self.wrong_type(name, "a flag")),
        }
    }

    /// An error about this strategy's parameter `param` (for cross-parameter checks).
    pub fn invalid(&self, param: &str, reason: impl Into<String>) -> Error {
        Error::InvalidParam {
            strategy: self.strategy.clone(),
            param: param.into(),
            reason: reason.into(),
        }
    }
}

/// Builds a strategy from validated parameters.
pub type BuildFn = fn(&Params) -> Result<Box<dyn Strategy>>;

/// A registered strategy.
#[derive(Debug, Clone)]
pub struct StrategyInfo {
    /// The name it is found by.
    pub name: &'static str,
    /// One line about what it does.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
    /// Its constructor.
    pub build: BuildFn,
}

/// Strategies by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, StrategyInfo>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in strategies (see [`crate::builtin`]).
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        for info in crate::builtin::all() {
            r.entries.insert(info.name, info);
        }
        r
    }

    /// Adds a strategy; a name already taken is an error.
    pub fn register(&mut self, info: StrategyInfo) -> Result<()> {
        if self.entries.contains_key(info.name) {
            return Err(Error::InvalidParam {
                strategy: info.name.into(),
                param: "name".into(),
                reason: "a strategy with this name is already registered".into(),
            });
        }
        self.entries.insert(info.name, info);
        Ok(())
    }

    /// Registered strategies, by name.
    pub fn iter(&self) -> impl Iterator<Item = &StrategyInfo> {
        self.entries.values()
    }

    /// The strategy called `name`.
    pub fn get(&self, name: &str) -> Result<&StrategyInfo> {
        self.entries.get(name).ok_or_else(|| Error::UnknownStrategy {
            name: name.into(),
            available: self.entries.keys().copied().collect::<Vec<_>>().join(", "),
        })
    }

    /// Parses and validates `name=value` pairs for strategy `name`, filling in defaults.
    pub fn params<K: AsRef<str>, V: AsRef<str>>(
        &self,
        name: &str,
        given: &[(K, V)],
    ) -> Result<Params> {
        let info = self.get(name)?;
        let mut values: BTreeMap<&'static str, ParamValue> =
            info.params.iter().map(|p| (p.name, p.default.clone())).collect();
        for (k, v) in given {
            let (k, v) = (k.as_ref().trim(), v.as_ref());
            let spec =
                info.params.iter().find(|p| p.name == k).ok_or_else(|| Error::UnknownParam {
                    strategy: name.into(),
                    param: k.into(),
                    available: if info.params.is_empty() {
                        "(none)".into()
                    } else {
                        info.params.iter().map(ParamSpec::describe).collect::<Vec<_>>().join(", ")
                    },
                })?;
            values.insert(spec.name, spec.parse(name, v)?);
        }
        for spec in &info.params {
            if spec.kind == (ParamKind::Text { required: true })
                && !given.iter().any(|(k, _)| k.as_ref().trim() == spec.name)
            {
                return Err(Error::InvalidParam {
                    strategy: name.into(),
                    param: spec.name.into(),
                    reason: format!("is required ({})", spec.help),
                });
            }
        }
        Ok(Params { strategy: name.into(), values })
    }

    /// Builds strategy `name` with `name=value` parameters.
    pub fn build<K: AsRef<str>, V: AsRef<str>>(
        &self,
        name: &str,
        given: &[(K, V)],
    ) -> Result<Box<dyn Strategy>> {
        let params = self.params(name, given)?;
        (self.get(name)?.build)(&params)
    }

    /// Splits `key=value`.
    pub fn parse_kv(arg: &str) -> Result<(String, String)> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().into(), v.trim().into())),
            _ => Err(Error::MalformedParam(arg.into())),
        }
    }

    /// Help text for one strategy: its description and parameters.
    pub fn describe(&self, name: &str) -> Result<String> {
        let info = self.get(name)?;
        let mut s = format!("{}: {}\n", info.name, info.description);
        for p in &info.params {
            s.push_str(&format!("  {}  {}\n", p.describe(), p.help));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_strategy_lists_available() {
        let r = Registry::with_builtins();
        let e = r.build::<&str, &str>("nope", &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("unknown strategy `nope`"), "{e}");
        assert!(e.contains("sma_cross") && e.contains("rsi_reversion"), "{e}");
    }

    #[test]
    fn required_text_params_must_be_given() {
        fn build(_: &Params) -> Result<Box<dyn Strategy>> {
            Ok(Box::new(crate::builtin::SmaCross::new(2, 3, crate::builtin::Mode::LongOnly, 1.0)))
        }
        let mut r = Registry::new();
        r.register(StrategyInfo {
            name: "needs_file",
            description: "test",
            params: vec![
                ParamSpec::text("file", "", true, "a file"),
                ParamSpec::text("label", "x", false, "a label"),
            ],
            build,
        })
        .unwrap();
        let e = r.params::<&str, &str>("needs_file", &[]).unwrap_err().to_string();
        assert!(e.contains("`file`") && e.contains("required"), "{e}");
        let p = r.params("needs_file", &[("file", "a.csv")]).unwrap();
        assert_eq!((p.text("file").unwrap(), p.text("label").unwrap()), ("a.csv", "x"));
        let e = r.params("needs_file", &[("file", " ")]).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        assert!(r.describe("needs_file").unwrap().contains("file (text, required)"));
    }

    #[test]
    fn unknown_param_lists_params() {
        let r = Registry::with_builtins();
        let e = r.params("sma_cross", &[("fats", "3")]).unwrap_err().to_string();
        assert!(e.contains("no parameter `fats`") && e.contains("fast (integer"), "{e}");
    }

    #[test]
    fn typed_and_ranged() {
        let r = Registry::with_builtins();
        let e = r.params("sma_cross", &[("fast", "ten")]).unwrap_err().to_string();
        assert!(e.contains("`ten` is not an integer"), "{e}");
        let e = r.params("sma_cross", &[("fast", "0")]).unwrap_err().to_string();
        assert!(e.contains("outside"), "{e}");
        let e = r.params("sma_cross", &[("mode", "sideways")]).unwrap_err().to_string();
        assert!(e.contains("long_short") && e.contains("long_only"), "{e}");
        let p = r.params("sma_cross", &[("fast", "5")]).unwrap();
        assert_eq!(p.int("fast").unwrap(), 5);
        assert_eq!(p.int("slow").unwrap(), 20);
    }

    #[test]
    fn kv_parsing() {
        assert_eq!(Registry::parse_kv("a=1").unwrap(), ("a".into(), "1".into()));
        assert!(Registry::parse_kv("a").is_err());
        assert!(Registry::parse_kv("=1").is_err());
    }
}
