# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's modules and playbooks with the real ansible commands, as users do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .devnet_helpers import devnet_env, discovery_url, status

BIN = Path(sys.executable).parent


class Ansible:
    def __init__(self, collections_path: Path, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
            "GOLEM_REQUESTOR_DISCOVERY_URL": discovery_url(),
            # Golem Base is the default backend: the network's node, so every test finds SE and US there.
            "GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL": status()["golem_base"]["rpc_url"],
            # The network's funded account and chain: SE and US take payment, as upstream providers do.
            "GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY": devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"],
            "GOLEM_REQUESTOR_POLYGON_RPC_URL": devnet_env()["GOLEM_REQUESTOR_POLYGON_RPC_URL"],
            # The contract the network deployed, as its env file names it: the one a stream may be paid into.
            "GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS": devnet_env()["GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"],
            "GOLEM_REQUESTOR_DB_PATH": str(state_dir / "vms.db"),
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }

    @property
    def state_path(self) -> Path:
        return self.state_dir / "vms.db"

    def module(self, name: str, args: dict[str, Any] | None = None, *, check: bool = False,
               diff: bool = False, env: dict[str, str] | None = None, verbosity: int = 0) -> dict[str, Any]:
        """One module run on localhost; returns its result (with ``failed`` when it failed)."""
        cmd = [str(BIN / "ansible"), "localhost", "-m", f"golem.vm.{name}"]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if args:
            cmd += ["-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = {**self.env, **(env or {})}
        proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=900, check=False)
        # The ad-hoc output ends with "localhost | STATUS => {json}"; a --diff comes before it.
        marker = proc.stdout.rfind("localhost | ")
        try:
            brace = proc.stdout.index("{", marker)
            result = json.loads(proc.stdout[brace:])
        except ValueError as exc:
            raise AssertionError(f"no result from {cmd}: {exc}\n{proc.stdout}\n{proc.stderr}") from None
        # The callback drops "failed" from what it prints; the status word says it.
        result["failed"] = proc.stdout[marker:brace].split("|", 1)[1].strip().startswith("FAILED")
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr
        return result

    def playbook(self, playbook: str | Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 900) -> subprocess.CompletedProcess:
        cmd = [str(BIN / "ansible-playbook"), str(playbook), *args]
        return subprocess.run(cmd, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)


GOLEM_VM_PLAY = """
- hosts: vms
  gather_facts: false
  tasks:
    - name: The task under test
      golem.vm.golem_vm:
        name: "{{ vm_name }}"
        state: "{{ vm_state | default('present') }}"
        size: "{{ vm_size | default(omit) }}"
        provider_ip: "{{ pin_ip | default(omit) }}"
        provider_port: "{{ pin_port | default(omit) }}"
        country: "{{ vm_country | default(omit) }}"
        discovery_url: "{{ discovery_url | default(omit) }}"
        discovery_backend: "{{ discovery_backend | default(omit) }}"
        golem_base_rpc_url: "{{ golem_base_rpc_url | default(omit) }}"
        timeout: "{{ http_timeout | default(omit) }}"
        wait_timeout: "{{ task_timeout | default(omit) }}"
        wait: "{{ vm_wait | default(false) }}"
        stream_id: "{{ vm_stream_id | default(omit) }}"
        allow_foreign_ssh_host: "{{ vm_allow_foreign | default(omit) }}"
      ignore_errors: true
"""


class HostPlay:
    """golem_vm once per inventory host, all hosts side by side (one fork each); one host per VM.

    The hosts run on this machine (ansible_connection local), as a play that manages many VMs
    from one controller does. ``play`` returns each host's task result, which ansible-core's
    tree callback writes to a file per host.
    """

    def __init__(self, ansible: Ansible, directory: Path) -> None:
        self.ansible = ansible
        self.dir = directory
        self.seconds = 0.0
        self.proc: subprocess.CompletedProcess | None = None

    def play(self, hosts: dict[str, dict[str, Any]], **common: Any) -> dict[str, dict[str, Any]]:
        self.dir.mkdir(parents=True)
        results = self.dir / "results"
        common = {"ansible_connection": "local",
                  "ansible_python_interpreter": self.ansible.env["ANSIBLE_PYTHON_INTERPRETER"], **common}
        (self.dir / "inventory.json").write_text(json.dumps({"vms": {"hosts": hosts, "vars": common}}))  # JSON is YAML
        (self.dir / "play.yml").write_text(GOLEM_VM_PLAY)
        started = time.monotonic()
        self.proc = self.ansible.playbook(
            self.dir / "play.yml", "-i", str(self.dir / "inventory.json"), "-f", str(len(hosts)), timeout=1200,
            env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.tree", "ANSIBLE_CALLBACK_TREE_DIR": str(results)})
        self.seconds = time.monotonic() - started
        output = self.proc.stdout + self.proc.stderr
        (self.dir / "play.log").write_text(output)  # for a look after a failure
        assert "Traceback" not in output, output
        # The tree callback drops "failed" from what it writes; the recap counts the failure (ignored).
        recap = dict(re.findall(r"^(\S+)\s+:\s+ok=.*\bignored=(\d+)", self.proc.stdout, re.M))
        out = {}
        for key in hosts:
            path = results / key
            assert path.exists() and key in recap, f"no result for {key}:\n{output}"
            out[key] = json.loads(path.read_text())
            out[key]["failed"] = recap[key] != "0"
        return out
