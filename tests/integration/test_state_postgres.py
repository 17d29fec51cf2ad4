# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL state backend against the local network's real PostgreSQL.

The backend-neutral behaviour tests of the SQLite store (tests/unit/.../test_state.py) run
here again, unchanged, against PostgreSQL; the rest is what only a server has: schema
versions, 40 racing processes, the name lock across processes, passwords, a server that
stops mid-operation.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.state.postgres import PostgresStateStore
from ansible_collections.golem.vm.plugins.module_utils.state.postgres_schema import MIGRATIONS, Migration
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore

# Fixtures are used by name, which linters cannot see.
from .postgres_helpers import (  # noqa: F401  pylint: disable=unused-import
    admin,
    ctl,
    load_test_module,
    pg_schema,
    pg_url,
    postgres,
    run_in_processes,
    tables,
    url_for,
)

_sqlite_tests = load_test_module("tests/unit/plugins/module_utils/test_state.py", "golem_unit_test_state")
_record = _sqlite_tests._record


@pytest.fixture
def store(pg_url: str) -> Any:
    with PostgresStateStore(pg_url) as opened:
        yield opened


# The SQLite store's behaviour tests, run unchanged on PostgreSQL through the `store` fixture above.
test_upsert_get_roundtrip_keeps_created_at = _sqlite_tests.test_upsert_get_roundtrip_keeps_created_at
test_set_status_merges_config_and_removes_none = _sqlite_tests.test_set_status_merges_config_and_removes_none
test_invalid_input_is_a_validation_error = _sqlite_tests.test_invalid_input_is_a_validation_error
test_delete = _sqlite_tests.test_delete
test_list_filters = _sqlite_tests.test_list_filters


# --- schema --------------------------------------------------------------------------------


def test_reading_an_empty_database_creates_nothing(store: PostgresStateStore, postgres: dict, pg_schema: str) -> None:
    assert not store.exists()
    assert store.list() == [] and store.get("vm-1") is None and store.raw_rows() == []
    assert store.delete("vm-1") is False and store.set_status("vm-1", "stopped") is None
    assert tables(postgres, pg_schema) == []


def test_first_write_creates_the_versioned_schema(store: PostgresStateStore, postgres: dict, pg_schema: str) -> None:
    store.upsert(_record("vm-1"))
    assert store.exists()
    assert tables(postgres, pg_schema) == ["golem_vm_schema", "vms"]
    with admin(postgres) as conn:
        versions = conn.execute(f"SELECT version, description, applied_by FROM {pg_schema}.golem_vm_schema").fetchall()
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, collation_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'vms' ORDER BY ordinal_position", (pg_schema,)).fetchall()
    assert versions == [(1, MIGRATIONS[0].description, postgres["user"])]
    assert columns == [
        ("name", "text", "NO", "C"), ("provider_ip", "text", "NO", None), ("vm_id", "text", "NO", None),
        ("config", "text", "NO", None), ("status", "text", "NO", None), ("created_at", "text", "YES", None),
    ]
    assert store.get("vm-1").created_at  # type: ignore[union-attr] - the column default, in SQLite's format
    assert len(store.get("vm-1").created_at) == len("2026-01-01 00:00:00")  # type: ignore[union-attr]


def test_names_sort_bytewise_as_in_sqlite(store: PostgresStateStore, postgres: dict, tmp_path: Path) -> None:
    names = ["b", "A-2", "a-1", "a_3", "Z", "é-1", "e-2"]
    sqlite = SQLiteStateStore(str(tmp_path / "vms.db"))
    for name in names:
        store.upsert(_record(name))
        sqlite.upsert(_record(name))
    assert [r.name for r in store.list()] == [r.name for r in sqlite.list()] == sorted(names)
    with admin(postgres) as conn:  # the database's own collation would sort otherwise, so the test means something
        linguistic = [r[0] for r in conn.execute("SELECT unnest(%s::text[]) AS n ORDER BY n", (names,))]
    assert linguistic != sorted(names)


def test_unreadable_config_rows_are_flagged_not_fatal(store: PostgresStateStore, postgres: dict,
                                                      pg_schema: str) -> None:
    store.upsert(_record("good-1"))
    with admin(postgres) as conn:
        conn.execute(f"INSERT INTO {pg_schema}.vms (name, provider_ip, vm_id, config) VALUES "
                     "('broken', '192.0.2.9', 'b', '{not json'), ('listy', '192.0.2.9', 'l', '[1, 2]')")
    records = {r.name: r for r in store.list()}
    assert records["good-1"].ok and not records["broken"].ok and "not an object" in records["listy"].config_error
    assert [r.name for r in store.list(providers=["192.0.2.9"])] == ["broken", "listy"]
    with pytest.raises(StateError) as err:
        store.set_status("broken", "stopped")
    assert "'broken'" in err.value.msg and postgres["password"] not in err.value.msg
    assert store.delete("broken") is True


V2 = (*MIGRATIONS, Migration(2, "test: a note column", ("ALTER TABLE vms ADD COLUMN note TEXT",
                                                        "CREATE INDEX vms_status ON vms (status)")))


def _migrating_writer(index: int, url: str) -> None:
    with PostgresStateStore(url, migrations=V2) as mine:
        mine.upsert(_record(f"new-{index:02d}"))


def test_40_processes_migrate_an_older_schema_once(store: PostgresStateStore, postgres: dict, pg_schema: str,
                                                   pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store.upsert(_record("old-1", labels={"team": "a"}))  # a database at version 1, as an older golem.vm left it
    started = time.monotonic()
    run_in_processes(lambda i: _migrating_writer(i, pg_url), 40)
    wall = time.monotonic() - started
    with admin(postgres) as conn:
        versions = conn.execute(f"SELECT version FROM {pg_schema}.golem_vm_schema ORDER BY version").fetchall()
        assert conn.execute(f"SELECT note FROM {pg_schema}.vms WHERE name = 'old-1'").fetchone() == (None,)
    assert versions == [(1,), (2,)]  # each migration recorded once, though 40 processes raced to run it
    assert len(store.list()) == 41 and store.get("old-1").config["labels"] == {"team": "a"}  # type: ignore[union-attr]
    # This collection (version 1) still reads the newer schema, but refuses to write to it.
    assert store.get("new-00") is not None
    with PostgresStateStore(pg_url) as older:
        assert len(older.list()) == 41
        with pytest.raises(StateError) as err:
            older.upsert(_record("from-old"))
    assert "schema version 2, newer than this collection knows (1)" in err.value.msg
    assert postgres["password"] not in err.value.msg
    with capsys.disabled():
        print(f"\n[measure] 40 processes migrating version 1 -> 2 and writing: wall {wall:.2f} s")


# --- concurrency -----------------------------------------------------------------------------

WRITERS = 40
SHARED = [f"shared-{i}" for i in range(5)]


def _writer(index: int, url: str) -> float:
    started = time.monotonic()
    with PostgresStateStore(url) as store:
        for j in range(3):
            store.upsert(_record(f"w{index:02d}-{j}", worker=index))
        store.set_status(f"w{index:02d}-0", "stopped", note="mine")
        if index < len(SHARED):
            store.upsert(_record(SHARED[index]))
        deadline = time.monotonic() + 60
        for name in SHARED:
            while store.set_status(name, "running", **{f"seen_by_{index:02d}": True}) is None:
                # Its creator has not run yet; a bounded wait, so a creator that failed fails this test, not hangs it.
                assert time.monotonic() < deadline, f"{name} never appeared"
                time.sleep(0.01)
        store.delete(f"w{index:02d}-2")
        assert len(store.list()) >= 1
    return time.monotonic() - started


def test_40_writer_processes_lose_nothing(store: PostgresStateStore, pg_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # An empty schema: the 40 writers also race to create the tables.
    started = time.monotonic()
    durations = run_in_processes(lambda i: _writer(i, pg_url), WRITERS)
    wall = time.monotonic() - started
    records = {r.name: r for r in store.list()}
    own = {f"w{i:02d}-{j}" for i in range(WRITERS) for j in (0, 1)}
    assert set(records) == own | set(SHARED)
    for i in range(WRITERS):
        assert records[f"w{i:02d}-0"].status == "stopped" and records[f"w{i:02d}-0"].config["note"] == "mine"
        assert records[f"w{i:02d}-1"].config["worker"] == i
    for name in SHARED:
        seen = {k for k in records[name].config if k.startswith("seen_by_")}
        assert seen == {f"seen_by_{i:02d}" for i in range(WRITERS)}, name
    with capsys.disabled():
        print(f"\n[measure] PostgreSQL: {WRITERS} writer processes x 10-11 write transactions each: "
              f"wall {wall:.2f} s, slowest {max(durations):.2f} s")


def test_listing_10000_rows(store: PostgresStateStore, postgres: dict, pg_schema: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    store.upsert(_record("seed"))
    config = json.dumps({"cpu": 2, "memory": 4, "storage": 20, "ssh_port": 50800, "provider_id": "0x" + "a" * 40,
                         "ssh_user": "root", "country": "SE", "labels": {"role": "web"}})
    with admin(postgres) as conn, conn.cursor().copy(
            f"COPY {pg_schema}.vms (name, provider_ip, vm_id, config, status) FROM STDIN") as copy:
        for i in range(9_999):
            copy.write_row((f"vm-{i:05d}", f"10.0.{i // 250}.{i % 250}", f"vm-{i:05d}", config, "running"))
    started = time.perf_counter()
    records = store.list()
    elapsed = time.perf_counter() - started
    assert len(records) == 10_000 and all(r.ok for r in records) and records[-1].name == "vm-09998"
    # How fast is measured (make bench-inventory-pg compares it with SQLite in one run); the cap only catches
    # a query per row, which takes minutes, and is far from a loaded machine's figure.
    assert elapsed < 60, f"listing 10,000 rows took {elapsed:.3f} s"
    with capsys.disabled():
        print(f"\n[measure] PostgreSQL list() of 10,000 rows: {elapsed * 1000:.0f} ms")


# --- the name lock ---------------------------------------------------------------------------


def _hold(url: str, name: str, hold: float) -> tuple[float, float]:
    with PostgresStateStore(url) as store, store.lock(name, timeout=30) as held:
        got = time.monotonic()
        held.verify()
        # The lock blocks nobody's data: the holder writes the row on the store's own connection.
        store.upsert(_record(name, holder=os.getpid()))
        time.sleep(hold)
        return got, time.monotonic()


def test_two_processes_locking_one_name_take_turns(pg_url: str) -> None:
    (_in1, out1), (in2, _out2) = sorted(run_in_processes(lambda i: _hold(pg_url, "web-1", 0.5), 2))
    assert in2 >= out1 - 0.01


def _hold_together(url: str, name: str, together: Any) -> None:
    with PostgresStateStore(url) as store, store.lock(name, timeout=120) as held:
        held.verify()
        together.wait()  # breaks (raises) unless every process holds its own name's lock at once


def test_other_names_do_not_wait(pg_url: str) -> None:
    # All four hold their locks at the same moment, or the barrier breaks: no duration is measured.
    together = multiprocessing.get_context("fork").Barrier(4, timeout=60)
    run_in_processes(lambda i: _hold_together(pg_url, f"web-{i}", together), 4)


def test_lock_timeout_names_the_vm_and_server_not_the_password(store: PostgresStateStore, postgres: dict) -> None:
    with store.lock("db-1", timeout=1):
        started = time.monotonic()
        with pytest.raises(StateError) as err:
            with store.lock("db-1", timeout=0.3):
                pass
        assert 0.25 <= time.monotonic() - started < 20  # waited its timeout, not a server's default
        with pytest.raises(StateError):
            with store.lock("db-1", timeout=0):
                pass
    msg = err.value.msg
    assert "'db-1'" in msg and f"{postgres['ip']}:{postgres['port']}" in msg and postgres["password"] not in msg
    with store.lock("db-1", timeout=0):
        pass


def test_lock_of_a_killed_holder_is_released_by_the_server(pg_url: str, store: PostgresStateStore) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            with PostgresStateStore(pg_url).lock("vm-x", timeout=5):
                os.write(write_end, b"x")
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    # Released once the server sees the session die, not after a keepalive's minutes: the lock's own
    # timeout is the bound (a StateError past it), so no duration is judged here.
    with store.lock("vm-x", timeout=60):
        pass


# --- passwords -------------------------------------------------------------------------------


def test_password_from_pgpassword_or_a_passfile(postgres: dict, pg_schema: str, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    bare = url_for(postgres, pg_schema, password=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))  # not the network's passfile, not ~/.pgpass
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(StateError) as no_password:
        PostgresStateStore(bare).list()
    assert "refused the login" in no_password.value.msg
    monkeypatch.setenv("PGPASSWORD", postgres["password"])
    PostgresStateStore(bare).upsert(_record("via-env"))
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", postgres["passfile"])
    assert [r.name for r in PostgresStateStore(bare).list()] == ["via-env"]


def test_wrong_password_is_refused_without_echoing_any(postgres: dict, pg_schema: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "env-secret-that-is-wrong")
    wrong = url_for({**postgres, "password": "url-secret-that-is-wrong"}, pg_schema)
    with pytest.raises(StateError) as err:
        PostgresStateStore(wrong).upsert(_record("x"))
    msg = err.value.msg
    assert msg.startswith(f"PostgreSQL at golem@{postgres['ip']}:{postgres['port']}/golem refused the login")
    for secret in ("url-secret-that-is-wrong", "env-secret-that-is-wrong", postgres["password"]):
        assert secret not in msg and secret not in repr(err.value.failure())


def test_sslmode_and_other_parameters_reach_libpq(pg_url: str, postgres: dict) -> None:
    # The devnet's server has no TLS: "require" must fail (so the parameter arrived), "disable" must work.
    with pytest.raises(StateError) as err:
        PostgresStateStore(pg_url + "&sslmode=require").list()
    assert "cannot connect" in err.value.msg and "SSL" in err.value.msg and postgres["password"] not in err.value.msg
    with PostgresStateStore(pg_url + "&sslmode=disable&application_name=golem-test") as store:
        store.upsert(_record("vm-1"))
        with admin(postgres) as conn:
            names = [r[0] for r in conn.execute("SELECT application_name FROM pg_stat_activity WHERE usename = %s",
                                                (postgres["user"],))]
        assert "golem-test" in names


# --- the server stops mid-operation ----------------------------------------------------------


def test_server_stopped_mid_operation_then_restarted(store: PostgresStateStore, postgres: dict, pg_schema: str) -> None:
    where = f"golem@{postgres['ip']}:{postgres['port']}/golem"
    store.upsert(_record("vm-1"))
    blocker = admin(postgres)
    outcome: dict[str, Any] = {}
    try:
        held_lock = store.lock("vm-2", timeout=5)
        lock = held_lock.__enter__()
        # A writer stuck behind a row lock when the server goes down: mid-operation for real.
        blocker.execute("BEGIN")
        blocker.execute(f"SELECT 1 FROM {pg_schema}.vms WHERE name = 'vm-1' FOR UPDATE")

        def stuck_writer() -> None:
            try:
                outcome["result"] = PostgresStateStore(url_for(postgres, pg_schema)).set_status("vm-1", "stopped")
            except StateError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=stuck_writer)
        thread.start()
        # Stopped only once the writer really waits on the row lock (the server says so), however long
        # its connection took: stopped earlier, the writer would see "cannot connect" instead.
        with admin(postgres) as watcher:
            waiting = False
            for _poll in range(600):
                waiting = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                                          (blocker.info.backend_pid,)).fetchone()[0] > 0
                if waiting or not thread.is_alive():
                    break
                time.sleep(0.1)
        assert waiting and thread.is_alive(), outcome  # waiting on the row lock
        ctl("stop", "postgres")
        thread.join(timeout=30)
        errors = [outcome["error"].msg]
        assert errors[0].startswith(f"lost the connection to PostgreSQL at {where}"), errors[0]
        with pytest.raises(StateError) as stale:  # the store's kept connection died with the server
            store.upsert(_record("vm-3"))
        with pytest.raises(StateError) as down:  # and now there is nothing to connect to
            store.list()
        with pytest.raises(StateError) as lost:
            lock.verify()
        errors += [stale.value.msg, down.value.msg, lost.value.msg]
        assert down.value.msg.startswith(f"cannot connect to PostgreSQL at {where}")
        assert "lost the lock on VM name 'vm-2'" in lost.value.msg
        held_lock.__exit__(None, None, None)  # releasing a lock whose session is gone is quiet
        for msg in errors:
            assert f"{postgres['ip']}:{postgres['port']}" in msg and postgres["password"] not in msg, msg
            assert "Traceback" not in msg
    finally:
        blocker.close()
        ctl("start", "postgres")
    # Back up: the same store object works again, with what was committed before the stop.
    assert [(r.name, r.status) for r in store.list()] == [("vm-1", "running")]
    store.upsert(_record("vm-3"))
    with store.lock("vm-2", timeout=1):
        assert store.set_status("vm-1", "stopped").status == "stopped"  # type: ignore[union-attr]
