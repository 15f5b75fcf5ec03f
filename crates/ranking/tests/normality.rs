//! Normality tests against scipy 1.17.1 / numpy 2.4.6 (Python 3.11.7).
//!
//! * `scipy.stats.normaltest / skewtest / kurtosistest / skew / kurtosis` on the
//!   deterministic columns of `det_col` (float64).
//! * Mardia: a numpy port of the R package MVN's `mardia` formulas
//!   (`S = Xcᵀ Xc / n`, `D = Xc S⁻¹ Xcᵀ`, `g1 = ΣD³/n²`, `g2 = Σdiag(D)²/n`,
//!   small-sample κ for n < 20, `chi2.sf`, `2·norm.sf`) on `det_matrix`.
//! * Conformance data (`real.npy` as float64) with the same scipy/numpy code.
//!
//! Generator: `tools/references/normality.py` (recomputes every value; `--check`
//! compares them with the literals below).

use gen_metrics_ranking::RankingError;
use gen_metrics_ranking::normality::{
    Degenerate, MardiaRoute, NormalityTest, dagostino_k2, mardia,
};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

/// Python: kind 0 `((i*37) % 101)/101`, 1 `exp(sin(i)*1.5)`,
/// 2 `sqrt(-2 ln u) cos(2πv)` with `u = (0.618.. i mod 1) + 1e-3`,
/// `v = 0.414.. i mod 1`, 3 `sin(0.3 i) + 0.01 i`.
fn det_col(kind: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            match kind {
                0 => ((i * 37.0) % 101.0) / 101.0,
                1 => (i.sin() * 1.5).exp(),
                2 => {
                    let u = (i * 0.6180339887498949) % 1.0 + 1e-3;
                    let v = (i * 0.4142135623730951) % 1.0;
                    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
                }
                _ => (i * 0.3).sin() + 0.01 * i,
            }
        })
        .collect()
}

/// Python: columns `col((0,1,3)[k%3], n)*(1+0.1k) + (0.05*k*arange(n)) % 3`,
/// times `M[i][j] = 1 if i == j else 0.3/(1+|i−j|)`.
fn det_matrix(n: usize, d: usize) -> Array2<f64> {
    let kinds = [0usize, 1, 3];
    let cols: Vec<Vec<f64>> = (0..d)
        .map(|k| {
            let c = det_col(kinds[k % 3], n);
            c.iter()
                .enumerate()
                .map(|(i, v)| v * (1.0 + 0.1 * k as f64) + (0.05 * k as f64 * i as f64) % 3.0)
                .collect()
        })
        .collect();
    Array2::from_shape_fn((n, d), |(i, j)| {
        (0..d)
            .map(|k| {
                let m = if k == j {
                    1.0
                } else {
                    0.3 / (1.0 + (k as f64 - j as f64).abs())
                };
                cols[k][i] * m
            })
            .sum()
    })
}

/// (n, kind, [K², p, Z_skew, Z_kurt, skew, excess kurtosis]) from scipy.
const SCIPY_NORMALTEST: [(usize, usize, [f64; 6]); 16] = [
    (
        8,
        0,
        [
            0.8393367047170696,
            0.6572647639815173,
            0.08848454663816087,
            -0.9118701605619677,
            0.05250069095864575,
            -1.280288565028544,
        ],
    ),
    (
        8,
        1,
        [
            2.0210937412788113,
            0.36401985335838377,
            0.8729317535777547,
            -1.1220890761764315,
            0.5200443053298865,
            -1.3764606422372436,
        ],
    ),
    (
        8,
        2,
        [
            1.8736010630642927,
            0.39187963828456135,
            1.2956308264579195,
            0.4415221677291654,
            0.7756747058851656,
            -0.4769104235491035,
        ],
    ),
    (
        8,
        3,
        [
            2.2147687453220395,
            0.33042209282699353,
            -1.4725998297985528,
            0.21498485202291123,
            -0.8839428179066339,
            -0.6379824861758987,
        ],
    ),
    (
        20,
        0,
        [
            3.2905954310398444,
            0.19295510851121825,
            -1.9250601178982313e-15,
            -1.8139998431752535,
            -9.001332604574242e-16,
            -1.239275506131297,
        ],
    ),
    (
        20,
        1,
        [
            3.292001350630937,
            0.19281951649104256,
            1.69857804382977,
            -0.6378353860130127,
            0.7998860675335746,
            -0.7908606755373726,
        ],
    ),
    (
        20,
        2,
        [
            3.383716386492317,
            0.1841769694245805,
            1.2578638696588367,
            1.3421977767449975,
            0.5774041452075208,
            0.7381390265210945,
        ],
    ),
    (
        20,
        3,
        [
            8.6330423471523,
            0.013346232101297567,
            -0.03659390900588417,
            -2.937976043635477,
            -0.01627942892925731,
            -1.5179069581316076,
        ],
    ),
    (
        50,
        0,
        [
            12.337087351583621,
            0.002094283736835133,
            -0.01967573940698716,
            -3.512363907237177,
            -0.006112898788347435,
            -1.2119576095776183,
        ],
    ),
    (
        50,
        1,
        [
            10.911185491109624,
            0.004272343618337743,
            2.100519092629051,
            -2.549314620169596,
            0.700270477685842,
            -1.0501553881098336,
        ],
    ),
    (
        50,
        2,
        [
            4.021475796284352,
            0.13388984114371605,
            1.253060774358317,
            1.5656674270255757,
            0.39928457130502154,
            0.9129518374498153,
        ],
    ),
    (
        50,
        3,
        [
            20.300180441870374,
            3.9072556354107154e-05,
            -0.43092281769707996,
            -4.484917609840607,
            -0.1342824527808361,
            -1.3332566685564338,
        ],
    ),
    (
        500,
        0,
        [
            317.5138961360237,
            1.1291028152709401e-69,
            -0.011898843447771767,
            -17.81891563910521,
            -0.001284839771738018,
            -1.20048901324218,
        ],
    ),
    (
        500,
        1,
        [
            137.86765540830604,
            1.1545666579699426e-30,
            5.981787711795148,
            -10.103755300843474,
            0.7123223030567484,
            -1.0042211781790522,
        ],
    ),
    (
        500,
        2,
        [
            1.6495682990339071,
            0.43832959590949294,
            0.5264320091298441,
            1.1715108359709794,
            0.0568881636684439,
            0.24235802145846863,
        ],
    ),
    (
        500,
        3,
        [
            50.63730819828118,
            1.0098299231916206e-11,
            0.10074882167763191,
            -7.115276373635233,
            0.010879183894931165,
            -0.8573491129374662,
        ],
    ),
];

#[test]
fn dagostino_matches_scipy_normaltest() {
    for (n, kind, want) in SCIPY_NORMALTEST {
        let t = dagostino_k2(&det_col(kind, n)).unwrap().unwrap();
        let what = format!("n={n} kind={kind}");
        // Skewness of the n=20 uniform-like column is round-off (~1e-15):
        // compare the near-zero statistics absolutely.
        assert_close(&format!("{what} K2"), t.statistic, want[0], 1e-11, 1e-12);
        assert_close(&format!("{what} p"), t.p_value, want[1], 1e-10, 0.0);
        assert_close(&format!("{what} Zs"), t.z_skewness, want[2], 1e-10, 1e-12);
        assert_close(&format!("{what} Zk"), t.z_kurtosis, want[3], 1e-11, 0.0);
        assert_close(&format!("{what} skew"), t.skewness, want[4], 1e-10, 1e-12);
        assert_close(
            &format!("{what} exkurt"),
            t.excess_kurtosis,
            want[5],
            1e-12,
            0.0,
        );
    }
}

#[test]
fn dagostino_degenerate_and_errors() {
    assert_eq!(dagostino_k2(&[2.5; 10]).unwrap(), Err(Degenerate::Constant));
    assert!(matches!(
        dagostino_k2(&[1.0; 7]),
        Err(RankingError::TooFewSamples { min: 8, .. })
    ));
    let mut x = det_col(1, 10);
    x[3] = f64::NAN;
    assert!(matches!(
        dagostino_k2(&x),
        Err(RankingError::NonFinite { index: 3, .. })
    ));
}

/// (n, d, [b1, skew statistic, skew p, b2, kurtosis z, kurtosis p]) from the numpy port.
const NUMPY_MARDIA: [(usize, usize, [f64; 6]); 4] = [
    (
        50,
        3,
        [
            0.8748953943332184,
            7.29079495277682,
            0.6977364248674748,
            11.792258224187297,
            -2.0705884127760674,
            0.038397275928538706,
        ],
    ),
    (
        15,
        3,
        [
            0.7200967396346883,
            2.383768517411382,
            0.9924634156177177,
            11.46080586536888,
            -1.2512940862666602,
            0.21082720225710505,
        ],
    ),
    (
        300,
        5,
        [
            1.055396953790195,
            52.76984768950975,
            0.0273947536938961,
            29.55766810985621,
            -5.63334869984821,
            1.7674358129606882e-08,
        ],
    ),
    (
        1000,
        4,
        [
            0.2886544993291523,
            48.10908322152539,
            0.00041065960531561714,
            19.981910072333385,
            -9.16999371444711,
            4.730466218474691e-20,
        ],
    ),
];

#[test]
fn mardia_matches_numpy_port_on_both_routes() {
    for (n, d, want) in NUMPY_MARDIA {
        let x = det_matrix(n, d);
        for route in [MardiaRoute::Gram, MardiaRoute::Tensor, MardiaRoute::Auto] {
            let m = mardia(x.view(), route).unwrap();
            let what = format!("n={n} d={d} {route:?}");
            assert_close(&format!("{what} b1"), m.b1, want[0], 1e-10, 0.0);
            assert_close(
                &format!("{what} skew stat"),
                m.skewness_statistic,
                want[1],
                1e-10,
                0.0,
            );
            assert_close(&format!("{what} skew p"), m.skewness_p, want[2], 1e-9, 0.0);
            assert_close(&format!("{what} b2"), m.b2, want[3], 1e-11, 0.0);
            assert_close(&format!("{what} kurt z"), m.kurtosis_z, want[4], 1e-10, 0.0);
            assert_close(&format!("{what} kurt p"), m.kurtosis_p, want[5], 1e-8, 0.0);
            assert_eq!(m.skewness_df, (d * (d + 1) * (d + 2)) as f64 / 6.0);
        }
    }
}

#[test]
fn mardia_errors() {
    let x = det_matrix(4, 4);
    assert!(matches!(
        mardia(x.view(), MardiaRoute::Auto),
        Err(RankingError::TooFewSamples { .. })
    ));
    // A duplicated column: singular covariance.
    let mut x = det_matrix(30, 3);
    for i in 0..30 {
        x[[i, 2]] = x[[i, 0]];
    }
    assert!(matches!(
        mardia(x.view(), MardiaRoute::Auto),
        Err(RankingError::SingularCovariance { .. })
    ));
}

fn to_f32(x: &Array2<f64>) -> Array2<f32> {
    x.mapv(|v| v as f32)
}

#[test]
fn conformance_gaussian_vs_relu_features() {
    // gauss_shift: real = z Aᵀ + μ is exactly Gaussian; numpy/scipy on float64:
    // 6.25% of 64 dims reject at 0.05, none after Bonferroni, median K² 1.7116,
    // Mardia skewness p 0.9118, kurtosis p 0.01967.
    let case = Case::load("gauss_shift");
    let real = case.array2::<f32>("real.npy");
    let r = NormalityTest::default().compute(real.view()).unwrap();
    let s = &r.summary;
    eprintln!("gauss_shift: {s}");
    assert_eq!((s.n, s.d, s.n_tested, s.n_degenerate), (2000, 64, 64, 0));
    assert_eq!(s.fraction_rejecting, 0.0625);
    assert_eq!(s.fraction_rejecting_bonferroni, 0.0);
    assert_close("median K2", s.median_k2, 1.711613016413039, 1e-9, 0.0);
    let first: Vec<f64> = r.per_dim[..3]
        .iter()
        .map(|t| t.test.unwrap().statistic)
        .collect();
    for (got, want) in first
        .iter()
        .zip([1.465976178231911, 1.8461500045930554, 4.314947281163393])
    {
        assert_close("K2 dim", *got, want, 1e-9, 0.0);
    }
    let m = r.mardia.unwrap();
    assert_close("Mardia b1", m.b1, 136.05483699671518, 1e-9, 0.0);
    assert_close("Mardia skew p", m.skewness_p, 0.9117758729428141, 1e-8, 0.0);
    assert_close("Mardia b2", m.b2, 4214.411630094033, 1e-10, 0.0);
    assert_close(
        "Mardia kurt p",
        m.kurtosis_p,
        0.019665605704070402,
        1e-8,
        0.0,
    );

    // inception_like: relu features, N = 1000 < D = 2048: every dim rejects,
    // Mardia is skipped (singular covariance), median K² 459.83.
    let case = Case::load("inception_like");
    let real = case.array2::<f32>("real.npy");
    let r = NormalityTest::default().compute(real.view()).unwrap();
    eprintln!("inception_like: {}", r.summary);
    assert_eq!(r.summary.fraction_rejecting, 1.0);
    assert_eq!(r.summary.fraction_rejecting_bonferroni, 1.0);
    assert_close(
        "median K2",
        r.summary.median_k2,
        459.8291575225913,
        1e-9,
        0.0,
    );
    assert!(r.mardia.is_none());
    assert!(r.mardia_skipped.is_some());
    assert!(r.summary.to_string().contains("Mardia not computed"));

    // clusters: a 10-mode mixture (D = 32, N = 3000 -> tensor route).
    let case = Case::load("clusters");
    let real = case.array2::<f32>("real.npy");
    let r = NormalityTest::default().compute(real.view()).unwrap();
    eprintln!("clusters: {}", r.summary);
    assert_eq!(r.summary.fraction_rejecting, 1.0);
    assert_eq!(r.summary.fraction_rejecting_bonferroni, 0.9375);
    let m = r.mardia.unwrap();
    assert_close("Mardia b1", m.b1, 84.61936852042643, 1e-9, 0.0);
    assert_close("Mardia b2", m.b2, 1081.104073960635, 1e-10, 0.0);
    assert_eq!(m.skewness_p, 0.0);
    assert_close(
        "Mardia kurt p",
        m.kurtosis_p,
        5.154767833445678e-05,
        1e-8,
        0.0,
    );
}

#[test]
fn constant_columns_subsampling_and_errors() {
    let mut x = to_f32(&det_matrix(200, 4));
    x.column_mut(1).fill(3.0);
    let r = NormalityTest::default().compute(x.view()).unwrap();
    assert_eq!(r.per_dim[1].test, Err(Degenerate::Constant));
    assert_eq!((r.summary.n_tested, r.summary.n_degenerate), (3, 1));
    assert!(r.mardia.is_none() && r.mardia_skipped.is_some());

    // Subsampled Mardia is deterministic under the seed and uses `cap` rows.
    let x = to_f32(&det_matrix(400, 3));
    let t = NormalityTest::default()
        .mardia_max_samples(Some(100))
        .seed(5);
    let a = t.compute(x.view()).unwrap().mardia.unwrap();
    let b = t.compute(x.view()).unwrap().mardia.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.n, 100);
    let c = t.seed(6).compute(x.view()).unwrap().mardia.unwrap();
    assert_ne!(a.b1, c.b1);

    assert!(matches!(
        NormalityTest::default().compute(Array2::<f32>::zeros((7, 3)).view()),
        Err(RankingError::TooFewSamples { .. })
    ));
    let mut bad = to_f32(&det_matrix(20, 2));
    bad[[4, 1]] = f32::INFINITY;
    assert!(matches!(
        NormalityTest::default().compute(bad.view()),
        Err(RankingError::NonFinite { index: 9, .. })
    ));
    assert!(matches!(
        NormalityTest::default()
            .alpha(0.0)
            .compute(to_f32(&det_matrix(20, 2)).view()),
        Err(RankingError::InvalidParameter { .. })
    ));
}
