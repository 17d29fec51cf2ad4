# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private-file helpers under concurrency: fleet threads and forks make the same directory at once."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from ansible_collections.golem.vm.plugins.module_utils.foundation.files import ensure_private_dir


def test_many_threads_making_the_same_directory_at_once_all_succeed(tmp_path: Path) -> None:
    # Found by golem_fleet's unit tests: one thread saw the directory appear between its two looks.
    for round_ in range(30):
        target = tmp_path / f"r{round_}" / "vms.db.locks"
        barrier, errors = threading.Barrier(12), []

        def make() -> None:
            barrier.wait()
            try:
                ensure_private_dir(str(target))
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)  # every failure is the finding, whatever its type

        threads = [threading.Thread(target=make) for _i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and target.is_dir()
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
