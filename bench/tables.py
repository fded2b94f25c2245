#!/usr/bin/env python3
"""Markdown tables from messenger-bench JSON results (standard library only).

usage: bench/tables.py RESULTS_DIR
"""
import json
import pathlib
import re
import statistics
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


def targets(runs):
    """Issue 18's runs: <target>-1000-window1-r<k> and <target>-1000-rate<R>-r<k>, per round."""
    rounds = sorted({m.group(1) for n in runs
                     if (m := re.fullmatch(r"embedded-1000-window1-r(\d+)", n))}, key=int)
    if not rounds:
        return
    rates = sorted({m.group(1) for n in runs
                    if (m := re.fullmatch(r"embedded-1000-rate(\d+)-r\d+", n))})
    rate = rates[0] if rates else None
    print("\n### Issue 18's targets: 1,000 connections, embedded vs reference, round by round\n")
    print("Closed loop (window 1): capacity and CPU per message; open loop at "
          f"{rate or '?'} sends/s: p99 send→message. Targets: capacity ratio ≥ 0.80, "
          "CPU ratio ≤ 1.5×, embedded p99 ≤ 1 ms.\n")
    print("| round | capacity msg/s embedded / reference | capacity ratio | CPU µs/msg embedded / "
          "reference | CPU ratio | p99 send→message ms embedded / reference | CPU µs/msg at "
          "the rate, embedded / reference | load (closed / open) |")
    print("|---:|---|---:|---|---:|---|---|---|")
    caps, cpus, p99s = [], [], []
    for k in rounds:
        e, r = runs.get(f"embedded-1000-window1-r{k}"), runs.get(f"reference-1000-window1-r{k}")
        eo = runs.get(f"embedded-1000-rate{rate}-r{k}") if rate else None
        ro = runs.get(f"reference-1000-rate{rate}-r{k}") if rate else None
        if not (e and r and eo and ro):
            continue
        te, tr = e["throughput"]["delivered_per_s"], r["throughput"]["delivered_per_s"]
        ce, cr = e["process"]["cpu_us_per_delivered"], r["process"]["cpu_us_per_delivered"]
        pe, pr = eo["latency_ms"]["send_to_message"]["p99"], ro["latency_ms"]["send_to_message"]["p99"]
        oe, orr = eo["process"]["cpu_us_per_delivered"], ro["process"]["cpu_us_per_delivered"]
        caps.append(te / tr)
        cpus.append(ce / cr)
        p99s.append(pe)
        load_c = e["machine"]["loadavg"].split()[0] + "–" + r["machine"]["loadavg"].split()[0]
        load_o = eo["machine"]["loadavg"].split()[0] + "–" + ro["machine"]["loadavg"].split()[0]
        print(f"| {k} | {te:.0f} / {tr:.0f} | {te / tr:.2f} | {ce:.0f} / {cr:.0f} | "
              f"{ce / cr:.2f}× | {pe:.2f} / {pr:.2f} | {oe:.0f} / {orr:.0f} | {load_c} / {load_o} |")
    if caps:
        print(f"| median | | **{statistics.median(caps):.2f}** | | **{statistics.median(cpus):.2f}×** "
              f"| **{statistics.median(p99s):.2f}** | | |")


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
    targets(runs)
    stores(runs)
    groups(runs)
    bad = [n for n, r in runs.items() if not r["ok"]]
    print("\nAll runs: 0 lost, 0 duplicated, 0 seq gaps." if not bad
          else f"\nRuns with lost/duplicated/mis-sequenced messages: {', '.join(bad)}")


if __name__ == "__main__":
    main()
