# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which stream golem_stream acts on: a VM's (its row in the state file) or one given by id, and its contract.

Every option is checked here before the state file is opened or any call is made. The contract
address comes from, in order: the VM's row (``stream_contract``, recorded when the collection
opened the stream), the ``stream_payment_address`` option, or ``GET /api/v1/provider/info`` of the
VM's provider (or of ``provider_ip``): the address a provider checks its streams at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.network import ADDRESS, check_contract
from ansible_collections.golem.vm.plugins.module_utils.chain.runway import threshold_seconds
from ansible_collections.golem.vm.plugins.module_utils.chain.terms import check_hours, requires_payment
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import ip_problem
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import IdentityError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import name_problem
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import check_payment_options


@dataclass(frozen=True)
class StreamTarget:
    stream_id: int
    contract: str
    record: VMRecord | None  # the VM's row, when the stream was found by name
    contract_from: str  # where the contract address came from, for messages

    @property
    def describe(self) -> str:
        vm = f" of VM {self.record.name}" if self.record is not None else ""
        return f"stream {self.stream_id}{vm} (contract {self.contract})"


def check_stream_options(params: dict[str, Any]) -> int | None:
    """Every option of golem_stream, checked before any call; returns the top-up threshold in seconds."""
    name = params.get("name")
    if name is not None:
        problem = name_problem(name)
        if problem:
            raise ValidationError(f"name {name!r} is not a valid VM name: {problem}", field="name", value=name)
    stream_id = params.get("stream_id")
    if stream_id is not None and stream_id < 1:
        raise ValidationError(f"stream_id {stream_id} is not a stream id: ids start at 1", field="stream_id",
                              value=stream_id)
    ip = params.get("provider_ip")
    if ip is not None:
        if name is not None:
            raise ValidationError("provider_ip is for a stream given by stream_id; a VM's provider is in its row",
                                  field="provider_ip", value=ip)
        if ip_problem(ip) is not None:
            raise ValidationError(f"provider_ip {ip!r} is not an IP address", field="provider_ip", value=ip)
    if params["wait_timeout"] <= 0:
        raise ValidationError(f"wait_timeout {params['wait_timeout']} must be more than 0 seconds",
                              field="wait_timeout", value=params["wait_timeout"])
    check_payment_options(params)
    if params["state"] == "absent":
        for field in ("runway_hours", "top_up_below_hours"):
            if params.get(field) is not None:
                raise ValidationError(f"{field} is for state=present; state=absent terminates the stream",
                                      field=field, value=params[field])
        return None
    return check_runway_options(params)


def check_runway_options(params: dict[str, Any]) -> int | None:
    """runway_hours and top_up_below_hours, as golem_stream and golem_fleet take them: the top-up threshold in
    seconds, or None when no runway is asked."""
    hours, below = params.get("runway_hours"), params.get("top_up_below_hours")
    if hours is None:
        if below is not None:
            raise ValidationError("top_up_below_hours needs runway_hours, the runway a top-up brings the stream to",
                                  field="top_up_below_hours", value=below)
        return None
    check_hours(hours, field="runway_hours")
    return threshold_seconds(hours, below)


def find_target(params: dict[str, Any], store: StateBackend,
                provider: Callable[[str, int], Any]) -> StreamTarget:
    """The stream and its contract. ``provider(ip, port)`` gives a ProviderClient for provider info."""
    address = params.get("stream_payment_address")
    if params.get("name") is None:
        stream_id = int(params["stream_id"])
        if address:
            return StreamTarget(stream_id, address, None, "stream_payment_address")
        ip = params.get("provider_ip")
        if ip is None:
            raise ValidationError(f"stream {stream_id} is given by id: give stream_payment_address (the contract), or "
                                  "provider_ip of the provider it pays, whose GET /api/v1/provider/info names it",
                                  field="stream_payment_address", value=None)
        return StreamTarget(stream_id, _contract_of(provider(ip, params["provider_port"]), None, f"stream {stream_id}",
                                                    params.get("payments_network")), None, f"provider {ip}")
    name = params["name"]
    where = f"state file {store.location}" if store.backend == "sqlite" else f"state {store.location}"
    record = store.get(name)
    if record is None:
        raise ValidationError(f"VM {name} is not in the {where}; give the name of a VM golem_vm "
                              "recorded, or stream_id with stream_payment_address", field="name", value=name)
    if not record.ok:
        raise ValidationError(f"the record of VM {name} in the {where} is unreadable ({record.config_error}); fix "
                              "or remove that row first", field="name", value=name)
    found = row_target(record, given=params.get("stream_id"), address=address)
    if found is not None:
        return found
    port = record.provider_port or params["provider_port"]
    client = provider(record.provider_ip, port)
    stream_id = recorded_stream_id(record)
    return StreamTarget(stream_id, _contract_of(client, record.provider_id, f"VM {name}'s stream {stream_id}",
                                                params.get("payments_network")), record,
                        f"provider {record.provider_ip}:{port}")


def row_target(record: VMRecord, *, given: int | None = None, address: str | None = None) -> StreamTarget | None:
    """The stream a VM's row records, at the contract the row (or ``address``) names; None when neither names
    one (its provider is asked then). Raises when the row has no stream, or not ``given``."""
    name = record.name
    stream_id = recorded_stream_id(record)
    if given is not None and given != stream_id:
        raise ValidationError(f"stream_id {given} is not VM {name}'s stream, which is {stream_id}; give one of them",
                              field="stream_id", value=given)
    recorded = record.config.get("stream_contract")
    if isinstance(recorded, str) and ADDRESS.fullmatch(recorded):
        if address and address.lower() != recorded.lower():
            raise ValidationError(f"stream_payment_address {address} is not the contract VM {name}'s stream was "
                                  f"opened at ({recorded})", field="stream_payment_address", value=address)
        return StreamTarget(stream_id, recorded, record, "the state file")
    if address:
        return StreamTarget(stream_id, address, record, "stream_payment_address")
    return None


def recorded_stream_id(record: VMRecord) -> int:
    """The stream id the row records; raises naming why there is none."""
    name = record.name
    stream_id = record.stream_id
    if stream_id is None:
        if record.config.get("stream_tx"):
            raise ValidationError(f"VM {name}'s stream is still being opened (transaction {record.config['stream_tx']} "
                                  "was not seen mined); run golem_vm for the VM first, which settles it",
                                  field="name", value=name)
        raise ValidationError(f"VM {name} has no payment stream recorded (its provider did not ask for payment, or "
                              "the VM was created without one)", field="name", value=name)
    return stream_id


def _contract_of(client: Any, provider_id: str | None, what: str, network: str | None) -> str:
    """The StreamPayment address a provider checks streams at (GET /api/v1/provider/info), if it is the one
    documented for payments ``network``: money is sent to it by a top-up."""
    info = client.provider_info()
    where = client.http.base_url
    if info is None:
        raise ValidationError(f"provider {where} has no GET /api/v1/provider/info (the MVP-era API), so it takes no "
                              f"payment and names no contract for {what}; give stream_payment_address",
                              field="stream_payment_address", value=None)
    if provider_id and info.provider_id.lower() != provider_id.lower():
        raise IdentityError(f"provider {where} answers GET /api/v1/provider/info as {info.provider_id}, not as the "
                            f"recorded provider {provider_id}; its contract is not taken for {what}", url=where)
    if not requires_payment(info.stream_payment_address):
        raise ValidationError(f"provider {where} takes no payment (its stream_payment_address is "
                              f"{info.stream_payment_address!r}); give stream_payment_address for {what}",
                              field="stream_payment_address", value=None)
    check_contract(str(info.stream_payment_address), given=None, provider=info.provider_id, network=network)
    return str(info.stream_payment_address)
