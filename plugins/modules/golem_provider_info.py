#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_provider_info
short_description: Find VM on Golem providers that can host a VM
version_added: 0.2.0
description:
  - Lists the providers that advertise on Golem Base or on a central VM on Golem discovery service
    (O(discovery_backend)), with their free resources, their prices and an estimate of what a VM of the
    asked size would cost on each. Both backends give the same answer for the same advertisements.
  - Advertised resources are what a provider has B(free) right now, not its total capacity.
  - Only live advertisements are listed. On Golem Base those are the ones whose time to live has not run out;
    on a central discovery service, the ones sent in the last five minutes.
  - An advertisement the module cannot read is skipped with a warning naming the provider (and on Golem Base
    the entity key); the other providers are still returned.
  - Each listed provider is asked for its payment terms (C(GET /api/v1/provider/info)), all at once within
    O(payment_terms_timeout); see RV(providers[].payment_terms). O(payment_terms=false) skips this.
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
options:
  cpu:
    description:
      - Minimum number of free CPU cores.
      - Also the CPU count of the price estimate; when not given, the estimate uses 1 core, as for O(size=small).
      - Mutually exclusive with O(size).
    type: int
  memory:
    description:
      - Minimum free memory in GB.
      - Also the memory of the price estimate; when not given, the estimate uses 1 GB, as for O(size=small).
      - Mutually exclusive with O(size).
    type: int
  storage:
    description:
      - Minimum free storage in GB.
      - Also the storage of the price estimate; when not given, the estimate uses 10 GB, as for O(size=small).
      - Mutually exclusive with O(size).
    type: int
  size:
    description:
      - A provider VM size, used both as the minimum free resources and for the price estimate.
      - V(small) is 1 core, 1 GB memory and 10 GB storage; V(medium) is 2, 4 and 20; V(large) is 4, 8 and 40;
        V(xlarge) is 8, 16 and 80.
      - When neither O(size) nor O(cpu), O(memory) or O(storage) is given, no minimum is applied and the
        estimate is for V(small).
      - Mutually exclusive with O(cpu), O(memory) and O(storage).
    type: str
    choices: [small, medium, large, xlarge]
  country:
    description:
      - Only providers in this country, as an ISO 3166-1 alpha-2 code in any case, such as V(SE) or V(se).
    type: str
  platform:
    description:
      - Only providers of this CPU architecture, for example V(x86_64) or V(arm64).
      - Providers whose advertisement does not state a platform are left out, with a warning. The released
        discovery server (golem-vm-discovery 0.1.25) does not store platforms at all, so with it this
        filter returns no providers.
    type: str
  max_price_usd_month:
    description:
      - Only providers whose estimated price for the asked size is at most this many US dollars per month.
      - Providers that advertise no USD prices are left out when this is set.
    type: float
  sort:
    description:
      - Order of RV(providers).
      - V(price) puts the cheapest first by what the asked size is paid a month, as the V(cheapest) choice of
        M(golem.vm.golem_vm) does. Providers that advertise GLM prices come first, by their GLM price (a provider
        that takes payment is paid in GLM, whatever its USD figure); then providers with USD prices only, by their
        USD estimate; then providers without prices.
      - V(cpu), V(memory) and V(storage) put the most free capacity first.
      - V(country) sorts by country code; V(updated) puts the most recently advertised first.
      - Ties are broken by provider ID, so the order is stable.
    type: str
    choices: [price, cpu, memory, storage, country, updated]
    default: price
  limit:
    description:
      - Return at most this many providers, after filtering and sorting.
      - By default all matching providers are returned.
    type: int
  payment_terms:
    description:
      - Whether to ask each listed provider (after O(limit)) whether it takes payment and at which contract, with
        C(GET /api/v1/provider/info), and to compute the stream rate for the asked size.
      - On by default because whether a provider requires payment decides whether a VM can be rented there
        without an Ethereum key, and discovery does not say it. The providers are asked in parallel within
        O(payment_terms_timeout), so it costs at most that long, once.
      - Set V(false) to list from discovery alone, for example to scan many providers from a controller that cannot
        reach their API ports; RV(providers[].payment_terms) is then V(null).
    type: bool
    default: true
  payment_terms_timeout:
    description:
      - Seconds all providers together may take to tell their payment terms (more than 0, less than 3600). A
        provider that has not answered by then, or cannot be reached, gets V(null) terms and a warning; the task does
        not fail.
    type: float
    default: 5.0
notes:
  - Ask discovery once and reuse RV(providers) for many VMs; a central discovery service allows 100 requests
    a minute per client address and answers HTTP 500, not 429, beyond that.
  - On Golem Base a lookup costs two HTTP requests, however many providers advertise.
"""

EXAMPLES = r"""
- name: Find the cheapest providers that can host a medium VM in Sweden
  golem.vm.golem_provider_info:
    size: medium
    country: SE
    limit: 3
  register: found

- name: Show where the cheapest one is and what it costs
  ansible.builtin.debug:
    msg: >-
      {{ found.providers[0].provider_id }} at {{ found.providers[0].provider_url }}
      costs {{ found.providers[0].estimate.usd_per_month }} USD a month
  when: found.providers | length > 0

- name: Providers that take no payment, so a VM can be rented there without an Ethereum key
  golem.vm.golem_provider_info:
    size: small
  register: all_providers

- name: Show them
  ansible.builtin.debug:
    msg: "{{ all_providers.providers | rejectattr('payment_terms', 'none')
             | rejectattr('payment_terms.requires_payment') | map(attribute='provider_id') | list }}"

- name: Providers with at least 4 cores and 8 GB memory under 30 USD a month, against a private central discovery
  golem.vm.golem_provider_info:
    cpu: 4
    memory: 8
    max_price_usd_month: 30
    discovery_backend: central
    discovery_url: http://discovery.example.com:9001
  register: big

- name: Providers on Golem Base that take payment on any payments network, from your own node
  golem.vm.golem_provider_info:
    golem_base_rpc_url: https://golem-base.example.com/rpc
    all_payments_networks: true
  register: anywhere
"""

RETURN = r"""
providers:
  description:
    - The matching providers, filtered, sorted by O(sort) and cut to O(limit).
    - Empty when no provider matches.
  returned: success
  type: list
  elements: dict
  contains:
    provider_id:
      description: The provider's ID, an Ethereum address.
      type: str
      sample: "0x1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a"
    ip_address:
      description: The IP address the provider advertises.
      type: str
      sample: 203.0.113.11
    provider_url:
      description: Base URL of the provider's REST API, built from RV(providers[].ip_address) and O(provider_port).
      type: str
      sample: http://203.0.113.11:7466
    country:
      description: ISO 3166-1 alpha-2 country code the provider advertises; V(null) if it gave none.
      type: str
      sample: SE
    platform:
      description: CPU architecture the provider advertises; V(null) if it gave none.
      type: str
      sample: x86_64
    resources:
      description: Free resources the provider advertises.
      type: dict
      contains:
        cpu:
          description: Free CPU cores.
          type: int
          sample: 4
        memory:
          description: Free memory in GB.
          type: int
          sample: 8
        storage:
          description: Free storage in GB.
          type: int
          sample: 80
    pricing:
      description:
        - Monthly prices per unit as advertised, in USD and in GLM; a key is V(null) when the provider
          did not advertise it.
        - V(null) when the provider advertises no prices, as providers of the MVP era do.
      type: dict
      sample:
        usd_per_core_month: 5.0
        usd_per_gb_ram_month: 2.0
        usd_per_gb_storage_month: 0.1
        glm_per_core_month: 20.0
        glm_per_gb_ram_month: 8.0
        glm_per_gb_storage_month: 0.4
    estimate:
      description:
        - Price of a VM of the size in RV(estimate_for) on this provider, computed as the upstream CLI does
          (cores, GB memory and GB storage times their monthly prices; 730 hours a month).
        - V(null) when the provider advertises no USD prices.
      type: dict
      contains:
        usd_per_month:
          description: US dollars per month, rounded to 4 decimals.
          type: float
          sample: 9.0
        usd_per_hour:
          description: US dollars per hour, rounded to 6 decimals.
          type: float
          sample: 0.012329
        glm_per_month:
          description: GLM per month, rounded to 8 decimals; V(null) when GLM prices are not advertised.
          type: float
          sample: 36.0
    updated_at:
      description: When the provider last advertised, in ISO 8601 with an explicit UTC offset.
      type: str
      sample: "2026-11-27T08:07:51.200462+00:00"
    payment_terms:
      description:
        - How the provider is paid, from its C(GET /api/v1/provider/info), and what a stream for the size in
          RV(estimate_for) costs there.
        - V(null) when O(payment_terms=false), or when the provider could not be asked in time (with a warning).
      type: dict
      contains:
        requires_payment:
          description:
            - Whether the provider requires a payment stream to create a VM (its StreamPayment address is set).
            - V(false) for an MVP-era provider, whose API has no C(/provider/info).
          type: bool
          sample: true
        stream_payment_address:
          description: The StreamPayment contract streams to this provider are opened at; V(null) for an MVP-era provider.
          type: str
          sample: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
        glm_token_address:
          description: The token the provider is paid in; the zero address means native ETH, as on the 0.1.x network.
          type: str
          sample: "0x0000000000000000000000000000000000000000"
        rate_wei_per_second:
          description:
            - The stream rate for the asked size, in wei a second, as M(golem.vm.golem_vm) and the upstream CLI compute
              it from the advertised GLM prices.
            - V(null) when the provider requires no payment or advertises no GLM prices.
          type: int
          sample: 12176560121765
        deposit_wei_per_hour:
          description: The deposit for one hour of that stream (O(golem.vm.golem_vm#module:payment_hours=1)); V(null) as above.
          type: int
          sample: 43835616438354000
estimate_for:
  description: The CPU cores, memory (GB) and storage (GB) the estimates are computed for.
  returned: success
  type: dict
  sample:
    cpu: 1
    memory: 1
    storage: 10
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
from ansible_collections.golem.vm.plugins.module_utils.arguments import ArgumentSpec, member_spec
from ansible_collections.golem.vm.plugins.module_utils.discovery.listing import (
    SORT_KEYS,
    check_selection,
    matches,
    represent_provider,
    select_providers,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import SIZES, resolve_resources
from ansible_collections.golem.vm.plugins.module_utils.provider.payment_info import add_payment_terms, check_terms_timeout
from ansible_collections.golem.vm.plugins.module_utils.vm.fields import country_code

ARGUMENT_SPEC: ArgumentSpec = member_spec(
    cpu={"type": "int"},
    memory={"type": "int"},
    storage={"type": "int"},
    size={"type": "str", "choices": list(SIZES)},
    country={"type": "str"},
    platform={"type": "str"},
    max_price_usd_month={"type": "float"},
    sort={"type": "str", "choices": list(SORT_KEYS), "default": "price"},
    limit={"type": "int"},
    payment_terms={"type": "bool", "default": True},
    payment_terms_timeout={"type": "float", "default": 5.0},
)
MODULE_SETTINGS: dict[str, Any] = {"supports_check_mode": True}


class GolemProviderInfo(ConnectedModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        p = self.params
        spec = resolve_resources(p["size"], p["cpu"], p["memory"], p["storage"], for_create=False)
        if p["size"] is not None:
            minimums = spec.as_dict()
        else:
            minimums = {key: p[key] for key in ("cpu", "memory", "storage")}
        # Before discovery is asked, so a typo costs no request; discovery stores codes in upper case.
        filters = dict(minimums, country=country_code(p["country"]), platform=p["platform"])

        selection = {"sort": p["sort"], "limit": p["limit"], "max_price_usd_month": p["max_price_usd_month"]}
        check_selection(**selection)
        check_terms_timeout(p["payment_terms_timeout"])

        ads = self.discovery.list_advertisements(**filters, on_invalid=self._skip)
        without_platform = [ad.provider_id for ad in ads if p["platform"] is not None and ad.platform is None]
        if without_platform:
            self.warn(
                f"left out {len(without_platform)} provider(s) whose advertisement states no platform, because "
                f"platform={p['platform']!r} was asked; {self.discovery.source} may not "
                "support platforms (golem-vm-discovery 0.1.25 does not)"
            )
        found = [
            represent_provider(ad, provider_port=p["provider_port"], spec=spec) for ad in ads if matches(ad, **filters)
        ]
        providers = select_providers(found, spec=spec, **selection)
        for provider in providers:
            provider["payment_terms"] = None
        if p["payment_terms"]:
            add_payment_terms(providers, provider_port=p["provider_port"], spec=spec, budget=p["payment_terms_timeout"],
                              timeout=p["timeout"], validate_certs=p["validate_certs"], warn=self.warn)
        return {"changed": False, "providers": providers, "estimate_for": spec.as_dict()}

    def _skip(self, provider_id: str | None, exc: ValidationError) -> None:
        self.warn(f"skipped the advertisement of provider {provider_id or '(no provider_id)'}: {exc.msg}")


def main() -> None:
    GolemProviderInfo().run()


if __name__ == "__main__":
    main()
