//! `kairos keys` and `kairos tx`: key files and offline signing.
//!
//! Passwords come from `--password-file`, the `KAIROS_KEYSTORE_PASSWORD` environment variable,
//! or a prompt on the terminal, in that order; never from a command-line argument (which other
//! users of the machine can read in the process list).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kairos_chain::alloy::primitives::hex;
use kairos_chain::alloy::signers::local::PrivateKeySigner;
use kairos_chain::keys::{self, KeyDir};
use kairos_chain::keystore::{Password, ScryptParams};
use kairos_chain::tx::{self, TxFields};

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "KAIROS_KEYSTORE_PASSWORD";

/// `kairos keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key and store it encrypted.
    New(NewArgs),
    /// Store an existing key: a hex private key read from a file, or a key file from geth,
    /// foundry or eth-account.
    Import(ImportArgs),
    /// List the keys in the keystore folder.
    List(DirArg),
    /// Print the address of a key file (decrypting it first with `--verify`).
    Address(AddressArgs),
}

/// The keystore folder.
#[derive(Debug, Args)]
pub struct DirArg {
    /// Keystore folder [default: $XDG_DATA_HOME/kairos/keystore].
    #[arg(long, env = "KAIROS_KEYSTORE_DIR")]
    keystore_dir: Option<PathBuf>,
}

impl DirArg {
    fn dir(&self) -> KeyDir {
        KeyDir::new(self.keystore_dir.clone().unwrap_or_else(KeyDir::default_dir))
    }
}

/// Where the password comes from.
#[derive(Debug, Args)]
pub struct PasswordArg {
    /// File whose first line is the password (else $KAIROS_KEYSTORE_PASSWORD, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

impl PasswordArg {
    /// The password from `file`, else the environment (else a prompt on a terminal).
    pub(crate) fn from_file(file: Option<PathBuf>) -> Self {
        Self { password_file: file }
    }

    pub(crate) fn read(&self, confirm: bool) -> Result<Password> {
        if let Some(p) = &self.password_file {
            return Ok(Password::from_file(p)?);
        }
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            return Ok(Password::new(p));
        }
        if !std::io::stdin().is_terminal() {
            bail!("no password: give --password-file FILE or set {PASSWORD_ENV}");
        }
        let first = Password::new(rpassword::prompt_password("password: ")?);
        if confirm {
            let again = Password::new(rpassword::prompt_password("again: ")?);
            if !first.matches(&again) {
                bail!("the passwords differ");
            }
        }
        Ok(first)
    }
}

/// scrypt cost for new files.
#[derive(Debug, Args)]
pub struct KdfArg {
    /// log2 of scrypt's N for new key files: 18 (geth's standard, 256 MiB, about a second)
    /// unless you know why; lower is faster to unlock and to crack.
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u8).range(10..=22))]
    scrypt_log_n: u8,
}

impl KdfArg {
    fn params(&self) -> ScryptParams {
        ScryptParams { log_n: self.scrypt_log_n, ..ScryptParams::STANDARD }
    }
}

/// `kairos keys new`
#[derive(Debug, Args)]
pub struct NewArgs {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    password: PasswordArg,
    #[command(flatten)]
    kdf: KdfArg,
    /// Encrypt under an empty password (anyone with the file has the key).
    #[arg(long)]
    allow_empty_password: bool,
}

/// `kairos keys import`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["private_key_file", "key_file"])))]
pub struct ImportArgs {
    #[command(flatten)]
    dir: DirArg,
    /// File holding the private key as hex (with or without 0x).
    #[arg(long, conflicts_with = "key_file")]
    private_key_file: Option<PathBuf>,
    /// A v3 key file from another tool; it is decrypted with the password to check it, then
    /// stored re-encrypted under the same password.
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArg,
    #[command(flatten)]
    kdf: KdfArg,
    /// Encrypt under an empty password (anyone with the file has the key).
    #[arg(long)]
    allow_empty_password: bool,
}

/// Refuses an empty password for a new key file unless asked for.
fn non_empty(password: Password, allow: bool) -> Result<Password> {
    if password.is_empty() && !allow {
        bail!(
            "the password is empty: the key file would protect nothing. Give a password, or \
             pass --allow-empty-password"
        );
    }
    Ok(password)
}

/// `kairos keys address`
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// The key file.
    keystore: PathBuf,
    /// Decrypt the file and print the key's own address (needs the password).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    password: PasswordArg,
}

/// `kairos tx ...`
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Sign an EIP-1559 transaction offline and print it as 0x-hex (no network needed).
    Sign(Box<SignArgs>),
    /// Send a transaction through simulation, the guardrails, the nonce owner, the journal
    /// and confirmation.
    #[command(after_help = crate::onchain::EXIT_CODES)]
    Send(Box<crate::onchain::SendArgs>),
    /// Track the wallet's unsettled transactions (or one) to their end, from the journal and
    /// the chain. The password is asked for only when there is something to track (tracking
    /// may sign a fee bump).
    #[command(after_help = crate::onchain::EXIT_CODES)]
    Status(Box<crate::onchain::StatusArgs>),
}

/// `kairos tx sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The key: a key file, or an address in the keystore folder.
    #[arg(long)]
    keystore: String,
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    password: PasswordArg,
    /// EIP-155 chain id.
    #[arg(long)]
    chain_id: String,
    /// The sender's nonce.
    #[arg(long)]
    nonce: String,
    /// Recipient or contract address.
    #[arg(long)]
    to: String,
    /// Wei to send.
    #[arg(long, default_value = "0")]
    value: String,
    /// Gas limit.
    #[arg(long)]
    gas: String,
    /// maxFeePerGas in wei.
    #[arg(long)]
    max_fee: String,
    /// maxPriorityFeePerGas in wei.
    #[arg(long)]
    priority_fee: String,
    /// Calldata as hex.
    #[arg(long, default_value = "")]
    data: String,
    /// Print a JSON object (raw, hash, from) instead of the raw hex alone.
    #[arg(long)]
    json: bool,
}

/// Runs `kairos keys ...`.
pub fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::New(a) => {
            let dir = a.dir.dir();
            let password = non_empty(a.password.read(true)?, a.allow_empty_password)?;
            let entry = dir.create(&password, a.kdf.params())?;
            println!("{}", entry.address);
            say!("stored in {}", entry.path.display());
        }
        KeysCommand::Import(a) => {
            let dir = a.dir.dir();
            let password = a.password.read(a.key_file.is_none())?;
            let signer = if let Some(f) = &a.key_file {
                keys::unlock_file(f, &password)?
            } else {
                let f =
                    a.private_key_file.as_deref().context("--private-key-file or --key-file")?;
                signer_from_hex_file(f)?
            };
            let password = non_empty(password, a.allow_empty_password)?;
            let entry = dir.store(&signer, &password, a.kdf.params())?;
            println!("{}", entry.address);
            say!("stored in {}", entry.path.display());
        }
        KeysCommand::List(d) => {
            let dir = d.dir();
            if !dir.path().is_dir() {
                bail!(
                    "no keystore folder at {} (`kairos keys new` creates it; --keystore-dir or \
                     $KAIROS_KEYSTORE_DIR picks another)",
                    dir.path().display()
                );
            }
            let all = dir.list()?;
            if all.is_empty() {
                say!("no keys in {}", dir.path().display());
            }
            for e in all {
                println!("{}  {}", e.address, e.path.display());
            }
        }
        KeysCommand::Address(a) => {
            if a.verify {
                let signer = keys::unlock_file(&a.keystore, &a.password.read(false)?)?;
                println!("{}", signer.address());
            } else {
                match keys::declared_address(&a.keystore) {
                    Some(addr) => println!("{addr}"),
                    None => bail!(
                        "{} declares no address (or is not a key file); use --verify to decrypt it",
                        a.keystore.display()
                    ),
                }
            }
        }
    }
    Ok(())
}

/// Runs `kairos tx ...`.
pub fn tx(cmd: TxCommand) -> Result<()> {
    match cmd {
        TxCommand::Send(a) => crate::onchain::send(*a)?,
        TxCommand::Status(a) => crate::onchain::status(*a)?,
        TxCommand::Sign(a) => {
            let fields = TxFields {
                chain_id: tx::parse_int("--chain-id", &a.chain_id)?,
                nonce: tx::parse_int("--nonce", &a.nonce)?,
                to: tx::parse_address("--to", &a.to)?,
                value: tx::parse_u256("--value", &a.value)?,
                gas_limit: tx::parse_int("--gas", &a.gas)?,
                max_fee_per_gas: tx::parse_int("--max-fee", &a.max_fee)?,
                max_priority_fee_per_gas: tx::parse_int("--priority-fee", &a.priority_fee)?,
                input: tx::parse_bytes("--data", &a.data)?,
            };
            let unsigned = fields.build()?;
            let path = a.dir.dir().resolve("--keystore", &a.keystore)?;
            let signer = keys::unlock_file(&path, &a.password.read(false)?)?;
            let signed = tx::sign(&signer, unsigned)?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "raw": signed.raw.to_string(),
                        "hash": signed.hash.to_string(),
                        "from": signed.from.to_string(),
                    })
                );
            } else {
                println!("{}", signed.raw);
            }
        }
    }
    Ok(())
}

fn signer_from_hex_file(path: &Path) -> Result<PrivateKeySigner> {
    use zeroize::Zeroizing;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let hex = text.trim().trim_start_matches("0x");
    let mut bytes = Zeroizing::new([0u8; 32]);
    if hex.len() != 64 || hex::decode_to_slice(hex, &mut *bytes).is_err() {
        // Say nothing about the content: it is a secret, even when malformed.
        bail!("{}: not a 32-byte hex private key", path.display());
    }
    PrivateKeySigner::from_slice(&*bytes)
        .map_err(|_| anyhow::anyhow!("{}: not a valid secp256k1 private key", path.display()))
}
