#!/bin/sh
# mmdebstrap customize hook: runs once every package is installed and rootfs/ is laid over.
# $1 is the root tree. From image/build.sh: WITH_SITED, SITED_BIN, ESP_STAGE (the ESP's staging
# directory on the build host).
set -eu
root=${1:?usage: postinst.sh ROOT}
[ "$root" != / ] && [ -d "$ESP_STAGE/sited" ] || { echo "postinst.sh: run it from image/build.sh" >&2; exit 1; }

# The daemon; an image built without it (WITH_SITED=0) carries neither its unit, which would
# fail, nor the modules preloaded for its firewall.
if [ "$WITH_SITED" = 1 ]; then
  # Without its line tables (74 MB to 13 MB); the symbols stay, so a panic's backtrace still
  # names its functions.
  install -m 0755 "$SITED_BIN" "$root/usr/bin/sited"
  strip --strip-debug "$root/usr/bin/sited"
  chroot "$root" ldd /usr/bin/sited | grep 'not found' && { echo "sited: missing libraries" >&2; exit 1; }
else
  rm "$root/usr/lib/systemd/system/sited.service" "$root/usr/lib/modules-load.d/sited.conf"
fi

# Enable and disable units only through the preset files (usr/lib/systemd/system-preset/).
chroot "$root" systemctl preset-all
# An appliance: no graphical target.
chroot "$root" systemctl set-default multi-user.target

# Kernel modules the appliance never loads (image/modules-exclude); then a fresh modules.dep.
for kernel in "$root"/usr/lib/modules/*; do
  sed 's/#.*//' "$(dirname "$0")/modules-exclude" | while read -r tree; do
    [ -z "$tree" ] || rm -rf "${kernel:?}/kernel/$tree"
  done
  chroot "$root" depmod "$(basename "$kernel")"
done

# Host keys are made on first boot (sited-ssh-keygen.service); no two machines may share them.
rm -f "$root"/etc/ssh/ssh_host_*

# The kernel and initramfs boot from the ESP, so the root keeps no copy. systemd-boot goes to the
# ESP's fallback path, which firmware boots with no boot entry in NVRAM.
mv "$root"/boot/vmlinuz-* "$ESP_STAGE/sited/vmlinuz"
mv "$root"/boot/initrd.img-* "$ESP_STAGE/sited/initrd.img"
rm -rf "$root"/boot/* "$root"/vmlinuz* "$root"/initrd.img*
mkdir "$root/boot/efi"
install -D -m 0644 "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$ESP_STAGE/EFI/BOOT/BOOTX64.EFI"

# Caches and logs of the build; the machine-id stays empty so that the first boot makes one.
rm -f "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -delete
: >"$root/etc/machine-id"
