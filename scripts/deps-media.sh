#!/usr/bin/env bash
# Installs the Debian (bookworm) packages the fake cameras (scripts/fake-camera.py) and the media
# tests need, only those missing; `apt-get update` runs only when something is missing.
# Not root: prints what is missing and exits 0 (the media tests then skip).
set -euo pipefail

packages=(
  # GStreamer from python3 (/usr/bin/python3): the gi bindings and the RTSP server typelib
  python3-gi gir1.2-gst-rtsp-server-1.0
  # the RTSP server library, and gst-launch-1.0 / gst-inspect-1.0 for debugging
  gstreamer1.0-rtsp gstreamer1.0-tools
  # elements: videotestsrc/audiotestsrc (base), rtp payloaders and aacparse (good),
  # x265enc/h265parse/voaacenc (bad), x264enc (ugly), avenc_aac (libav),
  # textoverlay/timeoverlay (-x holds the pango plugin; it pulls no X server)
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  # ffprobe and ffmpeg, which the tests use to read the streams
  ffmpeg
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "deps-media: not root, so not installing: ${missing[*]}" >&2
  exit 0
fi
echo "deps-media: installing ${missing[*]}"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
