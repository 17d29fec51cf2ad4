# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL state URLs: parse them for messages, redact them, scrub secrets out of errors.

The URL goes to libpq as it is (libpq parses it again, with every parameter it knows);
this parser only needs who and where, to name the server in messages, and which parts are
secret. No psycopg here, so it is tested and used without the optional library.

A URL has libpq's form, ``postgresql://[user[:password]@][host][:port][,host2[:port2]...][/dbname][?param=value&...]``;
the password may instead come from ``PGPASSWORD`` or a passfile, by libpq's own rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

SCHEMES = ("postgresql", "postgres")
EXAMPLE_URL = "postgresql://golem@db.example.com:5432/golem?sslmode=require"
DEFAULT_PORT = 5432
MASK = "********"
# Query parameters whose value is a secret; everything else (sslmode, options, ...) is shown.
SECRET_PARAMS = frozenset({"password", "sslpassword"})


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


@dataclass(frozen=True)
class PostgresURL:
    """The parts of a state URL that messages need; ``secrets`` never appear in repr."""

    user: str | None
    hosts: tuple[tuple[str, int | None], ...]
    dbname: str | None
    params: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    raw: str = field(default="", repr=False)

    def endpoint(self, environ: Mapping[str, str] | None = None) -> str:
        """``host:port`` (comma-separated when there are several), with libpq's defaults filled in."""
        env = os.environ if environ is None else environ
        default_port = env.get("PGPORT") or str(DEFAULT_PORT)
        hosts = self.hosts or ((env.get("PGHOST") or "", None),)
        shown = []
        for host, port in hosts:
            if not host or host.startswith("/"):
                shown.append(f"local socket {host or 'in the default directory'}".rstrip())
                continue
            name = f"[{host}]" if ":" in host else host
            shown.append(f"{name}:{port or default_port}")
        return ",".join(shown)

    def display(self, environ: Mapping[str, str] | None = None) -> str:
        """``user@host:port/dbname``: what messages name. Never the whole URL, see the module docs."""
        env = os.environ if environ is None else environ
        user = self.user or env.get("PGUSER")
        dbname = self.dbname or env.get("PGDATABASE")
        text = (f"{user}@" if user else "") + self.endpoint(env)
        return text + (f"/{dbname}" if dbname else "")

    def redacted(self) -> str:
        """The URL without any secret, e.g. for status files and logs."""
        netloc = quote(self.user, safe="") + "@" if self.user else ""
        netloc += ",".join(
            (f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{p}" if p else "")
            for h, p in self.hosts if not h.startswith("/"))
        url = f"postgresql://{netloc}" + (f"/{quote(self.dbname, safe='')}" if self.dbname else "")
        shown = list(self.params)
        socket_hosts = [h for h, _p in self.hosts if h.startswith("/")]
        shown += [("host", h) for h in socket_hosts]
        if shown:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in shown)
        return url

    def scrub(self, text: str, extra: Iterable[str] = ()) -> str:
        """``text`` with every secret of this URL (and ``extra`` ones, e.g. PGPASSWORD) masked."""
        return scrub(text, (*self.secrets, *extra), raw_url=self.raw, redacted=self.redacted())


def scrub(text: str, secrets: Iterable[str], *, raw_url: str = "", redacted: str = "") -> str:
    if raw_url and redacted and raw_url in text:
        text = text.replace(raw_url, redacted)
    # Longest first, so a secret containing another is masked whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, MASK)
    return text


def _invalid(msg: str, field_name: str) -> ValidationError:
    # value=None: the value may hold a password, and ``failure()`` would return it.
    return ValidationError(f"{field_name}: {msg}; give a URL such as {EXAMPLE_URL}", field=field_name, value=None)


def _parse_hosts(hostspec: str, field_name: str) -> tuple[tuple[str, int | None], ...]:
    hosts: list[tuple[str, int | None]] = []
    if not hostspec:
        return ()
    for part in hostspec.split(","):
        match = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(\d*))?", part)
        if match is None:
            raise _invalid(f"cannot read the host {part!r}", field_name)
        host, port_text = match.group(1), match.group(2)
        host = host[1:-1] if host.startswith("[") else unquote(host)
        port = None
        if port_text:
            port = int(port_text)
            if not 1 <= port <= 65535:
                raise _invalid(f"port {port} of host {host!r} is outside 1-65535", field_name)
        hosts.append((host, port))
    return tuple(hosts)


def parse_state_url(url: str, field_name: str = "state_url") -> PostgresURL:
    """Parse a ``postgresql://`` URL; raise ValidationError (never quoting the password) if it is not one."""
    if not isinstance(url, str) or "://" not in url:
        raise _invalid("not a URL", field_name)
    scheme, rest = url.split("://", 1)
    if scheme.lower() not in SCHEMES:
        raise _invalid(f"scheme {scheme[:20]!r} is not postgresql://", field_name)
    rest, _hash, _fragment = rest.partition("#")
    rest, _q, query = rest.partition("?")
    netloc, _slash, path = rest.partition("/")
    secrets: list[str] = []
    user = None
    hostspec = netloc
    if "@" in netloc:
        userinfo, hostspec = netloc.rsplit("@", 1)
        user_text, colon, password = userinfo.partition(":")
        user = unquote(user_text) or None
        if colon and password:
            secrets += [unquote(password), password]
    hosts = list(_parse_hosts(hostspec, field_name))
    dbname = unquote(path) or None
    params: list[tuple[str, str]] = []
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _invalid("its query string (after ?) is not key=value pairs joined by &", field_name) from None
    for key, value in pairs:
        if key in SECRET_PARAMS:
            secrets.append(value)
        # As libpq does, a query parameter overrides the part of the URL it names.
        if key == "user":
            user = value or user
        elif key == "dbname":
            dbname = value or dbname
        elif key == "host":
            hosts = [(h, None) for h in value.split(",")] if value else hosts
        elif key == "port" and value:
            ports = value.split(",")
            if not all(p.isdigit() and 1 <= int(p) <= 65535 for p in ports):
                raise _invalid(f"port {value!r} is not a number in 1-65535", field_name)
            if len(ports) == 1:
                hosts = [(h, int(ports[0])) for h, _p in hosts] or [("", int(ports[0]))]
            else:
                hosts = [(h, int(p)) for (h, _old), p in zip(hosts, ports)]
        params.append((key, value))
    # Secrets are kept only in ``secrets`` (hidden from repr), never among the shown parameters.
    kept = tuple((k, v) for k, v in params if k not in ("user", "dbname", "host", "port", *SECRET_PARAMS))
    return PostgresURL(user=user, hosts=tuple(hosts), dbname=dbname, params=kept,
                       secrets=tuple(secrets), raw=url)


def environment_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Secrets libpq may take from the environment, to scrub from its messages too."""
    env = os.environ if environ is None else environ
    return tuple(v for v in (env.get("PGPASSWORD"), env.get("PGSSLPASSWORD")) if v)
