#!/usr/bin/env bash
# Boot the built image under qemu (TCG, no KVM; OVMF) and check it from outside, through the
# serial log and through SSH and HTTP forwarded to 127.0.0.1. Exits non-zero on the first failed
# check, showing the last serial lines; qemu is always killed.
#
# Always checked: systemd reaches multi-user.target (serial), sshd runs with host keys made on this
# boot, root logs in with the key the test put in sited/authorized_keys on the ESP, passwords are
# off, nftables is installed, the ESP is mounted at /boot/efi, no unit failed.
# With WITH_SITED=1 (the default) also: `sited: READY` on the console, the live table inet sited,
# GET /api/v1/health returns the site's name, and an edit of site.toml made through SSH reaches
# the firewall. Prints boot-to-multi-user and boot-to-ready times; the last line is RESULT ...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$(dirname "$here")"
. "$here/params.sh"

IMAGE=${IMAGE:-$OUT/$name.raw}
SSH_PORT=${SSH_PORT:-10022}
WEB_PORT=${WEB_PORT:-10080}
WEB_GUEST_PORT=${WEB_GUEST_PORT:-80}
TEST_SITE=${TEST_SITE:-$here/test-site.toml}
SITE_NAME=${SITE_NAME:-$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$TEST_SITE" | head -n 1)}
SITE_EDIT=${SITE_EDIT:-'s|^clients = \["10.0.2.0/24"\]|clients = ["10.0.2.0/24", "192.0.2.0/24"]|'}
EDIT_EXPECT=${EDIT_EXPECT:-192.0.2.0/24}
READY_MARK=${READY_MARK:-'sited(\[[0-9]+\])?: .*READY'}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
# Test-only kernel arguments: the journal goes to the serial console too, so the serial log shows
# "Reached target multi-user.target" (systemd stops its own status lines once the serial getty
# runs), sited's READY, and, on a failure, what happened.
TEST_CMDLINE=${TEST_CMDLINE:-systemd.journald.forward_to_console=1}

tmp=$(mktemp -d)
serial=${IMAGE%.raw}.serial.log # kept after the test
qemu_pid=
finish() {
  local rc=$?
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  if [ $rc -ne 0 ] && [ -s "$serial" ]; then
    printf '\n--- last 40 lines of %s ---\n' "$serial" >&2
    tail -n 40 "$serial" | tr -d '\r' | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' >&2
  fi
  [ -z "$qemu_pid" ] || wait "$qemu_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap finish EXIT
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf '  ok  %s\n' "$*"; }

[ -f "$IMAGE" ] || fail "no image $IMAGE: run image/build.sh (with the same DIST, VERSION, WITH_SITED)"
"$here/deps.sh"

# --- Prepare a copy of the image: test key and site file on the ESP, test kernel arguments ---
rm -f "$serial"
cp --sparse=always "$IMAGE" "$tmp/disk.raw"
cp "$OVMF_VARS" "$tmp/vars.fd"
esp_start=$(sfdisk --dump "$tmp/disk.raw" | sed -n 's/.*1 : start= *\([0-9]*\),.*/\1/p')
esp="$tmp/disk.raw@@$((esp_start * 512))"
export MTOOLS_SKIP_CHECK=1
ssh-keygen -q -t ed25519 -N '' -C sited-image-test -f "$tmp/key"
mcopy -o -i "$esp" "$tmp/key.pub" ::/sited/authorized_keys
if [ "$WITH_SITED" = 1 ]; then mcopy -o -i "$esp" "$TEST_SITE" ::/sited/site.toml; fi
mtype -i "$esp" ::/loader/entries/sited.conf | sed "s|^options .*|& $TEST_CMDLINE|" >"$tmp/entry.conf"
mcopy -o -i "$esp" "$tmp/entry.conf" ::/loader/entries/sited.conf

guest() {
  timeout 60 ssh -q -i "$tmp/key" -p "$SSH_PORT" -o BatchMode=yes -o ConnectTimeout=5 \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 "$@"
}
# Waits until the serial log matches $1 (an extended regex) and prints the seconds since boot.
wait_serial() {
  local deadline=$((SECONDS + BOOT_TIMEOUT))
  until grep -aqE "$1" "$serial" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited while waiting for: $1: $(cat "$tmp/qemu.log")"
    [ $SECONDS -lt $deadline ] || fail "no '$1' on the serial console after ${BOOT_TIMEOUT}s"
    sleep 0.2
  done
  awk -v now="$(date +%s.%N)" -v t0="$t0" 'BEGIN { printf "%.1f", now - t0 }'
}
# Prints a unit's activation time in seconds after the kernel started (the guest's own clock).
active_after() { guest systemctl show -P ActiveEnterTimestampMonotonic "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

# --- Boot ---
printf '==> Booting %s (TCG, OVMF), serial log and SSH on 127.0.0.1:%s\n' "$IMAGE" "$SSH_PORT"
t0=$(date +%s.%N)
nice -n 10 qemu-system-x86_64 -nodefaults -machine q35,accel=tcg -m 1024 -smp 2 \
  -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" -drive if=pflash,format=raw,file="$tmp/vars.fd" \
  -drive file="$tmp/disk.raw",format=raw,if=virtio -device virtio-rng-pci \
  -netdev user,id=net0,hostfwd=tcp:127.0.0.1:"$SSH_PORT"-:22,hostfwd=tcp:127.0.0.1:"$WEB_PORT"-:"$WEB_GUEST_PORT" \
  -device virtio-net-pci,netdev=net0 -display none -serial file:"$serial" -monitor none \
  >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

wall_mu=$(wait_serial 'Reached target multi-user.target')
# The CPU time qemu spent until then: unlike the clocks, it hardly depends on the host's load.
cpu_mu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$qemu_pid/stat")
ok "serial: reached multi-user.target after ${wall_mu}s (wall clock since qemu started; ${cpu_mu}s of qemu CPU)"

deadline=$((SECONDS + 120))
until guest true 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "no SSH login on 127.0.0.1:$SSH_PORT with the key from the ESP"
  sleep 1
done
ok "ssh: root logs in with the key from sited/authorized_keys on the ESP"

# --- The system ---
state=$(guest systemctl is-system-running --wait || true)
[ "$state" = running ] || fail "system is $state; failed units: $(guest systemctl --failed --plain --no-legend | xargs)"
ok "systemd: running, no failed unit"
[ "$(guest systemctl show -P ConditionResult sited-ssh-keygen.service)" = yes ] &&
  [ "$(guest systemctl show -P Result sited-ssh-keygen.service)" = success ] ||
  fail "sited-ssh-keygen.service did not make the host keys on this boot"
ok "ssh: host keys made on first boot ($(guest ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2))"
guest sshd -T | grep -qx 'passwordauthentication no' || fail "sshd accepts passwords"
ok "ssh: passwords off"
guest nft --version >/dev/null || fail "nft is not installed"
ok "nftables: $(guest nft --version)"
guest findmnt -n -o SOURCE,FSTYPE /boot/efi >/dev/null || fail "the ESP is not mounted at /boot/efi"
ok "ESP mounted at /boot/efi"

# --- sited ---
guest_ready=
if [ "$WITH_SITED" = 1 ]; then
  guest systemctl is-active -q sited.service || fail "sited.service is $(guest systemctl is-active sited.service)"
  guest_ready=$(active_after sited.service)
  # multi-user.target waits for sited (Type=notify), so READY is logged by now: on the serial
  # console, forwarded from the journal, and in the journal itself.
  grep -aqE "$READY_MARK" "$serial" || guest journalctl -b -o short -u sited.service | grep -qE "$READY_MARK" ||
    fail "sited is active but never logged '$READY_MARK'"
  ok "sited: READY after ${guest_ready}s (guest clock)"
  before=$(guest nft list table inet sited) || fail "no live table inet sited"
  ok "nft: table inet sited is live ($(grep -c . <<<"$before") lines)"
  health=$(curl -fsS --max-time 10 "http://127.0.0.1:$WEB_PORT/api/v1/health") || fail "GET /api/v1/health on :$WEB_PORT failed"
  grep -q "\"$SITE_NAME\"" <<<"$health" || fail "health does not name the site '$SITE_NAME': $health"
  ok "web: /api/v1/health names the site: $health"
  guest "sed -i $(printf %q "$SITE_EDIT") /etc/sited/site.toml"
  deadline=$((SECONDS + 60))
  until after=$(guest nft list table inet sited) && [ "$after" != "$before" ] && grep -q "$EDIT_EXPECT" <<<"$after"; do
    [ $SECONDS -lt $deadline ] || fail "site.toml edited through SSH, but the firewall has no $EDIT_EXPECT after 60s"
    sleep 1
  done
  ok "reconcile: the edit of site.toml reached the firewall ($EDIT_EXPECT)"
fi

# --- Times ---
guest_mu=$(active_after multi-user.target)
printf '==> %s\n' "$(guest systemd-analyze time | head -n 1)"
printf '==> boot to multi-user.target: %ss after the kernel started, %ss after qemu started, %ss of qemu CPU\n' \
  "$guest_mu" "$wall_mu" "$cpu_mu"
if [ "$WITH_SITED" = 1 ]; then
  printf '==> boot to sited READY: %ss after the kernel started\n' "$guest_ready"
fi
echo "RESULT image=$IMAGE guest_multi_user=$guest_mu wall_multi_user=$wall_mu cpu_multi_user=$cpu_mu guest_ready=${guest_ready:--}"
