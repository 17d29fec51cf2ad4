# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the VM fields that creating a VM and filtering VMs share: country codes and labels.

Kept apart from vm_request (which pulls in the create path) so the inventory and golem_vm_info
check a filter's countries and labels by the very rules golem_vm stores them with.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

COUNTRY = re.compile(r"[A-Z]{2}")
LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
LABEL_VALUE_MAX = 256


def country_code(value: Any, field: str = "country") -> str | None:
    """A two-letter country code, in the upper case discovery stores (``se`` is taken for ``SE``)."""
    if value is None:
        return None
    code = value.strip().upper() if isinstance(value, str) else value
    if not isinstance(code, str) or not COUNTRY.fullmatch(code):
        raise ValidationError(f"{field} {value!r} must be a two-letter country code such as SE or US",
                              field=field, value=value)
    return code


def check_labels(labels: Any, field: str = "labels") -> dict[str, str] | None:
    """Labels as stored: string keys of the Kubernetes-like shape, string values (numbers and booleans
    given in YAML are taken as their text); anything else is refused by name."""
    if labels is None:
        return None
    if not isinstance(labels, dict):
        raise ValidationError(f"{field} must be a dictionary of names to text, not {labels!r}", field=field,
                              value=labels)
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.fullmatch(key):
            raise ValidationError(f"{field} has the key {key!r}: use letters, digits, '.', '_', '/' and '-', "
                                  "starting with a letter or digit, at most 63 characters", field=field, value=key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str) or len(value) > LABEL_VALUE_MAX:
            raise ValidationError(f"{field}[{key!r}] must be text of at most {LABEL_VALUE_MAX} characters, "
                                  f"not {value!r}", field=field, value=value)
        checked[key] = value
    return checked
