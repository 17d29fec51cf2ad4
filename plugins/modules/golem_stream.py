#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_stream
short_description: Keep a VM's payment stream funded, or terminate it
version_added: 0.2.0
description:
  - Manages a payment stream on the StreamPayment contract that paying VM on Golem providers check, such as the
    stream M(golem.vm.golem_vm) opens for a VM on a provider that requires payment.
  - The stream is a VM's, by O(name) (its row in the state file gives the stream id, the contract and the provider),
    or any stream by O(stream_id).
  - With O(runway_hours), a stream that has less than O(top_up_below_hours) of runway left is topped up to exactly
    O(runway_hours) of runway, counted from the block time it was read at - the amount is the stream's rate times
    the missing seconds, to the wei. A stream with enough runway is left as it is (C(changed=false)).
  - A stream that has ended (it ran out, was terminated or was halted) cannot be topped up or revived; the task
    fails saying so. A paying provider deletes the VM of an ended stream; create the VM again for a new stream.
  - O(state=absent) terminates the stream. The contract pays the provider what has vested and gives the rest back
    to the paying account; RV(refunded_wei) is that refund. For a VM's stream, the row records that the stream is
    terminated, and the provider deletes the VM once it sees the stream over.
  - Without O(runway_hours) and with O(state=present), the module only reads and returns the stream.
  - The stream is always read from the chain (RV(stream)); for a VM's stream, the provider's own verdict on it is
    returned too (RV(provider_view)).
author:
  - golem.vm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - golem.vm.golem
  - golem.vm.payments
  - golem.vm.group
attributes:
  check_mode:
    support: full
    description: Reads the stream and reports what it would pay or get back; sends no transaction and writes nothing.
  diff_mode:
    support: full
    description: Shows the stream's stop time, deposit, runway and whether it has ended, before and after.
requirements:
  - requests >= 2.30 with urllib3 >= 2.0
  - pydantic >= 2
  - eth-account >= 0.13.6 and eth-abi >= 5
  - psycopg >= 3.1 (only for a state in PostgreSQL, O(state_url); C(pip install "psycopg[binary]"))
options:
  name:
    description:
      - Name of a VM in the state file whose payment stream to manage.
      - Its row gives the stream id, the contract (or, for a stream the collection did not open, the VM's provider,
        asked with C(GET /api/v1/provider/info)) and the provider asked for RV(provider_view).
      - One of O(name) and O(stream_id) is required.
    type: str
  stream_id:
    description:
      - Id of the stream on the StreamPayment contract.
      - Without O(name), give O(stream_payment_address), or O(provider_ip) of the provider the stream pays.
      - With O(name), it must be the VM's recorded stream.
    type: int
  state:
    description:
      - V(present) keeps the stream running with at least the runway asked by O(runway_hours), or only reads it
        when O(runway_hours) is not given.
      - V(absent) terminates the stream, giving back the deposit that has not vested. A stream that was terminated
        already, or that ran out with nothing left to give back, is left as it is.
    type: str
    choices: [present, absent]
    default: present
  runway_hours:
    description:
      - The runway, in whole hours, that a top-up brings the stream to (1 to 8784).
      - The stream is topped up only when its runway is below O(top_up_below_hours).
      - Only with O(state=present).
    type: int
  top_up_below_hours:
    description:
      - Top up only when the stream has less than this many hours of runway left; at most O(runway_hours).
      - By default, O(runway_hours) less one minute, so a run right after a top-up changes nothing. A larger gap
        (for example V(6) with O(runway_hours=24)) means fewer, larger top-ups, so fewer transactions and less gas.
      - Only with O(runway_hours).
    type: float
  provider_ip:
    description:
      - IP address of the provider the stream given by O(stream_id) pays; its C(GET /api/v1/provider/info) names
        the contract. Its port is O(provider_port).
      - Not with O(name).
    type: str
  state_path:
    description:
      - The state file (SQLite) where M(golem.vm.golem_vm) records VMs.
      - If not set, the value of the E(GOLEM_REQUESTOR_DB_PATH) environment variable is used, else
        C(~/.golem/requestor/vms.db). An empty variable counts as not set.
      - Mutually exclusive with O(state_url).
    type: path
  state_url:
    description:
      - A C(postgresql://) URL of a state shared by a team, as M(golem.vm.golem_vm) takes it, instead of
        O(state_path). The password comes from the URL, E(PGPASSWORD) or a passfile and is never shown.
      - If not set, the value of E(GOLEM_REQUESTOR_STATE_URL) is used.
      - The nonce lock of the paying account stays in C(~/.golem/requestor) of this controller.
    type: str
  wait_timeout:
    description:
      - Seconds the whole task may take, including waiting for a transaction to be mined.
      - A transaction that is not mined in time fails the task with its hash; once it is mined, a new run finds
        the stream changed and sends nothing more.
    type: int
    default: 120
notes:
  - Only the account that opened a stream can top it up; the sender or the provider can terminate it. The account
    is the one of O(ethereum_private_key), which is needed for any transaction, not for reading or check mode.
  - To keep every VM funded, list the VMs whose runway is low with the C(golem.vm.golem) inventory
    (C(refresh=true), group C(golem_runway_low)) and run this module on that group from a scheduled job.
seealso:
  - module: golem.vm.golem_vm
  - plugin: golem.vm.golem
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Keep web-1 paid for a day ahead, topping up once less than 6 hours are left
  golem.vm.golem_stream:
    name: web-1
    runway_hours: 24
    top_up_below_hours: 6
  register: paid

- name: Show the runway and what the provider thinks of the stream
  ansible.builtin.debug:
    msg: "{{ paid.stream.remaining_seconds }} s left; provider verified: {{ paid.provider_view.verified }}"

- name: What a top-up to 48 hours would cost, without paying
  golem.vm.golem_stream:
    name: web-1
    runway_hours: 48
  check_mode: true
  register: quote

- name: Terminate a stream opened elsewhere and get the unvested deposit back
  golem.vm.golem_stream:
    stream_id: 17
    stream_payment_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    state: absent
  register: ended

# In a play over the golem.vm.golem inventory (refresh: true), for example playbooks/top_up_streams.yml
# on the group golem_runway_low: the module runs on the controller, once per VM.
- name: Bring each VM's stream back to a day of runway
  golem.vm.golem_stream:
    name: "{{ golem_name }}"
    runway_hours: 24
    top_up_below_hours: 6
  delegate_to: localhost
"""

RETURN = r"""
stream:
  description: The stream as the chain has it at the end of the run (in check mode, as it was read).
  returned: success
  type: dict
  contains:
    stream_id: {description: Id of the stream., type: int, sample: 7}
    contract: {description: Address of the StreamPayment contract., type: str,
               sample: "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
    token: {description: "Token paid; the zero address is native ETH, as the 0.1.x network pays.", type: str}
    sender: {description: The account that opened the stream and pays it., type: str}
    recipient: {description: "The provider paid; the zero address once the stream is terminated.", type: str}
    start_time: {description: Chain time (Unix seconds) the stream started., type: int, sample: 1764400000}
    stop_time: {description: Chain time the runway ends., type: int, sample: 1764403600}
    rate_wei_per_second: {description: Wei vested to the provider each second., type: int, sample: 12176560121}
    deposit_wei: {description: "All wei paid in: the opening deposit plus top-ups.", type: int, sample: 43835616435600}
    withdrawn_wei: {description: Wei paid out to the provider so far., type: int, sample: 0}
    halted: {description: Whether the stream was halted (vesting stopped)., type: bool, sample: false}
    chain_time: {description: The block time the stream was read at., type: int, sample: 1764400100}
    remaining_seconds: {description: "Seconds of runway left at RV(stream.chain_time); 0 once ended.", type: int,
                        sample: 3500}
    ended: {description: "Whether the stream ran out, was terminated or was halted.", type: bool, sample: false}
top_up:
  description: The top-up made (or, in check mode, the one that would be made); empty when none was needed.
  returned: success
  type: dict
  contains:
    amount_wei: {description: "The amount paid in: rate times RV(top_up.seconds_added).", type: int,
                 sample: 43835616435600}
    seconds_added: {description: Seconds of runway the top-up adds., type: int, sample: 3600}
    stop_time_before: {description: The stream's stop time before the top-up., type: int}
    stop_time_after: {description: "Its stop time after: RV(top_up.stop_time_before) plus the seconds added.",
                      type: int}
    deposit_wei_before: {description: The stream's deposit before., type: int}
    deposit_wei_after: {description: Its deposit after., type: int}
    remaining_seconds_before: {description: Runway left when the stream was read., type: int}
    remaining_seconds_after: {description: "Runway right after, as of the same block time: O(runway_hours) in seconds.",
                              type: int}
    tx: {description: Hash of the top-up transaction (not in check mode)., type: str}
refunded_wei:
  description:
    - With O(state=absent), the deposit that came back to the paying account when the stream was terminated, as the
      contract settles it at the block that mined the termination; in check mode, the refund at the block read.
    - V(0) for a stream that had nothing left to give back; V(null) with O(state=present) or for a stream terminated
      already.
  returned: success
  type: int
  sample: 41000000000000
tx:
  description: Hash of the transaction this run sent (top-up or termination); V(null) when it sent none.
  returned: success
  type: str
provider_view:
  description:
    - For a VM's stream (O(name)), what its provider says of it (C(GET /api/v1/vms/NAME/stream)); V(null) without
      O(name).
    - A provider that cannot be asked does not fail the task; RV(provider_view.verified) is then V(null) and
      RV(provider_view.reason) says why.
  returned: success
  type: dict
  contains:
    verified: {description: "Whether the provider accepts the stream (recipient, deposit, started, not halted).",
               type: bool, sample: true}
    reason: {description: "The provider's reason (V(ok) when verified), or why it could not be asked.", type: str,
             sample: ok}
    remaining_seconds: {description: The runway the provider computes., type: int, sample: 3500}
    stream_id: {description: The stream the provider has mapped to the VM., type: int, sample: 7}
actions:
  description: What the module did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["topped up stream 7 of VM web-1 (contract 0x5FbD...) by 43835616435600 wei (3600 s at 12176560121 wei/s)"]
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
    STATE_ARGUMENTS,
    ArgumentSpec,
    member_spec,
    only,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import check_state_path
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import chain_factory
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_target import check_stream_options, find_target
from ansible_collections.golem.vm.plugins.module_utils.vm.stream_task import StreamTask, provider_view, stream_result

# The provider's view is a courtesy: it gets a short, retry-free budget of its own.
PROVIDER_VIEW_TIMEOUT = 10.0

ARGUMENT_SPEC: ArgumentSpec = member_spec(
    only(STATE_ARGUMENTS, "state_path", "state_url"),
    PAYMENT_ARGUMENTS,
    name={"type": "str"},
    stream_id={"type": "int"},
    state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    runway_hours={"type": "int"},
    top_up_below_hours={"type": "float"},
    provider_ip={"type": "str"},
    wait_timeout={"type": "int", "default": 120},
)
MODULE_SETTINGS: dict[str, Any] = {"required_one_of": [("name", "stream_id")], "supports_check_mode": True}


class GolemStream(ConnectedModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        p = self.params
        below = check_stream_options(p)
        where = settings.state_location(p["state_url"], p["state_path"])
        if where.path is not None:
            check_state_path(where.path, field=where.field)
        # Imported here: the PostgreSQL backend's module (and psycopg) only for a postgresql:// URL.
        from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store

        store = self.closes(open_store(where.url, where.path, url_field=where.field if where.url else "state_url",
                                       path_field=where.field if where.path else "state_path"))
        deadline = Deadline(p["wait_timeout"])
        target = find_target(p, store, lambda ip, port: self._provider(ip, port, deadline))
        chain = chain_factory(p, lock_dir=where.local_dir, deadline=deadline)()
        task = StreamTask(target, chain, store=store, check_mode=self.module.check_mode, deadline=deadline,
                          warn=self.warn)
        try:
            stream = task.present(p["runway_hours"], below) if p["state"] == "present" else task.absent()
        except GolemError as exc:
            self.fail(exc, changed=task.changed, actions=task.actions, **task.result)
        result: dict[str, Any] = {"changed": task.changed, "actions": task.actions,
                                  "stream": stream_result(stream, target.contract), **task.result,
                                  "provider_view": None}
        record = target.record
        if record is not None:
            client = self._provider(record.provider_ip, record.provider_port or p["provider_port"], None)
            result["provider_view"] = provider_view(client, record.name)
        if self.module._diff:
            result["diff"] = {"before": task.before, "after": task.after}
        return result

    def _provider(self, ip: str, port: int, deadline: Deadline | None) -> ProviderClient:
        return self.provider(ip, port, deadline=deadline, timeout=min(self.params["timeout"], PROVIDER_VIEW_TIMEOUT),
                             retries=0)


def main() -> None:
    GolemStream().run()


if __name__ == "__main__":
    main()
