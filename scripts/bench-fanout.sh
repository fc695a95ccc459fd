#!/usr/bin/env bash
# Fan-out benchmark: one 4 Mbps camera fanned out to N HTTP-FLV viewers. sited is pinned to
# core 0, the camera and the async reader (daemon/benches/fanout.rs) to core 1. Reports, per N:
# sited's CPU (and the slope per reader), its RSS (and the growth per reader), time to first
# frame, frames received and lag.
# The side-by-side runs of nginx-rtmp and node-media-server need RTMP publishing and an RTMP
# reader; they are not here yet.
set -euo pipefail
out=${1:-target/bench}
sited=$PWD/target/release/sited
mkdir -p "$out"
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "== fan-out: skipped (GStreamer's RTSP server is missing)"; exit 0
fi
cargo build --quiet --release -p sited --bench fanout 2>/dev/null || cargo bench --no-run -q -p sited --bench fanout
reader=$(ls -t target/release/deps/fanout-* | grep -v '\.d$' | head -1)
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 1 /usr/bin/python3 scripts/fake-camera.py --port "$port" --camera cam:bitrate=4000 >"$dir/cams.log" 2>&1 &
cams=$!
hash=$(printf 'bench' | "$sited" hash-password)
cat > "$dir/site.toml" <<SITE
[site]
name = "fanout"
layout = "titop"
[[nodes]]
name = "n"
address = "192.0.2.1"
roles = ["application", "media"]
[[users]]
name = "bench"
role = "viewer"
password_hash = "$hash"
[[cameras]]
name = "cam"
url = "rtsp://127.0.0.1:$port/cam"
[ports]
web = 39188
config_api = 39189
http_live = 39180
SITE
taskset -c 0 "$sited" run --config "$dir/site.toml" --node n --state-dir "$dir/state" --boot-dir "$dir/boot" \
  --firewall none --force-port-offset --port-offset 30000 >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid $cams 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 8
echo "== fan-out: one 4 Mbps H.264 camera to N HTTP-FLV viewers, 15 s each (sited on core 0)"
base_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
for n in 1 100 500 1000; do
  a=$(cpu $pid)
  taskset -c 1 "$reader" "http://127.0.0.1:39180/live/cam.flv" "$n" 15 bench:bench > "$dir/reader.out" &
  rp=$!
  sleep 12
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  wait $rp
  b=$(cpu $pid)
  awk -v n="$n" -v a="$a" -v b="$b" -v rss="$rss" -v base="$base_rss" -v line="$(cat "$dir/reader.out")" \
    'BEGIN { printf "  N=%-5d sited CPU %6.2f%% of a core (%.3f%% per reader), RSS %d KiB (+%.1f KiB per reader) | %s\n", n, (b-a)/15*100, (b-a)/15*100/n, rss, (rss-base)/n, line }'
done
