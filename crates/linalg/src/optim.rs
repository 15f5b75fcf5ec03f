//! First-order optimisation shared by the metrics that fit parameters by
//! gradient descent (the fringe-feature attack's weights, FLS's bandwidths).

/// The Adam optimiser (Kingma & Ba 2015) in PyTorch's formulation
/// (`torch.optim.Adam`, no weight decay, no AMSGrad). At step `t = 1, 2, …`
/// with gradient `g` and learning rate `lr`:
///
/// ```text
/// m_t = β₁ m_{t−1} + (1 − β₁) g
/// v_t = β₂ v_{t−1} + (1 − β₂) g²
/// θ_t = θ_{t−1} − (lr / (1 − β₁ᵗ)) · m_t / (√v_t / √(1 − β₂ᵗ) + ε)
/// ```
///
/// elementwise, with `m_0 = v_0 = 0`. Defaults: `β₁ = 0.9`, `β₂ = 0.999`,
/// `ε = 1e-8` (PyTorch's).
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    /// Adam for `n` parameters with PyTorch's defaults (β = 0.9 / 0.999, ε = 1e-8).
    pub fn new(n: usize) -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Sets the moment decay rates β₁ and β₂.
    #[must_use]
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Sets ε, added to the bias-corrected root of the second moment.
    #[must_use]
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Number of steps taken.
    pub fn steps_taken(&self) -> usize {
        usize::try_from(self.t).unwrap_or(0)
    }

    /// One step: updates `params` in place from `grad` with learning rate
    /// `lr` (see the type's docs for the formula). Entries past the shorter
    /// of `params`, `grad` and the optimiser's size are left alone.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        self.t = self.t.saturating_add(1);
        let bc1 = 1.0 - self.beta1.powi(self.t);
        let bc2 = 1.0 - self.beta2.powi(self.t);
        let (b1, b2) = (self.beta1, self.beta2);
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let denom = v.sqrt() / bc2.sqrt() + self.eps;
            *p -= (lr / bc1) * *m / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr_against_its_gradient_sign() {
        // m̂ = g, v̂ = g², so the step is lr · g / (|g| + ε) ≈ lr · sign(g).
        let mut adam = Adam::new(3);
        let mut p = [1.0, 2.0, 3.0];
        adam.step(&mut p, &[0.5, -4.0, 0.0], 0.1);
        assert!((p[0] - 0.9).abs() < 1e-7, "{p:?}");
        assert!((p[1] - 2.1).abs() < 1e-7, "{p:?}");
        assert_eq!(p[2], 3.0);
        assert_eq!(adam.steps_taken(), 1);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut adam = Adam::new(2);
        let mut p = [5.0, -3.0];
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - 1.0), 2.0 * (p[1] + 2.0)];
            adam.step(&mut p, &g, 0.05);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-3 && (p[1] + 2.0).abs() < 1e-3,
            "{p:?}"
        );
    }
}
