"""Joins `peers time` and `diffrax_tasks.py` output into the markdown table of
docs/BENCHMARKS.md: per task the median and minimum time of each side, NFE, and the
ratio ours / diffrax of medians and of minima (below 1: we are faster). Files may hold
several rounds (run.sh alternates the two sides); see `load`.

Usage: python3 compare.py OURS.jsonl DIFFRAX.jsonl
"""

import json
import math
import sys


def load(path):
    """Rows by task; a task measured in several rounds gets the median of its round
    medians and the minimum of its minima."""
    rounds = {}
    with open(path) as f:
        for r in map(json.loads, filter(str.strip, f)):
            rounds.setdefault(r["task"], []).append(r)
    out = {}
    for task, rs in rounds.items():
        row = dict(rs[0])
        medians = sorted(r["ms"] for r in rs)
        row["ms"] = medians[len(medians) // 2]
        row["min_ms"] = min(r["min_ms"] for r in rs)
        row["rounds"] = len(rs)
        out[task] = row
    return out


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 compare.py OURS.jsonl DIFFRAX.jsonl")
    ours, peer = load(sys.argv[1]), load(sys.argv[2])
    print("| task | diffrax ms (min) | diffrax NFE | ours ms (min) | ours NFE "
          "| ours / diffrax (of minima) | ours: rel. error of dL/dz0, dL/dθ |")
    print("|---|---|---|---|---|---|---|")
    # Single-precision tasks (`_f32`) are their own group.
    group = lambda task: task[:2] + (" f32" if task.endswith("_f32") else "")  # noqa: E731
    ratios = {}
    for task, o in ours.items():
        p = peer.get(task)
        if p is None:
            continue
        # T2's and T3's losses agree to the tolerance (same inputs, same steps); T1's final states
        # differ by each solver's own error (the Arenstorf orbit amplifies it).
        if task[:2] in ("t2", "t3") and abs(o["loss"] - p["loss"]) > 1e-4 * abs(p["loss"]):
            print(f"warning: {task}: losses differ, ours {o['loss']} diffrax {p['loss']}",
                  file=sys.stderr)
        r, rmin = o["ms"] / p["ms"], o["min_ms"] / p["min_ms"]
        ratios.setdefault(group(task), []).append((r, rmin))
        err = (f"{o['err_z0']:.1e}, {o['err_params']:.1e}" if "err_z0" in o else "")
        print(f"| {task} | {p['ms']:.3f} ({p['min_ms']:.3f}) | {p['nfe']} "
              f"| {o['ms']:.3f} ({o['min_ms']:.3f}) | {o['nfe']} "
              f"| {r:.2f}x ({rmin:.2f}x) | {err} |")
    for k, v in ratios.items():
        if v:
            print(f"\ngeometric mean of ours / diffrax over the {len(v)} {k.upper()} tasks: "
                  f"{geomean([a for a, _ in v]):.2f}x of medians, "
                  f"{geomean([b for _, b in v]):.2f}x of minima")


if __name__ == "__main__":
    main()
