# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's main() in-process, as Ansible runs it in its own process."""

from __future__ import annotations

import pytest
from fake_rpc import FakeRPC
from pytest_httpserver import HTTPServer
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.common import warnings as ansible_warnings


@pytest.fixture(autouse=True)
def module_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Once controller code is imported (pytest-ansible does), module warnings go to the
    # controller's display instead of the result; make main() behave as in a module process.
    monkeypatch.setattr(ansible_internal, "is_controller", False)
    # AnsibleModule keeps warnings in a process-wide dict; one test's must not leak into the next.
    ansible_warnings._global_warnings.clear()


# The StreamPayment contract the modules' tests pay through (the address anvil gives the first contract deployed).
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture
def chain(httpserver: HTTPServer) -> FakeRPC:
    """A payment chain answering JSON-RPC at the test server's /rpc (tests/unit/fake_rpc.py)."""
    fake = FakeRPC(CONTRACT)
    httpserver.expect_request("/rpc").respond_with_handler(fake.handler)
    return fake
