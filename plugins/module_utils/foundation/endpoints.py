# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one rule for a host or a port that comes from outside: a provider's answer, an advert, a state row.

Such a value ends up in URLs, on ssh command lines, in known_hosts and ssh_config files and as an
Ansible host. A newline or a leading '-' there would let a provider add ssh options or config lines
of its own, so every such value passes here first, and again where it is written.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

# One RFC 1123 label: letters, digits and '-', not at either end, at most 63 characters.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_NAME = 253
# A login name as useradd takes it by default.
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# Upstream providers answer this host when they have no public address configured: their own address.
PROVIDER_SELF = "localhost"


def host_problem(value: Any) -> str | None:
    """Why ``value`` is not an IP literal or an RFC 1123 host name, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "is not a host name or an IP address"
    if "%" in value:
        # Python accepts any text after an IPv6 zone's '%', a newline included; no provider needs one.
        return "has an IPv6 zone ('%'), which no provider address needs"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return None
    name = value[:-1] if value.endswith(".") else value
    if len(name) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return ("is neither an IP address nor a host name (RFC 1123: letters, digits, '-' inside a label, "
                "labels joined by '.')")
    return None


def ip_problem(value: Any) -> str | None:
    """Why ``value`` is not an IP address (an address that goes into a URL), or None when it is one."""
    problem = host_problem(value)
    if problem is not None:
        return problem
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address (IPv4 or IPv6)"
    return None


def port_problem(value: Any) -> str | None:
    """Why ``value`` is not a TCP port (a whole number from 1 to 65535), or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "is not a whole number"
    if not 1 <= value <= 65535:
        return "is not a TCP port (1 to 65535)"
    return None


def user_problem(value: Any) -> str | None:
    """Why ``value`` is not a login name, or None when it is one."""
    if not isinstance(value, str) or not _USER.fullmatch(value):
        return ("is not a login name (lower-case letters, digits, '_', '.' and '-', starting with a letter or '_', "
                "at most 32)")
    return None


def path_problem(value: Any) -> str | None:
    """Why ``value`` cannot stand in an ssh option or an ssh_config line as a file path, or None."""
    if not isinstance(value, str) or not value or '"' in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "is not a file path without control characters or '\"'"
    return None


def word_problem(value: Any) -> str | None:
    """Why ``value`` cannot stand as one word in an ssh_config line (a VM's name, an inventory host name)."""
    if not isinstance(value, str) or not value or any(c.isspace() or not c.isprintable() for c in value):
        return "is not one word (it is empty, or has white space or control characters)"
    return None


def port_of(value: Any) -> Any:
    """A port as a row may hold it: a whole number, or its digits as text (upstream's CLI); else as it is."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def show(value: Any, limit: int = 80) -> str:
    """A value as it can be printed safely: repr escapes newlines and control characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_host(value: Any, *, field: str, source: str) -> str:
    """``value`` if it is a valid host; else a ValidationError naming ``source`` (who said it) and ``field``."""
    problem = host_problem(value)
    if problem is not None:
        raise ValidationError(f"{source} gave {field} {show(value)}, which {problem}", field=field, value=show(value))
    return value


def check_port(value: Any, *, field: str, source: str) -> int:
    """``value`` if it is a TCP port; else a ValidationError naming ``source`` and ``field``."""
    problem = port_problem(value)
    if problem is not None:
        raise ValidationError(f"{source} gave {field} {show(value)}, which {problem}", field=field, value=show(value))
    return value


def valid_host(value: Any) -> bool:
    """Whether ``value`` passes :func:`host_problem`."""
    return host_problem(value) is None


def valid_port(value: Any) -> bool:
    """Whether ``value`` passes :func:`port_problem`."""
    return port_problem(value) is None


Resolve = Callable[[str], "list[str]"]


def _addresses(name: str) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return []


def resolve_within(seconds: float, resolve: Resolve = _addresses) -> Resolve:
    """``resolve`` that gives up after ``seconds``, answering no address.

    The resolver's own timeouts (attempts, search domains) can add up to minutes, and the name is a provider's:
    the lookup runs in a daemon thread that is left behind when the time is up, so the task keeps its budget.
    """
    def bounded(name: str) -> list[str]:
        found: list[list[str]] = []
        worker = threading.Thread(target=lambda: found.append(resolve(name)), name="golem-resolve", daemon=True)
        worker.start()
        worker.join(max(0.0, seconds))
        return found[0] if found else []
    return bounded


def ssh_host_of(answered: str | None, *, provider_ip: str, source: str, allow_foreign: bool = False,
                resolve: Resolve = _addresses) -> str:
    """The host to record for a VM's SSH, from what its provider answered.

    No host, or upstream's ``localhost`` (a provider without a public address configured), means the
    provider's own address. Any other host must be an IP address or an RFC 1123 name, and it must be
    the provider's own address (or a name resolving to it, recorded as that address, so a later DNS
    answer cannot move Ansible elsewhere) unless the user allowed foreign hosts: otherwise a provider
    could send the user's key and Ansible to a machine of its choosing.
    """
    if answered is None or answered.lower() == PROVIDER_SELF:
        return provider_ip
    host = check_host(answered, field="ssh_host", source=source)
    if _same_ip(host, provider_ip):
        return provider_ip  # one spelling of the address in rows and known_hosts
    if allow_foreign:
        return host
    if not _is_ip(host) and any(_same_ip(address, provider_ip) for address in resolve(host)):
        return provider_ip
    raise ValidationError(
        f"{source} gave ssh_host {show(host)}, which is not its own address {provider_ip}; a provider pointing "
        "SSH elsewhere could send your key and Ansible to another machine. Set allow_foreign_ssh_host=true "
        "only for a provider you trust to do so", field="ssh_host", value=show(host))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False
