# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payment options of golem_vm, golem_fleet and golem_stream (checked), and the chain client they build.

Documented in the golem.vm.payments doc fragment. Nothing here imports the chain libraries: a
task that never pays (an existing VM, a provider with payments off) never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.golem.vm.plugins.module_utils.chain.network import ADDRESS, DEFAULT_MAX_FEE_PER_GAS_GWEI, check_fee_cap
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import check_hours
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError


def check_rpc_url(url: Any) -> None:
    """payments_rpc_url: an http(s) URL, whoever reads it (the modules, the inventory's refresh)."""
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"payments_rpc_url {url!r} must be an http:// or https:// URL of the chain's JSON-RPC, "
                              f"e.g. {settings.DEFAULT_PAYMENTS_RPC_URL}", field="payments_rpc_url", value=url)


def check_contract_address(address: Any) -> None:
    """stream_payment_address, when given: a contract address."""
    if address is not None and not ADDRESS.fullmatch(str(address)):
        raise ValidationError(f"stream_payment_address {address!r} is not a contract address (0x and 40 hexadecimal "
                              "digits)", field="stream_payment_address", value=address)


def check_payment_options(params: dict[str, Any]) -> None:
    """Every payment option checked before any call; the key only for its shape, never shown."""
    check_rpc_url(params["payments_rpc_url"])
    if "payment_hours" in params:
        check_hours(params["payment_hours"])
    check_fee_cap(params.get("max_fee_per_gas_gwei", DEFAULT_MAX_FEE_PER_GAS_GWEI))
    check_contract_address(params.get("stream_payment_address"))
    key = params.get("ethereum_private_key")
    if key is not None:
        digits = key[2:] if key.startswith(("0x", "0X")) else key
        if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValidationError("ethereum_private_key is not a private key: it must be 64 hexadecimal digits, with "
                                  "or without 0x (the value is not shown)", field="ethereum_private_key")


def recorded_chain_ids(store: Any, network: str | None) -> Callable[[], list[int]]:
    """The chain ids earlier payments on ``network`` were made on, as the state's rows record them."""

    def read() -> list[int]:
        found = []
        for record in store.list() if store is not None else ():
            chain_id = record.config.get("stream_chain_id") if record.ok else None
            if isinstance(chain_id, int) and not isinstance(chain_id, bool) \
                    and record.config.get("payments_network") == network:
                found.append(chain_id)
        return found

    return read


def chain_factory(params: dict[str, Any], *, lock_dir: str, deadline: Deadline, store: Any = None
                  ) -> Callable[[], Any]:
    """What builds the chain client on first use; without a key it can read streams but pay nothing."""
    key = params.get("ethereum_private_key") or None
    network = params.get("payments_network")

    def build() -> Any:
        # Imported here: eth-account and eth-abi cost more to import than a no-op run takes.
        from ansible_collections.golem.vm.plugins.module_utils.chain.contract import StreamChain

        return StreamChain(params["payments_rpc_url"], key, lock_dir=lock_dir, deadline=deadline,
                           timeout=params["timeout"], validate_certs=params["validate_certs"],
                           chain_id=params.get("payments_chain_id"), network=network,
                           recorded_chain_ids=recorded_chain_ids(store, network),
                           max_fee_wei=check_fee_cap(params.get("max_fee_per_gas_gwei", DEFAULT_MAX_FEE_PER_GAS_GWEI)))

    return build
