#!/usr/bin/env python3
"""Small reference values that unit tests state with a numpy/scipy call in a comment:

* crates/distribution/src/fd_infinity.rs (`linspace_matches_numpy`):
  `np.linspace(500, 2000, 15).astype(np.int32)`, the batch sizes of FD-inf
  (Chong & Forsyth's code);
* crates/distribution/src/realism.rs (`percentile_matches_numpy_linear`):
  `np.percentile(v, q)` (linear method) and `np.median`;
* crates/ranking/tests/interval.rs: `scipy.stats.t.ppf(0.975, 3999)` (the test
  checks it to 1e-3 against 1.9605).

Canonical calls: numpy 2.4.6, scipy 1.17.1.
Run: /work/venv-ref/bin/python tools/references/small.py [--check]
"""
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import Refs  # noqa: E402

FD_INF = "crates/distribution/src/fd_infinity.rs"
REALISM = "crates/distribution/src/realism.rs"
INTERVAL = "crates/ranking/tests/interval.rs"


def main():
    r = Refs("small.py")
    want = "500, 607, 714, 821, 928, 1035, 1142, 1250, 1357, 1464, 1571, 1678, 1785, 1892, 2000"
    got = ", ".join(str(int(v)) for v in np.linspace(500, 2000, 15).astype(np.int32))
    r.add_text(FD_INF, "np.linspace(500, 2000, 15).astype(np.int32)", got, want)
    r.add(FD_INF, "np.linspace(7, 7, 3).astype(np.int32)[1]", np.linspace(7, 7, 3).astype(np.int32)[1], "7", 0.0)
    r.add(REALISM, "np.percentile([1, 2, 3, 4], 50)", np.percentile([1, 2, 3, 4], 50), "2.5", 0.0)
    r.add(REALISM, "np.percentile([1, 2, 3], 50)", np.percentile([1, 2, 3], 50), "2.0", 0.0)
    r.add(REALISM, "np.percentile([1, 2, 3, 4], 25)", np.percentile([1, 2, 3, 4], 25), "1.75", 0.0)
    r.add(REALISM, "np.percentile([1, 2, 3, 4], 100)", np.percentile([1, 2, 3, 4], 100), "4.0", 0.0)
    r.add(REALISM, "np.percentile([5], 50)", np.percentile([5.0], 50), "5.0", 0.0)
    r.add(REALISM, "np.median([1, 2, 3, 10])", np.median([1.0, 2.0, 3.0, 10.0]), "2.5", 0.0)
    r.add(INTERVAL, "t_{3999, 0.975} (|diff| < 1e-3)", stats.t.ppf(0.975, 3999), "1.9605", 0.0, 1e-3)
    return r.run()


if __name__ == "__main__":
    sys.exit(main())
