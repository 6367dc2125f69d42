//! # kairos-agent
//!
//! The runtime around strategies and the `kairos` command-line tool. This first part holds the
//! CLI and its configuration files; feeds, execution clients and persistence build on it.
//!
//! A user with their own strategies builds a `kairos` of their own by registering them and
//! handing the registry to [`cli::main_with`]:
//!
//! ```no_run
//! let mut registry = kairos_models::strategies::registry();
//! // registry.register(my_strategy_info())?;
//! std::process::exit(match kairos_agent::cli::main_with(registry) {
//!     std::process::ExitCode::SUCCESS => 0,
//!     _ => 1,
//! });
//! ```

pub mod binance_rest;
pub mod binance_sim;
pub mod binance_user;
pub mod chain_venue;
pub mod check;
#[macro_use]
pub mod cli;
pub mod config;
pub mod gateway;
pub mod inference;
pub mod journal;
pub mod live;
pub mod ml;
pub mod onchain;
pub mod ops;
pub mod paper;
pub mod reconcile;
pub mod replay;
pub mod run;
pub mod sweep;
pub mod top;
pub mod wallet;
pub mod worker;

/// Milliseconds since the Unix epoch by the local clock (0 for a clock before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
