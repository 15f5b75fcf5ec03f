//! The TorchScript archive (a zip): its member layout, the module tree and
//! tensors rebuilt from `data.pkl` + `data/<key>`, and the code files.
//!
//! Layout (PyTorch `torch/csrc/jit/serialization/export_module.cpp`):
//! `<prefix>/version`, `<prefix>/data.pkl`, `<prefix>/constants.pkl`,
//! `<prefix>/data/<key>` (raw little-endian storages) and
//! `<prefix>/code/__torch__/**.py`. The `.debug_pkl` files beside the code are
//! never read.

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek};
use std::rc::Rc;

use zip::ZipArchive;
use zip::result::ZipError;

use super::TorchScriptError;
use super::pickle::{self, StorageDtype, TensorRef, Value};

/// Largest `data.pkl` / `constants.pkl` accepted, in bytes.
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Largest code file accepted, in bytes.
pub const MAX_CODE_FILE_BYTES: u64 = 4 << 20;
/// Most code files accepted.
pub const MAX_CODE_FILES: usize = 4096;
/// Largest total size of all code files, in bytes.
pub const MAX_CODE_BYTES: u64 = 32 << 20;
/// Largest total size of all tensor storages, in bytes (the FID Inception-V3 has 87 MB).
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;
/// Most tensors accepted.
pub const MAX_TENSORS: usize = 100_000;
/// Most values visited while turning the pickle into the module tree (bounds shared-value blow-up).
const MAX_TREE_NODES: usize = 1_000_000;

/// A module of the TorchScript module tree: its class and its attributes in pickle order.
#[derive(Clone, Debug)]
pub struct Module {
    /// Qualified class name, e.g. `__torch__.inceptionv3.Conv2dLayer`.
    pub class: String,
    /// Attributes (`training`, submodules, parameters, ints, ...) in the order the pickle gives them.
    pub attrs: Vec<(String, Attr)>,
}

impl Module {
    /// The attribute `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The class name without its module path (`Conv2dLayer`).
    pub fn class_name(&self) -> &str {
        self.class.rsplit('.').next().unwrap_or(&self.class)
    }

    /// Submodules in attribute order, with their attribute names.
    pub fn children(&self) -> impl Iterator<Item = (&str, &Module)> {
        self.attrs.iter().filter_map(|(k, v)| match v {
            Attr::Module(m) => Some((k.as_str(), &**m)),
            _ => None,
        })
    }
}

/// An attribute value of a module.
#[derive(Clone, Debug)]
pub enum Attr {
    /// `None`.
    None,
    /// A bool (e.g. `training`).
    Bool(bool),
    /// An int (e.g. a conv's `stride`).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list (e.g. a `List[int]` padding).
    List(Vec<Attr>),
    /// A tuple.
    Tuple(Vec<Attr>),
    /// A tensor: index into [`TorchScriptArchive::tensors`].
    Tensor(usize),
    /// A submodule.
    Module(Box<Module>),
}

/// A float32 tensor rebuilt from its storage, contiguous (row-major).
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Dotted attribute path of its first occurrence, e.g. `net.layers.conv.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values in row-major order (`data.len() == shape.iter().product()`).
    pub data: Vec<f32>,
}

/// A TorchScript source file of the archive.
#[derive(Clone, Debug)]
pub struct CodeFile {
    /// Member path below the archive folder, e.g. `code/__torch__/inceptionv3.py`.
    pub path: String,
    /// The Python module it defines, e.g. `__torch__.inceptionv3`.
    pub module: String,
    /// The source text.
    pub source: String,
}

/// A TorchScript archive read without executing anything: the module tree,
/// its float32 tensors and its code files.
#[derive(Clone, Debug)]
pub struct TorchScriptArchive {
    prefix: String,
    version: u32,
    root: Module,
    tensors: Vec<Tensor>,
    code: Vec<CodeFile>,
}

impl TorchScriptArchive {
    /// Reads an archive from its bytes (a zip as written by `torch.jit.save`).
    ///
    /// Checks: exactly one `<prefix>/data.pkl`; `version` a small integer;
    /// `constants.pkl` an empty tuple; every tensor float32 and inside its
    /// storage; every storage member exactly `numel * 4` bytes; sizes within
    /// the `MAX_*` limits of this module.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TorchScriptError> {
        let mut zip = ZipArchive::new(Cursor::new(bytes))?;
        let names: Vec<String> = zip
            .file_names()
            .map(|n| n.map(|s| s.into_owned()))
            .collect::<Result<_, _>>()?;
        let prefixes: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_suffix("/data.pkl"))
            .filter(|p| !p.is_empty() && !p.contains('/'))
            .collect();
        let prefix = match prefixes.as_slice() {
            [p] => p.to_string(),
            [] => return Err(TorchScriptError::MissingMember("<folder>/data.pkl".into())),
            _ => {
                return Err(TorchScriptError::Archive(format!(
                    "{} folders hold a data.pkl",
                    prefixes.len()
                )));
            }
        };

        let version_bytes = read_member(&mut zip, &format!("{prefix}/version"), 64)?;
        let version = std::str::from_utf8(&version_bytes)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|v| (1..=64).contains(v))
            .ok_or_else(|| {
                TorchScriptError::Archive("the version member is not a small integer".into())
            })?;

        let constants = read_member(
            &mut zip,
            &format!("{prefix}/constants.pkl"),
            MAX_PICKLE_BYTES,
        )?;
        match pickle::read(&constants)? {
            Value::Tuple(t) if t.items.is_empty() => {}
            Value::Tuple(t) => {
                return Err(TorchScriptError::Archive(format!(
                    "constants.pkl holds {} constants; tensor constants are not supported",
                    t.items.len()
                )));
            }
            other => {
                return Err(TorchScriptError::Archive(format!(
                    "constants.pkl holds a {}, not a tuple",
                    other.kind()
                )));
            }
        }

        let data = read_member(&mut zip, &format!("{prefix}/data.pkl"), MAX_PICKLE_BYTES)?;
        let root_value = pickle::read(&data)?;
        let mut builder = TreeBuilder::default();
        let root = match &root_value {
            Value::Object(_) => builder.module(&root_value, "")?,
            other => {
                return Err(TorchScriptError::Archive(format!(
                    "data.pkl holds a {}, not a module",
                    other.kind()
                )));
            }
        };
        let tensors = builder.load_tensors(&mut zip, &prefix)?;

        let code_prefix = format!("{prefix}/code/");
        let mut code = Vec::new();
        let mut code_bytes = 0u64;
        for name in &names {
            let Some(rel) = name.strip_prefix(&code_prefix) else {
                continue;
            };
            let Some(stem) = rel.strip_suffix(".py") else {
                continue;
            };
            if code.len() >= MAX_CODE_FILES {
                return Err(TorchScriptError::Archive(format!(
                    "more than {MAX_CODE_FILES} code files"
                )));
            }
            let module = stem.replace('/', ".");
            if !(module == "__torch__" || module.starts_with("__torch__."))
                || !module.split('.').all(pickle::is_identifier)
            {
                return Err(TorchScriptError::Archive(format!(
                    "code file {name} is not a __torch__ module"
                )));
            }
            let bytes = read_member(&mut zip, name, MAX_CODE_FILE_BYTES)?;
            code_bytes += bytes.len() as u64;
            if code_bytes > MAX_CODE_BYTES {
                return Err(TorchScriptError::Archive(format!(
                    "code files exceed {MAX_CODE_BYTES} bytes"
                )));
            }
            let source = String::from_utf8(bytes)
                .map_err(|_| TorchScriptError::Archive(format!("code file {name} is not UTF-8")))?;
            code.push(CodeFile {
                path: format!("code/{rel}"),
                module,
                source,
            });
        }
        if code.is_empty() {
            return Err(TorchScriptError::MissingMember(format!(
                "{prefix}/code/__torch__/*.py"
            )));
        }

        Ok(TorchScriptArchive {
            prefix,
            version,
            root,
            tensors,
            code,
        })
    }

    /// The archive's top folder (e.g. `out_jit_module`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The archive format version (the `version` member).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The root module.
    pub fn root(&self) -> &Module {
        &self.root
    }

    /// All distinct tensors, in the order the pickle first names them.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The code files under `code/`, in archive order.
    pub fn code(&self) -> &[CodeFile] {
        &self.code
    }

    /// Total number of tensor elements: `sum_t prod(shape_t)`.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(|t| t.data.len() as u64).sum()
    }
}

/// Reads one member, refusing more than `limit` bytes (declared or actual).
pub(crate) fn read_member<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, TorchScriptError> {
    let file = match zip.by_name(name) {
        Ok(f) => f,
        Err(ZipError::FileNotFound) => return Err(TorchScriptError::MissingMember(name.into())),
        Err(e) => return Err(e.into()),
    };
    let declared = file.size();
    if declared > limit {
        return Err(TorchScriptError::MemberTooLarge {
            name: name.into(),
            size: declared,
            limit,
        });
    }
    // Never trust the declared size for an allocation beyond a modest start.
    let mut buf = Vec::with_capacity(declared.min(64 << 20) as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 != declared {
        return Err(TorchScriptError::Archive(format!(
            "member {name} holds {} bytes but declares {declared}",
            buf.len()
        )));
    }
    Ok(buf)
}

/// The module tree of `<prefix>/data.pkl` and its tensors (named by their
/// dotted attribute paths, as `state_dict()` names them), storages of at most
/// `max_bytes` in total. Neither the code nor `constants.pkl` is read: this
/// is for archives whose weights alone are converted (the OpenAI CLIP files).
pub(crate) fn read_module_weights<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    prefix: &str,
    max_bytes: u64,
) -> Result<(Module, Vec<Tensor>), TorchScriptError> {
    let data = read_member(zip, &format!("{prefix}/data.pkl"), MAX_PICKLE_BYTES)?;
    let root_value = pickle::read(&data)?;
    let mut builder = TreeBuilder::default();
    let root = match &root_value {
        Value::Object(_) => builder.module(&root_value, "")?,
        other => {
            return Err(TorchScriptError::Archive(format!(
                "data.pkl holds a {}, not a module",
                other.kind()
            )));
        }
    };
    let tensors = load_tensors(zip, prefix, builder.tensors, max_bytes)?;
    Ok((root, tensors))
}

#[derive(Default)]
struct TreeBuilder {
    visited: usize,
    /// Distinct tensors by identity, in first-seen order.
    tensor_index: HashMap<*const TensorRef, usize>,
    tensors: Vec<(String, Rc<TensorRef>)>,
}

impl TreeBuilder {
    fn tick(&mut self) -> Result<(), TorchScriptError> {
        self.visited += 1;
        if self.visited > MAX_TREE_NODES {
            return Err(TorchScriptError::Archive(format!(
                "module tree has more than {MAX_TREE_NODES} values"
            )));
        }
        Ok(())
    }

    fn module(&mut self, v: &Value, path: &str) -> Result<Module, TorchScriptError> {
        self.tick()?;
        let Value::Object(obj) = v else {
            return Err(TorchScriptError::Archive(format!("{path}: not an object")));
        };
        let Some(Value::Dict(state)) = &obj.state else {
            return Err(TorchScriptError::Archive(format!(
                "{path}: object of {} without an attribute dict",
                obj.class
            )));
        };
        let mut attrs: Vec<(String, Attr)> = Vec::with_capacity(state.entries.len());
        for (k, v) in &state.entries {
            let Value::Str(k) = k else {
                return Err(TorchScriptError::Archive(format!(
                    "{path}: attribute name is a {}",
                    k.kind()
                )));
            };
            // An identifier, or the index of a `Sequential`'s child ("0").
            let index = !k.is_empty() && k.len() <= 9 && k.bytes().all(|b| b.is_ascii_digit());
            if !(pickle::is_identifier(k) || index) {
                return Err(TorchScriptError::Archive(format!(
                    "{path}: attribute name {k:?} is not an identifier or an index"
                )));
            }
            if attrs.iter().any(|(n, _)| n == &**k) {
                return Err(TorchScriptError::Archive(format!(
                    "{path}: attribute {k} given twice"
                )));
            }
            let child = if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            };
            let a = self.attr(v, &child)?;
            attrs.push((k.to_string(), a));
        }
        Ok(Module {
            class: obj.class.to_string(),
            attrs,
        })
    }

    fn attr(&mut self, v: &Value, path: &str) -> Result<Attr, TorchScriptError> {
        self.tick()?;
        Ok(match v {
            Value::None => Attr::None,
            Value::Bool(b) => Attr::Bool(*b),
            Value::Int(i) => Attr::Int(*i),
            Value::Float(f) => Attr::Float(*f),
            Value::Str(s) => Attr::Str(s.to_string()),
            Value::List(s) => Attr::List(
                s.items
                    .iter()
                    .map(|x| self.attr(x, path))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Tuple(s) => Attr::Tuple(
                s.items
                    .iter()
                    .map(|x| self.attr(x, path))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(_) => Attr::Module(Box::new(self.module(v, path)?)),
            Value::Tensor(t) => {
                let key = Rc::as_ptr(t);
                let idx = match self.tensor_index.get(&key) {
                    Some(&i) => i,
                    None => {
                        if self.tensors.len() >= MAX_TENSORS {
                            return Err(TorchScriptError::Archive(format!(
                                "more than {MAX_TENSORS} tensors"
                            )));
                        }
                        self.tensors.push((path.to_string(), t.clone()));
                        self.tensor_index.insert(key, self.tensors.len() - 1);
                        self.tensors.len() - 1
                    }
                };
                Attr::Tensor(idx)
            }
            other => {
                return Err(TorchScriptError::Archive(format!(
                    "{path}: a {} is not supported as a module attribute",
                    other.kind()
                )));
            }
        })
    }

    fn load_tensors<R: Read + Seek>(
        self,
        zip: &mut ZipArchive<R>,
        prefix: &str,
    ) -> Result<Vec<Tensor>, TorchScriptError> {
        load_tensors(zip, prefix, self.tensors, MAX_TENSOR_BYTES)
    }
}

/// IEEE 754 binary16 bits to the float32 of the same value (exact: every
/// half value, subnormals, infinities and NaN included, is a float32).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m · 2⁻²⁴, normalised for float32.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Reads the storages `<prefix>/data/<key>` of `tensors` (float32 or
/// float16, little-endian; float16 widened to float32) and cuts each tensor out of its storage, refusing storages
/// of more than `max_bytes` in total. Every storage member must hold exactly
/// the `numel * 4` bytes its persistent id declares; the pickle reader has
/// already checked that each view lies inside its storage.
pub(crate) fn load_tensors<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    prefix: &str,
    tensors: Vec<(String, Rc<TensorRef>)>,
    max_bytes: u64,
) -> Result<Vec<Tensor>, TorchScriptError> {
    {
        // Distinct storages with their declared sizes and how many tensors use them.
        let mut storages: HashMap<Rc<str>, (u64, usize)> = HashMap::new();
        let mut total: u64 = 0;
        for (name, t) in &tensors {
            let s = &t.storage;
            match storages.get_mut(&s.key) {
                Some((numel, uses)) => {
                    if *numel != s.numel {
                        return Err(TorchScriptError::Archive(format!(
                            "storage {} declared with {} and {} elements ({name})",
                            s.key, numel, s.numel
                        )));
                    }
                    *uses += 1;
                }
                None => {
                    total = s
                        .numel
                        .checked_mul(s.dtype.size())
                        .and_then(|b| b.checked_add(total))
                        .filter(|&b| b <= max_bytes)
                        .ok_or_else(|| {
                            TorchScriptError::Archive(format!(
                                "tensor storages exceed {max_bytes} bytes"
                            ))
                        })?;
                    storages.insert(s.key.clone(), (s.numel, 1));
                }
            }
        }
        let mut loaded: HashMap<Rc<str>, (Vec<f32>, usize)> = HashMap::new();
        let mut out = Vec::with_capacity(tensors.len());
        for (name, t) in tensors {
            let key = t.storage.key.clone();
            if !loaded.contains_key(&key) {
                let (numel, uses) = storages[&key];
                let dtype = t.storage.dtype;
                let member = format!("{prefix}/data/{key}");
                let bytes = read_member(zip, &member, numel * dtype.size())?;
                if bytes.len() as u64 != numel * dtype.size() {
                    return Err(TorchScriptError::Archive(format!(
                        "{member} holds {} bytes, the pickle says {numel} {dtype:?} values",
                        bytes.len(),
                    )));
                }
                let data: Vec<f32> = match dtype {
                    StorageDtype::F32 => bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    StorageDtype::F16 => bytes
                        .chunks_exact(2)
                        .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                        .collect(),
                    StorageDtype::I64 => bytes
                        .chunks_exact(8)
                        .map(|c| {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(c);
                            exact_f32(i64::from_le_bytes(b), &member)
                        })
                        .collect::<Result<_, _>>()?,
                    StorageDtype::I32 => bytes
                        .chunks_exact(4)
                        .map(|c| {
                            exact_f32(
                                i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                                &member,
                            )
                        })
                        .collect::<Result<_, _>>()?,
                };
                loaded.insert(key.clone(), (data, uses));
            }
            let shape: Vec<usize> = t
                .size
                .iter()
                .map(|&s| usize::try_from(s))
                .collect::<Result<_, _>>()
                .map_err(|_| TorchScriptError::Archive(format!("{name}: size overflows")))?;
            let numel = t
                .numel()
                .ok_or_else(|| TorchScriptError::Archive(format!("{name}: size overflows")))?;
            let Some((storage, uses)) = loaded.get_mut(&key) else {
                return Err(TorchScriptError::Archive(format!(
                    "{name}: storage not loaded"
                )));
            };
            *uses -= 1;
            let whole = t.offset == 0 && numel == storage.len() as u64 && is_contiguous(&t);
            let data = if whole && *uses == 0 {
                std::mem::take(storage)
            } else {
                gather(storage, &t)
            };
            out.push(Tensor { name, shape, data });
        }
        Ok(out)
    }
}

fn is_contiguous(t: &TensorRef) -> bool {
    let mut expect = 1u64;
    for (&s, &st) in t.size.iter().zip(&t.stride).rev() {
        if s != 1 && st != expect {
            return false;
        }
        expect = expect.saturating_mul(s);
    }
    true
}

/// Copies a strided view out of its storage (bounds were checked by the pickle reader).
fn gather(storage: &[f32], t: &TensorRef) -> Vec<f32> {
    let numel = t.numel().unwrap_or(0) as usize;
    let mut out = Vec::with_capacity(numel);
    if numel == 0 {
        return out;
    }
    let nd = t.size.len();
    let mut idx = vec![0u64; nd];
    for _ in 0..numel {
        let pos = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
        out.push(storage.get(pos as usize).copied().unwrap_or(f32::NAN));
        for d in (0..nd).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// An integer storage value as float32, refused where float32 cannot hold it
/// exactly (|v| > 2^24): the converters only ever read small integers
/// (CLIP's `input_resolution`, `context_length`, `vocab_size`).
fn exact_f32(v: i64, member: &str) -> Result<f32, TorchScriptError> {
    const EXACT: i64 = 1 << 24;
    if (-EXACT..=EXACT).contains(&v) {
        #[allow(clippy::cast_precision_loss)] // exact in this range
        Ok(v as f32)
    } else {
        Err(TorchScriptError::Archive(format!(
            "{member} holds the integer {v}, which float32 cannot hold exactly"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torchscript::pickle::Storage;

    #[test]
    fn half_floats_widen_exactly() {
        // Independent formula: (-1)^s · m · 2^-24 (subnormal) or
        // (-1)^s · (1024 + m) · 2^(e - 25), for every finite half.
        for h in 0u16..=u16::MAX {
            let (s, e, m) = (h >> 15, (h >> 10) & 0x1f, h & 0x3ff);
            let got = f16_to_f32(h);
            if e == 0x1f {
                assert!(
                    if m == 0 {
                        got.is_infinite()
                    } else {
                        got.is_nan()
                    },
                    "{h:#x}"
                );
                assert_eq!(got.is_sign_negative(), s == 1, "{h:#x}");
                continue;
            }
            let mag = if e == 0 {
                f64::from(m) * 2f64.powi(-24)
            } else {
                f64::from(1024 + m) * 2f64.powi(i32::from(e) - 25)
            };
            let want = if s == 1 { -mag } else { mag };
            assert_eq!(f64::from(got), want, "{h:#x}");
            assert_eq!(got.is_sign_negative(), s == 1, "{h:#x}");
        }
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
    }

    #[test]
    fn gathers_strided_views() {
        let storage: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let s = Rc::new(Storage {
            key: Rc::from("0"),
            numel: 12,
            dtype: super::pickle::StorageDtype::F32,
        });
        // Transposed 3x4 -> 4x3.
        let t = TensorRef {
            storage: s.clone(),
            offset: 0,
            size: vec![4, 3],
            stride: vec![1, 4],
        };
        assert!(!is_contiguous(&t));
        assert_eq!(
            gather(&storage, &t),
            vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
        let t = TensorRef {
            storage: s,
            offset: 2,
            size: vec![2, 1, 2],
            stride: vec![5, 100, 1],
        };
        assert!(!is_contiguous(&t));
        assert_eq!(gather(&storage, &t), vec![2., 3., 7., 8.]);
    }
}
