# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the ``golem.vm.golem`` inventory gets its data: the options, the state file, a refresh, the cache.

A :class:`Snapshot` is what gets cached: the raw rows as plain dicts and the refresh results, never
built hosts or groups, so a cache hit runs the same populate step (and compose/keyed_groups) as a miss.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import StreamRunway
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store
from ansible_collections.golem.vm.plugins.module_utils.state.postgres_url import parse_state_url
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import check_state_path
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import FILTER_KEYS, VMFilter
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts, RecordedEndpoints
from ansible_collections.golem.vm.plugins.module_utils.vm.provider_status import LiveStatus
from ansible_collections.golem.vm.plugins.module_utils.vm.refresh import RefreshOptions, refresh_options, refresh_vms
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_hosts import live_from_cache
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_options import (
    Reader,
    known_hosts_path,
    state_location,
)

CACHE_FORMAT = 1  # entries of older versions differ in their query fingerprint ("payments"), so they are read again
HOSTVARS_PREFIX = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*)?")


def check_hostvars_prefix(prefix: str) -> None:
    """Host variables named with a prefix that cannot start a variable name could never be used."""
    if not HOSTVARS_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"hostvars_prefix {prefix!r} cannot start a variable name; use letters, digits and '_', "
            "not starting with a digit")


@dataclass(frozen=True)
class Query:
    state_path: str  # "" when the state is in PostgreSQL
    known_hosts_path: str
    filter: VMFilter  # its statuses go by the live status after a refresh
    refresh: bool
    private_key_path: str | None = None
    # A postgresql:// URL (it may hold a password: never shown, cached or compared as such).
    state_url: str | None = field(default=None, repr=False)
    location: str = ""  # where the rows are, for messages: the file, or user@host:port/db
    refresh_options: RefreshOptions = RefreshOptions()
    runway_threshold: int = 3600  # seconds

    @classmethod
    def from_options(cls, read: Reader) -> Query:
        state = state_location(read)
        if state.path is not None:
            # A directory or a foreign file would otherwise read as "no VMs" or fail deep in SQLite.
            check_state_path(state.path, field=state.field)
            location = state.path
        else:
            location = parse_state_url(state.url or "", state.field).display()
        known = known_hosts_path(read, state.local_dir)
        if os.path.isdir(known.value):
            raise ValueError(f"{known.field} {known.value!r} is a directory; give the path of a known_hosts file")
        # Checked even without a refresh, so a typo fails the same way whatever else is set.
        options = refresh_options(timeout=read("refresh_timeout").value,
                                  concurrency=int(read("refresh_concurrency").value),
                                  discovery_url=read("discovery_url").value)
        refresh = bool(read("refresh").value)
        threshold = 3600
        if refresh:
            options, threshold = _payment_options(options, read)
        return cls(
            state_path=state.path or "",
            state_url=state.url,
            location=location,
            known_hosts_path=known.value,
            filter=_filter(read),
            refresh=refresh,
            private_key_path=read("ssh_private_key_path").value or None,
            refresh_options=options,
            runway_threshold=threshold,
        )

    def fingerprint(self) -> dict[str, Any]:
        """What decides which rows a snapshot holds; a cached one for other values is not used."""
        options = self.refresh_options
        return {
            "state_path": self.state_path or self.location,
            **self.filter.fingerprint(),
            "refresh": self.refresh,
            "payments": [options.payments_rpc_url, options.stream_payment_address] if self.refresh else None,
        }

    def wants(self, record: VMRecord, status: str) -> bool:
        return self.filter.selects(record) and self.filter.status_ok(status)


def _filter(read: Reader) -> VMFilter:
    """The top-level filters, golem_vm_info's options by name; then the deprecated ``filters``, whose keys
    replace the options of their name.

    A filter set both ways in the file is refused: one would silently lose.
    """
    filters = read("filters").value or {}
    for name in FILTER_KEYS:
        if isinstance(filters, dict) and name in filters and read(name).given:
            raise ValidationError(f"{name} and filters.{name} are both set; keep {name}, filters is deprecated",
                                  field=f"filters.{name}", value=filters[name])
    base = VMFilter.parse(names=[str(n) for n in read("names").value or ()],
                          providers=[str(p) for p in read("providers").value or ()],
                          countries=read("countries").value or None,
                          statuses=[str(s) for s in read("statuses").value or ()],
                          labels=read("labels").value,
                          exclude_statuses=[str(s) for s in read("exclude_statuses").value or ()])
    return VMFilter.from_mapping(filters, base)


def _payment_options(options: RefreshOptions, read: Reader) -> tuple[RefreshOptions, int]:
    """What a refresh needs to read the streams' runways, and the low-runway threshold in seconds; read only
    when it refreshes, so listing stays lean."""
    url, address = read("payments_rpc_url"), read("stream_payment_address")
    hours = float(read("runway_threshold_hours").value)
    # Written so that NaN fails too.
    if not hours > 0:  # pylint: disable=unnecessary-negation
        raise ValueError(f"runway_threshold_hours must be more than 0, got {hours:g}")
    try:
        checked = refresh_options(timeout=options.timeout, concurrency=options.concurrency, payments_rpc_url=url.value,
                                  stream_payment_address=address.value, discovery_url=options.discovery_url)
    except ValidationError as exc:
        # The modules' rule: a message about a value read from a variable names the variable.
        sources = {name: value.field for name, value in (("payments_rpc_url", url), ("stream_payment_address", address))
                   if value.field != name}
        raise settings.name_source(exc, sources) from None
    return checked, round(hours * 3600)


@dataclass
class Snapshot:
    records: list[VMRecord]
    live: dict[str, LiveStatus] | None = None
    messages: list[str] = field(default_factory=list)
    # known_hosts is read afresh on every run, cache hit or not, and never cached.
    recorded: RecordedEndpoints | None = None
    known_hosts_message: str | None = None
    # By VM name, for each VM with a stream, after a refresh.
    streams: dict[str, StreamRunway] | None = None

    @classmethod
    def read(cls, query: Query) -> Snapshot:
        store = open_store(query.state_url, query.state_path or None)
        try:
            if not store.exists():
                snapshot = cls([], messages=[f"state {query.location} does not exist yet, so there are no VMs to list"])
            else:
                # With a refresh the live status decides, so every status is read; else the state filters too.
                snapshot = cls(store.list(**query.filter.store_query(with_statuses=not query.refresh)))
        finally:
            store.close()
        if query.refresh and snapshot.records:
            snapshot._refresh(query)
        snapshot.read_known_hosts(query)
        return snapshot

    def _refresh(self, query: Query) -> None:
        # Rows the filters drop, or that cannot become hosts (no SSH port), are not worth a request.
        selected = [r for r in self.records if query.filter.selects(r)]
        result = refresh_vms(selected, query.refresh_options, ask_provider=lambda r: bool(r.ssh_port))
        self.live = result.live
        self.streams = result.streams
        self.messages.extend(result.messages)
        for (ip, port), why in sorted(result.unreachable.items()):
            self.messages.append(f"provider {ip}:{port} is unreachable, its hosts are in golem_unreachable: {why}")

    def read_known_hosts(self, query: Query) -> None:
        known_hosts = KnownHosts(query.known_hosts_path)
        if not os.path.exists(known_hosts.path):
            self.known_hosts_message = f"known_hosts file {known_hosts.path} does not exist; no host key is known"
        try:
            self.recorded = known_hosts.recorded()
        except GolemError as exc:
            self.recorded = None
            self.known_hosts_message = f"{exc}; host_key_known is null for every host"

    # --- cache -----------------------------------------------------------------------

    def to_cache(self, query: Query) -> dict[str, Any]:
        """Plain JSON: the rows as dicts and the refresh results as lists, whatever the cache plugin."""
        return {
            "format": CACHE_FORMAT,
            "query": query.fingerprint(),
            "rows": [r.to_dict() for r in self.records],
            "live": None if self.live is None else {n: s.to_list() for n, s in self.live.items()},
            "streams": None if self.streams is None else {n: s.to_list() for n, s in self.streams.items()},
            "messages": list(self.messages),
        }

    @classmethod
    def from_cache(cls, data: Any, query: Query) -> Snapshot | None:
        """The cached snapshot, or None when it is for other options or not one of ours."""
        if not isinstance(data, Mapping) or data.get("format") != CACHE_FORMAT:
            return None
        if data.get("query") != query.fingerprint():
            return None
        try:
            records = [VMRecord.from_dict(row) for row in data["rows"]]
            live = live_from_cache(data.get("live"))
            messages = [str(m) for m in data.get("messages") or ()]
            streams = _streams_from_cache(data.get("streams"))
        except (KeyError, TypeError, ValueError):
            return None
        snapshot = cls(records, live, messages, streams=streams)
        snapshot.read_known_hosts(query)
        return snapshot


def _streams_from_cache(data: Any) -> dict[str, Any] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError("cached stream runways are not a mapping")
    return {str(name): StreamRunway.from_list(value) for name, value in data.items()}
