# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Golem Base node for unit tests: recorded answers (tests/unit/fixtures/golem_base_*.json) served
over pytest-httpserver, one JSON-RPC call or a batch per HTTP request, every request kept."""

from __future__ import annotations

import copy
import json
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery

PATH = "/rpc"


class FakeNode:
    """Every query hits every entity in ``entities`` (the node's filtering is not under test here:
    the query string is); metadata, the head block and the "not found" error are as recorded."""

    def __init__(self, httpserver: HTTPServer, recorded_batch: list[dict[str, Any]]) -> None:
        self.head = int(recorded_batch[0]["result"], 16)
        self.recorded = [item["result"] for item in recorded_batch[1:-1]]
        self.not_found = recorded_batch[-1]["error"]
        self.entities: dict[str, dict[str, Any]] = {}
        # Keys the query still lists whose metadata is gone by the batch (expired or deleted in between).
        self.vanished: list[str] = []
        self.bodies: list[Any] = []
        self.queries: list[str] = []
        self.url = httpserver.url_for(PATH)
        httpserver.expect_request(PATH, method="POST").respond_with_handler(self.handle)

    def recorded_advert(self, country: str) -> dict[str, Any]:
        """A copy of the recorded metadata of the SE or the US provider's advert."""
        for meta in self.recorded:
            if {"key": "golem_country", "value": country} in meta["stringAnnotations"]:
                return copy.deepcopy(meta)
        raise KeyError(country)

    def add(self, key: str, meta: dict[str, Any]) -> str:
        key = key if key.startswith("0x") else "0x" + key.encode().hex().ljust(64, "0")[:64]
        self.entities[key] = meta
        return key

    def discovery(self, **options: Any) -> GolemBaseDiscovery:
        options.setdefault("retries", 0)
        return GolemBaseDiscovery(self.url, **options)

    def handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        self.bodies.append(body)
        answer = [self.answer(call) for call in body] if isinstance(body, list) else self.answer(body)
        return Response(json.dumps(answer), content_type="application/json")

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call["params"]
        out: dict[str, Any] = {"jsonrpc": "2.0", "id": call["id"]}
        if method == "golembase_queryEntities":
            self.queries.append(params[0])
            out["result"] = [{"key": key, "value": ""} for key in [*self.entities, *self.vanished]]
        elif method == "eth_blockNumber":
            out["result"] = hex(self.head)
        elif method == "golembase_getEntityMetaData" and params[0] in self.entities:
            out["result"] = self.entities[params[0]]
        elif method == "golembase_getEntityMetaData":
            out["error"] = {**self.not_found, "message": f"entity {params[0]} not found"}
        else:
            out["error"] = {"code": -32601, "message": f"the method {method} does not exist/is not available"}
        return out


def advert(provider_id: str, *, cpu: int = 4, expires: int = 10_000, country: str = "SE") -> dict[str, Any]:
    """Metadata of a well-formed advert of ``provider_id``, signed by it, as upstream's advertiser writes it."""
    strings = {
        "golem_type": "provider", "golem_network": "mainnet", "golem_payments_network": "l2.holesky",
        "golem_provider_id": provider_id, "golem_ip_address": "127.0.0.61", "golem_country": country,
        "golem_provider_name": "unit", "golem_platform": "x86_64", "golem_price_currency": "USD/GLM",
        "golem_price_usd_core_month": "5.0", "golem_price_usd_ram_gb_month": "2.0",
        "golem_price_usd_storage_gb_month": "0.1", "golem_price_glm_core_month": "20.0",
        "golem_price_glm_ram_gb_month": "8.0", "golem_price_glm_storage_gb_month": "0.4",
    }
    return {"expiresAtBlock": expires, "payload": "", "owner": provider_id.lower(),
            "stringAnnotations": [{"key": k, "value": v} for k, v in strings.items()],
            "numericAnnotations": [{"key": "golem_cpu", "value": cpu}, {"key": "golem_memory", "value": 8},
                                   {"key": "golem_storage", "value": 100}]}
