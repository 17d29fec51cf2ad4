# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``golem.vm.golem`` inventory makes of the recorded VMs: each one's connection vars, hostvars and
groups, and which of them become hosts under which names.

Kept free of ansible imports so it stays cheap to import and easy to test. The hostvars reuse
``represent_vm``, so a host in the inventory shows the same fields as golem_vm's ``vm`` result.

An abandoned member (golem_fleet gave up on it and replaced it) is a host for what it shows, in a group of its
own and no other, with nothing to connect to: a play that reaches it by accident fails to connect.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import StreamRunway
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import show, word_problem
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import RecordedEndpoints, host_pattern, keys_of
from ansible_collections.golem.vm.plugins.module_utils.vm.provider_status import LiveStatus, effective_status
from ansible_collections.golem.vm.plugins.module_utils.vm.refresh import refresh_fields, runway_low
from ansible_collections.golem.vm.plugins.module_utils.vm.view import represent_vm, ssh_command

TOP_GROUP = "golem"
UNREACHABLE_GROUP = "golem_unreachable"
RUNWAY_LOW_GROUP = "golem_runway_low"
ABANDONED_GROUP = f"{TOP_GROUP}_status_{ABANDONED}"
# An abandoned host's ansible_host: a name that never resolves (the reserved .invalid domain), so ssh fails
# at once instead of falling back to the host name - which an older ssh_config may still map to the VM's
# old endpoint, or DNS to some other machine.
NO_HOST = "abandoned.golem.invalid"


class SkipHost(Exception):
    """A row that cannot become a host; the message says why, for a warning naming the VM."""


@dataclass(frozen=True)
class HostEntry:
    name: str
    status: str  # effective: the live status when a refresh learnt one, else the recorded one
    hostvars: dict[str, Any]
    groups: tuple[str, ...]  # raw names; the plugin sanitises them


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

    def build(self, record: VMRecord, live: LiveStatus | None = None, stream: StreamRunway | None = None) -> HostEntry:
        """``live`` and ``stream`` come from a refresh; None without one."""
        if not record.ok:
            raise SkipHost(record.config_error or "its config is unreadable")
        refused = record.endpoint_problem()
        if refused is not None:
            # Never an Ansible host, an ssh option or an ssh_config line: checked where it is read.
            raise SkipHost(refused)
        view = represent_vm(record, known_hosts_path=self.known_hosts_path)
        view["vm_id"] = record.vm_id
        if record.status == ABANDONED:
            return self._abandoned(record, view, live, stream)
        port = record.ssh_port
        if not port:
            raise SkipHost(f"no SSH port is recorded (status {record.status or 'unknown'})")
        if not record.ssh_host:
            raise SkipHost("no SSH host or provider IP is recorded")
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
            view.update(refresh_fields(record, live, stream))
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
        self._describe(hostvars, view)
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
        if runway_low(stream, status, self.runway_threshold):
            groups.append(RUNWAY_LOW_GROUP)
        return HostEntry(record.name, status, hostvars, tuple(groups))

    def _abandoned(self, record: VMRecord, view: dict[str, Any], live: LiveStatus | None,
                   stream: StreamRunway | None) -> HostEntry:
        """No user, key, port or ssh options, whatever the row records; only ABANDONED_GROUP, so no group of
        hosts to configure (by provider, country or a refresh's findings) reaches it."""
        view["host_key_known"] = None  # not to be connected to, so not asked
        if live is not None:
            view.update(refresh_fields(record, live, stream))
        hostvars: dict[str, Any] = {"ansible_host": NO_HOST}
        self._describe(hostvars, view)
        return HostEntry(record.name, ABANDONED, hostvars, (ABANDONED_GROUP,))

    def _describe(self, hostvars: dict[str, Any], view: dict[str, Any]) -> None:
        key = self._key
        for name, value in view.items():
            hostvars[key(name)] = value


def hostname_problem(hostname: Any) -> str | None:
    """Why what a hostname template gave cannot be a host name; None when it can."""
    if hostname in (None, ""):
        return "gave an empty host name"
    problem = word_problem(str(hostname))
    # A label or other row text in the template must not put a line into ssh_config.yml's file.
    return None if problem is None else f"gave {show(str(hostname))}, which {problem}"


class Listing:
    """Which recorded VMs become hosts, under which host names, and the counts for the summary."""

    def __init__(self, builder: HostBuilder, hostname: Callable[[HostEntry], str] | None,
                 warn: Callable[[str], None]) -> None:
        self.builder = builder
        self.hostname = hostname  # the host name of an entry; without it, the VM name
        self.warn = warn
        self.listed = self.skipped = self.without_key = 0

    def hosts(self, records: Iterable[VMRecord], live: Mapping[str, LiveStatus] | None,
              streams: Mapping[str, StreamRunway] | None,
              wants: Callable[[VMRecord, str], bool]) -> Iterator[tuple[str, HostEntry]]:
        """``wants(record, status)``: the filters, given the effective status."""
        builder = self.builder
        names: dict[str, str] = {}  # host name -> the VM listed under it
        for record in records:
            found = live.get(record.name) if live is not None else None
            stream = streams.get(record.name) if streams is not None else None
            # Filter first: a row nobody asked for is not worth a warning.
            if not wants(record, effective_status(record, found)):
                continue
            try:
                entry = builder.build(record, found, stream)
            except SkipHost as exc:
                self.skipped += 1
                shown = record.name if word_problem(record.name) is None else show(record.name)
                self.warn(f"golem inventory: skipped VM {shown}: {exc}")
                continue
            hostname = self.hostname(entry) if self.hostname else entry.name
            if hostname in names:
                self.warn(f"golem inventory: skipped VM {entry.name}: its host name {hostname!r} is already VM "
                          f"{names[hostname]}'s")
                continue
            names[hostname] = entry.name
            self.listed += 1
            if (builder.recorded is not None and entry.status != ABANDONED
                    and not entry.hostvars[builder.prefix + "host_key_known"]):
                self.without_key += 1
            yield hostname, entry

    def summary(self, location: str) -> list[str]:
        lines = [f"golem inventory: {self.listed} hosts from {location}, {self.skipped} rows skipped"]
        if self.without_key:
            lines.append(f"golem inventory: {self.without_key} hosts have no host key in "
                         f"{self.builder.known_hosts_path}; ssh refuses them (StrictHostKeyChecking=yes) until "
                         "golem_vm records their keys")
        return lines


def live_from_cache(data: Any) -> dict[str, LiveStatus] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("cached refresh results are not a mapping")
    return {str(name): LiveStatus.from_list(value) for name, value in data.items()}
