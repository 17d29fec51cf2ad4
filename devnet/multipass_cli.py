# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``multipass`` command the local network's providers run.

It is the one stand-in of the local network: the real providers call it exactly as they
call Canonical's multipass, and it forwards each call to the devnet daemon, which keeps
the sandbox VMs running after this process exits (as multipassd does for multipass).
Standard library only: it runs under whatever Python the wrapper names.
"""

from __future__ import annotations

import json
import os
import socket
import sys

SOCKET_ENV = "GOLEM_DEVNET_SOCKET"
OWNER_ENV = "GOLEM_DEVNET_OWNER"


def _cloud_init(argv: list[str]) -> str | None:
    # The provider deletes the file as soon as launch returns, so it is read now.
    if "--cloud-init" not in argv:
        return None
    path = argv[argv.index("--cloud-init") + 1]
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sock_path = os.environ.get(SOCKET_ENV)
    if not sock_path:
        sys.stderr.write(f"multipass (golem devnet): {SOCKET_ENV} is not set\n")
        return 2
    try:
        cloud_init = _cloud_init(argv) if argv[:1] == ["launch"] else None
    except (OSError, IndexError) as exc:
        sys.stderr.write(f"launch failed: cannot read cloud-init file: {exc}\n")
        return 2
    request = {"argv": argv, "owner": os.environ.get(OWNER_ENV, "default"), "cloud_init": cloud_init}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(sock_path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            conn.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        sys.stderr.write(f"cannot connect to the multipass socket {sock_path}: {exc}\n")
        return 2
    reply = json.loads(b"".join(chunks) or b'{"rc": 2, "stderr": "no reply from the devnet daemon\\n"}')
    sys.stdout.write(reply.get("stdout", ""))
    sys.stderr.write(reply.get("stderr", ""))
    return int(reply.get("rc", 2))


if __name__ == "__main__":
    sys.exit(main())
