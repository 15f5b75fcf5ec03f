//! Symbolic execution of the archive's TorchScript code: `forward` of the root
//! module is run over a symbolic input of known shape; every tensor operation
//! becomes a [`Node`] of a [`Graph`], with its shape checked, and everything
//! else (ints, bools, lists, `if` on static conditions, module attributes,
//! `Final` constants) is evaluated exactly. Nothing the code names is ever
//! called: only the fixed set of operators below is understood, and anything
//! else is an error naming it.
//!
//! Understood: `torch.conv2d`, `torch.batch_norm` (inference), `torch.relu`,
//! `torch.relu_`, `torch.max_pool2d`, `torch.avg_pool2d`, `torch.cat`,
//! `torch.reshape`, `torch.contiguous`, `torch.size`, `torch.eq`, `torch.ne`,
//! `torch.__is__`, `torch.__isnot__`, `torch.to` (same dtype), `torch.warn`,
//! `ops.prim.dtype`, `ops.prim.RaiseException`, `annotate`, `unchecked_cast`,
//! and calls of the archive's own functions and module methods.
//!
//! After a pooling module's `forward` runs, its class's `Final` constants
//! (`kernel_size`, `stride`, `padding`, `dilation`, `ceil_mode`,
//! `count_include_pad`) are checked against the operator it emitted.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::TorchScriptError;
use super::archive::{Attr, Module, TorchScriptArchive};
use super::code::{self, Arg, ClassDef, Expr, FunctionDef, SourceFile, Stmt};
use super::graph::{Dim, Graph, Node, Op, ValueId, shape_string};

/// Most statements executed in one trace.
const MAX_STEPS: usize = 1_000_000;
/// Deepest call stack of the traced code.
const MAX_CALL_DEPTH: usize = 64;

/// Parses the archive's code and traces the root module's `forward` on an
/// input of shape `input` (use [`Dim::Batch`] for a dynamic batch).
pub fn trace(archive: &TorchScriptArchive, input: &[Dim]) -> Result<Graph, TorchScriptError> {
    let files: Vec<(String, SourceFile)> = archive
        .code()
        .iter()
        .map(|f| Ok((f.module.clone(), code::parse(&f.path, &f.source)?)))
        .collect::<Result<_, TorchScriptError>>()?;
    let mut it = Interp::new(archive, &files)?;
    let root = archive.root();
    let x = it.new_value(input.to_vec());
    let out = it.call_method(root, Rc::from(""), "forward", vec![Val::Tensor(x)])?;
    let Val::Tensor(output) = out else {
        return Err(it.unsupported(format!("forward returns a {}, not a tensor", out.kind())));
    };
    Ok(Graph {
        shapes: it.shapes,
        nodes: it.nodes,
        input: x,
        output,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    Size,
    Eq,
    Ne,
    Is,
    IsNot,
    Raise,
    Dtype,
    To,
    Conv2d,
    BatchNorm,
    Relu,
    MaxPool2d,
    AvgPool2d,
    Cat,
    Reshape,
    Contiguous,
    Warn,
    Annotate,
    UncheckedCast,
}

impl Builtin {
    fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "torch.size" => Builtin::Size,
            "torch.eq" => Builtin::Eq,
            "torch.ne" => Builtin::Ne,
            "torch.__is__" => Builtin::Is,
            "torch.__isnot__" => Builtin::IsNot,
            "ops.prim.RaiseException" => Builtin::Raise,
            "ops.prim.dtype" => Builtin::Dtype,
            "torch.to" => Builtin::To,
            "torch.conv2d" => Builtin::Conv2d,
            "torch.batch_norm" => Builtin::BatchNorm,
            "torch.relu" | "torch.relu_" => Builtin::Relu,
            "torch.max_pool2d" => Builtin::MaxPool2d,
            "torch.avg_pool2d" => Builtin::AvgPool2d,
            "torch.cat" => Builtin::Cat,
            "torch.reshape" => Builtin::Reshape,
            "torch.contiguous" => Builtin::Contiguous,
            "torch.warn" => Builtin::Warn,
            "annotate" => Builtin::Annotate,
            "unchecked_cast" => Builtin::UncheckedCast,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
enum Val<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// The symbolic batch size.
    BatchInt,
    Float(f64),
    Str(Rc<str>),
    List(Rc<Vec<Val<'a>>>),
    Tuple(Rc<Vec<Val<'a>>>),
    /// An activation.
    Tensor(ValueId),
    /// An archive tensor (a weight), by index.
    Param(usize),
    /// The (only) dtype: float32.
    Dtype,
    Module(&'a Module, Rc<str>),
    Method(&'a Module, Rc<str>, &'a FunctionDef),
    Func(&'a FunctionDef),
    Builtin(Builtin),
    Namespace(Rc<str>),
}

impl Val<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Val::None => "None",
            Val::Bool(_) => "bool",
            Val::Int(_) | Val::BatchInt => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "str",
            Val::List(_) => "list",
            Val::Tuple(_) => "tuple",
            Val::Tensor(_) | Val::Param(_) => "tensor",
            Val::Dtype => "dtype",
            Val::Module(..) => "module",
            Val::Method(..) | Val::Func(_) | Val::Builtin(_) => "function",
            Val::Namespace(_) => "namespace",
        }
    }
}

enum Flow<'a> {
    Next,
    Return(Val<'a>),
}

struct Frame<'a> {
    locals: HashMap<String, Val<'a>>,
    scope: Rc<str>,
}

struct Interp<'a> {
    archive: &'a TorchScriptArchive,
    classes: HashMap<String, &'a ClassDef>,
    functions: HashMap<String, &'a FunctionDef>,
    namespaces: HashSet<String>,
    shapes: Vec<Vec<Dim>>,
    nodes: Vec<Node>,
    steps: usize,
    depth: usize,
    /// Where the trace is, for errors.
    location: String,
}

fn add_prefixes(set: &mut HashSet<String>, qualified: &str) {
    let mut end = 0;
    while let Some(i) = qualified[end..].find('.') {
        end += i;
        set.insert(qualified[..end].to_string());
        end += 1;
    }
}

impl<'a> Interp<'a> {
    fn new(
        archive: &'a TorchScriptArchive,
        files: &'a [(String, SourceFile)],
    ) -> Result<Self, TorchScriptError> {
        let mut classes = HashMap::new();
        let mut functions = HashMap::new();
        let mut namespaces: HashSet<String> = ["torch", "ops", "ops.prim", "__torch__"]
            .into_iter()
            .map(String::from)
            .collect();
        for (module, file) in files {
            namespaces.insert(module.clone());
            add_prefixes(&mut namespaces, module);
            for c in &file.classes {
                let q = format!("{module}.{}", c.name);
                if classes.insert(q.clone(), c).is_some() {
                    return Err(TorchScriptError::Unsupported {
                        location: q,
                        message: "class defined twice".into(),
                    });
                }
            }
            for f in &file.functions {
                let q = format!("{module}.{}", f.name);
                if functions.insert(q.clone(), f).is_some() {
                    return Err(TorchScriptError::Unsupported {
                        location: q,
                        message: "function defined twice".into(),
                    });
                }
            }
        }
        Ok(Interp {
            archive,
            classes,
            functions,
            namespaces,
            shapes: Vec::new(),
            nodes: Vec::new(),
            steps: 0,
            depth: 0,
            location: String::from("<root>"),
        })
    }

    fn unsupported(&self, message: impl Into<String>) -> TorchScriptError {
        TorchScriptError::Unsupported {
            location: self.location.clone(),
            message: message.into(),
        }
    }

    fn new_value(&mut self, shape: Vec<Dim>) -> ValueId {
        self.shapes.push(shape);
        self.shapes.len() - 1
    }

    fn emit(&mut self, op: Op, inputs: Vec<ValueId>, shape: Vec<Dim>, scope: &str) -> Val<'a> {
        let output = self.new_value(shape);
        self.nodes.push(Node {
            op,
            inputs,
            output,
            scope: scope.to_string(),
        });
        Val::Tensor(output)
    }

    fn class_of(&self, m: &Module) -> Result<&'a ClassDef, TorchScriptError> {
        self.classes
            .get(&m.class)
            .copied()
            .ok_or_else(|| self.unsupported(format!("no code for class {}", m.class)))
    }

    fn call_method(
        &mut self,
        m: &'a Module,
        path: Rc<str>,
        name: &str,
        args: Vec<Val<'a>>,
    ) -> Result<Val<'a>, TorchScriptError> {
        let class = self.class_of(m)?;
        let f = class
            .method(name)
            .ok_or_else(|| self.unsupported(format!("class {} has no method {name}", m.class)))?;
        self.invoke_method(m, path, f, args, Vec::new())
    }

    fn invoke_method(
        &mut self,
        m: &'a Module,
        path: Rc<str>,
        f: &'a FunctionDef,
        args: Vec<Val<'a>>,
        kwargs: Vec<(String, Val<'a>)>,
    ) -> Result<Val<'a>, TorchScriptError> {
        let first = self.nodes.len();
        let mut all = vec![Val::Module(m, path.clone())];
        all.extend(args);
        let saved = std::mem::replace(
            &mut self.location,
            format!("{} ({}.{})", display_path(&path), m.class, f.name),
        );
        let out = self.invoke(f, all, kwargs, path.clone())?;
        if f.name == "forward" {
            let class = self.class_of(m)?;
            self.check_pool_constants(class, first)?;
        }
        self.location = saved;
        Ok(out)
    }

    fn invoke(
        &mut self,
        f: &'a FunctionDef,
        args: Vec<Val<'a>>,
        kwargs: Vec<(String, Val<'a>)>,
        scope: Rc<str>,
    ) -> Result<Val<'a>, TorchScriptError> {
        self.depth += 1;
        if self.depth > MAX_CALL_DEPTH {
            return Err(self.unsupported(format!("calls nested deeper than {MAX_CALL_DEPTH}")));
        }
        if args.len() > f.params.len() {
            return Err(self.unsupported(format!(
                "{} takes {} arguments, given {}",
                f.name,
                f.params.len(),
                args.len()
            )));
        }
        let mut frame = Frame {
            locals: HashMap::new(),
            scope: scope.clone(),
        };
        let mut args = args.into_iter();
        let mut kwargs = kwargs;
        for p in &f.params {
            let v = if let Some(v) = args.next() {
                v
            } else if let Some(i) = kwargs.iter().position(|(k, _)| *k == p.name) {
                kwargs.swap_remove(i).1
            } else if let Some(d) = &p.default {
                let empty = Frame {
                    locals: HashMap::new(),
                    scope: scope.clone(),
                };
                self.eval(d, &empty)?
            } else {
                return Err(self.unsupported(format!("{}: missing argument {}", f.name, p.name)));
            };
            frame.locals.insert(p.name.clone(), v);
        }
        if let Some((k, _)) = kwargs.first() {
            return Err(self.unsupported(format!("{}: unknown keyword argument {k}", f.name)));
        }
        let out = match self.run_block(&f.body, &mut frame)? {
            Flow::Return(v) => v,
            Flow::Next => Val::None,
        };
        self.depth -= 1;
        Ok(out)
    }

    fn run_block(
        &mut self,
        body: &'a [Stmt],
        frame: &mut Frame<'a>,
    ) -> Result<Flow<'a>, TorchScriptError> {
        for s in body {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(self.unsupported(format!("more than {MAX_STEPS} statements executed")));
            }
            match s {
                Stmt::Pass => {}
                Stmt::Expr(e, _) => {
                    self.eval(e, frame)?;
                }
                Stmt::Return(e, _) => {
                    let v = match e {
                        Some(e) => self.eval(e, frame)?,
                        None => Val::None,
                    };
                    return Ok(Flow::Return(v));
                }
                Stmt::Assign {
                    targets,
                    unpack,
                    value,
                    line,
                } => {
                    let v = self.eval(value, frame)?;
                    if *unpack {
                        let items = match &v {
                            Val::Tuple(t) | Val::List(t) => t.clone(),
                            other => {
                                return Err(self.unsupported(format!(
                                    "line {line}: cannot unpack a {}",
                                    other.kind()
                                )));
                            }
                        };
                        if items.len() != targets.len() {
                            return Err(self.unsupported(format!(
                                "line {line}: unpacking {} values into {} names",
                                items.len(),
                                targets.len()
                            )));
                        }
                        for (t, v) in targets.iter().zip(items.iter()) {
                            frame.locals.insert(t.clone(), v.clone());
                        }
                    } else if let Some(t) = targets.first() {
                        frame.locals.insert(t.clone(), v);
                    }
                }
                Stmt::If {
                    cond,
                    then,
                    els,
                    line,
                } => {
                    let c = match self.eval(cond, frame)? {
                        Val::Bool(b) => b,
                        other => {
                            return Err(self.unsupported(format!(
                                "line {line}: `if` on a {} (only static bools are supported)",
                                other.kind()
                            )));
                        }
                    };
                    let flow = self.run_block(if c { then } else { els }, frame)?;
                    if let Flow::Return(v) = flow {
                        return Ok(Flow::Return(v));
                    }
                }
                Stmt::For { line, .. } => {
                    return Err(
                        self.unsupported(format!("line {line}: `for` loops are not supported"))
                    );
                }
            }
        }
        Ok(Flow::Next)
    }

    fn name(&self, n: &str, frame: &Frame<'a>) -> Result<Val<'a>, TorchScriptError> {
        if let Some(v) = frame.locals.get(n) {
            return Ok(v.clone());
        }
        if let Some(b) = Builtin::lookup(n) {
            return Ok(Val::Builtin(b));
        }
        if self.namespaces.contains(n) {
            return Ok(Val::Namespace(Rc::from(n)));
        }
        Err(self.unsupported(format!("unknown name `{n}`")))
    }

    fn eval(&mut self, e: &'a Expr, frame: &Frame<'a>) -> Result<Val<'a>, TorchScriptError> {
        Ok(match e {
            Expr::None => Val::None,
            Expr::Bool(b) => Val::Bool(*b),
            Expr::Int(i) => Val::Int(*i),
            Expr::Float(f) => Val::Float(*f),
            Expr::Str(s) => Val::Str(Rc::from(s.as_str())),
            Expr::Name(n) => self.name(n, frame)?,
            Expr::List(items) => Val::List(Rc::new(
                items
                    .iter()
                    .map(|x| self.eval(x, frame))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Tuple(items) => Val::Tuple(Rc::new(
                items
                    .iter()
                    .map(|x| self.eval(x, frame))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Neg(x) => match self.eval(x, frame)? {
                Val::Int(i) => Val::Int(
                    i.checked_neg()
                        .ok_or_else(|| self.unsupported("integer overflow"))?,
                ),
                Val::Float(f) => Val::Float(-f),
                other => return Err(self.unsupported(format!("cannot negate a {}", other.kind()))),
            },
            Expr::Index(..) => return Err(self.unsupported("subscripts are not supported")),
            Expr::Attr(base, attr) => {
                let b = self.eval(base, frame)?;
                self.attr(b, attr)?
            }
            Expr::Call(callee, args) => {
                let f = self.eval(callee, frame)?;
                self.call(f, args, frame)?
            }
        })
    }

    fn attr(&mut self, base: Val<'a>, attr: &str) -> Result<Val<'a>, TorchScriptError> {
        match base {
            Val::Namespace(ns) => {
                let full = format!("{ns}.{attr}");
                if let Some(f) = self.functions.get(&full) {
                    return Ok(Val::Func(f));
                }
                if let Some(b) = Builtin::lookup(&full) {
                    return Ok(Val::Builtin(b));
                }
                if self.namespaces.contains(&full) {
                    return Ok(Val::Namespace(Rc::from(full)));
                }
                Err(self.unsupported(format!("`{full}` is not a supported operator")))
            }
            Val::Module(m, path) => {
                if let Some(a) = m.get(attr) {
                    let child: Rc<str> = if path.is_empty() {
                        Rc::from(attr)
                    } else {
                        Rc::from(format!("{path}.{attr}"))
                    };
                    return self.attr_value(a, child);
                }
                let class = self.class_of(m)?;
                if let Some(f) = class.method(attr) {
                    return Ok(Val::Method(m, path, f));
                }
                if let Some(c) = class.constant(attr) {
                    let empty = Frame {
                        locals: HashMap::new(),
                        scope: path,
                    };
                    return self.eval(c, &empty);
                }
                Err(self.unsupported(format!(
                    "module {} ({}) has no attribute {attr}",
                    display_path(&path),
                    m.class
                )))
            }
            other => Err(self.unsupported(format!("attribute {attr} of a {}", other.kind()))),
        }
    }

    fn attr_value(&self, a: &'a Attr, path: Rc<str>) -> Result<Val<'a>, TorchScriptError> {
        Ok(match a {
            Attr::None => Val::None,
            Attr::Bool(b) => Val::Bool(*b),
            Attr::Int(i) => Val::Int(*i),
            Attr::Float(f) => Val::Float(*f),
            Attr::Str(s) => Val::Str(Rc::from(s.as_str())),
            Attr::List(items) => Val::List(Rc::new(
                items
                    .iter()
                    .map(|x| self.attr_value(x, path.clone()))
                    .collect::<Result<_, _>>()?,
            )),
            Attr::Tuple(items) => Val::Tuple(Rc::new(
                items
                    .iter()
                    .map(|x| self.attr_value(x, path.clone()))
                    .collect::<Result<_, _>>()?,
            )),
            Attr::Tensor(i) => Val::Param(*i),
            Attr::Module(m) => Val::Module(m, path),
        })
    }

    fn call(
        &mut self,
        f: Val<'a>,
        args: &'a [Arg],
        frame: &Frame<'a>,
    ) -> Result<Val<'a>, TorchScriptError> {
        if let Val::Builtin(b @ (Builtin::Annotate | Builtin::UncheckedCast)) = f {
            // annotate(T, v) / unchecked_cast(T, v): the type is not evaluated.
            return match args {
                [_, v] if v.name.is_none() => self.eval(&v.value, frame),
                _ => Err(self.unsupported(format!("{b:?} expects (type, value)"))),
            };
        }
        let mut pos = Vec::with_capacity(args.len());
        let mut kw = Vec::new();
        for a in args {
            let v = self.eval(&a.value, frame)?;
            match &a.name {
                Some(n) => kw.push((n.clone(), v)),
                None => {
                    if !kw.is_empty() {
                        return Err(self.unsupported("positional argument after keyword"));
                    }
                    pos.push(v)
                }
            }
        }
        match f {
            Val::Func(def) => self.invoke(def, pos, kw, frame.scope.clone()),
            Val::Method(m, path, def) => self.invoke_method(m, path, def, pos, kw),
            Val::Builtin(b) => {
                if !kw.is_empty() {
                    return Err(self.unsupported(format!("keyword arguments to {b:?}")));
                }
                self.builtin(b, pos, &frame.scope)
            }
            other => Err(self.unsupported(format!("calling a {}", other.kind()))),
        }
    }

    fn tensor(&self, v: &Val<'a>, what: &str) -> Result<ValueId, TorchScriptError> {
        match v {
            Val::Tensor(t) => Ok(*t),
            other => {
                Err(self.unsupported(format!("{what} is a {}, not an activation", other.kind())))
            }
        }
    }

    fn param(
        &self,
        v: &Val<'a>,
        what: &str,
        shape: &[Option<usize>],
    ) -> Result<usize, TorchScriptError> {
        let Val::Param(i) = v else {
            return Err(self.unsupported(format!("{what} is a {}, not a weight", v.kind())));
        };
        let t = self
            .archive
            .tensors()
            .get(*i)
            .ok_or_else(|| self.unsupported(format!("{what}: tensor {i} missing")))?;
        let ok = t.shape.len() == shape.len()
            && t.shape
                .iter()
                .zip(shape)
                .all(|(&a, b)| b.is_none_or(|b| a == b));
        if !ok {
            let want: Vec<String> = shape
                .iter()
                .map(|d| d.map_or("?".into(), |d| d.to_string()))
                .collect();
            return Err(self.unsupported(format!(
                "{what} {} has shape {:?}, expected [{}]",
                t.name,
                t.shape,
                want.join(", ")
            )));
        }
        Ok(*i)
    }

    fn int(&self, v: &Val<'a>, what: &str) -> Result<i64, TorchScriptError> {
        match v {
            Val::Int(i) => Ok(*i),
            other => Err(self.unsupported(format!("{what} is a {}, not an int", other.kind()))),
        }
    }

    fn boolean(&self, v: &Val<'a>, what: &str) -> Result<bool, TorchScriptError> {
        match v {
            Val::Bool(b) => Ok(*b),
            other => Err(self.unsupported(format!("{what} is a {}, not a bool", other.kind()))),
        }
    }

    /// An int or a list of one or two ints, as a pair of non-negative sizes.
    fn pair(&self, v: &Val<'a>, what: &str) -> Result<[usize; 2], TorchScriptError> {
        let to = |i: i64| {
            usize::try_from(i)
                .ok()
                .filter(|&u| u < 1 << 20)
                .ok_or_else(|| self.unsupported(format!("{what} value {i} out of range")))
        };
        match v {
            Val::Int(i) => {
                let u = to(*i)?;
                Ok([u, u])
            }
            Val::List(l) | Val::Tuple(l) => match l.as_slice() {
                [a] => {
                    let u = to(self.int(a, what)?)?;
                    Ok([u, u])
                }
                [a, b] => Ok([to(self.int(a, what)?)?, to(self.int(b, what)?)?]),
                _ => Err(self.unsupported(format!("{what} has {} values", l.len()))),
            },
            other => Err(self.unsupported(format!("{what} is a {}", other.kind()))),
        }
    }

    fn shape4(
        &self,
        t: ValueId,
        what: &str,
    ) -> Result<(Dim, usize, usize, usize), TorchScriptError> {
        match self.shapes[t].as_slice() {
            [n, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] => Ok((*n, *c, *h, *w)),
            s => Err(self.unsupported(format!(
                "{what} expects an NCHW input, got {}",
                shape_string(s)
            ))),
        }
    }

    fn builtin(
        &mut self,
        b: Builtin,
        a: Vec<Val<'a>>,
        scope: &str,
    ) -> Result<Val<'a>, TorchScriptError> {
        let n = a.len();
        let arity = |lo: usize, hi: usize| -> Result<(), TorchScriptError> {
            if n < lo || n > hi {
                return Err(self.unsupported(format!("{b:?} with {n} arguments")));
            }
            Ok(())
        };
        let arg = |i: usize| a.get(i).cloned();
        match b {
            Builtin::Size => {
                arity(1, 1)?;
                let t = self.tensor(&a[0], "torch.size input")?;
                Ok(Val::Tuple(Rc::new(
                    self.shapes[t]
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(x) => Val::Int(*x as i64),
                            Dim::Batch => Val::BatchInt,
                        })
                        .collect(),
                )))
            }
            Builtin::Eq | Builtin::Ne => {
                arity(2, 2)?;
                let eq = match (&a[0], &a[1]) {
                    (Val::Int(x), Val::Int(y)) => x == y,
                    (Val::Bool(x), Val::Bool(y)) => x == y,
                    (Val::Float(x), Val::Float(y)) => x == y,
                    (Val::Str(x), Val::Str(y)) => x == y,
                    (Val::None, Val::None) => true,
                    (Val::BatchInt, _) | (_, Val::BatchInt) => {
                        return Err(self.unsupported("a condition depends on the batch size"));
                    }
                    (x, y) => {
                        return Err(self.unsupported(format!(
                            "comparing a {} with a {}",
                            x.kind(),
                            y.kind()
                        )));
                    }
                };
                Ok(Val::Bool(if b == Builtin::Eq { eq } else { !eq }))
            }
            Builtin::Is | Builtin::IsNot => {
                arity(2, 2)?;
                let is = match (&a[0], &a[1]) {
                    (Val::None, Val::None) => true,
                    (Val::None, _) | (_, Val::None) => false,
                    _ => return Err(self.unsupported("`is` between values other than None")),
                };
                Ok(Val::Bool(if b == Builtin::Is { is } else { !is }))
            }
            Builtin::Raise => {
                let msg = match a.first() {
                    Some(Val::Str(s)) => s.to_string(),
                    _ => String::new(),
                };
                Err(self.unsupported(format!("the archive's code raises an exception: {msg:?}")))
            }
            Builtin::Dtype => {
                arity(1, 1)?;
                match a[0] {
                    Val::Tensor(_) | Val::Param(_) => Ok(Val::Dtype),
                    ref other => Err(self.unsupported(format!("dtype of a {}", other.kind()))),
                }
            }
            Builtin::To => {
                arity(2, 2)?;
                if !matches!(a[1], Val::Dtype) {
                    return Err(self.unsupported("torch.to with something other than a dtype"));
                }
                match a[0] {
                    Val::Tensor(_) | Val::Param(_) => Ok(a[0].clone()),
                    ref other => Err(self.unsupported(format!("torch.to of a {}", other.kind()))),
                }
            }
            Builtin::Warn => Ok(Val::None),
            Builtin::Contiguous => {
                arity(1, 2)?;
                self.tensor(&a[0], "torch.contiguous input")?;
                Ok(a[0].clone())
            }
            Builtin::Annotate | Builtin::UncheckedCast => {
                Err(self.unsupported(format!("{b:?} used as a value")))
            }
            Builtin::Conv2d => {
                arity(2, 7)?;
                let x = self.tensor(&a[0], "conv2d input")?;
                let (batch, c, h, w) = self.shape4(x, "conv2d")?;
                let wi = self.param(&a[1], "conv2d weight", &[None, None, None, None])?;
                let ws = self.archive.tensors()[wi].shape.clone();
                let bias = match arg(2) {
                    None | Some(Val::None) => None,
                    Some(v) => Some(self.param(&v, "conv2d bias", &[Some(ws[0])])?),
                };
                let stride = self.pair(&arg(3).unwrap_or(Val::Int(1)), "conv2d stride")?;
                let padding = self.pair(&arg(4).unwrap_or(Val::Int(0)), "conv2d padding")?;
                let dilation = self.pair(&arg(5).unwrap_or(Val::Int(1)), "conv2d dilation")?;
                let groups = self.int(&arg(6).unwrap_or(Val::Int(1)), "conv2d groups")?;
                let groups = usize::try_from(groups)
                    .ok()
                    .filter(|&g| g >= 1 && ws[0].is_multiple_of(g) && ws[1] * g == c)
                    .ok_or_else(|| {
                        self.unsupported(format!(
                            "conv2d weight {:?} does not fit {c} input channels in {groups} groups",
                            ws
                        ))
                    })?;
                let ho = window_out(h, ws[2], stride[0], padding[0], dilation[0])
                    .ok_or_else(|| self.unsupported("conv2d window does not fit (height)"))?;
                let wo = window_out(w, ws[3], stride[1], padding[1], dilation[1])
                    .ok_or_else(|| self.unsupported("conv2d window does not fit (width)"))?;
                Ok(self.emit(
                    Op::Conv2d {
                        weight: wi,
                        bias,
                        stride,
                        padding,
                        dilation,
                        groups,
                    },
                    vec![x],
                    vec![batch, Dim::Fixed(ws[0]), Dim::Fixed(ho), Dim::Fixed(wo)],
                    scope,
                ))
            }
            Builtin::BatchNorm => {
                arity(9, 9)?;
                let x = self.tensor(&a[0], "batch_norm input")?;
                let (_, c, _, _) = self.shape4(x, "batch_norm")?;
                let opt = |v: &Val<'a>, what: &str| -> Result<Option<usize>, TorchScriptError> {
                    match v {
                        Val::None => Ok(None),
                        v => Ok(Some(self.param(v, what, &[Some(c)])?)),
                    }
                };
                let weight = opt(&a[1], "batch_norm weight")?;
                let bias = opt(&a[2], "batch_norm bias")?;
                let mean = self.param(&a[3], "batch_norm running_mean", &[Some(c)])?;
                let var = self.param(&a[4], "batch_norm running_var", &[Some(c)])?;
                if self.boolean(&a[5], "batch_norm training")? {
                    return Err(self.unsupported("batch_norm in training mode"));
                }
                let eps = match a[7] {
                    Val::Float(f) => f,
                    Val::Int(i) => i as f64,
                    ref other => {
                        return Err(
                            self.unsupported(format!("batch_norm eps is a {}", other.kind()))
                        );
                    }
                };
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(self.unsupported(format!("batch_norm eps {eps}")));
                }
                let shape = self.shapes[x].clone();
                Ok(self.emit(
                    Op::BatchNorm {
                        weight,
                        bias,
                        mean,
                        var,
                        eps,
                    },
                    vec![x],
                    shape,
                    scope,
                ))
            }
            Builtin::Relu => {
                arity(1, 1)?;
                let x = self.tensor(&a[0], "relu input")?;
                let shape = self.shapes[x].clone();
                Ok(self.emit(Op::Relu, vec![x], shape, scope))
            }
            Builtin::MaxPool2d => {
                arity(2, 6)?;
                let x = self.tensor(&a[0], "max_pool2d input")?;
                let (batch, c, h, w) = self.shape4(x, "max_pool2d")?;
                let kernel = self.pair(&a[1], "max_pool2d kernel_size")?;
                let stride = self.pool_stride(arg(2), kernel, "max_pool2d")?;
                let padding = self.pair(&arg(3).unwrap_or(Val::Int(0)), "max_pool2d padding")?;
                let dilation = self.pair(&arg(4).unwrap_or(Val::Int(1)), "max_pool2d dilation")?;
                if self.boolean(&arg(5).unwrap_or(Val::Bool(false)), "max_pool2d ceil_mode")? {
                    return Err(self.unsupported("max_pool2d with ceil_mode=True"));
                }
                if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
                    return Err(self.unsupported("max_pool2d padding larger than half the window"));
                }
                let ho = window_out(h, kernel[0], stride[0], padding[0], dilation[0])
                    .ok_or_else(|| self.unsupported("max_pool2d window does not fit"))?;
                let wo = window_out(w, kernel[1], stride[1], padding[1], dilation[1])
                    .ok_or_else(|| self.unsupported("max_pool2d window does not fit"))?;
                Ok(self.emit(
                    Op::MaxPool2d {
                        kernel,
                        stride,
                        padding,
                        dilation,
                    },
                    vec![x],
                    vec![batch, Dim::Fixed(c), Dim::Fixed(ho), Dim::Fixed(wo)],
                    scope,
                ))
            }
            Builtin::AvgPool2d => {
                arity(2, 7)?;
                let x = self.tensor(&a[0], "avg_pool2d input")?;
                let (batch, c, h, w) = self.shape4(x, "avg_pool2d")?;
                let kernel = self.pair(&a[1], "avg_pool2d kernel_size")?;
                let stride = self.pool_stride(arg(2), kernel, "avg_pool2d")?;
                let padding = self.pair(&arg(3).unwrap_or(Val::Int(0)), "avg_pool2d padding")?;
                if self.boolean(&arg(4).unwrap_or(Val::Bool(false)), "avg_pool2d ceil_mode")? {
                    return Err(self.unsupported("avg_pool2d with ceil_mode=True"));
                }
                let count_include_pad = self.boolean(
                    &arg(5).unwrap_or(Val::Bool(true)),
                    "avg_pool2d count_include_pad",
                )?;
                if !matches!(arg(6).unwrap_or(Val::None), Val::None) {
                    return Err(self.unsupported("avg_pool2d with a divisor_override"));
                }
                if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
                    return Err(self.unsupported("avg_pool2d padding larger than half the window"));
                }
                let ho = window_out(h, kernel[0], stride[0], padding[0], 1)
                    .ok_or_else(|| self.unsupported("avg_pool2d window does not fit"))?;
                let wo = window_out(w, kernel[1], stride[1], padding[1], 1)
                    .ok_or_else(|| self.unsupported("avg_pool2d window does not fit"))?;
                Ok(self.emit(
                    Op::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                        count_include_pad,
                    },
                    vec![x],
                    vec![batch, Dim::Fixed(c), Dim::Fixed(ho), Dim::Fixed(wo)],
                    scope,
                ))
            }
            Builtin::Cat => {
                arity(1, 2)?;
                let items = match &a[0] {
                    Val::List(l) | Val::Tuple(l) if !l.is_empty() => l.clone(),
                    other => {
                        return Err(self.unsupported(format!("torch.cat of a {}", other.kind())));
                    }
                };
                let ids: Vec<ValueId> = items
                    .iter()
                    .map(|v| self.tensor(v, "torch.cat item"))
                    .collect::<Result<_, _>>()?;
                let rank = self.shapes[ids[0]].len() as i64;
                let dim = self.int(&arg(1).unwrap_or(Val::Int(0)), "torch.cat dim")?;
                let axis = if dim < 0 { dim + rank } else { dim };
                if !(0..rank).contains(&axis) {
                    return Err(
                        self.unsupported(format!("torch.cat dim {dim} of a rank-{rank} tensor"))
                    );
                }
                let axis = axis as usize;
                let mut shape = self.shapes[ids[0]].clone();
                let mut total = 0usize;
                for &i in &ids {
                    let s = &self.shapes[i];
                    let same = s.len() == shape.len()
                        && s.iter()
                            .zip(&shape)
                            .enumerate()
                            .all(|(k, (x, y))| k == axis || x == y);
                    let Some(Dim::Fixed(d)) = s.get(axis).copied().filter(|_| same) else {
                        return Err(self.unsupported(format!(
                            "torch.cat of {} and {} on dim {axis}",
                            shape_string(&shape),
                            shape_string(s)
                        )));
                    };
                    total += d;
                }
                shape[axis] = Dim::Fixed(total);
                Ok(self.emit(Op::Concat { axis }, ids, shape, scope))
            }
            Builtin::Reshape => {
                arity(2, 2)?;
                let x = self.tensor(&a[0], "reshape input")?;
                let target: Vec<i64> = match &a[1] {
                    Val::List(l) | Val::Tuple(l) => l
                        .iter()
                        .map(|v| self.int(v, "reshape size"))
                        .collect::<Result<_, _>>()?,
                    other => return Err(self.unsupported(format!("reshape to a {}", other.kind()))),
                };
                let shape = self.reshape(&self.shapes[x].clone(), &target)?;
                Ok(self.emit(Op::Reshape { shape: target }, vec![x], shape, scope))
            }
        }
    }

    fn pool_stride(
        &self,
        v: Option<Val<'a>>,
        kernel: [usize; 2],
        what: &str,
    ) -> Result<[usize; 2], TorchScriptError> {
        match v {
            None | Some(Val::None) => Ok(kernel),
            Some(Val::List(l)) if l.is_empty() => Ok(kernel),
            Some(v) => self.pair(&v, &format!("{what} stride")),
        }
    }

    fn reshape(&self, input: &[Dim], target: &[i64]) -> Result<Vec<Dim>, TorchScriptError> {
        let bad = || self.unsupported(format!("reshape of {} to {target:?}", shape_string(input)));
        let fixed: Option<usize> = input
            .iter()
            .filter_map(|d| match d {
                Dim::Fixed(x) => Some(*x),
                Dim::Batch => None,
            })
            .try_fold(1usize, |acc, x| acc.checked_mul(x));
        let fixed = fixed.ok_or_else(bad)?;
        let has_batch = input.contains(&Dim::Batch);
        if target.iter().filter(|&&t| t == -1).count() > 1 || target.iter().any(|&t| t < -1) {
            return Err(bad());
        }
        let known: usize = target
            .iter()
            .filter(|&&t| t >= 0)
            .try_fold(1usize, |acc, &t| acc.checked_mul(t as usize))
            .ok_or_else(bad)?;
        let mut out = Vec::with_capacity(target.len());
        for &t in target {
            if t >= 0 {
                out.push(Dim::Fixed(t as usize));
            } else if has_batch {
                // Only `[-1, rest...]` on a batch-first input keeps the batch symbolic.
                if input.first() != Some(&Dim::Batch) || !out.is_empty() || known != fixed {
                    return Err(bad());
                }
                out.push(Dim::Batch);
            } else {
                if known == 0 || fixed % known != 0 {
                    return Err(bad());
                }
                out.push(Dim::Fixed(fixed / known));
            }
        }
        if !target.contains(&-1) && (has_batch || known != fixed) {
            return Err(bad());
        }
        Ok(out)
    }

    /// Checks a pooling module's `Final` constants against the operator its `forward` emitted.
    fn check_pool_constants(
        &mut self,
        class: &'a ClassDef,
        first: usize,
    ) -> Result<(), TorchScriptError> {
        let Some(_) = class.constant("kernel_size") else {
            return Ok(());
        };
        let emitted = &self.nodes[first..];
        let (kernel, stride, padding, dilation, cip) = match emitted {
            [
                Node {
                    op:
                        Op::MaxPool2d {
                            kernel,
                            stride,
                            padding,
                            dilation,
                        },
                    ..
                },
            ] => (*kernel, *stride, *padding, *dilation, None),
            [
                Node {
                    op:
                        Op::AvgPool2d {
                            kernel,
                            stride,
                            padding,
                            count_include_pad,
                        },
                    ..
                },
            ] => (*kernel, *stride, *padding, [1, 1], Some(*count_include_pad)),
            _ => {
                return Err(self.unsupported(format!(
                    "class {} declares a kernel_size but its forward emits {} operators, not one pool",
                    class.name,
                    emitted.len()
                )));
            }
        };
        let scope = self.nodes[first].scope.clone();
        let empty = Frame {
            locals: HashMap::new(),
            scope: Rc::from(scope.as_str()),
        };
        let pairs = [
            ("kernel_size", kernel),
            ("stride", stride),
            ("padding", padding),
            ("dilation", dilation),
        ];
        for (name, got) in pairs {
            if let Some(e) = class.constant(name) {
                let v = self.eval(e, &empty)?;
                let want = match (&v, name) {
                    (Val::None, "stride") => kernel,
                    _ => self.pair(&v, name)?,
                };
                if want != got {
                    return Err(self.unsupported(format!(
                        "class {}: Final {name} = {want:?} but forward uses {got:?}",
                        class.name
                    )));
                }
            }
        }
        if let Some(e) = class.constant("ceil_mode")
            && !matches!(self.eval(e, &empty)?, Val::Bool(false))
        {
            return Err(self.unsupported(format!("class {}: ceil_mode is not False", class.name)));
        }
        if let (Some(e), Some(got)) = (class.constant("count_include_pad"), cip) {
            let want = self.eval(e, &empty)?;
            if !matches!(want, Val::Bool(w) if w == got) {
                return Err(self.unsupported(format!(
                    "class {}: Final count_include_pad = {want:?} but forward uses {got}",
                    class.name
                )));
            }
        }
        Ok(())
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

/// Output size of a sliding window: `floor((n + 2p - d(k-1) - 1) / s) + 1`, `None` if it does not fit.
fn window_out(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let span = d.checked_mul(k - 1)?.checked_add(1)?;
    let padded = n.checked_add(p.checked_mul(2)?)?;
    if padded < span {
        return None;
    }
    Some((padded - span) / s + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_match_pytorch() {
        // Inception stem: 299 -> 149 (3x3 s2) -> 147 (3x3) -> 147 (3x3 p1) -> 73 (pool 3x3 s2)
        assert_eq!(window_out(299, 3, 2, 0, 1), Some(149));
        assert_eq!(window_out(149, 3, 1, 0, 1), Some(147));
        assert_eq!(window_out(147, 3, 1, 1, 1), Some(147));
        assert_eq!(window_out(147, 3, 2, 0, 1), Some(73));
        assert_eq!(window_out(8, 8, 8, 0, 1), Some(1));
        assert_eq!(window_out(2, 3, 1, 0, 1), None);
        assert_eq!(window_out(5, 3, 0, 0, 1), None);
    }
}
