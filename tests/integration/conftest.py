# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .ansible_runner import BIN, Ansible
from .devnet_helpers import REPO, central_adverts, control, keypair, status, wait_until


@pytest.fixture(scope="session")
def devnet() -> dict:
    """The local network, started if it is not up (`make test` starts it before pytest)."""
    subprocess.run([sys.executable, str(REPO / "devnet" / "ctl.py"), "up"], check=True, capture_output=True)
    return status()


@pytest.fixture(scope="session")
def providers(devnet) -> dict[str, dict]:
    return {p["key"]: p for p in devnet["providers"]}


@pytest.fixture(scope="module")
def spares(devnet):
    """The network's three NL providers (devnet/layout.py SPARE_PROVIDERS: one country, three prices, small hosts),
    running and advertised on central discovery with all their room; stopped, their adverts withdrawn, after."""
    keys = [p["key"] for p in devnet["spare_providers"]]
    try:
        # Dearest first: discovery lists adverts in the order they came, so a provider_selection "first"
        # would not pass for "cheapest".
        for key in reversed(keys):
            control("start", name=key)
        found = {p["key"]: p for p in status()["spare_providers"]}
        assert all(p["alive"] and p["provider_id"] for p in found.values()), found
        wait_until(lambda: all(central_adverts().get(p["provider_id"], {}).get("resources") == ROOM[k]
                               for k, p in found.items()),
                   timeout=60, what="the spare providers advertised with all their room")
        yield found
    finally:
        for key in keys:
            control("stop", name=key)
    ids = {p["provider_id"] for p in status()["spare_providers"]}
    assert not ids & set(central_adverts()), "a stopped spare leaves no advert for the tests that follow"


# What each spare's advert says is free before any VM runs on it (devnet/layout.py).
ROOM = {"nl-low": {"cpu": 2, "memory": 8, "storage": 100}, "nl-mid": {"cpu": 2, "memory": 8, "storage": 100},
        "nl-high": {"cpu": 8, "memory": 16, "storage": 200}}


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> tuple:
    key = keypair(tmp_path_factory.mktemp("keys"))
    return key, key.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory) -> Path:
    """The tarball `ansible-galaxy collection build` makes of this tree (golem-vm-<version>.tar.gz)."""
    work = tmp_path_factory.mktemp("collection")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work), str(REPO)],
                   check=True, capture_output=True)
    return next(work.glob("golem-vm-*.tar.gz"))


@pytest.fixture(scope="session")
def collection(collection_tarball) -> Path:
    """The collection built and installed from this tree, as users install it."""
    tarball = collection_tarball
    installed = tarball.parent / "installed"
    # --force: pytest-ansible puts this tree on ANSIBLE_COLLECTIONS_PATH, so galaxy would find
    # golem.vm "already installed" and install nothing.
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                    str(installed), str(tarball)], check=True, capture_output=True)
    assert (installed / "ansible_collections/golem/vm/plugins/modules/golem_vm.py").is_file()
    return installed


@pytest.fixture
def ansible(collection, devnet, tmp_path) -> Ansible:
    """Runs modules and playbooks with a state file of this test's own."""
    state_dir = tmp_path / "requestor"
    return Ansible(collection, state_dir)
