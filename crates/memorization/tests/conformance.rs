//! Conformance of the memorization tests against `shared/conformance`
//! (`case_memorization` and the AuthPct values of every case).

use gen_metrics_memorization::authpct::AuthPct;
use gen_metrics_memorization::copy_detection::CopyDetection;
use gen_metrics_memorization::data_copying::{CellLabels, DataCopying};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

fn cells(case: &Case, file: &str) -> Vec<usize> {
    case.array1::<i32>(file)
        .iter()
        .map(|&v| usize::try_from(v).expect("cell labels are >= 0"))
        .collect()
}

fn f64_list(case: &Case, key: &str) -> Vec<f64> {
    case.arrays(key)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("arrays{key}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Counts must match exactly; the float32 percentage is then bit-identical.
fn check_authpct(name: &str, train: &Array2<f32>, fake: &Array2<f32>, want: f64, want_f64: f64) {
    let out = AuthPct.compute(train.view(), fake.view()).unwrap();
    let want_count = (want_f64 * fake.nrows() as f64 / 100.0).round() as usize;
    assert_eq!(out.n_authentic, want_count, "{name}: authentic count");
    assert_eq!(out.authpct_f32, want, "{name}: dgm-eval float32 percentage");
    assert_close(
        &format!("{name}: authpct f64"),
        out.authpct,
        want_f64,
        1e-15,
        0.0,
    );
    eprintln!(
        "{name}: AuthPct {} ({} of {})",
        out.authpct, out.n_authentic, out.n_gen
    );
}

#[test]
fn authpct_every_case() {
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let Some(want) = case.value("authpct") else {
            continue;
        };
        let want_f64 = case.diagnostic("authpct_exact_f64_port").unwrap();
        check_authpct(
            &name,
            &case.array2("real.npy"),
            &case.array2("fake.npy"),
            want,
            want_f64,
        );
        checked += 1;
    }
    assert!(checked >= 6, "AuthPct checked on {checked} cases");
}

#[test]
fn authpct_memorization_train_and_test() {
    let case = Case::load("memorization");
    let fake: Array2<f32> = case.array2("fake.npy");
    for (key, file) in [("authpct_train", "train.npy"), ("authpct_test", "real.npy")] {
        let want = case.value(key).unwrap();
        let want_f64 = case.diagnostic(&format!("{key}_exact_f64_port")).unwrap();
        check_authpct(key, &case.array2(file), &fake, want, want_f64);
    }
}

#[test]
fn ct_score_from_stored_cells() {
    let case = Case::load("memorization");
    let train: Array2<f32> = case.array2("train.npy");
    let test: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let labels = CellLabels {
        train: cells(&case, "ct_cells_train.npy"),
        test: cells(&case, "ct_cells_real.npy"),
        gen_cells: cells(&case, "ct_cells_fake.npy"),
    };
    let out = DataCopying::default()
        .compute_with_cells(train.view(), test.view(), fake.view(), &labels)
        .unwrap();
    eprintln!("C_T = {:.17e}, Z_U = {:?}", out.c_t, out.zu_per_cell);
    assert_eq!(out.dim, 64, "PCA(64) applied (D = 80)");
    assert_close(
        "ct_score",
        out.c_t,
        case.value("ct_score").unwrap(),
        1e-14,
        0.0,
    );
    for (c, want) in f64_list(&case, "/ct_Zu_per_cell").into_iter().enumerate() {
        assert_close(
            &format!("Z_U cell {c}"),
            out.zu_per_cell[c],
            want,
            1e-14,
            0.0,
        );
    }
    assert_eq!(out.test_share, f64_list(&case, "/ct_Pn_of_pi"));
    assert_eq!(out.gen_share, f64_list(&case, "/ct_Qm_of_pi"));
    let kept: Vec<bool> = case
        .arrays("/ct_Pi_tau")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    assert_eq!(out.kept, kept);
    assert_eq!(out.tau, 20.0 / 1000.0);
}

#[test]
fn ct_score_mem_from_stored_cells() {
    let case = Case::load("memorization");
    let train: Array2<f32> = case.array2("train.npy");
    let test: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    // compute_CTscore_mem(train, test, gen) = compute_CTscore(gen, test, train):
    // the fake rows are the "training" set of the test.
    let labels = CellLabels {
        train: cells(&case, "ct_mem_cells_fake.npy"),
        test: cells(&case, "ct_mem_cells_real.npy"),
        gen_cells: cells(&case, "ct_mem_cells_train.npy"),
    };
    let out = DataCopying::default()
        .compute_with_cells(fake.view(), test.view(), train.view(), &labels)
        .unwrap();
    eprintln!("C_T mem = {:.17e}, Z_U = {:?}", out.c_t, out.zu_per_cell);
    assert_close(
        "ct_score_mem",
        out.c_t,
        case.value("ct_score_mem").unwrap(),
        1e-14,
        0.0,
    );
    for (c, want) in f64_list(&case, "/ct_mem_Zu_per_cell")
        .into_iter()
        .enumerate()
    {
        assert_close(
            &format!("mem Z_U cell {c}"),
            out.zu_per_cell[c],
            want,
            1e-14,
            0.0,
        );
    }
}

#[test]
fn ct_score_with_own_seeded_kmeans() {
    let case = Case::load("memorization");
    let train: Array2<f32> = case.array2("train.npy");
    let test: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let ct = DataCopying::default().seed(7);
    let a = ct.compute(train.view(), test.view(), fake.view()).unwrap();
    let b = ct.compute(train.view(), test.view(), fake.view()).unwrap();
    assert_eq!(a, b, "same seed, same cells and score");
    // A different seed may find a different partition, but the copying signal
    // is the same: strongly negative (30% of fake rows are train copies).
    let c = DataCopying::default()
        .seed(8)
        .compute(train.view(), test.view(), fake.view())
        .unwrap();
    let want = case.value("ct_score").unwrap();
    eprintln!(
        "seeded C_T: {} (seed 7), {} (seed 8), reference {want}",
        a.c_t, c.c_t
    );
    for v in [a.c_t, c.c_t] {
        assert!(v < -5.0, "C_T {v} should flag copying");
    }
    // The mixture has 5 well separated modes; with 3 cells the reference
    // cell shares are one partition of them. If our partition groups the
    // modes the same way (up to relabelling), the score is identical.
    let mut ours = a.test_share.clone();
    ours.sort_by(f64::total_cmp);
    let mut theirs = f64_list(&case, "/ct_Pn_of_pi");
    theirs.sort_by(f64::total_cmp);
    if ours == theirs {
        assert_close(
            "C_T with seeded k-means, same partition",
            a.c_t,
            want,
            1e-12,
            0.0,
        );
    }
    let mem = ct
        .compute_mem(train.view(), test.view(), fake.view())
        .unwrap();
    eprintln!(
        "seeded C_T mem: {} (reference {})",
        mem.c_t,
        case.value("ct_score_mem").unwrap()
    );
    assert!(mem.c_t < 0.0);
}

#[test]
fn nn_copy_detection_recovers_the_copies() {
    let case = Case::load("memorization");
    let train: Array2<f32> = case.array2("train.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let is_copy: Vec<bool> = case
        .array1::<u8>("is_copy.npy")
        .iter()
        .map(|&v| v == 1)
        .collect();
    let out = CopyDetection::default()
        .compute(train.view(), fake.view())
        .unwrap();
    let tp = out.copies.iter().filter(|&&i| is_copy[i]).count();
    let n_copies = is_copy.iter().filter(|&&c| c).count();
    let precision = tp as f64 / out.copies.len() as f64;
    let recall = tp as f64 / n_copies as f64;
    eprintln!(
        "copy detection (d1/d2 < 1/3): flagged {}, true copies {n_copies}, precision {precision}, recall {recall}; median train NN {:?}",
        out.copies.len(),
        out.median_train_nn
    );
    assert_eq!(n_copies, 300);
    assert_eq!(precision, 1.0);
    assert_eq!(recall, 1.0);
    assert_eq!(out.fraction_copied, 0.3);
    // The memorization ratio separates the two groups too.
    let mr = out.memorization_ratio.unwrap();
    let max_copy = (0..mr.len())
        .filter(|&i| is_copy[i])
        .map(|i| mr[i])
        .fold(0.0, f64::max);
    let min_fresh = (0..mr.len())
        .filter(|&i| !is_copy[i])
        .map(|i| mr[i])
        .fold(f64::INFINITY, f64::min);
    eprintln!("memorization ratio: max over copies {max_copy}, min over fresh {min_fresh}");
    assert!(max_copy < min_fresh);
}
