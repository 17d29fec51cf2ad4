# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's main() in-process, as Ansible runs it in its own process."""

from __future__ import annotations

import pytest
from ansible.module_utils import _internal as ansible_internal
from ansible.module_utils.common import warnings as ansible_warnings


@pytest.fixture(autouse=True)
def module_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Once controller code is imported (pytest-ansible does), module warnings go to the
    # controller's display instead of the result; make main() behave as in a module process.
    monkeypatch.setattr(ansible_internal, "is_controller", False)
    # AnsibleModule keeps warnings in a process-wide dict; one test's must not leak into the next.
    ansible_warnings._global_warnings.clear()
