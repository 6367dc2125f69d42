//! Sending signed bytes, and what a node's answer means for the order.
//!
//! - "already known": the node has this exact transaction: accepted;
//! - HTTP 429 and rate-limit answers: not processed; the same bytes are retried;
//! - transport failures, 5xx and answers that do not parse: the request may have been
//!   processed; the same bytes are retried (a transaction is idempotent by hash), and if no
//!   try gets a clear answer the broadcast is *unclear*;
//! - "nonce too low": unclear. It may mean this very transaction was mined or pooled through
//!   another path (a relay, a load-balanced provider, an earlier try whose answer was lost);
//!   tracking decides from the chain, and the order is never signed again before the chain
//!   shows the nonce used by a different transaction;
//! - "replacement transaction underpriced" and other node errors: refused, when no earlier try
//!   may have reached a node (then the bytes are nowhere and signing again is safe); unclear
//!   otherwise.

use std::time::Duration;

use alloy::providers::Provider;
use alloy::transports::{RpcError, TransportErrorKind};

use super::Executor;

/// What a node's error answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The node already has this transaction.
    AlreadyKnown,
    /// The nonce is below the node's count for the sender.
    NonceTooLow,
    /// Another transaction holds the nonce and pays more.
    Underpriced,
    /// Not processed (rate limited); try the same bytes again.
    RateLimited(String),
    /// The request may or may not have been processed.
    Lost(String),
    /// The node refused the transaction.
    Refused(String),
}

/// Classifies a JSON-RPC error answer from its code and message, as nodes and providers word
/// them (geth, reth, anvil, Erigon, Nethermind, hosted providers).
pub fn classify_message(code: i64, message: &str) -> Answer {
    // Besu spells its answers in capitals with underscores (NONCE_TOO_LOW), Nethermind in
    // camel case (OldNonce, AlreadyKnown).
    let m = message.to_lowercase().replace('_', " ");
    if m.contains("already known")
        || m.contains("alreadyknown")
        || m.contains("already imported")
        || m.contains("known transaction")
        || m.contains("already exists")
    {
        Answer::AlreadyKnown
    } else if m.contains("nonce too low")
        || m.contains("nonce is too low")
        || m.contains("oldnonce")
    {
        Answer::NonceTooLow
    } else if m.contains("underpriced") {
        Answer::Underpriced
    } else if code == 429 || m.contains("rate limit") || m.contains("too many requests") {
        Answer::RateLimited(message.to_string())
    } else {
        Answer::Refused(format!("{message} (code {code})"))
    }
}

fn classify(e: &RpcError<TransportErrorKind>) -> Answer {
    match e {
        RpcError::ErrorResp(p) => classify_message(p.code, &p.message),
        RpcError::Transport(TransportErrorKind::HttpError(h)) if h.status == 429 => {
            Answer::RateLimited(format!("HTTP {}", h.status))
        }
        RpcError::Transport(TransportErrorKind::HttpError(h)) if h.status >= 500 => {
            Answer::Lost(format!("HTTP {}", h.status))
        }
        RpcError::Transport(TransportErrorKind::HttpError(h)) => {
            Answer::Refused(format!("HTTP {}", h.status))
        }
        RpcError::Transport(other) => Answer::Lost(other.to_string()),
        // A response that did not parse (cut off) may hide a success.
        RpcError::DeserError { .. } | RpcError::NullResp => Answer::Lost(e.to_string()),
        other => Answer::Lost(other.to_string()),
    }
}

/// How a broadcast ended.
#[derive(Debug)]
pub(super) enum Sent {
    /// A node has it.
    Accepted(String),
    /// It may have reached a node: track it, never sign the order again at another nonce.
    Unclear(String),
    /// Refused on every try, and no try can have reached a node. `resync`: the nonce is not
    /// what we thought (re-synchronise and sign again).
    Refused { reason: String, resync: bool },
}

impl Executor {
    /// Broadcasts signed bytes, retrying the same bytes on rate limits and transport errors.
    pub(super) async fn broadcast(&self, raw: &[u8]) -> Sent {
        let target = self.send_rpc.as_ref().unwrap_or(&self.rpc);
        let mut delay = Duration::from_millis(50);
        // Whether a try may have been processed by a node.
        let mut exposed = false;
        let mut last = String::new();
        for attempt in 0..=self.cfg.broadcast_retries {
            let answer = match target.send_raw_transaction(raw).await {
                Ok(_) => return Sent::Accepted(String::new()),
                Err(e) => classify(&e),
            };
            match answer {
                Answer::AlreadyKnown => return Sent::Accepted("the node already had it".into()),
                Answer::NonceTooLow => {
                    return Sent::Unclear(
                        "nonce too low: this transaction may be the one that used it".into(),
                    );
                }
                Answer::Underpriced if !exposed => {
                    return Sent::Refused {
                        reason: "replacement transaction underpriced: the nonce is taken".into(),
                        resync: true,
                    };
                }
                Answer::Refused(reason) if !exposed => {
                    return Sent::Refused { reason, resync: false };
                }
                Answer::Underpriced => {
                    return Sent::Unclear(
                        "underpriced after an unanswered try: an earlier try may have landed"
                            .into(),
                    );
                }
                Answer::Refused(reason) => {
                    return Sent::Unclear(format!("{reason}, after an unanswered try"));
                }
                Answer::RateLimited(reason) => last = reason,
                Answer::Lost(reason) => {
                    exposed = true;
                    last = reason;
                }
            }
            tracing::debug!(attempt, reason = %last, "broadcast failed; retrying the same bytes");
            if attempt < self.cfg.broadcast_retries {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        let reason = format!("{last} (after {} retries)", self.cfg.broadcast_retries);
        if exposed { Sent::Unclear(reason) } else { Sent::Refused { reason, resync: false } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_answers_are_classified_as_nodes_word_them() {
        for (code, msg, want) in [
            (-32000, "already known", Answer::AlreadyKnown),
            (-32010, "Transaction with the same hash was already imported.", Answer::AlreadyKnown),
            (-32000, "nonce too low: next nonce 5, tx nonce 4", Answer::NonceTooLow),
            (-32003, "Nonce is too low", Answer::NonceTooLow),
            (-32000, "replacement transaction underpriced", Answer::Underpriced),
            (-32000, "NONCE_TOO_LOW", Answer::NonceTooLow),
            (-32010, "OldNonce", Answer::NonceTooLow),
            (-32010, "AlreadyKnown", Answer::AlreadyKnown),
            (-32000, "KNOWN_TRANSACTION", Answer::AlreadyKnown),
            (-32000, "REPLACEMENT_UNDERPRICED", Answer::Underpriced),
            (-32000, "transaction underpriced: tip needed 1, tip permitted 0", Answer::Underpriced),
            (429, "Too Many Requests", Answer::RateLimited("Too Many Requests".into())),
            (
                -32005,
                "daily request count exceeded, request rate limited",
                Answer::RateLimited("daily request count exceeded, request rate limited".into()),
            ),
        ] {
            assert_eq!(classify_message(code, msg), want, "{msg}");
        }
        assert!(matches!(
            classify_message(-32000, "insufficient funds for gas * price + value"),
            Answer::Refused(m) if m.contains("insufficient funds") && m.contains("-32000")
        ));
    }

    proptest::proptest! {
        /// Any answer a node or provider sends is classified, never a panic; a "nonce too low"
        /// anywhere in it, in any case, is never taken for a refusal (which would re-sign).
        #[test]
        fn any_error_answer_is_classified(
            code in proptest::num::i64::ANY,
            before in ".{0,40}",
            after in ".{0,40}",
            upper in proptest::bool::ANY,
        ) {
            let _ = classify_message(code, &before);
            let phrase = if upper { "NONCE TOO LOW" } else { "nonce too low" };
            let m = format!("{before}{phrase}{after}");
            let a = classify_message(code, &m);
            proptest::prop_assert!(
                matches!(a, Answer::NonceTooLow | Answer::AlreadyKnown),
                "{m:?} -> {a:?}"
            );
        }
    }
}
