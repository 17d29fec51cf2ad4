# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of group/golem.vm.golem that a member accepts without using them.

Listed last in a module's extends_documentation_fragment: a module's own entry for an option it uses,
or an earlier fragment's, wins over the one here. Their argument spec is module_utils/arguments.py's
GROUP_ARGUMENTS, each option taken as ``accepted_only`` by a member that does not use it (``member_spec``).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state_path:
    description:
      - Not used by this module. Accepted so that one C(module_defaults) block for C(group/golem.vm.golem) serves
        every module of a play; see M(golem.vm.golem_vm) and the settings table (C(docs/settings.md)).
    type: path
  state_url:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: str
  known_hosts_path:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: path
  ethereum_private_key:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path). Never shown.
    type: str
  payments_rpc_url:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: str
  payments_chain_id:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: int
  stream_payment_address:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: str
  max_fee_per_gas_gwei:
    description:
      - Not used by this module; accepted for C(module_defaults), as O(state_path).
    type: float
"""
