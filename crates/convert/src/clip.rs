//! The image encoder of OpenAI CLIP vision transformers (ViT-B/32, B/16,
//! L/14, L/14@336) from the official TorchScript files to an ONNX model, as
//! openai/CLIP defines it (`clip/model.py` `VisionTransformer`, commit
//! `d05afc436d78f1c48dc0dbf8e5980a9d471f35f6`; Radford et al. 2021,
//! "Learning Transferable Visual Models From Natural Language Supervision").
//!
//! The official `.pt` files are TorchScript archives of the whole model with
//! float16 weights; their weights are read from `data.pkl` by the whitelisting
//! reader ([`StateDict::from_torchscript_file`], float16 widened exactly),
//! nothing of their code is used. `clip.load(..., device="cpu")` computes in
//! float32 with those weights, as this model does.
//!
//! For an input `x` float32 `[N, 3, S, S]` (CLIP-normalised RGB, `S` the
//! training resolution: CLIP does not resize its position embedding), with
//! width `W`, patch `p`, `g = S / p`:
//!
//! 1. `conv1`: `Conv2d(3, W, kernel p, stride p, bias=False)`, flattened to
//!    `[N, g², W]` (the patch embedding DINOv2 uses, [`crate::vit`]);
//! 2. tokens `[class_embedding, patches] + positional_embedding`, then
//!    `ln_pre`;
//! 3. `layers` residual blocks `x ← x + MHA(ln_1(x))`,
//!    `x ← x + c_proj(QuickGELU(c_fc(ln_2(x))))`, with `MHA` PyTorch's
//!    `nn.MultiheadAttention` (`in_proj_weight` `[3W, W]` rows `q, k, v`,
//!    `out_proj`; the attention of [`crate::vit`]), `W / 64` heads, and
//!    `QuickGELU(a) = a · σ(1.702 a)`;
//! 4. output: `ln_post` of the CLS token, times `proj` `[W, E]`: the image
//!    embedding of `encode_image` (not normalised; CMMD and CLIP-score
//!    normalise it themselves).
//!
//! Every LayerNorm has ε = 1e-5 (`nn.LayerNorm`'s default). The class
//! embedding and the first position are added once, in f32, at conversion
//! time, as PyTorch adds them. Every `visual.*` tensor must be used and have
//! the shape the architecture implies; the text tower is ignored.

use std::collections::HashSet;

use crate::checkpoint::StateDict;
use crate::onnx::attr_int;
use crate::torchscript::{Tensor, TorchScriptError};
use crate::vit::{Attention, Builder, MAX_ONNX_BYTES, VIT_OUTPUT_NAME};

/// LayerNorm epsilon of every CLIP norm (`nn.LayerNorm` default).
pub const CLIP_LAYER_NORM_EPS: f32 = 1e-5;
/// The QuickGELU constant: `a · σ(1.702 a)`.
pub const QUICK_GELU_ALPHA: f32 = 1.702;

/// The architecture of a CLIP vision transformer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipVisionConfig {
    /// Width `W`.
    pub width: usize,
    /// Residual blocks.
    pub layers: usize,
    /// Attention heads (`W / 64` in every official model; not stored in the file).
    pub heads: usize,
    /// Patch size `p`.
    pub patch_size: usize,
    /// Input side `S = p · g` (224, or 336 for ViT-L/14@336px).
    pub image_size: usize,
    /// Embedding dimension `E` (`proj` is `[W, E]`).
    pub output_dim: usize,
}

impl ClipVisionConfig {
    /// Reads the architecture from the `visual.*` tensors as `build_model`
    /// does (width and patch from `conv1.weight`, the grid from
    /// `positional_embedding`, the layers from the `in_proj_weight` keys,
    /// `E` from `proj`); the heads are `heads` or, when `None`, `W / 64`.
    pub fn from_state_dict(sd: &StateDict, heads: Option<usize>) -> Result<Self, TorchScriptError> {
        let shape = |name: &str| -> Result<&[usize], TorchScriptError> {
            sd.get(name)
                .map(|t| t.shape.as_slice())
                .ok_or_else(|| bad(format!("the archive has no {name}")))
        };
        let (width, patch_size) = match shape("visual.conv1.weight")? {
            [w, 3, p, q] if p == q && *p > 0 && *w > 0 => (*w, *p),
            s => return Err(bad(format!("visual.conv1.weight of shape {s:?}"))),
        };
        let grid = match shape("visual.positional_embedding")? {
            [t, w] if *w == width && *t >= 2 => {
                let g = (1..=*t).find(|g| g * g >= t - 1).unwrap_or(0);
                if g * g != t - 1 {
                    return Err(bad(format!("{} positions are not 1 + a square", t)));
                }
                g
            }
            s => return Err(bad(format!("visual.positional_embedding of shape {s:?}"))),
        };
        let output_dim = match shape("visual.proj")? {
            [w, e] if *w == width && *e > 0 => *e,
            s => return Err(bad(format!("visual.proj of shape {s:?}"))),
        };
        let mut layers = 0;
        while sd
            .get(&format!(
                "visual.transformer.resblocks.{layers}.attn.in_proj_weight"
            ))
            .is_some()
        {
            layers += 1;
        }
        if layers == 0 {
            return Err(bad("no visual.transformer.resblocks.0".into()));
        }
        let heads = heads.unwrap_or(width / 64);
        if heads == 0 || !width.is_multiple_of(heads) {
            return Err(bad(format!(
                "{heads} heads do not divide the width {width}"
            )));
        }
        Ok(ClipVisionConfig {
            width,
            layers,
            heads,
            patch_size,
            image_size: patch_size * grid,
            output_dim,
        })
    }

    /// Every `visual.*` tensor the model holds, with its shape.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let w = self.width;
        let p = self.patch_size;
        let g = self.image_size / p;
        let mut v: Vec<(String, Vec<usize>)> = vec![
            ("visual.class_embedding".into(), vec![w]),
            ("visual.positional_embedding".into(), vec![g * g + 1, w]),
            ("visual.proj".into(), vec![w, self.output_dim]),
            ("visual.conv1.weight".into(), vec![w, 3, p, p]),
            ("visual.ln_pre.weight".into(), vec![w]),
            ("visual.ln_pre.bias".into(), vec![w]),
        ];
        for i in 0..self.layers {
            let s = format!("visual.transformer.resblocks.{i}");
            v.extend([
                (format!("{s}.attn.in_proj_weight"), vec![3 * w, w]),
                (format!("{s}.attn.in_proj_bias"), vec![3 * w]),
                (format!("{s}.attn.out_proj.weight"), vec![w, w]),
                (format!("{s}.attn.out_proj.bias"), vec![w]),
                (format!("{s}.ln_1.weight"), vec![w]),
                (format!("{s}.ln_1.bias"), vec![w]),
                (format!("{s}.mlp.c_fc.weight"), vec![4 * w, w]),
                (format!("{s}.mlp.c_fc.bias"), vec![4 * w]),
                (format!("{s}.mlp.c_proj.weight"), vec![w, 4 * w]),
                (format!("{s}.mlp.c_proj.bias"), vec![w]),
                (format!("{s}.ln_2.weight"), vec![w]),
                (format!("{s}.ln_2.bias"), vec![w]),
            ]);
        }
        v.extend([
            ("visual.ln_post.weight".into(), vec![w]),
            ("visual.ln_post.bias".into(), vec![w]),
        ]);
        v
    }

    /// Parameters of the image encoder (`model.visual`).
    pub fn parameter_count(&self) -> u64 {
        self.expected_tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum()
    }
}

fn bad(m: String) -> TorchScriptError {
    TorchScriptError::Onnx(format!("CLIP archive: {m}"))
}

/// Converts the image encoder of a CLIP state dict (the weights of an
/// official archive, [`StateDict::from_torchscript_file`]) to ONNX: input
/// `input` float32 `[N, 3, S, S]`, output [`VIT_OUTPUT_NAME`] float32
/// `[N, E]`, the image embedding. See the module documentation.
///
/// # Errors
/// A `visual.*` tensor missing, of another shape, or not used; a
/// non-finite weight; a model over [`MAX_ONNX_BYTES`].
pub fn convert_clip_visual(
    sd: &StateDict,
    cfg: &ClipVisionConfig,
    metadata: &[(String, String)],
) -> Result<Vec<u8>, TorchScriptError> {
    if cfg.parameter_count() * 4 > MAX_ONNX_BYTES {
        return Err(bad(
            "the weights do not fit in a single ONNX protobuf".into()
        ));
    }
    let expected = cfg.expected_tensors();
    let names: HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let unused: Vec<&str> = sd
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| n.starts_with("visual.") && !names.contains(n))
        .take(8)
        .collect();
    if !unused.is_empty() {
        return Err(bad(format!(
            "visual tensors the architecture does not use: {}",
            unused.join(", ")
        )));
    }
    for (name, shape) in &expected {
        let t = sd
            .get(name)
            .ok_or_else(|| bad(format!("the archive has no {name}")))?;
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
    static EMPTY: Tensor = Tensor {
        name: String::new(),
        shape: Vec::new(),
        data: Vec::new(),
    };
    // Every expected name was checked present above.
    let t = |name: &str| -> &Tensor { sd.get(name).map_or(&EMPTY, |t| t) };
    let w = cfg.width;
    let g = cfg.image_size / cfg.patch_size;
    let mut b = Builder::default();
    let patches = b.patch_embed("conv1", t("visual.conv1.weight"), None, cfg.patch_size);
    let pos = &t("visual.positional_embedding").data;
    let patch_pos = b.init_f32(
        "positional_embedding.patches",
        &[1, g * g, w],
        pos[w..].to_vec(),
    );
    let patches = b.node(
        "Add",
        "positional_embedding",
        vec![patches, patch_pos],
        |_| {},
    );
    let cls: Vec<f32> = t("visual.class_embedding")
        .data
        .iter()
        .zip(&pos[..w])
        .map(|(c, p)| c + p)
        .collect();
    let x = b.prepend_tokens(&patches, cls, 1, w);
    let mut x = b.layer_norm(
        &x,
        "ln_pre",
        "ln_pre",
        t("visual.ln_pre.weight"),
        t("visual.ln_pre.bias"),
        CLIP_LAYER_NORM_EPS,
    );
    let alpha = b.init_f32("const.quick_gelu_alpha", &[], vec![QUICK_GELU_ALPHA]);
    let shapes = b.attention_shapes(w, cfg.heads);
    for i in 0..cfg.layers {
        let s = format!("visual.transformer.resblocks.{i}");
        let p = |n: &str| format!("{s}.{n}");
        let h = b.layer_norm(
            &x,
            &s,
            "ln_1",
            t(&p("ln_1.weight")),
            t(&p("ln_1.bias")),
            CLIP_LAYER_NORM_EPS,
        );
        let o = b.self_attention(
            &h,
            &s,
            &shapes,
            Attention {
                qkv_weight: &t(&p("attn.in_proj_weight")).data,
                qkv_bias: Some(&t(&p("attn.in_proj_bias")).data),
                proj_name: &p("attn.out_proj"),
                proj_weight: &t(&p("attn.out_proj.weight")).data,
                proj_bias: Some(&t(&p("attn.out_proj.bias")).data),
                proj_row_scale: &|_| 1.0,
            },
        );
        x = b.node("Add", &s, vec![x, o], |_| {});
        let h = b.layer_norm(
            &x,
            &s,
            "ln_2",
            t(&p("ln_2.weight")),
            t(&p("ln_2.bias")),
            CLIP_LAYER_NORM_EPS,
        );
        let a = b.linear(
            &h,
            &p("mlp.c_fc"),
            &t(&p("mlp.c_fc.weight")).data,
            Some(&t(&p("mlp.c_fc.bias")).data),
            w,
            4 * w,
            |_| 1.0,
        );
        let z = b.node("Mul", &s, vec![a.clone(), alpha.clone()], |_| {});
        let z = b.node("Sigmoid", &s, vec![z], |_| {});
        let z = b.node("Mul", &s, vec![a, z], |_| {});
        let o = b.linear(
            &z,
            &p("mlp.c_proj"),
            &t(&p("mlp.c_proj.weight")).data,
            Some(&t(&p("mlp.c_proj.bias")).data),
            4 * w,
            w,
            |_| 1.0,
        );
        x = b.node("Add", &s, vec![x, o], |_| {});
    }
    let zero = b.init_i64("cls.index", &[], &[0]);
    let cls = b.node("Gather", "cls", vec![x, zero], |a| attr_int(a, "axis", 1));
    let cls = b.layer_norm(
        &cls,
        "ln_post",
        "ln_post",
        t("visual.ln_post.weight"),
        t("visual.ln_post.bias"),
        CLIP_LAYER_NORM_EPS,
    );
    let proj = b.init_f32(
        "visual.proj",
        &[w, cfg.output_dim],
        t("visual.proj").data.clone(),
    );
    b.next_output = Some(VIT_OUTPUT_NAME.into());
    b.node("MatMul", "proj", vec![cls, proj], |_| {});
    let s = cfg.image_size;
    let arch = format!(
        "CLIP ViT image encoder: width {w}, layers {}, heads {}, patch {}, input {s}x{s}, embedding {}",
        cfg.layers, cfg.heads, cfg.patch_size, cfg.output_dim
    );
    Ok(b.finish("clip_visual", s, cfg.output_dim, arch, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{OnnxDim, inspect};
    use crate::vit::VIT_INPUT_NAME;
    use crate::vit::tests::random_tensors;

    /// The real ViT-L/14@336px image encoder (CMMD's) with random weights:
    /// every `visual.*` tensor of the official file (304,293,888 values),
    /// plus the int64 scalars the official TorchScript files keep beside
    /// them (read as float32, ignored), converted and inspected.
    #[test]
    fn vit_l14_336_converts_with_its_shapes() {
        let cfg = ClipVisionConfig {
            width: 1024,
            layers: 24,
            heads: 16,
            patch_size: 14,
            image_size: 336,
            output_dim: 768,
        };
        let mut tensors = random_tensors(cfg.expected_tensors());
        for (name, v) in [
            ("input_resolution", 336.0),
            ("context_length", 77.0),
            ("vocab_size", 49408.0),
        ] {
            tensors.push(Tensor {
                name: name.into(),
                shape: vec![],
                data: vec![v],
            });
        }
        let sd = StateDict::from_tensors(tensors).unwrap();
        assert_eq!(ClipVisionConfig::from_state_dict(&sd, None).unwrap(), cfg);
        let bytes = convert_clip_visual(&sd, &cfg, &[]).unwrap();
        let s = inspect(&bytes).unwrap();
        let n = OnnxDim::Param("N".into());
        assert_eq!(s.inputs[0].name, VIT_INPUT_NAME);
        assert_eq!(
            s.inputs[0].shape,
            vec![
                n.clone(),
                OnnxDim::Value(3),
                OnnxDim::Value(336),
                OnnxDim::Value(336)
            ]
        );
        assert_eq!(s.outputs[0].shape, vec![n, OnnxDim::Value(768)]);
        let ops = s.op_counts();
        assert_eq!(ops["LayerNormalization"], 2 * 24 + 2);
        assert_eq!(ops["Softmax"], 24);
        assert_eq!(ops["Conv"], 1);
        // Weights written: the visual tensors less the class embedding
        // (added to the first position at conversion), plus QuickGELU's
        // constant 1.702.
        assert_eq!(s.float_parameters(), 304_293_888 - 1024 + 1);
    }

    /// The official image encoders' parameter counts (`sum(p.numel() for p
    /// in model.visual.parameters())`: ViT-B/32 87,849,216; ViT-B/16
    /// 86,192,640; ViT-L/14 303,966,208; ViT-L/14@336px 304,293,888).
    #[test]
    fn official_parameter_counts() {
        let cfg = |width, layers, patch, size, out| ClipVisionConfig {
            width,
            layers,
            heads: width / 64,
            patch_size: patch,
            image_size: size,
            output_dim: out,
        };
        assert_eq!(cfg(768, 12, 32, 224, 512).parameter_count(), 87_849_216);
        assert_eq!(cfg(768, 12, 16, 224, 512).parameter_count(), 86_192_640);
        assert_eq!(cfg(1024, 24, 14, 224, 768).parameter_count(), 303_966_208);
        assert_eq!(cfg(1024, 24, 14, 336, 768).parameter_count(), 304_293_888);
    }
}
