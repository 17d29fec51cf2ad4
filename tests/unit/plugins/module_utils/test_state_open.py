# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open_store picks the backend; nothing here talks to a server."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import MissingLibraryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore

PG = "ansible_collections.golem.vm.plugins.module_utils.state.postgres"


def test_no_url_is_the_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(None, str(tmp_path / "vms.db"))
    assert isinstance(store, SQLiteStateStore)
    assert (store.backend, store.location) == ("sqlite", str(tmp_path / "vms.db"))
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", str(tmp_path / "env.db"))
    assert open_store().location == str(tmp_path / "env.db")
    assert open_store("", None).backend == "sqlite"  # an empty option is no URL


def test_url_is_postgresql_and_connects_to_nothing_yet() -> None:
    pytest.importorskip("psycopg")
    # Port 1 on loopback: were anything connected, it would fail; opening must not.
    store = open_store("postgresql://golem:pw-in-url@127.0.0.60:1/golem?sslmode=disable")
    assert store.backend == "postgresql"
    assert store.location == "golem@127.0.0.60:1/golem"
    assert "pw-in-url" not in repr(store) and "pw-in-url" not in store.location
    assert "sslmode=disable" in repr(store)


def test_both_or_a_wrong_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as both:
        open_store("postgresql://db/golem", str(tmp_path / "vms.db"))
    assert "mutually exclusive" in both.value.msg
    with pytest.raises(ValidationError) as wrong:
        open_store("mysql://root:hunter2@db/golem")
    assert wrong.value.field == "state_url" and "hunter2" not in wrong.value.msg and wrong.value.value is None


def test_missing_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_psycopg(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "psycopg" or name.startswith("psycopg."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, PG, raising=False)
    # `from package import module` would find the attribute without importing again.
    monkeypatch.delattr(sys.modules[PG.rsplit(".", 1)[0]], "postgres", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_psycopg)  # monkeypatch puts all three back
    with pytest.raises(MissingLibraryError) as err:
        open_store("postgresql://golem@db.example.com/golem")
    assert "psycopg[binary]" in err.value.msg and "postgresql:// state_url" in err.value.msg
    assert err.value.import_traceback and "ImportError" in err.value.import_traceback
    # The SQLite path never needs it.
    assert open_store(None, "/tmp/never-written.db").backend == "sqlite"
