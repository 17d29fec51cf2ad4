# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's runways on the real chain: remaining seconds per paid VM, the low-runway group that
playbooks/top_up_streams.yml tops up, and why a VM whose stream ran out is gone.

Chain time is moved with evm_increaseTime, which moves it for every stream on the chain: the VM meant to
stay long is paid for a day, so only the short one comes near its end.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from .ansible_runner import BIN, Ansible
from .devnet_helpers import http, payment_chain, plain, wait_until


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _list(ansible: Ansible, config: Path) -> dict[str, Any]:
    out = config.with_suffix(".json")
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(config), "--list", "--output", str(out)],
                          env=ansible.env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    return plain(json.loads(out.read_text()))


def _low(listing: dict[str, Any]) -> list[str]:
    return sorted(listing.get("golem_runway_low", {}).get("hosts", []))


def _recap(stdout: str) -> dict[str, str]:
    return dict(re.findall(r"^(\S+)\s+: (ok=.*)$", stdout, flags=re.MULTILINE))


def test_runways_the_low_group_the_top_up_playbook_and_a_stream_that_ran_out(
        ansible: Ansible, providers, tmp_path: Path) -> None:
    chain = payment_chain()
    short, long = _name("short"), _name("long")
    streams: dict[str, int] = {}
    try:
        for name, provider, hours in ((short, providers["se"], 2), (long, providers["us"], 24)):
            made = ansible.module("golem_vm", {"name": name, "provider_id": provider["provider_id"],
                                               "payment_hours": hours})
            assert not made["failed"], made.get("msg")
            streams[name] = made["stream"]["stream_id"]
        config = tmp_path / "golem.yml"
        config.write_text(json.dumps({"plugin": "golem.vm.golem", "refresh": True, "refresh_timeout": 120,
                                      "statuses": [], "runway_threshold_hours": 1.5}))

        before = chain.block_time()
        listing = _list(ansible, config)
        after = chain.block_time()
        for name, stream_id in streams.items():
            host = listing["_meta"]["hostvars"][name]
            stop = chain.stream(stream_id)["stopTime"]
            assert host["golem_stream_id"] == stream_id and host["golem_stream_error"] is None, host
            assert stop - after <= host["golem_stream_remaining_seconds"] <= stop - before, "the chain's own runway"
        assert _low(listing) == [], "2 h and 24 h are both above 1.5 h"

        chain.advance(2400)  # the short VM has about 80 min left: below 1.5 h; the long one a day less 40 min
        listing = _list(ansible, config)
        assert _low(listing) == [short]
        assert listing["_meta"]["hostvars"][short]["golem_stream_remaining_seconds"] < 5400

        short_before, long_before = chain.stream(streams[short]), chain.stream(streams[long])
        play = ansible.playbook("golem.vm.top_up_streams", "-i", str(config), "-e", "top_up_runway_hours=3")
        assert play.returncode == 0, play.stdout[-3000:] + play.stderr[-2000:]
        recap = _recap(play.stdout)
        assert list(recap) == [short] and "changed=1" in recap[short], play.stdout[-2000:]
        short_after = chain.stream(streams[short])
        paid = short_after["deposit"] - short_before["deposit"]
        assert paid > 0 and short_after["stopTime"] - short_before["stopTime"] == paid // short_after["ratePerSecond"]
        assert chain.stream(streams[long]) == long_before, "a VM with a long runway is not paid for"
        assert _low(_list(ansible, config)) == []
        again = ansible.playbook("golem.vm.top_up_streams", "-i", str(config), "-e", "top_up_runway_hours=3")
        assert again.returncode == 0 and "changed=1" not in again.stdout, again.stdout[-2000:]

        # Past the short stream's end: its provider deletes the VM, and the inventory says why it is gone.
        chain.advance(3 * 3600 + 10)
        se_url = providers["se"]["url"]
        wait_until(lambda: http("GET", f"{se_url}/api/v1/vms/{short}")[0] == 404, timeout=120, what="the monitor")
        listing = _list(ansible, config)
        gone, alive = listing["_meta"]["hostvars"][short], listing["_meta"]["hostvars"][long]
        assert gone["golem_status"] == "missing" and gone["golem_stream_remaining_seconds"] == 0
        assert re.fullmatch(rf"its payment stream {streams[short]} ran out at chain time \d+, and a paying provider "
                            "deletes a VM whose stream has ended", gone["golem_missing_reason"]), gone
        assert alive["golem_status"] == "running" and alive["golem_missing_reason"] is None
        assert alive["golem_stream_remaining_seconds"] > 12 * 3600
    finally:
        for name in (short, long):
            ansible.module("golem_vm", {"name": name, "state": "absent"})
