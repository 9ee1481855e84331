"""The peers' tasks T1, T2 (issue #16) and T3 (issue #12) in diffrax, from the inputs `peers
inputs` writes.

Usage: python diffrax_tasks.py INPUTS.json [--f32]
With --f32 it runs only T2 in single precision (`t2_forward_f32`, `t2_backsolve_f32`,
`t2_checkpointed_f32`: jax's default 32-bit mode, the inputs rounded to float32), as a
diffrax user training in f32 would.
Prints one JSON line per task, like `peers time`: median and minimum milliseconds over the repeats
(compile excluded: every function is jitted and run 3 times first), the steps diffrax
took, its NFE estimate and the loss. Pinned versions: jax 0.10.2, diffrax 0.7.2,
equinox 0.13.8 (see docs/BENCHMARKS.md). Run it on one core:
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0
"""

import json
import sys
import time

import jax

F32 = "--f32" in sys.argv[2:]
jax.config.update("jax_enable_x64", not F32)
import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

ARENSTORF_MU = 0.012277471
ARENSTORF_PERIOD = 17.0652165601579625588917206249
ARENSTORF_Y0 = [0.994, 0.0, 0.0, -2.00158510637908252240537862224]


def median_ms(f):
    """The same rule as `peers time`: 3 warm-up runs, then at least 10 runs and 1 s."""
    for _ in range(3):
        jax.block_until_ready(f())
    times = []
    start = time.perf_counter()
    while len(times) < 10 or time.perf_counter() - start < 1.0:
        t = time.perf_counter()
        jax.block_until_ready(f())
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2], times[0]


def line(task, ms, nfe, steps, loss, **extra):
    ms, min_ms = ms
    out = {"side": "diffrax", "task": task, "ms": round(ms, 4), "min_ms": round(min_ms, 4),
           "nfe": str(nfe),
           "steps": int(steps), "loss": float(loss)}
    out.update(extra)
    print(json.dumps(out), flush=True)


def dopri5_nfe(stats):
    # Dopri5 is FSAL: 6 new stages per step attempt, 1 evaluation at t0 and 1 more in the
    # initial step-size heuristic (dt0=None).
    return 6 * int(stats["num_steps"]) + 2


def solve(term, y0, t1, rtol, args=None, adjoint=None, max_steps=1_000_000):
    kwargs = {} if adjoint is None else {"adjoint": adjoint}
    return diffrax.diffeqsolve(
        term, diffrax.Dopri5(), 0.0, t1, None, y0, args=args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol),
        saveat=diffrax.SaveAt(t1=True), max_steps=max_steps, **kwargs)


def t2(inputs):
    params = [(jnp.array(l["weight"]), jnp.array(l["bias"])) for l in inputs["layers"]]
    z0 = jnp.array(inputs["z0"])
    t1, rtol = inputs["t1"], inputs["rtol"]

    def mlp(t, z, params):
        h = z
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            if i + 1 < len(params):
                h = jnp.tanh(h)
        return h

    term = diffrax.ODETerm(mlp)

    @jax.jit
    def forward(params, z0):
        sol = solve(term, z0, t1, rtol, args=params)
        return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_accepted_steps"]

    zt, steps, accepted = forward(params, z0)
    ms = median_ms(lambda: forward(params, z0))
    suffix = "_f32" if F32 else ""
    if F32:
        assert zt.dtype == jnp.float32, zt.dtype
    line("t2_forward" + suffix, ms, 6 * int(steps) + 2, accepted, jnp.sum(zt ** 2))

    for task, adjoint in [("t2_backsolve", diffrax.BacksolveAdjoint()),
                          ("t2_checkpointed", diffrax.RecursiveCheckpointAdjoint())]:
        # RecursiveCheckpointAdjoint needs a bounded max_steps; 4096 is diffrax's default.
        max_steps = 4096

        def loss(params, z0, adjoint=adjoint, max_steps=max_steps):
            sol = solve(term, z0, t1, rtol, args=params, adjoint=adjoint, max_steps=max_steps)
            return jnp.sum(sol.ys[-1] ** 2)

        grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        value, grads = grad(params, z0)
        if F32:
            assert grads[1].dtype == jnp.float32, grads[1].dtype
        ms = median_ms(lambda: grad(params, z0))
        line(task + suffix, ms, "?", accepted, value)


def t3(inputs):
    """One FFJORD training step: Hutchinson trace with the given probe, Dopri5, backsolve
    adjoint, an Adam update (written out: its first step from zero moments), timed from the
    same parameters each time, as `peers time` does."""
    t3 = inputs.get("t3")
    if t3 is None:
        return
    params = [(jnp.array(l["weight"]), jnp.array(l["bias"])) for l in t3["layers"]]
    x, eps = jnp.array(t3["x"]), jnp.array(t3["noise"])
    t1, rtol, lr = t3["t1"], t3["rtol"], t3["lr"]

    def mlp(params, z, t):
        h = jnp.concatenate([z, jnp.full((z.shape[0], 1), t)], axis=1)
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            if i + 1 < len(params):
                h = jnp.tanh(h)
        return h

    def dynamics(t, state, args):
        z, _ = state
        params, eps = args
        f, vjp = jax.vjp(lambda z: mlp(params, z, t), z)
        (e_dfdz,) = vjp(eps)
        return f, jnp.sum(e_dfdz * eps, axis=1)

    term = diffrax.ODETerm(dynamics)

    def loss(params):
        state0 = (x, jnp.zeros(x.shape[0]))
        sol = solve(term, state0, t1, rtol, args=(params, eps),
                    adjoint=diffrax.BacksolveAdjoint())
        z1, delta = sol.ys[0][-1], sol.ys[1][-1]
        d = z1.shape[1]
        logp = -0.5 * jnp.sum(z1 ** 2, axis=1) - 0.5 * d * jnp.log(2 * jnp.pi) + delta
        return -jnp.mean(logp), sol.stats["num_steps"]

    b1, b2, adam_eps = 0.9, 0.999, 1e-8

    @jax.jit
    def step(params, m, v):
        (value, steps), grads = jax.value_and_grad(loss, has_aux=True)(params)
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        new = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / (1 - b1)) / (jnp.sqrt(v / (1 - b2)) + adam_eps),
            params, m, v)
        return new, m, v, value, steps

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    _, _, _, value, steps = step(params, zeros, zeros)
    ms = median_ms(lambda: step(params, zeros, zeros))
    line("t3_ffjord_step", ms, f"{6 * int(steps) + 2}+?", steps, value)


def t1(inputs):
    n = inputs["vdp_n"]

    def lotka_volterra(t, y, args):
        return jnp.stack([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]])

    def arenstorf(t, u, args):
        mu, mup = ARENSTORF_MU, 1.0 - ARENSTORF_MU
        x, y, vx, vy = u[0], u[1], u[2], u[3]
        r1, r2 = (x + mu) ** 2 + y * y, (x - mup) ** 2 + y * y
        d1, d2 = r1 * jnp.sqrt(r1), r2 * jnp.sqrt(r2)  # r^3 without pow, as the Rust side
        return jnp.stack([vx, vy, x + 2.0 * vy - mup * (x + mu) / d1 - mu * (x - mup) / d2,
                          y - 2.0 * vx - mup * y / d1 - mu * y / d2])

    def vdp(t, y, args):
        x, v = y[:n], y[n:]
        return jnp.concatenate([v, (1.0 - x * x) * v - x])

    i = jnp.arange(n, dtype=jnp.float64)
    vdp0 = jnp.concatenate([2.0 * jnp.sin(i * 0.37), 2.0 * jnp.cos(i * 0.61)])
    cases = [("t1_lotka_volterra", lotka_volterra, jnp.array([1.0, 1.0]), 10.0),
             ("t1_arenstorf", arenstorf, jnp.array(ARENSTORF_Y0), ARENSTORF_PERIOD),
             ("t1_vdp_2048", vdp, vdp0, 10.0)]
    for tol in [1e-6, 1e-8]:
        for name, f, y0, t_end in cases:
            term = diffrax.ODETerm(f)

            @jax.jit
            def run(y0, term=term, t_end=t_end, tol=tol):
                sol = solve(term, y0, t_end, tol)
                return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_accepted_steps"]

            y, steps, accepted = run(y0)
            ms = median_ms(lambda: run(y0))
            line(f"{name}/{tol:.0e}".replace("e-0", "e-"), ms, 6 * int(steps) + 2, accepted,
                 jnp.sum(y))


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and not F32):
        sys.exit("usage: python diffrax_tasks.py INPUTS.json [--f32]")
    with open(sys.argv[1]) as f:
        inputs = json.load(f)
    t2(inputs)
    if F32:
        return
    t3(inputs)
    t1(inputs)


if __name__ == "__main__":
    main()
