//! DINOv2 vision transformers (ViT-S/B/L/g, patch 14) from a `state_dict`
//! ([`StateDict`]) to an ONNX model, as facebookresearch/dinov2 defines them
//! (`dinov2/models/vision_transformer.py`, `dinov2/layers/*`, commit
//! `b8931f7bf91576930313be2c6d6af376033b35f0`; Oquab et al. 2023, "DINOv2:
//! Learning Robust Visual Features without Supervision").
//!
//! The model, for an input `x` float32 `[N, 3, S, S]` (`S` a multiple of the
//! patch size `p`, `g = S / p` patches a side):
//!
//! 1. patch embedding: `Conv2d(3, D, kernel p, stride p)`, flattened to
//!    `[N, g², D]` in row-major patch order `(h, w)`;
//! 2. tokens: `[cls + pos₀, registers…, patches + pos_{1..}]`, where the
//!    position embedding of the training grid `M × M` (`M = 37` for 518×518)
//!    is resized to `g × g` as `interpolate_pos_encoding` does, once, at
//!    conversion time ([`interpolate_pos_embed`]); register tokens (when the
//!    checkpoint has them) get no position embedding;
//! 3. `depth` blocks, each `x ← x + γ₁ ⊙ Attn(LN₁(x))`,
//!    `x ← x + γ₂ ⊙ FFN(LN₂(x))`, with `LN` a LayerNorm of ε = 1e-6,
//!    `Attn(h) = proj(concat_heads softmax(q kᵀ / √d_h) v)` (`q, k, v` from
//!    the `qkv` Linear, heads of `d_h = D / heads` values; 64 in every DINOv2
//!    model), the layer scales `γ` (`ls1.gamma`, `ls2.gamma`; absent means
//!    1), and `FFN` either the MLP `fc2(GELU(fc1(h)))` with the exact GELU
//!    `GELU(a) = a/2 (1 + erf(a / √2))`, or (ViT-g) the SwiGLU
//!    `w3(SiLU(x₁) ⊙ x₂)`, `[x₁, x₂] = w12(h)` split in halves,
//!    `SiLU(a) = a σ(a)`;
//! 4. output: the final LayerNorm of the CLS token, `x_norm_clstoken`, which
//!    is what `model(x)` returns (the head is the identity) and what
//!    dgm-eval uses as the DINOv2 feature.
//!
//! Written as ONNX opset 17 (`LayerNormalization` exists from 17; GELU as
//! `Div`, `Erf`, `Add`, `Mul`, `Mul`, the pattern ONNX Runtime fuses). Exact
//! rewrites made at conversion time, in f64 and rounded once to f32: the
//! attention scale `1/√d_h` is folded into the query weights and bias, and
//! each layer scale `γ` into the Linear before it (`γ ⊙ (W h + b) =
//! (diag(γ) W) h + γ ⊙ b`); the CLS token and its position embedding are
//! added in f32 as PyTorch does; the final LayerNorm is applied to the CLS
//! token alone (it acts on each token separately).
//!
//! Every tensor of the state dict must be used (`mask_token`, a training-time
//! parameter, is the one exception), and every shape must be the one the
//! configuration implies: a checkpoint of another architecture is an error,
//! never a silently wrong model.

use std::collections::HashSet;

use crate::checkpoint::StateDict;
use crate::onnx::{FLOAT, INT64, attr_float, attr_int, attr_ints, proto};
use crate::torchscript::{Dim, Tensor, TorchScriptError};

/// LayerNorm epsilon of every DINOv2 norm (`partial(nn.LayerNorm, eps=1e-6)`).
pub const DINOV2_LAYER_NORM_EPS: f32 = 1e-6;
/// `interpolate_offset` of the DINOv2 hub models.
pub const DINOV2_INTERPOLATE_OFFSET: f64 = 0.1;
/// Cubic convolution coefficient of PyTorch's bicubic interpolation.
pub const BICUBIC_A: f32 = -0.75;
/// Largest model written: a single-file ONNX protobuf cannot exceed 2 GiB.
pub const MAX_ONNX_BYTES: u64 = (2 << 30) - (16 << 20);
/// Name of the input of a converted ViT: float32 `[N, 3, S, S]`.
pub const VIT_INPUT_NAME: &str = "input";
/// Name of the output of a converted ViT: float32 `[N, D]`.
pub const VIT_OUTPUT_NAME: &str = "features";

/// The feed-forward network of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ffn {
    /// `fc2(GELU(fc1(h)))` with `hidden` units (`4 D`).
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
    /// `w3(SiLU(x₁) ⊙ x₂)`, `w12` giving `2 hidden` values
    /// (`SwiGLUFFNFused`: `hidden = (int(4 D · 2/3) + 7) // 8 · 8`).
    SwiGlu {
        /// Hidden units (half of `w12`'s outputs).
        hidden: usize,
    },
}

/// The architecture of a DINOv2 ViT, and the input size it is converted for.
#[derive(Clone, Debug, PartialEq)]
pub struct VitConfig {
    /// Embedding dimension `D`.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (`D / heads` values each).
    pub num_heads: usize,
    /// Patch size `p`.
    pub patch_size: usize,
    /// Side `M` of the position-embedding grid (37 for the 518×518 training size).
    pub pos_grid: usize,
    /// Register tokens (0, or 4 for the `_reg` models).
    pub num_register_tokens: usize,
    /// Layer scale present (`init_values` set: every hub model).
    pub layer_scale: bool,
    /// The feed-forward network.
    pub ffn: Ffn,
    /// Biases of the `qkv`, `proj` and FFN Linears present.
    pub biases: bool,
    /// Input side `S` the model is converted for (a multiple of `patch_size`).
    pub image_size: usize,
    /// `interpolate_offset` (0.1 for the hub models; 0 resizes by output size).
    pub interpolate_offset: f64,
}

/// The DINOv2 hub models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dinov2Variant {
    /// ViT-S/14: D 384, 12 blocks, 6 heads (22M parameters).
    VitS14,
    /// ViT-B/14: D 768, 12 blocks, 12 heads (86M).
    VitB14,
    /// ViT-L/14: D 1024, 24 blocks, 16 heads (304M).
    VitL14,
    /// ViT-g/14: D 1536, 40 blocks, 24 heads, SwiGLU FFN (1.1B).
    VitG14,
}

impl Dinov2Variant {
    /// The architecture `dinov2/hub/backbones.py` builds (`img_size=518`,
    /// `patch_size=14`, `init_values=1.0`, `block_chunks=0`, no registers),
    /// converted for inputs of `image_size`.
    pub fn config(self, image_size: usize) -> VitConfig {
        let (embed_dim, depth, num_heads) = match self {
            Dinov2Variant::VitS14 => (384, 12, 6),
            Dinov2Variant::VitB14 => (768, 12, 12),
            Dinov2Variant::VitL14 => (1024, 24, 16),
            Dinov2Variant::VitG14 => (1536, 40, 24),
        };
        let ffn = if self == Dinov2Variant::VitG14 {
            Ffn::SwiGlu {
                hidden: swiglu_fused_hidden(4 * embed_dim),
            }
        } else {
            Ffn::Mlp {
                hidden: 4 * embed_dim,
            }
        };
        VitConfig {
            embed_dim,
            depth,
            num_heads,
            patch_size: 14,
            pos_grid: 37,
            num_register_tokens: 0,
            layer_scale: true,
            ffn,
            biases: true,
            image_size,
            interpolate_offset: DINOV2_INTERPOLATE_OFFSET,
        }
    }
}

/// `SwiGLUFFNFused`'s hidden size for a requested `hidden`:
/// `(int(hidden · 2/3) + 7) // 8 · 8` (4096 for ViT-g's 6144).
pub fn swiglu_fused_hidden(hidden: usize) -> usize {
    (hidden * 2 / 3).div_ceil(8) * 8
}

impl VitConfig {
    /// Reads the architecture from a DINOv2 state dict: `D` from
    /// `cls_token`, the patch size from `patch_embed.proj.weight`, `M` from
    /// `pos_embed`, the depth from the `blocks.<i>.` keys, registers, layer
    /// scale, biases and the FFN kind from which keys are present. The number
    /// of heads is not stored: `num_heads` or, when `None`, `D / 64` (every
    /// DINOv2 model has heads of 64).
    pub fn from_state_dict(
        sd: &StateDict,
        num_heads: Option<usize>,
        image_size: usize,
    ) -> Result<Self, TorchScriptError> {
        let shape = |name: &str| -> Result<&[usize], TorchScriptError> {
            sd.get(name)
                .map(|t| t.shape.as_slice())
                .ok_or_else(|| bad(format!("the state dict has no {name}")))
        };
        let embed_dim = match shape("cls_token")? {
            [1, 1, d] if *d > 0 => *d,
            s => return Err(bad(format!("cls_token of shape {s:?}, expected [1, 1, D]"))),
        };
        let patch_size = match shape("patch_embed.proj.weight")? {
            [d, 3, p, q] if *d == embed_dim && p == q && *p > 0 => *p,
            s => {
                return Err(bad(format!(
                    "patch_embed.proj.weight of shape {s:?}, expected [{embed_dim}, 3, p, p]"
                )));
            }
        };
        let pos_grid = match shape("pos_embed")? {
            [1, t, d] if *d == embed_dim && *t >= 2 => {
                let m = (1..=*t).find(|m| m * m >= t - 1).unwrap_or(0);
                if m * m != t - 1 {
                    return Err(bad(format!(
                        "pos_embed has {} patch positions, not a square grid",
                        t - 1
                    )));
                }
                m
            }
            s => {
                return Err(bad(format!(
                    "pos_embed of shape {s:?}, expected [1, 1 + M², D]"
                )));
            }
        };
        let num_register_tokens = match sd.get("register_tokens").map(|t| t.shape.as_slice()) {
            None => 0,
            Some([1, r, d]) if *d == embed_dim => *r,
            Some(s) => return Err(bad(format!("register_tokens of shape {s:?}"))),
        };
        let mut depth = 0;
        while sd.get(&format!("blocks.{depth}.norm1.weight")).is_some() {
            depth += 1;
        }
        if depth == 0 {
            return Err(bad(
                "no blocks.0.norm1.weight (block_chunks > 0 checkpoints are not read)".into(),
            ));
        }
        let ffn = if let Some(t) = sd.get("blocks.0.mlp.fc1.weight") {
            Ffn::Mlp {
                hidden: t.shape.first().copied().unwrap_or(0),
            }
        } else if let Some(t) = sd.get("blocks.0.mlp.w12.weight") {
            Ffn::SwiGlu {
                hidden: t.shape.first().copied().unwrap_or(0) / 2,
            }
        } else {
            return Err(bad(
                "blocks.0.mlp has neither fc1 (MLP) nor w12 (SwiGLU)".into()
            ));
        };
        let num_heads = num_heads.unwrap_or(embed_dim / 64).max(1);
        let cfg = VitConfig {
            embed_dim,
            depth,
            num_heads,
            patch_size,
            pos_grid,
            num_register_tokens,
            layer_scale: sd.get("blocks.0.ls1.gamma").is_some(),
            ffn,
            biases: sd.get("blocks.0.attn.qkv.bias").is_some(),
            image_size,
            interpolate_offset: DINOV2_INTERPOLATE_OFFSET,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), TorchScriptError> {
        let d = self.embed_dim;
        if d == 0 || self.depth == 0 || self.patch_size == 0 || self.pos_grid == 0 {
            return Err(bad(format!("empty architecture {self:?}")));
        }
        if self.num_heads == 0 || !d.is_multiple_of(self.num_heads) {
            return Err(bad(format!(
                "{} heads do not divide the embedding dimension {d}",
                self.num_heads
            )));
        }
        if self.image_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(bad(format!(
                "input size {} is not a positive multiple of the patch size {}",
                self.image_size, self.patch_size
            )));
        }
        let hidden = match self.ffn {
            Ffn::Mlp { hidden } | Ffn::SwiGlu { hidden } => hidden,
        };
        if hidden == 0 {
            return Err(bad("FFN without hidden units".into()));
        }
        if !(self.interpolate_offset >= 0.0 && self.interpolate_offset < 1.0) {
            return Err(bad(format!(
                "interpolate_offset {} outside [0, 1)",
                self.interpolate_offset
            )));
        }
        Ok(())
    }

    /// Patches a side of the converted input: `g = S / p`.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Every tensor the state dict must hold, with its shape, in the
    /// official module order (`mask_token` included: it is in every
    /// checkpoint though the forward pass does not use it).
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.embed_dim;
        let p = self.patch_size;
        let mut v: Vec<(String, Vec<usize>)> = vec![
            ("cls_token".into(), vec![1, 1, d]),
            (
                "pos_embed".into(),
                vec![1, 1 + self.pos_grid * self.pos_grid, d],
            ),
        ];
        if self.num_register_tokens > 0 {
            v.push((
                "register_tokens".into(),
                vec![1, self.num_register_tokens, d],
            ));
        }
        v.push(("mask_token".into(), vec![1, d]));
        v.push(("patch_embed.proj.weight".into(), vec![d, 3, p, p]));
        v.push(("patch_embed.proj.bias".into(), vec![d]));
        let bias = |v: &mut Vec<(String, Vec<usize>)>, name: String, n: usize| {
            if self.biases {
                v.push((name, vec![n]));
            }
        };
        for i in 0..self.depth {
            let b = format!("blocks.{i}");
            v.push((format!("{b}.norm1.weight"), vec![d]));
            v.push((format!("{b}.norm1.bias"), vec![d]));
            v.push((format!("{b}.attn.qkv.weight"), vec![3 * d, d]));
            bias(&mut v, format!("{b}.attn.qkv.bias"), 3 * d);
            v.push((format!("{b}.attn.proj.weight"), vec![d, d]));
            bias(&mut v, format!("{b}.attn.proj.bias"), d);
            if self.layer_scale {
                v.push((format!("{b}.ls1.gamma"), vec![d]));
            }
            v.push((format!("{b}.norm2.weight"), vec![d]));
            v.push((format!("{b}.norm2.bias"), vec![d]));
            match self.ffn {
                Ffn::Mlp { hidden } => {
                    v.push((format!("{b}.mlp.fc1.weight"), vec![hidden, d]));
                    bias(&mut v, format!("{b}.mlp.fc1.bias"), hidden);
                    v.push((format!("{b}.mlp.fc2.weight"), vec![d, hidden]));
                    bias(&mut v, format!("{b}.mlp.fc2.bias"), d);
                }
                Ffn::SwiGlu { hidden } => {
                    v.push((format!("{b}.mlp.w12.weight"), vec![2 * hidden, d]));
                    bias(&mut v, format!("{b}.mlp.w12.bias"), 2 * hidden);
                    v.push((format!("{b}.mlp.w3.weight"), vec![d, hidden]));
                    bias(&mut v, format!("{b}.mlp.w3.bias"), d);
                }
            }
            if self.layer_scale {
                v.push((format!("{b}.ls2.gamma"), vec![d]));
            }
        }
        v.push(("norm.weight".into(), vec![d]));
        v.push(("norm.bias".into(), vec![d]));
        v
    }

    /// Number of parameters of the state dict: `sum prod(shape)` over
    /// [`VitConfig::expected_tensors`] (304,368,640 for ViT-L/14).
    pub fn parameter_count(&self) -> u64 {
        self.expected_tensors()
            .iter()
            .map(|(_, s)| s.iter().map(|&x| x as u64).product::<u64>())
            .sum()
    }
}

fn bad(m: String) -> TorchScriptError {
    TorchScriptError::Onnx(format!("DINOv2 checkpoint: {m}"))
}

/// The cubic convolution weights of PyTorch's bicubic interpolation for a
/// fractional position `t ∈ [0, 1]` (Keys 1981, `A = -0.75`), for the
/// samples at offsets −1, 0, 1, 2:
///
/// `w₀ = c₂(t + 1)`, `w₁ = c₁(t)`, `w₂ = c₁(1 − t)`, `w₃ = c₂(2 − t)`,
/// `c₁(x) = ((A + 2) x − (A + 3)) x² + 1`, `c₂(x) = ((A x − 5A) x + 8A) x − 4A`
///
/// (ATen `get_cubic_upsample_coefficients`, in f32 as ATen computes them for
/// float tensors).
pub fn cubic_weights(t: f32) -> [f32; 4] {
    let a = BICUBIC_A;
    let c1 = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let c2 = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [c2(t + 1.0), c1(t), c1(1.0 - t), c2(2.0 - t)]
}

/// The source indices and weights of one axis of PyTorch's bicubic
/// `interpolate(mode="bicubic", align_corners=False, antialias=False)` from
/// `input` to `output` samples, given the `scale_factor` (or `None`: resize
/// by size).
///
/// With `r = 1 / scale_factor` (as f32) when a scale factor is given, else
/// `input / output` (ATen `area_pixel_compute_scale`), output sample `o`
/// reads around `x = r (o + ½) − ½` (no clamping for cubic,
/// `area_pixel_compute_source_index`): `i = min(⌊x⌋, input − 1)`,
/// `t = clamp(x − i, 0, 1)`, samples `i − 1 … i + 2` clamped to
/// `[0, input − 1]` with [`cubic_weights`]`(t)`.
pub fn bicubic_axis(
    input: usize,
    output: usize,
    scale_factor: Option<f64>,
) -> Vec<([usize; 4], [f32; 4])> {
    let r: f32 = match scale_factor {
        Some(s) if s > 0.0 => (1.0 / s) as f32,
        _ => input as f32 / output as f32,
    };
    (0..output)
        .map(|o| {
            let x = r * (o as f32 + 0.5) - 0.5;
            let i = (x.floor() as i64).min(input as i64 - 1);
            let t = (x - i as f32).clamp(0.0, 1.0);
            let idx = [-1i64, 0, 1, 2].map(|k| (i + k).clamp(0, input as i64 - 1) as usize);
            (idx, cubic_weights(t))
        })
        .collect()
}

/// The patch position embeddings for a `g × g` grid, from the `M × M` grid
/// of the checkpoint, as DINOv2's `interpolate_pos_encoding` computes them:
/// unchanged when `g = M`; otherwise
/// `F.interpolate(pos.reshape(1, M, M, D).permute(0, 3, 1, 2),
/// scale_factor=((g + offset) / M, (g + offset) / M), mode="bicubic",
/// antialias=False)` (output size `⌊M · (g + offset) / M⌋ = g`, source
/// positions from the scale factor, not from the size: [`bicubic_axis`]),
/// or with `offset = 0`, `size=(g, g)`. Separable:
/// `out[y, x, c] = Σ_j Σ_i wy_j wx_i pos[iy_j, ix_i, c]`, summed in f64 and
/// rounded once.
///
/// `pos` is `[M², D]` row-major (patch order `(h, w)`); returns `[g², D]`.
pub fn interpolate_pos_embed(pos: &[f32], m: usize, dim: usize, g: usize, offset: f64) -> Vec<f32> {
    if g == m {
        return pos.to_vec();
    }
    let scale = (offset > 0.0).then(|| (g as f64 + offset) / m as f64);
    let axis = bicubic_axis(m, g, scale);
    let mut out = vec![0f32; g * g * dim];
    let mut acc = vec![0f64; dim];
    for (y, (iy, wy)) in axis.iter().enumerate() {
        for (x, (ix, wx)) in axis.iter().enumerate() {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for j in 0..4 {
                for i in 0..4 {
                    let w = f64::from(wy[j]) * f64::from(wx[i]);
                    let src = &pos[(iy[j] * m + ix[i]) * dim..][..dim];
                    for (a, &s) in acc.iter_mut().zip(src) {
                        *a += w * f64::from(s);
                    }
                }
            }
            let dst = &mut out[(y * g + x) * dim..][..dim];
            for (o, a) in dst.iter_mut().zip(&acc) {
                *o = *a as f32;
            }
        }
    }
    out
}

/// Converts a DINOv2 state dict to ONNX for the architecture `cfg`
/// (usually [`VitConfig::from_state_dict`] or [`Dinov2Variant::config`]):
/// input [`VIT_INPUT_NAME`] float32 `[N, 3, S, S]` (ImageNet-normalised
/// RGB), output [`VIT_OUTPUT_NAME`] float32 `[N, D]`, the CLS token after
/// the final norm. See the module documentation for the model and the exact
/// rewrites.
///
/// # Errors
/// A tensor missing, of another shape, or not used; a non-finite weight; a
/// model over [`MAX_ONNX_BYTES`] (ViT-g/14's 4.5 GB of weights do not fit
/// in one ONNX protobuf; external data is not written).
pub fn convert_dinov2(
    sd: &StateDict,
    cfg: &VitConfig,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, TorchScriptError> {
    cfg.check()?;
    let bytes = cfg.parameter_count() * 4;
    if bytes > MAX_ONNX_BYTES {
        return Err(bad(format!(
            "{bytes} bytes of weights do not fit in a single ONNX protobuf (2 GiB); \
             ViT-g/14 would need ONNX external data, which this converter does not write"
        )));
    }
    let expected = cfg.expected_tensors();
    let names: HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let unused: Vec<&str> = sd
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !names.contains(n))
        .take(8)
        .collect();
    if !unused.is_empty() {
        return Err(bad(format!(
            "tensors the architecture does not use: {}",
            unused.join(", ")
        )));
    }
    for (name, shape) in &expected {
        let t = sd
            .get(name)
            .ok_or_else(|| bad(format!("the state dict has no {name}")))?;
        if &t.shape != shape {
            return Err(bad(format!(
                "{name} has shape {:?}, the architecture needs {shape:?}",
                t.shape
            )));
        }
        if let Some(x) = t.data.iter().find(|x| !x.is_finite()) {
            return Err(bad(format!("{name} holds a non-finite value {x}")));
        }
    }
    let t = |name: &str| -> &Tensor {
        // Every expected name was checked present above.
        sd.get(name).map_or(&EMPTY, |t| t)
    };
    let d = cfg.embed_dim;
    let g = cfg.grid();
    let heads = cfg.num_heads;
    let mut b = Builder::default();

    // Patch embedding.
    let tokens = b.patch_embed(
        "patch_embed",
        t("patch_embed.proj.weight"),
        Some(&t("patch_embed.proj.bias").data),
        cfg.patch_size,
    );
    let pos = &t("pos_embed").data;
    let m = cfg.pos_grid;
    let patch_pos = interpolate_pos_embed(&pos[d..], m, d, g, cfg.interpolate_offset);
    let patch_pos = b.init_f32("pos_embed.patches", &[1, g * g, d], patch_pos);
    let patches = b.node("Add", "pos_embed", vec![tokens, patch_pos], |_| {});
    // [cls + pos_0, registers...], broadcast over the batch.
    let mut prefix: Vec<f32> = t("cls_token")
        .data
        .iter()
        .zip(&pos[..d])
        .map(|(c, p)| c + p)
        .collect();
    if cfg.num_register_tokens > 0 {
        prefix.extend_from_slice(&t("register_tokens").data);
    }
    let np = 1 + cfg.num_register_tokens;
    let mut x = b.prepend_tokens(&patches, prefix, np, d);

    let one = b.init_f32("const.one", &[], vec![1.0]);
    let half = b.init_f32("const.half", &[], vec![0.5]);
    let sqrt2 = b.init_f32("const.sqrt2", &[], vec![std::f32::consts::SQRT_2]);
    let shapes = b.attention_shapes(d, heads);
    for i in 0..cfg.depth {
        let s = format!("blocks.{i}");
        let p = |n: &str| format!("{s}.{n}");
        // Attention.
        let h = b.layer_norm(
            &x,
            &s,
            "norm1",
            t(&p("norm1.weight")),
            t(&p("norm1.bias")),
            DINOV2_LAYER_NORM_EPS,
        );
        let g1 = cfg.layer_scale.then(|| t(&p("ls1.gamma")).data.as_slice());
        let o = b.self_attention(
            &h,
            &s,
            &shapes,
            Attention {
                qkv_weight: &t(&p("attn.qkv.weight")).data,
                qkv_bias: cfg.biases.then(|| t(&p("attn.qkv.bias")).data.as_slice()),
                proj_name: &format!("{s}.attn.proj"),
                proj_weight: &t(&p("attn.proj.weight")).data,
                proj_bias: cfg.biases.then(|| t(&p("attn.proj.bias")).data.as_slice()),
                proj_row_scale: &|r| g1.map_or(1.0, |g| f64::from(g[r])),
            },
        );
        x = b.node("Add", &s, vec![x, o], |_| {});
        // Feed-forward.
        let h = b.layer_norm(
            &x,
            &s,
            "norm2",
            t(&p("norm2.weight")),
            t(&p("norm2.bias")),
            DINOV2_LAYER_NORM_EPS,
        );
        let g2 = cfg.layer_scale.then(|| t(&p("ls2.gamma")).data.as_slice());
        let gamma2 = |r: usize| g2.map_or(1.0, |g| f64::from(g[r]));
        let o = match cfg.ffn {
            Ffn::Mlp { hidden } => {
                let a = b.linear(
                    &h,
                    &p("mlp.fc1"),
                    &t(&p("mlp.fc1.weight")).data,
                    cfg.biases.then(|| t(&p("mlp.fc1.bias")).data.as_slice()),
                    d,
                    hidden,
                    |_| 1.0,
                );
                let z = b.node("Div", &s, vec![a.clone(), sqrt2.clone()], |_| {});
                let z = b.node("Erf", &s, vec![z], |_| {});
                let z = b.node("Add", &s, vec![z, one.clone()], |_| {});
                let z = b.node("Mul", &s, vec![a, z], |_| {});
                let z = b.node("Mul", &s, vec![z, half.clone()], |_| {});
                b.linear(
                    &z,
                    &p("mlp.fc2"),
                    &t(&p("mlp.fc2.weight")).data,
                    cfg.biases.then(|| t(&p("mlp.fc2.bias")).data.as_slice()),
                    hidden,
                    d,
                    gamma2,
                )
            }
            Ffn::SwiGlu { hidden } => {
                let w12 = &t(&p("mlp.w12.weight")).data;
                let b12 = cfg.biases.then(|| t(&p("mlp.w12.bias")).data.as_slice());
                let x1 = b.linear(
                    &h,
                    &p("mlp.w1"),
                    &w12[..hidden * d],
                    b12.map(|v| &v[..hidden]),
                    d,
                    hidden,
                    |_| 1.0,
                );
                let x2 = b.linear(
                    &h,
                    &p("mlp.w2"),
                    &w12[hidden * d..],
                    b12.map(|v| &v[hidden..]),
                    d,
                    hidden,
                    |_| 1.0,
                );
                let sg = b.node("Sigmoid", &s, vec![x1.clone()], |_| {});
                let silu = b.node("Mul", &s, vec![x1, sg], |_| {});
                let z = b.node("Mul", &s, vec![silu, x2], |_| {});
                b.linear(
                    &z,
                    &p("mlp.w3"),
                    &t(&p("mlp.w3.weight")).data,
                    cfg.biases.then(|| t(&p("mlp.w3.bias")).data.as_slice()),
                    hidden,
                    d,
                    gamma2,
                )
            }
        };
        x = b.node("Add", &s, vec![x, o], |_| {});
    }
    // The CLS token, then the final norm (per token, so only it is needed).
    let zero = b.init_i64("cls.index", &[], &[0]);
    let cls = b.node("Gather", "cls", vec![x, zero], |a| attr_int(a, "axis", 1));
    b.next_output = Some(VIT_OUTPUT_NAME.into());
    b.layer_norm(
        &cls,
        "norm",
        "final",
        t("norm.weight"),
        t("norm.bias"),
        DINOV2_LAYER_NORM_EPS,
    );
    let s = cfg.image_size;
    let arch = format!(
        "DINOv2 ViT: D {d}, depth {}, heads {heads}, patch {}, pos grid {m}, registers {}, ffn {:?}, input {s}x{s}, interpolate_offset {}",
        cfg.depth, cfg.patch_size, cfg.num_register_tokens, cfg.ffn, cfg.interpolate_offset
    );
    Ok(b.finish("dinov2_vit", s, d, arch, metadata))
}

static EMPTY: Tensor = Tensor {
    name: String::new(),
    shape: Vec::new(),
    data: Vec::new(),
};

/// The weights of one multi-head self-attention: `q, k, v` from one Linear
/// (`[3D, D]`, rows `q` then `k` then `v`, as DINOv2's `qkv` and PyTorch's
/// `MultiheadAttention.in_proj_weight`), then the output Linear, whose row
/// `r` is scaled by `proj_row_scale(r)` (a layer scale folded in, or 1).
pub(crate) struct Attention<'a> {
    pub qkv_weight: &'a [f32],
    pub qkv_bias: Option<&'a [f32]>,
    pub proj_name: &'a str,
    pub proj_weight: &'a [f32],
    pub proj_bias: Option<&'a [f32]>,
    pub proj_row_scale: &'a dyn Fn(usize) -> f64,
}

/// The shape constants every attention block of a model shares.
pub(crate) struct AttentionShapes {
    d: usize,
    heads: usize,
    split: String,
    merge: String,
}

/// Writes ONNX nodes (named `<scope>/<op>_<k>`, outputs `v<k>`) and
/// initializers.
#[derive(Default)]
pub(crate) struct Builder {
    nodes: Vec<u8>,
    inits: Vec<u8>,
    count: usize,
    /// Output name of the next node, instead of `v<k>`.
    pub(crate) next_output: Option<String>,
}

impl Builder {
    /// The patch embedding of a ViT: `Conv2d(3, D, kernel p, stride p)`
    /// (bias optional) of the input, flattened to `[N, g², D]` in row-major
    /// patch order `(h, w)`.
    pub(crate) fn patch_embed(
        &mut self,
        name: &str,
        w: &Tensor,
        bias: Option<&[f32]>,
        patch: usize,
    ) -> String {
        let d = w.shape.first().copied().unwrap_or(0);
        let pw = self.init_f32(&format!("{name}.proj.weight"), &w.shape, w.data.clone());
        let mut inputs = vec![VIT_INPUT_NAME.to_string(), pw];
        if let Some(bias) = bias {
            inputs.push(self.init_f32(&format!("{name}.proj.bias"), &[d], bias.to_vec()));
        }
        let conv = self.node("Conv", name, inputs, |a| {
            let p = patch as i64;
            attr_ints(a, "kernel_shape", &[p, p]);
            attr_ints(a, "strides", &[p, p]);
        });
        let flat_shape = self.init_i64(&format!("{name}.flat_shape"), &[3], &[0, d as i64, -1]);
        let flat = self.node("Reshape", name, vec![conv, flat_shape], |_| {});
        self.node("Transpose", name, vec![flat], |a| {
            attr_ints(a, "perm", &[0, 2, 1])
        })
    }

    /// `[prefix…, tokens]` along the token axis, the `np` prefix tokens
    /// (`[1, np, D]`: the CLS token with its position embedding, registers)
    /// broadcast over the batch.
    pub(crate) fn prepend_tokens(
        &mut self,
        tokens: &str,
        prefix: Vec<f32>,
        np: usize,
        d: usize,
    ) -> String {
        let prefix = self.init_f32("cls_token.with_pos", &[1, np, d], prefix);
        let shape = self.node("Shape", "cls_token", vec![VIT_INPUT_NAME.into()], |a| {
            attr_int(a, "start", 0);
            attr_int(a, "end", 1);
        });
        let rest = self.init_i64("cls_token.rest", &[2], &[np as i64, d as i64]);
        let shape = self.node("Concat", "cls_token", vec![shape, rest], |a| {
            attr_int(a, "axis", 0)
        });
        let prefix = self.node("Expand", "cls_token", vec![prefix, shape], |_| {});
        self.node("Concat", "tokens", vec![prefix, tokens.into()], |a| {
            attr_int(a, "axis", 1)
        })
    }

    /// The shape constants of attention over `heads` heads of `D / heads` values.
    pub(crate) fn attention_shapes(&mut self, d: usize, heads: usize) -> AttentionShapes {
        let hd = d / heads.max(1);
        let split = self.init_i64("attn.heads_shape", &[4], &[0, 0, heads as i64, hd as i64]);
        let merge = self.init_i64("attn.merge_shape", &[3], &[0, 0, d as i64]);
        AttentionShapes {
            d,
            heads,
            split,
            merge,
        }
    }

    /// Multi-head self-attention of the normalised tokens `h` `[N, T, D]`:
    /// `proj(concat_heads softmax(q kᵀ / √d_h) v)`, with the scale `1/√d_h`
    /// folded into the query weights and bias (f64, rounded once).
    pub(crate) fn self_attention(
        &mut self,
        h: &str,
        s: &str,
        shapes: &AttentionShapes,
        w: Attention<'_>,
    ) -> String {
        let d = shapes.d;
        let scale = 1.0 / ((d / shapes.heads.max(1)) as f64).sqrt();
        let mut qkv = Vec::new();
        for (j, what) in ["q", "k", "v"].iter().enumerate() {
            let wj = &w.qkv_weight[j * d * d..(j + 1) * d * d];
            let bias = w.qkv_bias.map(|bb| &bb[j * d..(j + 1) * d]);
            let f = if j == 0 { scale } else { 1.0 };
            let y = self.linear(h, &format!("{s}.attn.{what}"), wj, bias, d, d, |_| f);
            let y = self.node("Reshape", s, vec![y, shapes.split.clone()], |_| {});
            let perm: &[i64] = if j == 1 { &[0, 2, 3, 1] } else { &[0, 2, 1, 3] };
            qkv.push(self.node("Transpose", s, vec![y], |a| attr_ints(a, "perm", perm)));
        }
        let scores = self.node("MatMul", s, vec![qkv[0].clone(), qkv[1].clone()], |_| {});
        let attn = self.node("Softmax", s, vec![scores], |a| attr_int(a, "axis", -1));
        let o = self.node("MatMul", s, vec![attn, qkv[2].clone()], |_| {});
        let o = self.node("Transpose", s, vec![o], |a| {
            attr_ints(a, "perm", &[0, 2, 1, 3])
        });
        let o = self.node("Reshape", s, vec![o, shapes.merge.clone()], |_| {});
        self.linear(
            &o,
            w.proj_name,
            w.proj_weight,
            w.proj_bias,
            d,
            d,
            w.proj_row_scale,
        )
    }

    /// The model: this graph named `name`, input [`VIT_INPUT_NAME`] float32
    /// `[N, 3, S, S]`, output [`VIT_OUTPUT_NAME`] float32 `[N, out_dim]`
    /// (the last node written must produce it), ONNX IR
    /// [`IR_VERSION`](crate::onnx::IR_VERSION), opset
    /// [`OPSET`](crate::onnx::OPSET), metadata `architecture` then `metadata`.
    pub(crate) fn finish(
        self,
        name: &str,
        s: usize,
        out_dim: usize,
        arch: String,
        metadata: &[(String, String)],
    ) -> Vec<u8> {
        let mut graph = self.nodes;
        proto::string(&mut graph, 2, name);
        graph.extend_from_slice(&self.inits);
        crate::onnx::value_info(
            &mut graph,
            11,
            VIT_INPUT_NAME,
            &[Dim::Batch, Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)],
            "N",
        );
        crate::onnx::value_info(
            &mut graph,
            12,
            VIT_OUTPUT_NAME,
            &[Dim::Batch, Dim::Fixed(out_dim)],
            "N",
        );
        let mut meta = vec![("architecture".to_string(), arch)];
        meta.extend(metadata.iter().cloned());
        crate::onnx::model_proto(&graph, &meta)
    }

    /// Appends a node with one output and returns the output's name.
    pub(crate) fn node(
        &mut self,
        op: &str,
        scope: &str,
        inputs: Vec<String>,
        attrs: impl FnOnce(&mut Vec<u8>),
    ) -> String {
        self.count += 1;
        let out = self
            .next_output
            .take()
            .unwrap_or_else(|| format!("v{}", self.count));
        let name = format!("{scope}/{op}_{}", self.count);
        proto::message(&mut self.nodes, 1, |m| {
            for i in &inputs {
                proto::string(m, 1, i);
            }
            proto::string(m, 2, &out);
            proto::string(m, 3, &name);
            proto::string(m, 4, op);
            attrs(m);
        });
        out
    }

    /// A float32 initializer (`dims` empty: a scalar).
    pub(crate) fn init_f32(&mut self, name: &str, dims: &[usize], data: Vec<f32>) -> String {
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        proto::message(&mut self.inits, 5, |t| {
            for &d in dims {
                proto::int(t, 1, d as i64);
            }
            proto::int(t, 2, FLOAT);
            proto::string(t, 8, name);
            proto::bytes(t, 9, &raw);
        });
        name.to_string()
    }

    /// An int64 initializer (`dims` empty: a scalar).
    pub(crate) fn init_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        proto::message(&mut self.inits, 5, |t| {
            for &d in dims {
                proto::int(t, 1, d as i64);
            }
            proto::int(t, 2, INT64);
            proto::string(t, 8, name);
            proto::bytes(t, 9, &raw);
        });
        name.to_string()
    }

    /// `LayerNormalization` over the last axis:
    /// `(x − mean) / √(var + ε) · w + b` (biased variance).
    pub(crate) fn layer_norm(
        &mut self,
        x: &str,
        scope: &str,
        what: &str,
        w: &Tensor,
        b: &Tensor,
        eps: f32,
    ) -> String {
        let wn = self.init_f32(&format!("{scope}.{what}.weight"), &w.shape, w.data.clone());
        let bn = self.init_f32(&format!("{scope}.{what}.bias"), &b.shape, b.data.clone());
        self.node("LayerNormalization", scope, vec![x.into(), wn, bn], |a| {
            attr_int(a, "axis", -1);
            attr_float(a, "epsilon", eps);
        })
    }

    /// A PyTorch `Linear` (`w` row-major `[out, inp]`, `y = x wᵀ + b`) with
    /// output row `r` scaled by `row_scale(r)` (f64, rounded once): `MatMul`
    /// with `wᵀ` `[inp, out]`, then `Add` of the bias when there is one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn linear(
        &mut self,
        x: &str,
        name: &str,
        w: &[f32],
        bias: Option<&[f32]>,
        inp: usize,
        out: usize,
        row_scale: impl Fn(usize) -> f64,
    ) -> String {
        let mut wt = vec![0f32; inp * out];
        for r in 0..out {
            let s = row_scale(r);
            for c in 0..inp {
                wt[c * out + r] = (f64::from(w[r * inp + c]) * s) as f32;
            }
        }
        let wn = self.init_f32(&format!("{name}.weight_t"), &[inp, out], wt);
        let y = self.node("MatMul", name, vec![x.into(), wn], |_| {});
        match bias {
            Some(b) => {
                let bs: Vec<f32> = b
                    .iter()
                    .enumerate()
                    .map(|(r, &v)| (f64::from(v) * row_scale(r)) as f32)
                    .collect();
                let bn = self.init_f32(&format!("{name}.bias"), &[out], bs);
                self.node("Add", name, vec![y, bn], |_| {})
            }
            None => y,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::onnx::{IR_VERSION, OnnxDim, inspect};

    #[test]
    fn parameter_counts_are_the_published_ones() {
        // timm's vit_{small,base,large,giant}_patch14_dinov2: 22.06M, 86.58M,
        // 304.37M, 1136.48M (the state dicts, mask_token included).
        let n = |v: Dinov2Variant| v.config(224).parameter_count();
        assert_eq!(n(Dinov2Variant::VitS14), 22_056_576);
        assert_eq!(n(Dinov2Variant::VitB14), 86_580_480);
        assert_eq!(n(Dinov2Variant::VitL14), 304_368_640);
        assert_eq!(n(Dinov2Variant::VitG14), 1_136_480_768);
        assert_eq!(swiglu_fused_hidden(6144), 4096);
        assert_eq!(swiglu_fused_hidden(64), 48);
    }

    #[test]
    fn bicubic_weights_and_positions() {
        for t in [0.0f32, 0.25, 0.5, 0.9, 1.0] {
            let w = cubic_weights(t);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{w:?}");
        }
        assert_eq!(cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        // 37 -> 16 with scale factor 16.1 / 37: x = (37 / 16.1)(o + 0.5) - 0.5.
        let axis = bicubic_axis(37, 16, Some(16.1 / 37.0));
        let r = (37.0f64 / 16.1) as f32;
        for (o, (idx, w)) in axis.iter().enumerate() {
            let x = r * (o as f32 + 0.5) - 0.5;
            let i = x.floor() as usize;
            assert_eq!(idx[1], i.min(36), "{o}");
            assert_eq!(*w, cubic_weights(x - i as f32));
        }
        // Border samples are clamped.
        assert_eq!(axis[0].0[0], 0);
        assert_eq!(axis[15].0[3], 36);
        // Unchanged for g = M; against PyTorch 2.15 `F.interpolate(x,
        // scale_factor=(16.1/12, 16.1/12), mode="bicubic", antialias=False)`
        // of x[h, w] = 0.1 h² + 0.3 w − 0.05 h w on a 12x12 grid.
        let m = 12;
        let pos: Vec<f32> = (0..m * m)
            .map(|k| {
                let (h, w) = ((k / m) as f32, (k % m) as f32);
                h * h * 0.1 + w * 0.3 - (h * w) * 0.05
            })
            .collect();
        assert_eq!(interpolate_pos_embed(&pos, m, 1, m, 0.1), pos);
        let out = interpolate_pos_embed(&pos, m, 1, 16, 0.1);
        for ((y, x), want) in [
            ((0, 0), -0.029_354_86_f32),
            ((5, 9), 2.062_205),
            ((15, 15), 9.396_119),
            ((7, 2), 2.684_854),
        ] {
            // PyTorch sums the 16 products in f32, this code in f64: the
            // difference is bounded by 16 f32 epsilons times the largest
            // |value| of the grid (12.1), about 2.3e-5 (seen: 1.1e-5).
            let got = out[y * 16 + x];
            let tol = 16.0 * f32::EPSILON * 12.1;
            assert!((got - want).abs() <= tol, "({y}, {x}): {got} vs {want}");
        }
    }

    /// A deterministic stand-in for random weights (no RNG dependency).
    pub(crate) fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04
            })
            .collect()
    }

    /// Tensors of the given names and shapes filled with [`noise`].
    pub(crate) fn random_tensors(expected: Vec<(String, Vec<usize>)>) -> Vec<Tensor> {
        expected
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape))| {
                let n = shape.iter().product();
                Tensor {
                    name,
                    shape,
                    data: noise(i as u64, n),
                }
            })
            .collect()
    }

    fn random_state_dict(cfg: &VitConfig) -> StateDict {
        StateDict::from_tensors(random_tensors(cfg.expected_tensors())).unwrap()
    }

    /// The real ViT-L/14 architecture with random weights: every tensor of
    /// the official state dict (304,368,640 values), converted for 224x224.
    #[test]
    fn vit_l14_converts_with_its_shapes() {
        let cfg = Dinov2Variant::VitL14.config(224);
        let sd = random_state_dict(&cfg);
        assert_eq!(sd.parameter_count(), 304_368_640);
        assert_eq!(VitConfig::from_state_dict(&sd, None, 224).unwrap(), cfg);
        let bytes = convert_dinov2(&sd, &cfg, &[]).unwrap();
        let s = inspect(&bytes).unwrap();
        assert_eq!((s.ir_version, s.opset), (IR_VERSION, 17));
        let n = OnnxDim::Param("N".into());
        assert_eq!(s.inputs[0].name, VIT_INPUT_NAME);
        assert_eq!(
            s.inputs[0].shape,
            vec![
                n.clone(),
                OnnxDim::Value(3),
                OnnxDim::Value(224),
                OnnxDim::Value(224)
            ]
        );
        assert_eq!(s.outputs[0].name, VIT_OUTPUT_NAME);
        assert_eq!(s.outputs[0].shape, vec![n, OnnxDim::Value(1024)]);
        let ops = s.op_counts();
        assert_eq!(ops["LayerNormalization"], 2 * 24 + 1);
        assert_eq!(ops["Softmax"], 24);
        assert_eq!(ops["Erf"], 24);
        assert_eq!(ops["Conv"], 1);
        assert_eq!(ops["MatMul"], 24 * (3 + 2 + 1 + 2));
        // Weights written: the state dict less mask_token and the folded
        // layer scales, the 37x37 position grid resized to 16x16 (cls and
        // pos_0 summed), plus the three GELU constants.
        let d = 1024u64;
        let want = 304_368_640 - d - 2 * 24 * d - 1370 * d + 256 * d + 3;
        assert_eq!(s.float_parameters(), want);
        let conv = s.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
        assert_eq!(conv.int_attrs["strides"], vec![14, 14]);
        assert_eq!(conv.int_attrs["kernel_shape"], vec![14, 14]);
    }

    #[test]
    fn wrong_checkpoints_are_refused() {
        let mut cfg = Dinov2Variant::VitS14.config(224);
        cfg.depth = 1;
        let sd = random_state_dict(&cfg);
        // Another input size must be a multiple of 14.
        assert!(VitConfig::from_state_dict(&sd, None, 225).is_err());
        // A wrong head count.
        assert!(VitConfig::from_state_dict(&sd, Some(5), 224).is_err());
        // An extra or a missing tensor, a wrong shape, a NaN.
        let mut t = sd.tensors().to_vec();
        t.push(Tensor {
            name: "head.weight".into(),
            shape: vec![1],
            data: vec![0.0],
        });
        let err = convert_dinov2(&StateDict::from_tensors(t).unwrap(), &cfg, &[]).unwrap_err();
        assert!(err.to_string().contains("head.weight"), "{err}");
        let t: Vec<Tensor> = sd.tensors()[1..].to_vec();
        assert!(convert_dinov2(&StateDict::from_tensors(t).unwrap(), &cfg, &[]).is_err());
        let mut t = sd.tensors().to_vec();
        t[5].data[0] = f32::NAN;
        assert!(convert_dinov2(&StateDict::from_tensors(t).unwrap(), &cfg, &[]).is_err());
        let mut big = cfg.clone();
        big.embed_dim = 768;
        assert!(convert_dinov2(&sd, &big, &[]).is_err());
        // ViT-g/14 does not fit in one protobuf: refused before any tensor is read.
        let g = Dinov2Variant::VitG14.config(224);
        let err = convert_dinov2(&sd, &g, &[]).unwrap_err();
        assert!(err.to_string().contains("external data"), "{err}");
    }
}
