# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's runway_hours on the local paying network: exactly the members below it are topped up, once, as the
chain shows; check mode sends nothing and shows the bill."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing

import pytest

from .ansible_runner import Ansible
from .devnet_helpers import payment_chain


@pytest.fixture(scope="module")
def payments(devnet):
    return payment_chain()


def _streams(ansible: Ansible, prefix: str) -> dict[str, int]:
    with closing(sqlite3.connect(ansible.state_path)) as conn:
        rows = conn.execute("SELECT name, config FROM vms WHERE name LIKE ?", (f"{prefix}-%",)).fetchall()
    return {name: json.loads(config)["stream_id"] for name, config in rows}


def test_runway_hours_tops_up_exactly_the_members_below_it_once(ansible: Ansible, providers, payments) -> None:
    name = f"runway-{uuid.uuid4().hex[:6]}"
    args = {"name": name, "count": 3, "countries": ["SE", "US"], "payment_hours": 1, "wait": False}
    try:
        made = ansible.module("golem_fleet", args)
        assert not made["failed"], made.get("msg")
        streams = _streams(ansible, name)
        assert len(streams) == 3
        # One member already has a long runway: the fleet's top-up leaves it alone.
        long = sorted(streams)[0]
        assert not ansible.module("golem_stream", {"name": long, "runway_hours": 24})["failed"]
        low = sorted(streams)[1:]
        before = {n: payments.stream(s) for n, s in streams.items()}

        quote = ansible.module("golem_fleet", {**args, "runway_hours": 12}, check=True)
        assert not quote["failed"] and quote["changed"], quote.get("msg")
        assert sorted(quote["top_up_bill"]["members"]) == low
        assert {n: payments.stream(s) for n, s in streams.items()} == before, "check mode sends nothing"

        paid = ansible.module("golem_fleet", {**args, "runway_hours": 12})
        assert not paid["failed"] and paid["changed"], paid.get("msg")
        topped = {t["name"]: t for t in paid["topped_up"]}
        assert sorted(topped) == low
        for member in low:
            after, was = payments.stream(streams[member]), before[member]
            assert after["deposit"] - was["deposit"] == topped[member]["wei"], "what was paid is on the chain"
            assert after["stopTime"] - was["stopTime"] == topped[member]["seconds_added"]
            assert topped[member]["wei"] == topped[member]["seconds_added"] * after["ratePerSecond"]
        assert payments.stream(streams[long]) == before[long]
        # The bill quoted what was paid, but for the seconds of runway that passed between the two runs.
        quoted, rate = quote["top_up_bill"]["members"][low[0]]["wei"], before[low[0]]["ratePerSecond"]
        assert 0 <= topped[low[0]]["wei"] - quoted <= 300 * rate

        again = ansible.module("golem_fleet", {**args, "runway_hours": 12})
        assert not again["failed"] and again["changed"] is False and again["topped_up"] == [], again["actions"]
    finally:
        ansible.module("golem_fleet", {"name": name, "count": 0})
