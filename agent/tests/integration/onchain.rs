//! `kairos swap` and `kairos tx send` end to end: the real binary, a real anvil node with
//! Uniswap V2 deployed by the test, a key file made by `kairos keys import`, a wallet file.

use std::process::{Command, Output};

use crate::common::{Anvil, dev_provider, e18, uniswap_v2, uniswap_v3};
use alloy::primitives::{Address, U256, address};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use kairos_chain::abi::IERC20;

const FRIEND: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const STRANGER: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");

fn kairos(args: &[&str]) -> Output {
    // Trace level everywhere (alloy's and reqwest's own logs included): the test below checks
    // that neither the key nor the password shows up in any of it.
    Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("KAIROS_KEYSTORE_PASSWORD")
        .env_remove("KAIROS_WALLET")
        .env("RUST_LOG", "trace")
        .output()
        .expect("run kairos")
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A key imported by `kairos keys import` into a fresh folder, funded with 2 ether and 1,000 of
/// `token`, and a wallet file allowing `router`, `tokens` and `FRIEND`.
pub(crate) struct CliWallet {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) me: Address,
    secret_hex: String,
    transcript: String,
}

impl CliWallet {
    pub(crate) fn wallet(&self) -> String {
        self.dir.path().join("wallet.toml").display().to_string()
    }
    pub(crate) fn pw(&self) -> String {
        self.dir.path().join("pw").display().to_string()
    }
}

pub(crate) async fn cli_wallet(
    url: &str,
    router: Address,
    tokens: [Address; 2],
    fund: Address,
) -> CliWallet {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let signer = PrivateKeySigner::random();
    let me = signer.address();
    let secret_hex = signer.to_bytes().to_string();
    std::fs::write(dir.join("key.hex"), &secret_hex).unwrap();
    std::fs::write(dir.join("pw"), "swap-test-password\n").unwrap();
    let keys = dir.join("keys");
    let o = kairos(&[
        "keys",
        "import",
        "--keystore-dir",
        keys.to_str().unwrap(),
        "--private-key-file",
        dir.join("key.hex").to_str().unwrap(),
        "--password-file",
        dir.join("pw").to_str().unwrap(),
        "--scrypt-log-n",
        "12",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    std::fs::remove_file(dir.join("key.hex")).unwrap();
    crate::common::fund(url, me, e18(2), Some((fund, e18(1_000)))).await;
    std::fs::write(
        dir.join("wallet.toml"),
        format!(
            r#"
            rpc_url = "{url}"
            chain_id = 31337
            keystore = "{me}"
            keystore_dir = "{keys}"
            journal = "journal.sqlite"
            [lifecycle]
            poll_ms = 20
            timeout_secs = 30
            [guardrails]
            max_slippage_bps = 100
            allowed_contracts = ["{router}"]
            allowed_recipients = ["{FRIEND}"]
            native = {{ max_per_tx = "0.1" }}
            [[guardrails.tokens]]
            address = "{a}"
            symbol = "A"
            decimals = 18
            max_per_tx = "500"
            [[guardrails.tokens]]
            address = "{b}"
            symbol = "B"
            decimals = 18
            "#,
            keys = keys.display(),
            a = tokens[0],
            b = tokens[1]
        ),
    )
    .unwrap();
    CliWallet { transcript: out(&o), dir: tmp, me, secret_hex }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn swap_and_send_through_the_cli() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let mut cw = cli_wallet(&anvil.url, uni.router, [uni.token_a, uni.token_b], uni.token_a).await;
    let me = cw.me;
    let (wallet, pw) = (cw.wallet(), cw.pw());
    let (w, pw) = (wallet.as_str(), pw.as_str());
    let mut transcript = std::mem::take(&mut cw.transcript);
    let secret_hex = cw.secret_hex.clone();
    let dir = cw.dir.path();
    let (router, factory) = (uni.router.to_string(), uni.factory.to_string());
    let (a, b) = (uni.token_a.to_string(), uni.token_b.to_string());

    let o = kairos(&[
        "swap",
        "--wallet",
        w,
        "--password-file",
        pw,
        "--router",
        &router,
        "--factory",
        &factory,
        "--sell",
        &a,
        "--buy",
        &b,
        "--amount",
        "100",
        "--slippage-bps",
        "50",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    transcript += &out(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let quote = kairos_chain::dex::v2_amount_out(e18(100), e18(1_000_000), e18(2_000_000)).unwrap();
    let b_balance = IERC20::new(uni.token_b, &dev).balanceOf(me).call().await.unwrap();
    assert_eq!(b_balance, quote);
    assert_eq!(report["received"].as_str().unwrap(), report["quote"].as_str().unwrap());
    assert_eq!(IERC20::new(uni.token_a, &dev).balanceOf(me).call().await.unwrap(), e18(900));
    // The approval was for exactly the amount, and the swap used all of it.
    assert_eq!(
        IERC20::new(uni.token_a, &dev).allowance(me, uni.router).call().await.unwrap(),
        U256::ZERO
    );

    // Over the token's per-transaction cap: refused, nothing sent.
    let o = kairos(&[
        "swap",
        "--wallet",
        w,
        "--password-file",
        pw,
        "--router",
        &router,
        "--factory",
        &factory,
        "--sell",
        &a,
        "--buy",
        &b,
        "--amount",
        "600",
    ]);
    assert!(!o.status.success());
    // The exact approval it would need is itself over the cap, so that is what is refused.
    assert!(out(&o).contains("refused by guardrail `unlimited_approvals`"), "{}", out(&o));

    // A transfer to an allowed recipient, and one to a stranger.
    let before = dev.get_balance(FRIEND).await.unwrap();
    let o = kairos(&[
        "tx",
        "send",
        "--wallet",
        w,
        "--password-file",
        pw,
        "--to",
        &FRIEND.to_string(),
        "--value",
        "12345",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(dev.get_balance(FRIEND).await.unwrap(), before + U256::from(12345));
    let o = kairos(&[
        "tx",
        "send",
        "--wallet",
        w,
        "--password-file",
        pw,
        "--to",
        &STRANGER.to_string(),
        "--value",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(out(&o).contains("refused by guardrail `allowed_recipients`"), "{}", out(&o));
    transcript += &out(&o);
    assert!(transcript.contains("TRACE"), "trace logging was on");
    for secret in [secret_hex.as_str(), secret_hex.trim_start_matches("0x"), "swap-test-password"] {
        assert!(
            !transcript.to_lowercase().contains(&secret.to_lowercase()),
            "a secret reached the logs"
        );
    }
    // The journal sits next to the wallet file and holds the story.
    assert!(dir.join("journal.sqlite").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn swap_on_uniswap_v3_through_the_cli() {
    let Some(anvil) = Anvil::start(&["--disable-code-size-limit"]) else { return };
    let uni = uniswap_v3(&anvil.url, e18(1_000_000)).await;
    let cw = cli_wallet(&anvil.url, uni.router, [uni.token0, uni.token1], uni.token0).await;
    let dev = dev_provider(&anvil.url);
    let quote =
        kairos_chain::dex::v3_quote(&dev, uni.quoter, uni.token0, uni.token1, 3000, e18(50))
            .await
            .unwrap();
    let (wallet, pw) = (cw.wallet(), cw.pw());
    let (router, quoter) = (uni.router.to_string(), uni.quoter.to_string());
    let (t0, t1) = (uni.token0.to_string(), uni.token1.to_string());
    let o = kairos(&[
        "swap",
        "--wallet",
        &wallet,
        "--password-file",
        &pw,
        "--router",
        &router,
        "--v3-fee",
        "3000",
        "--quoter",
        &quoter,
        "--sell",
        &t0,
        "--buy",
        &t1,
        "--amount",
        "50",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(IERC20::new(uni.token1, &dev).balanceOf(cw.me).call().await.unwrap(), quote);
    // Neither venue named: a clear error before anything happens.
    let o = kairos(&[
        "swap",
        "--wallet",
        &wallet,
        "--password-file",
        &pw,
        "--router",
        &router,
        "--sell",
        &t0,
        "--buy",
        &t1,
        "--amount",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(out(&o).contains("--factory"), "{}", out(&o));
}

#[test]
fn the_example_wallet_file_is_valid() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wallet.toml");
    let w = kairos_agent::onchain::WalletFile::load(&p).unwrap();
    assert_eq!(w.chain_id, 31337);
    assert_eq!(w.guardrails.tokens.len(), 2);
    kairos_chain::guard::Guard::new(w.guardrails).unwrap();
}

/// Runs `kairos` until the test hook halts it at `point`, then kills it with SIGKILL.
/// Returns what it printed.
fn killed_at(args: &[&str], point: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(args)
        .env_remove("KAIROS_KEYSTORE_PASSWORD")
        .env_remove("KAIROS_WALLET")
        .env("RUST_LOG", "info")
        .env("KAIROS_TEST_HALT_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kairos");
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains("kairos-test-hook: halted at") {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return seen;
        }
    }
    panic!("kairos ended before {point}: {:?}\n{seen}", child.wait().unwrap());
}

/// The journal's story of the newest order: (signed versions, last state).
fn last_order(journal: &std::path::Path, me: Address) -> (usize, String) {
    let j = kairos_chain::journal::Journal::open(journal).unwrap();
    let events = j.events(me).unwrap();
    let order = events.iter().filter_map(|e| e.order).max().expect("an order");
    let mine: Vec<_> = events.iter().filter(|e| e.order == Some(order)).collect();
    let signed = mine.iter().filter(|e| e.state == "signed").count();
    (signed, mine.last().unwrap().state.clone())
}

/// `kairos tx send` and `kairos swap` killed with SIGKILL after the signed bytes are
/// journalled, after the broadcast, and after the receipt: a new order is refused while the
/// killed one is unsettled, and `kairos tx status --pending` ends with exactly one transaction
/// on chain per order, the journal's last state `confirmed`, nothing signed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn a_send_or_swap_killed_at_any_step_ends_with_one_transaction() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000_000), e18(2_000_000)).await;
    let dev = dev_provider(&anvil.url);
    let cw = cli_wallet(&anvil.url, uni.router, [uni.token_a, uni.token_b], uni.token_a).await;
    let me = cw.me;
    let (wallet, pw) = (cw.wallet(), cw.pw());
    let (w, pw) = (wallet.as_str(), pw.as_str());
    let journal = cw.dir.path().join("journal.sqlite");
    let (router, factory) = (uni.router.to_string(), uni.factory.to_string());
    let (a, b) = (uni.token_a.to_string(), uni.token_b.to_string());
    let friend = FRIEND.to_string();
    let send =
        ["tx", "send", "--wallet", w, "--password-file", pw, "--to", &friend, "--value", "7"];
    let swap = [
        "swap",
        "--wallet",
        w,
        "--password-file",
        pw,
        "--router",
        &router,
        "--factory",
        &factory,
        "--sell",
        &a,
        "--buy",
        &b,
        "--amount",
        "10",
    ];
    let status = ["tx", "status", "--wallet", w, "--password-file", pw, "--pending"];
    let mut nonce = 0u64;
    let mut b_before = U256::ZERO;
    for (cmd, txs, points) in [
        (&send[..], 1u64, ["signed", "broadcast", "receipt"]),
        // The swap's approval is the first transaction, the swap the second.
        (&swap[..], 2, ["signed:2", "broadcast:2", "receipt:2"]),
    ] {
        for point in points {
            let seen = killed_at(cmd, point);
            if point.starts_with("broadcast") || point.starts_with("receipt") {
                assert!(seen.contains("broadcast 0x") && seen.contains("journal order"), "{seen}");
            }
            // The killed order is unsettled: a new one is refused, naming it.
            let o = kairos(cmd);
            assert_eq!(o.status.code(), Some(4), "{}", out(&o));
            assert!(
                out(&o).contains("is unsettled") && out(&o).contains("--pending"),
                "{}",
                out(&o)
            );
            // Tracking needs the key: without a password, refused, and still unsettled.
            let o = kairos(&["tx", "status", "--wallet", w, "--pending"]);
            assert_eq!(o.status.code(), Some(1), "{}", out(&o));
            assert!(out(&o).contains("no password"), "{}", out(&o));
            // Tracked to its end.
            let o = kairos(&status);
            assert!(o.status.success(), "{point}: {}", out(&o));
            let line: serde_json::Value =
                serde_json::from_slice(o.stdout.split(|c| *c == b'\n').next().unwrap()).unwrap();
            assert_eq!(line["state"], "confirmed", "{point}: {}", out(&o));
            nonce += txs;
            assert_eq!(
                dev.get_transaction_count(me).await.unwrap(),
                nonce,
                "{point}: one transaction per order"
            );
            let (signed, last) = last_order(&journal, me);
            assert_eq!((signed, last.as_str()), (1, "confirmed"), "{point}");
            // Nothing left to track (which needs no password); the next order goes through.
            let o = kairos(&["tx", "status", "--wallet", w, "--pending"]);
            assert!(o.status.success() && out(&o).contains("no unsettled"), "{}", out(&o));
        }
        if txs == 2 {
            let b_now = IERC20::new(uni.token_b, &dev).balanceOf(me).call().await.unwrap();
            assert!(b_now > b_before);
            b_before = b_now;
        }
    }
    // Three swaps of 10 A each, no more.
    assert_eq!(IERC20::new(uni.token_a, &dev).balanceOf(me).call().await.unwrap(), e18(970));
    // And with nothing pending, a command exits 0 again; its transaction can be looked up.
    let o = kairos(&send);
    assert!(o.status.success(), "{}", out(&o));
    let sent: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hash = sent["hash"].as_str().unwrap();
    // With the password, and without it (a settled transaction needs no key).
    for args in [&["--password-file", pw, hash][..], &[hash]] {
        let o = kairos(&[&["tx", "status", "--wallet", w][..], args].concat());
        assert!(o.status.success(), "{}", out(&o));
        let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (st["state"].as_str(), st["on_chain"].as_str()),
            (Some("confirmed"), Some("success"))
        );
        assert_eq!(st["order"], sent["order"]);
    }
    // A hash the journal does not hold, and one that is not a hash.
    let o = kairos(&[
        "tx",
        "status",
        "--wallet",
        w,
        "--password-file",
        pw,
        &format!("0x{}", "ab".repeat(32)),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("is not in the journal"), "{}", out(&o));
    let o = kairos(&["tx", "status", "--wallet", w, "--password-file", pw, "0x12"]);
    assert!(out(&o).contains("is not a transaction hash"), "{}", out(&o));
    // The exit codes are in --help.
    let o = kairos(&["tx", "send", "--help"]);
    assert!(out(&o).contains("OUTCOME NOT KNOWN YET"), "{}", out(&o));
}

/// A transaction that is broadcast but not mined before the timeout: exit status 3 and a
/// message not to send it again; once it is mined, `kairos tx status --pending` exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn an_unknown_outcome_exits_3_and_status_resolves_it() {
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000), e18(1_000)).await;
    let dev = dev_provider(&anvil.url);
    let cw = cli_wallet(&anvil.url, uni.router, [uni.token_a, uni.token_b], uni.token_a).await;
    let wallet = std::fs::read_to_string(cw.wallet()).unwrap();
    std::fs::write(cw.wallet(), wallet.replace("timeout_secs = 30", "timeout_secs = 1")).unwrap();
    let _: () = dev.raw_request("evm_setAutomine".into(), (false,)).await.unwrap();
    let (w, pw) = (cw.wallet(), cw.pw());
    let friend = FRIEND.to_string();
    let o = kairos(&[
        "tx",
        "send",
        "--wallet",
        &w,
        "--password-file",
        &pw,
        "--to",
        &friend,
        "--value",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    assert!(
        out(&o).contains("outcome is not known yet") && out(&o).contains("Do not send it again"),
        "{}",
        out(&o)
    );
    mine_and_status_confirms_the_one(&dev, &cw).await;
}

/// Mines a block; `kairos tx status --pending` then confirms the wallet's transaction, and it
/// made exactly one.
async fn mine_and_status_confirms_the_one(dev: &impl Provider, cw: &CliWallet) {
    let (w, pw) = (cw.wallet(), cw.pw());
    let _: String = dev.raw_request("evm_mine".into(), ()).await.unwrap();
    let o = kairos(&["tx", "status", "--wallet", &w, "--password-file", &pw, "--pending"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"confirmed\""), "{}", out(&o));
    assert_eq!(dev.get_transaction_count(cw.me).await.unwrap(), 1);
}

/// Stopped by SIGINT (what Ctrl-C sends) or SIGTERM while it waits for its confirmation,
/// `tx send` exits 3 with the message not to send again, like a timeout; `tx status --pending`
/// then finishes the job, and exactly one transaction was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(kairos_no_anvil, ignore = "needs anvil: run scripts/chain/setup.sh")]
async fn an_interrupted_send_exits_3_and_status_resolves_it() {
    for signal in ["INT", "TERM"] {
        interrupted_send(signal).await;
    }
}

async fn interrupted_send(signal: &str) {
    use std::io::{BufRead, BufReader, Read};
    let Some(anvil) = Anvil::start(&[]) else { return };
    let uni = uniswap_v2(&anvil.url, e18(1_000), e18(1_000)).await;
    let dev = dev_provider(&anvil.url);
    let cw = cli_wallet(&anvil.url, uni.router, [uni.token_a, uni.token_b], uni.token_a).await;
    // Nothing is mined until the test says so: the send waits for its confirmation.
    let _: () = dev.raw_request("evm_setAutomine".into(), (false,)).await.unwrap();
    let (w, pw) = (cw.wallet(), cw.pw());
    let friend = FRIEND.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .args(["tx", "send", "--wallet", &w, "--password-file", &pw, "--to", &friend])
        .args(["--value", "5"])
        .env_remove("KAIROS_KEYSTORE_PASSWORD")
        .env_remove("KAIROS_WALLET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kairos");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("kairos ended before broadcasting: {:?}\n{seen}", child.wait().unwrap());
        }
        seen += &line;
        if line.contains("broadcast") {
            break;
        }
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    stderr.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(3), "SIG{signal}: {seen}");
    assert!(
        seen.contains(&format!("interrupted by SIG{signal}"))
            && seen.contains("Do not send it again"),
        "{seen}"
    );
    mine_and_status_confirms_the_one(&dev, &cw).await;
}
