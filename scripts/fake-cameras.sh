#!/usr/bin/env bash
# Three fake cameras for `make run` and manual tests, on one RTSP server (scripts/fake-camera.py):
#   rtsp://127.0.0.1:PORT/cam1  H.264        640x360 25 fps
#   rtsp://127.0.0.1:PORT/cam2  H.265        640x360 25 fps
#   rtsp://127.0.0.1:PORT/cam3  H.264 + AAC  640x360 25 fps
# Usage: scripts/fake-cameras.sh [PORT] [more fake-camera.py options, e.g. --user u --password p]
# Runs in the foreground until SIGTERM/SIGINT. Packages: scripts/deps-media.sh.
set -euo pipefail
port=8554
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then port=$1; shift; fi
exec /usr/bin/python3 "$(dirname "$0")/fake-camera.py" --port "$port" \
  --camera cam1 --camera cam2:codec=h265 --camera cam3:audio=aac "$@"
