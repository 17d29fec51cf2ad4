# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSH public keys: validation for what providers accept, and the collection's default key pair.

Providers inject the key through cloud-init and accept only ``ssh-rsa`` and
``ssh-ed25519``; anything else must fail here, before a VM is paid for.
"""

from __future__ import annotations

import base64
import binascii
import os
import traceback
from dataclasses import dataclass

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import (
    MissingLibraryError,
    StateError,
    ValidationError,
)
from ansible_collections.golem.vm.plugins.module_utils.foundation.files import (
    atomic_write,
    ensure_private_dir,
    file_lock,
)

# Guarded so this file imports where the libraries are missing (ansible-test's import test);
# callers check the flags and report with missing_required_lib.
try:
    from sshpubkeys import SSHKey
    from sshpubkeys.exceptions import InvalidKeyError, InvalidOptionsError, TooShortKeyError
except ImportError:
    HAS_SSHPUBKEYS = False
    SSHPUBKEYS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_SSHPUBKEYS = True
    SSHPUBKEYS_IMPORT_ERROR = None

try:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

ALLOWED_KEY_TYPES = ("ssh-rsa", "ssh-ed25519")
DEFAULT_KEY_NAME = "golem_id_ed25519"
DEFAULT_KEY_COMMENT = "golem.vm"
# A 16384-bit RSA public key is under 3 KiB of text; anything far bigger is not a public key.
MAX_KEY_FILE_BYTES = 64 * 1024
_EXCERPT = 40
# "openssh-key-v1" base64-encoded: the body of an OpenSSH private key, even without its header.
_PRIVATE_MARKERS = ("PRIVATE KEY-----", "PRIVATE KEY ----", "PuTTY-User-Key-File-", "b3BlbnNzaC1rZXktdjE")
_SSH2_HEADER = "---- BEGIN SSH2 PUBLIC KEY ----"
_PRIVATE_SHOWN_AS = "<private key, not shown>"


@dataclass(frozen=True)
class PublicKey:
    """A validated public key: ``text`` is the normalized one-line form providers accept."""

    text: str
    key_type: str
    bits: int
    fingerprint: str
    comment: str | None = None


@dataclass(frozen=True)
class KeyPair:
    private_key_path: str
    public_key_path: str
    public_key: PublicKey
    created: bool


def looks_private(text: str) -> bool:
    return any(marker in text for marker in _PRIVATE_MARKERS)


def _excerpt(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= _EXCERPT else first[:_EXCERPT] + "..."


def _require_sshpubkeys() -> None:
    if not HAS_SSHPUBKEYS:
        raise MissingLibraryError("sshpubkeys", SSHPUBKEYS_IMPORT_ERROR)


def _require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise MissingLibraryError("cryptography", CRYPTOGRAPHY_IMPORT_ERROR)


def _parse(text: str, field: str, value: str, where: str) -> PublicKey:
    """Validate ``text``; errors carry ``field`` and ``value`` and say ``where`` the text came from."""
    _require_sshpubkeys()

    def bad(reason: str) -> ValidationError:
        return ValidationError(f"{where} is not a usable SSH public key: {reason}", field=field, value=value)

    text = text.strip()
    if not text:
        raise bad("it is empty")
    if looks_private(text):
        # Never echo any part of it: the value is a secret the user did not mean to share.
        raise ValidationError(
            f"{where} holds a PRIVATE key; give the public key (the .pub file) instead",
            field=field,
            value=_PRIVATE_SHOWN_AS,
        )
    if text.startswith(_SSH2_HEADER):
        keydata = text
        body_b64 = "".join(line.strip() for line in text.splitlines() if ":" not in line and "----" not in line)
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if len(lines) != 1:
            raise bad(f"it holds {len(lines)} keys, give exactly one")
        keydata = lines[0]
        parts = keydata.split()
        # Name a known-but-refused type plainly instead of a parser error (covers certificates too).
        if parts[0] not in ALLOWED_KEY_TYPES and parts[0].startswith(("ecdsa-", "sk-", "ssh-")):
            raise bad(f"key type {parts[0]} is not accepted by providers (only {', '.join(ALLOWED_KEY_TYPES)})")
        if parts[0] not in ALLOWED_KEY_TYPES and any(part in ALLOWED_KEY_TYPES for part in parts[1:]):
            raise bad("authorized_keys options in front of the key are not accepted; give only the key")
        if parts[0] not in ALLOWED_KEY_TYPES and not any(part in ALLOWED_KEY_TYPES for part in parts[1:]):
            raise bad(f"it does not start with a key type ({', '.join(ALLOWED_KEY_TYPES)}): {_excerpt(keydata)!r}")
        body_b64 = parts[1] if len(parts) >= 2 else ""
        if parts[0] in ALLOWED_KEY_TYPES:
            try:
                base64.b64decode(body_b64, validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"the key data is not valid base64 ({_excerpt(keydata)!r})") from None

    # Passing the data to the constructor would parse it there and swallow some errors.
    key = SSHKey(strict=True, disallow_options=True)
    try:
        key.parse(keydata)
    except InvalidOptionsError:
        raise bad("authorized_keys options in front of the key are not accepted") from None
    except TooShortKeyError as exc:
        raise bad(str(exc)) from None
    except (InvalidKeyError, NotImplementedError) as exc:
        raise bad(f"{exc} ({_excerpt(keydata)!r})") from None
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # The parser trips over some hostile blobs with decode or struct errors; still bad input.
        raise bad(f"malformed key data ({type(exc).__name__}) ({_excerpt(keydata)!r})") from None

    key_type = key.key_type.decode("ascii", errors="replace")
    if key_type not in ALLOWED_KEY_TYPES:
        raise bad(f"key type {key_type} is not accepted by providers (only {', '.join(ALLOWED_KEY_TYPES)})")
    # Re-encode so the text is canonical whatever padding or line breaks the input had.
    body = base64.b64encode(base64.b64decode(body_b64)).decode("ascii")
    comment = key.comment.strip() if isinstance(key.comment, str) and key.comment.strip() else None
    normalized = f"{key_type} {body}" + (f" {comment}" if comment else "")
    return PublicKey(normalized, key_type, int(key.bits), key.hash_sha256(), comment)


def parse_public_key(value: str | bytes, field: str = "ssh_public_key") -> PublicKey:
    """Validate a public key given inline; raise ValidationError naming ``field`` and an excerpt."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{field} is not UTF-8 text", field=field, value=None) from None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, got {type(value).__name__}", field=field, value=None)
    shown = _PRIVATE_SHOWN_AS if looks_private(value) else _excerpt(value)
    return _parse(value, field, shown, field)


def _read_capped(path: str, field: str) -> bytes:
    """A key file's bytes, one more than MAX_KEY_FILE_BYTES at most (enough to tell it is too big)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"{field}: cannot read {path}: {exc.strerror or exc}", field=field, value=path) from exc


def read_public_key(path: str, field: str = "ssh_public_key_path") -> PublicKey:
    """Read and validate the public key file ``path``; errors name ``field`` and the path."""
    path = os.path.expanduser(path)
    if not os.path.lexists(path):
        raise ValidationError(f"{field}: {path} does not exist", field=field, value=path)
    if os.path.isdir(path):
        raise ValidationError(f"{field}: {path} is a directory, not a key file", field=field, value=path)
    data = _read_capped(path, field)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValidationError(f"{field}: {path} is too large to be a public key", field=field, value=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{field}: {path} is not a text file", field=field, value=path) from None
    if looks_private(text):
        hint = f" ({path}.pub exists)" if os.path.isfile(path + ".pub") else ""
        raise ValidationError(
            f"{field}: {path} is a PRIVATE key; point {field} at the public key (.pub) instead{hint}",
            field=field,
            value=path,
        )
    return _parse(text, field, path, f"{field} ({path})")


def public_key_of_private(path: str, field: str = "ssh_private_key_path") -> PublicKey:
    """The public half of the private key file ``path`` (OpenSSH or PEM, not passphrase-protected).

    For credentials that hold only a private key, such as an AWX credential's injected key file:
    the public key is derived, validated as providers want it, and nothing of the private key is
    kept or shown.
    """
    _require_cryptography()
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ValidationError(f"{field}: {path} does not exist or is not a file", field=field, value=path)
    data = _read_capped(path, field)
    key = None
    encrypted = False
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = load(data, password=None)
            break
        except TypeError:
            encrypted = True  # "password was not given but private key is encrypted"
        # UnsupportedAlgorithm: a security-key (sk-*) private key, whose public half is not derivable here.
        except (ValueError, NotImplementedError, UnsupportedAlgorithm):
            continue
    if key is None:
        why = ("it is passphrase-protected" if encrypted
               else "it is not an OpenSSH or PEM private key")
        raise ValidationError(
            f"{field}: cannot derive the public key from {path}: {why}; give ssh_public_key or "
            "ssh_public_key_path too",
            field=field, value=path)
    try:
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(
            f"{field}: the key in {path} has no OpenSSH public form; use an ed25519 or RSA key",
            field=field, value=path) from None
    return _parse(public.decode("ascii"), field, path, f"the public half of {field} ({path})")


def _public_from_private(private_path: str) -> bytes | None:
    """The OpenSSH public line for an unencrypted private key, or None if it is encrypted."""
    try:
        with open(private_path, "rb") as handle:
            data = handle.read()
        key = serialization.load_ssh_private_key(data, password=None)
    except TypeError:
        return None  # passphrase-protected: the user changed it on purpose, trust the pair
    except (OSError, ValueError) as exc:
        raise StateError(f"the default SSH private key {private_path} is unreadable: {exc}") from exc
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


def _load_pair(private_path: str, public_path: str, created: bool) -> KeyPair:
    public = read_public_key(public_path, field="ssh_public_key_path")
    derived = _public_from_private(private_path)
    if derived is not None and derived.split()[:2] != public.text.encode("ascii").split()[:2]:
        raise StateError(f"{public_path} does not belong to {private_path}; remove both to get a new default key pair")
    return KeyPair(private_path, public_path, public, created)


def ensure_default_keypair(directory: str, name: str = DEFAULT_KEY_NAME, comment: str = DEFAULT_KEY_COMMENT
                           ) -> KeyPair:
    """Return the collection's ed25519 key pair in ``directory``, generating it on first use.

    Safe when many forks call it at once: generation runs under a lock and both files
    are written atomically, so every caller ends up with the same pair.
    """
    _require_sshpubkeys()
    _require_cryptography()
    directory = os.path.abspath(os.path.expanduser(directory))
    private_path = os.path.join(directory, name)
    public_path = private_path + ".pub"
    if os.path.isfile(private_path) and os.path.isfile(public_path):
        return _load_pair(private_path, public_path, created=False)

    ensure_private_dir(directory)
    with file_lock(os.path.join(directory, f".{name}.lock")):
        has_private = os.path.isfile(private_path)
        has_public = os.path.isfile(public_path)
        if has_private and has_public:
            return _load_pair(private_path, public_path, created=False)
        if has_public:
            raise StateError(
                f"found {public_path} without its private key {private_path}; "
                "restore the private key or remove the .pub file"
            )
        try:
            if has_private:
                # A previous run died between the two writes; finish it from the private key.
                derived = _public_from_private(private_path)
                if derived is None:
                    raise StateError(f"{private_path} is passphrase-protected and has no {public_path}")
                atomic_write(public_path, derived + f" {comment}\n".encode(), 0o644)
                return _load_pair(private_path, public_path, created=False)
            key = Ed25519PrivateKey.generate()
            private_bytes = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            public_bytes = key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            atomic_write(private_path, private_bytes, 0o600)
            atomic_write(public_path, public_bytes + f" {comment}\n".encode(), 0o644)
        except OSError as exc:
            raise StateError(f"cannot write the default SSH key pair in {directory}: {exc.strerror or exc}") from exc
        return _load_pair(private_path, public_path, created=True)
