#!/bin/sh
# Build the lab base image: a minimal Debian root with systemd as init, imported into podman.
# Usage: build-image.sh SUITE MIRROR IMAGE_TAG PACKAGE_CACHE_DIR PACKAGES...
set -eu
suite=$1 mirror=$2 tag=$3 cache=$4
shift 4
packages=$(echo "$@" | tr ' ' ',')

mkdir -p "$cache"
root=$(mktemp -d "${TMPDIR:-/var/tmp}/stackwright-image.XXXXXX")
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase --cache-dir="$cache" --include="$packages" "$suite" "$root" "$mirror" >&2

# This kernel may lack loadable modules; the unit would fail and leave systemd degraded.
ln -sf /dev/null "$root/etc/systemd/system/systemd-modules-load.service"
# No NVMe fabrics in a container: the boot unit of nvme-cli (a dependency of ceph-base) would fail the same way.
ln -sf /dev/null "$root/etc/systemd/system/nvmf-autoconnect.service"
# Every host gets its own machine-id and SSH host keys on first boot, never the image's.
: > "$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
cat > "$root/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys unique to this host
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/ssh-hostkeys.service "$root/etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# Keep downloaded packages so the per-host archive cache of the lab fills up.
echo 'APT::Keep-Downloaded-Packages "true";' > "$root/etc/apt/apt.conf.d/10keep-downloads"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb

tar -C "$root" -c . | podman import --change CMD=/sbin/init --change LABEL=stackwright.image=base - "$tag"
