//! A parser for the subset of Python that TorchScript prints into
//! `code/__torch__/**.py`: classes with annotated attributes (`Final`
//! constants included) and methods, top-level functions, and bodies made of
//! assignments, `return`, `if`/`else`, `for`, `pass` and expression
//! statements over names, literals, lists, tuples, attribute access, calls
//! and subscripts. Nothing is evaluated here ([`super::interp`] does that,
//! symbolically).
//!
//! Everything is bounded: expressions and blocks may nest at most
//! [`MAX_NESTING`] deep, and any other construct is an error naming the file
//! and line.

use super::TorchScriptError;

/// Deepest nesting of expressions or blocks accepted.
pub const MAX_NESTING: usize = 100;

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A name (`x`, `torch`, `__torch__`).
    Name(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `(a, b)`.
    Tuple(Vec<Expr>),
    /// `value.attr`.
    Attr(Box<Expr>, String),
    /// `f(args)`.
    Call(Box<Expr>, Vec<Arg>),
    /// `value[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `-value`.
    Neg(Box<Expr>),
}

/// A call argument, positional or `name=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The keyword, if any.
    pub name: Option<String>,
    /// The value.
    pub value: Expr,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `a = value` or `a, b, = value` (`unpack` when the target is a tuple).
    Assign {
        /// Target names.
        targets: Vec<String>,
        /// True for a tuple target.
        unpack: bool,
        /// The value.
        value: Expr,
        /// Line number (1-based).
        line: usize,
    },
    /// An expression evaluated for its effect.
    Expr(Expr, usize),
    /// `return [value]`.
    Return(Option<Expr>, usize),
    /// `if cond: then else: els`.
    If {
        /// Condition.
        cond: Expr,
        /// Taken when true.
        then: Vec<Stmt>,
        /// Taken when false (empty without `else`).
        els: Vec<Stmt>,
        /// Line number.
        line: usize,
    },
    /// `for var in iter: body`.
    For {
        /// Loop variable.
        var: String,
        /// Iterated value.
        iter: Expr,
        /// Body.
        body: Vec<Stmt>,
        /// Line number.
        line: usize,
    },
    /// `pass`.
    Pass,
}

/// A function parameter `name[: type][=default]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Type annotation.
    pub ty: Option<Expr>,
    /// Default value.
    pub default: Option<Expr>,
}

/// A function or method.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDef {
    /// Name.
    pub name: String,
    /// Parameters (a method's first is `self`).
    pub params: Vec<Param>,
    /// Body.
    pub body: Vec<Stmt>,
    /// Line number of `def`.
    pub line: usize,
}

/// A class attribute declaration `name : type [= value]` (`Final` constants have a value).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Type annotation, e.g. `Final[int]`.
    pub ty: Expr,
    /// Value, for constants.
    pub value: Option<Expr>,
}

/// A class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDef {
    /// Name (unqualified).
    pub name: String,
    /// Annotated attributes in order.
    pub fields: Vec<Field>,
    /// Plain assignments in the class body (`__parameters__ = [...]`).
    pub assigns: Vec<(String, Expr)>,
    /// Methods.
    pub methods: Vec<FunctionDef>,
    /// Line number of `class`.
    pub line: usize,
}

impl ClassDef {
    /// The method `name`.
    pub fn method(&self, name: &str) -> Option<&FunctionDef> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The value of the `Final` constant `name`, if declared with one.
    pub fn constant(&self, name: &str) -> Option<&Expr> {
        self.fields
            .iter()
            .find(|f| f.name == name && is_final(&f.ty))
            .and_then(|f| f.value.as_ref())
    }
}

fn is_final(ty: &Expr) -> bool {
    matches!(ty, Expr::Index(base, _) if **base == Expr::Name("Final".into()))
}

/// A parsed code file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceFile {
    /// Classes in order.
    pub classes: Vec<ClassDef>,
    /// Top-level functions in order.
    pub functions: Vec<FunctionDef>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    P(&'static str),
    Newline,
    Indent,
    Dedent,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

const PUNCT: [&str; 11] = ["->", "(", ")", "[", "]", ",", ":", ".", "=", "-", "*"];

fn lex(file: &str, src: &str) -> Result<Vec<Token>, TorchScriptError> {
    let err = |line: usize, message: String| TorchScriptError::Code {
        file: file.to_string(),
        line,
        message,
    };
    let mut out = Vec::new();
    let mut indents = vec![0usize];
    let mut depth = 0usize;
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let mut rest = raw;
        if depth == 0 {
            let body = raw.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if body.starts_with('\t') {
                return Err(err(line, "tab in indentation".into()));
            }
            let ind = raw.len() - body.len();
            let cur = indents.last().copied().unwrap_or(0);
            if ind > cur {
                if indents.len() > MAX_NESTING {
                    return Err(err(line, "blocks nested too deep".into()));
                }
                indents.push(ind);
                out.push(Token {
                    tok: Tok::Indent,
                    line,
                });
            } else {
                while ind < indents.last().copied().unwrap_or(0) {
                    indents.pop();
                    out.push(Token {
                        tok: Tok::Dedent,
                        line,
                    });
                }
                if ind != indents.last().copied().unwrap_or(0) {
                    return Err(err(line, "inconsistent dedent".into()));
                }
            }
            rest = body;
        }
        let bytes = rest.as_bytes();
        let mut k = 0;
        while k < bytes.len() {
            let c = bytes[k];
            if c == b' ' {
                k += 1;
                continue;
            }
            if c == b'#' {
                break;
            }
            if c.is_ascii_alphabetic() || c == b'_' {
                let start = k;
                while k < bytes.len() && (bytes[k].is_ascii_alphanumeric() || bytes[k] == b'_') {
                    k += 1;
                }
                out.push(Token {
                    tok: Tok::Name(rest[start..k].to_string()),
                    line,
                });
                continue;
            }
            if c.is_ascii_digit() {
                let start = k;
                let mut float = false;
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                if k < bytes.len() && bytes[k] == b'.' {
                    float = true;
                    k += 1;
                    while k < bytes.len() && bytes[k].is_ascii_digit() {
                        k += 1;
                    }
                }
                if k < bytes.len() && (bytes[k] == b'e' || bytes[k] == b'E') {
                    float = true;
                    k += 1;
                    if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
                        k += 1;
                    }
                    while k < bytes.len() && bytes[k].is_ascii_digit() {
                        k += 1;
                    }
                }
                let text = &rest[start..k];
                let tok = if float {
                    Tok::Float(
                        text.parse()
                            .map_err(|_| err(line, format!("bad number {text}")))?,
                    )
                } else {
                    Tok::Int(
                        text.parse()
                            .map_err(|_| err(line, format!("bad integer {text}")))?,
                    )
                };
                out.push(Token { tok, line });
                continue;
            }
            if c == b'"' || c == b'\'' {
                if rest[k..].starts_with("\"\"\"") || rest[k..].starts_with("'''") {
                    return Err(err(line, "triple-quoted strings are not supported".into()));
                }
                let mut s = String::new();
                let mut chars = rest[k + 1..].char_indices();
                let mut closed = None;
                while let Some((j, ch)) = chars.next() {
                    match ch {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, e @ ('\\' | '"' | '\''))) => s.push(e),
                            _ => return Err(err(line, "unsupported string escape".into())),
                        },
                        ch if ch as u32 == u32::from(c) => {
                            closed = Some(k + 1 + j + 1);
                            break;
                        }
                        ch => s.push(ch),
                    }
                }
                let Some(end) = closed else {
                    return Err(err(line, "unterminated string".into()));
                };
                out.push(Token {
                    tok: Tok::Str(s),
                    line,
                });
                k = end;
                continue;
            }
            let Some(p) = PUNCT.iter().find(|p| rest[k..].starts_with(**p)) else {
                let ch = rest[k..].chars().next().unwrap_or('?');
                return Err(err(line, format!("unexpected character {ch:?}")));
            };
            match *p {
                "(" | "[" => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(err(line, "brackets nested too deep".into()));
                    }
                }
                ")" | "]" => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| err(line, format!("unbalanced {p}")))?;
                }
                _ => {}
            }
            out.push(Token {
                tok: Tok::P(p),
                line,
            });
            k += p.len();
        }
        if depth == 0 && out.last().is_some_and(|t| t.tok != Tok::Newline) {
            out.push(Token {
                tok: Tok::Newline,
                line,
            });
        }
    }
    let last = src.lines().count();
    if depth != 0 {
        return Err(err(last, "unclosed bracket at end of file".into()));
    }
    for _ in 1..indents.len() {
        out.push(Token {
            tok: Tok::Dedent,
            line: last,
        });
    }
    out.push(Token {
        tok: Tok::End,
        line: last,
    });
    Ok(out)
}

/// Parses one code file; `file` names it in errors.
pub fn parse(file: &str, src: &str) -> Result<SourceFile, TorchScriptError> {
    let tokens = lex(file, src)?;
    let mut p = Parser {
        file,
        tokens,
        pos: 0,
        nesting: 0,
    };
    let mut out = SourceFile::default();
    loop {
        match p.peek() {
            Tok::End => return Ok(out),
            Tok::Newline => p.pos += 1,
            Tok::Name(n) if n == "class" => out.classes.push(p.class()?),
            Tok::Name(n) if n == "def" => out.functions.push(p.function()?),
            _ => {
                // Top-level assignments (e.g. `op_version_set = 1`) carry nothing we need.
                let s = p.simple_statement()?;
                if !matches!(s, Stmt::Assign { .. }) {
                    return Err(p.err("only classes, functions and assignments at top level"));
                }
            }
        }
    }
}

struct Parser<'f> {
    file: &'f str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens
            .get(self.pos)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::End)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map(|t| t.line)
            .unwrap_or(0)
    }

    fn err(&self, message: impl Into<String>) -> TorchScriptError {
        TorchScriptError::Code {
            file: self.file.to_string(),
            line: self.line(),
            message: message.into(),
        }
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::P(q) if *q == p)
    }

    fn eat_p(&mut self, p: &str) -> bool {
        if self.is_p(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_p(&mut self, p: &str) -> Result<(), TorchScriptError> {
        if self.eat_p(p) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{p}`, found {:?}", self.peek())))
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), TorchScriptError> {
        if self.is_kw(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{kw}`, found {:?}", self.peek())))
        }
    }

    fn name(&mut self) -> Result<String, TorchScriptError> {
        match self.next() {
            Tok::Name(n) if !is_keyword(&n) => Ok(n),
            t => Err(self.err(format!("expected a name, found {t:?}"))),
        }
    }

    fn expect(&mut self, t: Tok) -> Result<(), TorchScriptError> {
        if *self.peek() == t {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {t:?}, found {:?}", self.peek())))
        }
    }

    fn enter(&mut self) -> Result<(), TorchScriptError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err("nested too deep"));
        }
        Ok(())
    }

    fn class(&mut self) -> Result<ClassDef, TorchScriptError> {
        let line = self.line();
        self.expect_kw("class")?;
        let name = self.name()?;
        if self.eat_p("(") {
            while !self.eat_p(")") {
                self.expr()?;
                if !self.eat_p(",") && !self.is_p(")") {
                    return Err(self.err("expected `,` or `)` in class bases"));
                }
            }
        }
        self.expect_p(":")?;
        self.expect(Tok::Newline)?;
        self.expect(Tok::Indent)?;
        let mut c = ClassDef {
            name,
            fields: Vec::new(),
            assigns: Vec::new(),
            methods: Vec::new(),
            line,
        };
        loop {
            match self.peek() {
                Tok::Dedent => {
                    self.pos += 1;
                    return Ok(c);
                }
                Tok::End => return Ok(c),
                Tok::Name(n) if n == "def" => c.methods.push(self.function()?),
                Tok::Name(n) if n == "pass" => {
                    self.pos += 1;
                    self.expect(Tok::Newline)?;
                }
                Tok::Name(_) => {
                    let name = self.name()?;
                    if self.eat_p(":") {
                        let ty = self.expr()?;
                        let value = if self.eat_p("=") {
                            Some(self.expr()?)
                        } else {
                            None
                        };
                        c.fields.push(Field { name, ty, value });
                    } else if self.eat_p("=") {
                        let value = self.expr_list()?;
                        c.assigns.push((name, value));
                    } else {
                        return Err(self.err("expected `:` or `=` after a class attribute"));
                    }
                    self.expect(Tok::Newline)?;
                }
                t => return Err(self.err(format!("unexpected {t:?} in a class body"))),
            }
        }
    }

    fn function(&mut self) -> Result<FunctionDef, TorchScriptError> {
        let line = self.line();
        self.expect_kw("def")?;
        let name = self.name()?;
        self.expect_p("(")?;
        let mut params = Vec::new();
        while !self.eat_p(")") {
            let pname = self.name()?;
            let ty = if self.eat_p(":") {
                Some(self.expr()?)
            } else {
                None
            };
            let default = if self.eat_p("=") {
                Some(self.expr()?)
            } else {
                None
            };
            params.push(Param {
                name: pname,
                ty,
                default,
            });
            if !self.eat_p(",") && !self.is_p(")") {
                return Err(self.err("expected `,` or `)` in parameters"));
            }
        }
        if self.eat_p("->") {
            self.expr()?;
        }
        self.expect_p(":")?;
        let body = self.block()?;
        Ok(FunctionDef {
            name,
            params,
            body,
            line,
        })
    }

    fn block(&mut self) -> Result<Vec<Stmt>, TorchScriptError> {
        self.enter()?;
        let mut out = Vec::new();
        if *self.peek() != Tok::Newline {
            out.push(self.simple_statement()?);
        } else {
            self.pos += 1;
            self.expect(Tok::Indent)?;
            loop {
                match self.peek() {
                    Tok::Dedent => {
                        self.pos += 1;
                        break;
                    }
                    Tok::End => break,
                    _ => out.push(self.statement()?),
                }
            }
        }
        self.nesting -= 1;
        Ok(out)
    }

    fn statement(&mut self) -> Result<Stmt, TorchScriptError> {
        let line = self.line();
        if self.is_kw("if") {
            self.pos += 1;
            return self.if_rest(line);
        }
        if self.is_kw("for") {
            self.pos += 1;
            let var = self.name()?;
            self.expect_kw("in")?;
            let iter = self.expr()?;
            self.expect_p(":")?;
            let body = self.block()?;
            return Ok(Stmt::For {
                var,
                iter,
                body,
                line,
            });
        }
        self.simple_statement()
    }

    fn if_rest(&mut self, line: usize) -> Result<Stmt, TorchScriptError> {
        let cond = self.expr()?;
        self.expect_p(":")?;
        let then = self.block()?;
        let els = if self.is_kw("else") {
            self.pos += 1;
            self.expect_p(":")?;
            self.block()?
        } else if self.is_kw("elif") {
            let l = self.line();
            self.pos += 1;
            vec![self.if_rest(l)?]
        } else {
            Vec::new()
        };
        Ok(Stmt::If {
            cond,
            then,
            els,
            line,
        })
    }

    /// One line: `pass`, `return`, an assignment or an expression.
    fn simple_statement(&mut self) -> Result<Stmt, TorchScriptError> {
        let line = self.line();
        let s = if self.is_kw("pass") {
            self.pos += 1;
            Stmt::Pass
        } else if self.is_kw("return") {
            self.pos += 1;
            if *self.peek() == Tok::Newline {
                Stmt::Return(None, line)
            } else {
                Stmt::Return(Some(self.expr_list()?), line)
            }
        } else if let Tok::Name(n) = self.peek()
            && is_keyword(n)
        {
            return Err(self.err(format!("unsupported statement `{n}`")));
        } else {
            let first = self.expr_list()?;
            if self.eat_p("=") {
                let (targets, unpack) = match first {
                    Expr::Name(n) => (vec![n], false),
                    Expr::Tuple(items) => (
                        items
                            .into_iter()
                            .map(|e| match e {
                                Expr::Name(n) => Ok(n),
                                _ => Err(self.err("assignment target is not a name")),
                            })
                            .collect::<Result<_, _>>()?,
                        true,
                    ),
                    _ => return Err(self.err("assignment target is not a name")),
                };
                let value = self.expr_list()?;
                Stmt::Assign {
                    targets,
                    unpack,
                    value,
                    line,
                }
            } else {
                Stmt::Expr(first, line)
            }
        };
        if *self.peek() != Tok::End {
            self.expect(Tok::Newline)?;
        }
        Ok(s)
    }

    /// `a` or `a, b` or `a, b,` (a tuple when there is a comma).
    fn expr_list(&mut self) -> Result<Expr, TorchScriptError> {
        let first = self.expr()?;
        if !self.is_p(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_p(",") {
            if self.is_p("=") || *self.peek() == Tok::Newline || self.is_p(")") {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn expr(&mut self) -> Result<Expr, TorchScriptError> {
        self.enter()?;
        let e = if self.eat_p("-") {
            match self.expr()? {
                Expr::Int(i) => Expr::Int(
                    i.checked_neg()
                        .ok_or_else(|| self.err("integer overflow"))?,
                ),
                Expr::Float(f) => Expr::Float(-f),
                other => Expr::Neg(Box::new(other)),
            }
        } else {
            self.postfix()?
        };
        self.nesting -= 1;
        Ok(e)
    }

    fn postfix(&mut self) -> Result<Expr, TorchScriptError> {
        let mut e = self.atom()?;
        // Each postfix operation nests the expression one level deeper: count it.
        let outer = self.nesting;
        let r = loop {
            if (self.is_p(".") || self.is_p("(") || self.is_p("["))
                && let Err(err) = self.enter()
            {
                break Err(err);
            }
            if self.eat_p(".") {
                let n = match self.next() {
                    Tok::Name(n) => n,
                    t => return Err(self.err(format!("expected an attribute name, found {t:?}"))),
                };
                e = Expr::Attr(Box::new(e), n);
            } else if self.eat_p("(") {
                let mut args = Vec::new();
                while !self.eat_p(")") {
                    let name = match (self.peek(), self.tokens.get(self.pos + 1).map(|t| &t.tok)) {
                        (Tok::Name(n), Some(Tok::P("="))) => {
                            let n = n.clone();
                            self.pos += 2;
                            Some(n)
                        }
                        _ => None,
                    };
                    let value = self.expr()?;
                    args.push(Arg { name, value });
                    if !self.eat_p(",") && !self.is_p(")") {
                        return Err(self.err("expected `,` or `)` in call"));
                    }
                }
                e = Expr::Call(Box::new(e), args);
            } else if self.eat_p("[") {
                let idx = self.expr_list()?;
                self.expect_p("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                break Ok(e);
            }
        };
        self.nesting = outer;
        r
    }

    fn atom(&mut self) -> Result<Expr, TorchScriptError> {
        match self.next() {
            Tok::Name(n) => Ok(match n.as_str() {
                "None" => Expr::None,
                "True" => Expr::Bool(true),
                "False" => Expr::Bool(false),
                k if is_keyword(k) => return Err(self.err(format!("unexpected keyword `{k}`"))),
                _ => Expr::Name(n),
            }),
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::P("[") => {
                let mut items = Vec::new();
                while !self.eat_p("]") {
                    items.push(self.expr()?);
                    if !self.eat_p(",") && !self.is_p("]") {
                        return Err(self.err("expected `,` or `]` in list"));
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::P("(") => {
                if self.eat_p(")") {
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat_p(")") {
                    return Ok(first);
                }
                let mut items = vec![first];
                while self.eat_p(",") {
                    if self.is_p(")") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                self.expect_p(")")?;
                Ok(Expr::Tuple(items))
            }
            t => Err(self.err(format!("unexpected {t:?}"))),
        }
    }
}

fn is_keyword(n: &str) -> bool {
    matches!(
        n,
        "class"
            | "def"
            | "if"
            | "elif"
            | "else"
            | "for"
            | "in"
            | "while"
            | "return"
            | "pass"
            | "import"
            | "from"
            | "lambda"
            | "with"
            | "try"
            | "except"
            | "raise"
            | "del"
            | "global"
            | "nonlocal"
            | "yield"
            | "assert"
            | "break"
            | "continue"
            | "and"
            | "or"
            | "not"
            | "is"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = r#"class AvgPool2d(Module):
  __parameters__ = []
  training : bool
  padding : Final[int] = 1
  count_include_pad : Final[bool] = False
  def forward(self: __torch__.torch.nn.modules.pooling.AvgPool2d,
    input: Tensor) -> Tensor:
    _2 = torch.avg_pool2d(input, [3, 3], [1, 1], [1, 1], False, False)
    return _2
def f(x: Optional[List[int]]=None, y: float=1.0000000000000001e-05) -> int:
  a, b, = torch.size(x)
  if torch.eq(a, 3):
    pass
  else:
    ops.prim.RaiseException("AssertionError: \"q\"")
  for i in range(torch.len(x)):
    c = x[torch.add(i, 2)]
  return torch.reshape(x, [-1, 2048])
"#;

    #[test]
    fn parses_the_torchscript_subset() {
        let f = parse("t.py", POOL).unwrap();
        assert_eq!(f.classes.len(), 1);
        let c = &f.classes[0];
        assert_eq!(c.name, "AvgPool2d");
        assert_eq!(c.constant("padding"), Some(&Expr::Int(1)));
        assert_eq!(c.constant("count_include_pad"), Some(&Expr::Bool(false)));
        assert_eq!(c.constant("training"), None);
        let fwd = c.method("forward").unwrap();
        assert_eq!(fwd.params.len(), 2);
        assert_eq!(fwd.body.len(), 2);
        let Stmt::Assign { value, .. } = &fwd.body[0] else {
            panic!()
        };
        let Expr::Call(callee, args) = value else {
            panic!()
        };
        assert_eq!(
            **callee,
            Expr::Attr(Box::new(Expr::Name("torch".into())), "avg_pool2d".into())
        );
        assert_eq!(args.len(), 6);
        assert_eq!(args[1].value, Expr::List(vec![Expr::Int(3), Expr::Int(3)]));
        let g = &f.functions[0];
        assert_eq!(g.params[1].default, Some(Expr::Float(1e-5)));
        assert!(
            matches!(&g.body[0], Stmt::Assign { targets, unpack: true, .. } if targets.len() == 2)
        );
        let Stmt::If { els, .. } = &g.body[1] else {
            panic!()
        };
        assert!(
            matches!(&els[0], Stmt::Expr(Expr::Call(_, a), _) if a[0].value == Expr::Str("AssertionError: \"q\"".into()))
        );
        assert!(matches!(&g.body[2], Stmt::For { .. }));
        let Stmt::Return(Some(Expr::Call(_, a)), _) = &g.body[3] else {
            panic!()
        };
        assert_eq!(a[1].value, Expr::List(vec![Expr::Int(-1), Expr::Int(2048)]));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("x.py", "def f(x):\n  import os\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x.py:2") && msg.contains("import"), "{msg}");
        let err = parse("x.py", "def f(x):\n  return x +\n").unwrap_err();
        assert!(err.to_string().contains("'+'"), "{err}");
        assert!(parse("x.py", "def f(x):\n  return (x\n").is_err());
        assert!(parse("x.py", "def f(x):\n    return x\n  return x\n").is_err());
        assert!(parse("x.py", "while x:\n  pass\n").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let src = format!(
            "def f(x):\n  return {}x{}\n",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        assert!(parse("x.py", &src).is_err());
        let src = format!("def f(x):\n  return {}x\n", "-".repeat(5000));
        assert!(parse("x.py", &src).is_err());
        let mut src = String::from("def f(x):\n");
        for i in 1..300 {
            src.push_str(&" ".repeat(i));
            src.push_str("if x:\n");
        }
        assert!(parse("x.py", &src).is_err());
    }
}
