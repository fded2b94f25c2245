#!/usr/bin/env python3
"""Markdown tables from messenger-bench JSON results (standard library only).

usage: bench/tables.py RESULTS_DIR
"""
import json
import pathlib
import sys


def load(directory):
    runs = {}
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        runs[path.stem] = json.loads(path.read_text())
    return runs


def lat(r, key):
    l = r["latency_ms"][key]
    return f'{l["p50"]:.2f} / {l["p90"]:.2f} / {l["p99"]:.2f} / {l["max"]:.1f}'


def row(name, r):
    m, t, p = r["messages"], r["throughput"], r["process"]
    cpu_us = p["cpu_us_per_delivered"]
    return (
        f'| {name} | {r["run"]["connections"]} | {t["delivered_per_s"]:.0f} | '
        f'{lat(r, "send_to_sent")} | {lat(r, "send_to_message")} | '
        f'{m["lost"]} | {m["duplicated"]} | {p["cpu_percent"]:.0f} | '
        f'{cpu_us:.0f} | {p["peak_rss_mib"]:.0f} | {r["machine"]["loadavg"].split()[0]} |'
        if cpu_us is not None
        else f'| {name} | {r["run"]["connections"]} | 0 | - | - | {m["lost"]} | {m["duplicated"]} | - | - | - | - |'
    )


HEADER = (
    "| run | conns | delivered/s | send→sent ms p50/p90/p99/max | send→message ms p50/p90/p99/max "
    "| lost | dup | CPU % | CPU µs/msg | peak RSS MiB | load |\n"
    "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"
)


def main():
    runs = load(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    if not runs:
        sys.exit("no results")
    print("### All runs\n")
    print(HEADER)
    for name, r in runs.items():
        print(row(name, r))
    # Ratios: embedded / reference at the same size and load.
    print("\n### Embedded gateway vs reference (same size, same load)\n")
    print("| conns | load | delivered/s embedded | delivered/s reference | throughput ratio "
          "| CPU µs/msg embedded | CPU µs/msg reference | CPU ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, e in runs.items():
        if not name.startswith("embedded-"):
            continue
        ref = runs.get("reference-" + name[len("embedded-"):])
        if not ref:
            continue
        load_ = name.split("-", 2)[2]
        te, tr = e["throughput"]["delivered_per_s"], ref["throughput"]["delivered_per_s"]
        ce, cr = e["process"]["cpu_us_per_delivered"], ref["process"]["cpu_us_per_delivered"]
        print(f'| {e["run"]["connections"]} | {load_} | {te:.0f} | {tr:.0f} | '
              f'{te / tr if tr else 0:.2f} | {ce or 0:.0f} | {cr or 0:.0f} | '
              f'{(ce / cr) if ce and cr else 0:.1f}× |')
    bad = [n for n, r in runs.items() if not r["ok"]]
    print("\nAll runs: 0 lost, 0 duplicated, 0 seq gaps." if not bad
          else f"\nRuns with lost/duplicated/mis-sequenced messages: {', '.join(bad)}")


if __name__ == "__main__":
    main()
