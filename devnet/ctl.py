# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, stop and inspect the local Golem network.

    python devnet/ctl.py up | down | status | stop NAME | start NAME

NAME is discovery, postgres or a provider key (se, us, de); stop/start are for fault tests.

``up`` and ``down`` are idempotent. Everything the network starts descends from one
daemon (devnetd) whose pid is in .devnet/pids/; logs are in .devnet/logs/.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layout  # noqa: E402
import payments  # noqa: E402
import solidity  # noqa: E402
import postgres  # noqa: E402

RUN = layout.RUN


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def daemon_pid() -> int | None:
    try:
        pid = int((RUN / "pids" / "devnetd.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def control(action: str, **extra: object) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(120)
        conn.connect(str(RUN / "multipass.sock"))
        conn.sendall(json.dumps({"control": action, **extra}).encode())
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return json.loads(data)


def _check_free(ip: str, port: int, what: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{ip}:{port} ({what}) is already in use by another program"
            return f"{ip}:{port} ({what}) cannot be bound: {exc.strerror}"
    return None


def preflight() -> list[str]:
    problems = []
    if not (layout.ROOTFS / ".complete").exists():
        problems.append(f"sandbox rootfs missing at {layout.ROOTFS}: run scripts/install-devnet.sh (make devnet-install)")
    for name in (f"discovery-{layout.DISCOVERY_VERSION}", *(p.venv for p in layout.PROVIDERS)):
        if not (layout.venv(name) / ".complete").exists():
            problems.append(f"virtualenv {layout.venv(name)} missing: run scripts/install-devnet.sh")
    if not layout.ANVIL.exists():
        problems.append(f"anvil missing at {layout.ANVIL}: run scripts/install-devnet.sh")
    try:
        solidity.load(payments.CONTRACT)
    except FileNotFoundError as exc:
        problems.append(f"contract not compiled: {exc}")
    for tool in ("bwrap", "unshare", "ssh-keygen", "/usr/sbin/sshd"):
        if not shutil.which(tool):
            problems.append(f"{tool} not found: run scripts/install-system.sh")
    if os.geteuid() != 0:
        problems.append("the sandbox VMs need root (mount namespaces and overlays)")
    problems += postgres.preflight()
    checks = [(layout.DISCOVERY_IP, layout.DISCOVERY_PORT, "discovery"),
              (payments.CHAIN.ip, payments.CHAIN.port, "payment chain"),
              (postgres.IP, postgres.PORT, "PostgreSQL")]
    every = layout.PROVIDERS + layout.SPARE_PROVIDERS
    checks += [(p.ip, layout.PROVIDER_PORT, f"provider {p.key}") for p in every]
    checks += [(p.ip, p.port_range[0], f"first SSH proxy port of provider {p.key}") for p in every]
    checks += [(layout.GOLEM_BASE_ANVIL_IP, layout.GOLEM_BASE_PORT, "Golem Base chain (anvil)"),
               (layout.GOLEM_BASE_IP, layout.GOLEM_BASE_PORT, "Golem Base")]
    # A wildcard sshd on the host would take port 22 of every VM address.
    checks.append((layout.VM_NET + "1", 22, "SSH of the first sandbox VM"))
    problems += [msg for msg in (_check_free(*c) for c in checks) if msg]
    return problems


def print_status(status: dict) -> None:
    print(f"discovery  {status['discovery_url']}")
    if status.get("golem_base"):
        print(f"golem base {status['golem_base']['rpc_url']}  ws={status['golem_base']['ws_url']}  "
              f"chain={status['golem_base']['chain_id']:#x}")
    # Spares are listed only while a test runs them.
    for prov in status["providers"] + [p for p in status.get("spare_providers", []) if p["alive"]]:
        state = "up" if prov["alive"] else "DOWN"
        print(f"provider   {prov['key']}  {prov['url']}  country={prov['country']}  "
              f"upstream={prov['version']} ({prov['api']} API)  id={prov['provider_id']}  {state}")
    pay = status.get("payments")
    if pay:
        print(f"chain      payments  {pay['rpc_url']}  chain id {pay['chain_id']}  "
              f"StreamPayment {pay['stream_payment_address']}  requestor {pay['requestor_address']}  "
              f"env {pay['env_file']}")
    if status.get("postgres"):
        pg = status["postgres"]
        print(f"postgres   {pg['url']}  password in {pg['password_env_file']}  {'up' if pg['alive'] else 'DOWN'}")
    print(f"VMs        {len(status['vms'])}")
    print(f"logs       {RUN / 'logs'}")


def up() -> int:
    if daemon_pid():
        status = control("status")["status"]
        if status["ready"]:
            print("devnet: already up")
            print_status(status)
            return 0
        print("devnet: a previous network is half up; taking it down first")
        down()
    problems = preflight()
    if problems:
        for msg in problems:
            print(f"devnet: {msg}", file=sys.stderr)
        return 1
    # A new network starts clean: providers and VMs of an earlier run are gone with it.
    # Keys are kept so provider ids stay the same across restarts.
    for sub in ("providers", "discovery", "chains", "vms", "pids", "bin", "startup-error", "env"):
        path = RUN / sub
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    for old in (RUN / "logs").glob("*.log"):
        old.unlink()
    with open(RUN / "logs" / "devnetd.log", "ab") as log:
        subprocess.Popen(  # noqa: S603 - our own daemon, outliving this command by design
            [sys.executable, str(Path(__file__).resolve().parent / "daemon.py")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "GOLEM_DEVNET_DIR": str(RUN)})
    started = time.monotonic()
    while time.monotonic() - started < 180:
        time.sleep(0.2)
        if (RUN / "startup-error").exists() or (time.monotonic() - started > 2 and not daemon_pid()):
            time.sleep(0.5)
            print("devnet: start-up failed:", file=sys.stderr)
            print((RUN / "logs" / "devnetd.log").read_text()[-3000:], file=sys.stderr)
            down()
            return 1
        try:
            status = json.loads((RUN / "status.json").read_text())
        except (OSError, ValueError):
            continue
        if status.get("ready"):
            print(f"devnet: up in {time.monotonic() - started:.1f} s")
            print_status(status)
            return 0
    print("devnet: not ready after 180 s; see " + str(RUN / "logs"), file=sys.stderr)
    down()
    return 1


def leftovers() -> tuple[list[int], list[str]]:
    """Processes and mounts of this network that are still there (zombies excluded)."""
    marker = f"GOLEM_DEVNET_RUN={RUN}".encode()
    procs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (marker in environ.split(b"\0") or str(RUN).encode() in cmdline) and _pid_alive(int(entry.name)):
            procs.append(int(entry.name))
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(str(RUN))]
    return procs, mounts


def down() -> int:
    pid = daemon_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    procs, mounts = leftovers()
    for stray in procs:
        try:
            os.kill(stray, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for mount in mounts:
        subprocess.run(["umount", "-l", mount], check=False)
    time.sleep(0.2 if procs or mounts else 0)
    procs, mounts = leftovers()
    (RUN / "pids" / "devnetd.pid").unlink(missing_ok=True)
    (RUN / "multipass.sock").unlink(missing_ok=True)
    (RUN / "status.json").unlink(missing_ok=True)
    (RUN / "env").unlink(missing_ok=True)
    if procs or mounts:
        print(f"devnet: left behind: processes {procs}, mounts {mounts}", file=sys.stderr)
        return 1
    print("devnet: down" if pid else "devnet: already down")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down", "status", "stop", "start") or (
            argv[0] in ("stop", "start") and len(argv) != 2):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    action = argv[0]
    if action == "up":
        return up()
    if action == "down":
        return down()
    if not daemon_pid():
        print("devnet: down", file=sys.stderr)
        return 1
    if action == "status":
        print_status(control("status")["status"])
        return 0
    reply = control(action, name=argv[1])
    if reply.get("rc"):
        print(f"devnet: {reply.get('stderr', '').strip()}", file=sys.stderr)
        return 1
    print_status(reply["status"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
