#!/usr/bin/env bash
# The side-by-side comparison of issues #16 and #12: T1, T2 and T3 on our side and in
# diffrax, one core each (taskset -c 0, one rayon thread, XLA's single-thread flags), in one run.
# Usage: [ROUNDS=N] benches/peers/run.sh [PYTHON]   (PYTHON: a venv's python with the pinned
# jax 0.10.2, diffrax 0.7.2, equinox 0.13.8; see docs/BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:-python3}
out=target/peers
mkdir -p "$out"
cargo build --release -p benches --bin peers
./target/release/peers inputs "$out/inputs.json"
rm -f "$out/ours.jsonl" "$out/diffrax.jsonl"
# The sides alternate for ROUNDS rounds (default 3), so a burst of load from elsewhere on
# a shared machine does not land on one side only.
for _ in $(seq "${ROUNDS:-3}"); do
    RAYON_NUM_THREADS=1 taskset -c 0 ./target/release/peers time "$out/inputs.json" >> "$out/ours.jsonl"
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 0 "$python" benches/peers/diffrax_tasks.py "$out/inputs.json" >> "$out/diffrax.jsonl"
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 0 "$python" benches/peers/diffrax_tasks.py "$out/inputs.json" --f32 >> "$out/diffrax.jsonl"
done
python3 benches/peers/compare.py "$out/ours.jsonl" "$out/diffrax.jsonl" | tee "$out/table.md"
