#!/usr/bin/env python3
"""Reference values of crates/cas/tests/cas.rs (`matches_scikit_learn_multinomial`):
the multinomial logistic regression that CAS trains, fitted by scikit-learn.

Canonical call (scikit-learn 1.9.1, numpy 2.4.6):
    Xs = StandardScaler().fit_transform(X.astype(np.float64))
    clf = LogisticRegression(C=1 / (λ N), tol=1e-12, max_iter=100_000).fit(Xs, y)
(lbfgs, multinomial softmax loss, intercept unpenalised) with λ = 1e-2, N = 150 and
the test's data: X[i, j] = float32(sin(0.37·i·(j+1))·(1+j) + 0.8·[y_i = j mod 3] + 0.1·j),
y_i = i mod 3. The loss is the objective of gen-metrics' `LogisticRegression`,
(1/N) Σ cross-entropy + (λ/2)‖W‖², evaluated at scikit-learn's solution.
Coefficients act on the standardized features, as the Rust model's `weights`.

Run: /work/venv-ref/bin/python tools/references/cas.py [--check]
"""
import math
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import Refs  # noqa: E402

TEST = "crates/cas/tests/cas.rs"
COEF = [
    ["0.7846817745754747", "-0.18121529960901933", "-0.1422625609420272", "0.15455328251445477"],
    ["-0.3865833733405406", "0.36862989740376534", "-0.1061180654889457", "-0.09433033677983968"],
    ["-0.39809840123493445", "-0.18741459779474579", "0.24838062643097267", "-0.060222945734615146"],
]
INTERCEPT = ["-0.11234602551981451", "0.04486417910165417", "0.0674818464181608"]
PROBA = {
    0: ["0.5072609167702831", "0.23578465559001116", "0.25695442763970583"],
    1: ["0.2638999420933808", "0.41321960978448713", "0.3228804481221321"],
    2: ["0.29945131165044714", "0.37614513801241506", "0.3244035503371378"],
    77: ["0.20683865835026433", "0.4666337382944483", "0.3265276033552874"],
}


def data():
    n = 150
    y = np.arange(n) % 3
    x = np.empty((n, 4), dtype=np.float32)
    for i in range(n):
        for j in range(4):
            v = math.sin(float(i * (j + 1)) * 0.37) * (1.0 + j) + 0.8 * float(y[i] == j % 3) + 0.1 * j
            x[i, j] = np.float32(v)
    return x, y


def main():
    r = Refs("cas.py")
    add = lambda *a, **k: r.add(TEST, *a, **k)  # noqa: E731
    lam = 1e-2
    x, y = data()
    n = len(y)
    xs = StandardScaler().fit_transform(x.astype(np.float64))
    clf = LogisticRegression(C=1.0 / (lam * n), tol=1e-12, max_iter=100_000).fit(xs, y)
    w, b = clf.coef_, clf.intercept_
    s = xs @ w.T + b
    lse = np.log(np.exp(s - s.max(1, keepdims=True)).sum(1)) + s.max(1)
    loss = np.mean(lse - s[np.arange(n), y]) + 0.5 * lam * (w ** 2).sum()
    add("loss", loss, "0.9297618019899823", 1e-12)
    for c in range(3):
        for j in range(4):
            add(f"coef[{c}][{j}]", w[c, j], COEF[c][j], 1e-6, 1e-8)
        add(f"intercept[{c}]", b[c], INTERCEPT[c], 1e-6, 1e-8)
    p = clf.predict_proba(xs)
    for row, lits in PROBA.items():
        for c in range(3):
            add(f"proba[{row}][{c}]", p[row, c], lits[c], 1e-7)
    add("training accuracy count (assert_eq)", int((clf.predict(xs) == y).sum()), "89", 0.0)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
