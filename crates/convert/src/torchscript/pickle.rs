//! A whitelisting reader for the pickles inside a TorchScript archive
//! (`data.pkl`, `constants.pkl`; pickle protocol 2).
//!
//! The reader is a small stack machine over an explicit opcode whitelist. It
//! never imports or calls anything: a `GLOBAL` is resolved against a fixed
//! table ([`Global`]) and every other global is an error naming it; `REDUCE`
//! and `NEWOBJ` only rebuild the few whitelisted shapes (tensors, empty
//! `OrderedDict`s, int lists, plain `__torch__` objects) as data.
//!
//! The input is untrusted, so everything is bounded: every length is checked
//! against the bytes left before anything is allocated, values may nest at
//! most [`MAX_DEPTH`] deep, containers that were memoized are never mutated
//! (so no cycles can be built and the memo never goes stale), and a malformed
//! stream is an error, never a panic.
//!
//! Reference: CPython `Lib/pickle.py` / `Lib/pickletools.py` for the opcode
//! semantics, PyTorch `torch/csrc/jit/serialization/unpickler.cpp` for the
//! TorchScript conventions (persistent ids `('storage', Storage, key,
//! location, numel)`, `torch._utils._rebuild_tensor_v2`).

use std::collections::HashMap;
use std::rc::Rc;

use super::TorchScriptError;

/// Deepest nesting of containers accepted (also bounds recursion when values are dropped or walked).
pub const MAX_DEPTH: u32 = 128;

/// Most dimensions a tensor may have.
pub const MAX_TENSOR_DIMS: usize = 16;

/// Which writer made the pickle: it decides the whitelist and how the memo
/// may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `torch.jit.save` (TorchScript's own pickler): `__torch__` classes are
    /// plain objects; containers are never memoized before they are filled.
    TorchScript,
    /// `torch.save` (Python's pickler, protocol 2) of a `state_dict`: no
    /// `__torch__` classes; `torch._utils._rebuild_parameter` is allowed;
    /// Python memoizes every container *before* filling it, so a memoized
    /// dict or list may be filled (copy on write, the memo entries that name
    /// it follow; a container also held anywhere else is still refused, so
    /// no value ever changes under a holder and no cycle can be built);
    /// `BUILD` on a dict (an `OrderedDict`'s `_metadata` attribute) is
    /// checked to be a dict and dropped.
    TorchSave,
}

/// A whitelisted global, the only callables a pickle may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Global {
    /// `torch._utils._rebuild_tensor_v2`: `REDUCE` with `(storage, offset, size, stride, requires_grad, hooks)`.
    RebuildTensorV2,
    /// `torch.FloatStorage`: only as the storage type inside a persistent id.
    FloatStorage,
    /// `torch.HalfStorage` (IEEE binary16; the OpenAI CLIP archives): only
    /// as the storage type inside a persistent id, widened to float32 on load.
    HalfStorage,
    /// `torch.LongStorage` (int64; CLIP's TorchScript files keep
    /// `input_resolution`, `context_length` and `vocab_size` as such tensors).
    LongStorage,
    /// `torch.IntStorage` (int32).
    IntStorage,
    /// `collections.OrderedDict`: `REDUCE` with `()` gives an empty dict.
    OrderedDict,
    /// `torch.jit._pickle.build_intlist`: `REDUCE` with `(list_of_ints,)`.
    BuildIntList,
    /// `torch._utils._rebuild_parameter` ([`Flavor::TorchSave`] only):
    /// `REDUCE` with `(tensor, requires_grad, backward_hooks)` gives the tensor.
    RebuildParameter,
    /// A TorchScript class `__torch__.*`: only `NEWOBJ` with `()`, then `BUILD` with its attribute dict.
    TorchClass(Rc<str>),
}

impl Global {
    /// Resolves `module name` against the whitelist; anything else is refused.
    fn resolve(
        module: &str,
        name: &str,
        offset: usize,
        flavor: Flavor,
    ) -> Result<Global, TorchScriptError> {
        let script = flavor == Flavor::TorchScript;
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
            ("torch", "FloatStorage") => Ok(Global::FloatStorage),
            ("torch", "HalfStorage") => Ok(Global::HalfStorage),
            ("torch", "LongStorage") => Ok(Global::LongStorage),
            ("torch", "IntStorage") => Ok(Global::IntStorage),
            ("collections", "OrderedDict") => Ok(Global::OrderedDict),
            ("torch.jit._pickle", "build_intlist") if script => Ok(Global::BuildIntList),
            ("torch._utils", "_rebuild_parameter") if !script => Ok(Global::RebuildParameter),
            (m, n)
                if script
                    && (m == "__torch__" || m.starts_with("__torch__."))
                    && is_dotted_identifier(m)
                    && is_identifier(n) =>
            {
                Ok(Global::TorchClass(Rc::from(format!("{m}.{n}"))))
            }
            _ => Err(TorchScriptError::ForbiddenGlobal {
                module: module.chars().take(200).collect(),
                name: name.chars().take(200).collect(),
                offset,
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
            Global::FloatStorage => "torch.FloatStorage".into(),
            Global::HalfStorage => "torch.HalfStorage".into(),
            Global::LongStorage => "torch.LongStorage".into(),
            Global::IntStorage => "torch.IntStorage".into(),
            Global::OrderedDict => "collections.OrderedDict".into(),
            Global::BuildIntList => "torch.jit._pickle.build_intlist".into(),
            Global::RebuildParameter => "torch._utils._rebuild_parameter".into(),
            Global::TorchClass(c) => c.to_string(),
        }
    }
}

/// True for a Python identifier made of ASCII letters, digits and `_`, not starting with a digit.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_dotted_identifier(s: &str) -> bool {
    s.split('.').all(is_identifier)
}

/// A sequence (tuple or list) with its nesting depth.
#[derive(Debug)]
pub struct Seq {
    depth: u32,
    /// The items in order.
    pub items: Vec<Value>,
}

/// A dict (insertion order kept) with its nesting depth.
#[derive(Debug)]
pub struct Map {
    depth: u32,
    /// The entries in insertion order (duplicates are kept; consumers decide).
    pub entries: Vec<(Value, Value)>,
}

/// An instance of a `__torch__` class: its qualified class name and the state set by `BUILD`.
#[derive(Debug)]
pub struct Object {
    depth: u32,
    /// Qualified class name, e.g. `__torch__.inceptionv3.Conv2dLayer`.
    pub class: Rc<str>,
    /// The state given to `BUILD` (a dict of attributes), `None` before `BUILD`.
    pub state: Option<Value>,
}

/// A storage named by a persistent id: little-endian data in the archive
/// member `data/<key>`.
#[derive(Debug, PartialEq, Eq)]
pub struct Storage {
    /// The key (a decimal number): the member `data/<key>`.
    pub key: Rc<str>,
    /// Number of elements the pickle says it holds.
    pub numel: u64,
    /// Element type.
    pub dtype: StorageDtype,
}

/// Element type of a [`Storage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    /// float32 (`torch.FloatStorage`).
    F32,
    /// IEEE 754 binary16 (`torch.HalfStorage`), widened exactly to float32.
    F16,
    /// int64 (`torch.LongStorage`), read as float32 only where exact
    /// (|v| <= 2^24); a larger value is an error naming the storage.
    I64,
    /// int32 (`torch.IntStorage`), read as float32 only where exact.
    I32,
}

impl StorageDtype {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            StorageDtype::F32 => 4,
            StorageDtype::F16 => 2,
            StorageDtype::I64 => 8,
            StorageDtype::I32 => 4,
        }
    }
}

/// A tensor view of a storage, as `_rebuild_tensor_v2` describes it (in elements).
#[derive(Debug)]
pub struct TensorRef {
    /// The storage viewed.
    pub storage: Rc<Storage>,
    /// Offset of the first element, in elements.
    pub offset: u64,
    /// Size of each dimension.
    pub size: Vec<u64>,
    /// Stride of each dimension, in elements.
    pub stride: Vec<u64>,
}

impl TensorRef {
    /// Number of elements (`prod(size)`), `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.size
            .iter()
            .try_fold(1u64, |acc, &s| acc.checked_mul(s))
    }
}

/// A value rebuilt from a pickle: plain data only, shared (never copied) through the memo.
#[derive(Clone, Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A float (`BINFLOAT`).
    Float(f64),
    /// A string (`BINUNICODE`).
    Str(Rc<str>),
    /// A tuple.
    Tuple(Rc<Seq>),
    /// A list.
    List(Rc<Seq>),
    /// A dict (also what `OrderedDict()` gives).
    Dict(Rc<Map>),
    /// A whitelisted global, not yet applied.
    Global(Global),
    /// A `__torch__` object.
    Object(Rc<Object>),
    /// A storage (from a persistent id).
    Storage(Rc<Storage>),
    /// A tensor (from `_rebuild_tensor_v2`).
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// Nesting depth: 0 for scalars, 1 + the deepest child for containers.
    pub fn depth(&self) -> u32 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(m) => m.depth,
            Value::Object(o) => o.depth,
            Value::Tensor(_) | Value::Storage(_) => 1,
            _ => 0,
        }
    }

    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Object(_) => "object",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

fn seq_depth(items: &[Value]) -> u32 {
    1 + items.iter().map(Value::depth).max().unwrap_or(0)
}

/// Name of a pickle opcode (all protocols), for error messages.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

/// Reads one pickle (protocol 2) and returns the value left by `STOP`.
///
/// Only these opcodes are accepted: `PROTO` (2), `STOP`, `MARK`, `NONE`,
/// `NEWTRUE`, `NEWFALSE`, `BININT`, `BININT1`, `BININT2`, `LONG1` (≤ 8 bytes),
/// `BINFLOAT`, `BINUNICODE`, `EMPTY_TUPLE`, `TUPLE`, `TUPLE1..3`,
/// `EMPTY_LIST`, `APPEND`, `APPENDS`, `EMPTY_DICT`, `SETITEM`, `SETITEMS`,
/// `BINPUT`, `LONG_BINPUT`, `BINGET`, `LONG_BINGET`, `GLOBAL` (whitelist, see
/// [`Global`]), `REDUCE`, `NEWOBJ`, `BUILD`, `BINPERSID` (storages only).
/// Anything else is [`TorchScriptError::UnsupportedOpcode`].
pub fn read(bytes: &[u8]) -> Result<Value, TorchScriptError> {
    Machine::new(bytes, Flavor::TorchScript).run()
}

/// [`read`] for a pickle of the given [`Flavor`]: [`Flavor::TorchSave`]
/// reads the `data.pkl` of a `torch.save` checkpoint (same opcodes; the
/// whitelist and memo rules of [`Flavor::TorchSave`]).
pub fn read_flavor(bytes: &[u8], flavor: Flavor) -> Result<Value, TorchScriptError> {
    Machine::new(bytes, flavor).run()
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed (for errors).
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    flavor: Flavor,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8], flavor: Flavor) -> Self {
        Machine {
            flavor,
            bytes,
            pos: 0,
            at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err(&self, message: impl Into<String>) -> TorchScriptError {
        TorchScriptError::Pickle {
            offset: self.at,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TorchScriptError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(TorchScriptError::PickleTruncated { offset: self.at })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, TorchScriptError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TorchScriptError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TorchScriptError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `\n`-terminated ASCII line of at most 256 bytes (for `GLOBAL`).
    fn line(&mut self) -> Result<&'a str, TorchScriptError> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .take(257)
            .position(|&b| b == b'\n')
            .ok_or_else(|| {
                if rest.len() <= 256 {
                    TorchScriptError::PickleTruncated { offset: self.at }
                } else {
                    self.err("GLOBAL name longer than 256 bytes")
                }
            })?;
        let line = self.take(n + 1)?;
        let line = &line[..n];
        if !line.is_ascii() {
            return Err(self.err("GLOBAL name is not ASCII"));
        }
        // ASCII is valid UTF-8.
        std::str::from_utf8(line).map_err(|_| self.err("GLOBAL name is not ASCII"))
    }

    fn push(&mut self, v: Value) -> Result<(), TorchScriptError> {
        if v.depth() > MAX_DEPTH {
            return Err(self.err(format!("values nested deeper than {MAX_DEPTH}")));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, TorchScriptError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top_mut(&mut self) -> Result<&mut Value, TorchScriptError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        let at = self.at;
        self.stack.last_mut().ok_or(TorchScriptError::Pickle {
            offset: at,
            message: "stack underflow".into(),
        })
    }

    /// Pops everything above the last mark, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, TorchScriptError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(m))
    }

    fn run(mut self) -> Result<Value, TorchScriptError> {
        loop {
            self.at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if self.at != 0 {
                        return Err(self.err("PROTO not at the start"));
                    }
                    if v != 2 {
                        return Err(
                            self.err(format!("pickle protocol {v} is not supported (only 2)"))
                        );
                    }
                }
                b'.' => {
                    if !self.marks.is_empty() || self.stack.len() != 1 {
                        return Err(self.err(format!(
                            "STOP with {} values and {} marks on the stack",
                            self.stack.len(),
                            self.marks.len()
                        )));
                    }
                    if self.pos != self.bytes.len() {
                        return Err(self.err(format!(
                            "{} trailing bytes after STOP",
                            self.bytes.len() - self.pos
                        )));
                    }
                    return self.stack.pop().ok_or_else(|| self.err("empty stack"));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.push(Value::Int(i64::from(v)))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    if n > 8 {
                        return Err(self.err(format!("LONG1 of {n} bytes does not fit in i64")));
                    }
                    let b = self.take(n)?;
                    let mut buf = [0u8; 8];
                    buf[..n].copy_from_slice(b);
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        for x in &mut buf[n..] {
                            *x = 0xff;
                        }
                    }
                    self.push(Value::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut buf = [0u8; 8];
                    buf.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(buf)))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| self.err("BINUNICODE is not valid UTF-8"))?;
                    self.push(Value::Str(Rc::from(s)))?
                }
                b')' => self.push(Value::Tuple(Rc::new(Seq {
                    depth: 1,
                    items: Vec::new(),
                })))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_seq(items, true)?
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_seq(items, true)?
                }
                b']' => self.push(Value::List(Rc::new(Seq {
                    depth: 1,
                    items: Vec::new(),
                })))?,
                b'a' => {
                    let v = self.pop()?;
                    self.extend_list(vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?
                }
                b'}' => self.push(Value::Dict(Rc::new(Map {
                    depth: 1,
                    entries: Vec::new(),
                })))?,
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_dict(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_dict(items)?
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    self.put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.put(i)?
                }
                b'h' => {
                    let i = u32::from(self.u8()?);
                    self.get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Global::resolve(module, name, self.at, self.flavor)?;
                    self.push(Value::Global(g))?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.newobj(cls, args)?;
                    self.push(v)?
                }
                b'b' => {
                    let state = self.pop()?;
                    self.build(state)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v)?
                }
                other => {
                    return Err(TorchScriptError::UnsupportedOpcode {
                        opcode: other,
                        name: opcode_name(other),
                        offset: self.at,
                    });
                }
            }
        }
    }

    fn push_seq(&mut self, items: Vec<Value>, tuple: bool) -> Result<(), TorchScriptError> {
        let seq = Rc::new(Seq {
            depth: seq_depth(&items),
            items,
        });
        self.push(if tuple {
            Value::Tuple(seq)
        } else {
            Value::List(seq)
        })
    }

    /// [`Flavor::TorchSave`]: when the top of the stack is a list or dict
    /// held only by the stack and by memo entries, removes those entries
    /// (so it can be filled in place) and returns their keys for
    /// [`Machine::remember_top`]. A container held anywhere else is left
    /// shared, and filling it fails.
    fn forget_top(&mut self) -> Vec<u32> {
        if self.flavor != Flavor::TorchSave {
            return Vec::new();
        }
        let Some(top) = self.stack.last() else {
            return Vec::new();
        };
        let same = |v: &Value| match (top, v) {
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Dict(a), Value::Dict(b)) => Rc::ptr_eq(a, b),
            _ => false,
        };
        let count = match top {
            Value::List(a) => Rc::strong_count(a),
            Value::Dict(a) => Rc::strong_count(a),
            _ => return Vec::new(),
        };
        let keys: Vec<u32> = self
            .memo
            .iter()
            .filter(|(_, v)| same(v))
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() || count != keys.len() + 1 {
            return Vec::new();
        }
        for k in &keys {
            self.memo.remove(k);
        }
        keys
    }

    /// Puts the (filled) top of the stack back under the memo keys
    /// [`Machine::forget_top`] removed.
    fn remember_top(&mut self, keys: Vec<u32>) {
        if let Some(top) = self.stack.last() {
            for k in keys {
                self.memo.insert(k, top.clone());
            }
        }
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), TorchScriptError> {
        let keys = self.forget_top();
        self.extend_list_in_place(items)?;
        self.remember_top(keys);
        Ok(())
    }

    fn extend_list_in_place(&mut self, items: Vec<Value>) -> Result<(), TorchScriptError> {
        let at = self.at;
        let top = self.top_mut()?;
        let Value::List(rc) = top else {
            let kind = top.kind();
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("APPEND to a {kind}"),
            });
        };
        let list = Rc::get_mut(rc).ok_or(TorchScriptError::Pickle {
            offset: at,
            message: "APPEND to a memoized (shared) list is not supported".into(),
        })?;
        let d = seq_depth(&items);
        if d > MAX_DEPTH {
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("values nested deeper than {MAX_DEPTH}"),
            });
        }
        list.depth = list.depth.max(d);
        list.items.extend(items);
        Ok(())
    }

    fn extend_dict(&mut self, items: Vec<Value>) -> Result<(), TorchScriptError> {
        let keys = self.forget_top();
        self.extend_dict_in_place(items)?;
        self.remember_top(keys);
        Ok(())
    }

    fn extend_dict_in_place(&mut self, items: Vec<Value>) -> Result<(), TorchScriptError> {
        let at = self.at;
        if !items.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of values"));
        }
        let top = self.top_mut()?;
        let Value::Dict(rc) = top else {
            let kind = top.kind();
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("SETITEM on a {kind}"),
            });
        };
        let map = Rc::get_mut(rc).ok_or(TorchScriptError::Pickle {
            offset: at,
            message: "SETITEM on a memoized (shared) dict is not supported".into(),
        })?;
        let d = seq_depth(&items);
        if d > MAX_DEPTH {
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("values nested deeper than {MAX_DEPTH}"),
            });
        }
        map.depth = map.depth.max(d);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match k {
                Value::None | Value::Bool(_) | Value::Int(_) | Value::Str(_) | Value::Float(_) => {}
                other => {
                    return Err(TorchScriptError::Pickle {
                        offset: at,
                        message: format!("dict key of type {}", other.kind()),
                    });
                }
            }
            map.entries.push((k, v));
        }
        Ok(())
    }

    fn put(&mut self, i: u32) -> Result<(), TorchScriptError> {
        let v = self.top_mut()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<(), TorchScriptError> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| self.err(format!("memo key {i} was never stored")))?;
        self.push(v)
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value, TorchScriptError> {
        let Value::Global(g) = callable else {
            return Err(self.err(format!("REDUCE on a {}", callable.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.err(format!("REDUCE arguments are a {}", args.kind())));
        };
        let args = &args.items;
        match g {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return Err(self.err("OrderedDict with arguments"));
                }
                Ok(Value::Dict(Rc::new(Map {
                    depth: 1,
                    entries: Vec::new(),
                })))
            }
            Global::BuildIntList => {
                let [Value::List(list)] = args.as_slice() else {
                    return Err(self.err("build_intlist expects one list"));
                };
                if !list.items.iter().all(|v| matches!(v, Value::Int(_))) {
                    return Err(self.err("build_intlist with a non-int item"));
                }
                Ok(Value::List(list.clone()))
            }
            Global::RebuildTensorV2 => self.rebuild_tensor(args),
            Global::RebuildParameter => match args.as_slice() {
                [Value::Tensor(t), Value::Bool(_), Value::Dict(hooks)]
                    if hooks.entries.is_empty() =>
                {
                    Ok(Value::Tensor(t.clone()))
                }
                _ => Err(self.err(
                    "_rebuild_parameter expects (tensor, requires_grad, empty backward hooks)",
                )),
            },
            other => Err(self.err(format!("REDUCE on {} is not allowed", other.describe()))),
        }
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value, TorchScriptError> {
        if args.len() != 6 {
            return Err(self.err(format!(
                "_rebuild_tensor_v2 with {} arguments (expected 6)",
                args.len()
            )));
        }
        let Value::Storage(storage) = &args[0] else {
            return Err(self.err("_rebuild_tensor_v2: argument 0 is not a storage"));
        };
        let offset = self.non_negative(&args[1], "storage offset")?;
        let size = self.int_tuple(&args[2], "size")?;
        let stride = self.int_tuple(&args[3], "stride")?;
        if size.len() != stride.len() {
            return Err(self.err("_rebuild_tensor_v2: size and stride differ in length"));
        }
        if !matches!(args[4], Value::Bool(_)) {
            return Err(self.err("_rebuild_tensor_v2: requires_grad is not a bool"));
        }
        match &args[5] {
            Value::Dict(d) if d.entries.is_empty() => {}
            _ => return Err(self.err("_rebuild_tensor_v2: backward hooks are not supported")),
        }
        let t = TensorRef {
            storage: storage.clone(),
            offset,
            size,
            stride,
        };
        // The highest element touched must lie inside the storage.
        let numel = t.numel().ok_or_else(|| self.err("tensor size overflows"))?;
        if numel > 0 {
            let mut last = offset;
            for (&s, &st) in t.size.iter().zip(&t.stride) {
                last = (s - 1)
                    .checked_mul(st)
                    .and_then(|x| x.checked_add(last))
                    .ok_or_else(|| self.err("tensor extent overflows"))?;
            }
            if last >= storage.numel {
                return Err(self.err(format!(
                    "tensor reaches element {last} of storage {} which holds {}",
                    storage.key, storage.numel
                )));
            }
        }
        Ok(Value::Tensor(Rc::new(t)))
    }

    fn non_negative(&self, v: &Value, what: &str) -> Result<u64, TorchScriptError> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            Value::Int(i) => Err(self.err(format!("negative {what} {i}"))),
            other => Err(self.err(format!("{what} is a {}", other.kind()))),
        }
    }

    fn int_tuple(&self, v: &Value, what: &str) -> Result<Vec<u64>, TorchScriptError> {
        let Value::Tuple(t) = v else {
            return Err(self.err(format!("tensor {what} is a {}", v.kind())));
        };
        if t.items.len() > MAX_TENSOR_DIMS {
            return Err(self.err(format!(
                "tensor with {} dimensions (at most {MAX_TENSOR_DIMS})",
                t.items.len()
            )));
        }
        t.items.iter().map(|x| self.non_negative(x, what)).collect()
    }

    fn newobj(&self, cls: Value, args: Value) -> Result<Value, TorchScriptError> {
        let Value::Global(Global::TorchClass(class)) = cls else {
            return Err(self.err(format!(
                "NEWOBJ on {}",
                match &cls {
                    Value::Global(g) => g.describe(),
                    other => other.kind().to_string(),
                }
            )));
        };
        match args {
            Value::Tuple(t) if t.items.is_empty() => {}
            _ => return Err(self.err("NEWOBJ with arguments")),
        }
        Ok(Value::Object(Rc::new(Object {
            depth: 1,
            class,
            state: None,
        })))
    }

    fn build(&mut self, state: Value) -> Result<(), TorchScriptError> {
        let at = self.at;
        if !matches!(state, Value::Dict(_)) {
            return Err(self.err(format!("BUILD with a {} state", state.kind())));
        }
        let depth = state.depth() + 1;
        let flavor = self.flavor;
        let top = self.top_mut()?;
        if flavor == Flavor::TorchSave && matches!(top, Value::Dict(_)) {
            // An OrderedDict's instance attributes (`_metadata` of a
            // state_dict): checked to be a dict above, not needed.
            return Ok(());
        }
        let Value::Object(rc) = top else {
            let kind = top.kind();
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("BUILD on a {kind}"),
            });
        };
        let obj = Rc::get_mut(rc).ok_or(TorchScriptError::Pickle {
            offset: at,
            message: "BUILD on a memoized (shared) object is not supported".into(),
        })?;
        if obj.state.is_some() {
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: "BUILD twice on one object".into(),
            });
        }
        if depth > MAX_DEPTH {
            return Err(TorchScriptError::Pickle {
                offset: at,
                message: format!("values nested deeper than {MAX_DEPTH}"),
            });
        }
        obj.depth = depth;
        obj.state = Some(state);
        Ok(())
    }

    fn persistent(&self, pid: Value) -> Result<Value, TorchScriptError> {
        let Value::Tuple(t) = pid else {
            return Err(self.err(format!("persistent id is a {}", pid.kind())));
        };
        match t.items.as_slice() {
            [
                Value::Str(tag),
                Value::Global(ty),
                Value::Str(key),
                Value::Str(_location),
                numel,
            ] if &**tag == "storage" => {
                let dtype = match ty {
                    Global::FloatStorage => StorageDtype::F32,
                    Global::HalfStorage => StorageDtype::F16,
                    Global::LongStorage => StorageDtype::I64,
                    Global::IntStorage => StorageDtype::I32,
                    _ => {
                        return Err(self.err(format!(
                            "storage type {} is not supported (only float32, float16, int64 and int32)",
                            ty.describe()
                        )));
                    }
                };
                if key.is_empty() || key.len() > 12 || !key.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.err(format!(
                        "storage key {:?} is not a decimal number",
                        key.chars().take(40).collect::<String>()
                    )));
                }
                let numel = self.non_negative(numel, "storage size")?;
                Ok(Value::Storage(Rc::new(Storage {
                    key: key.clone(),
                    numel,
                    dtype,
                })))
            }
            _ => {
                Err(self
                    .err("persistent id is not ('storage', FloatStorage, key, location, numel)"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unicode(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend_from_slice(&(s.len() as u32).to_le_bytes());
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn wrap(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, 2];
        v.extend_from_slice(body);
        v.push(b'.');
        v
    }

    #[test]
    fn reads_scalars_and_containers() {
        // (1, -2, 300, 70000, 'a', None, True, [1, 2], {'k': 1.5})
        let mut b = vec![b'(', b'K', 1, b'J'];
        b.extend_from_slice(&(-2i32).to_le_bytes());
        b.extend_from_slice(&[b'M', 0x2c, 0x01, b'J']);
        b.extend_from_slice(&70000i32.to_le_bytes());
        b.extend(unicode("a"));
        b.extend_from_slice(&[b'N', 0x88, b']', b'(', b'K', 1, b'K', 2, b'e', b'}']);
        b.extend(unicode("k"));
        b.push(b'G');
        b.extend_from_slice(&1.5f64.to_be_bytes());
        b.extend_from_slice(b"st");
        let v = read(&wrap(&b)).unwrap();
        let Value::Tuple(t) = v else { panic!() };
        assert_eq!(t.items.len(), 9);
        assert!(matches!(t.items[0], Value::Int(1)));
        assert!(matches!(t.items[1], Value::Int(-2)));
        assert!(matches!(t.items[2], Value::Int(300)));
        assert!(matches!(t.items[3], Value::Int(70000)));
        assert!(matches!(&t.items[4], Value::Str(s) if &**s == "a"));
        assert!(matches!(t.items[5], Value::None));
        assert!(matches!(t.items[6], Value::Bool(true)));
        assert!(matches!(&t.items[7], Value::List(l) if l.items.len() == 2));
        let Value::Dict(d) = &t.items[8] else {
            panic!()
        };
        assert!(matches!(d.entries[0].1, Value::Float(x) if x == 1.5));
    }

    #[test]
    fn long1_sign_extends() {
        for (bytes, want) in [
            (vec![0x8a, 0], 0i64),
            (vec![0x8a, 1, 0xff], -1),
            (vec![0x8a, 2, 0x00, 0x80], -32768),
            (vec![0x8a, 5, 0, 0, 0, 0, 1], 1 << 32),
        ] {
            let v = read(&wrap(&bytes)).unwrap();
            assert!(matches!(v, Value::Int(x) if x == want), "{bytes:?}");
        }
        let err = read(&wrap(&[0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap_err();
        assert!(err.to_string().contains("LONG1"), "{err}");
    }

    #[test]
    fn refuses_os_system() {
        // The classic: GLOBAL os system, then REDUCE ('echo pwned',).
        let mut b = b"cos\nsystem\n(".to_vec();
        b.extend(unicode("echo pwned"));
        b.extend_from_slice(b"tR");
        let err = read(&wrap(&b)).unwrap_err();
        match &err {
            TorchScriptError::ForbiddenGlobal { module, name, .. } => {
                assert_eq!(module, "os");
                assert_eq!(name, "system");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("os.system"), "{err}");
    }

    #[test]
    fn refuses_other_globals_and_builtins() {
        for g in [
            "builtins\neval\n",
            "builtins\ngetattr\n",
            "subprocess\nPopen\n",
            "torch\nload\n",
            "torch._utils\n_rebuild_parameter\n",
            "__torch__\nnot an identifier\n",
            "__torch__x\nC\n",
        ] {
            let mut b = vec![b'c'];
            b.extend_from_slice(g.as_bytes());
            let err = read(&wrap(&b)).unwrap_err();
            assert!(
                matches!(err, TorchScriptError::ForbiddenGlobal { .. }),
                "{g:?}: {err}"
            );
        }
    }

    #[test]
    fn refuses_unlisted_opcodes_by_name() {
        for (op, name) in [
            (0x93u8, "STACK_GLOBAL"),
            (b'i', "INST"),
            (b'o', "OBJ"),
            (0x82, "EXT1"),
            (0x95, "FRAME"),
            (b'S', "STRING"),
        ] {
            let err = read(&wrap(&[op])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
            assert!(
                matches!(err, TorchScriptError::UnsupportedOpcode { opcode, .. } if opcode == op)
            );
        }
    }

    #[test]
    fn reduce_on_whitelisted_class_is_refused() {
        // A __torch__ class may only be instantiated with NEWOBJ, never called.
        let b = b"c__torch__.m\nC\n)R";
        let err = read(&wrap(b)).unwrap_err();
        assert!(err.to_string().contains("REDUCE on __torch__.m.C"), "{err}");
        // And torch.FloatStorage cannot be called either.
        let err = read(&wrap(b"ctorch\nFloatStorage\n)R")).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn truncated_streams_are_errors() {
        let mut full = vec![0x80, 2, b'('];
        full.extend(unicode("hello"));
        full.extend_from_slice(b"J\x01\x00\x00\x00");
        full.extend_from_slice(b"c__torch__.m\nC\n");
        full.extend_from_slice(b"t.");
        assert!(read(&full).is_ok());
        for cut in 0..full.len() {
            let r = read(&full[..cut]);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
        // Exactly the truncated error at an opcode argument.
        let err = read(&[0x80, 2, b'J', 1, 2]).unwrap_err();
        assert!(
            matches!(err, TorchScriptError::PickleTruncated { offset: 2 }),
            "{err}"
        );
    }

    #[test]
    fn absurd_sizes_are_errors_without_allocating() {
        // BINUNICODE claiming 4 GiB.
        let err = read(&[0x80, 2, b'X', 0xff, 0xff, 0xff, 0xff, b'a']).unwrap_err();
        assert!(
            matches!(err, TorchScriptError::PickleTruncated { .. }),
            "{err}"
        );
        // A memo key far away is just a missing key.
        let err = read(&[0x80, 2, b'j', 0xff, 0xff, 0xff, 0xff, b'.']).unwrap_err();
        assert!(err.to_string().contains("never stored"), "{err}");
        // A storage claiming 2^62 elements, and a tensor reaching past a storage.
        let mut b = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
        b.extend(unicode("storage"));
        b.extend_from_slice(b"ctorch\nFloatStorage\n");
        b.extend(unicode("0"));
        b.extend(unicode("cpu"));
        b.extend_from_slice(&[b'K', 4, b't', b'Q', b'K', 0]);
        // size (1000000, 1000000), stride (1000000, 1)
        b.extend_from_slice(b"(J");
        b.extend_from_slice(&1_000_000i32.to_le_bytes());
        b.push(b'J');
        b.extend_from_slice(&1_000_000i32.to_le_bytes());
        b.extend_from_slice(b"t(J");
        b.extend_from_slice(&1_000_000i32.to_le_bytes());
        b.extend_from_slice(b"K\x01t");
        b.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
        let err = read(&wrap(&b)).unwrap_err();
        assert!(err.to_string().contains("holds 4"), "{err}");
    }

    #[test]
    fn rebuilds_a_tensor() {
        let mut b = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
        b.extend(unicode("storage"));
        b.extend_from_slice(b"ctorch\nFloatStorage\n");
        b.extend(unicode("7"));
        b.extend(unicode("cpu"));
        b.extend_from_slice(&[b'K', 6, b't', b'Q', b'K', 0]);
        b.extend_from_slice(b"(K\x02K\x03t(K\x03K\x01t");
        b.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
        let Value::Tensor(t) = read(&wrap(&b)).unwrap() else {
            panic!()
        };
        assert_eq!(&*t.storage.key, "7");
        assert_eq!(t.size, vec![2, 3]);
        assert_eq!(t.stride, vec![3, 1]);
        assert_eq!(t.numel(), Some(6));
    }

    #[test]
    fn storage_key_must_be_a_number() {
        let mut b = b"(".to_vec();
        b.extend(unicode("storage"));
        b.extend_from_slice(b"ctorch\nFloatStorage\n");
        b.extend(unicode("../../etc/passwd"));
        b.extend(unicode("cpu"));
        b.extend_from_slice(&[b'K', 6, b't', b'Q']);
        let err = read(&wrap(&b)).unwrap_err();
        assert!(err.to_string().contains("decimal"), "{err}");
    }

    #[test]
    fn objects_are_plain_data() {
        // __torch__.m.C() with state {'x': 1}
        let mut b = b"c__torch__.m\nC\n)\x81}(".to_vec();
        b.extend(unicode("x"));
        b.extend_from_slice(b"K\x01ub");
        let Value::Object(o) = read(&wrap(&b)).unwrap() else {
            panic!()
        };
        assert_eq!(&*o.class, "__torch__.m.C");
        assert!(matches!(&o.state, Some(Value::Dict(d)) if d.entries.len() == 1));
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 10_000 nested 1-tuples: ((((0,),),),...)
        let mut b = vec![b'K', 0];
        b.extend(std::iter::repeat_n(0x85u8, 10_000));
        let err = read(&wrap(&b)).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn no_cycles_through_the_memo() {
        // l = []; memo[0] = l; l.append(l)  -> refused (it would be a cycle)
        let b = [b']', b'q', 0, b'h', 0, b'a'];
        let err = read(&wrap(&b)).unwrap_err();
        assert!(err.to_string().contains("memoized"), "{err}");
    }

    #[test]
    fn shared_values_do_not_blow_up() {
        // A billion-laughs style DAG: t0 = (0,0); t_{i+1} = (t_i, t_i), 100 levels.
        // Shared through the memo, so it costs O(levels), and depth stays bounded.
        let mut b = vec![b'K', 0, b'K', 0, 0x86];
        for _ in 0..100 {
            b.extend_from_slice(&[b'q', 0, b'h', 0, 0x86]);
        }
        let v = read(&wrap(&b)).unwrap();
        assert_eq!(v.depth(), 101);
        let mut b = vec![b'K', 0, b'K', 0, 0x86];
        for _ in 0..200 {
            b.extend_from_slice(&[b'q', 0, b'h', 0, 0x86]);
        }
        assert!(read(&wrap(&b)).is_err());
    }

    #[test]
    fn stack_discipline() {
        // STOP with two values, trailing bytes, underflow, SETITEMS odd, wrong protocol.
        assert!(read(&wrap(b"NN")).is_err());
        assert!(read(&[0x80, 2, b'N', b'.', b'N']).is_err());
        assert!(read(&wrap(b"a")).is_err());
        assert!(read(&wrap(b"}(Nu")).is_err());
        assert!(read(&[0x80, 4, b'N', b'.']).is_err());
        assert!(read(&wrap(b"(N")).is_err());
        // A pop may not cross a MARK.
        assert!(read(&wrap(b"](a")).is_err());
        assert!(read(b"").is_err());
    }
}
