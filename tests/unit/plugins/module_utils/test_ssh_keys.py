# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    MissingLibraryError,
    StateError,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.vm import ssh_keys
from ansible_collections.golem.vm.plugins.module_utils.vm.ssh_keys import (
    ensure_default_keypair,
    parse_public_key,
    read_public_key,
)


def _keygen(directory: Path, name: str, *args: str) -> Path:
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", f"{name}@test", "-f", str(path), *args], check=True)
    return path


def _keygen_fingerprint(pub: Path) -> str:
    # "256 SHA256:abc... comment (ED25519)"
    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    return {
        "ed25519": _keygen(directory, "ed", "-t", "ed25519"),
        "rsa": _keygen(directory, "rsa", "-t", "rsa", "-b", "3072"),
        "ecdsa": _keygen(directory, "ec", "-t", "ecdsa"),
    }


def _secret_lines(private: Path) -> list[str]:
    return [line for line in private.read_text().splitlines() if "-----" not in line]


def _assert_not_leaked(err: ValidationError, private: Path) -> None:
    shown = err.msg + json.dumps(err.failure()) + repr(err.value)
    for line in _secret_lines(private):
        assert line not in shown
        assert line[:20] not in shown


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, key_type, bits", [("ed25519", "ssh-ed25519", 256), ("rsa", "ssh-rsa", 3072)])
def test_accepted_keys(keys: dict[str, Path], kind: str, key_type: str, bits: int) -> None:
    pub = Path(str(keys[kind]) + ".pub")
    text = pub.read_text()
    key = parse_public_key(text)
    assert key.key_type == key_type and key.bits == bits
    assert key.fingerprint == _keygen_fingerprint(pub)
    assert key.text == text.strip()  # ssh-keygen output is already canonical
    assert key.text.startswith(key_type + " ")  # what the provider's check looks for
    assert read_public_key(str(pub)) == key


def test_normalizes_whitespace_and_ssh2_format(keys: dict[str, Path], tmp_path: Path) -> None:
    pub = Path(str(keys["ed25519"]) + ".pub")
    key_type, body, comment = pub.read_text().split()
    messy = parse_public_key(f"\n   {key_type}    {body}   {comment}  \n\n")
    assert messy.text == f"{key_type} {body} {comment}"
    rfc4716 = subprocess.run(["ssh-keygen", "-e", "-f", str(pub)], capture_output=True, text=True, check=True).stdout
    converted = parse_public_key(rfc4716)
    assert converted.text == f"{key_type} {body}"
    assert converted.fingerprint == messy.fingerprint


def test_ecdsa_is_refused_naming_the_type(keys: dict[str, Path]) -> None:
    text = Path(str(keys["ecdsa"]) + ".pub").read_text()
    with pytest.raises(ValidationError) as err:
        parse_public_key(text)
    assert err.value.field == "ssh_public_key"
    assert "ecdsa-sha2-nistp256" in err.value.msg and "ssh-ed25519" in err.value.msg
    with pytest.raises(ValidationError) as from_file:
        read_public_key(str(keys["ecdsa"]) + ".pub")
    assert from_file.value.field == "ssh_public_key_path" and "ecdsa-sha2-nistp256" in from_file.value.msg


@pytest.mark.parametrize(
    "value, expect",
    [
        ("", "empty"),
        ("hello world", "hello world"),
        ("ssh-ed25519 not*base64*at+all", "not valid base64"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "ssh-ed25519"),  # truncated blob
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ssh-dss"),
        ('command="/bin/true" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==', "options"),
    ],
)
def test_garbage_is_refused_with_an_excerpt(value: str, expect: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_public_key(value)
    assert err.value.field == "ssh_public_key"
    assert expect in err.value.msg
    assert err.value.failure()["field"] == "ssh_public_key"
    assert len(str(err.value.value)) <= 43  # an excerpt, not the whole value


def test_authorized_keys_options_are_refused(keys: dict[str, Path]) -> None:
    text = Path(str(keys["ed25519"]) + ".pub").read_text()
    with pytest.raises(ValidationError) as err:
        parse_public_key('from="10.0.0.1",no-pty ' + text)
    assert "options" in err.value.msg


ED25519_SAMPLE = "AAAAC3NzaC1lZDI1NTE5AAAAIHGVEdNW5mkk/36pu/LqCx+wq+K1FFoZ88elDlwn1HWX"  # a valid ed25519 blob


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blob=st.one_of(
        st.binary(max_size=120),
        st.builds(
            lambda cut, extra: base64.b64decode(ED25519_SAMPLE)[:cut] + extra,
            st.integers(0, 51),
            st.binary(max_size=8),
        ),
    ),
    key_type=st.sampled_from(["ssh-ed25519", "ssh-rsa"]),
)
def test_hostile_blobs_only_ever_raise_validation_errors(blob: bytes, key_type: str) -> None:
    try:
        key = parse_public_key(f"{key_type} {base64.b64encode(blob).decode()}")
    except ValidationError as err:
        assert err.field == "ssh_public_key"
    else:
        assert key.key_type == key_type and key.fingerprint.startswith("SHA256:")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_validation_errors(text: str) -> None:
    try:
        parse_public_key(text)
    except ValidationError as err:
        assert err.field == "ssh_public_key"


def test_long_value_is_only_excerpted() -> None:
    value = "x" * 5000
    with pytest.raises(ValidationError) as err:
        parse_public_key(value)
    assert value not in err.value.msg and err.value.value == "x" * 40 + "..."


def test_two_keys_are_refused(keys: dict[str, Path]) -> None:
    both = Path(str(keys["ed25519"]) + ".pub").read_text() + Path(str(keys["rsa"]) + ".pub").read_text()
    with pytest.raises(ValidationError) as err:
        parse_public_key(both)
    assert "2 keys" in err.value.msg


def test_private_key_inline_is_refused_without_echo(keys: dict[str, Path]) -> None:
    private = keys["ed25519"]
    with pytest.raises(ValidationError) as err:
        parse_public_key(private.read_text())
    assert "PRIVATE" in err.value.msg and err.value.field == "ssh_public_key"
    _assert_not_leaked(err.value, private)
    # The body alone, header stripped, is still recognised.
    with pytest.raises(ValidationError) as body_only:
        parse_public_key("\n".join(_secret_lines(private)))
    assert "PRIVATE" in body_only.value.msg
    _assert_not_leaked(body_only.value, private)


def test_private_key_path_is_refused_without_echo(keys: dict[str, Path]) -> None:
    private = keys["rsa"]
    with pytest.raises(ValidationError) as err:
        read_public_key(str(private))
    assert "PRIVATE" in err.value.msg and f"{private}.pub exists" in err.value.msg
    assert err.value.field == "ssh_public_key_path" and err.value.value == str(private)
    _assert_not_leaked(err.value, private)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as missing:
        read_public_key(str(tmp_path / "nope.pub"))
    assert "does not exist" in missing.value.msg and missing.value.field == "ssh_public_key_path"
    with pytest.raises(ValidationError) as directory:
        read_public_key(str(tmp_path))
    assert "is a directory" in directory.value.msg
    binary = tmp_path / "bin.pub"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValidationError) as not_text:
        read_public_key(str(binary))
    assert "not a text file" in not_text.value.msg


def test_missing_library_is_reported(monkeypatch: pytest.MonkeyPatch, keys: dict[str, Path]) -> None:
    monkeypatch.setattr(ssh_keys, "HAS_SSHPUBKEYS", False)
    monkeypatch.setattr(ssh_keys, "SSHPUBKEYS_IMPORT_ERROR", "Traceback: No module named 'sshpubkeys'")
    with pytest.raises(MissingLibraryError) as err:
        parse_public_key(Path(str(keys["ed25519"]) + ".pub").read_text())
    assert err.value.library == "sshpubkeys" and "sshpubkeys" in (err.value.import_traceback or "")


# --- default key pair --------------------------------------------------------------------


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _public_of(private: str) -> list[str]:
    out = subprocess.run(["ssh-keygen", "-y", "-f", private], capture_output=True, text=True, check=True).stdout
    return out.split()[:2]


def test_default_keypair_is_generated_private_and_reused(tmp_path: Path, open_umask: None) -> None:
    directory = tmp_path / "home" / ".golem" / "requestor" / "ssh"
    pair = ensure_default_keypair(str(directory))
    assert pair.created is True
    assert pair.private_key_path == str(directory / "golem_id_ed25519")
    assert pair.public_key_path == str(directory / "golem_id_ed25519.pub")
    assert _mode(directory) == 0o700 and _mode(tmp_path / "home" / ".golem") == 0o700
    assert _mode(pair.private_key_path) == 0o600
    assert _mode(pair.public_key_path) == 0o644
    assert Path(pair.private_key_path).read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    # ssh-keygen can read the private key without a passphrase and derives the same public key.
    assert _public_of(pair.private_key_path) == pair.public_key.text.split()[:2]
    assert pair.public_key.key_type == "ssh-ed25519"
    assert pair.public_key.fingerprint == _keygen_fingerprint(Path(pair.public_key_path))

    before = {p: Path(p).read_bytes() for p in (pair.private_key_path, pair.public_key_path)}
    again = ensure_default_keypair(str(directory))
    assert again.created is False and again.public_key == pair.public_key
    assert {p: Path(p).read_bytes() for p in before} == before
    assert sorted(os.listdir(directory)) == [".golem_id_ed25519.lock", "golem_id_ed25519", "golem_id_ed25519.pub"]


def test_parallel_processes_end_with_one_pair(tmp_path: Path, run_in_processes: Callable[..., list[Any]]) -> None:
    directory = str(tmp_path / "ssh")

    def generate(index: int) -> tuple[str, bool]:  # pylint: disable=unused-argument
        pair = ensure_default_keypair(directory)
        return pair.public_key.fingerprint, pair.created

    results = run_in_processes(generate, 8)
    fingerprints = {fp for fp, created in results}
    assert len(fingerprints) == 1
    assert sum(created for fp, created in results) == 1
    final = ensure_default_keypair(directory)
    assert final.public_key.fingerprint in fingerprints
    assert _public_of(final.private_key_path) == final.public_key.text.split()[:2]
    assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_missing_public_half_is_rebuilt_from_the_private_key(tmp_path: Path) -> None:
    pair = ensure_default_keypair(str(tmp_path))
    os.unlink(pair.public_key_path)
    again = ensure_default_keypair(str(tmp_path))
    assert again.public_key.text.split()[:2] == pair.public_key.text.split()[:2]
    assert again.created is False


def test_lonely_or_mismatched_public_key_is_not_overwritten(tmp_path: Path, keys: dict[str, Path]) -> None:
    stray = Path(str(keys["ed25519"]) + ".pub").read_text()
    (tmp_path / "golem_id_ed25519.pub").write_text(stray)
    with pytest.raises(StateError) as lonely:
        ensure_default_keypair(str(tmp_path))
    assert "without its private key" in lonely.value.msg
    assert (tmp_path / "golem_id_ed25519.pub").read_text() == stray

    other = tmp_path / "other"
    pair = ensure_default_keypair(str(other))
    Path(pair.public_key_path).write_text(stray)
    with pytest.raises(StateError) as mismatch:
        ensure_default_keypair(str(other))
    assert "does not belong to" in mismatch.value.msg


# --- the public half of a private key (credentials that hold only the private key) -----------


@pytest.mark.parametrize("kind, fmt", [("ed25519", "RFC4716"), ("rsa", "RFC4716"), ("rsa", "PEM")])
def test_public_half_of_a_private_key_matches_ssh_keygen(tmp_path: Path, kind: str, fmt: str) -> None:
    # AWX stores whatever the user pasted: OpenSSH format, or an old-style PEM RSA key.
    private = _keygen(tmp_path, f"{kind}-{fmt}", "-t", kind, "-m", fmt)
    key = ssh_keys.public_key_of_private(str(private))
    assert key.fingerprint == _keygen_fingerprint(private.with_suffix(".pub"))
    assert key.text.split()[:2] == private.with_suffix(".pub").read_text().split()[:2]


def test_public_half_refuses_passphrase_and_garbage_without_echo(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(locked)], check=True)
    with pytest.raises(ValidationError, match="passphrase-protected") as err:
        ssh_keys.public_key_of_private(str(locked))
    _assert_not_leaked(err.value, locked)
    junk = tmp_path / "junk"
    junk.write_text("not a key\n")
    with pytest.raises(ValidationError, match="not an OpenSSH or PEM private key"):
        ssh_keys.public_key_of_private(str(junk))
    with pytest.raises(ValidationError, match="does not exist"):
        ssh_keys.public_key_of_private(str(tmp_path / "missing"))


def test_only_a_private_key_given_installs_its_own_public_half(tmp_path: Path, keys: dict[str, Path]) -> None:
    from ansible_collections.golem.vm.plugins.module_utils.vm_request import resolve_key

    # A lone private key file, as an AWX credential injects it: no .pub beside it.
    lone = tmp_path / "injected"
    lone.write_bytes(keys["ed25519"].read_bytes())
    lone.chmod(0o600)
    params = {"ssh_public_key": None, "ssh_public_key_path": None, "ssh_private_key_path": str(lone)}
    info = resolve_key(params, str(tmp_path / "state" / "vms.db"), generate=True)
    assert info.private_path == str(lone)
    assert info.fingerprint == _keygen_fingerprint(keys["ed25519"].with_suffix(".pub"))
    # Not the collection's default pair: none was generated.
    assert not (tmp_path / "state" / "ssh").exists()


def test_the_key_variable_stands_in_only_when_no_key_option_is_given(
        tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.golem.vm.plugins.module_utils.vm_request import resolve_key

    injected = tmp_path / "awx-job-key"
    injected.write_bytes(keys["ed25519"].read_bytes())
    injected.chmod(0o600)
    monkeypatch.setenv("GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH", str(injected))
    state = str(tmp_path / "state" / "vms.db")
    none = {"ssh_public_key": None, "ssh_public_key_path": None, "ssh_private_key_path": None}
    alone = resolve_key(none, state, generate=True)
    assert alone.private_path == str(injected)
    assert alone.fingerprint == _keygen_fingerprint(keys["ed25519"].with_suffix(".pub"))
    # Beside a public key option the variable would name a key that does not match the installed one.
    own = keys["rsa"].with_suffix(".pub")
    given = resolve_key({**none, "ssh_public_key_path": str(own)}, state, generate=True)
    assert given.private_path == str(keys["rsa"]) and given.fingerprint == _keygen_fingerprint(own)
