//! A data-parallel training loop's evaluation over MPI: every rank feeds its
//! own `gen_metrics::Evaluator` with the features of its share of the real
//! data (once) and of the images its replica generates; at each evaluation
//! step the ranks' states are gathered to rank 0
//! (`gen_metrics::mpi::gather_evaluator_states`) and merged there
//! (`Evaluator::merge`: the Gaussian statistics exactly, by Chan et al.'s
//! pairwise formula, in rank order; the kept rows concatenated), which then
//! computes FID, KID and precision/recall of all ranks' samples together.
//!
//! The "generator" here is a toy in feature space (so that the example needs
//! no model): rank `r` draws 64-d Gaussian rows whose mean approaches the
//! real one as training goes on. As a self-check, rank 0 also feeds every
//! rank's rows to one evaluator and compares: FID equal to 1e-9 relative,
//! KID and precision/recall identical. Replace the toy rows with
//! `update_fake_images` on real generator output (see
//! `examples/training_loop.rs`); run one rank per GPU (docs/distributed.md).
//!
//! ```sh
//! cargo build --release --features mpi --example distributed_training_loop
//! mpirun -n 3 target/release/examples/distributed_training_loop --steps 30 --eval-every 10
//! ```
//!
//! Options: `--steps N` (30), `--eval-every N` (10), `--n-eval N` (generated
//! rows per rank per evaluation, 100), `--seed N` (0).

use anyhow::{Context, Result, bail};
use gen_metrics::eval::Params;
use gen_metrics::eval::evaluator::{Evaluator, EvaluatorOptions};
use gen_metrics::mpi::{Group, gather_evaluator_states};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const DIM: usize = 64;
const REAL_PER_RANK: usize = 200;

struct Args {
    steps: usize,
    eval_every: usize,
    n_eval: usize,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        steps: 30,
        eval_every: 10,
        n_eval: 100,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n: u64 = v
            .parse()
            .with_context(|| format!("{flag} {v}: not a number"))?;
        match flag.as_str() {
            "--steps" => a.steps = n as usize,
            "--eval-every" => a.eval_every = (n as usize).max(1),
            "--n-eval" => a.n_eval = n as usize,
            "--seed" => a.seed = n,
            _ => bail!("unknown option {flag}"),
        }
    }
    Ok(a)
}

/// `n` rows of N(shift, I) in `DIM` dimensions, from a seeded stream.
fn rows(n: usize, shift: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, DIM), || {
        let z: f32 = StandardNormal.sample(&mut rng);
        z + shift
    })
}

fn options(args: &Args) -> EvaluatorOptions {
    EvaluatorOptions {
        metrics: vec!["fid".into(), "kid".into(), "pr".into()],
        params: Params {
            seed: args.seed,
            kid_subset_size: Some(100),
            ..Params::default()
        },
        max_rows: None,
        seed: args.seed,
    }
}

fn real_seed(args: &Args, rank: usize) -> u64 {
    args.seed * 1_000_003 + rank as u64
}

fn fake_seed(args: &Args, rank: usize, step: usize) -> u64 {
    (args.seed * 1_000_003 + rank as u64) * 1_000_033 + step as u64 + 7
}

/// The toy generator's distance from the real mean after `step` steps.
fn shift(step: usize, steps: usize) -> f32 {
    1.0 - step as f32 / (steps.max(1) as f32 + 1.0)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let group = Group::init()?;
    // A failing rank ends every rank (MPI_Abort): returning the error would
    // leave the others blocked in a gather that never completes.
    if let Err(e) = run(&group, &args) {
        eprintln!("rank {} of {}: error: {e:#}", group.rank(), group.size());
        group.abort(1);
    }
    Ok(())
}

fn run(group: &Group, args: &Args) -> Result<()> {
    let (rank, size) = (group.rank(), group.size());
    let mut eval = Evaluator::new(options(args))?;
    eval.update_real(rows(REAL_PER_RANK, 0.0, real_seed(args, rank)).view())?;
    for step in 1..=args.steps {
        // ... a training step of this rank's replica would run here ...
        if step % args.eval_every != 0 {
            continue;
        }
        eval.reset_fake();
        let fake = rows(
            args.n_eval,
            shift(step, args.steps),
            fake_seed(args, rank, step),
        );
        eval.update_fake(fake.view())?;
        let Some(states) = gather_evaluator_states(group, eval.state())? else {
            continue; // not rank 0: back to training
        };
        let mut merged = Evaluator::new(options(args))?;
        for s in &states {
            merged.merge(s)?;
        }
        let fid = merged.value("fid")?;
        let kid = merged.value("kid_mean")?;
        let precision = merged.value("precision")?;
        // Self-check: one evaluator fed every rank's rows in rank order.
        let mut one = Evaluator::new(options(args))?;
        for r in 0..size {
            one.update_real(rows(REAL_PER_RANK, 0.0, real_seed(args, r)).view())?;
        }
        for r in 0..size {
            let f = rows(
                args.n_eval,
                shift(step, args.steps),
                fake_seed(args, r, step),
            );
            one.update_fake(f.view())?;
        }
        let fid1 = one.value("fid")?;
        if (fid - fid1).abs() > 1e-9 * fid1.abs().max(1e-300)
            || kid != one.value("kid_mean")?
            || precision != one.value("precision")?
        {
            bail!("merged result differs from one process: FID {fid} vs {fid1}");
        }
        println!(
            "step {step:>4}: {size} ranks x {} generated rows: FID {fid:.4}  KID {kid:.5}  precision {precision:.3}  (one process: FID {fid1:.4})",
            args.n_eval
        );
    }
    Ok(())
}
