# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL state URLs: what messages show, what is secret, what is refused. No server, no psycopg."""

from __future__ import annotations

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.postgres_url import (
    MASK,
    environment_secrets,
    is_postgres_url,
    parse_state_url,
)

NO_ENV: dict[str, str] = {}


def test_plain_url() -> None:
    url = parse_state_url("postgresql://golem@db.example.com:5433/golem?sslmode=require")
    assert url.display(NO_ENV) == "golem@db.example.com:5433/golem"
    assert url.endpoint(NO_ENV) == "db.example.com:5433"
    assert url.redacted() == "postgresql://golem@db.example.com:5433/golem?sslmode=require"
    assert url.secrets == ()


def test_password_is_never_shown_and_always_scrubbed() -> None:
    raw = "postgresql://golem:s3cr%40t!@db.example.com/golem?sslmode=verify-full&sslpassword=keypass"
    url = parse_state_url(raw)
    for text in (url.display(NO_ENV), url.redacted(), repr(url)):
        assert "s3cr" not in text and "keypass" not in text, text
    assert url.redacted() == "postgresql://golem@db.example.com/golem?sslmode=verify-full"
    assert url.display(NO_ENV) == "golem@db.example.com:5432/golem"  # libpq's default port filled in
    # Decoded and encoded forms both go, and the raw URL becomes the redacted one.
    message = f"failed for {raw}: password s3cr@t! (encoded s3cr%40t!), key keypass"
    scrubbed = url.scrub(message)
    assert "s3cr" not in scrubbed and "keypass" not in scrubbed
    assert url.redacted() in scrubbed and scrubbed.count(MASK) == 3


def test_query_parameters_override_the_url_parts_as_libpq_does() -> None:
    url = parse_state_url("postgresql://ignored@/x?host=10.1.2.3&port=6543&user=team&dbname=state&password=pw")
    assert url.display(NO_ENV) == "team@10.1.2.3:6543/state"
    assert "pw" in url.secrets and "password" not in url.redacted()


def test_several_hosts_ipv6_and_sockets() -> None:
    url = parse_state_url("postgres://u@[2001:db8::1]:5432,standby.example:5433/db?target_session_attrs=read-write")
    assert url.endpoint(NO_ENV) == "[2001:db8::1]:5432,standby.example:5433"
    assert url.redacted() == "postgresql://u@[2001:db8::1]:5432,standby.example:5433/db?target_session_attrs=read-write"
    socket = parse_state_url("postgresql:///golem?host=/var/run/postgresql")
    assert socket.display(NO_ENV) == "local socket /var/run/postgresql/golem"
    assert socket.redacted() == "postgresql:///golem?host=/var/run/postgresql"


def test_environment_fills_what_the_url_leaves_out() -> None:
    url = parse_state_url("postgresql://")
    env = {"PGHOST": "db.internal", "PGPORT": "6000", "PGUSER": "ops", "PGDATABASE": "golem", "PGPASSWORD": "envpw"}
    assert url.display(env) == "ops@db.internal:6000/golem"
    assert environment_secrets(env) == ("envpw",)
    assert url.scrub("login with envpw failed", environment_secrets(env)) == f"login with {MASK} failed"
    assert parse_state_url("postgresql://").display(NO_ENV) == "local socket in the default directory"


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("mysql://root:hunter2@db/golem", "is not postgresql://"),
        ("/var/lib/golem/vms.db", "not a URL"),
        ("postgresql://u:hunter2@db:99999/golem", "outside 1-65535"),
        ("postgresql://u:hunter2@db/golem?port=abc", "not a number"),
        ("postgresql://u:hunter2@db/golem?sslmode", "not key=value"),
    ],
)
def test_refused_urls_never_echo_the_password(bad: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_state_url(bad)
    assert reason in err.value.msg
    assert "hunter2" not in err.value.msg and err.value.value is None
    assert err.value.field == "state_url" and "hunter2" not in str(err.value.failure())


def test_is_postgres_url() -> None:
    assert is_postgres_url("postgresql://db/golem") and is_postgres_url("POSTGRES://db")
    assert not is_postgres_url("/tmp/vms.db") and not is_postgres_url("sqlite:///x") and not is_postgres_url(None)
