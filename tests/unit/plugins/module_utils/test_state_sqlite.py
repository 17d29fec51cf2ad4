# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQLite backend's additions to StateStore: the name lock and raw rows."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import RawChange, RawRow
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore

RunInProcesses = Callable[..., list[Any]]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStateStore:
    return SQLiteStateStore(str(tmp_path / "state" / "vms.db"))


def _hold(store_path: str, name: str, hold: float) -> tuple[float, float]:
    store = SQLiteStateStore(store_path)
    with store.lock(name, timeout=30):
        got = time.monotonic()
        time.sleep(hold)
        return got, time.monotonic()


def test_two_processes_locking_one_name_take_turns(store: SQLiteStateStore, run_in_processes: RunInProcesses) -> None:
    spans = sorted(run_in_processes(lambda i: _hold(store.path, "web-1", 0.5), 2))
    (first_in, first_out), (second_in, _second_out) = spans
    assert second_in >= first_out - 0.01, spans  # the second got it only once the first let go


def _hold_together(store_path: str, name: str, together: Any) -> None:
    with SQLiteStateStore(store_path).lock(name, timeout=120):
        together.wait()  # breaks (raises) unless every process holds its own name's lock at once


def test_other_names_do_not_wait(store: SQLiteStateStore, run_in_processes: RunInProcesses) -> None:
    # All four hold their locks at the same moment, or the barrier breaks: no duration is measured.
    together = multiprocessing.get_context("fork").Barrier(4, timeout=60)
    run_in_processes(lambda i: _hold_together(store.path, f"web-{i}", together), 4)


def test_lock_timeout_names_the_vm_and_the_file(store: SQLiteStateStore) -> None:
    with store.lock("db-1", timeout=1):
        started = time.monotonic()
        with pytest.raises(StateError) as err:
            with store.lock("db-1", timeout=0.3):  # a second holder, even in the same process, waits
                pass
        assert 0.25 <= time.monotonic() - started < 20  # waited its timeout, and far less than BUSY_TIMEOUT
        assert "'db-1'" in err.value.msg and store.path in err.value.msg and "0.3 s" in err.value.msg
        with pytest.raises(StateError):
            with store.lock("db-1", timeout=0):  # 0: one try, no wait
                pass
    with store.lock("db-1", timeout=0):  # released on leaving the block
        pass


def test_lock_is_released_when_the_holder_dies(store: SQLiteStateStore) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes the lock, says so, and is killed holding it
        try:
            os.close(read_end)
            with SQLiteStateStore(store.path).lock("vm-x", timeout=5):
                os.write(write_end, b"x")
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with store.lock("vm-x", timeout=2):
        pass


def test_lock_files_are_private_and_the_block_error_passes_through(store: SQLiteStateStore, open_umask: None) -> None:
    with pytest.raises(ValueError, match="inside"):
        with store.lock("odd/name\n..", timeout=1):
            raise ValueError("inside")
    lock_dir = Path(store.path + ".locks")
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(store.path).parent.stat().st_mode) == 0o700
    (lock_file,) = lock_dir.iterdir()
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600 and lock_file.name.endswith(".lock")
    assert not Path(store.path).exists()  # locking a name writes no state


def test_raw_rows_are_the_columns_as_stored(store: SQLiteStateStore) -> None:
    assert store.raw_rows() == [] and not Path(store.path).exists()
    store.upsert(VMRecord("b", "192.0.2.1", "b-id", "running", {"labels": {"x": "1"}}))
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, created_at) VALUES "
                 "('a', '192.0.2.2', 'a', '{broken', '2020-01-02 03:04:05')")
    conn.commit()
    conn.close()
    rows = store.raw_rows()
    assert [r.name for r in rows] == ["a", "b"]
    assert rows[0] == RawRow("a", "192.0.2.2", "a", "{broken", "running", "2020-01-02 03:04:05")
    assert json.loads(rows[1].config)["labels"] == {"x": "1"}


def test_apply_raw_writes_all_or_nothing(store: SQLiteStateStore) -> None:
    new = RawRow("n-1", "192.0.2.9", "n-1", '{"cpu": 1}', "running", "2021-01-01 00:00:00")
    assert store.apply_raw([RawChange(None, new)]) == 1
    assert store.raw_rows() == [new]
    newer = new._replace(status="stopped", created_at=None)
    stale = RawChange(new._replace(status="error"), newer)  # the plan saw another row
    other = RawRow("n-2", "192.0.2.9", "n-2", "{}", "running", None)
    with pytest.raises(StateError) as err:
        store.apply_raw([RawChange(None, other), stale])
    assert "'n-1'" in err.value.msg and "nothing was copied" in err.value.msg
    assert store.raw_rows() == [new]  # n-2 was rolled back with it
    assert store.apply_raw([RawChange(new, newer), RawChange(None, other)]) == 2
    assert store.raw_rows() == [newer, other]  # created_at copied as is, NULL included
