//! # kairos-chain
//!
//! On-chain execution for Kairos agents, built on alloy:
//!
//! - [`keystore`]: encrypted key files (Web3 Secret Storage v3, scrypt), interoperable with
//!   geth, foundry and eth-account; [`keys`]: a folder of them.
//! - [`tx`]: EIP-1559 transactions, signed locally.
//! - [`executor`]: the transaction lifecycle (simulation, nonces, broadcast, confirmations,
//!   fee bumps, reorgs, drops), journalled in SQLite by [`journal`].
//! - [`feed`]: Uniswap V2/V3 pool events as trades and quotes for strategies; [`dex`]: quotes
//!   from reserves and swap calldata.
//! - [`guard`]: wallet guardrails (spend caps, allowlists, slippage, gas price, dry run),
//!   enforced in the signing path where no strategy or model reply can get around them.
//!
//! Nothing in this crate logs or prints a private key or a password: key material lives in
//! zeroising buffers and in alloy's signer, whose `Debug` shows only the address.

pub mod abi;
pub mod dex;
mod error;
pub mod executor;
pub mod feed;
pub mod guard;
#[doc(hidden)]
pub mod hooks;
pub mod journal;
pub mod keys;
pub mod keystore;
pub mod tx;

pub use alloy;
pub use error::{Error, Result};
