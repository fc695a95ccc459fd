#!/usr/bin/env bash
# Fan-out benchmark (issue #5 §7), side by side: one 4 Mbps H.264+AAC clip is published over RTMP
# (ffmpeg -re, looped) to sited, nginx-rtmp and node-media-server in turn, and fanned out to N
# viewers of each output by the async reader (daemon/benches/fanout.rs). The server is pinned to
# core 0; the publisher and the reader to core 1.
#
# Each output gets a fresh server, so memory freed by an earlier series cannot hide the growth of
# the next. Per output: N = 1, 250, 500, 1000 (CPU and memory slopes, least squares; time to first
# frame at 1000), then N grows (1500, 1800, 2000, 2500, 3000, ...) while the readers still get
# >= 99.9 % of frames with lag p99 < 500 ms; "max N" is the largest N that met each lag bound.
# The peers (nginx's RTMP module; node-media-server 2.7.4 under target/bench/nms) are installed
# by scripts/deps.sh bench; without them their rows are skipped. The machine may be shared: the server, publisher and reader run at
# nice FANOUT_NICE (default -5, when root) so that other work disturbs them less.
# Usage: scripts/bench-fanout.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
secs=${FANOUT_SECONDS:-10}
base_ns=(1 250 500 1000)
search_ns=(1500 1800 2000 2500 3000 3500 4000)
ulimit -n 20000
nice=${FANOUT_NICE:--5}
[ "$(id -u)" -eq 0 ] || nice=0
# Runs a command on a core, at $nice. Only in the background or in $(...): it execs, so that $!
# is the command's own pid (the server's, for the CPU and memory figures).
on_core() { local core=$1; shift; exec taskset -c "$core" nice -n "$nice" "$@"; }

cargo build --quiet --release -p sited
cargo bench --no-run --quiet -p sited --bench fanout 2>/dev/null
reader=$(ls -t target/release/deps/fanout-* | grep -v '\.d$' | head -1)
sited=$PWD/target/release/sited

# The clip: 30 s of 720p25 test pattern at 4 Mbps CBR (2 s GOP, no B-frames) and 128 kb/s AAC.
clip=$out/fanout-clip-4m.flv
if [ ! -s "$clip" ]; then
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 30 \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -b:v 4040k -minrate 4040k -maxrate 4040k \
    -bufsize 2M -x264-params nal-hrd=cbr -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 \
    -c:a aac -b:a 128k -ac 2 -f flv "$clip.tmp" && mv "$clip.tmp" "$clip"
fi
rate=$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$clip")

dir=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
results=$dir/results
: > "$results"

# Waits until a reader sees frames at URL (the publisher is through), up to 20 s.
wait_live() {
  for _ in $(seq 20); do
    if "$reader" "$1" 1 3 --settle-s 1 2>/dev/null | grep -q "connected=1 "; then return 0; fi
    sleep 1
  done
  echo "  no frames from $1; see $dir" >&2
  return 1
}

publish() {
  publish_url=$1
  on_core 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy \
    -f flv "$1" >>"$dir/publish.log" 2>&1 &
  publisher=$!
  pids+=("$publisher")
}

# Restarts the publisher if it died (a server may drop it when it starves), then waits for URL.
check_publisher() {
  kill -0 "$publisher" 2>/dev/null && return 0
  echo "  (the publisher died: $(tail -1 "$dir/publish.log"); restarting it)"
  publish "$publish_url"
  wait_live "$1"
}

# series NAME PID URL: the runs of one output; appends "NAME N key=value..." lines to $results.
series() {
  local name=$1 pid=$2 url=$3 n line ok500 base
  base=$(rss "$pid")
  echo "$name base_rss_kib=$base" >> "$results"
  for n in "${base_ns[@]}" "${search_ns[@]}"; do
    check_publisher "$url" || break
    line=$(on_core 1 "$reader" "$url" "$n" "$secs" --pid "$pid")
    echo "  $name N=$n $line"
    echo "$name N=$n $line" >> "$results"
    ok500=$(awk -v n="$n" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { print (v["connected"] == n && v["share_pct"] >= 99.9 && v["lag_ms_p99"] < 500) ? 1 : 0 }' <<<"$line")
    if [ "$n" -ge 1000 ] && [ "$ok500" = 0 ]; then break; fi
    sleep 1
  done
}

run_sited() {
  local output=$1 key hash rtmp live web token
  rtmp=$(port); live=$(port); web=$(port)
  key=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$key" > "$dir/phone.key"
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
[[mobile_devices]]
name = "phone"
key_file = "$dir/phone.key"
[ports]
web = $web
config_api = $(port)
rtmp = $rtmp
http_live = $live
SITE
  rm -rf "$dir/state" "$dir/boot"
  on_core 0 "$sited" run --config "$dir/site.toml" --node n --state-dir "$dir/state" \
    --boot-dir "$dir/boot" --firewall none >"$dir/sited-$output.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$web/" && break; sleep 0.2; done
  publish "rtmp://127.0.0.1:$rtmp/live/$key"
  token=$(curl -s -u bench:bench -X POST "http://127.0.0.1:$web/api/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  local url
  case $output in
    rtmp) url="rtmp://127.0.0.1:$rtmp/live/phone?token=$token" ;;
    flv) url="http://127.0.0.1:$live/live/phone.flv?token=$token" ;;
    ws) url="ws://127.0.0.1:$live/live/phone?token=$token" ;;
  esac
  wait_live "$url" && sleep 2 && series "sited-$output" "$pid" "$url"
  stop
}

run_nginx() {
  local module=/usr/lib/nginx/modules/ngx_rtmp_module.so p
  if [ ! -f "$module" ] || ! command -v nginx >/dev/null; then
    echo "  nginx-rtmp: skipped (scripts/deps.sh bench installs it)"; return
  fi
  p=$(port)
  cat > "$dir/nginx.conf" <<CONF
load_module $module;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 20000; }
rtmp {
  server {
    listen 127.0.0.1:$p;
    application live { live on; }
  }
}
CONF
  on_core 0 nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  sleep 1
  publish "rtmp://127.0.0.1:$p/live/cam"
  wait_live "rtmp://127.0.0.1:$p/live/cam" && sleep 2 && series nginx-rtmp "$pid" "rtmp://127.0.0.1:$p/live/cam"
  stop
}

run_nms() {
  local output=$1 nms=$PWD/target/bench/nms rtmp http
  if ! command -v node >/dev/null || [ ! -f "$nms/node_modules/node-media-server/package.json" ]; then
    echo "  node-media-server: skipped (scripts/deps.sh bench installs it)"; return
  fi
  rtmp=$(port); http=$(port)
  cat > "$dir/nms.js" <<JS
// Loopback only: node-media-server 2.x has no listen address option.
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  return typeof port === 'number' ? listen.call(this, port, '127.0.0.1', ...rest) : listen.call(this, port, ...rest);
};
const NodeMediaServer = require('$nms/node_modules/node-media-server');
new NodeMediaServer({
  logType: 1,
  rtmp: { port: $rtmp, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 },
  http: { port: $http, allow_origin: '*', mediaroot: '$dir' },
}).run();
JS
  on_core 0 node "$dir/nms.js" >"$dir/nms-$output.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  sleep 2
  publish "rtmp://127.0.0.1:$rtmp/live/cam"
  local url="rtmp://127.0.0.1:$rtmp/live/cam"
  [ "$output" = flv ] && url="http://127.0.0.1:$http/live/cam.flv"
  wait_live "$url" && sleep 2 && series "nms-$output" "$pid" "$url"
  stop
}

echo "== fan-out: one $((rate / 1000)) kb/s clip published over RTMP, N viewers, ${secs} s a run (server on core 0)"
run_sited rtmp
run_sited flv
run_sited ws
run_nginx
run_nms rtmp
run_nms flv

echo
echo "== fan-out: summary (CPU and memory: least-squares slopes over N = ${base_ns[*]}; TTFF at N = 1000)"
scripts/fanout-table.py < "$results" | tee "$out/fanout.md"
