#!/usr/bin/env bash
# Instructions per message in the embedded gateway's handler, counted by valgrind's callgrind
# (docs/benchmarks.md, finding 13): a count the machine's noise does not move, for changes of a
# few per cent that timing on a shared VM cannot tell apart. Each binary runs the same fixed
# load (open loop, RATE sends/s for DURATION s, 100 connections) ROUNDS times; the figure is the
# inclusive count of `Gateway::dispatch` — the whole handling of every client frame — divided by
# the messages sent.
#
#   bench/instructions.sh                          # target/fast/messenger-bench
#   bench/instructions.sh /tmp/before-bench target/fast/messenger-bench
#
# Build a binary with `cargo build --profile fast -p messenger-bench` (copy it aside to compare
# two commits). Needs valgrind (`apt-get install valgrind`); not part of the test command.
# Under valgrind the CPU has no SHA extensions, so the request digest's SHA-256 runs in software
# (the `digest` column; SHA-NI makes it a few hundred instructions on real hardware), and
# `rep stosb` counts one instruction per byte: compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
RATE=${RATE:-500}
DURATION=${DURATION:-6}
if [ $# -eq 0 ]; then set -- target/fast/messenger-bench; fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-40s %5s %9s %12s %12s %12s\n' binary round messages "dispatch/msg" "digest/msg" "rest/msg"
for bin in "$@"; do
    for r in $(seq 1 "$ROUNDS"); do
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" --embedded \
            --connections 100 --rate "$RATE" --duration "$DURATION" --warmup 1 --quiet \
            --json "$work/run.json" >/dev/null 2>"$work/valgrind.log"
        callgrind_annotate --inclusive=yes "$work/cg.out" >"$work/annotated.txt" 2>/dev/null
        python3 - "$bin" "$r" "$work/run.json" "$work/annotated.txt" <<'EOF'
import json, re, sys
binary, rnd, run, annotated = sys.argv[1:]
sent = json.load(open(run))["messages"]["sent"]
def inclusive(symbol):
    # One line per source file the function's code comes from (inlining); the one of the file
    # that defines it holds the whole inclusive count, the largest.
    pattern = re.compile(r"\s*([\d,]+) \(.*?\)\s+\S*:" + re.escape(symbol) + r"( \[|$)")
    counts = [int(m.group(1).replace(",", "")) for m in map(pattern.match, open(annotated)) if m]
    if not counts:
        sys.exit(f"{symbol} not in the profile (a build without symbols?)")
    return max(counts)
dispatch = inclusive("messenger_local::gateway::Gateway::dispatch::{{closure}}")
digest = inclusive("messenger::domain::RequestDigest::of")
print(f"{binary:<40} {rnd:>5} {sent:>9} {dispatch / sent:>12,.0f} {digest / sent:>12,.0f}"
      f" {(dispatch - digest) / sent:>12,.0f}")
EOF
    done
done
