//! The inputs of one evaluation and the work metrics share.
//!
//! Shared work is keyed by its parameters, never by value (torchmetrics'
//! compute groups merged metrics that differed only in a setting): the
//! squared k-th neighbour radii of a set for a `k`, and the Gaussian fit
//! ([`FrechetSide`]) of a set. A metric asks the [`Context`] for them; the
//! first ask computes, later asks reuse. [`Context::prepare`] computes every
//! radius the [`Plan`] declares for a set in **one** pass over that set's
//! distances (`kth_neighbour_squared_radii_multi`, whose cost is that of the
//! largest k), which is what makes `pr,prdc,realism,rarity` cheaper together
//! than apart; then every request between the real and the generated rows
//! ([`Need::CrossBalls`], [`Need::ClampedRadiusScores`]) in **one** pass over
//! the cross distances (`gen_metrics_linalg::cross_pass`). Values are bit-identical to each metric computing alone: the
//! same linalg routine computes them, and radii are derived from the squared
//! radii by one square root, exactly as `kth_neighbour_radii` does.
//!
//! A metric may also declare kernel sums over the real and generated rows
//! ([`KernelNeed`], KID's full pass and subsets). `prepare` then runs those
//! three passes (real with itself, generated with itself, real with
//! generated) on float64 blocks of the raw rows and reads the kernel sums
//! off the same blocks as the radii and the cross answers
//! (`kth_neighbour_squared_radii_with_kernel`, `cross_pass_with_kernel`):
//! the inner products are formed once for exact KID and every k-NN metric.
//! The k-NN answers are those of the float32 passes bit for bit (exact rule),
//! and the kernel sums those KID computes alone (same passes, same order).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use gen_metrics_linalg::{
    Boundary, CrossAndSums, CrossAnswer, CrossBallStats, CrossRequest, DistancePower, FrechetSide,
    GaussianStats, Kernel, RadiiAndSums, SubsetKernelSums, cross_pass, cross_pass_with_kernel,
    kth_neighbour_squared_radii_multi, kth_neighbour_squared_radii_with_kernel,
    zero_above_percentile,
};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use serde::Serialize;

use crate::validate::check_set;
use crate::{Input, MetricError, Spec};

/// A set of feature rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Set {
    /// The real (reference) set.
    Real,
    /// The generated set.
    Fake,
    /// The training set.
    Train,
}

impl Set {
    /// `"real"`, `"fake"` or `"train"`, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Set::Real => "real",
            Set::Fake => "fake",
            Set::Train => "train",
        }
    }

    fn input(self) -> Input {
        match self {
            Set::Real => Input::Real,
            Set::Fake => Input::Fake,
            Set::Train => Input::Train,
        }
    }

    fn index(self) -> usize {
        match self {
            Set::Real => 0,
            Set::Fake => 1,
            Set::Train => 2,
        }
    }
}

/// A set as given: feature rows, or only its Gaussian statistics (a
/// statistics file), which only FID-type metrics accept.
#[derive(Debug, Clone, Copy)]
pub enum SideData<'a> {
    /// Feature rows `[N, D]`.
    Rows(ArrayView2<'a, f32>),
    /// Mean and covariance only.
    Stats(&'a GaussianStats),
}

impl<'a> SideData<'a> {
    /// The same data borrowed for a shorter lifetime.
    pub fn reborrow<'s>(self) -> SideData<'s>
    where
        'a: 's,
    {
        match self {
            SideData::Rows(r) => SideData::Rows(r.reborrow()),
            SideData::Stats(s) => SideData::Stats(s),
        }
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        match self {
            SideData::Rows(r) => r.nrows(),
            SideData::Stats(s) => s.n,
        }
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        match self {
            SideData::Rows(r) => r.ncols(),
            SideData::Stats(s) => s.dim(),
        }
    }
}

/// Per-sample log-likelihoods under the data distribution and the model.
#[derive(Debug, Clone, Copy)]
pub struct LogLikelihoodPair<'a> {
    /// `log p_data(x_i)`.
    pub log_p: ArrayView1<'a, f64>,
    /// `log p_model(x_i)`.
    pub log_q: ArrayView1<'a, f64>,
}

/// Every input an evaluation can hand to metrics (all optional; each metric's
/// [`Spec::inputs`] says which it needs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// Real features or statistics.
    pub real: Option<SideData<'a>>,
    /// Generated features or statistics.
    pub fake: Option<SideData<'a>>,
    /// Training features.
    pub train: Option<ArrayView2<'a, f32>>,
    /// Logits of the generated samples `[M, C]`.
    pub logits: Option<ArrayView2<'a, f32>>,
    /// Class labels of the real samples.
    pub labels_real: Option<&'a [usize]>,
    /// Class labels of the generated samples.
    pub labels_fake: Option<&'a [usize]>,
    /// Class labels of the training samples (optional baseline of CAS).
    pub labels_train: Option<&'a [usize]>,
    /// Log-likelihoods at the real samples (KL).
    pub log_likelihoods_real: Option<LogLikelihoodPair<'a>>,
    /// Log-likelihoods at the generated samples (reverse KL).
    pub log_likelihoods_fake: Option<LogLikelihoodPair<'a>>,
}

impl<'a> Inputs<'a> {
    /// The same inputs with the real and generated sets replaced (a
    /// resample, or one generated set of several): the other inputs are
    /// borrowed for the shorter lifetime.
    pub fn with_sides<'s>(
        &self,
        real: Option<SideData<'s>>,
        fake: Option<SideData<'s>>,
    ) -> Inputs<'s>
    where
        'a: 's,
    {
        let pair = |p: Option<LogLikelihoodPair<'a>>| {
            p.map(|p| LogLikelihoodPair {
                log_p: p.log_p.reborrow(),
                log_q: p.log_q.reborrow(),
            })
        };
        Inputs {
            real,
            fake,
            train: self.train.map(|t| t.reborrow()),
            logits: self.logits.map(|l| l.reborrow()),
            labels_real: self.labels_real,
            labels_fake: self.labels_fake,
            labels_train: self.labels_train,
            log_likelihoods_real: pair(self.log_likelihoods_real),
            log_likelihoods_fake: pair(self.log_likelihoods_fake),
        }
    }

    /// Whether `input` is present.
    pub fn has(&self, input: Input) -> bool {
        match input {
            Input::Real => self.real.is_some(),
            Input::Fake => self.fake.is_some(),
            Input::Train => self.train.is_some(),
            Input::Logits => self.logits.is_some(),
            Input::LabelsReal => self.labels_real.is_some(),
            Input::LabelsFake => self.labels_fake.is_some(),
            Input::LogLikelihoodsReal => self.log_likelihoods_real.is_some(),
            Input::LogLikelihoodsFake => self.log_likelihoods_fake.is_some(),
        }
    }
}

/// A piece of shared work a metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Need {
    /// Squared distance of every row of `set` to its k-th nearest other row.
    Radii {
        /// The set.
        set: Set,
        /// The neighbourhood size.
        k: usize,
    },
    /// The Gaussian fit of `set` (mean, covariance or centred rows).
    Gaussian(Set),
    /// Ball membership both ways and nearest distances both ways between the
    /// real and the generated rows, with the k-th neighbour radii of each set
    /// (`gen_metrics_linalg::cross_ball_statistics`, real = `a`).
    CrossBalls {
        /// The neighbourhood size of both sets' radii.
        k: usize,
        /// `d ≤ r` or `d < r`.
        boundary: Boundary,
    },
    /// For each generated row `y`: `max_i ρ'_i / (‖y − x_i‖² + eps)` over the
    /// real rows, `ρ'` the real squared k-th neighbour radii with those above
    /// their `q`-th percentile set to 0 (the realism score, Kynkäänniemi et
    /// al. 2019). Floats are keyed by their bits.
    ClampedRadiusScores {
        /// The neighbourhood size of the real radii.
        k: usize,
        /// `q.to_bits()`.
        percentile_bits: u64,
        /// `eps.to_bits()`.
        eps_bits: u64,
    },
}

/// Kernel sums over the real (`x`) and generated (`y`) rows that a metric
/// reads (KID): the full-set sums and, per subset `s`, `Kxx_s`, `Kyy_s`,
/// `Kxy_s` (`gen_metrics_linalg::SubsetKernelSums`). [`Context::prepare`]
/// reads them off the float64 blocks of the same passes that give the k-NN
/// radii and the cross answers, so exact KID and the k-NN metrics form each
/// inner product once.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelNeed {
    /// The kernel.
    pub kernel: Kernel,
    /// Row `s`: the real-row indices of subset `s` (`[S, m]`).
    pub subsets_real: Array2<usize>,
    /// Row `s`: the generated-row indices of subset `s` (`[S, m]`).
    pub subsets_fake: Array2<usize>,
}

/// The shared work of a selection of metrics, deduplicated.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    needs: BTreeSet<Need>,
    kernel: Option<KernelNeed>,
    /// Rows of the real, generated and training sets given as rows.
    rows: [Option<usize>; 3],
    dim: Option<usize>,
    resampling: bool,
}

impl Plan {
    /// An empty plan that knows nothing of the data.
    pub fn new() -> Self {
        Plan::default()
    }

    /// An empty plan for the inputs of `cx`: metrics may read the sizes of
    /// the sets ([`Plan::rows`], [`Plan::dim`]) to declare their needs.
    pub fn for_context(cx: &Context<'_>) -> Self {
        let i = cx.inputs();
        let rows = |side: Option<SideData<'_>>| match side {
            Some(SideData::Rows(r)) => Some(r.nrows()),
            _ => None,
        };
        Plan {
            rows: [rows(i.real), rows(i.fake), i.train.map(|t| t.nrows())],
            dim: i.real.or(i.fake).map(|s| s.dim()),
            resampling: cx.is_resample(),
            ..Plan::default()
        }
    }

    /// Rows of `set` when it is given as rows (`None`: absent, statistics
    /// only, or a plan made without data).
    pub fn rows(&self, set: Set) -> Option<usize> {
        self.rows[set.index()]
    }

    /// The feature dimension, when known.
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// Whether the plan is for a resample ([`Context::resampling`]).
    pub fn is_resample(&self) -> bool {
        self.resampling
    }

    /// Declares kernel sums over the real and generated rows (one per plan:
    /// a second, different request is not shared, its metric computes it).
    pub fn kernel_sums(&mut self, need: KernelNeed) {
        if self.kernel.is_none() {
            self.kernel = Some(need);
        }
    }

    /// Declares a need (idempotent).
    pub fn need(&mut self, need: Need) {
        self.needs.insert(need);
    }

    /// Declares the k-th neighbour radii of `set`.
    pub fn radii(&mut self, set: Set, k: usize) {
        self.need(Need::Radii { set, k });
    }

    /// Declares the Gaussian fit of `set`.
    pub fn gaussian(&mut self, set: Set) {
        self.need(Need::Gaussian(set));
    }

    /// The declared needs, in a fixed order.
    pub fn needs(&self) -> impl Iterator<Item = &Need> {
        self.needs.iter()
    }
}

/// Squared k-th neighbour radii by `(set, k)`.
type RadiiCache = HashMap<(Set, usize), Arc<Array1<f64>>>;

/// Answers of the (real, generated) cross pass by their [`Need`].
type CrossCache = HashMap<Need, Arc<CrossAnswer>>;

/// Kernel sums read off the passes, with the request they answer.
type KernelCache = Option<(KernelNeed, Arc<SubsetKernelSums>)>;

/// An owned cross request (see [`Context::prepare`]).
enum OwnedRequest {
    Balls {
        radii_a: Array1<f64>,
        radii_b: Array1<f64>,
        boundary: Boundary,
    },
    Weights {
        weights: Array1<f64>,
        eps: f64,
    },
}

/// The spec errors of [`Context::prepare`] are reported under (they are
/// discarded: the metric that needs the work reports its own).
static PREPARE: Spec = Spec {
    name: "prepare",
    about: "shared work",
    reference: "",
    inputs: &[],
    accepts_statistics: true,
    keys: &[],
    dynamic_keys: None,
    make: |_| {
        Err(MetricError::InvalidParameter {
            metric: "prepare",
            detail: "not a metric".into(),
        })
    },
};

/// The inputs of one evaluation and its shared work, computed once.
#[derive(Debug)]
pub struct Context<'a> {
    inputs: Inputs<'a>,
    resampling: bool,
    frechet: [OnceLock<Arc<FrechetSide<'a>>>; 3],
    squared_radii: Mutex<RadiiCache>,
    cross: Mutex<CrossCache>,
    kernel: Mutex<KernelCache>,
}

impl<'a> Context<'a> {
    /// A context over `inputs` with nothing computed yet.
    pub fn new(inputs: Inputs<'a>) -> Self {
        Context {
            inputs,
            resampling: false,
            frechet: Default::default(),
            squared_radii: Mutex::new(HashMap::new()),
            cross: Mutex::new(HashMap::new()),
            kernel: Mutex::new(None),
        }
    }

    /// Marks this context as one resample of an interval computation: metrics
    /// may then skip keys that get no interval (KID's full-set MMD over all
    /// pairs, say), since only interval keys are read from a resample.
    pub fn resampling(mut self, on: bool) -> Self {
        self.resampling = on;
        self
    }

    /// Whether this context is a resample (see [`Context::resampling`]).
    pub fn is_resample(&self) -> bool {
        self.resampling
    }

    /// The inputs.
    pub fn inputs(&self) -> &Inputs<'a> {
        &self.inputs
    }

    /// Checks that every input `spec` needs is present, and that sets given
    /// as statistics are accepted by it.
    ///
    /// # Errors
    /// [`MetricError::MissingInput`] or [`MetricError::NeedsRows`].
    pub fn require(&self, spec: &Spec) -> Result<(), MetricError> {
        for &input in spec.inputs {
            if !self.inputs.has(input) {
                return Err(MetricError::MissingInput {
                    metric: spec.name,
                    input,
                });
            }
        }
        if !spec.accepts_statistics {
            for (set, side) in [(Set::Real, self.inputs.real), (Set::Fake, self.inputs.fake)] {
                if spec.inputs.contains(&set.input()) && matches!(side, Some(SideData::Stats(_))) {
                    return Err(MetricError::NeedsRows {
                        metric: spec.name,
                        set: set.name(),
                    });
                }
            }
        }
        Ok(())
    }

    fn side(&self, spec: &Spec, set: Set) -> Result<SideData<'a>, MetricError> {
        let side = match set {
            Set::Real => self.inputs.real,
            Set::Fake => self.inputs.fake,
            Set::Train => self.inputs.train.map(SideData::Rows),
        };
        side.ok_or(MetricError::MissingInput {
            metric: spec.name,
            input: set.input(),
        })
    }

    /// The rows of `set`.
    ///
    /// # Errors
    /// [`MetricError::MissingInput`] when absent, [`MetricError::NeedsRows`]
    /// when only statistics were given.
    pub fn rows(&self, spec: &Spec, set: Set) -> Result<ArrayView2<'a, f32>, MetricError> {
        match self.side(spec, set)? {
            SideData::Rows(r) => Ok(r),
            SideData::Stats(_) => Err(MetricError::NeedsRows {
                metric: spec.name,
                set: set.name(),
            }),
        }
    }

    /// The Gaussian fit of `set` as the Fréchet distance sees it (covariance
    /// with ddof 1, or centred rows when N ≤ D), computed once.
    ///
    /// # Errors
    /// Fewer than 2 rows, non-finite values, inconsistent statistics.
    pub fn frechet_side(&self, spec: &Spec, set: Set) -> Result<Arc<FrechetSide<'a>>, MetricError> {
        let cell = &self.frechet[set.index()];
        if let Some(s) = cell.get() {
            return Ok(Arc::clone(s));
        }
        let side = match self.side(spec, set)? {
            SideData::Rows(r) => {
                check_set(spec.name, set.name(), r, 2)?;
                FrechetSide::from_features(r)?
            }
            SideData::Stats(s) => FrechetSide::borrowing(s)?,
        };
        Ok(Arc::clone(cell.get_or_init(|| Arc::new(side))))
    }

    /// Squared distance of every row of `set` to its k-th nearest other row
    /// (`r_k(x_i)²`, exact float64), computed once per `(set, k)`.
    ///
    /// # Errors
    /// As `gen_metrics_linalg::kth_neighbour_squared_radii`.
    pub fn squared_radii(
        &self,
        spec: &Spec,
        set: Set,
        k: usize,
    ) -> Result<Arc<Array1<f64>>, MetricError> {
        if let Some(r) = self.cached_radii(set, k) {
            return Ok(r);
        }
        let rows = self.rows(spec, set)?;
        let mut out = kth_neighbour_squared_radii_multi(rows, &[k])?;
        let r = Arc::new(out.pop().ok_or(MetricError::Numerical {
            metric: spec.name,
            detail: "no radii computed".into(),
        })?);
        self.store_radii(set, k, Arc::clone(&r));
        Ok(r)
    }

    /// The k-th neighbour distances `r_k(x_i)` of `set`: the square roots of
    /// [`Context::squared_radii`] (bit-identical to `kth_neighbour_radii`).
    ///
    /// # Errors
    /// As [`Context::squared_radii`].
    pub fn radii(&self, spec: &Spec, set: Set, k: usize) -> Result<Array1<f64>, MetricError> {
        Ok(self.squared_radii(spec, set, k)?.mapv(f64::sqrt))
    }

    /// The answer to `need`: cached, or computed now by a cross pass of its own.
    fn cross_answer(&self, spec: &Spec, need: Need) -> Result<Arc<CrossAnswer>, MetricError> {
        if let Some(a) = self.cached_cross(&need) {
            return Ok(a);
        }
        let req = self.cross_request(spec, need)?;
        let a = self.run_cross(spec, &[(need, req)])?;
        a.into_iter().next().ok_or(MetricError::Numerical {
            metric: spec.name,
            detail: "no cross answer".into(),
        })
    }

    /// Ball statistics between the real (`a`) and generated (`b`) rows with
    /// their k-th neighbour radii ([`Need::CrossBalls`]), computed once (in
    /// [`Context::prepare`]'s single cross pass when planned).
    ///
    /// # Errors
    /// As [`Context::radii`] and `gen_metrics_linalg::cross_ball_statistics`.
    pub fn cross_balls(
        &self,
        spec: &Spec,
        k: usize,
        boundary: Boundary,
    ) -> Result<Arc<CrossBallStats>, MetricError> {
        let need = Need::CrossBalls { k, boundary };
        let answer = self.cross_answer(spec, need)?;
        match &*answer {
            CrossAnswer::Balls(st) => Ok(Arc::new(st.clone())),
            CrossAnswer::MaxWeight(_) => Err(MetricError::Numerical {
                metric: spec.name,
                detail: "cross answer of the wrong kind".into(),
            }),
        }
    }

    /// The scores of [`Need::ClampedRadiusScores`] (one per generated row),
    /// computed once.
    ///
    /// # Errors
    /// As [`Context::squared_radii`] and
    /// `gen_metrics_linalg::max_weight_over_distance`.
    pub fn clamped_radius_scores(
        &self,
        spec: &Spec,
        k: usize,
        percentile: f64,
        eps: f64,
    ) -> Result<Array1<f64>, MetricError> {
        let need = Need::ClampedRadiusScores {
            k,
            percentile_bits: percentile.to_bits(),
            eps_bits: eps.to_bits(),
        };
        let answer = self.cross_answer(spec, need)?;
        match &*answer {
            CrossAnswer::MaxWeight(v) => Ok(v.clone()),
            CrossAnswer::Balls(_) => Err(MetricError::Numerical {
                metric: spec.name,
                detail: "cross answer of the wrong kind".into(),
            }),
        }
    }

    /// The inputs of one cross request (radii or weights, owned).
    fn cross_request(&self, spec: &Spec, need: Need) -> Result<OwnedRequest, MetricError> {
        match need {
            Need::CrossBalls { k, boundary } => Ok(OwnedRequest::Balls {
                radii_a: self.radii(spec, Set::Real, k)?,
                radii_b: self.radii(spec, Set::Fake, k)?,
                boundary,
            }),
            Need::ClampedRadiusScores {
                k,
                percentile_bits,
                eps_bits,
            } => {
                let rho = self.squared_radii(spec, Set::Real, k)?;
                Ok(OwnedRequest::Weights {
                    weights: zero_above_percentile(rho.view(), f64::from_bits(percentile_bits)),
                    eps: f64::from_bits(eps_bits),
                })
            }
            Need::Radii { .. } | Need::Gaussian(_) => Err(MetricError::Numerical {
                metric: spec.name,
                detail: "not a cross request".into(),
            }),
        }
    }

    /// One pass over the (real, generated) distances answering every request;
    /// the answers are cached under their needs.
    fn run_cross(
        &self,
        spec: &Spec,
        reqs: &[(Need, OwnedRequest)],
    ) -> Result<Vec<Arc<CrossAnswer>>, MetricError> {
        Ok(self.run_cross_with(spec, reqs, None)?.0)
    }

    /// [`Context::run_cross`], also reading the between-set sums of `kernel`
    /// off the pass's blocks when given.
    /// The kernel sums come back with their answers moved out (cached).
    fn run_cross_with(
        &self,
        spec: &Spec,
        reqs: &[(Need, OwnedRequest)],
        kernel: Option<&KernelNeed>,
    ) -> Result<(Vec<Arc<CrossAnswer>>, Option<CrossAndSums>), MetricError> {
        let real = self.rows(spec, Set::Real)?;
        let fake = self.rows(spec, Set::Fake)?;
        let views: Vec<CrossRequest<'_>> = reqs
            .iter()
            .map(|(_, r)| match r {
                OwnedRequest::Balls {
                    radii_a,
                    radii_b,
                    boundary,
                } => CrossRequest::Balls {
                    radii_a: radii_a.view(),
                    radii_b: radii_b.view(),
                    boundary: *boundary,
                },
                OwnedRequest::Weights { weights, eps } => CrossRequest::MaxWeightOverDistance {
                    weights_a: weights.view(),
                    power: DistancePower::Squared,
                    eps: *eps,
                },
            })
            .collect();
        let (answers, between) = match kernel {
            Some(n) => {
                let mut r = cross_pass_with_kernel(
                    real,
                    fake,
                    &views,
                    n.kernel,
                    n.subsets_real.view(),
                    n.subsets_fake.view(),
                )?;
                (std::mem::take(&mut r.answers), Some(r))
            }
            None => (cross_pass(real, fake, &views)?, None),
        };
        let mut map = self.cross.lock().unwrap_or_else(|p| p.into_inner());
        let answers = reqs
            .iter()
            .zip(answers)
            .map(|((need, _), a)| {
                let a = Arc::new(a);
                map.insert(*need, Arc::clone(&a));
                a
            })
            .collect();
        Ok((answers, between))
    }

    /// The kernel sums of `need` when [`Context::prepare`] read them off its
    /// passes (`None`: not planned, or not computable there; the metric then
    /// computes them itself, with the same passes, to the same bits).
    pub fn kernel_sums(&self, need: &KernelNeed) -> Option<Arc<SubsetKernelSums>> {
        let cache = self.kernel.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|(n, _)| n == need)
            .map(|(_, s)| Arc::clone(s))
    }

    fn cached_cross(&self, need: &Need) -> Option<Arc<CrossAnswer>> {
        let map = self.cross.lock().unwrap_or_else(|p| p.into_inner());
        map.get(need).cloned()
    }

    fn cached_radii(&self, set: Set, k: usize) -> Option<Arc<Array1<f64>>> {
        let map = self.squared_radii.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(set, k)).cloned()
    }

    fn store_radii(&self, set: Set, k: usize, r: Arc<Array1<f64>>) {
        let mut map = self.squared_radii.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((set, k), r);
    }

    /// Computes the shared work of `plan` ahead of the metrics: every radius
    /// of a set in one pass over its distances, each Gaussian fit once.
    /// Best effort: a need that cannot be computed (too few rows for its k, a
    /// missing set) is left to the metric that asked for it, which then
    /// reports the error with its own name and checks.
    pub fn prepare(&self, plan: &Plan) {
        // The real and generated fits side by side when both are rows
        // (`FrechetSide::from_features_pair`: the same values, sooner).
        let wants = |set| plan.needs().any(|n| *n == Need::Gaussian(set));
        if wants(Set::Real)
            && wants(Set::Fake)
            && let (Some(SideData::Rows(r)), Some(SideData::Rows(f))) =
                (self.inputs.real, self.inputs.fake)
            && check_set("", "", r, 2).is_ok()
            && check_set("", "", f, 2).is_ok()
        {
            let (a, b) = FrechetSide::from_features_pair(r, f);
            for (set, fit) in [(Set::Real, a), (Set::Fake, b)] {
                if let Ok(fit) = fit {
                    let _ = self.frechet[set.index()].set(Arc::new(fit));
                }
            }
        }
        let mut ks: BTreeMap<Set, Vec<usize>> = BTreeMap::new();
        // Kernel sums ride on the passes over the real and generated rows.
        let kernel = plan.kernel.as_ref().filter(|_| {
            matches!(
                (self.inputs.real, self.inputs.fake),
                (Some(SideData::Rows(_)), Some(SideData::Rows(_)))
            )
        });
        if kernel.is_some() {
            ks.entry(Set::Real).or_default();
            ks.entry(Set::Fake).or_default();
        }
        let mut within: [Option<RadiiAndSums>; 2] = [None, None];
        for need in plan.needs() {
            match *need {
                Need::Radii { set, k } => ks.entry(set).or_default().push(k),
                Need::Gaussian(set) => {
                    if self.frechet[set.index()].get().is_some() {
                        continue;
                    }
                    let side = match set {
                        Set::Real => self.inputs.real,
                        Set::Fake => self.inputs.fake,
                        Set::Train => self.inputs.train.map(SideData::Rows),
                    };
                    let fit = match side {
                        Some(SideData::Rows(r)) if check_set("", "", r, 2).is_ok() => {
                            FrechetSide::from_features(r).ok()
                        }
                        Some(SideData::Stats(s)) => FrechetSide::borrowing(s).ok(),
                        _ => None,
                    };
                    if let Some(fit) = fit {
                        let _ = self.frechet[set.index()].set(Arc::new(fit));
                    }
                }
                Need::CrossBalls { .. } | Need::ClampedRadiusScores { .. } => {}
            }
        }
        for (set, mut k_list) in ks {
            k_list.retain(|&k| self.cached_radii(set, k).is_none());
            let rows = match set {
                Set::Real => self.inputs.real,
                Set::Fake => self.inputs.fake,
                Set::Train => self.inputs.train.map(SideData::Rows),
            };
            let Some(SideData::Rows(rows)) = rows else {
                continue;
            };
            k_list.retain(|&k| k >= 1 && k < rows.nrows());
            if check_set("", "", rows, 2).is_err() {
                continue;
            }
            let subsets = kernel.and_then(|n| match set {
                Set::Real => Some((n.kernel, &n.subsets_real)),
                Set::Fake => Some((n.kernel, &n.subsets_fake)),
                Set::Train => None,
            });
            if let Some((kern, subsets)) = subsets
                && let Ok(mut r) =
                    kth_neighbour_squared_radii_with_kernel(rows, &k_list, kern, subsets.view())
            {
                for (&k, radii) in k_list.iter().zip(std::mem::take(&mut r.radii)) {
                    self.store_radii(set, k, Arc::new(radii));
                }
                within[set.index()] = Some(r);
                continue;
            }
            if k_list.is_empty() {
                continue;
            }
            if let Ok(all) = kth_neighbour_squared_radii_multi(rows, &k_list) {
                for (k, r) in k_list.into_iter().zip(all) {
                    self.store_radii(set, k, Arc::new(r));
                }
            }
        }
        // Every cross request in one pass over the (real, generated) blocks,
        // with the between-set kernel sums when the within-set ones were read.
        // Needs whose radii could not be formed are left to their metric.
        let reqs: Vec<(Need, OwnedRequest)> = plan
            .needs()
            .filter(|n| {
                matches!(
                    n,
                    Need::CrossBalls { .. } | Need::ClampedRadiusScores { .. }
                )
            })
            .filter(|n| self.cached_cross(n).is_none())
            .filter_map(|&n| self.cross_request(&PREPARE, n).ok().map(|r| (n, r)))
            .collect();
        let [wx, wy] = within;
        match (kernel, wx, wy) {
            (Some(need), Some(x), Some(y)) => {
                if let Ok((_, Some(xy))) = self.run_cross_with(&PREPARE, &reqs, Some(need)) {
                    let sums = SubsetKernelSums::from_passes(x, y, xy);
                    let mut cache = self.kernel.lock().unwrap_or_else(|p| p.into_inner());
                    *cache = Some((need.clone(), Arc::new(sums)));
                } else if !reqs.is_empty() {
                    let _ = self.run_cross(&PREPARE, &reqs);
                }
            }
            _ => {
                if !reqs.is_empty() {
                    let _ = self.run_cross(&PREPARE, &reqs);
                }
            }
        }
    }
}
