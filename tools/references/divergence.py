#!/usr/bin/env python3
"""Reference values of crates/ranking/tests/divergence.rs: closed-form Gaussian
KL divergences, log-densities, and the 1-D Jensen-Shannon divergence.

Canonical calls (numpy 2.4.6, scipy 1.17.1):
* KL(N0 ‖ N1) = 0.5·(trace(inv(S1) @ S0) + dm @ inv(S1) @ dm − d + log det S1 − log det S0),
  dm = m1 − m0, with numpy (`np.linalg.inv`, `np.log(np.linalg.det(S))`; `slogdet`
  gives both values 1 ulp off);
* `scipy.stats.multivariate_normal(mean, cov).logpdf(x)`;
* `scipy.stats.norm.ppf(0.975)`, the factor of the 95% half-width;
* JS(N(0,1), N(1,1)) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, in nats, by
  `scipy.integrate.quad` over the real line.

Run: /work/venv-ref/bin/python tools/references/divergence.py [--check]
"""
import math
import os
import sys

import numpy as np
from scipy import integrate, stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import Refs  # noqa: E402

TEST = "crates/ranking/tests/divergence.rs"

M0 = np.array([0.0, 1.0, -0.5])
S0 = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])
M1 = np.array([0.3, 0.8, 0.0])
S1 = np.array([[1.0, 0.0, 0.2], [0.0, 1.5, -0.3], [0.2, -0.3, 0.8]])


def kl(m0, s0, m1, s1):
    d = len(m0)
    inv1 = np.linalg.inv(s1)
    dm = m1 - m0
    return 0.5 * (np.trace(inv1 @ s0) + dm @ inv1 @ dm - d
                  + np.log(np.linalg.det(s1)) - np.log(np.linalg.det(s0)))


def js_1d():
    p = stats.norm(0.0, 1.0)
    q = stats.norm(1.0, 1.0)

    def integrand(x):
        a, b = p.pdf(x), q.pdf(x)
        m = 0.5 * (a + b)
        out = 0.0
        if a > 0:
            out += 0.5 * a * math.log(a / m)
        if b > 0:
            out += 0.5 * b * math.log(b / m)
        return out

    return integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-14)[0]


def main():
    r = Refs("divergence.py")
    add = lambda *a, **k: r.add(TEST, *a, **k)  # noqa: E731
    add("KL(p||q)", kl(M0, S0, M1, S1), "0.5502573206277884", 1e-13)
    add("KL(q||p)", kl(M1, S1, M0, S0), "0.8701290072214819", 1e-13)
    add("log N0 at (1, 2, 3)", stats.multivariate_normal(M0, S0).logpdf([1.0, 2.0, 3.0]), "-15.072890430083273", 1e-13)
    add("log N1 at (-1, 0.5, 0.25)", stats.multivariate_normal(M1, S1).logpdf([-1.0, 0.5, 0.25]), "-3.8008535388415923", 1e-13)
    # The test compares a Monte Carlo estimate with it (|z| < 4): the value itself
    # must be the integral to far better than the Monte Carlo error (~1e-3).
    add("JS(N(0,1), N(1,1)) by quad", js_1d(), "0.11142148218473619", 1e-12)
    # The 95% half-width factor of the Monte Carlo intervals, Φ⁻¹(0.975).
    add("z_0.975 = norm.ppf(0.975)", stats.norm.ppf(0.975), "1.959963984540054", 1e-12)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
