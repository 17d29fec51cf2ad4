# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A task's budget that runs out names who the task was waiting on and the setting that points there.

The budget is spent before the call (its end moved into the past), so each verdict is the same on a
fast or a loaded machine, and no request may reach the server once the budget is gone.
"""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.chain.contract import StreamChain
from ansible_collections.golem.vm.plugins.module_utils.chain.runway_reads import _Batches
from ansible_collections.golem.vm.plugins.module_utils.discovery.central import DiscoveryClient
from ansible_collections.golem.vm.plugins.module_utils.discovery.golem_base import GolemBaseDiscovery
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import TaskTimeout
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient

LOOPBACK = "127.0.0.61"


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with HTTPServer(host=LOOPBACK, port=0) as srv:
        srv.expect_request("/").respond_with_json({"jsonrpc": "2.0", "id": 1, "result": "0x1"})
        yield srv


def spent(seconds: float = 10, option: str = "wait_timeout") -> Deadline:
    deadline = Deadline(seconds, option=option)
    deadline.end = time.monotonic() - 1
    return deadline


def _fails(call: Callable[[], Any]) -> str:
    with pytest.raises(TaskTimeout) as caught:
        call()
    return caught.value.msg


def test_a_budget_spent_on_the_payments_node_names_it_and_payments_rpc_url(server: HTTPServer, tmp_path: Path) -> None:
    url = server.url_for("/").rstrip("/")
    chain = StreamChain(url, None, lock_dir=str(tmp_path), deadline=spent())
    msg = _fails(chain.chain_id)
    assert msg == (f"wait_timeout of 10 s ran out while calling POST {url}; raise wait_timeout or check the "
                   f"payments node at {url} (payments_rpc_url)")
    assert "provider" not in msg
    assert server.log == []


def test_the_inventory_s_stream_reads_name_the_payments_node_too(server: HTTPServer) -> None:
    url = server.url_for("/").rstrip("/")
    runways = _Batches(url, spent(option="refresh_timeout"), 5, True).read([("0x" + "11" * 20, 1)])
    (runway,) = runways.values()
    assert "refresh_timeout of 10 s ran out" in runway.error
    assert f"check the payments node at {url} (payments_rpc_url)" in runway.error
    assert server.log == []


def test_a_budget_spent_on_golem_base_names_the_node_and_golem_base_rpc_url(server: HTTPServer) -> None:
    url = server.url_for("/rpc")
    discovery = GolemBaseDiscovery(url)
    discovery.set_deadline(spent())
    msg = _fails(lambda: discovery.list_advertisements(country="SE"))
    assert msg.startswith(f"wait_timeout of 10 s ran out while calling POST {url};")
    assert msg.endswith(f"check the Golem Base node at {url} (golem_base_rpc_url)")
    assert server.log == []


def test_a_budget_spent_on_central_discovery_names_it_and_discovery_url(server: HTTPServer) -> None:
    url = server.url_for("/").rstrip("/")
    discovery = DiscoveryClient(url)
    discovery.set_deadline(spent())
    msg = _fails(lambda: discovery.list_advertisements(cpu=1))
    assert msg.endswith(f"check the discovery service at {url} (discovery_url)")
    assert server.log == []


def test_a_budget_spent_on_a_provider_names_the_provider(server: HTTPServer) -> None:
    client = ProviderClient(LOOPBACK, server.port)
    client.set_deadline(spent())
    msg = _fails(lambda: client.get_vm("web-1"))
    assert msg == (f"wait_timeout of 10 s ran out while calling GET http://{LOOPBACK}:{server.port}/api/v1/vms/web-1; "
                   f"raise wait_timeout or check the provider at http://{LOOPBACK}:{server.port}")
    assert server.log == []


def test_a_wait_between_polls_names_the_provider_by_default() -> None:
    msg = _fails(lambda: spent(3).sleep(0.01, "waiting for VM web-1 to run"))
    assert msg == "wait_timeout of 3 s ran out while waiting for VM web-1 to run; raise wait_timeout or check the provider"
