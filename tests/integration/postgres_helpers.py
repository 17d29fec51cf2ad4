# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures and helpers for the tests against the local network's PostgreSQL (devnet/postgres.py).

Each test gets a schema of its own in the ``golem`` database, through the URL's
``options=-csearch_path`` (which is how a team would give two states one database), and
drops it afterwards. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

from .devnet_helpers import REPO, RUN

psycopg = pytest.importorskip("psycopg")


def load_test_module(relative: str, name: str) -> ModuleType:
    """A test helper module of the unit suite (not a package), loaded by path under ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_unit_conftest = load_test_module("tests/unit/plugins/module_utils/conftest.py", "golem_unit_state_conftest")
run_in_processes = _unit_conftest._run_in_processes


def ctl(*args: str) -> None:
    """devnet/ctl.py, e.g. ctl("stop", "postgres"); the network's NET comes from the environment."""
    subprocess.run([sys.executable, str(REPO / "devnet" / "ctl.py"), *args], check=True, capture_output=True,
                   timeout=120)


def env_file() -> dict[str, str]:
    lines = (RUN / "postgres.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="session")
def postgres(devnet: dict) -> dict[str, Any]:
    """The network's PostgreSQL: status.json's entry plus the password."""
    info = dict(devnet["postgres"])
    assert info["alive"], "the local network's PostgreSQL is down"
    assert "@" in info["url"] and ":" not in info["url"].split("//", 1)[1].split("@", 1)[0], info["url"]
    info["password"] = env_file()["PGPASSWORD"]
    return info


def url_for(postgres: dict[str, Any], schema: str | None = None, *, password: bool = True) -> str:
    user = postgres["user"] + (":" + quote(postgres["password"], safe="") if password else "")
    url = f"postgresql://{user}@{postgres['ip']}:{postgres['port']}/{postgres['database']}"
    return url + (f"?options=-csearch_path%3D{schema}" if schema else "")


def admin(postgres: dict[str, Any]) -> Any:
    """A plain psycopg connection as the test role, outside the code under test."""
    return psycopg.connect(url_for(postgres), autocommit=True)


@pytest.fixture
def pg_schema(postgres: dict[str, Any]) -> Iterator[str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    with admin(postgres) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    try:
        with admin(postgres) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except psycopg.OperationalError:
        pass  # a fault test left the server down; the next `up` starts a new cluster anyway


@pytest.fixture
def pg_url(postgres: dict[str, Any], pg_schema: str) -> str:
    """The URL of this test's own schema, password included."""
    return url_for(postgres, pg_schema)


def tables(postgres: dict[str, Any], schema: str) -> list[str]:
    with admin(postgres) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                            "ORDER BY table_name", (schema,)).fetchall()
    return [r[0] for r in rows]
