# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A golem_vm run that finds its VM as asked loads only the code it uses: no create path, payment code,
discovery driver or PostgreSQL backend. Run in a process of its own, as Ansible runs a module, and judged
by what that process has imported when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore

LOOPBACK = "127.0.0.60"  # the unit suite's own address (tests/unit/conftest.py)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MU = "ansible_collections.golem.vm.plugins.module_utils."
# What only a create, a payment, a discovery query or a PostgreSQL state needs.
NOT_FOR_A_NOOP = ("vm.create", "vm.placer", "vm.payments", "vm.ssh_keys", "chain.contract", "discovery.backends",
                  "discovery.central", "discovery.golem_base", "discovery.listing", "state.postgres",
                  "state.postgres_schema", "state.postgres_url")
RUN = """
import json, os, sys
from ansible_collections.golem.vm.plugins.modules import golem_vm
try:
    golem_vm.main()
except SystemExit:
    pass
with open(os.environ["LOADED_LIST"], "w") as out:
    json.dump(sorted(m for m in sys.modules if m.startswith("ansible_collections.golem.vm.")), out)
"""


def run_in_own_process(tmp_path: Path, args: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    # This process's path: the collection is found in the child as pytest finds it here.
    path = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "args.json")],
                          capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "LOADED_LIST": str(tmp_path / "loaded.json")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), json.loads((tmp_path / "loaded.json").read_text())


def test_a_run_on_a_vm_already_as_asked_imports_no_create_payment_discovery_or_postgresql_code(
        tmp_path: Path, httpserver: HTTPServer) -> None:
    running = json.loads((FIXTURES / "provider_vm_running_from_reference.json").read_text())
    httpserver.expect_request("/api/v1/vms/web-1", method="GET").respond_with_json(running)
    state = tmp_path / "state.db"
    store = StateStore(str(state))
    store.upsert(VMRecord("web-1", LOOPBACK, "web-1", "running", {
        "cpu": 2, "memory": 4, "storage": 20, "ssh_port": running["ssh_port"], "provider_id": "0xse",
        "provider_port": httpserver.port, "ssh_user": "root"}))

    result, loaded = run_in_own_process(tmp_path, {
        "name": "web-1", "state_path": str(state), "provider_port": httpserver.port, "wait": False,
        # Payment options that would pay, were anything to be paid: the no-op must still not load the payer.
        "ethereum_private_key": "0x" + "11" * 32, "payments_rpc_url": f"http://{LOOPBACK}:1"})

    assert result.get("failed") is not True, result
    assert result["changed"] is False and result["vm"]["status"] == "running"
    # The run is real: it asked the provider, through the modules a no-op does need.
    assert len(httpserver.log) == 1
    assert {MU + "vm.lifecycle", MU + "provider.client", MU + "state.sqlite_file"} <= set(loaded)
    assert sorted(m for m in loaded if m[len(MU):] in NOT_FOR_A_NOOP) == []
