# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.settings import state_path
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore

# Upstream's statement as requestor/db/sqlite.py runs it, whitespace included. Kept as a literal
# here (not imported from state.py) so a drift in our schema fails this test.
UPSTREAM_CREATE = """
                CREATE TABLE IF NOT EXISTS vms (
                    name TEXT PRIMARY KEY,
                    provider_ip TEXT NOT NULL,
                    vm_id TEXT NOT NULL,
                    config TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'running',
                    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
                )
            """
# One upstream revision stored in the corpus carries an extra column; we must read that file too.
UPSTREAM_CREATE_WITH_KEY_NAME = UPSTREAM_CREATE.replace(
    "status TEXT NOT NULL DEFAULT 'running',", "status TEXT NOT NULL DEFAULT 'running',\n ssh_key_name TEXT,"
)


RunInProcesses = Callable[..., list[Any]]


def _normalize_sql(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = sql.replace("IF NOT EXISTS ", "")  # SQLite drops it when storing the statement
    return re.sub(r"\s*([(),])\s*", r"\1", sql)


def _record(name: str, **config: object) -> VMRecord:
    base = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 50800}
    base.update(config)
    return VMRecord(name=name, provider_ip="192.0.2.10", vm_id=name, status="running", config=base)


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(str(tmp_path / "state" / "vms.db"))


# --- schema and upstream compatibility -------------------------------------------------


def test_schema_is_upstreams(store: StateStore) -> None:
    store.upsert(_record("vm-a"))
    conn = sqlite3.connect(store.path)
    try:
        objects = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        columns = conn.execute("PRAGMA table_info(vms)").fetchall()
    finally:
        conn.close()
    # Only upstream's table and its primary-key index: nothing the CLI would not create.
    assert [(kind, name) for kind, name, sql in objects] == [("index", "sqlite_autoindex_vms_1"), ("table", "vms")]
    assert _normalize_sql(objects[1][2]) == _normalize_sql(UPSTREAM_CREATE)
    assert columns == [
        (0, "name", "TEXT", 0, None, 1),
        (1, "provider_ip", "TEXT", 1, None, 0),
        (2, "vm_id", "TEXT", 1, None, 0),
        (3, "config", "TEXT", 1, None, 0),
        (4, "status", "TEXT", 1, "'running'", 0),
        (5, "created_at", "TIMESTAMP", 0, "CURRENT_TIMESTAMP", 0),
    ]


@pytest.mark.parametrize("create", [UPSTREAM_CREATE, UPSTREAM_CREATE_WITH_KEY_NAME], ids=["0.1.58", "ssh_key_name"])
def test_shares_file_with_upstream_cli(tmp_path: Path, create: str) -> None:
    path = tmp_path / "vms.db"
    conn = sqlite3.connect(path)
    conn.execute(create)
    # What `golem vm create` inserts.
    conn.execute(
        "INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES (?, ?, ?, ?, ?)",
        (
            "cli-vm",
            "192.0.2.1",
            "cli-vm",
            json.dumps({"cpu": 2, "memory": 4, "storage": 20, "ssh_port": 50801}),
            "running",
        ),
    )
    conn.commit()
    conn.close()

    store = StateStore(str(path))
    cli_vm = store.get("cli-vm")
    assert cli_vm is not None and cli_vm.ok
    assert (cli_vm.cpu, cli_vm.memory, cli_vm.storage, cli_vm.ssh_port) == (2, 4, 20, 50801)
    assert cli_vm.created_at  # filled by upstream's column default

    store.upsert(_record("ours", provider_id="0xabc", ssh_user="root", cpu=4, memory=8, storage=40, ssh_port=50802))

    # What `golem vm list --json` does: SELECT * and json.loads(config), then reads these keys.
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = {row["name"]: dict(row) for row in conn.execute("SELECT * FROM vms")}
    conn.close()
    ours = json.loads(rows["ours"]["config"])
    assert {k: ours[k] for k in ("cpu", "memory", "storage", "ssh_port")} == {
        "cpu": 4,
        "memory": 8,
        "storage": 40,
        "ssh_port": 50802,
    }
    assert rows["ours"]["status"] == "running" and rows["ours"]["provider_ip"] == "192.0.2.10"
    assert rows["ours"]["created_at"]
    assert set(rows) == {"cli-vm", "ours"}


# --- basic operations --------------------------------------------------------------------


def test_upsert_get_roundtrip_keeps_created_at(store: StateStore) -> None:
    first = store.upsert(VMRecord("web-1", "192.0.2.1", "web-1", "creating", {"cpu": 2, "labels": {"role": "web"}}))
    assert first.created_at and first.config["updated_at"].endswith("Z")
    time.sleep(1.1)  # CURRENT_TIMESTAMP has one-second resolution
    second = store.upsert(VMRecord("web-1", "192.0.2.2", "web-1", "running", {"cpu": 2, "ssh_port": 50805}))
    assert second.created_at == first.created_at
    got = store.get("web-1")
    assert got is not None
    assert (got.provider_ip, got.status, got.ssh_port, got.cpu) == ("192.0.2.2", "running", 50805, 2)
    assert "labels" not in got.config  # upsert replaces config, it does not merge
    assert store.get("nope") is None


def test_set_status_merges_config_and_removes_none(store: StateStore) -> None:
    store.upsert(_record("vm-1", error="boom", ssh_user="root"))
    updated = store.set_status("vm-1", "stopped", error=None, ssh_port=50900)
    assert updated is not None and updated.status == "stopped"
    got = store.get("vm-1")
    assert got is not None
    assert got.status == "stopped" and got.ssh_port == 50900 and got.ssh_user == "root"
    assert "error" not in got.config
    assert store.set_status("missing", "running") is None


def test_invalid_input_is_a_validation_error(store: StateStore) -> None:
    with pytest.raises(ValidationError) as bad_status:
        store.upsert(VMRecord("vm-1", "192.0.2.1", "vm-1", "exploded", {}))
    assert bad_status.value.field == "status" and "exploded" in bad_status.value.msg
    with pytest.raises(ValidationError) as bad_config:
        store.upsert(VMRecord("vm-1", "192.0.2.1", "vm-1", "running", {"when": object()}))
    assert bad_config.value.field == "config"
    store.upsert(_record("vm-1"))
    with pytest.raises(ValidationError):
        store.set_status("vm-1", "deleted")
    assert store.get("vm-1").status == "running"  # type: ignore[union-attr]


def test_delete(store: StateStore) -> None:
    store.upsert(_record("vm-1"))
    store.upsert(_record("vm-2"))
    assert store.delete("vm-1") is True
    assert store.delete("vm-1") is False
    assert [r.name for r in store.list()] == ["vm-2"]


def test_list_filters(store: StateStore) -> None:
    store.upsert(VMRecord("a-1", "192.0.2.1", "a-1", "running", {"provider_id": "0xaaa"}))
    store.upsert(VMRecord("a-2", "192.0.2.1", "a-2", "stopped", {"provider_id": "0xaaa"}))
    store.upsert(VMRecord("b-1", "192.0.2.2", "b-1", "running", {"provider_id": "0xbbb"}))
    store.upsert(VMRecord("c-1", "192.0.2.3", "c-1", "error", {}))

    def names(**kw: object) -> list[str]:
        return [r.name for r in store.list(**kw)]  # type: ignore[arg-type]

    assert names() == ["a-1", "a-2", "b-1", "c-1"]
    assert names(statuses=["running"]) == ["a-1", "b-1"]
    assert names(statuses="stopped") == ["a-2"]  # a bare string is one status, not letters
    assert names(names=["b-1", "c-1", "zzz"]) == ["b-1", "c-1"]
    assert names(providers=["0xaaa"]) == ["a-1", "a-2"]
    assert names(providers=["192.0.2.3"]) == ["c-1"]  # by provider IP too
    assert names(providers=["0xaaa"], statuses=["running", "error"]) == ["a-1"]
    assert names(statuses=[]) == []
    many = [f"x-{i}" for i in range(2000)] + ["c-1"]  # past the SQL IN-list cap
    assert names(names=many) == ["c-1"]


def test_default_state_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_path(None, {}).value == str(tmp_path / ".golem" / "requestor" / "vms.db")
    assert state_path(None, {"GOLEM_REQUESTOR_DB_PATH": "~/other.db"}) == (str(tmp_path / "other.db"),
                                                                           "GOLEM_REQUESTOR_DB_PATH")
    assert state_path(None, {"GOLEM_REQUESTOR_DB_PATH": "  "}).field == "state_path", "blank counts as unset"
    monkeypatch.setenv("GOLEM_REQUESTOR_DB_PATH", "/srv/golem/state.db")
    assert StateStore().path == "/srv/golem/state.db"


def test_record_properties_tolerate_odd_values() -> None:
    rec = VMRecord("v", "198.51.100.7", "v", "running", {"ssh_port": "50810", "cpu": True, "provider_id": 7})
    assert rec.ssh_port == 50810
    assert rec.cpu is None  # a JSON true is not a CPU count
    assert rec.ssh_host == "198.51.100.7"  # falls back to the provider IP
    assert rec.provider_id is None  # not a string
    rec.config["ssh_host"] = "vm.example"
    assert rec.ssh_host == "vm.example"
    assert json.loads(json.dumps(rec.to_dict()))["config"]["ssh_port"] == "50810"


# --- files, modes and failures -----------------------------------------------------------


def test_reading_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "not" / "there" / "vms.db"))
    assert store.list() == []
    assert store.get("vm-1") is None
    assert store.delete("vm-1") is False
    assert store.set_status("vm-1", "stopped") is None
    assert list(tmp_path.iterdir()) == []


def test_reading_an_empty_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "vms.db"
    path.touch()
    assert StateStore(str(path)).list() == []
    assert path.stat().st_size == 0


def test_new_files_are_private_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    store = StateStore(str(tmp_path / "home" / ".golem" / "requestor" / "vms.db"))
    store.upsert(_record("vm-1"))
    store.list()  # a read-only reader leaves the WAL side files in place, so they can be checked
    for directory in ("home", "home/.golem", "home/.golem/requestor"):
        assert _mode(tmp_path / directory) == 0o700, directory
    assert _mode(store.path) == 0o600
    side_files = [store.path + s for s in ("-wal", "-shm") if os.path.exists(store.path + s)]
    assert side_files  # WAL mode is really on
    for side in side_files:
        assert _mode(side) == 0o600, side


def test_existing_file_modes_are_tightened_never_loosened(tmp_path: Path) -> None:
    loose = tmp_path / "loose.db"
    StateStore(str(loose)).upsert(_record("vm-1"))
    os.chmod(loose, 0o644)
    StateStore(str(loose)).upsert(_record("vm-2"))
    assert _mode(loose) == 0o600

    strict = tmp_path / "strict.db"
    StateStore(str(strict)).upsert(_record("vm-1"))
    os.chmod(strict, 0o400)
    StateStore(str(strict)).upsert(_record("vm-2"))  # root may still write; we must not add bits
    assert _mode(strict) == 0o400


def test_not_a_database_is_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "vms.db"
    content = b"# my notes, not a database\n" + bytes(range(256)) * 20
    path.write_bytes(content)
    os.chmod(path, 0o644)
    store = StateStore(str(path))
    with pytest.raises(StateError) as write_err:
        store.upsert(_record("vm-1"))
    assert str(path) in write_err.value.msg and "not an SQLite database" in write_err.value.msg
    with pytest.raises(StateError) as read_err:
        store.list()
    assert "not an SQLite database" in read_err.value.msg
    with pytest.raises(StateError):
        store.set_status("vm-1", "running")
    assert path.read_bytes() == content and _mode(path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vms.db"]  # no -wal/-shm/-journal left


def test_path_is_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "vms.db"
    path.mkdir()
    store = StateStore(str(path))
    for call in (store.list, lambda: store.get("x"), lambda: store.upsert(_record("x")), lambda: store.delete("x")):
        with pytest.raises(StateError) as err:
            call()
        assert "is a directory" in err.value.msg and str(path) in err.value.msg


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    store = StateStore(str(tmp_path / "blocker" / "sub" / "vms.db"))
    assert store.list() == []
    with pytest.raises(StateError) as err:
        store.upsert(_record("vm-1"))
    assert "not a directory" in err.value.msg
    assert (tmp_path / "blocker").read_text() == "x"


def test_unreadable_config_rows_are_flagged_not_fatal(store: StateStore) -> None:
    store.upsert(_record("good-1"))
    store.upsert(_record("good-2"))
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config) VALUES ('broken', '192.0.2.9', 'b', '{not json')")
    conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config) VALUES ('listy', '192.0.2.9', 'l', '[1, 2]')")
    conn.commit()
    conn.close()
    records = {r.name: r for r in store.list()}
    assert set(records) == {"good-1", "good-2", "broken", "listy"}
    assert records["good-1"].ok and records["good-1"].ssh_port == 50800
    assert not records["broken"].ok and "'broken'" in records["broken"].config_error  # type: ignore[operator]
    assert records["broken"].config == {} and records["broken"].ssh_port is None
    assert "not an object" in records["listy"].config_error  # type: ignore[operator]
    # Still selectable by status/provider IP, so the inventory can warn about it by name.
    assert [r.name for r in store.list(providers=["192.0.2.9"])] == ["broken", "listy"]
    with pytest.raises(StateError) as err:
        store.set_status("broken", "stopped")
    assert "'broken'" in err.value.msg
    assert store.delete("broken") is True


def test_locked_database_waits_then_fails_cleanly(store: StateStore) -> None:
    store.upsert(_record("vm-1"))
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    committing: list[float] = []

    def commit() -> None:
        committing.append(time.monotonic())
        holder.execute("COMMIT")

    release = threading.Timer(0.5, commit)
    release.start()
    store.upsert(_record("vm-2"))  # waits for the other writer instead of failing
    returned = time.monotonic()
    release.join()
    # Ordered by the holder's own commit, not by a duration: the same verdict on a loaded machine.
    assert committing and returned >= committing[0], "the write went through while the other writer held the lock"
    assert {r.name for r in store.list()} == {"vm-1", "vm-2"}

    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = StateStore(store.path, busy_timeout=0.3)
        with pytest.raises(StateError) as err:
            impatient.upsert(_record("vm-3"))
        assert "still locked by another process" in err.value.msg
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r.name for r in store.list()] == ["vm-1", "vm-2"]


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True, check=False
    )
    return result.returncode == 0


def test_disk_full_is_a_state_error_and_keeps_the_file(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    # The suite runs as root (as CI does), which may mount a small tmpfs to fill up.
    assert _mount_tmpfs(mount, "256k"), "mounting a tmpfs needs root"
    try:
        store = StateStore(str(mount / "vms.db"))
        for i in range(5):
            store.upsert(_record(f"vm-{i}"))
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # the disk is full now
        finally:
            os.close(fd)
        with pytest.raises(StateError) as err:
            store.upsert(_record("big", blob="x" * 300_000))
        assert "no space left" in err.value.msg and str(mount / "vms.db") in err.value.msg
        os.unlink(mount / "filler")
        assert [r.name for r in store.list()] == [f"vm-{i}" for i in range(5)]
        conn = sqlite3.connect(store.path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# --- concurrency and speed ---------------------------------------------------------------

WRITERS = 40
SHARED = [f"shared-{i}" for i in range(5)]


def _writer(index: int, path: str) -> float:
    store = StateStore(path)
    started = time.monotonic()
    for j in range(3):
        store.upsert(_record(f"w{index:02d}-{j}", worker=index))
    store.set_status(f"w{index:02d}-0", "stopped", note="mine")
    if index < len(SHARED):
        store.upsert(_record(SHARED[index]))
    for name in SHARED:
        # set_status reads, merges and writes in one transaction: no worker's key may be lost.
        while store.set_status(name, "running", **{f"seen_by_{index:02d}": True}) is None:
            time.sleep(0.01)  # its creator has not run yet
    store.delete(f"w{index:02d}-2")
    list_len = len(store.list())
    assert list_len >= 1
    return time.monotonic() - started


@pytest.mark.parametrize("start", ["no-file", "upstream-cli-file"])
def test_40_writer_processes_lose_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_in_processes: RunInProcesses, start: str
) -> None:
    path = str(tmp_path / "state" / "vms.db")
    if start == "upstream-cli-file":
        # A file the CLI made: rollback journal, so the racing writers also race to switch it to WAL.
        os.mkdir(tmp_path / "state")
        conn = sqlite3.connect(path)
        conn.execute(UPSTREAM_CREATE)
        conn.commit()
        conn.close()
    # With no file, the racing writers create the directory and the database themselves.
    started = time.monotonic()
    durations = run_in_processes(lambda i: _writer(i, path), WRITERS)
    wall = time.monotonic() - started

    store = StateStore(path)
    records = {r.name: r for r in store.list()}
    own = {f"w{i:02d}-{j}" for i in range(WRITERS) for j in (0, 1)}
    assert set(records) == own | set(SHARED)
    assert len(records) == 2 * WRITERS + len(SHARED)
    for i in range(WRITERS):
        assert records[f"w{i:02d}-0"].status == "stopped" and records[f"w{i:02d}-0"].config["note"] == "mine"
        assert records[f"w{i:02d}-1"].config["worker"] == i
    for name in SHARED:
        seen = {k for k in records[name].config if k.startswith("seen_by_")}
        assert seen == {f"seen_by_{i:02d}" for i in range(WRITERS)}, name
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    with capsys.disabled():
        print(
            f"\n[measure] {start}: {WRITERS} writer processes x 10-11 write transactions each: "
            f"wall {wall:.2f} s, slowest {max(durations):.2f} s"
        )


def test_listing_10000_rows_reads_them_all(tmp_path: Path) -> None:
    # How fast is bench/inventory_bench.py's question (timed tests flake on a shared machine).
    store = StateStore(str(tmp_path / "vms.db"))
    store.upsert(_record("seed"))
    config = {
        "cpu": 2,
        "memory": 4,
        "storage": 20,
        "ssh_port": 50800,
        "provider_id": "0x" + "a" * 40,
        "ssh_user": "root",
        "ssh_private_key_path": "/root/.golem/requestor/ssh/golem_id_ed25519",
        "country": "SE",
        "image": "24.04",
        "labels": {"role": "web", "tier": "1"},
    }
    conn = sqlite3.connect(store.path)
    conn.executemany(
        "INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES (?, ?, ?, ?, 'running')",
        (
            (
                f"vm-{i:05d}",
                f"10.0.{i // 250}.{i % 250}",
                f"vm-{i:05d}",
                json.dumps(dict(config, ssh_port=50800 + i % 100)),
            )
            for i in range(9_999)
        ),
    )
    conn.commit()
    conn.close()

    records = store.list()
    assert len(records) == 10_000 and all(r.ok for r in records)
    assert records[1].ssh_port == 50800 and records[-1].name == "vm-09998"
