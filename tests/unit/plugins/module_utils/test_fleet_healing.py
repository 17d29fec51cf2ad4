# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet that heals itself: members whose provider stopped answering and left discovery are abandoned (their
streams terminated, their rows kept) and replaced; abandoned rows are settled when their provider answers again.
The fake providers and discovery are test_fleet's; the real network is tests/integration/test_healing.py."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from test_fleet import ADS, SE1, SE2, US1, FakeDiscovery, Network, fleet, record
from test_fleet import store  # noqa: F401  pylint: disable=unused-import

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError, ProviderError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.history import read_history
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import StateStore
from ansible_collections.golem.vm.plugins.module_utils.vm.create_hooks import CreateHooks
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet import Fleet
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_plan import FLEET_LABEL, REPLACES_LABEL, plan
from ansible_collections.golem.vm.plugins.module_utils.vm.healing import Healing, check_duration
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy

WITHOUT_US = [ad for ad in ADS if ad.ip_address != US1]


class FakePayments(CreateHooks):
    """What Healing asks of the payments: which rows hold a stream of ours, and terminating one."""

    given_stream = None
    can_pay = True
    max_glm_per_month = 500.0
    hours = 1

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.terminated: list[str] = []
        self.report: dict[str, dict[str, Any]] = {}

    def warm_up(self) -> None:
        pass

    def owns_stream(self, record: Any) -> bool:
        return bool(record.config.get("stream_opened")) and not record.config.get("stream_terminated")

    def release(self, record: Any, act: Any) -> int:
        if self.fail:
            raise PaymentError("the chain at http://127.0.0.1:8545 did not answer")
        self.terminated.append(record.name)
        act(f"terminated payment stream {record.config['stream_id']}: 1000 wei back")
        self.report[record.name] = {"terminate_tx": "0x" + "cd" * 32}
        return 1000


def members(store: StateStore, rows: dict[str, str], *, silent_since: float | None = None) -> None:
    """Rows ``name -> provider IP``, paid by streams of ours; the US ones silent since ``silent_since``."""
    for number, (name, ip) in enumerate(rows.items()):
        rec = record(name, ip)
        rec.config.update(labels={FLEET_LABEL: "web"}, stream_id=number + 1, stream_opened=True)
        if ip == US1 and silent_since is not None:
            rec.config["unreachable_since"] = int(silent_since)
        store.upsert(rec)


def healing_fleet(store: StateStore, net: Network, count: int, *, ads: list[Any], replace_after: float | None = 60,
                  payments: FakePayments | None = None, check: bool = False) -> Fleet:
    run = fleet(store, net, count, check=check, discovery=FakeDiscovery(ads))
    if payments is not None:
        run.services = replace(run.services, lazy_payments=Lazy(lambda: payments))
    listed = {ad.provider_id for ad in ads}
    run.healing = Healing(run.services, replace_after=replace_after,
                          advertised=lambda rec: rec.provider_id in listed)
    return run


def by_status(store: StateStore) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in store.list():
        found.setdefault(row.status, []).append(row.name)
    return {status: sorted(names) for status, names in found.items()}


def four(store: StateStore, net: Network, *, silent_since: float | None = None) -> None:
    rows = {"web-01": SE1, "web-02": US1, "web-03": SE2, "web-04": US1}
    members(store, rows, silent_since=silent_since)
    for name, ip in rows.items():
        net.vms[ip].add(name)


def test_a_first_silence_is_recorded_on_the_row_and_cleared_by_the_next_answer(store: StateStore) -> None:
    net = Network()
    four(store, net)
    net.unreachable.add(US1)
    res = healing_fleet(store, net, 4, ads=ADS, replace_after=None).run()
    assert not res.changed and res.created == [] and res.abandoned == []
    row = store.get("web-02")
    assert row.status == "running" and time.time() - row.config["unreachable_since"] < 60
    assert [e["event"] for e in read_history(row.config)] == ["unreachable"]
    net.unreachable.clear()
    healing_fleet(store, net, 4, ads=ADS, replace_after=None).run()
    row = store.get("web-02")
    assert "unreachable_since" not in row.config
    assert [e["event"] for e in read_history(row.config)] == ["unreachable", "answered"]


def test_a_silent_provider_gone_from_discovery_is_abandoned_and_replaced_once(store: StateStore) -> None:
    net, paying = Network(), FakePayments()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying).run()
    assert not res.failures and res.changed
    assert by_status(store) == {"abandoned": ["web-02", "web-04"], "running": ["web-01", "web-03", "web-05", "web-06"]}
    # The streams of the abandoned members were terminated; their stand-ins are on the providers that answer.
    assert sorted(paying.terminated) == ["web-02", "web-04"]
    assert {store.get(n).provider_ip for n in ("web-05", "web-06")} <= {SE1, SE2}
    assert {(a["name"], a["replaced_by"], a["refund_wei"]) for a in res.abandoned} == {
        ("web-02", "web-05", 1000), ("web-04", "web-06", 1000)}
    assert all("advert is gone from discovery" in a["why"] for a in res.abandoned)
    gone = store.get("web-02")
    assert gone.config["stream_terminated"] is True
    assert [e["event"] for e in read_history(gone.config)] == ["abandoned", "stream_terminated"]
    assert read_history(gone.config)[1]["wei"] == 1000
    stand_in = store.get("web-05")
    assert stand_in.labels[REPLACES_LABEL] == "web-02" and stand_in.labels[FLEET_LABEL] == "web"
    assert [e["event"] for e in read_history(stand_in.config)] == ["replacement"]
    # A re-run changes nothing: four members run, the abandoned rows wait for their provider.
    net.calls.clear()
    again = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying).run()
    assert not again.changed and again.created == [] and again.abandoned == [] and again.settled == []
    assert net.writes() == [] and sorted(paying.terminated) == ["web-02", "web-04"]


def test_a_provider_still_advertised_or_silent_for_less_is_never_given_up_on(store: StateStore) -> None:
    net = Network()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    still_listed = healing_fleet(store, net, 4, ads=ADS)
    res = still_listed.run()
    assert res.abandoned == [] and res.created == [] and not res.changed
    assert any("still advertises" in w for w in still_listed.warnings)  # type: ignore[attr-defined]
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, replace_after=3600).run()
    assert res.abandoned == [] and by_status(store) == {"running": ["web-01", "web-02", "web-03", "web-04"]}


def test_abandoned_rows_are_settled_when_their_provider_answers_again(store: StateStore) -> None:
    net, paying = Network(), FakePayments()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying).run()
    # US is back: web-02 is still there (it was replaced: deleted), web-04 is gone (a proven 404: forgotten).
    net.unreachable.clear()
    net.vms[US1].discard("web-04")
    res = healing_fleet(store, net, 4, ads=ADS, payments=paying).run()
    assert not res.failures and res.changed and res.created == []
    assert sorted((s["name"], s["vm_deleted"]) for s in res.settled) == [("web-02", True), ("web-04", False)]
    assert (US1, "delete", "web-02") in net.calls and "web-02" not in net.vms[US1]
    assert by_status(store) == {"running": ["web-01", "web-03", "web-05", "web-06"]}
    # The stand-ins stay members although their indices are over count; nothing more happens.
    net.calls.clear()
    again = healing_fleet(store, net, 4, ads=ADS, payments=paying).run()
    assert not again.changed and net.writes() == []


def test_a_stream_that_cannot_be_terminated_keeps_the_row_abandoned_until_a_later_run_does(store: StateStore) -> None:
    net = Network()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=FakePayments(fail=True)).run()
    assert set(res.failures) == {"web-02", "web-04"} and "did not answer" in res.failures["web-02"]
    assert by_status(store)["abandoned"] == ["web-02", "web-04"]
    assert not store.get("web-02").config.get("stream_terminated")  # the row still records the stream to settle
    paying = FakePayments()
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying).run()
    assert sorted(paying.terminated) == ["web-02", "web-04"] and not res.failures
    assert res.settled == [] and store.get("web-02").config["stream_terminated"] is True  # its provider: still silent


def test_check_mode_shows_the_abandonment_and_the_stand_ins_and_changes_nothing(store: StateStore) -> None:
    net, paying = Network(), FakePayments()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    before = [(r.name, r.status, dict(r.config)) for r in store.list()]
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying, check=True).run()
    assert res.changed and sorted(a["name"] for a in res.abandoned) == ["web-02", "web-04"]
    assert sorted(res.created) == ["web-05", "web-06"]
    assert any(a.startswith("would abandon fleet member web-02") for a in res.actions)
    assert any("would terminate payment stream 2 of VM web-02" in a for a in res.actions)
    assert [(r.name, r.status, dict(r.config)) for r in store.list()] == before
    assert net.writes() == [] and paying.terminated == []


def test_the_plan_keeps_stand_ins_and_holds_abandoned_indices() -> None:
    def row(name: str, status: str = "running", replaces: str | None = None) -> Any:
        rec = record(name)
        rec.config["labels"] = {FLEET_LABEL: "web", **({REPLACES_LABEL: replaces} if replaces else {})}
        rec.status = status
        return rec

    abandoned = [row("web-02", "abandoned")]
    live = [row("web-01"), row("web-03"), row("web-04"), row("web-05", replaces="web-02")]
    todo = plan("web", 4, live, abandoned)
    assert sorted(todo.keep) == [1, 2, 3, 4] and todo.keep[2].name == "web-05"
    assert todo.create == [] and todo.destroy == []
    # The stand-in stands at the index of the member it replaced: scaling down removes web-04, the highest;
    # scaling up skips the index the abandoned row holds.
    assert [r.name for r in plan("web", 3, live, abandoned).destroy] == ["web-04"]
    assert plan("web", 6, live, abandoned).create == [6, 7]
    assert plan("web", 5, live, []).create == [2]
    # An unlabelled row over count is surplus, as before.
    assert [r.name for r in plan("web", 4, [row("web-01"), row("web-09")], []).destroy] == ["web-09"]


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("1d", 86400),
                                               (" 2H ", 7200), (None, None)])
def test_durations(text: str | None, seconds: float | None) -> None:
    assert check_duration(text, "replace_unreachable_after") == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "10x", "m", "1e3", "10 minutes", ""])
def test_a_bad_duration_is_named(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_duration(text, "replace_unreachable_after")
    assert err.value.field == "replace_unreachable_after" and err.value.value == text


def test_a_provider_already_known_silent_is_asked_once_without_retries(store: StateStore) -> None:
    net = Network()
    four(store, net)
    net.unreachable.add(US1)
    healing_fleet(store, net, 4, ads=ADS, replace_after=None).run()
    assert {tuple(c.options.items()) for c in net.clients if c.ip == US1} == {()}  # the first failure: retried
    net.clients.clear()
    healing_fleet(store, net, 4, ads=ADS, replace_after=None).run()
    assert {tuple(c.options.items()) for c in net.clients if c.ip == US1} == {(("retries", 0),)}
    assert {tuple(c.options.items()) for c in net.clients if c.ip == SE1} == {()}  # one that answers: as always


def one_vm(store: StateStore, net: Network, *, ads: list[Any], abandon_after: float | None,
           payments: FakePayments | None = None) -> Lifecycle:
    """golem_vm's Lifecycle for web-02, with abandon_unreachable_after."""
    run = healing_fleet(store, net, 0, ads=ads, payments=payments)
    want = replace(run.template, name="web-02", state="present", labels=None)
    listed = {ad.provider_id for ad in ads}
    return Lifecycle(want, run.services, candidates=lambda preferred: [Placement(SE1, 7466, "0xse1", "SE")],
                     healing=Healing(run.services, replace_after=abandon_after, option="abandon_unreachable_after",
                                     advertised=lambda rec: rec.provider_id in listed))


def test_golem_vm_gives_its_vm_up_only_when_asked_and_makes_it_anew_once_the_provider_answers(
        store: StateStore) -> None:
    net, paying = Network(), FakePayments()
    four(store, net)
    net.unreachable.add(US1)
    # Without the option a silent provider fails the task and nothing is written.
    before = dict(store.get("web-02").config)
    with pytest.raises(ProviderError):
        one_vm(store, net, ads=WITHOUT_US, abandon_after=None, payments=paying).run(store.get("web-02"))
    assert store.get("web-02").config == before
    # With it: the first silence is recorded and the task fails; once due, the VM is given up on.
    with pytest.raises(ProviderError):
        one_vm(store, net, ads=WITHOUT_US, abandon_after=60, payments=paying).run(store.get("web-02"))
    assert isinstance(store.get("web-02").config["unreachable_since"], int)
    store.set_status("web-02", "running", unreachable_since=int(time.time()) - 600)
    life = one_vm(store, net, ads=WITHOUT_US, abandon_after=60, payments=paying)
    final = life.run(store.get("web-02"))
    assert final.status == "abandoned" and paying.terminated == ["web-02"]
    assert life.out.abandoned["refund_wei"] == 1000 and "abandon_unreachable_after 60 s" in life.out.abandoned["why"]
    assert net.writes() == []  # nothing was created in its place
    # While its provider is silent, a run changes nothing; once it answers, the VM is deleted there and made anew.
    with pytest.raises(ProviderError, match="still does not answer"):
        one_vm(store, net, ads=WITHOUT_US, abandon_after=60, payments=paying).run(store.get("web-02"))
    net.unreachable.clear()
    again = one_vm(store, net, ads=ADS, abandon_after=60, payments=paying).run(store.get("web-02"))
    assert (US1, "delete", "web-02") in net.calls and again.status == "running" and again.provider_ip == SE1
    assert paying.terminated == ["web-02"], "the stream was terminated once"


def test_a_provider_lost_in_the_middle_of_the_replacement_leaves_nothing_unrecorded(store: StateStore) -> None:
    net, paying = Network(), FakePayments()
    four(store, net, silent_since=time.time() - 600)
    net.unreachable.add(US1)
    # The stand-ins' creates break off after they were sent: the VMs may exist, so their rows must stay.
    net.resetting.update({SE1, SE2})
    res = healing_fleet(store, net, 4, ads=WITHOUT_US, payments=paying).run()
    assert set(res.failures) >= {"web-05", "web-06"}
    rows = {r.name: r.status for r in store.list()}
    assert rows["web-02"] == rows["web-04"] == "abandoned" and sorted(paying.terminated) == ["web-02", "web-04"]
    assert rows["web-05"] == rows["web-06"] == "error", "a create whose answer was lost keeps its row"
    sent = {name for _ip, what, name in net.calls if what == "create"}
    assert sent <= set(rows), "every VM a create was sent for has a row"


def test_a_new_member_never_takes_the_index_a_stand_in_stands_at() -> None:
    def row(name: str, replaces: str | None = None) -> Any:
        rec = record(name)
        rec.config["labels"] = {FLEET_LABEL: "web", **({REPLACES_LABEL: replaces} if replaces else {})}
        return rec

    # web-02 was abandoned, replaced by web-05 and settled (its row gone); web-04 is lost now.
    live = [row("web-01"), row("web-03"), row("web-05", replaces="web-02")]
    todo = plan("web", 4, live, [])
    assert todo.create == [4] and todo.destroy == [], "web-02 would stand where web-05 does: the next run churns"
    again = plan("web", 4, [*live, row("web-04")], [])
    assert again.create == [] and again.destroy == [] and sorted(again.keep) == [1, 2, 3, 4]
    # A slot whose index a row still holds (abandoned) gets a stand-in over count, labelled with that slot.
    held = plan("web", 4, [row("web-01"), row("web-03"), row("web-04")], [row("web-02")])
    assert held.create == [5] and held.stands_at == {5: 2}
