#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_vm_info
short_description: List the VMs you rent on VM on Golem, from the state, optionally with their live status
version_added: 0.2.0
description:
  - Lists the VMs recorded in the state (the SQLite file or the PostgreSQL database that M(golem.vm.golem_vm) and
    M(golem.vm.golem_fleet) write, found by the same options and variables), each in the shape of
    M(golem.vm.golem_vm)'s RV(golem.vm.golem_vm#module:vm) result.
  - Filters by O(names), O(providers), O(countries), O(statuses), O(exclude_statuses) and O(labels); a VM is
    listed only when it matches every filter given. The C(golem.vm.golem) inventory's O(golem.vm.golem#inventory:filters) follow the
    same rules.
  - With O(refresh=true), each listed VM's provider is asked for the VM by name (C(GET /api/v1/vms/NAME), never the
    list endpoint, which kills pending creates upstream), several at a time and all within O(refresh_timeout);
    meanwhile the payment chain at O(payments_rpc_url) is asked for the runway of each VM's payment stream. A
    provider that does not answer is reported on its VMs (RV(vms[].provider_reachable)); it does not fail the task.
  - A VM is reported V(missing) only when its own provider says so - a 404 with the provider's JSON error from a
    server that proves it is the recorded provider (an MVP-era provider is vouched for by discovery). Anything
    else at the address makes the provider unreachable, with the reason in RV(vms[].refresh_error).
  - A member M(golem.vm.golem_fleet) gave up on (its provider stopped answering and left discovery; its stream was
    terminated and a replacement created) keeps its row in status V(abandoned) until its provider settles it. Such
    VMs are listed like any other, since they still need attention; O(statuses=[abandoned]) lists only them,
    O(exclude_statuses=[abandoned]) leaves them out. RV(vms[].history) says what was done to each VM and why.
  - Never changes anything - not the state, not a provider, not the chain - so it always reports C(changed=false).
    A VM its provider no longer has keeps its row; M(golem.vm.golem_vm) with O(golem.vm.golem_vm#module:state=absent)
    forgets it.
author:
  - golem.vm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - golem.vm.golem
  - golem.vm.group
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is no diff.
requirements:
  - requests >= 2.30 with urllib3 >= 2.0
  - pydantic >= 2
  - psycopg >= 3.1 (only for a state in PostgreSQL, O(state_url); C(pip install "psycopg[binary]"))
options:
  names:
    description:
      - Only VMs with these names. Shell-style patterns such as V(web-*) or V(db-[0-9]*) are allowed.
      - Empty means every VM.
    type: list
    elements: raw
    default: []
  providers:
    description:
      - Only VMs on these providers, each given by provider id or by IP address, in any case.
    type: list
    elements: raw
    default: []
  countries:
    description:
      - Only VMs on providers in these countries, as two-letter codes in any case, for example V([SE, US]).
      - A VM whose provider's country is not recorded matches none.
    type: list
    elements: raw
    default: []
  statuses:
    description:
      - Only VMs with one of these statuses; empty means every status.
      - Recorded statuses are V(creating), V(running), V(stopped), V(error) and V(abandoned) (a member
        M(golem.vm.golem_fleet) gave up on). With O(refresh=true) the status the provider reports counts instead,
        which can also be V(stopping), V(deleted) or V(missing) (the provider no longer has the VM); the recorded
        status counts for VMs whose provider did not answer.
      - An abandoned VM stays V(abandoned) whatever its provider reports (that is in RV(vms[].live_status)), so it is
        never listed as V(running).
    type: list
    elements: raw
    default: []
  exclude_statuses:
    description:
      - Leave out VMs with one of these statuses, the same ones O(statuses) takes, for example V([abandoned]) for
        every VM but those M(golem.vm.golem_fleet) gave up on.
      - A status may not be in both O(statuses) and O(exclude_statuses).
    type: list
    elements: raw
    default: []
  labels:
    description:
      - Only VMs that carry every one of these labels, each with this value (labels are set with
        O(golem.vm.golem_vm#module:labels)). Numbers and booleans are taken as their text, as they are stored.
    type: dict
  refresh:
    description:
      - Whether to ask each VM's provider for its live status and the payment chain for its stream's runway.
      - Without it nothing but the state is read.
    type: bool
    default: false
  refresh_timeout:
    description:
      - Seconds the whole refresh may take, every request included. Providers still silent when it runs out are
        reported unreachable. No single request waits longer than O(timeout).
    type: float
    default: 10.0
  refresh_concurrency:
    description:
      - How many providers' requests a refresh has in flight at once.
    type: int
    default: 16
  payments_rpc_url:
    description:
      - JSON-RPC URL of the chain the providers are paid on, read with O(refresh=true) for the runway of each VM that
        has a payment stream; VMs without one cost no request.
      - If not set, the value of E(GOLEM_REQUESTOR_POLYGON_RPC_URL) or E(GOLEM_REQUESTOR_L2_RPC_URL) is used, as
        for M(golem.vm.golem_vm) and M(golem.vm.golem_stream).
    type: str
    default: https://l2.holesky.golemdb.io/rpc
  stream_payment_address:
    description:
      - The StreamPayment contract of streams whose row records none (streams given to M(golem.vm.golem_vm) by id,
        or rows the upstream CLI wrote). Rows of streams the collection opened record their own contract.
      - If not set, the value of E(GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS) is used.
    type: str
  state_path:
    description:
      - The state file (SQLite) where VMs are recorded, as for M(golem.vm.golem_vm).
      - If not set, the value of E(GOLEM_REQUESTOR_DB_PATH) is used, else C(~/.golem/requestor/vms.db), the upstream
        C(golem) CLI's own file. An empty variable counts as not set. A missing file lists no VMs and is not created.
    type: path
  state_url:
    description:
      - A C(postgresql://) URL of a state shared by a team, instead of the SQLite O(state_path), as for
        M(golem.vm.golem_vm). The password is never shown; messages name C(user@host:port/dbname).
      - If not set, the value of E(GOLEM_REQUESTOR_STATE_URL) is used. Mutually exclusive with O(state_path).
    type: str
  known_hosts_path:
    description:
      - The known_hosts file holding the VMs' host keys, named in RV(vms[].ssh_command) and
        RV(vms[].known_hosts_path).
      - If not set, the value of E(GOLEM_REQUESTOR_KNOWN_HOSTS_PATH) is used, else C(known_hosts) beside the state
        file, as for M(golem.vm.golem_vm).
    type: path
notes:
  - A row whose config cannot be read is left out with a warning naming the VM.
  - The status filter and RV(vms[].status) go by the provider's answer after a refresh; RV(vms[].recorded_status)
    keeps what the state says. The state is not updated; the C(golem.vm.golem) inventory with
    O(golem.vm.golem#inventory:refresh=true) shows the same.
seealso:
  - module: golem.vm.golem_vm
  - module: golem.vm.golem_stream
  - plugin: golem.vm.golem
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Every VM in the state file
  golem.vm.golem_vm_info:
  register: all_vms

- name: Running VMs labelled role=web in Sweden or the US, whose names start with web-
  golem.vm.golem_vm_info:
    names: ["web-*"]
    countries: [SE, US]
    statuses: [running]
    labels:
      role: web
  register: web

- name: Show how to reach them
  ansible.builtin.debug:
    msg: "{{ web.vms | map(attribute='ssh_command') }}"

- name: Members golem_fleet gave up on, with what it did to each and why
  golem.vm.golem_vm_info:
    statuses: [abandoned]
  register: abandoned

- name: Every VM but those
  golem.vm.golem_vm_info:
    exclude_statuses: [abandoned]

- name: Ask the providers and the chain about every VM
  golem.vm.golem_vm_info:
    refresh: true
    refresh_timeout: 15
  register: live

- name: Forget the VMs their provider no longer has
  golem.vm.golem_vm:
    name: "{{ item.name }}"
    state: absent
  loop: "{{ live.vms | selectattr('live_status', 'equalto', 'missing') }}"

- name: Give a day of runway to running VMs whose payment stream has less than an hour left
  golem.vm.golem_stream:
    name: "{{ item.name }}"
    runway_hours: 24
  loop: "{{ live.vms | selectattr('status', 'equalto', 'running') | selectattr('stream_remaining_seconds', 'number')
            | selectattr('stream_remaining_seconds', 'lt', 3600) }}"

- name: From a team's PostgreSQL state
  golem.vm.golem_vm_info:
    state_url: postgresql://golem@db.example.com:5432/golem?sslmode=verify-full
"""

RETURN = r"""
vms:
  description:
    - The VMs that match every filter, sorted by name, each as M(golem.vm.golem_vm) returns RV(golem.vm.golem_vm#module:vm).
    - With O(refresh=true), each also has RV(vms[].recorded_status), RV(vms[].live_status),
      RV(vms[].provider_reachable), RV(vms[].refresh_error), RV(vms[].stream_remaining_seconds),
      RV(vms[].stream_error) and RV(vms[].missing_reason), and RV(vms[].status) is the live one when the provider
      gave one.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Name of the VM., type: str, sample: web-1}
    provider_id: {description: Id of the provider., type: str, sample: "0x1234567890abcdef1234567890abcdef12345678"}
    provider_ip: {description: IP address of the provider., type: str, sample: 203.0.113.7}
    provider_port: {description: Port of the provider API., type: int, sample: 7466}
    country: {description: "Country of the provider; V(null) when not recorded.", type: str, sample: SE}
    status:
      description:
        - "V(creating), V(running), V(stopped), V(error) or V(abandoned) as recorded; after a refresh the provider's
          status when it gave one, which can also be V(stopping), V(deleted) or V(missing). An abandoned VM stays
          V(abandoned)."
      type: str
      sample: running
    resources: {description: "C(cpu), C(memory) (GB) and C(storage) (GB).", type: dict,
                sample: {cpu: 1, memory: 1, storage: 10}}
    size: {description: "The size asked for at creation, if any.", type: str, sample: small}
    image: {description: The image., type: str, sample: "24.04"}
    ssh_host: {description: Host to SSH to (the provider's proxy)., type: str, sample: 203.0.113.7}
    ssh_port: {description: Port to SSH to., type: int, sample: 50800}
    ssh_user: {description: User to log in as., type: str, sample: root}
    ssh_private_key_path: {description: "Private key for logging in, if known.", type: str,
                           sample: /home/me/.golem/requestor/ssh/golem_id_ed25519}
    ssh_public_key: {description: The public key installed at creation., type: str}
    known_hosts_path: {description: The known_hosts file holding the VM's host key., type: str}
    ssh_command:
      description: An C(ssh) command line to paste; it checks the VM's host key strictly against O(known_hosts_path).
      type: str
      sample: "ssh -i /home/me/.golem/requestor/ssh/golem_id_ed25519 -p 50800
        -o UserKnownHostsFile=/home/me/.golem/requestor/known_hosts -o StrictHostKeyChecking=yes -- root@203.0.113.7"
    labels: {description: "The VM's labels; empty when it has none.", type: dict, sample: {role: web}}
    stream_id: {description: "Id of the VM's payment stream, when it has one.", type: int, sample: 7}
    created_at: {description: When the VM was recorded (UTC)., type: str, sample: "2026-11-27 08:00:00"}
    updated_at: {description: When its record last changed (UTC)., type: str}
    error: {description: Why the VM is in status V(error)., type: str}
    history:
      description:
        - What M(golem.vm.golem_fleet) did to the VM and why, oldest first (the newest 50 entries); empty for a VM
          it did nothing to.
        - Each entry has C(at) (epoch seconds), C(event) (V(unreachable), V(answered), V(abandoned), V(replaced),
          V(replacement), V(settled) or V(topped_up)), C(detail) (why, in a sentence), and C(wei) (the money it
          moved) and C(tx) (its transaction) when it moved money.
        - Entries of any other shape in the state are left out.
      type: list
      elements: dict
      sample:
        - {at: 1764403200, event: unreachable, detail: "its provider did not answer"}
        - {at: 1764406800, event: abandoned, detail: "unreachable for 1 h and gone from discovery; stream terminated",
           wei: 1200000000000000, tx: "0x9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"}
    unreachable_since:
      description: Since when (epoch seconds) the VM's provider has not answered M(golem.vm.golem_fleet); V(null) when it answers.
      type: int
      sample: 1764403200
    abandoned_at:
      description: When (epoch seconds) M(golem.vm.golem_fleet) gave the VM up; V(null) unless it is V(abandoned).
      type: int
      sample: 1764406800
    recorded_status:
      description: The status in the state, whatever the provider said.
      returned: when O(refresh=true)
      type: str
      sample: running
    live_status:
      description:
        - The status the provider reports, V(missing) when it no longer has the VM, V(null) when it did not say.
      returned: when O(refresh=true)
      type: str
      sample: running
    provider_reachable:
      description:
        - Whether the VM's provider answered (V(false) also when something other than the recorded provider
          answered at its address); V(null) when it was not asked (see RV(vms[].refresh_error)).
      returned: when O(refresh=true)
      type: bool
      sample: true
    refresh_error:
      description: Why the live status is not known, or what the provider answered instead of the VM.
      returned: when O(refresh=true)
      type: str
      sample: "provider request GET http://203.0.113.7:7466/api/v1/vms/web-1 failed: connection refused"
    stream_remaining_seconds:
      description:
        - Seconds of runway the VM's payment stream has left, by the chain's clock; V(0) once it has ended, V(null)
          without a stream or when it could not be read (see RV(vms[].stream_error)).
      returned: when O(refresh=true)
      type: int
      sample: 3412
    stream_error:
      description: Why the stream's runway could not be read.
      returned: when O(refresh=true)
      type: str
    missing_reason:
      description: For a VM its provider no longer has, why, when its payment stream tells (it ran out, for example).
      returned: when O(refresh=true)
      type: str
      sample: "its payment stream 7 ran out at chain time 1764403200, and a paying provider deletes a VM whose stream
        has ended"
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
from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import VMFilter
from ansible_collections.golem.vm.plugins.module_utils.vm.info import list_vms
from ansible_collections.golem.vm.plugins.module_utils.vm.refresh import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    refresh_options,
)
from ansible_collections.golem.vm.plugins.module_utils.vm_request import resolve_paths

ARGUMENT_SPEC: ArgumentSpec = member_spec(
    STATE_ARGUMENTS,
    # The refresh reads streams by the payment options' own rules; the group's other options are accepted only.
    only(PAYMENT_ARGUMENTS, "payments_rpc_url", "stream_payment_address"),
    names={"type": "list", "elements": "raw", "default": []},
    providers={"type": "list", "elements": "raw", "default": []},
    countries={"type": "list", "elements": "raw", "default": []},
    statuses={"type": "list", "elements": "raw", "default": []},
    exclude_statuses={"type": "list", "elements": "raw", "default": []},
    labels={"type": "dict"},
    refresh={"type": "bool", "default": False},
    refresh_timeout={"type": "float", "default": DEFAULT_TIMEOUT},
    refresh_concurrency={"type": "int", "default": DEFAULT_CONCURRENCY},
)
MODULE_SETTINGS: dict[str, Any] = {"supports_check_mode": True}


class GolemVMInfo(ConnectedModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        p = self.params
        # Every option is checked before the state is opened or anyone is asked.
        vm_filter = VMFilter.parse(names=p["names"], providers=p["providers"], countries=p["countries"],
                                   statuses=p["statuses"], labels=p["labels"],
                                   exclude_statuses=p["exclude_statuses"])
        options = refresh_options(
            timeout=p["refresh_timeout"], concurrency=p["refresh_concurrency"],
            payments_rpc_url=p["payments_rpc_url"], stream_payment_address=p["stream_payment_address"],
            discovery_url=p["discovery_url"], default_port=p["provider_port"], request_timeout=p["timeout"],
            validate_certs=p["validate_certs"])
        where, known_hosts_path = resolve_paths(p)
        store = self.closes(open_store(where.url, where.path, url_field=where.field if where.url else "state_url",
                                       path_field=where.field if where.path else "state_path"))
        vms = list_vms(store, vm_filter, known_hosts_path=known_hosts_path,
                       refresh=options if p["refresh"] else None, warn=self.warn)
        return {"changed": False, "vms": vms}


def main() -> None:
    GolemVMInfo().run()


if __name__ == "__main__":
    main()
