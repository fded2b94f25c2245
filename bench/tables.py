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


def p50_p99(r, key):
    l = r["latency_ms"][key]
    return f'{l["p50"]:.2f} / {l["p99"]:.2f}'


def per_msg(r, key):
    d = r.get("dynamodb")
    return f'{d[key]:.1f}' if d and d.get(key) is not None else "-"


def stores(runs):
    """store-memory-<n>-<load> next to store-dynamodb-<n>-<load>."""
    pairs = [(n, runs.get("store-dynamodb-" + n[len("store-memory-"):]))
             for n in runs if n.startswith("store-memory-")]
    pairs = [(n, d) for n, d in pairs if d]
    if not pairs:
        return
    print("\n### Embedded gateway: in-memory vs DynamoDB (MiniStack)\n")
    print("| conns | load | store | sent (acked)/s | delivered/s | send→sent ms p50 / p99 "
          "| send→message ms p50 / p99 | lost | dup | CPU % | CPU µs/msg | DynamoDB req/msg | WCU/msg | peak RSS MiB |")
    print("|---:|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, d in pairs:
        load_ = name.split("-", 3)[3]
        for store, r in (("memory", runs[name]), ("dynamodb", d)):
            t, m, p = r["throughput"], r["messages"], r["process"]
            cpu_us = p["cpu_us_per_delivered"]
            print(f'| {r["run"]["connections"]} | {load_} | {store} | {t["acked_per_s"]:.0f} | '
                  f'{t["delivered_per_s"]:.0f} | {p50_p99(r, "send_to_sent")} | '
                  f'{p50_p99(r, "send_to_message")} | {m["lost"]} | {m["duplicated"]} | '
                  f'{p["cpu_percent"]:.0f} | {cpu_us or 0:.0f} | {per_msg(r, "requests_per_message")} | '
                  f'{per_msg(r, "write_units_per_message")} | {p["peak_rss_mib"]:.0f} |')


def groups(runs):
    """group<G>-<store>-<n>-<load> runs."""
    names = [n for n in runs if n.startswith("group")]
    if not names:
        return
    print("\n### Groups\n")
    print("| run | conns | group size | sent (acked)/s | delivered/s | send→sent ms p50 / p99 "
          "| send→message ms p50 / p99 | expected deliveries | lost | dup | seq gaps | DynamoDB req/msg | CPU µs/delivery |")
    print("|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        r = runs[name]
        t, m, p = r["throughput"], r["messages"], r["process"]
        size = r["run"]["topology"].get("groups", {}).get("size", "?") if isinstance(r["run"]["topology"], dict) else "?"
        print(f'| {name} | {r["run"]["connections"]} | {size} | {t["acked_per_s"]:.0f} | '
              f'{t["delivered_per_s"]:.0f} | {p50_p99(r, "send_to_sent")} | {p50_p99(r, "send_to_message")} | '
              f'{m["expected_deliveries"]} | {m["lost"]} | {m["duplicated"]} | {m["seq_gaps"]} | '
              f'{per_msg(r, "requests_per_message")} | {p["cpu_us_per_delivered"] or 0:.0f} |')


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
    stores(runs)
    groups(runs)
    bad = [n for n, r in runs.items() if not r["ok"]]
    print("\nAll runs: 0 lost, 0 duplicated, 0 seq gaps." if not bad
          else f"\nRuns with lost/duplicated/mis-sequenced messages: {', '.join(bad)}")


if __name__ == "__main__":
    main()
