# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which chain and which StreamPayment contract a payments network pays on, and what a node may charge.

A payments node and a provider are strangers: the node says which chain it serves and what gas
costs, the provider names the contract its streams live in. Both are checked here against what the
user set or what is documented for the network, before anything is signed. Pure: no chain library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.version import COLLECTION_VERSION


class NetworkFacts(NamedTuple):
    chain_id: int | None  # None: upstream names none, so the first one seen is kept in the state
    stream_payment_address: str
    test: bool  # test money only: a node serving a chain of real money is the wrong node


# The 0.1.x network, as upstream's CLI ships it (requestor/data/deployments/l2.json).
NETWORKS: dict[str, NetworkFacts] = {
    "l2.holesky": NetworkFacts(None, "0x0281B792b5491E3548c8Fc17C24A2e0Cb99FbeC2", True),
}
# Chains where gas and value are real money. A test network's payments must never be signed for one:
# the same key may hold real funds there, and a signed transaction is valid wherever its chain id is.
MAINNET_CHAIN_IDS: dict[int, str] = {
    1: "Ethereum", 10: "OP Mainnet", 56: "BNB Smart Chain", 100: "Gnosis", 137: "Polygon PoS", 250: "Fantom",
    324: "zkSync Era", 1101: "Polygon zkEVM", 8453: "Base", 42161: "Arbitrum One", 42220: "Celo",
    43114: "Avalanche C-Chain", 59144: "Linea", 534352: "Scroll",
}
# Upstream's next protocol pays here, in GLM (ERC-20) under provider-signed lease quotes: a stream of native ETH
# sent to it would not be the payment its providers check.
NEXT_PROTOCOL_CHAINS: dict[int, str] = {560048: "Ethereum Hoodi"}
# The fee a user who never set max_fee_per_gas_gwei agrees to: test chains charge about 1 gwei, so 100 lets
# a congested one through while a node asking thousands (a lie, or the wrong chain) is refused. At the
# ~200,000 gas a createStream takes, 100 gwei is at most 0.02 ETH of gas.
DEFAULT_MAX_FEE_PER_GAS_GWEI = 100.0
# An account or contract address, as the options, a row and a provider's info give it.
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
GWEI = 10 ** 9


def facts(network: str | None) -> NetworkFacts | None:
    return NETWORKS.get(network or "")


def check_chain_id(found: int, *, network: str | None, pinned: int | None, recorded: Iterable[int], url: str) -> None:
    """The node's chain id against payments_chain_id, the network's documented id, and the state's record.

    ``recorded`` are the chain ids earlier payments on ``network`` were made on (kept on the state's rows)."""
    known = facts(network)
    where = f"payments RPC {url} serves chain id {found}"
    if found in NEXT_PROTOCOL_CHAINS:
        raise PaymentError(f"{where} ({NEXT_PROTOCOL_CHAINS[found]}), where upstream's newer protocol pays in GLM with "
                           f"lease quotes; that protocol is not supported by this version (golem.vm "
                           f"{COLLECTION_VERSION}) yet. Pay providers of the 0.1.x network (payments_network "
                           "l2.holesky) with its chain's RPC; nothing was signed", field="payments_rpc_url", value=url)
    if pinned is not None:
        if found != pinned:
            raise PaymentError(f"{where}, not payments_chain_id {pinned}; point payments_rpc_url at the chain the "
                               "providers are paid on; nothing was signed", field="payments_chain_id", value=pinned)
        return  # the user's word wins over the table and the record
    if known is not None and known.test and found in MAINNET_CHAIN_IDS:
        raise PaymentError(f"{where} ({MAINNET_CHAIN_IDS[found]}, real money), but payments network {network} pays "
                           "with test money; point payments_rpc_url at that network's chain; nothing was signed",
                           field="payments_rpc_url", value=url)
    if known is not None and known.chain_id is not None and found != known.chain_id:
        raise PaymentError(f"{where}, but payments network {network} is chain {known.chain_id}; nothing was signed",
                           field="payments_rpc_url", value=url)
    others = sorted(set(recorded) - {found})
    if others:
        raise PaymentError(f"{where}, but earlier payments on payments network {network} in this state were made on "
                           f"chain {others[0]}; set payments_chain_id to the chain you mean, or point "
                           "payments_rpc_url back at that chain; nothing was signed",
                           field="payments_chain_id", value=None)


def check_contract(named: str, *, given: str | None, provider: str, network: str | None) -> None:
    """A provider's StreamPayment address must be the user's ``given`` one, else the network's documented one:
    a deposit sent to another contract is whatever that contract does with it."""
    known = facts(network)
    expected = given or (known.stream_payment_address if known is not None else None)
    if expected is None:
        raise PaymentError(f"provider {provider} is paid through StreamPayment contract {named}, and payments network "
                           f"{network} documents none; set stream_payment_address to the contract you trust "
                           "(no stream was opened)", field="stream_payment_address", value=None)
    if named.lower() != expected.lower():
        raise PaymentError(f"provider {provider} names StreamPayment contract {named}, not {expected} (the "
                           f"{'stream_payment_address option' if given else f'payments network {network}'}'s); no stream was "
                           "opened to it", field="stream_payment_address", value=expected)


def check_fee_cap(cap: object) -> int:
    """max_fee_per_gas_gwei as wei per gas."""
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or math.isnan(cap) or cap <= 0 or cap > 10 ** 6:
        raise ValidationError(f"max_fee_per_gas_gwei {cap!r} must be a number of gwei above 0 and at most 1000000",
                              field="max_fee_per_gas_gwei", value=cap)
    return int(Decimal(str(cap)) * GWEI)
