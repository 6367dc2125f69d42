//! The crate's error type. No variant carries a key or a password: messages name files,
//! addresses, rules and endpoints only.

use std::path::PathBuf;

/// Errors from key handling, signing, guardrails and the chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key file is malformed or uses something unsupported.
    #[error("key file {what}: {reason}")]
    Keystore {
        /// The file (or what was being done).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The password does not decrypt the key file (its MAC does not match).
    #[error("wrong password for key file {what} (the MAC does not match)")]
    WrongPassword {
        /// The file.
        what: String,
    },
    /// No key file for an address or name.
    #[error("no key for {what} in {dir}; known: {known}")]
    UnknownKey {
        /// What was asked for.
        what: String,
        /// The keystore folder.
        dir: PathBuf,
        /// The addresses that are there.
        known: String,
    },
    /// A transaction field is missing or out of range.
    #[error("transaction: {0}")]
    Transaction(String),
    /// A guardrail refused a transaction.
    #[error("refused by guardrail `{rule}`: {detail}")]
    Refused {
        /// The rule's name, as written in the policy file.
        rule: &'static str,
        /// Why, with the numbers.
        detail: String,
    },
    /// The transaction would revert (in simulation, before anything is signed) or did (on
    /// chain).
    #[error("reverted {reason}")]
    Reverted {
        /// Where ("in simulation: ", "on chain in block N ..."), and the decoded revert reason.
        reason: String,
    },
    /// The node answered with an error or could not be reached.
    #[error("rpc {endpoint}: {reason}")]
    Rpc {
        /// The endpoint (without credentials).
        endpoint: String,
        /// The error.
        reason: String,
    },
    /// Broadcast (or possibly broadcast) and not known to be final when tracking stopped. It
    /// may still be mined: sending the order again could execute it twice.
    #[error(
        "transaction {hash} (nonce {nonce}) was broadcast but its outcome is not known yet: \
         {reason}. Do not send it again: resume tracking it (`kairos tx status --pending`)"
    )]
    Unsettled {
        /// Its order in the journal.
        order: Option<i64>,
        /// Its nonce.
        nonce: u64,
        /// The newest version's hash.
        hash: alloy::primitives::B256,
        /// Why tracking stopped.
        reason: String,
    },
    /// Never executed: the chain shows its nonce used by a different transaction, and none of
    /// its versions was mined.
    #[error(
        "nonce {nonce} was used by another transaction: this order's transaction {hash} was not \
         executed"
    )]
    Superseded {
        /// Its order in the journal.
        order: Option<i64>,
        /// The nonce.
        nonce: u64,
        /// The newest version's hash.
        hash: alloy::primitives::B256,
    },
    /// The journal failed.
    #[error("journal {path}: {reason}")]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
