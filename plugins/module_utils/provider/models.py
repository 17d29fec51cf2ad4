# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed models of what discovery and providers send, and of what we send them.

Wire models ignore fields they do not know, because upstream adds fields between releases
and MVP-era servers send fewer; they only insist on what the collection relies on.
The request model is strict instead: a typo in our own payload should fail here, not on a
provider half-way through a create.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import traceback
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, TypeVar

from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import host_problem, ip_problem, port_problem, show
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import (
    cpu_problem,
    memory_problem,
    storage_problem,
)
# Defined with the state, so a row, the wire and the VM filters name statuses alike.
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import VMStatus

PYDANTIC_LIBRARY = "pydantic >= 2"

try:
    from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
    from pydantic import ValidationError as PydanticValidationError
except ImportError:
    HAS_PYDANTIC = False
    PYDANTIC_IMPORT_ERROR: str | None = traceback.format_exc()

    # Stand-ins so this file still imports (ansible-test's import sanity test runs without
    # pydantic); modules stop with missing_required_lib() before any model is used.
    class BaseModel:  # type: ignore[no-redef]
        pass

    class PydanticValidationError(Exception):  # type: ignore[no-redef]
        pass

    def ConfigDict(**kwargs: Any) -> dict[str, Any]:  # type: ignore[no-redef]  # noqa: N802
        return kwargs

    def Field(default: Any = None, **kwargs: Any) -> Any:  # type: ignore[no-redef]  # noqa: N802
        return default

    def field_validator(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        return lambda func: func

    def model_validator(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        return lambda func: func

else:
    HAS_PYDANTIC = True
    PYDANTIC_IMPORT_ERROR = None


NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
NAME_MIN, NAME_MAX = 3, 64
SSH_KEY_TYPES = ("ssh-rsa", "ssh-ed25519")
DEFAULT_IMAGE = "24.04"


def name_problem(name: Any) -> str | None:
    """Why a provider would refuse this VM name, or None if it is fine."""
    if not isinstance(name, str):
        return "the name must be a string"
    if not NAME_MIN <= len(name) <= NAME_MAX:
        return f"the name must be {NAME_MIN} to {NAME_MAX} characters long, not {len(name)}"
    # fullmatch: with match(), "$" would also accept a trailing newline, which providers refuse.
    if not NAME_PATTERN.fullmatch(name):
        return "the name may hold only lowercase letters, digits and '-', and must start and end with a letter or digit"
    if "--" in name:
        return "the name must not contain '--'"
    return None


def ssh_key_problem(key: Any) -> str | None:
    """Why a provider would refuse this public key, or None if it is fine.

    Providers only check the prefix; we also check that the base64 blob is a complete key of
    that type, so a truncated or mixed-up key fails here instead of leaving a VM nobody can log into.
    """
    if not isinstance(key, str):
        return "the SSH public key must be a string"
    parts = key.strip().split()
    if not parts or parts[0] not in SSH_KEY_TYPES:
        found = parts[0] if parts else "nothing"
        return f"providers accept only {' and '.join(SSH_KEY_TYPES)} public keys, this one starts with {found!r}"
    if len(parts) < 2:
        return "the SSH public key has a type but no key data after it"
    if not key.strip().startswith(parts[0] + " "):
        # Providers match the prefix with a literal space (pattern "^(ssh-rsa|ssh-ed25519) ").
        return "the SSH public key type must be followed by a single space"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "the SSH public key data is not valid base64"
    fields = _ssh_strings(blob)
    if fields and fields[0] != parts[0].encode():
        return f"the SSH public key data does not hold a {parts[0]} key"
    # ed25519: type and a 32-byte key; RSA: type, exponent and modulus; nothing after them.
    expected = 2 if parts[0] == "ssh-ed25519" else 3
    if fields is None or len(fields) != expected or (expected == 2 and len(fields[1]) != 32):
        return f"the SSH public key data is truncated or damaged (it is not a complete {parts[0]} key)"
    return None


def _ssh_strings(blob: bytes) -> list[bytes] | None:
    """Split SSH wire format (4-byte big-endian length, then bytes) into its strings; None if it does not add up."""
    fields = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            return None
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(blob):
            return None
        fields.append(blob[pos : pos + size])
        pos += size
    return fields


def _as_utc(value: datetime | None) -> datetime | None:
    # Upstream writes naive UTC timestamps; say so explicitly so comparisons and output are unambiguous.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class JobStatus(str, Enum):
    CREATING = "creating"
    READY = "ready"
    FAILED = "failed"


class WireModel(BaseModel):
    # defer_build: a schema is built on first use, so a run pays only for the models it uses.
    model_config = ConfigDict(extra="ignore", defer_build=True)


class Resources(WireModel):
    cpu: int
    memory: int
    storage: int


# An advertised price: a JSON number of at least 0. Strict, so true or "5" is not taken for one; finite,
# because NaN compares false with everything (it would pass any cap and sort anywhere) and inf is no price.
# Golem Base adverts are held to the same rule (golem_base_adverts.Entity.price) before they get here.
Price = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class Pricing(WireModel):
    usd_per_core_month: Price | None = None
    usd_per_gb_ram_month: Price | None = None
    usd_per_gb_storage_month: Price | None = None
    glm_per_core_month: Price | None = None
    glm_per_gb_ram_month: Price | None = None
    glm_per_gb_storage_month: Price | None = None


class Advertisement(WireModel):
    provider_id: str = Field(min_length=1)
    ip_address: str
    country: str | None = None
    platform: str | None = None
    resources: Resources
    pricing: Pricing | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("ip_address")
    @classmethod
    def _ip_literal(cls, value: str) -> str:
        # The address becomes part of a URL; a hostname or anything with '/' or '@' in it
        # could send our requests somewhere else. Discovery itself only stores IPv4 literals.
        problem = ip_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return str(ipaddress.ip_address(value))

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class VMInfo(WireModel):
    id: str
    name: str | None = None
    status: VMStatus
    resources: Resources | None = None
    ip_address: str | None = None
    ssh_port: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    error_message: str | None = None

    @field_validator("ssh_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        return _port_or_none(value)

    @model_validator(mode="after")
    def _name_defaults_to_id(self) -> VMInfo:
        # Both are the requestor's name upstream; an older provider that omits one loses nothing.
        if self.name is None:
            self.name = self.id
        return self

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class AccessInfo(WireModel):
    # A 202 answer (port not assigned yet) has no ssh_host and a null ssh_port.
    ssh_host: str | None = None
    ssh_port: int | None = None
    vm_id: str
    multipass_name: str | None = None
    status: str | None = None

    @field_validator("ssh_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        # It becomes an ssh destination, a known_hosts line and an Ansible host.
        if value is not None and (problem := host_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("ssh_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        return _port_or_none(value)


class CreateJob(WireModel):
    job_id: str
    vm_id: str
    status: JobStatus
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class ProviderInfo(WireModel):
    provider_id: str
    stream_payment_address: str | None = None
    glm_token_address: str | None = None
    ip_address: str | None = None
    country: str | None = None
    platform: str | None = None


class VMResources(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    cpu: int
    memory: int
    storage: int

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        return _checked(value, cpu_problem(value))

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int) -> int:
        return _checked(value, memory_problem(value))

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: int) -> int:
        return _checked(value, storage_problem(value))


class CreateVMRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    # Checked once, where the user gave it (vm_request.check_scalars); trusted here.
    name: str
    # Required: a NEW provider answers 500 when resources is missing (its default is never validated).
    resources: VMResources
    ssh_key: str
    image: str = DEFAULT_IMAGE
    stream_id: int | None = None

    @field_validator("ssh_key")
    @classmethod
    def _ssh_key(cls, value: str) -> str:
        # cloud-init gets the key verbatim; a trailing newline from a key file is harmless, but strip it anyway.
        return _checked(value.strip(), ssh_key_problem(value))

    def payload(self) -> dict[str, Any]:
        """The JSON body for POST /vms; resources is always present."""
        return self.model_dump(mode="json")


def _checked(value: Any, problem: str | None) -> Any:
    if problem:
        raise ValueError(problem)
    return value


M = TypeVar("M", bound=BaseModel)


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _port_or_none(value: int | None) -> int | None:
    if value is not None and (problem := port_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _reason(error: dict[str, Any]) -> str:
    # pydantic prefixes messages raised from our validators with "Value error, ".
    msg = str(error.get("msg", "invalid"))
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def from_pydantic(
    exc: PydanticValidationError, *, source: str, what: str, request: str | None = None
) -> ValidationError:
    """Name the server, the request, the field path and the bad value, e.g.

    "discovery http://127.0.0.1:9001 answered GET /api/v1/advertisements with an advertisement whose
    field 'resources.cpu' is 'abc': Input should be a valid integer, unable to parse string as an integer".
    """
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = _loc(tuple(first.get("loc", ())))
    value = first.get("input")
    said = f"{source} answered {request} with" if request else f"{source} sent"
    if first.get("type") == "missing":
        msg = f"{said} {what} without the required field '{field}'"
        value = None
    elif not field:
        msg = f"{said} {what} that is {show(value)}: {_reason(first)}"
    else:
        msg = f"{said} {what} whose field '{field}' is {show(value)}: {_reason(first)}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ValidationError(msg, field=field or None, value=value)


def parse_wire(model: type[M], data: Any, *, source: str, what: str, request: str | None = None) -> M:
    """Validate data a server sent; problems become our ValidationError naming ``source`` and ``request``."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, source=source, what=what, request=request) from None


def build_create_request(**fields: Any) -> CreateVMRequest:
    """Build the create payload from user input; problems name the option and its value."""
    try:
        return CreateVMRequest.model_validate(fields)
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = _loc(tuple(first.get("loc", ())))
        value = first.get("input") if first.get("type") != "missing" else None
        if first.get("type") == "missing":
            msg = f"{field} is required to create a VM"
        else:
            msg = f"{field} is {show(value)}: {_reason(first)}"
        raise ValidationError(msg, field=field or None, value=value) from None
