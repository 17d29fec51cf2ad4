# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain HTTP and SSH helpers for tests against the local network (no collection code)."""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / ".devnet"


def http(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback test URLs
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    return status, (json.loads(raw) if raw else None)


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ssh(key: Path, host: str, port: int, command: str, user: str = "root", timeout: float = 60):
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=20", f"{user}@{host}", command],
        capture_output=True, text=True, timeout=timeout, check=False)


def ssh_pasted(vm: dict, command: str) -> subprocess.CompletedProcess:
    """Run ``command`` through the ``ssh_command`` a module returned, pasted as a user would."""
    line = vm["ssh_command"].replace("ssh ", "ssh -o BatchMode=yes -o ConnectTimeout=20 ", 1)
    return subprocess.run(shlex.split(line) + [command], capture_output=True, text=True, timeout=60, check=False)


def state_rows(state_path: Path) -> dict[str, str]:
    """Name -> status of every row in a state file (none when there is no file)."""
    if not state_path.exists():
        return {}
    with sqlite3.connect(state_path) as conn:
        return dict(conn.execute("SELECT name, status FROM vms").fetchall())


def keypair(directory: Path, name: str = "id_ed25519") -> Path:
    key = directory / name
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def status() -> dict:
    return json.loads((RUN / "status.json").read_text())


def discovery_url() -> str:
    """The running network's discovery (its loopback prefix is GOLEM_DEVNET_NET, 127.0 by default)."""
    return status()["discovery_url"]


def central_adverts() -> dict[str, dict]:
    """Provider id -> advertisement, as central discovery lists them now."""
    code, body = http("GET", f"{discovery_url()}/api/v1/advertisements")
    assert code == 200, body
    return {ad["provider_id"]: ad for ad in body}


def devnet_env() -> dict[str, str]:
    """The network's env file (``export KEY=value`` lines): the requestor's key, the chain, the contract."""
    path = Path(status()["payments"]["env_file"])
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()
             if line.startswith("export "))
    return dict(pairs)


def payment_chain():
    """The network's payment chain and StreamPayment contract, for plain JSON-RPC."""
    from .payment_chain import Chain

    pay = status()["payments"]
    return Chain(pay["rpc_url"], pay["stream_payment_address"])


# About what a small VM costs at the devnet's prices (SE: 32 GLM a month, ~1.2e13 wei a second).
STREAM_RATE_WEI = 10 ** 13


def open_stream(recipient: str, seconds: int = 24 * 3600, rate: int = STREAM_RATE_WEI, key: str | None = None) -> int:
    """Open a native-ETH stream from the network's funded requestor to ``recipient`` (a provider id)
    covering ``seconds`` of runway; returns the stream id from the StreamCreated event.

    The default runway is a day, so a test that moves chain time by minutes ends only its own streams.
    """
    chain = payment_chain()
    key = key or devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]
    receipt = chain.send(key, "createStream", "0x" + "0" * 40, recipient, rate * seconds, rate, value=rate * seconds)
    (created,) = chain.events(receipt, "StreamCreated")
    return int(created["topics"][1], 16)


def vm_body(name: str, pub: str, stream_id: int | None = None) -> dict:
    """A create request for a small VM (1 CPU, 1 GB, 10 GB)."""
    body: dict[str, Any] = {"name": name, "resources": {"cpu": 1, "memory": 1, "storage": 10}, "ssh_key": pub}
    if stream_id is not None:
        body["stream_id"] = stream_id
    return body


def create_body(provider: dict, name: str, pub: str) -> dict:
    """A create request for ``provider``; with a fresh stream to it when the provider takes payment."""
    return vm_body(name, pub, open_stream(provider["provider_id"]) if provider.get("payments") else None)


def create_on_provider(provider: dict, body: dict) -> dict:
    """POST ``body`` the way the requestor does (``?async=true``) and return the job once the VM exists.

    The provider answers 202 before its job has reserved the name (the reservation first awaits an advert
    update on Golem Base), so a test about "a VM already on the provider" waits for the job, not for the 202.
    """
    code, job = http("POST", f"{provider['url']}/api/v1/vms?async=true", body)
    assert code == 202, job

    def ready() -> bool:
        state = http("GET", f"{provider['url']}/api/v1/vms/jobs/{job['job_id']}")[1]
        assert state["status"] != "failed", state
        return state["status"] == "ready"

    wait_until(ready, what=f"job {job['job_id']} of {body['name']}")
    return job


def control(action: str, **extra: Any) -> dict:
    """Ask the network's daemon to stop or start one of its servers (for fault tests)."""
    sys.path.insert(0, str(REPO / "devnet"))
    from ctl import control as devnet_control

    return devnet_control(action, **extra)


class ProviderLog:
    """The requests a provider logged (uvicorn's access log) after a point in time."""

    def __init__(self, key: str) -> None:
        self.path = RUN / "logs" / f"provider-{key}.log"
        self.offset = self.path.stat().st_size
        self.control_ip = status()["control_source_ip"]

    def requests(self) -> list[str]:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode(errors="replace")
        # The network's own calls (devnetd reading /provider/info for the advertisement) come from
        # its control address; they are not the collection's.
        return [line for line in text.splitlines()
                if '"' in line and "HTTP/1.1" in line and f" {self.control_ip}:" not in line]

    def writes(self, name: str) -> list[str]:
        return [r for r in self.requests()
                if name in r and any(f'"{m} ' in r for m in ("POST", "PUT", "PATCH", "DELETE"))]


def vm_instances() -> list[tuple[str, str]]:
    """(hostname, provider key) of every sandbox VM the network runs, one entry per VM: two VMs of one name are
    two entries (upstream orphans the first when a name is created again).

    This is the hypervisor's own view, so it also shows a VM that no provider records any more;
    unlike GET /api/v1/vms it cannot disturb a create pending on a provider.
    """
    vms = control("status")["status"]["vms"]
    found = []
    for instance, info in vms.items():
        if info["state"] == "Deleted":
            continue
        try:
            hostname = (RUN / "vms" / instance / "upper" / "etc" / "hostname").read_text().strip()
        except OSError:
            continue  # purged while we looked
        found.append((hostname, info["owner"]))
    return found


def running_vms() -> dict[str, str]:
    """Hostname (the VM name a requestor chose) -> provider key of every sandbox VM the network runs."""
    return dict(vm_instances())


def plain(value: Any) -> Any:
    """ansible-inventory's JSON with the ``{"__ansible_unsafe": v}`` wrappers (ansible-core 2.19+) unwrapped:
    dynamic inventories mark their strings untrusted, and a script inventory reading that JSON back
    (AWX's synced inventory) keeps them so."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
