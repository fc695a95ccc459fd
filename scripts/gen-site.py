#!/usr/bin/env python3
"""Writes a large, valid site.toml for the benchmarks.

Usage: gen-site.py CAMERAS NODES NETWORKS [LAYOUT] > site.toml

Node 0 is the application node; the others are media nodes. Cameras carry no `node`, so they
spread over the media nodes by rendezvous hashing, and networks are split over the four zones.
Addresses come from the documentation ranges and from 10.x only as text: nothing is contacted.
"""
import sys


def main():
    cameras, nodes, networks = (int(a) for a in sys.argv[1:4])
    layout = sys.argv[4] if len(sys.argv) > 4 else "valt"
    out = [
        "[site]",
        'name = "bench"',
        f'layout = "{layout}"',
        'egress = "documented"',
        "",
        "[networks]",
    ]
    zones = {"clients": [], "admins": [], "cameras": [], "mobile": []}
    names = list(zones)
    for i in range(networks):
        zone = names[i % 4]
        if i % 2:
            zones[zone].append(f'"2001:db8:{i:x}::/48"')
        else:
            zones[zone].append(f'"198.18.{i % 256}.0/24"' if i < 512 else f'"198.19.{i % 256}.0/24"')
    # Cameras live in 198.51.100.0/24 and 203.0.113.0/24 (and larger synthetic ranges beyond).
    zones["cameras"] += ['"198.51.100.0/24"', '"203.0.113.0/24"', '"100.64.0.0/10"']
    for zone, nets in zones.items():
        out.append(f"{zone} = [{', '.join(nets)}]")
    out += ["", "[features]", "admin = true", "mobile = true", 'license = "electronic"', ""]
    for n in range(nodes):
        roles = '["application"]' if n == 0 else '["media"]'
        if nodes == 1:
            roles = '["application", "media"]'
        out += ["[[nodes]]", f'name = "node-{n}"', f'address = "192.0.2.{n + 1}"', f"roles = {roles}", ""]
    for c in range(cameras):
        host = f"100.{64 + (c >> 16) % 64}.{(c >> 8) % 256}.{c % 256}"
        out += [
            "[[cameras]]",
            f'name = "cam-{c}"',
            f'url = "rtsp://{host}:554/stream1"',
            'username = "viewer"',
            f'password_file = "/etc/sited/secrets/cam-{c}"',
            f"onvif_port = {2020 + c % 4}",
            "record = true",
            "",
        ]
    sys.stdout.write("\n".join(out))


main()
