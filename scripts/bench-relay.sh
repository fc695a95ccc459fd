#!/usr/bin/env bash
# Relay cost (issue #12 §5), side by side in one run: an application node (also a media node,
# with a camera of its own) and a media node, each a sited process in its own network namespace
# on one veth pair (192.0.2.1 and 192.0.2.2). Each node pulls one fake camera (GStreamer,
# scripts/fake-camera.py). N viewers read HTTP-FLV from the application node, first of its local camera, then of
# the media node's camera, which it relays: N = 1, 100, 1000. Per run: the application node's
# CPU (% of one core) and its cost per viewer, and the media node's CPU, which should stay flat
# as N grows (one stream to the application node whatever N). The reader is
# daemon/benches/fanout.rs, in the application node's namespace.
# Needs root (namespaces) and the fake cameras (scripts/deps-media.sh); skipped otherwise.
# Usage: scripts/bench-relay.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench}
mkdir -p "$out"
secs=${RELAY_SECONDS:-10}
ns_list=(${RELAY_NS:-1 100 1000})

echo "== relay: one camera relayed from a media node to N viewers on the application node, ${secs} s a run"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "  skipped: needs root and ip (network namespaces)"; exit 0
fi
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "  skipped: the fake cameras need GStreamer's RTSP server (scripts/deps-media.sh)"; exit 0
fi
ulimit -n 20000
cargo build --quiet --release -p sited
cargo bench --no-run --quiet -p sited --bench fanout 2>/dev/null
reader=$(ls -t target/release/deps/fanout-* | grep -v '\.d$' | head -1)
sited=$PWD/target/release/sited

dir=$(mktemp -d)
app=sitedrelay$$a
media=sitedrelay$$m
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$app" 2>/dev/null || true
  ip netns del "$media" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$app"
ip netns add "$media"
ip link add "r$$a" type veth peer name "r$$m"
ip link set "r$$a" netns "$app"
ip link set "r$$m" netns "$media"
ip -n "$app" addr add 192.0.2.1/24 dev "r$$a"
ip -n "$media" addr add 192.0.2.2/24 dev "r$$m"
for ns in "$app" "$media"; do ip -n "$ns" link set lo up; done
ip -n "$app" link set "r$$a" up
ip -n "$media" link set "r$$m" up

web=8088; live=8080
hash=$(printf 'bench' | "$sited" hash-password)
cat > "$dir/site.toml" <<SITE
[site]
name = "relay"
layout = "titop"
[networks]
clients = ["192.0.2.0/24"]
[[nodes]]
name = "app"
address = "192.0.2.1"
roles = ["application", "media"]
[[nodes]]
name = "media"
address = "192.0.2.2"
roles = ["media"]
[[users]]
name = "bench"
role = "viewer"
password_hash = "$hash"
[[cameras]]
name = "local"
url = "rtsp://127.0.0.1:8654/local"
node = "app"
[[cameras]]
name = "remote"
url = "rtsp://127.0.0.1:8654/remote"
node = "media"
[ports]
web = $web
http_live = $live
SITE
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/secret"

start_node() { # NS NAME CAMERA CORE
  mkdir -p "$dir/$2"
  cp "$dir/site.toml" "$dir/$2/site.toml"
  cp "$dir/secret" "$dir/$2/site.secret"
  ip netns exec "$1" taskset -c 1 /usr/bin/python3 scripts/fake-camera.py --port 8654 \
    --address 127.0.0.1 --camera "$3" >"$dir/$2-camera.log" 2>&1 &
  pids+=("$!")
  ip netns exec "$1" taskset -c "$4" "$sited" run --config "$dir/$2/site.toml" --node "$2" \
    --state-dir "$dir/$2/state" --boot-dir "$dir/$2/boot" --firewall none \
    >"$dir/$2.log" 2>&1 &
  pids+=("$!")
}
# The application node alone on core 0; the media node shares core 1 with the cameras and reader.
start_node "$app" app local 0
app_pid=${pids[-1]}
start_node "$media" media remote 1
media_pid=${pids[-1]}

in_app() { ip netns exec "$app" "$@"; }
for _ in $(seq 100); do
  in_app curl -s -o /dev/null "http://192.0.2.1:$web/api/v1/health" && break; sleep 0.2
done
token=$(in_app curl -s -u bench:bench -X POST "http://192.0.2.1:$web/api/v1/tokens" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
url() { echo "http://192.0.2.1:$live/live/$1.flv?token=$token"; }
for cam in local remote; do
  for _ in $(seq 60); do
    in_app "$reader" "$(url "$cam")" 1 2 --settle-s 1 2>/dev/null | grep -q "connected=1 " && break
    sleep 1
  done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
printf "  %-7s %5s %12s %16s %14s %10s\n" camera N app_cpu_pct app_cpu_per_viewer media_cpu_pct share_pct
for n in "${ns_list[@]}"; do
  for cam in local remote; do
    sleep 1
    m0=$(cpu_ticks "$media_pid"); t0=$(date +%s.%N)
    line=$(in_app taskset -c 1 "$reader" "$(url "$cam")" "$n" "$secs" --pid "$app_pid")
    m1=$(cpu_ticks "$media_pid"); t1=$(date +%s.%N)
    python3 - "$cam" "$n" "$line" "$m0" "$m1" "$t0" "$t1" "$hz" <<'PY'
import sys
cam, n, line, m0, m1, t0, t1, hz = sys.argv[1:]
v = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
n = int(n)
cpu = float(v.get("cpu_pct", "nan"))
media = (int(m1) - int(m0)) / int(hz) / (float(t1) - float(t0)) * 100
print(f"  {cam:<7} {n:>5} {cpu:>12.1f} {cpu / n:>16.3f} {media:>14.1f} {v.get('share_pct', '?'):>10}")
PY
  done
done
echo "  (app_cpu_pct: the application node over the steady window; media_cpu_pct: the media node over"
echo "   the whole run; a local camera's viewers cost the media node nothing, a relayed one's one stream)"
