#!/usr/bin/env bash
# Build the sited disk image: out/sited-<version>-<dist>.raw, .qcow2 and .raw.zst.
#
# Nothing here needs a loop device or a mount: mmdebstrap builds the root tree in a directory,
# mkfs.ext4 -d and mkfs.vfat -C with mtools build the two file systems as plain files, sfdisk
# writes the GPT onto a plain file and dd places the file systems into it.
# Parameters (environment) are listed in image/README.md. Needs root (for file ownership).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
cd "$top"

die() { printf 'image/build.sh: %s\n' "$*" >&2; exit 1; }

# --- Parameters -----------------------------------------------------------------------------
. "$here/params.sh"
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || true)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1735689600} # 2025-01-01, before the first commit
SITED_BIN=${SITED_BIN:-target/release/sited}
ZSTD_LEVEL=${ZSTD_LEVEL:-19}
export SOURCE_DATE_EPOCH
work=$OUT/.work-$name

# --- Steps ----------------------------------------------------------------------------------
steps=8 step=0 t0=$SECONDS ts=$SECONDS
step() {
  [ $step -eq 0 ] || printf '    done in %ds\n' $((SECONDS - ts))
  step=$((step + 1)) ts=$SECONDS
  printf '==> [%d/%d] %s\n' "$step" "$steps" "$*"
}
cleanup() { [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# UUIDs are derived from the dist, suite, version and variant, so a rebuild gives the same disk.
# The hash is shaped as an RFC 9562 version-8 (custom) UUID.
uuid_for() {
  local h
  h=$(printf 'sited/%s/%s/%s/%s' "$DIST" "$SUITE" "$name" "$1" | sha256sum)
  printf '%s-%s-8%s-%x%s-%s' "${h:0:8}" "${h:8:4}" "${h:13:3}" $(((0x${h:16:1} & 3) | 8)) \
    "${h:17:3}" "${h:20:12}"
}

# Reads one key of a repart.d partition declaration.
repart_get() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
bytes() { numfmt --from=iec "$1"; }
type_guid() {
  case $1 in
    esp) echo C12A7328-F81F-11D2-BA4B-00A0C93EC93B ;;
    root-x86-64) echo 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 ;;
    *) die "repart.d: Type=$1 is not one this build knows" ;;
  esac
}

step "Check the inputs ($name, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
[ "$(id -u)" = 0 ] || die "run as root: the root tree must hold real file owners"
"$here/deps.sh"
[ -r "$KEYRING" ] || die "KEYRING=$KEYRING not found: give the archive keyring of $DIST (see image/README.md)"
if [ "$WITH_SITED" = 1 ]; then
  [ -x "$SITED_BIN" ] || die "SITED_BIN=$SITED_BIN: no such executable. Build the daemon first (cargo build --release) or pass SITED_BIN=, or build without it: WITH_SITED=0"
  SITED_BIN=$(realpath "$SITED_BIN")
fi
[ -f "$here/packages.$DIST" ] || die "no package list image/packages.$DIST"
rm -rf "$work" && mkdir -p "$work" "$OUT" && cp -r "$here/esp" "$work/esp"

esp_conf=$here/repart.d/00-esp.conf root_conf=$here/repart.d/10-root.conf
ESP_PARTUUID=$(uuid_for esp-part) ROOT_PARTUUID=$(uuid_for root-part)
ESP_SIZE=$(bytes "$(repart_get "$esp_conf" SizeMinBytes)")
ROOT_SIZE=$(bytes "$(repart_get "$root_conf" SizeMinBytes)")
cmdline="root=PARTUUID=$ROOT_PARTUUID ro console=tty0 console=ttyS0,115200n8 quiet systemd.show_status=yes panic=10"

step "Build the root tree with mmdebstrap ($DIST $SUITE from $MIRROR)"
# The ESP is staged in $work/esp: image/esp/, this boot entry, and what postinst.sh adds.
mkdir -p "$work/esp/loader/entries"
cat >"$work/esp/loader/entries/sited.conf" <<EOF
title   sited $VERSION ($DIST $SUITE)
linux   /sited/vmlinuz
initrd  /sited/initrd.img
options $cmdline
EOF
packages=$(sed 's/#.*//' "$here/packages.$DIST" | xargs | tr ' ' ,)
sources=("deb $MIRROR $SUITE $COMPONENTS" "deb $MIRROR $SUITE-updates $COMPONENTS")
[ -z "$SECURITY_MIRROR" ] || sources+=("deb $SECURITY_MIRROR $SUITE-security $COMPONENTS")
cat >"$work/fstab" <<EOF
# The root and the ESP by partition UUID. The ESP is where an installer puts sited/site.toml and
# sited/authorized_keys; nofail, so a damaged ESP never stops the boot.
PARTUUID=$ROOT_PARTUUID /         ext4 defaults,noatime,x-systemd.growfs 0 1
PARTUUID=$ESP_PARTUUID /boot/efi vfat umask=0077,nofail 0 0
EOF
export WITH_SITED SITED_BIN ESP_STAGE=$work/esp
nice -n 10 mmdebstrap --mode=root --variant=essential --skip=chroot/mount \
  --include="$packages" --keyring="$KEYRING" \
  --aptopt='Acquire::Languages "none"' --dpkgopt="$here/dpkg-excludes" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --setup-hook="sync-in $here/skeleton /" \
  --setup-hook="upload $work/fstab /etc/fstab" \
  --customize-hook="sync-in $top/rootfs /" \
  --customize-hook="copy-in $here/repart.d /usr/lib" \
  --customize-hook="$here/postinst.sh" \
  "$SUITE" "$work/root" "${sources[@]}"
# Every file that the build wrote gets the same time, so the file systems do not depend on the day.
find "$work/root" "$work/esp" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"

step "Build the ESP ($(numfmt --to=iec "$ESP_SIZE"), FAT32, systemd-boot)"
esp=$work/esp.img
rm -f "$esp"
mkfs.vfat --invariant -C -F 32 -n "$(repart_get "$esp_conf" Label)" -i "$(uuid_for esp-fs | cut -c1-8)" \
  "$esp" $((ESP_SIZE / 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$esp" "$work/esp"/* ::/

step "Build the root file system ($(numfmt --to=iec "$ROOT_SIZE"), ext4)"
printf '    root tree: %s in %s files\n' "$(du -sh --apparent-size "$work/root" | cut -f1)" "$(find "$work/root" | wc -l)"
root=$work/root.img
rm -f "$root" && truncate -s "$ROOT_SIZE" "$root"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -d "$work/root" -L "$(repart_get "$root_conf" Label)" \
  -U "$(uuid_for root-fs)" -E "hash_seed=$(uuid_for root-hash-seed)" -b 4096 -I 256 \
  "$root" || die "the root tree does not fit in SizeMinBytes of $root_conf"
# mkfs.ext4 -d copies each file's ctime and atime from the build host, where they are the time of
# the build and of the last read: set both to SOURCE_DATE_EPOCH, like the mtimes above.
(cd "$work/root" && find . | sed 's|^\.||; s|^$|/|' |
  awk -v t="@$SOURCE_DATE_EPOCH" '{ printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\n", $0, t, $0, t }') >"$work/times"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH debugfs -w -f "$work/times" "$root" >/dev/null 2>&1

step "Lay out the GPT disk"
raw=$OUT/$name.raw
mib=$((1024 * 1024))
esp_start=$mib root_start=$((mib + ESP_SIZE))
disk_size=$((root_start + ROOT_SIZE + mib)) # the last MiB holds the backup GPT
rm -f "$raw" && truncate -s "$disk_size" "$raw"
sfdisk --quiet --no-reread --no-tell-kernel "$raw" <<EOF
label: gpt
label-id: $(uuid_for disk)
unit: sectors
start=$((esp_start / 512)), size=$((ESP_SIZE / 512)), type=$(type_guid "$(repart_get "$esp_conf" Type)"), uuid=$ESP_PARTUUID, name="$(repart_get "$esp_conf" Label)"
start=$((root_start / 512)), size=$((ROOT_SIZE / 512)), type=$(type_guid "$(repart_get "$root_conf" Type)"), uuid=$ROOT_PARTUUID, name="$(repart_get "$root_conf" Label)"
EOF
dd if="$esp" of="$raw" bs=1M seek=$((esp_start / mib)) conv=notrunc,sparse status=none
dd if="$root" of="$raw" bs=1M seek=$((root_start / mib)) conv=notrunc,sparse status=none

step "Convert to qcow2"
nice -n 10 qemu-img convert -f raw -O qcow2 -c "$raw" "$OUT/$name.qcow2"

step "Compress with zstd -$ZSTD_LEVEL"
nice -n 10 zstd -q -f -T0 "-$ZSTD_LEVEL" "$raw" -o "$raw.zst"

step "Report"
size_of() { numfmt --to=iec-i --suffix=B --format=%.1f "$1"; }
printf '    %-40s raw %s, allocated %s\n' "$raw" "$(size_of "$(stat -c %s "$raw")")" \
  "$(size_of $(($(stat -c %b "$raw") * $(stat -c %B "$raw"))))"
printf '    %-40s %s\n' "$raw.zst" "$(size_of "$(stat -c %s "$raw.zst")")"
printf '    %-40s %s\n' "$OUT/$name.qcow2" "$(size_of "$(stat -c %s "$OUT/$name.qcow2")")"
printf '    built in %ds\n' $((SECONDS - t0))
