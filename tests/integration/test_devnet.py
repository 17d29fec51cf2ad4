# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network itself, checked with plain HTTP and SSH (no collection code).

These are the checks a user of `make devnet-up` relies on: the real upstream servers
answer, a VM created through a provider's API is a real SSH host behind the provider's
proxy port, and stopping or deleting it really stops or removes it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .devnet_helpers import REPO, RUN, create_body, create_on_provider, discovery_url, http, ssh, status, wait_until


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create_async(provider: dict, name: str, key: str) -> dict:
    # The current providers take payment (a stream on the network's chain); create_body opens one.
    body = create_body(provider, name, key)
    job = create_on_provider(provider, body)
    assert job["status"] == "creating" and job["vm_id"] == name

    def access():
        code, body = http("GET", f"{provider['url']}/api/v1/vms/{name}/access")
        return body if code == 200 and body.get("ssh_port") else None

    # The port can lag behind `running` under load (reference §6): wait for /access.
    return wait_until(access, what=f"ssh port of {name}")


def test_discovery_lists_the_three_providers_and_filters_by_country(providers):
    code, ads = http("GET", f"{discovery_url()}/api/v1/advertisements")
    assert code == 200
    by_id = {ad["provider_id"]: ad for ad in ads}
    for key, country in (("se", "SE"), ("us", "US"), ("de", "DE")):
        ad = by_id[providers[key]["provider_id"]]
        assert ad["country"] == country
        assert ad["ip_address"] == providers[key]["ip"]
    code, only_se = http("GET", f"{discovery_url()}/api/v1/advertisements?country=SE")
    assert code == 200
    assert [ad["provider_id"] for ad in only_se] == [providers["se"]["provider_id"]]
    # The MVP-era provider advertises no pricing; the current ones do.
    assert by_id[providers["se"]["provider_id"]]["pricing"]["usd_per_core_month"] > 0
    assert not by_id[providers["de"]["provider_id"]].get("pricing")


def test_vm_on_se_provider_runs_a_command_over_ssh_and_is_gone_after_delete(providers, ssh_key):
    key_path, pub = ssh_key
    se = providers["se"]
    name = _name("e2e")
    access = _create_async(se, name, pub)
    assert access["ssh_host"] == se["ip"]
    port = access["ssh_port"]
    assert se["ssh_ports"][0] <= port < se["ssh_ports"][1]

    result = ssh(key_path, access["ssh_host"], port, "hostname; id -u; . /etc/os-release; echo $ID")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [name, "0", "debian"]

    assert http("DELETE", f"{se['url']}/api/v1/vms/{name}")[0] == 200
    code, body = http("GET", f"{se['url']}/api/v1/vms/{name}")
    assert code == 404, body
    gone = ssh(key_path, access["ssh_host"], port, "true")
    assert gone.returncode == 255


def test_stop_really_stops_the_sandbox(providers, ssh_key):
    key_path, pub = ssh_key
    us = providers["us"]
    name = _name("stop")
    access = _create_async(us, name, pub)
    assert ssh(key_path, access["ssh_host"], access["ssh_port"], "true").returncode == 0
    code, vm = http("POST", f"{us['url']}/api/v1/vms/{name}/stop")
    assert code == 200 and vm["status"] == "stopped"
    assert ssh(key_path, access["ssh_host"], access["ssh_port"], "true").returncode == 255
    # Upstream has no start endpoint (reference §0): a real 404, not ours.
    assert http("POST", f"{us['url']}/api/v1/vms/{name}/start")[0] == 404
    assert http("DELETE", f"{us['url']}/api/v1/vms/{name}")[0] == 200


def test_mvp_provider_creates_synchronously(providers, ssh_key):
    key_path, pub = ssh_key
    de = providers["de"]
    name = _name("mvp")
    body = {"name": name, "resources": {"cpu": 1, "memory": 1, "storage": 10}, "ssh_key": pub}
    # 0.1.31 ignores ?async=true and answers with the finished VM.
    code, vm = http("POST", f"{de['url']}/api/v1/vms?async=true", body)
    assert code == 200, vm
    assert vm["status"] == "running" and vm["ssh_port"]
    assert http("GET", f"{de['url']}/api/v1/provider/info")[0] == 404
    assert ssh(key_path, de["ip"], vm["ssh_port"], "true").returncode == 0
    assert http("DELETE", f"{de['url']}/api/v1/vms/{name}")[0] == 200
    assert http("GET", f"{de['url']}/api/v1/vms/{name}")[0] == 404


def test_advertised_capacity_is_the_emulated_host_minus_what_runs(providers, ssh_key):
    pub = ssh_key[1]
    se = providers["se"]

    def free():
        ads = http("GET", f"{discovery_url()}/api/v1/advertisements?country=SE")[1]
        return ads[0]["resources"]

    before = free()
    assert before["cpu"] >= 20, "the emulated host must hold many small VMs"
    name = _name("cap")
    _create_async(se, name, pub)
    try:
        wait_until(lambda: free()["cpu"] == before["cpu"] - 1, what="the advertisement to shrink")
        assert free()["memory"] == before["memory"] - 1
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")
    wait_until(lambda: free() == before, what="the advertisement to grow back")


def _multipass(*args: str, cloud_init: str | None = None, owner: str = "contract-test"):
    env = {**os.environ, "GOLEM_DEVNET_SOCKET": str(RUN / "multipass.sock"), "GOLEM_DEVNET_OWNER": owner}
    return subprocess.run([str(RUN / "bin" / "multipass"), *args], capture_output=True, text=True, env=env,
                          check=False, timeout=60)


def test_multipass_stand_in_meets_the_provider_contract(devnet, ssh_key, tmp_path):
    key_path, pub = ssh_key
    name = f"golem-{uuid.uuid4()}"
    cloud_init = tmp_path / "ci.yaml"
    cloud_init.write_text("#cloud-config\nhostname: contract\nusers:\n  - name: root\n"
                          f"    ssh_authorized_keys:\n      - {pub}\n")
    assert _multipass("version").returncode == 0
    launched = _multipass("launch", "24.04", "--name", name, "--cloud-init", str(cloud_init),
                          "--cpus", "2", "--memory", "4G", "--disk", "20G")
    assert launched.returncode == 0, launched.stderr
    try:
        info = json.loads(_multipass("info", name, "--format", "json").stdout)["info"][name]
        assert info["state"] == "Running"
        assert round(info["memory"]["total"] / 1024 ** 3) == 4
        assert round(int(info["disks"]["sda1"]["total"]) / 1024 ** 3) == 20
        assert info["cpu_count"] == "2"
        ip = info["ipv4"][0]
        assert ip.startswith(status()["net"] + ".1.")
        assert ssh(key_path, ip, 22, "hostname").stdout.strip() == "contract"
        # Another provider's calls do not see this instance.
        assert "does not exist" in _multipass("info", name, "--format", "json", owner="other").stderr

        assert _multipass("stop", name).returncode == 0
        stopped = json.loads(_multipass("info", name, "--format", "json").stdout)["info"][name]
        assert stopped["state"] == "Stopped" and stopped["ipv4"] == []
        assert ssh(key_path, ip, 22, "true").returncode == 255

        # The disk survives stop/start, as a VM's would.
        assert _multipass("start", name).returncode == 0
        assert ssh(key_path, ip, 22, "cat /etc/hostname").stdout.strip() == "contract"
    finally:
        assert _multipass("delete", name, "--purge").returncode == 0
    missing = _multipass("info", name, "--format", "json")
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert not (RUN / "vms" / name).exists()


def test_everything_the_network_listens_on_is_loopback(devnet):
    pids = {str(pid) for pid in devnet["children"].values() if pid}
    pids.add(str(devnet["pid"]))
    listeners = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listeners.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert len(ours) >= 5, listeners  # discovery, three providers and the payment chain at least
    chain = devnet["payments"]["rpc_url"].split("//", 1)[1]
    assert any(line.split()[3] == chain for line in ours), listeners
    for line in ours:
        local = line.split()[3]
        assert local.startswith("127."), f"not loopback: {line}"


def test_a_second_network_names_the_port_already_taken(devnet, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "devnet" / "ctl.py"), "up"],
                            env={**os.environ, "GOLEM_DEVNET_DIR": str(tmp_path / "second")},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    address = discovery_url().split("//", 1)[1]
    assert f"{address} (discovery) is already in use" in result.stderr
    # The running network is untouched.
    with socket.create_connection(tuple(address.split(":")), timeout=5):
        pass


@pytest.mark.parametrize("path", ["/api/v1/vms/no-such-vm"])
def test_unknown_vm_is_a_404_on_every_provider(providers, path):
    for prov in providers.values():
        assert http("GET", prov["url"] + path)[0] == 404


def test_the_network_holds_forty_small_vms_at_once(providers, ssh_key):
    """40 small VMs over the three providers, all running and reachable over SSH together."""
    key_path, pub = ssh_key
    plan = [(providers[key], _name(f"cap40-{key}")) for key in ("se", "us", "de") for _i in range(14)][:40]

    def create(item):
        prov, name = item
        if prov["api"] == "sync":
            body = create_body(prov, name, pub)
            code, vm = http("POST", f"{prov['url']}/api/v1/vms", body, timeout=120)
            assert code == 200, vm
            return prov, name, {"ssh_host": prov["ip"], "ssh_port": vm["ssh_port"]}
        return prov, name, _create_async(prov, name, pub)

    with ThreadPoolExecutor(max_workers=10) as pool:
        try:
            created = list(pool.map(create, plan))
            assert len(created) == 40
            results = list(pool.map(lambda c: ssh(key_path, c[2]["ssh_host"], c[2]["ssh_port"], "hostname"),
                                    created))
            assert [r.stdout.strip() for r in results] == [item[1] for item in created]
        finally:
            list(pool.map(lambda item: http("DELETE", f"{item[0]['url']}/api/v1/vms/{item[1]}"), plan))
    for prov, name in plan:
        assert http("GET", f"{prov['url']}/api/v1/vms/{name}")[0] == 404
