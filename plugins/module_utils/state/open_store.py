# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``open_store``: the one place that picks the state backend.

A ``postgresql://`` URL gives the PostgreSQL store (and only then is psycopg imported);
otherwise the SQLite file at ``state_path`` (or the default path). Both satisfy
``backend.StateBackend``.
"""

from __future__ import annotations

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import MissingLibraryError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.backend import StateBackend
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_backend import SQLiteStateStore


def open_store(
    state_url: str | None = None,
    state_path: str | None = None,
    *,
    url_field: str = "state_url",
    path_field: str = "state_path",
) -> StateBackend:
    """The store for ``state_url`` (PostgreSQL) or ``state_path`` (SQLite); giving both is an error.

    Raises ValidationError for a URL that is not ``postgresql://``, MissingLibraryError when
    psycopg is not installed. Opening connects to nothing: the first call does.
    """
    if state_url:
        # Imported here, as the backend below: an SQLite run loads no PostgreSQL code.
        from ansible_collections.golem.vm.plugins.module_utils.state.postgres_url import EXAMPLE_URL, is_postgres_url

        if state_path:
            raise ValidationError(
                f"{url_field} and {path_field} are mutually exclusive: the state is either in PostgreSQL or "
                "in an SQLite file", field=url_field, value=None)
        if not is_postgres_url(state_url):
            # value=None: even a mistyped URL may carry a password.
            raise ValidationError(f"{url_field} must be a postgresql:// URL such as {EXAMPLE_URL}",
                                  field=url_field, value=None)
        # psycopg is optional and only this path needs it.
        from ansible_collections.golem.vm.plugins.module_utils.state import postgres as state_postgres

        if not state_postgres.HAS_PSYCOPG:
            raise MissingLibraryError(state_postgres.PSYCOPG_LIBRARY, state_postgres.PSYCOPG_IMPORT_ERROR,
                                      reason=f"for a postgresql:// {url_field}")
        return state_postgres.PostgresStateStore(state_url, field_name=url_field)
    return SQLiteStateStore(state_path)
