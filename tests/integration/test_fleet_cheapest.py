# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""provider_selection: cheapest against three paying providers in one country at three prices, each with the free
room its advert states: members fill the cheapest first up to its room, then the next; what each stream pays on
chain is what check mode billed; a re-run changes nothing."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import payment_chain, running_vms

SPARES = ("nl-low", "nl-mid", "nl-high")
SIZE = {"cpu": 1, "memory": 2, "storage": 10}
# The spares' GLM prices a month (devnet/layout.py) for SIZE: per core, per GB RAM, per GB disk.
MONTHLY = {"nl-low": 12 + 4 * 2 + 0.2 * 10, "nl-mid": 16 + 6 * 2 + 0.3 * 10, "nl-high": 24 + 10 * 2 + 0.5 * 10}
# Where the 5 members go: nl-low's and nl-mid's adverts have room for 2 of SIZE (2 CPUs free), nl-high's for 8.
EXPECTED = {"nl-low": 2, "nl-mid": 2, "nl-high": 1}


def _rows(ansible: Ansible, prefix: str) -> dict[str, dict]:
    with closing(sqlite3.connect(ansible.state_path)) as db:
        found = db.execute("SELECT name, config FROM vms WHERE name LIKE ?", (f"{prefix}-%",)).fetchall()
    return {name: json.loads(config) for name, config in found}


def test_cheapest_fills_providers_in_price_order_within_their_room(ansible: Ansible, spares) -> None:
    payments = payment_chain()
    key_of = {p["provider_id"]: k for k, p in spares.items()}
    name = f"cheap-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "count": 5, "countries": ["NL"], "provider_selection": "cheapest",
            "discovery_backend": "central", "payment_hours": 1, "wait": False, **SIZE}
    try:
        plan = ansible.module("golem_fleet", args, check=True)
        assert not plan["failed"] and plan["changed"], plan.get("msg")
        planned = {vm["name"]: key_of[vm["provider_id"]] for vm in plan["vms"]}
        assert sorted(planned.values()) == sorted(k for k, n in EXPECTED.items() for _each in range(n))
        bill = plan["bill"]["members"]
        assert sorted(bill) == sorted(planned)
        assert plan["glm_per_month_total"] == pytest.approx(sum(MONTHLY[k] for k in planned.values()))
        assert not any(n.startswith(f"{name}-") for n in running_vms()), "check mode creates nothing"

        made = ansible.module("golem_fleet", args)
        assert not made["failed"], made.get("msg")
        placed = {vm["name"]: key_of[vm["provider_id"]] for vm in made["vms"]}
        assert placed == planned, "the run places members where check mode said"
        # Price order within room: the cheapest is full before the next is used, the dearest takes the rest.
        counts = {k: sorted(placed.values()).count(k) for k in SPARES}
        assert counts == EXPECTED
        for vm in made["vms"]:
            assert vm["glm_per_month"] == pytest.approx(MONTHLY[placed[vm["name"]]])
        assert made["glm_per_month_total"] == pytest.approx(sum(MONTHLY[k] for k in placed.values()))
        # The price actually paid: each stream streams at the rate check mode billed, to the provider it runs on.
        rows = _rows(ansible, name)
        assert sorted(rows) == sorted(placed)
        for member, row in rows.items():
            stream = payments.stream(row["stream_id"])
            assert stream["ratePerSecond"] == bill[member]["rate_wei_per_second"]
            assert stream["recipient"].lower() == spares[placed[member]]["provider_id"].lower()
            assert row["glm_per_month"] == pytest.approx(MONTHLY[placed[member]]), "the row keeps the price paid"
        rates = {k: {payments.stream(rows[m]["stream_id"])["ratePerSecond"] for m, p in placed.items() if p == k}
                 for k in SPARES}
        assert max(rates["nl-low"]) < min(rates["nl-mid"]) and max(rates["nl-mid"]) < min(rates["nl-high"])

        again = ansible.module("golem_fleet", args)
        assert not again["failed"] and again["changed"] is False, again.get("msg") or again["actions"]
    finally:
        gone = ansible.module("golem_fleet", {**args, "count": 0})
        assert not gone["failed"], gone.get("msg")
    assert not any(n.startswith(f"{name}-") for n in running_vms())
