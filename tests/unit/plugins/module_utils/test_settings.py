# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings the modules and the inventory share: one set of environment rules."""

from __future__ import annotations

import os

import pytest

from ansible_collections.golem.vm.plugins.module_utils import settings
from ansible_collections.golem.vm.plugins.module_utils.errors import ValidationError

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
