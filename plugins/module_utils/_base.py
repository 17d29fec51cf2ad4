# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base of the golem.vm modules: connection options, library checks, clients, one fail path."""

from __future__ import annotations

from typing import Any, Callable, NoReturn
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.golem.vm.plugins.module_utils.discovery.backends import Discovery, open_discovery
from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import check_query_value
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import port_problem
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import (
    DEFAULT_PROVIDER_PORT,
    DEFAULT_TIMEOUT,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    REQUESTS_LIBRARY,
)
from ansible_collections.golem.vm.plugins.module_utils.payment_arguments import PAYMENT_ARGUMENTS
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient, ProviderInfoMemo
from ansible_collections.golem.vm.plugins.module_utils.provider.models import HAS_PYDANTIC, PYDANTIC_IMPORT_ERROR

PYDANTIC_LIBRARY = "pydantic >= 2"


def golem_argument_spec() -> dict[str, Any]:
    """The connection options every module takes; documented in the golem.vm.golem doc fragment."""
    return {
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


# The state options every member of group/golem.vm.golem accepts (the payment options are the others).
STATE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "state_path": {"type": "path"},
    "state_url": {"type": "str", "no_log": True},
    "known_hosts_path": {"type": "path", "no_log": False},
}


def group_argument_spec() -> dict[str, dict[str, Any]]:
    """The options of group/golem.vm.golem beyond the connection options, as a member that uses them takes them.

    Every member accepts all of them, so one ``module_defaults`` block serves a whole play; a member
    that has no use for one takes it as ``accepted_only`` (documented in the golem.vm.group fragment).
    """
    return {**STATE_ARGUMENTS, **PAYMENT_ARGUMENTS}


def accepted_only(entry: dict[str, Any]) -> dict[str, Any]:
    """An option a member takes only so group defaults do not break it: no default, no variable read
    (a bad value in a variable it never uses must not fail it), still kept out of logs if secret."""
    return {"type": entry["type"], "no_log": bool(entry.get("no_log", False))}


def _check_url(field: str, url: str, example: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            f"{field} {url!r} must be an http:// or https:// URL with a host name, e.g. {example}",
            field=field,
            value=url,
        )
    try:
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError:
        raise ValidationError(f"{field} {url!r} has a port outside 1-65535", field=field, value=url) from None


def check_connection_options(params: dict[str, Any]) -> None:
    """Reject connection options that could only fail later with a less clear message."""
    _check_url("discovery_url", params["discovery_url"], settings.DEFAULT_DISCOVERY_URL)
    _check_url("golem_base_rpc_url", params["golem_base_rpc_url"], settings.DEFAULT_GOLEM_BASE_RPC_URL)
    check_query_value("payments_network", params["payments_network"])
    port = params["provider_port"]
    if port_problem(port) is not None:
        raise ValidationError(f"provider_port {port} is outside 1-65535", field="provider_port", value=port)
    timeout = params["timeout"]
    if not timeout > 0:
        raise ValidationError(f"timeout {timeout:g} must be more than 0 seconds", field="timeout", value=timeout)


class _TaskModule(AnsibleModule):
    """AnsibleModule that remembers which options the task set (module_defaults included), so a message
    about a value read from an environment variable can name that variable."""

    given: frozenset[str] = frozenset()

    def _load_params(self) -> None:
        super()._load_params()
        self.given = frozenset(self.params)


class GolemModule:
    """Wraps AnsibleModule: merges the connection options in, checks libraries, builds clients.

    Subclasses implement ``execute()`` and return the result dict; ``run()`` exits with it,
    or fails with a readable ``msg`` and a structured ``failure`` for any GolemError.
    """

    def __init__(self, argument_spec: dict[str, Any], **module_kwargs: Any) -> None:
        spec = golem_argument_spec()
        spec.update({name: accepted_only(entry) for name, entry in group_argument_spec().items()})
        spec.update(argument_spec)
        problems: list[ValidationError] = []
        self.module = _TaskModule(argument_spec=settings.typed_fallbacks(spec, problems), **module_kwargs)
        self.params: dict[str, Any] = self.module.params
        # Where each value read from the environment came from: messages about it name the variable.
        self.sources = settings.sources(spec, self.module.given)
        self.params["discovery_backend"] = settings.discovery_backend(self.params["discovery_backend"])
        if problems:
            self.fail(problems[0])
        self._check_libraries()
        self._clients: list[Any] = []
        self._discovery: Discovery | None = None
        self._central: DiscoveryClient | None = None
        self._provider_infos = ProviderInfoMemo()
        try:
            check_connection_options(self.params)
        except GolemError as exc:
            self.fail(exc)

    def _check_libraries(self) -> None:
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib(REQUESTS_LIBRARY), exception=REQUESTS_IMPORT_ERROR)
        if not HAS_PYDANTIC:
            self.module.fail_json(msg=missing_required_lib(PYDANTIC_LIBRARY), exception=PYDANTIC_IMPORT_ERROR)

    def http_options(self) -> dict[str, Any]:
        return {"timeout": self.params["timeout"], "validate_certs": self.params["validate_certs"]}

    @property
    def discovery(self) -> Discovery:
        """The driver of the chosen discovery_backend, built on first use."""
        if self._discovery is None:
            if self.params["discovery_backend"] == "central":
                self._discovery = self.central_discovery
            else:
                self._discovery = open_discovery(self.params, **self.http_options())
                self._clients.append(self._discovery)
        return self._discovery

    @property
    def central_discovery(self) -> DiscoveryClient:
        """The central discovery server, whatever the backend: MVP-era providers advertise only there,
        so only it can vouch for their addresses."""
        if self._central is None:
            self._central = DiscoveryClient(self.params["discovery_url"], **self.http_options())
            self._clients.append(self._central)
        return self._central

    def discovery_within(self, deadline: Any) -> Callable[[], Discovery]:
        """The discovery driver, bound to the task's time budget; built on first use, so a run on an
        existing VM never asks discovery."""
        def client() -> Discovery:
            self.discovery.set_deadline(deadline)
            return self.discovery

        return client

    def central_within(self, deadline: Any) -> Callable[[], DiscoveryClient]:
        """The central discovery server (for ProviderIdentity), bound to the task's time budget."""
        def client() -> DiscoveryClient:
            self.central_discovery.set_deadline(deadline)
            return self.central_discovery

        return client

    def provider(self, ip_address: str, port: int | None = None) -> ProviderClient:
        client = ProviderClient(ip_address, port or self.params["provider_port"], info_memo=self._provider_infos,
                                **self.http_options())
        self._clients.append(client)
        return client

    def closes(self, resource: Any) -> Any:
        """Close ``resource`` (a state store's connection, say) when the module exits, whatever happens."""
        self._clients.append(resource)
        return resource

    def warn(self, msg: str) -> None:
        self.module.warn(msg)

    def fail(self, exc: GolemError, **extra: Any) -> NoReturn:
        """Fail the task: ``msg`` for people, ``failure`` for code, plus what was done so far."""
        settings.name_source(exc, self.sources)
        self.module.fail_json(msg=exc.msg, failure=exc.failure(), **extra)
        raise AssertionError("fail_json returned")  # pragma: no cover - it always exits

    def execute(self) -> dict[str, Any]:
        raise NotImplementedError

    def run(self) -> NoReturn:
        try:
            result = self.execute()
        except GolemError as exc:
            self.fail(exc)
        finally:
            for client in self._clients:
                client.close()
        self.module.exit_json(**result)
        raise AssertionError("exit_json returned")  # pragma: no cover
