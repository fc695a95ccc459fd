#!/usr/bin/env bash
# Recording benchmarks, each printed side by side:
# 1. the index: 1,000,000 segments, p50/p99 of listing a camera's spans over a day and a month
#    (daemon/benches/recording.rs index);
# 2. N fake cameras (default 50; H.264 at 2 Mb/s, 25 fps, 320x180 so that one core can encode
#    all 50: recording's cost follows frames and bytes, not pixels) pulled by one sited, first
#    with record = false, then (the same daemon, the same cameras) with record = true: sited's
#    CPU per camera in each phase, so the cost of recording is the difference, and the write
#    syscalls per camera per minute from /proc/PID/io (syscw); then sited again, under
#    strace -f --seccomp-bpf (only the traced calls stop it), counting write, writev, pwrite64,
#    fsync and fdatasync per camera per minute over 30 s of steady recording;
# 3. a clip of one hour: one camera's recording is extended to an hour by repeating its real
#    segment files (hard links, rows copied; benches/recording.rs hour), then the time to the
#    first byte and to the last of clip.mp4 for the hour, and of its HLS VOD playlist.
# sited is pinned to core 0 and the cameras to core 1. The machines are shared and noisy.
set -euo pipefail
out=${1:-target/bench}
cameras=${RECORDING_CAMERAS:-50}
sited=$PWD/target/release/sited
mkdir -p "$out"
cargo build --quiet --release -p sited --bench recording 2>/dev/null || cargo bench --no-run -q -p sited --bench recording
bench=$(ls -t target/release/deps/recording-* | grep -v '\.d$' | head -1)

echo "== recording: the index, 1,000,000 segments (10 cameras, 60 s each)"
"$bench" index 1000000

if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "== recording: cameras skipped (GStreamer's RTSP server is missing; scripts/deps-media.sh installs it)"; exit 0
fi
hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
syscw() { awk '/^syscw/ {print $2}' "/proc/$1/io"; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
specs=()
for i in $(seq "$cameras"); do specs+=(--camera "c$i:bitrate=2000:size=320x180"); done
taskset -c 1 /usr/bin/python3 scripts/fake-camera.py --port "$port" "${specs[@]}" >"$dir/cams.log" 2>&1 &
cams=$!
pid=
trap 'kill $pid $cams 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
hash=$(printf 'bench' | "$sited" hash-password)
web=39288
site() { # $1: record = true or false
  cat <<SITE
[site]
name = "recording"
layout = "titop"
[[nodes]]
name = "n"
address = "192.0.2.1"
roles = ["application", "media"]
[[users]]
name = "bench"
role = "viewer"
password_hash = "$hash"
[ports]
web = $web
config_api = 39289
http_live = 39280
vod = 39286
rtmp = 39235
[recording]
min_free_bytes = 1048576
SITE
  for i in $(seq "$cameras"); do
    printf '[[cameras]]\nname = "c%s"\nurl = "rtsp://127.0.0.1:%s/c%s"\nrecord = %s\n' "$i" "$port" "$i" "$1"
  done
}
start_sited() { # $@: a command to run sited under
  taskset -c 0 "$@" "$sited" run --config "$dir/site.toml" --node n --state-dir "$dir/state" --boot-dir "$dir/boot" \
    --firewall none --force-port-offset --port-offset 30000 >>"$dir/log" 2>&1 &
  pid=$!
}
api() { curl -s -u bench:bench "http://127.0.0.1:$web$1"; }
streaming() { # "<cameras streaming> <their mean fps>"
  api /api/v1/cameras | python3 -c '
import json, sys
try: c = json.load(sys.stdin)
except ValueError: c = []
print(sum(x.get("state") == "streaming" for x in c), round(sum(x.get("fps") or 0 for x in c) / max(len(c), 1), 1))'
}
settle() { # waits (up to 60 s) until every camera streams, then 5 s more
  for _ in $(seq 60); do [ "$(streaming | cut -d' ' -f1)" = "$cameras" ] && break; sleep 1; done
  sleep 5
}
sleep 3
site false > "$dir/site.toml"
start_sited
sleep 2
settle
echo "== recording: $cameras cameras, 2 Mb/s H.264 320x180 25 fps each (sited on core 0, cameras on core 1)"
measure() { # $1: label; prints CPU per camera over 30 s
  local a b w1 w2 s
  s=$(streaming)
  a=$(cpu $pid); w1=$(syscw $pid); sleep 30; b=$(cpu $pid); w2=$(syscw $pid)
  awk -v l="$1" -v a="$a" -v b="$b" -v m="$cameras" -v s="$s" -v w="$((w2 - w1))" \
    'BEGIN { split(s, f, " "); printf "  %-14s streaming %s/%d at %s fps avg: sited CPU %6.2f%% of a core, %.3f%% per camera; syscw %.0f per camera per minute\n", l, f[1], m, f[2], (b-a)/30*100, (b-a)/30*100/m, w/m*2 }'
  echo "$a $b" > "$dir/cpu-$1"
}
measure "record=false"
site true > "$dir/site.toml"
sleep 2
settle
measure "record=true"
read -r a0 b0 < "$dir/cpu-record=false"; read -r a1 b1 < "$dir/cpu-record=true"
awk -v a0="$a0" -v b0="$b0" -v a1="$a1" -v b1="$b1" -v m="$cameras" \
  'BEGIN { printf "  recording costs %.3f%% of a core per camera\n", ((b1-a1)-(b0-a0))/30*100/m }'
echo "  (recorders that fell behind and skipped to a keyframe: $(grep -c 'recording fell behind' "$dir/log" || true); load average $(cut -d' ' -f1-3 /proc/loadavg))"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
start_sited strace -f --seccomp-bpf -ttt -s 0 -e trace=write,writev,pwrite64,fsync,fdatasync -o "$dir/strace"
settle
t0=$(date +%s.%N); sleep 30; t1=$(date +%s.%N)
awk -v t0="$t0" -v t1="$t1" -v m="$cameras" '
  $2 >= t0 && $2 < t1 && $3 !~ /^</ { n[substr($3, 1, index($3, "(") - 1)]++ }
  END { for (k in n) printf "  %-10s %8d calls in 30 s under strace: %7.1f per camera per minute\n", k, n[k], n[k] / m * 2 }' "$dir/strace" | sort
echo "== recording: a clip of one hour (camera c1, its segments repeated to an hour)"
kill -TERM "$(pgrep -P "$pid")"; wait "$pid" 2>/dev/null || true
kill "$cams"; wait "$cams" 2>/dev/null || true
read -r from to < <("$bench" hour "$dir/state" c1)
site false > "$dir/site.toml"
start_sited
for _ in $(seq 50); do api /api/v1/health >/dev/null && break; sleep 0.2; done
for what in clip vod; do
  case $what in
    clip) path="/api/v1/cameras/c1/clip.mp4?start=$from&end=$to" ;;
    vod) path="/vod/c1/index.m3u8?start=$from&end=$to" ;;
  esac
  for run in 1 2 3; do
    curl -s -o /dev/null -u bench:bench -w "%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n" "http://127.0.0.1:$web$path"
  done | awk -v w="$what" '{ printf "  %-4s run %d: HTTP %s, first byte %7.1f ms, all %8.1f ms, %9.1f kB\n", w, NR, $1, $2*1000, $3*1000, $4/1e3 }'
done
