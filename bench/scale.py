#!/usr/bin/env python3
"""Messenger scale and cost model (standard library only).

Turns the seed's load and the per-route request counts in bench/counts.json into requests/s,
DynamoDB capacity units, PostToConnection calls, storage, the AWS quotas to raise, a cell plan,
and dollars. docs/scale.md explains every assumption; re-run it when counts.json changes:

    python3 bench/scale.py                      # markdown report (what docs/scale.md quotes)
    python3 bench/scale.py --json               # the same numbers as JSON
    python3 bench/scale.py --peak-factor 2 --cell-connections 10e6 --counts other.json
    python3 bench/scale.py --compare bench/counts-before.json   # before/after table first
"""
import argparse
import json
import math
import pathlib

# The seed (issue 7 / DESIGN.md §9).
SEED = {
    "dau": 500e6,
    "messages_per_user_day": 40,
    "body_bytes": 100,
    "concurrent_connections": 500e6,
    "retention_years": 5,
}

# Assumptions: each is stated in docs/scale.md; change them here or on the command line.
ASSUMPTIONS = {
    # Peak-hour rate over the daily average (a global user base flattens the diurnal curve;
    # 3x leaves room for evening peaks and events). Applied to messages and acks.
    "peak_factor": 3.0,
    # Live connections of the recipient per message: the seed has as many connections as DAU.
    "recipient_connections": 1.0,
    # The sender's other live devices (each gets a copy); the seed's 1 connection/user leaves ~0.
    "sender_other_connections": 0.0,
    # Ack frames per message (delivered; read receipts coalesced into the same pointer move).
    "acks_per_message": 1.0,
    # Heartbeat every 9 minutes per connection (API Gateway closes after 10 idle minutes).
    # Counted for every connection: with 40 messages/day a socket is idle almost all the time.
    "heartbeat_interval_s": 540,
    # Connection lifetime: API Gateway's 2 h maximum. Real mobile sessions are shorter, which
    # means more churn: this is the least churn the seed allows.
    "connection_lifetime_s": 7200,
    # Share of messages sent to 10-member groups (counts: group_send_10, and one group_ack_10
    # per recipient and ack); the seed does not say, so the baseline has none.
    "group_message_fraction": 0.0,
    # Share of messages whose recipient has no live connection and gets an SNS push.
    "offline_push_fraction": 0.10,
    # Stored bytes per message: the message item (body, keys, sender, client_msg_id, sent_at,
    # TTL) plus DynamoDB's 100 bytes of per-item overhead. Idempotency items expire after 7
    # days (KEY_WINDOW): a steady ~28-49 TB at the seed, not counted here (docs/scale.md).
    "stored_bytes_per_message": 350 + 100,
    # Connections per cell (one AWS account + region, see the cell plan).
    "cell_connections": 5e6,
    "regions": 4,
}

# AWS list prices, us-east-1, USD (checked for docs/scale.md; update together).
PRICES = {
    "apigw_message_per_million": 1.00,  # WebSocket messages, first 1B/month (later tiers cheaper)
    "apigw_connection_minute_per_million": 0.25,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request_per_million": 0.20,
    "dynamodb_wru_per_million": 0.625,  # on-demand, after the November 2024 price cut
    "dynamodb_rru_per_million": 0.125,
    "dynamodb_storage_gb_month": 0.25,
    "sns_mobile_push_per_million": 0.50,
    "s3_standard_ia_gb_month": 0.0125,  # only for the archive-tier alternative
}

# Default quotas (per account and region) the design has to live with.
QUOTAS = {
    "apigw_new_connections_per_s": 500,
    "apigw_account_rps": 10_000,
    "lambda_concurrency": 1_000,
    "dynamodb_table_max_rru_or_wru_per_s": 40_000,
}

DAY = 86_400


def units(op):
    """(RRU, WRU) one request of this op consumes: as measured ('rru'/'wru'), or from its item
    sizes ('bytes'/'items_bytes') for a hand-written estimate."""
    if "rru" in op or "wru" in op:
        return float(op.get("rru", 0)), float(op.get("wru", 0))
    kind = op["op"]
    if kind in ("GetItem", "Query", "Scan", "BatchGetItem"):
        rru = math.ceil(op["bytes"] / 4096) * (1.0 if op.get("consistent") else 0.5)
        return rru, 0.0
    if kind == "TransactGetItems":
        return sum(2 * math.ceil(b / 4096) for b in op["items_bytes"]), 0.0
    if kind == "TransactWriteItems":
        return 0.0, sum(2 * math.ceil(b / 1024) for b in op["items_bytes"])
    if kind in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
        return 0.0, sum(math.ceil(b / 1024) for b in op["items_bytes"])
    raise ValueError(f"unknown DynamoDB operation {kind}")


GROUP_SIZE = 10  # the group size whose send and ack are both measured (counts.json)
MESSAGE_ROUTES = ("send_1to1", "ack", "group_send_10", "group_ack_10")


def route_rates(a, messages_per_s):
    """Average invocations/s of each route."""
    conns = SEED["concurrent_connections"]
    direct = messages_per_s * (1 - a["group_message_fraction"])
    group = messages_per_s * a["group_message_fraction"]
    rates = {
        "send_1to1": direct,
        "ack": direct * a["acks_per_message"],
        "heartbeat": conns / a["heartbeat_interval_s"],
        "connect": conns / a["connection_lifetime_s"],
    }
    if group:
        rates["group_send_10"] = group
        # Every recipient acks, and each ack fans a receipt out to the whole group.
        rates["group_ack_10"] = group * (GROUP_SIZE - 1) * a["acks_per_message"]
    return rates


def posts_per_invocation(c, a):
    """PostToConnection calls of one invocation of a route."""
    p = c["posts"]
    return (p["reply"]
            + p["per_recipient_connection"] * c.get("recipients", 1) * a["recipient_connections"]
            + p["per_sender_other_connection"] * a["sender_other_connections"])


def per_message(counts, a, p):
    """What one message costs by conversation kind: its send plus every recipient's ack."""
    routes = counts["routes"]
    kinds = {
        "1:1": ("send_1to1", "ack", 1),
        "group of 10": ("group_send_10", "group_ack_10", GROUP_SIZE - 1),
        "group of 256": ("group_send_256", "group_ack_256" if "group_ack_256" in routes else None,
                         255),
    }
    out = {}
    for kind, (send, ack, acks) in kinds.items():
        parts = [(routes[send], 1.0)]
        if ack:
            parts.append((routes[ack], acks * a["acks_per_message"]))
        else:
            kind += " (send only; acks not measured)"
        req = rru = wru = posts = frames = lambda_gb_s = invocations = 0.0
        for c, n in parts:
            for op in c["dynamodb"]:
                r, w = units(op)
                req += op["count"] * n
                rru += r * op["count"] * n
                wru += w * op["count"] * n
            posts += posts_per_invocation(c, a) * n
            frames += c["client_frames_in"] * n
            invocations += n
            lambda_gb_s += n * c["lambda_ms"] / 1000 * c["lambda_mb"] / 1024
        usd = ((frames + posts) * p["apigw_message_per_million"] / 1e6
               + invocations * p["lambda_request_per_million"] / 1e6
               + lambda_gb_s * p["lambda_gb_second_arm64"]
               + wru * p["dynamodb_wru_per_million"] / 1e6
               + rru * p["dynamodb_rru_per_million"] / 1e6)
        out[kind] = {"dynamodb_requests": req, "rru": rru, "wru": wru, "posts": posts,
                     "apigw_messages": frames + posts, "usd_per_million": usd * 1e6}
    return out


def model(counts, a, p):
    messages_per_day = SEED["dau"] * SEED["messages_per_user_day"]
    messages_per_s = messages_per_day / DAY
    rates = route_rates(a, messages_per_s)
    # Message-driven routes peak with traffic; connection-driven ones are set by the (already
    # peak) concurrent connection count.
    peak = {r: a["peak_factor"] if r in MESSAGE_ROUTES else 1.0 for r in rates}
    routes = {}
    for name, rate in rates.items():
        c = counts["routes"][name]
        invocations = rate * c.get("lambda_invocations", 1)
        rru = wru = ddb_requests = 0.0
        for op in c["dynamodb"]:
            r, w = units(op)
            rru += r * op["count"] * rate
            wru += w * op["count"] * rate
            ddb_requests += op["count"] * rate
        posts = rate * posts_per_invocation(c, a)
        frames_in = rate * c["client_frames_in"]
        routes[name] = {
            "per_s": rate,
            "peak_per_s": rate * peak[name],
            "lambda_invocations_per_s": invocations,
            "lambda_gb_s_per_s": invocations * c["lambda_ms"] / 1000 * c["lambda_mb"] / 1024,
            "lambda_concurrency": invocations * c["lambda_ms"] / 1000,
            "dynamodb_requests_per_s": ddb_requests,
            "rru_per_s": rru,
            "wru_per_s": wru,
            "posts_per_s": posts,
            "apigw_messages_per_s": frames_in + posts,
            "peak": peak[name],
        }

    def total(key, peak_=False):
        return sum(r[key] * (r["peak"] if peak_ else 1) for r in routes.values())

    stored_per_day = messages_per_day * a["stored_bytes_per_message"]
    retention_days = SEED["retention_years"] * 365
    storage = {
        "raw_body_bytes_per_day": messages_per_day * SEED["body_bytes"],
        "stored_bytes_per_day": stored_per_day,
        "stored_bytes_after_1_year": stored_per_day * 365,
        "stored_bytes_steady_state": stored_per_day * retention_days,
    }
    gb = 1e9
    month_days = 365 / 12
    cost_per_day = {
        "apigw_messages": total("apigw_messages_per_s") * DAY / 1e6 * p["apigw_message_per_million"],
        "apigw_connection_minutes": SEED["concurrent_connections"] * 1440 / 1e6
        * p["apigw_connection_minute_per_million"],
        "lambda_requests": total("lambda_invocations_per_s") * DAY / 1e6 * p["lambda_request_per_million"],
        "lambda_duration": total("lambda_gb_s_per_s") * DAY * p["lambda_gb_second_arm64"],
        "dynamodb_writes": total("wru_per_s") * DAY / 1e6 * p["dynamodb_wru_per_million"],
        "dynamodb_reads": total("rru_per_s") * DAY / 1e6 * p["dynamodb_rru_per_million"],
        "sns_push": messages_per_s * a["offline_push_fraction"] * DAY / 1e6 * p["sns_mobile_push_per_million"],
        "dynamodb_storage_year_1": storage["stored_bytes_after_1_year"] / gb
        * p["dynamodb_storage_gb_month"] / month_days,
        "dynamodb_storage_year_5": storage["stored_bytes_steady_state"] / gb
        * p["dynamodb_storage_gb_month"] / month_days,
    }
    # Alternative: keep 90 days in DynamoDB, archive the rest to S3 Standard-IA.
    hot = stored_per_day * 90
    cost_per_day["storage_tiered_year_5"] = (
        hot / gb * p["dynamodb_storage_gb_month"]
        + (storage["stored_bytes_steady_state"] - hot) / gb * p["s3_standard_ia_gb_month"]
    ) / month_days

    # Per message: only what sending and acking one message costs (marginal) ...
    marginal = 0.0
    for r in (r for r in MESSAGE_ROUTES if r in routes):
        x = routes[r]
        marginal += (
            x["apigw_messages_per_s"] * p["apigw_message_per_million"] / 1e6
            + x["lambda_invocations_per_s"] * p["lambda_request_per_million"] / 1e6
            + x["lambda_gb_s_per_s"] * p["lambda_gb_second_arm64"]
            + x["wru_per_s"] * p["dynamodb_wru_per_million"] / 1e6
            + x["rru_per_s"] * p["dynamodb_rru_per_million"] / 1e6
        )
    marginal = marginal / messages_per_s + a["offline_push_fraction"] * p["sns_mobile_push_per_million"] / 1e6
    running = sum(v for k, v in cost_per_day.items() if not k.startswith(("dynamodb_storage", "storage_")))
    all_in_y5 = running + cost_per_day["dynamodb_storage_year_5"]

    cells = math.ceil(SEED["concurrent_connections"] / a["cell_connections"])
    peak_apigw_rps = total("apigw_messages_per_s", True)
    needs = {
        "apigw_new_connections_per_s": routes["connect"]["per_s"],
        "apigw_account_rps": peak_apigw_rps,
        "lambda_concurrency": total("lambda_concurrency", True),
        "dynamodb_table_max_rru_or_wru_per_s": max(total("rru_per_s", True), total("wru_per_s", True)),
    }
    return {
        "inputs": {"seed": SEED, "assumptions": a, "prices_us_east_1": p, "default_quotas": QUOTAS,
                   "counts_measured": counts.get("measured", False), "counts_source": counts.get("source")},
        "messages_per_day": messages_per_day,
        "messages_per_s": {"average": messages_per_s, "peak": messages_per_s * a["peak_factor"]},
        "routes": routes,
        "totals_per_s": {
            k: {"average": total(k), "peak": total(k, True)}
            for k in ("lambda_invocations_per_s", "dynamodb_requests_per_s", "rru_per_s", "wru_per_s",
                      "posts_per_s", "apigw_messages_per_s", "lambda_concurrency")
        },
        "storage": storage,
        "cost_per_day_usd": cost_per_day,
        "cost_per_day_total_usd": {"year_1": running + cost_per_day["dynamodb_storage_year_1"],
                                   "year_5": all_in_y5},
        "usd_per_million_messages": {
            "marginal_send_and_ack": marginal * 1e6,
            "all_in_year_5": all_in_y5 / (messages_per_day / 1e6),
        },
        "per_message_by_kind": per_message(counts, a, p),
        "quotas": {
            k: {"default": QUOTAS[k], "system_needs": v, "per_cell_needs": v / cells,
                "raise_needed_per_cell": v / cells > QUOTAS[k]}
            for k, v in needs.items()
        },
        "cells": {"count": cells, "connections_per_cell": a["cell_connections"],
                  "per_region": cells / a["regions"]},
    }


def si(x):
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def size(b):
    for unit, div in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if b >= div:
            return f"{b / div:.3g} {unit}"
    return f"{b:.0f} B"


def markdown(m):
    out = []
    w = out.append
    status = "measured" if m["inputs"]["counts_measured"] else "ESTIMATED (to be replaced by measured counts)"
    w(f"Per-route counts: {status}; source: {m['inputs']['counts_source']}.\n")
    w(f"Messages: {si(m['messages_per_day'])}/day = {si(m['messages_per_s']['average'])}/s average, "
      f"{si(m['messages_per_s']['peak'])}/s peak (x{m['inputs']['assumptions']['peak_factor']}).\n")
    w("| route | avg /s | peak /s | Lambda conc. (peak) | DynamoDB req/s | RRU/s | WRU/s | PostToConnection/s | API GW msgs/s |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in m["routes"].items():
        w(f"| {name} | {si(r['per_s'])} | {si(r['peak_per_s'])} | {si(r['lambda_concurrency'] * r['peak'])} | "
          f"{si(r['dynamodb_requests_per_s'])} | {si(r['rru_per_s'])} | {si(r['wru_per_s'])} | "
          f"{si(r['posts_per_s'])} | {si(r['apigw_messages_per_s'])} |")
    t = m["totals_per_s"]
    w(f"| **total (avg)** | | | {si(t['lambda_concurrency']['average'])} | {si(t['dynamodb_requests_per_s']['average'])} | "
      f"{si(t['rru_per_s']['average'])} | {si(t['wru_per_s']['average'])} | {si(t['posts_per_s']['average'])} | "
      f"{si(t['apigw_messages_per_s']['average'])} |")
    w(f"| **total (peak)** | | | {si(t['lambda_concurrency']['peak'])} | {si(t['dynamodb_requests_per_s']['peak'])} | "
      f"{si(t['rru_per_s']['peak'])} | {si(t['wru_per_s']['peak'])} | {si(t['posts_per_s']['peak'])} | "
      f"{si(t['apigw_messages_per_s']['peak'])} |\n")
    s = m["storage"]
    w(f"Storage: raw bodies {size(s['raw_body_bytes_per_day'])}/day; stored (DynamoDB items) "
      f"{size(s['stored_bytes_per_day'])}/day, {size(s['stored_bytes_after_1_year'])} after 1 year, "
      f"{size(s['stored_bytes_steady_state'])} at the 5-year steady state.\n")
    w("| cost item | $/day |")
    w("|---|---:|")
    for k, v in m["cost_per_day_usd"].items():
        w(f"| {k} | {v:,.0f} |")
    c = m["cost_per_day_total_usd"]
    w(f"| **total, year 1 (storage of 1 year)** | **{c['year_1']:,.0f}** |")
    w(f"| **total, year 5 (storage of 5 years)** | **{c['year_5']:,.0f}** |\n")
    u = m["usd_per_million_messages"]
    w(f"$/1M messages: marginal (send + ack, incl. SNS share) ${u['marginal_send_and_ack']:.2f}; "
      f"all-in at year 5 (connections, heartbeats, churn, storage) ${u['all_in_year_5']:.2f}.\n")
    w("Per message by conversation kind (its send, plus one delivered ack per recipient; "
      "each recipient with one live connection):\n")
    w("| kind | DynamoDB requests | RRU | WRU | PostToConnection | API GW msgs | $/1M messages (marginal) |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for kind, k in m["per_message_by_kind"].items():
        w(f"| {kind} | {k['dynamodb_requests']:,.0f} | {k['rru']:,.1f} | {k['wru']:,.0f} | "
          f"{k['posts']:,.0f} | {k['apigw_messages']:,.0f} | {k['usd_per_million']:,.2f} |")
    w("")
    cells = m["cells"]
    w(f"Cells: {cells['count']} cells of {si(cells['connections_per_cell'])} connections "
      f"(~{cells['per_region']:.0f} per region over {m['inputs']['assumptions']['regions']} regions).\n")
    w("| quota (per account and region) | default | whole system needs | per cell needs | raise per cell? |")
    w("|---|---:|---:|---:|---|")
    for k, q in m["quotas"].items():
        w(f"| {k} | {si(q['default'])} | {si(q['system_needs'])} | {si(q['per_cell_needs'])} | "
          f"{'yes' if q['raise_needed_per_cell'] else 'no'} |")
    return "\n".join(out)


# The targets of issue 18, per million messages (marginal) and per day (year 1).
TARGETS = {"1:1": 7.0, "group of 10": 30.0, "group of 256": None, "seed_per_day": 400_000.0}


def compare(before, after):
    """A markdown table: the same model on the counts before and after, side by side."""
    out = ["| | before | after | target |", "|---|---:|---:|---:|"]
    kb, ka = before["per_message_by_kind"], after["per_message_by_kind"]
    for kind in ka:
        b = next((v for k, v in kb.items() if k.split(" (")[0] == kind.split(" (")[0]), None)
        a = ka[kind]
        target = TARGETS.get(kind.split(" (")[0])
        label = f"$/1M messages, {kind} (send + every recipient's delivered ack)"
        out.append(f"| {label} | {b['usd_per_million']:,.2f} | {a['usd_per_million']:,.2f} | "
                   f"{'≤ %.0f' % target if target else '—'} |")
        out.append(f"| … DynamoDB requests / API Gateway messages per message | "
                   f"{b['dynamodb_requests']:,.0f} / {b['apigw_messages']:,.0f} | "
                   f"{a['dynamodb_requests']:,.0f} / {a['apigw_messages']:,.0f} | |")
    ub, ua = before["usd_per_million_messages"], after["usd_per_million_messages"]
    out.append(f"| $/1M messages, the seed's mix (marginal: send + ack) | "
               f"{ub['marginal_send_and_ack']:,.2f} | {ua['marginal_send_and_ack']:,.2f} | |")
    cb, ca = before["cost_per_day_total_usd"], after["cost_per_day_total_usd"]
    out.append(f"| the seed's $/day, year 1 | {cb['year_1']:,.0f} | {ca['year_1']:,.0f} | "
               f"≤ {TARGETS['seed_per_day']:,.0f} |")
    out.append(f"| the seed's $/day, year 5 | {cb['year_5']:,.0f} | {ca['year_5']:,.0f} | |")
    for item in after["cost_per_day_usd"]:
        out.append(f"| … {item} ($/day) | {before['cost_per_day_usd'][item]:,.0f} | "
                   f"{after['cost_per_day_usd'][item]:,.0f} | |")
    tb, ta = before["totals_per_s"], after["totals_per_s"]
    for key, label in (("lambda_invocations_per_s", "Lambda invocations/s (avg)"),
                       ("dynamodb_requests_per_s", "DynamoDB requests/s (avg)"),
                       ("wru_per_s", "WRU/s (avg)"),
                       ("apigw_messages_per_s", "API Gateway messages/s (avg)")):
        out.append(f"| {label} | {si(tb[key]['average'])} | {si(ta[key]['average'])} | |")
    return "\n".join(out)


def main():
    here = pathlib.Path(__file__).parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default=str(here / "counts.json"))
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--apigw-message-per-million", type=float,
                    default=PRICES["apigw_message_per_million"],
                    help="API Gateway price per million WebSocket messages (AWS bills $0.80 "
                         "above 1B messages a month)")
    ap.add_argument("--compare", metavar="BEFORE.json",
                    help="first print a before/after table against these counts")
    for k, v in ASSUMPTIONS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=float, default=v)
    args = ap.parse_args()
    counts = json.loads(pathlib.Path(args.counts).read_text())
    a = {k: getattr(args, k) for k in ASSUMPTIONS}
    prices = {**PRICES, "apigw_message_per_million": args.apigw_message_per_million}
    m = model(counts, a, prices)
    if args.compare and not args.json:
        before = model(json.loads(pathlib.Path(args.compare).read_text()), a, prices)
        print(f"Before ({pathlib.Path(args.compare).name}) and after "
              f"({pathlib.Path(args.counts).name}), same model and prices:\n")
        print(compare(before, m))
        print()
    print(json.dumps(m, indent=2) if args.json else markdown(m))


if __name__ == "__main__":
    main()
