# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the option groups the modules share, each in one place and named after the doc
fragment that documents it, and how a module's whole spec is built from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import DEFAULT_MAX_FEE_PER_GAS_GWEI
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import DEFAULT_MAX_GLM_PER_MONTH
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import DEFAULT_PROVIDER_PORT, DEFAULT_TIMEOUT

ArgumentSpec = dict[str, dict[str, Any]]

# The connection options every member of group/golem.vm.golem takes (the golem.vm.golem fragment).
CONNECTION_ARGUMENTS: ArgumentSpec = {
    "discovery_url": {
        "type": "str",
        "default": settings.DEFAULT_DISCOVERY_URL,
        "fallback": settings.fallback(settings.DISCOVERY_URL_ENV),
    },
    "discovery_backend": {
        "type": "str",
        "choices": list(settings.DISCOVERY_BACKEND_SPELLINGS),
        "default": "golem_base",
        "fallback": settings.choice_fallback(settings.DISCOVERY_DRIVER_ENV, settings.DISCOVERY_BACKEND_SPELLINGS),
    },
    "golem_base_rpc_url": {
        "type": "str",
        "default": settings.DEFAULT_GOLEM_BASE_RPC_URL,
        "fallback": settings.fallback(settings.GOLEM_BASE_RPC_URL_ENV),
    },
    "network": {
        "type": "str",
        "choices": list(settings.NETWORKS),
        "default": settings.DEFAULT_NETWORK,
        "fallback": settings.choice_fallback(settings.NETWORK_ENV, {n: n for n in settings.NETWORKS}),
    },
    "payments_network": {
        "type": "str",
        "default": settings.DEFAULT_PAYMENTS_NETWORK,
        "fallback": settings.fallback(settings.PAYMENTS_NETWORK_ENV),
    },
    "all_payments_networks": {"type": "bool", "default": False},
    "provider_port": {
        "type": "int",
        "default": DEFAULT_PROVIDER_PORT,
        "fallback": settings.fallback(settings.PROVIDER_PORT_ENV),
    },
    "timeout": {
        "type": "float",
        "default": DEFAULT_TIMEOUT,
        "fallback": settings.fallback(settings.TIMEOUT_ENV),
    },
    "validate_certs": {
        "type": "bool",
        "default": True,
        "fallback": settings.fallback(settings.VALIDATE_CERTS_ENV),
    },
}

# Where VMs and their host keys are recorded (documented in the golem.vm.vm_spec fragment, and by each module
# that uses them in its own words).
STATE_ARGUMENTS: ArgumentSpec = {
    "state_path": {"type": "path"},
    "state_url": {"type": "str", "no_log": True},
    "known_hosts_path": {"type": "path", "no_log": False},
}

# The payment options (the golem.vm.payments fragment), named as upstream names them.
PAYMENT_ARGUMENTS: ArgumentSpec = {
    "ethereum_private_key": {"type": "str", "no_log": True, "fallback": settings.fallback(settings.ETHEREUM_KEY_ENV)},
    "payments_rpc_url": {"type": "str", "default": settings.DEFAULT_PAYMENTS_RPC_URL,
                         "fallback": settings.fallback(*settings.PAYMENTS_RPC_ENVS)},
    "payments_chain_id": {"type": "int"},
    "stream_payment_address": {"type": "str", "fallback": settings.fallback(settings.STREAM_PAYMENT_ADDRESS_ENV)},
    "max_fee_per_gas_gwei": {"type": "float", "default": DEFAULT_MAX_FEE_PER_GAS_GWEI,
                             "fallback": settings.fallback(settings.MAX_FEE_PER_GAS_ENV)},
}

# The options of group/golem.vm.golem beyond the connection options. Every member accepts all of them, so one
# module_defaults block serves a whole play; a member with no use for one takes it as ``accepted_only``
# (the golem.vm.group fragment).
GROUP_ARGUMENTS: ArgumentSpec = {**STATE_ARGUMENTS, **PAYMENT_ARGUMENTS}

# A VM's shape, key, wait and files, shared by golem_vm and golem_fleet (the golem.vm.vm_spec fragment).
VM_SPEC_ARGUMENTS: ArgumentSpec = {
    "size": {"type": "str", "choices": ["small", "medium", "large", "xlarge"]},
    "cpu": {"type": "int"},
    "memory": {"type": "int"},
    "storage": {"type": "int"},
    "image": {"type": "str"},
    "stream_id": {"type": "int"},
    "payment_hours": {"type": "int", "default": 1},
    "max_glm_per_month": {"type": "float", "default": DEFAULT_MAX_GLM_PER_MONTH,
                          "fallback": settings.fallback(settings.MAX_GLM_PER_MONTH_ENV)},
    "labels": {"type": "dict"},
    "ssh_public_key": {"type": "str", "no_log": False},
    "ssh_public_key_path": {"type": "path", "no_log": False},
    "ssh_private_key_path": {"type": "path", "no_log": False},
    "ssh_user": {"type": "str", "default": "root"},
    "allow_foreign_ssh_host": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 600},
    **STATE_ARGUMENTS,
}

# The mutually_exclusive setting that goes with VM_SPEC_ARGUMENTS; size against cpu/memory/storage is checked
# by vm_request.resolve_spec, whose message names the values.
VM_SPEC_EXCLUSIVE: list[tuple[str, str]] = [("ssh_public_key", "ssh_public_key_path")]


def accepted_only(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An option a member takes only so group defaults do not break it: no default, no variable read
    (a bad value in a variable it never uses must not fail it), still kept out of logs if secret."""
    return {"type": entry["type"], "no_log": bool(entry.get("no_log", False))}


def only(group: ArgumentSpec, *names: str) -> ArgumentSpec:
    """The options ``names`` of ``group``, in that order: a module that uses part of a group."""
    return {name: group[name] for name in names}


def member_spec(*used: ArgumentSpec, **own: dict[str, Any]) -> ArgumentSpec:
    """The whole argument spec of a member of group/golem.vm.golem: the connection options, the group's other
    options (each ``accepted_only`` unless the member uses it), the option groups it ``used`` and its ``own``."""
    spec: ArgumentSpec = {**CONNECTION_ARGUMENTS}
    spec.update({name: accepted_only(entry) for name, entry in GROUP_ARGUMENTS.items()})
    for group in used:
        spec.update(group)
    spec.update(own)
    return spec
