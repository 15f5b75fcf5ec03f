//! The distributed evaluation and the training-loop merge.

use std::collections::HashSet;

use gen_metrics_eval::{
    EncodedSets, Evaluation, EvaluatorState, Extraction, LoadedSet, Report, SetData, SetKind,
    SetSource, SideParts, evaluator::SideState,
};
use gen_metrics_linalg::GaussianAccumulator;
use ndarray::Array2;

use crate::{DistError, DistOptions, Group, cap_selection, ranks, shard_range};

/// Runs `evaluation` on every rank of `group`: each rank encodes its shard
/// ([`shard_range`], aligned to the encoder batch size) of every image
/// folder or `.zip` (with the feature cache; the shard is part of the cache
/// key), the rows are gathered to rank 0 in row order (or, with
/// `statistics_only`, the Gaussian statistics are merged), and rank 0 runs
/// the single-process pipeline on them ([`Evaluation::run_with_encoded`]).
/// Feature files, statistics and image arrays are loaded by rank 0 alone.
///
/// Returns the report on rank 0, `None` on the other ranks. Every rank must
/// call it with the same evaluation and options. On an error the caller
/// should print it and call [`Group::abort`] (other ranks may be waiting in
/// a collective step), except for [`DistError::Plan`], which every rank
/// gets before any communication.
///
/// # Errors
/// [`DistError::Plan`] for an invalid evaluation; [`DistError::Eval`] for a
/// file that cannot be read or decoded (naming it) on this rank, or a metric
/// error on rank 0; [`DistError::Ranks`] when ranks see different files.
pub fn evaluate(
    group: &Group,
    evaluation: &Evaluation,
    options: &DistOptions,
) -> Result<Option<Report>, DistError> {
    evaluation.plan().map_err(DistError::Plan)?;
    let (rank, size) = (group.rank(), group.size());
    let mut extract_options = evaluation.extraction_options().clone();
    extract_options.progress &= rank == 0;
    let align = extract_options.batch_size.max(1);
    let mut extraction = Extraction::new(extract_options);
    let mut encoded = EncodedSets::default();
    let mut seen = HashSet::new();
    for src in evaluation.sources() {
        let SetSource::Path(path) = src else { continue };
        if !src.is_image_collection() || !seen.insert(path.clone()) {
            continue;
        }
        let n = Extraction::image_count(path)?;
        let counts = group.all_gather_u64(n as u64);
        if let Some(r) = counts.iter().position(|&c| c as usize != n) {
            return Err(DistError::Ranks(format!(
                "{}: rank {r} sees {} images, rank {rank} {n}: every rank must see the same files",
                path.display(),
                counts[r]
            )));
        }
        let shard = shard_range(n, size, rank, align);
        let out = extraction.extract_rows(path, shard)?;
        let skipped: Vec<(String, String)> =
            out.skipped.into_iter().map(|s| (s.name, s.error)).collect();
        let data = if options.statistics_only {
            let mut acc = GaussianAccumulator::new(out.features.ncols()).map_err(ranks)?;
            if out.features.nrows() > 0 {
                acc.push(out.features.view()).map_err(ranks)?;
            }
            drop(out.features);
            match group.reduce_gaussian(acc)? {
                Some(acc) => Some(SetData::Stats(acc.into_stats_unbiased().map_err(ranks)?)),
                None => None,
            }
        } else {
            let kept = group.all_gather_u64(out.features.nrows() as u64);
            let total = kept.iter().sum::<u64>() as usize;
            let selection = cap_selection(total, options.gather_cap, options.seed);
            group
                .gather_rows(out.features.view(), selection.as_deref())?
                .map(SetData::Rows)
        };
        let bytes = serde_json::to_vec(&skipped).map_err(ranks)?;
        let all_skipped = group.gather_bytes(&bytes);
        if let (Some(data), Some(parts)) = (data, all_skipped) {
            let mut skipped = Vec::new();
            for p in parts {
                let s: Vec<(String, String)> = serde_json::from_slice(&p).map_err(ranks)?;
                skipped.extend(s);
            }
            encoded.sets.insert(
                path.clone(),
                LoadedSet {
                    label: path.display().to_string(),
                    kind: SetKind::Images,
                    data,
                    skipped,
                },
            );
        }
    }
    if rank != 0 {
        return Ok(None);
    }
    encoded.encoder = extraction.encoder_description();
    Ok(Some(evaluation.run_with_encoded(encoded)?))
}

/// Gathers every rank's training-loop evaluator state to rank 0, in rank
/// order (`None` on the other ranks): merge them there with
/// `Evaluator::merge` (statistics exactly, kept rows concatenated or merged
/// as reservoirs). Sends `d² × 8` bytes of statistics plus the kept rows
/// per side.
///
/// # Errors
/// [`DistError::Ranks`] for mismatched dimensions or an invalid state.
pub fn gather_evaluator_states(
    group: &Group,
    state: &EvaluatorState,
) -> Result<Option<Vec<EvaluatorState>>, DistError> {
    let mut sides = Vec::new();
    for side in [&state.real, &state.fake] {
        let parts = side.to_parts();
        let meta = serde_json::to_vec(&SideMeta {
            n: parts.accumulator.as_ref().map(|a| a.n),
            dim: parts.dim,
            seen: parts.seen,
            encoder: state.encoder.clone(),
        })
        .map_err(ranks)?;
        let metas = group.gather_bytes(&meta);
        // The statistics travel as a one-row "matrix" of mean then co-moment
        // (float32 would lose precision): sent as f64 bytes.
        let stats: Vec<u8> = parts
            .accumulator
            .as_ref()
            .map(|a| {
                a.mean
                    .iter()
                    .chain(a.comoment.iter())
                    .flat_map(|v| v.to_le_bytes())
                    .collect()
            })
            .unwrap_or_default();
        let stats = group.gather_bytes(&stats);
        let rows = group.gather_bytes(
            &parts
                .rows
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        sides.push((metas, stats, rows));
    }
    if !group.is_root() {
        return Ok(None);
    }
    let mut states: Vec<EvaluatorState> = (0..group.size())
        .map(|_| EvaluatorState::default())
        .collect();
    for (which, (metas, stats, rows)) in sides.into_iter().enumerate() {
        let (Some(metas), Some(stats), Some(rows)) = (metas, stats, rows) else {
            return Err(DistError::Ranks("gathered nothing on rank 0".into()));
        };
        for (r, ((m, s), w)) in metas.iter().zip(&stats).zip(&rows).enumerate() {
            let m: SideMeta = serde_json::from_slice(m).map_err(ranks)?;
            let f64s: Vec<f64> = s
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect();
            let accumulator = match m.n {
                Some(n) if f64s.len() == m.dim + m.dim * m.dim => {
                    Some(gen_metrics_linalg::AccumulatorParts {
                        n,
                        mean: ndarray::Array1::from_vec(f64s[..m.dim].to_vec()),
                        comoment: Array2::from_shape_vec((m.dim, m.dim), f64s[m.dim..].to_vec())
                            .map_err(ranks)?,
                    })
                }
                Some(_) => return Err(DistError::Ranks(format!("rank {r}: truncated state"))),
                None => None,
            };
            let f32s: Vec<f32> = w
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                .collect();
            let nrows = f32s.len().checked_div(m.dim).unwrap_or(0);
            let rows = Array2::from_shape_vec((nrows, m.dim), f32s).map_err(ranks)?;
            let side = SideState::from_parts(SideParts {
                accumulator,
                dim: m.dim,
                rows,
                seen: m.seen,
            })?;
            states[r].encoder = m.encoder;
            if which == 0 {
                states[r].real = side;
            } else {
                states[r].fake = side;
            }
        }
    }
    Ok(Some(states))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SideMeta {
    n: Option<usize>,
    dim: usize,
    seen: u64,
    encoder: Option<String>,
}
