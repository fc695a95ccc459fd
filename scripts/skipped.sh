#!/usr/bin/env bash
# Reports the tests that skipped in the last `make test` (lines of target/skipped.txt, written
# by sited::base::skip) as a closing count, and fails when SITED_NO_SKIP=1 and any skipped.
# Usage: scripts/skipped.sh FILE
set -euo pipefail
file=${1:-target/skipped.txt}
n=0
[ -f "$file" ] && n=$(grep -c . "$file" || true)
if [ "$n" -gt 0 ]; then
  echo "skipped: $n tests could not run here:"
  sort "$file" | sed 's/^/  /'
  if [ "${SITED_NO_SKIP:-}" = 1 ]; then
    echo "SITED_NO_SKIP=1: a skipped test is a failure" >&2
    exit 1
  fi
else
  echo "skipped: 0 tests"
fi
