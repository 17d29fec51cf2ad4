# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One row of the state: a VM as recorded, with typed readers over its config JSON.

The config keys the upstream CLI reads are ``cpu, memory, storage, ssh_port, stream_id``; the
rest are ours (see sqlite_file.py). Readers never trust a value's type: rows may come from the CLI,
an older collection, or a hand edit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import (
    host_problem,
    path_problem,
    port_of,
    port_problem,
    show,
    user_problem,
    word_problem,
)


# The config keys that tell one VM's stage from another's (see VMRecord.same_vm).
_STAGE = ("provider_port", "job_id", "ssh_host", "ssh_port", "stream_id", "stream_terminated", "error")


@dataclass
class VMRecord:
    """One row of ``vms``; ``config_error`` is set (and ``config`` empty) when its JSON is unreadable."""

    name: str
    provider_ip: str
    vm_id: str
    status: str = "creating"
    config: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    config_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.config_error is None

    def same_vm(self, other: VMRecord | None) -> bool:
        """Whether ``other`` is still this row: the same VM at the same stage of its life.

        Labels and timestamps may change meanwhile (another run relabels its fleet); where the VM is, its
        create job, its SSH port and its payment stream may not.
        """
        if other is None:
            return False
        mine = (self.name, self.provider_ip, self.vm_id, self.status, self.created_at, self.config_error)
        theirs = (other.name, other.provider_ip, other.vm_id, other.status, other.created_at, other.config_error)
        return mine == theirs and all(self.config.get(key) == other.config.get(key) for key in _STAGE)

    def _int(self, key: str) -> int | None:
        value = self.config.get(key)
        if isinstance(value, bool):
            return None
        value = port_of(value)
        return value if isinstance(value, int) else None

    def _str(self, key: str) -> str | None:
        value = self.config.get(key)
        return value if isinstance(value, str) and value else None

    @property
    def cpu(self) -> int | None:
        return self._int("cpu")

    @property
    def memory(self) -> int | None:
        return self._int("memory")

    @property
    def storage(self) -> int | None:
        return self._int("storage")

    @property
    def ssh_port(self) -> int | None:
        return self._int("ssh_port")

    @property
    def stream_id(self) -> int | None:
        return self._int("stream_id")

    @property
    def provider_port(self) -> int | None:
        return self._int("provider_port")

    @property
    def provider_id(self) -> str | None:
        return self._str("provider_id")

    @property
    def ssh_host(self) -> str:
        # The provider's /access may name a host; otherwise its SSH proxy is on the provider IP.
        return self._str("ssh_host") or self.provider_ip

    def endpoint_problem(self) -> str | None:
        """Why this row's SSH endpoint must not be used (a row someone else wrote may hold anything), or None.

        Host, ports, login name and key path: each ends up on an ssh command line, in an ssh_config or
        known_hosts file, or as an Ansible host.

        Only what the row holds is judged: a port or host not recorded yet is no problem here.
        """
        values = (("name", self.name, word_problem),
                  ("provider_ip", self.provider_ip, host_problem), ("ssh_host", self._str("ssh_host"), host_problem),
                  ("ssh_port", self.config.get("ssh_port"), port_problem),
                  ("provider_port", self.config.get("provider_port"), port_problem),
                  ("ssh_user", self._str("ssh_user"), user_problem),
                  ("ssh_private_key_path", self._str("ssh_private_key_path"), path_problem))
        for field_name, value, problem_of in values:
            if value is None or (field_name == "provider_ip" and value == ""):
                continue
            if field_name.endswith("_port"):
                value = port_of(value)  # the upstream CLI's rows may hold ports as text
            problem = problem_of(value)
            if problem is not None:
                return f"its {field_name} {show(value)} {problem}"
        return None

    @property
    def ssh_user(self) -> str | None:
        return self._str("ssh_user")

    @property
    def ssh_private_key_path(self) -> str | None:
        return self._str("ssh_private_key_path")

    @property
    def country(self) -> str | None:
        return self._str("country")

    @property
    def image(self) -> str | None:
        return self._str("image")

    @property
    def size(self) -> str | None:
        return self._str("size")

    @property
    def labels(self) -> dict[str, str]:
        value = self.config.get("labels")
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def error(self) -> str | None:
        return self._str("error")

    @property
    def recorded_price(self) -> tuple[bool, float | None]:
        """(whether the row records its GLM a month, that price): None recorded means its provider advertised no GLM
        prices. A value no price can be (a string, a bool, negative, not finite) counts as not recorded."""
        if "glm_per_month" not in self.config:
            return False, None
        value = self.config["glm_per_month"]
        if value is None:
            return True, None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return False, None
        return True, float(value)

    @property
    def updated_at(self) -> str | None:
        return self._str("updated_at")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe copy of the row, config included."""
        data: dict[str, Any] = {
            "name": self.name,
            "provider_ip": self.provider_ip,
            "vm_id": self.vm_id,
            "status": self.status,
            "created_at": self.created_at,
            "config": json.loads(json.dumps(self.config)),
        }
        if self.config_error is not None:
            data["config_error"] = self.config_error
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VMRecord:
        """The inverse of :meth:`to_dict`, for rows kept in a cache; odd types are coerced, not trusted."""
        config = data.get("config")
        created_at = data.get("created_at")
        config_error = data.get("config_error")
        return cls(
            name=str(data["name"]),
            provider_ip=str(data.get("provider_ip") or ""),
            vm_id=str(data.get("vm_id") or ""),
            status=str(data.get("status") or ""),
            config=dict(config) if isinstance(config, Mapping) else {},
            created_at=None if created_at is None else str(created_at),
            config_error=None if config_error is None else str(config_error),
        )
