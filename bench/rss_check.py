#!/usr/bin/env python3
"""Summarises a load-generator report's RSS and latency over time into Markdown (stdout).

Usage: python3 bench/rss_check.py REPORT.json [BASELINE.json] -- figures come from the JSON only.
"""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def rows(rep):
    for p in rep["series"]:
        yield p["t"], (p.get("rss_bytes") or 0) / 1e9, p.get("window_p99_s")


def main():
    new = load(sys.argv[1])
    base = load(sys.argv[2]) if len(sys.argv) > 2 else None
    print(f"- report: `{sys.argv[1]}`" + (f", baseline: `{sys.argv[2]}`" if base else ""))
    print(f"- pushes: {new['pushes']}, success rate {new['success_rate']:.4f}, "
          f"p50 {new['latency_s']['p50']:.3f} s, p99 {new['latency_s']['p99']:.3f} s")
    print(f"- server peak RSS: {new['server'].get('peak_rss_bytes', 0) / 1e9:.2f} GB")
    print()
    print("| t (s) | RSS (GB) | window p99 (s) |" + (" baseline RSS (GB) |" if base else ""))
    print("|---:|---:|---:|" + ("---:|" if base else ""))
    base_rows = {round(t): r for t, r, _ in rows(base)} if base else {}
    for t, rss, p99 in rows(new):
        b = base_rows.get(round(t))
        extra = ("" if b is None else f" {b:.2f}") + " |" if base else ""
        print(f"| {t:.0f} | {rss:.2f} | {'' if p99 is None else f'{p99:.3f}'} |{extra}")


if __name__ == "__main__":
    main()
