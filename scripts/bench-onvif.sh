#!/usr/bin/env bash
# ONVIF and push benchmarks (issue 14).
# 1. Discovery time: `sited discover` on a namespace network of 50 fake ONVIF devices
#    (scripts/fake-onvif.py, one namespace, 50 addresses), with the default 2 s window and a 1 s
#    one. Target: under 5 s with the default window.
# 2. Push ingest CPU per camera, side by side with pull: M cameras pushed by ffmpeg (RTSP RECORD,
#    H.264 640x360 25 fps 2 Mbps) against M cameras of the same shape pulled from the fake RTSP
#    cameras; sited on core 0, the sources on core 1; sited's CPU over 20 s.
# Needs root (namespaces) for 1; ffmpeg and GStreamer's RTSP server for 2. Skips what it cannot run.
set -euo pipefail
out=${1:-target/bench}
sited=${SITED:-$PWD/target/release/sited}
mkdir -p "$out"
[ -x "$sited" ] || cargo build --quiet --release -p sited --bin sited

if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
  echo "== onvif: discovery of 50 fake devices on a namespace network"
  n=sitedbn$$ p=sitedbp$$
  cleanup() { for ns in $n $p; do for pid in $(ip netns pids $ns 2>/dev/null); do kill "$pid" 2>/dev/null || true; done; ip netns del $ns 2>/dev/null || true; done; }
  trap cleanup EXIT
  ip netns add $n; ip netns add $p
  ip -n $n link set lo up; ip -n $p link set lo up
  ip -n $n link add br0 type bridge; ip -n $n addr add 192.0.2.1/24 dev br0; ip -n $n link set br0 up
  ip link add sdbn$$ type veth peer name sdbp$$
  ip link set sdbn$$ netns $n; ip link set sdbp$$ netns $p
  ip -n $n link set sdbn$$ master br0; ip -n $n link set sdbn$$ up; ip -n $p link set sdbp$$ up
  args=()
  for i in $(seq 100 149); do ip -n $p addr add 192.0.2.$i/24 dev sdbp$$; args+=(--address 192.0.2.$i); done
  ip netns exec $p /usr/bin/python3 scripts/fake-onvif.py "${args[@]}" --http-port 8080 >"$out/fake-onvif.log" 2>&1 &
  sleep 1.5
  for window in 2 1; do
    start=$(date +%s.%N)
    ip netns exec $n "$sited" discover --interface br0 --window $window --format json >"$out/discover.json"
    end=$(date +%s.%N)
    python3 - "$out/discover.json" "$start" "$end" "$window" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1])); took = float(sys.argv[3]) - float(sys.argv[2]); window = float(sys.argv[4])
ok = sum(1 for d in report["devices"] if not d["problem"])
print(f"  window {window:.0f} s: {len(report['devices'])} devices ({ok} with streams) in {took:.2f} s; "
      f"{took - window:.2f} s after the window (target: under 5 s in all)")
EOF
  done
  cleanup; trap - EXIT
else
  echo "== onvif: discovery skipped (needs root for network namespaces)"
fi

if ! command -v ffmpeg >/dev/null || ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "== push: skipped (ffmpeg or GStreamer's RTSP server is missing; scripts/deps-media.sh installs them)"; exit 0
fi
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
m=4
echo "== push vs pull: $m cameras each, H.264 640x360 25 fps 2 Mbps, no viewers (sited on core 0)"
for mode in pull push; do
  dir=$(mktemp -d)
  push=$(free_port); api=$(free_port); tls=$(free_port); rtsp=$(free_port); cams=$(free_port)
  sources=()
  { printf '[site]\nname = "bench"\nlayout = "novavms"\n[[nodes]]\nname = "n"\naddress = "192.0.2.1"\nroles = ["application", "media"]\n'
    for i in $(seq "$m"); do
      if [ $mode = push ]; then
        echo "pw$i" > "$dir/c$i.pw"
        printf '[[cameras]]\nname = "c%s"\npush = true\nusername = "c%s"\npassword_file = "%s"\n' "$i" "$i" "$dir/c$i.pw"
      else
        printf '[[cameras]]\nname = "c%s"\nurl = "rtsp://127.0.0.1:%s/c%s"\n' "$i" "$cams" "$i"
      fi
    done
    printf '[ports]\nweb_tls = %s\napi = %s\nrtsp = %s\ncamera_push = %s\n' "$tls" "$api" "$rtsp" "$push"
  } > "$dir/site.toml"
  taskset -c 0 "$sited" run --config "$dir/site.toml" --node n --state-dir "$dir/state" --boot-dir "$dir/boot" \
    --firewall none --force-port-offset >"$dir/log" 2>&1 &
  pid=$!
  sleep 2
  if [ $mode = push ]; then
    for i in $(seq "$m"); do
      taskset -c 1 ffmpeg -v error -re -f lavfi -i testsrc2=size=640x360:rate=25 -c:v libx264 -preset ultrafast \
        -b:v 2000k -maxrate 2000k -bufsize 2000k -g 25 -bf 0 -pix_fmt yuv420p \
        -f rtsp -rtsp_transport tcp "rtsp://c$i:pw$i@127.0.0.1:$push/c$i" >"$dir/ffmpeg$i.log" 2>&1 &
      sources+=($!)
    done
  else
    specs=(); for i in $(seq "$m"); do specs+=(--camera "c$i:bitrate=2000"); done
    taskset -c 1 /usr/bin/python3 scripts/fake-camera.py --port "$cams" "${specs[@]}" >"$dir/cams.log" 2>&1 &
    sources+=($!)
  fi
  sleep 8
  a=$(cpu $pid); sleep 20; b=$(cpu $pid)
  streaming=$(grep -c "camera streaming\|camera pushing" "$dir/log" || true)
  awk -v mode="$mode" -v m="$m" -v a="$a" -v b="$b" -v s="$streaming" \
    'BEGIN { printf "  %-4s M=%d streaming=%d sited CPU %5.2f%% of a core (%.2f%% per camera)\n", mode, m, s, (b-a)/20*100, (b-a)/20*100/m }'
  kill "$pid" "${sources[@]}" 2>/dev/null || true; wait "$pid" "${sources[@]}" 2>/dev/null || true
  rm -rf "$dir"
done
