#!/usr/bin/python
# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golem_state_copy
short_description: Copy the VM on Golem state between an SQLite file and PostgreSQL
version_added: 0.2.0
description:
  - Copies the records of VMs (the C(vms) rows of the state) from the SQLite state file of one controller
    into a PostgreSQL database a team shares, or back.
  - Rows are copied as stored, byte for byte, including C(created_at) and the whole C(config) JSON (stream ID,
    labels, host key references, C(updated_at)), and rows whose C(config) is not readable JSON.
  - Idempotent. A row already the same on both sides is left alone, so a second run copies nothing.
  - Rows that only the destination has are kept; the copy never deletes.
  - A row on both sides with different content is a conflict, settled by O(on_conflict). With the default,
    the task fails listing the rows and copies nothing at all.
  - All rows are written in one transaction of the destination, after checking that the destination rows are
    still those the plan was made from; if a controller wrote one meanwhile, the task fails and writes nothing.
  - The PostgreSQL tables are created, or migrated, on the first write, as by any golem.vm module.
author:
  - golem.vm maintainers (!UNKNOWN)
attributes:
  check_mode:
    support: full
    description: A dry run. Reports the rows it would create and update, and the diff, and writes nothing.
  diff_mode:
    support: full
    description: The destination's affected rows before and after the copy, by VM name.
requirements:
  - psycopg[binary] >= 3.1 on the host the module runs on (usually the controller)
options:
  direction:
    description:
      - Which way to copy.
      - V(to_postgresql) copies the SQLite file O(state_path) into the database O(state_url); V(to_sqlite) the other way.
    type: str
    required: true
    choices: [to_postgresql, to_sqlite]
  state_url:
    description:
      - The PostgreSQL database, as a libpq URL such as V(postgresql://golem@db.example.com:5432/golem?sslmode=require).
      - The password may be in the URL, but is better kept out of it. libpq then finds it in E(PGPASSWORD) or in a
        passfile (E(PGPASSFILE), else C(~/.pgpass)).
      - Every query parameter, such as C(sslmode), C(sslrootcert) or C(options=-csearch_path%3Dteam_a) for another
        schema, goes to libpq unchanged.
      - Never shown in the task's output, because it may hold the password. Messages name the server as
        C(user@host:port/dbname).
      - If not set, the value of the E(GOLEM_REQUESTOR_STATE_URL) environment variable is used, as by every golem.vm
        module and the inventory; one of the two is required.
    type: str
  state_path:
    description:
      - The SQLite state file, in the upstream C(golem) CLI's format.
      - If not set, the value of the E(GOLEM_REQUESTOR_DB_PATH) environment variable is used,
        else C(~/.golem/requestor/vms.db).
      - As a destination, it is created with mode 0600 in a directory with mode 0700 if it does not exist.
      - As a source, it must exist.
    type: path
  on_conflict:
    description:
      - What to do with a row that exists on both sides with different content.
      - V(fail) copies nothing and lists the rows.
      - V(newer) keeps the side whose C(config.updated_at) is later, and fails like V(fail) for rows where neither
        is later, such as rows without C(updated_at) that the upstream CLI wrote.
      - V(source) overwrites the destination's row.
    type: str
    choices: [fail, newer, source]
    default: fail
notes:
  - Copy before switching controllers to O(state_url), while nothing is creating VMs. Run it again to check,
    it should report no change.
  - Copying back with O(direction=to_sqlite) lets the upstream C(golem) CLI see the VMs again.
seealso:
  - module: golem.vm.golem_vm
"""

EXAMPLES = r"""
- name: See what moving this controller's state into the team database would copy
  golem.vm.golem_state_copy:
    direction: to_postgresql
    state_url: postgresql://golem@db.example.com:5432/golem?sslmode=verify-full
  environment:
    PGPASSWORD: "{{ vault_golem_db_password }}"
  check_mode: true
  diff: true
  register: plan

- name: Copy it
  golem.vm.golem_state_copy:
    direction: to_postgresql
    state_url: postgresql://golem@db.example.com:5432/golem?sslmode=verify-full
  environment:
    PGPASSWORD: "{{ vault_golem_db_password }}"

- name: Bring a copy back into an SQLite file, taking the newer side of rows that differ
  golem.vm.golem_state_copy:
    direction: to_sqlite
    state_url: postgresql://golem@db.example.com:5432/golem?sslmode=verify-full
    state_path: /srv/golem/vms.db
    on_conflict: newer
"""

RETURN = r"""
created:
  description: Names of the VMs whose rows were copied (or, in check mode, would be) into the destination anew.
  returned: success
  type: list
  elements: str
  sample: [web-1, web-2]
updated:
  description: Names of the VMs whose destination rows were (or would be) replaced by the source's.
  returned: success
  type: list
  elements: str
  sample: [db-1]
kept:
  description: Names of the VMs whose destination row was kept because it is newer (O(on_conflict=newer)).
  returned: success
  type: list
  elements: str
  sample: []
unchanged:
  description: How many rows were already the same on both sides.
  returned: success
  type: int
  sample: 12
dry_run:
  description: Whether this was a check-mode run that wrote nothing.
  returned: success
  type: bool
  sample: false
source:
  description: Where the rows came from.
  returned: success
  type: dict
  contains:
    backend:
      description: V(sqlite) or V(postgresql).
      type: str
      sample: sqlite
    location:
      description: The file path, or C(user@host:port/dbname) without the password.
      type: str
      sample: /root/.golem/requestor/vms.db
destination:
  description: Where the rows went, as RV(source).
  returned: success
  type: dict
  sample: {backend: postgresql, location: golem@db.example.com:5432/golem}
failure:
  description:
    - Why the task failed, for a playbook to act on; C(msg) says it for people.
    - Not returned when ansible-core itself refuses an argument (C(msg) says why then).
  returned: failure
  type: dict
  contains:
    kind:
      description:
        - What failed. V(discovery), V(provider), V(identity) (something other than the VM's provider answered at
          its address), V(payment), V(validation) (a value given, or sent by a server, broke a rule), V(state),
          V(timeout), V(unsupported) (a server of upstream's newer protocol, which this version does not support
          yet), V(missing_library), or V(golem) (anything else).
      returned: always
      type: str
      sample: discovery
    url:
      description: The URL of the request that failed.
      returned: when a server was involved
      type: str
      sample: http://195.201.39.101:9001/api/v1/advertisements?cpu=2
    method:
      description: The HTTP method of that request.
      returned: when a server was involved
      type: str
      sample: GET
    status:
      description: The HTTP status the server answered with.
      returned: when the server answered with an HTTP status
      type: int
      sample: 400
    response:
      description: The server's answer, cut to 500 characters.
      returned: when the server's answer is part of the cause
      type: str
      sample: '{"detail": "stream_id required when payments are enabled"}'
    field:
      description: The option (or the environment variable it was read from), or the field of a server's answer, whose value broke a rule.
      returned: when a value is at fault
      type: str
      sample: cpu
    value:
      description: That value; null when it was missing.
      returned: when RV(failure.field) is returned
      type: raw
      sample: 0
"""

from typing import Any

from ansible_collections.golem.vm.plugins.module_utils._base import GolemModule
from ansible_collections.golem.vm.plugins.module_utils.arguments import STATE_ARGUMENTS, ArgumentSpec
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import check_state_path
from ansible_collections.golem.vm.plugins.module_utils.state.transfer import ON_CONFLICT, copy_state

# No member of group/golem.vm.golem: it asks no server, so it takes none of the connection options.
ARGUMENT_SPEC: ArgumentSpec = {
    "direction": {"type": "str", "required": True, "choices": ["to_postgresql", "to_sqlite"]},
    "state_url": STATE_ARGUMENTS["state_url"],
    "state_path": STATE_ARGUMENTS["state_path"],
    "on_conflict": {"type": "str", "choices": list(ON_CONFLICT), "default": "fail"},
}
MODULE_SETTINGS: dict[str, Any] = {"supports_check_mode": True}


def locations(params: dict[str, Any]) -> tuple[settings.Setting, settings.Setting]:
    """The database and the file, each with the option or variable it came from, by the modules' rules."""
    if params["state_url"]:
        url = settings.Setting(params["state_url"], "state_url")
    else:
        from_env = settings.env_value(settings.STATE_URL_ENV)
        if from_env is None:
            raise ValidationError(f"state_url is required: give it, or set {settings.STATE_URL_ENV}",
                                  field="state_url", value=None)
        url = settings.Setting(from_env, settings.STATE_URL_ENV)
    return url, settings.state_path(params["state_path"])


def copy(params: dict[str, Any], check_mode: bool, want_diff: bool) -> dict[str, Any]:
    stores: list[Any] = []
    url, path = locations(params)
    try:
        sqlite = open_store(None, path.value)
        stores.append(sqlite)
        check_state_path(sqlite.location, field=path.field)
        postgres = open_store(url.value, None, url_field=url.field)
        stores.append(postgres)
        source, destination = (sqlite, postgres) if params["direction"] == "to_postgresql" else (postgres, sqlite)
        result = copy_state(source, destination, on_conflict=params["on_conflict"], dry_run=check_mode)
    finally:
        for store in stores:
            store.close()
    output = result.summary()
    output["source"] = {"backend": source.backend, "location": source.location}
    output["destination"] = {"backend": destination.backend, "location": destination.location}
    if want_diff:
        output["diff"] = result.diff(f"{source.backend} {source.location}",
                                     f"{destination.backend} {destination.location}")
    return output


class GolemStateCopy(GolemModule):
    def __init__(self) -> None:
        super().__init__(ARGUMENT_SPEC, **MODULE_SETTINGS)

    def execute(self) -> dict[str, Any]:
        return copy(self.params, self.module.check_mode, self.module._diff)


def main() -> None:
    GolemStateCopy().run()


if __name__ == "__main__":
    main()
