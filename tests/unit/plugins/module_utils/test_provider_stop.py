# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""POST /vms/NAME/stop: an MVP-era provider has no such endpoint, and the error says so and what to do instead."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ProviderError
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient


def test_stop_on_a_provider_without_the_endpoint_says_it_speaks_the_mvp_api(httpserver: HTTPServer) -> None:
    stop = httpserver.expect_request("/api/v1/vms/web-1/stop", method="POST")
    stop.respond_with_json({"detail": "Not Found"}, status=404)
    client = ProviderClient(httpserver.host, httpserver.port, retries=0)
    with pytest.raises(ProviderError) as err:
        client.stop_vm("web-1")
    assert err.value.status == 404 and "MVP-era API" in err.value.msg and "state=absent" in err.value.msg
    assert f"{httpserver.host}:{httpserver.port}" in err.value.msg


def test_stop_answers_other_errors_as_they_are(httpserver: HTTPServer) -> None:
    stop = httpserver.expect_request("/api/v1/vms/web-1/stop", method="POST")
    stop.respond_with_json({"detail": "boom"}, status=500)
    with pytest.raises(ProviderError) as err:
        ProviderClient(httpserver.host, httpserver.port, retries=0).stop_vm("web-1")
    assert err.value.status == 500 and "MVP-era" not in err.value.msg
