//! The lifecycle under faults, against a real anvil node:
//! - 50 concurrent sends from one address end with nonces 0..50, no gap, no duplicate;
//! - the same through a proxy answering "nonce too low", "replacement transaction
//!   underpriced", "already known", HTTP 429 and dropping responses after forwarding: still
//!   exactly 50 transactions on chain, none twice;
//! - a transaction stuck in a node that does not mine is bumped (both fees up at least 10%)
//!   until the fee cap, then confirmed once a block is mined, and the journal tells the story;
//! - after a crash between signing and broadcasting, a restarted executor sends the journalled
//!   bytes, not a second order; after a crash past the broadcast (a journal whose broadcast row
//!   has no nonce, as earlier versions wrote it), it starts and tracks the transaction to its
//!   end;
//! - a proxy that forwards and then answers "nonce too low", or forwards, drops the answer and
//!   hides the receipt for a while: 50 concurrent sends, each signed once, none twice on chain.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::common::proxy::{self, Fault};
use crate::common::{Anvil, dev_provider, e18, mined_receipt};
use alloy::primitives::{Address, U256, address};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use kairos_chain::executor::{Executor, ExecutorConfig, Request};
use kairos_chain::guard::{Guard, GuardedSigner, Policy};
use kairos_chain::journal::{Entry, Journal, TxState};

const FRIEND: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

fn config() -> ExecutorConfig {
    ExecutorConfig {
        chain_id: 31337,
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(60),
        ..ExecutorConfig::default()
    }
}

fn policy() -> Policy {
    toml::from_str(&format!(
        "chain_id = 31337\nallowed_recipients = [\"{FRIEND}\"]\nnative = {{ max_per_tx = \"0.01\" }}"
    ))
    .unwrap()
}

async fn funded(url: &str) -> PrivateKeySigner {
    let s = PrivateKeySigner::random();
    crate::common::fund(url, s.address(), e18(10), None).await;
    s
}

async fn fifty_concurrent(exec: Arc<Executor>) -> Vec<(u64, alloy::primitives::B256)> {
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let exec = exec.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request { to: FRIEND, value: U256::from(1_000 + i), ..Request::default() };
            let out = exec.send(req).await.expect("send");
            let tx = exec.provider().get_transaction_by_hash(out.hash).await.unwrap().unwrap();
            (alloy::consensus::Transaction::nonce(&tx), out.hash)
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got
}

/// A fresh key funded with 1 ether on a node that does not mine: the block is mined by hand.
async fn funded_by_hand(dev: &impl Provider) -> PrivateKeySigner {
    let signer = PrivateKeySigner::random();
    let pending = dev
        .send_transaction(TransactionRequest::default().to(signer.address()).value(e18(1)))
        .await
        .unwrap();
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    pending.get_receipt().await.unwrap();
    signer
}

/// The day's spend is the 50 orders' value, once: nothing signed twice was booked twice, and
/// nothing was left out.
fn assert_booked_once(exec: &Executor) {
    let day = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64
        / 86_400;
    let sent: u64 = (0..50).map(|i| 1_000 + i).sum();
    assert_eq!(exec.journal().spends(day).unwrap(), vec![(Address::ZERO, U256::from(sent))]);
}

/// Nonce 0 of `signer`: 42 wei to FRIEND, signed outside the executor (what a crashed
/// process left in its journal).
fn first_transfer(signer: &PrivateKeySigner) -> kairos_chain::tx::SignedTx {
    let tx = kairos_chain::tx::TxFields {
        chain_id: 31337,
        nonce: 0,
        to: FRIEND,
        value: U256::from(42),
        gas_limit: 21_000,
        max_fee_per_gas: 5_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        input: Default::default(),
    };
    kairos_chain::tx::sign(signer, tx.build().unwrap()).unwrap()
}

/// A funded key's executor on anvil, behind a proxy that plays `script`.
async fn through_proxy(
    script: Vec<Fault>,
    cfg: ExecutorConfig,
) -> Option<(Anvil, proxy::Proxy, Arc<Executor>)> {
    let anvil = Anvil::start(&[])?;
    let signer = funded(&anvil.url).await;
    let proxy = proxy::start(anvil.url.clone(), script).await;
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let journal = Journal::open(":memory:").unwrap();
    let exec = Executor::new(&proxy.url, None, wallet, journal, cfg).await.unwrap();
    Some((anvil, proxy, Arc::new(exec)))
}

fn assert_no_gap_no_duplicate(got: &[(u64, alloy::primitives::B256)]) {
    let nonces: BTreeSet<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(nonces, (0..50).collect::<BTreeSet<_>>(), "nonces 0..50, each once");
    let hashes: BTreeSet<_> = got.iter().map(|g| g.1).collect();
    assert_eq!(hashes.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn fifty_concurrent_sends_leave_no_gap_or_duplicate() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let signer = funded(&anvil.url).await;
    let me = signer.address();
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec = Arc::new(
        Executor::new(&anvil.url, None, wallet, Journal::open(":memory:").unwrap(), config())
            .await
            .unwrap(),
    );
    let got = fifty_concurrent(exec.clone()).await;
    assert_no_gap_no_duplicate(&got);
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn faulty_rpc_still_gives_exactly_one_transaction_per_order() {
    let script = vec![
        Fault::Pass,
        Fault::NonceTooLow,
        Fault::Pass,
        Fault::Underpriced,
        Fault::AlreadyKnown,
        Fault::TooManyRequests,
        Fault::Pass,
        Fault::DropAfterForward,
    ];
    let Some((_anvil, proxy, exec)) = through_proxy(script, config()).await else { return };
    let me = exec.address();
    let got = fifty_concurrent(exec.clone()).await;
    assert_no_gap_no_duplicate(&got);
    // Exactly 50 transactions from this address exist on chain: no order was sent twice.
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 50);
    let head = exec.provider().get_block_number().await.unwrap();
    let mut mined = 0;
    for n in 0..=head {
        let b = exec.provider().get_block_by_number(n.into()).full().await.unwrap().unwrap();
        mined += b.transactions.txns().filter(|t| t.inner.signer() == me).count();
    }
    assert_eq!(mined, 50);
    assert!(
        proxy.faults_injected.load(std::sync::atomic::Ordering::SeqCst) >= 30,
        "the script ran"
    );
    // Re-signed retries are not new spends: the day's total is the 50 orders' value, once.
    assert_booked_once(&exec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_stuck_transaction_is_bumped_within_the_cap_then_confirmed() {
    let Some(anvil) = Anvil::start(&["--no-mining"]) else { return };
    let dev = dev_provider(&anvil.url);
    let signer = funded_by_hand(&dev).await;
    let me = signer.address();

    let gwei = 1_000_000_000u128;
    let cfg = ExecutorConfig {
        stuck_after: Duration::from_millis(200),
        bump_percent: 12,
        max_bumps: 5,
        max_fee_cap: 13 * gwei, // 10 -> 11.2 -> 12.544 -> (14.05 is over the cap)
        ..config()
    };
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let exec = Arc::new(
        Executor::new(
            &anvil.url,
            None,
            wallet,
            Journal::open(tmp.path().join("j.sqlite")).unwrap(),
            cfg,
        )
        .await
        .unwrap(),
    );
    let req = Request {
        to: FRIEND,
        value: U256::from(7),
        fees: Some((10 * gwei, 2 * gwei)),
        gas_limit: Some(21_000),
        ..Request::default()
    };
    let sub = exec.submit(req).await.unwrap();
    let waiter = tokio::spawn({
        let exec = exec.clone();
        async move { exec.wait(sub).await }
    });
    // Let it get stuck and bumped until the cap stops it, then mine.
    loop {
        let signed =
            exec.journal().events(me).unwrap().iter().filter(|e| e.state == "signed").count();
        if signed >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // one more stuck period: no 4th bump
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    let out = waiter.await.unwrap().unwrap();
    assert_eq!(out.bumps, 2, "two bumps, the third would pass the cap");
    let tx = exec.provider().get_transaction_by_hash(out.hash).await.unwrap().unwrap();
    let max_fee = alloy::consensus::Transaction::max_fee_per_gas(&tx);
    let prio = alloy::consensus::Transaction::max_priority_fee_per_gas(&tx).unwrap();
    assert_eq!(max_fee, 12_544_000_000, "10 gwei raised 12% twice");
    assert_eq!(prio, 2_508_800_000, "the priority fee rose with it");
    assert!(max_fee <= 13 * gwei);
    let events = exec.journal().events(me).unwrap();
    assert_eq!(
        events.iter().filter(|e| e.state == TxState::Replaced.as_str()).count(),
        2,
        "{events:#?}"
    );
    assert_eq!(events.iter().filter(|e| e.state == "confirmed").count(), 1);
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_restart_resends_the_journalled_bytes_not_a_new_order() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let signer = funded(&anvil.url).await;
    let me = signer.address();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("journal.sqlite");
    // The crash: a transaction signed and journalled, never broadcast.
    let signed = first_transfer(&signer);
    Journal::open(&path)
        .unwrap()
        .record(Entry {
            order: None,
            sender: me,
            nonce: Some(0),
            hash: Some(signed.hash),
            state: TxState::Signed,
            detail: "before the crash",
            raw: Some(&signed.raw),
        })
        .unwrap();
    // The restart.
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec = Executor::new(&anvil.url, None, wallet, Journal::open(&path).unwrap(), config())
        .await
        .unwrap();
    let receipt = mined_receipt(exec.provider(), signed.hash).await;
    assert!(receipt.is_some_and(|r| r.status()), "the journalled bytes were sent");
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 1);
    // The next order takes the next nonce.
    let out = exec
        .send(Request { to: FRIEND, value: U256::from(1), ..Request::default() })
        .await
        .unwrap();
    let tx = exec.provider().get_transaction_by_hash(out.hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&tx), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn broadcasts_go_to_the_private_relay_when_one_is_set() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let signer = funded(&anvil.url).await;
    // The relay here forwards to the same node; what matters is who received the broadcast.
    let relay = proxy::start(anvil.url.clone(), vec![Fault::Pass]).await;
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec = Executor::new(
        &anvil.url,
        Some(&relay.url),
        wallet,
        Journal::open(":memory:").unwrap(),
        config(),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        exec.send(Request { to: FRIEND, value: U256::from(5), ..Request::default() })
            .await
            .unwrap();
    }
    assert_eq!(
        relay.sends.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "every broadcast went to the relay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_reorg_before_finality_is_survived_without_a_second_order() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let signer = funded(&anvil.url).await;
    let me = signer.address();
    let dev = dev_provider(&anvil.url);
    let cfg = ExecutorConfig { confirmations: 3, ..config() };
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec = Arc::new(
        Executor::new(&anvil.url, None, wallet, Journal::open(":memory:").unwrap(), cfg)
            .await
            .unwrap(),
    );
    let sub = exec
        .submit(Request { to: FRIEND, value: U256::from(9), ..Request::default() })
        .await
        .unwrap();
    let hash = sub.hashes()[0];
    let first = mined_receipt(exec.provider(), hash).await.expect("mined");
    let first_block = first.block_number.unwrap();
    let waiter = tokio::spawn({
        let exec = exec.clone();
        async move { exec.wait(sub).await }
    });
    // Replace the inclusion block with an empty one: the transaction is no longer on chain.
    let _: serde_json::Value = dev
        .raw_request("anvil_reorg".into(), (1u64, Vec::<serde_json::Value>::new()))
        .await
        .unwrap();
    // Keep the chain growing until the executor is satisfied.
    while !waiter.is_finished() {
        let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = waiter.await.unwrap().unwrap();
    assert_eq!(out.hash, hash, "the same signed bytes, not a new order");
    let receipt = exec.provider().get_transaction_receipt(hash).await.unwrap().unwrap();
    let block = exec
        .provider()
        .get_block_by_number(receipt.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(block.header.hash), receipt.block_hash, "final in a canonical block");
    assert_ne!(receipt.block_hash, first.block_hash, "not in the block that was reorganised away");
    assert!(receipt.block_number.unwrap() >= first_block);
    assert_eq!(
        exec.provider().get_transaction_count(me).await.unwrap(),
        1,
        "one transaction, once"
    );
    let events = exec.journal().events(me).unwrap();
    assert_eq!(events.iter().filter(|e| e.state == "confirmed").count(), 1, "{events:#?}");
}

/// Before this change the executor looked for the receipt once after a "nonce too low" and
/// then signed the order again at a new nonce, and declared an order dropped when its nonce
/// was used and its receipt lagged four polls: with these faults, orders executed twice or
/// were reported failed after they had executed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn forwarded_nonce_too_low_and_delayed_receipts_never_sign_an_order_twice() {
    let script = vec![
        Fault::Pass,
        Fault::ForwardThenNonceTooLow,
        Fault::DropAndDelayReceipt,
        Fault::Pass,
        Fault::ForwardThenNonceTooLow,
        Fault::DropAndDelayReceipt,
    ];
    // Fewer orphan polls than the receipt stays hidden: only the transaction lookup can tell
    // that the nonce was used by our own transaction.
    let cfg = ExecutorConfig { orphan_polls: 4, ..config() };
    let Some((_anvil, proxy, exec)) = through_proxy(script, cfg).await else { return };
    let me = exec.address();
    let got = fifty_concurrent(exec.clone()).await;
    assert_no_gap_no_duplicate(&got);
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 50);
    assert!(proxy.receipts_hidden() > 0, "receipts were delayed");
    let events = exec.journal().events(me).unwrap();
    let signed = events.iter().filter(|e| e.state == "signed").count();
    assert_eq!(signed, 50, "each order signed once");
    assert_eq!(events.iter().filter(|e| e.state == "confirmed").count(), 50);
    assert_booked_once(&exec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_restart_after_the_broadcast_tracks_the_transaction_to_its_end() {
    let Some(anvil) = Anvil::start(&["--no-mining"]) else { return };
    let dev = dev_provider(&anvil.url);
    let signer = funded_by_hand(&dev).await;
    let me = signer.address();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("journal.sqlite");
    // The crash: signed, journalled, broadcast (the node holds it), and the broadcast row
    // written as earlier versions wrote it, without the nonce.
    let signed = first_transfer(&signer);
    {
        let j = Journal::open(&path).unwrap();
        let e = |state, nonce, raw| Entry {
            order: None,
            sender: me,
            nonce,
            hash: Some(signed.hash),
            state,
            detail: "before the crash",
            raw,
        };
        j.record(e(TxState::Signed, Some(0), Some(&signed.raw[..]))).unwrap();
        j.record(e(TxState::Broadcast, None, None)).unwrap();
    }
    let _ = dev.send_raw_transaction(&signed.raw).await.unwrap();
    // The restart.
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec = Executor::new(&anvil.url, None, wallet, Journal::open(&path).unwrap(), config())
        .await
        .expect("a journal with a broadcast, unconfirmed transaction opens");
    let resumable = exec.resumable().unwrap();
    assert_eq!(resumable.len(), 1);
    assert_eq!(resumable[0].hashes(), vec![signed.hash]);
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    let out = exec.wait(resumable.into_iter().next().unwrap()).await.unwrap();
    assert_eq!(out.hash, signed.hash);
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 1);
    assert!(exec.resumable().unwrap().is_empty(), "settled");
    let events = exec.journal().events(me).unwrap();
    assert_eq!(events.last().unwrap().state, "confirmed", "{events:#?}");
    assert_eq!(events.iter().filter(|e| e.state == "signed").count(), 1, "signed once");
}

/// Before this change, a fee bump the guard refused (the lifecycle's cap above the guard's)
/// ended the wait with an error while the transaction was live, and so did the first failed
/// read: both invited a second order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_refused_bump_and_failing_reads_do_not_end_tracking() {
    let Some(anvil) = Anvil::start(&["--no-mining"]) else { return };
    let dev = dev_provider(&anvil.url);
    let signer = funded_by_hand(&dev).await;
    let me = signer.address();
    let proxy = proxy::start(anvil.url.clone(), vec![Fault::Pass]).await;
    let gwei = 1_000_000_000u128;
    let mut p = policy();
    p.max_fee_per_gas_gwei = Some(11.0); // a 12% bump of 10 gwei is 11.2: over the guard's cap
    let cfg = ExecutorConfig {
        stuck_after: Duration::from_millis(100),
        max_fee_cap: 500 * gwei,
        max_backoff: Duration::from_millis(100),
        ..config()
    };
    let wallet = GuardedSigner::new(signer, Guard::new(p).unwrap());
    let exec = Arc::new(
        Executor::new(&proxy.url, None, wallet, Journal::open(":memory:").unwrap(), cfg)
            .await
            .unwrap(),
    );
    let req = Request {
        to: FRIEND,
        value: U256::from(3),
        fees: Some((10 * gwei, gwei)),
        gas_limit: Some(21_000),
        ..Request::default()
    };
    let sub = exec.submit(req).await.unwrap();
    let waiter = tokio::spawn({
        let exec = exec.clone();
        async move { exec.wait(sub).await }
    });
    // Stuck for several bump periods while the provider fails every read for a while.
    proxy.fail_next_reads(12);
    while proxy.reads_to_fail() > 0 && !waiter.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiter.is_finished(), "tracking goes on through failed reads and a refused bump");
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    let out = waiter.await.unwrap().expect("confirmed");
    assert_eq!(out.bumps, 0, "no bump over the guard's cap was signed");
    let events = exec.journal().events(me).unwrap();
    assert_eq!(events.iter().filter(|e| e.state == "signed").count(), 1, "{events:#?}");
    assert_eq!(events.last().unwrap().state, "confirmed");
}

/// Another transaction of the same key takes the nonce (another process, a wallet app) and is
/// mined: the chain shows that transaction in the block, so the order is reported superseded,
/// not executed, and the next order takes the next nonce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_nonce_used_by_another_transaction_supersedes_the_order() {
    let Some(anvil) = Anvil::start(&["--no-mining"]) else { return };
    let dev = dev_provider(&anvil.url);
    let signer = funded_by_hand(&dev).await;
    let me = signer.address();
    let other = signer.clone();
    let wallet = GuardedSigner::new(signer, Guard::new(policy()).unwrap());
    let exec =
        Executor::new(&anvil.url, None, wallet, Journal::open(":memory:").unwrap(), config())
            .await
            .unwrap();
    let gwei = 1_000_000_000u128;
    let req = |value: u64| Request {
        to: FRIEND,
        value: U256::from(value),
        fees: Some((10 * gwei, gwei)),
        gas_limit: Some(21_000),
        ..Request::default()
    };
    let sub = exec.submit(req(11)).await.unwrap();
    // The same nonce, paying more, sent around the executor: the node replaces ours with it.
    let theirs = kairos_chain::tx::TxFields {
        chain_id: 31337,
        nonce: 0,
        to: FRIEND,
        value: U256::from(99),
        gas_limit: 21_000,
        max_fee_per_gas: 30 * gwei,
        max_priority_fee_per_gas: 3 * gwei,
        input: Default::default(),
    };
    let theirs = kairos_chain::tx::sign(&other, theirs.build().unwrap()).unwrap();
    let _ = dev.send_raw_transaction(&theirs.raw).await.unwrap();
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    match exec.wait(sub).await {
        Err(kairos_chain::Error::Superseded { nonce: 0, .. }) => {}
        other => panic!("expected superseded, got {other:?}"),
    }
    let events = exec.journal().events(me).unwrap();
    let dropped = events.iter().find(|e| e.state == "dropped").expect("journalled");
    assert!(dropped.detail.contains(&theirs.hash.to_string()), "{dropped:?}");
    // The next order takes the next nonce.
    let sub = exec.submit(req(12)).await.unwrap();
    assert_eq!(sub.nonce, 1);
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    exec.wait(sub).await.unwrap();
    assert_eq!(exec.provider().get_transaction_count(me).await.unwrap(), 2);
}
