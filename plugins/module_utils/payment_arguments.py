# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of the payment options (the golem.vm.payments doc fragment), named as upstream names them."""

from __future__ import annotations

from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import DEFAULT_MAX_FEE_PER_GAS_GWEI
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings

PAYMENT_ARGUMENTS: dict[str, dict[str, Any]] = {
    "ethereum_private_key": {"type": "str", "no_log": True, "fallback": settings.fallback(settings.ETHEREUM_KEY_ENV)},
    "payments_rpc_url": {"type": "str", "default": settings.DEFAULT_PAYMENTS_RPC_URL,
                         "fallback": settings.fallback(*settings.PAYMENTS_RPC_ENVS)},
    "payments_chain_id": {"type": "int"},
    "stream_payment_address": {"type": "str", "fallback": settings.fallback(settings.STREAM_PAYMENT_ADDRESS_ENV)},
    "max_fee_per_gas_gwei": {"type": "float", "default": DEFAULT_MAX_FEE_PER_GAS_GWEI,
                             "fallback": settings.fallback(settings.MAX_FEE_PER_GAS_ENV)},
}
