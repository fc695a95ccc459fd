#!/usr/bin/env bash
# Install what `make image` and `make image-test` need on a Debian 12 (bookworm) host.
# Idempotent: it does nothing when every tool is already there.
#
# Each need is checked by what is used (a command, a file), not by a package name: a host may
# have qemu-img from another package version (bookworm-backports), and installing the boot
# test's qemu-system-x86 from bookworm can remove it. So the check runs again after an install,
# and what went missing is installed at the version that fits.
set -euo pipefail

# what is used, the package that brings it
needs=(
  "mmdebstrap mmdebstrap"                                                    # the root tree without loop devices or mounts
  "/usr/share/keyrings/debian-archive-keyring.gpg debian-archive-keyring"    # verifies the Debian archive (DIST=debian)
  "mkfs.vfat dosfstools" "mcopy mtools"                                      # the FAT ESP without mounting
  "mkfs.ext4 e2fsprogs"                                                      # the ext4 root: mkfs.ext4 -d
  "sfdisk fdisk"                                                             # the GPT on a plain file
  "qemu-img qemu-utils"                                                      # the .qcow2 and the test overlay
  "zstd zstd"                                                                # the compressed-size report
  "strip binutils"                                                           # the daemon goes in without its line tables
  "qemu-system-x86_64 qemu-system-x86" "/usr/share/OVMF/OVMF_CODE_4M.fd ovmf" # the boot test: TCG with UEFI
  "ssh openssh-client" "curl curl"                                           # the boot test's probes through hostfwd
)

missing() {
  local need what pkg
  for need in "${needs[@]}"; do
    read -r what pkg <<<"$need"
    if [[ $what == /* ]]; then
      [ -e "$what" ] || echo "$pkg"
    else
      command -v "$what" >/dev/null || echo "$pkg"
    fi
  done
}

export DEBIAN_FRONTEND=noninteractive
updated=0
for pass in 1 2; do
  mapfile -t pkgs < <(missing)
  [ ${#pkgs[@]} -eq 0 ] && exit 0
  echo "image/deps.sh: installing ${pkgs[*]} (pass $pass)"
  if [ $updated = 0 ]; then
    apt-get update -qq || true # a third-party list that fails must not stop the Debian ones
    updated=1
  fi
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
done
mapfile -t pkgs < <(missing)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "image/deps.sh: still missing after installing: ${pkgs[*]}" >&2
  exit 1
fi
