# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_fleet's logic: keep exactly ``count`` VMs named ``<prefix>-NN`` in the state file.

* Membership is a label the fleet sets on its VMs (``golem.vm/fleet: <name>``), not the name alone:
  a ``web-1`` that golem_vm created is not fleet ``web``'s to destroy. Rows written before labels
  existed (no ``labels`` in their config) are adopted by the old rule, the name, once, with a warning.

* Membership comes from the state file; with ``verify`` each running member is asked for by name
  (``GET /vms/NAME``, never the list: listing a provider kills its pending creates),
  and a member the provider no longer has is created again. Without ``verify`` a re-run with
  nothing to do makes no call at all.
* Discovery is asked once per run (it rate-limits per client IP); every new VM is placed
  round-robin over the matching providers, interleaved by country (or, with a provider_selection, fills
  each provider's advertised room in that order), and falls over to the rest.
* Each create or destroy is one Lifecycle in its own thread with its own provider clients
  (requests Sessions are not shared between threads); all share one Deadline and one
  ProviderIdentity, so each provider proves who it is once, whatever the number of members.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import bill_of, over_cap, stream_terms
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, IdentityError, PaymentError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import lookup
from ansible_collections.golem.vm.plugins.module_utils.state.history import event, with_event
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED, VMStatus
from ansible_collections.golem.vm.plugins.module_utils.vm.healing import Healing, unanswered
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_plan import (
    FLEET_LABEL,
    REPLACES_LABEL,
    Plan,
    member_index,
    member_name,
    plan,
)
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.outcome import Outcome
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement, recorded_placement
from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Fill, candidates_for, fill, fitting_providers, spread
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.want import Want, check_create_inputs

# A worker freed late starts the next queued VM late; a few more GETs cost less (a create is running
# after ~1 s).
FLEET_POLL_MAX = 0.3
# Row statuses of a member whose create may not have finished.
UNSETTLED = (VMStatus.CREATING.value, VMStatus.ERROR.value)


def discover(discovery: Any, spec: ResourceSpec, *, provider_port: int, countries: list[str] | None,
             platform: str | None, warn: Callable[[str], None],
             max_glm_per_month: float | None = None, strategy: str | None = None) -> list[Placement] | Fill:
    """One discovery call for the whole fleet, spread over providers and countries (round-robin, or with
    ``strategy`` filling each provider's room in that order); providers over the price cap are left out
    (with a warning) and never contacted."""
    fitting = fitting_providers(discovery, spec, provider_port=provider_port, countries=countries,
                                platform=platform, warn=warn, max_glm_per_month=max_glm_per_month)
    if strategy is not None:
        return fill(fitting, countries, provider_port, spec, strategy)
    return spread(fitting, countries, provider_port, spec)


@dataclass
class FleetResult:
    changed: bool = False
    created: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    attempted: int = 0
    planned: dict[str, VMRecord] = field(default_factory=dict)  # check mode: what would be created
    bills: dict[str, dict[str, Any]] = field(default_factory=dict)  # check mode: what each new member would pay
    abandoned: list[dict[str, Any]] = field(default_factory=list)  # members given up on: why, refund, stand-in
    settled: list[dict[str, Any]] = field(default_factory=list)  # abandoned rows whose provider answered again

    def bill(self) -> dict[str, Any]:
        """The check-mode bill: each paying member's, and what they add up to."""
        return {"members": dict(sorted(self.bills.items())),
                "glm_per_month": round(sum(b["glm_per_month"] for b in self.bills.values()), 8),
                "deposit_wei": sum(b["deposit_wei"] for b in self.bills.values())}


class Fleet:
    def __init__(self, prefix: str, count: int, services: VMServices, *, template: Want,
                 placements: Callable[[], list[Placement] | Fill], parallelism: int, verify: bool = True,
                 healing: Healing | None = None) -> None:
        """``template`` is the Want of every member but its name, and ``template.labels`` the labels the user
        asked (None: members keep theirs; the membership label is added here); ``placements()`` asks discovery;
        ``healing`` abandons and settles members whose provider stopped answering (None: never)."""
        self.prefix = prefix
        self.count = count
        self.services = services
        self.placements = placements
        self.parallelism = parallelism
        self.verify = verify
        self.user_labels = template.labels
        self.template = replace(template, labels={**(template.labels or {}), FLEET_LABEL: prefix})
        self.result = FleetResult()
        self.healing = healing or Healing(services, replace_after=None, advertised=lambda _record: None)
        self._replacing: dict[str, str] = {}  # a new member's name -> the abandoned member it replaces
        self._stands_at: dict[str, str] = {}  # a stand-in's name -> the name of the slot it stands at

    def members(self) -> list[VMRecord]:
        """Rows labelled as this fleet's, and rows from before labels whose name fits the old rule."""
        found = []
        for record in self.services.store.list():
            if member_index(self.prefix, record.name) is None:
                continue
            labels = record.config.get("labels")
            if not isinstance(labels, dict) or labels.get(FLEET_LABEL) == self.prefix:
                found.append(record)
        return found

    def _adopt_unlabelled(self, members: list[VMRecord]) -> None:
        """Rows of fleets from before labels: adopted by name once, and labelled from now on."""
        for record in members:
            if isinstance(record.config.get("labels"), dict):
                continue
            self.services.warn(f"VM {record.name} has no labels (it was recorded before golem.vm 0.2): it is taken as a "
                               f"member of fleet {self.prefix} by its name, once, and labelled {FLEET_LABEL}={self.prefix}")
            if not self.services.check_mode:
                self.services.store.set_status(record.name, record.status, labels=dict(self.template.labels or {}))

    def _relabel(self, kept: dict[int, VMRecord]) -> None:
        """Labels asked for the fleet replace its members' (the membership label stays)."""
        if self.user_labels is None:
            return
        for record in kept.values():
            wanted = self._labels_of(record.name, record)
            if record.labels == wanted:
                continue
            self.result.changed = True
            would = "would set" if self.services.check_mode else "set"
            self.result.actions.append(f"{would} the labels of VM {record.name} to {wanted}")
            if not self.services.check_mode:
                self.services.store.set_status(record.name, record.status, labels=wanted)

    def _labels_of(self, name: str, record: VMRecord | None) -> dict[str, str]:
        """The fleet's labels, and on a stand-in (a member named over count) the label naming the slot it stands
        at, so that later runs keep it there."""
        labels = dict(self.template.labels or {})
        slot = record.labels.get(REPLACES_LABEL) if record is not None else self._stands_at.get(name)
        if slot:
            labels[REPLACES_LABEL] = slot
        return labels

    def run(self) -> FleetResult:
        current = self.members()
        self._adopt_unlabelled(current)
        abandoned = [r for r in current if r.status == ABANDONED]
        todo = plan(self.prefix, self.count, [r for r in current if r.status != ABANDONED], abandoned)
        self._note_stand_ins(todo)
        self._relabel(todo.keep)
        # A member whose create did not finish (its provider lost, the task cut short) is settled as golem_vm
        # settles it: adopted when its provider has it, else its leftovers cleared and it is created again.
        for index, record in list(todo.keep.items()):
            if record.status in UNSETTLED:
                todo.repair[index] = todo.keep.pop(index)
        for record in todo.keep.values():
            if record.status != "running":
                self.services.warn(f"fleet member {record.name} is recorded with status {record.status}; it was left alone. "
                                   "Destroy it with golem.vm.golem_vm state=absent and run again to replace it")
        if todo.create:
            # Before the first provider or discovery call, whose errors would hide what the creates lack.
            self._check_inputs(paying=not self.services.check_mode)
        if self.verify:
            self._verify(todo)
        heal: list[tuple[VMRecord, str | None]] = [*todo.abandon, *((r, None) for r in abandoned if self.verify)]
        if self.services.check_mode:
            if todo.create or todo.repair:
                self._check_inputs(paying=False)
                self._load_key()
            self._heal(heal)
            return self._plan_only(todo)
        # Destroys first: they free capacity that the creates may need.
        self._in_threads("destroy", [(r.name, r, "absent", None) for r in todo.destroy])
        # Abandoned members are given up on (their streams terminated) while their stand-ins are created.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="golem-fleet-heal") as heal_pool:
            healing = heal_pool.submit(self._heal, heal) if heal else None
            if todo.create or todo.repair:
                self._check_inputs(paying=True)  # repairs too, before discovery is asked
                if self.services.payments is not None:
                    self.services.payments.warm_up()
                placements = self.placements()
                # After discovery: one that fails or sends nonsense leaves no key pair behind.
                self._load_key()
                jobs = [(record.name if record else member_name(self.prefix, i, self.count), record, "present",
                         candidates_for(placements, i, todo.create)) for i, record in todo.rebuilt()]
                self._in_threads("create", jobs)
            if healing is not None:
                healing.result()
        return self.result

    def _heal(self, heal: list[tuple[VMRecord, str | None]]) -> None:
        """Abandon the members given up on this run (``why``) and settle abandoned rows (``why`` None), in
        parallel; one failure is reported for its member and does not stop the others."""
        if not heal:
            return

        def one(record: VMRecord, why: str | None) -> tuple[Outcome, dict[str, Any] | None, str | None]:
            out = Outcome()
            done: list[dict[str, Any] | None] = [None]

            def work() -> None:
                if why is None:
                    done[0] = self.healing.settle(record, out)
                else:
                    done[0] = self.healing.abandon(record, why, self._replacement_of(record.name), out)

            error = _guarded(work)
            return out, done[0], error

        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(heal)),
                                thread_name_prefix="golem-fleet-settle") as pool:
            answers = list(pool.map(lambda item: one(*item), heal))
        for (record, why), (out, entry, error) in zip(heal, answers):
            self.result.actions.extend(out.actions)
            self.result.changed = self.result.changed or out.changed
            if error is not None:
                self.result.attempted += 1
                self.result.failures[record.name] = error
            if why is not None:
                self.result.abandoned.append(entry or {"name": record.name, "why": why})
            elif entry is not None:
                self.result.settled.append(entry)

    def _replacement_of(self, name: str) -> str:
        return next((new for new, old in self._replacing.items() if old == name), "a new member")

    def _verify(self, todo: Plan) -> None:
        """Ask each running member's provider for it by name; move the ones it lacks to ``todo.repair``, and
        the ones given up on (healing.py) to ``todo.abandon``, with a stand-in to create for each."""
        running = {i: r for i, r in todo.keep.items() if r.status == "running"}
        if not running:
            return

        def look(record: VMRecord) -> Any:
            # A provider already known silent is asked once: its retries would only delay the rest of the run.
            client = self.services.provider_client(recorded_placement(record), **self.healing.http_options(record))
            client.set_deadline(self.services.deadline)
            try:
                return lookup(client, record.name, record.provider_id, self.services.identity)
            except GolemError as exc:
                return exc
            # Anything else is a warning too: one bad answer must not cost the whole fleet run.
            except Exception as exc:  # pylint: disable=broad-except
                return GolemError(f"{type(exc).__name__}: {exc}")

        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(running)),
                                thread_name_prefix="golem-fleet-verify") as pool:
            answers = dict(zip(running, pool.map(look, running.values())))
        for index, answer in answers.items():
            record = running[index]
            where = recorded_placement(record).describe()
            if isinstance(answer, IdentityError):
                # Not the provider it was rented from: never re-created on a foreign 404.
                self.result.attempted += 1
                self.result.failures[record.name] = answer.msg
            elif isinstance(answer, GolemError):
                why = self.healing.due(record, answer) if unanswered(answer) else None
                if why is None:
                    self.services.warn(f"could not check fleet member {record.name} on provider {where}; it was left "
                                       f"alone: {answer.msg}")
                else:
                    self._give_up(todo, index, why)
            else:
                self.healing.answered(record)
                if answer is None:
                    todo.repair[index] = todo.keep.pop(index)
                elif answer.status.value != "running":
                    self.services.warn(f"fleet member {record.name} is {answer.status.value} on provider {where}; it "
                                       "was left alone. Destroy it with golem.vm.golem_vm state=absent and run again to "
                                       "replace it")

    def _give_up(self, todo: Plan, index: int, why: str) -> None:
        """Member ``index`` is abandoned: its index stays held by its row, a stand-in takes the lowest free one."""
        record = todo.keep.pop(index)
        todo.reserved[member_index(self.prefix, record.name) or index] = record.name
        todo.abandon.append((record, why))
        before = set(todo.create)
        todo.add_creates(self.count)
        for new in sorted(set(todo.create) - before):
            self._replacing[member_name(self.prefix, new, self.count)] = record.name
        self._note_stand_ins(todo)

    def _note_stand_ins(self, todo: Plan) -> None:
        for index, slot in todo.stands_at.items():
            name, held = member_name(self.prefix, index, self.count), member_name(self.prefix, slot, self.count)
            self._stands_at[name] = held
            self._replacing.setdefault(name, todo.reserved.get(slot, held))

    def _check_inputs(self, *, paying: bool) -> None:
        """``paying``: a run that may pay (check mode pays nothing, so needs no chain libraries)."""
        key = check_create_inputs(self.template, self.services.payments if paying else None)
        if key is not None:
            self.template = replace(self.template, public_key=key.text, key_fingerprint=key.fingerprint)

    def _load_key(self) -> None:
        if self.template.public_key is None and self.template.load_key is not None:
            # Once, here: threads making the default key pair at the same time would race.
            text, fingerprint, private = self.template.load_key(generate=not self.services.check_mode)
            self.template = replace(self.template, public_key=text, key_fingerprint=fingerprint,
                                    private_key_path=self.template.private_key_path or private)

    def _plan_only(self, todo: Plan) -> FleetResult:
        """Check mode: no provider call at all; discovery only when something would be created."""
        res = self.result
        for record in todo.destroy:
            res.changed = True
            res.destroyed.append(record.name)
            res.actions.append(f"would destroy VM {record.name} on provider {recorded_placement(record).describe()}")
        if todo.create or todo.repair:
            placements = self.placements()
            for index, gone in todo.rebuilt():
                name = member_name(self.prefix, index, self.count) if gone is None else gone.name
                if gone is not None and gone.status in UNSETTLED:
                    # Only its provider can tell whether the VM is there; check mode asks none.
                    res.changed = True
                    res.actions.append(f"would settle VM {name}, recorded with status {gone.status}: adopted if "
                                       f"provider {recorded_placement(gone).describe()} has it, else created again")
                    continue
                where = (candidates_for(placements, index, todo.create)[0] if gone is None
                         else recorded_placement(gone))
                try:
                    bill = self._bill(where)
                except GolemError as exc:
                    # As a real run would fail it (it would try the next provider; check mode does not).
                    res.failures[name] = exc.msg
                    res.attempted += 1
                    continue
                if bill is not None:
                    res.bills[name] = bill
                res.changed = True
                res.created.append(name)
                if gone is not None:
                    res.actions.append(f"VM {name} is recorded but gone from provider {where.describe()}: "
                                       "would create it again")
                res.actions.append(f"would create VM {name} on provider {where.describe()}"
                                   + (f", paying {bill['glm_per_month']:g} GLM a month ({bill['deposit_wei']} wei "
                                      f"deposit for {bill['payment_hours']} h)" if bill else ""))
                res.planned[name] = VMRecord(name, where.ip or "", name, "creating", {
                    "provider_id": where.provider_id, "provider_port": where.port, "country": where.country,
                    "cpu": (self.template.spec.cpu if self.template.spec else None),
                    "memory": (self.template.spec.memory if self.template.spec else None),
                    "storage": (self.template.spec.storage if self.template.spec else None),
                    "size": self.template.size, "image": self.template.image, "ssh_user": self.template.ssh_user})
        return res

    def _bill(self, where: Placement) -> dict[str, Any] | None:
        """What a member created on ``where`` would pay, at the advert's GLM prices, as a run would compute it.

        Check mode of a fleet asks no provider anything (so not whether it takes payment: an advert with GLM
        prices is billed, and the contract is not known); prices a placement lacks (a member being repaired)
        come from discovery. Over the cap it raises as a run would.
        """
        payments, spec = self.services.payments, self.template.spec
        if payments is None or spec is None or payments.given_stream is not None:
            return None
        pricing = where.pricing if where.pricing is not None else payments.pricing_for(where, where.provider_id or "")
        why = over_cap(pricing, spec, payments.max_glm_per_month)
        if why is not None:
            raise PaymentError(f"provider {where.describe()} would not be paid: {why}", field="max_glm_per_month",
                               value=payments.max_glm_per_month)
        terms = stream_terms(pricing, spec, payments.hours)
        if terms is None:
            return None
        return bill_of(terms, payments.hours, where.provider_id, None)

    def _in_threads(self, kind: str, jobs: list[tuple[str, VMRecord | None, str, list[Placement] | None]]) -> None:
        if not jobs:
            return
        self.result.attempted += len(jobs)
        workers = min(self.parallelism, len(jobs))
        # The SSH wait of a new VM runs in a pool of its own: a create slot is freed as soon as the
        # provider has the VM running, so the next queued VM is not held up by the SSH handshake.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="golem-fleet") as pool, \
                ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="golem-fleet-ssh") as ssh_pool:
            # Jobs are submitted in order, so with fewer workers than jobs the highest indices go first.
            futures = [(name, pool.submit(self._one, name, record, state, candidates, ssh_pool))
                       for name, record, state, candidates in jobs]
            for name, future in futures:
                life, error, ssh = future.result()
                if ssh is not None:
                    error = ssh.result()
                self.result.actions.extend(life.out.actions)
                self.result.changed = self.result.changed or life.out.changed
                if error is not None:
                    self.result.failures[name] = error
                row = self.services.store.get(name) if kind == "create" else None
                if row is not None and row.status != "error":
                    self.result.created.append(name)  # it exists, even when its SSH wait failed
                elif kind == "destroy" and error is None:
                    self.result.destroyed.append(name)

    def _one(self, name: str, record: VMRecord | None, state: str, candidates: list[Placement] | None,
             ssh_pool: ThreadPoolExecutor) -> tuple[Lifecycle, str | None, Future[str | None] | None]:
        """One member's create or destroy; never raises, so one failure does not hide the others."""
        want = replace(self.template, name=name, state=state, wait=False, labels=self._labels_of(name, record))
        # A member's own run is never a check: the fleet answers check mode before it starts any.
        life = Lifecycle(
            want, replace(self.services, check_mode=False),
            candidates=lambda preferred: ([preferred] if preferred else []) + [
                c for c in candidates or [] if preferred is None or c.ip != preferred.ip])
        life.waiter.poll_max = FLEET_POLL_MAX
        error = _guarded(lambda: life.run(record))
        replaced = self._replacing.get(name) if state == "present" and record is None else None
        row = self.services.store.get(name) if error is None and replaced else None
        if row is not None:
            self.services.store.set_status(name, row.status, history=with_event(row.config, event(
                "replacement", f"created to replace abandoned member {replaced}")))
        final = self.services.store.get(name) if error is None and state == "present" and self.template.wait else None
        if final is None:
            return life, error, None
        return life, None, ssh_pool.submit(_guarded, lambda: life.wait_ssh(final))


def _guarded(work: Callable[[], Any]) -> str | None:
    """Run ``work``; the reason it failed, or None."""
    try:
        work()
    except GolemError as exc:
        return exc.msg
    # Anything else is reported per VM too: one bug must not hide what the other threads did.
    except Exception as exc:  # pylint: disable=broad-except
        return f"{type(exc).__name__}: {exc}"
    return None


def failure_message(result: FleetResult) -> str:
    """One message naming each failed VM and why."""
    return (f"{len(result.failures)} of {result.attempted} fleet operations failed: "
            + "; ".join(f"{name}: {why}" for name, why in sorted(result.failures.items())))
