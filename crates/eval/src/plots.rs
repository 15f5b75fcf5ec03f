//! SVG plots of a [`Report`] (plotters, SVG backend only: no fonts or
//! system libraries needed):
//!
//! * `metric_<key>.svg`: one chart per scored key, the value of each
//!   generated set with its interval;
//! * `pr_plane.svg` / `dc_plane.svg`: the precision/recall (and
//!   density/coverage) plane, one point per set;
//! * `realism_hist.svg`: histograms of the per-sample realism scores;
//! * `fd_inf.svg`: FID against 1/N with the FD-inf extrapolation line.
//!
//! Every series carries its set's name in the legend, so a reader (and the
//! tests) can tell which is which.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::EvalError;
use crate::report::Report;
use gen_metrics_metric::Direction;

const W: u32 = 720;
const H: u32 = 420;

fn err(name: &str) -> impl Fn(String) -> EvalError + '_ {
    move |detail| EvalError::Plot {
        name: name.to_owned(),
        detail,
    }
}

fn color(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).to_rgba().rgb();
    RGBColor(r, g, b)
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let span = (hi - lo).abs().max(1e-12 * hi.abs().max(1.0));
    (lo - 0.1 * span, hi + 0.1 * span)
}

/// A chart on the SVG backend with float axes.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend (one entry per labelled series: the set names).
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())
}

/// Renders every plot of `report`: `(file name, SVG text)`.
///
/// # Errors
/// [`EvalError::Plot`] when a chart cannot be drawn.
pub fn render_all(report: &Report) -> Result<Vec<(String, String)>, EvalError> {
    let mut out = Vec::new();
    for key in scored_keys(report) {
        let name = format!("metric_{key}.svg");
        out.push((
            name.clone(),
            metric_chart(report, &key).map_err(err(&name))?,
        ));
    }
    for (file, x, y) in [
        ("pr_plane.svg", "recall", "precision"),
        ("dc_plane.svg", "coverage", "density"),
    ] {
        if report
            .sets
            .iter()
            .any(|s| s.get(x).is_some() && s.get(y).is_some())
        {
            out.push((file.into(), plane(report, x, y).map_err(err(file))?));
        }
    }
    if report
        .sets
        .iter()
        .any(|s| s.per_sample.iter().any(|p| p.key == "realism"))
    {
        out.push((
            "realism_hist.svg".into(),
            realism_hist(report).map_err(err("realism_hist.svg"))?,
        ));
    }
    if report
        .sets
        .iter()
        .any(|s| s.curves.iter().any(|c| c.key == "fd_vs_inverse_n"))
    {
        out.push((
            "fd_inf.svg".into(),
            fd_inf(report).map_err(err("fd_inf.svg"))?,
        ));
    }
    Ok(out)
}

/// Keys with a direction that are in the registry's fixed keys.
fn scored_keys(report: &Report) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for s in &report.sets {
        for v in &s.values {
            if v.direction != Direction::NotAScore
                && crate::registry::key_spec(&v.key).is_some()
                && !keys.contains(&v.key)
            {
                keys.push(v.key.clone());
            }
        }
    }
    keys
}

/// One set's value on a metric chart: index, name, value, interval.
type Point<'a> = (usize, &'a str, f64, Option<(f64, f64)>);

fn metric_chart(report: &Report, key: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let pts: Vec<Point<'_>> = report
            .sets
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.get(key).map(|v| {
                    (
                        i,
                        s.set.name.as_str(),
                        v.value,
                        v.interval.map(|x| (x.low, x.high)),
                    )
                })
            })
            .collect();
        let lo = pts
            .iter()
            .map(|p| p.3.map_or(p.2, |i| i.0.min(p.2)))
            .fold(f64::INFINITY, f64::min);
        let hi = pts
            .iter()
            .map(|p| p.3.map_or(p.2, |i| i.1.max(p.2)))
            .fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = padded(lo, hi);
        let n = report.sets.len();
        let dir = pts
            .first()
            .and_then(|p| report.sets[p.0].get(key))
            .map_or("", |v| v.direction.arrow());
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{key} {dir}"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = report.sets.iter().map(|s| s.set.name.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-9 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(key)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, name, v, ci) in pts {
            let c = color(i);
            if let Some((l, h)) = ci {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(i as f64, l), (i as f64, h)],
                        c.stroke_width(2),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .draw_series(std::iter::once(Circle::new((i as f64, v), 5, c.filled())))
                .map_err(|e| e.to_string())?
                .label(name.to_owned())
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn plane(report: &Report, x: &str, y: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H + 80)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let ymax = report
            .sets
            .iter()
            .filter_map(|s| {
                s.get(y)
                    .map(|v| v.interval.map_or(v.value, |i| i.high.max(v.value)))
            })
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{y} against {x}"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1.05, 0f64..(ymax * 1.05))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x)
            .y_desc(y)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in report.sets.iter().enumerate() {
            let (Some(vx), Some(vy)) = (s.get(x), s.get(y)) else {
                continue;
            };
            let c = color(i);
            if let Some(ix) = vx.interval {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(ix.low, vy.value), (ix.high, vy.value)],
                        c.stroke_width(1),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(iy) = vy.interval {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(vx.value, iy.low), (vx.value, iy.high)],
                        c.stroke_width(1),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .draw_series(std::iter::once(Circle::new(
                    (vx.value, vy.value),
                    6,
                    c.filled(),
                )))
                .map_err(|e| e.to_string())?
                .label(s.set.name.clone())
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn realism_hist(report: &Report) -> Result<String, String> {
    const BINS: usize = 30;
    let series: Vec<(usize, &str, &[f64])> = report
        .sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.per_sample
                .iter()
                .find(|p| p.key == "realism")
                .map(|p| (i, s.set.name.as_str(), p.values.as_slice()))
        })
        .collect();
    let lo = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let hi = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let width = (hi - lo) / BINS as f64;
    let counts: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut c = vec![0.0; BINS];
            for &v in s.2 {
                let b = (((v - lo) / width) as usize).min(BINS - 1);
                c[b] += 1.0;
            }
            let n = s.2.len().max(1) as f64;
            c.iter().map(|x| x / n).collect()
        })
        .collect();
    let ymax = counts
        .iter()
        .flat_map(|c| c.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("per-sample realism score", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0f64..ymax * 1.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("realism")
            .y_desc("share of samples")
            .draw()
            .map_err(|e| e.to_string())?;
        for ((i, name, _), c) in series.iter().zip(&counts) {
            let col = color(*i);
            let pts: Vec<(f64, f64)> = c
                .iter()
                .enumerate()
                .flat_map(|(b, &v)| {
                    let x0 = lo + b as f64 * width;
                    [(x0, v), (x0 + width, v)]
                })
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label((*name).to_owned())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col));
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn fd_inf(report: &Report) -> Result<String, String> {
    let curves: Vec<(usize, &str, &gen_metrics_metric::Curve)> = report
        .sets
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.curves
                .iter()
                .find(|c| c.key == "fd_vs_inverse_n")
                .map(|c| (i, s.set.name.as_str(), c))
        })
        .collect();
    let xmax = curves
        .iter()
        .flat_map(|c| c.2.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let (ylo, yhi) = curves
        .iter()
        .flat_map(|c| c.2.points.iter().map(|p| p.1).chain(c.2.line.map(|l| l.0)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (ylo, yhi) = padded(ylo, yhi);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("FID against 1/N, extrapolated to N = ∞", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..xmax * 1.05, ylo..yhi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("1/N")
            .y_desc("FID_N")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, name, c) in curves {
            let col = color(i);
            chart
                .draw_series(
                    c.points
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, col.filled())),
                )
                .map_err(|e| e.to_string())?
                .label(name.to_owned())
                .legend(move |(x, y)| Circle::new((x, y), 4, col.filled()));
            if let Some((a, b)) = c.line {
                chart
                    .draw_series(LineSeries::new(
                        vec![(0.0, a), (xmax * 1.05, a + b * xmax * 1.05)],
                        col.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
            }
        }
        legend(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
