# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm_info's work: the recorded VMs a filter keeps, each as golem_vm's ``vm``, refreshed if asked.

Reads the state and, with a refresh, asks providers and the chain; writes nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.vm.filters import VMFilter
from ansible_collections.golem.vm.plugins.module_utils.vm.refresh import RefreshOptions, refresh_fields, refresh_vms
from ansible_collections.golem.vm.plugins.module_utils.vm.view import represent_vm


def list_vms(store: StateBackend, vm_filter: VMFilter, *, known_hosts_path: str | None,
             refresh: RefreshOptions | None = None, warn: Callable[[str], None] = lambda msg: None
             ) -> list[dict[str, Any]]:
    """The VMs ``vm_filter`` keeps, sorted by name; with ``refresh``, statuses go by what providers report."""
    if not store.exists():  # nothing to list, and reading must not create the file or the tables
        return []
    records = store.list(**vm_filter.store_query(with_statuses=refresh is None))
    selected = []
    for record in records:
        if not vm_filter.selects(record):
            continue  # a row nobody asked for is not worth a warning
        if not record.ok:
            warn(f"skipped VM {record.name}: {record.config_error}; fix or remove that row in {store.location}")
            continue
        selected.append(record)
    if refresh is None:
        return [represent_vm(r, known_hosts_path=known_hosts_path) for r in selected
                if vm_filter.status_ok(r.status)]
    result = refresh_vms(selected, refresh)
    vms = []
    for record in selected:
        view = represent_vm(record, known_hosts_path=known_hosts_path)
        view.update(refresh_fields(record, result.live.get(record.name), result.streams.get(record.name),
                                   result.not_asked.get(record.name)))
        if vm_filter.status_ok(view["status"]):
            vms.append(view)
    return vms
