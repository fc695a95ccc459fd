#!/usr/bin/env bash
# Boot time, side by side: the image with sited and the same image built without it (WITH_SITED=0).
# Boots each ROUNDS times with image/test.sh, alternating (TCG boot times follow the host's load),
# and prints the medians. The ratios compare multi-user.target, which with sited waits for sited's
# READY, on the guest's clock and in qemu's CPU time (which the host's load hardly changes).
# The goal is a ratio of at most 1.1.
# Both images must be built: image/build.sh, then WITH_SITED=0 image/build.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=${ROUNDS:-3}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results
for round in $(seq "$ROUNDS"); do
  for with in 1 0; do
    printf '==> round %s/%s, WITH_SITED=%s: ' "$round" "$ROUNDS" "$with"
    WITH_SITED=$with "$here/test.sh" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
    sed -n 's/^==> Startup finished in //p' "$tmp/log"
    sed -n "s/^RESULT /with=$with /p" "$tmp/log" >>"$results"
  done
done

# Prints the median of field $2 over the results of WITH_SITED=$1.
median() {
  sed -n "s/^with=$1 .*$2=\([0-9.][0-9.]*\).*/\1/p" "$results" | sort -n |
    awk '{ v[NR] = $1 } END { if (!NR) printf "-"; else printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '\nseconds to      %20s %20s %20s %14s\n' 'multi-user (guest)' 'multi-user (wall)' 'multi-user (CPU)' 'sited READY'
for with in 1 0; do
  printf '%-15s %20s %20s %20s %14s\n' "$([ $with = 1 ] && echo 'with sited' || echo 'without sited')" \
    "$(median $with guest_multi_user)" "$(median $with wall_multi_user)" "$(median $with cpu_multi_user)" \
    "$(median $with guest_ready)"
done
for clock in guest cpu; do
  awk -v a="$(median 1 ${clock}_multi_user)" -v b="$(median 0 ${clock}_multi_user)" -v c=$clock \
    'BEGIN { printf "ratio with/without, multi-user (%s): %.2f (goal <= 1.10)\n", c, a / b }'
done
