//! EIP-1559 transactions: build from explicit fields, validate, sign locally, encode as the raw
//! EIP-2718 bytes a node's `eth_sendRawTransaction` takes.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;

use crate::{Error, Result};

/// Which ECDSA implementation signs: `k256` (pure Rust, the library's default) or `secp256k1`
/// (libsecp256k1, with the `secp256k1` feature, which the `kairos` binary turns on). Both sign
/// RFC 6979 deterministic, low-s signatures, so the bytes are the same.
pub const SIGNING_BACKEND: &str = if cfg!(feature = "secp256k1") { "secp256k1" } else { "k256" };

/// Intrinsic gas of the cheapest transaction (a plain transfer).
pub const MIN_GAS: u64 = 21_000;

/// The least gas a call with `input` can be given: 21,000 plus 16 per non-zero and 4 per zero
/// calldata byte (EIP-2028), or, where more, the calldata floor of EIP-7623 (Prague: 21,000
/// plus 10 per token, a non-zero byte being 4 tokens and a zero byte 1). Below it, a node
/// refuses the transaction outright.
pub fn intrinsic_gas(input: &[u8]) -> u64 {
    let zeros = input.iter().filter(|b| **b == 0).count() as u64;
    let nonzero = input.len() as u64 - zeros;
    let standard = MIN_GAS + 16 * nonzero + 4 * zeros;
    let floor = MIN_GAS + 10 * (4 * nonzero + zeros);
    standard.max(floor)
}

/// Every field of an EIP-1559 call or transfer, as a user or the executor states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxFields {
    /// EIP-155 chain id (1 for mainnet, 31337 for anvil).
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The recipient or contract.
    pub to: Address,
    /// Wei sent along.
    pub value: U256,
    /// Gas limit.
    pub gas_limit: u64,
    /// `maxFeePerGas`, wei.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`, wei.
    pub max_priority_fee_per_gas: u128,
    /// Calldata.
    pub input: Bytes,
}

impl TxFields {
    /// Checks the fields and returns the unsigned transaction.
    pub fn build(&self) -> Result<TxEip1559> {
        if self.chain_id == 0 {
            return Err(Error::Transaction(
                "chain id 0 is not a chain (replay protection needs a real one)".into(),
            ));
        }
        let intrinsic = intrinsic_gas(&self.input);
        if self.gas_limit < intrinsic {
            return Err(Error::Transaction(format!(
                "gas limit {} is below the intrinsic {intrinsic} of a transaction with {} bytes \
                 of calldata",
                self.gas_limit,
                self.input.len()
            )));
        }
        if self.max_priority_fee_per_gas > self.max_fee_per_gas {
            return Err(Error::Transaction(format!(
                "priority fee {} wei exceeds the max fee {} wei",
                self.max_priority_fee_per_gas, self.max_fee_per_gas
            )));
        }
        Ok(TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: TxKind::Call(self.to),
            value: self.value,
            access_list: Default::default(),
            input: self.input.clone(),
        })
    }
}

/// A signed transaction, ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// The EIP-2718 encoding (`0x02 || rlp(...)`).
    pub raw: Bytes,
    /// The transaction hash (`keccak256(raw)`).
    pub hash: B256,
    /// The sender.
    pub from: Address,
    /// What was signed.
    pub tx: TxEip1559,
}

/// Signs `tx` with `signer`.
pub fn sign(signer: &PrivateKeySigner, tx: TxEip1559) -> Result<SignedTx> {
    let sig = sign_hash(signer, tx.signature_hash())?;
    let envelope = TxEnvelope::from(tx.clone().into_signed(sig));
    Ok(SignedTx {
        raw: envelope.encoded_2718().into(),
        hash: *envelope.tx_hash(),
        from: signer.address(),
        tx,
    })
}

#[cfg(not(feature = "secp256k1"))]
fn sign_hash(signer: &PrivateKeySigner, hash: B256) -> Result<alloy::primitives::Signature> {
    use alloy::signers::SignerSync;
    signer.sign_hash_sync(&hash).map_err(|e| Error::Transaction(format!("signing failed: {e}")))
}

/// libsecp256k1: RFC 6979 nonces and low-s signatures, as k256, so the bytes are the same.
#[cfg(feature = "secp256k1")]
fn sign_hash(signer: &PrivateKeySigner, hash: B256) -> Result<alloy::primitives::Signature> {
    use std::sync::OnceLock;
    static CONTEXT: OnceLock<secp256k1::Secp256k1<secp256k1::SignOnly>> = OnceLock::new();
    let ctx = CONTEXT.get_or_init(secp256k1::Secp256k1::signing_only);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    // The key's bytes come out by value; that copy is wiped as soon as it is read.
    let mut bytes = signer.credential().to_bytes();
    key.copy_from_slice(&bytes);
    zeroize::Zeroize::zeroize(bytes.as_mut_slice());
    let mut secret = secp256k1::SecretKey::from_byte_array(&key)
        .map_err(|_| Error::Transaction("the key is not a valid secp256k1 secret".into()))?;
    let (recovery, rs) = ctx
        .sign_ecdsa_recoverable(&secp256k1::Message::from_digest(hash.0), &secret)
        .serialize_compact();
    secret.non_secure_erase();
    Ok(alloy::primitives::Signature::new(
        U256::from_be_slice(&rs[..32]),
        U256::from_be_slice(&rs[32..]),
        i32::from(recovery) == 1,
    ))
}

/// Parses a decimal or `0x` hex integer (wei, gas, nonce) as the CLI and config files take it.
pub fn parse_u256(what: &str, s: &str) -> Result<U256> {
    let t = s.trim().replace('_', "");
    let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        U256::from_str_radix(h, 16)
    } else {
        U256::from_str_radix(&t, 10)
    };
    parsed.map_err(|e| Error::Transaction(format!("{what} {s:?} is not an integer ({e})")))
}

/// [`parse_u256`] into a narrower integer.
pub fn parse_int<T: TryFrom<U256>>(what: &str, s: &str) -> Result<T> {
    let v = parse_u256(what, s)?;
    T::try_from(v).map_err(|_| Error::Transaction(format!("{what} {s} is too large")))
}

/// Parses an amount in whole units (`"12.5"`) into base units of a token with `decimals`
/// decimals. Only digits with at most one point are taken (alloy's `parse_units` panics on
/// some non-ASCII text, found by fuzzing the policy parser), with no more fractional digits
/// than the token has.
pub fn parse_amount(what: &str, s: &str, decimals: u8) -> Result<U256> {
    let t = s.trim();
    let bad = |why: &str| Error::Transaction(format!("{what} {s:?} is not an amount ({why})"));
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad("empty"));
    }
    if !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("digits and one decimal point only"));
    }
    if frac.len() > usize::from(decimals) {
        return Err(bad(&format!("more than {decimals} decimal places")));
    }
    if decimals > 77 {
        return Err(bad(&format!("{decimals} decimals is more than 256 bits hold")));
    }
    alloy::primitives::utils::parse_units(t, decimals)
        .map(|p| p.get_absolute())
        .map_err(|e| bad(&e.to_string()))
}

/// Parses `0x`-prefixed (or bare) hex calldata.
pub fn parse_bytes(what: &str, s: &str) -> Result<Bytes> {
    alloy::primitives::hex::decode(s.trim())
        .map(Bytes::from)
        .map_err(|e| Error::Transaction(format!("{what} is not hex ({e})")))
}

/// Parses an address; a mixed-case address must carry a valid EIP-55 checksum.
pub fn parse_address(what: &str, s: &str) -> Result<Address> {
    let t = s.trim();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    let mixed =
        hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    let parsed = if mixed {
        Address::parse_checksummed(t, None).map_err(|e| e.to_string())
    } else {
        t.parse::<Address>().map_err(|e| e.to_string())
    };
    parsed.map_err(|e| Error::Transaction(format!("{what} {s:?} is not an address ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> TxFields {
        TxFields {
            chain_id: 1,
            nonce: 0,
            to: Address::repeat_byte(0x11),
            value: U256::from(1u64),
            gas_limit: 21_000,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            input: Bytes::new(),
        }
    }

    #[test]
    fn bad_fields_are_refused_with_the_reason() {
        for (f, needle) in [
            (TxFields { chain_id: 0, ..fields() }, "chain id 0"),
            (TxFields { gas_limit: 20_999, ..fields() }, "below the intrinsic 21000"),
            (
                TxFields { input: Bytes::from(vec![0xff; 10]), ..fields() },
                "below the intrinsic 21400",
            ),
            (
                TxFields { max_priority_fee_per_gas: 31_000_000_000, ..fields() },
                "exceeds the max fee",
            ),
        ] {
            let err = f.build().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn intrinsic_gas_counts_calldata() {
        assert_eq!(intrinsic_gas(&[]), 21_000);
        // Ten non-zero bytes: 21,160 by EIP-2028, 21,400 by Prague's floor.
        assert_eq!(intrinsic_gas(&[0xff; 10]), 21_400);
        // A transfer's calldata (mostly zero bytes of ABI padding): 21,332 by EIP-2028, and
        // the floor, 10 per token, is still higher.
        let mut call = vec![0u8; 68];
        call[..4].copy_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
        call[35] = 0x11;
        assert_eq!(intrinsic_gas(&call), 21_000 + 10 * (4 * 5 + 63));
    }

    #[test]
    fn signed_bytes_recover_the_sender() {
        use alloy::consensus::transaction::SignerRecoverable;
        use alloy::eips::eip2718::Decodable2718;
        let signer = PrivateKeySigner::random();
        let signed = sign(&signer, fields().build().unwrap()).unwrap();
        assert_eq!(signed.raw[0], 0x02, "EIP-1559 type byte");
        let decoded = TxEnvelope::decode_2718(&mut signed.raw.as_ref()).unwrap();
        assert_eq!(decoded.recover_signer().unwrap(), signer.address());
        assert_eq!(*decoded.tx_hash(), signed.hash);
        assert_eq!(alloy::primitives::keccak256(&signed.raw), signed.hash);
    }

    #[test]
    fn parsers_name_what_was_wrong() {
        assert_eq!(parse_u256("value", "0x10").unwrap(), U256::from(16));
        assert_eq!(parse_u256("value", "1_000").unwrap(), U256::from(1000));
        assert!(parse_u256("value", "-1").unwrap_err().to_string().contains("value"));
        assert!(
            parse_int::<u64>("nonce", "18446744073709551616")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert!(parse_bytes("data", "0xzz").unwrap_err().to_string().contains("data"));
        assert_eq!(parse_amount("amount", "12.5", 6).unwrap(), U256::from(12_500_000u64));
        assert_eq!(parse_amount("amount", ".5", 1).unwrap(), U256::from(5u64));
        for bad in ["", ".", "1.2.3", "-1", "1e5", "١٢", "¢1", "0.1234567", "1 000"] {
            assert!(parse_amount("amount", bad, 6).is_err(), "{bad:?}");
        }
        let huge = "9".repeat(90);
        assert!(parse_amount("amount", &huge, 18).unwrap_err().to_string().contains("amount"));
        // EIP-55: the right checksum parses, a wrong one is refused, one case is accepted.
        assert!(parse_address("to", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_ok());
        assert!(parse_address("to", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err());
        assert!(parse_address("to", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_ok());
        assert!(parse_address("to", "0x1234").unwrap_err().to_string().contains("not an address"));
    }
}
