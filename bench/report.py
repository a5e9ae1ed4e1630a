#!/usr/bin/env python3
"""Writes bench-results/README.md (and its SVG charts) from a showcase run's raw JSON.

Usage: python3 bench/report.py bench-results/showcase/<run> [--out bench-results/README.md]

Reads <run>/manifest.json (written by bench/showcase.py) and every scenario's load-generator
report beside it, and the criterion estimates in bench-results/criterion/ when present.
Every figure in the output comes from those files; the only hand-written text it inserts is
bench/target-notes.md (explanations of missed targets, keyed by target id). Python 3.11
standard library only; the charts are SVG text written here.
"""

import argparse
import datetime as dt
import html
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GW_LABEL = {
    "ringgate": "ringgate",
    "official": "Pushgateway 1.5.1",
    "official-nocheck": "Pushgateway --push.disable-consistency-check",
}
GW_COLOR = {"ringgate": "#1b7837", "official": "#b2182b", "official-nocheck": "#ef8a62"}


# ---- formatting -----------------------------------------------------------------------------

def f_s(v):
    """Seconds, human."""
    if v is None:
        return "–"
    if v < 1e-3:
        return f"{v * 1e6:.0f} µs"
    if v < 1:
        return f"{v * 1e3:.1f} ms"
    if v < 100:
        return f"{v:.2f} s"
    return f"{v:.0f} s"


def f_bytes(v):
    if v is None:
        return "–"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if v >= div:
            return f"{v / div:.2f} {unit}" if v / div < 100 else f"{v / div:.0f} {unit}"
    return f"{v} B"


def f_mib(v):
    if v is None:
        return "–"
    return f"{v / 2**30:.2f} GiB" if v >= 2**30 else f"{v / 2**20:.0f} MiB"


def f_pct(v):
    if v is None:
        return "–"
    if v == 1:
        return "100 %"
    if v >= 0.999:
        return f"{v * 100:.2f} %"
    return f"{v * 100:.1f} %"


def f_int(v):
    return "–" if v is None else f"{v:,}"


def f_dur(secs):
    if secs is None:
        return "–"
    secs = float(secs)
    if secs >= 60 and secs % 60 == 0:
        return f"{int(secs // 60)} min"
    return f"{secs:g} s"


def errors_str(e):
    if not e:
        return ""
    parts = []
    for k in ("timeout", "timeout_queued", "connect", "io"):
        if e.get(k):
            parts.append(f"{k} {e[k]:,}")
    for code, n in sorted((e.get("http_status") or {}).items()):
        parts.append(f"HTTP {code} ×{n:,}")
    return ", ".join(parts) or "none"


# ---- data access ----------------------------------------------------------------------------

def probes(rep, phase=None, gzip=None):
    out = []
    for p in rep.get("probes", []):
        if phase and p.get("phase") != phase:
            continue
        if gzip is not None and bool(p.get("gzip")) != gzip:
            continue
        out.append(p)
    return out


def final(rep, gzip):
    ps = probes(rep, "final", gzip)
    return ps[0] if ps else None


def stored_bytes(rep):
    """Bytes of the stored exposition: the final plain scrape (200 only)."""
    p = final(rep, False)
    return p["bytes"] if p and p.get("status") == 200 else None


def full_store_probes(rep, gzip):
    """Scrapes made while pushes continued on a full store: during the run, after the first cycle."""
    cyc = rep["config"].get("cycle_s") or 0
    return [p for p in probes(rep, "during", gzip) if p["t"] >= cyc]


class Scenario:
    def __init__(self, entry, run_dir):
        self.e = entry
        self.name = entry["name"]
        self.group = entry["group"]
        self.gw = entry["gateway"]
        self.rep = None
        if entry.get("json"):
            with open(os.path.join(run_dir, entry["json"])) as f:
                self.rep = json.load(f)

    @property
    def nodes(self):
        return self.e.get("nodes")

    @property
    def ok(self):
        return self.rep is not None

    @property
    def pipeline(self):
        """Small mode: pushes in flight per connection (1: one at a time)."""
        return ((self.rep or {}).get("config") or {}).get("pipeline") or self.e.get("pipeline") or 1

    def lat(self, q):
        return (self.rep or {}).get("latency_s", {}).get(q)

    @property
    def srv(self):
        return (self.rep or {}).get("server") or {}

    def other_cpu(self):
        """Busy CPU seconds of everything else on the machine during the scenario."""
        if not self.rep or self.e.get("machine_busy_cpu_s") is None:
            return None
        used = (self.srv.get("cpu_seconds") or 0) + ((self.rep.get("loadgen") or {}).get("cpu_seconds") or 0)
        return max(0.0, self.e["machine_busy_cpu_s"] - used)


# ---- SVG ------------------------------------------------------------------------------------

def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 2.5, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    t = math.floor(lo / step) * step
    out = []
    while t <= hi + step * 1e-9:
        out.append(round(t, 10))
        t += step
    if out[-1] < hi - step * 1e-9:
        out.append(round(out[-1] + step, 10))
    return out


def log_ticks(lo, hi):
    out = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo * 0.9999 <= v <= hi * 1.0001:
                out.append(v)
        e += 1
    return out


def tick_label(v, unit=""):
    if unit == "s":
        return f"{v:g} s" if v >= 1 else f"{v * 1e3:g} ms"
    if unit == "B":
        return f_bytes(v).replace(".00", "")
    if unit == "%":
        return f"{v:g}%"
    if unit == "MiB":
        return f"{v:,.0f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def svg_chart(title, series, xlabel, ylabel, xlog=False, ylog=False, xunit="", yunit="", ymin=None, ymax=None,
              width=760, height=420, hlines=(), note=None):
    """series: [{label, color, points: [(x, y)], line: bool, dash: str|None, marker: 'circle'|'square'}]."""
    ml, mr, mt, mb = 78, 20, 40, 76
    rows, lx = 1, ml
    for s in series:
        need = 40 + 7 * len(s["label"])
        if lx > ml and lx + need > width - mr:
            rows, lx = rows + 1, ml
        lx += need
    mb += 16 * rows
    pw, ph = width - ml - mr, height - mt - mb
    xs = [x for s in series for x, _ in s["points"]]
    ys = [y for s in series for _, y in s["points"]] + [h[0] for h in hlines]
    if not xs:
        xs, ys = [1, 10], [0, 1]
    x0, x1 = min(xs), max(xs)
    y0 = ymin if ymin is not None else min(ys)
    y1 = ymax if ymax is not None else max(ys)
    if xlog:
        x0, x1 = 10 ** math.floor(math.log10(x0)), 10 ** math.ceil(math.log10(x1))
        xt = log_ticks(x0, x1)
    else:
        xt = nice_ticks(min(0, x0) if x0 >= 0 else x0, x1)
        x0, x1 = xt[0], xt[-1]
    if ylog:
        y0 = 10 ** math.floor(math.log10(max(y0, 1e-6)))
        top = max([y for s in series for _, y in s["points"]] + [h[0] * 1.5 for h in hlines] + [y0 * 10])
        y1 = 10 ** math.ceil(math.log10(top))
        yt = log_ticks(y0, y1)
    else:
        yt = nice_ticks(y0 if ymin is None else ymin, y1)
        y0, y1 = yt[0], yt[-1]
        if ymin is not None:
            y0 = ymin
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1

    def X(v):
        if xlog:
            return ml + (math.log10(v) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * pw
        return ml + (v - x0) / (x1 - x0) * pw

    def Y(v):
        if ylog:
            v = max(v, y0)
            return mt + ph - (math.log10(v) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * ph
        return mt + ph - (v - y0) / (y1 - y0) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
         f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{html.escape(title)}</text>']
    for t in yt:
        y = Y(t)
        o.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        o.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(tick_label(t, yunit))}</text>')
    for t in xt:
        x = X(t)
        o.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + ph}" stroke="#eeeeee"/>')
        o.append(f'<text x="{x:.1f}" y="{mt + ph + 16}" text-anchor="middle">{html.escape(tick_label(t, xunit))}</text>')
    o.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    for val, label, color in hlines:
        y = Y(val)
        o.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="{color}" stroke-dasharray="6 4"/>')
        o.append(f'<text x="{ml + pw - 4}" y="{y - 4:.1f}" text-anchor="end" fill="{color}">{html.escape(label)}</text>')
    o.append(f'<text x="{ml + pw / 2}" y="{mt + ph + 36}" text-anchor="middle">{html.escape(xlabel)}</text>')
    o.append(f'<text transform="translate(16 {mt + ph / 2}) rotate(-90)" text-anchor="middle">{html.escape(ylabel)}</text>')
    for s in reversed(series):  # the first series (ringgate) drawn last, on top
        pts = sorted(s["points"]) if s.get("line", True) else s["points"]
        if s.get("line", True) and len(pts) > 1:
            d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
            dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
            o.append(f'<polyline points="{d}" fill="none" stroke="{s["color"]}" stroke-width="2"{dash}/>')
        r = s.get("r", 4)
        for x, y in pts:
            if s.get("marker") == "square":
                o.append(f'<rect x="{X(x) - r:.1f}" y="{Y(y) - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{s["color"]}"/>')
            elif s.get("marker") == "none":
                pass
            else:
                o.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="{r}" fill="{s["color"]}"/>')
    # legend under the plot
    lx, ly = ml, mt + ph + 56
    for s in series:
        need = 40 + 7 * len(s["label"])
        if lx > ml and lx + need > width - mr:
            lx, ly = ml, ly + 16
        if s.get("line", True):
            o.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{s["color"]}" stroke-width="3"'
                     + (f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else "") + "/>")
        elif s.get("marker") == "square":
            o.append(f'<rect x="{lx + 7}" y="{ly - 8}" width="8" height="8" fill="{s["color"]}"/>')
        else:
            o.append(f'<circle cx="{lx + 11}" cy="{ly - 4}" r="4" fill="{s["color"]}"/>')
        o.append(f'<text x="{lx + 28}" y="{ly}">{html.escape(s["label"])}</text>')
        lx += need
    if note:
        o.append(f'<text x="{ml}" y="{height - 6}" font-size="10" fill="#555">{html.escape(note)}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


# ---- the report -----------------------------------------------------------------------------

def load_notes():
    path = os.path.join(ROOT, "bench", "target-notes.md")
    notes = {}
    if not os.path.exists(path):
        return notes
    cur = None
    for line in open(path):
        m = re.match(r"^## (\S+)\s*$", line)
        if m:
            cur = m.group(1)
            notes[cur] = []
        elif cur:
            notes[cur].append(line.rstrip("\n"))
    return {k: "\n".join(v).strip() for k, v in notes.items()}


def criterion_rows(crit_dir):
    rows = []
    if not os.path.isdir(crit_dir):
        return rows
    for bench in sorted(os.listdir(crit_dir)):
        for name in sorted(os.listdir(os.path.join(crit_dir, bench))):
            d = os.path.join(crit_dir, bench, name)
            try:
                est = json.load(open(os.path.join(d, "estimates.json")))
                meta = json.load(open(os.path.join(d, "benchmark.json")))
            except OSError:
                continue
            e = est.get("slope") or est["mean"]
            n = (meta.get("throughput") or {}).get("Bytes")
            rows.append((bench, name, e["point_estimate"], n))
    return rows


# ---- facts for the hand-written notes ---------------------------------------------------------
#
# bench/target-notes.md explains the misses in words; every figure it quotes is a {{key}} filled
# here from the raw files (showcase JSON, bench-results/profiles/*, criterion estimates).

def latest(pattern_dir, prefix):
    if not os.path.isdir(pattern_dir):
        return None
    c = sorted(d for d in os.listdir(pattern_dir) if d.startswith(prefix))
    return os.path.join(pattern_dir, c[-1]) if c else None


def callgrind_pcts(path):
    """{function name: (Ir, percent)} from callgrind_annotate output; first occurrence wins."""
    out, total = {}, None
    if not os.path.exists(path):
        return out, None
    for line in open(path):
        m = re.match(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if not m:
            continue
        ir, pct, where = int(m.group(1).replace(",", "")), float(m.group(2)), m.group(3)
        if "PROGRAM TOTALS" in where:
            total = ir
            continue
        fn = where.split(":", 1)[1] if ":" in where else where
        fn = re.sub(r" \[[^\]]*\]$", "", fn)
        out.setdefault(fn, (ir, pct))
    return out, total


def build_facts(out_dir, scen):
    """Facts for the notes. The profiles and criterion results are read from bench-results/
    wherever the report is written (a run's own REPORT.md too); links are made relative to it."""
    F = {}
    results = os.path.join(ROOT, "bench-results")
    prof = os.path.join(results, "profiles")
    mem = latest(prof, "memory-")
    if mem and os.path.exists(os.path.join(mem, "summary.json")):
        F["mem.dir"] = os.path.relpath(mem, out_dir)
        for row in json.load(open(os.path.join(mem, "summary.json"))):
            k = f"mem.{row['variant']}"
            F[k + ".peak"] = f_bytes(row["peak_rss_bytes"])
            F[k + ".system"] = f_bytes(row["malloc_system_bytes"])
            F[k + ".in_use"] = f_bytes(row["malloc_in_use_bytes"])
            F[k + ".trim"] = f_bytes(row.get("rss_after_malloc_trim_bytes"))
            F[k + ".rendered"] = f_bytes(row.get("stored_rendered_bytes_self_metrics"))
            if row.get("stored_rendered_bytes_self_metrics"):
                F[k + ".ratio"] = f"{row['peak_rss_bytes'] / row['stored_rendered_bytes_self_metrics']:.2f}×"
                F[k + ".in_use_ratio"] = f"{row['malloc_in_use_bytes'] / row['stored_rendered_bytes_self_metrics']:.2f}×"
            F[k + ".cpu"] = f"{row['server_cpu_s']:.1f} s"
            F[k + ".max"] = f_s(row["max_s"])
    cpu = latest(prof, "cpu-")
    if cpu:
        F["cpu.dir"] = os.path.relpath(cpu, out_dir)
        split = {}
        if os.path.exists(os.path.join(cpu, "cpu-split.txt")):
            for line in open(os.path.join(cpu, "cpu-split.txt")):
                n, u, sy = line.split()
                split[n] = (float(u), float(sy))
        try:
            r = json.load(open(os.path.join(cpu, "small-native.json")))
            n = r["successes"]
            u, sy = split.get("small-native", (None, None))
            F["cpu.small.rate"] = f"{r['pushes_per_s']:,.0f}"
            F["cpu.small.pushes"] = f"{n:,}"
            F["cpu.small.server_us"] = f"{r['server']['cpu_seconds'] / n * 1e6:.1f} µs"
            F["cpu.small.loadgen_us"] = f"{r['loadgen']['cpu_seconds'] / n * 1e6:.1f} µs"
            if u is not None:
                F["cpu.small.user_us"] = f"{u / n * 1e6:.1f} µs"
                F["cpu.small.sys_us"] = f"{sy / n * 1e6:.1f} µs"
                F["cpu.small.sys_pct"] = f"{sy / (u + sy) * 100:.0f} %"
                F["cpu.small.ceiling"] = f"{2 / ((r['server']['cpu_seconds'] + r['loadgen']['cpu_seconds']) / n):,.0f}"
                F["cpu.small.ceiling_no_user"] = f"{2 / ((sy + r['loadgen']['cpu_seconds']) / n):,.0f}"
        except (OSError, KeyError, ZeroDivisionError):
            pass
        names = {
            "render_times": "ringgate::store::Store::render_times",
            "parse_body": "ringgate::api::parse_body",
            "head": "ringgate::http::Response::head",
            "from_path": "ringgate::grouping::GroupKey::from_path",
            "injected": "ringgate::grouping::GroupKey::injected",
            "malloc": "malloc",
            "free": "free",
            "format": "alloc::fmt::format::format_inner",
            "parse": "ringgate::text::parse_with_limit",
            "sample": "ringgate::expo::FamilyRenderer::sample",
            "finish": "ringgate::expo::FamilyRenderer::finish",
            "from_utf8": "core::str::converts::from_utf8",
            "park": "glommio::parking::Parker::park",
        }
        for run in ("small", "stress"):
            inc, total = callgrind_pcts(os.path.join(cpu, f"{run}-callgrind.inclusive.txt"))
            for key, fn in names.items():
                if fn in inc:
                    F[f"cg.{run}.{key}"] = f"{inc[fn][1]:.1f} %"
            try:
                r = json.load(open(os.path.join(cpu, f"{run}-callgrind.json")))
                if total and run == "small":
                    F["cg.small.ir_per_push"] = f"{total / r['successes']:,.0f}"
                if total and run == "stress":
                    F["cg.stress.ir_per_byte"] = f"{total / r['bytes_sent_ok']:.0f}"
            except (OSError, KeyError, ZeroDivisionError):
                pass
    crit = os.path.join(results, "criterion")
    for key, path in (("parse.mb_s", "parse_render/text_node_exporter_794cpu"), ("gzip.mb_s", "gzip/one_member_16MiB_part"),
                      ("gzip2.mb_s", "gzip/parallel_2_threads_whole_store"),
                      ("gzseg.made.mb_s", "gzip/segments_made_whole_store"),
                      ("gzseg.reused.mb_s", "gzip/segments_reused_whole_store")):
        try:
            est = json.load(open(os.path.join(crit, path, "estimates.json")))
            meta = json.load(open(os.path.join(crit, path, "benchmark.json")))
            e = est.get("slope") or est["mean"]
            F[key] = f"{meta['throughput']['Bytes'] / e['point_estimate'] * 1e3:,.0f} MB/s"
        except (OSError, KeyError):
            pass
    touch = latest(prof, "page-touch-")
    if touch and os.path.exists(os.path.join(touch, "page_touch.json")):
        F["touch.dir"] = os.path.relpath(touch, out_dir)
        runs = json.load(open(os.path.join(touch, "page_touch.json")))["runs"]
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        one = [r["first_touch_mb_s_total"] for r in runs if r["processes"] == 1]
        two = [x for r in runs if r["processes"] == 2 for x in r["first_touch_mb_s_each"]]
        again = [x for r in runs if r["processes"] == 2 for x in r["retouch_mb_s_each"]]
        if one and two and again:
            F["touch.one"] = f"{med(one):,.0f} MB/s"
            F["touch.two_each"] = f"{med(two):,.0f} MB/s"
            F["touch.two_total"] = f"{med([r['first_touch_mb_s_total'] for r in runs if r['processes'] == 2]):,.0f} MB/s"
            F["touch.again_each"] = f"{med(again):,.0f} MB/s"
    # breaking point: the last pass and the first failure of the search
    brk = sorted([x for x in scen if x.group == "breaking" and x.ok], key=lambda x: x.nodes)
    passed = [x for x in brk if x.e.get("breaking_pass")]
    failed = [x for x in brk if not x.e.get("breaking_pass")]
    for tag, x in (("pass", passed[-1] if passed else None), ("fail", failed[0] if failed else None)):
        if not x:
            continue
        c = x.rep["config"]
        k = f"brk.{tag}"
        F[k + ".nodes"] = f"{x.nodes:,}"
        F[k + ".push_mb_s"] = f"{c['bytes_per_cycle'] / c['jitter_s'] / 1e6:,.0f} MB/s"
        F[k + ".p99"] = f_s(x.lat("p99"))
        for i, cyc in enumerate(x.rep.get("by_cycle") or []):
            F[f"{k}.p99_cycle{i + 1}"] = f_s((cyc.get("latency_s") or {}).get("p99"))
        F[k + ".queue_p95"] = f_s(x.rep.get("queue_wait_s", {}).get("p95"))
        F[k + ".store"] = f_bytes(stored_bytes(x.rep))
        F[k + ".cpu"] = f"{x.srv.get('cpu_seconds') or 0:.0f} s"
        F[k + ".wall"] = f"{x.e.get('wall_s', 0):.0f} s"
        F[k + ".loadgen_cpu"] = f"{(x.rep.get('loadgen') or {}).get('cpu_seconds') or 0:.1f} s"
        oc = x.other_cpu()
        F[k + ".other_cpu"] = "–" if oc is None else f"{oc:.0f} s"
        ser = x.rep.get("series", [])
        idle = [b["cpu_seconds"] - a["cpu_seconds"] for a, b in zip(ser, ser[1:])
                if b.get("window_pushes") == 0 and a.get("cpu_seconds") is not None and b.get("cpu_seconds") is not None]
        if idle:
            F[k + ".idle_cpu_max"] = f"{max(idle):.1f} s"
            F[k + ".idle_cpu_min"] = f"{min(idle):.1f} s"
        gz = [p for p in x.rep.get("probes", []) if p.get("gzip") and p.get("status") == 200]
        if gz:
            F[k + ".gzip_max"] = f_s(max(p["seconds"] for p in gz))
    killed = [x for x in scen if x.group == "breaking" and x.e.get("server_killed_rss_cap")]
    if killed:
        x = killed[0]
        F["brk.killed.nodes"] = f"{x.nodes:,}"
        F["brk.killed.rss"] = f_bytes(x.e["server_killed_rss_cap"])
        F["brk.killed.store"] = f_bytes(stored_bytes(x.rep)) if x.rep else "–"
    # gzip scrapes: size against the plain scrape of the same store (the segments' share)
    r1k = next((x for x in scen if x.ok and x.group == "ringgate" and x.nodes == 1000), None)
    if r1k:
        pl, gz = final(r1k.rep, False), final(r1k.rep, True)
        if pl and gz and pl.get("status") == 200 and gz.get("status") == 200 and gz["bytes"]:
            F["gz.ratio"] = f"{pl['bytes'] / gz['bytes']:.1f}×"
            F["gz.share"] = f"{gz['bytes'] / pl['bytes'] * 100:.0f} %"
            F["gz.bytes"] = f_bytes(gz["bytes"])
            F["gz.plain"] = f_bytes(pl["bytes"])
        F["r1k.rss"] = f_bytes(r1k.srv.get("peak_rss_bytes"))
        if stored_bytes(r1k.rep):
            F["r1k.ratio"] = f"{r1k.srv['peak_rss_bytes'] / stored_bytes(r1k.rep):.2f}×"
    spk = next((x for x in scen if x.ok and x.group == "spike"), None)
    if spk and stored_bytes(spk.rep):
        F["spike.rss"] = f_bytes(spk.srv.get("peak_rss_bytes"))
        F["spike.ratio"] = f"{spk.srv['peak_rss_bytes'] / stored_bytes(spk.rep):.2f}×"
        F["spike.store"] = f_bytes(stored_bytes(spk.rep))
        gzs = [p for p in spk.rep.get("probes", []) if p.get("gzip") and p.get("status") == 200]
        F["spike.gzip_max"] = f_s(max((p["seconds"] for p in gzs), default=None))
    # small pushes in this run: CPU per push of each side, and the rate both CPUs would allow
    for x in scen:
        if not (x.ok and x.group == "small"):
            continue
        r, n = x.rep, x.rep.get("successes") or 0
        k = {"ringgate": "small.rg", "official": "small.pg", "official-nocheck": "small.pgnc"}.get(x.gw)
        if not k or not n:
            continue
        if x.pipeline > 1:
            k += "_pipe"
            F["small.pipe_depth"] = str(x.pipeline)
        F[k + ".rate"] = f"{r['pushes_per_s']:,.0f}"
        srv_cpu, lg_cpu = x.srv.get("cpu_seconds"), (r.get("loadgen") or {}).get("cpu_seconds")
        if srv_cpu and lg_cpu:
            F[k + ".server_us"] = f"{srv_cpu / n * 1e6:.1f} µs"
            F[k + ".loadgen_us"] = f"{lg_cpu / n * 1e6:.1f} µs"
            F[k + ".ceiling"] = f"{2 / ((srv_cpu + lg_cpu) / n):,.0f}"
            F[k + ".busy"] = f"{(srv_cpu + lg_cpu) / r['elapsed_s']:.2f}"
    # soak: RSS step-ups and the scrapes next to them
    sk = next((x for x in scen if x.group == "soak" and x.ok), None)
    if sk:
        ser = sk.rep.get("series", [])
        cyc = sk.rep["config"]["cycle_s"]
        steps = [(a, b) for a, b in zip(ser, ser[1:]) if b["t"] > 2 * cyc and a.get("rss_bytes") and b.get("rss_bytes")
                 and b["rss_bytes"] - a["rss_bytes"] > 20e6]
        gz = [p for p in sk.rep.get("probes", []) if p.get("gzip")]
        with_gz = [1 for a, b in steps if any(a["t"] - sk.rep["config"]["probe_interval_s"] <= p["t"] <= b["t"] for p in gz)]
        with_push = [1 for a, b in steps if b.get("window_pushes")]
        F["soak.steps"] = str(len(steps))
        F["soak.steps_gzip"] = str(len(with_gz))
        F["soak.steps_push"] = str(len(with_push))
        F["soak.gzip_max"] = f_s(max((p["seconds"] for p in gz), default=None))
    return F


def fill(text, F, missing):
    def sub(m):
        k = m.group(1)
        if k in F:
            return F[k]
        missing.add(k)
        return f"?{k}?"
    return re.sub(r"\{\{([\w.]+)\}\}", sub, text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="showcase run directory (has manifest.json)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results", "README.md"))
    a = ap.parse_args()
    run_dir = os.path.abspath(a.run)
    out_path = os.path.abspath(a.out)
    out_dir = os.path.dirname(out_path)
    charts_dir = os.path.join(out_dir, "charts")
    os.makedirs(charts_dir, exist_ok=True)
    rel = lambda p: os.path.relpath(p, out_dir)  # noqa: E731
    man = json.load(open(os.path.join(run_dir, "manifest.json")))
    scen = [Scenario(e, run_dir) for e in man["scenarios"]]
    notes = load_notes()
    facts = build_facts(out_dir, scen)
    # Filled when a note goes into the report, so that only the facts of notes it prints (the
    # missed targets' and the general one) are reported as unknown.
    missing = set()
    note = lambda k: fill(notes[k], facts, missing) if k in notes else None  # noqa: E731

    stress = [s for s in scen if s.ok and s.rep.get("mode") == "stress"]
    ladder = {gw: sorted([s for s in stress if s.group == gw], key=lambda s: s.nodes)
              for gw in ("ringgate", "official", "official-nocheck")}
    rg_all = sorted([s for s in stress if s.gw == "ringgate" and s.group in ("ringgate", "breaking")], key=lambda s: s.nodes)
    spike = [s for s in stress if s.group == "spike"]
    soak = [s for s in stress if s.group == "soak"]
    breaking = sorted([s for s in scen if s.group == "breaking"], key=lambda s: s.nodes or 0)
    small = [s for s in scen if s.group == "small" and s.ok]
    max_nodes = max([s.nodes for s in ladder["ringgate"]] or [0])
    big = 1000 if max_nodes >= 1000 else max_nodes  # the target scale (a --quick run scales down)

    L = []
    w = L.append
    w("# ringgate benchmark results")
    w("")
    w(f"Generated by `bench/report.py` from the raw JSON of the showcase run in "
      f"[`{rel(run_dir)}/`]({rel(run_dir)}/) (one load-generator report per scenario, plus "
      f"[`manifest.json`]({rel(run_dir)}/manifest.json) with the exact commands); no figure here is typed by hand. "
      f"Regenerate with `python3 bench/report.py {os.path.relpath(run_dir, ROOT)}`.")
    w("")
    w(f"- run: {man.get('started_utc')} → {man.get('ended_utc', '(still running or interrupted)')}"
      + (f" ({man['wall_s'] / 60:.0f} min)" if man.get("wall_s") else ""))
    w(f"- command: `{man['command']}`" + (" — a **quick smoke run**, not the full matrix" if man.get("quick") else ""))
    g = man.get("git", {})
    w(f"- ringgate built from: {g.get('built_from') or g.get('commit', '?')}"
      + (" (uncommitted changes in src/ at build time)" if g.get("src_dirty") else "")
      + f", {man['binaries']['ringgate'].get('version')}; official: {man['binaries']['pushgateway'].get('version')}")
    m = man["machine"]
    w(f"- machine: {m.get('nproc')} CPUs, {f_mib(m.get('mem_total_bytes'))} RAM, kernel {m.get('uname_r')}, "
      f"{m.get('os_release')}, {m.get('rustc')} (details in [Machine](#machine))")
    w("- the load generator (`loadgen/`, `ringgate-loadgen`) runs on the same 2 CPUs as the gateway; so did other "
      "engineers' builds and tests during this run: see the *other CPU* column and the load averages, and compare "
      "ringgate with the official gateway at the same scale (they ran back to back) rather than across runs.")
    w("")

    # ---- headline
    w("## Headline: ringgate and the official Pushgateway, same workload, same machine, same run")
    w("")
    opt = man.get("options", {})
    w(f"Per scenario: N nodes each push 4 payloads (GPU exporter 786 KB, node exporter 587 KB, 25 KB, 15 KB) "
      f"plus one 20 KB cluster push per cycle of {f_dur(opt.get('cycle_s'))}, {opt.get('cycles')} cycles, each push "
      f"started after a random 0–{f_dur(opt.get('jitter_s'))} delay; 500 pooled keep-alive "
      "connections, 30 s client timeout, PUT. Latency counts from when the push was due (queueing for a pooled "
      "connection included); a push that timed out counts as a failure at 30 s.")
    w("")
    scales = sorted({s.nodes for gw in ladder for s in ladder[gw]})
    hdr = "| nodes | " + " | ".join(f"{GW_LABEL[gw]}: success, p99" for gw in ladder if ladder[gw]) + " |"
    w(hdr)
    w("|---:|" + "---|" * sum(1 for gw in ladder if ladder[gw]))
    for n in scales:
        row = [f"{n:,}"]
        for gw in ladder:
            if not ladder[gw]:
                continue
            s = next((s for s in ladder[gw] if s.nodes == n), None)
            if s is None:
                row.append("not run (ladder stopped)" if gw != "ringgate" else "–")
            else:
                cell = f"{f_pct(s.rep['success_rate'])} of {s.rep['pushes']:,}, p99 {f_s(s.lat('p99'))}"
                if s.e.get("server_killed_rss_cap"):
                    cell += f" (killed by the driver at {f_bytes(s.e['server_killed_rss_cap'])} RSS, the RAM guard)"
                row.append(cell)
        w("| " + " | ".join(row) + " |")
    w("")
    if small:
        for depth in sorted({s.pipeline for s in small}):
            these = [s for s in small if s.pipeline == depth]
            how = "one push in flight per connection" if depth == 1 else f"{depth} pipelined pushes in flight per connection"
            w(f"Small pushes (~100-byte PUT, 64 keep-alive connections, 10,000 groups), {how}: "
              + "; ".join(f"{GW_LABEL[s.gw]} **{s.rep['pushes_per_s']:,.0f}/s**" for s in these) + ".")
            w("")
    w("![success rate against node count](" + rel(os.path.join(charts_dir, "success_vs_nodes.svg")) + ")")
    w("")
    w("![p99 push latency against node count](" + rel(os.path.join(charts_dir, "p99_vs_nodes.svg")) + ")")
    w("")
    w("![peak RSS against node count](" + rel(os.path.join(charts_dir, "rss_vs_nodes.svg")) + ")")
    w("")

    # ---- targets
    w("## Targets (issue 5)")
    w("")
    targets = []

    def target(tid, text, figure, met, basis):
        targets.append((tid, text, figure, met, basis))

    up_to = [s for s in ladder["ringgate"] if s.nodes <= big]
    if up_to:
        worst = min(up_to, key=lambda s: s.rep["success_rate"])
        target("success-up-to-1000", f"100 % success at every scale up to {big:,} nodes",
               "; ".join(f"{s.nodes:,}: {f_pct(s.rep['success_rate'])}" for s in up_to),
               all(s.rep["successes"] == s.rep["pushes"] for s in up_to),
               f"worst: {worst.name} ({worst.rep['successes']:,}/{worst.rep['pushes']:,})")
    s1k = next((s for s in ladder["ringgate"] if s.nodes == big), None)
    if s1k:
        target("p99-1000", f"p99 push latency ≤ 1 s at {big:,} nodes with jitter",
               f"p99 {f_s(s1k.lat('p99'))} (p50 {f_s(s1k.lat('p50'))}, max {f_s(s1k.lat('max'))})",
               (s1k.lat("p99") or 1e9) <= 1.0, s1k.name)
    sp = next((s for s in spike), None)
    if sp:
        target("spike-1000", f"spike at {sp.nodes:,} nodes (jitter 0): 100 %, max ≤ 10 s",
               f"{f_pct(sp.rep['success_rate'])} ({sp.rep['successes']:,}/{sp.rep['pushes']:,}), max {f_s(sp.lat('max'))}",
               sp.rep["successes"] == sp.rep["pushes"] and (sp.lat("max") or 1e9) <= 10, sp.name)
    full = [s for s in stress if s.gw == "ringgate" and s.nodes == big and s.group in ("ringgate", "spike", "soak")]
    if full:
        pl = [p for s in full for p in full_store_probes(s.rep, False)]
        gz = [p for s in full for p in full_store_probes(s.rep, True)]
        bad = [p for p in pl + gz if p.get("status") != 200]
        mpl = max((p["seconds"] for p in pl), default=None)
        mgz = max((p["seconds"] for p in gz), default=None)
        size = max((stored_bytes(s.rep) or 0) for s in full)
        target("scrape-1000", f"/metrics of the {big:,}-node store served, plain and gzip, in < 10 s while pushes continue",
               f"{len(pl)} plain scrape(s) of up to {f_bytes(max((p['bytes'] for p in pl), default=None))}: max {f_s(mpl)}; "
               f"{len(gz)} gzip scrape(s): max {f_s(mgz)}; non-200: {len(bad)} (final store {f_bytes(size)})",
               bool(pl) and bool(gz) and not bad and mpl < 10 and mgz < 10,
               "every scrape made during " + ", ".join(s.name for s in full) + " after the first cycle (store full, pushes going on)")
    rss_runs = [s for s in stress if s.gw == "ringgate" and s.nodes and s.nodes >= big and stored_bytes(s.rep)
                and s.srv.get("peak_rss_bytes") and (s.group != "breaking" or s.e.get("breaking_pass"))]
    if rss_runs:
        ratios = [(s.srv["peak_rss_bytes"] / stored_bytes(s.rep), s) for s in rss_runs]
        worst_r, worst_s = max(ratios, key=lambda t: t[0])
        target("rss-1.5x", "peak RSS ≤ 1.5 × the bytes of the stored exposition",
               "; ".join(f"{s.name}: {f_bytes(s.srv['peak_rss_bytes'])} / {f_bytes(stored_bytes(s.rep))} = {r:.3f}×" for r, s in ratios),
               worst_r <= 1.5, f"worst {worst_s.name} {worst_r:.2f}× (runs at ≥ {big:,} nodes that passed)")
    cands = [s for s in rg_all if s.rep["successes"] == s.rep["pushes"] and (s.lat("p99") or 1e9) <= 1.0]
    tried = [s for s in rg_all]
    if tried:
        bp = max((s.nodes for s in cands), default=0)
        fails = [s for s in tried if s not in cands]
        first_fail = min(fails, key=lambda s: s.nodes) if fails else None
        skipped = [s for s in breaking if s.e.get("outcome") == "skipped"]
        fig = f"largest passing: {bp:,} nodes"
        if first_fail:
            fig += (f"; smallest failing: {first_fail.nodes:,} ({f_pct(first_fail.rep['success_rate'])}, "
                    f"p99 {f_s(first_fail.lat('p99'))})")
        if skipped:
            fig += "; not run: " + ", ".join(f"{s.nodes:,} ({s.e.get('why')})" for s in skipped)
        target("breaking-5000", "breaking point (100 % success and p99 ≤ 1 s) ≥ 5,000 nodes", fig, bp >= 5000,
               "ringgate ladder + breaking-point search (" + ", ".join(f"{s.nodes:,}" for s in tried) + " nodes)")
    rs_all = sorted([s for s in small if s.gw == "ringgate"], key=lambda s: s.pipeline)
    if rs_all:
        def small_fig(rs):
            how = "one in flight per connection" if rs.pipeline == 1 else f"{rs.pipeline} pipelined per connection"
            return (f"{how}: {rs.rep['pushes_per_s']:,.0f} pushes/s ({rs.rep['successes']:,} in {rs.rep['elapsed_s']:.1f} s, "
                    f"{rs.rep['config']['connections']} connections; load generator CPU {rs.rep['loadgen']['cpu_seconds']:.1f} s, "
                    f"server CPU {rs.srv.get('cpu_seconds') or 0:.1f} s)")
        fast = [rs.rep["pushes_per_s"] >= 100_000 for rs in rs_all]
        # Met outright only if it holds one push at a time; pipelined only is said as such.
        met = True if all(fast) else ("MET pipelined, MISSED one at a time" if fast[-1] else False)
        target("small-100k", "small pushes ≥ 100,000 per second", "; ".join(small_fig(rs) for rs in rs_all), met,
               ", ".join(rs.name for rs in rs_all))
    sk = soak[0] if soak else None
    if sk:
        ser = sk.rep.get("series", [])
        settle = 2 * (sk.rep["config"].get("cycle_s") or 60)
        late = [p for p in ser if p["t"] >= settle and p.get("rss_bytes")]
        if late:
            r0, r1, rmax = late[0]["rss_bytes"], late[-1]["rss_bytes"], max(p["rss_bytes"] for p in late)
            p99s = [p["window_p99_s"] for p in late if p.get("window_p99_s") is not None]
            drift = r1 / r0 - 1
            target("soak-latency-flat", f"soak of {f_dur(sk.e.get('duration_s'))} at {sk.nodes:,} nodes: latency flat "
                   f"(here: 100 % success and every 10 s window's p99 ≤ 1 s after {settle:.0f} s)",
                   f"window p99 from {f_s(min(p99s) if p99s else None)} to {f_s(max(p99s) if p99s else None)}; "
                   f"success {f_pct(sk.rep['success_rate'])} ({sk.rep['successes']:,}/{sk.rep['pushes']:,})",
                   (max(p99s) if p99s else 1e9) <= 1.0 and sk.rep["successes"] == sk.rep["pushes"], sk.name)
            half = [p for p in late if p["t"] >= late[-1]["t"] / 2]
            target("soak-rss-flat", f"soak of {f_dur(sk.e.get('duration_s'))} at {sk.nodes:,} nodes: RSS flat "
                   f"(here: RSS at the end within 10 % of RSS at {settle:.0f} s, when every group has been replaced once)",
                   f"RSS {f_bytes(r0)} at {late[0]['t']:.0f} s → {f_bytes(r1)} at the end ({drift:+.1%}); "
                   f"over the second half {f_bytes(half[0]['rss_bytes'])} → {f_bytes(half[-1]['rss_bytes'])} "
                   f"({half[-1]['rss_bytes'] / half[0]['rss_bytes'] - 1:+.1%})",
                   abs(drift) <= 0.10, sk.name)
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for tid, text, fig, met, basis in targets:
        verdict = "MET" if met is True else ("MISSED" if not met else met)
        w(f"| {text} | {fig} ({basis}) | **{verdict}** |")
    w("")
    missed = [t for t in targets if t[3] is not True]
    if missed:
        w("### Why the missed targets are missed")
        w("")
        for tid, text, fig, met, basis in missed:
            w(f"**{text}** — measured: {fig}.")
            w("")
            w(note(tid) or ("_No explanation recorded yet in `bench/target-notes.md` for this target id "
                            f"(`{tid}`)._"))
            w("")
    if notes.get("general"):
        w(note("general"))
        w("")

    # ---- tables
    w("## Every stress scenario")
    w("")
    w("Pushes and latency (seconds from when the push was due to the end of the response; failures included).")
    w("")
    w("| scenario | gateway | nodes | jitter | cycles | pushes | ok | success | p50 | p95 | p99 | max | errors | raw |")
    w("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for s in stress:
        c = s.rep["config"]
        cyc = f"{c['cycles']} × {f_dur(c['cycle_s'])}"
        w(f"| {s.name} | {GW_LABEL[s.gw]} | {s.nodes:,} | {f_dur(c['jitter_s'])} | {cyc} | {s.rep['pushes']:,} | "
          f"{s.rep['successes']:,} | {f_pct(s.rep['success_rate'])} | {f_s(s.lat('p50'))} | {f_s(s.lat('p95'))} | "
          f"{f_s(s.lat('p99'))} | {f_s(s.lat('max'))} | {errors_str(s.rep.get('errors'))} | "
          f"[json]({rel(os.path.join(run_dir, s.e['json']))}) |")
    w("")
    w("Scrapes of `/metrics` (the prober scrapes every 10 s during the run, alternating plain and gzip, 60 s timeout; "
      "then one plain and one gzip scrape after the last push). Sizes are bytes on the wire (gzip: compressed).")
    w("")
    w("| scenario | scrapes during (ok/all) | slowest during: plain | gzip | final plain: size, time | final gzip: size, time |")
    w("|---|---:|---|---|---|---|")
    for s in stress:
        d = probes(s.rep, "during")
        okd = sum(1 for p in d if p.get("status") == 200)
        dp = max(probes(s.rep, "during", False), key=lambda p: p["seconds"], default=None)
        dg = max(probes(s.rep, "during", True), key=lambda p: p["seconds"], default=None)

        def pr(p):
            if p is None:
                return "–"
            st = "" if p.get("status") == 200 else f" **{p.get('status') or p.get('error') or 'failed'}**"
            return f"{f_bytes(p['bytes'])}, {f_s(p['seconds'])}{st}"
        w(f"| {s.name} | {okd}/{len(d)} | {pr(dp)} | {pr(dg)} | {pr(final(s.rep, False))} | {pr(final(s.rep, True))} |")
    w("")
    w("Server and machine (server CPU from `/proc/PID/stat`; *other CPU*: busy CPU seconds of the whole machine "
      "during the scenario minus the gateway's and the load generator's, i.e. other engineers' builds and tests).")
    w("")
    w("| scenario | server peak RSS | stored exposition | RSS / exposition | server CPU | loadgen CPU | other CPU | wall | load avg before → after |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in stress:
        sb = stored_bytes(s.rep)
        pk = s.srv.get("peak_rss_bytes")
        ratio = f"{pk / sb:.2f}×" if sb and pk else "–"
        oc = s.other_cpu()
        lb, la = s.e.get("loadavg_before"), s.e.get("loadavg_after")
        extra = " (killed at the RSS cap)" if s.e.get("server_killed_rss_cap") else ""
        w(f"| {s.name} | {f_bytes(pk)}{extra} | {f_bytes(sb)} | {ratio} | {s.srv.get('cpu_seconds') or 0:.1f} s | "
          f"{(s.rep.get('loadgen') or {}).get('cpu_seconds') or 0:.1f} s | {'–' if oc is None else f'{oc:.0f} s'} | "
          f"{s.e.get('wall_s', 0):.0f} s | {lb[0] if lb else '–'} → {la[0] if la else '–'} |")
    w("")
    notrun = [s for s in scen if not s.ok]
    if notrun:
        w("Scenarios without a report: " + "; ".join(f"{s.name} ({s.e.get('outcome')}: {s.e.get('why', '')})" for s in notrun) + ".")
        w("")
    stops = [s for s in scen if s.e.get("ladder_stop")]
    if stops:
        w("Official ladders stopped after: " + "; ".join(f"{s.name} ({s.e['ladder_stop']})" for s in stops) + ".")
        w("")

    if breaking:
        w("## Breaking-point search (ringgate)")
        w("")
        # Runs since 2026-11-23T18Z estimate the gateway's peak RSS from the runs before (the
        # compressed store keeps RSS well under the exposition); older ones the store's bytes.
        by_rss = any("est_peak_rss_bytes" in s.e for s in breaking)
        limit_what = ("the gateway's peak RSS (estimated from the largest peak RSS per node so far) would pass "
                      if by_rss else "the store would pass ")
        w("Upward from the ladder until a scale misses 100 % success or p99 ≤ 1 s, or " + limit_what +
          f"{man['options'].get('max_ram_fraction', 0.6):.0%} of RAM; then bisection between the last pass and the first failure.")
        w("")
        w("The two *cycle* columns split the same pushes by push cycle (from the load generator's `by_cycle`, "
          "in runs since 2026-11-22): in the first every group is new and the store grows to its full size, "
          "taking fresh memory from the machine; in the second every group is replaced. The verdict is on "
          "all pushes together.")
        w("")
        w("| nodes | success | p99 | max | p99, cycle 1 (groups created) | p99, cycle 2 (groups replaced) | stored exposition | peak RSS | pass |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---|")

        def cycle_p99(rep, i):
            cyc = rep.get("by_cycle") or []
            if i >= len(cyc):
                return "—"
            c = cyc[i]
            return f"{f_s((c.get('latency_s') or {}).get('p99'))} ({f_pct(c.get('success_rate'))})"

        for s in breaking:
            if not s.ok:
                w(f"| {s.nodes:,} | not run: {s.e.get('why')} | | | | | | | |")
                continue
            w(f"| {s.nodes:,} | {f_pct(s.rep['success_rate'])} | {f_s(s.lat('p99'))} | {f_s(s.lat('max'))} | "
              f"{cycle_p99(s.rep, 0)} | {cycle_p99(s.rep, 1)} | "
              f"{f_bytes(stored_bytes(s.rep))} | {f_bytes(s.srv.get('peak_rss_bytes'))} | {'yes' if s.e.get('breaking_pass') else 'no'} |")
        w("")

    if small:
        w("## Small pushes")
        w("")
        w("| gateway | in flight per connection | pushes ok | duration | pushes/s | p50 | p99 | max | errors | server CPU | loadgen CPU | raw |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
        for s in sorted(small, key=lambda s: s.pipeline):
            w(f"| {GW_LABEL[s.gw]} | {s.pipeline} | {s.rep['successes']:,} | {s.rep['elapsed_s']:.1f} s | **{s.rep['pushes_per_s']:,.0f}** | "
              f"{f_s(s.lat('p50'))} | {f_s(s.lat('p99'))} | {f_s(s.lat('max'))} | {errors_str(s.rep.get('errors'))} | "
              f"{s.srv.get('cpu_seconds') or 0:.1f} s | {(s.rep.get('loadgen') or {}).get('cpu_seconds') or 0:.1f} s | "
              f"[json]({rel(os.path.join(run_dir, s.e['json']))}) |")
        w("")

    if sk:
        ser = sk.rep.get("series", [])
        w(f"## Soak: {sk.nodes:,} nodes for {f_dur(sk.e.get('duration_s'))}")
        w("")
        w(f"{sk.rep['successes']:,}/{sk.rep['pushes']:,} pushes ok ({f_pct(sk.rep['success_rate'])}), p50 {f_s(sk.lat('p50'))}, "
          f"p99 {f_s(sk.lat('p99'))}, max {f_s(sk.lat('max'))}; server peak RSS {f_bytes(sk.srv.get('peak_rss_bytes'))}, "
          f"CPU {sk.srv.get('cpu_seconds') or 0:.0f} s. One point per 10 s window from the load generator's `series`.")
        w("")
        w("![soak: server RSS over time](" + rel(os.path.join(charts_dir, "soak_rss.svg")) + ")")
        w("")
        w("![soak: p99 push latency per 10 s window](" + rel(os.path.join(charts_dir, "soak_p99.svg")) + ")")
        w("")
        if ser:
            w("<details><summary>every point</summary>")
            w("")
            w("| t | pushes done | ok | window pushes | window p99 | server RSS | server CPU |")
            w("|---:|---:|---:|---:|---:|---:|---:|")
            for p in ser:
                w(f"| {p['t']:.0f} s | {p['pushes_done']:,} | {p['successes']:,} | {p['window_pushes']:,} | "
                  f"{f_s(p.get('window_p99_s'))} | {f_bytes(p.get('rss_bytes'))} | {p.get('cpu_seconds') or 0:.0f} s |")
            w("")
            w("</details>")
            w("")

    w("## Scrape time against store size")
    w("")
    w("Every scrape of every stress scenario (during and after the run), plain and gzip: x is the size of the stored "
      "exposition at that moment (the plain scrape's bytes; for a gzip scrape, the plain size of the closest plain "
      "scrape of the same scenario), y the time to the last byte.")
    w("")
    w("![scrape time against store size](" + rel(os.path.join(charts_dir, "scrape_vs_store.svg")) + ")")
    w("")

    # ---- criterion
    crit = criterion_rows(os.path.join(out_dir, "criterion"))
    if crit:
        w("## Micro-benchmarks (criterion)")
        w("")
        w("Run separately (see each page for the machine, date and exact command): "
          + ", ".join(f"[{os.path.splitext(f)[0]}]({f})" for f in sorted(os.listdir(out_dir))
                      if f.endswith(".md") and f != os.path.basename(out_path)) + ".")
        w("")
        w("| bench | case | time per iteration | throughput |")
        w("|---|---|---:|---:|")
        for bench, name, t, n in crit:
            w(f"| {bench} | {name} | {f_s(t / 1e9)} | {f'{n / t * 1e3:,.0f} MB/s' if n else '–'} |")
        w("")

    # ---- machine and commands
    w("## Machine")
    w("")
    w(f"Kernel `{m.get('uname_r')}`; `{m.get('uname_a')}`. Load average at the start {m.get('loadavg_at_start')}, "
      f"at the end {m.get('loadavg_at_end', '–')}.")
    w("")
    w("```")
    w(m.get("lscpu", ""))
    w("```")
    w("")
    w("```")
    w(m.get("free_h", ""))
    w("```")
    w("")
    w("## Exact commands")
    w("")
    w(f"The whole run: `{man['command']}` (it builds `ringgate` with `cargo build --release --bin ringgate` in "
      f"`{man['options'].get('ringgate_target_dir')}` and the load generator with `cargo build --release -p ringgate-loadgen` in "
      f"`{man['options'].get('loadgen_target_dir')}`, then runs `bench/showcase.py`). Per scenario, a fresh gateway, then the "
      "load generator from the repository root (the port and PID are the ones of that run):")
    w("")
    w("| scenario | gateway command | load generator command |")
    w("|---|---|---|")
    for s in scen:
        if s.e.get("outcome") == "skipped":
            continue
        srv = s.e.get("server_cmd", "").replace(os.path.dirname(man["binaries"]["ringgate"]["path"]) + "/", "")
        lg = s.e.get("loadgen_cmd", "").replace(os.path.dirname(man["binaries"]["ringgate-loadgen"]["path"]) + "/", "")
        w(f"| {s.name} | `{srv}` | `{lg}` |")
    w("")
    w(f"Binaries: ringgate sha256 `{man['binaries']['ringgate']['sha256'][:16]}…`, ringgate-loadgen sha256 "
      f"`{man['binaries']['ringgate-loadgen']['sha256'][:16]}…`. Logs of every gateway and load generator: "
      f"[`{rel(run_dir)}/logs/`]({rel(run_dir)}/logs/).")
    w("")

    # ---- other runs beside this one
    sc_root = os.path.dirname(run_dir)
    others = []
    for d in sorted(os.listdir(sc_root)) if os.path.isdir(sc_root) else []:
        od = os.path.join(sc_root, d)
        if od == run_dir or not os.path.exists(os.path.join(od, "manifest.json")):
            continue
        try:
            om = json.load(open(os.path.join(od, "manifest.json")))
            osc = [Scenario(e, od) for e in om["scenarios"]]
        except (OSError, ValueError, KeyError):
            continue
        if om.get("quick"):
            continue
        others.append((d, om, osc))
    if others:
        w("## Other showcase runs")
        w("")
        w("Raw JSON kept beside this run's, each in its own directory with its manifest; the gateway was built "
          "from the commit named. Partial runs (`--only`) have only some of the columns. The RSS column is the "
          "worst peak RSS / stored exposition among the runs at 1,000 nodes or more that passed, as in the "
          "RSS target above.")
        w("")
        w("| run | built from | scenarios | ringgate 1,000 nodes: success, p99, peak RSS | spike: max, peak RSS | "
          "worst RSS ratio (≥ 1,000 nodes) | largest passing scale | small pushes/s, one in flight |")
        w("|---|---|---|---|---|---:|---:|---:|")
        for d, om, osc in others:
            od = os.path.join(sc_root, d)
            def one(group, nodes=None):
                return next((x for x in osc if x.ok and x.group == group and (nodes is None or x.nodes == nodes)), None)
            r1k, spk = one("ringgate", 1000), one("spike")
            sm = next((x for x in osc if x.ok and x.group == "small" and x.gw == "ringgate" and x.pipeline == 1), None)
            passing = [x for x in osc if x.ok and x.gw == "ringgate" and x.group in ("ringgate", "breaking", "spike")
                       and x.rep["successes"] == x.rep["pushes"] and (x.lat("p99") or 1e9) <= 1.0]
            bp = max([x.nodes for x in passing if x.group != "spike"] or [0])
            ratios = [x.srv["peak_rss_bytes"] / stored_bytes(x.rep) for x in osc
                      if x.ok and x.gw == "ringgate" and (x.nodes or 0) >= 1000 and x.srv.get("peak_rss_bytes")
                      and stored_bytes(x.rep) and (x.group != "breaking" or x in passing)]
            groups = sorted({x.group for x in osc if x.ok})
            w(f"| [{d}]({rel(od)}/) | {om.get('git', {}).get('built_from', '?')} | {', '.join(groups)} | "
              + (f"{f_pct(r1k.rep['success_rate'])}, {f_s(r1k.lat('p99'))}, {f_bytes(r1k.srv.get('peak_rss_bytes'))}" if r1k else "–")
              + " | " + (f"{f_s(spk.lat('max'))}, {f_bytes(spk.srv.get('peak_rss_bytes'))}" if spk else "–")
              + f" | {(format(max(ratios), '.2f') + '×') if ratios else '–'} | {bp:,} | "
              f"{format(sm.rep['pushes_per_s'], ',.0f') if sm else '–'} |")
        w("")

    prof = os.path.join(out_dir, "profiles")
    if os.path.isdir(prof):
        w("## Profiles")
        w("")
        w("`perf stat -e instructions` is *not supported* on this VM (no PMU), so the CPU profiles are callgrind "
          "(user-space instruction counts) plus the user/system CPU split from `/proc/PID/stat`; the memory profile "
          "asks glibc for its arena statistics through gdb. Each directory has its commands, raw outputs and a README:")
        w("")
        for d in sorted(os.listdir(prof)):
            readme = os.path.join(prof, d, "README.md")
            if os.path.exists(readme):
                w(f"- [`profiles/{d}/`](profiles/{d}/README.md) — " + open(readme).readline().lstrip("# ").strip())
        w("")
    if missing:
        print(f"report: notes refer to unknown facts: {sorted(missing)}", file=sys.stderr)
    with open(out_path, "w") as f:
        f.write("\n".join(L))

    # ---- charts
    def ch(name, svg):
        with open(os.path.join(charts_dir, name), "w") as f:
            f.write(svg)

    series_s, series_p = [], []
    for gw, runs in ladder.items():
        pts = [(s.nodes, s.rep["success_rate"] * 100) for s in runs]
        if gw == "ringgate":
            pts += [(s.nodes, s.rep["success_rate"] * 100) for s in breaking if s.ok]
        if pts:
            series_s.append({"label": GW_LABEL[gw], "color": GW_COLOR[gw], "points": pts})
            series_p.append({"label": GW_LABEL[gw], "color": GW_COLOR[gw],
                             "points": [(s.nodes, s.lat("p99")) for s in runs if s.lat("p99")]
                             + ([(s.nodes, s.lat("p99")) for s in breaking if s.ok and s.lat("p99")] if gw == "ringgate" else [])})
    note = (f"{man.get('started_utc', '')[:10]}; {opt.get('cycles')} × {f_dur(opt.get('cycle_s'))} cycles, "
            f"0–{f_dur(opt.get('jitter_s'))} jitter; {'quick run; ' if man.get('quick') else ''}"
            "generator on the same 2 CPUs")
    ch("success_vs_nodes.svg", svg_chart("Push success rate against node count", series_s, "nodes (log scale)",
                                         "pushes that succeeded", xlog=True, yunit="%", ymin=0, ymax=100, note=note))
    ch("p99_vs_nodes.svg", svg_chart("p99 push latency against node count", series_p, "nodes (log scale)",
                                     "p99 latency (log scale)", xlog=True, ylog=True, yunit="s",
                                     hlines=[(1.0, "target 1 s", "#555"), (30.0, "client timeout 30 s", "#999")], note=note))
    rss_series = []
    for gw, runs in ladder.items():
        allr = runs + ([s for s in breaking if s.ok] if gw == "ringgate" else [])
        pts = [(s.nodes, s.srv["peak_rss_bytes"] / 1e9) for s in allr if s.srv.get("peak_rss_bytes")]
        if pts:
            rss_series.append({"label": f"{GW_LABEL[gw]} peak RSS", "color": GW_COLOR[gw], "points": pts})
    expo = sorted({(s.nodes, stored_bytes(s.rep) / 1e9) for s in ladder["ringgate"] + [b for b in breaking if b.ok]
                   if stored_bytes(s.rep)})
    if expo:
        rss_series.append({"label": "ringgate stored exposition", "color": "#555", "dash": "5 4", "marker": "none",
                           "points": expo})
        rss_series.append({"label": "1.5 × stored exposition (target)", "color": "#999", "dash": "2 3", "marker": "none",
                           "points": [(n, 1.5 * b) for n, b in expo]})
    ch("rss_vs_nodes.svg", svg_chart("Gateway peak RSS against node count", rss_series, "nodes (log scale)",
                                     "GB (log scale)", xlog=True, ylog=True, note=note + "; a run killed by the RAM guard: RSS at the kill"))
    sc_series = []
    for gw in ("ringgate", "official", "official-nocheck"):
        for gz in (False, True):
            pts = []
            for s in stress:
                if s.gw != gw:
                    continue
                plain = [p for p in s.rep.get("probes", []) if not p.get("gzip") and p.get("status") == 200]
                for p in s.rep.get("probes", []):
                    if bool(p.get("gzip")) != gz or p.get("status") != 200:
                        continue
                    if gz:
                        ref = min(plain, key=lambda q: abs(q["t"] - p["t"]), default=None)
                        if not ref:
                            continue
                        x = ref["bytes"]
                    else:
                        x = p["bytes"]
                    if x > 0:
                        pts.append((x, max(p["seconds"], 1e-3)))
            if pts:
                sc_series.append({"label": f"{GW_LABEL[gw]}, {'gzip' if gz else 'plain'}", "color": GW_COLOR[gw],
                                  "points": pts, "line": False, "marker": "square" if gz else "circle", "r": 3})
    ch("scrape_vs_store.svg", svg_chart("/metrics scrape time against store size", sc_series,
                                        "stored exposition (log scale)", "time to last byte (log scale)", xlog=True,
                                        ylog=True, xunit="B", yunit="s",
                                        hlines=[(10.0, "Prometheus' default scrape timeout 10 s", "#555")],
                                        note="circles: plain; squares: gzip; only scrapes answered 200"))
    if sk:
        ser = sk.rep.get("series", [])
        sb = stored_bytes(sk.rep)
        ch("soak_rss.svg", svg_chart(f"Soak, {sk.nodes:,} nodes: server RSS over time",
                                     [{"label": "ringgate RSS", "color": GW_COLOR["ringgate"], "marker": "none",
                                       "points": [(p["t"] / 60, p["rss_bytes"] / 1e9) for p in ser if p.get("rss_bytes")]}],
                                     "minutes", "RSS (GB)", ymin=0,
                                     hlines=[(sb / 1e9, "stored exposition at the end", "#555"),
                                             (1.5 * sb / 1e9, "1.5 × stored exposition (target)", "#999")] if sb else []))
        ch("soak_p99.svg", svg_chart(f"Soak, {sk.nodes:,} nodes: p99 push latency per 10 s window",
                                     [{"label": "ringgate window p99", "color": GW_COLOR["ringgate"], "marker": "none",
                                       "points": [(p["t"] / 60, p["window_p99_s"]) for p in ser if p.get("window_p99_s")]}],
                                     "minutes", "p99 (log scale)", ylog=True, yunit="s",
                                     hlines=[(1.0, "target 1 s", "#555")]))
    print(f"report: wrote {out_path} and {charts_dir}/", file=sys.stderr)


if __name__ == "__main__":
    main()
