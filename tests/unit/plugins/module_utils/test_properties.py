# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests: the VM name rule and the wire models, over inputs nobody thought of."""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ALLOWED_CPU, ALLOWED_MEMORY
from ansible_collections.golem.vm.plugins.module_utils.provider.models import (
    AccessInfo,
    Advertisement,
    CreateJob,
    ProviderInfo,
    VMInfo,
    build_create_request,
    name_problem,
    parse_wire,
)
from ansible_collections.golem.vm.plugins.module_utils.vm_request import check_scalars

SOURCE = "provider http://127.0.0.60:7466"
NAME_CHARS = string.ascii_lowercase + string.digits + "-"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFkq6ib9hU0KsdBPXHcbhsl6GbEQtwXZdSnxkQUz6CJ+"


def upstream_accepts(name: str) -> bool:
    """The rule as upstream's provider states it, written independently of name_problem()."""
    return (3 <= len(name) <= 64 and all(c in NAME_CHARS for c in name)
            and name[0] != "-" and name[-1] != "-" and "--" not in name)


# Mostly name-like text, with the characters that matter in URLs and shells mixed in.
name_text = st.text(alphabet=NAME_CHARS + "AZ_./?#%@: \n\t\u00e9", max_size=70)


@given(name_text)
def test_name_rule_matches_upstream_on_any_text(name: str) -> None:
    assert (name_problem(name) is None) == upstream_accepts(name)


@given(st.text(max_size=80))
def test_name_rule_on_arbitrary_unicode(name: str) -> None:
    assert (name_problem(name) is None) == upstream_accepts(name)


@given(st.from_regex(re.compile(r"[a-z0-9]([a-z0-9]|-(?!-)){1,62}[a-z0-9]"), fullmatch=True))
def test_every_accepted_name_is_one_url_path_segment(name: str) -> None:
    assert name_problem(name) is None
    assert quote(name, safe="") == name and "/" not in name and ".." not in name


@given(name_text)
def test_check_scalars_names_the_field_and_value_of_any_bad_name(name: str) -> None:
    if upstream_accepts(name):
        check_scalars({"name": name})
        return
    with pytest.raises(ValidationError) as err:
        check_scalars({"name": name})
    assert err.value.field == "name" and err.value.value == name
    assert repr(name) in err.value.msg


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=3)))
def test_a_name_that_is_not_a_string_is_refused(value: Any) -> None:
    assert name_problem(value) == "the name must be a string"


# Any JSON a server could send, and JSON shaped like the models with odd values in each field.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
odd = st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12) | st.floats(allow_nan=False)


def shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: (v | odd) for k, v in fields.items()})


resources = st.fixed_dictionaries({"cpu": st.integers(0, 64), "memory": st.integers(0, 64),
                                   "storage": st.integers(0, 999)})
ip_text = st.ip_addresses().map(str) | st.sampled_from(["evil.example", "1.2.3.4/x", "user@1.2.3.4", "", "::1"])
WIRE = {
    Advertisement: shaped({"provider_id": st.text(max_size=8), "ip_address": ip_text, "country": st.text(max_size=3),
                           "resources": resources, "pricing": st.dictionaries(st.text(max_size=5), odd, max_size=2),
                           "updated_at": st.datetimes().map(str)}),
    VMInfo: shaped({"id": st.text(max_size=8), "name": st.text(max_size=8),
                    "status": st.sampled_from(["creating", "running", "stopped", "deleted", "Running", "gone"]),
                    "ssh_port": st.integers(0, 70000), "resources": resources, "created_at": st.datetimes().map(str)}),
    CreateJob: shaped({"job_id": st.text(max_size=8), "vm_id": st.text(max_size=8),
                       "status": st.sampled_from(["creating", "ready", "failed", "done"])}),
    AccessInfo: shaped({"vm_id": st.text(max_size=8), "ssh_host": st.text(max_size=8), "ssh_port": st.integers()}),
    ProviderInfo: shaped({"provider_id": st.text(max_size=8), "country": st.text(max_size=3)}),
}


@pytest.mark.parametrize("model", list(WIRE), ids=lambda m: m.__name__)
@settings(max_examples=100)
@given(data=st.data())
def test_wire_models_accept_or_name_the_problem(model: Any, data: st.DataObject) -> None:
    """Whatever a server sends, the result is a model or our ValidationError naming server and request."""
    payload = data.draw(WIRE[model] | json_values)
    try:
        parsed = parse_wire(model, payload, source=SOURCE, what="a thing", request="GET /api/v1/x")
    except ValidationError as exc:
        assert exc.msg.startswith(f"{SOURCE} answered GET /api/v1/x with a thing")
        if exc.field is not None:
            assert f"'{exc.field}'" in exc.msg
        return
    assert isinstance(parsed, model)
    if isinstance(parsed, Advertisement):
        # The address goes into a URL: only an IP literal may get through.
        assert str(ipaddress.ip_address(parsed.ip_address)) == parsed.ip_address
    if isinstance(parsed, VMInfo):
        assert parsed.name is not None


@given(cpu=st.integers(-2, 40), memory=st.integers(-2, 80), storage=st.integers(-2, 200))
def test_create_request_takes_exactly_what_providers_take(cpu: int, memory: int, storage: int) -> None:
    ok = cpu in ALLOWED_CPU and memory in ALLOWED_MEMORY and storage >= 10
    fields = {"name": "web-1", "ssh_key": KEY, "resources": {"cpu": cpu, "memory": memory, "storage": storage}}
    if ok:
        assert build_create_request(**fields).payload()["resources"] == fields["resources"]
        return
    with pytest.raises(ValidationError) as err:
        build_create_request(**fields)
    assert err.value.field in ("resources.cpu", "resources.memory", "resources.storage")
    assert str(err.value.value) in err.value.msg
