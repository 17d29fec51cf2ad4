# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a provider's "no such VM" may be believed: only from the provider the VM was rented from.

A row is the only record of a VM that is paid for, so it is forgotten only on the word of its own
provider: a 404 with the provider's JSON error body (the HTTP client refuses any other 404, a
redirect or a body that is not JSON) from a server that proves it is the recorded provider. A
current provider proves it with ``GET /api/v1/provider/info``; an MVP-era one has no such route, so
discovery's advertisement for the recorded id must still name the address. The proof is asked
once per provider per task (many VMs share a provider), and only after a 404: a run whose VMs
all answer makes no extra request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, IdentityError, UnsupportedProvider

_ProofKey = tuple[str, str]


class ProviderIdentity:
    """Proves that an address still answers as the provider a row names; one proof per provider per task.

    ``discovery()`` gives the discovery client that vouches for MVP-era providers (None: no
    discovery, so such providers cannot prove who they are).
    """

    def __init__(self, discovery: Callable[[], Any] | None = None) -> None:
        self._discovery = discovery
        self._proofs: dict[_ProofKey, str | None] = {}
        self._locks: dict[_ProofKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def prove(self, client: Any, expected_id: str | None, vm: str, *, vouched: bool = False) -> None:
        """Return when ``client``'s server is provider ``expected_id``; raise IdentityError otherwise.

        With no recorded id (a row the upstream CLI wrote, or one pinned by address to a provider
        discovery does not know), a current provider that answers /provider/info is taken for it;
        an MVP-era one, which cannot name itself, only when discovery names its address or the
        task's own provider_ip and provider_port point there (``vouched``: the user says so).
        """
        key = (client.http.base_url, (expected_id or "").lower() or ("vouched" if vouched else ""))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one proof per provider, even when many threads find 404s there at once
            if key not in self._proofs:
                self._proofs[key] = self._why_not(client, expected_id, vouched)
            why_not = self._proofs[key]
        if why_not is not None:
            raise refusal(client, expected_id, vm, why_not)

    def _why_not(self, client: Any, expected_id: str | None, vouched: bool) -> str | None:
        """None when the server proved it is the provider; else what it did instead."""
        try:
            info = client.provider_info()
        except IdentityError as exc:
            return _cause(exc)
        except UnsupportedProvider as exc:
            # Who a provider is does not depend on the protocol it pays by: its own word still proves it.
            if exc.info is None:
                return exc.msg
            info = exc.info
        if info is not None:
            if expected_id is None or info.provider_id.lower() == expected_id.lower():
                return None
            return f"it answers GET /api/v1/provider/info as provider {info.provider_id}"
        if expected_id is None and vouched:
            return None  # an MVP-era provider at the very address the task pins
        # An MVP-era provider (no /provider/info): discovery vouches for the address.
        if self._discovery is None:
            return "it has no /api/v1/provider/info (the MVP-era API) and no discovery service can vouch for it"
        ip = urlsplit(client.http.base_url).hostname
        discovery = self._discovery()
        try:
            if expected_id is not None:
                ad = discovery.get_advertisement(expected_id)
                if ad is None:
                    return (f"it has no /api/v1/provider/info (the MVP-era API), and {discovery.source} has no "
                            f"advertisement of provider {expected_id} to vouch for the address")
                if ad.ip_address != ip:
                    return (f"it has no /api/v1/provider/info (the MVP-era API), and {discovery.source} says "
                            f"provider {expected_id} is at {ad.ip_address} now")
                return None
            ads = discovery.list_advertisements(on_invalid=lambda _pid, _exc: None)
        except GolemError as exc:
            return (f"it has no /api/v1/provider/info (the MVP-era API), and discovery could not vouch for the "
                    f"address: {exc.msg}")
        if any(ad.ip_address == ip for ad in ads):
            return None
        return f"it has no /api/v1/provider/info (the MVP-era API), and no advertisement in discovery names {ip}"


def refusal(client: Any, expected_id: str | None, vm: str, why_not: str) -> IdentityError:
    """The failure of a task that found something other than the VM's provider at its address."""
    address = client.http.base_url
    expected = f"provider {expected_id}" if expected_id else "a VM on Golem provider"
    return IdentityError(
        f"VM {vm} is recorded on {expected} at {address}, but that address does not answer as {expected}: "
        f"{why_not}. A 'not found' from it says nothing about the VM, so the state file and known_hosts were "
        f"left unchanged and nothing was created. Check the provider's address; if the VM is really gone, "
        "remove it with golem.vm.golem_vm state=absent once the provider answers again"
        + ("" if expected_id else " (a provider without a recorded id is vouched for by giving provider_ip and "
           "provider_port of that address)"),
        url=address)


def lookup(client: Any, name: str, expected_id: str | None, identity: ProviderIdentity, *,
           vouched: bool = False) -> Any:
    """The VM as its provider has it, or None only when the recorded provider itself says it has none."""
    try:
        found = client.get_vm(name, missing_ok=True)
    except IdentityError as exc:
        raise refusal(client, expected_id, name, _cause(exc)) from None
    if found is None:
        identity.prove(client, expected_id, name, vouched=vouched)
    return found


def _cause(exc: GolemError) -> str:
    # "provider request GET URL failed: HTTP 404 answer has no ...; is X really ...?" -> "to GET URL, its HTTP 404 ..."
    text = exc.msg
    marker = " failed: "
    if marker in text and text.startswith("provider request "):
        request, what = text[len("provider request "):].split(marker, 1)
        return f"to {request} its {what.split('; is ', 1)[0]}"
    return text
