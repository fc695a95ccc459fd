#!/usr/bin/env bash
# Media benchmarks: camera ingest scale. M fake cameras (2 Mbps H.264 each) are pulled over RTSP
# with no viewer; sited is pinned to core 0 and the cameras to core 1; the CPU sited uses per
# camera is the slope of its CPU time over the camera count.
set -euo pipefail
out=${1:-target/bench}
sited=$PWD/target/release/sited
mkdir -p "$out"
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "== media: skipped (GStreamer's RTSP server is missing; scripts/deps-media.sh installs it)"; exit 0
fi
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

echo "== media: camera ingest, 2 Mbps H.264 640x360 25 fps each, no viewers (sited on core 0)"
for m in 1 4 8; do
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  specs=()
  for i in $(seq "$m"); do specs+=(--camera "c$i:bitrate=2000"); done
  taskset -c 1 /usr/bin/python3 scripts/fake-camera.py --port "$port" "${specs[@]}" >"$dir/cams.log" 2>&1 &
  cams=$!
  sleep 2
  { printf '[site]\nname = "bench"\nlayout = "titop"\n[[nodes]]\nname = "n"\naddress = "192.0.2.1"\nroles = ["application", "media"]\n[ports]\nweb = 0\n'
    for i in $(seq "$m"); do printf '[[cameras]]\nname = "c%s"\nurl = "rtsp://127.0.0.1:%s/c%s"\n' "$i" "$port" "$i"; done
  } | sed 's/^web = 0$/web = 39088\nconfig_api = 39089\nhttp_live = 39080/' > "$dir/site.toml"
  taskset -c 0 "$sited" run --config "$dir/site.toml" --node n --state-dir "$dir/state" --boot-dir "$dir/boot" \
    --firewall none --force-port-offset --port-offset 30000 >"$dir/log" 2>&1 &
  pid=$!
  sleep 6
  a=$(cpu $pid); sleep 20; b=$(cpu $pid)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  streaming=$(grep -c "camera streaming" "$dir/log" || true)
  awk -v m="$m" -v a="$a" -v b="$b" -v rss="$rss" -v s="$streaming" \
    'BEGIN { printf "  M=%-2d streaming=%-2d sited CPU %5.2f%% of a core (%.2f%% per camera), RSS %d KiB\n", m, s, (b-a)/20*100, (b-a)/20*100/m, rss }'
  kill $pid $cams 2>/dev/null || true; wait $pid $cams 2>/dev/null || true
  rm -rf "$dir"
done
