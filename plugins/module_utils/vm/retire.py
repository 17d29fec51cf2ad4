# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a VM's row ends: a create that may still be queued is deleted and watched first, the stream the
collection opened is terminated once the VM is gone or stopped (and checked to be terminable before),
and only then are the row and the host key forgotten. Every path that destroys, stops or gives up on a
VM goes through here, so none forgets a row while its VM or its money may still be out there.
"""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, PaymentError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.outcome import Outcome
from ansible_collections.golem.vm.plugins.module_utils.vm.services import VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.waits import CLEANUP_SECONDS, SETTLE_UNKNOWN, delete_verified


class Retirement:
    """The end of one VM's row, reported in ``out`` (the task's changed flag and actions)."""

    def __init__(self, services: VMServices, out: Outcome) -> None:
        self.services = services
        self.out = out

    def act(self, text: str) -> None:
        self.out.actions.append(text)

    def settle_lost_create(self, record: VMRecord, client: Any) -> None:
        """A 404 for a row whose create may still be queued (status error or creating) is not proof.

        Such a create can still finish after the row is gone, leaving a VM nobody records (and a
        create of the same name overwrites it upstream). Delete it and watch until it has stayed
        unseen for a while, as the cleanup of a create with no answer does.
        """
        if record.status not in ("error", "creating"):
            return
        delete_verified(client, record.name, min(self.services.deadline.end, time.monotonic() + CLEANUP_SECONDS),
                        settle=SETTLE_UNKNOWN)

    def check_payable(self, record: VMRecord) -> None:
        """Before a VM with a stream of ours is destroyed or stopped: can that stream be terminated after?"""
        if self.services.payments is None or not self.services.payments.owns_stream(record):
            return
        if self.services.check_mode:
            stream = record.config.get("stream_id", record.config.get("stream_tx"))
            self.act(f"would terminate payment stream {stream} of VM {record.name} once the VM is gone")
        elif not self.services.payments.can_pay:
            raise PaymentError(
                f"VM {record.name} is paid by stream {record.config.get('stream_id', record.config.get('stream_tx'))}, "
                "which the collection opened and must terminate once the VM is gone; give ethereum_private_key "
                "(or GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY) of the account that pays", field="ethereum_private_key")

    def release(self, record: VMRecord) -> None:
        """Terminate the stream of a VM that is gone or stopped. If that fails, the row stays with status
        error, recording the stream, and the task fails: the next run settles it before forgetting anything."""
        if self.services.payments is None or not self.services.payments.owns_stream(record):
            return
        try:
            self.services.payments.release(record, self.act)
        except GolemError as exc:
            self.services.store.set_status(record.name, "error", error=f"the VM is gone or stopped, but its payment stream "
                                           f"is not settled yet: {exc.msg}")
            raise
        self.out.changed = True
        # A stopped VM's row stays: it must not be terminated twice.
        self.services.store.set_status(record.name, record.status, stream_terminated=True)

    def forget(self, record: VMRecord) -> None:
        """Remove the row and the VM's host key: always a change, announced in check mode too."""
        self.out.changed = True
        would = "would remove" if self.services.check_mode else "removed"
        if not self.services.check_mode:
            self.services.store.delete(record.name)
        self.act(f"{would} VM {record.name} from the state file")
        if record.ssh_port and self.services.known_hosts.keys_for(record.ssh_host, record.ssh_port):
            if not self.services.check_mode:
                self.services.known_hosts.remove(record.ssh_host, record.ssh_port)
            self.act(f"{would} the host key of VM {record.name} ([{record.ssh_host}]:{record.ssh_port})")
