#!/usr/bin/env bash
# `make run`: the example site's fake cameras (scripts/fake-cameras.sh), then sited in the
# foreground on the site file. Ctrl-C stops both. sited never touches this machine's firewall
# here (--firewall none).
set -euo pipefail
site=${1:-site.toml.example}
node=${2:-app-1}
if /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  "$(dirname "$0")/fake-cameras.sh" 8554 &
  cameras=$!
  trap 'kill $cameras 2>/dev/null || true' EXIT
else
  echo "run: GStreamer's RTSP server is missing (scripts/deps-media.sh installs it); the cameras will show as failed" >&2
fi
target/debug/sited run --config "$site" --node "$node" --state-dir target/run/state \
  --boot-dir target/run/boot --firewall none
