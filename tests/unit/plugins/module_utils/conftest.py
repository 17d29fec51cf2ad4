# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures: running code in many forked processes at once, and a private umask."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Ansible forks its workers, so the tests fork too (and children inherit the collection loader).
_FORK = multiprocessing.get_context("fork")


def _child(target: Callable[..., Any], index: int, barrier: Any, queue: Any) -> None:
    try:
        barrier.wait(timeout=60)
        queue.put((index, "ok", target(index)))
    except BaseException:  # report everything, including SystemExit from a bad fork
        queue.put((index, "error", traceback.format_exc()))


def _run_in_processes(target: Callable[[int], Any], count: int, timeout: float = 120.0) -> list[Any]:
    """Run ``target(i)`` in ``count`` forked processes released together; return results by index.

    Fails the test with every child's traceback if any child raised or died.
    """
    barrier = _FORK.Barrier(count)
    queue = _FORK.Queue()
    procs = [_FORK.Process(target=_child, args=(target, i, barrier, queue)) for i in range(count)]
    for proc in procs:
        proc.start()
    outcomes: dict[int, tuple[str, Any]] = {}
    try:
        for _attempt in range(count):
            index, status, value = queue.get(timeout=timeout)
            outcomes[index] = (status, value)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = [f"process {i}:\n{v}" for i, (s, v) in sorted(outcomes.items()) if s != "ok"]
    assert not errors, "\n".join(errors)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [outcomes[i][1] for i in range(count)]


@pytest.fixture
def run_in_processes() -> Callable[..., list[Any]]:
    """``run_in_processes(target, count)``: see _run_in_processes."""
    return _run_in_processes


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run the test under umask 000, the worst case for file modes."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)
