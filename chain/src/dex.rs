//! Quotes and swap calldata: Uniswap V2 from pool reserves, Uniswap V3 from `QuoterV2`; every
//! swap carries a slippage bound and a deadline.

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;

use alloy::primitives::aliases::{U24, U160};

use crate::abi::{IQuoterV2, ISwapRouter, IUniswapV2Factory, IUniswapV2Pair, IUniswapV2Router02};
use crate::{Error, Result};

/// Uniswap V2's output for `amount_in` against reserves `(reserve_in, reserve_out)`, with its
/// 0.3% fee: `UniswapV2Library.getAmountOut`, in the same integer arithmetic.
pub fn v2_amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> Option<U256> {
    if amount_in.is_zero() || reserve_in.is_zero() || reserve_out.is_zero() {
        return None;
    }
    let with_fee = amount_in.checked_mul(U256::from(997))?;
    let numerator = with_fee.checked_mul(reserve_out)?;
    let denominator = reserve_in.checked_mul(U256::from(1000))?.checked_add(with_fee)?;
    Some(numerator / denominator)
}

/// The least output to accept: `quote` less `slippage_bps`, rounded down.
pub fn min_out(quote: U256, slippage_bps: u32) -> U256 {
    quote * U256::from(10_000u32.saturating_sub(slippage_bps)) / U256::from(10_000u32)
}

/// A V2 pool's reserves, oriented for a swap of `token_in` into `token_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Reserves {
    /// The pair contract.
    pub pair: Address,
    /// Reserve of the input token.
    pub reserve_in: U256,
    /// Reserve of the output token.
    pub reserve_out: U256,
}

/// Reads the pool of `token_in`/`token_out` from `factory`.
pub async fn v2_reserves<P: Provider>(
    provider: &P,
    factory: Address,
    token_in: Address,
    token_out: Address,
) -> Result<V2Reserves> {
    let err = |what: &str, e: alloy::contract::Error| Error::Rpc {
        endpoint: "node".into(),
        reason: format!("{what}: {e}"),
    };
    let pair = IUniswapV2Factory::new(factory, provider)
        .getPair(token_in, token_out)
        .call()
        .await
        .map_err(|e| err("getPair", e))?;
    if pair == Address::ZERO {
        return Err(Error::Transaction(format!(
            "no Uniswap V2 pool for {token_in}/{token_out} on factory {factory}"
        )));
    }
    let pool = IUniswapV2Pair::new(pair, provider);
    let r = pool.getReserves().call().await.map_err(|e| err("getReserves", e))?;
    let token0 = pool.token0().call().await.map_err(|e| err("token0", e))?;
    let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
    let (reserve_in, reserve_out) = if token0 == token_in { (r0, r1) } else { (r1, r0) };
    Ok(V2Reserves { pair, reserve_in, reserve_out })
}

/// `swapExactTokensForTokens` calldata: sell exactly `amount_in` of `path[0]` for at least
/// `amount_out_min` of the last token, paid to `to`, valid until `deadline` (unix seconds).
pub fn v2_swap_exact_tokens(
    amount_in: U256,
    amount_out_min: U256,
    path: Vec<Address>,
    to: Address,
    deadline: u64,
) -> Bytes {
    IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: amount_out_min,
        path,
        to,
        deadline: U256::from(deadline),
    }
    .abi_encode()
    .into()
}

/// Uniswap V3's output for `amount_in` through the `fee` pool (hundredths of a bip: 500, 3000,
/// 10000), from `QuoterV2.quoteExactInputSingle` (an `eth_call`; it simulates the swap across
/// ticks, so it is exact for the current state).
pub async fn v3_quote<P: Provider>(
    provider: &P,
    quoter: Address,
    token_in: Address,
    token_out: Address,
    fee: u32,
    amount_in: U256,
) -> Result<U256> {
    let params = IQuoterV2::QuoteExactInputSingleParams {
        tokenIn: token_in,
        tokenOut: token_out,
        amountIn: amount_in,
        fee: U24::from(fee),
        sqrtPriceLimitX96: U160::ZERO,
    };
    let r = IQuoterV2::new(quoter, provider).quoteExactInputSingle(params).call().await.map_err(
        |e| Error::Rpc {
            endpoint: "node".into(),
            reason: format!("QuoterV2 quote for {token_in}/{token_out} fee {fee}: {e}"),
        },
    )?;
    Ok(r.amountOut)
}

/// `exactInputSingle` calldata for Uniswap V3's `SwapRouter`: sell exactly `amount_in` of
/// `token_in` through the `fee` pool for at least `amount_out_min`, paid to `recipient`, valid
/// until `deadline`.
pub fn v3_exact_input_single(
    token_in: Address,
    token_out: Address,
    fee: u32,
    recipient: Address,
    deadline: u64,
    amount_in: U256,
    amount_out_min: U256,
) -> Bytes {
    ISwapRouter::exactInputSingleCall {
        params: ISwapRouter::ExactInputSingleParams {
            tokenIn: token_in,
            tokenOut: token_out,
            fee: U24::from(fee),
            recipient,
            deadline: U256::from(deadline),
            amountIn: amount_in,
            amountOutMinimum: amount_out_min,
            sqrtPriceLimitX96: U160::ZERO,
        },
    }
    .abi_encode()
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_out_matches_the_library_formula() {
        // 1 in against 1000/1000 reserves: 997*1000 / (1000*1000 + 997) = 0 (integer).
        assert_eq!(
            v2_amount_out(U256::from(1), U256::from(1000), U256::from(1000)),
            Some(U256::ZERO)
        );
        let e = |x: u64, p: u64| U256::from(x) * U256::from(10u64).pow(U256::from(p));
        let out = v2_amount_out(e(1, 18), e(1, 21), e(2, 21)).unwrap();
        // 997e18 * 2e21 / (1e24 + 997e18)
        assert_eq!(out, U256::from(1_992_013_962_079_806_432u64));
        assert_eq!(v2_amount_out(U256::ZERO, U256::from(1), U256::from(1)), None);
        assert_eq!(min_out(U256::from(10_000), 50), U256::from(9_950));
    }
}
