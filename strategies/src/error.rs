//! The error type of the strategy SDK.

/// Errors raised by the SDK: bad strategy names or parameters, invalid instruments or orders.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// No strategy is registered under this name.
    #[error("unknown strategy `{name}`; available strategies: {available}")]
    UnknownStrategy {
        /// The name asked for.
        name: String,
        /// Comma-separated names that exist.
        available: String,
    },
    /// A parameter the strategy does not declare.
    #[error("strategy `{strategy}` has no parameter `{param}`; its parameters are: {available}")]
    UnknownParam {
        /// The strategy.
        strategy: String,
        /// The parameter given.
        param: String,
        /// What the strategy accepts, with types and defaults.
        available: String,
    },
    /// A parameter whose value does not parse or is out of range.
    #[error("strategy `{strategy}` parameter `{param}`: {reason}")]
    InvalidParam {
        /// The strategy.
        strategy: String,
        /// The parameter.
        param: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A `key=value` argument without `=`.
    #[error("parameter `{0}` is not of the form key=value")]
    MalformedParam(String),
    /// An order request the context refused (bad size, price or instrument).
    #[error("order rejected: {reason}")]
    InvalidOrder {
        /// Why.
        reason: String,
    },
    /// A model ask the context refused (no model name, an input that cannot be sent).
    #[error("model ask refused: {reason}")]
    InvalidAsk {
        /// Why.
        reason: String,
    },
    /// An instrument definition that cannot be traded (non-positive tick or lot size, ...).
    #[error("instrument `{symbol}`: {reason}")]
    InvalidInstrument {
        /// The symbol.
        symbol: String,
        /// What was wrong.
        reason: String,
    },
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
