#!/usr/bin/env bash
# Reproduces the tables of docs/benchmarks.md: the embedded gateway (in-memory store) and the
# raw reference server, each in-process with the load generator, at 100, 1,000 and 5,000
# connections; a fixed open-loop rate (latency) and a closed loop (capacity). Loopback only.
#
#   bench/run.sh                 # everything (~5 minutes of runs after the release build)
#   SIZES="100 1000" bench/run.sh
#   OUT=/tmp/results bench/run.sh
#
# Results: one JSON file per run in $OUT (default bench/results), then the markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"100 1000 5000"}
RATE=${RATE:-1000}          # open loop: total sends/s, the same at every size
DURATION=${DURATION:-10}    # measured seconds
WARMUP=${WARMUP:-2}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"

cargo build --release --locked -p messenger-bench
BIN=target/release/messenger-bench

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

for n in $SIZES; do
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
run "reference-100-rate$RATE-nagle" --reference-nagle --connections 100 --rate "$RATE"

python3 bench/tables.py "$OUT"
