#!/usr/bin/env bash
# Compares two builds of the `peers` binary on one core, alternating them ROUNDS times so
# that a slow phase of a shared machine lands on both, and prints per task the minimum of
# the per-run minima (and the new/base ratio). Usage:
#   benches/peers/ab.sh BASE_PEERS NEW_PEERS ROUNDS time [TASK_FILTER]
#   benches/peers/ab.sh BASE_PEERS NEW_PEERS ROUNDS kernels [FILTER]
# A filter is a substring of the task names, or a whole name followed by `$`.
# `time` reads target/peers/inputs.json (write it with `peers inputs`). A baseline build:
#   git worktree add /tmp/base COMMIT
#   CARGO_TARGET_DIR=/tmp/base/target cargo build --release -p benches --bin peers \
#       --manifest-path /tmp/base/Cargo.toml
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$1 new=$2 rounds=$3 mode=$4 filter=${5:-}
args=("$mode")
[ "$mode" = time ] && args+=(target/peers/inputs.json)
[ -n "$filter" ] && args+=("$filter")
for _ in $(seq "$rounds"); do
    for side in base new; do
        bin=$base
        [ "$side" = new ] && bin=$new
        RAYON_NUM_THREADS=1 taskset -c 0 "$bin" "${args[@]}" | sed "s/^/$side /"
    done
done | python3 -c '
import collections, json, sys
best = collections.defaultdict(lambda: float("inf"))
order = []
for line in sys.stdin:
    side, rest = line.split(" ", 1)
    d = json.loads(rest)
    v = d.get("min_ms", d.get("us"))
    if d["task"] not in order:
        order.append(d["task"])
    best[d["task"], side] = min(best[d["task"], side], v)
unit = "us" if "us" in d else "ms"
print(f"| task | base ({unit}) | new ({unit}) | new / base |")
print("|---|---|---|---|")
for t in order:
    b, n = best[t, "base"], best[t, "new"]
    print(f"| {t} | {b:.3f} | {n:.3f} | {n / b:.3f} |")
'
