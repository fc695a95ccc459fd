#!/usr/bin/env bash
# `make fuzz`: each fuzz target of fuzz/ under AFL++ (cargo afl, stable Rust) for FUZZ_SECS
# seconds (default 600), starting from its corpus; prints executions, execs/s and findings.
# Crashes and hangs land in target/fuzz/<target>/default/{crashes,hangs}: add a fixed input to
# fuzz/corpus/<target>/ so that the CI smoke (cargo test -p sited-fuzz) keeps it fixed.
# Usage: scripts/fuzz.sh [target...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECS:-600}
if ! command -v cargo-afl >/dev/null; then
  echo "fuzz: installing cargo-afl (AFL++ for stable Rust)"
  cargo install --locked cargo-afl
  cargo afl config --build || true
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(site_file rtmp_chunks amf0 rtsp_request flv_tag http_range parameter_sets sps)
cargo afl build --release -p sited-fuzz --features afl --bins
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
printf '%-16s %8s %12s %10s %8s %6s\n' target seconds executions execs/s crashes hangs
for t in "${targets[@]}"; do
  out=target/fuzz/$t
  rm -rf "$out"
  mkdir -p "$out"
  cargo afl fuzz -V "$secs" -i "fuzz/corpus/$t" -o "$out" "target/release/$t" >"$out.log" 2>&1 || true
  stats=$out/default/fuzzer_stats
  get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  if [ -f "$stats" ]; then
    printf '%-16s %8s %12s %10s %8s %6s\n' "$t" "$(get run_time)" "$(get execs_done)" \
      "$(get execs_per_sec)" "$(get saved_crashes)" "$(get saved_hangs)"
  else
    echo "$t: AFL++ did not start; see $out.log"
  fi
done
