#!/usr/bin/env bash
# Runs `ansible-test sanity` or `units` for one CI leg, offline.
# Usage: ansible-test-offline.sh VENV PYTHON_VERSION sanity|units [ansible-test args...]
#
# ansible-test needs the collection under ansible_collections/golem/vm, so it runs on a
# copy of the files git knows (tracked, or new and not ignored), outside the clone.
# It also downloads get-pip.py for every venv it makes; offline, a small stand-in in its
# cache bootstraps pip from the standard library's ensurepip instead.
set -euo pipefail
venv=$1 pyver=$2 command=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
case $venv in /*) ;; *) venv="$top/$venv" ;; esac

cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for v in 24_0 24_2 25_2 25_3; do
    cat >"$cache/get_pip_$v.py" <<'PY'
import ensurepip, os, subprocess, sys
saved = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip sets PIP_CONFIG_FILE=/dev/null, which would drop the machine's pip.conf.
os.environ.clear()
os.environ.update(saved)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
done

# Outside the clone: inside it, ansible-test would ask git, which ignores .venv/ copies.
dest="${TMPDIR:-/tmp}/golem-vm-ansible-test-$(printf %s "$top" | sha1sum | cut -c1-8)/$(basename "$venv")/ansible_collections/golem/vm"
rm -rf "$dest"
mkdir -p "$dest"
cd "$top"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$dest"

cd "$dest"
export PATH="$venv/bin:$PATH"
exec ansible-test "$command" --local --python "$pyver" --color no "$@"
