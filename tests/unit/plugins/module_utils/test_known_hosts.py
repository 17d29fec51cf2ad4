# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""known_hosts tests against a real sshd on 127.0.0.70 (the only address these tests use)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ProviderError, TaskTimeout
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import (
    HostKey,
    KnownHosts,
    host_pattern,
    scan_host_keys,
    wait_for_ssh_banner,
)

ADDR = "127.0.0.70"
SSHD = "/usr/sbin/sshd"

# make install (scripts/install-system.sh) provides openssh-server and the client tools.
assert os.path.exists(SSHD) and shutil.which("ssh-keyscan"), "openssh-server/client missing: run make install"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDR, 0))
        return int(sock.getsockname()[1])


def _keygen_fingerprint(pub: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


@dataclass
class Sshd:
    port: int
    host_key_pub: Path
    proc: subprocess.Popen[bytes]

    @property
    def host_key(self) -> HostKey:
        key_type, key = self.host_key_pub.read_text().split()[:2]
        return HostKey(key_type, key)

    @property
    def fingerprint(self) -> str:
        return _keygen_fingerprint(self.host_key_pub)


class SshdFactory:
    """Starts private sshds on ADDR; every one is killed when the test ends."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[Sshd] = []

    def start(self, port: int | None = None, key_type: str = "ed25519") -> Sshd:
        port = port or _free_port()
        home = self.root / f"sshd-{len(self.running)}-{port}"
        home.mkdir()
        host_key = home / f"host_{key_type}"
        subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(host_key)], check=True)
        config = home / "sshd_config"
        config.write_text(
            f"ListenAddress {ADDR}:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {home / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {home / 'authorized_keys'}\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n"
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        log = open(home / "sshd.log", "wb")  # noqa: SIM115 - closed with the process
        # Absolute -f path: sshd re-executes itself from / and would lose a relative one.
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config.resolve())], stdout=log, stderr=log)
        log.close()
        sshd = Sshd(port, Path(str(host_key) + ".pub"), proc)
        self.running.append(sshd)
        try:
            wait_for_ssh_banner(ADDR, port, time.monotonic() + 10)
        except TaskTimeout:
            raise RuntimeError((home / "sshd.log").read_text()) from None
        return sshd

    def stop(self, sshd: Sshd) -> None:
        if sshd.proc.poll() is None:
            sshd.proc.terminate()
            try:
                sshd.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sshd.proc.kill()
                sshd.proc.wait()

    def stop_all(self) -> None:
        for sshd in self.running:
            self.stop(sshd)


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[SshdFactory]:
    factory = SshdFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def known(tmp_path: Path) -> KnownHosts:
    return KnownHosts(str(tmp_path / "golem" / "known_hosts"))


def _ssh_verdict(known_hosts: str, port: int) -> str:
    """What real ssh says about the host key, using our file with strict checking."""
    result = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityFile=/dev/null",
            "-p",
            str(port),
            f"nobody@{ADDR}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stderr


def _fake_key(seed: int) -> HostKey:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed % 256]) * 32
    return HostKey("ssh-ed25519", base64.b64encode(blob).decode())


# --- against a real sshd -----------------------------------------------------------------


def test_scan_returns_the_servers_host_key(sshd_factory: SshdFactory) -> None:
    sshd = sshd_factory.start()
    keys = scan_host_keys(ADDR, sshd.port, timeout=5)
    assert keys == [sshd.host_key]
    assert keys[0].fingerprint == sshd.fingerprint


def test_a_server_without_an_ed25519_key_is_scanned_for_its_rsa_key(sshd_factory: SshdFactory) -> None:
    sshd = sshd_factory.start(key_type="rsa")
    keys = scan_host_keys(ADDR, sshd.port, timeout=5)
    assert keys == [sshd.host_key] and keys[0].key_type == "ssh-rsa"


def test_first_contact_is_recorded_and_ssh_accepts_it(
    sshd_factory: SshdFactory, known: KnownHosts, open_umask: None
) -> None:
    sshd = sshd_factory.start()
    offered = scan_host_keys(ADDR, sshd.port, timeout=5)
    assert known.add(ADDR, sshd.port, offered) is True
    assert offered == [sshd.host_key]
    text = Path(known.path).read_text()
    assert text == f"[{ADDR}]:{sshd.port} {sshd.host_key.key_type} {sshd.host_key.key}\n"
    assert stat.S_IMODE(os.stat(known.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(known.path)).st_mode) == 0o700
    # Second contact with the same key: nothing rewritten.
    mtime = os.stat(known.path).st_mtime_ns
    assert known.add(ADDR, sshd.port, scan_host_keys(ADDR, sshd.port)) is False
    assert known.keys_for(ADDR, sshd.port) == [sshd.host_key]
    assert os.stat(known.path).st_mtime_ns == mtime
    # Real ssh with strict checking trusts the server through our file (it fails later, at login).
    verdict = _ssh_verdict(known.path, sshd.port)
    assert "Permission denied" in verdict and "Host key verification failed" not in verdict


def test_changed_key_on_a_reused_port_is_refused(sshd_factory: SshdFactory, known: KnownHosts) -> None:
    first = sshd_factory.start()
    known.add(ADDR, first.port, scan_host_keys(ADDR, first.port, timeout=5))
    sshd_factory.stop(first)
    impostor = sshd_factory.start(port=first.port)  # the provider gave the port to another VM

    # Every connection made with the collection's file checks the key strictly: ssh refuses.
    assert "Host key verification failed" in _ssh_verdict(known.path, first.port)

    # Destroying the old VM forgets its key; the new VM's key is then recorded and accepted.
    assert known.remove(ADDR, first.port) is True
    known.add(ADDR, first.port, scan_host_keys(ADDR, first.port, timeout=5))
    assert known.keys_for(ADDR, first.port) == [impostor.host_key]
    assert "Permission denied" in _ssh_verdict(known.path, first.port)


def test_wait_for_banner_returns_the_identification(sshd_factory: SshdFactory) -> None:
    sshd = sshd_factory.start()
    banner = wait_for_ssh_banner(ADDR, sshd.port, time.monotonic() + 5)
    assert banner.startswith("SSH-2.0-OpenSSH")


def test_scan_of_a_closed_port_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as err:
        scan_host_keys(ADDR, _free_port(), timeout=1)
    assert f"[{ADDR}]:" in err.value.msg


# --- the file itself ---------------------------------------------------------------------


def test_remove_keeps_other_entries(known: KnownHosts) -> None:
    os.makedirs(os.path.dirname(known.path), exist_ok=True)
    k1, k2, k3 = _fake_key(1), _fake_key(2), _fake_key(3)
    Path(known.path).write_text(
        "# kept comment\n"
        f"[{ADDR}]:50800 {k1.key_type} {k1.key}\n"
        f"[{ADDR}]:50801 {k2.key_type} {k2.key}\n"
        f"[{ADDR}]:50800,[{ADDR}]:50802 {k3.key_type} {k3.key}\n"
        f"@cert-authority *.example {k3.key_type} {k3.key}\n"
    )
    assert known.keys_for(ADDR, 50800) == [k1, k3]
    assert known.remove(ADDR, 50800) is True
    assert Path(known.path).read_text() == (
        "# kept comment\n"
        f"[{ADDR}]:50801 {k2.key_type} {k2.key}\n"
        f"[{ADDR}]:50802 {k3.key_type} {k3.key}\n"
        f"@cert-authority *.example {k3.key_type} {k3.key}\n"
    )
    assert known.remove(ADDR, 50800) is False
    assert known.keys_for(ADDR, 50801) == [k2]


def test_hashed_entries_are_found_and_removed(known: KnownHosts) -> None:
    key = _fake_key(7)
    known.add(ADDR, 50810, [key])
    known.add(ADDR, 50811, [_fake_key(8)])
    subprocess.run(["ssh-keygen", "-H", "-f", known.path], check=True, capture_output=True)
    assert f"[{ADDR}]" not in Path(known.path).read_text()
    assert known.keys_for(ADDR, 50810) == [key]
    assert known.remove(ADDR, 50810) is True
    assert known.keys_for(ADDR, 50810) == [] and known.keys_for(ADDR, 50811) == [_fake_key(8)]


def test_recorded_endpoints_answer_many_hosts_from_one_read(known: KnownHosts) -> None:
    k1, k2 = _fake_key(1), _fake_key(2)
    known.add(ADDR, 50844, [k2])
    subprocess.run(["ssh-keygen", "-H", "-f", known.path], check=True, capture_output=True)
    with open(known.path, "a", encoding="utf-8") as handle:
        handle.write(
            f"[{ADDR}]:50840,[{ADDR}]:50841 {k1.key_type} {k1.key}\n"
            f"{ADDR} {k2.key_type} {k2.key}\n"
            f"[{ADDR}]:50842 ssh-unknown {k2.key}\n"
            f"@revoked [{ADDR}]:50843 {k2.key_type} {k2.key}\n"
        )
    recorded = known.recorded()
    assert recorded.has(ADDR, 50840) and recorded.has(ADDR, 50841) and recorded.has(ADDR, 22)
    assert recorded.has(ADDR, 50844), "hashed entries count too"
    assert not recorded.has(ADDR, 50842), "a key of an unknown type verifies nothing"
    assert not recorded.has(ADDR, 50843) and not recorded.has(ADDR, 50845)
    assert len(KnownHosts(known.path + ".absent").recorded()) == 0


def test_add_replaces_the_endpoints_keys(known: KnownHosts) -> None:
    assert known.add(ADDR, 50820, [_fake_key(1)]) is True
    assert known.add(ADDR, 50820, [_fake_key(1)]) is False
    assert known.add(ADDR, 50820, [_fake_key(2)]) is True
    assert known.keys_for(ADDR, 50820) == [_fake_key(2)]
    assert len(Path(known.path).read_text().splitlines()) == 1


def test_reading_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    known = KnownHosts(str(tmp_path / "absent" / "known_hosts"))
    assert known.keys_for(ADDR, 50800) == []
    assert len(known.recorded()) == 0
    assert known.remove(ADDR, 50800) is False
    assert list(tmp_path.iterdir()) == []


def test_host_pattern() -> None:
    assert host_pattern("Example.COM", 22) == "example.com"
    assert host_pattern("192.0.2.1", 50800) == "[192.0.2.1]:50800"
    assert host_pattern("::1", 2222) == "[::1]:2222"


def test_40_processes_recording_at_once(known: KnownHosts, run_in_processes: Callable[..., list[Any]]) -> None:
    def record(index: int) -> bool:
        # Half the processes share one endpoint (same key), the rest each own one.
        port = 50900 if index % 2 else 51000 + index
        return known.add(ADDR, port, [_fake_key(0 if index % 2 else index)])

    results = run_in_processes(record, 40)
    assert results.count(True) == 1 + 20  # the shared endpoint is recorded exactly once
    lines = Path(known.path).read_text().splitlines()
    assert len(lines) == 21
    assert known.keys_for(ADDR, 50900) == [_fake_key(0)]
    for index in range(0, 40, 2):
        assert known.keys_for(ADDR, 51000 + index) == [_fake_key(index)]


# --- banner waits without sshd -----------------------------------------------------------


def _serve(handler: Callable[[socket.socket], None]) -> tuple[int, Callable[[], None]]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((ADDR, 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            with conn:
                handler(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def shutdown() -> None:
        stop.set()
        thread.join()
        server.close()

    return int(server.getsockname()[1]), shutdown


def test_banner_wait_times_out_on_a_closed_port() -> None:
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(TaskTimeout) as err:
        wait_for_ssh_banner(ADDR, port, started + 1.0, interval=0.1)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 10  # waited to the deadline, then gave up
    assert "refused" in err.value.msg and f"[{ADDR}]:{port}" in err.value.msg


def test_banner_wait_ignores_a_proxy_that_accepts_then_closes() -> None:
    port, shutdown = _serve(lambda conn: None)  # like a provider proxy with no VM behind it
    try:
        with pytest.raises(TaskTimeout) as err:
            wait_for_ssh_banner(ADDR, port, time.monotonic() + 5.0, interval=0.1)
        assert "without an SSH banner" in err.value.msg
    finally:
        shutdown()


def test_banner_after_other_lines_is_found() -> None:
    port, shutdown = _serve(lambda conn: conn.sendall(b"hello from the proxy\r\nSSH-2.0-Test_1.0\r\n"))
    try:
        assert wait_for_ssh_banner(ADDR, port, time.monotonic() + 5) == "SSH-2.0-Test_1.0"
    finally:
        shutdown()


def test_banner_wait_does_not_hang_on_a_silent_server() -> None:
    release = threading.Event()
    port, shutdown = _serve(lambda conn: release.wait(120))
    try:
        started = time.monotonic()
        with pytest.raises(TaskTimeout):
            wait_for_ssh_banner(ADDR, port, started + 1.0, connect_timeout=60)
        # Held to the 1 s deadline; a read that waited connect_timeout would take 60 s.
        assert time.monotonic() - started < 20
    finally:
        release.set()
        shutdown()
