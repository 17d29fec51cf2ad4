# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem.vm.golem_vm against the local network's real upstream providers."""

from __future__ import annotations

import uuid

from .devnet_helpers import ProviderLog, create_body, create_on_provider, http, keypair, ssh_pasted, state_rows


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _known_hosts(ansible) -> str:
    path = ansible.state_dir / "known_hosts"
    return path.read_text() if path.exists() else ""


def test_create_ssh_rerun_stop_destroy(ansible, providers):
    se = providers["se"]
    name = _name("life")
    created = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "size": "small"})
    assert not created.get("failed"), created.get("msg")
    assert created["changed"] is True, created
    vm = created["vm"]
    assert vm["status"] == "running" and vm["provider_ip"] == se["ip"] and vm["country"] == "SE"
    assert vm["resources"] == {"cpu": 1, "memory": 1, "storage": 10}
    out = ssh_pasted(vm, "hostname")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == name
    assert f"[{se['ip']}]:{vm['ssh_port']}" in _known_hosts(ansible)
    assert state_rows(ansible.state_path) == {name: "running"}

    log = ProviderLog("se")
    again = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "size": "small"})
    assert again["changed"] is False and again["vm"]["ssh_port"] == vm["ssh_port"]
    assert log.writes(name) == [], "a re-run must make no write call"

    stopped = ansible.module("golem_vm", {"name": name, "state": "stopped"})
    assert stopped["changed"] is True and stopped["vm"]["status"] == "stopped"
    assert ssh_pasted(vm, "true").returncode == 255
    assert ansible.module("golem_vm", {"name": name, "state": "stopped"})["changed"] is False

    started = ansible.module("golem_vm", {"name": name, "state": "started"})
    assert started["failed"] and "no start endpoint" in started["msg"]

    gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert gone["changed"] is True and gone["vm"] == {}
    assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404
    assert state_rows(ansible.state_path) == {}
    assert f":{vm['ssh_port']}" not in _known_hosts(ansible)
    assert ansible.module("golem_vm", {"name": name, "state": "absent"})["changed"] is False


def test_auto_selection_by_country_and_by_price(ansible, providers):
    us_vm = ansible.module("golem_vm", {"name": _name("us"), "country": "US", "wait": False})
    assert us_vm["vm"]["provider_ip"] == providers["us"]["ip"], us_vm.get("msg")
    cheap = ansible.module("golem_vm", {"name": _name("cheap"), "wait": False})
    # Found on Golem Base (the default backend), where SE is the cheapest (DE advertises only on central).
    assert cheap["vm"]["provider_ip"] == providers["se"]["ip"], cheap.get("msg")
    for result in (us_vm, cheap):
        assert ansible.module("golem_vm", {"name": result["vm"]["name"], "state": "absent"})["changed"]


def test_mvp_provider_creates_synchronously_and_cannot_stop(ansible, providers):
    de = providers["de"]
    name = _name("mvp")
    # central: an MVP-era provider advertises only there, and its advert gives the record its id and country.
    created = ansible.module("golem_vm", {"name": name, "provider_ip": de["ip"], "discovery_backend": "central"})
    assert created["changed"], created.get("msg")
    assert (created["vm"]["provider_id"], created["vm"]["country"]) == (de["provider_id"], "DE")
    assert any("synchronous" in a for a in created["actions"])
    assert ssh_pasted(created["vm"], "true").returncode == 0
    stop = ansible.module("golem_vm", {"name": name, "state": "stopped"})
    assert stop["failed"] and "MVP-era API" in stop["msg"]
    assert ansible.module("golem_vm", {"name": name, "state": "absent"})["changed"]
    assert http("GET", f"{de['url']}/api/v1/vms/{name}")[0] == 404


def test_name_taken_on_provider_fails_unless_adopted(ansible, providers, tmp_path):
    se = providers["se"]
    name = _name("taken")
    pub = keypair(tmp_path).with_suffix(".pub").read_text().strip()
    # Made by someone else, paid with a stream of their own.
    create_on_provider(se, create_body(se, name, pub))
    try:
        clash = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]})
        assert clash["failed"] and "adopt" in clash["msg"] and clash["failure"]["field"] == "name"
        assert state_rows(ansible.state_path) == {}
        code, vm = http("GET", f"{se['url']}/api/v1/vms/{name}")
        assert code == 200, "the existing VM must be left alone"

        adopted = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"], "adopt": True})
        assert adopted["changed"] and any("adopted" in a for a in adopted["actions"]), adopted.get("msg")
        assert state_rows(ansible.state_path) == {name: "running"}
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")


def test_check_mode_makes_no_call_on_the_provider(ansible, providers):
    se = providers["se"]
    name = _name("check")
    log = ProviderLog("se")
    planned = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]}, check=True, diff=True)
    assert planned["changed"] is True
    assert planned["request"]["body"]["name"] == name
    assert planned["request"]["url"] == f"{se['url']}/api/v1/vms?async=true"
    # The callback prints the diff as text before the result: nothing before, the new VM after.
    diff = planned["_stdout"][:planned["_stdout"].rfind("localhost | ")]
    assert "--- before" in diff and f'+    "name": "{name}"' in diff and '-    "' not in diff
    assert "ssh-ed25519" not in diff, "no key material in a diff"
    assert log.writes(name) == []
    assert http("GET", f"{se['url']}/api/v1/vms/{name}")[0] == 404
    assert not ansible.state_path.exists(), "check mode must not write the state file"
    assert not (ansible.state_dir / "ssh").exists(), "check mode must not generate a key"


def test_drift_is_repaired_on_present(ansible, providers):
    se = providers["se"]
    name = _name("drift")
    first = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]})
    assert http("DELETE", f"{se['url']}/api/v1/vms/{name}")[0] == 200
    repaired = ansible.module("golem_vm", {"name": name, "provider_id": se["provider_id"]})
    assert repaired["changed"] and any("gone" in a for a in repaired["actions"]), repaired.get("msg")
    assert repaired["vm"]["ssh_port"] != first["vm"]["ssh_port"]
    assert ssh_pasted(repaired["vm"], "true").returncode == 0
    # Stale host key of the old port is gone, the new one is there.
    assert f":{first['vm']['ssh_port']}" not in _known_hosts(ansible)
    assert ansible.module("golem_vm", {"name": name, "state": "absent"})["changed"]


def test_bad_name_fails_before_any_call_and_leaves_state_untouched(ansible, providers):
    keep = _name("keep")
    ansible.module("golem_vm", {"name": keep, "provider_id": providers["se"]["provider_id"], "wait": False})
    try:
        before = ansible.state_path.read_bytes()
        log = ProviderLog("se")
        for bad in ("Bad_Name", "ab", "a--b", "-lead"):
            result = ansible.module("golem_vm", {"name": bad, "provider_id": providers["se"]["provider_id"]})
            assert result["failed"] and result["failure"]["field"] == "name"
            assert repr(bad) in result["msg"]
            assert "Traceback" not in result["_stderr"]
        assert log.requests() == []
        assert ansible.state_path.read_bytes() == before
    finally:
        ansible.module("golem_vm", {"name": keep, "state": "absent"})
