# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors shared by the modules and the inventory plugin.

Every error carries a message a person can act on and, where a server was involved,
the request that failed, so the fail helper can return a structured ``failure``.
"""

from __future__ import annotations

from typing import Any

# Long bodies (HTML error pages, stack traces) are cut so a failure stays readable.
EXCERPT_LIMIT = 500


def excerpt(text: str | bytes | None, limit: int = EXCERPT_LIMIT) -> str | None:
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


class GolemError(Exception):
    """Base of every error the collection raises on purpose."""

    kind = "golem"

    def __init__(
        self,
        msg: str,
        *,
        url: str | None = None,
        method: str | None = None,
        status: int | None = None,
        response: str | bytes | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.url = url
        self.method = method
        self.status = status
        self.response = excerpt(response)
        self.field = field
        self.value = value

    def failure(self) -> dict[str, Any]:
        """The structured part of a failed task's result; keys without a value are left out."""
        data: dict[str, Any] = {"kind": self.kind}
        for key in ("url", "method", "status", "response", "field"):
            val = getattr(self, key)
            if val is not None:
                data[key] = val
        if self.field is not None:
            data["value"] = self.value
        return data


class DiscoveryError(GolemError):
    """The discovery service failed or answered with something unusable."""

    kind = "discovery"


class ProviderError(GolemError):
    """A provider failed or answered with something unusable."""

    kind = "provider"


class IdentityError(ProviderError):
    """Something other than the provider a VM was rented from answered at its address.

    A 404 from such a server says nothing about the VM, so it must never make a row be forgotten.
    """

    kind = "identity"


class UnsupportedProvider(ProviderError):
    """A provider answers as upstream's newer, unreleased protocol (lease quotes, GLM on Hoodi), which
    this version cannot use yet; ``info`` is its /provider/info answer, when that is what showed it."""

    kind = "unsupported"

    def __init__(self, msg: str, *, info: Any = None, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.info = info


class UnsupportedDiscovery(DiscoveryError):
    """A discovery service or node answers as upstream's newer one (WebSocket-only discovery, Arkiv)."""

    kind = "unsupported"


class PaymentError(GolemError):
    """The chain refused, failed or could not be reached; the message names the RPC URL, account and amount."""

    kind = "payment"


class PaymentPending(PaymentError):
    """A transaction was sent, or may have been, and is not settled yet: what it pays stays recorded (``tx``)."""

    def __init__(self, msg: str, *, tx: str, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.tx = tx


class NotSent(PaymentError):
    """A signed transaction that certainly never left, or that the node refused: nothing was paid."""


# What a missing library's message adds: where the collection lists its libraries.
INSTALL = "The collection's requirements.txt lists the libraries it needs."


class MissingLibraryError(GolemError):
    """A Python library the asked path needs cannot be imported on the controller: said in Ansible's own words
    (missing_required_lib), with the import's traceback for ``fail_json(exception=...)``."""

    kind = "missing_library"

    def __init__(self, library: str, import_traceback: str | None, *, reason: str | None = None,
                 note: str | None = None, **kwargs: Any) -> None:
        # Imported here: only a failure needs it, and module_utils.basic is large.
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel

        msg = missing_required_lib(library, reason=reason)
        super().__init__(f"{msg} {note}" if note else msg, **kwargs)
        self.library = library
        self.import_traceback = import_traceback


class ValidationError(GolemError):
    """User input, or data a server sent, broke a rule; ``field`` and ``value`` name it."""

    kind = "validation"


class StateError(GolemError):
    """The state (the SQLite file or the PostgreSQL database) could not be read or written."""

    kind = "state"


class TaskTimeout(GolemError):
    """The task's time budget ran out."""

    kind = "timeout"
