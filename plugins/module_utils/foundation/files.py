# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private-file helpers shared by the state store, the SSH key helper and known_hosts.

Ansible runs many forks at once, each a separate process, so every write here is either
atomic (temp file + rename) or serialised by an advisory lock on a sidecar file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import StateError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

# A lock holder is a short write; waiting longer than this means something is stuck.
DEFAULT_LOCK_TIMEOUT = 60.0


def ensure_private_dir(path: str) -> None:
    """Create ``path`` and any missing parents as 0700; existing directories are left alone.

    ``os.makedirs`` would give new intermediate directories 0777 & ~umask, which under
    umask 000 is world-writable, so each missing level is created here.
    """
    path = os.path.abspath(path)
    missing: list[str] = []
    probe = path
    while not os.path.isdir(probe):
        # isdir again: another thread or fork may have made it since the loop's own look.
        if os.path.lexists(probe) and not os.path.isdir(probe):
            raise StateError(f"{probe} exists and is not a directory, so {path} cannot be created")
        if os.path.isdir(probe):
            break
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            # Another fork created it between our check and mkdir; theirs is just as good.
            continue
        except OSError as exc:
            raise StateError(f"cannot create directory {directory}: {exc.strerror or exc}") from exc
        # mkdir's mode is masked by the umask, which may be odd (e.g. 0o277); set it exactly.
        os.chmod(directory, PRIVATE_DIR_MODE)


def tighten_mode(path: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Drop permission bits beyond ``mode`` on a file we own; never adds bits."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
        return
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode:
        os.chmod(path, current & mode)


def create_private_file(path: str) -> bool:
    """Create an empty 0600 file if none exists; True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


@contextmanager
def file_lock(lock_path: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600) for the block.

    The lock file itself is never removed: unlinking it while another process waits on
    the old inode would let two holders in at once.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise StateError(f"cannot open lock file {lock_path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise StateError(f"cannot lock {lock_path}: {exc.strerror or exc}") from exc
                if time.monotonic() >= deadline:
                    raise StateError(f"{lock_path} is still locked by another process after {timeout:g} s") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
