# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base of the golem.vm modules: the task and its one fail path; for the group's members, the
connection options' checks, library checks and clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NoReturn
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.golem.vm.plugins.module_utils.arguments import ArgumentSpec
from ansible_collections.golem.vm.plugins.module_utils.discovery.query import check_query_value
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import port_problem
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, MissingLibraryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    REQUESTS_LIBRARY,
)
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient, ProviderInfoMemo
from ansible_collections.golem.vm.plugins.module_utils.provider.models import HAS_PYDANTIC, PYDANTIC_IMPORT_ERROR, PYDANTIC_LIBRARY

if TYPE_CHECKING:  # the drivers are imported when first asked: a run on an existing VM asks none
    from ansible_collections.golem.vm.plugins.module_utils.discovery.backends import Discovery
    from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient


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
    """One task of a golem.vm module on AnsibleModule: its options, one fail path, what is closed at exit.

    Every module declares its whole ``ARGUMENT_SPEC`` and its other AnsibleModule ``MODULE_SETTINGS`` at module
    level, and its subclass's ``__init__`` hands both here. Subclasses implement ``execute()`` and return the
    result dict; ``run()`` exits with it, or fails with a readable ``msg`` and a structured ``failure`` for any
    GolemError.
    """

    def __init__(self, argument_spec: ArgumentSpec, **module_settings: Any) -> None:
        problems: list[ValidationError] = []
        self.module = _TaskModule(argument_spec=settings.typed_fallbacks(argument_spec, problems), **module_settings)
        self.params: dict[str, Any] = self.module.params
        # Where each value read from the environment came from: messages about it name the variable.
        self.sources = settings.sources(argument_spec, self.module.given)
        self._to_close: list[Any] = []
        self._settle(self.params)
        if problems:
            self.fail(problems[0])

    def _settle(self, params: dict[str, Any]) -> None:
        """Turn an option given in another accepted spelling into the one the code reads; before any exit,
        so the task's reported arguments show it."""

    def closes(self, resource: Any) -> Any:
        """Close ``resource`` (a state store's connection, a client) when the module exits, whatever happens."""
        self._to_close.append(resource)
        return resource

    def warn(self, msg: str) -> None:
        self.module.warn(msg)

    def fail(self, exc: GolemError, **extra: Any) -> NoReturn:
        """Fail the task: ``msg`` for people, ``failure`` for code, plus what was done so far."""
        settings.name_source(exc, self.sources)
        if isinstance(exc, MissingLibraryError) and exc.import_traceback:
            extra.setdefault("exception", exc.import_traceback)
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
            for resource in self._to_close:
                resource.close()
        self.module.exit_json(**result)
        raise AssertionError("exit_json returned")  # pragma: no cover


class ConnectedModule(GolemModule):
    """A member of group/golem.vm.golem: its spec holds the connection options (``arguments.member_spec``),
    checked here with the libraries its clients need; it asks discovery and providers through the clients
    built here, each closed when the module exits."""

    def __init__(self, argument_spec: ArgumentSpec, **module_settings: Any) -> None:
        self._discovery: Discovery | None = None
        self._central: DiscoveryClient | None = None
        self._provider_infos = ProviderInfoMemo()
        super().__init__(argument_spec, **module_settings)
        self._check_libraries()
        try:
            check_connection_options(self.params)
        except GolemError as exc:
            self.fail(exc)

    def _settle(self, params: dict[str, Any]) -> None:
        params["discovery_backend"] = settings.discovery_backend(params["discovery_backend"])

    def _check_libraries(self) -> None:
        if not HAS_REQUESTS:
            self.fail(MissingLibraryError(REQUESTS_LIBRARY, REQUESTS_IMPORT_ERROR))
        if not HAS_PYDANTIC:
            self.fail(MissingLibraryError(PYDANTIC_LIBRARY, PYDANTIC_IMPORT_ERROR))

    def http_options(self) -> dict[str, Any]:
        return {"timeout": self.params["timeout"], "validate_certs": self.params["validate_certs"]}

    @property
    def discovery(self) -> Discovery:
        """The driver of the chosen discovery_backend, built on first use."""
        if self._discovery is None:
            if self.params["discovery_backend"] == "central":
                self._discovery = self.central_discovery
            else:
                from ansible_collections.golem.vm.plugins.module_utils.discovery.backends import open_discovery

                self._discovery = self.closes(open_discovery(self.params, **self.http_options()))
        return self._discovery

    @property
    def central_discovery(self) -> DiscoveryClient:
        """The central discovery server, whatever the backend: MVP-era providers advertise only there,
        so only it can vouch for their addresses."""
        if self._central is None:
            from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient

            self._central = self.closes(DiscoveryClient(self.params["discovery_url"], **self.http_options()))
        return self._central

    def discovery_within(self, deadline: Deadline) -> Callable[[], Discovery]:
        """The discovery driver, bound to the task's time budget; built on first use, so a run on an
        existing VM never asks discovery."""
        def client() -> Discovery:
            self.discovery.set_deadline(deadline)
            return self.discovery

        return client

    def central_within(self, deadline: Deadline) -> Callable[[], DiscoveryClient]:
        """The central discovery server (for ProviderIdentity), bound to the task's time budget."""
        def client() -> DiscoveryClient:
            self.central_discovery.set_deadline(deadline)
            return self.central_discovery

        return client

    def provider(self, ip_address: str, port: int | None = None, *, deadline: Deadline | None = None,
                 **http_options: Any) -> ProviderClient:
        """A client of the provider at ``ip_address`` (on ``provider_port`` unless ``port`` is given), bound to
        ``deadline`` if one is given; ``http_options`` override the task's (a shorter timeout, no retries)."""
        client = ProviderClient(ip_address, port or self.params["provider_port"], info_memo=self._provider_infos,
                                **{**self.http_options(), **http_options})
        client.set_deadline(deadline)
        return self.closes(client)
