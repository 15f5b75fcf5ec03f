//! Test support: hand-written pickles and tiny TorchScript archives.

use std::io::{Cursor, Write};

use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// A pickle written opcode by opcode.
pub struct P(pub Vec<u8>);

impl P {
    pub fn new() -> P {
        P(vec![0x80, 2])
    }
    pub fn op(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn int(&mut self, i: i32) -> &mut Self {
        self.0.push(b'J');
        self.0.extend_from_slice(&i.to_le_bytes());
        self
    }
    pub fn ints_tuple(&mut self, v: &[i32]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    /// `_rebuild_tensor_v2(storage(key, numel), 0, size, stride, False, OrderedDict())`.
    pub fn tensor(&mut self, key: &str, numel: i32, size: &[i32], stride: &[i32]) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"((");
        self.str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ");
        self.int(0).ints_tuple(size).ints_tuple(stride);
        self.op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")RtR")
    }
    /// Starts `__torch__.<module>.<class>()` with its attribute dict open.
    pub fn object(&mut self, module: &str, class: &str) -> &mut Self {
        self.global(module, class).op(b")\x81}(")
    }
    /// Closes the attribute dict and applies it.
    pub fn end_object(&mut self) -> &mut Self {
        self.op(b"ub")
    }
    pub fn finish(&mut self) -> Vec<u8> {
        self.0.push(b'.');
        std::mem::take(&mut self.0)
    }
}

/// Zips members under the folder `m/` like `torch.jit.save` (stored, not deflated).
pub fn zip_archive(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in members {
        w.start_file(format!("m/{name}"), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The code of the tiny network: conv 3x3 pad 1 (no bias) -> batch norm (shift
/// only) -> ReLU -> 2x2 average pool; the pool output concatenated with a 3x3
/// stride-1 pad-1 max pool of itself; reshape to [-1, 16].
pub const TINY_CODE: &str = r#"class Net(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  conv : __torch__.m.ConvBn
  pool : __torch__.m.Pool
  def forward(self: __torch__.m.Net,
    x: Tensor) -> Tensor:
    batch_size, channels, height, width, = torch.size(x)
    if torch.eq(channels, 1):
      pass
    else:
      ops.prim.RaiseException("AssertionError: ")
    conv = self.conv
    pool = self.pool
    y = (pool).forward((conv).forward(x, ), )
    _0 = torch.contiguous(torch.max_pool2d(y, [3, 3], [1, 1], [1, 1], [1, 1], False))
    z = torch.cat([y, _0], 1)
    return torch.reshape(z, [-1, 16])
class ConvBn(Module):
  __parameters__ = ["weight", "beta", "mean", "var", ]
  __buffers__ = []
  weight : Tensor
  beta : Tensor
  mean : Tensor
  var : Tensor
  training : bool
  stride : int
  padding : List[int]
  def forward(self: __torch__.m.ConvBn,
    x: Tensor) -> Tensor:
    _0 = __torch__.m.batch_norm
    weight = self.weight
    _1 = torch.to(weight, ops.prim.dtype(x))
    stride = self.stride
    x0 = torch.conv2d(x, _1, None, [stride, stride], self.padding)
    x1 = _0(x0, self.mean, self.var, None, self.beta, False, 0.10000000000000001, 0.001, )
    return torch.relu(x1)
class Pool(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  padding : Final[int] = 0
  kernel_size : Final[int] = 2
  stride : Final[int] = 2
  ceil_mode : Final[bool] = False
  count_include_pad : Final[bool] = False
  def forward(self: __torch__.m.Pool,
    input: Tensor) -> Tensor:
    _2 = torch.avg_pool2d(input, [2, 2], [2, 2], [0, 0], False, False)
    return _2
def batch_norm(input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor]=None,
    bias: Optional[Tensor]=None,
    training: bool=False,
    momentum: float=0.10000000000000001,
    eps: float=1.0000000000000001e-05) -> Tensor:
  if training:
    _1 = __torch__.m.nothing_here(input, )
  else:
    pass
  _2 = torch.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, True)
  return _2
"#;

/// The tiny network's weights: conv `[2, 1, 3, 3]`, beta, mean, var `[2]`.
pub fn tiny_weights() -> Vec<Vec<f32>> {
    vec![
        (0..18).map(|i| (i as f32 - 8.0) / 10.0).collect(),
        vec![0.5, -0.25],
        vec![0.1, -0.2],
        vec![0.9, 1.7],
    ]
}

/// The tiny network's `data.pkl`.
pub fn tiny_data_pkl() -> Vec<u8> {
    let mut p = P::new();
    p.object("__torch__.m", "Net");
    p.str("training").op(b"\x89");
    p.str("conv").object("__torch__.m", "ConvBn");
    p.str("weight")
        .tensor("0", 18, &[2, 1, 3, 3], &[9, 9, 3, 1]);
    p.str("beta").tensor("1", 2, &[2], &[1]);
    p.str("mean").tensor("2", 2, &[2], &[1]);
    p.str("var").tensor("3", 2, &[2], &[1]);
    p.str("training").op(b"\x89");
    p.str("stride").int(1);
    p.str("padding")
        .global("torch.jit._pickle", "build_intlist")
        .op(b"(](K\x01K\x01etR");
    p.end_object();
    p.str("pool").object("__torch__.m", "Pool");
    p.str("training").op(b"\x89");
    p.end_object();
    p.end_object();
    p.finish()
}

/// A tiny archive with `code` as `code/__torch__/m.py` and `data` as `data.pkl`.
pub fn tiny_archive_with(code: &str, data: Vec<u8>) -> Vec<u8> {
    let w = tiny_weights();
    zip_archive(&[
        ("version", b"3\n".to_vec()),
        ("constants.pkl", vec![0x80, 2, b')', b'.']),
        ("data.pkl", data),
        ("data/0", f32_bytes(&w[0])),
        ("data/1", f32_bytes(&w[1])),
        ("data/2", f32_bytes(&w[2])),
        ("data/3", f32_bytes(&w[3])),
        ("code/__torch__/m.py", code.as_bytes().to_vec()),
        ("code/__torch__/m.py.debug_pkl", b"never read".to_vec()),
    ])
}

/// The tiny archive.
pub fn tiny_archive() -> Vec<u8> {
    tiny_archive_with(TINY_CODE, tiny_data_pkl())
}
