# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the ``golem.vm.golem`` inventory reads its options: through Ansible, from the plugin's documentation.

The configuration file, the ``env:`` entries and the ``default:`` of each option count as Ansible reads them.
The settings the modules read too (:data:`SHARED`) keep module_utils.foundation.settings' rule, so one
environment means the same to both: a value that is empty or only white space counts as not set, a variable's
value is stripped (and a path only made absolute), and a message about a value read from a variable names the
variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ansible import constants as C
from ansible.plugins import AnsiblePlugin

from ansible_collections.golem.vm.plugins.module_utils.foundation import settings

# Their variables are the modules' GOLEM_REQUESTOR_* ones.
SHARED = frozenset(("state_path", "state_url", "known_hosts_path", "ssh_private_key_path", "discovery_url",
                    "payments_rpc_url", "stream_payment_address"))
ENV_ORIGIN = "env: "


class OptionValue(NamedTuple):
    value: Any
    # What a message about the value names: the option, or the variable the value came from.
    field: str
    # Set in the configuration file, not by a variable or the default.
    given: bool = True
    # The documented default, typed as the option is.
    default: Any = None


Reader = Callable[[str], OptionValue]


def option_reader(plugin: AnsiblePlugin) -> Reader:
    """Reads ``plugin``'s options once it has read its configuration file."""

    def typed(name: str, value: Any) -> Any:
        # What set_option does (a path made absolute, ...), without changing the plugin's options.
        if value is None:
            return None
        return C.config.get_config_value(name, plugin_type=plugin.plugin_type, plugin_name=plugin._load_name,
                                         direct={name: value})

    def read(name: str) -> OptionValue:
        definition = plugin.option_definitions[name]
        default = typed(name, definition.get("default"))
        value, origin = plugin.get_option_and_origin(name)
        origin = str(origin)
        # Ansible takes an empty variable (or an empty string in the file) as a value, the current directory
        # for a path; settings.py takes it as not set, and a variable's value as the modules take it.
        if name in SHARED and (origin.startswith(ENV_ORIGIN) or not value):
            found = _variable(definition)
            value, origin = (found[1], ENV_ORIGIN + found[0]) if found else (default, "default")
        variable = origin[len(ENV_ORIGIN):] if origin.startswith(ENV_ORIGIN) else None
        return OptionValue(value, variable or name, variable is None and origin != "default", default)

    return read


def _variable(definition: Mapping[str, Any]) -> tuple[str, str] | None:
    """The option's variable that is set and its value, both by settings.py's rule; None when none is set."""
    # Ansible's order: of the variables set, the one listed last wins.
    for entry in reversed(definition.get("env") or ()):
        value = settings.env_value(entry["name"])
        if value is not None:
            if definition.get("type") == "path":
                # As the modules make a path of the same variable: ~ expanded and made absolute, nothing more.
                value = os.path.abspath(os.path.expanduser(value))
            return entry["name"], value
    return None


def state_location(read: Reader) -> settings.StateLocation:
    """The state the options name: what the file sets, else the variables, else the default state file.

    settings.choose_state's precedence and refusals, over what Ansible read.
    """
    url, path = read("state_url"), read("state_path")
    return settings.choose_state(settings.Chosen(url.value, url.field, url.given),
                                 settings.Chosen(path.value, path.field, path.given),
                                 os.path.dirname(path.default or path.value))


def known_hosts_path(read: Reader, local_dir: str) -> settings.Setting:
    """The option (or its variable), else ``known_hosts`` in ``local_dir``, the state's directory."""
    known = read("known_hosts_path")
    # settings refuses the variable only the inventory used to read, which would split modules and inventory.
    checked = settings.known_hosts_path(known.value, local_dir)
    return settings.Setting(checked.value, known.field if known.value else checked.field)
