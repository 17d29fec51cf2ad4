"""A small service for a Golem VM: answers a status line on a UNIX socket.

    python3 golem_hello.py start SOCKET   start it in the background unless it runs (prints started/running)
    python3 golem_hello.py check SOCKET   ask it for its status (prints the JSON it answers)
"""

import json
import os
import socket
import socketserver
import sys
import time

STARTED = time.time()


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        status = {"service": "golem-hello", "status": "ok", "host": socket.gethostname(),
                  "pid": os.getpid(), "uptime": round(time.time() - STARTED, 1)}
        self.wfile.write(json.dumps(status).encode() + b"\n")


def ask(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(path)
        return json.loads(conn.makefile().readline())


def start(path):
    try:
        ask(path)
        print("running")
        return 0
    except (OSError, ValueError):
        pass
    if os.path.exists(path):
        os.unlink(path)
    if os.fork():
        for _attempt in range(100):
            try:
                ask(path)
                print("started")
                return 0
            except (OSError, ValueError):
                time.sleep(0.05)
        print("did not start", file=sys.stderr)
        return 1
    os.setsid()
    with open(os.devnull, "rb") as devnull_in, open(os.devnull, "wb") as devnull_out:
        os.dup2(devnull_in.fileno(), 0)
        os.dup2(devnull_out.fileno(), 1)
        os.dup2(devnull_out.fileno(), 2)
    server = socketserver.UnixStreamServer(path, Handler)
    os.chmod(path, 0o660)
    server.serve_forever()
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "check"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[1] == "start":
        return start(argv[2])
    print(json.dumps(ask(argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
