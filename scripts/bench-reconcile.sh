#!/usr/bin/env bash
# Reconcile benchmarks: the latency from a site-file write to the new ruleset being live, on the
# 1,000-camera site (p50 and p99 over 100 edits), and the idle RSS of the daemon.
set -euo pipefail
out=${1:-target/bench}
sited=$PWD/target/release/sited
mkdir -p "$out"

echo "== daemon: idle memory (RSS after 3 s idle, --firewall none)"
for n in 2 1000; do
  dir=$(mktemp -d)
  if [ "$n" = 2 ]; then cp site.toml.example "$dir/site.toml"; node=app-1; else scripts/gen-site.py 1000 20 200 > "$dir/site.toml"; node=node-1; fi
  "$sited" run --config "$dir/site.toml" --node "$node" --state-dir "$dir/state" --boot-dir "$dir/boot" \
    --firewall none --force-port-offset --port-offset 30000 >"$dir/log" 2>&1 &
  pid=$!
  sleep 3
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  printf '  %-5s cameras: RSS %s KiB\n' "$n" "$rss"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
done

echo "== daemon: reconcile latency, file written -> new ruleset live (1,000 cameras, 100 edits)"
if [ "$(id -u)" -ne 0 ] || ! command -v nft >/dev/null; then
  echo "  (needs root and nft)"; exit 0
fi
ns=sited-bench-rec-$$
dir=$(mktemp -d)
ip netns add "$ns"
cleanup() { kill "$pid" 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
scripts/gen-site.py 1000 20 200 > "$dir/site.toml"
ip netns exec "$ns" "$sited" run --config "$dir/site.toml" --node node-1 --state-dir "$dir/state" \
  --boot-dir "$dir/boot" >"$dir/log" 2>&1 &
pid=$!
ip netns exec "$ns" python3 - "$dir/site.toml" <<'PY'
import subprocess, sys, time
path = sys.argv[1]
base = open(path).read()
def live(marker):
    out = subprocess.run(["nft", "list", "set", "inet", "sited", "admins_v4"], capture_output=True, text=True).stdout
    return marker in out
deadline = time.time() + 30
while not live("198.18.1.0/24") and time.time() < deadline:
    time.sleep(0.05)
samples = []
for i in range(100):
    marker = f"203.0.{113 if i % 2 else 112}.0/24"
    text = base.replace('admins = [', f'admins = ["{marker}", ', 1)
    start = time.monotonic()
    with open(path + ".new", "w") as f:
        f.write(text)
    import os
    os.rename(path + ".new", path)
    while not live(marker):
        if time.monotonic() - start > 10:
            sys.exit(f"edit {i}: {marker} never went live")
        time.sleep(0.002)
    samples.append((time.monotonic() - start) * 1000)
    time.sleep(0.15)
samples.sort()
p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(f"  p50 {p(0.5):.0f} ms  p99 {p(0.99):.0f} ms  min {samples[0]:.0f} ms  max {samples[-1]:.0f} ms (n={len(samples)}; includes the 100 ms debounce)")
PY
