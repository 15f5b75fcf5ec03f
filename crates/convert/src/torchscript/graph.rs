//! The dataflow graph recovered by tracing a TorchScript `forward`
//! symbolically: a list of operator nodes over activations, with every
//! shape known (the batch dimension may stay symbolic) and weights referring
//! to the archive's tensors by index.

/// One dimension of an activation: a fixed size or the symbolic batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A known size.
    Fixed(usize),
    /// The batch size, unknown until run time.
    Batch,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Batch => f.write_str("N"),
        }
    }
}

/// Formats a shape as `[N, 3, 299, 299]`.
pub fn shape_string(shape: &[Dim]) -> String {
    let parts: Vec<String> = shape.iter().map(Dim::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Index of an activation in [`Graph::shapes`].
pub type ValueId = usize;

/// An operator, with PyTorch semantics (all 2-D ops on NCHW float32).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `torch.conv2d`: `y = W * x (+ b)`; `weight`/`bias` index the archive's tensors.
    Conv2d {
        /// Weight `[O, C/groups, kh, kw]`.
        weight: usize,
        /// Bias `[O]`, if any.
        bias: Option<usize>,
        /// Stride `[sh, sw]`.
        stride: [usize; 2],
        /// Zero padding `[ph, pw]`, on both sides.
        padding: [usize; 2],
        /// Dilation `[dh, dw]`.
        dilation: [usize; 2],
        /// Groups.
        groups: usize,
    },
    /// `torch.batch_norm` in inference mode:
    /// `y = (x - mean) / sqrt(var + eps) * weight + bias` per channel
    /// (`weight` 1 and `bias` 0 when absent).
    BatchNorm {
        /// Scale `[C]`, if any.
        weight: Option<usize>,
        /// Shift `[C]`, if any.
        bias: Option<usize>,
        /// Running mean `[C]`.
        mean: usize,
        /// Running variance `[C]`.
        var: usize,
        /// Epsilon.
        eps: f64,
    },
    /// `max(x, 0)`.
    Relu,
    /// `torch.max_pool2d` (floor mode; padding is `-inf`).
    MaxPool2d {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Padding on both sides.
        padding: [usize; 2],
        /// Dilation.
        dilation: [usize; 2],
    },
    /// `torch.avg_pool2d` (floor mode).
    AvgPool2d {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Zero padding on both sides.
        padding: [usize; 2],
        /// Whether padded zeros count in the divisor (PyTorch `count_include_pad`).
        count_include_pad: bool,
    },
    /// `torch.cat(inputs, axis)`.
    Concat {
        /// The axis (non-negative).
        axis: usize,
    },
    /// `torch.reshape(x, shape)` (`-1` allowed once).
    Reshape {
        /// The target shape as written in the code.
        shape: Vec<i64>,
    },
    /// `x.narrow(axis, start, end - start)`: indices `start..end` of one axis.
    /// Never traced from code; added by the converter for extra outputs.
    Slice {
        /// The axis (non-negative).
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// `x.permute(perm)`: output axis `i` is input axis `perm[i]`.
    /// Never traced from code; added by the converter for extra outputs.
    Transpose {
        /// The permutation.
        perm: Vec<usize>,
    },
}

impl Op {
    /// A short name (`conv2d`, `batch_norm`, `relu`, `max_pool2d`, `avg_pool2d`, `cat`, `reshape`,
    /// `slice`, `transpose`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Relu => "relu",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::Concat { .. } => "cat",
            Op::Reshape { .. } => "reshape",
            Op::Slice { .. } => "slice",
            Op::Transpose { .. } => "transpose",
        }
    }
}

/// One operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operator.
    pub op: Op,
    /// Input activations.
    pub inputs: Vec<ValueId>,
    /// The output activation.
    pub output: ValueId,
    /// Dotted path of the module whose code emitted it, e.g. `net.layers.mixed_10.tower_2_pool`.
    pub scope: String,
}

/// A traced graph: one input (value 0), nodes in execution order, one output.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// Shape of every activation, indexed by [`ValueId`].
    pub shapes: Vec<Vec<Dim>>,
    /// The nodes, in the order the code runs them.
    pub nodes: Vec<Node>,
    /// The input activation (always 0).
    pub input: ValueId,
    /// The output activation.
    pub output: ValueId,
}

impl Graph {
    /// Number of nodes whose [`Op::name`] is `name`.
    pub fn count(&self, name: &str) -> usize {
        self.nodes.iter().filter(|n| n.op.name() == name).count()
    }

    /// Shape of the input.
    pub fn input_shape(&self) -> &[Dim] {
        &self.shapes[self.input]
    }

    /// Shape of the output.
    pub fn output_shape(&self) -> &[Dim] {
        &self.shapes[self.output]
    }

    /// Appends a node computing a new value of shape `shape` from `inputs`;
    /// returns the new value. The caller states the shape (the converter
    /// adds only slices, transposes and reshapes whose shapes it knows).
    pub fn push(&mut self, op: Op, inputs: Vec<ValueId>, shape: Vec<Dim>, scope: &str) -> ValueId {
        let output = self.shapes.len();
        self.shapes.push(shape);
        self.nodes.push(Node {
            op,
            inputs,
            output,
            scope: scope.to_owned(),
        });
        output
    }
}
