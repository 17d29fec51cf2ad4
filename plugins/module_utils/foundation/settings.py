# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the modules and the inventory take their settings from: one set of rules for both.

Options win over environment variables; a variable that is unset, empty or only white space
counts as unset (an AWX credential leaves unused fields empty); paths are made absolute.
Variables are named as the upstream ``golem`` CLI names its settings (``GOLEM_REQUESTOR_*``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ValidationError

DISCOVERY_URL_ENV = "GOLEM_REQUESTOR_DISCOVERY_URL"
STATE_PATH_ENV = "GOLEM_REQUESTOR_DB_PATH"
KNOWN_HOSTS_ENV = "GOLEM_REQUESTOR_KNOWN_HOSTS_PATH"
PRIVATE_KEY_ENV = "GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH"
PROVIDER_PORT_ENV = "GOLEM_REQUESTOR_PROVIDER_PORT"
TIMEOUT_ENV = "GOLEM_REQUESTOR_TIMEOUT"
VALIDATE_CERTS_ENV = "GOLEM_REQUESTOR_VALIDATE_CERTS"
# Discovery: the backend, Golem Base's RPC and the CLI's two network filters, as upstream names them.
DISCOVERY_DRIVER_ENV = "GOLEM_REQUESTOR_DISCOVERY_DRIVER"
GOLEM_BASE_RPC_URL_ENV = "GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL"
NETWORK_ENV = "GOLEM_REQUESTOR_NETWORK"
PAYMENTS_NETWORK_ENV = "GOLEM_REQUESTOR_PAYMENTS_NETWORK"
# Read once by the inventory alone, so it could send golem_vm and the inventory to two files.
RETIRED_KNOWN_HOSTS_ENV = "GOLEM_INVENTORY_KNOWN_HOSTS_PATH"

# The upstream CLI's own state file; it reads no other (it ignores GOLEM_REQUESTOR_DB_PATH).
DEFAULT_STATE_PATH = "~/.golem/requestor/vms.db"
DEFAULT_DISCOVERY_URL = "http://195.201.39.101:9001"
DEFAULT_GOLEM_BASE_RPC_URL = "https://ethwarsaw.holesky.golemdb.io/rpc"
DEFAULT_NETWORK = "mainnet"
DEFAULT_PAYMENTS_NETWORK = "l2.holesky"
NETWORKS = ("development", "testnet", "mainnet")
# discovery_backend's values, and the CLI's spelling of each (GOLEM_REQUESTOR_DISCOVERY_DRIVER).
DISCOVERY_BACKENDS = {"golem_base": "golem-base", "central": "central"}
# Every spelling the option and the variable accept, and the value it stands for: the AWX credential and
# upstream's CLI say golem-base, the option said golem_base; a user copying either must not be refused.
DISCOVERY_BACKEND_SPELLINGS = {spelling: opt for opt, cli in DISCOVERY_BACKENDS.items() for spelling in (opt, cli)}


class Setting(NamedTuple):
    value: str
    # What a message names when the value is bad: the option, or the variable it came from.
    field: str


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


def env_fallback(*names: str) -> str:
    """AnsibleModule's ``fallback`` for an option: the first variable that is set and not empty."""
    from ansible.module_utils.errors import AnsibleFallbackNotFound

    for name in names:
        value = env_value(name)
        if value is not None:
            return value
    raise AnsibleFallbackNotFound


def fallback(*names: str) -> tuple[Any, list[str]]:
    """The ``fallback`` entry of an argument spec that reads ``names`` by the rules above."""
    return (env_fallback, list(names))


def choice_fallback(name: str, spelled: Mapping[str, str]) -> tuple[Any, list[str]]:
    """The ``fallback`` of an option with choices, read from variable ``name``.

    ``spelled`` maps the variable's values (the CLI's spelling) to the option's. Any other value is
    passed on with the variable's name, so AnsibleModule's choices check names both:
    "... must be one of: golem_base, golem-base, central, got: foo (from GOLEM_REQUESTOR_DISCOVERY_DRIVER)".
    The variable's name is the fallback's argument, as for ``fallback``, so both can be read back
    (``fallback_names``).
    """

    def read(variable: str) -> str:
        value = env_fallback(variable)
        return spelled.get(value, f"{value} (from {variable})")

    return (read, [name])


_KINDS = {"int": "a whole number", "float": "a number", "bool": "a boolean (true or false)"}


def _typed_read(option: str, kind: str, problems: list[ValidationError]) -> Any:
    """env_fallback for an option of type ``kind``. A value of another type is left to ``problems`` (named by
    its variable) and the default stands meanwhile: AnsibleModule's own type error would name only the option."""
    from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
    from ansible.module_utils.errors import AnsibleFallbackNotFound

    check = {"int": check_type_int, "float": check_type_float, "bool": check_type_bool}[kind]

    def read(*names: str) -> Any:
        for name in names:
            value = env_value(name)
            if value is None:
                continue
            try:
                check(value)
            except (TypeError, ValueError):
                problems.append(ValidationError(f"{name} (read for {option}) {value!r} must be {_KINDS[kind]}",
                                                field=name, value=value))
                raise AnsibleFallbackNotFound from None
            return value
        raise AnsibleFallbackNotFound

    return read


def typed_fallbacks(spec: Mapping[str, dict[str, Any]], problems: list[ValidationError]) -> dict[str, dict[str, Any]]:
    """``spec`` with the variables of its number and boolean options read by ``_typed_read``."""
    typed = {}
    for option, entry in spec.items():
        strategy = (entry.get("fallback") or (None,))[0]
        if strategy is env_fallback and entry.get("type") in _KINDS:
            entry = {**entry, "fallback": (_typed_read(option, entry["type"], problems), list(fallback_names(entry)))}
        typed[option] = entry
    return typed


def fallback_names(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables an argument spec entry falls back to, in the order they are read."""
    entry = spec.get("fallback")
    if not entry or len(entry) < 2 or not isinstance(entry[1], (list, tuple)):
        return ()
    return tuple(entry[1])


def discovery_backend(value: str) -> str:
    """discovery_backend's value in the option's spelling (``golem-base`` is ``golem_base``)."""
    return DISCOVERY_BACKEND_SPELLINGS.get(value, value)


def sources(spec: Mapping[str, Mapping[str, Any]], given: Collection[str],
            environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """For each option whose value came from an environment variable, that variable.

    ``given`` holds the options the task set (module_defaults included); AnsibleModule reads a variable
    only for an option not given, in the order of its fallback, so the first one set is the source.
    """
    found: dict[str, str] = {}
    for option, entry in spec.items():
        if option in given:
            continue
        variable = next((n for n in fallback_names(entry) if env_value(n, environ) is not None), None)
        if variable is not None:
            found[option] = variable
    return found


def name_source(exc: GolemError, option_sources: Mapping[str, str]) -> GolemError:
    """``exc`` naming the variable its value came from, when the option it names was read from one.

    One place for every check: the checks name the option, as the user of an option expects, and
    the value of a variable is named by the variable, where the user has to fix it.
    """
    variable = option_sources.get(exc.field or "")
    if variable is None:
        return exc
    option = exc.field or ""
    if exc.msg.startswith(option + " "):
        exc.msg = f"{variable} (read for {option}){exc.msg[len(option):]}"
    else:
        exc.msg = f"{exc.msg} (the value of {option} came from {variable})"
    exc.args = (exc.msg,)
    exc.field = variable
    return exc


def _path(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value))


def state_path(option: str | None, environ: Mapping[str, str] | None = None) -> Setting:
    if option:
        return Setting(_path(option), "state_path")
    from_env = env_value(STATE_PATH_ENV, environ)
    if from_env:
        return Setting(_path(from_env), STATE_PATH_ENV)
    return Setting(_path(DEFAULT_STATE_PATH), "state_path")


def known_hosts_path(option: str | None, local_dir: str, environ: Mapping[str, str] | None = None) -> Setting:
    """The option, else GOLEM_REQUESTOR_KNOWN_HOSTS_PATH, else ``known_hosts`` in ``local_dir`` (beside the state file).

    Modules record host keys where the inventory checks them only if both read the same setting;
    the variable the inventory alone used to read is refused rather than silently ignored.
    """
    retired = env_value(RETIRED_KNOWN_HOSTS_ENV, environ)
    current = env_value(KNOWN_HOSTS_ENV, environ)
    if retired and (current is None or _path(current) != _path(retired)):
        raise ValidationError(
            f"{RETIRED_KNOWN_HOSTS_ENV} is no longer read; set {KNOWN_HOSTS_ENV}={retired}, which golem_vm, "
            "golem_fleet and the golem inventory all read, so host keys are recorded where they are checked",
            field=RETIRED_KNOWN_HOSTS_ENV, value=retired)
    if option:
        return Setting(_path(option), "known_hosts_path")
    if current:
        return Setting(_path(current), KNOWN_HOSTS_ENV)
    return Setting(os.path.join(local_dir, "known_hosts"), "known_hosts_path")


def private_key_path(option: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    if option:
        return _path(option)
    from_env = env_value(PRIVATE_KEY_ENV, environ)
    return _path(from_env) if from_env else None


def discovery_url(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    return option or env_value(DISCOVERY_URL_ENV, environ) or DEFAULT_DISCOVERY_URL


ETHEREUM_KEY_ENV = "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"
# Upstream's CLI reads the payments RPC from either name.
PAYMENTS_RPC_ENVS = ("GOLEM_REQUESTOR_POLYGON_RPC_URL", "GOLEM_REQUESTOR_L2_RPC_URL")
DEFAULT_PAYMENTS_RPC_URL = "https://l2.holesky.golemdb.io/rpc"
# The StreamPayment contract, as upstream's CLI reads it.
STREAM_PAYMENT_ADDRESS_ENV = "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"
# Ours, not the CLI's (it has no price or fee cap): named like the others, so one environment sets them all.
MAX_GLM_PER_MONTH_ENV = "GOLEM_REQUESTOR_MAX_GLM_PER_MONTH"
MAX_FEE_PER_GAS_ENV = "GOLEM_REQUESTOR_MAX_FEE_PER_GAS_GWEI"


STATE_URL_ENV = "GOLEM_REQUESTOR_STATE_URL"


class StateLocation(NamedTuple):
    """Where the state is: a PostgreSQL ``url`` (secret: never shown) or an SQLite ``path``."""

    url: str | None
    path: str | None
    field: str  # the option or variable that chose it, for messages
    # This controller's own files (default key pair, known_hosts, payment lock): the state file's
    # directory, or the upstream CLI's ~/.golem/requestor when the state is in PostgreSQL.
    local_dir: str


class Chosen(NamedTuple):
    """A state option as read: its value, the option or variable it came from, and whether the task (or the
    inventory's file) set the option itself rather than a variable or the default."""

    value: str | None
    field: str
    given: bool


def choose_state(url: Chosen, path: Chosen, default_dir: str) -> StateLocation:
    """The one rule for the modules and the inventory: options first, then the variables, else the default
    state file; the two options, or the two variables, never both."""
    if url.given and path.given:
        raise ValidationError("state_url and state_path are mutually exclusive: the state is either in PostgreSQL or "
                              "in an SQLite file", field="state_url", value=None)
    if url.value and (url.given or not path.given):
        if not url.given and path.field != "state_path":
            raise ValidationError(f"{url.field} and {path.field} are both set: the state is either in PostgreSQL or "
                                  "in an SQLite file; unset one", field=url.field, value=None)
        # This controller's own files then go where the upstream CLI keeps them: beside its default state file.
        return StateLocation(url.value, None, url.field, default_dir)
    if path.value is None:
        raise ValueError("choose_state() needs the state path, or its default")
    return StateLocation(None, path.value, path.field, os.path.dirname(path.value))


def state_location(url_option: str | None, path_option: str | None,
                   environ: Mapping[str, str] | None = None) -> StateLocation:
    """The state the user asked for: options first, then GOLEM_REQUESTOR_STATE_URL / GOLEM_REQUESTOR_DB_PATH."""
    from_env = env_value(STATE_URL_ENV, environ)
    path = state_path(path_option, environ)
    return choose_state(Chosen(url_option or from_env, "state_url" if url_option else STATE_URL_ENV, bool(url_option)),
                        Chosen(path.value, path.field, bool(path_option)), os.path.dirname(_path(DEFAULT_STATE_PATH)))
