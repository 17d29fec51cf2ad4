# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``golem.vm.golem`` inventory makes of one recorded VM: its connection vars, hostvars and groups.

Kept free of ansible imports so it stays cheap to import and easy to test. The hostvars reuse
``represent_vm``, so a host in the inventory shows the same fields as golem_vm's ``vm`` result.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.known_hosts import RecordedEndpoints, host_pattern, keys_of
from ansible_collections.golem.vm.plugins.module_utils.state import STATUSES, VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm_view import represent_vm, ssh_command

# The provider's VMStatus values beyond what the state file records, and what a refresh reports for
# a VM its provider no longer knows (HTTP 404). Hard-coded: importing the models would pull in pydantic.
LIVE_ONLY_STATUSES = ("stopping", "deleted")
MISSING = "missing"
KNOWN_STATUSES = frozenset((*STATUSES, *LIVE_ONLY_STATUSES, MISSING))

TOP_GROUP = "golem"
UNREACHABLE_GROUP = "golem_unreachable"
RUNWAY_LOW_GROUP = "golem_runway_low"
# A VM its provider no longer has is not worth paying for, whatever its stream's runway.
_GONE_STATUSES = frozenset((MISSING, "deleted"))
_GLOB_CHARS = frozenset("*?[")


class SkipHost(Exception):
    """A row that cannot become a host; the message says why, for a warning naming the VM."""


@dataclass(frozen=True)
class LiveStatus:
    """What a refresh learnt about one VM from its provider."""

    reachable: bool
    status: str | None = None  # the provider's status, MISSING on 404, None when not learnt
    error: str | None = None

    def to_list(self) -> list[Any]:
        return [self.reachable, self.status, self.error]

    @classmethod
    def from_list(cls, data: Any) -> LiveStatus:
        reachable, status, error = data
        return cls(bool(reachable), None if status is None else str(status), None if error is None else str(error))


@dataclass(frozen=True)
class HostEntry:
    name: str
    status: str  # effective: the live status when a refresh learnt one, else the recorded one
    hostvars: dict[str, Any]
    groups: tuple[str, ...]  # raw names; the plugin sanitises them


def effective_status(record: VMRecord, live: LiveStatus | None) -> str:
    """The status that filters and groups go by: the provider's, when a refresh learnt it."""
    return live.status if live is not None and live.status is not None else record.status


def ssh_common_args(known_hosts_path: str, identities_only: bool, shared_key: str | None = None) -> str:
    """Strict host key checking against the collection's known_hosts, never against the user's own.

    ``shared_key`` (``"[host]:port type base64"``): the key recorded in the state, handed to ssh by
    ``KnownHostsCommand`` (OpenSSH 8.5+) as the only known key, so a controller or an AWX job that
    shares the state but not the file still checks it strictly.
    """
    if shared_key is not None:
        args = ["-o", "UserKnownHostsFile=/dev/null", "-o", f"KnownHostsCommand=/bin/echo {shared_key}",
                "-o", "StrictHostKeyChecking=yes"]
    else:
        args = ["-o", f"UserKnownHostsFile={known_hosts_path}", "-o", "StrictHostKeyChecking=yes"]
    if identities_only:
        # With a key given, stop ssh from offering every agent key first and hitting MaxAuthTries.
        args += ["-o", "IdentitiesOnly=yes"]
    return " ".join(shlex.quote(a) for a in args)


class HostBuilder:
    """Turns VMRecords into HostEntries; one instance per parse, so per-host work stays minimal."""

    def __init__(self, prefix: str, known_hosts_path: str, recorded: RecordedEndpoints | None,
                 key_file: str | None = None, runway_threshold: int = 3600) -> None:
        self.prefix = prefix
        # Seconds: a refreshed VM whose running stream has less runway left is in RUNWAY_LOW_GROUP.
        self.runway_threshold = runway_threshold
        self.known_hosts_path = known_hosts_path
        self.recorded = recorded
        # One key for every host instead of the recorded ones (a credential's key file, new in every job).
        self.key_file = key_file
        # The same string objects for every host: 10,000 hosts share two values.
        self._args_with_key = ssh_common_args(known_hosts_path, identities_only=True)
        self._args_without_key = ssh_common_args(known_hosts_path, identities_only=False)
        self._keys: dict[str, str] = {}

    def _key(self, name: str) -> str:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = self.prefix + name
        return key

    def build(self, record: VMRecord, live: LiveStatus | None = None, stream: Any = None) -> HostEntry:
        """``live`` and ``stream`` (an inventory_runway.StreamRunway) come from a refresh; None without one."""
        if not record.ok:
            raise SkipHost(record.config_error or "its config is unreadable")
        port = record.ssh_port
        if not port:
            raise SkipHost(f"no SSH port is recorded (status {record.status or 'unknown'})")
        if not record.ssh_host:
            raise SkipHost("no SSH host or provider IP is recorded")
        view = represent_vm(record, known_hosts_path=self.known_hosts_path)
        view["vm_id"] = record.vm_id
        if self.key_file:
            # The inventory's key (an AWX job's fresh key file) is the one connections use, so the
            # line to paste names it too; golem_ssh_private_key_path still shows what was recorded.
            view["ssh_command"] = ssh_command(view["ssh_host"], port, view["ssh_user"], self.key_file,
                                              self.known_hosts_path)
        shared = keys_of(record.config.get("host_keys")) if "host_keys" in record.config else None
        if shared:
            # ed25519 first: ssh prefers the algorithms it knows a key for.
            key = next((k for k in shared if k.key_type == "ssh-ed25519"), shared[0])
            shared_key: str | None = f"{host_pattern(record.ssh_host, port)} {key.key_type} {key.key}"
            view["host_key_known"] = True
        else:
            shared_key = None
            view["host_key_known"] = self.recorded.has(record.ssh_host, port) if self.recorded is not None else None
        status = effective_status(record, live)
        if live is not None:
            view["recorded_status"] = record.status
            view["live_status"] = live.status
            view["provider_reachable"] = live.reachable
            view["refresh_error"] = live.error
            view["status"] = status
            view.update(self._stream_vars(record, status, stream))
        key_file = self.key_file or record.ssh_private_key_path
        hostvars: dict[str, Any] = {
            "ansible_host": view["ssh_host"],
            "ansible_port": port,
            "ansible_user": view["ssh_user"],
        }
        if key_file:
            hostvars["ansible_ssh_private_key_file"] = key_file
        if shared_key is not None:
            hostvars["ansible_ssh_common_args"] = ssh_common_args(self.known_hosts_path, bool(key_file), shared_key)
        else:
            hostvars["ansible_ssh_common_args"] = self._args_with_key if key_file else self._args_without_key
        key = self._key
        for name, value in view.items():
            hostvars[key(name)] = value
        groups: list[str] = []
        provider = record.provider_id or record.provider_ip
        if provider:
            groups.append(f"{TOP_GROUP}_provider_{provider.lower()}")
        if record.country:
            groups.append(f"{TOP_GROUP}_country_{record.country.lower()}")
        if status:
            groups.append(f"{TOP_GROUP}_status_{status.lower()}")
        if live is not None and not live.reachable:
            groups.append(UNREACHABLE_GROUP)
        if (stream is not None and stream.ended is None and stream.remaining_seconds is not None
                and stream.remaining_seconds < self.runway_threshold and status not in _GONE_STATUSES):
            groups.append(RUNWAY_LOW_GROUP)
        return HostEntry(record.name, status, hostvars, tuple(groups))

    @staticmethod
    def _stream_vars(record: VMRecord, status: str, stream: Any) -> dict[str, Any]:
        """The payment stream's runway from a refresh, and why a paid VM is gone when its stream says why."""
        missing_reason = None
        if stream is not None and stream.ended is not None and status in _GONE_STATUSES:
            missing_reason = (f"its payment stream {stream.stream_id} {stream.ended}, and a paying provider deletes "
                              "a VM whose stream has ended")
        return {
            "stream_id": record.stream_id,
            "stream_remaining_seconds": None if stream is None else stream.remaining_seconds,
            "stream_error": None if stream is None else stream.error,
            "missing_reason": missing_reason,
        }


@dataclass(frozen=True)
class NameFilter:
    """``names``: exact VM names go to SQL; shell-style patterns (``web-*``) are matched here."""

    exact: frozenset[str] | None
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, names: Iterable[str] | None) -> NameFilter:
        if not names:
            return cls(None, ())
        exact = [n for n in names if not _GLOB_CHARS & set(n)]
        patterns = tuple(n for n in names if _GLOB_CHARS & set(n))
        return cls(frozenset(exact), patterns)

    @property
    def sql_names(self) -> list[str] | None:
        """What to hand StateStore.list: None (every row) as soon as there is a pattern."""
        return None if self.exact is None or self.patterns else sorted(self.exact)

    def __call__(self, name: str) -> bool:
        if self.exact is None:
            return True
        return name in self.exact or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


def check_statuses(statuses: Iterable[str] | None) -> list[str]:
    """The ``statuses`` option, validated so a typo fails loudly instead of emptying the inventory."""
    values = [str(s).strip().lower() for s in statuses or ()]
    unknown = sorted(set(values) - KNOWN_STATUSES)
    if unknown:
        raise ValueError(
            f"unknown status {', '.join(unknown)} in statuses; known: {', '.join(sorted(KNOWN_STATUSES))}"
        )
    return values


def live_from_cache(data: Any) -> dict[str, LiveStatus] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("cached refresh results are not a mapping")
    return {str(name): LiveStatus.from_list(value) for name, value in data.items()}
