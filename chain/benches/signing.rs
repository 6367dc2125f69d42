//! Signing and encoding costs of an on-chain order, and decision-to-broadcast latency against
//! a real anvil node:
//! - `sign_swap_tx`: build an EIP-1559 Uniswap V2 swap transaction, sign it, encode it
//!   (EIP-2718 bytes, as broadcast): k256 by default, libsecp256k1 with `--features
//!   secp256k1`;
//! - `abi_encode_swap`: the swap calldata alone;
//! - `decision_to_broadcast`: `Executor::submit` against anvil on 127.0.0.1: simulation
//!   (`eth_call` + gas estimate), guardrails, signing, journal (SQLite, fsync'd), broadcast.
//!   Skipped when anvil is not installed (`scripts/chain/setup.sh`).

use std::hint::black_box;
use std::time::Duration;

use alloy::primitives::{Address, U256, address};
use alloy::signers::local::PrivateKeySigner;
use criterion::{Criterion, criterion_group, criterion_main};
use kairos_chain::dex;
use kairos_chain::tx::{self, TxFields};

const ROUTER: Address = address!("0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D");
const USDC: Address = address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const WETH: Address = address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");

fn swap_fields(nonce: u64, me: Address) -> TxFields {
    TxFields {
        chain_id: 1,
        nonce,
        to: ROUTER,
        value: U256::ZERO,
        gas_limit: 200_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        input: dex::v2_swap_exact_tokens(
            U256::from(1_000_000_000u64),
            U256::from(300_000_000_000_000_000u64),
            vec![USDC, WETH],
            me,
            1_900_000_000,
        ),
    }
}

fn signing(c: &mut Criterion) {
    let signer: PrivateKeySigner =
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318".parse().unwrap();
    let me = signer.address();
    let backend = tx::SIGNING_BACKEND;
    let mut nonce = 0u64;
    c.bench_function(&format!("sign_swap_tx/{backend}"), |b| {
        b.iter(|| {
            nonce += 1;
            let t = swap_fields(nonce, me).build().unwrap();
            black_box(tx::sign(&signer, t).unwrap().raw)
        })
    });
    // The parts: the signing hash (RLP + keccak) and the ECDSA signature of a hash.
    let unsigned = swap_fields(1, me).build().unwrap();
    c.bench_function("sign_swap_tx/signature_hash", |b| {
        b.iter(|| {
            black_box(alloy::consensus::SignableTransaction::signature_hash(black_box(&unsigned)))
        })
    });
    let hash = alloy::consensus::SignableTransaction::signature_hash(&unsigned);
    c.bench_function("ecdsa_sign_hash/k256", |b| {
        b.iter(|| {
            black_box(
                alloy::signers::SignerSync::sign_hash_sync(&signer, black_box(&hash)).unwrap(),
            )
        })
    });
    c.bench_function("abi_encode_swap", |b| {
        b.iter(|| {
            black_box(dex::v2_swap_exact_tokens(
                black_box(U256::from(1_000_000_000u64)),
                U256::from(3u64),
                vec![USDC, WETH],
                me,
                1_900_000_000,
            ))
        })
    });
}

#[path = "../tests/integration/common/mod.rs"]
mod common;

fn decision_to_broadcast(c: &mut Criterion) {
    use kairos_chain::executor::{Executor, ExecutorConfig, Request};
    use kairos_chain::guard::{Guard, GuardedSigner, Policy};
    use kairos_chain::journal::Journal;
    if !common::tools().join("@foundry-rs/anvil-linux-amd64/bin/anvil").exists() {
        eprintln!("skipping decision_to_broadcast: anvil not installed (scripts/chain/setup.sh)");
        return;
    }
    let Some(anvil) = common::Anvil::start(&[]) else { return };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let friend = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    let tmp = tempfile::tempdir().unwrap();
    let exec = rt.block_on(async {
        let signer: PrivateKeySigner = common::DEV_KEY.parse().unwrap();
        let policy: Policy =
            toml::from_str(&format!("allowed_recipients = [\"{friend}\"]")).unwrap();
        let cfg = ExecutorConfig { chain_id: 31337, ..ExecutorConfig::default() };
        let journal = Journal::open(tmp.path().join("journal.sqlite")).unwrap();
        Executor::new(
            &anvil.url,
            None,
            GuardedSigner::new(signer, Guard::new(policy).unwrap()),
            journal,
            cfg,
        )
        .await
        .unwrap()
    });
    let mut g = c.benchmark_group("decision_to_broadcast");
    g.sample_size(50).measurement_time(Duration::from_secs(10));
    g.bench_function("anvil_transfer", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request {
                    to: friend,
                    value: U256::from(1),
                    fees: Some((10_000_000_000, 1_000_000_000)),
                    ..Request::default()
                };
                black_box(exec.submit(req).await.unwrap().nonce)
            })
        })
    });
    g.finish();
}

criterion_group!(benches, signing, decision_to_broadcast);
criterion_main!(benches);
