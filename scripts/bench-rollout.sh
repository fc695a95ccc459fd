#!/usr/bin/env bash
# Rollout latency (issue 12 §5): from `PUT /api/v1/site` on the application node to the new
# version applied on every node (as `GET /api/v1/nodes` reports it), for 1, 5 and 20 media
# nodes, each a `sited run` process on loopback with `--firewall none`; p50 and p99 over 50
# edits each. The target is a p99 under 1 s at 20 nodes. The figures include the application
# node's own 100 ms debounce of the written file, and the 10 ms polling of the check.
#
# The media nodes share loopback, so their own listeners (the same ports on every media node)
# bind on the first one only and are retried by the others: the links, which dial out, and the
# reconciles, which this measures, do not care. SITED overrides the binary (a debug build).
set -euo pipefail
out=${1:-target/bench}
sited=${SITED:-$PWD/target/release/sited}
mkdir -p "$out"

echo "== nodes: rollout latency, PUT /api/v1/site -> applied on every node (50 edits each)"
python3 - "$sited" <<'PY'
import base64, hashlib, json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request

SITED = sys.argv[1]
PORT = 28088                        # the application node's web port (moved from Ti Top's 8088)
USER, PASSWORD = "bench", "bench-password"
EDITS = 50

def hash_password():
    return subprocess.run([SITED, "hash-password"], input=PASSWORD, capture_output=True,
                          text=True, check=True).stdout.strip()

def site(media, hashed, edit):
    nodes = "".join(
        f'\n[[nodes]]\nname = "media-{i}"\naddress = "127.0.1.{i}"\nroles = ["media"]\n'
        for i in range(1, media + 1))
    return (f'[site]\nname = "bench"\nlayout = "titop"\n\n[networks]\nclients = ["127.0.0.0/8"]\n'
            f'admins = ["198.18.{edit % 250}.0/24"]\n\n'
            f'[[nodes]]\nname = "app"\naddress = "127.0.0.1"\nroles = ["application"]\n{nodes}\n'
            f'[[users]]\nname = "{USER}"\nrole = "admin"\npassword_hash = "{hashed}"\n\n'
            f'[ports]\nweb = {PORT}\napi = 28085\nconfig_api = 28089\nrtmp = 21935\n'
            f'http_live = 28080\nvod = 28086\nnode_api = 28087\nengine_events = 28090\n')

AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

def call(method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=body, method=method,
                                 headers={"Authorization": AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""

def applied_everywhere(version, count):
    code, body = call("GET", "/api/v1/nodes")
    if code != 200:
        return False
    r = json.loads(body).get("rollout") or {}
    return r.get("version") == version and r.get("applied") == count and r.get("of") == count

def run(media, hashed, secret):
    root = tempfile.mkdtemp(prefix=f"sited-bench-rollout-{media}-")
    procs = []
    text = site(media, hashed, 0)
    try:
        for name in ["app"] + [f"media-{i}" for i in range(1, media + 1)]:
            d = os.path.join(root, name)
            os.makedirs(os.path.join(d, "etc"))
            open(os.path.join(d, "etc", "site.toml"), "w").write(text)
            open(os.path.join(d, "etc", "site.secret"), "w").write(secret)
            log = open(os.path.join(d, "log"), "w")
            procs.append(subprocess.Popen(
                [SITED, "run", "--config", os.path.join(d, "etc", "site.toml"), "--node", name,
                 "--state-dir", os.path.join(d, "state"), "--boot-dir", os.path.join(d, "boot"),
                 "--firewall", "none"], stdout=log, stderr=log))
        version = hashlib.sha256(text.encode()).hexdigest()
        deadline = time.time() + 120
        while not applied_everywhere(version, media + 1):
            if time.time() > deadline:
                sys.exit(f"{media} media nodes never all linked; logs in {root}")
            time.sleep(0.2)
        samples = []
        for edit in range(1, EDITS + 1):
            new = site(media, hashed, edit)
            new_version = hashlib.sha256(new.encode()).hexdigest()
            start = time.monotonic()
            code, body = call("PUT", "/api/v1/site", new.encode(), {"If-Match": f'"{version}"'})
            if code != 202:
                sys.exit(f"edit {edit}: PUT answered {code}: {body[:200]}")
            while not applied_everywhere(new_version, media + 1):
                if time.monotonic() - start > 30:
                    sys.exit(f"edit {edit} never applied everywhere; logs in {root}")
                time.sleep(0.01)
            samples.append((time.monotonic() - start) * 1000)
            version = new_version
        samples.sort()
        q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))]
        return q(0.5), q(0.99), samples[0], samples[-1]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)

hashed = hash_password()
secret = subprocess.run([SITED, "secret"], capture_output=True, text=True, check=True).stdout
print(f"  {'media nodes':>11}  {'p50':>7}  {'p99':>7}  {'min':>7}  {'max':>7}")
for media in (1, 5, 20):
    p50, p99, lo, hi = run(media, hashed, secret)
    print(f"  {media:>11}  {p50:>5.0f}ms  {p99:>5.0f}ms  {lo:>5.0f}ms  {hi:>5.0f}ms", flush=True)
print(f"  (n={EDITS} edits each; target: p99 < 1000 ms at 20 media nodes; includes the 100 ms debounce)")
PY
