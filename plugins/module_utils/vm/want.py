# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a VM task was asked, already checked (the modules' option parsing builds it), and the task it runs in."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, Callable, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import MissingLibraryError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.foundation.settings import StateLocation
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement

# What the chain client imports to pay; looked up, not imported, so a check costs nothing.
CHAIN_MODULES = ("eth_account", "eth_abi", "eth_utils")
CHAIN_LIBRARY = "eth-account >= 0.13 (with eth-abi)"


class KeyInfo(NamedTuple):
    text: str | None
    fingerprint: str | None
    private_path: str | None


@dataclass
class Want:
    """What the user asked for, already validated."""

    name: str
    state: str
    spec: ResourceSpec | None
    size: str | None
    image: str | None
    stream_id: int | None
    public_key: str | None  # None only in check mode, before the default key pair exists
    key_fingerprint: str | None
    private_key_path: str | None
    ssh_user: str
    pinned: Placement | None
    country: str | None
    adopt: bool
    wait: bool
    labels: dict[str, str] | None = None  # None: leave an existing VM's labels as they are
    allow_foreign_ssh_host: bool = False
    # Loads (generate=True: or makes) the default key pair; returns (text, fingerprint, private path).
    load_key: Callable[..., KeyInfo] | None = None


@dataclass
class VMTask:
    """One golem_vm or golem_fleet task: what is asked, where it is recorded, and its time budget."""

    want: Want
    store: Any  # a state_backend.StateBackend: SQLite or PostgreSQL
    known_hosts: KnownHosts
    deadline: Deadline
    state: StateLocation
    known_hosts_path: str


def check_create_inputs(want: Any, payments: Any = None) -> KeyInfo | None:
    """Raise now what a create would fail on after asking discovery and providers, where their errors would
    hide it: a given private key whose public half cannot be had (passphrase-protected, missing, not a key)
    and, when the task has an account to pay from, the chain libraries.

    Returns the key it loaded, for the caller to keep (it is the one a create would load), or None. The
    default key pair is not touched: it is made only once discovery answered, so a failed one leaves none.
    """
    loaded = None
    if want.public_key is None and want.private_key_path is not None and want.load_key is not None:
        # A given key reads the same with or without ``generate``, which only makes the default pair.
        loaded = want.load_key(generate=False)
    if payments is not None and payments.can_pay and payments.given_stream is None:
        missing = [name for name in CHAIN_MODULES if find_spec(name) is None]
        if missing:
            raise MissingLibraryError(CHAIN_LIBRARY, None, reason="to pay providers (ethereum_private_key is given)",
                                      note=f"{', '.join(missing)} cannot be imported; install the collection's "
                                      "requirements.txt. Nothing was asked of discovery or any provider yet.")
    return loaded


def creation_only_differences(want: Want, record: VMRecord, in_place: str) -> list[str]:
    """What ``want`` asks of an existing VM that only a create could set (``in_place``: its provider)."""
    diffs = []
    if want.spec is not None and (record.cpu, record.memory, record.storage) != tuple(want.spec):
        diffs.append(f"resources {want.spec.cpu}/{want.spec.memory}/{want.spec.storage} (cpu/GB/GB) asked, "
                     f"{record.cpu}/{record.memory}/{record.storage} in place")
    if want.image is not None and record.image and want.image != record.image:
        diffs.append(f"image {want.image!r} asked, {record.image!r} in place")
    recorded_key = record.config.get("ssh_key_fingerprint")
    if want.key_fingerprint and recorded_key and want.key_fingerprint != recorded_key:
        diffs.append(f"SSH key {want.key_fingerprint} asked, {recorded_key} installed")
    pinned = want.pinned
    if pinned is not None and pinned.ip != record.provider_ip and pinned.provider_id != record.provider_id:
        diffs.append(f"provider {pinned.describe()} asked, {in_place} in place")
    if want.country and record.country and want.country != record.country:
        diffs.append(f"country {want.country} asked, {record.country} in place")
    return diffs
