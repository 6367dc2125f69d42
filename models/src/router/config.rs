//! `router.toml`: the endpoints (remote workers or any OpenAI-compatible provider) and the
//! routes (the model names callers ask for, each an ordered list of targets). Every key is
//! documented in `examples/router.toml`; unknown keys are errors, and [`RouterConfig::check`]
//! names the key that is wrong.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

/// The name of the in-process model in a route's targets.
pub const LOCAL: &str = "local";

/// One remote endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The name routes use.
    pub name: String,
    /// Base URL, up to and without `/v1` (`http://10.0.0.5:31234`, `https://api.example.com`).
    pub url: String,
    /// The environment variable holding the endpoint's bearer key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file whose first line is the endpoint's bearer key.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Price per million tokens (prompt and completion), summed on `/metrics` as spend.
    #[serde(default)]
    pub cost: f64,
    /// Share of traffic among the targets of a route that have the same `priority`.
    #[serde(default = "one")]
    pub weight: f64,
    /// Path of the health probe (`GET`, 2xx is healthy); empty turns probes off.
    #[serde(default = "default_probe_path")]
    pub probe_path: String,
    /// Milliseconds between two health probes.
    #[serde(default = "default_probe_ms")]
    pub probe_ms: u64,
}

fn one() -> f64 {
    1.0
}
fn default_probe_path() -> String {
    "/health".into()
}
fn default_probe_ms() -> u64 {
    2_000
}

/// One target of a route.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// An endpoint's `name`, or `local` for the in-process model.
    pub endpoint: String,
    /// The model name that endpoint knows it by.
    pub model: String,
    /// Lower is tried first; targets with the same priority share traffic by their
    /// endpoints' `weight` (default: the target's position in the list).
    #[serde(default)]
    pub priority: Option<u32>,
}

/// One route.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The model name callers ask for.
    pub model: String,
    /// Where requests go, in order.
    pub targets: Vec<TargetConfig>,
    /// The whole request's time, ms: every attempt, retry, fallback and hedge fits in it.
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// Longest wait for an attempt's first token (or, for embeddings and forecasts, its
    /// whole answer), ms.
    #[serde(default = "default_first_token")]
    pub first_token_ms: u64,
    /// Longest wait between two chunks of a stream, ms.
    #[serde(default = "default_stall")]
    pub stall_ms: u64,
    /// Retries on the same target after a retryable failure (429, 5xx, a reset), before
    /// moving to the next target.
    #[serde(default = "one_u32")]
    pub retries: u32,
    /// First backoff, ms (doubled each retry, full jitter); a `Retry-After` overrides it.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Longest backoff, ms.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Of the deadline, the last ms kept for the `local` target when the route has one.
    #[serde(default)]
    pub local_reserve_ms: u64,
    /// Start a second target when the first has not answered (first token) within the
    /// primary's observed p95 latency.
    #[serde(default)]
    pub hedge: bool,
    /// Largest share of requests that may be hedged.
    #[serde(default = "default_hedge_share")]
    pub hedge_max_share: f64,
    /// Answers seen from an endpoint before its p95 is trusted for hedging.
    #[serde(default = "default_hedge_min")]
    pub hedge_min_samples: u32,
    /// Share of remote answers re-run on `verify_with` and compared (see
    /// [`super::verify`]).
    #[serde(default)]
    pub verify_fraction: f64,
    /// The trusted target checks and canaries are compared with: an endpoint of this route's
    /// targets, or `local`.
    #[serde(default)]
    pub verify_with: Option<String>,
    /// Spot checks: the least share of the longer answer both answers must begin with.
    #[serde(default = "default_agreement")]
    pub verify_min_agreement: f64,
    /// Spot checks: the least cosine between matching embeddings.
    #[serde(default = "default_cosine")]
    pub verify_cosine: f64,
}

fn default_agreement() -> f64 {
    0.5
}
fn default_cosine() -> f64 {
    0.99
}

fn one_u32() -> u32 {
    1
}
fn default_deadline() -> u64 {
    30_000
}
fn default_first_token() -> u64 {
    10_000
}
fn default_stall() -> u64 {
    5_000
}
fn default_backoff() -> u64 {
    50
}
fn default_backoff_max() -> u64 {
    2_000
}
fn default_hedge_share() -> f64 {
    0.1
}
fn default_hedge_min() -> u32 {
    20
}

/// The circuit breaker, the same for every endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// How long an open circuit refuses traffic before letting a probe through, ms.
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
}

fn default_failures() -> u32 {
    3
}
fn default_open_ms() -> u64 {
    5_000
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failures: default_failures(), open_ms: default_open_ms() }
    }
}

/// `router.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// The remote endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// The routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Verification of untrusted workers (off when absent).
    #[serde(default)]
    pub verify: Option<super::verify::VerifyConfig>,
    /// Canary prompts.
    #[serde(default)]
    pub canaries: Vec<super::verify::CanaryConfig>,
}

impl RouterConfig {
    /// Parses and checks a `router.toml` text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let c: RouterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    /// Checks what the types cannot: names, URLs, targets, times; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            let at = format!("endpoints[{i}] ({:?})", e.name);
            if e.name.is_empty() || e.name == LOCAL {
                return Err(format!("{at}.name: must be non-empty and not `{LOCAL}`"));
            }
            if !names.insert(e.name.as_str()) {
                return Err(format!("{at}.name: used by another endpoint"));
            }
            if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
                return Err(format!("{at}.url {:?}: want http:// or https://", e.url));
            }
            if e.api_key_env.is_some() && e.api_key_file.is_some() {
                return Err(format!("{at}: give api_key_env or api_key_file, not both"));
            }
            if !(e.weight.is_finite() && e.weight > 0.0) {
                return Err(format!("{at}.weight: must be above 0"));
            }
            if !(e.cost.is_finite() && e.cost >= 0.0) {
                return Err(format!("{at}.cost: must be 0 or more"));
            }
            if !e.probe_path.is_empty() && (!e.probe_path.starts_with('/') || e.probe_ms == 0) {
                return Err(format!("{at}: probe_path must start with / and probe_ms be above 0"));
            }
        }
        let mut models = BTreeSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}] ({:?})", r.model);
            if r.model.is_empty() || !models.insert(r.model.as_str()) {
                return Err(format!("{at}.model: empty or used by another route"));
            }
            if r.targets.is_empty() {
                return Err(format!("{at}.targets: at least one target"));
            }
            for (j, t) in r.targets.iter().enumerate() {
                if t.endpoint != LOCAL && !names.contains(t.endpoint.as_str()) {
                    return Err(format!(
                        "{at}.targets[{j}].endpoint {:?}: no such endpoint (known: {}, {LOCAL})",
                        t.endpoint,
                        names.iter().copied().collect::<Vec<_>>().join(", ")
                    ));
                }
                if t.model.is_empty() {
                    return Err(format!("{at}.targets[{j}].model: empty"));
                }
            }
            if r.deadline_ms == 0 || r.first_token_ms == 0 || r.stall_ms == 0 {
                return Err(format!("{at}: deadline_ms, first_token_ms and stall_ms above 0"));
            }
            if r.local_reserve_ms >= r.deadline_ms {
                return Err(format!("{at}.local_reserve_ms: must be below deadline_ms"));
            }
            if r.backoff_max_ms < r.backoff_ms {
                return Err(format!("{at}.backoff_max_ms: below backoff_ms"));
            }
            if !(0.0..=1.0).contains(&r.hedge_max_share) {
                return Err(format!("{at}.hedge_max_share: between 0 and 1"));
            }
            if !(0.0..=1.0).contains(&r.verify_fraction)
                || !(0.0..=1.0).contains(&r.verify_min_agreement)
                || !(-1.0..=1.0).contains(&r.verify_cosine)
            {
                return Err(format!(
                    "{at}: verify_fraction and verify_min_agreement between 0 and 1, verify_cosine between -1 and 1"
                ));
            }
            match &r.verify_with {
                Some(w) if !r.targets.iter().any(|t| &t.endpoint == w) => {
                    return Err(format!("{at}.verify_with {w:?}: not one of the route's targets"));
                }
                None if r.verify_fraction > 0.0 => {
                    return Err(format!("{at}.verify_fraction: set verify_with too"));
                }
                _ => {}
            }
            if (r.verify_fraction > 0.0) && self.verify.is_none() {
                return Err(format!("{at}.verify_fraction: needs a [verify] section (its db)"));
            }
        }
        for (i, c) in self.canaries.iter().enumerate() {
            let at = format!("canaries[{i}]");
            match self.route(&c.route) {
                None => return Err(format!("{at}.route {:?}: no such route", c.route)),
                Some(r) if r.verify_with.is_none() => {
                    return Err(format!("{at}.route {:?}: the route has no verify_with", c.route));
                }
                _ => {}
            }
            if self.verify.is_none() {
                return Err(format!("{at}: needs a [verify] section (its db)"));
            }
            if c.prompt.is_empty() || c.max_tokens == 0 {
                return Err(format!("{at}: prompt and max_tokens must not be empty"));
            }
        }
        if let Some(v) = &self.verify
            && (v.canary_ms == 0
                || !(v.logprob_tolerance.is_finite() && v.logprob_tolerance >= 0.0))
        {
            return Err("verify: canary_ms above 0, logprob_tolerance 0 or more".into());
        }
        if self.breaker.failures == 0 || self.breaker.open_ms == 0 {
            return Err("breaker: failures and open_ms must be above 0".into());
        }
        Ok(())
    }

    /// The route for a model name.
    pub fn route(&self, model: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.model == model)
    }
}
