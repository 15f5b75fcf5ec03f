#!/usr/bin/env python3
"""Reference values of crates/ranking/tests/normality.rs: D'Agostino's K² and
Mardia's tests, recomputed with scipy / numpy.

Canonical calls (scipy 1.17.1, numpy 2.4.6), float64:
* `scipy.stats.normaltest(x)` (K², p), `skewtest(x).statistic`,
  `kurtosistest(x).statistic`, `skew(x)`, `kurtosis(x)` (biased, excess) on the
  columns `det_col(kind, n)` of the test (`SCIPY_NORMALTEST`);
* Mardia: a numpy port of the R package MVN's `mardia()` (Korkmaz, Goksuluk &
  Zararsiz 2014; MVN has no Python release, so its formulas are ported below,
  `S = Xcᵀ Xc / n`, `D = Xc S⁻¹ Xcᵀ`, `g1 = ΣD³/n²`, `g2 = Σdiag(D)²/n`, small-sample
  κ for n < 20, `chi2.sf`, and `2·norm.sf(|z|)` where MVN has `2·(1 − pnorm(|z|))`,
  the same number without its cancellation for tiny p) on `det_matrix(n, d)`
  (`NUMPY_MARDIA`);
* the conformance cases gauss_shift, inception_like and clusters
  (../shared/conformance/case_*/real.npy, float32 read as float64) with the
  same calls: rejection fractions `p < 0.05` and `p < 0.05 / D`, `np.median` of K².

Run: /work/venv-ref/bin/python tools/references/normality.py [--check]
(GEN_METRICS_SHARED overrides the shared folder, default ../shared beside the repository)
"""
import math
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import REPO, Refs  # noqa: E402

TEST = "crates/ranking/tests/normality.rs"
SHARED = os.environ.get("GEN_METRICS_SHARED", os.path.join(REPO, "..", "shared"))


def det_col(kind, n):
    out = []
    for i in range(n):
        i = float(i)
        if kind == 0:
            out.append(((i * 37.0) % 101.0) / 101.0)
        elif kind == 1:
            out.append(math.exp(math.sin(i) * 1.5))
        elif kind == 2:
            u = (i * 0.6180339887498949) % 1.0 + 1e-3
            v = (i * 0.4142135623730951) % 1.0
            out.append(math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * v))
        else:
            out.append(math.sin(i * 0.3) + 0.01 * i)
    return np.array(out)


def det_matrix(n, d):
    kinds = (0, 1, 3)
    cols = [det_col(kinds[k % 3], n) * (1 + 0.1 * k) + (0.05 * k * np.arange(n)) % 3 for k in range(d)]
    m = np.array([[1.0 if i == j else 0.3 / (1 + abs(i - j)) for j in range(d)] for i in range(d)])
    return np.stack(cols, 1) @ m


def mardia(x):
    """numpy port of MVN::mardia (cov = TRUE)."""
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    dm = xc @ np.linalg.solve(s, xc.T)
    g1 = (dm ** 3).sum() / n ** 2
    g2 = (np.diag(dm) ** 2).sum() / n
    df = p * (p + 1) * (p + 2) / 6
    if n < 20:
        k = ((p + 1) * (n + 1) * (n + 3)) / (n * ((n + 1) * (p + 1) - 6))
        skew = n * k * g1 / 6
    else:
        skew = n * g1 / 6
    z = (g2 - p * (p + 2)) * np.sqrt(n / (8 * p * (p + 2)))
    return g1, skew, stats.chi2.sf(skew, df), g2, z, 2 * stats.norm.sf(abs(z))


# Literals of the test's tables, row by row.
SCIPY_NORMALTEST = [
    (8, 0, ["0.8393367047170696", "0.6572647639815173", "0.08848454663816087", "-0.9118701605619677", "0.05250069095864575", "-1.280288565028544"]),
    (8, 1, ["2.0210937412788113", "0.36401985335838377", "0.8729317535777547", "-1.1220890761764315", "0.5200443053298865", "-1.3764606422372436"]),
    (8, 2, ["1.8736010630642927", "0.39187963828456135", "1.2956308264579195", "0.4415221677291654", "0.7756747058851656", "-0.4769104235491035"]),
    (8, 3, ["2.2147687453220395", "0.33042209282699353", "-1.4725998297985528", "0.21498485202291123", "-0.8839428179066339", "-0.6379824861758987"]),
    (20, 0, ["3.2905954310398444", "0.19295510851121825", "-1.9250601178982313e-15", "-1.8139998431752535", "-9.001332604574242e-16", "-1.239275506131297"]),
    (20, 1, ["3.292001350630937", "0.19281951649104256", "1.69857804382977", "-0.6378353860130127", "0.7998860675335746", "-0.7908606755373726"]),
    (20, 2, ["3.383716386492317", "0.1841769694245805", "1.2578638696588367", "1.3421977767449975", "0.5774041452075208", "0.7381390265210945"]),
    (20, 3, ["8.6330423471523", "0.013346232101297567", "-0.03659390900588417", "-2.937976043635477", "-0.01627942892925731", "-1.5179069581316076"]),
    (50, 0, ["12.337087351583621", "0.002094283736835133", "-0.01967573940698716", "-3.512363907237177", "-0.006112898788347435", "-1.2119576095776183"]),
    (50, 1, ["10.911185491109624", "0.004272343618337743", "2.100519092629051", "-2.549314620169596", "0.700270477685842", "-1.0501553881098336"]),
    (50, 2, ["4.021475796284352", "0.13388984114371605", "1.253060774358317", "1.5656674270255757", "0.39928457130502154", "0.9129518374498153"]),
    (50, 3, ["20.300180441870374", "3.9072556354107154e-05", "-0.43092281769707996", "-4.484917609840607", "-0.1342824527808361", "-1.3332566685564338"]),
    (500, 0, ["317.5138961360237", "1.1291028152709401e-69", "-0.011898843447771767", "-17.81891563910521", "-0.001284839771738018", "-1.20048901324218"]),
    (500, 1, ["137.86765540830604", "1.1545666579699426e-30", "5.981787711795148", "-10.103755300843474", "0.7123223030567484", "-1.0042211781790522"]),
    (500, 2, ["1.6495682990339071", "0.43832959590949294", "0.5264320091298441", "1.1715108359709794", "0.0568881636684439", "0.24235802145846863"]),
    (500, 3, ["50.63730819828118", "1.0098299231916206e-11", "0.10074882167763191", "-7.115276373635233", "0.010879183894931165", "-0.8573491129374662"]),
]
# The tolerances of `dagostino_matches_scipy_normaltest` (rel, abs) per column.
NT_TOL = [(1e-11, 1e-12), (1e-10, 0.0), (1e-10, 1e-12), (1e-11, 0.0), (1e-10, 1e-12), (1e-12, 0.0)]
NT_NAMES = ["K2", "p", "Zs", "Zk", "skew", "exkurt"]

NUMPY_MARDIA = [
    (50, 3, ["0.8748953943332184", "7.29079495277682", "0.6977364248674748", "11.792258224187297", "-2.0705884127760674", "0.038397275928538706"]),
    (15, 3, ["0.7200967396346883", "2.383768517411382", "0.9924634156177177", "11.46080586536888", "-1.2512940862666602", "0.21082720225710505"]),
    (300, 5, ["1.055396953790195", "52.76984768950975", "0.0273947536938961", "29.55766810985621", "-5.63334869984821", "1.7674358129606882e-08"]),
    (1000, 4, ["0.2886544993291523", "48.10908322152539", "0.00041065960531561714", "19.981910072333385", "-9.16999371444711", "4.730466218474691e-20"]),
]
MARDIA_TOL = [1e-10, 1e-10, 1e-9, 1e-11, 1e-10, 1e-8]
MARDIA_NAMES = ["b1", "skew stat", "skew p", "b2", "kurt z", "kurt p"]


def per_dim(x):
    k2, p = [], []
    for j in range(x.shape[1]):
        r = stats.normaltest(x[:, j])
        k2.append(r.statistic)
        p.append(r.pvalue)
    return np.array(k2), np.array(p)


def main():
    r = Refs("normality.py")
    add = lambda *a, **k: r.add(TEST, *a, **k)  # noqa: E731

    for n, kind, lits in SCIPY_NORMALTEST:
        x = det_col(kind, n)
        nt = stats.normaltest(x)
        got = [nt.statistic, nt.pvalue, stats.skewtest(x).statistic, stats.kurtosistest(x).statistic,
               stats.skew(x), stats.kurtosis(x)]
        for name, g, lit, (rel, abs_) in zip(NT_NAMES, got, lits, NT_TOL):
            add(f"n={n} kind={kind} {name}", g, lit, rel, abs_)

    for n, d, lits in NUMPY_MARDIA:
        got = mardia(det_matrix(n, d))
        for name, g, lit, rel in zip(MARDIA_NAMES, got, lits, MARDIA_TOL):
            add(f"Mardia n={n} d={d} {name}", g, lit, rel)

    conf = os.path.join(SHARED, "conformance")
    load = lambda case: np.load(os.path.join(conf, f"case_{case}", "real.npy")).astype(np.float64)  # noqa: E731

    x = load("gauss_shift")
    k2, p = per_dim(x)
    d = x.shape[1]
    add("gauss_shift fraction rejecting (assert_eq)", np.mean(p < 0.05), "0.0625", 0.0)
    add("gauss_shift median K2", np.median(k2), "1.711613016413039", 1e-9)
    for j, lit in enumerate(["1.465976178231911", "1.8461500045930554", "4.314947281163393"]):
        add(f"gauss_shift K2 dim {j}", k2[j], lit, 1e-9)
    b1, _, skew_p, b2, _, kurt_p = mardia(x)
    add("gauss_shift Mardia b1", b1, "136.05483699671518", 1e-9)
    add("gauss_shift Mardia skew p", skew_p, "0.9117758729428141", 1e-8)
    add("gauss_shift Mardia b2", b2, "4214.411630094033", 1e-10)
    add("gauss_shift Mardia kurt p", kurt_p, "0.019665605704070402", 1e-8)
    bonf_gauss = np.mean(p < 0.05 / d)

    x = load("inception_like")
    k2, p = per_dim(x)
    add("inception_like median K2", np.median(k2), "459.8291575225913", 1e-9)
    frac_incep = (np.mean(p < 0.05), np.mean(p < 0.05 / x.shape[1]))

    x = load("clusters")
    k2, p = per_dim(x)
    add("clusters fraction rejecting Bonferroni (assert_eq)", np.mean(p < 0.05 / x.shape[1]), "0.9375", 0.0)
    b1, _, skew_p, b2, _, kurt_p = mardia(x)
    add("clusters Mardia b1", b1, "84.61936852042643", 1e-9)
    add("clusters Mardia b2", b2, "1081.104073960635", 1e-10)
    add("clusters Mardia kurt p", kurt_p, "5.154767833445678e-05", 1e-8)
    # Values the test states with a literal that also occurs elsewhere (0.0, 1.0):
    # checked here directly.
    extra = [("gauss_shift fraction rejecting Bonferroni", bonf_gauss, 0.0),
             ("inception_like fraction rejecting", frac_incep[0], 1.0),
             ("inception_like fraction rejecting Bonferroni", frac_incep[1], 1.0),
             ("clusters fraction rejecting", np.mean(p < 0.05), 1.0),
             ("clusters Mardia skew p", skew_p, 0.0)]
    status = r.run()
    for name, got, want in extra:
        if got != want:
            print(f"MISMATCH {TEST} :: {name}: computed {got!r} vs test {want!r}")
            status = 1
        elif "--check" not in sys.argv:
            print(f"same     {TEST} :: {name}: computed {got!r} vs test {want!r}")
    return status


if __name__ == "__main__":
    sys.exit(main())
