# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One refresh of recorded VMs, for golem_vm_info and the ``golem.vm.golem`` inventory alike.

Each VM's provider is asked for the VM by name (provider_refresh) while the chain is asked for every
paid VM's stream (stream_runways), so a refresh takes as long as the slower of the two, never their
sum, and all of it within one time budget. Nothing is written: the state stays as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import ADDRESS
from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import StreamRunway, read_runways
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import MISSING
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import check_contract_address, check_rpc_url
from ansible_collections.golem.vm.plugins.module_utils.vm.provider_status import (
    Endpoint,
    LiveStatus,
    effective_status,
    require_libraries,
    refresh,
)

# Upstream's CLI reads the contract from this variable; rows the collection wrote record their own.
STREAM_PAYMENT_ADDRESS_ENV = settings.STREAM_PAYMENT_ADDRESS_ENV
# A VM its provider no longer has is not worth paying for, whatever its stream's runway.
GONE_STATUSES = frozenset((MISSING, "deleted"))
DEFAULT_TIMEOUT = 10.0
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class RefreshOptions:
    """How to refresh; build it with :func:`refresh_options`, which checks every value."""

    timeout: float = DEFAULT_TIMEOUT  # the whole refresh, every request included
    concurrency: int = DEFAULT_CONCURRENCY
    discovery_url: str = settings.DEFAULT_DISCOVERY_URL
    payments_rpc_url: str = settings.DEFAULT_PAYMENTS_RPC_URL
    stream_payment_address: str | None = None
    default_port: int = 7466
    request_timeout: float | None = None  # one request; None: the whole budget
    validate_certs: bool = True


def refresh_options(*, timeout: Any = DEFAULT_TIMEOUT, concurrency: Any = DEFAULT_CONCURRENCY,
                    payments_rpc_url: Any = settings.DEFAULT_PAYMENTS_RPC_URL, stream_payment_address: Any = None,
                    **rest: Any) -> RefreshOptions:
    """The options, each checked and named as the user wrote it when it is bad."""
    try:
        budget = float(timeout)
    except (TypeError, ValueError):
        budget = math.nan
    # Written so that NaN fails too; an infinite budget would let one silent provider hang the run.
    if not 0 < budget < math.inf:
        raise ValidationError(f"refresh_timeout must be more than 0 seconds, got {timeout!r}",
                              field="refresh_timeout", value=timeout)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(f"refresh_concurrency must be a whole number of at least 1, got {concurrency!r}",
                              field="refresh_concurrency", value=concurrency)
    check_rpc_url(payments_rpc_url)
    check_contract_address(stream_payment_address)
    return RefreshOptions(timeout=budget, concurrency=concurrency, payments_rpc_url=str(payments_rpc_url),
                          stream_payment_address=stream_payment_address, **rest)


@dataclass
class RefreshResult:
    live: dict[str, LiveStatus] = field(default_factory=dict)  # VMs whose provider was asked
    streams: dict[str, StreamRunway] = field(default_factory=dict)  # VMs with a stream
    not_asked: dict[str, str] = field(default_factory=dict)  # VM -> why its provider was not asked
    unreachable: dict[Endpoint, str] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def refresh_vms(records: Sequence[VMRecord], options: RefreshOptions, *,
                ask_provider: Callable[[VMRecord], bool] | None = None) -> RefreshResult:
    """Refresh ``records`` (readable rows only; the caller has filtered them), asking a provider only for
    rows ``ask_provider`` accepts. Unreachable providers and unreadable streams are results, not errors."""
    require_libraries()
    # Imported here: pydantic's models only once a refresh is asked for.
    from ansible_collections.golem.vm.plugins.module_utils.provider.models import name_problem

    result = RefreshResult()
    wanted = []
    odd = []
    for record in records:
        if not record.ok or (ask_provider is not None and not ask_provider(record)):
            continue
        if not record.provider_ip:
            result.not_asked[record.name] = "no provider IP is recorded, so there is no provider to ask"
        elif name_problem(record.name):
            # A name from the state goes into a URL path only if it is one a provider could have made.
            result.not_asked[record.name] = "its recorded name is not a valid VM name, so its provider was not asked"
            odd.append(record.name)
        else:
            wanted.append(record)
    if odd:
        result.messages.append(f"did not ask providers about {len(odd)} VM(s) whose recorded name is not a valid VM "
                               f"name, such as {odd[0]!r}; their recorded status counts")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="golem-runway") as pool:
        runways = pool.submit(_read_streams, records, options, result.messages)
        report = refresh(wanted, timeout=options.timeout, concurrency=options.concurrency,
                         default_port=options.default_port, discovery_url=options.discovery_url,
                         request_timeout=options.request_timeout, validate_certs=options.validate_certs)
        result.streams = runways.result()
    result.live = report.live
    result.unreachable = report.unreachable
    result.messages.append(f"refreshed {len(wanted)} VMs on {report.providers} providers in {report.seconds:.2f} s")
    return result


def _read_streams(records: Sequence[VMRecord], options: RefreshOptions, messages: list[str]) -> dict[str, StreamRunway]:
    """Each VM's stream from the chain; a row whose contract is not known gets an error saying so."""
    found: dict[str, StreamRunway] = {}
    keys: dict[str, tuple[str, int]] = {}
    for record in records:
        if not record.ok or record.stream_id is None:
            continue
        contract = record.config.get("stream_contract")
        if not (isinstance(contract, str) and ADDRESS.fullmatch(contract)):
            contract = options.stream_payment_address
        if contract is None:
            found[record.name] = StreamRunway(record.stream_id, error=(
                "the row records no StreamPayment contract (the stream was not opened by the collection); set "
                f"stream_payment_address or {STREAM_PAYMENT_ADDRESS_ENV}"))
            continue
        keys[record.name] = (contract.lower(), record.stream_id)
    runways = read_runways(options.payments_rpc_url, keys.values(), timeout=options.timeout,
                           request_timeout=options.request_timeout, validate_certs=options.validate_certs)
    for name, key in keys.items():
        found[name] = runways[key]
    failed = sorted({r.error for r in runways.values() if r.error})
    if failed:
        messages.append(f"could not read {len([r for r in runways.values() if r.error])} payment stream(s) "
                        f"from the chain: {failed[0]}")
    return found


def refresh_fields(record: VMRecord, live: LiveStatus | None, stream: StreamRunway | None,
                   not_asked: str | None = None) -> dict[str, Any]:
    """What a refresh adds to a VM's view (RV(vm) shape): the live status, and the stream's runway.

    ``status`` becomes the one filters go by: the provider's when it gave one, else the recorded one (always the
    recorded one for an abandoned row: ``live_status`` says what its provider answered).
    """
    status = effective_status(record, live)
    gone = status in GONE_STATUSES or (live is not None and live.status in GONE_STATUSES)
    missing_reason = None
    if stream is not None and stream.ended is not None and gone:
        missing_reason = (f"its payment stream {stream.stream_id} {stream.ended}, and a paying provider deletes "
                          "a VM whose stream has ended")
    return {
        "status": status,
        "recorded_status": record.status,
        "live_status": None if live is None else live.status,
        "provider_reachable": None if live is None else live.reachable,
        "refresh_error": not_asked if live is None else live.error,
        "stream_id": record.stream_id,
        "stream_remaining_seconds": None if stream is None else stream.remaining_seconds,
        "stream_error": None if stream is None else stream.error,
        "missing_reason": missing_reason,
    }


def runway_low(stream: StreamRunway | None, status: str, threshold: int) -> bool:
    """Whether a VM's running stream has less than ``threshold`` seconds left and the VM is worth paying for
    (an abandoned one is not: golem_fleet replaced it)."""
    return (stream is not None and stream.ended is None and stream.remaining_seconds is not None
            and stream.remaining_seconds < threshold and status not in GONE_STATUSES and status != ABANDONED)
