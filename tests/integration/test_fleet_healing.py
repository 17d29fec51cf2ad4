# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A paid fleet whose US provider vanishes (stopped, its Golem Base advert expired) heals itself on the local
network: US's members are abandoned, their streams terminated (the refund read from the chain), stand-ins run
on SE; when US comes back its members are settled, and nothing is left that no row holds."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import control, payment_chain, running_vms, wait_until
from .golem_base_helpers import chain, golem_base, head
from .payment_chain import ZERO, words

TERMINATED = "Terminated"


def _adverts_of(provider_id: str) -> list[dict]:
    return golem_base("golembase_queryEntities", f'golem_type="provider" && golem_provider_id="{provider_id}"')


def _expiry(provider_id: str) -> int:
    return max(golem_base("golembase_getEntityMetaData", hit["key"])["expiresAtBlock"]
               for hit in _adverts_of(provider_id))


def _fresh(provider_id: str, blocks: int) -> bool:
    hits = _adverts_of(provider_id)
    return bool(hits) and max(golem_base("golembase_getEntityMetaData", h["key"])["expiresAtBlock"]
                              for h in hits) > head() + blocks


def _rows(ansible: Ansible, prefix: str) -> dict[str, dict]:
    with sqlite3.connect(ansible.state_path) as db:
        found = db.execute("SELECT name, status, config FROM vms WHERE name LIKE ?", (f"{prefix}-%",)).fetchall()
    return {name: {"status": status, **json.loads(config)} for name, status, config in found}


@pytest.fixture(scope="module")
def payments(devnet):
    return payment_chain()


def test_a_vanished_provider_is_abandoned_replaced_and_settled_when_it_returns(
        ansible: Ansible, providers, payments) -> None:
    se, us = providers["se"], providers["us"]
    name = f"heal-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "count": 4, "countries": ["SE", "US"], "replace_unreachable_after": "1s"}
    try:
        made = ansible.module("golem_fleet", args)
        assert not made["failed"], made.get("msg")
        on_us = sorted(vm["name"] for vm in made["vms"] if vm["provider_ip"] == us["ip"])
        assert len(on_us) == 2
        streams = {n: r["stream_id"] for n, r in _rows(ansible, name).items()}
        assert all(isinstance(s, int) for s in streams.values()), "every member is paid by a stream"

        control("stop", name="us")
        try:
            # Stopping does not delete the advert: nobody renews it. Mine to its expiry; SE's advertiser
            # writes its own again if that ran out too.
            expires = _expiry(us["provider_id"])
            chain("anvil_mine", hex(max(1, expires - head() + 1)))
            wait_until(lambda: not _adverts_of(us["provider_id"]), timeout=30, what="US's advert to expire")
            wait_until(lambda: _fresh(se["provider_id"], 20), timeout=150, interval=2, what="SE advertised")

            first = ansible.module("golem_fleet", args)
            assert not first["failed"], first.get("msg")
            assert first["abandoned"] == [] and first["created"] == [], "the first silence is only recorded"
            assert all(isinstance(_rows(ansible, name)[n]["unreachable_since"], int) for n in on_us)
            time.sleep(1.5)  # longer than replace_unreachable_after: the next run gives up on US's members

            healed = ansible.module("golem_fleet", args)
            assert not healed["failed"], healed.get("msg")
            assert sorted(a["name"] for a in healed["abandoned"]) == on_us
            rows = _rows(ansible, name)
            assert sorted(n for n, r in rows.items() if r["status"] == "abandoned") == on_us
            running = sorted(n for n, r in rows.items() if r["status"] == "running")
            assert len(running) == 4 and all(rows[n]["provider_id"] == se["provider_id"] for n in healed["created"])
            assert sorted(healed["created"]) == sorted(a["replaced_by"] for a in healed["abandoned"])
            for entry in healed["abandoned"]:
                stream_id = streams[entry["name"]]
                assert payments.stream(stream_id)["recipient"] == ZERO, "the abandoned member's stream is terminated"
                tx = next(e["tx"] for e in rows[entry["name"]]["history"] if e["event"] == "stream_terminated")
                refund = words(payments.events(payments.receipt(tx), TERMINATED)[0])[0]
                assert refund == entry["refund_wei"] > 0, "the refund reported is the one the chain paid back"

            again = ansible.module("golem_fleet", args)
            assert not again["failed"] and again["changed"] is False, again.get("msg") or again["actions"]
        finally:
            control("start", name="us")
        wait_until(lambda: _fresh(us["provider_id"], 20), timeout=150, interval=2, what="US advertised again")

        settled = ansible.module("golem_fleet", args)
        assert not settled["failed"], settled.get("msg")
        assert sorted(s["name"] for s in settled["settled"]) == on_us and settled["created"] == []
        rows = _rows(ansible, name)
        assert sorted(rows) == sorted(running) and all(r["status"] == "running" for r in rows.values())
        # Nothing is left that no row holds: no VM of the fleet, no open stream of a forgotten member.
        assert sorted(n for n in running_vms() if n.startswith(f"{name}-")) == sorted(rows)
        held = {r["stream_id"] for r in rows.values()}
        assert all(payments.stream(s)["recipient"] == ZERO for s in set(streams.values()) - held)
        assert ansible.module("golem_fleet", args)["changed"] is False
    finally:
        ansible.module("golem_fleet", {"name": name, "count": 0})
