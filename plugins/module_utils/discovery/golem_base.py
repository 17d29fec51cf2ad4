# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Discovery on Golem Base: the providers' adverts on chain, read over plain JSON-RPC.

A lookup is two HTTP requests however many providers advertise: golembase_queryEntities with
every filter in the query, then one JSON-RPC batch holding eth_blockNumber and each hit's
golembase_getEntityMetaData (upstream's CLI makes 2 + N, through golem-base-sdk, which also opens
a WebSocket). Reads need no key. The query is the one upstream's CLI builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base_entity import Entity, advertisement
from ansible_collections.golem.vm.plugins.module_utils.discovery.query import check_query_value
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import DiscoveryError, GolemError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.http import HttpClient
from ansible_collections.golem.vm.plugins.module_utils.foundation.jsonrpc import METHOD_NOT_FOUND, JsonRpc, RpcFault
from ansible_collections.golem.vm.plugins.module_utils.foundation.newer_protocol import unsupported_arkiv
from ansible_collections.golem.vm.plugins.module_utils.foundation.settings import DEFAULT_GOLEM_BASE_RPC_URL
from ansible_collections.golem.vm.plugins.module_utils.provider.models import Advertisement

OnInvalid = Callable[[Optional[str], ValidationError], None]  # evaluated at run time: see backends.py


class GolemBaseDiscovery:
    """Adverts of ``network`` (and ``payments_network``; None: any) on the Golem Base node at ``rpc_url``."""

    backend = "golem_base"
    not_found_hint = (" (providers of the MVP era advertise only on the central discovery service: for one of them, "
                      "set discovery_backend=central)")

    def __init__(self, rpc_url: str = DEFAULT_GOLEM_BASE_RPC_URL, *, network: str = "mainnet",
                 payments_network: str | None = "l2.holesky", **http_options: Any) -> None:
        http_options.setdefault("hint", "check golem_base_rpc_url and that the Golem Base node is up")
        http_options.setdefault("party", f"the Golem Base node at {rpc_url.rstrip('/')} (golem_base_rpc_url)")
        self.http = HttpClient(rpc_url, service="Golem Base", error_class=DiscoveryError, posts_are_reads=True,
                               **http_options)
        self.url = self.http.base_url
        self.source = f"Golem Base {self.url}"
        self.network = check_query_value("network", network)
        self.payments_network = (None if payments_network is None
                                 else check_query_value("payments_network", payments_network))
        self.rpc = JsonRpc(self.http, name=self.source, refused=self._refused)

    def set_deadline(self, deadline: Any) -> None:
        self.http.deadline = deadline

    def close(self) -> None:
        self.http.close()

    def query(self, *, cpu: int | None = None, memory: int | None = None, storage: int | None = None,
              country: str | None = None, platform: str | None = None, provider_id: str | None = None) -> str:
        """The golembase_queryEntities query: upstream CLI's terms, in its order, then the provider id."""
        terms = ['golem_type="provider"', f'golem_network="{self.network}"']
        if self.payments_network is not None:
            terms.append(f'golem_payments_network="{self.payments_network}"')
        for field, value in (("cpu", cpu), ("memory", memory), ("storage", storage)):
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValidationError(f"{field} {value!r} is not a whole number of at least 0",
                                          field=field, value=value)
                terms.append(f"golem_{field}>={value}")
        for field, text in (("country", country), ("platform", platform), ("provider_id", provider_id)):
            if text is not None:
                terms.append(f'golem_{field}="{check_query_value(field, text)}"')
        return " && ".join(terms)

    def list_advertisements(self, *, cpu: int | None = None, memory: int | None = None,
                            storage: int | None = None, country: str | None = None, platform: str | None = None,
                            on_invalid: OnInvalid | None = None) -> list[Advertisement]:
        """Live adverts matching every filter, one per provider. With ``on_invalid`` an entity that is
        not a valid advert is reported there (with the provider id it names, if any) and skipped;
        without it, it raises."""
        query = self.query(cpu=cpu, memory=memory, storage=storage, country=country, platform=platform)
        return self._adverts(self._keys(query), on_invalid)

    def get_advertisement(self, provider_id: str) -> Advertisement | None:
        """The live advert of ``provider_id`` on this network, or None."""
        found = self._adverts(self._keys(self.query(provider_id=provider_id)), None)
        # Checked again: a node that ignored the term must not hand over another provider's address.
        return next((ad for ad in found if ad.provider_id == provider_id), None)

    def _keys(self, query: str) -> list[str]:
        hits = self.rpc.call("golembase_queryEntities", query)
        if hits is None:
            return []  # geth writes an empty Go slice as null
        if not isinstance(hits, list) or not all(isinstance(h, dict) and isinstance(h.get("key"), str) for h in hits):
            raise DiscoveryError(f"{self.source} answered golembase_queryEntities with {str(hits)[:200]}, not a "
                                 "list of {key, value} entities", url=self.url, method="POST")
        return [hit["key"] for hit in hits]

    def _adverts(self, keys: list[str], on_invalid: OnInvalid | None) -> list[Advertisement]:
        if not keys:
            return []
        answers = self.rpc.batch([("eth_blockNumber", [])] + [("golembase_getEntityMetaData", [k]) for k in keys])
        head = self._block_number(answers[0])
        newest: dict[str, tuple[int, Advertisement]] = {}
        for key, meta in zip(keys, answers[1:]):
            provider_id = None
            try:
                if isinstance(meta, RpcFault):
                    raise ValidationError(f"{self.source} did not give the metadata of entity {key}: {meta}")
                entity = Entity(key, meta, where=self.source)
                provider_id = entity.strings.get("golem_provider_id")
                if entity.expires_at_block <= head:
                    continue  # its TTL has run out: the provider stopped renewing it
                ad = advertisement(entity)
            except ValidationError as exc:
                if on_invalid is None:
                    raise
                on_invalid(provider_id, exc)
                continue
            # Upstream's advertiser replaces duplicates it finds; until it has, the newest one counts.
            known = newest.get(ad.provider_id.lower())
            if known is None or known[0] < entity.expires_at_block:
                newest[ad.provider_id.lower()] = (entity.expires_at_block, ad)
        return [ad for _expires, ad in newest.values()]

    def _block_number(self, answer: Any) -> int:
        if isinstance(answer, RpcFault):
            raise self._refused("eth_blockNumber", answer)
        try:
            return int(answer, 16)
        except (TypeError, ValueError):
            raise DiscoveryError(f"{self.source} answered eth_blockNumber with {answer!r}, not a block number",
                                 url=self.url, method="POST") from None

    def _refused(self, method: str, fault: RpcFault) -> DiscoveryError:
        if fault.code == METHOD_NOT_FOUND:
            if method.startswith("golembase_") and self._is_arkiv():
                return unsupported_arkiv(self.url, method)
            return DiscoveryError(
                f"{self.url} does not know {method} ({fault}): it is not a Golem Base node. Point "
                f"golem_base_rpc_url at a Golem Base RPC (upstream's is {DEFAULT_GOLEM_BASE_RPC_URL}), or set "
                "discovery_backend=central to use a central discovery service", url=self.url, method="POST")
        return DiscoveryError(f"{self.source} refused {method}: {fault}", url=self.url, method="POST")

    def _is_arkiv(self) -> bool:
        """Whether the node answers Arkiv's own read API: asked only once it has refused a golembase_ method."""
        try:
            probe = {"jsonrpc": "2.0", "id": 0, "method": "arkiv_getBlockTiming", "params": []}
            answer = self.http.request("POST", "", json_body=probe)
        except GolemError:
            return False  # the node's first refusal says more than this probe's failure would
        return isinstance(answer, dict) and answer.get("error") is None and "result" in answer
