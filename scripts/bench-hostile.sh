#!/usr/bin/env bash
# Hostile peers without a login (issue 16 §6): memory per connection, connections held, and
# /api/v1/health latency during each flood (scripts/hostile.py). With SITED_BEFORE=<binary>
# (e.g. a build of an older commit), the same floods run against it first, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${HOSTILE_N:-300}
echo "== hostile peers: $n connections a flood, from 127.0.x.y; health from 127.0.0.1"
if [ -n "${SITED_BEFORE:-}" ]; then
  python3 scripts/hostile.py "$SITED_BEFORE" before "$n"
fi
python3 scripts/hostile.py target/release/sited after "$n"
