#!/usr/bin/env python3
"""Hostile peers without a login against `sited run` (issue 16 §6), for scripts/bench-hostile.sh.

Usage: hostile.py SITED_BINARY LABEL [N]

For each flood (RTMP sessions that never publish, issue 16's 61 unfinished 60 KB messages each;
HTTP slowloris on the web port, from 20 addresses and from one; RTSP requests whose body never
comes), N connections from loopback addresses of their own (127.0.x.y), held, then closed.
Prints one line per flood: the daemon's RSS before, during and 3 s after; how many connections
the daemon still held 5 s and 13 s in; and /api/v1/health latency (a fresh connection from
127.0.0.1 each time) p50/p99/max during the flood.
"""

import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

SITED, LABEL = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 300


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def health(port):
    t = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return (time.monotonic() - t) * 1000, ok


def connect_from(i, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((f"127.0.{1 + i // 250}.{2 + i % 250}", 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def rtmp_hostile(i, port):
    """Issue 16's reproduction: 61 chunk streams each with 60 KB of an unfinished message."""
    s = connect_from(i % 20, port)
    s.sendall(b"\x03" + bytes(1536))
    got = b""
    while len(got) < 3073:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed in the handshake")
        got += chunk
    s.sendall(got[1:1537])
    # Set Chunk Size 60000 (chunk stream 2): each stream's first chunk is whole, its message not.
    s.sendall(bytes([2, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]) + struct.pack(">I", 60000))
    attack = b""
    for cs in range(3, 64):
        header = bytes([cs, 0, 0, 0]) + (65000).to_bytes(3, "big") + bytes([20, 0, 0, 0, 0])
        attack += header + bytes(60000)
    s.setblocking(False)
    try:
        s.send(attack)
    except OSError:
        pass
    s.setblocking(True)
    return s


def http_slowloris(i, port):
    s = connect_from(i % 20, port)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-a: ")
    return s


def http_slowloris_one_address(i, port):
    s = connect_from(0, port)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-a: ")
    return s


def rtsp_slowloris(i, port):
    s = connect_from(i % 20, port)
    s.sendall(b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100\r\n\r\n")
    return s


def still_open(conns):
    n = 0
    for s in conns:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue
            n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def start(site):
    d = tempfile.mkdtemp(prefix=f"sited-hostile-{LABEL}-")
    os.makedirs(f"{d}/etc")
    with open(f"{d}/etc/site.toml", "w") as f:
        f.write(site)
    log = open(f"{d}/log", "w")
    p = subprocess.Popen(
        [SITED, "run", "--config", f"{d}/etc/site.toml", "--state-dir", f"{d}/state",
         "--boot-dir", f"{d}/boot", "--firewall", "none", "--node", "n1", "--force-port-offset"],
        stdout=log, stderr=log)
    return p, d


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} never opened")


def flood(name, pid, web, make, port):
    time.sleep(1)
    before = rss_kib(pid)
    conns = []
    for i in range(N):
        try:
            conns.append(make(i, port))
        except OSError:
            pass
    time.sleep(1)
    during = rss_kib(pid)
    lat = [health(web) for _ in range(50)]
    time.sleep(max(0, 5 - 1))
    held = still_open(conns)
    time.sleep(8)
    held_later = still_open(conns)
    for s in conns:
        s.close()
    time.sleep(3)
    after = rss_kib(pid)
    ms = [l for l, _ in lat]
    failed = sum(1 for _, ok in lat if not ok)
    print(f"{LABEL:6} {name:16} conns={len(conns):4} held@5s={held:4} held@13s={held_later:4} "
          f"rss_kib before={before} during={during} after={after} "
          f"per_conn_kib={(during - before) / max(1, len(conns)):.1f} "
          f"health_ms p50={pct(ms, .5):.1f} p99={pct(ms, .99):.1f} max={max(ms):.1f} failed={failed}",
          flush=True)


def main():
    pw = subprocess.run([SITED, "hash-password"], input=b"x", capture_output=True).stdout.decode().strip()
    users = f'[[users]]\nname = "admin"\nrole = "admin"\npassword_hash = "{pw}"\n'
    web, config, rtmp, live, vod = (free_port() for _ in range(5))
    titop = (f'[site]\nname = "h"\nlayout = "titop"\n\n[networks]\nclients = ["192.0.2.0/24"]\n\n'
             f'[[nodes]]\nname = "n1"\naddress = "192.0.2.1"\nroles = ["application", "media"]\n\n{users}\n'
             f'[ports]\nweb = {web}\nconfig_api = {config}\nrtmp = {rtmp}\nhttp_live = {live}\nvod = {vod}\n')
    p, _ = start(titop)
    try:
        wait_port(web)
        wait_port(rtmp)
        flood("rtmp-unfinished", p.pid, web, rtmp_hostile, rtmp)
        flood("http-slowloris", p.pid, web, http_slowloris, web)
        flood("http-one-address", p.pid, web, http_slowloris_one_address, web)
    finally:
        p.terminate()
        p.wait()
    tls, api, rtsp = (free_port() for _ in range(3))
    nova = (f'[site]\nname = "nova"\nlayout = "novavms"\n\n[networks]\nclients = ["192.0.2.0/24"]\n\n'
            f'[[nodes]]\nname = "n1"\naddress = "192.0.2.1"\nroles = ["application", "media"]\n\n{users}\n'
            f'[ports]\nweb_tls = {tls}\napi = {api}\nrtsp = {rtsp}\n')
    p, _ = start(nova)
    try:
        wait_port(api)
        wait_port(rtsp)
        flood("rtsp-no-body", p.pid, api, rtsp_slowloris, rtsp)
    finally:
        p.terminate()
        p.wait()


main()
