#!/usr/bin/env bash
# Installs what the local Golem network runs: the upstream servers from PyPI, each in
# its own virtualenv (their pins clash with ours and with each other), the upstream
# requestor CLI the same way, and the Debian rootfs the sandbox VMs boot from. Everything lands in a cache outside the clone, so a
# second clone or a second run reuses it.
set -euo pipefail

cache=${GOLEM_DEVNET_CACHE:-/var/cache/golem-vm-devnet}
python=${GOLEM_DEVNET_PYTHON:-$(command -v python3.11 || command -v python3)}
mkdir -p "$cache/venvs"

# name=requirement; the name is the venv folder, so a new pin gets a new venv.
venvs=(
    "discovery-0.1.25=golem-vm-discovery==0.1.25"
    "provider-0.1.63=golem-vm-provider==0.1.63"
    "provider-0.1.31=golem-vm-provider==0.1.31"
    # The upstream requestor CLI (`golem`), for the interop tests: never part of the network.
    "requestor-0.1.58=request-vm-on-golem==0.1.58"
)

make_venv() {
    local name=$1 req=$2 dir="$cache/venvs/$1"
    [ -f "$dir/.complete" ] && return 0
    echo "install-devnet: virtualenv $name ($req)"
    # venvs hard-code their own path, so build in place; .complete marks a finished one.
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$req" >"$cache/venvs/$name.log" 2>&1 || {
        echo "install-devnet: pip install $req failed; see $cache/venvs/$name.log" >&2
        return 1
    }
    touch "$dir/.complete"
}

pids=()
for entry in "${venvs[@]}"; do
    make_venv "${entry%%=*}" "${entry#*=}" &
    pids+=($!)
done

rootfs="$cache/rootfs-bookworm"
if [ ! -f "$rootfs/.complete" ]; then
    echo "install-devnet: debootstrap of the sandbox rootfs (about 40 s, once)"
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase --include=openssh-server,python3,procps,sudo \
        bookworm "$rootfs.tmp" http://deb.debian.org/debian >"$cache/rootfs.log" 2>&1 || {
        echo "install-devnet: debootstrap failed; see $cache/rootfs.log" >&2
        exit 1
    }
    # Host keys are made per VM at launch; a shared one would make every VM the same host.
    rm -f "$rootfs.tmp"/etc/ssh/ssh_host_*
    rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb
    touch "$rootfs.tmp/.complete"
    mv "$rootfs.tmp" "$rootfs"
fi

status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
