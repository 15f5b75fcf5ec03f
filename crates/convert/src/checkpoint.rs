//! Reading a PyTorch `torch.save` checkpoint that holds a `state_dict`
//! (e.g. `dinov2_vitl14_pretrain.pth`) without PyTorch and without executing
//! anything.
//!
//! The file is a zip (PyTorch's "zipfile" serialization, the default since
//! PyTorch 1.6): `<name>/data.pkl` is a pickle (protocol 2, written by
//! Python's pickler) of a dict `name -> tensor`, each tensor rebuilt by
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
//! requires_grad, backward_hooks)` from a storage named by a persistent id
//! `('storage', torch.FloatStorage, key, location, numel)`, whose bytes are
//! the member `<name>/data/<key>` (float32, little-endian). The pickle is
//! read by the whitelisting reader of [`crate::torchscript::pickle`] in its
//! [`Flavor::TorchSave`] mode: only `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and
//! `torch.FloatStorage` may be named; anything else (`os.system`, any
//! class) is an error naming it and is never imported.
//!
//! Every size is checked before it is allocated: the pickle's length, the
//! total of the storages ([`MAX_CHECKPOINT_TENSOR_BYTES`]), each storage
//! member against its declared element count, each tensor view against its
//! storage. Only float32 tensors are read (the DINOv2 checkpoints are
//! float32); another storage type is an error naming it.
//!
//! Reference: PyTorch `torch/serialization.py` (`_save`, `_load`,
//! `persistent_id`), `torch/_tensor.py` (`Tensor.__reduce_ex__`), CPython
//! `Lib/pickle.py`.

use std::collections::HashSet;
use std::io::{Cursor, Read, Seek};
use std::path::Path;
use std::rc::Rc;

use zip::ZipArchive;

use crate::torchscript::archive::{MAX_PICKLE_BYTES, load_tensors, read_member};
use crate::torchscript::pickle::{self, Flavor, Value};
use crate::torchscript::{Tensor, TorchScriptError};

/// Largest total size of the storages of a checkpoint, in bytes (DINOv2
/// ViT-L/14 has 1.2 GB, ViT-g/14 4.5 GB).
pub const MAX_CHECKPOINT_TENSOR_BYTES: u64 = 8 << 30;

/// Most entries a state dict may have.
pub const MAX_STATE_DICT_ENTRIES: usize = 100_000;

/// The one folder of the zip that holds a `data.pkl`.
fn single_prefix<R: Read + Seek>(zip: &mut ZipArchive<R>) -> Result<String, TorchScriptError> {
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|s| s.into_owned()))
        .collect::<Result<_, _>>()?;
    let prefixes: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_suffix("/data.pkl"))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .collect();
    match prefixes.as_slice() {
        [p] => Ok(p.to_string()),
        [] => Err(TorchScriptError::MissingMember("<folder>/data.pkl".into())),
        _ => Err(TorchScriptError::Archive(format!(
            "{} folders hold a data.pkl",
            prefixes.len()
        ))),
    }
}

/// Refuses storages that `<prefix>/byteorder` says are big-endian.
fn check_byteorder<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    prefix: &str,
) -> Result<(), TorchScriptError> {
    let byteorder = format!("{prefix}/byteorder");
    if zip.index_for_name(&byteorder).is_some() {
        let b = read_member(zip, &byteorder, 16)?;
        if b.trim_ascii() != b"little" {
            return Err(TorchScriptError::Archive(format!(
                "storages are stored in byte order {:?}, only little-endian is read",
                String::from_utf8_lossy(&b)
            )));
        }
    }
    Ok(())
}

/// A `state_dict` read from a `torch.save` checkpoint: its tensors by name,
/// in the pickle's order, as float32 row-major arrays.
#[derive(Clone, Debug)]
pub struct StateDict {
    prefix: String,
    tensors: Vec<Tensor>,
}

impl StateDict {
    /// Reads a checkpoint from any seekable reader (a file: the zip is read
    /// member by member, never whole).
    ///
    /// # Errors
    /// [`TorchScriptError`] when the zip, the pickle or a storage is
    /// malformed or outside the whitelist and limits above, when the pickle
    /// does not hold a flat dict of string keys to tensors, when a key is
    /// given twice, or when the archive says its storages are big-endian.
    pub fn from_reader<R: Read + Seek>(reader: R) -> Result<Self, TorchScriptError> {
        let mut zip = ZipArchive::new(reader)?;
        let prefix = single_prefix(&mut zip)?;
        if zip
            .index_for_name(&format!("{prefix}/constants.pkl"))
            .is_some()
        {
            return Err(TorchScriptError::Archive(
                "this is a TorchScript archive (it has constants.pkl), not a torch.save checkpoint"
                    .into(),
            ));
        }
        check_byteorder(&mut zip, &prefix)?;
        let data = read_member(&mut zip, &format!("{prefix}/data.pkl"), MAX_PICKLE_BYTES)?;
        let root = pickle::read_flavor(&data, Flavor::TorchSave)?;
        let Value::Dict(dict) = &root else {
            return Err(TorchScriptError::Archive(format!(
                "data.pkl holds a {}, not a state dict",
                root.kind()
            )));
        };
        if dict.entries.len() > MAX_STATE_DICT_ENTRIES {
            return Err(TorchScriptError::Archive(format!(
                "state dict with {} entries (at most {MAX_STATE_DICT_ENTRIES})",
                dict.entries.len()
            )));
        }
        let mut seen = HashSet::new();
        let mut refs = Vec::with_capacity(dict.entries.len());
        for (k, v) in &dict.entries {
            let Value::Str(k) = k else {
                return Err(TorchScriptError::Archive(format!(
                    "state dict key is a {}, not a string",
                    k.kind()
                )));
            };
            let Value::Tensor(t) = v else {
                return Err(TorchScriptError::Archive(format!(
                    "state dict entry {k:?} is a {}, not a tensor (a checkpoint that wraps \
                     the state dict, e.g. {{'model': ...}}, is not read)",
                    v.kind()
                )));
            };
            if !seen.insert(k.clone()) {
                return Err(TorchScriptError::Archive(format!(
                    "state dict key {k:?} given twice"
                )));
            }
            refs.push((k.to_string(), Rc::clone(t)));
        }
        let tensors = load_tensors(&mut zip, &prefix, refs, MAX_CHECKPOINT_TENSOR_BYTES)?;
        Ok(StateDict { prefix, tensors })
    }

    /// The weights of a TorchScript archive (`torch.jit.save`, e.g. the
    /// OpenAI CLIP `.pt` files) as a state dict: every tensor attribute of
    /// the module tree of `data.pkl`, named by its dotted path
    /// (`visual.conv1.weight`, as `state_dict()` names it), float16 storages
    /// widened exactly to float32. Only `data.pkl` and the storages are read
    /// (the code and `constants.pkl` are not), with the same whitelisting
    /// pickle reader ([`Flavor::TorchScript`]: `__torch__.*` classes are
    /// rebuilt as plain attribute dicts, never imported or run).
    ///
    /// # Errors
    /// As [`StateDict::from_reader`]; a pickle that is not a module tree.
    pub fn from_torchscript_reader<R: Read + Seek>(reader: R) -> Result<Self, TorchScriptError> {
        let mut zip = ZipArchive::new(reader)?;
        let prefix = single_prefix(&mut zip)?;
        check_byteorder(&mut zip, &prefix)?;
        let (_, tensors) = crate::torchscript::archive::read_module_weights(
            &mut zip,
            &prefix,
            MAX_CHECKPOINT_TENSOR_BYTES,
        )?;
        Self::from_tensors(tensors).map(|sd| StateDict { prefix, ..sd })
    }

    /// [`StateDict::from_torchscript_reader`] on a file.
    pub fn from_torchscript_file(path: &Path) -> Result<Self, TorchScriptError> {
        let file = std::fs::File::open(path).map_err(|error| TorchScriptError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_torchscript_reader(std::io::BufReader::new(file))
    }

    /// [`StateDict::from_reader`] on bytes in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TorchScriptError> {
        Self::from_reader(Cursor::new(bytes))
    }

    /// [`StateDict::from_reader`] on a file.
    pub fn from_file(path: &Path) -> Result<Self, TorchScriptError> {
        let file = std::fs::File::open(path).map_err(|error| TorchScriptError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_reader(std::io::BufReader::new(file))
    }

    /// Builds a state dict from tensors (for tests and for models built in
    /// code); names must be distinct and each `data` must hold
    /// `prod(shape)` values.
    pub fn from_tensors(tensors: Vec<Tensor>) -> Result<Self, TorchScriptError> {
        let mut seen = HashSet::new();
        for t in &tensors {
            if !seen.insert(t.name.as_str()) {
                return Err(TorchScriptError::Archive(format!(
                    "tensor {:?} given twice",
                    t.name
                )));
            }
            let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if numel != Some(t.data.len()) {
                return Err(TorchScriptError::Archive(format!(
                    "tensor {:?} of shape {:?} holds {} values",
                    t.name,
                    t.shape,
                    t.data.len()
                )));
            }
        }
        Ok(StateDict {
            prefix: String::new(),
            tensors,
        })
    }

    /// The archive's top folder (`torch.save` names it after the file, e.g.
    /// `dinov2_vitl14_pretrain`, or `archive`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tensors in the pickle's order; [`Tensor::name`] is the key.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The tensor `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Total number of tensor elements: `sum_t prod(shape_t)`.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(|t| t.data.len() as u64).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    fn unicode(out: &mut Vec<u8>, s: &str) {
        out.push(b'X');
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// A pickle as Python's pickler (protocol 2) writes
    /// `torch.save(OrderedDict(a=tensor 2x3, b=tensor 3 (a strided view
    /// of storage 1)), f)` with a `_metadata` attribute: every container
    /// memoized before it is filled.
    pub(crate) fn python_style_pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"ccollections\nOrderedDict\nq\x00)Rq\x01(");
        let mut memo = 2u8;
        let mut put = |p: &mut Vec<u8>| {
            p.extend_from_slice(&[b'q', memo]);
            memo += 1;
        };
        // 'a': storage 0 (6 floats), size (2, 3), stride (3, 1)
        unicode(&mut p, "a");
        put(&mut p);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
        put(&mut p);
        p.push(b'(');
        p.push(b'(');
        unicode(&mut p, "storage");
        put(&mut p);
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        put(&mut p);
        unicode(&mut p, "0");
        put(&mut p);
        unicode(&mut p, "cpu");
        put(&mut p);
        p.extend_from_slice(&[b'K', 6, b't']);
        put(&mut p);
        p.push(b'Q');
        p.extend_from_slice(&[b'K', 0, b'K', 2, b'K', 3, 0x86]);
        put(&mut p);
        p.extend_from_slice(&[b'K', 3, b'K', 1, 0x86]);
        put(&mut p);
        p.push(0x89);
        p.extend_from_slice(b"h\x00)R");
        put(&mut p);
        p.push(b't');
        put(&mut p);
        p.push(b'R');
        put(&mut p);
        // 'b': storage 1 (8 floats), offset 1, size (3,), stride (2,)
        unicode(&mut p, "b");
        put(&mut p);
        p.extend_from_slice(b"h\x03(");
        p.push(b'(');
        p.extend_from_slice(b"h\x04h\x05");
        unicode(&mut p, "1");
        put(&mut p);
        p.extend_from_slice(b"h\x07");
        p.extend_from_slice(&[b'K', 8, b't']);
        put(&mut p);
        p.push(b'Q');
        p.extend_from_slice(&[b'K', 1, b'K', 3, 0x85]);
        put(&mut p);
        p.extend_from_slice(&[b'K', 2, 0x85]);
        put(&mut p);
        p.push(0x89);
        p.extend_from_slice(b"h\x00)R");
        put(&mut p);
        p.push(b't');
        put(&mut p);
        p.push(b'R');
        put(&mut p);
        p.push(b'u');
        // BUILD with {'_metadata': OrderedDict({'': {'version': 1}})}
        p.push(b'}');
        put(&mut p);
        unicode(&mut p, "_metadata");
        put(&mut p);
        p.extend_from_slice(b"h\x00)R");
        put(&mut p);
        unicode(&mut p, "");
        put(&mut p);
        p.push(b'}');
        put(&mut p);
        unicode(&mut p, "version");
        put(&mut p);
        p.extend_from_slice(&[b'K', 1, b's', b's', b's', b'b', b'.']);
        p
    }

    pub(crate) fn zip_checkpoint(pickle: &[u8], storages: &[(&str, Vec<f32>)]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            z.start_file("archive/data.pkl", opts).unwrap();
            z.write_all(pickle).unwrap();
            z.start_file("archive/byteorder", opts).unwrap();
            z.write_all(b"little").unwrap();
            for (key, data) in storages {
                z.start_file(format!("archive/data/{key}"), opts).unwrap();
                for x in data {
                    z.write_all(&x.to_le_bytes()).unwrap();
                }
            }
            z.start_file("archive/version", opts).unwrap();
            z.write_all(b"3\n").unwrap();
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn reads_a_python_pickled_state_dict() {
        let s0: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let s1: Vec<f32> = (0..8).map(|x| 10.0 + x as f32).collect();
        let bytes = zip_checkpoint(&python_style_pickle(), &[("0", s0), ("1", s1)]);
        let sd = StateDict::from_bytes(&bytes).unwrap();
        assert_eq!(sd.prefix(), "archive");
        assert_eq!(sd.tensors().len(), 2);
        let a = sd.get("a").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0., 1., 2., 3., 4., 5.]);
        let b = sd.get("b").unwrap();
        assert_eq!(b.shape, vec![3]);
        assert_eq!(b.data, vec![11., 13., 15.]);
        assert_eq!(sd.parameter_count(), 9);
    }

    /// CLIP's TorchScript files keep `input_resolution`, `context_length` and
    /// `vocab_size` as int64 tensors: read exactly, or refused when float32
    /// cannot hold the value.
    #[test]
    fn integer_storages_are_read_exactly_or_refused() {
        let p = python_style_pickle();
        let at = p.windows(12).position(|w| w == b"FloatStorage").unwrap();
        let long = [&p[..at], b"LongStorage".as_slice(), &p[at + 12..]].concat();
        // Six int64 values as twelve little-endian 32-bit words.
        let words = |v: &[u32]| -> Vec<f32> {
            v.iter()
                .flat_map(|&x| [f32::from_bits(x), f32::from_bits(0)])
                .collect()
        };
        // Both storages become int64 (the pickle memoizes the global).
        let s1 = words(&[10, 11, 12, 13, 14, 15, 16, 17]);
        let bytes = zip_checkpoint(
            &long,
            &[("0", words(&[224, 77, 49408, 0, 1, 2])), ("1", s1.clone())],
        );
        let sd = StateDict::from_bytes(&bytes).unwrap();
        assert_eq!(
            sd.get("a").unwrap().data,
            vec![224., 77., 49408., 0., 1., 2.]
        );
        let bytes = zip_checkpoint(
            &long,
            &[("0", words(&[(1 << 24) + 1, 0, 0, 0, 0, 0])), ("1", s1)],
        );
        let err = StateDict::from_bytes(&bytes).unwrap_err();
        assert!(
            err.to_string().contains("float32 cannot hold exactly"),
            "{err}"
        );
    }

    #[test]
    fn wrong_sizes_and_formats_are_errors() {
        // A storage shorter than declared.
        let bytes = zip_checkpoint(
            &python_style_pickle(),
            &[("0", vec![0.0; 5]), ("1", vec![0.0; 8])],
        );
        assert!(StateDict::from_bytes(&bytes).is_err());
        // A missing storage.
        let bytes = zip_checkpoint(&python_style_pickle(), &[("0", vec![0.0; 6])]);
        let err = StateDict::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, TorchScriptError::MissingMember(_)), "{err}");
        // Not a zip; a truncated pickle; every prefix of the pickle.
        assert!(StateDict::from_bytes(b"junk").is_err());
        let p = python_style_pickle();
        for i in 0..p.len() {
            let bytes = zip_checkpoint(&p[..i], &[("0", vec![0.0; 6]), ("1", vec![0.0; 8])]);
            assert!(StateDict::from_bytes(&bytes).is_err(), "prefix {i}");
        }
        // A dict of something else than tensors.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        unicode(&mut p, "a");
        p.extend_from_slice(&[b'K', 1, b'u', b'.']);
        let err = StateDict::from_bytes(&zip_checkpoint(&p, &[])).unwrap_err();
        assert!(err.to_string().contains("not a tensor"), "{err}");
    }

    #[test]
    fn refuses_globals_outside_the_whitelist() {
        let mut p = b"\x80\x02cos\nsystem\n(".to_vec();
        unicode(&mut p, "echo pwned");
        p.extend_from_slice(b"tR.");
        let err = StateDict::from_bytes(&zip_checkpoint(&p, &[])).unwrap_err();
        assert!(
            matches!(err, TorchScriptError::ForbiddenGlobal { .. }),
            "{err}"
        );
        // TorchScript classes are not allowed in a torch.save pickle.
        let p = b"\x80\x02c__torch__\nM\n)\x81}b.".to_vec();
        let err = StateDict::from_bytes(&zip_checkpoint(&p, &[])).unwrap_err();
        assert!(
            matches!(err, TorchScriptError::ForbiddenGlobal { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_container_shared_before_it_is_filled_is_refused() {
        // d = {}; memo 0; [d] built (d now held by a list); then SETITEM on d.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'h', 0, 0x85, b'h', 0];
        unicode(&mut p, "k");
        p.extend_from_slice(&[b'K', 1, b's', b'0', b'.']);
        // POP leaves the tuple; reaching SETITEM must already fail.
        let err = pickle::read_flavor(&p, Flavor::TorchSave).unwrap_err();
        assert!(err.to_string().contains("memoized"), "{err}");
    }
}
