#!/usr/bin/env bash
# Firewall benchmarks: render + nft -c for the 1,000-camera site, apply latency, and the rule
# count at 10, 1,000 and 10,000 cameras and networks (it must stay constant).
set -euo pipefail
out=${1:-target/bench}
sited=target/release/sited
mkdir -p "$out"

echo "== firewall: rule count by site size (cameras = networks = N, 20 nodes)"
for n in 10 1000 10000; do
  scripts/gen-site.py "$n" 20 "$n" > "$out/site-fw-$n.toml"
  rules=$("$sited" render nftables "$out/site-fw-$n.toml" --node node-1 --format json \
    | python3 -c 'import json,sys; print(sum(1 for o in json.load(sys.stdin)["nftables"] if "rule" in o["add"]))')
  elements=$("$sited" render nftables "$out/site-fw-$n.toml" --node node-1 | grep -c "elements" || true)
  printf '  N=%-6s rules=%-4s sets with elements=%s\n' "$n" "$rules" "$elements"
done

echo "== firewall: render vs render + nft -c, 1,000-camera site (node-1)"
"$sited" render nftables "$out/site-fw-1000.toml" --node node-1 > "$out/site-1000.nft"
if command -v hyperfine >/dev/null && command -v nft >/dev/null && [ "$(id -u)" -eq 0 ]; then
  hyperfine --warmup 3 --runs 30 -N --style basic \
    "$sited render nftables $out/site-fw-1000.toml --node node-1" \
    "nft -c -f $out/site-1000.nft" 2>/dev/null | grep -E "^(Benchmark|  Time)" || true
else
  echo "  (needs root, nft and hyperfine)"
fi

echo "== firewall: apply latency in a network namespace (check, replace, read back, verify), 30 applies"
if [ "$(id -u)" -eq 0 ] && command -v nft >/dev/null; then
  ns=sited-bench-$$
  ip netns add "$ns"
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  scripts/gen-site.py 1000 20 200 > "$out/site-apply.toml"
  for i in $(seq 30); do
    ip netns exec "$ns" "$sited" apply "$out/site-apply.toml" --node node-1 --state-dir "$out/state" 2>&1 \
      | sed -n 's/.* in \([0-9]*\) ms$/\1/p'
  done | sort -n | awk '{a[NR]=$1} END {printf "  p50 %d ms  p90 %d ms  max %d ms (n=%d)\n", a[int(NR*0.5)+1], a[int(NR*0.9)], a[NR], NR}'
else
  echo "  (needs root and nft)"
fi
