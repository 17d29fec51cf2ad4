# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider REST API at http://<ip>:<port>/api/v1, typed, over the collection's one HTTP client."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import check_host, check_port
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import IdentityError, ProviderError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import (
    API_PREFIX,
    DEFAULT_PROVIDER_PORT,
    HttpClient,
    HttpResponse,
    provider_url,
    segment,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.newer_protocol import (
    provider_info_problem,
    provider_refusal,
    tls_only_provider,
    unsupported_provider,
)
from ansible_collections.golem.vm.plugins.module_utils.provider.models import (
    AccessInfo,
    CreateJob,
    CreateVMRequest,
    ProviderInfo,
    VMInfo,
    parse_wire,
)


class ProviderInfoMemo:
    """The /provider/info answers of one task, by provider URL.

    A fleet of 20 on two providers would otherwise ask each one ten times (identity proof, the
    payment's recipient and contract), and providers answer their API one request at a time.
    Failures are not kept: the next caller asks again.
    """

    def __init__(self) -> None:
        self._answers: dict[str, ProviderInfo | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, base_url: str, ask: Callable[[], ProviderInfo | None]) -> ProviderInfo | None:
        with self._guard:
            lock = self._locks.setdefault(base_url, threading.Lock())
        with lock:
            if base_url not in self._answers:
                self._answers[base_url] = ask()
            return self._answers[base_url]


class ProviderClient:
    """The provider REST API at http://<ip>:<port>/api/v1."""

    def __init__(self, ip_address: str, port: int = DEFAULT_PROVIDER_PORT, *,
                 info_memo: ProviderInfoMemo | None = None, **http_options: Any) -> None:
        # Where a provider's address becomes a URL: a recorded one may come from a row someone else wrote.
        check_host(ip_address, field="provider_ip", source="the provider's recorded address")
        check_port(port, field="provider_port", source="the provider's recorded address")
        self.info_memo = info_memo
        http_options.setdefault("hint", f"check that the provider runs and that port {port} is reachable")
        where = provider_url(ip_address, port)
        http_options.setdefault("party", f"the provider at {where}")
        # A request the server took and left unanswered: upstream's newer provider serves its API over HTTPS only.
        http_options.setdefault("unanswered", lambda *request: tls_only_provider(where, *request))
        self.http = HttpClient(
            where, service="provider", error_class=ProviderError, foreign_error=IdentityError, **http_options
        )
        self.source = f"provider {self.http.base_url}"

    def close(self) -> None:
        self.http.close()

    def _parse(self, model: Any, data: Any, what: str, request: str | None = None) -> Any:
        return parse_wire(model, data, source=self.source, what=what, request=request)

    def _call(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        """One request; a refusal only upstream's newer protocol gives becomes UnsupportedProvider."""
        try:
            return self.http.call(method, path, **kwargs)
        except IdentityError:
            raise
        except ProviderError as exc:
            newer = provider_refusal(exc, self.http.base_url)
            if newer is None:
                raise
            raise newer from None

    def provider_info(self) -> ProviderInfo | None:
        """Who this provider is; None from an MVP-era provider, whose API has no such route.

        Raises UnsupportedProvider (carrying the info) for a provider of upstream's newer protocol: every
        caller but the identity proof would go on to pay or rent on terms this version cannot meet.
        """
        if self.info_memo is not None:
            info = self.info_memo.get(self.http.base_url, self._ask_info)
        else:
            info = self._ask_info()
        if info is not None and provider_info_problem(info) is not None:
            raise unsupported_provider(info, self.http.base_url, self.http.url(f"{API_PREFIX}/provider/info"))
        return info

    def _ask_info(self) -> ProviderInfo | None:
        path = f"{API_PREFIX}/provider/info"
        data = self._call("GET", path, missing_ok=True).data
        return None if data is None else self._parse(ProviderInfo, data, "provider info", f"GET {path}")

    def create_vm(self, request: CreateVMRequest, *, timeout: float | None = None) -> CreateJob | VMInfo:
        """POST /vms?async=true, sent once and never retried.

        Current providers answer 202 with a job to poll; MVP-era ones ignore ``async`` and
        answer with the finished VM, so the shape of the answer says which API this is.
        ``timeout`` can be longer than the usual one, for the synchronous kind.
        """
        data = self._call(
            "POST", f"{API_PREFIX}/vms", params={"async": "true"}, json_body=request.payload(), timeout=timeout
        ).data
        sent = f"POST {API_PREFIX}/vms"
        if isinstance(data, dict) and "job_id" in data:
            return self._parse(CreateJob, data, "a create job", sent)
        return self._parse(VMInfo, data, "a VM", sent)

    def set_deadline(self, deadline: Deadline | None) -> None:
        self.http.deadline = deadline

    def get_job(self, job_id: str) -> CreateJob:
        path = f"{API_PREFIX}/vms/jobs/{segment(job_id)}"
        return self._parse(CreateJob, self._call("GET", path).data, "a create job", f"GET {path}")

    def get_vm(self, name: str, *, missing_ok: bool = False) -> VMInfo | None:
        path = f"{API_PREFIX}/vms/{segment(name)}"
        data = self._call("GET", path, missing_ok=missing_ok).data
        return None if data is None else self._parse(VMInfo, data, "a VM", f"GET {path}")

    def get_access(self, name: str) -> AccessInfo:
        """SSH host and port; ssh_port is None (HTTP 202) while the provider has not assigned one yet."""
        path = f"{API_PREFIX}/vms/{segment(name)}/access"
        return self._parse(AccessInfo, self._call("GET", path).data, "access info", f"GET {path}")

    def stop_vm(self, name: str) -> VMInfo:
        # Not idempotent by HTTP method, but stopping twice is harmless; still, POST is not retried.
        path = f"{API_PREFIX}/vms/{segment(name)}/stop"
        try:
            answer = self._call("POST", path)
        except ProviderError as exc:
            if exc.status != 404:
                raise
            raise ProviderError(f"provider {self.http.base_url} cannot stop VMs: it speaks the MVP-era API, which has "
                                "no stop endpoint; use state=absent to destroy the VM", url=exc.url, method=exc.method,
                                status=exc.status, response=exc.response) from None
        return self._parse(VMInfo, answer.data, "a VM", f"POST {path}")

    def delete_vm(self, name: str) -> None:
        """DELETE /vms/{name}; providers answer 200 even for a name they do not know."""
        self._call("DELETE", f"{API_PREFIX}/vms/{segment(name)}")
