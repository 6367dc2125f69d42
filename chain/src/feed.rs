//! On-chain market data: Uniswap V2 `Sync`/`Swap` and V3 `Swap` events, polled with
//! `eth_getLogs`, turned into the SDK's [`Trade`] and [`Quote`] events so a strategy reads a
//! DEX pool the way it reads an exchange.
//!
//! - A V2 `Sync` (new reserves) becomes a [`Quote`] whose bid and ask are the pool's marginal
//!   prices after its 0.3% fee (`mid × 0.997` and `mid / 0.997`); sizes are 0, as an AMM has
//!   no resting level.
//! - A V2 or V3 `Swap` becomes a [`Trade`] at the swap's own average price, sized in the base
//!   token, with the aggressor's side (buying the base took it out of the pool).
//!
//! Prices are quote-token units per base-token unit, adjusted for decimals. Events come in
//! chain order (block, then log index), each once; `confirmations` holds back the newest
//! blocks so shallow reorgs do not produce events that later vanish.
//!
//! Hosted nodes cap `eth_getLogs` by block range (commonly 1k to 10k blocks) and by result
//! size, so a poll reads in chunks of at most `max_range` blocks, halves the chunk when the node
//! answers that a range or result is too large, and moves its position after every chunk it
//! read in full: a feed that fell behind catches up, and a failure resumes from the last
//! fully read block.

use std::collections::BTreeMap;

use alloy::primitives::{Address, I256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use kairos_strategies::{InstrumentId, MarketEvent, Quote, Side, Timestamp, Trade};

use crate::abi::{IUniswapV2Pair, IUniswapV3Pool};
use crate::{Error, Result};

/// Which protocol a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Uniswap V2 (and its forks): `Sync` and `Swap`.
    V2,
    /// Uniswap V3: `Swap` with signed amounts.
    V3,
}

/// A pool to follow, and how to read its prices.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The pair or pool contract.
    pub address: Address,
    /// V2 or V3.
    pub kind: PoolKind,
    /// The instrument its events are for.
    pub instrument: InstrumentId,
    /// Whether the base asset is the pool's token0 (otherwise token1).
    pub base_is_token0: bool,
    /// token0's decimals.
    pub decimals0: u8,
    /// token1's decimals.
    pub decimals1: u8,
}

impl Pool {
    fn amounts(&self, a0: f64, a1: f64) -> (f64, f64) {
        let (x0, x1) =
            (a0 / 10f64.powi(self.decimals0.into()), a1 / 10f64.powi(self.decimals1.into()));
        if self.base_is_token0 { (x0, x1) } else { (x1, x0) }
    }
}

fn to_f64(v: U256) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

fn i_to_f64(v: I256) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

/// Polls pools for events.
#[derive(Debug)]
pub struct DexFeed<P> {
    provider: P,
    pools: BTreeMap<Address, Pool>,
    next_block: u64,
    confirmations: u64,
    block_times: BTreeMap<u64, u64>,
    max_range: u64,
}

/// The default most blocks per `eth_getLogs` request.
pub const DEFAULT_MAX_RANGE: u64 = 2_000;

/// Whether a node's `eth_getLogs` error says the range or the result was too large, as hosted
/// providers word it (Alchemy, Infura, QuickNode, Ankr, geth's and reth's own limits).
pub fn is_range_too_large(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "block range",
        "range too large",
        "range is too large",
        "exceed max",
        "exceeds max",
        "more than",
        "too many",
        "response size",
        "limit exceeded",
        "query timeout",
        "is limited to",
    ]
    .iter()
    .any(|p| m.contains(p))
}

impl<P: Provider> DexFeed<P> {
    /// Follows `pools` from block `from_block`, holding back the newest `confirmations` blocks.
    pub fn new(provider: P, pools: Vec<Pool>, from_block: u64, confirmations: u64) -> Self {
        Self {
            provider,
            pools: pools.into_iter().map(|p| (p.address, p)).collect(),
            next_block: from_block,
            confirmations,
            block_times: BTreeMap::new(),
            max_range: DEFAULT_MAX_RANGE,
        }
    }

    /// Reads at most `blocks` blocks per `eth_getLogs` request (at least 1).
    pub fn with_max_range(mut self, blocks: u64) -> Self {
        self.max_range = blocks.max(1);
        self
    }

    /// The current chunk size, which shrinks when the node refuses a range.
    pub fn max_range(&self) -> u64 {
        self.max_range
    }

    /// The next block a poll reads from.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Rpc { endpoint: "dex feed".into(), reason: e.to_string() }
    }

    /// Events of the blocks since the last poll, in chain order. Reads chunk by chunk; when a
    /// chunk fails after others were read, their events are returned and the next poll
    /// resumes after them.
    pub async fn poll(&mut self) -> Result<Vec<MarketEvent>> {
        let head = self.provider.get_block_number().await.map_err(|e| self.err(e))?;
        let Some(to) = head.checked_sub(self.confirmations) else { return Ok(Vec::new()) };
        if self.pools.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        while self.next_block <= to {
            let from = self.next_block;
            let end = to.min(from.saturating_add(self.max_range - 1));
            let filter = Filter::new()
                .address(self.pools.keys().copied().collect::<Vec<_>>())
                .event_signature(vec![
                    IUniswapV2Pair::Sync::SIGNATURE_HASH,
                    IUniswapV2Pair::Swap::SIGNATURE_HASH,
                    IUniswapV3Pool::Swap::SIGNATURE_HASH,
                ])
                .from_block(from)
                .to_block(end);
            let logs = match self.provider.get_logs(&filter).await {
                Ok(logs) => logs,
                Err(e) if self.max_range > 1 && is_range_too_large(&e.to_string()) => {
                    self.max_range = (self.max_range / 2).max(1);
                    tracing::info!(from, end, max_range = self.max_range, error = %e, "log range refused; reading smaller chunks");
                    continue;
                }
                Err(e) if !out.is_empty() => {
                    tracing::warn!(from, error = %e, "reading logs failed; resuming from here next poll");
                    return Ok(out);
                }
                Err(e) => return Err(self.err(format!("eth_getLogs {from}..={end}: {e}"))),
            };
            match self.decode_logs(logs).await {
                Ok(events) => out.extend(events),
                Err(e) if !out.is_empty() => {
                    tracing::warn!(from, error = %e, "reading logs failed; resuming from here next poll");
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
            self.next_block = end + 1;
        }
        Ok(out)
    }

    async fn decode_logs(
        &mut self,
        mut logs: Vec<alloy::rpc::types::Log>,
    ) -> Result<Vec<MarketEvent>> {
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            let Some(pool) = self.pools.get(&log.address()).cloned() else { continue };
            let block = log.block_number.unwrap_or_default();
            let secs = match log.block_timestamp {
                Some(t) => t,
                None => self.block_time(block).await?,
            };
            let ts = Timestamp::from_nanos((secs as i64).saturating_mul(1_000_000_000));
            if let Some(ev) = decode(&pool, &log.inner.data, ts) {
                out.push(ev);
            } else {
                tracing::warn!(pool = %pool.address, block, "undecodable pool event skipped");
            }
        }
        Ok(out)
    }

    async fn block_time(&mut self, number: u64) -> Result<u64> {
        if let Some(t) = self.block_times.get(&number) {
            return Ok(*t);
        }
        let block = self
            .provider
            .get_block_by_number(number.into())
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| self.err(format!("block {number} not found")))?;
        let t = block.header.timestamp;
        if self.block_times.len() > 1024 {
            self.block_times.clear();
        }
        self.block_times.insert(number, t);
        Ok(t)
    }
}

/// Turns one log of `pool` into a market event.
pub fn decode(
    pool: &Pool,
    data: &alloy::primitives::LogData,
    ts: Timestamp,
) -> Option<MarketEvent> {
    let topic = *data.topics().first()?;
    match pool.kind {
        PoolKind::V2 if topic == IUniswapV2Pair::Sync::SIGNATURE_HASH => {
            let s = IUniswapV2Pair::Sync::decode_log_data(data).ok()?;
            let (base, quote) =
                pool.amounts(to_f64(U256::from(s.reserve0)), to_f64(U256::from(s.reserve1)));
            if base <= 0.0 || quote <= 0.0 {
                return None;
            }
            let mid = quote / base;
            if !(mid.is_finite() && mid > 0.0 && (mid / 0.997).is_finite()) {
                return None;
            }
            Some(MarketEvent::Quote(Quote {
                instrument: pool.instrument,
                ts,
                bid: mid * 0.997,
                bid_size: 0.0,
                ask: mid / 0.997,
                ask_size: 0.0,
            }))
        }
        PoolKind::V2 if topic == IUniswapV2Pair::Swap::SIGNATURE_HASH => {
            let s = IUniswapV2Pair::Swap::decode_log_data(data).ok()?;
            let (base_in, quote_in) = pool.amounts(to_f64(s.amount0In), to_f64(s.amount1In));
            let (base_out, quote_out) = pool.amounts(to_f64(s.amount0Out), to_f64(s.amount1Out));
            // Buying the base takes it out of the pool.
            let (size, quote_amt, side) = if base_out > 0.0 {
                (base_out, quote_in, Side::Buy)
            } else {
                (base_in, quote_out, Side::Sell)
            };
            trade(pool, ts, size, quote_amt, side)
        }
        PoolKind::V3 if topic == IUniswapV3Pool::Swap::SIGNATURE_HASH => {
            let s = IUniswapV3Pool::Swap::decode_log_data(data).ok()?;
            // Positive amounts went into the pool.
            let (base, quote) = pool.amounts(i_to_f64(s.amount0), i_to_f64(s.amount1));
            let side = if base < 0.0 { Side::Buy } else { Side::Sell };
            trade(pool, ts, base.abs(), quote.abs(), side)
        }
        _ => None,
    }
}

fn trade(pool: &Pool, ts: Timestamp, size: f64, quote: f64, side: Side) -> Option<MarketEvent> {
    let price = quote / size;
    // Extreme decimals or dust amounts can put the ratio outside f64: no event rather than
    // an infinite or zero price.
    if !(size > 0.0 && quote > 0.0 && size.is_finite() && price.is_finite() && price > 0.0) {
        return None;
    }
    Some(MarketEvent::Trade(Trade {
        instrument: pool.instrument,
        ts,
        price,
        size,
        aggressor: side,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::aliases::{I24, U160};

    fn pool(kind: PoolKind, base_is_token0: bool) -> Pool {
        // token0 = WETH (18 decimals), token1 = USDC (6 decimals)
        Pool {
            address: Address::ZERO,
            kind,
            instrument: InstrumentId(1),
            base_is_token0,
            decimals0: 18,
            decimals1: 6,
        }
    }

    #[test]
    fn v3_swaps_decode_with_signed_amounts_and_decimals() {
        // Someone buys 2 WETH for 6,000 USDC: WETH leaves the pool (negative), USDC enters.
        let ev = IUniswapV3Pool::Swap {
            sender: Address::ZERO,
            recipient: Address::ZERO,
            amount0: I256::try_from(-2_000_000_000_000_000_000i128).unwrap(),
            amount1: I256::try_from(6_000_000_000i128).unwrap(),
            sqrtPriceX96: U160::from(1u64),
            liquidity: 1,
            tick: I24::ZERO,
        };
        let data = ev.encode_log_data();
        let Some(MarketEvent::Trade(t)) = decode(&pool(PoolKind::V3, true), &data, Timestamp(5))
        else {
            panic!("no trade")
        };
        assert_eq!((t.size, t.price, t.aggressor), (2.0, 3_000.0, Side::Buy));
        // Quoted the other way round (base USDC, quote WETH) it is a sale of USDC.
        let Some(MarketEvent::Trade(t)) = decode(&pool(PoolKind::V3, false), &data, Timestamp(5))
        else {
            panic!("no trade")
        };
        assert_eq!((t.size, t.aggressor), (6_000.0, Side::Sell));
        assert!((t.price - 2.0 / 6_000.0).abs() < 1e-15);
        // A V3 log on a pool declared V2 is not misread.
        assert!(decode(&pool(PoolKind::V2, true), &data, Timestamp(5)).is_none());
    }

    #[test]
    fn empty_reserves_and_zero_swaps_give_no_event() {
        let sync = IUniswapV2Pair::Sync {
            reserve0: alloy::primitives::Uint::ZERO,
            reserve1: alloy::primitives::Uint::from(5u64),
        };
        assert!(decode(&pool(PoolKind::V2, true), &sync.encode_log_data(), Timestamp(0)).is_none());
    }

    proptest::proptest! {
        /// A node's logs are outside input: any topics and data under a pool's event
        /// signatures decode to an event with finite prices and sizes, or to nothing.
        #[test]
        fn any_log_decodes_or_is_skipped(
            which in 0usize..4,
            extra in proptest::collection::vec(proptest::array::uniform32(proptest::num::u8::ANY), 0..3),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            decimals in (proptest::num::u8::ANY, proptest::num::u8::ANY),
        ) {
            let sig = [
                IUniswapV2Pair::Sync::SIGNATURE_HASH,
                IUniswapV2Pair::Swap::SIGNATURE_HASH,
                IUniswapV3Pool::Swap::SIGNATURE_HASH,
                alloy::primitives::B256::repeat_byte(7),
            ][which];
            let mut topics = vec![sig];
            topics.extend(extra.into_iter().map(alloy::primitives::B256::from));
            let log = alloy::primitives::LogData::new_unchecked(topics, data.into());
            for kind in [PoolKind::V2, PoolKind::V3] {
                let p = Pool { decimals0: decimals.0, decimals1: decimals.1, ..pool(kind, true) };
                match decode(&p, &log, Timestamp(1)) {
                    Some(MarketEvent::Trade(t)) => proptest::prop_assert!(
                        t.price.is_finite() && t.price > 0.0 && t.size.is_finite()
                    ),
                    Some(MarketEvent::Quote(q)) => {
                        proptest::prop_assert!(q.bid.is_finite() && q.ask.is_finite() && q.bid < q.ask)
                    }
                    _ => {}
                }
            }
        }
    }
}
