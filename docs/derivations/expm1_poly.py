"""Coefficients of the vector `tanh` kernels' polynomial (crates/autodiff/src/fastmath.rs).

expm1(r) = r * P(r) on |r| <= ln2/2, with P the interpolant of expm1(r)/r at the
Chebyshev nodes of that interval (near-minimax), degree 10 for f64 and 5 for f32.
Prints each coefficient rounded to its type and the worst relative error of P with the
rounded coefficients, evaluated exactly, against expm1(r)/r on 4001 points.

Run: python3 docs/derivations/expm1_poly.py   (needs mpmath)
"""
import struct

import mpmath as mp

mp.mp.dps = 60
H = mp.log(2) / 2


def g(r):
    return mp.expm1(r) / r if r != 0 else mp.mpf(1)


def fit(n):
    nodes = [H * mp.cos(mp.pi * (2 * j + 1) / (2 * (n + 1))) for j in range(n + 1)]
    a = mp.matrix([[x**i for i in range(n + 1)] for x in nodes])
    c = mp.lu_solve(a, mp.matrix([g(x) for x in nodes]))
    return [c[i] for i in range(n + 1)]


def to_f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def worst(coeffs):
    w = 0
    for j in range(4001):
        r = -H + 2 * H * j / 4000
        p = mp.mpf(0)
        for c in reversed(coeffs):
            p = p * r + mp.mpf(c)
        w = max(w, abs(p / g(r) - 1))
    return w


for name, degree, rnd, eps in (("f64", 10, float, 2.0**-52), ("f32", 5, to_f32, 2.0**-23)):
    coeffs = [rnd(c) for c in fit(degree)]
    print(f"{name}, degree {degree}: worst relative error {float(worst(coeffs) / eps):.3f} ε (machine epsilon)")
    for c in coeffs:
        print(f"    {c!r},")
