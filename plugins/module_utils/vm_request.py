# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What golem_vm and golem_fleet are asked: the options, checked at the edge (every bad value named,
with its value, before any call is made), and the task they set up from them. Below this point
the name, resources and paths are trusted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import check_cap
from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import ip_problem, user_problem
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec, resolve_resources
from ansible_collections.golem.vm.plugins.module_utils.provider.identity import ProviderIdentity
from ansible_collections.golem.vm.plugins.module_utils.provider.models import name_problem
from ansible_collections.golem.vm.plugins.module_utils.state.sqlite_file import check_state_path
from ansible_collections.golem.vm.plugins.module_utils.vm.fields import check_labels, country_code
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import KnownHosts
from ansible_collections.golem.vm.plugins.module_utils.vm.payment_options import check_payment_options
from ansible_collections.golem.vm.plugins.module_utils.vm.placement import Placement
from ansible_collections.golem.vm.plugins.module_utils.vm.services import Lazy, VMServices
from ansible_collections.golem.vm.plugins.module_utils.vm.want import KeyInfo, VMTask, Want

if TYPE_CHECKING:  # annotations only: golem_vm_info reads paths here and never pays
    from ansible_collections.golem.vm.plugins.module_utils._base import ConnectedModule
    from ansible_collections.golem.vm.plugins.module_utils.vm.payments import StreamPayments

# Provider ids are Ethereum addresses upstream; anything that could add a URL path segment or
# query ("/", "?", "#", "%", spaces) is refused before it reaches discovery's URL.
PROVIDER_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:-]{0,127}")


def check_scalars(params: dict[str, Any]) -> None:
    name = params["name"]
    problem = name_problem(name)
    if problem:
        raise ValidationError(f"name {name!r} is not a valid VM name: {problem}", field="name", value=name)
    country_code(params.get("country"))
    check_labels(params.get("labels"))
    provider_id = params.get("provider_id")
    if provider_id is not None and not PROVIDER_ID.fullmatch(provider_id):
        raise ValidationError(
            f"provider_id {provider_id!r} is not a provider id; give an address such as 0x1234...abcd "
            "(letters, digits, '.', ':', '_' and '-' only)", field="provider_id", value=provider_id)
    ip = params.get("provider_ip")
    if ip is not None and ip_problem(ip) is not None:
        raise ValidationError(f"provider_ip {ip!r} is not an IP address; give a provider's address, or its provider_id",
                              field="provider_ip", value=ip)
    timeout = params.get("wait_timeout")
    if timeout is not None and timeout <= 0:
        raise ValidationError(
            f"wait_timeout {timeout} must be more than 0 seconds", field="wait_timeout", value=timeout)
    stream_id = params.get("stream_id")
    if stream_id is not None and stream_id < 0:
        raise ValidationError(f"stream_id {stream_id} must not be negative", field="stream_id", value=stream_id)
    user = params.get("ssh_user")
    if user is not None and user_problem(user) is not None:
        raise ValidationError(f"ssh_user {user!r} is not a valid user name", field="ssh_user", value=user)
    image = params.get("image")
    if image is not None and (not image.strip() or any(c.isspace() for c in image)):
        raise ValidationError(f"image {image!r} must be a non-empty name without spaces", field="image", value=image)
    check_cap(params.get("max_glm_per_month"))


def resolve_paths(params: dict[str, Any]) -> tuple[settings.StateLocation, str]:
    """The state and the known_hosts file the module uses, both checked before either is touched."""
    state = settings.state_location(params.get("state_url"), params["state_path"])
    if state.path is not None:
        check_state_path(state.path, field=state.field)
    known = settings.known_hosts_path(params["known_hosts_path"], state.local_dir)
    if os.path.isdir(known.value):
        raise ValidationError(
            f"{known.field} {known.value!r} is a directory; give the path of a known_hosts file",
            field=known.field, value=known.value)
    return state, known.value


def resolve_spec(params: dict[str, Any], default: str | None = None) -> ResourceSpec | None:
    """The asked resources, or None when none were asked (and no default)."""
    asked = [params.get(k) for k in ("size", "cpu", "memory", "storage")]
    if all(v is None for v in asked) and default is None:
        return None
    return resolve_resources(
        params.get("size"), params.get("cpu"), params.get("memory"), params.get("storage"),
        default_size=default or "small", for_create=True)


def resolve_key(params: dict[str, Any], local_dir: str, *, generate: bool, needed: bool = True) -> KeyInfo:
    """The public key to install and where its private half is (if known).

    With no key given, the collection's own pair beside the state file is used, and made
    when ``generate`` is set (never in check mode). When the key is not ``needed`` (the VM
    exists) the default pair is not read at all: a no-op run stays cheap.
    """
    private = params.get("ssh_private_key_path")
    field = "ssh_private_key_path"  # what a message about the private key names: the option, or the variable
    if private is None and not (params.get("ssh_public_key") or params.get("ssh_public_key_path")):
        # The variable (an AWX credential's key file) stands in only when no key option is given:
        # beside a public key option it could name a key that does not match the one installed.
        private = settings.private_key_path(None)
        field = settings.PRIVATE_KEY_ENV
    if not needed and not (params.get("ssh_public_key") or params.get("ssh_public_key_path")):
        return KeyInfo(None, None, private)
    # Imported here: sshpubkeys and cryptography cost more to import than a no-op run takes.
    from ansible_collections.golem.vm.plugins.module_utils.vm.ssh_keys import (
        DEFAULT_KEY_NAME,
        ensure_default_keypair,
        parse_public_key,
        public_key_of_private,
        read_public_key,
    )

    if params.get("ssh_public_key"):
        key = parse_public_key(params["ssh_public_key"], field="ssh_public_key")
        return KeyInfo(key.text, key.fingerprint, private)
    path = params.get("ssh_public_key_path")
    if path:
        key = read_public_key(path, field="ssh_public_key_path")
        if private is None and path.endswith(".pub") and os.path.isfile(path[:-4]):
            private = path[:-4]
        return KeyInfo(key.text, key.fingerprint, private)
    if private:
        # Only a private key (an AWX credential's key file, say): its .pub beside it, else derived.
        if os.path.isfile(private + ".pub"):
            key = read_public_key(private + ".pub", field=field)
        else:
            key = public_key_of_private(private, field=field)
        return KeyInfo(key.text, key.fingerprint, private)
    directory = os.path.join(local_dir, "ssh")
    private_path = os.path.join(directory, DEFAULT_KEY_NAME)
    if generate:
        pair = ensure_default_keypair(directory)
        return KeyInfo(pair.public_key.text, pair.public_key.fingerprint, private or pair.private_key_path)
    if os.path.isfile(private_path + ".pub"):
        key = read_public_key(private_path + ".pub", field="ssh_public_key_path")
        return KeyInfo(key.text, key.fingerprint, private or private_path)
    return KeyInfo(None, None, private or private_path)


def prepare_task(params: dict[str, Any], *, name: str, state: str = "present", pinned: Placement | None = None,
                 country: str | None = None, adopt: bool = False, default_size: str | None = None) -> VMTask:
    """Check every option golem_vm and golem_fleet share, then set up the task; nothing is written.

    ``name`` is the longest name the task will use (a fleet's last member). An explicit key is
    read now (and compared with an existing VM's); the default pair is read, or made, only when
    a VM is created.
    """
    check_scalars({**params, "name": name})
    check_payment_options(params)
    spec = resolve_spec(params, default=default_size)
    where, known_hosts_path = resolve_paths(params)
    explicit_key = bool(params["ssh_public_key"] or params["ssh_public_key_path"])
    key = resolve_key(params, where.local_dir, generate=False, needed=explicit_key)
    want = Want(
        name=name, state=state, spec=spec, size=params["size"], image=params["image"], stream_id=params["stream_id"],
        public_key=key.text, key_fingerprint=key.fingerprint, private_key_path=key.private_path,
        ssh_user=params["ssh_user"], pinned=pinned, country=country_code(country), adopt=adopt, wait=params["wait"],
        labels=check_labels(params.get("labels")), allow_foreign_ssh_host=params["allow_foreign_ssh_host"],
        load_key=lambda generate: resolve_key(params, where.local_dir, generate=generate))
    # Imported here: the PostgreSQL backend's module (and psycopg) only for a postgresql:// URL.
    from ansible_collections.golem.vm.plugins.module_utils.state.open_store import open_store

    store = open_store(where.url, where.path, url_field=where.field if where.url else "state_url",
                       path_field=where.field if where.path else "state_path")
    return VMTask(want, store, KnownHosts(known_hosts_path), Deadline(params["wait_timeout"]), where,
                  known_hosts_path)


def vm_services(module: ConnectedModule, task: VMTask,
                build_payments: Callable[[], StreamPayments] | None) -> VMServices:
    """What golem_vm's and golem_fleet's VMs share: the task's state, known_hosts and time budget, a client per
    call (each fleet thread gets its own requests Session), one identity proof per provider, the payments
    (built on first use)."""
    return VMServices(task.store, task.known_hosts, task.deadline,
                      provider_client=lambda placement, **options: module.provider(placement.ip, placement.port, **options),
                      warn=module.warn, check_mode=module.module.check_mode,
                      identity=ProviderIdentity(module.central_within(task.deadline)), lazy_payments=Lazy(build_payments) if build_payments else None,
                      run_command=module.module.run_command)
