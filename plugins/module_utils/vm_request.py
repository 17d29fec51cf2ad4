# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm's input checks: every bad value is named, with its value, before any call is made."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.models import name_problem
from ansible_collections.golem.vm.plugins.module_utils.resources import ResourceSpec, resolve_resources
from ansible_collections.golem.vm.plugins.module_utils.state import STATE_PATH_ENV, check_state_path, default_state_path

COUNTRY = re.compile(r"[A-Z]{2}")
USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# Provider ids are Ethereum addresses upstream; anything that could add a URL path segment or
# query ("/", "?", "#", "%", spaces) is refused before it reaches discovery's URL.
PROVIDER_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:-]{0,127}")


class KeyInfo(NamedTuple):
    text: str | None
    fingerprint: str | None
    private_path: str | None


def check_scalars(params: dict[str, Any]) -> None:
    name = params["name"]
    problem = name_problem(name)
    if problem:
        raise ValidationError(f"name {name!r} is not a valid VM name: {problem}", field="name", value=name)
    country = params.get("country")
    if country is not None and not COUNTRY.fullmatch(country):
        raise ValidationError(
            f"country {country!r} must be a two-letter upper-case country code such as SE or US",
            field="country", value=country)
    provider_id = params.get("provider_id")
    if provider_id is not None and not PROVIDER_ID.fullmatch(provider_id):
        raise ValidationError(
            f"provider_id {provider_id!r} is not a provider id; give an address such as 0x1234...abcd "
            "(letters, digits, '.', ':', '_' and '-' only)", field="provider_id", value=provider_id)
    ip = params.get("provider_ip")
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValidationError(
                f"provider_ip {ip!r} is not an IP address; give a provider's address, or its provider_id",
                field="provider_ip", value=ip) from None
    timeout = params.get("wait_timeout")
    if timeout is not None and timeout <= 0:
        raise ValidationError(
            f"wait_timeout {timeout} must be more than 0 seconds", field="wait_timeout", value=timeout)
    stream_id = params.get("stream_id")
    if stream_id is not None and stream_id < 0:
        raise ValidationError(f"stream_id {stream_id} must not be negative", field="stream_id", value=stream_id)
    user = params.get("ssh_user")
    if user is not None and not USER.fullmatch(user):
        raise ValidationError(f"ssh_user {user!r} is not a valid user name", field="ssh_user", value=user)
    image = params.get("image")
    if image is not None and (not image.strip() or any(c.isspace() for c in image)):
        raise ValidationError(f"image {image!r} must be a non-empty name without spaces", field="image", value=image)


# The argument spec of a VM's shape, key, wait and files, shared by golem_vm and golem_fleet
# (documented in the golem.vm.vm_spec doc fragment and in each module).
VM_SPEC_ARGUMENTS: dict[str, dict[str, Any]] = {
    "size": {"type": "str", "choices": ["small", "medium", "large", "xlarge"]},
    "cpu": {"type": "int"},
    "memory": {"type": "int"},
    "storage": {"type": "int"},
    "image": {"type": "str"},
    "stream_id": {"type": "int"},
    "ssh_public_key": {"type": "str", "no_log": False},
    "ssh_public_key_path": {"type": "path", "no_log": False},
    "ssh_private_key_path": {"type": "path", "no_log": False},
    "ssh_user": {"type": "str", "default": "root"},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 600},
    "state_path": {"type": "path"},
    "known_hosts_path": {"type": "path", "no_log": False},
}

PRIVATE_KEY_ENV = "GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH"


def resolve_paths(params: dict[str, Any]) -> tuple[str, str]:
    """The state file and known_hosts file the module uses, both checked before either is touched."""
    state_path = params["state_path"] or default_state_path()
    known_hosts_path = params["known_hosts_path"] or os.path.join(os.path.dirname(state_path), "known_hosts")
    check_paths(params, state_path, known_hosts_path)
    return state_path, known_hosts_path


def check_paths(params: dict[str, Any], state_path: str, known_hosts_path: str) -> None:
    """The files the module would use, checked before any of them is read or written."""
    from_env = not params.get("state_path") and os.environ.get(STATE_PATH_ENV, "").strip()
    check_state_path(state_path, field=STATE_PATH_ENV if from_env else "state_path")
    if os.path.isdir(known_hosts_path):
        raise ValidationError(
            f"known_hosts_path {known_hosts_path!r} is a directory; give the path of a known_hosts file",
            field="known_hosts_path", value=known_hosts_path)


def resolve_spec(params: dict[str, Any], default: str | None = None) -> ResourceSpec | None:
    """The asked resources, or None when none were asked (and no default)."""
    asked = [params.get(k) for k in ("size", "cpu", "memory", "storage")]
    if all(v is None for v in asked) and default is None:
        return None
    return resolve_resources(
        params.get("size"), params.get("cpu"), params.get("memory"), params.get("storage"),
        default_size=default or "small", for_create=True)


def resolve_key(params: dict[str, Any], state_path: str, *, generate: bool, needed: bool = True) -> KeyInfo:
    """The public key to install and where its private half is (if known).

    With no key given, the collection's own pair beside the state file is used, and made
    when ``generate`` is set (never in check mode). When the key is not ``needed`` (the VM
    exists) the default pair is not read at all: a no-op run stays cheap.
    """
    private = params.get("ssh_private_key_path")
    if private is None and not (params.get("ssh_public_key") or params.get("ssh_public_key_path")):
        # The variable (an AWX credential's key file) stands in only when no key option is given:
        # beside a public key option it could name a key that does not match the one installed.
        private = os.path.expanduser(os.environ.get(PRIVATE_KEY_ENV, "").strip()) or None
    if not needed and not (params.get("ssh_public_key") or params.get("ssh_public_key_path")):
        return KeyInfo(None, None, private)
    # Imported here: sshpubkeys and cryptography cost more to import than a no-op run takes.
    from ansible_collections.golem.vm.plugins.module_utils.ssh_keys import (
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
            key = read_public_key(private + ".pub", field="ssh_private_key_path")
        else:
            key = public_key_of_private(private, field="ssh_private_key_path")
        return KeyInfo(key.text, key.fingerprint, private)
    directory = os.path.join(os.path.dirname(state_path), "ssh")
    private_path = os.path.join(directory, DEFAULT_KEY_NAME)
    if generate:
        pair = ensure_default_keypair(directory)
        return KeyInfo(pair.public_key.text, pair.public_key.fingerprint, private or pair.private_key_path)
    if os.path.isfile(private_path + ".pub"):
        key = read_public_key(private_path + ".pub", field="ssh_public_key_path")
        return KeyInfo(key.text, key.fingerprint, private or private_path)
    return KeyInfo(None, None, private or private_path)
