#!/usr/bin/env bash
# Creates the controller virtualenv for one CI leg: .venv/<leg> with ansible-core and
# the test tools. Usage: install-tools.sh LEG PYTHON ANSIBLE_CORE_SPEC
set -euo pipefail
leg=$1 python=$2 core=$3
top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv/$leg"
stamp="$venv/.complete"
want="$core $(cat "$top/requirements.txt" "$top/tests/requirements.txt" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ ! -x "$python" ]; then
    echo "install-tools: Python for leg $leg not found at $python" >&2
    exit 1
fi
echo "install-tools: virtualenv .venv/$leg ($core on $("$python" -V 2>&1))"
rm -rf "$venv"
"$python" -m venv "$venv"
log="$top/.venv/$leg.install.log"
# pip's output goes to a log: it is long, and warns about this machine's extra index paths.
if ! { "$venv/bin/pip" install --disable-pip-version-check -U pip &&
       (cd "$top/tests" && "$venv/bin/pip" install --disable-pip-version-check "$core" -r requirements.txt); } \
       >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "install-tools: pip failed for leg $leg; full log: $log" >&2
    exit 1
fi
echo "$want" >"$stamp"
