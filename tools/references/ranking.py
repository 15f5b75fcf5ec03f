#!/usr/bin/env python3
"""Reference values of crates/ranking/tests/rank_correlation.rs: Kendall tau-b /
tau-c and Spearman with their p-values, recomputed with scipy.

Canonical calls (scipy 1.17.1, numpy 2.4.6):
    scipy.stats.kendalltau(x, y, variant='b'|'c', method='auto'|'exact'|'asymptotic',
                           alternative='two-sided'|'less'|'greater')
    scipy.stats.spearmanr(x, y, alternative=...)
on the vectors the test builds (the `det_col`, `gen_col2`, `TIE_A`, `TIE_B`
expressions, evaluated here with Python's `math` module, i.e. the same libm
as Rust's `f64::sin` / `exp` / `ln` / `cos`).

Run: /work/venv-ref/bin/python tools/references/ranking.py [--check]
"""
import math
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import Refs  # noqa: E402

TEST = "crates/ranking/tests/rank_correlation.rs"


def det_col(kind, n):
    if kind == 1:
        return np.array([math.exp(math.sin(float(i)) * 1.5) for i in range(n)])
    if kind == 3:
        return np.array([math.sin(i * 0.3) + 0.01 * i for i in range(n)])
    raise ValueError(kind)


def gen_col2(n):
    out = []
    for i in range(n):
        i = float(i)
        u = (i * 0.6180339887498949) % 1.0 + 1e-3
        v = (i * 0.4142135623730951) % 1.0
        out.append(math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * v))
    return np.array(out)


TIE_A = ([1., 2., 2., 3., 4., 4., 4., 5., 6., 6.], [1., 3., 2., 2., 5., 4., 6., 4., 6., 7.])
TIE_B = ([3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5.], [2., 7., 1., 8., 2., 8., 1., 8., 2., 8., 4.])


def main():
    r = Refs("ranking.py")
    add = lambda *a, **k: r.add(TEST, *a, **k)  # noqa: E731
    kt = stats.kendalltau

    # identity_and_reversal
    x = np.arange(50.0)
    s = stats.spearmanr(x, x)
    add("rho identity (scipy gives 1 - 1 ulp)", s.statistic, "0.9999999999999999", 0.0, 0.0)
    add("tau-b TIE_A vs itself", kt(TIE_A[0], TIE_A[0]).statistic, "0.9999999999999999", 0.0, 0.0)

    # kendall_matches_scipy: n = 25, no ties, 'auto' -> exact
    x, y = det_col(1, 25), det_col(3, 25)
    add("tau n=25", kt(x, y).statistic, "-0.11333333333333331", 1e-15)
    add("p exact n=25", kt(x, y).pvalue, "0.4448568614280395", 1e-13)
    add("p less", kt(x, y, alternative="less").pvalue, "0.22242843071401974", 1e-13)
    add("p greater", kt(x, y, alternative="greater").pvalue, "0.7911845442831494", 1e-13)
    add("p asymptotic", kt(x, y, method="asymptotic").pvalue, "0.4271553081827698", 1e-13)
    add("tau-c n=25", kt(x, y, variant="c").statistic, "-0.11333333333333333", 1e-15)

    # n = 40: asymptotic (n > 33)
    x, y = det_col(1, 40), det_col(3, 40)
    add("tau n=40", kt(x, y).statistic, "-0.005128205128205129", 1e-14)
    add("p n=40", kt(x, y).pvalue, "0.9628287337753054", 1e-13)
    x, y = np.arange(40.0), gen_col2(40)
    add("tau n=40 exact", kt(x, y, method="exact").statistic, "-0.023076923076923078", 1e-15)
    add("p n=40 exact", kt(x, y, method="exact").pvalue, "0.8440243450403817", 1e-12)

    # ties, one-sided
    add("tie_b less", kt(*TIE_B, alternative="less").pvalue, "0.7181954744651858", 1e-13)
    add("tie_b greater", kt(*TIE_B, alternative="greater").pvalue, "0.28180452553481417", 1e-13)

    # n = 300 integer data with heavy ties
    i = np.arange(300)
    x = ((i * 7) % 13).astype(float)
    y = ((i * 11) % 17).astype(float) + (((i * 7) % 13) > 6).astype(float)
    add("tau n=300 ties (assert_eq)", kt(x, y).statistic, "0.07413202641628326", 0.0, 0.0)
    add("p n=300 ties", kt(x, y).pvalue, "0.0716915426562967", 1e-13)
    add("tau-c n=300 ties (assert_eq)", kt(x, y, variant="c").statistic, "0.07491851851851852", 0.0, 0.0)
    s = stats.spearmanr(x, y)
    add("spearman n=300", s.statistic, "0.10410969077749793", 1e-13)
    add("spearman p n=300", s.pvalue, "0.07176582220154094", 1e-10)

    # exact branch for large n when min(D, n0 - D) <= 1
    x = np.arange(50.0)
    y = x.copy()
    y[[10, 11]] = y[[11, 10]]
    res = kt(x, y)
    add("tau one swap", res.statistic, "0.9983673469387755", 1e-15)
    add("p one swap", res.pvalue, "3.287949416633158e-63", 1e-13)
    x = np.arange(60.0)
    add("p identity n=60", kt(x, x, method="exact").pvalue, "2.4035609872986455e-82", 1e-13)

    # spearman_matches_scipy
    s = stats.spearmanr(*TIE_A)
    add("rho tie_a", s.statistic, "0.8785430414108695", 1e-14)
    add("p tie_a", s.pvalue, "0.0008202055955077199", 1e-10)
    s = stats.spearmanr(*TIE_B)
    add("rho tie_b", s.statistic, "0.1384567651467695", 1e-14)
    add("p tie_b", s.pvalue, "0.6847503048108998", 1e-10)
    add("p tie_b less", stats.spearmanr(*TIE_B, alternative="less").pvalue, "0.6576248475945501", 1e-10)
    add("p tie_b greater", stats.spearmanr(*TIE_B, alternative="greater").pvalue, "0.3423751524054499", 1e-10)
    s = stats.spearmanr(det_col(1, 40), det_col(3, 40))
    add("rho n=40", s.statistic, "-0.005440900562851784", 1e-12)
    add("p n=40", s.pvalue, "0.9734191635744349", 1e-10)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
