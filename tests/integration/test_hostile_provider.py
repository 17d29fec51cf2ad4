# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A provider is a stranger: what it answers never reaches the user's shell, files or Ansible hosts unchecked.

A proxy in front of the real, paying SE provider rewrites its GET /vms/NAME/access answer, the way a hostile
provider would answer; a state row is tampered with the same values, the way a shared state could be.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore

from .ansible_runner import BIN, HostPlay
from .devnet_helpers import http, plain, running_vms, state_rows
from .fault_proxy import FaultProxy


def _access(**changes: Any) -> Callable[[bytes], bytes]:
    def rewrite(body: bytes) -> bytes:
        try:
            answer = json.loads(body)
        except ValueError:
            return body  # not an access answer: passed on as it came
        return json.dumps({**answer, **changes}).encode() if isinstance(answer, dict) and answer.get("ssh_port") else body

    return rewrite


def _inventory(ansible: Any, tmp_path: Path) -> tuple[dict[str, Any], str]:
    config = tmp_path / "golem.yml"
    config.write_text(json.dumps({"plugin": "golem.vm.golem", "statuses": []}))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list"], env=ansible.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_hostile_ssh_endpoints_never_reach_a_file_a_command_or_an_ansible_host(ansible, providers, tmp_path):
    marker = tmp_path / "pwned"
    cases = {
        "newline": _access(ssh_host=f'{providers["se"]["ip"]}\nMatch exec "touch {marker}"\nHost zz'),
        "option": _access(ssh_host=f"-oProxyCommand=touch {marker}"),
        "space": _access(ssh_host=f'{providers["se"]["ip"]} 127.0.0.99'),
        "control": _access(ssh_host=f'{providers["se"]["ip"]}\x1b[2J'),
        "port-0": _access(ssh_port=0),
        "port-70000": _access(ssh_port=70000),
        # Well formed, but not the provider's address: Ansible and the user's key would go elsewhere.
        "foreign": _access(ssh_host="127.0.0.99"),
        # The same, with the user's documented consent.
        "allowed": _access(ssh_host="127.0.0.99"),
    }
    suffix = uuid.uuid4().hex[:6]
    names = {key: f"hostile-{key}-{suffix}" for key in cases}
    proxies: dict[str, FaultProxy] = {}
    try:
        hosts = {}
        for key, rewrite in cases.items():
            # On SE's own address, another port: an honest answer from there names its own host.
            proxy = proxies[key] = FaultProxy(providers["se"]["url"], ip=providers["se"]["ip"])
            proxy.inject("GET", r"/access$", "rewrite", rewrite=rewrite, times=1000)
            hosts[key] = {"vm_name": names[key], "pin_ip": proxy.ip, "pin_port": proxy.port}
        hosts["allowed"]["vm_allow_foreign"] = True
        # No traceback anywhere in the play's output: HostPlay checks.
        results = HostPlay(ansible, tmp_path / "hostile").play(hosts, discovery_backend="central")
        allowed = results.pop("allowed")
        assert not allowed["failed"] and plain(allowed["vm"]["ssh_host"]) == "127.0.0.99", allowed
        field = {"port-0": "ssh_port", "port-70000": "ssh_port"}
        for key, result in results.items():
            msg = result.get("msg", "")
            assert result["failed"], (key, result)
            assert f"provider {proxies[key].url}" in msg and result["failure"]["field"] == field.get(key, "ssh_host"), (
                key, result)
            assert "\n" not in msg and "\x1b" not in msg, (key, msg)
        assert "allow_foreign_ssh_host" in results["foreign"]["msg"], results["foreign"]["msg"]
        with closing(sqlite3.connect(ansible.state_path)) as conn:
            rows = {name: (status, json.loads(config)) for name, status, config in
                    conn.execute("SELECT name, status, config FROM vms")}
        for key, name in names.items():
            if key == "allowed":
                continue
            status, config = rows[name]  # the VM exists on SE and is paid for: its row stays
            assert status == "error" and "ssh_host" not in config and "ssh_port" not in config, (key, config)
        known_hosts = ansible.state_path.parent / "known_hosts"
        written = known_hosts.read_text() if known_hosts.exists() else ""
        assert "Match" not in written and "ProxyCommand" not in written and "127.0.0.99" not in written
        listed, _warnings = _inventory(ansible, tmp_path)
        hostvars = plain(listed.get("_meta", {}).get("hostvars", {}))
        assert not {n for k, n in names.items() if k != "allowed"} & set(hostvars), hostvars
        assert hostvars[names["allowed"]]["ansible_host"] == "127.0.0.99"
        assert not marker.exists(), "a provider's command ran on this machine"
    finally:
        try:
            # Through the same proxies: the rows name them as the providers' addresses.
            gone = HostPlay(ansible, tmp_path / "destroy").play(
                {key: {"vm_name": name, "vm_state": "absent"} for key, name in names.items()},
                discovery_backend="central")
        finally:
            for proxy in proxies.values():
                proxy.close()
    assert {k: r.get("msg") for k, r in gone.items() if r.get("failed")} == {}
    assert not set(names.values()) & set(state_rows(ansible.state_path))
    for name in names.values():
        assert name not in running_vms() and http("GET", f"{providers['se']['url']}/api/v1/vms/{name}")[0] == 404


def test_ssh_config_playbook_writes_nothing_from_a_tampered_row(ansible, providers, tmp_path):
    """A shared state row someone tampered with: neither the inventory nor ssh_config.yml takes a line from it."""
    marker = tmp_path / "pwned"
    ansible.state_path.parent.mkdir(parents=True, exist_ok=True)
    honest = {"cpu": 1, "memory": 1, "storage": 10, "ssh_port": 20001, "provider_port": 7466, "ssh_user": "root",
              "ssh_host": providers["se"]["ip"], "country": "SE"}
    tampered = {
        "tamper-host": {**honest, "ssh_host": f'{providers["se"]["ip"]}\nMatch exec "touch {marker}"'},
        "tamper-user": {**honest, "ssh_user": f'root\nMatch exec "touch {marker}"'},
        "tamper-key": {**honest, "ssh_private_key_path": f'/k/id\nMatch exec "touch {marker}"'},
        "tamper-port": {**honest, "ssh_port": 65558},
    }
    # The state file as golem.vm makes it, with one honest row; the others written behind its back.
    SQLiteStateStore(str(ansible.state_path)).upsert(VMRecord("honest-1", providers["se"]["ip"], "honest-1",
                                                              "running", honest))
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        for name, config in tampered.items():
            conn.execute("INSERT INTO vms (name, provider_ip, vm_id, config, status) VALUES (?, ?, ?, ?, 'running')",
                         (name, providers["se"]["ip"], name, json.dumps(config)))
        conn.commit()
    config = tmp_path / "golem.yml"
    config.write_text(json.dumps({"plugin": "golem.vm.golem", "statuses": ["running"]}))
    ssh_config = tmp_path / "golem_ssh_config"
    proc = ansible.playbook("golem.vm.ssh_config", "-i", str(config), "-e", f"ssh_config_path={ssh_config}")
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    text = ssh_config.read_text()
    assert "Host honest-1\n" in text and "Match" not in text and str(marker) not in text, text
    assert not any(f"Host {name}" in text for name in tampered), text
    warned = " ".join((proc.stdout + proc.stderr).split())
    for name in tampered:
        assert f"skipped VM {name}" in warned, warned
    assert not marker.exists()


def test_hostile_http_answers_end_in_bounded_time_naming_the_provider(ansible, providers, tmp_path):
    """Answers no file, host or traceback may take: each create fails in its time, naming the provider."""
    se = providers["se"]
    suffix = uuid.uuid4().hex[:6]
    access, vms = r"/api/v1/vms/[^/]+/access$", r"^/api/v1/vms(\?|$)"
    cases: dict[str, tuple[str, str, str, dict[str, Any]]] = {
        # key: (method, path pattern, kind, options)
        "post-307": ("POST", vms, "status", {
            "status": 307, "body": b"", "headers": {"Location": "http://127.0.0.99:7466/api/v1/vms?async=true"}}),
        # A byte every 2 s of a ~100-byte answer: each read well within any timeout, the whole far beyond 5 s.
        "drip": ("GET", access, "drip", {"delay": 2.0}),
        "flood": ("GET", access, "flood", {"size": 100 * 1024 * 1024}),
        "deep": ("GET", access, "rewrite", {"rewrite": lambda body: b"[" * 200_000}),
    }
    names = {key: f"hostile-{key}-{suffix}" for key in cases}
    proxies: dict[str, FaultProxy] = {}
    try:
        hosts: dict[str, dict[str, Any]] = {}
        for key, (method, pattern, kind, options) in cases.items():
            proxy = proxies[key] = FaultProxy(se["url"], ip=se["ip"])
            proxy.inject(method, pattern, kind, times=1000, **options)
            hosts[key] = {"vm_name": names[key], "pin_ip": proxy.ip, "pin_port": proxy.port, "http_timeout": 5}
        results = HostPlay(ansible, tmp_path / "http").play(hosts, discovery_backend="central")
        for key, result in results.items():
            msg = result.get("msg", "")
            assert result["failed"] and f"{proxies[key].url}/api/v1/vms" in msg, (key, msg)
        assert "redirect to 'http://127.0.0.99:7466" in results["post-307"]["msg"]
        assert "did not answer within 5 s" in results["drip"]["msg"], results["drip"]["msg"]
        assert "more than the 16777216 bytes" in results["flood"]["msg"], results["flood"]["msg"]
        assert "not JSON" in results["deep"]["msg"], results["deep"]["msg"]
        assert proxies["drip"].faults[0].sent < 60, "the drip was not waited out"
        assert proxies["flood"].faults[0].sent < 32 * 1024 * 1024, "the flood was not read to its end"
        # The redirect was not followed: nothing was made on SE.
        assert http("GET", f"{se['url']}/api/v1/vms/{names['post-307']}")[0] == 404
        rows = state_rows(ansible.state_path)
        # Whatever answered might have made the VM before redirecting: its row stays, for state=absent.
        assert rows.get(names["post-307"]) in (None, "error"), rows
        # The others exist on SE: recorded, so state=absent deletes them, with no endpoint any host takes.
        for key in ("drip", "flood", "deep"):
            assert rows.get(names[key]) in ("creating", "error"), (key, rows)
        listed, _warnings = _inventory(ansible, tmp_path)
        assert not set(names.values()) & set(listed.get("_meta", {}).get("hostvars", {}))
    finally:
        try:
            for proxy in proxies.values():
                proxy.heal()  # the rows name the proxies as the providers: now they pass everything
            gone = HostPlay(ansible, tmp_path / "destroy").play(
                {key: {"vm_name": name, "vm_state": "absent"} for key, name in names.items()},
                discovery_backend="central")
        finally:
            for proxy in proxies.values():
                proxy.close()
    assert {k: r.get("msg") for k, r in gone.items() if r.get("failed")} == {}
    assert not set(names.values()) & set(state_rows(ansible.state_path))
    for name in names.values():
        assert name not in running_vms() and http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404
