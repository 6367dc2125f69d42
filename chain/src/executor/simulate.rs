//! Simulation before signing: the `eth_call`, the gas estimates and, for a swap, the quote the
//! slippage guardrail bounds it by, all read at one block.
//!
//! The quote comes from the swap's own decoded calldata, never from the caller: Uniswap V2
//! router swaps are quoted by the router's `getAmountsOut` along the calldata's path and
//! amount, V3 `exactInputSingle` by the configured `QuoterV2`.

use std::future::IntoFuture;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::U256;
use alloy::primitives::aliases::{U24, U160};
use alloy::providers::Provider;
use alloy::rpc::types::{BlockOverrides, TransactionRequest};
use alloy::sol_types::SolCall;
use alloy::transports::{RpcError, TransportErrorKind};

use super::{Executor, Request};
use crate::abi::{IQuoterV2, ISwapRouter, IUniswapV2Router02};
use crate::guard::ChainQuote;
use crate::{Error, Result};

/// What a simulation found.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The gas estimate: the larger of the latest block's and the next block's.
    pub gas: u64,
    /// For a swap, its output as the chain quotes it now.
    pub quote: Option<ChainQuote>,
    /// The block it was read at.
    pub block: u64,
}

/// Whether a node's error answer says the call reverted (rather than, say, that a parameter
/// was not understood).
fn is_revert(e: &RpcError<TransportErrorKind>) -> bool {
    let RpcError::ErrorResp(p) = e else { return false };
    p.code == 3 || p.as_revert_data().is_some() || p.message.to_lowercase().contains("revert")
}

/// The decoded reason of a revert in an `eth_call`/`eth_estimateGas` error.
pub fn revert_reason(e: &RpcError<TransportErrorKind>) -> String {
    if let RpcError::ErrorResp(p) = e {
        if let Some(r) = p.as_decoded_error::<alloy::sol_types::Revert>() {
            return r.reason;
        }
        if let Some(data) = p.as_revert_data() {
            if data.is_empty() {
                return format!("{} (no reason given)", p.message);
            }
            return format!("{} (revert data {data})", p.message);
        }
        return p.message.to_string();
    }
    e.to_string()
}

impl Executor {
    /// Simulates `req` against the node's latest block: a revert is an error with its decoded
    /// reason, and nothing is signed or sent. Returns the gas estimate (the larger of the
    /// estimates in the latest block's context and in the next block's) and, for a swap, the
    /// chain's quote for it, read at the same block.
    ///
    /// Both estimates are needed because gas can depend on the block timestamp. A Uniswap V2
    /// pair writes its price accumulators only when the timestamp has moved since its last
    /// update, and a V3 pool its oracle observation. An estimate made against the latest
    /// block, in which the pool was last touched, leaves that write out; the swap then lands
    /// in a later block and runs out of gas. The first time for a pair, the write is a
    /// zero-to-nonzero store of two slots: 45,324 gas, +49% on a V2 swap, far over any
    /// percentage margin. A node that does not take block overrides (`eth_estimateGas`'s
    /// fourth parameter; geth, reth and anvil do) gets the latest-block estimate alone.
    pub async fn simulate(&self, req: &Request) -> Result<Simulation> {
        let latest = self
            .rpc
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.rpc_err(e))?
            .ok_or_else(|| self.rpc_err("the node has no latest block"))?;
        let block = latest.header.number;
        let call = TransactionRequest::default()
            .from(self.address)
            .to(req.to)
            .value(req.value)
            .input(req.input.clone().into());
        let reverted = |e: RpcError<TransportErrorKind>| match e {
            RpcError::ErrorResp(_) => {
                Error::Reverted { reason: format!("in simulation: {}", revert_reason(&e)) }
            }
            other => self.rpc_err(other),
        };
        let next = BlockOverrides {
            number: Some(U256::from(block + 1)),
            time: Some(latest.header.timestamp + 1),
            ..BlockOverrides::default()
        };
        let (simulated, at_latest, at_next, quote) = tokio::join!(
            self.rpc.call(call.clone()).number(block).into_future(),
            self.rpc.estimate_gas(call.clone()).number(block).into_future(),
            self.rpc
                .estimate_gas(call.clone())
                .number(block)
                .with_block_overrides(next)
                .into_future(),
            self.quote(req, block),
        );
        simulated.map_err(reverted)?;
        let at_latest = at_latest.map_err(reverted)?;
        let gas = match at_next {
            Ok(gas) => gas.max(at_latest),
            // It would revert in the next block (a deadline that is about to pass, say): it
            // will not be mined any earlier than that.
            Err(e) if is_revert(&e) => return Err(reverted(e)),
            Err(RpcError::ErrorResp(e)) => {
                tracing::debug!(error = %e, "no next-block gas estimate (block overrides refused)");
                at_latest
            }
            Err(other) => return Err(self.rpc_err(other)),
        };
        Ok(Simulation { gas, quote: quote?, block })
    }

    /// The chain's quote for a swap in `req`'s calldata, at `block`; `None` when it is not a
    /// swap the guard bounds by a quote.
    pub(super) async fn quote(&self, req: &Request, block: u64) -> Result<Option<ChainQuote>> {
        let input = req.input.as_ref();
        let Some(selector) = input.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
            return Ok(None);
        };
        let failed = |what: &str, e: alloy::contract::Error| Error::Reverted {
            reason: format!("in simulation: quoting the swap with {what}: {e}"),
        };
        type V2 = IUniswapV2Router02::IUniswapV2Router02Instance<alloy::providers::RootProvider>;
        let v2 = |amount_in: U256, path: Vec<alloy::primitives::Address>| async move {
            let router: V2 = IUniswapV2Router02::new(req.to, self.rpc.clone());
            let amounts = router
                .getAmountsOut(amount_in, path)
                .block(block.into())
                .call()
                .await
                .map_err(|e| failed("the router's getAmountsOut", e))?;
            let out = amounts.last().copied().unwrap_or_default();
            Ok::<_, Error>(Some(ChainQuote::new(out, block)))
        };
        // Calldata that does not decode is left to the guard, which refuses it by name.
        match selector {
            IUniswapV2Router02::swapExactTokensForTokensCall::SELECTOR => {
                match IUniswapV2Router02::swapExactTokensForTokensCall::abi_decode(input) {
                    Ok(c) => v2(c.amountIn, c.path).await,
                    Err(_) => Ok(None),
                }
            }
            IUniswapV2Router02::swapExactTokensForETHCall::SELECTOR => {
                match IUniswapV2Router02::swapExactTokensForETHCall::abi_decode(input) {
                    Ok(c) => v2(c.amountIn, c.path).await,
                    Err(_) => Ok(None),
                }
            }
            IUniswapV2Router02::swapExactETHForTokensCall::SELECTOR => {
                match IUniswapV2Router02::swapExactETHForTokensCall::abi_decode(input) {
                    Ok(c) => v2(req.value, c.path).await,
                    Err(_) => Ok(None),
                }
            }
            ISwapRouter::exactInputSingleCall::SELECTOR => {
                let Ok(c) = ISwapRouter::exactInputSingleCall::abi_decode(input) else {
                    return Ok(None);
                };
                let Some(quoter) = self.cfg.v3_quoter else {
                    let needs = {
                        let w = self.wallet.lock().unwrap_or_else(|p| p.into_inner());
                        w.guard().policy().max_slippage_bps.is_some()
                    };
                    if needs {
                        return Err(Error::Refused {
                            rule: "max_slippage_bps",
                            detail: "a Uniswap V3 swap needs a QuoterV2 to quote it: set the \
                                     wallet's dex.v3_quoter (ExecutorConfig::v3_quoter)"
                                .into(),
                        });
                    }
                    return Ok(None);
                };
                let p = c.params;
                let params = IQuoterV2::QuoteExactInputSingleParams {
                    tokenIn: p.tokenIn,
                    tokenOut: p.tokenOut,
                    amountIn: p.amountIn,
                    fee: U24::from(p.fee),
                    sqrtPriceLimitX96: U160::from(p.sqrtPriceLimitX96),
                };
                let r = IQuoterV2::new(quoter, self.rpc.clone())
                    .quoteExactInputSingle(params)
                    .block(block.into())
                    .call()
                    .await
                    .map_err(|e| failed(&format!("QuoterV2 {quoter}"), e))?;
                Ok(Some(ChainQuote::new(r.amountOut, block)))
            }
            _ => Ok(None),
        }
    }
}
