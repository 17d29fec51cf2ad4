# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's modules and playbooks with the real ansible commands, as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


class Ansible:
    def __init__(self, collections_path: Path, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
            "GOLEM_REQUESTOR_DISCOVERY_URL": "http://127.0.0.1:9001",
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
