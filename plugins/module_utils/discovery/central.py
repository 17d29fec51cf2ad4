# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The central discovery server (golem-vm-discovery): GET /api/v1/advertisements, over the one HTTP client.

One of the two discovery drivers (discovery.py); the only one MVP-era providers advertise on, so
identity proofs of such providers always ask it, whichever backend finds providers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation import wire_json
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import API_PREFIX, HttpClient, segment
from ansible_collections.golem.vm.plugins.module_utils.foundation.http_answers import error_reason
from ansible_collections.golem.vm.plugins.module_utils.foundation.newer_protocol import unsupported_central, websocket_answer
from ansible_collections.golem.vm.plugins.module_utils.foundation.settings import DEFAULT_DISCOVERY_URL
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement, parse_wire


# Where upstream's newer, WebSocket-only discovery service takes requestors.
WEBSOCKET_ROUTE = f"{API_PREFIX}/discovery/requestors"


class DiscoveryClient:
    """GET /api/v1/advertisements and /api/v1/advertisements/{provider_id} of a central discovery server."""

    backend = "central"
    not_found_hint = ""

    def __init__(self, base_url: str = DEFAULT_DISCOVERY_URL, **http_options: Any) -> None:
        http_options.setdefault("hint", "check discovery_url and that the discovery service is up")
        http_options.setdefault("party", f"the discovery service at {base_url.rstrip('/')} (discovery_url)")
        self.http = HttpClient(base_url, service="discovery", error_class=DiscoveryError, **http_options)
        self.source = f"discovery {self.http.base_url}"
        self.url = self.http.url(f"{API_PREFIX}/advertisements")

    def set_deadline(self, deadline: Any) -> None:
        self.http.deadline = deadline

    def close(self) -> None:
        self.http.close()

    def list_advertisements(
        self,
        *,
        cpu: int | None = None,
        memory: int | None = None,
        storage: int | None = None,
        country: str | None = None,
        platform: str | None = None,
        on_invalid: Callable[[str | None, ValidationError], None] | None = None,
    ) -> list[Advertisement]:
        """Ads with at least the given free resources. Filters are applied by discovery.

        Each item is validated on its own: with ``on_invalid`` a malformed ad is reported
        there (with its provider id, if it has one) and skipped; without it, it raises.
        """
        params = {"cpu": cpu, "memory": memory, "storage": storage, "country": country, "platform": platform}
        path = f"{API_PREFIX}/advertisements"
        try:
            data = self.http.get(path, params=params)
        except DiscoveryError as exc:
            raise self._newer(exc) or exc from None
        if not isinstance(data, list):
            raise DiscoveryError(
                f"{self.source} answered GET {self.http.url(path)} with {type(data).__name__}, not a list of advertisements",
                url=self.http.url(path),
                method="GET",
                response=json.dumps(data)[:500],
            )
        ads = []
        for item in data:
            try:
                ads.append(parse_wire(Advertisement, item, source=self.source, what="an advertisement",
                                      request=f"GET {path}"))
            except ValidationError as exc:
                if on_invalid is None:
                    raise
                provider_id = item.get("provider_id") if isinstance(item, dict) else None
                on_invalid(provider_id if isinstance(provider_id, str) else None, exc)
        return ads

    def _newer(self, exc: DiscoveryError) -> DiscoveryError | None:
        """The failure of an advert request as upstream's newer WebSocket-only discovery, when that is what answered.

        That service has no HTTP route for adverts, so the list and one advert answer 404 (or, on a WebSocket
        route, 426 or 400); only a 404 is ambiguous, so its WebSocket route is asked once to tell.
        """
        if websocket_answer(exc.status, exc.response):
            return unsupported_central(self.source, f"GET {exc.url} answered HTTP {exc.status} ({exc.response!r})",
                                       url=exc.url or self.url, status=exc.status, response=exc.response)
        if exc.status != 404:
            return None
        probe = self.http.url(WEBSOCKET_ROUTE)
        try:
            self.http.call("GET", WEBSOCKET_ROUTE, missing_ok=True)
        except DiscoveryError as refused:
            if not websocket_answer(refused.status, refused.response):
                return None
            seen = (f"GET {exc.url} answered HTTP 404, and its WebSocket route GET {probe} answered HTTP "
                    f"{refused.status} ({refused.response!r})")
            return unsupported_central(self.source, seen, url=probe, status=refused.status, response=refused.response)
        return None  # a route that answers a plain GET with 2xx or 404 is no WebSocket-only service's

    def get_advertisement(self, provider_id: str) -> Advertisement | None:
        """One provider's ad, or None when discovery has none (404). Unlike the list, this does not hide expired ads."""
        path = f"{API_PREFIX}/advertisements/{segment(provider_id)}"
        try:
            data = self.http.get(path)
        except DiscoveryError as exc:
            if exc.status == 404 and _error_body(exc.response):
                return None  # the 0.1.x service's own "no such advertisement" (ADV_004): nothing more to ask
            newer = self._newer(exc)
            if newer is not None:
                raise newer from None
            if exc.status == 404:
                return None
            raise
        if data is None:
            return None
        return parse_wire(Advertisement, data, source=self.source, what="an advertisement", request=f"GET {path}")


def _error_body(text: str | None) -> bool:
    """Whether an answer's body is a JSON error, as the 0.1.x discovery service's FastAPI sends."""
    try:
        return error_reason(wire_json.loads(text or "")) is not None
    except ValueError:
        return False
