# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host or port from outside (a provider, an advert, a state row) is checked by one rule before use,
and again where it is written: known_hosts lines, ssh command lines, Ansible hosts."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.golem.vm.plugins.module_utils.foundation.endpoints import (
    check_host,
    check_port,
    host_problem,
    port_problem,
    resolve_within,
    ssh_host_of,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import AccessInfo, Advertisement, VMInfo, parse_wire
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.vm.known_hosts import (
    HostKey,
    KnownHosts,
    scan_host_keys,
    wait_for_ssh_banner,
)
from ansible_collections.golem.vm.plugins.module_utils.vm.view import represent_vm, ssh_command

HOSTILE_HOSTS = [
    '127.0.0.2\nMatch exec "touch /tmp/pwned"\nHost zz',
    "127.0.0.2 127.0.0.3",
    "127.0.0.2\t",
    "host\x00name",
    "host\rname",
    "-oProxyCommand=touch",
    "-host",
    "fe80::1%eth0\nHost x",  # Python's ipaddress takes any text after an IPv6 zone
    "fe80::1%eth0",
    "user@host",
    "host/path",
    "[127.0.0.2]",
    "a" * 64 + ".example",
    ".leading.dot",
    "double..dot",
    "under_score.example",
    "",
    None,
    7,
]
GOOD_HOSTS = ["127.0.0.2", "192.0.2.10", "2001:db8::1", "::1", "provider-1.example.org", "localhost", "a.b.",
              "xn--bcher-kva.example", "a" * 63 + ".example"]


@pytest.mark.parametrize("value", GOOD_HOSTS)
def test_ip_literals_and_rfc_1123_names_are_hosts(value: str) -> None:
    assert host_problem(value) is None
    assert check_host(value, field="ssh_host", source="provider x") == value


@pytest.mark.parametrize("value", HOSTILE_HOSTS)
def test_anything_else_is_refused_naming_who_said_it_and_the_value_escaped(value: Any) -> None:
    assert host_problem(value) is not None
    with pytest.raises(ValidationError) as err:
        check_host(value, field="ssh_host", source="provider http://127.0.0.2:7466")
    msg = err.value.msg
    assert msg.startswith(f"provider http://127.0.0.2:7466 gave ssh_host {value!r}"[:60])
    assert "\n" not in msg and "\r" not in msg and "\x00" not in msg
    assert err.value.field == "ssh_host"


@pytest.mark.parametrize(("value", "ok"), [(1, True), (22, True), (65535, True), (0, False), (65536, False),
                                           (65558, False), (70000, False), (-1, False), (True, False),
                                           ("22", False), (22.0, False), (None, False)])
def test_a_port_is_a_whole_number_from_1_to_65535(value: Any, ok: bool) -> None:
    assert (port_problem(value) is None) is ok
    if not ok:
        with pytest.raises(ValidationError, match="ssh_port"):
            check_port(value, field="ssh_port", source="provider x")


@pytest.mark.parametrize(("answered", "recorded"), [(None, "127.0.0.2"), ("localhost", "127.0.0.2"),
                                                    ("LOCALHOST", "127.0.0.2"), ("127.0.0.2", "127.0.0.2")])
def test_no_host_or_upstream_s_localhost_means_the_provider_s_own_address(
        answered: str | None, recorded: str) -> None:
    assert ssh_host_of(answered, provider_ip="127.0.0.2", source="provider x") == recorded


def test_a_malformed_host_from_a_provider_is_never_recorded() -> None:
    with pytest.raises(ValidationError):
        ssh_host_of("127.0.0.2\nHost *", provider_ip="127.0.0.2", source="provider x")


@pytest.mark.parametrize("foreign", ["127.0.0.99", "10.0.0.1", "::1", "elsewhere.example"])
def test_a_host_that_is_not_the_provider_s_own_address_is_refused(foreign: str) -> None:
    with pytest.raises(ValidationError) as err:
        ssh_host_of(foreign, provider_ip="127.0.0.2", source="provider x", resolve=lambda name: ["127.0.0.99"])
    assert err.value.field == "ssh_host" and "allow_foreign_ssh_host" in err.value.msg
    assert "provider x" in err.value.msg and repr(foreign) in err.value.msg and "127.0.0.2" in err.value.msg


def test_a_name_resolving_to_the_provider_is_recorded_as_its_address() -> None:
    asked: list[str] = []

    def resolve(name: str) -> list[str]:
        asked.append(name)
        return ["10.1.1.1", "127.0.0.2"]

    # The address, not the name: a later DNS answer cannot move Ansible to another machine.
    assert ssh_host_of("vm.provider.example", provider_ip="127.0.0.2", source="p", resolve=resolve) == "127.0.0.2"
    assert asked == ["vm.provider.example"]


def test_an_ip_is_compared_not_resolved_and_the_same_address_in_another_spelling_is_its_own() -> None:
    def never(name: str) -> list[str]:
        raise AssertionError(f"resolved {name}")

    assert ssh_host_of("::ffff:7f00:2", provider_ip="::ffff:127.0.0.2", source="p", resolve=never) == (
        "::ffff:127.0.0.2")
    with pytest.raises(ValidationError):
        ssh_host_of("127.0.0.3", provider_ip="127.0.0.2", source="p", resolve=never)


def test_allow_foreign_takes_another_host_but_never_a_malformed_one() -> None:
    assert ssh_host_of("127.0.0.99", provider_ip="127.0.0.2", source="p", allow_foreign=True) == "127.0.0.99"
    with pytest.raises(ValidationError) as err:
        ssh_host_of("127.0.0.99\nHost *", provider_ip="127.0.0.2", source="p", allow_foreign=True)
    assert "allow_foreign_ssh_host" not in err.value.msg


# -- wire models: checked at the edge ---------------------------------------------------------------------


@pytest.mark.parametrize(("model", "data", "field"), [
    (AccessInfo, {"vm_id": "v", "ssh_host": "127.0.0.2\nMatch all", "ssh_port": 22}, "ssh_host"),
    (AccessInfo, {"vm_id": "v", "ssh_host": "127.0.0.2", "ssh_port": 70000}, "ssh_port"),
    (AccessInfo, {"vm_id": "v", "ssh_host": "127.0.0.2", "ssh_port": 0}, "ssh_port"),
    (VMInfo, {"id": "v", "status": "running", "ssh_port": 65558}, "ssh_port"),
    (Advertisement, {"provider_id": "0xp", "ip_address": "fe80::1%a\nb",
                     "resources": {"cpu": 1, "memory": 1, "storage": 10}}, "ip_address"),
])
def test_provider_answers_with_a_bad_endpoint_are_refused_where_they_are_parsed(
        model: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_wire(model, data, source="provider http://127.0.0.2:7466", what="an answer", request="GET /x")
    assert err.value.field == field and "provider http://127.0.0.2:7466 answered GET /x" in err.value.msg
    assert "\n" not in err.value.msg


def test_an_access_answer_without_a_port_yet_is_still_accepted() -> None:
    assert parse_wire(AccessInfo, {"vm_id": "v", "ssh_host": None, "ssh_port": None}, source="p", what="a").ssh_port is None


# -- state rows someone else wrote: judged where they are read ---------------------------------------------


def _row(**config: Any) -> VMRecord:
    return VMRecord("web-1", config.pop("provider_ip", "127.0.0.2"), "web-1", "running",
                    {"ssh_port": 20001, "provider_port": 7466, **config})


@pytest.mark.parametrize(("row", "field"), [
    (_row(ssh_host="127.0.0.2\nMatch exec \"id\""), "ssh_host"),
    (_row(ssh_port=70000), "ssh_port"),
    (_row(ssh_port=-22), "ssh_port"),
    (_row(provider_port=0), "provider_port"),
    (_row(provider_ip="127.0.0.2 -oProxyCommand=x"), "provider_ip"),
    (_row(ssh_user="root\nHost *\n  ProxyCommand touch /tmp/x"), "ssh_user"),
    (_row(ssh_user="-oProxyCommand=x"), "ssh_user"),
    (_row(ssh_private_key_path="/k/id\nMatch exec \"id\""), "ssh_private_key_path"),
])
def test_a_tampered_row_gives_no_ssh_endpoint_and_no_line_to_paste(row: VMRecord, field: str) -> None:
    problem = row.endpoint_problem()
    assert problem is not None and field in problem and "\n" not in problem
    view = represent_vm(row, known_hosts_path="/tmp/known_hosts")
    assert view["ssh_host"] is None and view["ssh_port"] is None and view["ssh_command"] is None
    assert field in view["error"]


def test_an_honest_row_keeps_its_endpoint_and_ports_written_as_text_count() -> None:
    assert _row().endpoint_problem() is None
    assert _row(ssh_port="20001", ssh_host="provider-1.example").endpoint_problem() is None
    assert VMRecord("web-1", "", "web-1", "creating", {}).endpoint_problem() is None  # nothing recorded yet


def test_the_line_to_paste_ends_ssh_s_options_before_the_destination() -> None:
    line = ssh_command("127.0.0.2", 20001, "root", "/k/id", "/k/known_hosts")
    assert line.endswith(" -- root@127.0.0.2")


# -- known_hosts: checked again where it is written ---------------------------------------------------------


KEY = HostKey("ssh-ed25519", base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"\x07" * 32).decode())


@pytest.mark.parametrize("host", ['127.0.0.2\n@cert-authority * ssh-ed25519 AAAA', "127.0.0.2 *", "-x"])
def test_known_hosts_never_takes_a_line_from_a_bad_host(tmp_path: Path, host: str) -> None:
    known = KnownHosts(str(tmp_path / "known_hosts"))
    known.add("127.0.0.2", 20001, [KEY])
    before = (tmp_path / "known_hosts").read_bytes()
    with pytest.raises(ValidationError):
        known.add(host, 20001, [KEY])
    assert (tmp_path / "known_hosts").read_bytes() == before
    assert known.remove(host, 20001) is False and not known.recorded().has(host, 20001)
    assert (tmp_path / "known_hosts").read_bytes() == before


def test_known_hosts_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ssh_port"):
        KnownHosts(str(tmp_path / "known_hosts")).add("127.0.0.2", 65558, [KEY])


def test_the_banner_wait_refuses_a_port_that_would_wrap_around(tmp_path: Path) -> None:
    # 65558 would reach port 22 through the C library; nothing is connected to.
    with pytest.raises(ValidationError, match="65558"):
        wait_for_ssh_banner("127.0.0.2", 65558, 0.0)


def test_ssh_keyscan_ends_its_options_before_the_host() -> None:
    commands: list[list[str]] = []

    def run(command: list[str]) -> tuple[int, str, str]:
        commands.append(command)
        return 0, f"[127.0.0.2]:20001 {KEY.key_type} {KEY.key}\n", ""

    assert scan_host_keys("127.0.0.2", 20001, key_types=("ed25519",), run=run) == [KEY]
    assert commands[0][-2:] == ["--", "127.0.0.2"]


def test_a_name_that_resolves_too_slowly_is_refused_without_waiting_for_the_resolver() -> None:
    release, answered = threading.Event(), threading.Event()

    def hangs(name: str) -> list[str]:
        release.wait()  # a resolver stuck on a hostile name server, until the test lets it go
        answered.set()
        return ["127.0.0.2"]

    try:
        with pytest.raises(ValidationError) as err:
            ssh_host_of("slow.provider.example", provider_ip="127.0.0.2", source="provider x",
                        resolve=resolve_within(0.2, hangs))
        assert not answered.is_set(), "the task went on while the lookup still hung: its time is bounded"
    finally:
        release.set()
    assert err.value.field == "ssh_host" and "slow.provider.example" in err.value.msg


def test_a_name_resolved_in_time_is_answered_as_resolved() -> None:
    assert resolve_within(5.0, lambda name: ["127.0.0.2"])("vm.provider.example") == ["127.0.0.2"]
