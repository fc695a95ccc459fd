#!/usr/bin/env python3
"""The fan-out benchmark's summary: reads the runs scripts/bench-fanout.sh recorded on stdin and
prints one markdown row per server and output.

Input lines: `NAME base_rss_kib=KIB` (the server with its publisher, before any reader), then
`NAME N=n key=value ...` (one reader run, as daemon/benches/fanout.rs prints it). CPU and memory
per reader are least-squares slopes over the runs with N <= 1000; "max N" is the largest N whose
readers all connected and got >= 99.9 % of frames with lag p99 under the bound."""

import sys

SLOPE_MAX_N = 1000


def slope(points):
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def parse(line):
    head, _, error = line.partition(" first_error=")
    fields = head.split()
    values = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    return fields[0], values, error.strip()


def main():
    rows = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        name, v, _ = parse(line)
        row = rows.setdefault(name, {"base": None, "runs": []})
        if "base_rss_kib" in v:
            row["base"] = int(v["base_rss_kib"])
        else:
            row["runs"].append({k: float(x) if k != "N" else int(x) for k, x in v.items()})
    print("| server / output | CPU per reader (% of a core) | memory per reader (KiB) | "
          "base RSS (MB) | TTFF p50 / p99 at 1000 (ms) | max N, lag p99 < 100 ms | "
          "max N, lag p99 < 500 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        runs = row["runs"]
        small = [r for r in runs if r["N"] <= SLOPE_MAX_N and r["connected"] == r["N"]]
        cpu = slope([(r["N"], r["cpu_pct"]) for r in small])
        mem = slope([(r["N"], r["rss_kib"]) for r in small])
        at1000 = next((r for r in runs if r["N"] == 1000), None)
        ttff = (f"{at1000['ttff_ms_p50']:.0f} / {at1000['ttff_ms_p99']:.0f}"
                if at1000 else "-")

        def max_n(bound):
            ok = [r["N"] for r in runs if r["connected"] == r["N"]
                  and r["share_pct"] >= 99.9 and r["lag_ms_p99"] < bound]
            return max(ok, default=0)

        base = f"{row['base'] / 1024:.1f}" if row["base"] else "-"
        print(f"| {name} | {cpu:.4f} | {mem:.1f} | {base} | {ttff} | "
              f"{max_n(100)} | {max_n(500)} |")


if __name__ == "__main__":
    main()
