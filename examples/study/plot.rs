//! A two-panel PNG drawn with the `image` crate alone (no plotting or font
//! dependency): (left) metric curves along the KDE bandwidth ladder,
//! (right) each metric's Kendall tau-b against KL with its bootstrap interval.
//! Text uses a built-in 5×7 bitmap font (upper case, digits, punctuation).

use std::path::Path;

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};

const W: u32 = 1280;
const H: u32 = 560;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GREY: Rgb<u8> = Rgb([200, 200, 200]);

/// One curve of the left panel: label, colour, y value per bandwidth factor.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour.
    pub colour: [u8; 3],
    /// Values, one per factor.
    pub values: Vec<f64>,
}

/// One row of the right panel: metric, point tau-b, interval.
pub struct TauRow {
    /// Metric name.
    pub name: String,
    /// tau-b on the full data (`None`: undefined).
    pub point: Option<f64>,
    /// Bootstrap interval.
    pub low: f64,
    /// Bootstrap interval.
    pub high: f64,
}

/// Draws the figure into `path`.
pub fn draw(path: &Path, factors: &[f64], series: &[Series], taus: &[TauRow]) -> Result<()> {
    let mut c = Canvas {
        img: RgbImage::from_pixel(W, H, WHITE),
    };
    // ---- left: curves vs log10(bandwidth factor) -------------------------
    let (x0, y0, x1, y1) = (70.0, 60.0, 600.0, 480.0);
    let lx: Vec<f64> = factors.iter().map(|f| f.log10()).collect();
    let (xmin, xmax) = (lx[0] - 0.1, lx[lx.len() - 1] + 0.1);
    let ymax = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        .min(2.0);
    let px = |x: f64| x0 + (x - xmin) / (xmax - xmin) * (x1 - x0);
    let py = |y: f64| y1 - y.clamp(0.0, ymax) / ymax * (y1 - y0);
    c.text(x0, 20.0, "METRICS ALONG THE KDE BANDWIDTH LADDER", 2, BLACK);
    c.frame(x0, y0, x1, y1);
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let y = py(v);
        c.line(x0, y, x1, y, GREY, 1);
        c.text(x0 - 44.0, y - 7.0, &format!("{v:.2}"), 2, BLACK);
    }
    for (&f, &x) in factors.iter().zip(&lx) {
        let xp = px(x);
        c.line(xp, y1, xp, y1 + 6.0, BLACK, 1);
        c.text(xp - 14.0, y1 + 12.0, &format!("{f}"), 2, BLACK);
    }
    c.text(
        x0 + 80.0,
        y1 + 40.0,
        "BANDWIDTH FACTOR F (LOG SCALE)",
        2,
        BLACK,
    );
    for (si, s) in series.iter().enumerate() {
        let col = Rgb(s.colour);
        let pts: Vec<(f64, f64)> = lx
            .iter()
            .zip(&s.values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&x, &v)| (px(x), py(v)))
            .collect();
        for w in pts.windows(2) {
            c.line(w[0].0, w[0].1, w[1].0, w[1].1, col, 3);
        }
        for &(x, y) in &pts {
            c.dot(x, y, 5, col);
        }
        let ly = y0 + 10.0 + 20.0 * si as f64;
        c.line(x1 + 12.0, ly + 6.0, x1 + 34.0, ly + 6.0, col, 3);
        c.text(x1 + 40.0, ly, &s.label, 2, col);
    }

    // ---- right: tau-b vs KL with intervals --------------------------------
    let (x0, y0, x1, y1) = (900.0, 60.0, 1250.0, 480.0);
    let px = |t: f64| x0 + (t.clamp(-1.0, 1.0) + 1.0) / 2.0 * (x1 - x0);
    c.text(760.0, 20.0, "KENDALL TAU-B VS KL (95% BOOTSTRAP)", 2, BLACK);
    c.frame(x0, y0, x1, y1);
    for t in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let x = px(t);
        c.line(x, y0, x, y1, if t == 0.0 { BLACK } else { GREY }, 1);
        c.text(x - 16.0, y1 + 12.0, &format!("{t:.1}"), 2, BLACK);
    }
    let n = taus.len().max(1) as f64;
    let step = (y1 - y0) / n;
    for (i, t) in taus.iter().enumerate() {
        let y = y0 + step * (i as f64 + 0.5);
        c.text(
            x0 - 12.0 * (t.name.len() as f64) - 8.0,
            y - 7.0,
            &t.name,
            2,
            BLACK,
        );
        let col = Rgb([40, 90, 200]);
        c.line(px(t.low), y, px(t.high), y, col, 3);
        c.line(px(t.low), y - 5.0, px(t.low), y + 5.0, col, 2);
        c.line(px(t.high), y - 5.0, px(t.high), y + 5.0, col, 2);
        if let Some(p) = t.point {
            c.dot(px(p), y, 6, Rgb([200, 30, 30]));
        }
    }
    c.img
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

struct Canvas {
    img: RgbImage,
}

impl Canvas {
    fn put(&mut self, x: i64, y: i64, col: Rgb<u8>) {
        if x >= 0 && y >= 0 && (x as u32) < W && (y as u32) < H {
            self.img.put_pixel(x as u32, y as u32, col);
        }
    }

    fn dot(&mut self, x: f64, y: f64, r: i64, col: Rgb<u8>) {
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r {
                    self.put(cx + dx, cy + dy, col);
                }
            }
        }
    }

    fn line(&mut self, xa: f64, ya: f64, xb: f64, yb: f64, col: Rgb<u8>, width: i64) {
        let steps = ((xb - xa).abs().max((yb - ya).abs()).ceil() as i64).max(1);
        let half = width / 2;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (xa + t * (xb - xa)).round() as i64;
            let y = (ya + t * (yb - ya)).round() as i64;
            for dy in -half..=(width - 1 - half) {
                for dx in -half..=(width - 1 - half) {
                    self.put(x + dx, y + dy, col);
                }
            }
        }
    }

    fn frame(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        self.line(x0, y0, x1, y0, BLACK, 1);
        self.line(x0, y1, x1, y1, BLACK, 1);
        self.line(x0, y0, x0, y1, BLACK, 1);
        self.line(x1, y0, x1, y1, BLACK, 1);
    }

    /// Text at (x, y) (top-left), each font pixel drawn as `scale`².
    fn text(&mut self, x: f64, y: f64, s: &str, scale: i64, col: Rgb<u8>) {
        let (x, y) = (x.round() as i64, y.round() as i64);
        for (i, ch) in s.chars().enumerate() {
            let g = glyph(ch.to_ascii_uppercase());
            let ox = x + i as i64 * 6 * scale;
            for (row, bits) in g.iter().enumerate() {
                for colb in 0..5 {
                    if bits & (0x10 >> colb) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.put(
                                    ox + colb as i64 * scale + sx,
                                    y + row as i64 * scale + sy,
                                    col,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// 5×7 glyphs, one byte per row, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '|' => [0x04; 7],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '*' => [0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0],
        _ => [0; 7],
    }
}
