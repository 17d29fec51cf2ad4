# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: golem
short_description: VMs rented on VM on Golem, from the state (SQLite file or PostgreSQL)
version_added: 0.2.0
description:
  - Lists the VMs that M(golem.vm.golem_vm) recorded in its state file (SQLite, the upstream C(golem) CLI's format),
    each ready to connect to over SSH through its provider's proxy port, with strict host key checking against the
    known_hosts file the collection manages.
  - Uses a YAML configuration file whose name ends with C(golem.yml) or C(golem.yaml).
  - The state file is read with one query; a missing state file gives an empty inventory (run with C(-v) to see
    why). A row that cannot be used (unreadable config, no SSH port) is skipped with a warning naming the VM.
  - Filters by O(names), O(providers), O(countries), O(statuses), O(exclude_statuses) and O(labels), with the same
    names, defaults and rules as M(golem.vm.golem_vm_info); a VM is listed only when it matches every filter given.
  - A key in the configuration file that is not one of the options below fails, with the list of valid keys.
  - Hosts are in the group C(golem) and in its child groups C(golem_provider_<provider id>) (the id in lower case,
    or the provider IP when the id is not recorded), C(golem_country_<code>) (lower case, for example
    C(golem_country_se)) and C(golem_status_<status>). With O(refresh=true), hosts whose provider did not answer
    are also in C(golem_unreachable), and hosts whose payment stream has less runway left than
    O(runway_threshold_hours) are in C(golem_runway_low).
  - A member M(golem.vm.golem_fleet) gave up on and replaced (status V(abandoned)) is listed like every status, in
    C(golem) and C(golem_status_abandoned) only, with no C(ansible_port), C(ansible_user), key or ssh options and
    C(ansible_host) set to C(abandoned.golem.invalid), a name that never resolves, so a play that reaches it through
    C(golem) or C(all) fails to connect instead of reaching what its name or old endpoint now leads to.
  - Host variables, named with O(hostvars_prefix) (default C(golem_)), are the fields of the
    RV(golem.vm.golem_vm#module:vm) result (C(name), C(provider_id), C(provider_ip), C(provider_port), C(country),
    C(status), C(resources), C(size), C(image), C(ssh_host), C(ssh_port), C(ssh_user), C(ssh_private_key_path),
    C(ssh_public_key), C(known_hosts_path), C(ssh_command), C(labels), C(stream_id), C(created_at), C(updated_at),
    C(error), C(history), C(unreachable_since), C(abandoned_at)), plus C(vm_id) and C(host_key_known) (whether
    known_hosts holds the VM's host key; connecting fails until it does; V(null) for an abandoned host).
    C(golem_history) is as RV(golem.vm.golem_vm_info#module:vms[].history), only entries of golem_fleet's shape.
    C(golem_labels) is a dictionary (empty for a VM without labels), so O(keyed_groups) can group by a label
    (C(golem_labels.role) as the key) or by every label (C(golem_labels) as the key).
    With O(refresh=true) also C(recorded_status), C(live_status), C(provider_reachable), C(refresh_error),
    C(stream_remaining_seconds), C(stream_error) and C(missing_reason) (see O(refresh)).
  - Connection variables have no prefix - C(ansible_host), C(ansible_port) (the provider's SSH proxy port),
    C(ansible_user), C(ansible_ssh_private_key_file) and C(ansible_ssh_common_args) (C(-o UserKnownHostsFile=...)
    and C(-o StrictHostKeyChecking=yes)). Host key checking is never turned off. An abandoned host has only
    C(ansible_host), see above.
author:
  - golem.vm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - constructed
  - inventory_cache
requirements:
  - Only with O(refresh=true) - requests >= 2.30 with urllib3 >= 2.0, and pydantic >= 2.
options:
  plugin:
    description:
      - The name of this plugin. The short name V(golem) is accepted only when the plugin is enabled by its full
        name (C(enable_plugins = golem.vm.golem) in C(ansible.cfg) or E(ANSIBLE_INVENTORY_ENABLED)); the default
        C(auto) plugin needs V(golem.vm.golem).
    type: str
    required: true
    choices: [golem.vm.golem, golem]
  state_path:
    description:
      - The state file that M(golem.vm.golem_vm) writes; the same default and variable as that module and the
        upstream C(golem) CLI.
      - Relative paths are relative to the current directory. An empty E(GOLEM_REQUESTOR_DB_PATH) counts as not set.
    type: path
    default: ~/.golem/requestor/vms.db
    env:
      - name: GOLEM_REQUESTOR_DB_PATH
  state_url:
    description:
      - A C(postgresql://) URL of a PostgreSQL state shared by a team (see M(golem.vm.golem_vm)), instead of the
        SQLite O(state_path). The password comes from the URL, E(PGPASSWORD) or a passfile; messages name only
        C(user@host:port/dbname).
      - Needs the Python library psycopg 3 on the controller (C(pip install "psycopg[binary]")).
    type: str
    env:
      - name: GOLEM_REQUESTOR_STATE_URL
  known_hosts_path:
    description:
      - The known_hosts file holding the VMs' host keys, used with C(StrictHostKeyChecking=yes).
      - Defaults to C(known_hosts) beside the state file, where M(golem.vm.golem_vm) records the keys.
      - E(GOLEM_REQUESTOR_KNOWN_HOSTS_PATH) is read by this plugin and by the modules alike, so host keys are
        checked where they were recorded. The older E(GOLEM_INVENTORY_KNOWN_HOSTS_PATH), which only this plugin
        read, is refused with a message unless E(GOLEM_REQUESTOR_KNOWN_HOSTS_PATH) names the same file.
    type: path
    env:
      - name: GOLEM_REQUESTOR_KNOWN_HOSTS_PATH
  statuses:
    description:
      - Only VMs whose status is one of these are listed; an empty list (the default, as for
        M(golem.vm.golem_vm_info)) lists every status. Use V([running]) for the hosts you can connect to.
      - Recorded statuses are V(creating), V(running), V(stopped), V(error) and V(abandoned) (a member
        M(golem.vm.golem_fleet) gave up on). With O(refresh=true) the status a provider reports counts instead,
        which can also be V(stopping), V(deleted) or V(missing) (the provider does not know the VM); the recorded
        status counts for VMs whose provider did not answer. An abandoned VM stays V(abandoned) whatever its
        provider reports.
    type: list
    elements: str
    default: []
    env:
      - name: GOLEM_INVENTORY_STATUSES
  exclude_statuses:
    description:
      - Leave out VMs with one of these statuses, the same ones O(statuses) takes; for example V([abandoned]) lists
        every VM but the members M(golem.vm.golem_fleet) gave up on.
      - A status may not be in both O(statuses) and O(exclude_statuses).
    type: list
    elements: str
    default: []
    env:
      - name: GOLEM_INVENTORY_EXCLUDE_STATUSES
  names:
    description:
      - Only VMs with these names; shell-style patterns such as V(web-*) are allowed. Empty means every VM.
    type: list
    elements: str
    default: []
    env:
      - name: GOLEM_INVENTORY_NAMES
  providers:
    description:
      - Only VMs on these providers, each given by provider id or by IP address, in any case. Empty means every
        provider.
    type: list
    elements: str
    default: []
    env:
      - name: GOLEM_INVENTORY_PROVIDERS
  countries:
    description:
      - Only VMs on providers in these countries, as two-letter codes in any case, for example V([SE, US]). Empty
        means every country; a VM whose provider's country is not recorded matches none.
    type: list
    elements: str
    default: []
  labels:
    description:
      - Only VMs that carry every one of these labels, each with this value (labels are set with
        O(golem.vm.golem_vm#module:labels)). Numbers and booleans are taken as their text, as
        M(golem.vm.golem_vm) stores them.
    type: dict
  filters:
    description:
      - Deprecated, kept so older configuration files work; give its keys at the top level instead. A warning says
        so when it is set.
      - A dictionary of the filters O(labels), O(countries), O(providers) and O(statuses), each meaning what the
        option of its name means; setting the same filter at the top level and here is an error.
    type: dict
    default: {}
  ssh_private_key_path:
    description:
      - The private key for every host (C(ansible_ssh_private_key_file)), instead of the key recorded for each VM.
      - For runs where the recorded path no longer exists, such as a job whose credential injects the key as a
        new file each time (the golem.vm AWX credential type sets E(GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH)). The
        C(golem_ssh_private_key_path) host variable keeps the recorded path.
      - An empty E(GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH) counts as not set.
    type: path
    env:
      - name: GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH
  hostname:
    description:
      - A Jinja2 template for the inventory host name, over the host variables (with O(hostvars_prefix)), for
        example V({{ golem_country | default('xx', true) | lower }}-{{ golem_name }}) (C(golem_country) is V(null)
        when the provider's country is not recorded). Without it the VM name is the host name.
      - A template that fails, or gives an empty name, is an error with O(strict=true); otherwise the VM name is
        used, with a warning. When two VMs get the same host name the second is skipped with a warning.
    type: str
    env:
      - name: GOLEM_INVENTORY_HOSTNAME
  hostvars_prefix:
    description:
      - Prefix of the host variables that describe the VM. The connection variables (C(ansible_*)) have none.
    type: str
    default: golem_
    env:
      - name: GOLEM_INVENTORY_HOSTVARS_PREFIX
  refresh:
    description:
      - Ask each VM's provider for the VM's live status (C(GET /api/v1/vms/NAME), never the list endpoint, which
        kills pending creates upstream), several at a time, within O(refresh_timeout).
      - A provider that does not answer in time marks its hosts (C(golem_provider_reachable=false), group
        C(golem_unreachable)); they stay in the inventory with their recorded status.
      - A VM is reported V(missing) only when its own provider says so - a 404 with the provider's JSON error
        from a server that proves it is the recorded provider. Anything else at the address (a web server, another
        provider, a redirect, HTML) makes the host unreachable too, with the reason in C(golem_refresh_error).
      - The state file is not changed.
      - For each VM with a payment stream, the stream is read from the chain at O(payments_rpc_url) (C(streams(id))
        of the contract the row records, else of O(stream_payment_address)), all in JSON-RPC batches while the
        providers are asked. C(golem_stream_remaining_seconds) is its runway (V(0) once it has ended, V(null) without
        a stream or when it could not be read, with the reason in C(golem_stream_error)). A running stream with less
        runway than O(runway_threshold_hours) puts its host in C(golem_runway_low), unless the provider no longer has
        the VM.
      - A VM the provider no longer has (status V(missing)) whose stream has ended gets the reason in
        C(golem_missing_reason), for example that its stream ran out; a paying provider deletes such VMs.
    type: bool
    default: false
    env:
      - name: GOLEM_INVENTORY_REFRESH
  discovery_url:
    description:
      - The discovery service that vouches for MVP-era providers during O(refresh=true). Such providers have no
        C(/api/v1/provider/info), so before a VM of theirs is reported V(missing), discovery's advertisement for the
        recorded provider id must still name the provider's address.
      - Asked only when an MVP-era provider says a VM is not found.
    type: str
    default: http://195.201.39.101:9001
    env:
      - name: GOLEM_REQUESTOR_DISCOVERY_URL
  refresh_timeout:
    description:
      - Seconds the whole refresh may take, every request included.
    type: float
    default: 10.0
    env:
      - name: GOLEM_INVENTORY_REFRESH_TIMEOUT
  refresh_concurrency:
    description:
      - How many requests a refresh has in flight at once.
    type: int
    default: 16
    env:
      - name: GOLEM_INVENTORY_REFRESH_CONCURRENCY
  payments_rpc_url:
    description:
      - JSON-RPC URL of the chain the providers are paid on, read during O(refresh=true) for the streams' runways.
      - The same variables as the modules' O(golem.vm.golem_vm#module:payments_rpc_url); an empty one counts as not
        set.
    type: str
    default: https://l2.holesky.golemdb.io/rpc
    # Ansible takes the last of the variables set: GOLEM_REQUESTOR_POLYGON_RPC_URL wins, as for the modules.
    env:
      - name: GOLEM_REQUESTOR_L2_RPC_URL
      - name: GOLEM_REQUESTOR_POLYGON_RPC_URL
  stream_payment_address:
    description:
      - The StreamPayment contract of streams whose row records none (streams given to M(golem.vm.golem_vm) by id,
        or rows the upstream CLI wrote). Rows of streams the collection opened record their contract.
    type: str
    env:
      - name: GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS
  runway_threshold_hours:
    description:
      - With O(refresh=true), hosts whose payment stream runs and has less than this many hours of runway left are
        in the group C(golem_runway_low), so a scheduled job can top up exactly those with M(golem.vm.golem_stream).
      - Choose it larger than the interval of that job, so no stream runs out between two runs.
    type: float
    default: 1.0
    env:
      - name: GOLEM_INVENTORY_RUNWAY_THRESHOLD_HOURS
notes:
  - With O(cache=true) the rows read (and the refresh results) are cached as plain JSON, and the groups,
    O(compose), O(groups) and O(keyed_groups) are built again from them on every run. A change of O(state_path),
    O(statuses), O(exclude_statuses), O(names), O(providers), O(countries), O(labels), O(filters) or O(refresh)
    makes the cached entry unused.
  - In AWX or AAP the state file must be reachable from the inventory sync (for example on a mounted volume);
    each job runs in a fresh execution environment.
seealso:
  - module: golem.vm.golem_vm
  - module: golem.vm.golem_vm_info
"""

EXAMPLES = r"""
# golem.yml - every running VM in ~/.golem/requestor/vms.db (or $GOLEM_REQUESTOR_DB_PATH)
plugin: golem.vm.golem
statuses: [running]

---
# Running and stopped VMs in Sweden, named after their country, grouped by size
plugin: golem.vm.golem
state_path: /srv/golem/vms.db
countries: [se]
statuses: [running, stopped]
# A VM whose country is not recorded would be "none-..." without the default (here only SE VMs are listed).
hostname: "{{ golem_country | default('xx', true) | lower }}-{{ golem_name }}"
groups:
  big: golem_resources.cpu >= 4
keyed_groups:
  - key: golem_size
    prefix: size
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"

---
# Only the VMs labelled role=web (labels are set with golem_vm's labels option), grouped by the label tier
# (tier_1, tier_2, ...; a VM without that label is in no tier group) and by every label (label_role_web, ...).
plugin: golem.vm.golem
statuses: [running]
labels:
  role: web
keyed_groups:
  - key: golem_labels.tier
    prefix: tier
  - key: golem_labels
    prefix: label

---
# Every running VM, in the groups role_web, role_db, ... by its label role.
plugin: golem.vm.golem
statuses: [running]
keyed_groups:
  - key: golem_labels.role
    prefix: role

---
# Ask the providers for the live status; hosts of a provider that does not answer within 5 s
# land in the group golem_unreachable. Cache the result for five minutes.
plugin: golem.vm.golem
refresh: true
refresh_timeout: 5
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/golem-inventory
cache_timeout: 300

---
# For a scheduled top-up job (playbooks/top_up_streams.yml): VMs whose stream has less than 6 hours
# of runway left are in the group golem_runway_low; the runway comes from the payment chain.
plugin: golem.vm.golem
refresh: true
runway_threshold_hours: 6
payments_rpc_url: https://l2.holesky.golemdb.io/rpc
"""

from typing import Any

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.template import trust_as_template
from ansible.utils.vars import combine_vars

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import FILTER_KEYS
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_hosts import (
    TOP_GROUP,
    HostBuilder,
    HostEntry,
    Listing,
    hostname_problem,
)
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_options import option_reader
from ansible_collections.golem.vm.plugins.plugin_utils.inventory_source import (
    Query,
    Snapshot,
    check_hostvars_prefix,
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "golem.vm.golem"
    SHORT_NAME = "golem"

    def __init__(self) -> None:
        super().__init__()
        self._top = TOP_GROUP
        self._group_names: dict[str, str] = {}
        self._constructed: tuple[Any, Any, Any] = (None, None, None)

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("golem.yml", "golem.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        # Accept the short name too, whatever name the loader found us under.
        names = list(self._redirected_names or [self.NAME])
        self._redirected_names = names + [n for n in (self.NAME, self.SHORT_NAME) if n not in names]
        config = self._read_config_data(path)
        unknown = sorted(str(key) for key in config if key not in self._options)
        if unknown:
            # Ansible would ignore them: a misspelt or misplaced filter would list VMs nobody asked for.
            raise AnsibleParserError(f"{path}: unknown key {', '.join(unknown)}; valid keys: "
                                     f"{', '.join(sorted(self._options))}")
        if config.get("filters"):
            self.display.deprecated(f"{path}: filters is deprecated; give its keys ({', '.join(FILTER_KEYS)}) at the "
                                    "top level of the file instead", version="1.0.0", collection_name="golem.vm")
        try:
            query = Query.from_options(option_reader(self))
            check_hostvars_prefix(self.get_option("hostvars_prefix") or "")
        except ValueError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from None
        except GolemError as exc:
            raise AnsibleParserError(f"{path}: {exc.msg}") from None
        snapshot = self._cached_snapshot(path, query) if cache and self.get_option("cache") else None
        if snapshot is None:
            try:
                snapshot = Snapshot.read(query)
            except (GolemError, OSError) as exc:  # a broken state file or refresh set-up: one clear parse error
                raise AnsibleParserError(f"golem inventory: {exc}") from exc
            if self.get_option("cache"):
                self._cache[self.get_cache_key(path)] = snapshot.to_cache(query)
        self._populate(query, snapshot)

    def _cached_snapshot(self, path: str, query: Query) -> Snapshot | None:
        try:
            data = self._cache[self.get_cache_key(path)]
        except KeyError:
            return None
        snapshot = Snapshot.from_cache(data, query)
        if snapshot is None:
            self.display.vvv("golem inventory: the cached entry is for other options or unreadable; reading again")
        return snapshot

    def _populate(self, query: Query, snapshot: Snapshot) -> None:
        for message in snapshot.messages + [snapshot.known_hosts_message or ""]:
            if message:
                self.display.v(f"golem inventory: {message}")
        self._top = self.inventory.add_group(TOP_GROUP)
        self._group_names = {}
        self._constructed = (self.get_option("compose"), self.get_option("groups"), self.get_option("keyed_groups"))
        builder = HostBuilder(self.get_option("hostvars_prefix") or "", query.known_hosts_path, snapshot.recorded,
                              query.private_key_path, runway_threshold=query.runway_threshold)
        strict = self.get_option("strict")
        template = self.get_option("hostname")
        # From the config file the template is trusted already; from the environment it is not, yet it is as
        # much the user's own setting. VM data stays untrusted, so a name like "{{ x }}" is never evaluated.
        template = trust_as_template(template) if template else None
        listing = Listing(builder, (lambda entry: self._hostname(template, entry, strict)) if template else None,
                          self.display.warning)
        for hostname, entry in listing.hosts(snapshot.records, snapshot.live, snapshot.streams, query.wants):
            self._add(hostname, entry, strict)
        for line in listing.summary(query.location):
            self.display.v(line)

    def _add(self, hostname: str, entry: HostEntry, strict: bool) -> None:
        # Runs 10,000 times for a large fleet: no templating unless compose/groups/keyed_groups ask for it.
        inventory = self.inventory
        inventory.add_host(hostname, group=self._top)
        for key, value in entry.hostvars.items():
            inventory.set_variable(hostname, key, value)
        for raw in entry.groups:
            name = self._group_names.get(raw)
            if name is None:
                name = self._group_names[raw] = inventory.add_group(self._sanitize_group_name(raw))
                inventory.add_child(self._top, name)
            inventory.add_child(name, hostname)
        compose, groups, keyed = self._constructed
        if compose or groups or keyed:
            self._set_composite_vars(compose, inventory.get_host(hostname).get_vars(), hostname, strict=strict)
            self._add_host_to_composed_groups(groups, {}, hostname, strict=strict)
            self._add_host_to_keyed_groups(keyed, {}, hostname, strict=strict)

    def _hostname(self, template: str, entry: HostEntry, strict: bool) -> str:
        variables = entry.hostvars
        if self.get_option("use_extra_vars"):
            variables = combine_vars(variables, self._vars)
        self.templar.available_variables = variables
        try:
            hostname = self.templar.template(template)
            problem = hostname_problem(hostname)
        except Exception as exc:  # any template error: strict decides, as for compose
            problem = f"failed: {exc}"
        if problem is None:
            return str(hostname)
        if strict:
            raise AnsibleError(f"golem inventory: the hostname template for VM {entry.name} {problem}")
        self.display.warning(
            f"golem inventory: the hostname template for VM {entry.name} {problem}; using the VM name"
        )
        return entry.name
