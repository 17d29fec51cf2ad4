# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A known_hosts file the collection manages, so VMs are not reached with host key checking off.

Upstream's CLI connects with ``StrictHostKeyChecking=no``. We record each VM's host key on
first contact (``[host]:port``, the provider's SSH proxy) and forget the entry when the VM is
destroyed, because providers hand the port to the next VM; every connection made with this
file (``StrictHostKeyChecking=yes``) is where ssh refuses a changed key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import check_host, check_port, valid_host, valid_port
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    GolemError,
    ProviderError,
    StateError,
    TaskTimeout,
    excerpt,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import (
    atomic_write,
    ensure_private_dir,
    file_lock,
    tighten_mode,
)

SCAN_KEY_TYPES = ("ed25519", "rsa")
_HOST_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-dss",
    }
)
# RFC 4253 lets a server send other lines before its identification; cap what we read.
_MAX_BANNER_LINES = 20
_MAX_BANNER_BYTES = 8192


def host_pattern(host: str, port: int) -> str:
    """The host field ssh uses: ``[host]:port``, or the bare host on port 22.

    Checked here, where it is written, whoever passed it: a newline or a space in a host from a provider
    or a tampered state row would otherwise add lines or patterns of its own to known_hosts.
    """
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    check_host(host, field="ssh_host", source="the VM's record")
    port = check_port(port, field="ssh_port", source="the VM's record")
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class HostKey:
    key_type: str
    key: str  # base64 blob, as in known_hosts

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.key)).digest()
        return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")

    def describe(self) -> str:
        return f"{self.key_type} {self.fingerprint}"


def _parse_key(key_type: str, key: str) -> HostKey | None:
    if key_type not in _HOST_KEY_TYPES:
        return None
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    return HostKey(key_type, key)


def keys_of(lines: Any) -> list[HostKey]:
    """Host keys recorded in a row's config (``host_keys``: ``"type base64"`` strings); odd ones are dropped."""
    keys = []
    for line in lines if isinstance(lines, list) else ():
        parts = line.split() if isinstance(line, str) else []
        key = _parse_key(parts[0], parts[1]) if len(parts) >= 2 else None
        if key is not None:
            keys.append(key)
    return keys


def _entry_matches(entry: str, pattern: str) -> bool:
    if entry.startswith("|1|"):
        # Hashed by ssh-keygen -H: |1|base64(salt)|base64(hmac-sha1(salt, host))
        try:
            salt, digest = entry.split("|")[2:4]
            expected = hmac.new(base64.b64decode(salt), pattern.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(expected, base64.b64decode(digest))
        except (ValueError, binascii.Error):
            return False
    return entry.lower() == pattern


def _split_line(line: str) -> tuple[str, str, str] | None:
    """(hosts, key type, key) for a plain entry; None for comments, blanks and @markers."""
    parts = line.split()
    if len(parts) < 3 or parts[0].startswith(("#", "@")):
        return None
    return parts[0], parts[1], parts[2]


class RecordedEndpoints:
    """Every ``[host]:port`` with a usable key, from one read of a known_hosts file.

    For asking about thousands of hosts at once (the inventory), where :meth:`KnownHosts.keys_for`
    would read the file once per host.
    """

    def __init__(self, lines: list[str]) -> None:
        plain: set[str] = set()
        hashed: list[str] = []
        for line in lines:
            parsed = _split_line(line)
            if parsed is None or _parse_key(parsed[1], parsed[2]) is None:
                continue
            for entry in parsed[0].split(","):
                if entry.startswith("|1|"):
                    hashed.append(entry)
                else:
                    plain.add(entry.lower())
        self._plain = frozenset(plain)
        self._hashed = tuple(hashed)

    def __len__(self) -> int:
        return len(self._plain) + len(self._hashed)

    def has(self, host: str, port: int) -> bool:
        if not _usable(host, port):
            return False  # nothing of ours is recorded for an address that could never be written
        pattern = host_pattern(host, port)
        if pattern in self._plain:
            return True
        # Hashed entries can only be tested one by one; golem_vm never writes them.
        return any(_entry_matches(entry, pattern) for entry in self._hashed)


class KnownHosts:
    """One known_hosts file; writes take a lock on ``<path>.lock`` and replace the file atomically."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.lock_path = self.path + ".lock"

    def _read_lines(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read known_hosts file {self.path}: {exc.strerror or exc}") from exc

    def _write_lines(self, lines: list[str]) -> None:
        text = "".join(line + "\n" for line in lines)
        try:
            atomic_write(self.path, text.encode("utf-8", errors="surrogateescape"))
        except OSError as exc:
            raise StateError(f"cannot write known_hosts file {self.path}: {exc.strerror or exc}") from exc

    def _lock(self) -> AbstractContextManager[None]:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            ensure_private_dir(directory)
        tighten_mode(self.path)
        return file_lock(self.lock_path)

    @staticmethod
    def _keys_in(lines: list[str], pattern: str) -> list[HostKey]:
        keys: list[HostKey] = []
        for line in lines:
            parsed = _split_line(line)
            if parsed is None:
                continue
            hosts, key_type, key = parsed
            if any(_entry_matches(entry, pattern) for entry in hosts.split(",")):
                host_key = _parse_key(key_type, key)
                if host_key is not None and host_key not in keys:
                    keys.append(host_key)
        return keys

    @staticmethod
    def _without(lines: list[str], pattern: str) -> list[str]:
        kept: list[str] = []
        for line in lines:
            parsed = _split_line(line)
            if parsed is None:
                kept.append(line)
                continue
            hosts, key_type, key = parsed
            entries = hosts.split(",")
            others = [entry for entry in entries if not _entry_matches(entry, pattern)]
            if len(others) == len(entries):
                kept.append(line)
            elif others:
                # A line shared with other hosts keeps them; only our endpoint goes.
                rest = line.split(None, 1)[1]
                kept.append(",".join(others) + " " + rest)
        return kept

    def keys_for(self, host: str, port: int) -> list[HostKey]:
        """Keys recorded for ``[host]:port``; an absent file, or an address that could never be written, has none."""
        if not _usable(host, port):
            return []
        return self._keys_in(self._read_lines(), host_pattern(host, port))

    def recorded(self) -> RecordedEndpoints:
        """Every endpoint with a recorded key; an absent file records nothing."""
        return RecordedEndpoints(self._read_lines())

    def add(self, host: str, port: int, keys: list[HostKey]) -> bool:
        """Record ``keys`` for ``[host]:port``, replacing what was there; True if the file changed.

        For a VM just created: the port may have belonged to an earlier VM.
        """
        if not keys:
            raise ValueError("no host keys to record")
        pattern = host_pattern(host, port)
        with self._lock():
            lines = self._read_lines()
            if sorted(self._keys_in(lines, pattern), key=repr) == sorted(set(keys), key=repr):
                return False
            new = self._without(lines, pattern)
            new.extend(f"{pattern} {k.key_type} {k.key}" for k in dict.fromkeys(keys))
            self._write_lines(new)
        return True

    def remove(self, host: str, port: int) -> bool:
        """Forget every key for ``[host]:port``; True if something was removed."""
        if not os.path.exists(self.path) or not _usable(host, port):
            return False  # an address that could never be written has no lines to remove
        pattern = host_pattern(host, port)
        with self._lock():
            lines = self._read_lines()
            new = self._without(lines, pattern)
            if new == lines:
                return False
            self._write_lines(new)
        return True


def _usable(host: str, port: int) -> bool:
    host = host.strip().lower()
    return valid_host(host[1:-1] if host.startswith("[") and host.endswith("]") else host) and valid_port(port)


Runner = Callable[[list[str]], "tuple[int, str, str]"]


def _subprocess_runner(timeout: float) -> Runner:
    """Runs a command without an AnsibleModule, for controller-side callers and tests."""

    def run(command: list[str]) -> tuple[int, str, str]:
        try:
            # Modules pass module.run_command instead; this path has no module to ask.
            done = subprocess.run(  # pylint: disable=ansible-bad-function
                command, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise TaskTimeout(f"{command[0]} did not finish within {timeout:g} s") from exc
        return done.returncode, done.stdout, done.stderr

    return run


def scan_host_keys(
    host: str, port: int, timeout: float = 5.0, key_types: tuple[str, ...] = SCAN_KEY_TYPES,
    run: Runner | None = None,
) -> list[HostKey]:
    """The host keys ``[host]:port`` offers, fetched with ``ssh-keyscan``.

    ``run(argv) -> (rc, stdout, stderr)`` runs it; modules pass ``module.run_command``.
    """
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        raise GolemError("ssh-keyscan was not found on the controller; install the OpenSSH client")
    per_connection = max(1, math.ceil(timeout))
    # ssh-keyscan opens one connection (one key exchange) per key type, and a fleet's VMs share
    # the provider's CPU while they boot: the first type alone, the others only if it is missing.
    # ssh prefers the algorithm of a key it knows, so one key is all a connection needs.
    keys, returncode, stderr = _scan(keyscan, host, port, per_connection, key_types[:1], run)
    if not keys and key_types[1:]:
        keys, returncode, stderr = _scan(keyscan, host, port, per_connection, key_types[1:], run)
    if not keys:
        detail = excerpt(stderr) or f"exit code {returncode}"
        raise ProviderError(f"no SSH host key from {host_pattern(host, port)} within {per_connection} s: {detail}")
    return keys


def _scan(keyscan: str, host: str, port: int, per_connection: int, key_types: tuple[str, ...],
          run: Runner | None) -> tuple[list[HostKey], int, str]:
    # "--": whatever the host is, it is never read as an option.
    command = [keyscan, "-T", str(per_connection), "-p", str(int(port)), "-t", ",".join(key_types), "--", host]
    # Each connection is bounded by -T, so it cannot hang even under run_command, which has no
    # timeout of its own.
    runner = run or _subprocess_runner(per_connection * (len(key_types) + 1) + 5)
    returncode, stdout, stderr = runner(command)
    keys: list[HostKey] = []
    for line in stdout.splitlines():
        parsed = _split_line(line)
        if parsed is None:
            continue
        host_key = _parse_key(parsed[1], parsed[2])
        if host_key is not None and host_key not in keys:
            keys.append(host_key)
    return keys, returncode, stderr


def _read_banner(sock: socket.socket, deadline: float, connect_timeout: float) -> str | None:
    buffer = b""
    lines = 0
    while lines < _MAX_BANNER_LINES and len(buffer) < _MAX_BANNER_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(min(remaining, connect_timeout))
        chunk = sock.recv(1024)
        if not chunk:
            return None
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines += 1
            if line.startswith(b"SSH-"):
                return line.rstrip(b"\r").decode("ascii", errors="replace")
    return None


def wait_for_ssh_banner(
    host: str, port: int, deadline: float, interval: float = 0.2, connect_timeout: float = 5.0
) -> str:
    """Block until ``host:port`` sends an ``SSH-`` identification line and return that line.

    ``deadline`` is a ``time.monotonic()`` value. An open port is not enough: a provider's
    SSH proxy accepts connections before the VM behind it answers, then closes them.
    """
    endpoint = host_pattern(host, port)
    last = "no attempt was made"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimeout(f"no SSH banner from {endpoint} before the deadline (last attempt: {last})")
        try:
            with socket.create_connection((host, int(port)), timeout=min(remaining, connect_timeout)) as sock:
                banner = _read_banner(sock, deadline, connect_timeout)
            if banner is not None:
                return banner
            last = "the connection closed or stalled without an SSH banner"
        except socket.timeout:
            last = "timed out"
        except OSError as exc:
            last = exc.strerror or str(exc)
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
