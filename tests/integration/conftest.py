# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import subprocess
import sys

import pytest

from .devnet_helpers import REPO, keypair, status


@pytest.fixture(scope="session")
def devnet() -> dict:
    """The local network, started if it is not up (`make test` starts it before pytest)."""
    subprocess.run([sys.executable, str(REPO / "devnet" / "ctl.py"), "up"], check=True, capture_output=True)
    return status()


@pytest.fixture(scope="session")
def providers(devnet) -> dict[str, dict]:
    return {p["key"]: p for p in devnet["providers"]}


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> tuple:
    key = keypair(tmp_path_factory.mktemp("keys"))
    return key, key.with_suffix(".pub").read_text().strip()
