#!/usr/bin/env bash
# Install what `make image` and `make image-test` need on a Debian 12 (bookworm) host.
# Idempotent: it does nothing when every tool is already there.
set -euo pipefail

pkgs=(
  mmdebstrap             # builds the root tree without loop devices or mounts
  debian-archive-keyring # verifies the Debian archive (DIST=debian)
  dosfstools mtools      # the FAT ESP: mkfs.vfat -C, then mcopy/mmd without mounting
  e2fsprogs              # the ext4 root: mkfs.ext4 -d
  fdisk                  # sfdisk on a plain file
  qemu-utils             # qemu-img: the .qcow2 and the test overlay
  zstd                   # the compressed-size report
  binutils               # strip: the daemon goes in without its debug line tables
  qemu-system-x86 ovmf   # the boot test: TCG with UEFI firmware
  openssh-client curl    # the boot test's probes through hostfwd
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "image/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true # a third-party list that fails must not stop the Debian ones
apt-get install -y -qq --no-install-recommends "${missing[@]}"
