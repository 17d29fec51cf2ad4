# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings the modules and the inventory share: one set of environment rules."""

from __future__ import annotations

import os

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation import settings
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError

HOME = os.path.expanduser("~")


def test_an_empty_or_blank_variable_counts_as_unset() -> None:
    assert settings.env_value("X", {"X": "   "}) is None and settings.env_value("X", {"X": " v "}) == "v"
    assert settings.state_path(None, {"GOLEM_REQUESTOR_DB_PATH": ""}).field == "state_path"


def test_known_hosts_follows_the_state_unless_the_one_variable_says_otherwise() -> None:
    assert settings.known_hosts_path(None, "/srv/g", {}) == ("/srv/g/known_hosts", "known_hosts_path")
    env = {"GOLEM_REQUESTOR_KNOWN_HOSTS_PATH": "/k/kh"}
    assert settings.known_hosts_path(None, "/srv/g", env) == ("/k/kh", "GOLEM_REQUESTOR_KNOWN_HOSTS_PATH")
    assert settings.known_hosts_path("/o/kh", "/srv/g", env).value == "/o/kh", "the option wins"


def test_the_inventory_only_variable_cannot_point_elsewhere_unnoticed() -> None:
    with pytest.raises(ValidationError, match="GOLEM_INVENTORY_KNOWN_HOSTS_PATH is no longer read"):
        settings.known_hosts_path(None, "/srv/g", {"GOLEM_INVENTORY_KNOWN_HOSTS_PATH": "/inv/kh"})
    same = {"GOLEM_INVENTORY_KNOWN_HOSTS_PATH": "/k/kh", "GOLEM_REQUESTOR_KNOWN_HOSTS_PATH": "/k/kh"}
    assert settings.known_hosts_path(None, "/srv/g", same).value == "/k/kh"


def test_state_location_options_first_then_one_variable_never_both() -> None:
    url = "postgresql://golem@db:5432/golem"
    default_dir = os.path.join(HOME, ".golem", "requestor")
    assert settings.state_location(url, None, {}) == (url, None, "state_url", default_dir)
    assert settings.state_location(None, "/s/vms.db", {"GOLEM_REQUESTOR_STATE_URL": url}).path == "/s/vms.db"
    from_env = settings.state_location(None, None, {"GOLEM_REQUESTOR_STATE_URL": url})
    assert from_env.url == url and from_env.field == "GOLEM_REQUESTOR_STATE_URL" and from_env.local_dir == default_dir
    with pytest.raises(ValidationError, match="mutually exclusive"):
        settings.state_location(url, "/s/vms.db", {})
    with pytest.raises(ValidationError, match="both set") as both:
        settings.state_location(None, None, {"GOLEM_REQUESTOR_STATE_URL": url, "GOLEM_REQUESTOR_DB_PATH": "/x"})
    assert both.value.value is None, "a URL may hold a password: never the value"
    plain = settings.state_location(None, None, {"GOLEM_REQUESTOR_DB_PATH": "/s/vms.db"})
    assert plain == (None, "/s/vms.db", "GOLEM_REQUESTOR_DB_PATH", "/s")


def test_both_spellings_of_the_backend_mean_one_value() -> None:
    assert settings.discovery_backend("golem-base") == settings.discovery_backend("golem_base") == "golem_base"
    assert settings.discovery_backend("central") == "central"
    read, names = settings.choice_fallback(settings.DISCOVERY_DRIVER_ENV, settings.DISCOVERY_BACKEND_SPELLINGS)
    assert names == [settings.DISCOVERY_DRIVER_ENV]
    os.environ[settings.DISCOVERY_DRIVER_ENV] = "golem-base"
    try:
        assert read(*names) == "golem_base"
        os.environ[settings.DISCOVERY_DRIVER_ENV] = "ipfs"
        assert read(*names) == f"ipfs (from {settings.DISCOVERY_DRIVER_ENV})"
    finally:
        del os.environ[settings.DISCOVERY_DRIVER_ENV]


def test_sources_name_the_first_variable_set_for_options_the_task_did_not_set() -> None:
    spec = {"payments_rpc_url": {"type": "str", "fallback": settings.fallback(*settings.PAYMENTS_RPC_ENVS)},
            "timeout": {"type": "float", "fallback": settings.fallback(settings.TIMEOUT_ENV)},
            "cpu": {"type": "int"}}
    environ = {"GOLEM_REQUESTOR_L2_RPC_URL": "x", "GOLEM_REQUESTOR_POLYGON_RPC_URL": " ", settings.TIMEOUT_ENV: "3"}
    assert settings.sources(spec, {"timeout"}, environ) == {"payments_rpc_url": "GOLEM_REQUESTOR_L2_RPC_URL"}


def test_a_message_about_a_value_from_a_variable_names_the_variable() -> None:
    sources = {"payments_rpc_url": "GOLEM_REQUESTOR_L2_RPC_URL", "ethereum_private_key": settings.ETHEREUM_KEY_ENV}
    exc = settings.name_source(ValidationError("payments_rpc_url 'ws://x' must be an http:// URL",
                                               field="payments_rpc_url", value="ws://x"), sources)
    assert exc.msg == "GOLEM_REQUESTOR_L2_RPC_URL (read for payments_rpc_url) 'ws://x' must be an http:// URL"
    assert exc.failure()["field"] == "GOLEM_REQUESTOR_L2_RPC_URL" and str(exc) == exc.msg
    other = settings.name_source(ValidationError("the key does not fit", field="ethereum_private_key"), sources)
    assert other.msg == f"the key does not fit (the value of ethereum_private_key came from {settings.ETHEREUM_KEY_ENV})"
    mine = ValidationError("cpu 0 must be at least 1", field="cpu", value=0)
    assert settings.name_source(mine, sources).msg == "cpu 0 must be at least 1"


CASES = [("int", "http", "7466"), ("float", "soon", "2.5"), ("bool", "maybe", "no")]


@pytest.mark.parametrize(("kind", "bad", "good"), CASES)
def test_a_number_or_boolean_variable_of_the_wrong_type_is_a_problem_named_by_it(
        monkeypatch: pytest.MonkeyPatch, kind: str, bad: str, good: str) -> None:
    from ansible.module_utils.errors import AnsibleFallbackNotFound

    problems: list[ValidationError] = []
    spec = settings.typed_fallbacks({"opt": {"type": kind, "fallback": settings.fallback("GOLEM_X")}}, problems)
    read, names = spec["opt"]["fallback"]
    monkeypatch.setenv("GOLEM_X", good)
    assert read(*names) == good and not problems
    monkeypatch.setenv("GOLEM_X", bad)
    with pytest.raises(AnsibleFallbackNotFound):
        read(*names)
    assert [p.msg for p in problems] == [f"GOLEM_X (read for opt) {bad!r} must be {settings._KINDS[kind]}"]
