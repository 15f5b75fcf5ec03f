#!/usr/bin/env python3
"""Reference values for the distribution metrics cmmd, fd_eff, sw_approx, p_pr, top_pr, rke and prd.

Writes crates/distribution/tests/fixtures/new_metrics/ (read by crates/distribution/tests/new_metrics.rs):

* real.npy, fake.npy      float32 [300, 48], numpy default_rng(20260105): Gaussian mixtures
                          (real: 6 modes; fake: 4 of them, wider, plus one new mode).
* values.json             every reference value below, with the exact call that produced it.
* top_pr_projection.npy   float32 [32, 48]: the random projection top_pr.compute_top_pr drew.
* top_pr_bootstrap.npy    uint16 [20, 300]: its 10 bootstrap index draws for the real set, then 10 for the fake set.
* prd_labels.npy          uint8 [10, 600]: cluster labels (eval = fake rows first, then ref = real rows) of
                          the 10 MiniBatchKMeans runs of the official _cluster_into_bins under np.random.seed(0).
* prd_curve.npy           float64 [2, 1001]: precision, recall averaged over those 10 runs (official compute_prd).

Usage (venv with numpy, scipy, scikit-learn, torch (CPU), jax, top-pr==0.2.1, rke-score==0.0.7):
    python3 tools/make_new_metric_fixtures.py           # (re)write the fixtures
    python3 tools/make_new_metric_fixtures.py --check   # recompute and compare with the committed fixtures

Reference code (official; copied below where it is not on PyPI, unchanged but for the JAX decorator):
* cmmd:      google-research/google-research, cmmd/distance.py, commit 4c4299485319ed72ef782020c81784be5468924e,
             mmd(x, y) with jax_enable_x64 (float64), on the raw fixture rows.
* fd_eff:    layer6ai-labs/dgm-eval, dgm_eval/metrics/fd.py, commit 74c79f7527fbf38fdccfbac51f25d759bc02ab07,
             compute_efficient_FD_with_reps(real64, fake64).
* sw_approx: layer6ai-labs/dgm-eval, dgm_eval/metrics/sw.py, same commit, sw_approx(real64, fake64).
* p_pr:      kdst-team/Probablistic_precision_recall, metric/pp_pr.py, commit 7e15c91e712196edc671c8a77eb15fe319057e58,
             compute_pprecision_precall(real64, fake64, a=1.2, kth=4, gpu=False).
* top_pr:    PyPI top-pr==0.2.1, top_pr.compute_top_pr(real_features=real32, fake_features=fake32) (defaults:
             alpha=0.1, kernel="cosine", random_proj=True, f1_score=True); its draws are recorded by wrapping
             torch.nn.init.xavier_normal_ and np.random.choice during that call.
* rke:       PyPI rke-score==0.0.7 (= mjalali/renyi-kernel-entropy, rke_score/rke.py, commit
             e97951b99f6b7270b80a486251e94f2809a4039c): RKE(kernel_bandwidth=sigma);
             rke = 1 / compute_rke_mc_frobenius_norm(fake64)[sigma]; rrke = compute_rrke(real64, fake64)[sigma]
             (x_samples = y_samples = 500), sigma = np.median(scipy.spatial.distance.pdist(fake64)).
* prd:       msmsajjadi/precision-recall-distributions, prd_score.py, commit df840ada10614f725d9c47ffc8508b80c196a4f1,
             compute_prd_from_embedding(fake64, real64) (20 clusters, 1001 angles, 10 runs) and
             prd_to_max_f_beta_pair(precision, recall, beta=8); end to end under np.random.seed(s), s = 0..19.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/distribution/tests/fixtures/new_metrics"


# --- google-research/google-research cmmd/distance.py @ 4c42994 (jax.jit applied at call) -----------------
def cmmd_official(x, y):
    import jax
    import jax.numpy as jnp

    _SIGMA = 10
    _SCALE = 1000

    def mmd(x, y):
        x = jnp.asarray(x)
        y = jnp.asarray(y)
        x_sqnorms = jnp.diag(jnp.matmul(x, x.T))
        y_sqnorms = jnp.diag(jnp.matmul(y, y.T))
        gamma = 1 / (2 * _SIGMA**2)
        k_xx = jnp.mean(jnp.exp(-gamma * (-2 * jnp.matmul(x, x.T) + jnp.expand_dims(x_sqnorms, 1) + jnp.expand_dims(x_sqnorms, 0))))
        k_xy = jnp.mean(jnp.exp(-gamma * (-2 * jnp.matmul(x, y.T) + jnp.expand_dims(x_sqnorms, 1) + jnp.expand_dims(y_sqnorms, 0))))
        k_yy = jnp.mean(jnp.exp(-gamma * (-2 * jnp.matmul(y, y.T) + jnp.expand_dims(y_sqnorms, 1) + jnp.expand_dims(y_sqnorms, 0))))
        return _SCALE * (k_xx + k_yy - 2 * k_xy)

    return float(jax.jit(mmd)(x, y))


# --- layer6ai-labs/dgm-eval dgm_eval/metrics/fd.py, sw.py @ 74c79f7 -----------------------------------------
def compute_statistics(reps):
    mu = np.mean(reps, axis=0)
    sigma = np.cov(reps, rowvar=False)
    mu = np.atleast_1d(mu)
    sigma = np.atleast_2d(sigma)
    return mu, sigma


def compute_efficient_FD_with_reps(reps1, reps2):
    from scipy import linalg

    mu1, sigma1 = compute_statistics(reps1)
    mu2, sigma2 = compute_statistics(reps2)
    sqrt_trace = np.real(linalg.eigvals(sigma1 @ sigma2) ** 0.5).sum()
    return ((mu1 - mu2) ** 2).sum() + sigma1.trace() + sigma2.trace() - 2 * sqrt_trace


def sw_approx(X, Y):
    from numpy import linalg

    d = X.shape[1]
    mean_X = X.mean(axis=0)
    mean_Y = Y.mean(axis=0)
    mean_term = linalg.norm(mean_X - mean_Y) ** 2 / d
    m2_Xc = (linalg.norm(X - mean_X, axis=1) ** 2).mean() / d
    m2_Yc = (linalg.norm(Y - mean_Y, axis=1) ** 2).mean() / d
    approx_sw = (mean_term + (m2_Xc ** (1 / 2) - m2_Yc ** (1 / 2)) ** 2) ** (1 / 2)
    return approx_sw


# --- kdst-team/Probablistic_precision_recall metric/pp_pr.py @ 7e15c91 (CPU path) ---------------------------
def get_pairwise_distances(real, fake, jobs=8):
    from sklearn.metrics import pairwise_distances

    pairwise_distance_between_real = pairwise_distances(real, real, n_jobs=jobs, metric="l2")
    pairwise_distance_between_fake = pairwise_distances(fake, fake, n_jobs=jobs, metric="l2")
    pairwise_distance_between_real_fake = pairwise_distances(real, fake, n_jobs=jobs, metric="l2")
    pairwise_distance_between_fake_real = np.transpose(pairwise_distance_between_real_fake)
    return (pairwise_distance_between_real, pairwise_distance_between_fake,
            pairwise_distance_between_real_fake, pairwise_distance_between_fake_real)


def get_average_of_knn_distance(x, kth):
    indices = np.argpartition(x, kth + 1, axis=-1)[..., :kth + 1]
    k_smallests = np.take_along_axis(x, indices, axis=-1)
    kth_values = k_smallests.max(axis=-1)
    return np.mean(kth_values)


def get_scoring_rule_psr(distance, k_nearest, a):
    out_of_knearest = distance >= a * k_nearest
    f = 1 - distance / (a * k_nearest)
    f[out_of_knearest] = 0.0
    return np.prod(1.0 - f, axis=0)


def compute_pprecision_precall(real, fake, a=1.2, kth=4):
    pairwise_distance_real, pairwise_distance_fake, distance, distance_t = get_pairwise_distances(real, fake)
    k_nearest_x = get_average_of_knn_distance(pairwise_distance_real, kth)
    k_nearest_y = get_average_of_knn_distance(pairwise_distance_fake, kth)
    PSR_X = get_scoring_rule_psr(distance, k_nearest_x, a)
    PSR_Y = get_scoring_rule_psr(distance_t, k_nearest_y, a)
    return float(np.mean(1.0 - PSR_X)), float(np.mean(1.0 - PSR_Y)), float(k_nearest_x), float(k_nearest_y)


# --- msmsajjadi/precision-recall-distributions prd_score.py @ df840ad ---------------------------------------
def compute_prd(eval_dist, ref_dist, num_angles=1001, epsilon=1e-10):
    if not (epsilon > 0 and epsilon < 0.1):
        raise ValueError("epsilon must be in (0, 0.1] but is %s." % str(epsilon))
    if not (num_angles >= 3 and num_angles <= 1e6):
        raise ValueError("num_angles must be in [3, 1e6] but is %d." % num_angles)
    angles = np.linspace(epsilon, np.pi / 2 - epsilon, num=num_angles)
    slopes = np.tan(angles)
    slopes_2d = np.expand_dims(slopes, 1)
    ref_dist_2d = np.expand_dims(ref_dist, 0)
    eval_dist_2d = np.expand_dims(eval_dist, 0)
    precision = np.minimum(ref_dist_2d * slopes_2d, eval_dist_2d).sum(axis=1)
    recall = precision / slopes
    max_val = max(np.max(precision), np.max(recall))
    if max_val > 1.001:
        raise ValueError("Detected value > 1.001, this should not happen.")
    precision = np.clip(precision, 0, 1)
    recall = np.clip(recall, 0, 1)
    return precision, recall


def _cluster_into_bins(eval_data, ref_data, num_clusters, record=None):
    import sklearn.cluster

    cluster_data = np.vstack([eval_data, ref_data])
    kmeans = sklearn.cluster.MiniBatchKMeans(n_clusters=num_clusters, n_init=10)
    labels = kmeans.fit(cluster_data).labels_
    if record is not None:
        record.append(labels.copy())
    eval_labels = labels[:len(eval_data)]
    ref_labels = labels[len(eval_data):]
    eval_bins = np.histogram(eval_labels, bins=num_clusters, range=[0, num_clusters], density=True)[0]
    ref_bins = np.histogram(ref_labels, bins=num_clusters, range=[0, num_clusters], density=True)[0]
    return eval_bins, ref_bins


def compute_prd_from_embedding(eval_data, ref_data, num_clusters=20, num_angles=1001, num_runs=10,
                               enforce_balance=True, record=None):
    if enforce_balance and len(eval_data) != len(ref_data):
        raise ValueError("unbalanced")
    eval_data = np.array(eval_data, dtype=np.float64)
    ref_data = np.array(ref_data, dtype=np.float64)
    precisions = []
    recalls = []
    for _ in range(num_runs):
        eval_dist, ref_dist = _cluster_into_bins(eval_data, ref_data, num_clusters, record)
        precision, recall = compute_prd(eval_dist, ref_dist, num_angles)
        precisions.append(precision)
        recalls.append(recall)
    precision = np.mean(precisions, axis=0)
    recall = np.mean(recalls, axis=0)
    return precision, recall


def _prd_to_f_beta(precision, recall, beta=1, epsilon=1e-10):
    return (1 + beta**2) * (precision * recall) / ((beta**2 * precision) + recall + epsilon)


def prd_to_max_f_beta_pair(precision, recall, beta=8):
    f_beta = np.max(_prd_to_f_beta(precision, recall, beta))
    f_beta_inv = np.max(_prd_to_f_beta(precision, recall, 1 / beta))
    return float(f_beta), float(f_beta_inv)


# --- data ----------------------------------------------------------------------------------------------------
def make_data():
    rng = np.random.default_rng(20260105)
    d, n = 48, 300
    centres = rng.normal(0.0, 3.0, size=(7, d))
    real_modes = rng.integers(0, 6, size=n)
    real = centres[real_modes] + rng.normal(0.0, 1.0, size=(n, d))
    fake_modes = rng.choice([0, 1, 2, 3, 6], size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    fake = centres[fake_modes] + 1.2 * rng.normal(0.0, 1.0, size=(n, d)) + 0.3
    return real.astype(np.float32), fake.astype(np.float32)


def top_pr_recorded(real32, fake32):
    """The official compute_top_pr, with its random projection, bootstrap draws and
    intermediate values recorded."""
    import torch
    import top_pr.top_pr as tp

    rec = {"proj": [], "choice": [], "confband": []}
    orig_xavier = torch.nn.init.xavier_normal_
    orig_choice = np.random.choice
    orig_confband = tp.confband_est

    def xavier(w, *a, **k):
        out = orig_xavier(w, *a, **k)
        rec["proj"].append(w.detach().cpu().numpy().copy())
        return out

    def choice(*a, **k):
        out = orig_choice(*a, **k)
        rec["choice"].append(np.asarray(out).copy())
        return out

    def confband(*a, **k):
        out = orig_confband(*a, **k)
        rec["confband"].append((float(k.get("h", a[1] if len(a) > 1 else np.nan)), float(out[0])))
        return out

    torch.nn.init.xavier_normal_ = xavier
    np.random.choice = choice
    tp.confband_est = confband
    try:
        res = tp.compute_top_pr(real_features=real32, fake_features=fake32)
    finally:
        torch.nn.init.xavier_normal_ = orig_xavier
        np.random.choice = orig_choice
        tp.confband_est = orig_confband
    assert len(rec["proj"]) == 1 and len(rec["choice"]) == 20 and len(rec["confband"]) == 2, rec.keys()
    return res, rec


def compute_all():
    import jax
    from scipy.spatial.distance import pdist
    from rke_score import RKE

    jax.config.update("jax_enable_x64", True)
    real32, fake32 = make_data()
    real, fake = real32.astype(np.float64), fake32.astype(np.float64)
    v = {}
    v["cmmd"] = cmmd_official(real, fake)
    v["fd_eff"] = float(compute_efficient_FD_with_reps(real, fake))
    v["sw_approx"] = float(sw_approx(real, fake))
    pp, pr, kx, ky = compute_pprecision_precall(real, fake, a=1.2, kth=4)
    v.update(p_precision=pp, p_recall=pr, p_pr_radius_real=kx, p_pr_radius_fake=ky)

    res, rec = top_pr_recorded(real32, fake32)
    v["top_p"] = float(res["fidelity"])
    v["top_r"] = float(res["diversity"])
    v["top_pr_bandwidth_real"], v["top_pr_band_real"] = rec["confband"][0]
    v["top_pr_bandwidth_fake"], v["top_pr_band_fake"] = rec["confband"][1]
    proj = rec["proj"][0].astype(np.float32)
    boot = np.stack(rec["choice"]).astype(np.uint16)

    sigma = float(np.median(pdist(fake)))
    kern = RKE(kernel_bandwidth=sigma)
    v["rke_sigma"] = sigma
    v["rke"] = float(1.0 / kern.compute_rke_mc_frobenius_norm(fake)[sigma])
    v["rrke"] = float(kern.compute_rrke(real, fake)[sigma])

    np.random.seed(0)
    labels = []
    precision, recall = compute_prd_from_embedding(fake, real, record=labels)
    v["prd_f8_from_labels"], v["prd_f1_8_from_labels"] = prd_to_max_f_beta_pair(precision, recall, beta=8)
    curve = np.stack([precision, recall])
    e2e = []
    for s in range(20):
        np.random.seed(s)
        p, r = compute_prd_from_embedding(fake, real)
        e2e.append(prd_to_max_f_beta_pair(p, r, beta=8))
    e2e = np.array(e2e)
    v["prd_f8_seeds"] = e2e[:, 0].tolist()
    v["prd_f1_8_seeds"] = e2e[:, 1].tolist()
    arrays = {
        "real.npy": real32,
        "fake.npy": fake32,
        "top_pr_projection.npy": proj,
        "top_pr_bootstrap.npy": boot,
        "prd_labels.npy": np.stack(labels).astype(np.uint8),
        "prd_curve.npy": curve,
    }
    return v, arrays


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    v, arrays = compute_all()
    if a.check:
        bad = 0
        old = json.loads((OUT / "values.json").read_text())["values"]
        for k, x in v.items():
            y = old.get(k)
            ok = y is not None and np.allclose(np.asarray(x), np.asarray(y), rtol=1e-12, atol=0)
            # The end-to-end PRD values come from unseeded-by-design MiniBatchKMeans
            # (seeded here through np.random.seed); they are compared like the rest.
            print(f"{'ok ' if ok else 'BAD'} {k}: {x} vs {y}")
            bad += not ok
        for name, arr in arrays.items():
            ok = np.array_equal(np.load(OUT / name), arr)
            print(f"{'ok ' if ok else 'BAD'} {name}")
            bad += not ok
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(OUT / name, arr)
    doc = {
        "generator": "tools/make_new_metric_fixtures.py (see its header for the official code and exact calls)",
        "values": v,
    }
    (OUT / "values.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(v, indent=1)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
