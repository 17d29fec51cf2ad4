# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The devnet's contracts, compiled with solcjs into the cache.

    python devnet/solidity.py            compile every contract whose source changed

scripts/install-devnet.sh runs this once solcjs is installed; devnetd only reads the artifacts.
An artifact's name carries the hash of its source, so an edited contract is compiled again and a
network never deploys bytecode older than its source.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layout  # noqa: E402

SOURCES = layout.REPO / "devnet" / "contracts"
ARTIFACTS = layout.CHAIN_TOOLS / "contracts"
CONTRACTS = ("StreamPayment",)
# Part of the artifact's key with the source: a change here compiles again too.
SETTINGS: dict[str, Any] = {"optimizer": {"enabled": True, "runs": 200}}


def artifact_path(name: str) -> Path:
    key = (SOURCES / f"{name}.sol").read_bytes() + json.dumps(SETTINGS, sort_keys=True).encode()
    return ARTIFACTS / f"{name}-{hashlib.sha256(key).hexdigest()[:16]}.json"


def load(name: str) -> dict[str, Any]:
    """The compiled contract: abi, bytecode (0x...), methodIdentifiers (signature -> selector hex)."""
    path = artifact_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: run scripts/install-devnet.sh (make install-devnet)")
    return json.loads(path.read_text())


def compile_contract(name: str) -> Path:
    path = artifact_path(name)
    if path.exists():
        return path
    source = f"{name}.sol"
    request = {
        "language": "Solidity",
        "sources": {source: {"content": (SOURCES / source).read_text()}},
        "settings": {
            **SETTINGS,
            "outputSelection": {source: {name: ["abi", "evm.bytecode.object", "evm.methodIdentifiers"]}},
        },
    }
    run = subprocess.run(["node", str(layout.SOLCJS), "--standard-json"], input=json.dumps(request),
                         capture_output=True, text=True, check=False, timeout=300)
    # solcjs prints a banner line before the JSON in some versions; the JSON is the last line.
    try:
        answer = json.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"solcjs failed ({run.returncode}): {run.stderr or run.stdout}") from None
    errors = [e for e in answer.get("errors", []) if e.get("severity") == "error"]
    for err in answer.get("errors", []):
        print(err.get("formattedMessage", err), file=sys.stderr)
    if errors:
        raise SystemExit(f"solidity: {name} does not compile")
    out = answer["contracts"][source][name]
    version = subprocess.run(["node", str(layout.SOLCJS), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    artifact = {
        "contract": name,
        "source_sha256": hashlib.sha256((SOURCES / source).read_bytes()).hexdigest(),
        "compiler": f"solcjs {version}",
        "abi": out["abi"],
        "bytecode": "0x" + out["evm"]["bytecode"]["object"],
        "methodIdentifiers": out["evm"]["methodIdentifiers"],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(artifact, indent=1))
    tmp.replace(path)
    return path


def main() -> int:
    for name in CONTRACTS:
        print(f"solidity: {name} -> {compile_contract(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
