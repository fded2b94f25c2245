#!/usr/bin/env bash
# Reproduces the tables of docs/benchmarks.md, loopback only, each target in-process with the
# load generator:
#   1. issue 18's targets, REPEAT times (default 5: one run varies ±15 % on a shared VM),
#      targets alternating: the embedded gateway (in-memory store) vs the raw reference server
#      at 1,000 connections, closed loop (window 1: capacity and CPU per message) and open
#      loop at TARGET_RATE (default 5,000) sends/s (latency);
#   2. the embedded gateway vs the reference at 100, 1,000 and 5,000 connections, a fixed
#      open-loop rate (RATE) and a closed loop, and two diagnostics of the reference;
#   3. opt-in (DynamoDB on MiniStack, which is slow: ~10 more minutes): the embedded gateway on
#      the in-memory store vs on DynamoDB (MiniStack, started and stopped here unless one is
#      already running from localstack/ministack) at DYNAMO_SIZES connections, and groups of
#      GROUP_SIZE members on both stores at GROUP_SIZES connections.
#
#   bench/run.sh                 # 1 and 2 (~8 minutes of runs after the build)
#   REPEAT=1 SIZES="" bench/run.sh                # only the issue's four runs
#   SIZES="100 1000" bench/run.sh
#   DYNAMO_SIZES="100 1000 5000" GROUP_SIZES=1000 bench/run.sh   # everything (~20 minutes)
#   OUT=/tmp/results bench/run.sh
#
# Results: one JSON file per run in $OUT (default bench/results), then the markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-5}         # rounds of the issue's runs (their medians are reported)
TARGET_RATE=${TARGET_RATE:-5000}  # the issue's open-loop rate at 1,000 connections
SIZES=${SIZES-"100 1000 5000"}
RATE=${RATE:-1000}          # open loop: total sends/s, the same at every size
DYNAMO_SIZES=${DYNAMO_SIZES-""}
# Open loop on both stores, well under MiniStack's capacity on this machine (~80 sends/s, 5
# DynamoDB requests each, closed loop, with other builds running); it queues past it.
DYNAMO_RATE=${DYNAMO_RATE:-50}
DYNAMO_DRAIN=${DYNAMO_DRAIN:-60}  # closed loop on MiniStack: 1,000 sends in flight take ~12 s
GROUP_SIZE=${GROUP_SIZE:-10}
GROUP_DYNAMO_RATE=${GROUP_DYNAMO_RATE:-20}  # a 10-member group send is 14 requests
GROUP_SIZES=${GROUP_SIZES-""}   # connections of the group runs (a multiple of GROUP_SIZE)
DURATION=${DURATION:-10}    # measured seconds
WARMUP=${WARMUP:-2}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"

# The `fast` profile (Cargo.toml): release at opt-level 3, for both targets alike.
if [ -z "${NO_BUILD:-}" ]; then cargo build --profile fast --locked -p messenger-bench; fi
BIN=target/fast/messenger-bench

# 5,000 connections with the server in-process need ~10,000 descriptors; the binary raises its
# soft limit up to the hard one, so only the hard limit matters.
echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn); nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"

# Closed-loop window per connection: enough requests in flight to saturate at every size.
window_for() { if [ "$1" -le 100 ]; then echo 4; else echo 1; fi; }

run() { # name, args...
    local name=$1; shift
    echo "==> $name"
    "$BIN" "$@" --duration "$DURATION" --warmup "$WARMUP" --quiet --json "$OUT/$name.json" \
        || echo "   (run reported lost/duplicated messages or failed: see $OUT/$name.json)"
}

# 1. The issue's targets: capacity and CPU per message at 1,000 connections (closed loop), and
# latency at TARGET_RATE sends/s with 1,000 connections (open loop); rounds alternate targets so
# drifting background load hits both alike.
for r in $(seq 1 "$REPEAT"); do
    for target in embedded reference; do
        run "$target-1000-window1-r$r" --$target --connections 1000 --window 1
    done
    for target in embedded reference; do
        run "$target-1000-rate$TARGET_RATE-r$r" --$target --connections 1000 --rate "$TARGET_RATE"
    done
done

# 2. Sizes.
for n in ${SIZES}; do
    w=$(window_for "$n")
    # Alternate targets so drifting background load hits both alike.
    for target in embedded reference; do
        run "$target-$n-rate$RATE" --$target --connections "$n" --rate "$RATE"
    done
    for target in embedded reference; do
        run "$target-$n-window$w" --$target --connections "$n" --window "$w"
    done
done

# Diagnostics behind two findings (docs/benchmarks.md): the reference server with axum's and
# tungstenite's default 128 KiB read buffer, and with Nagle's algorithm left on.
if [[ " $SIZES " == *" 5000 "* ]]; then
    run "reference-5000-window1-readbuf128k" --reference-read-buffer 131072 --connections 5000 --window 1
fi
if [ -n "$SIZES" ]; then
    run "reference-100-rate$RATE-nagle" --reference-nagle --connections 100 --rate "$RATE"
fi

# The embedded gateway on DynamoDB. Each run creates its own tables; an instance started here is
# reset before each run (so MiniStack's memory stays bounded) and stopped at the end.
if [ -n "$DYNAMO_SIZES$GROUP_SIZES" ]; then
    if endpoint=$(localstack/ministack endpoint 2>/dev/null); then
        started_here=false
        echo "MiniStack already running at $endpoint (not reset between runs)"
    else
        endpoint=$(localstack/ministack start)
        started_here=true
        trap 'localstack/ministack stop' EXIT
    fi
    export MESSENGER_DYNAMODB_ENDPOINT=$endpoint
    fresh() { if $started_here; then localstack/ministack reset; fi; }
    for n in $DYNAMO_SIZES; do
        for store in memory dynamodb; do
            fresh
            run "store-$store-$n-rate$DYNAMO_RATE" --embedded --store $store --connections "$n" \
                --rate "$DYNAMO_RATE" --drain "$DYNAMO_DRAIN"
        done
        # Closed loop: n sends in flight queue at MiniStack (~80/s): 5,000 would take a minute
        # to drain, so only up to 1,000.
        [ "$n" -le 1000 ] || continue
        for store in memory dynamodb; do
            fresh
            run "store-$store-$n-window1" --embedded --store $store --connections "$n" --window 1 \
                --drain "$DYNAMO_DRAIN"
        done
    done
    # Groups: every message to GROUP_SIZE - 1 members, created with create_group.
    for n in $GROUP_SIZES; do
        run "group$GROUP_SIZE-memory-$n-rate$RATE" --embedded --groups "$GROUP_SIZE" --connections "$n" --rate "$RATE"
        fresh
        run "group$GROUP_SIZE-dynamodb-$n-rate$GROUP_DYNAMO_RATE" --embedded --store dynamodb \
            --groups "$GROUP_SIZE" --connections "$n" --rate "$GROUP_DYNAMO_RATE" --drain "$DYNAMO_DRAIN"
    done
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/tables.py "$OUT"
