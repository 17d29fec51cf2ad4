# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One state for a team (issue 16): golem.vm on the local network's real PostgreSQL.

Two controllers are two HOMEs and two ansible-playbook processes; they share nothing but the
PostgreSQL URL (and, as a team sharing an AWX credential would, the account that pays).
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from .ansible_runner import BIN, Ansible
from .devnet_helpers import REPO, http, payment_chain, plain, running_vms, vm_instances
from .payment_chain import ZERO
from .postgres_helpers import (  # noqa: F401  pylint: disable=unused-import
    admin,
    ctl,
    env_file,
    pg_schema,
    pg_url,
    postgres,
    url_for,
)

FLEET = REPO / "playbooks" / "fleet.yml"


def _controller(ansible: Ansible, home: Path, url: str) -> dict[str, str]:
    """The environment of one controller: its own HOME (key pair, known_hosts), the team's state URL."""
    # Empty counts as unset (and survives being merged over the test's own environment).
    env = {**ansible.env, "GOLEM_REQUESTOR_DB_PATH": ""}
    home.mkdir(parents=True)
    return {**env, "HOME": str(home), "GOLEM_REQUESTOR_STATE_URL": url, "ANSIBLE_LOCAL_TEMP": str(home / "tmp")}


def _rows(postgres: dict, schema: str) -> dict[str, dict[str, Any]]:
    with admin(postgres) as conn:
        found = conn.execute(f"SELECT name, provider_ip, status, config FROM {schema}.vms").fetchall()
    return {name: {"ip": ip, "status": status, "config": json.loads(config)} for name, ip, status, config in found}


def test_two_controllers_keep_the_same_fleet_at_once_and_create_each_vm_once(
        ansible: Ansible, providers: dict[str, dict], postgres: dict, pg_schema: str, tmp_path: Path) -> None:
    url = url_for(postgres, pg_schema)
    fleet = f"team{uuid.uuid4().hex[:5]}"
    envs = [_controller(ansible, tmp_path / f"controller{i}", url) for i in (1, 2)]
    args = [str(FLEET), "-e", f"fleet_name={fleet}", "-e", "fleet_size=20", "-e", "fleet_wait=false",
            "-e", '{"fleet_countries": ["SE", "US"]}']
    results: dict[int, subprocess.CompletedProcess] = {}

    def play(index: int) -> None:
        results[index] = subprocess.run([str(BIN / "ansible-playbook"), *args], env=envs[index], capture_output=True,
                                        text=True, timeout=900, check=False)

    threads = [threading.Thread(target=play, args=(i,)) for i in (0, 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index, done in results.items():
            failed = "\n".join(line for line in done.stdout.splitlines() if "fatal:" in line or "FAILED!" in line)
            assert done.returncode == 0, (f"controller {index + 1}:\n{failed[:6000]}\n...\n{done.stdout[-3000:]}\n"
                                          f"{done.stderr[-2000:]}")
        rows = _rows(postgres, pg_schema)
        names = [f"{fleet}-{i:02d}" for i in range(1, 21)]
        assert sorted(rows) == names, "20 rows, one a name"
        on_network = Counter(n for n, _provider in vm_instances() if n.startswith(f"{fleet}-"))
        assert sorted(on_network) == names and set(on_network.values()) == {1}, f"duplicates: {on_network}"
        for name, row in rows.items():
            code = http("GET", f"http://{row['ip']}:7466/api/v1/vms/{name}")[0]
            assert code == 200 and row["status"] == "running", (name, row)
        # Each paid once: one stream a VM, recorded on its row.
        streams = [row["config"].get("stream_id") for row in rows.values() if row["ip"] != providers["de"]["ip"]]
        assert len(streams) == len(set(streams)) and None not in streams
        # Both controllers end with the whole fleet.
        assert all(f"fleet {fleet}: 20 VMs" in done.stdout for done in results.values())
    finally:
        gone = subprocess.run([str(BIN / "ansible-playbook"), str(FLEET), "-e", f"fleet_name={fleet}",
                               "-e", "fleet_size=0"], env=envs[0], capture_output=True, text=True, timeout=900,
                              check=False)
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert _rows(postgres, pg_schema) == {} and not [n for n in running_vms() if n.startswith(f"{fleet}-")]


def _inventory(env: dict[str, str], config: Path) -> dict[str, Any]:
    out = config.with_suffix(".json")
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    return plain(json.loads(out.read_text()))


def test_the_inventory_lists_the_same_hosts_from_postgresql_as_from_the_sqlite_copy(
        ansible: Ansible, providers: dict[str, dict], postgres: dict, pg_url: str,  # noqa: F811
        tmp_path: Path) -> None:
    names = [f"inv-pg-{uuid.uuid4().hex[:6]}" for _i in range(2)]
    for name, key in zip(names, ("se", "us")):
        made = ansible.module("golem_vm", {"name": name, "provider_id": providers[key]["provider_id"]})
        assert not made["failed"], made.get("msg")
    try:
        copied = ansible.module("golem_state_copy", {"direction": "to_postgresql", "state_path": str(ansible.state_path),
                                                     "state_url": pg_url})
        assert not copied["failed"] and copied["changed"], copied.get("msg")
        # The same known_hosts file on both sides, so the hostvars compare whole.
        config = tmp_path / "golem.yml"
        config.write_text(f"plugin: golem.vm.golem\nknown_hosts_path: {ansible.state_dir / 'known_hosts'}\n")
        from_sqlite = _inventory(ansible.env, config)
        other = _controller(ansible, tmp_path / "other-controller", pg_url)
        from_pg = _inventory(other, config)
        assert sorted(from_pg["golem"]["hosts"]) == sorted(names) == sorted(from_sqlite["golem"]["hosts"])
        for name in names:
            assert from_pg["_meta"]["hostvars"][name] == from_sqlite["_meta"]["hostvars"][name]
        assert postgres["password"] not in json.dumps(from_pg), "the URL's password never shows"

        # Another controller, with none of the first one's files, reaches both VMs with strict host key
        # checking: the keys come from the state.
        bare = tmp_path / "bare" / "golem.yml"
        bare.parent.mkdir()
        bare.write_text("plugin: golem.vm.golem\ncompose:\n  ansible_python_interpreter: \"'/usr/bin/python3'\"\n")
        ran = subprocess.run([str(BIN / "ansible"), "golem", "-i", str(bare), "-m", "command", "-a", "hostname",
                              "--private-key", str(ansible.state_dir / "ssh" / "golem_id_ed25519")],
                             env={**other, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")}, capture_output=True,
                             text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert all(f"| CHANGED | rc=0 >>\n{name}" in ran.stdout for name in names), ran.stdout + ran.stderr
    finally:
        for name in names:
            ansible.module("golem_vm", {"name": name, "state": "absent"})


def test_postgresql_stopped_during_a_play_fails_clearly_leaves_no_vm_without_a_row_and_the_rerun_converges(
        ansible: Ansible, providers: dict[str, dict], postgres: dict, pg_schema: str, tmp_path: Path) -> None:
    url = url_for(postgres, pg_schema)
    env = _controller(ansible, tmp_path / "controller", url)
    name = f"pg-down-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "provider_id": providers["se"]["provider_id"], "wait": False}
    from .fault_proxy import FaultProxy

    # The create call reaches SE through a proxy that stops PostgreSQL while SE works on it.
    proxy = FaultProxy(providers["se"]["url"], ip=providers["se"]["ip"])  # SE's address: its SSH host is its own
    proxy.inject("POST", r"/api/v1/vms", "hook", hook=lambda: ctl("stop", "postgres"))
    pinned = {**args, "provider_ip": proxy.ip, "provider_port": proxy.port}
    pinned.pop("provider_id")
    try:
        try:
            failed = ansible.module("golem_vm", pinned, env=env)
        finally:
            ctl("start", "postgres")
        assert failed["failed"], failed
        assert f"{postgres['ip']}:{postgres['port']}" in failed["msg"], failed["msg"]
        assert postgres["password"] not in failed["msg"] + failed["_stdout"] + failed["_stderr"]
        assert "Traceback" not in failed["_stderr"]
        rows = _rows(postgres, pg_schema)
        assert name in rows, "the row was written before the create call: no VM without a row"
        rerun = ansible.module("golem_vm", pinned, env=env)
        assert not rerun["failed"], rerun.get("msg")
        assert _rows(postgres, pg_schema)[name]["status"] == "running"
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"}, env=env)
        assert not gone["failed"], gone.get("msg")
    finally:
        proxy.close()
    assert http("GET", f"{providers['se']['url']}/api/v1/vms/{name}")[0] == 404


def test_another_controller_tops_up_and_destroys_a_paid_vm_through_the_team_state(
        ansible: Ansible, providers: dict[str, dict], postgres: dict, pg_schema: str, tmp_path: Path) -> None:
    url = url_for(postgres, pg_schema, password=False)
    password = env_file()["PGPASSWORD"]
    first, second = (_controller(ansible, tmp_path / f"controller{i}", url) for i in (1, 2))
    for env in (first, second):
        env["PGPASSWORD"] = password  # the password outside the URL, as a team's credential gives it
    chain = payment_chain()
    name = f"team-paid-{uuid.uuid4().hex[:6]}"
    created = ansible.module("golem_vm", {"name": name, "provider_id": providers["se"]["provider_id"],
                                          "wait": False, "payment_hours": 1}, env=first)
    try:
        assert not created["failed"], created.get("msg")
        stream_id = created["stream"]["stream_id"]
        before = chain.stream(stream_id)
        # Controller 2 never saw this VM: its row (stream id, contract) comes from PostgreSQL.
        topped = ansible.module("golem_stream", {"name": name, "runway_hours": 2}, env=second, verbosity=3)
        assert topped["changed"] and not topped["failed"], topped.get("msg")
        after = chain.stream(stream_id)
        assert after["deposit"] - before["deposit"] == topped["top_up"]["amount_wei"] > 0
        assert after["stopTime"] - before["stopTime"] == topped["top_up"]["seconds_added"]
        printed = topped["_stdout"] + topped["_stderr"]
        assert password not in printed, "the PostgreSQL password must not show at -vvv"
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"}, env=second)
        assert gone["changed"] and not gone["failed"], gone.get("msg")
        assert chain.stream(stream_id)["recipient"] == ZERO, "the stream was terminated"
        assert name not in _rows(postgres, pg_schema)
        assert http("GET", f"{providers['se']['url']}/api/v1/vms/{name}")[0] == 404
    finally:
        ansible.module("golem_vm", {"name": name, "state": "absent"}, env=first)


def test_two_controllers_repairing_the_same_lost_vm_at_once_create_it_once(
        ansible: Ansible, providers: dict[str, dict], postgres: dict, pg_schema: str, tmp_path: Path) -> None:
    """Each finds the row and the provider without the VM; one VM comes back, one row, every stream accounted for."""
    url = url_for(postgres, pg_schema)
    envs = [_controller(ansible, tmp_path / f"controller{i}", url) for i in (1, 2)]
    chain = payment_chain()
    se = providers["se"]
    name = f"team-lost-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "provider_id": se["provider_id"], "wait": False}
    made = ansible.module("golem_vm", args, env=envs[0])
    assert not made["failed"], made.get("msg")
    lost_stream = made["stream"]["stream_id"]
    try:
        # The provider loses it behind the team's back; the row still says running.
        assert http("DELETE", f"{se['url']}/api/v1/vms/{name}")[0] == 200
        assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404
        opened_before = chain.next_stream_id()
        results: dict[int, dict[str, Any]] = {}
        start = threading.Barrier(2)

        def repair(index: int) -> None:
            start.wait()
            results[index] = ansible.module("golem_vm", args, env=envs[index])

        threads = [threading.Thread(target=repair, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        assert {i: r.get("msg") for i, r in results.items() if r["failed"]} == {}
        rows = _rows(postgres, pg_schema)
        assert rows[name]["status"] == "running", rows[name]
        assert Counter(n for n, _provider in vm_instances())[name] == 1, "one VM, not one per controller"
        assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 200
        # No money lost: the lost VM's stream ended, one stream opened for the new one, and it is the row's.
        assert chain.stream(lost_stream)["recipient"] == ZERO, "the lost VM's stream was terminated"
        assert chain.next_stream_id() == opened_before + 1, "one repair paid, not two"
        new_stream = rows[name]["config"]["stream_id"]
        assert new_stream != lost_stream and chain.stream(new_stream)["recipient"].lower() == se["provider_id"].lower()
        assert sum(1 for r in results.values() if r["changed"] and any("created VM" in a for a in r["actions"])) == 1
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"}, env=envs[1])
    assert not gone["failed"], gone.get("msg")
    assert name not in _rows(postgres, pg_schema) and name not in running_vms()
