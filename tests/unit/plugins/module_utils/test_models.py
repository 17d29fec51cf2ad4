# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.provider.models import (
    AccessInfo,
    Advertisement,
    CreateJob,
    JobStatus,
    ProviderInfo,
    VMInfo,
    VMStatus,
    build_create_request,
    name_problem,
    parse_wire,
    ssh_key_problem,
)

SOURCE = "discovery http://127.0.0.1:9001"
Load = Callable[[str], Any]


def _openssh(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.fixture(scope="module")
def ed25519_key() -> str:
    return _openssh(ed25519.Ed25519PrivateKey.generate()) + " user@host"


@pytest.fixture(scope="module")
def rsa_key() -> str:
    return _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ad(data: Any) -> Advertisement:
    return parse_wire(Advertisement, data, source=SOURCE, what="an advertisement")


# --- advertisements, from the real discovery 0.1.25 -------------------------------------------


def test_real_discovery_list_parses_every_advertisement(fixture_json: Load) -> None:
    ads = [ad(item) for item in fixture_json("discovery_list.json")]
    assert [a.provider_id for a in ads] == [
        "0x1b2e9b1f4c0d5a8e7f3a6c2d9e0b4a7c1f5d8e3a",
        "0x7d4c2a9e5b1f3d8c6a0e2b4f7c9d1a3e5b8f0c2d",
        "0x3e8a5c1d7b9f2e4a6c0d8b1f3e5a7c9d2b4f6a8e",
    ]
    first = ads[0]
    assert (first.resources.cpu, first.resources.memory, first.resources.storage) == (4, 8, 80)
    assert first.pricing is not None and first.pricing.usd_per_core_month == 5.0
    # The server sends naive timestamps that are UTC; the model says so.
    assert first.updated_at == datetime(2026, 11, 27, 8, 7, 51, 200462, tzinfo=timezone.utc)


def test_mvp_style_advertisement_without_pricing_or_platform_is_accepted(fixture_json: Load) -> None:
    mvp = ad(fixture_json("discovery_list.json")[2])
    assert mvp.pricing is None
    assert mvp.platform is None
    minimal = ad(
        {"provider_id": "0xabc", "ip_address": "10.0.0.1", "resources": {"cpu": 1, "memory": 1, "storage": 10}}
    )
    assert minimal.country is None and minimal.updated_at is None


def test_extra_fields_are_ignored(fixture_json: Load) -> None:
    data = dict(fixture_json("discovery_one.json"), provider_name="p1", created_at_block=7, platform="arm64")
    data["resources"] = dict(data["resources"], gpu=1)
    parsed = ad(data)
    assert parsed.platform == "arm64"
    assert not hasattr(parsed, "provider_name")


def test_wrong_type_names_server_field_and_value(fixture_json: Load) -> None:
    data = fixture_json("discovery_one.json")
    data["resources"]["cpu"] = "abc"
    with pytest.raises(ValidationError) as err:
        ad(data)
    assert err.value.msg.startswith(
        "discovery http://127.0.0.1:9001 sent an advertisement whose field 'resources.cpu' is 'abc': "
        "Input should be a valid integer"
    )
    assert err.value.failure() == {"kind": "validation", "field": "resources.cpu", "value": "abc"}


def test_missing_field_is_named(fixture_json: Load) -> None:
    data = fixture_json("discovery_one.json")
    del data["ip_address"]
    with pytest.raises(ValidationError) as err:
        ad(data)
    assert err.value.msg == f"{SOURCE} sent an advertisement without the required field 'ip_address'"
    assert err.value.field == "ip_address"


def test_several_problems_are_counted(fixture_json: Load) -> None:
    data = fixture_json("discovery_one.json")
    data["resources"] = {"cpu": "x", "memory": "y", "storage": "z"}
    with pytest.raises(ValidationError) as err:
        ad(data)
    assert err.value.msg.endswith("(and 2 more problems)")


def test_an_item_that_is_not_an_object_is_described() -> None:
    with pytest.raises(ValidationError) as err:
        ad("oops")
    assert err.value.msg.startswith(f"{SOURCE} sent an advertisement that is 'oops': ")


@pytest.mark.parametrize("address", ["evil.example.com", "127.0.0.1/admin#", "user@127.0.0.1", ""])
def test_ip_address_must_be_an_ip_literal_because_it_becomes_a_url(address: str) -> None:
    with pytest.raises(ValidationError) as err:
        ad({"provider_id": "0xabc", "ip_address": address, "resources": {"cpu": 1, "memory": 1, "storage": 10}})
    assert err.value.field == "ip_address"


def test_pricing_value_of_wrong_type_is_refused(fixture_json: Load) -> None:
    data = fixture_json("discovery_one.json")
    data["pricing"]["usd_per_core_month"] = "cheap"
    with pytest.raises(ValidationError) as err:
        ad(data)
    assert err.value.field == "pricing.usd_per_core_month"


# --- provider answers, built from the reference -----------------------------------------------


def vm(data: Any) -> VMInfo:
    return parse_wire(VMInfo, data, source="provider http://127.0.1.11:7466", what="a VM")


def test_running_vm(fixture_json: Load) -> None:
    info = vm(fixture_json("provider_vm_running_from_reference.json"))
    assert info.status is VMStatus.RUNNING
    assert (info.name, info.ssh_port, info.ip_address) == ("web-1", 50800, "127.0.1.21")
    assert info.resources is not None and info.resources.memory == 4


def test_stopped_vm_keeps_its_port_and_loses_its_address(fixture_json: Load) -> None:
    info = vm(fixture_json("provider_vm_stopped_from_reference.json"))
    assert info.status is VMStatus.STOPPED
    assert info.ip_address is None and info.ssh_port == 50800


def test_synthetic_creating_vm(fixture_json: Load) -> None:
    info = vm(fixture_json("provider_vm_creating_synthetic_from_reference.json"))
    assert info.status is VMStatus.CREATING and info.ssh_port is None


def test_minimal_mvp_vm_takes_its_name_from_its_id(fixture_json: Load) -> None:
    info = vm(fixture_json("provider_vm_mvp_minimal_from_reference.json"))
    assert info.name == "web-1"
    assert info.resources is None and info.created_at is None


def test_unknown_vm_status_is_refused_with_the_value() -> None:
    with pytest.raises(ValidationError) as err:
        vm({"id": "web-1", "status": "starting"})
    assert err.value.field == "status"
    assert "'starting'" in err.value.msg


def test_access_with_port(fixture_json: Load) -> None:
    access = AccessInfo.model_validate(fixture_json("provider_access_from_reference.json"))
    assert (access.ssh_host, access.ssh_port, access.vm_id) == ("127.0.0.1", 50800, "web-1")


def test_access_before_a_port_is_assigned(fixture_json: Load) -> None:
    access = AccessInfo.model_validate(fixture_json("provider_access_pending_202_from_reference.json"))
    assert access.ssh_port is None and access.ssh_host is None and access.status == "creating"


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("provider_create_async_202_from_reference.json", JobStatus.CREATING, None),
        ("provider_job_ready_from_reference.json", JobStatus.READY, None),
        ("provider_job_failed_from_reference.json", JobStatus.FAILED, "Insufficient resources available on provider"),
    ],
)
def test_create_jobs(fixture_json: Load, name: str, status: JobStatus, error: str | None) -> None:
    job = CreateJob.model_validate(fixture_json(name))
    assert (job.status, job.error) == (status, error)


def test_job_timestamps_keep_their_utc_offset(fixture_json: Load) -> None:
    job = CreateJob.model_validate(fixture_json("provider_job_ready_from_reference.json"))
    assert job.updated_at is not None and job.updated_at.utcoffset().total_seconds() == 0


def test_provider_info(fixture_json: Load) -> None:
    info = ProviderInfo.model_validate(fixture_json("provider_info_from_reference.json"))
    assert info.provider_id.startswith("0x1b2e") and info.platform == "x86_64"


# --- what we send: CreateVMRequest ------------------------------------------------------------


def test_create_payload_always_carries_resources_and_the_default_image(ed25519_key: str) -> None:
    req = build_create_request(name="web-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=ed25519_key)
    assert req.payload() == {
        "name": "web-1",
        "resources": {"cpu": 1, "memory": 1, "storage": 10},
        "ssh_key": ed25519_key,
        "image": "24.04",
        "stream_id": None,
    }


def test_create_request_trims_the_newline_of_a_key_file(rsa_key: str) -> None:
    req = build_create_request(name="web-1", resources={"cpu": 2, "memory": 4, "storage": 20}, ssh_key=rsa_key + "\n")
    assert req.ssh_key == rsa_key


def test_create_request_errors_name_the_option_and_value(ed25519_key: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_create_request(name="web-1", resources={"cpu": 3, "memory": 1, "storage": 10}, ssh_key=ed25519_key)
    assert err.value.msg == "resources.cpu is 3: CPU cores must be one of 1, 2, 4, 8, 16"
    assert (err.value.field, err.value.value) == ("resources.cpu", 3)


def test_create_request_without_resources_is_refused(ed25519_key: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_create_request(name="web-1", ssh_key=ed25519_key)
    assert err.value.msg == "resources is required to create a VM"


def test_create_request_refuses_unknown_fields(ed25519_key: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_create_request(
            name="web-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=ed25519_key, size="small"
        )
    assert err.value.field == "size"


def test_create_request_refuses_a_string_stream_id(ed25519_key: str) -> None:
    with pytest.raises(ValidationError) as err:
        build_create_request(
            name="web-1", resources={"cpu": 1, "memory": 1, "storage": 10}, ssh_key=ed25519_key, stream_id="7"
        )
    assert err.value.field == "stream_id"


@pytest.mark.parametrize("name", ["abc", "a-b", "0ab", "web-01", "a" * 64, "1-2-3"])
def test_names_providers_accept(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "3 to 64 characters long, not 2"),
        ("a" * 65, "3 to 64 characters long, not 65"),
        ("Web", "only lowercase letters"),
        ("-ab", "start and end with a letter or digit"),
        ("ab-", "start and end with a letter or digit"),
        ("a_b", "only lowercase letters"),
        ("a b", "only lowercase letters"),
        ("a--b", "must not contain '--'"),
        ("web\n", "only lowercase letters"),
    ],
)
def test_names_providers_refuse(name: str, reason: str) -> None:
    problem = name_problem(name)
    assert problem is not None and reason in problem


def test_keys_providers_accept(ed25519_key: str, rsa_key: str) -> None:
    assert ssh_key_problem(ed25519_key) is None
    assert ssh_key_problem(rsa_key) is None


def test_ecdsa_keys_are_refused_by_name() -> None:
    key = _openssh(ec.generate_private_key(ec.SECP256R1()))
    problem = ssh_key_problem(key)
    assert problem == (
        "providers accept only ssh-rsa and ssh-ed25519 public keys, this one starts with 'ecdsa-sha2-nistp256'"
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: k.split()[0], "no key data"),
        (lambda k: k.split()[0] + " not*base64", "not valid base64"),
        (lambda k: "ssh-rsa " + k.split()[1], "does not hold a ssh-rsa key"),
        (lambda k: k.split()[0] + " " + k.split()[1][:20], "truncated or damaged"),
        (lambda k: k.split()[0] + " " + k.split()[1][:-8], "truncated or damaged"),
        (lambda k: k.replace(" ", "\t", 1), "followed by a single space"),
        (lambda k: "", "starts with 'nothing'"),
        (lambda k: "-----BEGIN OPENSSH PRIVATE KEY-----", "starts with '-----BEGIN'"),
    ],
)
def test_broken_keys_are_refused_with_the_reason(ed25519_key: str, make: Callable[[str], str], reason: str) -> None:
    problem = ssh_key_problem(make(ed25519_key))
    assert problem is not None and reason in problem
