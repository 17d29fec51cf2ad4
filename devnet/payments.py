# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payment chain of the local network: an anvil chain with StreamPayment deployed on it and a
funded requestor account, as the 0.1.x network pays providers (reference §7).

devnetd starts the chain, then calls ``setup()`` before any provider starts, because the providers
are told the contract's address. Everything here is blocking JSON-RPC; the daemon runs it in a thread.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import layout
import solidity
from anvil import Chain

# Chosen for this network: not anvil's default 31337 (a transaction signed for a stock anvil does not
# replay here) and not a public chain's. Upstream's requestor takes the chain id from the RPC.
CHAIN_ID = 31310
CHAIN = Chain("payments", f"{layout.NET}.0.10", 8545, CHAIN_ID, block_time=1)
CONTRACT = "StreamPayment"
# Streams that tests never terminate keep their deposits; at the devnet's prices (~0.05 ETH an hour for a
# small VM) this lasts for years of test runs on one network.
REQUESTOR_FUNDS_WEI = 1_000_000 * 10 ** 18
# The provider's stream monitor deletes a VM once its stream's runway is 0; checked this often (s).
MONITOR_INTERVAL = int(os.environ.get("GOLEM_DEVNET_STREAM_MONITOR_INTERVAL", "2"))
CLOSED_URL = "http://127.0.0.1:1"  # a closed loopback port: faucets and captchas fail at once


@dataclass(frozen=True)
class Deployment:
    rpc_url: str
    chain_id: int
    stream_payment_address: str
    oracle_address: str
    requestor_address: str
    requestor_key_path: Path
    env_file: Path

    def status(self) -> dict[str, Any]:
        """What status.json shows; never the private key."""
        return {
            "rpc_url": self.rpc_url, "chain_id": self.chain_id,
            "stream_payment_address": self.stream_payment_address,
            "glm_token_address": layout.ZERO_ADDRESS,
            "requestor_address": self.requestor_address,
            "oracle_address": self.oracle_address,
            "env_file": str(self.env_file),
        }

    def provider_settings(self) -> dict[str, str]:
        """GOLEM_PROVIDER_* settings (without the prefix) that turn payments on in provider 0.1.63."""
        return {
            "STREAM_PAYMENT_ADDRESS": self.stream_payment_address,
            "GLM_TOKEN_ADDRESS": layout.ZERO_ADDRESS,  # native ETH, as the 0.1.x network pays
            "POLYGON_RPC_URL": self.rpc_url,
            "STREAM_MONITOR_ENABLED": "true",
            "STREAM_MONITOR_INTERVAL_SECONDS": str(MONITOR_INTERVAL),
            # A withdrawing provider would need gas and change balances under the tests' feet.
            "STREAM_WITHDRAW_ENABLED": "false",
            "L2_FAUCET_URL": CLOSED_URL, "L2_CAPTCHA_URL": CLOSED_URL,
        }


def encode_args(*values: int | str) -> str:
    """ABI encoding of static arguments (uint or address), as hex without 0x."""
    words = []
    for value in values:
        number = int(value, 16) if isinstance(value, str) else value
        words.append(f"{number:064x}")
    return "".join(words)


def wait_receipt(chain: Chain, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipt = chain.call("eth_getTransactionReceipt", tx_hash)
        if receipt:
            if int(receipt["status"], 16) != 1:
                raise RuntimeError(f"transaction {tx_hash} reverted")
            return receipt
        time.sleep(0.1)
    raise RuntimeError(f"transaction {tx_hash} not mined within {timeout:.0f} s")


def wait_ready(chain: Chain, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if int(chain.call("eth_chainId", timeout=2), 16) == chain.chain_id:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{chain.name} chain did not answer at {chain.url} within {timeout:.0f} s")
        time.sleep(0.1)


_ETH_SCRIPT = """
import sys
from eth_account import Account
from eth_utils import to_checksum_address
key, *addresses = sys.stdin.read().split()
print(Account.from_key(key).address, *(to_checksum_address(a) for a in addresses))
"""


def eth_addresses(key: str, *addresses: str) -> list[str]:
    """The address of a private key, then ``addresses`` checksummed (EIP-55), by eth_account from the
    provider's virtualenv: devnetd itself has neither secp256k1 nor keccak."""
    python = layout.venv(layout.provider_by_key("se").venv) / "bin" / "python"
    return subprocess.run([str(python), "-c", _ETH_SCRIPT], input=" ".join((key, *addresses)),
                          check=True, capture_output=True, text=True).stdout.split()


def requestor_key(run: Path) -> tuple[Path, str]:
    """The network's requestor key: made once per network directory, kept across restarts (mode 0600)."""
    keys = run / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys / "requestor.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("0x" + secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path, path.read_text().strip()


def deploy(chain: Chain, deployer: str) -> str:
    artifact = solidity.load(CONTRACT)
    # The constructor takes the oracle, the one address allowed to halt streams: the deployer.
    data = artifact["bytecode"] + encode_args(deployer)
    tx_hash = chain.call("eth_sendTransaction", {"from": deployer, "data": data, "gas": hex(3_000_000)})
    address = wait_receipt(chain, tx_hash)["contractAddress"]
    if chain.call("eth_getCode", address, "latest") in ("0x", "0x0", None):
        raise RuntimeError(f"{CONTRACT} deployment at {address} has no code")
    return address


def write_env(path: Path, values: dict[str, str]) -> None:
    """A shell-sourceable file (``. .devnet/env``), readable only by its owner: it holds a private key."""
    lines = ["# The local Golem network's payment chain and requestor account; written by devnetd at `devnet up`.",
             "# Source it (. .devnet/env) to run the upstream `golem` CLI or a playbook against this network."]
    lines += [f"export {key}={value}" for key, value in values.items()]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def setup(run: Path, chain: Chain = CHAIN) -> Deployment:
    """Deploy the contract, fund the requestor and write the env file; the chain must be running."""
    wait_ready(chain)
    deployer = chain.call("eth_accounts")[0]  # anvil's first unlocked dev account
    contract = deploy(chain, deployer)
    key_path, key = requestor_key(run)
    requestor, contract, deployer = eth_addresses(key, contract, deployer)
    chain.call("anvil_setBalance", requestor, hex(REQUESTOR_FUNDS_WEI))
    env_file = run / "env"
    write_env(env_file, {
        "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY": key,
        "GOLEM_REQUESTOR_POLYGON_RPC_URL": chain.url,
        "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS": contract,
        "GOLEM_REQUESTOR_GLM_TOKEN_ADDRESS": layout.ZERO_ADDRESS,
        # Golem Base, as upstream's CLI and the collection default to; central stays for MVP-era providers.
        "GOLEM_REQUESTOR_DISCOVERY_DRIVER": "golem-base",
        "GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL": layout.GOLEM_BASE_RPC_URL,
        "GOLEM_REQUESTOR_GOLEM_BASE_WS_URL": layout.GOLEM_BASE_WS_URL,
        "GOLEM_REQUESTOR_DISCOVERY_URL": layout.DISCOVERY_URL,
        # The upstream CLI asks a faucet when the balance is low; never the public one from here.
        "GOLEM_REQUESTOR_L2_FAUCET_URL": CLOSED_URL,
        "GOLEM_REQUESTOR_CAPTCHA_URL": CLOSED_URL,
        "GOLEM_DEVNET_PAYMENTS_CHAIN_ID": str(chain.chain_id),
        "GOLEM_DEVNET_REQUESTOR_ADDRESS": requestor,
    })
    return Deployment(chain.url, chain.chain_id, contract, deployer, requestor, key_path, env_file)
