#!/usr/bin/env python3
"""Reference values of crates/ranking/tests/bootstrap.rs (`bca_matches_scipy_formula`):
the BCa interval of scipy's bootstrap on fixed replicates.

Canonical calls (scipy 1.17.1, numpy 2.4.6): scipy's own BCa routine, the one
`scipy.stats.bootstrap(method='BCa')` runs, fed the test's replicates instead of
random ones:
    a1, a2, a_hat = scipy.stats._resampling._bca_interval(
        (x, y), statistic=lambda x, y, axis: np.mean(x, axis) - np.mean(y, axis),
        axis=-1, alpha=0.025, theta_hat_b=reps, batch=None, xp=numpy)
    low, high = scipy.stats.quantile(reps, [a1, a2])
with x_i = exp(sin(1.3 i)) (i < 30), y_j = cos(0.7 j)² (j < 25),
reps_b = θ̂ + 0.3 sin(2.1 b) + 0.1 cos(0.37 b)³ (b < 200), as the test builds them.

`scipy.stats.quantile` is what `scipy.stats.bootstrap` 1.17.1 calls for the
interval ends. Its `low` is 0.3519686028998843, one ulp below the test's
0.35196860289988435, which is numpy's `np.percentile(reps, 100·a1)` /
`np.quantile` (`s[j] + g·(s[j+1] − s[j])` against scipy's
`(1 − g)·s[j] + g·s[j+1]`); both are well inside the test's 1e-12.

Run: /work/venv-ref/bin/python tools/references/bootstrap.py [--check]
"""
import math
import os
import sys

import numpy as np
from scipy import stats
from scipy.stats import _resampling

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import Refs  # noqa: E402

TEST = "crates/ranking/tests/bootstrap.rs"


def main():
    r = Refs("bootstrap.py")
    add = lambda *a, **k: r.add(TEST, *a, **k)  # noqa: E731
    x = np.array([math.exp(math.sin(i * 1.3)) for i in range(30)])
    y = np.array([math.cos(j * 0.7) * math.cos(j * 0.7) for j in range(25)])

    def statistic(x, y, axis=-1):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    theta = float(statistic(x, y))
    add("theta", theta, "0.74325570330719", 1e-14)
    reps = np.array([theta + 0.3 * math.sin(b * 2.1) + 0.1 * math.cos(b * 0.37) * math.cos(b * 0.37) * math.cos(b * 0.37) for b in range(200)])
    a1, a2, a_hat = _resampling._bca_interval((x, y), statistic, axis=-1, alpha=0.025,
                                              theta_hat_b=reps, batch=None, xp=np)
    low, high = stats.quantile(reps, [float(a1), float(a2)])
    add("alpha_1", a1, "0.007471924182477364", 1e-12)
    add("alpha_2", a2, "0.9282750337057257", 1e-13)
    add("a_hat", a_hat, "0.012195794613560622", 1e-11)
    add("low", low, "0.35196860289988435", 1e-12)
    add("high", high, "1.0046098670316048", 1e-12)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
