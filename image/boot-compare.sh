#!/usr/bin/env bash
# Boot time, side by side: the image with sited and the same image built without it (WITH_SITED=0).
# Boots each ROUNDS times with image/test.sh, alternating (TCG boot times follow the host's load),
# and prints the medians. The ratio compares multi-user.target on the guest's clock; with sited,
# that target waits for sited's READY. The goal is a ratio of at most 1.1.
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
  sed -n "s/^with=$1 .*$2=\([0-9.]*\).*/\1/p" "$results" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
with_mu=$(median 1 guest_multi_user) without_mu=$(median 0 guest_multi_user)
printf '\n%-16s %22s %22s %18s\n' image 'multi-user (guest)' 'multi-user (wall)' 'sited READY'
printf '%-16s %21ss %21ss %17ss\n' 'with sited' "$with_mu" "$(median 1 wall_multi_user)" "$(median 1 guest_ready)"
printf '%-16s %21ss %21ss %18s\n' 'without sited' "$without_mu" "$(median 0 wall_multi_user)" -
awk -v a="$with_mu" -v b="$without_mu" 'BEGIN { printf "ratio (multi-user, guest clock): %.2f (goal <= 1.10)\n", a / b }'
