#!/usr/bin/env bash
# Installs the Debian packages the local network and the tests need.
# Idempotent: does nothing when every package is already there.
set -euo pipefail

packages=(openssh-server openssh-client bubblewrap debootstrap iproute2 procps shellcheck chromium chromium-driver)
missing=()
# postgresql: the local network's shared-state server (devnet/postgres.py runs its own cluster;
# Debian's default cluster, if the package made one, is never used).
packages+=(postgresql)
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-system: need root to apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "install-system: installing ${missing[*]}"
    # Third-party lists on some images are unreachable; Debian's own are enough.
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# sshd refuses to start without its privilege separation directory.
mkdir -p /run/sshd
chmod 0755 /run/sshd
