#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_fleet
short_description: Keep exactly N VMs of a kind on VM on Golem providers, spread over providers and countries
version_added: 0.2.0
description:
  - Keeps exactly O(count) VMs named C(<name>-01), C(<name>-02), ... recorded in the state file. The index has
    two digits, more when O(count) is over 99.
  - Creates the missing indices in parallel (O(parallelism) at a time), destroys the surplus (highest indices
    first), and leaves the others alone.
  - With O(verify) (the default) each running member's provider is asked for it by name, and a member the
    provider no longer has (deleted behind the collection's back) is created again, on the same provider
    first. A run with nothing to do makes only those read calls (and one to discovery for the members' prices,
    RV(vms[].glm_per_month)) and reports no change.
  - Discovery is asked once per run to place the new VMs, however many are created (once more when a member's
    provider is not in that answer, for RV(vms[].glm_per_month)). New VMs are placed round-robin over the
    matching providers, taking countries in turn (O(countries)), so they spread over providers and countries;
    the cheapest (as M(golem.vm.golem_vm)'s V(cheapest) ranks them) first in each country. O(provider_selection)
    fills each provider's advertised room first instead. Providers priced over
    O(max_glm_per_month) are skipped with a warning and never contacted.
    When a provider fails a create, the VM falls over to the next provider.
  - Each VM is created as M(golem.vm.golem_vm) creates one; its state row is written before the create call,
    so a failure never leaves a VM unrecorded.
author:
  - golem.vm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - golem.vm.golem
  - golem.vm.vm_spec
  - golem.vm.payments
  - golem.vm.group
attributes:
  check_mode:
    support: full
    description: Makes no write call to any provider and writes no file; returns the plan and what it would
      pay (RV(bill)). Discovery is asked when VMs would be created, to show where; with O(verify), members are
      looked up (read only). With O(runway_hours), each paid member's stream is read from the chain and the top-ups
      are billed (RV(top_up_bill)). Nothing is signed or sent to the chain.
  diff_mode:
    support: full
    description: Shows the fleet's members (placement, resources, status) before and after; never key material.
requirements:
  - requests >= 2.30 with urllib3 >= 2.0
  - pydantic >= 2
  - sshpubkeys >= 3.3 and cryptography
  - the OpenSSH client tool C(ssh-keyscan)
  - eth-account >= 0.13.6 and eth-abi >= 5 (only to pay a provider that requires payment)
  - psycopg >= 3.1 (only for a state in PostgreSQL, O(state_url); C(pip install "psycopg[binary]"))
options:
  name:
    description:
      - The fleet's name, the prefix of its members' names C(<name>-NN).
      - Member names must be valid VM names (3 to 64 characters; lower-case letters, digits and V(-)).
    type: str
    required: true
  count:
    description:
      - How many VMs the fleet keeps. V(0) destroys every member.
    type: int
    required: true
  countries:
    description:
      - Two-letter country codes (ISO 3166), in any case, of the providers to use, for example V([SE, US]).
      - New VMs take these countries in turn, in this order. Empty means every country.
    type: list
    elements: str
    default: []
  platform:
    description:
      - CPU platform of the providers to use, for example V(x86_64).
    type: str
  provider_selection:
    description:
      - How new members are placed on the providers that fit; providers priced over O(max_glm_per_month) are
        skipped whatever this says.
      - Unset (the default, the placement before this option existed), members are placed round-robin, one per
        provider per turn, over the providers interleaved by country (O(countries) in turn), the cheapest first in
        each country; a member starts at the turn of its index.
      - Set, members still take the countries in turn by their index (member 1 the first country of
        O(countries), member 2 the next, ...), but within a country they fill its providers in this order, each
        up to the VMs of the size its advertised free resources hold (free CPU, memory and storage, each divided
        by the size's, the fewest of the three), before the next provider is used. Members already running take
        none of that room, because a provider advertises what is free after its VMs. A country whose room is
        taken passes its members on to the next country with room; when every provider's room is taken, a member
        is tried on its country's first provider.
      - V(cheapest) ranks providers as M(golem.vm.golem_vm) does, by what the size costs a month as it is paid -
        adverts with GLM prices first, by their GLM price; then those with USD prices only, by USD; then those
        without prices. V(first) takes discovery's order. V(most_free) takes the provider with the most free CPU
        (then memory, then storage) first, so members are packed onto the largest providers.
      - When a create fails, the member falls over to its country's other providers in the same order, then to
        the next countries' (round-robin - the next turns).
    type: str
    choices: [cheapest, first, most_free]
    version_added: 0.3.0
  size:
    description:
      - V(small) is 1 CPU, 1 GB memory and 10 GB storage; V(medium) 2, 4, 20; V(large) 4, 8, 40;
        V(xlarge) 8, 16, 80. Without this and O(cpu), O(memory), O(storage), V(small).
      - Applies to new members only; existing members are left as they are.
    type: str
    choices: [small, medium, large, xlarge]
  wait:
    description: Whether to wait until each new VM answers on SSH (and record its host key).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole task may take, for all VMs together. VMs that exist when it runs out stay recorded.
    type: int
    default: 600
  parallelism:
    description: How many creates (or destroys) run at the same time.
    type: int
    default: 10
  verify:
    description:
      - Ask each running member's provider for it (C(GET /api/v1/vms/NAME), one read call per member, in
        parallel) and create again a member the provider no longer has.
      - V(false) trusts the state file, and a run with nothing to do then calls no provider (discovery is asked
        once for the members' prices, RV(vms[].glm_per_month)).
    type: bool
    default: true
  replace_unreachable_after:
    description:
      - Give up on a member whose provider has not answered for longer than this, and replace it. A duration, in
        seconds or as a number with V(s), V(m), V(h) or V(d), for example V(30m). Unset (the default), no member
        is ever given up on. Needs O(verify).
      - The first time a member's provider does not answer (connection refused or reset, no answer in time, a
        gateway's 502, 503 or 504), the time is recorded on its row; any answer clears it. A 404 is an answer, and
        a member its provider proves gone is created again, as without this option.
      - A member silent for longer than this B(and) whose provider's advert is gone from discovery is
        C(abandoned). Its row stays, with status V(abandoned), so the VM is never forgotten without its
        provider's word; the payment stream the collection opened for it is terminated (the deposit not yet
        vested comes back; the provider keeps what vested); it no longer counts toward O(count); and a stand-in
        is created on another provider, in parallel with the rest of the run's work, within
        O(max_glm_per_month). The stand-in takes the lowest free index, over O(count) if need be, and keeps
        the label C(golem.vm/replaces).
      - A provider that still advertises, or one discovery cannot tell about, is never given up on.
      - An abandoned row is settled by a later run once its provider answers again. A VM it proves gone is
        forgotten; a VM still there is deleted (it was replaced), then forgotten. See RV(abandoned) and RV(settled),
        and each row's C(history).
    type: str
    version_added: 0.3.0
  runway_hours:
    description:
      - Keep each paid member's payment stream funded. After creating and destroying, every running member whose
        stream this collection opened and has less than O(top_up_below_hours) of runway left is topped up to exactly
        this many hours of runway, by M(golem.vm.golem_stream)'s rule (the stream's rate times the missing seconds,
        to the wei). A member with enough runway is left as it is, so a second run pays nothing.
      - A whole number of hours from 1 to 8784. V(null) (the default) tops up nothing.
      - Only members with status V(running) are paid; a stopped, failed or abandoned member never is. A stream whose
        rate costs more than O(max_glm_per_month) a month is not topped up, and the task fails naming the member.
        A member whose stream cannot be read or paid fails the task after the others were topped up.
      - Each top-up is in RV(topped_up) and in the member's row history (event C(topped_up), with the wei and the
        transaction). Paying needs O(ethereum_private_key), the account that opened the streams.
      - New members are paid for O(payment_hours) when created; with O(payment_hours) below O(top_up_below_hours)
        they are topped up in the same run. Run the fleet from a scheduled job more often than
        O(runway_hours) minus O(top_up_below_hours) hours, for example with C(playbooks/fleet.yml).
    type: int
    version_added: 0.3.0
  top_up_below_hours:
    description:
      - Top up only streams with less than this many hours of runway left; at most O(runway_hours).
      - By default, O(runway_hours) less one minute. A larger gap (for example V(6) with O(runway_hours=24)) means
        fewer, larger top-ups, so fewer transactions and less gas.
      - Only with O(runway_hours).
    type: float
    version_added: 0.3.0
notes:
  - Membership is read from the state file. With O(verify) each running member is looked up by name; a
    provider's VM list is never read, because upstream providers kill creates that are pending while it is.
  - A member whose create did not finish (recorded V(creating) or V(error), for example because its provider
    went away during the create) is settled as M(golem.vm.golem_vm) settles it - adopted when its provider has it,
    else what it left is cleared (its stream terminated or carried over) and it is created again. A V(stopped)
    member is left alone with a warning.
seealso:
  - module: golem.vm.golem_vm
  - module: golem.vm.golem_provider_info
"""

EXAMPLES = r"""
- name: Keep four small VMs spread over Sweden and the US
  golem.vm.golem_fleet:
    name: web
    count: 4
    size: small
    countries: [SE, US]
  register: fleet

- name: Show how to reach them
  ansible.builtin.debug:
    msg: "{{ fleet.vms | map(attribute='ssh_command') | list }}"

- name: Keep six VMs on the cheapest providers, each filled to its advertised room first
  golem.vm.golem_fleet:
    name: batch
    count: 6
    provider_selection: cheapest
  register: batch

- name: Show what the fleet costs a month
  ansible.builtin.debug:
    msg: "{{ batch.glm_per_month_total }} GLM a month"

- name: Shrink the fleet to two (destroys web-04 and web-03)
  golem.vm.golem_fleet:
    name: web
    count: 2

- name: Keep four VMs, each paid a day ahead, topping up once less than 6 hours are left (a scheduled job)
  golem.vm.golem_fleet:
    name: web
    count: 4
    runway_hours: 24
    top_up_below_hours: 6
  register: fleet

- name: Show what the top-ups paid
  ansible.builtin.debug:
    msg: "{{ fleet.topped_up | map(attribute='name') | zip(fleet.topped_up | map(attribute='wei')) | list }}"

- name: Destroy the whole fleet
  golem.vm.golem_fleet:
    name: web
    count: 0
"""

RETURN = r"""
vms:
  description:
    - The fleet's members after the run (in check mode, as planned), sorted by name; each as
      M(golem.vm.golem_vm) returns RV(golem.vm.golem_vm#module:vm), with RV(vms[].glm_per_month).
    - Abandoned members (O(replace_unreachable_after)) are listed too, with status V(abandoned), until their
      provider's answer settles them; they do not count toward O(count).
  returned: always
  type: list
  elements: dict
  sample: [{name: web-01, provider_id: "0x12...", country: SE, status: running, ssh_port: 20001, glm_per_month: 32.0,
            ssh_command: "ssh -i /home/me/.golem/requestor/ssh/golem_id_ed25519 -p 20001 -- root@203.0.113.7"}]
  contains:
    glm_per_month:
      description:
        - What the member costs a month in GLM at its provider's advertised GLM prices for its resources, computed
          as its payment stream is (for a member that would be created in check mode, the figure in its
          RV(bill)).
        - A member keeps on its row the price it was placed at (the price its stream pays). For a member recorded
          without it (by golem.vm before 0.3, or created again on its old provider), its provider's advertised
          prices come from discovery's listing; when the run placed no member, discovery is asked once for them
          (a failure there is a warning, and the figures are V(null)). A run with nothing to do over members that
          all record their price asks discovery nothing.
        - V(null) when the provider advertises no GLM prices (the MVP era's, which take no payment), or no
          longer advertises.
      type: float
      sample: 32.0
      version_added: 0.3.0
glm_per_month_total:
  description:
    - What the members that are paid add up to a month in GLM, from RV(vms[].glm_per_month) (V(null) ones count
      nothing). Only members V(running) or being created (in check mode, planned) are added; a stopped, failed
      or abandoned member's stream was terminated.
  returned: always
  type: float
  sample: 78.0
  version_added: 0.3.0
created:
  description: Names of the VMs created (in check mode, that would be created).
  returned: always
  type: list
  elements: str
  sample: [web-03, web-04]
destroyed:
  description: Names of the VMs destroyed (in check mode, that would be destroyed).
  returned: always
  type: list
  elements: str
  sample: [web-05]
actions:
  description: What the module did (or would do in check mode).
  returned: always
  type: list
  elements: str
  sample: ["created VM web-03 on provider 0x12... (203.0.113.7) (job 5f0c...)"]
abandoned:
  description:
    - The members given up on this run (in check mode, that would be), each with why, the stream terminated and
      the wei that came back, and its stand-in. Each is also in its row's C(history).
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  sample: [{name: web-03, provider: "0x88... (127.0.0.3)", why: "provider 0x88... (127.0.0.3) has not answered for
            95 s (replace_unreachable_after 60 s) and its advert is gone from discovery", replaced_by: web-05,
            stream_id: 7, refund_wei: 40822368421052}]
settled:
  description:
    - Abandoned rows whose provider answered again this run (in check mode, would be settled), each forgotten;
      C(vm_deleted) says whether its VM was still there and was deleted.
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  sample: [{name: web-03, provider: "0x88... (127.0.0.3)", stream_id: 7, refund_wei: null, vm_deleted: true}]
bill:
  description:
    - In check mode, what the VMs that would be created would pay at their providers' advertised GLM prices,
      each as M(golem.vm.golem_vm) returns RV(golem.vm.golem_vm#module:bill), and their total; nothing is signed
      or sent.
    - Check mode asks no provider anything, so C(stream_payment_address) is V(null), and a member on a provider
      that advertises GLM prices is billed even if that provider has payments off. Members on providers without
      GLM prices (the MVP era's) are not in it. Each member's bill is also in the diff's C(after).
  returned: in check mode
  type: dict
  version_added: 0.3.0
  contains:
    members:
      description: Name of each paying member that would be created, to its bill.
      type: dict
      sample: {web-01: {provider_id: "0x12...", glm_per_month: 32.0, rate_wei_per_second: 12176560121,
                        payment_hours: 1, deposit_wei: 43835616435600, stream_payment_address: "0xab..."}}
    glm_per_month: {description: What those members cost together a month in GLM., type: float, sample: 78.0}
    deposit_wei: {description: "What their streams would lock together, in wei.", type: int, sample: 106849315066800}
topped_up:
  description:
    - With O(runway_hours), the members whose stream was topped up (in check mode, would be), sorted by name; empty
      when none was low, or without O(runway_hours).
    - In check mode, a member that would be created and topped up in the same run (O(payment_hours) below
      O(top_up_below_hours)) is in it too, with RV(topped_up[].stream_id) V(null) and the amount as of its creation.
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  contains:
    name: {description: The member., type: str, sample: web-01}
    stream_id: {description: Its stream., type: int, sample: 7}
    contract: {description: The StreamPayment contract of the stream., type: str}
    remaining_seconds_before: {description: Runway left when the stream was read., type: int, sample: 3600}
    remaining_seconds_after: {description: "Runway right after, as of the same block time: O(runway_hours) in seconds.",
                              type: int, sample: 86400}
    seconds_added: {description: Seconds of runway the top-up adds., type: int, sample: 82800}
    hours_added: {description: The same in hours., type: float, sample: 23.0}
    wei: {description: "The amount paid in: the stream's rate times RV(topped_up[].seconds_added).", type: int,
          sample: 1008219177966000}
    rate_wei_per_second: {description: The stream's rate., type: int, sample: 12176560121}
    glm_per_month: {description: "What that rate costs a month in GLM; at most O(max_glm_per_month).", type: float,
                    sample: 32.0}
    tx: {description: "Hash of the top-up transaction; V(null) in check mode.", type: str}
top_up_bill:
  description:
    - In check mode with O(runway_hours), what the top-ups would pay; nothing is signed or sent. The streams' rates
      are held to O(max_glm_per_month); a member over it is not topped up and fails the task.
    - Separate from RV(bill), which is what the members that would be created lock in their new streams.
  returned: in check mode with O(runway_hours)
  type: dict
  version_added: 0.3.0
  contains:
    members:
      description: Name of each member that would be topped up, to its top-up, as in RV(topped_up) without C(name)
        and C(tx).
      type: dict
      sample: {web-01: {stream_id: 7, seconds_added: 82800, hours_added: 23.0, wei: 1008219177966000,
                        glm_per_month: 32.0}}
    wei: {description: What the top-ups would pay together., type: int, sample: 1008219177966000}
    max_glm_per_month: {description: The cap the streams' rates were held to (O(max_glm_per_month))., type: float,
                        sample: 500.0}
failure:
  description:
    - Why the task failed, for a playbook to act on; C(msg) says it for people.
    - Not returned when ansible-core itself refuses an argument (C(msg) says why then).
  returned: failure
  type: dict
  contains:
    kind:
      description:
        - What failed. V(discovery), V(provider), V(identity) (something other than the VM's provider answered at
          its address), V(payment), V(validation) (a value given, or sent by a server, broke a rule), V(state),
          V(timeout), V(unsupported) (a server of upstream's newer protocol, which this version does not support
          yet), V(missing_library), or V(golem) (anything else).
      returned: always
      type: str
      sample: discovery
    url:
      description: The URL of the request that failed.
      returned: when a server was involved
      type: str
      sample: http://195.201.39.101:9001/api/v1/advertisements?cpu=2
    method:
      description: The HTTP method of that request.
      returned: when a server was involved
      type: str
      sample: GET
    status:
      description: The HTTP status the server answered with.
      returned: when the server answered with an HTTP status
      type: int
      sample: 400
    response:
      description: The server's answer, cut to 500 characters.
      returned: when the server's answer is part of the cause
      type: str
      sample: '{"detail": "stream_id required when payments are enabled"}'
    field:
      description: The option (or the environment variable it was read from), or the field of a server's answer, whose value broke a rule.
      returned: when a value is at fault
      type: str
      sample: cpu
    value:
      description: That value; null when it was missing.
      returned: when RV(failure.field) is returned
      type: raw
      sample: 0
"""

from typing import Any

from ansible_collections.golem.vm.plugins.module_utils._base import ConnectedModule
from ansible_collections.golem.vm.plugins.module_utils.arguments import (
    PAYMENT_ARGUMENTS,
    VM_SPEC_ARGUMENTS,
    VM_SPEC_EXCLUSIVE,
    ArgumentSpec,
    member_spec,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet import Fleet, discover, failure_message
from ansible_collections.golem.vm.plugins.module_utils.vm.healing import Healing, advertised_in, check_duration
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_plan import check_fleet, member_name
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_prices import AdvertPrices, member_prices
from ansible_collections.golem.vm.plugins.module_utils.vm.fleet_runway import top_up_fleet
from ansible_collections.golem.vm.plugins.module_utils.vm.payments import build_payments
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import STRATEGIES
from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Fill
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_target import check_runway_options
from ansible_collections.golem.vm.plugins.module_utils.vm.view import diff_view, represent_vm
from ansible_collections.golem.vm.plugins.module_utils.vm_request import prepare_task, vm_services

ARGUMENT_SPEC: ArgumentSpec = member_spec(
    VM_SPEC_ARGUMENTS,
    PAYMENT_ARGUMENTS,
    name={"type": "str", "required": True},
    count={"type": "int", "required": True},
    countries={"type": "list", "elements": "str", "default": []},
    platform={"type": "str"},
    provider_selection={"type": "str", "choices": list(STRATEGIES)},
    parallelism={"type": "int", "default": 10},
    verify={"type": "bool", "default": True},
    replace_unreachable_after={"type": "str"},
    runway_hours={"type": "int"},
    top_up_below_hours={"type": "float"},
)
MODULE_SETTINGS: dict[str, Any] = {"supports_check_mode": True, "mutually_exclusive": [*VM_SPEC_EXCLUSIVE]}


class GolemFleet(ConnectedModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        p = self.params
        countries = check_fleet(p["name"], p["count"], p["countries"] or None, p["parallelism"])
        replace_after = check_duration(p["replace_unreachable_after"], "replace_unreachable_after")
        if replace_after is not None and not p["verify"]:
            raise ValidationError("replace_unreachable_after needs verify=true: only a member looked up can be found "
                                  "unreachable", field="replace_unreachable_after", value=p["replace_unreachable_after"])
        below = check_runway_options(p)
        # The per-VM checks run on the longest member name (the prefix alone need not be a valid name).
        task = prepare_task(p, name=member_name(p["name"], max(p["count"], 1), p["count"]), default_size="small")
        task.want.name = p["name"]
        self.closes(task.store)
        discovery = self.discovery_within(task.deadline)
        spec = task.want.spec
        prices = AdvertPrices(discovery, self.warn)

        def placements() -> Any:
            found = discover(discovery(), spec, provider_port=p["provider_port"], countries=countries,
                             platform=p["platform"], warn=self.warn, max_glm_per_month=p["max_glm_per_month"],
                             strategy=p["provider_selection"])
            prices.learn(found.placements() if isinstance(found, Fill) else found)
            return found

        services = vm_services(self, task, lambda: build_payments(
            p, local_dir=task.state.local_dir, deadline=task.deadline, discovery=discovery, warn=self.warn,
            store=task.store))
        fleet = Fleet(p["name"], p["count"], services, template=task.want,
                      placements=placements, parallelism=p["parallelism"], verify=p["verify"],
                      healing=Healing(services, replace_after=replace_after,
                                      advertised=advertised_in(discovery, self.warn)))
        before = fleet.members()
        res = fleet.run()
        after = before if self.module.check_mode else fleet.members()
        if self.module.check_mode:
            gone = set(res.destroyed) | set(res.planned)
            after = sorted([r for r in before if r.name not in gone] + list(res.planned.values()),
                           key=lambda r: r.name)
        # A member given up on this run neither costs nor is paid more (in check mode its row still says running).
        given_up = {entry["name"] for entry in res.abandoned}
        paid = [r for r in after if r.name not in given_up]
        monthly, total = member_prices(paid, prices.pricing, spec)
        result: dict[str, Any] = {
            "changed": res.changed,
            "vms": [{**represent_vm(r, known_hosts_path=task.known_hosts_path), "glm_per_month": monthly.get(r.name)}
                    for r in after],
            "glm_per_month_total": total,
            "created": sorted(res.created),
            "destroyed": res.destroyed,
            "actions": res.actions,
            "abandoned": res.abandoned,
            "settled": res.settled,
        }
        if self.module.check_mode:
            result["bill"] = res.bill()
        # After the run, so its new members are seen; they were paid for payment_hours when created.
        runway = None if below is None else top_up_fleet(services, p, paid, below, local_dir=task.state.local_dir,
                                                         bills=res.bills)
        result["topped_up"] = runway.topped_up if runway is not None else []
        if runway is not None:
            result["changed"] = result["changed"] or runway.changed
            result["actions"] = res.actions + runway.actions
            if self.module.check_mode:
                result["top_up_bill"] = runway.bill()
        if self.module._diff:
            result["diff"] = {"before": {r.name: diff_view(r) for r in before},
                              "after": {r.name: diff_view(r) for r in after}}
            for name, bill in res.bills.items():
                result["diff"]["after"][name]["bill"] = bill
            for line in result["topped_up"]:
                if line["name"] in result["diff"]["after"]:
                    result["diff"]["after"][line["name"]]["top_up"] = line
        failures = ([failure_message(res)] if res.failures else []) + (
            [runway.failure_message()] if runway is not None and runway.failures else [])
        if failures:
            self.fail(GolemError("; ".join(failures)), **result)
        return result


def main() -> None:
    GolemFleet().run()


if __name__ == "__main__":
    main()
