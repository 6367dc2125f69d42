//! The on-chain execution client through the engine against a real anvil node with Uniswap V2
//! deployed by the test, a key file made by `kairos keys import` and a wallet file with
//! guardrails: a market buy and a market sell become swaps, accepted when broadcast and filled
//! with what the pool gave (the wallet's balances agree to the last unit the fill can say); a
//! limit order and a swap the guardrails or the simulation refuse are rejections naming why,
//! with nothing mined; the agent's journal holds every swap. After a crash, reconciliation
//! closes a swap that was never sent and books one that was confirmed but not booked.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use kairos_agent::chain_venue::{ChainSpec, ChainVenue, UNISWAP, reconcile, routes, run_chain};
use kairos_agent::journal::{Journal, OrderState};
use kairos_agent::live::VenueReport;
use kairos_agent::onchain::WalletFile;
use kairos_agent::paper::DexSpec;
use kairos_chain::abi::{IERC20, IUniswapV2Factory};
use kairos_engine::{Engine, HistoricalClock};
use kairos_strategies::{Context, Instrument, InstrumentId, OrderRequest, OrderSize, Side};
use tokio::sync::mpsc;

use crate::common::{Anvil, dev_provider, e18, uniswap_v2};
use crate::live::Log;
use crate::onchain::cli_wallet;

const AB: InstrumentId = InstrumentId(0);

fn whole(v: U256) -> f64 {
    alloy::primitives::utils::format_units(v, 18).unwrap().parse().unwrap()
}

/// A pool of 1,000,000 A and 2,000,000 B on `anvil` (A trades at 2 B), its pair, and a wallet
/// holding 1,000 B whose guardrails allow the router, A (at most 500 a swap) and B (2,000).
async fn pool_and_wallet(
    anvil: &Anvil,
) -> (crate::common::UniswapV2, Address, crate::onchain::CliWallet) {
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let pair: Address = IUniswapV2Factory::new(uni.factory, &dev)
        .getPair(uni.token_a, uni.token_b)
        .call()
        .await
        .unwrap();
    let cw = cli_wallet(&anvil.url, uni.router, [uni.token_a, uni.token_b], uni.token_b).await;
    // B gets a cap too: the guardrails approve only tokens with an approval bound.
    let text = std::fs::read_to_string(cw.wallet()).unwrap().replace(
        "symbol = \"B\"\n            decimals = 18",
        "symbol = \"B\"\n            decimals = 18\n            max_per_tx = \"2000\"",
    );
    assert!(text.contains("max_per_tx = \"2000\""));
    std::fs::write(cw.wallet(), text).unwrap();
    (uni, pair, cw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn orders_on_a_dex_instrument_become_guarded_swaps_reported_as_order_events() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let (uni, pair, cw) = pool_and_wallet(&anvil).await;
    let dev = dev_provider(&anvil.url);
    let me = cw.me;
    let spec = ChainSpec {
        wallet: cw.wallet().into(),
        password_file: Some(cw.pw().into()),
        slippage_bps: 50,
        deadline_s: 120,
        routers: BTreeMap::from([("AB".to_string(), uni.router.to_string())]),
    };
    let dex = vec![DexSpec {
        symbol: "AB".into(),
        rpc_url: anvil.url.clone(),
        address: pair.to_string(),
        kind: "v2".into(),
        base_is_token0: uni.token_a < uni.token_b,
        decimals0: 18,
        decimals1: 18,
        from_block: None,
        confirmations: 0,
        poll_ms: 100,
    }];
    spec.check(&dex).unwrap();
    let wallet = WalletFile::load(&spec.wallet).unwrap();
    let exec = wallet.agent_executor(spec.password_file.clone()).await.unwrap();
    let pools = routes(&exec, &spec, &dex).await.unwrap();
    assert_eq!((pools[0].base.0, pools[0].quote.0), (uni.token_a, uni.token_b));

    let dir = tempfile::tempdir().unwrap();
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<VenueReport>();
    let task = tokio::spawn(run_chain(exec, pools.clone(), spec.clone(), req_rx, rep_tx));
    let journal = Journal::open(dir.path().join("agent.sqlite")).unwrap();
    let venue = ChainVenue::new(journal, "kc", vec![true], req_tx);
    let ab = Instrument::new("AB", "uniswap").with_tick_size(0.0001).with_lot_size(0.0001);
    let mut ctx = Context::new(vec![ab], 10_000.0);
    ctx.portfolio_mut().mark(AB, 2.0);
    let mut e: Engine<ChainVenue, HistoricalClock> = Engine::historical(ctx, venue);
    let mut s = Log::default();
    e.start(&mut s);
    // Reports to the engine until `done` holds (two minutes is a hang).
    async fn pump(
        e: &mut Engine<ChainVenue, HistoricalClock>,
        s: &mut Log,
        rx: &mut mpsc::UnboundedReceiver<VenueReport>,
        done: impl Fn(&Log) -> bool,
    ) {
        let until = std::time::Instant::now() + Duration::from_secs(120);
        while !done(s) {
            assert!(std::time::Instant::now() < until, "no report: {:?}", s.events);
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                e.from_venue(s, |x, ctx, out| x.apply(ctx, r, out));
            }
        }
    }
    let a = IERC20::new(uni.token_a, &dev);
    let b = IERC20::new(uni.token_b, &dev);

    // A market buy of 10 A: spends 10 x 2 = 20 B; the pool gives a little under 10 A (its
    // 0.3% fee and the price impact).
    let buy = e.ctx.submit(OrderRequest::market(AB, Side::Buy, OrderSize::Units(10.0))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &mut rep_rx, |s| s.updates(buy).contains(&"Filled".to_string())).await;
    assert_eq!(s.updates(buy), vec!["Accepted", "Filled"]);
    let got_a = whole(a.balanceOf(me).call().await.unwrap());
    let f = s.fills[0];
    assert!(got_a > 9.9 && got_a < 10.0, "{got_a}");
    assert!(
        (f.quantity - got_a).abs() < 1e-8,
        "the fill says {} and the wallet holds {got_a}",
        f.quantity
    );
    assert!((f.price - 20.0 / got_a).abs() < 1e-6, "{}", f.price);
    assert!((whole(b.balanceOf(me).call().await.unwrap()) - 980.0).abs() < 1e-9);
    assert!((e.ctx.position(AB) - f.quantity).abs() < 1e-12);

    // A market sell of 5 A.
    let sell = e.ctx.submit(OrderRequest::market(AB, Side::Sell, OrderSize::Units(5.0))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &mut rep_rx, |s| s.updates(sell).contains(&"Filled".to_string())).await;
    let b_now = whole(b.balanceOf(me).call().await.unwrap());
    assert!((s.fills[1].quantity - 5.0).abs() < 1e-12);
    assert!(
        (s.fills[1].price * 5.0 - (b_now - 980.0)).abs() < 1e-6,
        "{} vs {b_now}",
        s.fills[1].price
    );

    // Refused: a limit order (before anything is journalled), a sell of more A than the
    // wallet holds, and a sell over A's guardrail (500 a swap) once the wallet holds enough:
    // its approval is refused.
    let limit =
        e.ctx.submit(OrderRequest::limit(AB, Side::Buy, OrderSize::Units(1.0), 1.9)).unwrap();
    e.run_pending(&mut s);
    assert_eq!(s.updates(limit), vec!["Rejected"]);
    assert!(format!("{:?}", s.events.last().unwrap().update).contains("market order"));
    let too_much =
        e.ctx.submit(OrderRequest::market(AB, Side::Sell, OrderSize::Units(50.0))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &mut rep_rx, |s| !s.updates(too_much).is_empty()).await;
    assert_eq!(s.updates(too_much), vec!["Rejected"]);
    let why = format!("{:?}", s.events.last().unwrap().update);
    assert!(why.contains("the wallet holds"), "{why}");
    crate::common::fund(&anvil.url, me, U256::ZERO, Some((uni.token_a, e18(600)))).await;
    let a_before = a.balanceOf(me).call().await.unwrap();
    let capped =
        e.ctx.submit(OrderRequest::market(AB, Side::Sell, OrderSize::Units(501.0))).unwrap();
    e.run_pending(&mut s);
    pump(&mut e, &mut s, &mut rep_rx, |s| !s.updates(capped).is_empty()).await;
    assert_eq!(s.updates(capped), vec!["Rejected"]);
    let why = format!("{:?}", s.events.last().unwrap().update);
    assert!(why.contains("refused by guardrail") && why.contains("500000000000000000000"), "{why}");
    assert_eq!(a.balanceOf(me).call().await.unwrap(), a_before, "a refused swap swapped nothing");

    // The agent's journal: every swap, with its end; fills keyed by the wallet's order.
    let j = e.exec.journal();
    let orders = j.orders().unwrap();
    let ends: Vec<_> = orders.iter().map(|o| (o.status.as_deref(), o.state)).collect();
    assert_eq!(
        ends,
        vec![
            (Some("FILLED"), OrderState::Final),
            (Some("FILLED"), OrderState::Final),
            (Some("REJECTED"), OrderState::Final),
            (Some("REJECTED"), OrderState::Final),
        ]
    );
    let fills = j.fills(UNISWAP, "AB").unwrap();
    assert_eq!(fills.len(), 2);
    let first_chain_order = fills[0].trade_id;

    // Restarts. A fresh agent journal with two swaps an earlier session left unsettled: one
    // journalled and never sent (no wallet transaction after it), one confirmed on chain (the
    // first buy) but killed before its fill was booked.
    e.exec.close();
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    drop(e);
    let exec = wallet.agent_executor(spec.password_file.clone()).await.unwrap();
    let mut j2 = Journal::open(dir.path().join("restart.sqlite")).unwrap();
    let booked = j2.intend("kr", UNISWAP, "AB", "BUY", "MARKET", "10", None, 0).unwrap();
    j2.update(&booked, Some(first_chain_order), "BROADCAST", "0", false).unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let unsent = j2.intend("kr", UNISWAP, "AB", "SELL", "MARKET", "1", None, now + 1).unwrap();
    assert_eq!(reconcile(&j2, &exec, &pools).await.unwrap(), 2);
    assert_eq!(j2.order(&unsent).unwrap().unwrap().status.as_deref(), Some("NOT_SENT"));
    let o = j2.order(&booked).unwrap().unwrap();
    assert_eq!((o.status.as_deref(), o.state), (Some("FILLED"), OrderState::Final));
    let f2 = j2.fills(UNISWAP, "AB").unwrap();
    assert_eq!(f2.len(), 1);
    assert!((f2[0].qty.parse::<f64>().unwrap() - f.quantity).abs() < 1e-12, "{:?}", f2[0]);
    assert!(j2.unsettled(UNISWAP).unwrap().is_empty());

    // A swap whose link to its transaction the crash lost: found by the label the executor
    // journalled with it (the first sell, `kc-2`), and booked.
    let mut j3 = Journal::open(dir.path().join("unlinked.sqlite")).unwrap();
    let lost = j3.intend("kc", UNISWAP, "AB", "BUY", "MARKET", "10", None, 0).unwrap();
    let lost_sell = j3.intend("kc", UNISWAP, "AB", "SELL", "MARKET", "5", None, 0).unwrap();
    assert_eq!(lost_sell, "kc-2");
    j3.update(&lost, None, "NOT_SENT", "0", true).unwrap();
    assert_eq!(reconcile(&j3, &exec, &pools).await.unwrap(), 1);
    let f3 = j3.fills(UNISWAP, "AB").unwrap();
    assert_eq!(f3.len(), 1);
    assert!((f3[0].qty.parse::<f64>().unwrap() - 5.0).abs() < 1e-12, "{:?}", f3[0]);
    assert_eq!(f3[0].trade_id, fills[1].trade_id, "the same wallet order as the session booked");
    // The same client id journalled after that swap (a journal started afresh) is not it.
    let mut j4 = Journal::open(dir.path().join("fresh.sqlite")).unwrap();
    j4.intend("kc", UNISWAP, "AB", "BUY", "MARKET", "10", None, now + 1).unwrap();
    assert_eq!(reconcile(&j4, &exec, &pools).await.unwrap(), 1);
    assert_eq!(j4.order("kc-1").unwrap().unwrap().status.as_deref(), Some("NOT_SENT"));
    assert!(j4.fills(UNISWAP, "AB").unwrap().is_empty());
}

/// Buys 10 on the first market event of the pool, sells 5 after the fill, then stops the
/// agent; stops it too on a rejection.
struct Swapper {
    step: u8,
    stop: tokio::sync::watch::Sender<bool>,
    heard: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Swapper {
    fn go(&mut self, ctx: &mut Context) {
        if self.step == 0 {
            self.step = 1;
            let r = ctx.submit(OrderRequest::market(AB, Side::Buy, OrderSize::Units(10.0)));
            self.heard.lock().unwrap().push(format!("buy {r:?}"));
        }
    }
}

impl kairos_strategies::Strategy for Swapper {
    fn on_quote(&mut self, ctx: &mut Context, _q: &kairos_strategies::Quote) {
        self.go(ctx);
    }
    fn on_trade(&mut self, ctx: &mut Context, _t: &kairos_strategies::Trade) {
        self.go(ctx);
    }
    fn on_fill(&mut self, ctx: &mut Context, f: &kairos_strategies::Fill) {
        self.heard.lock().unwrap().push(format!("fill {} at {}", f.quantity, f.price));
        if self.step == 1 {
            self.step = 2;
            let _ = ctx.submit(OrderRequest::market(AB, Side::Sell, OrderSize::Units(5.0)));
        } else {
            let _ = self.stop.send(true);
        }
    }
    fn on_order(&mut self, _ctx: &mut Context, e: &kairos_strategies::OrderEvent) {
        self.heard.lock().unwrap().push(format!("{:?}", e.update));
        if matches!(e.update, kairos_strategies::OrderUpdate::Rejected(_)) {
            let _ = self.stop.send(true);
        }
    }
}

/// `kairos run`'s agent with a `[[dex]]` feed and `[chain]`: the strategy's orders on the pool
/// become swaps from the wallet, booked in the journal; a restart rebuilds the position from
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn the_agent_trades_a_dex_instrument_on_chain() {
    use kairos_agent::ops::Metrics;
    use kairos_agent::paper::AgentFile;
    use std::sync::Arc;
    let Some(anvil) = Anvil::start(&[]) else { return };
    let (uni, pair, cw) = pool_and_wallet(&anvil).await;
    let dev = dev_provider(&anvil.url);
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("agent.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"strategy = "swapper"
cash = 10000
duration_s = 120
journal = "journal.sqlite"
[instruments.AB]
tick_size = 0.0001
lot_size = 0.0001
[[dex]]
symbol = "AB"
rpc_url = "{url}"
address = "{pair}"
kind = "v2"
base_is_token0 = {base0}
decimals0 = 18
decimals1 = 18
confirmations = 0
poll_ms = 100
[chain]
wallet = "{wallet}"
password_file = "{pw}"
routers = {{ AB = "{router}" }}
"#,
            url = anvil.url,
            base0 = uni.token_a < uni.token_b,
            wallet = cw.wallet(),
            pw = cw.pw(),
            router = uni.router,
        ),
    )
    .unwrap();
    let cfg = AgentFile::load(&cfg_path).unwrap();
    // Someone else trades the pool now and then: its events are the agent's market data.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut done = stop.clone();
    let url = anvil.url.clone();
    let (a, b, router) = (uni.token_a, uni.token_b, uni.router);
    let market = tokio::spawn(async move {
        let dev = dev_provider(&url);
        let dev_addr = crate::common::dev_address();
        let r = kairos_chain::abi::IUniswapV2Router02::new(router, &dev);
        while !*done.borrow() {
            let _ = r
                .swapExactTokensForTokens(
                    e18(1),
                    U256::ZERO,
                    vec![a, b],
                    dev_addr,
                    U256::from(u64::MAX),
                )
                .send()
                .await;
            let _ = tokio::time::timeout(Duration::from_millis(500), done.changed()).await;
        }
    });
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let strategy = Swapper { step: 0, stop: stop_tx, heard: heard.clone() };
    let report =
        kairos_agent::run::run_observed(&cfg, strategy, stop, None, Arc::new(Metrics::default()))
            .await
            .unwrap();
    market.abort();
    let heard = heard.lock().unwrap().clone();
    let fills: Vec<&String> = heard.iter().filter(|h| h.starts_with("fill")).collect();
    assert_eq!(fills.len(), 2, "{heard:?}");
    let me = cw.me;
    let held = whole(IERC20::new(uni.token_a, &dev).balanceOf(me).call().await.unwrap());
    assert!(held > 4.9 && held < 5.0, "{held}");
    let position = report.last.instruments[0].position;
    assert!((position - held).abs() < 1e-8, "the agent holds {position}, the wallet {held}");
    let j = Journal::open(dir.path().join("journal.sqlite")).unwrap();
    assert_eq!(j.fills(UNISWAP, "AB").unwrap().len(), 2);
    assert!(j.unsettled(UNISWAP).unwrap().is_empty());
    drop(j);

    // A restart reconciles with the chain and rebuilds the position from the journal.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let quiet = Swapper { step: 9, stop: stop_tx.clone(), heard: Default::default() };
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = stop_tx.send(true);
    });
    let again =
        kairos_agent::run::run_observed(&cfg, quiet, stop, None, Arc::new(Metrics::default()))
            .await
            .unwrap();
    stopper.await.unwrap();
    assert!(
        (again.last.instruments[0].position - held).abs() < 1e-8,
        "{:?}",
        again.last.instruments
    );
}
