#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_vm
short_description: Create, stop and destroy a VM on a VM on Golem provider
version_added: 0.2.0
description:
  - Creates a VM on a VM on Golem provider over the provider's HTTP API with your SSH key, waits until it answers
    on SSH, and records it in a local state file (SQLite) that the upstream C(golem) CLI can read too.
  - The VM's name is the key. A second run with the same name changes nothing and makes no write call.
  - The provider is O(provider_id) or O(provider_ip), or, when neither is given, one the module picks from
    discovery by O(country), O(platform) and size, with O(provider_selection); when that provider refuses or
    fails the create, the next candidate is tried.
  - The SSH host key of a new VM is recorded, on first contact, in a known_hosts file the collection manages
    (O(known_hosts_path)). Connections made with it (RV(vm.ssh_command), the C(golem.vm.golem) inventory,
    the playbooks) check the key strictly, so a VM whose key changes is refused. The entry is removed when
    the VM is destroyed, because providers reuse their SSH ports.
  - Works with current providers (asynchronous create jobs) and MVP-era ones (synchronous create).
  - A recorded VM counts as gone only when its own provider says so - a 404 with the provider's JSON error,
    from a server that proves it is the recorded provider (its C(GET /api/v1/provider/info) gives the recorded
    id; for an MVP-era provider, discovery's advertisement of that id still names the address). Anything else
    at the address (a web server, another provider, a redirect, HTML) fails the task, naming the address and
    what answered; the state file and known_hosts stay unchanged and nothing is created.
  - Every removal of a row or of a host key is reported as a change, in check mode too.
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
    description: Makes no write call and writes no file; returns the request it would send in RV(request) and
      what it would pay in RV(bill). Nothing is signed or sent to the chain.
  diff_mode:
    support: full
    description: Shows the VM's placement, resources and status before and after; never key material.
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
      - Name of the VM, unique on its provider and in the state file.
      - 3 to 64 characters; lower-case letters, digits and V(-); starts and ends with a letter or digit;
        no V(--). Checked before any call, as upstream checks it.
    type: str
    required: true
  state:
    description:
      - V(present) creates the VM when it does not exist, and waits until it answers on SSH when O(wait=true).
      - V(started) makes sure an existing VM runs; it creates nothing. Upstream providers have no start
        endpoint, so a stopped VM cannot be started again and the module fails with a message saying so.
      - V(stopped) stops the VM (current providers only; the MVP-era API cannot stop VMs).
      - V(absent) destroys the VM on its provider and removes it from the state file and known_hosts.
        For a VM the state file does not hold, give O(provider_id), or O(provider_ip) and O(provider_port); the
        VM of that name is then deleted on that provider, once the provider has proved who it is.
    type: str
    choices: [present, started, stopped, absent]
    default: present
  provider_id:
    description:
      - Id (an Ethereum address) of the provider to create the VM on, looked up in discovery.
      - Letters, digits, V(.), V(:), V(_) and V(-) only; checked before it becomes part of discovery's URL.
      - Mutually exclusive with O(provider_ip).
    type: str
  provider_ip:
    description:
      - IP address of the provider to create the VM on; its API is at C(http://<provider_ip>:<provider_port>).
      - Discovery is asked for the provider's id and country, to record them; when discovery cannot answer,
        the VM is created all the same and recorded without them, with a warning.
      - Mutually exclusive with O(provider_id).
    type: str
  country:
    description:
      - Two-letter country code (ISO 3166), in any case, of the provider to pick, for example V(SE).
    type: str
  platform:
    description:
      - CPU platform of the provider to pick, for example V(x86_64).
      - Released discovery servers drop this field, so with them no provider matches a platform.
    type: str
  provider_selection:
    description:
      - How to pick a provider when neither O(provider_id) nor O(provider_ip) is given.
      - V(cheapest) takes the provider where the size costs least a month as it is paid. Adverts with GLM prices
        come first, by their GLM price (a provider that takes payment is paid in GLM, whatever its USD figure);
        then providers with USD prices only, by USD; then providers without prices.
      - Providers whose GLM price for the size is over O(max_glm_per_month) are skipped whatever this says.
      - V(first) takes discovery's order; V(most_free) takes the one with the most free CPU, then memory.
    type: str
    choices: [cheapest, first, most_free]
    default: cheapest
  size:
    description:
      - V(small) is 1 CPU, 1 GB memory and 10 GB storage; V(medium) 2, 4, 20; V(large) 4, 8, 40;
        V(xlarge) 8, 16, 80.
      - Mutually exclusive with O(cpu), O(memory) and O(storage). Without any of them a new VM is V(small).
      - Set at creation only; a different value for an existing VM gives a warning and changes nothing.
    type: str
    choices: [small, medium, large, xlarge]
  wait:
    description:
      - Whether to wait until the VM runs, has an SSH port and answers on it with an SSH banner.
      - With V(false), a new VM is returned as soon as its provider has it running.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole task may take, every call and wait included. The task fails when it runs out;
        a VM that exists by then stays recorded, and the next run continues where this one stopped.
    type: int
    default: 600
  adopt:
    description:
      - Whether to take over a VM of this name that exists on the provider but is not in the state file.
      - Without it the module fails, because creating the name again would orphan the existing VM
        (upstream silently overwrites names).
    type: bool
    default: false
  abandon_unreachable_after:
    description:
      - Give the VM up when its provider has not answered for longer than this, with O(state=present). A
        duration, in seconds or as a number with V(s), V(m), V(h) or V(d), for example V(30m). Unset (the
        default), a provider that does not answer only fails the task, as always.
      - With it, the first time the provider does not answer (connection refused or reset, no answer in time, a
        gateway's 502, 503 or 504) the time is recorded on the row, and the task fails; any answer clears it.
        Once the provider has been silent for longer than this B(and) its advert is gone from discovery, the
        VM is abandoned, as M(golem.vm.golem_fleet) abandons a member with O(golem.vm.golem_fleet#module:replace_unreachable_after).
        Its row stays, with status V(abandoned); the payment stream the collection opened for it is terminated
        (the deposit not yet vested comes back; the provider keeps what vested). No other VM is created in its
        place; see RV(abandoned).
      - A later run on an abandoned VM settles it once its provider answers (deleting the VM if it is still
        there, then forgetting the row) and, with O(state=present), creates the VM anew; while the provider is
        silent it fails, changing nothing.
    type: str
    version_added: 0.3.0
notes:
  - Never lists a provider's VMs; it asks for one VM by name. Upstream providers kill creates that are pending
    while their VM list is read.
  - A failure after the VM exists never leaves it unrecorded; the VM is deleted, or kept in the state file with
    status V(error).
seealso:
  - module: golem.vm.golem_provider_info
"""

EXAMPLES = r"""
- name: Create a small VM on the cheapest provider in Sweden
  golem.vm.golem_vm:
    name: web-1
    size: small
    country: SE
  register: web

- name: Show how to reach it
  ansible.builtin.debug:
    msg: "{{ web.vm.ssh_command }}"

- name: Create a VM on one provider with a given key and size
  golem.vm.golem_vm:
    name: db-1
    provider_id: "0x1234567890abcdef1234567890abcdef12345678"
    cpu: 2
    memory: 4
    storage: 40
    ssh_public_key_path: ~/.ssh/id_ed25519.pub

- name: Stop a VM
  golem.vm.golem_vm:
    name: web-1
    state: stopped

- name: Destroy a VM
  golem.vm.golem_vm:
    name: web-1
    state: absent

- name: Destroy a VM the state file does not hold (left over from another controller)
  golem.vm.golem_vm:
    name: old-web-1
    state: absent
    provider_id: "0x1234567890abcdef1234567890abcdef12345678"

- name: Use a network of your own (its Golem Base node and its central discovery), a separate state file and no waiting
  golem.vm.golem_vm:
    name: test-1
    golem_base_rpc_url: http://192.0.2.10:8545/rpc
    discovery_url: http://192.0.2.10:9001
    state_path: /srv/golem/vms.db
    wait: false

- name: Find providers on central discovery only (where MVP-era providers advertise)
  golem.vm.golem_vm:
    name: test-2
    discovery_backend: central
    discovery_url: http://192.0.2.10:9001
"""

RETURN = r"""
vm:
  description: The VM as recorded; empty after O(state=absent).
  returned: always
  type: dict
  contains:
    name: {description: Name of the VM., type: str, sample: web-1}
    provider_id: {description: Id of the provider., type: str, sample: "0x1234567890abcdef1234567890abcdef12345678"}
    provider_ip: {description: IP address of the provider., type: str, sample: 203.0.113.7}
    provider_port: {description: Port of the provider API., type: int, sample: 7466}
    country: {description: Country of the provider., type: str, sample: SE}
    status: {description: "V(creating), V(running), V(stopped), V(error), or V(abandoned) (given up on).", type: str,
             sample: running}
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
    created_at: {description: When the VM was recorded (UTC)., type: str, sample: "2026-11-27 08:00:00"}
    updated_at: {description: When its record last changed (UTC)., type: str}
    error: {description: Why the VM is in status V(error)., type: str}
    labels: {description: The VM's labels., type: dict, sample: {role: web}}
    stream_id: {description: "Id of the VM's payment stream, when it has one.", type: int, sample: 7}
    history:
      description:
        - What golem.vm.golem_fleet did to the VM and why (C(unreachable), C(answered), C(abandoned), C(stream_terminated),
          C(replacement), C(topped_up)), oldest first; each with C(at) (Unix time), C(event), C(detail) and, when money
          moved, C(wei) and C(tx). Entries of another shape in the row are left out.
      type: list
      elements: dict
      version_added: 0.3.0
      sample: [{at: 1796630400, event: abandoned, detail: "provider 0x88... has not answered for 1900 s"}]
    unreachable_since:
      description: Unix time at which the VM's provider was first found not answering; null once it answers again.
      type: int
      version_added: 0.3.0
    abandoned_at:
      description: Unix time at which golem.vm.golem_fleet gave up on the VM (status V(abandoned)).
      type: int
      version_added: 0.3.0
abandoned:
  description:
    - When this run gave the VM up (O(abandon_unreachable_after)), why, the stream terminated and the wei that came
      back; empty otherwise. It is also in the VM's C(history).
  returned: always
  type: dict
  version_added: 0.3.0
  sample: {name: web-1, provider: "0x88... (203.0.113.9)", why: "provider 0x88... (203.0.113.9) has not answered
           for 1900 s (abandon_unreachable_after 1800 s) and its advert is gone from discovery", stream_id: 7,
           refund_wei: 40822368421052}
stream:
  description:
    - What this run did with the VM's payment stream; empty when it did nothing with one.
  returned: always
  type: dict
  contains:
    stream_id: {description: Id of the stream on the StreamPayment contract., type: int, sample: 7}
    deposit_wei: {description: "Deposit of a stream opened by this run, in wei.", type: int, sample: 43835616438000}
    rate_wei_per_second:
      description: "Rate of a stream opened by this run, in wei a second (from the advertised GLM prices)."
      type: int
      sample: 12176560121
    terminated: {description: Whether this run terminated the stream., type: bool, sample: true}
    refunded_wei:
      description: "The unvested deposit that came back to the paying account when the stream was terminated."
      type: int
      sample: 41000000000000
actions:
  description: What the module did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["created VM web-1 on provider 0x12... (203.0.113.7) (job 5f0c...)", "recorded the host key of VM web-1"]
request:
  description: In check mode, the create request the module would send (method, URL and JSON body).
  returned: when a VM would be created in check mode
  type: dict
  sample:
    method: POST
    url: "http://203.0.113.7:7466/api/v1/vms?async=true"
    body: {name: web-1, resources: {cpu: 1, memory: 1, storage: 10}, ssh_key: "ssh-ed25519 AAAAC3Nza... me@host",
           image: "24.04", stream_id: null}
bill:
  description:
    - In check mode, what creating the VM would pay, read from the provider's C(GET /api/v1/provider/info) and its
      advertised GLM prices; nothing is signed or sent. Also shown in the diff's C(after).
    - V(null) when the provider takes no payment (an MVP-era provider, or one with payments off) or O(stream_id)
      is given.
  returned: when a VM would be created in check mode
  type: dict
  version_added: 0.3.0
  contains:
    provider_id: {description: The provider the stream would pay., type: str,
                  sample: "0x1234567890abcdef1234567890abcdef12345678"}
    glm_per_month:
      description: The VM's monthly price at the provider's advertised GLM prices (at most O(max_glm_per_month)).
      type: float
      sample: 32.0
    rate_wei_per_second: {description: The stream's rate in wei a second., type: int, sample: 12176560121}
    payment_hours: {description: "Hours the deposit pays for (O(payment_hours)).", type: int, sample: 1}
    deposit_wei: {description: "The deposit the stream would lock, in wei (rate times O(payment_hours)).",
                  type: int, sample: 43835616435600}
    stream_payment_address: {description: The StreamPayment contract the stream would be opened on., type: str}
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
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES
from ansible_collections.golem.vm.plugins.module_utils.vm.healing import Healing, advertised_in, check_duration
from ansible_collections.golem.vm.plugins.module_utils.vm.lifecycle import Lifecycle
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import STRATEGIES, Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.view import diff_view, represent_vm
from ansible_collections.golem.vm.plugins.module_utils.vm_request import prepare_task, vm_services

ARGUMENT_SPEC: ArgumentSpec = member_spec(
    VM_SPEC_ARGUMENTS,
    PAYMENT_ARGUMENTS,
    name={"type": "str", "required": True},
    state={"type": "str", "default": "present", "choices": ["present", "started", "stopped", "absent"]},
    provider_id={"type": "str"},
    provider_ip={"type": "str"},
    country={"type": "str"},
    platform={"type": "str"},
    provider_selection={"type": "str", "default": "cheapest", "choices": list(STRATEGIES)},
    adopt={"type": "bool", "default": False},
    abandon_unreachable_after={"type": "str"},
)
MODULE_SETTINGS: dict[str, Any] = {"supports_check_mode": True,
                                   "mutually_exclusive": [*VM_SPEC_EXCLUSIVE, ("provider_id", "provider_ip")]}


class GolemVM(ConnectedModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        p = self.params
        abandon_after = check_duration(p["abandon_unreachable_after"], "abandon_unreachable_after")
        pinned = None
        if p["provider_id"] or p["provider_ip"]:
            pinned = Placement(p["provider_ip"], p["provider_port"], p["provider_id"], None)
        # Every option is checked before the state file is opened or any call is made.
        task = prepare_task(p, name=p["name"], state=p["state"], pinned=pinned, country=p["country"],
                            adopt=p["adopt"])
        self.closes(task.store)
        record = task.store.get(p["name"])
        if record is not None and not record.ok:
            raise ValidationError(
                f"the record of VM {p['name']} in {task.store.location} is unreadable ({record.config_error}); "
                "fix or remove that row before managing the VM",
                field="name", value=p["name"])
        discovery = self.discovery_within(task.deadline)

        def candidates(preferred: Placement | None = None) -> list[Placement]:
            # Imported here: only a create places a VM, and placing reads discovery's listing.
            from ansible_collections.golem.vm.plugins.module_utils.vm.placer import Placer

            return Placer(
                discovery, spec=task.want.spec or SIZES["small"], provider_port=p["provider_port"],
                pinned=pinned, country=task.want.country, platform=p["platform"], strategy=p["provider_selection"],
                warn=self.warn,
                # Only a create pays: a VM already on a dear provider must still be found and deleted.
                max_glm_per_month=p["max_glm_per_month"] if p["state"] == "present" else None,
            ).candidates(preferred)

        def payments() -> Any:
            # Imported here: only a create, or a stream to terminate, pays.
            from ansible_collections.golem.vm.plugins.module_utils.vm.payments import build_payments

            return build_payments(p, local_dir=task.state.local_dir, deadline=task.deadline, discovery=discovery,
                                  warn=self.warn, store=task.store)

        services = vm_services(self, task, payments)
        life = Lifecycle(task.want, services, candidates=candidates, healing=Healing(
            services, replace_after=abandon_after, advertised=advertised_in(discovery, self.warn),
            option="abandon_unreachable_after"))
        try:
            final = life.run(record)
        except GolemError as exc:
            now = task.store.get(p["name"]) if not self.module.check_mode else None
            self.fail(exc, changed=life.out.changed, actions=life.out.actions,
                      vm=represent_vm(now, known_hosts_path=task.known_hosts_path) if now else {},
                      stream=services.stream_report(p["name"]))
        result: dict[str, Any] = {
            "changed": life.out.changed,
            "actions": life.out.actions,
            "vm": represent_vm(final, known_hosts_path=task.known_hosts_path) if final else {},
            "stream": services.stream_report(p["name"]),
            "abandoned": life.out.abandoned or {},
        }
        if life.out.request is not None:
            result["request"] = life.out.request
            result["bill"] = life.out.bill
        if self.module._diff:
            result["diff"] = {"before": diff_view(record), "after": diff_view(final)}
            if life.out.bill is not None:
                result["diff"]["after"]["bill"] = life.out.bill
        return result


def main() -> None:
    GolemVM().run()


if __name__ == "__main__":
    main()
