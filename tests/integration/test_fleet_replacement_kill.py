# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A provider killed in the middle of a replacement leaves nothing unrecorded: a paid fleet on one provider that
vanishes is replaced on another, which is SIGKILLed the moment it launches the first stand-in. After that run every
VM of the fleet has a row and every stream the collection opened is on a row or terminated; once the killed
provider is back the fleet converges, and once the vanished one is back its members are settled."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import closing

from .ansible_runner import Ansible
from .devnet_helpers import control, payment_chain, running_vms, status
from .payment_chain import ZERO


def _rows(ansible: Ansible, prefix: str) -> dict[str, dict]:
    with closing(sqlite3.connect(ansible.state_path)) as db:
        found = db.execute("SELECT name, status, config FROM vms WHERE name LIKE ?", (f"{prefix}-%",)).fetchall()
    return {name: {"status": status, **json.loads(config)} for name, status, config in found}


def _unrecorded(ansible: Ansible, prefix: str, streams: range, payments) -> dict[str, list]:
    """What the collection would have lost: VMs of the fleet no row holds, open streams no row holds."""
    rows = _rows(ansible, prefix)
    held = {r.get("stream_id") for r in rows.values()}
    return {"vms": sorted(n for n in running_vms() if n.startswith(f"{prefix}-") and n not in rows),
            "streams": [s for s in streams if s not in held and payments.stream(s)["recipient"] != ZERO]}


def _alive(key: str) -> bool:
    return next(p["alive"] for p in status()["spare_providers"] if p["key"] == key)


def test_a_provider_killed_mid_replacement_leaves_nothing_unrecorded(ansible: Ansible, spares) -> None:
    payments = payment_chain()
    key_of = {p["provider_id"]: k for k, p in spares.items()}
    name = f"kill-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "count": 2, "countries": ["NL"], "provider_selection": "cheapest",
            "discovery_backend": "central", "replace_unreachable_after": "1s", "payment_hours": 1, "wait": False,
            "cpu": 1, "memory": 2, "storage": 10}
    first_stream = payments.next_stream_id()
    try:
        made = ansible.module("golem_fleet", args)
        assert not made["failed"], made.get("msg")
        assert sorted(key_of[vm["provider_id"]] for vm in made["vms"]) == ["nl-low", "nl-low"]

        control("stop", name="nl-low")  # gone, and its advert withdrawn
        try:
            noticed = ansible.module("golem_fleet", args)
            assert not noticed["failed"] and noticed["abandoned"] == [], noticed.get("msg")
            time.sleep(1.5)  # longer than replace_unreachable_after

            # nl-mid is the cheapest left with room for both stand-ins; it dies as it launches the first.
            control("kill-on-launch", name="nl-mid")
            faulted = ansible.module("golem_fleet", args)
            assert "Traceback" not in faulted["_stderr"], faulted["_stderr"]
            assert not _alive("nl-mid"), "nl-mid was not killed during the replacement"
            assert sorted(a["name"] for a in faulted["abandoned"]) == sorted(vm["name"] for vm in made["vms"])
            streams = range(first_stream, payments.next_stream_id())
            assert _unrecorded(ansible, name, streams, payments) == {"vms": [], "streams": []}
            for entry in faulted["abandoned"]:
                assert payments.stream(_rows(ansible, name)[entry["name"]]["stream_id"])["recipient"] == ZERO

            control("start", name="nl-mid")
            healed = ansible.module("golem_fleet", args)
            assert not healed["failed"], healed.get("msg")
            rows = _rows(ansible, name)
            running = sorted(n for n, r in rows.items() if r["status"] == "running")
            assert len(running) == 2 and all(key_of[rows[n]["provider_id"]] != "nl-low" for n in running)
            streams = range(first_stream, payments.next_stream_id())
            assert _unrecorded(ansible, name, streams, payments) == {"vms": [], "streams": []}
            again = ansible.module("golem_fleet", args)
            assert not again["failed"] and again["changed"] is False, again.get("msg") or again["actions"]
        finally:
            control("start", name="nl-low")
            control("start", name="nl-mid")

        settled = ansible.module("golem_fleet", args)
        assert not settled["failed"], settled.get("msg")
        assert sorted(s["name"] for s in settled["settled"]) == sorted(vm["name"] for vm in made["vms"])
        streams = range(first_stream, payments.next_stream_id())
        assert _unrecorded(ansible, name, streams, payments) == {"vms": [], "streams": []}
        assert sorted(n for n in running_vms() if n.startswith(f"{name}-")) == sorted(_rows(ansible, name))
    finally:
        gone = ansible.module("golem_fleet", {**args, "count": 0})
    assert not gone["failed"], gone.get("msg")
    assert _rows(ansible, name) == {} and not any(n.startswith(f"{name}-") for n in running_vms())
    streams = range(first_stream, payments.next_stream_id())
    assert [s for s in streams if payments.stream(s)["recipient"] != ZERO] == [], "a stream was left open"
