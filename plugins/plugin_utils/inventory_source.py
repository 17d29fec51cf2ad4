# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the ``golem.vm.golem`` inventory gets its data: the options, the state file, a refresh, the cache.

A :class:`Snapshot` is what gets cached: the raw rows as plain dicts and the refresh results, never
built hosts or groups, so a cache hit runs the same populate step (and compose/keyed_groups) as a miss.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils import settings
from ansible_collections.golem.vm.plugins.module_utils.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.known_hosts import KnownHosts, RecordedEndpoints
from ansible_collections.golem.vm.plugins.module_utils.state import VMRecord, check_state_path
from ansible_collections.golem.vm.plugins.module_utils.state_url import parse_state_url
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_hosts import (
    LiveStatus,
    NameFilter,
    check_statuses,
    live_from_cache,
)

CACHE_FORMAT = 1  # entries of older versions differ in their query fingerprint ("payments"), so they are read again
HOSTVARS_PREFIX = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*)?")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# Upstream's CLI reads the contract from this variable; rows the collection wrote record their own.
STREAM_PAYMENT_ADDRESS_ENV = "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"


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
    statuses: tuple[str, ...]  # empty: every status
    names: NameFilter
    providers: tuple[str, ...]
    refresh: bool
    refresh_timeout: float
    refresh_concurrency: int
    private_key_path: str | None = None
    discovery_url: str = settings.DEFAULT_DISCOVERY_URL
    # A postgresql:// URL (it may hold a password: never shown, cached or compared as such).
    state_url: str | None = field(default=None, repr=False)
    location: str = ""  # where the rows are, for messages: the file, or user@host:port/db
    payments_rpc_url: str = settings.DEFAULT_PAYMENTS_RPC_URL
    stream_payment_address: str | None = None
    runway_threshold: int = 3600  # seconds

    @classmethod
    def from_options(cls, get_option: Callable[[str], Any], explicit: Callable[[str], Any]) -> Query:
        """``explicit(name)`` is an option's value only when the configuration file sets it; the
        environment and the defaults are applied by module_utils.settings, as for the modules."""
        state = settings.state_location(explicit("state_url"), explicit("state_path"))
        if state.path is not None:
            # A directory or a foreign file would otherwise read as "no VMs" or fail deep in SQLite.
            check_state_path(state.path, field=state.field)
            location = state.path
        else:
            location = parse_state_url(state.url or "", state.field).display()
        known = settings.known_hosts_path(explicit("known_hosts_path"), state.local_dir)
        if os.path.isdir(known.value):
            raise ValueError(f"{known.field} {known.value!r} is a directory; give the path of a known_hosts file")
        timeout = float(get_option("refresh_timeout"))
        concurrency = int(get_option("refresh_concurrency"))
        if timeout <= 0:
            raise ValueError(f"refresh_timeout must be more than 0, got {timeout:g}")
        if concurrency < 1:
            raise ValueError(f"refresh_concurrency must be at least 1, got {concurrency}")
        refresh = bool(get_option("refresh"))
        payments = _payment_options(get_option, explicit) if refresh else {}
        return cls(
            state_path=state.path or "",
            state_url=state.url,
            location=location,
            known_hosts_path=known.value,
            statuses=tuple(check_statuses(get_option("statuses"))),
            names=NameFilter.parse([str(n) for n in get_option("names") or ()]),
            providers=tuple(str(p) for p in get_option("providers") or ()),
            refresh=refresh,
            refresh_timeout=timeout,
            refresh_concurrency=concurrency,
            private_key_path=settings.private_key_path(explicit("ssh_private_key_path")),
            discovery_url=settings.discovery_url(explicit("discovery_url")),
            **payments,
        )

    def fingerprint(self) -> dict[str, Any]:
        """What decides which rows a snapshot holds; a cached one for other values is not used."""
        return {
            "state_path": self.state_path or self.location,
            "statuses": sorted(self.statuses),
            "names": sorted(self.names.exact or ()) + sorted(self.names.patterns),
            "providers": sorted(self.providers),
            "refresh": self.refresh,
            "payments": [self.payments_rpc_url, self.stream_payment_address] if self.refresh else None,
        }

    def wants(self, name: str, status: str) -> bool:
        return (not self.statuses or status in self.statuses) and self.names(name)


def _payment_options(get_option: Callable[[str], Any], explicit: Callable[[str], Any]) -> dict[str, Any]:
    """What a refresh needs to read the streams' runways; read only when it refreshes, so listing stays lean.

    The variables go by module_utils.settings' rules (an empty one is unset), as for the modules.
    """
    url = explicit("payments_rpc_url") or next(
        (v for v in (settings.env_value(n) for n in settings.PAYMENTS_RPC_ENVS) if v), settings.DEFAULT_PAYMENTS_RPC_URL)
    if not str(url).startswith(("http://", "https://")):
        raise ValueError(f"payments_rpc_url {url!r} must be an http:// or https:// URL of the chain's JSON-RPC")
    address = explicit("stream_payment_address") or settings.env_value(STREAM_PAYMENT_ADDRESS_ENV)
    if address is not None and not ADDRESS.fullmatch(str(address)):
        raise ValueError(f"stream_payment_address {address!r} is not a contract address (0x and 40 hexadecimal "
                         "digits)")
    hours = float(get_option("runway_threshold_hours"))
    # Written so that NaN fails too.
    if not hours > 0:  # pylint: disable=unnecessary-negation
        raise ValueError(f"runway_threshold_hours must be more than 0, got {hours:g}")
    return {"payments_rpc_url": str(url), "stream_payment_address": address, "runway_threshold": round(hours * 3600)}


@dataclass
class Snapshot:
    records: list[VMRecord]
    live: dict[str, LiveStatus] | None = None
    messages: list[str] = field(default_factory=list)
    # known_hosts is read afresh on every run, cache hit or not, and never cached.
    recorded: RecordedEndpoints | None = None
    known_hosts_message: str | None = None
    # name -> StreamRunway (plugin_utils.inventory_runway) of each VM with a stream, after a refresh.
    streams: dict[str, Any] | None = None

    @classmethod
    def read(cls, query: Query) -> Snapshot:
        # Imported here: the PostgreSQL backend (and psycopg) only for a postgresql:// URL.
        from ansible_collections.golem.vm.plugins.module_utils.state_open import open_store

        store = open_store(query.state_url, query.state_path or None)
        try:
            if not store.exists():
                snapshot = cls([], messages=[f"state {query.location} does not exist yet, so there are no VMs to list"])
            else:
                # With a refresh the live status decides, so every status is read; else SQL filters.
                snapshot = cls(store.list(
                    statuses=None if query.refresh or not query.statuses else list(query.statuses),
                    names=query.names.sql_names,
                    providers=list(query.providers) or None,
                ))
        finally:
            store.close()
        if query.refresh and snapshot.records:
            snapshot._refresh(query)
        snapshot.read_known_hosts(query)
        return snapshot

    def _refresh(self, query: Query) -> None:
        from ansible_collections.golem.vm.plugins.plugin_utils.inventory_refresh import missing_libraries, refresh

        problem = missing_libraries()
        if problem:
            raise GolemError(problem)
        from ansible_collections.golem.vm.plugins.module_utils.models import name_problem

        # Rows that cannot become hosts are not worth a request.
        wanted = [r for r in self.records if r.ok and r.ssh_port and r.provider_ip and query.names(r.name)]
        # A name from the state file goes into a URL path only if it is one a provider could have made.
        odd = [r.name for r in wanted if name_problem(r.name)]
        if odd:
            wanted = [r for r in wanted if r.name not in odd]
            self.messages.append(
                f"did not ask providers about {len(odd)} VM(s) whose recorded name is not a valid VM name, "
                f"such as {odd[0]!r}; their recorded status counts")
        from concurrent.futures import ThreadPoolExecutor

        # The chain is read while the providers are asked: the refresh takes as long as the slower of the two.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="golem-runway") as pool:
            runways = pool.submit(self._read_runways, query)
            report = refresh(wanted, timeout=query.refresh_timeout, concurrency=query.refresh_concurrency,
                             discovery_url=query.discovery_url)
            self.streams = runways.result()
        self.live = report.live
        self.messages.append(
            f"refreshed {len(wanted)} VMs on {report.providers} providers in {report.seconds:.2f} s"
        )
        for (ip, port), why in sorted(report.unreachable.items()):
            self.messages.append(f"provider {ip}:{port} is unreachable, its hosts are in golem_unreachable: {why}")

    def _read_runways(self, query: Query) -> dict[str, Any]:
        """Each VM's stream from the chain; a row whose contract is not known gets an error saying so."""
        from ansible_collections.golem.vm.plugins.plugin_utils.inventory_runway import StreamRunway, read_runways

        found: dict[str, Any] = {}
        keys: dict[str, tuple[str, int]] = {}
        for record in self.records:
            if not record.ok or record.stream_id is None or not query.names(record.name):
                continue
            contract = record.config.get("stream_contract")
            if not (isinstance(contract, str) and ADDRESS.fullmatch(contract)):
                contract = query.stream_payment_address
            if contract is None:
                found[record.name] = StreamRunway(record.stream_id, error=(
                    "the row records no StreamPayment contract (the stream was not opened by the collection); set "
                    f"stream_payment_address or {STREAM_PAYMENT_ADDRESS_ENV}"))
                continue
            keys[record.name] = (contract.lower(), record.stream_id)
        runways = read_runways(query.payments_rpc_url, keys.values(), timeout=query.refresh_timeout)
        for name, key in keys.items():
            found[name] = runways[key]
        failed = {r.error for r in runways.values() if r.error}
        if failed:
            self.messages.append(f"could not read {len([r for r in runways.values() if r.error])} payment stream(s) "
                                 f"from the chain: {sorted(failed)[0]}")
        return found

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
    from ansible_collections.golem.vm.plugins.plugin_utils.inventory_runway import StreamRunway

    return {str(name): StreamRunway.from_list(value) for name, value in data.items()}
