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
    # golem-streaming-abi 0.1.2 describes another contract: with it, payments fail and the provider's
    # stream monitor deletes running VMs (reference §7.1). 0.1.1 is the ABI the 0.1.x network runs.
    "provider-0.1.63-abi0.1.1=golem-vm-provider==0.1.63 golem-streaming-abi==0.1.1"
    "provider-0.1.31=golem-vm-provider==0.1.31"
    # The upstream requestor CLI (`golem`), for the interop tests: never part of the network.
    "requestor-0.1.58-abi0.1.1=request-vm-on-golem==0.1.58 golem-streaming-abi==0.1.1"
)

make_venv() {
    local name=$1 req=$2 dir="$cache/venvs/$1"
    [ -f "$dir/.complete" ] && return 0
    echo "install-devnet: virtualenv $name ($req)"
    # venvs hard-code their own path, so build in place; .complete marks a finished one.
    rm -rf "$dir"
    "$python" -m venv "$dir"
    # shellcheck disable=SC2086 # a requirement list, split on purpose
    "$dir/bin/pip" install -q --disable-pip-version-check $req >"$cache/venvs/$name.log" 2>&1 || {
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

# The chains: anvil ships as a binary inside an npm registry package; solcjs (pure JS/wasm)
# compiles the devnet's contracts. Both from the npm registry, Node.js from Debian if missing.
chain_tools() {
    local dir="$cache/chain" anvil_version=1.7.1 solc_version=0.8.20
    [ -f "$dir/.complete-$anvil_version-$solc_version" ] && return 0
    if ! command -v npm >/dev/null; then
        echo "install-devnet: installing nodejs and npm from Debian"
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    echo "install-devnet: anvil $anvil_version and solc $solc_version from the npm registry"
    rm -rf "$dir" && mkdir -p "$dir/pack" "$dir/solc"
    if ! { (cd "$dir/pack" && npm pack --silent "@foundry-rs/anvil-linux-amd64@$anvil_version" >/dev/null &&
            tar xzf ./*.tgz package/bin/anvil && mv package/bin/anvil "$dir/anvil") >"$dir/install.log" 2>&1 &&
           (cd "$dir/solc" && npm init -y >/dev/null &&
            npm install --silent --no-audit --no-fund "solc@$solc_version") >>"$dir/install.log" 2>&1; }; then
        echo "install-devnet: npm failed; see $dir/install.log" >&2
        return 1
    fi
    rm -rf "$dir/pack"
    "$dir/anvil" --version >>"$dir/install.log"
    touch "$dir/.complete-$anvil_version-$solc_version"
}
# The devnet's own contracts (devnet/contracts/*.sol), compiled by solcjs into the cache. An artifact is
# named by its source's hash, so this is instant when nothing changed and recompiles after an edit.
compile_contracts() {
    local top
    top=$(cd "$(dirname "$0")/.." && pwd)
    GOLEM_DEVNET_CACHE="$cache" "$python" "$top/devnet/solidity.py" >"$cache/chain/contracts.log" 2>&1 || {
        echo "install-devnet: compiling the contracts failed; see $cache/chain/contracts.log" >&2
        return 1
    }
}
{ chain_tools && compile_contracts; } &
pids+=($!)

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
