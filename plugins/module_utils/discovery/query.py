# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What may go into a Golem Base query: checked when the options are read, before a driver is built."""

from __future__ import annotations

import re

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

# Values go into double-quoted query strings. How the node unescapes is not documented, so
# only characters that need no escaping are let in: every network, platform, country and
# provider id upstream writes is made of them.
SAFE_VALUE = re.compile(r"[A-Za-z0-9._:-]+")


def check_query_value(field: str, value: str) -> str:
    """``value`` if it can go into a query as it is; else a ValidationError naming ``field``."""
    if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
        raise ValidationError(f"{field} {value!r} may hold only letters, digits, '.', ':', '_' and '-'",
                              field=field, value=value)
    return value
