# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a recorded VM is shown to users: the ``vm`` return value, diffs and the ssh line.

Shared by golem_vm and the inventory plugin, so both describe a VM the same way.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.state.history import read_history
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord

# Epoch seconds golem_fleet records in a member's config: when its provider stopped answering, and when it
# gave the member up.
TIMES = ("unreachable_since", "abandoned_at")


def ssh_command(
    host: str | None, port: int | None, user: str | None, key_path: str | None, known_hosts_path: str | None
) -> str | None:
    """A line a user can paste; strict host key checking against the collection's known_hosts."""
    if not host or not port:
        return None
    parts = ["ssh"]
    if key_path:
        parts += ["-i", key_path]
    parts += ["-p", str(port)]
    if known_hosts_path:
        parts += ["-o", f"UserKnownHostsFile={known_hosts_path}", "-o", "StrictHostKeyChecking=yes"]
    # "--": a user or host from a state row someone else wrote is never read as an ssh option.
    parts += ["--", f"{user or 'root'}@{host}"]
    return " ".join(shlex.quote(p) for p in parts)


def represent_vm(record: VMRecord, *, known_hosts_path: str | None = None) -> dict[str, Any]:
    """The flat, JSON-safe ``vm`` dict of a recorded VM; a row whose addresses break the rules for them
    (someone else may have written it) gets no SSH endpoint and no line to paste, and says why."""
    refused = record.endpoint_problem()
    ssh_port = None if refused else record.ssh_port
    ssh_host = record.ssh_host if ssh_port else None
    error = record.error or (f"its SSH endpoint is not used: {refused}" if refused else None)
    return {
        "name": record.name,
        "provider_id": record.provider_id,
        "provider_ip": record.provider_ip,
        "provider_port": record.provider_port,
        "country": record.country,
        "status": record.status,
        "resources": {"cpu": record.cpu, "memory": record.memory, "storage": record.storage},
        "size": record.size,
        "image": record.image,
        "ssh_host": ssh_host,
        "ssh_port": ssh_port,
        "ssh_user": record.ssh_user or "root",
        "ssh_private_key_path": record.ssh_private_key_path,
        "ssh_public_key": record.config.get("ssh_public_key"),
        "known_hosts_path": known_hosts_path,
        "ssh_command": ssh_command(
            ssh_host, ssh_port, record.ssh_user, record.ssh_private_key_path, known_hosts_path
        ),
        "labels": record.labels,
        "stream_id": record.stream_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "error": error,
        # What golem_fleet did to the VM and why; only entries of the shape it writes (someone else's row may
        # hold anything), like the times below.
        "history": read_history(record.config),
        **{key: _epoch(record.config.get(key)) for key in TIMES},
    }


def _epoch(value: Any) -> int | None:
    """A time in epoch seconds as golem_fleet writes it, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def diff_view(record: VMRecord | None) -> dict[str, Any]:
    """What diff mode compares: placement, size and status, never key material."""
    if record is None:
        return {}
    return {
        "name": record.name,
        "provider_id": record.provider_id,
        "provider_ip": record.provider_ip,
        "status": record.status,
        "resources": {"cpu": record.cpu, "memory": record.memory, "storage": record.storage},
        "image": record.image,
        "ssh_port": record.ssh_port,
        "ssh_user": record.ssh_user,
        "labels": record.labels,
    }
