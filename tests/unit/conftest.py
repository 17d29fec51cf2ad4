# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures: recorded upstream JSON and a loopback HTTP server for the team's address."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# The team shares the machine; this suite only ever binds 127.0.0.60.
LOOPBACK = "127.0.0.60"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return (LOOPBACK, 0)


@pytest.fixture
def fixture_json() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text())

    return load


@pytest.fixture
def closed_port() -> int:
    """A port on LOOPBACK that nothing listens on, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the retry policy's shape but make its waits tiny."""
    from ansible_collections.golem.vm.plugins.module_utils.foundation import http

    monkeypatch.setattr(http, "DEFAULT_BACKOFF_FACTOR", 0.01)
    monkeypatch.setattr(http, "DEFAULT_BACKOFF_MAX", 0.05)
    monkeypatch.setattr(http, "DEFAULT_BACKOFF_JITTER", 0.01)


@pytest.fixture
def golem_base_node(httpserver: Any, fixture_json: Callable[[str], Any]) -> Any:
    """A Golem Base node with the recorded answers and no entity yet (tests/unit/golem_base_node.py)."""
    from golem_base_node import FakeNode  # beside this file, which pytest puts on sys.path

    return FakeNode(httpserver, fixture_json("golem_base_metadata_batch.json"))
