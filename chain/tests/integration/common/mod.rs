//! A real anvil node for the tests, and the real Uniswap V2 contracts deployed on it.
//!
//! anvil and the compiled contracts come from the npm packages pinned in
//! `scripts/chain/package.json` (`scripts/chain/setup.sh` installs them). Each test starts its
//! own node on a free port (`--port 0`; the port is read from anvil's banner) and stops it by
//! pid when the handle drops.

#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;

/// anvil's first dev account (from its public test mnemonic); holds 10,000 test ether.
pub const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

pub fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chain/node_modules")
}

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    pub url: String,
    pub port: u16,
    /// One node at a time per test binary (the lock is released after the child is killed).
    /// Since the tests share one binary, several nodes at once on two cores starve each other,
    /// and a starved anvil's receipts and state show up moments apart, which failed tests at
    /// random.
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Held by the running [`Anvil`] of this test binary.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Anvil {
    /// Starts anvil with `args`, or `None` (skip) when it is not installed outside CI.
    pub fn start(args: &[&str]) -> Option<Anvil> {
        let bin = tools().join("@foundry-rs/anvil-linux-amd64/bin/anvil");
        if !bin.exists() {
            assert!(
                std::env::var_os("KAIROS_REQUIRE_INTEROP").is_none(),
                "anvil is missing at {}: run scripts/chain/setup.sh",
                bin.display()
            );
            eprintln!("skipping: anvil not installed (run scripts/chain/setup.sh)");
            return None;
        }
        // A test that failed while holding the turn poisons the lock; the next one goes on.
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Command::new(bin)
            .args(["--port", "0", "--host", "127.0.0.1", "--chain-id", "31337"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil");
        let stdout = child.stdout.take().expect("anvil stdout");
        let mut port = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read anvil banner");
            if let Some(addr) = line.strip_prefix("Listening on ") {
                port = addr.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                break;
            }
        }
        let port: u16 = port.expect("anvil printed no listening address");
        Some(Anvil { child, url: format!("http://127.0.0.1:{port}"), port, _turn: turn })
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creation bytecode of a compiled contract from the npm packages.
pub fn bytecode(package: &str, name: &str) -> Bytes {
    let path = tools().join(package).join("build").join(format!("{name}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("artifact")).unwrap();
    let hex = v["bytecode"].as_str().or_else(|| v["evm"]["bytecode"]["object"].as_str()).unwrap();
    alloy::primitives::hex::decode(hex).unwrap().into()
}

/// Deploys `code` with ABI-encoded constructor `args` from the dev account.
pub async fn deploy(url: &str, code: Bytes, args: Vec<u8>) -> Address {
    let signer: PrivateKeySigner = DEV_KEY.parse().unwrap();
    let p = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url.parse().unwrap());
    let mut data = code.to_vec();
    data.extend(args);
    let receipt = p
        .send_transaction(TransactionRequest::default().with_deploy_code(data))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "deployment reverted");
    receipt.contract_address.expect("a contract address")
}

/// A provider that signs with the dev account (for setting the scene, not for Kairos' own
/// sends).
pub fn dev_provider(url: &str) -> impl Provider + Clone {
    let signer: PrivateKeySigner = DEV_KEY.parse().unwrap();
    ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url.parse().unwrap())
}

/// Sends `ether` (wei) and, if given, `amount` of `token` from the dev account to `to`, and
/// waits for both.
pub async fn fund(url: &str, to: Address, ether: U256, token: Option<(Address, U256)>) {
    let dev = dev_provider(url);
    let pending = dev.send_transaction(TransactionRequest::default().to(to).value(ether));
    pending.await.unwrap().get_receipt().await.unwrap();
    if let Some((token, amount)) = token {
        let erc20 = kairos_chain::abi::IERC20::new(token, &dev);
        erc20.transfer(to, amount).send().await.unwrap().get_receipt().await.unwrap();
    }
}

/// The receipt of `hash` once anvil has mined it, or `None` after 10 s. anvil answers
/// `eth_sendRawTransaction` when the transaction is in its pool and automines the block a
/// moment later (longer on a busy machine), so a receipt asked for at once may not exist yet.
pub async fn mined_receipt(p: &impl Provider, hash: B256) -> Option<TransactionReceipt> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(r) = p.get_transaction_receipt(hash).await.unwrap() {
            return Some(r);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn dev_address() -> Address {
    DEV_KEY.parse::<PrivateKeySigner>().unwrap().address()
}

/// Uniswap V2 on a fresh node: WETH, two test tokens, the factory, the router, and a pool of
/// the two tokens with `liquidity` of each.
pub struct UniswapV2 {
    pub weth: Address,
    pub token_a: Address,
    pub token_b: Address,
    pub factory: Address,
    pub router: Address,
}

pub fn e18(x: u64) -> U256 {
    U256::from(x) * U256::from(10u64).pow(U256::from(18))
}

pub async fn uniswap_v2(url: &str, liquidity_a: U256, liquidity_b: U256) -> UniswapV2 {
    use kairos_chain::abi::{IERC20, IUniswapV2Router02};
    let dev = dev_address();
    let weth = deploy(url, bytecode("@uniswap/v2-periphery", "WETH9"), vec![]).await;
    let supply = e18(1_000_000_000);
    let token_a =
        deploy(url, bytecode("@uniswap/v2-periphery", "ERC20"), supply.abi_encode()).await;
    let token_b =
        deploy(url, bytecode("@uniswap/v2-periphery", "ERC20"), supply.abi_encode()).await;
    let factory =
        deploy(url, bytecode("@uniswap/v2-core", "UniswapV2Factory"), dev.abi_encode()).await;
    let router = deploy(
        url,
        bytecode("@uniswap/v2-periphery", "UniswapV2Router02"),
        (factory, weth).abi_encode_params(),
    )
    .await;
    let p = dev_provider(url);
    for t in [token_a, token_b] {
        IERC20::new(t, &p)
            .approve(router, U256::MAX)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    let r = IUniswapV2Router02::new(router, &p)
        .addLiquidity(
            token_a,
            token_b,
            liquidity_a,
            liquidity_b,
            U256::ZERO,
            U256::ZERO,
            dev,
            U256::from(u64::MAX),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "addLiquidity reverted");
    UniswapV2 { weth, token_a, token_b, factory, router }
}

alloy::sol! {
    #[sol(rpc)]
    interface INonfungiblePositionManager {
        struct MintParams {
            address token0;
            address token1;
            uint24 fee;
            int24 tickLower;
            int24 tickUpper;
            uint256 amount0Desired;
            uint256 amount1Desired;
            uint256 amount0Min;
            uint256 amount1Min;
            address recipient;
            uint256 deadline;
        }
        function createAndInitializePoolIfNecessary(address token0, address token1, uint24 fee, uint160 sqrtPriceX96) external payable returns (address pool);
        function mint(MintParams calldata params) external payable returns (uint256 tokenId, uint128 liquidity, uint256 amount0, uint256 amount1);
    }
}

/// Creation bytecode of a Hardhat artifact (Uniswap V3's packages).
pub fn v3_bytecode(package: &str, contract_path: &str) -> Bytes {
    let name = contract_path.rsplit('/').next().unwrap();
    let path = tools()
        .join(package)
        .join("artifacts/contracts")
        .join(format!("{contract_path}.sol/{name}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("artifact")).unwrap();
    alloy::primitives::hex::decode(v["bytecode"].as_str().unwrap()).unwrap().into()
}

/// Uniswap V3 on a fresh node (anvil needs `--disable-code-size-limit`: the position manager
/// is over EIP-170's limit, as on mainnet where it was deployed before the limit bit): two test
/// tokens (sorted, `token0 < token1`), a 0.3% pool at price 1 with full-range liquidity of
/// `liquidity` each, the `SwapRouter` and `QuoterV2`.
pub struct UniswapV3 {
    pub token0: Address,
    pub token1: Address,
    pub factory: Address,
    pub router: Address,
    pub quoter: Address,
    pub pool: Address,
}

pub async fn uniswap_v3(url: &str, liquidity: U256) -> UniswapV3 {
    use alloy::primitives::aliases::{I24, U24, U160};
    use kairos_chain::abi::{IERC20, IUniswapV3Factory};
    let dev = dev_address();
    let weth = deploy(url, bytecode("@uniswap/v2-periphery", "WETH9"), vec![]).await;
    let supply = e18(1_000_000_000);
    let a = deploy(url, bytecode("@uniswap/v2-periphery", "ERC20"), supply.abi_encode()).await;
    let b = deploy(url, bytecode("@uniswap/v2-periphery", "ERC20"), supply.abi_encode()).await;
    let (token0, token1) = if a < b { (a, b) } else { (b, a) };
    let factory = deploy(url, v3_bytecode("@uniswap/v3-core", "UniswapV3Factory"), vec![]).await;
    let npm = deploy(
        url,
        v3_bytecode("@uniswap/v3-periphery", "NonfungiblePositionManager"),
        (factory, weth, dev).abi_encode_params(),
    )
    .await;
    let router = deploy(
        url,
        v3_bytecode("@uniswap/v3-periphery", "SwapRouter"),
        (factory, weth).abi_encode_params(),
    )
    .await;
    let quoter = deploy(
        url,
        v3_bytecode("@uniswap/v3-periphery", "lens/QuoterV2"),
        (factory, weth).abi_encode_params(),
    )
    .await;
    let p = dev_provider(url);
    let fee = U24::from(3000u32);
    let pm = INonfungiblePositionManager::new(npm, &p);
    let price_one = U160::from(1u8) << 96;
    pm.createAndInitializePoolIfNecessary(token0, token1, fee, price_one)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    for t in [token0, token1] {
        IERC20::new(t, &p)
            .approve(npm, U256::MAX)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    let r = pm
        .mint(INonfungiblePositionManager::MintParams {
            token0,
            token1,
            fee,
            tickLower: I24::try_from(-887_220).unwrap(),
            tickUpper: I24::try_from(887_220).unwrap(),
            amount0Desired: liquidity,
            amount1Desired: liquidity,
            amount0Min: U256::ZERO,
            amount1Min: U256::ZERO,
            recipient: dev,
            deadline: U256::from(u64::MAX),
        })
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "mint reverted");
    let pool =
        IUniswapV3Factory::new(factory, &p).getPool(token0, token1, fee).call().await.unwrap();
    assert_ne!(pool, Address::ZERO);
    UniswapV3 { token0, token1, factory, router, quoter, pool }
}
