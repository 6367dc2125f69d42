"""Records what an independent implementation (eth-account 0.14.0) produces, for
chain/tests/integration/interop.rs:

  eth_account_reference.py sign      > chain/tests/fixtures/eth_account_signed.json
  eth_account_reference.py keystores   chain/tests/fixtures/

and, live from the tests, decrypts a key file Kairos wrote:

  eth_account_reference.py decrypt KEYFILE PASSWORD_FILE   (prints the address)

The keys here are throwaway test keys derived from fixed labels; they hold nothing.
"""
import json
import sys

from eth_account import Account
from eth_utils import keccak


def test_key(label: str) -> str:
    return "0x" + keccak(text="kairos test key " + label).hex()


CASES = [
    # label, chain_id, nonce, to, value, gas, max_fee, priority_fee, data
    ("a", 1, 0, "0x000000000000000000000000000000000000dEaD", 1, 21000, 30_000_000_000, 1_000_000_000, ""),
    ("b", 31337, 7, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 10**18, 21000, 2_000_000_000, 0, ""),
    ("c", 8453, 123456, "0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24", 0, 250000, 123_456_789_012, 1_500_000_000,
     # swapExactTokensForTokens(1e18, 9.9e17, [A, B], recipient, deadline)
     "0x38ed1739" + "".join(w.rjust(64, "0") for w in [
         format(10**18, "x"), format(99 * 10**16, "x"), "a0", "70997970c51812dc3a010c7d01b50e0d17dc79c8",
         format(1_900_000_000, "x"), "2",
         "5fbdb2315678afecb367f032d93f642f64180aa3", "e7f1725e7734ce288f8367e1bb143e90bb3f0512"])),
    ("d", 137, 2**32, "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF", 2**200, 30_000_000, 10**24, 10**24, "0x00"),
    ("e", 11155111, 1, "0x0000000000000000000000000000000000000001", 0, 21000, 1, 1, ""),
]


def sign():
    out = []
    for label, chain_id, nonce, to, value, gas, max_fee, prio, data in CASES:
        key = test_key(label)
        tx = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": to,
            "value": value,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": prio,
            "data": data,
            "accessList": [],
        }
        signed = Account.sign_transaction(tx, key)
        out.append({
            "private_key": key,
            "address": Account.from_key(key).address,
            "chain_id": chain_id,
            "nonce": nonce,
            "to": to,
            "value": str(value),
            "gas": gas,
            "max_fee_per_gas": str(max_fee),
            "max_priority_fee_per_gas": str(prio),
            "data": data,
            "raw": "0x" + signed.raw_transaction.hex(),
            "hash": "0x" + signed.hash.hex(),
        })
    json.dump({"produced_by": "eth-account 0.14.0 Account.sign_transaction", "cases": out}, sys.stdout, indent=1)
    print()


def keystores(folder):
    specs = [
        ("scrypt_standard", "scrypt", None, "kairos-interop"),  # eth-account default: n = 2^18
        ("scrypt_light", "scrypt", 2**14, "pässwörd with spaces"),
        ("pbkdf2", "pbkdf2", 2**18, "kairos-interop"),
    ]
    index = []
    for name, kdf, iterations, password in specs:
        key = test_key(name)
        doc = Account.encrypt(key, password, kdf=kdf, iterations=iterations)
        with open(f"{folder}/eth_account_{name}.json", "w") as f:
            json.dump(doc, f, indent=1)
        index.append({"file": f"eth_account_{name}.json", "password": password,
                      "address": Account.from_key(key).address})
    with open(f"{folder}/eth_account_keystores.json", "w") as f:
        json.dump({"produced_by": "eth-account 0.14.0 Account.encrypt", "files": index}, f, indent=1)
        f.write("\n")


def decrypt(path, password_file):
    with open(password_file) as f:
        password = f.read().split("\n")[0]
    with open(path) as f:
        key = Account.decrypt(json.load(f), password)
    print(Account.from_key(key).address)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sign":
        sign()
    elif cmd == "keystores":
        keystores(sys.argv[2])
    elif cmd == "decrypt":
        decrypt(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")
