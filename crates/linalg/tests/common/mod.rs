//! What the mock devices of the `gram_device*` tests share.

/// A mock device's copy of one pass's sets ([`GramDevice::resident`]).
///
/// [`GramDevice::resident`]: gen_metrics_linalg::pairwise::GramDevice::resident
pub struct KeptSets {
    a: Vec<f32>,
    /// `None`: `a` with itself.
    b: Option<Vec<f32>>,
    d: usize,
}

impl KeptSets {
    pub fn new(a: &[f32], b: Option<&[f32]>, d: usize) -> Self {
        KeptSets {
            a: a.to_vec(),
            b: b.map(<[f32]>::to_vec),
            d,
        }
    }

    pub fn d(&self) -> usize {
        self.d
    }

    /// Rows `i0..i0 + ni` of the first set and `j0..j0 + nj` of the second,
    /// or an error for a range outside them.
    pub fn block(
        &self,
        (i0, ni): (usize, usize),
        (j0, nj): (usize, usize),
    ) -> Result<(&[f32], &[f32]), String> {
        let d = self.d;
        let b = self.b.as_ref().unwrap_or(&self.a);
        let rows = self
            .a
            .get(i0 * d..(i0 + ni) * d)
            .ok_or("rows out of range")?;
        let cols = b.get(j0 * d..(j0 + nj) * d).ok_or("columns out of range")?;
        Ok((rows, cols))
    }
}
