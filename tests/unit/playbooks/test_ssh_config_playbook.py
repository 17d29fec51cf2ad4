# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/ssh_config.yml with no VM to write: it fails saying why and what to do, and writes nothing,
unless the user asks for an empty file. No network is involved; a run with VMs is in tests/integration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAYBOOK = Path(__file__).parents[3] / "playbooks" / "ssh_config.yml"
BIN = Path(sys.executable).parent


def play(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_HOME": str(tmp_path / "home")}
    cmd = [str(BIN / "ansible-playbook"), str(PLAYBOOK), "-e", f"ssh_config_path={tmp_path / 'golem_config'}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_without_an_inventory_it_fails_naming_the_inventory_to_give(tmp_path: Path) -> None:
    proc = play(tmp_path)
    assert proc.returncode != 0
    assert "No golem.vm.golem inventory was given" in proc.stdout and "plugin: golem.vm.golem" in proc.stdout
    assert not (tmp_path / "golem_config").exists()


def test_with_an_empty_golem_group_it_fails_saying_the_inventory_lists_no_vm(tmp_path: Path) -> None:
    # What the golem.vm.golem inventory gives for a state file without VMs: the group, with no host in it.
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[golem]\n")
    proc = play(tmp_path, "-i", str(inventory))
    assert proc.returncode != 0
    assert "The golem.vm.golem inventory lists no VM" in proc.stdout and "No golem.vm.golem inventory" not in proc.stdout
    assert "ssh_config_allow_empty=true" in proc.stdout
    assert not (tmp_path / "golem_config").exists()


@pytest.mark.parametrize("flag", ["true", "yes"])
def test_an_empty_file_is_written_when_asked(tmp_path: Path, flag: str) -> None:
    proc = play(tmp_path, "-e", f"ssh_config_allow_empty={flag}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 VM(s) in" in proc.stdout and (tmp_path / "golem_config").exists()


def test_abandoned_members_get_no_host_block(tmp_path: Path) -> None:
    # What the golem.vm.golem inventory gives an abandoned member: a name that never resolves and no port.
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[golem:children]\ngolem_status_running\ngolem_status_abandoned\n\n"
        f"[golem_status_running]\nweb-1 ansible_host=192.0.2.7 ansible_port=20001 ansible_user=root "
        f"golem_known_hosts_path={tmp_path / 'known_hosts'}\n\n"
        "[golem_status_abandoned]\nold-1 ansible_host=abandoned.golem.invalid\n")
    proc = play(tmp_path, "-i", str(inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = (tmp_path / "golem_config").read_text()
    assert "Host web-1\n" in written and "Port 20001" in written
    assert "old-1" not in written and "invalid" not in written
