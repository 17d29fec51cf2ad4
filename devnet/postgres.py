# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network's PostgreSQL: a real server for the shared state backend (issue #16).

A cluster of Debian's ``postgresql`` package, made fresh by every ``ctl.py up`` in
``.devnet/postgres`` and run by devnetd as the ``postgres`` OS user (the server refuses
root). It listens on NET.0.11:5432 only (plus a Unix socket in its own directory, for the
set-up below), and takes password (SCRAM) logins from loopback for one role, ``golem``,
owning one database, ``golem``.

The URL, without the password, goes into status.json; the password into two 0600 files of
this network's own: ``postgres.env`` (``PGPASSWORD=...``) and ``postgres.pgpass`` (a libpq
passfile), so tests can try each of libpq's ways of finding it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import layout

IP = f"{layout.NET}.0.11"
PORT = 5432
ROLE = "golem"
DATABASE = "golem"
OS_USER = "postgres"
HOME = layout.RUN / "postgres"
DATA = HOME / "data"
SOCKET_DIR = HOME / "run"
ENV_FILE = layout.RUN / "postgres.env"
PASSFILE = layout.RUN / "postgres.pgpass"
URL = f"postgresql://{ROLE}@{IP}:{PORT}/{DATABASE}"
STARTUP_TIMEOUT = 60.0


def bindir() -> Path | None:
    """The newest installed server's bin directory, e.g. /usr/lib/postgresql/15/bin."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def preflight() -> list[str]:
    problems = []
    if bindir() is None:
        problems.append("PostgreSQL server not found in /usr/lib/postgresql: run scripts/install-system.sh")
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        problems.append(f"OS user {OS_USER!r} missing (Debian's postgresql package creates it)")
    # The server runs as that user, so it must be able to walk down to .devnet/postgres.
    for parent in [layout.RUN, *layout.RUN.parents]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            problems.append(f"{parent} is not searchable by others, so the {OS_USER} user cannot reach {HOME}")
            break
    return problems


def _as_postgres(argv: list[str], stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, text=True, capture_output=True, user=OS_USER,
                            cwd=str(HOME), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-2000:]}")


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


class Postgres:
    """The postmaster as one of devnetd's children (same shape as daemon.Child)."""

    name = "postgres"

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.bin = bindir() or Path("/nonexistent")
        self._pending_sql = ""  # what create() runs once the new cluster is up

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def initialize(self) -> None:
        """A new, empty cluster with the role and database; the password is new too."""
        shutil.rmtree(HOME, ignore_errors=True)
        owner = pwd.getpwnam(OS_USER)
        for directory in (HOME, SOCKET_DIR):
            directory.mkdir(mode=0o700, parents=True)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        # --no-sync: a throwaway cluster, and the disk is shared with other engineers' tests.
        _as_postgres([str(self.bin / "initdb"), "-D", str(DATA), "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=reject", "--no-sync",
                      "--no-instructions"])
        # Only the superuser over the private socket, and the test role with a password from
        # loopback (a connection to NET.0.11 comes from 127.0.0.1, the loopback route's source).
        (DATA / "pg_hba.conf").write_text(
            "local all postgres peer\n"
            f"host {DATABASE} {ROLE} 127.0.0.0/8 scram-sha-256\n")
        password = secrets.token_hex(24)
        _private(ENV_FILE, f"GOLEM_DEVNET_POSTGRES_URL={URL}\nPGPASSWORD={password}\n")
        _private(PASSFILE, f"{IP}:{PORT}:{DATABASE}:{ROLE}:{password}\n")
        self._pending_sql = (
            # On stdin, never argv: a password on a command line is visible to every user in ps.
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}';\n"
            # A linguistic collation, as production databases usually have, so a query that
            # forgets COLLATE "C" sorts differently from SQLite and a test notices.
            f"CREATE DATABASE {DATABASE} OWNER {ROLE} TEMPLATE template0 LOCALE_PROVIDER icu "
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8';\n")

    async def create(self) -> None:
        """Initialise a fresh cluster, start it and create the role and database."""
        await asyncio.to_thread(self.initialize)
        await self.start()
        sql = self._pending_sql
        await asyncio.to_thread(_as_postgres, [str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                               "-h", str(SOCKET_DIR), "-p", str(PORT), "-U", "postgres",
                                               "-d", "postgres"], sql)

    async def start(self) -> None:
        if self.alive:
            return
        log = open(layout.RUN / "logs" / "postgres.log", "ab")  # noqa: SIM115
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(self.bin / "postgres"), "-D", str(DATA), "-p", str(PORT),
                "-c", f"listen_addresses={IP}", "-c", f"unix_socket_directories={SOCKET_DIR}",
                "-c", f"cluster_name=golem-devnet-{layout.NET}", "-c", "max_connections=200",
                user=OS_USER, cwd=str(HOME), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "GOLEM_DEVNET_RUN": str(layout.RUN)})
        finally:
            log.close()
        (layout.RUN / "pids" / "postgres.pid").write_text(f"{self.process.pid}\n")
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        # The postmaster writes "ready" into postmaster.pid once it accepts connections;
        # pg_ctl -w waits on the same line.
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError("postgres exited during start-up; see logs/postgres.log")
            try:
                lines = (DATA / "postmaster.pid").read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"postgres was not ready within {STARTUP_TIMEOUT:.0f} s; see logs/postgres.log")

    async def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: sessions are ended, then a clean checkpoint), harder if it hangs."""
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            try:
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)
                else:
                    os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), wait)
                break
            except asyncio.TimeoutError:
                continue
        (layout.RUN / "pids" / "postgres.pid").unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        return {"url": URL, "ip": IP, "port": PORT, "database": DATABASE, "user": ROLE,
                "password_env_file": str(ENV_FILE), "passfile": str(PASSFILE), "alive": self.alive}
