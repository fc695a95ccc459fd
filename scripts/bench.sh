#!/usr/bin/env bash
# `make bench`: every benchmark, each reporting side-by-side figures from one run.
# The machines are shared and noisy: read ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"
sited=target/release/sited

echo "== validate: 1,000 cameras, 20 nodes, 200 networks"
scripts/gen-site.py 1000 20 200 > "$out/site-1000.toml"
cargo bench --quiet -p sited --bench validate -- "$out/site-1000.toml" 50
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs 30 -N --style basic \
    "$sited validate $out/site-1000.toml" 2>/dev/null | grep -E "Time|Range" || true
fi

for extra in scripts/bench-*.sh; do
  [ -x "$extra" ] || continue
  echo
  "$extra" "$out"
done
